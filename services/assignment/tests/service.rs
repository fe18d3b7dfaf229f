//! The assignment service end to end: events published into the outbox of a real database
//! (Postgres + Redis Streams, and the embedded SQLite log), consumed by one or two running
//! service instances, and the RPCs through a real server on port 0 with generated clients.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
use std::time::Duration;

use arflow_api::assignment::v1 as pb;
use arflow_api::assignment::v1::assignment_service_client::AssignmentServiceClient;
use arflow_api::common::v1::Date;
use arflow_api::events::v1 as events;
use arflow_assignment::{HEALTH_NAME, Options};
use arflow_platform::auth::{self, Role};
use arflow_platform::bus::{self, Bus};
use arflow_platform::config::{AuthConfig, BusConfig, GrpcConfig};
use arflow_platform::grpc::{self, ServerOptions};
use arflow_platform::{Clock, Db};
use arflow_testkit::{PgDatabase, RedisPrefix, SqliteFile, eventually};
use sqlx::Row;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

const WAIT: Duration = Duration::from_secs(20);
const TENANT: &str = "acme";

fn bus_config() -> BusConfig {
    BusConfig {
        poll_interval_ms: 20,
        block_ms: 200,
        ..BusConfig::default()
    }
}

/// A database, the bus, N running service instances and one gRPC server (on instance 0).
struct Env {
    db: Db,
    clock: Clock,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    bus: Bus,
    _pg: Option<PgDatabase>,
    _redis: Option<RedisPrefix>,
    _sqlite: Option<SqliteFile>,
}

impl Env {
    async fn postgres(instances: usize) -> Env {
        let pg = PgDatabase::create().await.unwrap();
        let redis = RedisPrefix::new();
        let db = Db::connect(&pg.url, 16).await.unwrap();
        db.migrate().await.unwrap();
        let mut buses = Vec::new();
        for _ in 0..instances {
            buses.push(
                Bus::redis(db.clone(), &redis.url, &redis.prefix, bus_config())
                    .await
                    .unwrap(),
            );
        }
        Env::start(db, buses, Some(pg), Some(redis), None).await
    }

    async fn sqlite() -> Env {
        let file = SqliteFile::create().unwrap();
        let db = Db::connect(&file.url, 4).await.unwrap();
        db.migrate().await.unwrap();
        let bus = Bus::embedded(db.clone(), bus_config());
        Env::start(db, vec![bus], None, None, Some(file)).await
    }

    async fn start(
        db: Db,
        buses: Vec<Bus>,
        pg: Option<PgDatabase>,
        redis: Option<RedisPrefix>,
        sqlite: Option<SqliteFile>,
    ) -> Env {
        let clock = Clock::system();
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut first = None;
        let bus0 = buses[0].clone();
        for (i, bus) in buses.into_iter().enumerate() {
            let mut options =
                Options::new(db.clone(), clock.clone(), bus.clone(), format!("asg-{i}"));
            options.sweep_interval = Duration::from_millis(100);
            options.watch_poll_interval = Duration::from_millis(20);
            let service = arflow_assignment::build(options);
            first.get_or_insert_with(|| service.clone());
            let relay_stop = shutdown.clone();
            tasks.push(tokio::spawn(async move { bus.run_relay(relay_stop).await }));
            tasks.push(tokio::spawn(service.run(shutdown.clone())));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = tonic::service::Routes::new(first.unwrap().grpc_service());
        let options = ServerOptions {
            grpc: GrpcConfig {
                listen: String::new(),
                default_timeout_ms: 10_000,
                max_message_bytes: 4 * 1024 * 1024,
            },
            auth: AuthConfig { key_cache_secs: 1 },
            drain_timeout: Duration::from_secs(1),
        };
        let server = grpc::serve(
            listener,
            routes,
            &[HEALTH_NAME],
            db.clone(),
            clock.clone(),
            options,
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(server));
        Env {
            db,
            clock,
            addr,
            shutdown,
            tasks,
            bus: bus0,
            _pg: pg,
            _redis: redis,
            _sqlite: sqlite,
        }
    }

    async fn client(&self) -> AssignmentServiceClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        AssignmentServiceClient::new(channel)
    }

    async fn key(&self, tenant: &str, role: Role) -> (String, String) {
        auth::create_key(&self.db, &self.clock, tenant, role, &[], "test")
            .await
            .unwrap()
    }

    /// Publishes claim events the way the claims service does: in a transaction on the same
    /// database; the relay (or the embedded log) delivers them.
    async fn publish(&self, envelopes: &[bus::Envelope]) {
        let mut tx = self.db.begin().await.unwrap();
        bus::publish_many(&mut tx, envelopes).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Redis mode: appends an already relayed envelope to its stream again, as a relay that
    /// crashed between XADD and marking the rows does, and waits until the group has read and
    /// acknowledged it. Returns false in embedded mode, which has no redelivery (the cursor
    /// moves with the effects).
    async fn redeliver(&self, envelope: &bus::Envelope) -> bool {
        use prost::Message as _;
        use redis::AsyncCommands as _;
        let (Some(key), Some(redis)) = (self.bus.stream_key(&envelope.producer), &self._redis)
        else {
            return false;
        };
        let client = redis::Client::open(redis.url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let id: String = con
            .xadd(
                &key,
                "*",
                &[
                    ("event_id", envelope.event_id.as_bytes().to_vec()),
                    ("envelope", envelope.encode_to_vec()),
                ],
            )
            .await
            .unwrap();
        eventually(WAIT, || {
            let (mut con, key, id) = (con.clone(), key.clone(), id.clone());
            async move {
                let info: redis::streams::StreamInfoGroupsReply =
                    con.xinfo_groups(&key).await.ok()?;
                let g = info.groups.into_iter().find(|g| g.name == "assignment")?;
                (g.last_delivered_id == id && g.pending == 0).then_some(())
            }
        })
        .await
        .unwrap();
        true
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("stops in time")
                .unwrap()
                .unwrap();
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
            .get::<i64, _>(0)
    }
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

fn envelope<M: prost::Message>(
    producer: &str,
    name: &str,
    aggregate: &str,
    version: i64,
    payload: &M,
) -> bus::Envelope {
    bus::new_envelope(
        producer,
        &format!("arflow.events.v1.{name}"),
        TENANT,
        aggregate,
        version,
        chrono::Utc::now(),
        payload,
    )
}

fn submitted(claim: &str, payer: &str, clinic: &str) -> bus::Envelope {
    envelope(
        "claims",
        "ClaimSubmitted",
        claim,
        1,
        &events::ClaimSubmitted {
            claim_id: claim.into(),
            clinic_id: clinic.into(),
            payer_id: payer.into(),
            status: "CLAIM_STATUS_SUBMITTED".into(),
            submission_date: Some(Date {
                year: 2026,
                month: 1,
                day: 5,
            }),
            total_charge_cents: 30_000,
            balance_cents: 30_000,
            ..Default::default()
        },
    )
}

fn denied(claim: &str, payer: &str, clinic: &str, version: i64) -> bus::Envelope {
    envelope(
        "claims",
        "ClaimDenied",
        claim,
        version,
        &events::ClaimDenied {
            claim_id: claim.into(),
            clinic_id: clinic.into(),
            payer_id: payer.into(),
            denial_id: format!("d-{claim}"),
            category: "DENIAL_CATEGORY_AUTHORIZATION".into(),
            group_code: "CO".into(),
            reason_code: "197".into(),
            appealable: true,
            resolution: "request_retro_authorization".into(),
            owner: "auth_team".into(),
            amount_cents: 30_000,
            balance_cents: 30_000,
            ..Default::default()
        },
    )
}

fn timer(claim: &str, kind: events::TimerKind, kind_name: &str) -> bus::Envelope {
    envelope(
        "scheduler",
        "TimerFired",
        &uuid::Uuid::now_v7().to_string(),
        1,
        &events::TimerFired {
            timer_id: uuid::Uuid::now_v7().to_string(),
            subject: claim.into(),
            kind: kind as i32,
            kind_name: kind_name.into(),
            threshold_days: 30,
            ..Default::default()
        },
    )
}

fn specialist(name: &str, payers: &[&str], clinics: &[&str], capacity: i32) -> pb::Specialist {
    pb::Specialist {
        display_name: name.into(),
        payer_ids: payers.iter().map(|s| s.to_string()).collect(),
        clinic_ids: clinics.iter().map(|s| s.to_string()).collect(),
        capacity,
        working_hours: Some(pb::WorkingHours {
            days: vec![1, 2, 3, 4, 5],
            start_time: "08:00".into(),
            end_time: "17:00".into(),
            time_zone: "America/New_York".into(),
        }),
        active: true,
        ..Default::default()
    }
}

async fn create(
    client: &mut AssignmentServiceClient<Channel>,
    key: &str,
    s: pb::Specialist,
) -> pb::Specialist {
    client
        .create_specialist(with_key(
            pb::CreateSpecialistRequest {
                specialist: Some(s),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .specialist
        .unwrap()
}

async fn tasks_of(
    client: &mut AssignmentServiceClient<Channel>,
    key: &str,
    specialist_id: &str,
) -> Vec<pb::Task> {
    client
        .list_my_tasks(with_key(
            pb::ListMyTasksRequest {
                specialist_id: specialist_id.into(),
                include_snoozed: true,
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .tasks
}

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
        "ClaimPaid",
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
        "ClaimStatusChanged",
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
        deadline: Some(Date {
            year: chrono::Datelike::year(&deadline),
            month: chrono::Datelike::month(&deadline) as i32,
            day: chrono::Datelike::day(&deadline) as i32,
        }),
        lead_days: 5,
        ..Default::default()
    };
    let warn_env = envelope("scheduler", "TimerFired", &warning.timer_id, 1, &warning);
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
        "ClaimStatusChanged",
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

/// The RPCs through the real server: validation, tenancy, a specialist's own queue,
/// ClaimNextTask, UpdateTask, CompleteTask, the follow-up log, stats, reassign, out of office
/// and WatchQueues resuming from a cursor.
#[tokio::test]
async fn rpcs_through_the_server() {
    let env = Env::postgres(1).await;
    let (_, boss) = env.key(TENANT, Role::Supervisor).await;
    let (_, stranger) = env.key("globex", Role::Supervisor).await;
    let (ann_key_id, ann_key) = env.key(TENANT, Role::Specialist).await;
    let (_, unlinked) = env.key(TENANT, Role::Specialist).await;
    let mut client = env.client().await;

    // Field violations name the proto paths.
    let bad = client
        .create_specialist(with_key(
            pb::CreateSpecialistRequest {
                specialist: Some(pb::Specialist {
                    capacity: 0,
                    payer_ids: vec![],
                    ..specialist("", &[], &["C1"], 0)
                }),
            },
            &boss,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    for f in [
        "specialist.display_name",
        "specialist.payer_ids",
        "specialist.capacity",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    // Specialists may not manage specialists.
    let denied_call = client
        .create_specialist(with_key(
            pb::CreateSpecialistRequest {
                specialist: Some(specialist("X", &["P1"], &["*"], 1)),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied_call.code(), Code::PermissionDenied);

    let ann = create(
        &mut client,
        &boss,
        pb::Specialist {
            key_id: ann_key_id.clone(),
            ..specialist("Ann", &["P1"], &["*"], 10)
        },
    )
    .await;
    let bob = create(&mut client, &boss, specialist("Bob", &["P1"], &["*"], 10)).await;
    // Another tenant's specialist answers NOT_FOUND.
    let other = client
        .get_specialist(with_key(
            pb::GetSpecialistRequest {
                specialist_id: ann.id.clone(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);

    // Three claims of P1: denial work for both specialists.
    let claims = ["r-1", "r-2", "r-3", "r-4"];
    let events: Vec<bus::Envelope> = claims.iter().map(|c| denied(c, "P1", "C1", 1)).collect();
    env.publish(&events).await;
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM asg_tasks WHERE status = 'assigned'")
            .await
            == 4)
            .then_some(())
    })
    .await
    .unwrap();

    // Ann's own key: her queue, ordered by priority.
    let mine = client
        .list_my_tasks(with_key(pb::ListMyTasksRequest::default(), &ann_key))
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|t| t.specialist_id == ann.id));
    assert!(mine[0].priority >= mine[1].priority);
    // An unlinked specialist key is told so.
    let e = client
        .list_my_tasks(with_key(pb::ListMyTasksRequest::default(), &unlinked))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // A supervisor must name whose queue.
    let e = client
        .list_my_tasks(with_key(pb::ListMyTasksRequest::default(), &boss))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Bob's task is not Ann's to see.
    let bobs = tasks_of(&mut client, &boss, &bob.id).await;
    let e = client
        .get_task(with_key(
            pb::GetTaskRequest {
                task_id: bobs[0].id.clone(),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Snooze the top task: ClaimNextTask pulls the other one.
    let snoozed = client
        .update_task(with_key(
            pb::UpdateTaskRequest {
                task_id: mine[0].id.clone(),
                notes: "called, waiting for the auth team".into(),
                snooze_until: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
                update_mask: None,
            },
            &ann_key,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(snoozed.notes, "called, waiting for the auth team");
    let pulled = client
        .claim_next_task(with_key(pb::ClaimNextTaskRequest::default(), &ann_key))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(pulled.id, mine[1].id);
    assert_eq!(pulled.status, pb::TaskStatus::InProgress as i32);

    // The follow-up log: the payer has no record -> a resubmission task, and the next
    // follow-up date goes to the scheduler as FollowUpScheduled.
    let next = chrono::Utc::now().date_naive() + chrono::Days::new(14);
    let logged = client
        .log_follow_up(with_key(
            pb::LogFollowUpRequest {
                follow_up: Some(pb::FollowUp {
                    claim_id: pulled.claim_id.clone(),
                    task_id: pulled.id.clone(),
                    channel: pb::FollowUpChannel::Phone as i32,
                    payer_reference: "REF-123".into(),
                    representative: "Rep J.".into(),
                    answer: pb::FollowUpAnswer::NoRecord as i32,
                    next_follow_up_date: Some(Date {
                        year: chrono::Datelike::year(&next),
                        month: chrono::Datelike::month(&next) as i32,
                        day: chrono::Datelike::day(&next) as i32,
                    }),
                    ..Default::default()
                }),
                specialist_id: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!logged.raised_task_id.is_empty());
    let raised = client
        .get_task(with_key(
            pb::GetTaskRequest {
                task_id: logged.raised_task_id.clone(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(raised.kind, pb::TaskKind::Resubmission as i32);
    assert_eq!(raised.specialist_id, ann.id, "sticky to who has the claim");
    assert_eq!(
        env.count("SELECT COALESCE(SUM(events), 0) FROM bus_outbox WHERE event_type = 'arflow.events.v1.FollowUpScheduled'")
            .await,
        1
    );
    // Paid answers need a date and a check number.
    let e = client
        .log_follow_up(with_key(
            pb::LogFollowUpRequest {
                follow_up: Some(pb::FollowUp {
                    claim_id: pulled.claim_id.clone(),
                    channel: pb::FollowUpChannel::Portal as i32,
                    answer: pb::FollowUpAnswer::Paid as i32,
                    ..Default::default()
                }),
                specialist_id: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    client
        .log_follow_up(with_key(
            pb::LogFollowUpRequest {
                follow_up: Some(pb::FollowUp {
                    claim_id: pulled.claim_id.clone(),
                    channel: pb::FollowUpChannel::Edi276277 as i32,
                    answer: pb::FollowUpAnswer::InProcess as i32,
                    ..Default::default()
                }),
                specialist_id: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap();
    let log = client
        .list_follow_ups(with_key(
            pb::ListFollowUpsRequest {
                claim_id: pulled.claim_id.clone(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .follow_ups;
    assert_eq!(
        log.iter().map(|f| f.answer).collect::<Vec<_>>(),
        [
            pb::FollowUpAnswer::NoRecord as i32,
            pb::FollowUpAnswer::InProcess as i32
        ]
    );
    assert_eq!(log[0].payer_reference, "REF-123");

    // Complete with an outcome.
    let done = client
        .complete_task(with_key(
            pb::CompleteTaskRequest {
                task_id: pulled.id.clone(),
                outcome: pb::TaskOutcome::CorrectedAndResubmitted as i32,
                notes: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(done.status, pb::TaskStatus::Completed as i32);
    let e = client
        .complete_task(with_key(
            pb::CompleteTaskRequest {
                task_id: pulled.id.clone(),
                outcome: pb::TaskOutcome::Unspecified as i32,
                notes: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Stats.
    let stats = client
        .get_queue_stats(with_key(pb::GetQueueStatsRequest {}, &boss))
        .await
        .unwrap()
        .into_inner();
    let total = stats.total.unwrap();
    assert_eq!(total.open, 4, "3 denials left + 1 resubmission");
    assert!(
        stats
            .by_kind
            .iter()
            .any(|k| k.key == "TASK_KIND_RESUBMISSION" && k.open == 1)
    );
    assert!(stats.by_payer.iter().any(|k| k.key == "P1" && k.open == 4));

    // Reassign one of Bob's tasks to Ann, then send Ann out of office: her tasks go to Bob.
    let moved = client
        .reassign_task(with_key(
            pb::ReassignTaskRequest {
                task_id: bobs[0].id.clone(),
                specialist_id: ann.id.clone(),
                force: false,
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(moved.specialist_id, ann.id);
    let away = client
        .update_specialist(with_key(
            pb::UpdateSpecialistRequest {
                specialist: Some(pb::Specialist {
                    id: ann.id.clone(),
                    out_of_office: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["out_of_office".into()],
                }),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(away.tasks_moved, 3);
    assert_eq!(away.specialist.unwrap().open_tasks, 0);
    assert_eq!(tasks_of(&mut client, &boss, &bob.id).await.len(), 4);

    // WatchQueues: read some changes, reconnect from the last sequence, get the rest once.
    let all: Vec<pb::WatchQueuesResponse> = {
        let mut stream = client
            .watch_queues(with_key(pb::WatchQueuesRequest::default(), &boss))
            .await
            .unwrap()
            .into_inner();
        let expected = env.count("SELECT COUNT(*) FROM asg_task_changes").await as usize;
        let mut got = Vec::new();
        while got.len() < expected {
            got.push(stream.message().await.unwrap().unwrap());
        }
        got
    };
    let seqs: Vec<i64> = all.iter().map(|c| c.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let cut = seqs[seqs.len() / 2];
    let mut resumed = client
        .watch_queues(with_key(
            pb::WatchQueuesRequest {
                after_sequence: cut,
                specialist_id: String::new(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = resumed.message().await.unwrap().unwrap();
    assert_eq!(first.sequence, cut + 1);
    // A live change arrives on the open stream.
    let last = *seqs.last().unwrap();
    client
        .update_task(with_key(
            pb::UpdateTaskRequest {
                task_id: moved.id.clone(),
                notes: "live".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["notes".into()],
                }),
                ..Default::default()
            },
            &boss,
        ))
        .await
        .unwrap();
    let live = loop {
        let m = resumed.message().await.unwrap().unwrap();
        if m.sequence > last {
            break m;
        }
    };
    assert_eq!(live.change, "updated");
    assert_eq!(live.task.unwrap().notes, "live");
    // Other tenants see nothing of this.
    let e = client
        .get_task(with_key(
            pb::GetTaskRequest {
                task_id: moved.id.clone(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    drop(resumed);
    env.stop().await;
}
