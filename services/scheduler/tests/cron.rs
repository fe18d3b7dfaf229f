//! Cron jobs run exactly once per scheduled instant across replicas, in the tenant's time
//! zone, and catch up without gaps: three replicas on one Postgres, a simulated clock at a day
//! per 200 ms.
#![allow(clippy::unwrap_used)]
mod common;

use arflow_api::events::v1 as events;
use arflow_domain::followup::{AgingBasis, AgingPolicy};
use arflow_domain::projection::ClaimFacts;
use arflow_domain::{ClaimStatus, DenialCategory};
use arflow_platform::Clock;
use arflow_platform::bus;
use arflow_scheduler::jobs::cron as cron_jobs;
use arflow_scheduler::store::{self, TenantId};
use arflow_testkit::eventually;
use chrono::{NaiveDate, TimeDelta, Timelike as _, Utc};
use common::{Env, Kind, WAIT, at, settings};
use sqlx::Row as _;

async fn snapshot_events(env: &Env) -> Vec<events::AgingSnapshotTaken> {
    sqlx::query(
        "SELECT envelope, events FROM bus_outbox WHERE event_type = 'arflow.events.v1.AgingSnapshotTaken' \
         ORDER BY seq",
    )
    .fetch_all(env.db.pool())
    .await
    .unwrap()
    .iter()
    .flat_map(|r| bus::outbox_envelopes(&r.get::<Vec<u8>, _>("envelope"), r.get("events")).unwrap())
    .map(|e| bus::decode_payload(&e).unwrap())
    .collect()
}

async fn cron_runs_once_per_instant(kind: Kind, replicas: usize) {
    let env = Env::new(kind).await;
    let start = at("2026-03-01T00:00:00Z");
    let tenant = TenantId::new("t-cron");
    store::set_policy(
        &env.db,
        &tenant,
        &AgingPolicy {
            basis: AgingBasis::Submission,
            thresholds_days: vec![30, 60, 90],
            time_zone: chrono_tz::America::Chicago,
        },
        start,
    )
    .await
    .unwrap();
    // One open claim submitted Jan 10 (about 50 days old) and one paid.
    let mut tx = env.db.begin().await.unwrap();
    for (id, status, balance) in [
        ("c-open", ClaimStatus::Accepted, 12_500),
        ("c-paid", ClaimStatus::Paid, 0),
    ] {
        store::upsert_claim(
            &mut tx,
            &store::ProjectedClaim {
                tenant_id: "t-cron".into(),
                claim_id: id.into(),
                facts: ClaimFacts {
                    clinic_id: "clinic-1".into(),
                    payer_id: "87726".into(),
                    status: Some(status),
                    submission_date: NaiveDate::from_ymd_opt(2026, 1, 10),
                    first_service_date: NaiveDate::from_ymd_opt(2026, 1, 10),
                    balance_cents: balance,
                    version: 1,
                },
                first_submission_date: None,
                filed_on: None,
            },
            start,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    // A day per 200 ms of real time; every replica polls every 20 ms.
    let clock = Clock::simulated(start, Utc::now(), 5.0 * 86_400.0);
    let fast = arflow_scheduler::Settings {
        poll_interval_ms: 20,
        ..settings()
    };
    let mut running = Vec::new();
    for i in 0..replicas {
        let mut r = env
            .replica(&format!("scheduler-{i}"), clock.clone(), fast.clone())
            .await;
        r.start();
        running.push(r);
    }
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM scheduler_cron_runs WHERE job = 'aging_snapshot'")
            .await
            >= 8)
            .then_some(())
    })
    .await
    .unwrap();
    for r in &mut running {
        r.stop().await;
    }

    let runs = store::list_runs(
        &env.db,
        &tenant,
        Some(cron_jobs::AGING_SNAPSHOT),
        None,
        1000,
    )
    .await
    .unwrap();
    let events = snapshot_events(&env).await;
    assert_eq!(
        events.len(),
        runs.len(),
        "one event per run: no instant ran twice"
    );
    // Consecutive days at 06:00 Chicago time (12:00 UTC until DST starts on Mar 8, then
    // 11:00 UTC): no gap, no double.
    let mut instants: Vec<_> = runs.iter().map(|r| r.scheduled_at).collect();
    instants.sort();
    let local: Vec<_> = instants
        .iter()
        .map(|t| t.with_timezone(&chrono_tz::America::Chicago))
        .collect();
    for pair in local.windows(2) {
        assert_eq!(
            pair[1].date_naive() - pair[0].date_naive(),
            TimeDelta::days(1),
            "{instants:?}"
        );
    }
    assert!(local.iter().all(|t| t.hour() == 6 && t.minute() == 0));
    // Never ran before: the first run is the latest instant before the first tick, not the
    // whole catch-up window (which would start on Feb 22). That is Feb 28, or a later day when
    // the replicas took more than 100 ms (12 simulated hours) to start on a loaded machine.
    assert!(
        instants[0] >= at("2026-02-28T12:00:00Z"),
        "the catch-up window ran: {instants:?}"
    );

    // The snapshot counts the open claim, about 50 days old, and not the paid one.
    let first = events
        .iter()
        .find(|e| e.scheduled_time.as_ref().map(|t| t.seconds) == Some(instants[0].timestamp()))
        .unwrap();
    let bucket = first.buckets.iter().find(|b| b.bucket == "31-60").unwrap();
    assert_eq!((bucket.claim_count, bucket.balance_cents), (1, 12_500));
    assert_eq!(
        first.buckets.iter().map(|b| b.claim_count).sum::<i64>(),
        1,
        "{first:?}"
    );
    assert!(
        runs.iter()
            .all(|r| r.state == "succeeded" && r.summary.contains("31-60"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_runs_once_per_instant_across_three_replicas_postgres() {
    cron_runs_once_per_instant(Kind::Postgres, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_runs_once_per_instant_sqlite() {
    cron_runs_once_per_instant(Kind::Sqlite, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_denial_digest_counts_the_week() {
    let env = Env::new(Kind::Sqlite).await;
    let tenant = TenantId::new("t1");
    let mut tx = env.db.begin().await.unwrap();
    for (i, (category, cents, when)) in [
        (
            DenialCategory::Authorization,
            10_000,
            "2026-03-03T10:00:00Z",
        ),
        (DenialCategory::Authorization, 5_000, "2026-03-05T10:00:00Z"),
        (DenialCategory::Eligibility, 7_000, "2026-03-06T10:00:00Z"),
        // The week before: not in this digest.
        (DenialCategory::Eligibility, 9_000, "2026-02-20T10:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        store::insert_denial(
            &mut tx,
            &store::SeenDenial {
                tenant_id: "t1".into(),
                denial_id: format!("d{i}"),
                claim_id: format!("c{i}"),
                payer_id: "87726".into(),
                clinic_id: "clinic-1".into(),
                category: Some(category),
                reason_code: "CO-197".into(),
                amount_cents: cents,
                denial_date: None,
                occurred_at: at(when),
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // Monday Mar 9, 07:00 New York.
    let instant = at("2026-03-09T11:00:00Z");
    let clock = Clock::simulated(instant, Utc::now(), 0.0);
    let ran = cron_jobs::run_once(
        &env.db,
        &clock,
        cron_jobs::DENIAL_DIGEST,
        &tenant,
        chrono_tz::America::New_York,
        AgingBasis::Submission,
        instant,
        "scheduler-a",
    )
    .await
    .unwrap();
    assert!(ran);
    // The same instant again (another replica, or a retry) does not run.
    let again = cron_jobs::run_once(
        &env.db,
        &clock,
        cron_jobs::DENIAL_DIGEST,
        &tenant,
        chrono_tz::America::New_York,
        AgingBasis::Submission,
        instant,
        "scheduler-b",
    )
    .await
    .unwrap();
    assert!(!again);
    let row = sqlx::query(
        "SELECT envelope, events FROM bus_outbox WHERE event_type = 'arflow.events.v1.DenialDigestCompiled'",
    )
    .fetch_all(env.db.pool())
    .await
    .unwrap();
    assert_eq!(row.len(), 1);
    let mut envelopes =
        bus::outbox_envelopes(&row[0].get::<Vec<u8>, _>("envelope"), row[0].get("events")).unwrap();
    assert_eq!(envelopes.len(), 1);
    let e = envelopes.remove(0);
    let digest: events::DenialDigestCompiled = bus::decode_payload(&e).unwrap();
    let lines: Vec<(String, i64, i64)> = digest
        .lines
        .into_iter()
        .map(|l| (l.category, l.denial_count, l.amount_cents))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("DENIAL_CATEGORY_AUTHORIZATION".to_string(), 2, 15_000),
            ("DENIAL_CATEGORY_ELIGIBILITY".to_string(), 1, 7_000),
        ]
    );
}

async fn known_tenants_walks_the_projection(kind: Kind) {
    let env = Env::new(kind).await;
    let now = at("2026-03-01T00:00:00Z");
    assert!(store::known_tenants(&env.db).await.unwrap().is_empty());
    let mut tx = env.db.begin().await.unwrap();
    for (tenant, claim) in [("b", "1"), ("a", "1"), ("b", "2"), ("c", "9"), ("a", "2")] {
        store::upsert_claim(
            &mut tx,
            &store::ProjectedClaim {
                tenant_id: tenant.into(),
                claim_id: claim.into(),
                facts: ClaimFacts {
                    clinic_id: "k".into(),
                    payer_id: "p".into(),
                    status: Some(ClaimStatus::Submitted),
                    submission_date: None,
                    first_service_date: None,
                    balance_cents: 1,
                    version: 1,
                },
                first_submission_date: None,
                filed_on: None,
            },
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    store::set_policy(
        &env.db,
        &TenantId::new("d"),
        &AgingPolicy {
            basis: AgingBasis::DateOfService,
            thresholds_days: vec![45],
            time_zone: chrono_tz::UTC,
        },
        now,
    )
    .await
    .unwrap();
    let tenants: Vec<String> = store::known_tenants(&env.db)
        .await
        .unwrap()
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    assert_eq!(tenants, ["a", "b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_tenants_walks_the_projection_postgres() {
    known_tenants_walks_the_projection(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_tenants_walks_the_projection_sqlite() {
    known_tenants_walks_the_projection(Kind::Sqlite).await;
}

/// The daily purge deletes fired and cancelled timers due more than the retention before it,
/// once per day across ticks, and never a pending timer however old.
async fn timer_purge_keeps_pending_and_recent(kind: Kind) {
    let env = Env::new(kind).await;
    let tenant = TenantId::new("t-purge");
    let mut settings = settings();
    settings.finished_timer_retention_days = 400;
    store::set_policy(
        &env.db,
        &tenant,
        &AgingPolicy {
            basis: AgingBasis::Submission,
            thresholds_days: vec![30, 60, 90],
            time_zone: chrono_tz::UTC,
        },
        at("2025-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    let timer = |subject: &str, due: &str| store::NewTimer {
        tenant_id: "t-purge".into(),
        subject: subject.into(),
        kind: "follow_up".into(),
        due_at: at(due),
        clinic_id: "clinic-1".into(),
        payload: store::TimerPayload::default(),
    };
    let mut ids = std::collections::HashMap::new();
    for (name, due) in [
        ("old-fired", "2025-01-10T00:00:00Z"),
        ("old-cancelled", "2025-01-11T00:00:00Z"),
        ("old-pending", "2025-01-12T00:00:00Z"),
        ("recent-cancelled", "2026-02-01T00:00:00Z"),
        ("future", "2026-06-01T00:00:00Z"),
    ] {
        let t = store::create_timer(&env.db, &timer(name, due), at("2025-01-01T00:00:00Z"))
            .await
            .unwrap();
        ids.insert(name, t.id);
    }
    // Only the first is due and fires; two are cancelled; "old-pending" stays pending.
    let fired =
        arflow_scheduler::jobs::timers::fire_due(&env.db, &settings, at("2025-01-10T12:00:00Z"), 1)
            .await
            .unwrap();
    assert_eq!(fired, 1);
    for name in ["old-cancelled", "recent-cancelled"] {
        store::cancel_timer(&env.db, &tenant, &ids[name], at("2025-01-10T13:00:00Z"))
            .await
            .unwrap();
    }

    // 2026-03-01 04:00 UTC: the 03:15 purge is due; it keeps what is due after 2025-01-25.
    let clock = Clock::simulated(at("2026-03-01T04:00:00Z"), Utc::now(), 0.0);
    let jobs = cron_jobs::jobs(&settings, false).unwrap();
    for replica in ["a", "b"] {
        cron_jobs::tick(&env.db, &clock, &settings, &jobs, replica, None)
            .await
            .unwrap();
    }
    let mut left: Vec<&str> = Vec::new();
    for (name, id) in &ids {
        if store::get_timer(&env.db, &tenant, id).await.is_ok() {
            left.push(name);
        }
    }
    left.sort();
    assert_eq!(left, ["future", "old-pending", "recent-cancelled"]);
    let runs = store::list_runs(&env.db, &tenant, Some(cron_jobs::TIMER_PURGE), None, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "one purge per day across replicas and ticks");
    let summary: serde_json::Value = serde_json::from_str(&runs[0].summary).unwrap();
    assert_eq!(summary["deleted"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_purge_keeps_pending_and_recent_postgres() {
    timer_purge_keeps_pending_and_recent(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_purge_keeps_pending_and_recent_sqlite() {
    timer_purge_keeps_pending_and_recent(Kind::Sqlite).await;
}
