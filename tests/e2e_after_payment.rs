//! End-to-end: what happens after payment (issue 10), 835s posted through the gRPC API on
//! Postgres + Redis. A duplicate denial does not unpay a paid claim until its payment is
//! reversed; CLP02 = 25 (predetermination pricing only) posts no money; a reversal cancels the
//! denials of the payment it reverses; money taken back reopens a closed or written-off claim.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use arflow_api::claims::v1 as pb;
use arflow_api::events::v1 as events;
use arflow_platform::db::Db;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{Server, denials_of, get_claim, new_claim, post_fixture_era};
use prost::Message as _;
use redis::AsyncCommands as _;
use sqlx::Row as _;

/// The fixture claim ($180 + $25 = $205) paid in full: $150 paid, CO-45 $35, PR-2 $20.
fn paid_in_full(pcn: &str, icn: &str) -> Vec<String> {
    vec![
        format!("CLP*{pcn}*1*205*150*20*12*{icn}"),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "CAS*CO*45*35".into(),
        "CAS*PR*2*20".into(),
    ]
}

/// The reversal (CLP02 = 22) of [`paid_in_full`].
fn reversal_of_paid_in_full(pcn: &str, icn: &str) -> Vec<String> {
    vec![
        format!("CLP*{pcn}*22*-205*-150*-20*12*{icn}"),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "CAS*CO*45*-35".into(),
        "CAS*PR*2*-20".into(),
    ]
}

/// The fixture claim partly paid: $140 paid, CO-45 $40, CO-4 $25 denied and still owed.
fn partly_paid(pcn: &str, icn: &str) -> Vec<String> {
    vec![
        format!("CLP*{pcn}*1*205*140*0*12*{icn}"),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "CAS*CO*45*40".into(),
        "CAS*CO*4*25".into(),
    ]
}

/// A whole-claim denial (CLP02 = 4) for `group`-`carc`.
fn denied(pcn: &str, icn: &str, group: &str, carc: &str) -> Vec<String> {
    vec![
        format!("CLP*{pcn}*4*205*0*0*12*{icn}"),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        format!("CAS*{group}*{carc}*205"),
    ]
}

async fn post(
    api: &mut common::Client,
    trace: &str,
    payment: &str,
    clps: &[Vec<String>],
) -> pb::RemittanceResult {
    let body: Vec<&String> = clps.iter().flatten().collect();
    post_fixture_era(api, trace, payment, &body).await
}

async fn set_status(api: &mut common::Client, id: &str, status: pb::ClaimStatus) {
    api.update_claim_status(pb::UpdateClaimStatusRequest {
        claim_id: id.into(),
        status: status as i32,
        reason: "reconciled".into(),
        expected_version: 0,
    })
    .await
    .unwrap();
}

/// (status, balance, paid to date) of a claim.
fn money(c: &pb::Claim) -> (i32, i64, i64) {
    (c.status, c.balance_cents, c.paid_cents)
}

/// The events of the claims stream, decoded envelopes in stream order.
async fn stream_events(redis: &RedisPrefix) -> Vec<events::Envelope> {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("{}stream:claims", redis.prefix))
        .await
        .unwrap();
    entries
        .ids
        .iter()
        .map(|e| {
            let bytes: Vec<u8> = e.get("envelope").unwrap();
            events::Envelope::decode(bytes.as_slice()).unwrap()
        })
        .collect()
}

fn short_type(env: &events::Envelope) -> &str {
    env.event_type.trim_start_matches("arflow.events.v1.")
}

/// Waits until the stream holds `remittances` RemittancePosted events, then returns it.
async fn events_after(redis: &RedisPrefix, remittances: usize) -> Vec<events::Envelope> {
    eventually(Duration::from_secs(10), || async move {
        let all = stream_events(redis).await;
        let posted = all
            .iter()
            .filter(|e| short_type(e) == "RemittancePosted")
            .count();
        (posted == remittances).then_some(all)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_duplicate_denial_never_unpays_a_claim_until_its_payment_is_reversed() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let paid = new_claim(&mut api, "DUP-1").await;
    let partial = new_claim(&mut api, "DUP-2").await;
    let deductible = new_claim(&mut api, "DUP-3").await;
    post(
        &mut api,
        "DUP-PAY",
        "290",
        &[
            paid_in_full("DUP-1", "ICN-A"),
            partly_paid("DUP-2", "ICN-C"),
            vec![
                "CLP*DUP-3*1*205*0*205*12*ICN-E".into(),
                "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
                "CAS*PR*1*205".into(),
            ],
        ],
    )
    .await;
    assert_eq!(
        money(&get_claim(&mut api, &deductible.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 0),
        "adjudicated, all to the deductible"
    );
    let before = get_claim(&mut api, &paid.id).await;
    assert_eq!(money(&before), (pb::ClaimStatus::Paid as i32, 0, 15_000));
    assert_eq!(
        money(&get_claim(&mut api, &partial.id).await),
        (pb::ClaimStatus::PartiallyPaid as i32, 2_500, 14_000)
    );

    // The resubmitted copies are denied as duplicates (CO-18, OA-18) under their own ICNs.
    let r = post(
        &mut api,
        "DUP-DENY",
        "0",
        &[
            denied("DUP-1", "ICN-B", "CO", "18"),
            denied("DUP-2", "ICN-D", "OA", "18"),
            denied("DUP-3", "ICN-F", "CO", "18"),
        ],
    )
    .await;
    assert_eq!(r.claims.len(), 3);
    for (result, status) in r.claims.iter().zip([
        pb::ClaimStatus::Paid as i32,
        pb::ClaimStatus::PartiallyPaid as i32,
        pb::ClaimStatus::Paid as i32,
    ]) {
        assert_eq!(result.claim_status, status, "{result:?}");
        assert_eq!(result.denials.len(), 1, "the duplicate denial is recorded");
    }
    let after = get_claim(&mut api, &paid.id).await;
    assert_eq!(
        money(&after),
        (pb::ClaimStatus::Paid as i32, 0, 15_000),
        "a duplicate denial does not unpay a paid claim"
    );
    assert_eq!(
        after.payer_claim_control_number, "ICN-A",
        "the paid adjudication's number stays the claim's"
    );
    assert_eq!(
        money(&get_claim(&mut api, &partial.id).await),
        (pb::ClaimStatus::PartiallyPaid as i32, 2_500, 14_000),
        "nor a partially paid one"
    );
    assert_eq!(
        money(&get_claim(&mut api, &deductible.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 0),
        "nor one paid $0 (all deductible)"
    );
    for id in [&paid.id, &partial.id] {
        let duplicates: Vec<(i32, String)> = denials_of(&mut api, id)
            .await
            .into_iter()
            .filter(|d| d.reason_code == "18")
            .map(|d| (d.category, d.group_code))
            .collect();
        assert_eq!(duplicates.len(), 1, "recorded as a denial of the claim");
        assert_eq!(duplicates[0].0, pb::DenialCategory::Duplicate as i32);
    }

    // The payer reverses the payment (after an audit) and re-adjudicates it as a denial:
    // now the denial is accepted.
    let mut readjudicated = reversal_of_paid_in_full("DUP-1", "ICN-A");
    readjudicated.extend(denied("DUP-1", "ICN-A", "CO", "50"));
    let r = post(&mut api, "DUP-REVERSE", "-150", &[readjudicated]).await;
    assert!(r.claims[0].reversal);
    assert_eq!(
        money(&get_claim(&mut api, &paid.id).await),
        (pb::ClaimStatus::Denied as i32, 20_500, 0)
    );
    let payments = api
        .get_claim_payments(pb::GetClaimPaymentsRequest {
            claim_id: paid.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert_eq!(payments.len(), 4);
    assert_eq!(
        payments[2].reverses_payment_id, payments[0].id,
        "the reversal takes back the payment, not the duplicate denial"
    );
    let path: Vec<i32> = api
        .get_claim_history(pb::GetClaimHistoryRequest {
            claim_id: paid.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .iter()
        .map(|e| e.to_status)
        .collect();
    assert_eq!(
        path,
        [
            pb::ClaimStatus::Submitted as i32,
            pb::ClaimStatus::Paid as i32,
            pb::ClaimStatus::Pending as i32,
            pb::ClaimStatus::Denied as i32,
        ]
    );
    let categories: Vec<i32> = denials_of(&mut api, &paid.id)
        .await
        .iter()
        .map(|d| d.category)
        .collect();
    assert_eq!(categories.len(), 2, "the duplicate and the re-adjudication");
    assert!(categories.contains(&(pb::DenialCategory::Duplicate as i32)));
}

#[tokio::test]
async fn a_predetermination_posts_no_money() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let c = new_claim(&mut api, "PRE-1").await;
    let r = post(
        &mut api,
        "PRE-PRICE",
        "150",
        &[vec![
            "CLP*PRE-1*25*205*150*0*12*ICN-P".into(),
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
            "CAS*CO*45*55".into(),
        ]],
    )
    .await;
    assert_eq!(r.claims[0].claim_id, c.id);
    assert_eq!(r.claims[0].claim_status, pb::ClaimStatus::Submitted as i32);
    assert!(r.claims[0].denials.is_empty());
    let after = get_claim(&mut api, &c.id).await;
    assert_eq!(
        money(&after),
        (pb::ClaimStatus::Submitted as i32, 20_500, 0),
        "pricing only: no payment, no balance change, no status move"
    );
    assert_eq!(after.version, c.version, "the claim is untouched");
    assert_eq!(after.payer_claim_control_number, "");
    let payments = api
        .get_claim_payments(pb::GetClaimPaymentsRequest {
            claim_id: c.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert_eq!(payments.len(), 1, "recorded on the claim");
    assert_eq!(payments[0].status_code, "25");
    let db = Db::connect(&pg.url, 1).await.unwrap();
    let note: Option<String> = sqlx::query("SELECT note FROM claim_payments WHERE id = $1")
        .bind(payments[0].id.as_str())
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get("note")
        .unwrap();
    assert!(
        note.as_deref()
            .is_some_and(|n| n.contains("predetermination")),
        "{note:?}"
    );
    let events = events_after(&redis, 1).await;
    let after_creation: Vec<&str> = events
        .iter()
        .filter(|e| e.aggregate_id == c.id && e.aggregate_version > c.version)
        .map(short_type)
        .collect();
    assert!(
        after_creation.is_empty(),
        "no ClaimPaid, ClaimStatusChanged or ClaimDenied: {after_creation:?}"
    );
}

#[tokio::test]
async fn a_reversal_cancels_the_denials_it_undoes() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let denied_claim = new_claim(&mut api, "REV-1").await;
    let partial = new_claim(&mut api, "REV-2").await;
    let kept = new_claim(&mut api, "REV-3").await;
    let partial_with_line_denial = vec![
        "CLP*REV-2*1*205*140*0*12*ICN-S".to_string(),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "SVC*HC:90837:95*180*140**1".into(),
        "DTM*472*20260504".into(),
        "CAS*CO*45*40".into(),
        "SVC*HC:90785:95*25*0**1".into(),
        "DTM*472*20260504".into(),
        "CAS*CO*4*25".into(),
        "LQ*HE*M20".into(),
    ];
    post(
        &mut api,
        "REV-ADJ",
        "140",
        &[
            denied("REV-1", "ICN-R", "CO", "197"),
            partial_with_line_denial,
            denied("REV-3", "ICN-K", "CO", "197"),
        ],
    )
    .await;
    assert_eq!(denials_of(&mut api, &denied_claim.id).await.len(), 1);
    assert_eq!(denials_of(&mut api, &partial.id).await.len(), 1);
    assert_eq!(
        get_claim(&mut api, &denied_claim.id).await.status,
        pb::ClaimStatus::Denied as i32
    );

    // The payer reverses both adjudications and pays instead.
    let mut rev1 = vec![
        "CLP*REV-1*22*-205*0*0*12*ICN-R".to_string(),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "CAS*CO*197*-205".into(),
    ];
    rev1.extend(paid_in_full("REV-1", "ICN-R2"));
    let rev2 = vec![
        "CLP*REV-2*22*-205*-140*0*12*ICN-S".to_string(),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "CAS*CO*45*-40".into(),
        "CAS*CO*4*-25".into(),
        "CLP*REV-2*1*205*165*0*12*ICN-S".into(),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
        "CAS*CO*45*40".into(),
    ];
    let r = post(&mut api, "REV-REVERSE", "175", &[rev1, rev2]).await;
    assert!(r.claims[0].reversal && r.claims[2].reversal);
    assert_eq!(
        money(&get_claim(&mut api, &denied_claim.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 15_000)
    );
    assert_eq!(
        money(&get_claim(&mut api, &partial.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 16_500)
    );
    assert!(
        denials_of(&mut api, &denied_claim.id).await.is_empty(),
        "the reversed denial is no longer open"
    );
    assert!(denials_of(&mut api, &partial.id).await.is_empty());
    let open = api
        .list_denials(pb::ListDenialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .denials;
    assert_eq!(
        open.iter().map(|d| d.claim_id.as_str()).collect::<Vec<_>>(),
        [kept.id.as_str()],
        "a denial nobody reversed stays"
    );
    let summary = api
        .summarize_denials(pb::SummarizeDenialsRequest {
            denied_from: common::date(2026, 11, 1),
            denied_to: common::date(2026, 11, 30),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.total_count, summary.total_amount_cents),
        (1, 20_500)
    );
}

#[tokio::test]
async fn a_recoupment_reopens_a_closed_or_written_off_claim() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let closed = new_claim(&mut api, "REO-1").await;
    let written_off = new_claim(&mut api, "REO-2").await;
    post(
        &mut api,
        "REO-PAY",
        "290",
        &[
            paid_in_full("REO-1", "ICN-1"),
            partly_paid("REO-2", "ICN-2"),
        ],
    )
    .await;
    set_status(&mut api, &closed.id, pb::ClaimStatus::Closed).await;
    set_status(&mut api, &written_off.id, pb::ClaimStatus::WrittenOff).await;

    let r = post(
        &mut api,
        "REO-TAKEBACK",
        "-290",
        &[
            reversal_of_paid_in_full("REO-1", "ICN-1"),
            vec![
                "CLP*REO-2*22*-205*-140*0*12*ICN-2".into(),
                "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into(),
                "CAS*CO*45*-40".into(),
                "CAS*CO*4*-25".into(),
            ],
        ],
    )
    .await;
    for c in &r.claims {
        assert_eq!(c.claim_status, pb::ClaimStatus::Pending as i32, "{c:?}");
    }
    assert_eq!(
        money(&get_claim(&mut api, &closed.id).await),
        (pb::ClaimStatus::Pending as i32, 20_500, 0),
        "the money taken back is owed again"
    );
    assert_eq!(
        money(&get_claim(&mut api, &written_off.id).await),
        (pb::ClaimStatus::Pending as i32, 20_500, 0)
    );
    let history = api
        .get_claim_history(pb::GetClaimHistoryRequest {
            claim_id: closed.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let last = history.last().unwrap();
    assert_eq!(
        (last.from_status, last.to_status),
        (
            pb::ClaimStatus::Closed as i32,
            pb::ClaimStatus::Pending as i32
        )
    );

    // AR follow-up learns it: ClaimStatusChanged to an open status, with the balance owed.
    let events = events_after(&redis, 2).await;
    let mut reopened: BTreeMap<String, (String, String, i64)> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| short_type(e) == "ClaimStatusChanged")
    {
        let p = events::ClaimStatusChanged::decode(e.payload.as_slice()).unwrap();
        if p.to_status == pb::ClaimStatus::Pending.as_str_name() {
            reopened.insert(p.claim_id, (p.from_status, p.to_status, p.balance_cents));
        }
    }
    assert_eq!(
        reopened
            .get(&closed.id)
            .map(|(from, _, b)| (from.as_str(), *b)),
        Some((pb::ClaimStatus::Closed.as_str_name(), 20_500))
    );
    assert_eq!(
        reopened
            .get(&written_off.id)
            .map(|(from, _, b)| (from.as_str(), *b)),
        Some((pb::ClaimStatus::WrittenOff.as_str_name(), 20_500))
    );
}
