//! Timers from claim events to TimerFired, on both backends: aging timers from ClaimSubmitted
//! fire once on the simulated clock and a payment cancels the rest; replicas racing on one
//! Postgres fire each timer exactly once; a timer due while no replica ran fires on start;
//! redelivery, reordering, denials and recurring status checks at the handler.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::HashSet;

use arflow_api::events::v1 as events;
use arflow_domain::ClaimStatus;
use arflow_domain::projection::ClaimFacts;
use arflow_platform::Clock;
use arflow_scheduler::jobs::timers;
use arflow_scheduler::store::{self, NewTimer, TimerPayload};
use arflow_testkit::eventually;
use chrono::{NaiveDate, TimeDelta, Utc};
use common::{
    Env, Kind, WAIT, apply, at, date, paid, projection_of, settings, submitted_payload, ymd,
};

async fn aging_fires_once_and_payment_cancels_the_rest(kind: Kind) {
    let env = Env::new(kind).await;
    // Three simulated days per real second: day 30 comes after 10 s, day 60 after 20 s, which
    // leaves a loaded machine 10 s to deliver the payment in between.
    let t0 = at("2026-01-05T00:00:00Z");
    let clock = Clock::simulated(t0, Utc::now(), 3.0 * 86_400.0);
    let mut replica = env.replica("scheduler-a", clock.clone(), settings()).await;
    replica.start();
    env.submit("t1", "claim-1", ymd(2026, 1, 5), t0).await;

    let kinds = eventually(WAIT, || async {
        let timers = env.timers_of("claim-1").await;
        (timers.len() >= 5).then_some(timers)
    })
    .await
    .unwrap();
    let names: HashSet<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "aging_30",
        "aging_60",
        "aging_90",
        "status_check",
        "timely_filing_warning",
    ] {
        assert!(names.contains(k), "{k} set: {kinds:?}");
    }

    // Day 30 passes on the simulated clock: aging_30 fires.
    eventually(WAIT, || async {
        env.timers_of("claim-1")
            .await
            .contains(&("aging_30".into(), "fired".into()))
            .then_some(())
    })
    .await
    .unwrap();
    assert!(
        clock.now() < t0 + TimeDelta::days(60),
        "the test ran too slowly"
    );

    // Paid in full before day 60: everything left is cancelled.
    env.publish_claim_event(
        "t1",
        "claim-1",
        2,
        clock.now(),
        &events::ClaimPaid {
            claim_id: "claim-1".into(),
            clinic_id: "clinic-1".into(),
            payer_id: "87726".into(),
            remittance_id: "r1".into(),
            paid_cents: 15_000,
            balance_cents: 0,
            status: "CLAIM_STATUS_PAID".into(),
            payment_date: Some(date(clock.today())),
        },
    )
    .await;
    let after = eventually(WAIT, || async {
        let timers = env.timers_of("claim-1").await;
        timers.iter().all(|(_, s)| s != "pending").then_some(timers)
    })
    .await
    .unwrap();
    assert!(
        after.contains(&("aging_60".into(), "cancelled".into())),
        "{after:?}"
    );
    assert!(
        after.contains(&("aging_90".into(), "cancelled".into())),
        "{after:?}"
    );

    let fired = env.fired_events().await;
    let aging_30: Vec<_> = fired.iter().filter(|(_, k)| k == "aging_30").collect();
    assert_eq!(aging_30.len(), 1, "aging_30 fired exactly once: {fired:?}");
    assert!(
        !fired
            .iter()
            .any(|(_, k)| k == "aging_60" || k == "aging_90")
    );
    let ids: HashSet<&String> = fired.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), fired.len(), "no timer fired twice");
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aging_fires_once_and_payment_cancels_the_rest_postgres() {
    aging_fires_once_and_payment_cancels_the_rest(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aging_fires_once_and_payment_cancels_the_rest_sqlite() {
    aging_fires_once_and_payment_cancels_the_rest(Kind::Sqlite).await;
}

async fn insert_due_timers(env: &Env, n: usize, first_due: chrono::DateTime<Utc>) {
    let timers: Vec<NewTimer> = (0..n)
        .map(|i| NewTimer {
            tenant_id: format!("t{}", i % 3),
            subject: format!("claim-{i}"),
            kind: "aging_30".into(),
            due_at: first_due + TimeDelta::seconds(i as i64),
            clinic_id: "clinic-1".into(),
            payload: TimerPayload {
                threshold_days: Some(30),
                ..TimerPayload::default()
            },
        })
        .collect();
    let mut tx = env.db.begin().await.unwrap();
    store::insert_timers(&mut tx, &timers, first_due)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_fire_each_timer_exactly_once() {
    let env = Env::new(Kind::Postgres).await;
    let n = 3_000;
    insert_due_timers(&env, n, at("2026-01-01T00:00:00Z")).await;
    let clock = Clock::simulated(at("2026-06-01T00:00:00Z"), Utc::now(), 1.0);
    let small_batches = arflow_scheduler::Settings {
        fire_batch_size: 50,
        ..settings()
    };
    let mut replicas = Vec::new();
    for name in ["scheduler-a", "scheduler-b", "scheduler-c"] {
        let mut r = env
            .replica(name, clock.clone(), small_batches.clone())
            .await;
        r.start();
        replicas.push(r);
    }
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM scheduler_timers WHERE state = 'pending'")
            .await
            == 0)
            .then_some(())
    })
    .await
    .unwrap();
    for r in &mut replicas {
        r.stop().await;
    }
    let fired = env.fired_events().await;
    let ids: HashSet<&String> = fired.iter().map(|(id, _)| id).collect();
    assert_eq!(fired.len(), n, "one TimerFired per timer");
    assert_eq!(ids.len(), n, "no timer fired twice");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM scheduler_timers WHERE state = 'fired'")
            .await,
        n as i64
    );
}

async fn timer_due_while_no_replica_ran_fires_on_start(kind: Kind) {
    let env = Env::new(kind).await;
    let now = at("2026-04-01T12:00:00Z");
    // Set while every replica was down: one missed three days ago, one due next year.
    let mut tx = env.db.begin().await.unwrap();
    let timer = |subject: &str, due| NewTimer {
        tenant_id: "t1".into(),
        subject: subject.into(),
        kind: "follow_up".into(),
        due_at: due,
        clinic_id: String::new(),
        payload: TimerPayload::default(),
    };
    store::insert_timers(
        &mut tx,
        &[
            timer("missed", now - TimeDelta::days(3)),
            timer("later", now + TimeDelta::days(365)),
        ],
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut replica = env
        .replica(
            "scheduler-a",
            Clock::simulated(now, Utc::now(), 1.0),
            settings(),
        )
        .await;
    replica.start();
    eventually(WAIT, || async {
        (env.timers_of("missed").await == [("follow_up".to_string(), "fired".to_string())])
            .then_some(())
    })
    .await
    .unwrap();
    replica.stop().await;
    assert_eq!(env.timers_of("later").await[0].1, "pending");
    assert_eq!(env.fired_events().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_due_while_no_replica_ran_fires_on_start_postgres() {
    timer_due_while_no_replica_ran_fires_on_start(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_due_while_no_replica_ran_fires_on_start_sqlite() {
    timer_due_while_no_replica_ran_fires_on_start(Kind::Sqlite).await;
}

async fn handler_is_idempotent_and_tolerates_reordering(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock, settings()).await;
    let handler = replica.scheduler.handler();
    let submitted = submitted_payload("c1", ymd(2026, 1, 5));

    // Redelivered under another event id: the unique key keeps one set of timers.
    apply(&env, &handler, "c1", 1, &submitted).await;
    apply(&env, &handler, "c1", 1, &submitted).await;
    // Aging 30/60/90, the first status check, timely-filing warnings 30, 14 and 7 days ahead.
    assert_eq!(env.timers_of("c1").await.len(), 7);

    // Paid (version 3) arrives before the submission (version 1): no timers.
    apply(&env, &handler, "c2", 3, &paid("c2", 0, "CLAIM_STATUS_PAID")).await;
    apply(
        &env,
        &handler,
        "c2",
        1,
        &submitted_payload("c2", ymd(2026, 1, 5)),
    )
    .await;
    assert!(env.timers_of("c2").await.is_empty());

    // A partial payment keeps the follow-up going; a stale status does not reopen anything.
    // The payer adjudicated the claim, so it was filed: no more timely-filing warnings.
    apply(
        &env,
        &handler,
        "c1",
        2,
        &paid("c1", 5_000, "CLAIM_STATUS_PARTIALLY_PAID"),
    )
    .await;
    assert!(
        env.timers_of("c1")
            .await
            .iter()
            .all(|(k, s)| s == "pending" || k == "timely_filing_warning")
    );
    apply(
        &env,
        &handler,
        "c1",
        3,
        &events::ClaimStatusChanged {
            claim_id: "c1".into(),
            clinic_id: "clinic-1".into(),
            payer_id: "87726".into(),
            from_status: "CLAIM_STATUS_PARTIALLY_PAID".into(),
            to_status: "CLAIM_STATUS_WRITTEN_OFF".into(),
            reason: "small balance".into(),
            balance_cents: 5_000,
            replaced_by_claim_id: String::new(),
        },
    )
    .await;
    assert!(
        env.timers_of("c1")
            .await
            .iter()
            .all(|(_, s)| s == "cancelled")
    );
    // A reversal reopens the claim (version 4): its future timers come back.
    apply(
        &env,
        &handler,
        "c1",
        4,
        &events::ClaimStatusChanged {
            claim_id: "c1".into(),
            clinic_id: "clinic-1".into(),
            payer_id: "87726".into(),
            from_status: "CLAIM_STATUS_WRITTEN_OFF".into(),
            to_status: "CLAIM_STATUS_PENDING".into(),
            reason: "reopened".into(),
            balance_cents: 5_000,
            replaced_by_claim_id: String::new(),
        },
    )
    .await;
    assert!(
        env.timers_of("c1")
            .await
            .iter()
            .all(|(k, s)| s == "pending" || k == "timely_filing_warning")
    );
    // An older event after that changes nothing.
    apply(&env, &handler, "c1", 2, &paid("c1", 0, "CLAIM_STATUS_PAID")).await;
    assert!(
        env.timers_of("c1")
            .await
            .iter()
            .all(|(k, s)| s == "pending" || k == "timely_filing_warning")
    );

    // Corrected and submitted again on Feb 10 (version 5): the status checks restart from the
    // new submission; aging keeps counting from the original bill date, Jan 5. (The partial
    // payment proved timely filing, so no filing warning comes back.)
    apply(
        &env,
        &handler,
        "c1",
        5,
        &events::ClaimSubmitted {
            submission_date: Some(date(ymd(2026, 2, 10))),
            first_service_date: Some(date(ymd(2026, 1, 5))),
            balance_cents: 5_000,
            ..submitted_payload("c1", ymd(2026, 1, 5))
        },
    )
    .await;
    let pending: Vec<store::StoredTimer> = store::list_timers(
        &env.db,
        &store::TenantId::new("t1"),
        &store::TimerFilter {
            subject: Some("c1".into()),
            state: Some(store::TimerState::Pending),
            ..Default::default()
        },
        20,
    )
    .await
    .unwrap();
    let kinds: Vec<(&str, NaiveDate)> = pending
        .iter()
        .map(|t| (t.kind.as_str(), t.due_at.date_naive()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("aging_30", ymd(2026, 2, 4)),
            // 14 business days from Tue Feb 10, skipping Presidents' Day (Feb 16).
            ("status_check", ymd(2026, 3, 3)),
            ("aging_60", ymd(2026, 3, 6)),
            ("aging_90", ymd(2026, 4, 5)),
        ]
    );

    // An appealable denial gets its appeal-deadline warning (Medicare: 120 days, warned 14
    // days ahead).
    apply(
        &env,
        &handler,
        "c3",
        2,
        &events::ClaimDenied {
            claim_id: "c3".into(),
            clinic_id: "clinic-1".into(),
            payer_id: "medicare".into(),
            denial_id: "d1".into(),
            category: "DENIAL_CATEGORY_AUTHORIZATION".into(),
            group_code: "CO".into(),
            reason_code: "197".into(),
            appealable: true,
            amount_cents: 12_000,
            balance_cents: 12_000,
            denial_date: Some(date(ymd(2026, 2, 2))),
            ..Default::default()
        },
    )
    .await;
    let warnings = store::list_timers(
        &env.db,
        &store::TenantId::new("t1"),
        &store::TimerFilter {
            subject: Some("c3".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    // Beside it, the corrected-claim warning (Medicare: a reopening within 365 days).
    assert_eq!(warnings.len(), 2);
    assert_eq!(warnings[0].kind, "appeal_deadline_warning");
    assert_eq!(warnings[0].payload.deadline.as_deref(), Some("2026-06-02"));
    assert_eq!(warnings[0].payload.denial_id.as_deref(), Some("d1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_is_idempotent_and_tolerates_reordering_postgres() {
    handler_is_idempotent_and_tolerates_reordering(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_is_idempotent_and_tolerates_reordering_sqlite() {
    handler_is_idempotent_and_tolerates_reordering(Kind::Sqlite).await;
}

/// Out of order, and with several events at one version, the projection ends at the newest
/// version's state (`ClaimFacts::merge`) and learns the dates a stale submission carries; a
/// write of an older version (a replica that read before a newer event) does not overwrite it.
async fn projection_keeps_the_newest_version(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock, settings()).await;
    let handler = replica.scheduler.handler();
    let accepted = events::ClaimStatusChanged {
        claim_id: "c5".into(),
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        from_status: "CLAIM_STATUS_SUBMITTED".into(),
        to_status: "CLAIM_STATUS_ACCEPTED".into(),
        reason: String::new(),
        balance_cents: 15_000,
        replaced_by_claim_id: String::new(),
    };
    apply(&env, &handler, "c5", 3, &accepted).await;
    apply(
        &env,
        &handler,
        "c5",
        1,
        &submitted_payload("c5", ymd(2026, 1, 5)),
    )
    .await;
    apply(&env, &handler, "c5", 2, &paid("c5", 0, "CLAIM_STATUS_PAID")).await;
    // Published with the status change (same version): names no status, says the balance.
    apply(
        &env,
        &handler,
        "c5",
        3,
        &events::ClaimDenied {
            claim_id: "c5".into(),
            clinic_id: "clinic-1".into(),
            payer_id: "87726".into(),
            denial_id: "d5".into(),
            balance_cents: 9_000,
            ..Default::default()
        },
    )
    .await;
    let newest = ClaimFacts {
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        status: Some(ClaimStatus::Accepted),
        balance_cents: 9_000,
        submission_date: Some(ymd(2026, 1, 5)),
        first_service_date: Some(ymd(2026, 1, 5)),
        version: 3,
    };
    let projected = projection_of(&env, "c5").await;
    assert_eq!(projected.facts, newest);
    assert!(!env.timers_of("c5").await.is_empty());
    let mut tx = env.db.begin().await.unwrap();
    store::upsert_claim(
        &mut tx,
        &store::ProjectedClaim {
            facts: ClaimFacts {
                status: Some(ClaimStatus::Paid),
                balance_cents: 0,
                version: 2,
                ..newest.clone()
            },
            ..projected
        },
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(projection_of(&env, "c5").await.facts, newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_keeps_the_newest_version_postgres() {
    projection_keeps_the_newest_version(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_keeps_the_newest_version_sqlite() {
    projection_keeps_the_newest_version(Kind::Sqlite).await;
}

async fn status_checks_recur_in_business_days(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let s = settings();
    let replica = env.replica("scheduler-a", clock, s.clone()).await;
    let handler = replica.scheduler.handler();
    apply(
        &env,
        &handler,
        "c1",
        1,
        &submitted_payload("c1", ymd(2026, 1, 5)),
    )
    .await;
    let checks = |state: &'static str| {
        let db = env.db.clone();
        async move {
            store::list_timers(
                &db,
                &store::TenantId::new("t1"),
                &store::TimerFilter {
                    kind: Some("status_check".into()),
                    state: Some(match state {
                        "pending" => store::TimerState::Pending,
                        _ => store::TimerState::Fired,
                    }),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap()
        }
    };
    let first = checks("pending").await;
    // 14 business days after Mon Jan 5 2026, skipping MLK day: Mon Jan 26, midnight New York.
    assert_eq!(first[0].due_at, at("2026-01-26T05:00:00Z"));
    // Fire everything due by Jan 27: the first check fires and sets the second, 14 business
    // days later: Feb 13.
    let fired = timers::fire_due(&env.db, &s, at("2026-01-27T00:00:00Z"), 100)
        .await
        .unwrap();
    assert_eq!(fired, 1);
    let next = checks("pending").await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].payload.sequence, Some(2));
    assert_eq!(next[0].due_at, at("2026-02-13T05:00:00Z"));
    // Firing again at the same instant fires nothing.
    assert_eq!(
        timers::fire_due(&env.db, &s, at("2026-01-27T00:00:00Z"), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(env.fired_events().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_checks_recur_in_business_days_postgres() {
    status_checks_recur_in_business_days(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_checks_recur_in_business_days_sqlite() {
    status_checks_recur_in_business_days(Kind::Sqlite).await;
}

/// A replica that dies mid-round (its transaction holds claimed timers and never commits)
/// loses nothing: the others skip its locked timers meanwhile, and fire them once its
/// transaction is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_killed_mid_round_loses_nothing() {
    let env = Env::new(Kind::Postgres).await;
    let n = 400;
    insert_due_timers(&env, n, at("2026-01-01T00:00:00Z")).await;
    // The dying replica: claims the first 100 due timers as a firing round does, then hangs.
    let mut dying = env.db.begin().await.unwrap();
    let held = sqlx::query(
        "UPDATE scheduler_timers SET state = 'fired', fired_at = 0 WHERE id IN \
         (SELECT id FROM scheduler_timers WHERE state = 'pending' ORDER BY due_at LIMIT 100 \
         FOR UPDATE SKIP LOCKED) RETURNING id",
    )
    .fetch_all(&mut *dying)
    .await
    .unwrap();
    assert_eq!(held.len(), 100);

    let clock = Clock::simulated(at("2026-06-01T00:00:00Z"), Utc::now(), 1.0);
    let mut survivor = env.replica("scheduler-b", clock, settings()).await;
    survivor.start();
    // Everything but the held 100 fires while the dying round holds them.
    eventually(WAIT, || async {
        (env.fired_events().await.len() == n - 100).then_some(())
    })
    .await
    .unwrap();
    // The process dies: its transaction rolls back, and its timers are due again.
    drop(dying);
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM scheduler_timers WHERE state = 'pending'")
            .await
            == 0)
            .then_some(())
    })
    .await
    .unwrap();
    survivor.stop().await;
    let fired = env.fired_events().await;
    let ids: HashSet<&String> = fired.iter().map(|(id, _)| id).collect();
    assert_eq!(
        (fired.len(), ids.len()),
        (n, n),
        "each timer fired exactly once"
    );
}
