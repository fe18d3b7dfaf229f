//! Fixtures of the assignment service tests: a database (Postgres + Redis Streams, or the
//! embedded SQLite log), running service instances and one gRPC server on port 0, API keys,
//! and claim and scheduler events published the way their services publish them.
#![allow(dead_code, clippy::unwrap_used)]
use std::time::Duration;

use arflow_api::assignment::v1 as pb;
use arflow_api::assignment::v1::assignment_service_client::AssignmentServiceClient;
use arflow_api::common::v1::Date;
use arflow_api::events::v1 as events;
use arflow_api::wire::EventPayload;
use arflow_assignment::{HEALTH_NAME, Options, Settings};
use arflow_platform::auth::{self, Role};
use arflow_platform::bus::{self, Bus};
use arflow_platform::config::{AuthConfig, BusConfig, GrpcConfig};
use arflow_platform::grpc::{self, ServerOptions};
use arflow_platform::service::Deps;
use arflow_platform::{Clock, Db};
use arflow_testkit::{PgDatabase, RedisPrefix, SqliteFile, eventually};
use sqlx::Row;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

pub const WAIT: Duration = Duration::from_secs(20);
pub const TENANT: &str = "acme";

pub fn bus_config() -> BusConfig {
    BusConfig {
        poll_interval_ms: 20,
        block_ms: 200,
        ..BusConfig::default()
    }
}

/// A database, the bus, N running service instances and one gRPC server (on instance 0).
pub struct Env {
    pub db: Db,
    pub clock: Clock,
    pub addr: std::net::SocketAddr,
    pub shutdown: CancellationToken,
    pub tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub bus: Bus,
    pub _pg: Option<PgDatabase>,
    pub _redis: Option<RedisPrefix>,
    pub _sqlite: Option<SqliteFile>,
}

impl Env {
    pub async fn postgres(instances: usize) -> Env {
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

    pub async fn sqlite() -> Env {
        let file = SqliteFile::create().unwrap();
        let db = Db::connect(&file.url, 4).await.unwrap();
        db.migrate().await.unwrap();
        let bus = Bus::embedded(db.clone(), bus_config());
        Env::start(db, vec![bus], None, None, Some(file)).await
    }

    pub async fn start(
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
            let deps = Deps {
                db: db.clone(),
                clock: clock.clone(),
                bus: bus.clone(),
                replica: format!("asg-{i}"),
                max_message_bytes: 4 * 1024 * 1024,
            };
            let options = Options {
                settings: Settings {
                    sweep_interval_ms: 100,
                    watch_poll_interval_ms: 20,
                    ..Settings::default()
                },
                denial_source: None,
            };
            let service = arflow_assignment::build(deps, options).unwrap();
            first.get_or_insert_with(|| service.clone());
            let relay_stop = shutdown.clone();
            tasks.push(tokio::spawn(async move { bus.run_relay(relay_stop).await }));
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                service.run(stop).await.map_err(anyhow::Error::from)
            }));
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

    pub async fn client(&self) -> AssignmentServiceClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        AssignmentServiceClient::new(channel)
    }

    pub async fn key(&self, tenant: &str, role: Role) -> (String, String) {
        auth::create_key(&self.db, &self.clock, tenant, role, &[], "test")
            .await
            .unwrap()
    }

    /// Publishes claim events the way the claims service does: in a transaction on the same
    /// database; the relay (or the embedded log) delivers them.
    pub async fn publish(&self, envelopes: &[bus::Envelope]) {
        let mut tx = self.db.begin().await.unwrap();
        bus::publish_many(&mut tx, envelopes).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Redis mode: appends an already relayed envelope to its stream again, as a relay that
    /// crashed between XADD and marking the rows does, and waits until the group has read and
    /// acknowledged it. Returns false in embedded mode, which has no redelivery (the cursor
    /// moves with the effects).
    pub async fn redeliver(&self, envelope: &bus::Envelope) -> bool {
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

    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("stops in time")
                .unwrap()
                .unwrap();
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
            .get::<i64, _>(0)
    }
}

pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// The fields an INVALID_ARGUMENT names in its `BadRequest`.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect()
}

pub fn envelope<M: EventPayload>(
    producer: &str,
    aggregate: &str,
    version: i64,
    payload: &M,
) -> bus::Envelope {
    bus::envelope(
        producer,
        TENANT,
        aggregate,
        version,
        chrono::Utc::now(),
        payload,
    )
}

pub fn submitted(claim: &str, payer: &str, clinic: &str) -> bus::Envelope {
    envelope(
        "claims",
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

pub fn denied(claim: &str, payer: &str, clinic: &str, version: i64) -> bus::Envelope {
    envelope(
        "claims",
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

pub fn timer(claim: &str, kind: events::TimerKind, kind_name: &str) -> bus::Envelope {
    envelope(
        "scheduler",
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

pub fn specialist(name: &str, payers: &[&str], clinics: &[&str], capacity: i32) -> pb::Specialist {
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

pub async fn create(
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

pub async fn tasks_of(
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
