//! Fixtures of the scheduler tests: a fresh database (Postgres with a Redis prefix, or a SQLite
//! file), scheduler replicas on a chosen clock, claim events published the way the claims
//! service publishes them (outbox in a transaction; the relay moves them), and counters over
//! the outbox.
#![allow(dead_code, clippy::unwrap_used)]
use std::time::Duration;

use arflow_api::events::v1 as events;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::bus::{self, Bus};
use arflow_platform::config::BusConfig;
use arflow_platform::service::Deps;
use arflow_platform::{Clock, Db};
use arflow_scheduler::store;
use arflow_scheduler::{Options, Scheduler, Settings};
use arflow_testkit::{PgDatabase, RedisPrefix, SqliteFile};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Postgres + Redis Streams (distributed mode).
    Postgres,
    /// SQLite with the embedded bus.
    Sqlite,
}

pub fn bus_config() -> BusConfig {
    BusConfig {
        poll_interval_ms: 20,
        batch_size: 64,
        block_ms: 100,
        claim_idle_ms: 2_000,
        max_deliveries: 5,
        retention_secs: 3600,
    }
}

pub fn settings() -> Settings {
    Settings {
        poll_interval_ms: 50,
        fire_batch_size: 200,
        default_time_zone: "America/New_York".into(),
        ..Settings::default()
    }
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A date as events carry it.
pub use arflow_api::wire::date_to_pb as date;

/// One database (and bus) that replicas share.
pub struct Env {
    pub kind: Kind,
    pub db: Db,
    pub bus: Bus,
    redis: Option<RedisPrefix>,
    _pg: Option<PgDatabase>,
    _sqlite: Option<SqliteFile>,
    relay: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

impl Env {
    pub async fn new(kind: Kind) -> Env {
        match kind {
            Kind::Postgres => {
                let pg = PgDatabase::create().await.unwrap();
                let db = Db::connect(&pg.url, 16).await.unwrap();
                db.migrate().await.unwrap();
                let prefix = RedisPrefix::new();
                let bus = Bus::redis(db.clone(), &prefix.url, &prefix.prefix, bus_config())
                    .await
                    .unwrap();
                let token = CancellationToken::new();
                let relay = tokio::spawn({
                    let (bus, token) = (bus.clone(), token.clone());
                    async move { bus.run_relay(token).await }
                });
                Env {
                    kind,
                    db,
                    bus,
                    redis: Some(prefix),
                    _pg: Some(pg),
                    _sqlite: None,
                    relay: Some((token, relay)),
                }
            }
            Kind::Sqlite => {
                let file = SqliteFile::create().unwrap();
                let db = Db::connect(&file.url, 4).await.unwrap();
                db.migrate().await.unwrap();
                let bus = Bus::embedded(db.clone(), bus_config());
                Env {
                    kind,
                    db,
                    bus,
                    redis: None,
                    _pg: None,
                    _sqlite: Some(file),
                    relay: None,
                }
            }
        }
    }

    /// A new replica: its own pool (and, on Redis, its own bus connection), as another process
    /// would have.
    pub async fn replica(&self, name: &str, clock: Clock, settings: Settings) -> Replica {
        let (db, bus) = match self.kind {
            Kind::Postgres => {
                let db = Db::connect(&self._pg.as_ref().unwrap().url, 8)
                    .await
                    .unwrap();
                let r = self.redis.as_ref().unwrap();
                let bus = Bus::redis(db.clone(), &r.url, &r.prefix, bus_config())
                    .await
                    .unwrap();
                (db, bus)
            }
            Kind::Sqlite => (self.db.clone(), self.bus.clone()),
        };
        let scheduler = arflow_scheduler::build(
            Deps {
                db,
                clock,
                bus,
                replica: name.to_string(),
                max_message_bytes: 4 * 1024 * 1024,
            },
            Options {
                settings,
                payer_rules: PayerRuleSet::builtin(),
                claim_source: None,
            },
        )
        .unwrap();
        Replica {
            scheduler,
            task: None,
        }
    }

    /// Publishes `payload` on stream `claims` as the claims service does.
    pub async fn publish_claim_event<M: bus::EventPayload>(
        &self,
        tenant: &str,
        claim_id: &str,
        version: i64,
        occur: DateTime<Utc>,
        payload: &M,
    ) {
        let envelope = bus::envelope("claims", tenant, claim_id, version, occur, payload);
        let mut tx = self.db.begin().await.unwrap();
        bus::publish(&mut tx, &envelope).await.unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn submit(
        &self,
        tenant: &str,
        claim_id: &str,
        submitted: NaiveDate,
        occur: DateTime<Utc>,
    ) {
        self.publish_claim_event(
            tenant,
            claim_id,
            1,
            occur,
            &submitted_payload(claim_id, submitted),
        )
        .await;
    }

    /// TimerFired events in the outbox: (timer id, kind name).
    pub async fn fired_events(&self) -> Vec<(String, String)> {
        let rows = sqlx::query(
            "SELECT envelope, events FROM bus_outbox WHERE event_type = 'arflow.events.v1.TimerFired' \
             ORDER BY seq",
        )
        .fetch_all(self.db.pool())
        .await
        .unwrap();
        rows.iter()
            .flat_map(|r| {
                bus::outbox_envelopes(&r.get::<Vec<u8>, _>("envelope"), r.get("events")).unwrap()
            })
            .map(|env| {
                let p: events::TimerFired = bus::decode_payload(&env).unwrap();
                (p.timer_id, p.kind_name)
            })
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
    }

    /// (kind, state) of a claim's timers, by due order.
    pub async fn timers_of(&self, claim_id: &str) -> Vec<(String, String)> {
        sqlx::query(
            "SELECT kind, state FROM scheduler_timers WHERE subject = $1 ORDER BY due_at, kind",
        )
        .bind(claim_id)
        .fetch_all(self.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get("kind").unwrap(), r.try_get("state").unwrap()))
        .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((token, _)) = &self.relay {
            token.cancel();
        }
    }
}

pub fn submitted_payload(claim_id: &str, submitted: NaiveDate) -> events::ClaimSubmitted {
    events::ClaimSubmitted {
        claim_id: claim_id.to_string(),
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        status: "CLAIM_STATUS_SUBMITTED".into(),
        submission_date: Some(date(submitted)),
        first_service_date: Some(date(submitted)),
        last_service_date: Some(date(submitted)),
        total_charge_cents: 15_000,
        balance_cents: 15_000,
        original_claim_id: String::new(),
        void: false,
    }
}

/// A scheduler replica, running or not.
pub struct Replica {
    pub scheduler: Scheduler,
    task: Option<(
        CancellationToken,
        JoinHandle<Result<(), arflow_scheduler::Error>>,
    )>,
}

impl Replica {
    pub fn start(&mut self) {
        let token = CancellationToken::new();
        let s = self.scheduler.clone();
        let t = token.clone();
        self.task = Some((token, tokio::spawn(async move { s.run(t).await })));
    }

    pub async fn stop(&mut self) {
        if let Some((token, task)) = self.task.take() {
            token.cancel();
            tokio::time::timeout(WAIT, task)
                .await
                .expect("scheduler stops in time")
                .unwrap()
                .unwrap();
        }
    }
}

pub fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Applies one event through the scheduler's handler, in its own transaction (as the bus does).
pub async fn apply<M: bus::EventPayload>(
    env: &Env,
    handler: &arflow_scheduler::consumer::ClaimEvents,
    claim_id: &str,
    version: i64,
    payload: &M,
) {
    let envelope = bus::envelope(
        "claims",
        "t1",
        claim_id,
        version,
        at("2026-01-05T15:00:00Z"),
        payload,
    );
    let mut tx = env.db.begin().await.unwrap();
    bus::Handler::handle(handler, &mut tx, &envelope)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

pub fn paid(claim_id: &str, balance: i64, status: &str) -> events::ClaimPaid {
    events::ClaimPaid {
        claim_id: claim_id.into(),
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        remittance_id: "r1".into(),
        paid_cents: 15_000 - balance,
        balance_cents: balance,
        status: status.into(),
        payment_date: Some(date(ymd(2026, 2, 1))),
    }
}

pub async fn projection_of(env: &Env, claim_id: &str) -> store::ProjectedClaim {
    let mut conn = env.db.pool().acquire().await.unwrap();
    store::get_claim(&mut conn, &store::TenantId::new("t1"), claim_id)
        .await
        .unwrap()
        .unwrap()
}

pub fn status_changed(claim_id: &str, from: &str, to: &str) -> events::ClaimStatusChanged {
    events::ClaimStatusChanged {
        claim_id: claim_id.into(),
        clinic_id: "clinic-1".into(),
        payer_id: "87726".into(),
        from_status: format!("CLAIM_STATUS_{from}"),
        to_status: format!("CLAIM_STATUS_{to}"),
        reason: String::new(),
        balance_cents: 15_000,
        replaced_by_claim_id: String::new(),
    }
}

/// A claim's timers of one kind in one state: (due day, the payload's basis date or deadline).
pub async fn timers_in(
    env: &Env,
    claim_id: &str,
    kind: Option<&str>,
    state: store::TimerState,
) -> Vec<store::StoredTimer> {
    store::list_timers(
        &env.db,
        &store::TenantId::new("t1"),
        &store::TimerFilter {
            subject: Some(claim_id.into()),
            kind: kind.map(str::to_string),
            state: Some(state),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap()
}

pub fn days_of(timers: &[store::StoredTimer]) -> Vec<(String, NaiveDate)> {
    timers
        .iter()
        .map(|t| (t.kind.clone(), t.due_at.date_naive()))
        .collect()
}
