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
            .filter(|c| !c.is_closed())
            .cloned()
            .collect())
    }

    async fn claim(&self, _tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimSnapshot>> {
        Ok(self.claims.lock().unwrap().get(claim_id).cloned())
    }
}

fn snapshot(
    id: &str,
    status: arflow_domain::ClaimStatus,
    balance: i64,
    version: i64,
) -> ClaimSnapshot {
    let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    ClaimSnapshot {
        claim_id: id.into(),
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        status: Some(status),
        submission_date: Some(d),
        first_service_date: Some(d),
        balance_cents: balance,
        total_charge_cents: 15_000,
        version,
        void: false,
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
        let e = bus::envelope(
            "claims",
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
        snapshot("c-seen", arflow_domain::ClaimStatus::Submitted, 15_000, 1),
        snapshot("c-paid", arflow_domain::ClaimStatus::Paid, 0, 3),
        snapshot("c-missed", arflow_domain::ClaimStatus::Accepted, 15_000, 2),
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

    // Aging 30/60/90 and the status check; accepted, so no timely-filing warning (issue 10).
    let missed = env.timers_of("c-missed").await;
    assert_eq!(missed.len(), 4, "{missed:?}");
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

mod grpc_source {
    //! `GrpcClaimSource` against a stand-in claims service behind the real server (auth,
    //! tenant scoping): pages, the key of each tenant, and NOT_FOUND as "no such claim".
    use super::*;
    use arflow_api::claims::v1::*;
    use arflow_scheduler::reconcile::GrpcClaimSource;
    use arflow_testkit::stand_in::{StandInClaims, service_key};

    fn claim(tenant: &str, id: &str, status: ClaimStatus, balance: i64) -> Claim {
        let d = date(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap());
        Claim {
            id: id.into(),
            tenant_id: tenant.into(),
            clinic_id: "clinic-1".into(),
            payer: Some(Payer {
                id: "87726".into(),
                name: "Payer".into(),
            }),
            service_lines: vec![ServiceLine {
                service_date: Some(date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap())),
                ..Default::default()
            }],
            submission_date: Some(d),
            status: status as i32,
            total_charge_cents: 15_000,
            balance_cents: balance,
            version: 2,
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_claim_source_pages_and_scopes() {
        let env = Env::new(Kind::Sqlite).await;
        let clock = Clock::simulated(at("2026-01-20T12:00:00Z"), Utc::now(), 0.0);
        let stand_in = StandInClaims {
            claims: vec![
                claim("t1", "a1", ClaimStatus::Submitted, 15_000),
                claim("t1", "a2", ClaimStatus::Submitted, 15_000),
                claim("t1", "a3", ClaimStatus::Submitted, 15_000),
                claim("t1", "a4", ClaimStatus::Denied, 15_000),
                claim("t1", "a5", ClaimStatus::Paid, 0),
                claim("t2", "b1", ClaimStatus::Submitted, 15_000),
            ],
            ..Default::default()
        }
        .serve(&env.db, &clock)
        .await
        .unwrap();
        let key = service_key(&env.db, &clock, "t1").await.unwrap();
        let channel = stand_in.channel().await.unwrap();
        let source = GrpcClaimSource::new(channel, HashMap::from([("t1".to_string(), key)]));
        assert!(
            !format!("{source:?}").contains("afk_"),
            "keys stay out of Debug"
        );

        let mut open: Vec<String> = source
            .open_claims("t1")
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.claim_id)
            .collect();
        open.sort();
        assert_eq!(
            open,
            ["a1", "a2", "a3", "a4"],
            "every page of every open status"
        );
        let a4 = source.claim("t1", "a4").await.unwrap().unwrap();
        assert_eq!(
            (a4.status, a4.payer_id.as_str(), a4.version),
            (Some(arflow_domain::ClaimStatus::Denied), "87726", 2)
        );
        assert_eq!(
            a4.first_service_date,
            Some(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap())
        );
        assert_eq!(
            source.claim("t1", "b1").await.unwrap(),
            None,
            "another tenant's claim"
        );
        assert!(source.open_claims("t3").await.is_err(), "no key, no call");

        // And through the reconciler: the four open claims get their timers.
        let replica = env.replica("scheduler-a", clock.clone(), settings()).await;
        let handler = replica.scheduler.handler();
        let report = reconcile::reconcile_tenant(
            &env.db,
            &handler,
            &source,
            &TenantId::new("t1"),
            clock.now(),
        )
        .await
        .unwrap();
        assert_eq!(
            (report.open_claims, report.repaired, report.closed),
            (4, 4, 0)
        );
        // Aging 30/60/90, the status check, timely-filing warnings 30, 14 and 7 days ahead.
        assert_eq!(env.timers_of("a1").await.len(), 7);
        stand_in.stop().await;
    }
}
