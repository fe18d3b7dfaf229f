//! The assignment service end to end: events published into the outbox of a real database
//! (Postgres + Redis Streams, and the embedded SQLite log), consumed by one or two running
//! service instances (the RPCs through the server: `tests/rpcs.rs`).
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use arflow_api::assignment::v1 as pb;
use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_platform::auth::Role;
use arflow_platform::bus;
use arflow_testkit::eventually;
use common::*;
use sqlx::Row;

/// A ClaimDenied becomes one denial task for the specialist covering the payer and clinic;
/// redelivery and repetition make no second task; an aging timer's task follows the claim to
/// the same specialist; payment closes the claim's tasks.
async fn denial_flow(env: Env) {
    let (_, boss) = env.key(TENANT, Role::Supervisor).await;
    let mut client = env.client().await;
    let ann = create(&mut client, &boss, specialist("Ann", &["P1"], &["C1"], 5)).await;
    let bob = create(&mut client, &boss, specialist("Bob", &["P2"], &["*"], 5)).await;

    let denial = denied("claim-1", "P1", "C1", 2);
    env.publish(&[submitted("claim-1", "P1", "C1"), denial.clone()])
        .await;
    let task = eventually(WAIT, || {
        let mut c = client.clone();
        let (boss, ann) = (boss.clone(), ann.id.clone());
        async move { tasks_of(&mut c, &boss, &ann).await.into_iter().next() }
    })
    .await
    .unwrap();
    assert_eq!(task.kind, pb::TaskKind::Denial as i32);
    assert_eq!(task.status, pb::TaskStatus::Assigned as i32);
    assert_eq!(task.denial_category, "authorization");
    assert_eq!(task.denial_id, "d-claim-1", "the task names its denial");
    assert_eq!(task.denial_resolution, "request_retro_authorization");
    assert_eq!(task.denial_owner, "auth_team");
    assert!(task.appealable);
    assert_eq!(task.denied_amount_cents, 30_000);
    assert!(task.priority > 0);
    assert!(
        task.priority_reasons.iter().any(|r| r.factor == "balance"),
        "{:?}",
        task.priority_reasons
    );
    assert!(tasks_of(&mut client, &boss, &bob.id).await.is_empty());

    // The same envelope again (a redelivery): acknowledged without effect.
    if env.redeliver(&denial).await {
        assert_eq!(
            env.count("SELECT COUNT(*) FROM asg_tasks").await,
            1,
            "a redelivered event makes no second task"
        );
        assert_eq!(env.count("SELECT MAX(version) FROM asg_tasks").await, 2);
    }
    // The same denial under a new event id (a repeat): the open task is refreshed, not
    // doubled.
    let repeat = denied("claim-1", "P1", "C1", 3);
    env.publish(&[repeat]).await;
    // Wait for the repeat to be applied (the task's version moves), then count.
    eventually(WAIT, || async {
        (env.count("SELECT MAX(version) FROM asg_tasks").await >= 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM asg_tasks WHERE kind = 'denial'")
            .await,
        1
    );

    // An aging timer on the same claim: sticky to Ann.
    env.publish(&[timer("claim-1", events::TimerKind::Aging, "aging_30")])
        .await;
    let aging = eventually(WAIT, || {
        let mut c = client.clone();
        let (boss, ann) = (boss.clone(), ann.id.clone());
        async move {
            tasks_of(&mut c, &boss, &ann)
                .await
                .into_iter()
                .find(|t| t.kind == pb::TaskKind::Aging as i32)
        }
    })
    .await
    .unwrap();
    assert_eq!(aging.detail, "aging_30");
    assert_eq!(
        aging.payer_id, "P1",
        "payer and clinic come from the projection"
    );

    // Paid: the claim's open tasks close.
    env.publish(&[envelope(
        "claims",
        "claim-1",
        4,
        &events::ClaimPaid {
            claim_id: "claim-1".into(),
            clinic_id: "C1".into(),
            payer_id: "P1".into(),
            paid_cents: 30_000,
            balance_cents: 0,
            status: "CLAIM_STATUS_PAID".into(),
            ..Default::default()
        },
    )])
    .await;
    eventually(WAIT, || {
        let mut c = client.clone();
        let (boss, ann) = (boss.clone(), ann.id.clone());
        async move { tasks_of(&mut c, &boss, &ann).await.is_empty().then_some(()) }
    })
    .await
    .unwrap();
    // A 60-day timer that fires after payment makes no task.
    env.publish(&[timer("claim-1", events::TimerKind::Aging, "aging_60")])
        .await;
    let rejected = envelope(
        "claims",
        "claim-2",
        2,
        &events::ClaimStatusChanged {
            claim_id: "claim-2".into(),
            clinic_id: "C7".into(),
            payer_id: "P2".into(),
            from_status: "CLAIM_STATUS_SUBMITTED".into(),
            to_status: "CLAIM_STATUS_REJECTED".into(),
            balance_cents: 12_000,
            ..Default::default()
        },
    );
    env.publish(&[rejected]).await;
    let r = eventually(WAIT, || {
        let mut c = client.clone();
        let (boss, bob) = (boss.clone(), bob.id.clone());
        async move { tasks_of(&mut c, &boss, &bob).await.into_iter().next() }
    })
    .await
    .unwrap();
    assert_eq!(r.kind, pb::TaskKind::Rejected as i32);
    // Deadline warnings and status checks from the scheduler.
    let deadline = chrono::Utc::now().date_naive() + chrono::Days::new(5);
    let warning = events::TimerFired {
        timer_id: uuid::Uuid::now_v7().to_string(),
        subject: "claim-2".into(),
        kind: events::TimerKind::AppealDeadlineWarning as i32,
        kind_name: "appeal_deadline_warning".into(),
        deadline: Some(wire::date_to_pb(deadline)),
        lead_days: 5,
        ..Default::default()
    };
    let warn_env = envelope("scheduler", &warning.timer_id, 1, &warning);
    env.publish(&[
        warn_env,
        timer("claim-2", events::TimerKind::StatusCheck, "status_check"),
    ])
    .await;
    let bobs = eventually(WAIT, || {
        let mut c = client.clone();
        let (boss, bob) = (boss.clone(), bob.id.clone());
        async move {
            let tasks = tasks_of(&mut c, &boss, &bob).await;
            (tasks.len() == 3).then_some(tasks)
        }
    })
    .await
    .unwrap();
    let top = &bobs[0];
    assert_eq!(
        top.kind,
        pb::TaskKind::Deadline as i32,
        "the near deadline is on top"
    );
    assert_eq!(top.detail, "appeal_deadline_warning");
    assert!(top.deadline.is_some());
    assert!(
        top.priority_reasons
            .iter()
            .any(|r| r.factor == "deadline" && r.points == 50),
        "{:?}",
        top.priority_reasons
    );
    assert!(
        bobs.iter()
            .any(|t| t.kind == pb::TaskKind::NoResponse as i32)
    );
    // The corrected claim is accepted: the rejected-claim task closes by itself.
    env.publish(&[envelope(
        "claims",
        "claim-2",
        3,
        &events::ClaimStatusChanged {
            claim_id: "claim-2".into(),
            clinic_id: "C7".into(),
            payer_id: "P2".into(),
            from_status: "CLAIM_STATUS_REJECTED".into(),
            to_status: "CLAIM_STATUS_ACCEPTED".into(),
            balance_cents: 12_000,
            ..Default::default()
        },
    )])
    .await;
    eventually(WAIT, || {
        let mut c = client.clone();
        let (boss, bob) = (boss.clone(), bob.id.clone());
        async move {
            let tasks = tasks_of(&mut c, &boss, &bob).await;
            (tasks.len() == 2
                && !tasks
                    .iter()
                    .any(|t| t.kind == pb::TaskKind::Rejected as i32))
            .then_some(())
        }
    })
    .await
    .unwrap();
    // The aging_60 timer (published before the rejection) was handled without a task.
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM asg_tasks WHERE claim_id = 'claim-1' AND closed_at IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        env.count(
            "SELECT COALESCE(SUM(events), 0) FROM bus_outbox WHERE event_type = 'arflow.events.v1.TaskCompleted'"
        )
        .await,
        3,
        "two closed by payment, one by the accepted correction"
    );
    env.stop().await;
}

#[tokio::test]
async fn denial_becomes_one_assigned_task_on_postgres_and_redis() {
    denial_flow(Env::postgres(2).await).await;
}

#[tokio::test]
async fn denial_becomes_one_assigned_task_on_sqlite_embedded() {
    denial_flow(Env::sqlite().await).await;
}

/// Two service instances consume the same stream: capacities hold, every task exists once,
/// the overflow waits unassigned with TaskUnassigned, and freed capacity is refilled.
#[tokio::test]
async fn capacity_holds_across_two_instances() {
    let env = Env::postgres(2).await;
    let (_, boss) = env.key(TENANT, Role::Supervisor).await;
    let mut client = env.client().await;
    let a = create(&mut client, &boss, specialist("A", &["P1"], &["*"], 2)).await;
    let b = create(&mut client, &boss, specialist("B", &["*"], &["C1"], 3)).await;
    let batch: Vec<bus::Envelope> = (0..20)
        .map(|i| denied(&format!("cap-{i}"), "P1", "C1", 1))
        .collect();
    env.publish(&batch).await;
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM asg_tasks").await == 20).then_some(())
    })
    .await
    .unwrap();
    let held = |id: String| {
        let db = env.db.clone();
        async move {
            sqlx::query(
                "SELECT COUNT(*) FROM asg_tasks WHERE specialist_id = $1 AND closed_at IS NULL",
            )
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get::<i64, _>(0)
        }
    };
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM asg_tasks WHERE specialist_id IS NOT NULL")
            .await
            == 5)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(held(a.id.clone()).await, 2);
    assert_eq!(held(b.id.clone()).await, 3);
    assert_eq!(
        env.count(
            "SELECT COALESCE(SUM(events), 0) FROM bus_outbox WHERE event_type = 'arflow.events.v1.TaskUnassigned'"
        )
        .await,
        15
    );
    // Completing one of A's tasks frees a slot the sweep fills.
    let mine = tasks_of(&mut client, &boss, &a.id).await;
    client
        .complete_task(with_key(
            pb::CompleteTaskRequest {
                task_id: mine[0].id.clone(),
                outcome: pb::TaskOutcome::Appealed as i32,
                notes: String::new(),
            },
            &boss,
        ))
        .await
        .unwrap();
    eventually(WAIT, || async {
        (held(a.id.clone()).await == 2).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM asg_tasks WHERE specialist_id IS NOT NULL AND closed_at IS NULL"
        )
        .await,
        5
    );
    env.stop().await;
}
