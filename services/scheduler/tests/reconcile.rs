//! The reconciler repairs what lost events left wrong, against a claims source standing in
//! for the claims service: a claim never seen gets its timers, a claim closed at the source is
//! cancelled here, a claim seen at the current version is left alone; each (tenant, instant)
//! runs once.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::HashMap;
use std::sync::Mutex;

use arflow_platform::Clock;
use arflow_platform::bus::{self, Handler as _};
use arflow_scheduler::reconcile::{self, ClaimSnapshot, ClaimSource};
use arflow_scheduler::store::{self, TenantId};
use chrono::{NaiveDate, Utc};
use common::{Env, Kind, at, date, settings, submitted_payload};

#[derive(Debug, Default)]
struct FakeClaims {
    claims: Mutex<HashMap<String, ClaimSnapshot>>,
}

#[async_trait::async_trait]
impl ClaimSource for FakeClaims {
    fn tenants(&self) -> Vec<String> {
        vec!["t1".into()]
    }

    async fn open_claims(&self, tenant: &str) -> anyhow::Result<Vec<ClaimSnapshot>> {
        assert_eq!(tenant, "t1");
        Ok(self
            .claims
            .lock()
            .unwrap()
            .values()
            .filter(|c| !store::is_closed(&c.status, c.balance_cents))
            .cloned()
            .collect())
    }

    async fn claim(&self, _tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimSnapshot>> {
        Ok(self.claims.lock().unwrap().get(claim_id).cloned())
    }
}

fn snapshot(id: &str, status: &str, balance: i64, version: i64) -> ClaimSnapshot {
    let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    ClaimSnapshot {
        claim_id: id.into(),
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        status: status.into(),
        submission_date: Some(date(d)),
        first_service_date: Some(date(d)),
        balance_cents: balance,
        total_charge_cents: 15_000,
        version,
    }
}

async fn reconciler_repairs_lost_events(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-20T12:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock.clone(), settings()).await;
    let handler = replica.scheduler.handler();
    // The scheduler saw two submissions; the payment of one and the whole of a third claim
    // were lost with Redis.
    for id in ["c-seen", "c-paid"] {
        let e = bus::new_envelope(
            "claims",
            "arflow.events.v1.ClaimSubmitted",
            "t1",
            id,
            1,
            at("2026-01-05T15:00:00Z"),
            &submitted_payload(id, NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()),
        );
        let mut tx = env.db.begin().await.unwrap();
        handler.handle(&mut tx, &e).await.unwrap();
        tx.commit().await.unwrap();
    }
    let source = FakeClaims::default();
    for c in [
        snapshot("c-seen", "CLAIM_STATUS_SUBMITTED", 15_000, 1),
        snapshot("c-paid", "CLAIM_STATUS_PAID", 0, 3),
        snapshot("c-missed", "CLAIM_STATUS_ACCEPTED", 15_000, 2),
    ] {
        source.claims.lock().unwrap().insert(c.claim_id.clone(), c);
    }

    let tenant = TenantId::new("t1");
    let instant = at("2026-01-20T07:30:00Z");
    let ran = reconcile::run_once(&env.db, &clock, &handler, &source, &tenant, instant, "a")
        .await
        .unwrap();
    assert!(ran);
    let again = reconcile::run_once(&env.db, &clock, &handler, &source, &tenant, instant, "b")
        .await
        .unwrap();
    assert!(!again, "one run per instant");

    let missed = env.timers_of("c-missed").await;
    assert_eq!(missed.len(), 5, "{missed:?}");
    assert!(missed.iter().all(|(_, s)| s == "pending"));
    assert!(
        env.timers_of("c-paid")
            .await
            .iter()
            .all(|(_, s)| s == "cancelled")
    );
    assert!(
        env.timers_of("c-seen")
            .await
            .iter()
            .all(|(_, s)| s == "pending")
    );

    let runs = store::list_runs(&env.db, &tenant, Some(reconcile::RECONCILE), None, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, "succeeded");
    let summary: serde_json::Value = serde_json::from_str(&runs[0].summary).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"open_claims": 2, "repaired": 1, "closed": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_repairs_lost_events_postgres() {
    reconciler_repairs_lost_events(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_repairs_lost_events_sqlite() {
    reconciler_repairs_lost_events(Kind::Sqlite).await;
}
