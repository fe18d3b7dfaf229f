//! The assignment store on both backends (same bodies on Postgres and SQLite), plus the
//! concurrency properties on Postgres, where transactions really run in parallel.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
use std::collections::HashMap;

use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_assignment::consumer::TaskHandler;
use arflow_assignment::store::{
    self, ClaimFacts, SpecialistFields, TaskRequest, TenantId, WorkingHours,
};
use arflow_domain::priority::TaskKindName;
use arflow_platform::bus::{self, Handler as _};
use arflow_platform::{Backend, Clock, Db};
use arflow_testkit::{PgDatabase, SqliteFile};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
}

fn specialist(name: &str, payers: &[&str], clinics: &[&str], capacity: i64) -> SpecialistFields {
    SpecialistFields {
        display_name: name.into(),
        payer_ids: payers.iter().map(|s| s.to_string()).collect(),
        clinic_ids: clinics.iter().map(|s| s.to_string()).collect(),
        capacity,
        working_hours: WorkingHours {
            days: vec![1, 2, 3, 4, 5],
            start_time: "08:00".into(),
            end_time: "17:00".into(),
            time_zone: "America/Chicago".into(),
        },
        active: true,
        out_of_office: false,
        key_id: None,
    }
}

fn request(claim: &str, kind: TaskKindName, payer: &str, clinic: &str) -> TaskRequest {
    TaskRequest {
        claim_id: claim.into(),
        clinic_id: clinic.into(),
        payer_id: payer.into(),
        kind,
        detail: kind.as_str().into(),
        balance_cents: 25_000,
        ..Default::default()
    }
}

async fn open(db: &Db, t: &TenantId, req: &TaskRequest) -> store::Opened {
    let mut tx = db.begin().await.unwrap();
    let opened = store::open_task(&mut tx, db.backend(), t, req, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    opened
}

async fn outbox(db: &Db, event_type: &str) -> i64 {
    sqlx::query("SELECT COALESCE(SUM(events), 0) AS n FROM bus_outbox WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

async fn open_count(db: &Db, claim: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM asg_tasks WHERE claim_id = $1 AND closed_at IS NULL")
        .bind(claim)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

async fn contract(db: Db) {
    let t = TenantId::new("acme");
    let other = TenantId::new("globex");
    let ann = store::create_specialist(&db, &t, &specialist("Ann", &["P1"], &["C1"], 2), now())
        .await
        .unwrap();
    let bob =
        store::create_specialist(&db, &t, &specialist("Bob", &["P1", "P2"], &["*"], 4), now())
            .await
            .unwrap();
    // Another tenant's specialist is invisible.
    assert!(matches!(
        store::get_specialist(&db, &other, &ann.id).await,
        Err(store::Error::NotFound(_))
    ));

    // One open task per (claim, kind): the second request refreshes the first.
    let first = open(&db, &t, &request("c1", TaskKindName::Denial, "P1", "C1")).await;
    assert!(first.created);
    let again = open(
        &db,
        &t,
        &TaskRequest {
            balance_cents: 90_000,
            ..request("c1", TaskKindName::Denial, "P1", "C1")
        },
    )
    .await;
    assert!(!again.created);
    assert_eq!(again.task.id, first.task.id);
    assert_eq!(again.task.balance_cents, 90_000);
    assert_eq!(open_count(&db, "c1").await, 1);
    assert_eq!(outbox(&db, "arflow.events.v1.TaskCreated").await, 1);

    // Least loaded relative to capacity: Ann 0/2 and Bob 0/4 tie at 0; the first went to one
    // of them; the next P1/C1 task goes to the one with the lower ratio.
    let a = first.task.specialist_id.clone().unwrap();
    let second = open(&db, &t, &request("c2", TaskKindName::Aging, "P1", "C1")).await;
    let b = second.task.specialist_id.clone().unwrap();
    assert_ne!(a, b, "the idle specialist gets the second task");

    // Sticky: another kind of work on c1 goes to whoever has c1.
    let sticky = open(&db, &t, &request("c1", TaskKindName::FollowUp, "P1", "C1")).await;
    assert_eq!(sticky.task.specialist_id.as_deref(), Some(a.as_str()));

    // Coverage: P2 is Bob's only; an unknown payer fits nobody.
    let p2 = open(&db, &t, &request("c3", TaskKindName::Rejected, "P2", "C9")).await;
    assert_eq!(p2.task.specialist_id.as_deref(), Some(bob.id.as_str()));
    let nobody = open(&db, &t, &request("c4", TaskKindName::Aging, "P9", "C1")).await;
    assert_eq!(nobody.task.specialist_id, None);
    assert_eq!(nobody.task.status, "unassigned");
    assert_eq!(outbox(&db, "arflow.events.v1.TaskUnassigned").await, 1);

    // Capacity: fill Ann (cap 2) and check she never goes past it.
    for i in 0..6 {
        open(
            &db,
            &t,
            &request(&format!("f{i}"), TaskKindName::Aging, "P1", "C1"),
        )
        .await;
    }
    let ann_now = store::get_specialist(&db, &t, &ann.id).await.unwrap();
    let bob_now = store::get_specialist(&db, &t, &bob.id).await.unwrap();
    assert_eq!(ann_now.open_tasks, 2);
    assert_eq!(bob_now.open_tasks, 4);
    let counted: HashMap<String, i64> = sqlx::query(
        "SELECT specialist_id, COUNT(*) AS n FROM asg_tasks WHERE closed_at IS NULL \
         AND specialist_id IS NOT NULL GROUP BY specialist_id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get::<String, _>("specialist_id"), r.get::<i64, _>("n")))
    .collect();
    assert_eq!(counted[&ann.id], 2, "the counter matches the tasks");
    assert_eq!(counted[&bob.id], 4);

    // A settled claim closes its open tasks and frees the slots.
    let mut tx = db.begin().await.unwrap();
    let closed = store::close_claim_tasks(&mut tx, &t, "c1", "paid", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(closed, 2);
    assert_eq!(open_count(&db, "c1").await, 0);
    // A new event for c1 after closing makes a new task (a new denial is new work).
    assert!(
        open(&db, &t, &request("c1", TaskKindName::Denial, "P1", "C1"))
            .await
            .created
    );

    // The sweep hands waiting tasks out once someone has room: give Carl P9.
    let carl = store::create_specialist(&db, &t, &specialist("Carl", &["*"], &["*"], 10), now())
        .await
        .unwrap();
    let swept = store::assign_waiting(&db, 50, now()).await.unwrap();
    assert!(swept >= 1);
    let c4 = store::get_task(&db, &t, &nobody.task.id).await.unwrap();
    assert_eq!(c4.specialist_id.as_deref(), Some(carl.id.as_str()));

    // Out of office moves Ann's open tasks to others by the same rules.
    let mut away = ann_now.fields.clone();
    away.out_of_office = true;
    let (_, moved) = store::update_specialist(&db, &t, &ann.id, &away, now())
        .await
        .unwrap();
    assert!(moved >= 1);
    let ann_after = store::get_specialist(&db, &t, &ann.id).await.unwrap();
    assert_eq!(ann_after.open_tasks, 0);
    let left: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM asg_tasks WHERE specialist_id = $1 AND closed_at IS NULL",
    )
    .bind(&ann.id)
    .fetch_one(db.pool())
    .await
    .unwrap()
    .get("n");
    assert_eq!(left, 0);

    // Claim projection: older versions do not overwrite newer state.
    let mut tx = db.begin().await.unwrap();
    let facts = |status: &str, version| ClaimFacts {
        clinic_id: "C1".into(),
        payer_id: "P1".into(),
        status: wire::parse_claim_status(status),
        balance_cents: 100,
        version,
        ..Default::default()
    };
    assert!(
        store::apply_claim_facts(&mut tx, &t, "c9", &facts("CLAIM_STATUS_PAID", 3), now())
            .await
            .unwrap()
    );
    assert!(
        !store::apply_claim_facts(&mut tx, &t, "c9", &facts("CLAIM_STATUS_DENIED", 2), now())
            .await
            .unwrap()
    );
    let view = store::claim_view(&mut tx, &t, "c9").await.unwrap().unwrap();
    assert!(view.settled());
    tx.commit().await.unwrap();

    // ClaimNextTask: Bob pulls his top task; it is in progress and its claim is his.
    let bob_now = store::get_specialist(&db, &t, &bob.id).await.unwrap();
    let pulled = store::claim_next(&db, &t, &bob_now, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pulled.status, "in_progress");
    assert_eq!(pulled.specialist_id.as_deref(), Some(bob.id.as_str()));
    let done = store::complete_task(&db, &t, &pulled.id, "appealed", "sent level 1", now())
        .await
        .unwrap();
    assert_eq!(done.outcome.as_deref(), Some("appealed"));
    assert!(matches!(
        store::complete_task(&db, &t, &pulled.id, "paid", "", now()).await,
        Err(store::Error::Conflict(_))
    ));

    // Daily rescoring: the claim aged and was partly paid since its task opened.
    let aged = open(&db, &t, &request("old-1", TaskKindName::Aging, "P1", "C1")).await;
    assert!(!aged.task.reasons.iter().any(|r| r.factor == "age"));
    let mut tx = db.begin().await.unwrap();
    let facts = ClaimFacts {
        clinic_id: "C1".into(),
        payer_id: "P1".into(),
        status: wire::parse_claim_status("CLAIM_STATUS_PARTIALLY_PAID"),
        balance_cents: 600_000,
        submission_date: Some(now().date_naive() - chrono::Days::new(95)),
        version: 7,
        ..Default::default()
    };
    store::apply_claim_facts(&mut tx, &t, "old-1", &facts, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store::rescore_open(&db, now().date_naive()).await.unwrap() >= 1);
    let rescored = store::get_task(&db, &t, &aged.task.id).await.unwrap();
    assert_eq!(rescored.balance_cents, 600_000);
    assert!(rescored.priority > aged.task.priority);
    assert!(
        rescored
            .reasons
            .iter()
            .any(|r| r.factor == "age" && r.why.contains("91-120")),
        "{:?}",
        rescored.reasons
    );
    assert_eq!(
        rescored.version, aged.task.version,
        "rescoring is not a task change"
    );

    // The change log is a gap-free sequence.
    let changes = store::changes_after(&db, &t, 0, 10_000).await.unwrap();
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let tail = store::changes_after(&db, &t, seqs[seqs.len() - 3], 10)
        .await
        .unwrap();
    assert_eq!(tail.len(), 2);
    assert!(
        store::changes_after(&db, &other, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn store_contract_on_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 8).await.unwrap();
    db.migrate().await.unwrap();
    contract(db).await;
}

#[tokio::test]
async fn store_contract_on_sqlite() {
    let file = SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    contract(db).await;
}

/// Many transactions open tasks at once (as replicas handling events would): no specialist
/// ever holds more than their capacity, and no task is assigned twice.
#[tokio::test]
async fn concurrent_assignment_respects_capacity_on_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 16).await.unwrap();
    db.migrate().await.unwrap();
    let t = TenantId::new("acme");
    let mut ids = Vec::new();
    for (name, cap) in [("A", 3), ("B", 5), ("C", 2)] {
        ids.push(
            store::create_specialist(&db, &t, &specialist(name, &["P1"], &["*"], cap), now())
                .await
                .unwrap()
                .id,
        );
    }
    let mut joins = Vec::new();
    for i in 0..40 {
        let (db, t) = (db.clone(), t.clone());
        joins.push(tokio::spawn(async move {
            open(
                &db,
                &t,
                &request(&format!("k{i}"), TaskKindName::Aging, "P1", "C1"),
            )
            .await
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    // A few sweeps racing each other too.
    let mut sweeps = Vec::new();
    for _ in 0..4 {
        let db = db.clone();
        sweeps.push(tokio::spawn(async move {
            store::assign_waiting(&db, 50, now()).await
        }));
    }
    for s in sweeps {
        s.await.unwrap().unwrap();
    }
    let rows = sqlx::query(
        "SELECT s.id, s.capacity, s.open_tasks, (SELECT COUNT(*) FROM asg_tasks t \
         WHERE t.specialist_id = s.id AND t.closed_at IS NULL) AS held FROM asg_specialists s",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut assigned = 0;
    for r in rows {
        let (cap, counter, held): (i64, i64, i64) =
            (r.get("capacity"), r.get("open_tasks"), r.get("held"));
        assert!(held <= cap, "held {held} > capacity {cap}");
        assert_eq!(counter, held);
        assigned += held;
    }
    assert_eq!(assigned, 10, "every slot is used");
    let assigned_events = outbox(&db, "arflow.events.v1.TaskAssigned").await;
    assert_eq!(assigned_events, 10, "each task assigned once");
}

/// Specialists pull at once: every pull gets a different task and claim, capacity holds.
#[tokio::test]
async fn claim_next_is_atomic_on_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 16).await.unwrap();
    db.migrate().await.unwrap();
    let t = TenantId::new("acme");
    // Nobody covers P1 at intake: 20 tasks wait unassigned.
    for i in 0..20 {
        open(
            &db,
            &t,
            &request(&format!("q{i}"), TaskKindName::Aging, "P1", "C1"),
        )
        .await;
    }
    let mut team = Vec::new();
    for i in 0..4 {
        team.push(
            store::create_specialist(
                &db,
                &t,
                &specialist(&format!("S{i}"), &["P1"], &["*"], 3),
                now(),
            )
            .await
            .unwrap(),
        );
    }
    let mut joins = Vec::new();
    for round in 0..6 {
        for s in &team {
            let (db, t, s) = (db.clone(), t.clone(), s.clone());
            joins.push(tokio::spawn(async move {
                let _ = round;
                store::claim_next(&db, &t, &s, now()).await.unwrap()
            }));
        }
    }
    let mut pulled = Vec::new();
    for j in joins {
        if let Some(task) = j.await.unwrap() {
            pulled.push(task);
        }
    }
    // SKIP LOCKED answers "nothing right now" while other pulls hold the rows; pulling on
    // until nothing is left must reach exactly the team's capacity.
    for s in &team {
        while let Some(task) = store::claim_next(&db, &t, s, now()).await.unwrap() {
            pulled.push(task);
        }
    }
    let mut tasks: Vec<&str> = pulled.iter().map(|t| t.id.as_str()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    assert_eq!(tasks.len(), pulled.len(), "no task pulled twice");
    assert_eq!(pulled.len(), 12, "4 specialists x capacity 3");
    for s in &team {
        let now_s = store::get_specialist(&db, &t, &s.id).await.unwrap();
        assert_eq!(now_s.open_tasks, 3);
    }
    let locks: i64 = sqlx::query("SELECT COUNT(DISTINCT claim_id) AS n FROM asg_claim_locks")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(locks, 12, "each pulled claim locked to its specialist");
}

/// A ClaimSubmitted that arrives after its claim was paid (older version) does not reopen the
/// claim, but the projection learns its dates (`ClaimFacts::merge`): a task made later counts
/// its age from them.
#[tokio::test]
async fn late_submission_teaches_dates_but_does_not_reopen() {
    let file = SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let handler = TaskHandler::new(db.backend(), Clock::simulated(now(), Utc::now(), 0.0));
    let submitted = now().date_naive() - chrono::Days::new(40);
    let paid = events::ClaimPaid {
        claim_id: "c7".into(),
        clinic_id: "C1".into(),
        payer_id: "P1".into(),
        balance_cents: 0,
        status: "CLAIM_STATUS_PAID".into(),
        ..Default::default()
    };
    let late = events::ClaimSubmitted {
        claim_id: "c7".into(),
        clinic_id: "C1".into(),
        payer_id: "P1".into(),
        status: "CLAIM_STATUS_SUBMITTED".into(),
        submission_date: Some(wire::date_to_pb(submitted)),
        balance_cents: 15_000,
        ..Default::default()
    };
    for envelope in [
        bus::envelope("claims", "t1", "c7", 3, now(), &paid),
        bus::envelope("claims", "t1", "c7", 1, now(), &late),
    ] {
        let mut tx = db.begin().await.unwrap();
        handler.handle(&mut tx, &envelope).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut conn = db.pool().acquire().await.unwrap();
    let view = store::claim_view(&mut conn, &TenantId::new("t1"), "c7")
        .await
        .unwrap()
        .unwrap();
    assert!(view.settled());
    assert_eq!(view.balance_cents, 0);
    assert_eq!(view.version, 3);
    assert_eq!(view.submission_date, Some(submitted));
}
