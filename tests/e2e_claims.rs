//! End-to-end: the claims API of a real `arflow serve` on Postgres + Redis, through gRPC only.
#![allow(clippy::unwrap_used)]

mod common;

use arflow_api::claims::v1 as pb;
use arflow_testkit::{PgDatabase, RedisPrefix};
use common::{Server, claim, create, date};
use tonic::Code;
use tonic_types::StatusExt as _;

async fn server() -> (Server, PgDatabase, RedisPrefix) {
    let db = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&db, &redis));
    (server, db, redis)
}

fn violations(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn create_get_list_import_update_and_history() {
    let (server, _db, _redis) = server().await;
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    let created = api
        .create_claim(create(claim("clinic-a", "PCN-1"), "req-1"))
        .await
        .unwrap()
        .into_inner();
    let c = created.claim.unwrap();
    assert!(!created.replayed);
    assert_eq!(c.tenant_id, "acme");
    assert_eq!(c.status, pb::ClaimStatus::Submitted as i32);
    assert_eq!(c.total_charge_cents, 20_500);
    assert_eq!(c.balance_cents, 20_500);
    assert_eq!(
        c.diagnoses,
        vec!["F411", "F331"],
        "ICD-10 stored without dots, as X12 carries them"
    );
    assert_eq!(
        c.service_lines
            .iter()
            .map(|l| l.line_number)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(c.version, 1);

    let got = api
        .get_claim(pb::GetClaimRequest {
            claim_id: c.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(got, c);

    // Bulk: four good claims and one bad one in the middle; the good ones are kept.
    let mut items = Vec::new();
    for i in 0..5 {
        let mut cl = claim(
            if i % 2 == 0 { "clinic-a" } else { "clinic-b" },
            &format!("BULK-{i}"),
        );
        cl.payer = Some(pb::Payer {
            id: if i < 3 {
                "87726".into()
            } else {
                "60054".into()
            },
            name: "Payer".into(),
        });
        if i == 2 {
            cl.service_lines[0].procedure_code = "9083".into();
        }
        items.push(pb::ImportClaimsRequest {
            request_id: format!("bulk-{i}"),
            claim: Some(cl),
        });
    }
    let report = api
        .import_claims(tokio_stream::iter(items.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.accepted_count, report.rejected_count), (4, 1));
    assert_eq!(report.results.len(), 5);
    let bad = &report.results[2];
    assert!(!bad.accepted);
    assert_eq!(
        bad.field_violations[0].field,
        "claim.service_lines[0].procedure_code"
    );
    assert!(
        report
            .results
            .iter()
            .enumerate()
            .all(|(i, r)| r.index == i as i32)
    );

    // Re-sending the same stream replays: nothing new is created.
    let again = api
        .import_claims(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.accepted_count, 4);
    assert!(
        again
            .results
            .iter()
            .filter(|r| r.accepted)
            .all(|r| r.replayed)
    );
    for (a, b) in report.results.iter().zip(again.results.iter()) {
        assert_eq!(a.claim_id, b.claim_id);
    }

    // Listing: filters and pages.
    let all = list(&mut api, pb::ListClaimsRequest::default()).await;
    assert_eq!(all.len(), 5);
    let aetna = list(
        &mut api,
        pb::ListClaimsRequest {
            payer_id: "60054".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(aetna.len(), 2);
    let clinic_b = list(
        &mut api,
        pb::ListClaimsRequest {
            clinic_id: "clinic-b".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(clinic_b.len(), 2);
    let none = list(
        &mut api,
        pb::ListClaimsRequest {
            min_balance_cents: 1_000_000,
            ..Default::default()
        },
    )
    .await;
    assert!(none.is_empty());
    let in_range = list(
        &mut api,
        pb::ListClaimsRequest {
            submitted_from: date(2026, 5, 6),
            submitted_to: date(2026, 5, 6),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(in_range.len(), 5);
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_claims(pb::ListClaimsRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.claims.len() <= 2);
        pages.extend(page.claims.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted = pages.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(pages, sorted, "newest first, no duplicates across pages");
    assert_eq!(pages.len(), 5);

    // Lifecycle through the state machine.
    let set = |status: pb::ClaimStatus| pb::UpdateClaimStatusRequest {
        claim_id: c.id.clone(),
        status: status as i32,
        reason: "277CA A2".into(),
        expected_version: 0,
    };
    let accepted = api
        .update_claim_status(set(pb::ClaimStatus::Accepted))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(
        (accepted.status, accepted.version),
        (pb::ClaimStatus::Accepted as i32, 2)
    );
    api.update_claim_status(set(pb::ClaimStatus::Paid))
        .await
        .unwrap();
    let err = api
        .update_claim_status(set(pb::ClaimStatus::Draft))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("paid") && err.message().contains("draft"),
        "{}",
        err.message()
    );
    let stale = pb::UpdateClaimStatusRequest {
        expected_version: 1,
        ..set(pb::ClaimStatus::Closed)
    };
    assert_eq!(
        api.update_claim_status(stale).await.unwrap_err().code(),
        Code::Aborted
    );

    let history = api
        .get_claim_history(pb::GetClaimHistoryRequest {
            claim_id: c.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let steps: Vec<(i32, i32)> = history
        .entries
        .iter()
        .map(|e| (e.from_status, e.to_status))
        .collect();
    assert_eq!(
        steps,
        vec![
            (0, pb::ClaimStatus::Submitted as i32),
            (
                pb::ClaimStatus::Submitted as i32,
                pb::ClaimStatus::Accepted as i32
            ),
            (
                pb::ClaimStatus::Accepted as i32,
                pb::ClaimStatus::Paid as i32
            ),
        ]
    );
    assert!(history.entries.iter().all(|e| e.actor.starts_with("key:")));
}

async fn list(api: &mut common::Client, req: pb::ListClaimsRequest) -> Vec<pb::Claim> {
    api.list_claims(req).await.unwrap().into_inner().claims
}

#[tokio::test]
async fn bad_input_is_refused_with_field_violations_and_keeps_nothing() {
    let (server, _db, _redis) = server().await;
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    let mut bad = claim("clinic-a", "BAD-1");
    bad.rendering_provider.as_mut().unwrap().npi = "1234567890".into(); // wrong check digit
    bad.service_lines[0].service_date = date(2026, 7, 1); // after the simulated today
    bad.service_lines[1].procedure_code = "ABCDE".into();
    bad.service_lines[1].diagnosis_pointers = vec![5];
    bad.service_lines[0].charge_cents = -5;
    bad.diagnoses.push("not-a-code".into());
    bad.patient.as_mut().unwrap().birth_date = date(1988, 2, 30);
    let err = api.create_claim(create(bad, "bad-1")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = violations(&err);
    for expected in [
        "claim.rendering_provider.npi",
        "claim.service_lines[0].service_date",
        "claim.service_lines[1].procedure_code",
        "claim.service_lines[1].diagnosis_pointers[0]",
        "claim.service_lines[0].charge_cents",
        "claim.diagnoses[2]",
        "claim.patient.birth_date",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "missing {expected} in {fields:?}"
        );
    }
    // No patient data in the error a partner's logs will keep.
    let details = format!("{err:?}");
    for phi in ["Jordan", "Rivera", "UHC123456789", "F41", "1988"] {
        assert!(!details.contains(phi), "error leaks {phi}");
    }

    let missing = api
        .create_claim(create(claim("clinic-a", "X"), ""))
        .await
        .unwrap_err();
    assert_eq!(violations(&missing), vec!["request_id"]);
    let empty = api
        .create_claim(pb::CreateClaimRequest {
            request_id: "e".into(),
            claim: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&empty), vec!["claim"]);

    assert!(
        list(&mut api, pb::ListClaimsRequest::default())
            .await
            .is_empty(),
        "nothing was stored"
    );
    let bad_token = pb::ListClaimsRequest {
        page_token: "zz".into(),
        ..Default::default()
    };
    assert_eq!(
        api.list_claims(bad_token).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn retries_are_idempotent_and_reuse_is_refused() {
    let (server, _db, _redis) = server().await;
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let first = api
        .create_claim(create(claim("clinic-a", "PCN-9"), "r-9"))
        .await
        .unwrap()
        .into_inner();
    let retry = api
        .create_claim(create(claim("clinic-a", "PCN-9"), "r-9"))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(first.claim.unwrap().id, retry.claim.unwrap().id);

    let mut changed = claim("clinic-a", "PCN-9");
    changed.service_lines[0].charge_cents = 1;
    let reuse = api.create_claim(create(changed, "r-9")).await.unwrap_err();
    assert_eq!(reuse.code(), Code::InvalidArgument);
    assert_eq!(violations(&reuse), vec!["request_id"]);

    let dup = api
        .create_claim(create(claim("clinic-a", "PCN-9"), "r-10"))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    // The same patient control number at another clinic is another claim.
    api.create_claim(create(claim("clinic-b", "PCN-9"), "r-11"))
        .await
        .unwrap();
    assert_eq!(
        list(&mut api, pb::ListClaimsRequest::default()).await.len(),
        2
    );

    // Concurrent retries of one request create one claim.
    let mut handles = Vec::new();
    for _ in 0..6 {
        let mut api = api.clone();
        handles.push(tokio::spawn(async move {
            api.create_claim(create(claim("clinic-c", "RACE"), "race"))
                .await
                .unwrap()
                .into_inner()
                .claim
                .unwrap()
                .id
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one claim for one request id");
}

#[tokio::test]
async fn tenants_and_clinic_scopes_are_isolated() {
    let (server, _db, _redis) = server().await;
    let mut acme = server.client(&server.key("acme", "partner", &[])).await;
    let mut other = server.client(&server.key("globex", "admin", &[])).await;
    let mut clinic_b_only = server
        .client(&server.key("acme", "specialist", &["clinic-b"]))
        .await;

    let a = acme
        .create_claim(create(claim("clinic-a", "T-1"), "t-1"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let b = acme
        .create_claim(create(claim("clinic-b", "T-2"), "t-2"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();

    let foreign = other
        .get_claim(pb::GetClaimRequest {
            claim_id: a.id.clone(),
        })
        .await
        .unwrap_err();
    let missing = other
        .get_claim(pb::GetClaimRequest {
            claim_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    assert_eq!(
        (foreign.code(), foreign.message()),
        (missing.code(), missing.message()),
        "indistinguishable"
    );
    assert!(
        list(&mut other, pb::ListClaimsRequest::default())
            .await
            .is_empty()
    );
    let upd = pb::UpdateClaimStatusRequest {
        claim_id: a.id.clone(),
        status: pb::ClaimStatus::Denied as i32,
        ..Default::default()
    };
    assert_eq!(
        other
            .update_claim_status(upd.clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        other
            .get_claim_history(pb::GetClaimHistoryRequest {
                claim_id: a.id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // The same request id in another tenant is another request.
    other
        .create_claim(create(claim("clinic-a", "T-1"), "t-1"))
        .await
        .unwrap();

    // A key limited to clinic-b sees clinic-b only.
    let seen: Vec<String> = list(&mut clinic_b_only, pb::ListClaimsRequest::default())
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(seen, vec![b.id.clone()]);
    assert_eq!(
        clinic_b_only
            .get_claim(pb::GetClaimRequest {
                claim_id: a.id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        clinic_b_only
            .update_claim_status(upd)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let outside = clinic_b_only
        .create_claim(create(claim("clinic-a", "T-3"), "t-3"))
        .await
        .unwrap_err();
    assert_eq!(violations(&outside), vec!["claim.clinic_id"]);

    // No key, a made-up key: UNAUTHENTICATED.
    let mut anonymous = common::connect(&server.grpc, None).await;
    assert_eq!(
        anonymous
            .get_claim(pb::GetClaimRequest {
                claim_id: a.id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let mut forged = common::connect(&server.grpc, Some("afk_nope_0000")).await;
    assert_eq!(
        forged
            .list_claims(pb::ListClaimsRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn graceful_shutdown_exits_cleanly() {
    let (mut server, _db, _redis) = server().await;
    let mut api = server.client(&server.key("acme", "admin", &[])).await;
    api.create_claim(create(claim("clinic-a", "S-1"), "s-1"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let status = server.stop().await;
    assert!(
        status.success(),
        "arflow exited with {status:?} after SIGTERM"
    );
    // Nothing was in flight: the drain ends as soon as connections close, well before the
    // 5 s drain deadline of the test config.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "drain took {:?}",
        started.elapsed()
    );
}
