//! The denial reconciler on Postgres, against a denial source standing in for the claims
//! service: a denial whose ClaimDenied event was lost gets exactly one task (the same task the
//! event would have made, assigned and announced the same way); a denial that already has a
//! task (open, or completed) gets nothing; non-denials and settled claims get nothing. Then
//! `GrpcDenialSource` against a stand-in ClaimsService behind the real server.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
use std::collections::HashMap;
use std::sync::Mutex;

use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_assignment::consumer::TaskHandler;
use arflow_assignment::reconcile::{self, ClaimState, DenialSnapshot, DenialSource};
use arflow_assignment::store::{self, SpecialistFields, TenantId, WorkingHours};
use arflow_domain::DenialCategory;
use arflow_domain::priority::TaskKindName;
use arflow_platform::bus::{self, Handler as _};
use arflow_platform::{Clock, Db};
use arflow_testkit::PgDatabase;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sqlx::Row;

const TENANT: &str = "acme";
const PAYER: &str = "87726";
const CLINIC: &str = "clinic-1";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
}

fn clock() -> Clock {
    Clock::simulated(now(), Utc::now(), 0.0)
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn denial(id: &str, claim: &str, category: &str, date: NaiveDate) -> DenialSnapshot {
    DenialSnapshot {
        denial_id: id.into(),
        claim_id: claim.into(),
        clinic_id: CLINIC.into(),
        payer_id: PAYER.into(),
        category: DenialCategory::parse(category),
        resolution: "appeal".into(),
        owner: "biller".into(),
        appealable: true,
        amount_cents: 12_000,
        denial_date: Some(date),
        procedure_code: "90837".into(),
    }
}

fn claim(status: &str) -> ClaimState {
    ClaimState {
        clinic_id: CLINIC.into(),
        payer_id: PAYER.into(),
        status: wire::parse_claim_status(status),
        balance_cents: 20_000,
        submission_date: Some(day(2026, 4, 1)),
        first_service_date: Some(day(2026, 3, 28)),
        version: 3,
    }
}

/// Denials and claims of tenant `acme`; counts the claim look-ups.
#[derive(Debug, Default)]
struct FakeClaims {
    denials: Mutex<Vec<DenialSnapshot>>,
    claims: Mutex<HashMap<String, ClaimState>>,
    asked_since: Mutex<Vec<NaiveDate>>,
}

impl FakeClaims {
    fn add(&self, d: DenialSnapshot, status: &str) {
        self.claims
            .lock()
            .unwrap()
            .insert(d.claim_id.clone(), claim(status));
        self.denials.lock().unwrap().push(d);
    }
}

#[async_trait::async_trait]
impl DenialSource for FakeClaims {
    fn tenants(&self) -> Vec<String> {
        vec![TENANT.into()]
    }

    async fn denials(&self, tenant: &str, since: NaiveDate) -> anyhow::Result<Vec<DenialSnapshot>> {
        assert_eq!(tenant, TENANT);
        self.asked_since.lock().unwrap().push(since);
        Ok(self
            .denials
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.denial_date.is_some_and(|x| x >= since))
            .cloned()
            .collect())
    }

    async fn claim(&self, tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimState>> {
        assert_eq!(tenant, TENANT);
        Ok(self.claims.lock().unwrap().get(claim_id).cloned())
    }
}

async fn database() -> (PgDatabase, Db) {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 8).await.unwrap();
    db.migrate().await.unwrap();
    (pg, db)
}

async fn add_specialist(db: &Db) -> String {
    let fields = SpecialistFields {
        display_name: "Sam".into(),
        payer_ids: vec![PAYER.into()],
        clinic_ids: vec![CLINIC.into()],
        capacity: 10,
        working_hours: WorkingHours {
            days: vec![1, 2, 3, 4, 5, 6, 7],
            start_time: "00:00".into(),
            end_time: "23:59".into(),
            time_zone: "UTC".into(),
        },
        active: true,
        out_of_office: false,
        key_id: None,
    };
    store::create_specialist(db, &TenantId::new(TENANT), &fields, now())
        .await
        .unwrap()
        .id
}

async fn count(db: &Db, sql: &str, arg: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(arg)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

async fn denial_tasks(db: &Db, claim: &str) -> i64 {
    count(
        db,
        "SELECT COUNT(*) AS n FROM asg_tasks WHERE claim_id = $1 AND kind = 'denial'",
        claim,
    )
    .await
}

async fn outbox(db: &Db, event_type: &str) -> i64 {
    count(
        db,
        "SELECT COALESCE(SUM(events), 0) AS n FROM bus_outbox WHERE event_type = $1",
        &format!("arflow.events.v1.{event_type}"),
    )
    .await
}

async fn denial_task_id(db: &Db, claim: &str) -> String {
    sqlx::query_scalar("SELECT id FROM asg_tasks WHERE claim_id = $1 AND kind = 'denial'")
        .bind(claim)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_denial_gets_one_task_and_a_second_pass_adds_nothing() {
    let (_pg, db) = database().await;
    let clock = clock();
    let sam = add_specialist(&db).await;
    let source = FakeClaims::default();
    // Two denials on one claim (one 835, two lines): one task carrying the latest.
    source.add(
        denial("d1", "c1", "coding", day(2026, 6, 1)),
        "CLAIM_STATUS_DENIED",
    );
    source.add(
        denial("d2", "c1", "authorization", day(2026, 6, 2)),
        "CLAIM_STATUS_DENIED",
    );
    // Not AR work, and a claim paid since: no task.
    source.add(
        denial("d3", "c2", "contractual", day(2026, 6, 1)),
        "CLAIM_STATUS_PARTIALLY_PAID",
    );
    source.add(
        denial("d4", "c3", "coding", day(2026, 6, 1)),
        "CLAIM_STATUS_PAID",
    );
    // Older than the lookback: not asked for.
    source.add(
        denial("d5", "c4", "coding", day(2025, 12, 1)),
        "CLAIM_STATUS_DENIED",
    );

    let created = reconcile::reconcile_denials(&db, &clock, &source)
        .await
        .unwrap();
    assert_eq!(created, 1);
    assert_eq!(
        source.asked_since.lock().unwrap().as_slice(),
        [day(2026, 2, 15)],
        "120 days back from the clock's today"
    );
    assert_eq!(denial_tasks(&db, "c1").await, 1);
    for other in ["c2", "c3", "c4"] {
        assert_eq!(denial_tasks(&db, other).await, 0, "{other}");
    }
    let t = TenantId::new(TENANT);
    let task = store::get_task(&db, &t, &denial_task_id(&db, "c1").await)
        .await
        .unwrap();
    assert_eq!(task.kind, TaskKindName::Denial);
    assert_eq!(task.status, "assigned");
    assert_eq!(task.specialist_id.as_deref(), Some(sam.as_str()));
    assert_eq!(
        (
            task.detail.as_str(),
            task.denial_category.as_str(),
            task.denial_resolution.as_str(),
            task.denial_owner.as_str(),
            task.appealable,
            task.denied_amount_cents,
            task.balance_cents,
        ),
        (
            "authorization",
            "authorization",
            "appeal",
            "biller",
            true,
            12_000,
            20_000
        )
    );
    assert!(task.priority > 0, "scored like any task");
    assert_eq!(outbox(&db, "TaskCreated").await, 1);
    assert_eq!(outbox(&db, "TaskAssigned").await, 1);
    // The projection learned the claim (its real version) from the claims service.
    let version: i64 =
        sqlx::query_scalar("SELECT version FROM asg_claims WHERE tenant_id = $1 AND claim_id = $2")
            .bind(TENANT)
            .bind("c1")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(version, 3);

    let again = reconcile::reconcile_denials(&db, &clock, &source)
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(denial_tasks(&db, "c1").await, 1);
    assert_eq!(outbox(&db, "TaskCreated").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_the_event_already_turned_into_a_task_adds_nothing() {
    let (_pg, db) = database().await;
    let clock = clock();
    add_specialist(&db).await;
    let source = FakeClaims::default();
    source.add(
        denial("d1", "c1", "coding", day(2026, 6, 1)),
        "CLAIM_STATUS_DENIED",
    );

    // The live path: ClaimDenied through the consumer's handler.
    let handler = TaskHandler::new(db.backend(), clock.clone());
    let envelope = bus::envelope(
        "claims",
        TENANT,
        "c1",
        3,
        now(),
        &events::ClaimDenied {
            claim_id: "c1".into(),
            clinic_id: CLINIC.into(),
            payer_id: PAYER.into(),
            denial_id: "d1".into(),
            category: "DENIAL_CATEGORY_CODING".into(),
            appealable: true,
            resolution: "correct_and_resubmit".into(),
            owner: "coder".into(),
            amount_cents: 12_000,
            balance_cents: 20_000,
            denial_date: Some(wire::date_to_pb(day(2026, 6, 1))),
            ..Default::default()
        },
    );
    let mut tx = db.begin().await.unwrap();
    handler.handle(&mut tx, &envelope).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(denial_tasks(&db, "c1").await, 1);
    let before = store::get_task(
        &db,
        &TenantId::new(TENANT),
        &denial_task_id(&db, "c1").await,
    )
    .await
    .unwrap();

    let created = reconcile::reconcile_denials(&db, &clock, &source)
        .await
        .unwrap();
    assert_eq!(created, 0);
    assert_eq!(denial_tasks(&db, "c1").await, 1);
    let after = store::get_task(&db, &TenantId::new(TENANT), &before.id)
        .await
        .unwrap();
    assert_eq!(after.version, before.version, "the task is left as it was");
    assert_eq!(outbox(&db, "TaskCreated").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_denial_task_is_not_recreated() {
    let (_pg, db) = database().await;
    let clock = clock();
    add_specialist(&db).await;
    let source = FakeClaims::default();
    source.add(
        denial("d1", "c1", "coding", day(2026, 6, 1)),
        "CLAIM_STATUS_DENIED",
    );
    assert_eq!(
        reconcile::reconcile_denials(&db, &clock, &source)
            .await
            .unwrap(),
        1
    );
    let t = TenantId::new(TENANT);
    let id = denial_task_id(&db, "c1").await;
    store::complete_task(&db, &t, &id, "appealed", "", now())
        .await
        .unwrap();

    let created = reconcile::reconcile_denials(&db, &clock, &source)
        .await
        .unwrap();
    assert_eq!(created, 0);
    assert_eq!(denial_tasks(&db, "c1").await, 1);
    assert_eq!(
        store::get_task(&db, &t, &id).await.unwrap().status,
        "completed"
    );
}

/// A claim denied again after its denial task was completed, whose ClaimDenied was lost, gets
/// a new task for the new denial; and a task made before tasks recorded their denial still
/// covers the denials dated up to its creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_after_a_completed_task_gets_a_new_task() {
    let (_pg, db) = database().await;
    let clock = clock();
    add_specialist(&db).await;
    let source = FakeClaims::default();
    source.add(
        denial("d1", "c1", "coding", day(2026, 6, 1)),
        "CLAIM_STATUS_DENIED",
    );
    let pass = || reconcile::reconcile_denials(&db, &clock, &source);
    assert_eq!(pass().await.unwrap(), 1);
    let t = TenantId::new(TENANT);
    let first = denial_task_id(&db, "c1").await;
    assert_eq!(
        store::get_task(&db, &t, &first).await.unwrap().denial_id,
        "d1"
    );
    store::complete_task(&db, &t, &first, "appealed", "", now())
        .await
        .unwrap();

    // The appeal was upheld: denied again, and the ClaimDenied event was lost with Redis.
    source.add(
        denial("d2", "c1", "authorization", day(2026, 6, 12)),
        "CLAIM_STATUS_DENIED",
    );
    assert_eq!(pass().await.unwrap(), 1);
    assert_eq!(denial_tasks(&db, "c1").await, 2);
    let open: String = sqlx::query_scalar(
        "SELECT denial_id FROM asg_tasks WHERE claim_id = 'c1' AND closed_at IS NULL",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(open, "d2");
    assert_eq!(
        pass().await.unwrap(),
        0,
        "taken up: a third pass adds nothing"
    );

    // Tasks from before the column (no denial id) cover denials dated up to their creation.
    sqlx::query("UPDATE asg_tasks SET denial_id = ''")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(pass().await.unwrap(), 0);
    assert_eq!(denial_tasks(&db, "c1").await, 2);
}

/// One replica runs a tenant's daily pass: the first takes it, another is told it is busy,
/// then done; the holder may retry its own failed pass; an expired lease is taken over; the
/// next day is a new pass.
async fn one_replica_takes_the_daily_pass(db: &Db) {
    use store::ReconcileClaim::{Busy, Done, Won};
    let t = TenantId::new(TENANT);
    let today = day(2026, 6, 15);
    let at = |minutes: i64| now() + chrono::TimeDelta::minutes(minutes);
    let lease = chrono::TimeDelta::minutes(15);
    let claim = |replica: &'static str, day: NaiveDate, minutes: i64| {
        let t = t.clone();
        async move {
            store::claim_reconcile(db, &t, day, replica, at(minutes), at(minutes) - lease)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("a", today, 0).await, Won);
    assert_eq!(claim("b", today, 1).await, Busy);
    assert_eq!(
        claim("a", today, 2).await,
        Won,
        "the holder retries its own pass"
    );
    assert_eq!(
        claim("b", today, 20).await,
        Won,
        "a lease left to expire is taken over"
    );
    assert_eq!(claim("a", today, 21).await, Busy);
    store::finish_reconcile(db, &t, today, "b", at(22))
        .await
        .unwrap();
    assert_eq!(claim("a", today, 23).await, Done);
    assert_eq!(claim("b", today, 23).await, Done);
    let tomorrow = today.succ_opt().unwrap();
    assert_eq!(claim("a", tomorrow, 24 * 60).await, Won);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_takes_the_daily_pass_postgres() {
    let (_pg, db) = database().await;
    one_replica_takes_the_daily_pass(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_takes_the_daily_pass_sqlite() {
    let file = arflow_testkit::SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    one_replica_takes_the_daily_pass(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_reconciles_at_start() {
    let file = arflow_testkit::SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let clock = clock();
    add_specialist(&db).await;
    let source = std::sync::Arc::new(FakeClaims::default());
    source.add(
        denial("d1", "c1", "coding", day(2026, 6, 1)),
        "CLAIM_STATUS_DENIED",
    );
    let bus = arflow_platform::bus::Bus::embedded(db.clone(), Default::default());
    let deps = arflow_platform::service::Deps {
        db: db.clone(),
        clock,
        bus,
        replica: "asg-0".into(),
        max_message_bytes: 4 * 1024 * 1024,
    };
    let options = arflow_assignment::Options {
        settings: arflow_assignment::Settings {
            sweep_interval_ms: 50,
            ..Default::default()
        },
        denial_source: Some(source.clone()),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(
        arflow_assignment::build(deps, options)
            .unwrap()
            .run(shutdown.clone()),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while denial_tasks(&db, "c1").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no task from the reconciler"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Same simulated day (the clock stands still): one pass only.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(source.asked_since.lock().unwrap().len(), 1);
    shutdown.cancel();
    run.await.unwrap().unwrap();
}

mod grpc_source {
    //! `GrpcDenialSource` against the stand-in claims service behind the real server (auth,
    //! tenant scoping; `arflow_testkit::stand_in`): pages, `denied_from`, the key of each
    //! tenant, NOT_FOUND as "no such claim", and keys kept out of Debug.
    use super::*;
    use arflow_api::claims::v1::*;
    use arflow_api::claims::v1::{ClaimStatus, DenialCategory};
    use arflow_assignment::reconcile::GrpcDenialSource;
    use arflow_testkit::stand_in::{self, StandInClaims};

    fn wire_denial(id: &str, claim: &str, date: NaiveDate) -> Denial {
        Denial {
            id: id.into(),
            claim_id: claim.into(),
            clinic_id: CLINIC.into(),
            payer_id: PAYER.into(),
            procedure_code: "90837".into(),
            group_code: "CO".into(),
            reason_code: "197".into(),
            category: DenialCategory::Authorization as i32,
            appealable: true,
            resolution: "appeal".into(),
            owner: "biller".into(),
            amount_cents: 12_000,
            denial_date: Some(wire::date_to_pb(date)),
            ..Default::default()
        }
    }

    fn wire_claim(tenant: &str, id: &str) -> Claim {
        Claim {
            id: id.into(),
            tenant_id: tenant.into(),
            clinic_id: CLINIC.into(),
            payer: Some(Payer {
                id: PAYER.into(),
                name: "Payer".into(),
            }),
            service_lines: vec![ServiceLine {
                service_date: Some(wire::date_to_pb(day(2026, 3, 28))),
                ..Default::default()
            }],
            submission_date: Some(wire::date_to_pb(day(2026, 4, 1))),
            status: ClaimStatus::Denied as i32,
            balance_cents: 20_000,
            version: 4,
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_denial_source_pages_and_scopes() {
        let (_pg, db) = database().await;
        let clock = clock();
        add_specialist(&db).await;
        let t1 = |d: Denial| (TENANT.to_string(), d);
        let stand_in = StandInClaims {
            denials: vec![
                t1(wire_denial("d1", "c1", day(2026, 6, 1))),
                t1(wire_denial("d2", "c2", day(2026, 6, 2))),
                t1(wire_denial("d3", "c3", day(2026, 6, 3))),
                t1(wire_denial("old", "c4", day(2025, 11, 1))),
                (
                    "other".to_string(),
                    wire_denial("x1", "o1", day(2026, 6, 1)),
                ),
            ],
            claims: vec![
                wire_claim(TENANT, "c1"),
                wire_claim(TENANT, "c2"),
                wire_claim(TENANT, "c3"),
                wire_claim("other", "o1"),
            ],
        }
        .serve(&db, &clock)
        .await
        .unwrap();
        let key = stand_in::service_key(&db, &clock, TENANT).await.unwrap();
        let channel = stand_in.channel().await.unwrap();
        let source =
            GrpcDenialSource::new(channel, HashMap::from([(TENANT.to_string(), key.clone())]));
        assert!(
            !format!("{source:?}").contains(&key),
            "keys stay out of Debug"
        );
        assert_eq!(source.tenants(), [TENANT]);

        let denials = source.denials(TENANT, day(2026, 2, 15)).await.unwrap();
        let mut ids: Vec<&str> = denials.iter().map(|d| d.denial_id.as_str()).collect();
        ids.sort();
        assert_eq!(
            ids,
            ["d1", "d2", "d3"],
            "every page, from the date, this tenant"
        );
        let d1 = denials.iter().find(|d| d.denial_id == "d1").unwrap();
        assert_eq!(
            (
                d1.category,
                d1.denial_date,
                d1.amount_cents,
                d1.procedure_code.as_str()
            ),
            (
                Some(arflow_domain::DenialCategory::Authorization),
                Some(day(2026, 6, 1)),
                12_000,
                "90837"
            )
        );
        let c1 = source.claim(TENANT, "c1").await.unwrap().unwrap();
        assert_eq!(
            (
                c1.status,
                c1.payer_id.as_str(),
                c1.version,
                c1.first_service_date
            ),
            (
                Some(arflow_domain::ClaimStatus::Denied),
                PAYER,
                4,
                Some(day(2026, 3, 28))
            )
        );
        assert_eq!(
            source.claim(TENANT, "o1").await.unwrap(),
            None,
            "another tenant's claim"
        );
        assert!(
            source.denials("nokey", day(2026, 1, 1)).await.is_err(),
            "no key, no call"
        );

        // And through the reconciler: the three recent denials get their tasks, once.
        assert_eq!(
            reconcile::reconcile_denials(&db, &clock, &source)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            reconcile::reconcile_denials(&db, &clock, &source)
                .await
                .unwrap(),
            0
        );
        for c in ["c1", "c2", "c3"] {
            assert_eq!(denial_tasks(&db, c).await, 1, "{c}");
        }
        assert_eq!(denial_tasks(&db, "c4").await, 0);
        stand_in.stop().await;
    }
}
