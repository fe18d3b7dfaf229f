//! `arflow.scheduler.v1.SchedulerService` through a real server (`grpc::serve` on port 0) and
//! the generated client: listing with filters and pages, idempotent cancel, tenant and clinic
//! scoping (NOT_FOUND), field violations, cron runs, and the audit record's object ids.
#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use arflow_api::scheduler::v1 as pb;
use arflow_api::scheduler::v1::scheduler_service_client::SchedulerServiceClient;
use arflow_domain::followup::AgingBasis;
use arflow_platform::auth::{self, Role};
use arflow_platform::config::{AuthConfig, GrpcConfig};
use arflow_platform::grpc::{self, ServerOptions};
use arflow_platform::{Clock, Db};
use arflow_scheduler::HEALTH_NAME;
use arflow_scheduler::jobs::{cron as cron_jobs, timers};
use arflow_scheduler::store::{self, NewTimer, TenantId, TimerPayload};
use arflow_testkit::eventually;
use chrono::{TimeDelta, Utc};
use common::{Env, Kind, WAIT, at, settings};
use sqlx::Row as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

struct Server {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(env: &Env, clock: Clock) -> Server {
    let replica = env.replica("scheduler-a", clock.clone(), settings()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(grpc::serve(
        listener,
        tonic::service::Routes::new(replica.scheduler.grpc_service()),
        &[HEALTH_NAME],
        env.db.clone(),
        clock,
        ServerOptions {
            grpc: GrpcConfig {
                listen: String::new(),
                default_timeout_ms: 10_000,
                max_message_bytes: 1024 * 1024,
            },
            auth: AuthConfig { key_cache_secs: 1 },
            drain_timeout: Duration::from_secs(2),
        },
        shutdown.clone(),
    ));
    Server {
        addr,
        shutdown,
        task,
    }
}

impl Server {
    async fn client(&self) -> SchedulerServiceClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        SchedulerServiceClient::new(channel)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn key(db: &Db, tenant: &str, role: Role, clinics: &[&str]) -> String {
    let clinics: Vec<String> = clinics.iter().map(|c| c.to_string()).collect();
    auth::create_key(db, &Clock::system(), tenant, role, &clinics, "test")
        .await
        .unwrap()
        .1
}

async fn seed(env: &Env, tenant: &str, n: usize, clinic: &str) {
    let base = at("2026-05-01T00:00:00Z");
    let timers: Vec<NewTimer> = (0..n)
        .map(|i| NewTimer {
            tenant_id: tenant.into(),
            subject: if i % 2 == 0 {
                "claim-even"
            } else {
                "claim-odd"
            }
            .into(),
            kind: if i % 3 == 0 {
                "aging_30"
            } else {
                "status_check"
            }
            .into(),
            due_at: base + TimeDelta::days(i as i64),
            clinic_id: clinic.into(),
            payload: TimerPayload {
                payer_id: Some("87726".into()),
                ..TimerPayload::default()
            },
        })
        .collect();
    let mut tx = env.db.begin().await.unwrap();
    store::insert_timers(&mut tx, &timers, base).await.unwrap();
    tx.commit().await.unwrap();
}

async fn scheduler_api(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-04-01T00:00:00Z"), Utc::now(), 0.0);
    seed(&env, "tenant-a", 10, "clinic-1").await;
    seed(&env, "tenant-b", 3, "clinic-1").await;
    let server = start(&env, clock.clone()).await;
    let mut client = server.client().await;
    let admin_a = key(&env.db, "tenant-a", Role::Admin, &[]).await;
    let admin_b = key(&env.db, "tenant-b", Role::Admin, &[]).await;
    let scoped_a = key(&env.db, "tenant-a", Role::Specialist, &["clinic-2"]).await;
    let partner_a = key(&env.db, "tenant-a", Role::Partner, &[]).await;

    // Pages of 4 over tenant a's 10 timers, in due order; tenant b's never show up.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_timers(with_key(
                pb::ListTimersRequest {
                    page_size: 4,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &admin_a,
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.timers);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 10);
    assert!(seen.windows(2).all(
        |w| w[0].due_time.as_ref().unwrap().seconds <= w[1].due_time.as_ref().unwrap().seconds
    ));

    // Filters: subject, kind, due range.
    let filtered = client
        .list_timers(with_key(
            pb::ListTimersRequest {
                subject: "claim-even".into(),
                kind_name: "aging_30".into(),
                due_after: Some(prost_types::Timestamp {
                    seconds: at("2026-05-02T00:00:00Z").timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            },
            &admin_a,
        ))
        .await
        .unwrap()
        .into_inner()
        .timers;
    // i in 0..10, even and divisible by 3, due on or after day 1: i = 6.
    assert_eq!(filtered.len(), 1);
    assert_eq!(
        filtered[0].kind,
        arflow_api::events::v1::TimerKind::Aging as i32
    );
    assert_eq!(filtered[0].payer_id, "87726");

    // Cancel: idempotent, scoped.
    let id = seen[0].id.clone();
    let cancel = |key: &str| {
        with_key(
            pb::CancelTimerRequest {
                timer_id: id.clone(),
            },
            key,
        )
    };
    let first = client
        .cancel_timer(cancel(&admin_a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.timer.as_ref().unwrap().state,
        pb::TimerState::Cancelled as i32
    );
    let again = client
        .cancel_timer(cancel(&admin_a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.timer, first.timer,
        "cancelling again answers the same timer"
    );
    let other_tenant = client.cancel_timer(cancel(&admin_b)).await.unwrap_err();
    assert_eq!(other_tenant.code(), Code::NotFound);
    assert_eq!(other_tenant.message(), "timer not found");
    let other_clinic = client.cancel_timer(cancel(&scoped_a)).await.unwrap_err();
    assert_eq!(other_clinic.code(), Code::NotFound);
    let wrong_role = client.cancel_timer(cancel(&partner_a)).await.unwrap_err();
    assert_eq!(wrong_role.code(), Code::PermissionDenied);
    // A clinic-scoped key lists only its clinics' timers.
    let scoped = client
        .list_timers(with_key(pb::ListTimersRequest::default(), &scoped_a))
        .await
        .unwrap()
        .into_inner();
    assert!(scoped.timers.is_empty());

    // A fired timer cannot be cancelled.
    timers::fire_due(&env.db, &settings(), at("2026-05-02T12:00:00Z"), 100)
        .await
        .unwrap();
    let fired_id = seen[1].id.clone();
    let fired = client
        .cancel_timer(with_key(
            pb::CancelTimerRequest { timer_id: fired_id },
            &admin_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(fired.code(), Code::FailedPrecondition);

    // Field violations name the fields.
    let bad = client
        .list_timers(with_key(
            pb::ListTimersRequest {
                page_size: -1,
                page_token: "garbage".into(),
                ..Default::default()
            },
            &admin_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["page_size", "page_token"]);
    let bad_id = client
        .cancel_timer(with_key(
            pb::CancelTimerRequest {
                timer_id: "not-a-uuid".into(),
            },
            &admin_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);

    // CreateTimer: a follow-up, idempotent on (subject, due).
    let create = || {
        with_key(
            pb::CreateTimerRequest {
                subject: "claim-9".into(),
                due_time: Some(prost_types::Timestamp {
                    seconds: at("2026-06-01T13:00:00Z").timestamp(),
                    nanos: 0,
                }),
                clinic_id: "clinic-1".into(),
                payer_id: "87726".into(),
                note: "call back for reference number".into(),
            },
            &admin_a,
        )
    };
    let made = client
        .create_timer(create())
        .await
        .unwrap()
        .into_inner()
        .timer
        .unwrap();
    let again = client
        .create_timer(create())
        .await
        .unwrap()
        .into_inner()
        .timer
        .unwrap();
    assert_eq!(made.id, again.id);
    assert_eq!(made.kind_name, "follow_up");

    // Cron runs of the tenant, newest first.
    for day in 1..=3 {
        let instant = at(&format!("2026-04-0{day}T10:00:00Z"));
        cron_jobs::run_once(
            &env.db,
            &clock,
            cron_jobs::AGING_SNAPSHOT,
            &TenantId::new("tenant-a"),
            chrono_tz::America::New_York,
            AgingBasis::Submission,
            instant,
            "scheduler-a",
        )
        .await
        .unwrap();
    }
    let runs = client
        .list_cron_runs(with_key(
            pb::ListCronRunsRequest {
                job: "aging_snapshot".into(),
                page_size: 2,
                ..Default::default()
            },
            &admin_a,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.runs.len(), 2);
    assert!(!runs.next_page_token.is_empty());
    assert_eq!(
        runs.runs[0].scheduled_time.as_ref().unwrap().seconds,
        at("2026-04-03T10:00:00Z").timestamp()
    );
    let rest = client
        .list_cron_runs(with_key(
            pb::ListCronRunsRequest {
                job: "aging_snapshot".into(),
                page_size: 2,
                page_token: runs.next_page_token,
            },
            &admin_a,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.runs.len(), 1);
    let none_for_b = client
        .list_cron_runs(with_key(pb::ListCronRunsRequest::default(), &admin_b))
        .await
        .unwrap()
        .into_inner();
    assert!(none_for_b.runs.is_empty());

    // The audit log names the cancelled timer.
    let audited = eventually(WAIT, || async {
        let rows = sqlx::query("SELECT method, object_ids FROM audit_log")
            .fetch_all(env.db.pool())
            .await
            .ok()?;
        rows.iter()
            .any(|r| {
                let method: String = r.try_get("method").unwrap_or_default();
                let objects: String = r.try_get("object_ids").unwrap_or_default();
                method.ends_with("/CancelTimer") && objects.contains(&id)
            })
            .then_some(())
    })
    .await;
    assert!(audited.is_ok(), "CancelTimer is audited with the timer id");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_api_postgres() {
    scheduler_api(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_api_sqlite() {
    scheduler_api(Kind::Sqlite).await;
}

/// Issue 10, through the consumer on the bus and ListTimers: aging keeps the original bill
/// date across a resubmission, timely-filing warnings at 30/14/7 days are cancelled by the
/// payer's acceptance, and a denial lists its appeal and corrected-claim deadlines.
async fn deadlines_through_list_timers(kind: Kind) {
    use arflow_api::events::v1 as events;
    use arflow_api::wire::date_to_pb as date;
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let mut consumer = env.replica("scheduler-b", clock.clone(), settings()).await;
    consumer.start();
    let server = start(&env, clock.clone()).await;
    let client = server.client().await;
    let admin = key(&env.db, "t1", Role::Admin, &[]).await;
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let status = |version: i64, from: &str, to: &str| {
        (
            version,
            events::ClaimStatusChanged {
                claim_id: "c-1".into(),
                clinic_id: "clinic-1".into(),
                payer_id: "87726".into(),
                from_status: format!("CLAIM_STATUS_{from}"),
                to_status: format!("CLAIM_STATUS_{to}"),
                reason: String::new(),
                balance_cents: 15_000,
                replaced_by_claim_id: String::new(),
            },
        )
    };
    let original = common::submitted_payload("c-1", day(2026, 1, 5));
    env.publish_claim_event("t1", "c-1", 1, clock.now(), &original)
        .await;
    let (v, rejected) = status(2, "SUBMITTED", "REJECTED");
    env.publish_claim_event("t1", "c-1", v, clock.now(), &rejected)
        .await;
    env.publish_claim_event(
        "t1",
        "c-1",
        3,
        clock.now(),
        &events::ClaimSubmitted {
            submission_date: Some(date(day(2026, 2, 10))),
            ..original.clone()
        },
    )
    .await;
    let list = |kind_name: &'static str, state: pb::TimerState| {
        let mut client = client.clone();
        let admin = admin.clone();
        async move {
            client
                .list_timers(with_key(
                    pb::ListTimersRequest {
                        subject: "c-1".into(),
                        kind_name: kind_name.into(),
                        state: state as i32,
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .timers
        }
    };
    // The resubmission is applied once its status check is re-planned (Feb 10 + 14 business
    // days = Mar 3) and the first one (Jan 26) cancelled.
    let checks = eventually(WAIT, || async {
        let checks = list("status_check", pb::TimerState::Pending).await;
        (checks.len() == 1
            && checks[0].due_time.as_ref().unwrap().seconds
                == at("2026-03-03T05:00:00Z").timestamp())
        .then_some(checks)
    })
    .await
    .unwrap();
    assert_eq!(checks.len(), 1);
    // Aging from the original bill date, Jan 5, never cancelled by the resubmission.
    let aging = list("aging_30", pb::TimerState::Unspecified).await;
    assert_eq!(aging.len(), 1);
    assert_eq!(aging[0].state, pb::TimerState::Pending as i32);
    assert_eq!(
        aging[0].due_time.as_ref().unwrap().seconds,
        at("2026-02-04T05:00:00Z").timestamp()
    );
    // Timely filing (commercial, 90 days from Jan 5 = Apr 5) at 30, 14 and 7 days before.
    let warnings = list("timely_filing_warning", pb::TimerState::Pending).await;
    assert_eq!(
        warnings
            .iter()
            .map(|t| (t.due_time.as_ref().unwrap().seconds, t.deadline.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (at("2026-03-06T05:00:00Z").timestamp(), "2026-04-05"),
            (at("2026-03-22T04:00:00Z").timestamp(), "2026-04-05"),
            (at("2026-03-29T04:00:00Z").timestamp(), "2026-04-05"),
        ]
    );
    // Accepted (277CA A2): the warnings are cancelled.
    let (v, accepted) = status(4, "SUBMITTED", "ACCEPTED");
    env.publish_claim_event("t1", "c-1", v, clock.now(), &accepted)
        .await;
    eventually(WAIT, || async {
        (list("timely_filing_warning", pb::TimerState::Cancelled)
            .await
            .len()
            == 3)
            .then_some(())
    })
    .await
    .unwrap();
    assert!(
        list("timely_filing_warning", pb::TimerState::Pending)
            .await
            .is_empty()
    );
    // Denied Feb 2: the first-level appeal (commercial: 60 days, Apr 3) and the corrected
    // claim (90 days from the remittance, May 3), each warned 14 days ahead.
    env.publish_claim_event(
        "t1",
        "c-1",
        5,
        clock.now(),
        &events::ClaimDenied {
            claim_id: "c-1".into(),
            clinic_id: "clinic-1".into(),
            payer_id: "87726".into(),
            denial_id: "d-1".into(),
            category: "DENIAL_CATEGORY_CODING_MODIFIER".into(),
            group_code: "CO".into(),
            reason_code: "4".into(),
            appealable: true,
            amount_cents: 15_000,
            balance_cents: 15_000,
            denial_date: Some(date(day(2026, 2, 2))),
            ..Default::default()
        },
    )
    .await;
    let corrected = eventually(WAIT, || async {
        let t = list("corrected_claim_deadline_warning", pb::TimerState::Pending).await;
        (!t.is_empty()).then_some(t)
    })
    .await
    .unwrap();
    assert_eq!(corrected.len(), 1);
    assert_eq!(corrected[0].deadline, "2026-05-03");
    assert_eq!(corrected[0].denial_id, "d-1");
    assert_eq!(
        corrected[0].due_time.as_ref().unwrap().seconds,
        at("2026-04-19T04:00:00Z").timestamp()
    );
    let appeal = list("appeal_deadline_warning", pb::TimerState::Pending).await;
    assert_eq!(appeal.len(), 1);
    assert_eq!(appeal[0].deadline, "2026-04-03");
    consumer.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_through_list_timers_postgres() {
    deadlines_through_list_timers(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_through_list_timers_sqlite() {
    deadlines_through_list_timers(Kind::Sqlite).await;
}
