//! Conformance suite of the event bus: one set of test bodies, run against both
//! implementations — the Redis Streams bus on a fresh Postgres database and key prefix, and the
//! embedded bus on a fresh SQLite file (see `conformance!` at the bottom). A few cases only make
//! sense for one of them (NOGROUP, stream trimming; the embedded log's retention).
//!
//! The effect of every handler is a row in a test table without a unique key, so a duplicate
//! effect would be counted. Waits are bounded polls (`eventually`), never fixed sleeps.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use arflow_platform::bus::{self, Bus, Envelope, Fault, Handler, Subscription};
use arflow_platform::config::BusConfig;
use arflow_platform::db::{Backend, Db};
use arflow_platform::metrics::metrics;
use arflow_testkit::{PgDatabase, RedisPrefix, SqliteFile, eventually};
use chrono::Utc;
use redis::streams::{StreamInfoGroupsReply, StreamPendingCountReply, StreamPendingReply};
use sqlx::Row as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Everything the bus logs during the suite (debug level and up), to check that no payload
/// (the stand-in for PHI, `patient-data-…`) is ever logged. Set ARFLOW_TEST_LOG=1 to also see it.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("ARFLOW_TEST_LOG").is_some() {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("arflow_platform=debug")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// No payload in the logs so far (every test's payloads start with `patient-data-`).
fn assert_no_payload_logged() {
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string();
    assert!(logs.contains("bus.handle"), "handler spans are logged");
    assert!(!logs.contains("patient-data-"), "a payload was logged");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Redis,
    Embedded,
}

fn test_config() -> BusConfig {
    BusConfig {
        poll_interval_ms: 20,
        batch_size: 16,
        block_ms: 100,
        claim_idle_ms: 400,
        max_deliveries: 3,
        retention_secs: 3600,
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A running loop (relay or consumer) of the fixture.
struct Task {
    token: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Task {
    /// Cancels the loop and waits for it; it must end cleanly.
    async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .context("loop did not stop")??
    }

    /// Waits for the loop to end on its own (a simulated crash) and returns its result.
    async fn ended(self) -> anyhow::Result<()> {
        let result = tokio::time::timeout(WAIT, self.handle)
            .await
            .context("loop did not end")?;
        self.token.cancel();
        result?
    }
}

/// One backend with a fresh store, a unique producer (= stream) and group names.
struct Fixture {
    kind: Kind,
    db: Db,
    bus: Bus,
    producer: String,
    redis: Option<RedisPrefix>,
    _pg: Option<PgDatabase>,
    _sqlite: Option<SqliteFile>,
}

impl Fixture {
    async fn new(kind: Kind, cfg: BusConfig) -> anyhow::Result<Fixture> {
        init_logs();
        let fixture = match kind {
            Kind::Redis => {
                let pg = PgDatabase::create().await?;
                let db = Db::connect(&pg.url, 8).await?;
                db.migrate().await?;
                let prefix = RedisPrefix::new();
                let bus = Bus::redis(db.clone(), &prefix.url, &prefix.prefix, cfg).await?;
                Fixture {
                    kind,
                    db,
                    bus,
                    producer: String::new(),
                    redis: Some(prefix),
                    _pg: Some(pg),
                    _sqlite: None,
                }
            }
            Kind::Embedded => {
                let file = SqliteFile::create()?;
                let db = Db::connect(&file.url, 4).await?;
                db.migrate().await?;
                let bus = Bus::embedded(db.clone(), cfg);
                Fixture {
                    kind,
                    db,
                    bus,
                    producer: String::new(),
                    redis: None,
                    _pg: None,
                    _sqlite: Some(file),
                }
            }
        };
        sqlx::query(
            "CREATE TABLE test_effects (grp TEXT NOT NULL, event_id TEXT NOT NULL, \
             aggregate_id TEXT NOT NULL, version BIGINT NOT NULL)",
        )
        .execute(fixture.db.pool())
        .await?;
        Ok(Fixture {
            producer: format!("producer-{}", short_id()),
            ..fixture
        })
    }

    fn group(&self, name: &str) -> String {
        format!("{name}-{}", &self.producer["producer-".len()..])
    }

    fn event(&self, aggregate: &str, version: i64) -> Envelope {
        // The payload stands for PHI: it must never show up in logs.
        let payload = format!("patient-data-{aggregate}-{version}");
        bus::new_envelope(
            &self.producer,
            "arflow.test.v1.Changed",
            "tenant-1",
            aggregate,
            version,
            Utc::now(),
            &payload,
        )
    }

    /// `versions` events for each of `aggregates` aggregates, interleaved: a1v1, a2v1, a1v2, …
    fn events(&self, aggregates: usize, versions: i64) -> Vec<Envelope> {
        let mut out = Vec::new();
        for v in 1..=versions {
            for a in 0..aggregates {
                out.push(self.event(&format!("agg-{a}"), v));
            }
        }
        out
    }

    /// Publishes `events` in transactions of `per_tx` events.
    async fn publish(&self, events: &[Envelope], per_tx: usize) -> anyhow::Result<()> {
        for chunk in events.chunks(per_tx.max(1)) {
            let mut tx = self.db.begin().await?;
            for e in chunk {
                bus::publish(&mut tx, e).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    fn start_relay(&self) -> Task {
        let (bus, token) = (self.bus.clone(), CancellationToken::new());
        let t = token.clone();
        Task {
            token,
            handle: tokio::spawn(async move { bus.run_relay(t).await }),
        }
    }

    fn start_consumer(&self, group: &str, consumer: &str, handler: Arc<Recorder>) -> Task {
        let sub = Subscription {
            group: group.to_string(),
            consumer: consumer.to_string(),
            streams: vec![self.producer.clone()],
            handler,
        };
        let (bus, token) = (self.bus.clone(), CancellationToken::new());
        let t = token.clone();
        Task {
            token,
            handle: tokio::spawn(async move { bus.run_consumer(sub, t).await }),
        }
    }

    /// (rows, distinct event ids) of a group's effects.
    async fn effects(&self, group: &str) -> anyhow::Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM test_effects WHERE grp = $1",
        )
        .bind(group)
        .fetch_one(self.db.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("d")?))
    }

    /// Waits until a group has `n` effect rows.
    async fn wait_effects(&self, group: &str, n: i64) -> anyhow::Result<()> {
        eventually(WAIT, || async move {
            let (rows, _) = self.effects(group).await.ok()?;
            (rows >= n).then_some(())
        })
        .await
        .with_context(|| format!("waiting for {n} effects of {group}"))
    }

    /// Events a group has not finished: Redis: not yet delivered (lag) plus pending;
    /// embedded: log rows after the cursor.
    async fn unfinished(&self, group: &str) -> anyhow::Result<i64> {
        match self.kind {
            Kind::Redis => {
                let mut conn = self.redis_conn().await?;
                let key = self.bus.stream_key(&self.producer).unwrap();
                let info: StreamInfoGroupsReply = redis::cmd("XINFO").arg("GROUPS").arg(&key).query_async(&mut conn).await?;
                let g = info.groups.iter().find(|g| g.name == group).context("no such group")?;
                let unpublished: i64 =
                    sqlx::query_scalar(
                        "SELECT COALESCE(SUM(events), 0) FROM bus_outbox WHERE published_at IS NULL",
                    )
                    .fetch_one(self.db.pool())
                        .await?;
                // Entries after the group's last-delivered id (XINFO's lag can be unknown).
                let undelivered: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(format!("({}", g.last_delivered_id))
                    .arg("+")
                    .query_async(&mut conn)
                    .await?;
                Ok(unpublished + undelivered.ids.len() as i64 + g.pending as i64)
            }
            Kind::Embedded => Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM bus_outbox WHERE producer = $1 AND seq > \
                 COALESCE((SELECT last_seq FROM bus_cursor WHERE consumer_group = $2 AND stream = $1), 0)",
            )
            .bind(&self.producer)
            .bind(group)
            .fetch_one(self.db.pool())
            .await?),
        }
    }

    async fn wait_settled(&self, group: &str) -> anyhow::Result<()> {
        eventually(WAIT, || async move {
            (self.unfinished(group).await.ok()? == 0).then_some(())
        })
        .await
        .with_context(|| format!("waiting for {group} to finish its stream"))
    }

    async fn redis_conn(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let prefix = self.redis.as_ref().context("not a redis fixture")?;
        Ok(redis::Client::open(prefix.url.as_str())?
            .get_multiplexed_async_connection()
            .await?)
    }

    fn consumed(&self, group: &str, outcome: &str) -> u64 {
        metrics()
            .events_consumed
            .with_label_values(&[group, self.producer.as_str(), outcome])
            .get()
    }
}

/// A handler that inserts one effect row per event and records what it saw.
#[derive(Default)]
struct Recorder {
    group: String,
    /// Event ids whose handling fails.
    fail: Mutex<HashSet<String>>,
    /// Event ids whose next handling panics (once).
    panic_once: Mutex<HashSet<String>>,
    /// Event ids whose handler writes its effect, then runs a failing statement, ignores the
    /// error and returns Ok (a handler bug; on Postgres it aborts the transaction).
    swallow: Mutex<HashSet<String>>,
    /// Handler calls per event id (committed or not).
    calls: Mutex<HashMap<String, u32>>,
    /// (aggregate, version) in the order the handler saw them.
    seen: Mutex<Vec<(String, i64)>>,
    /// An event id whose handling waits: `held` is notified when it starts, it goes on when
    /// `release` is notified.
    hold: Mutex<Option<String>>,
    held: tokio::sync::Notify,
    release: tokio::sync::Notify,
    /// Take whole batches ([`Handler::handles_batches`]); `batches` counts the calls.
    batched: bool,
    batches: std::sync::atomic::AtomicU32,
}

impl Recorder {
    fn new(group: &str) -> Arc<Recorder> {
        Arc::new(Recorder {
            group: group.to_string(),
            ..Recorder::default()
        })
    }

    fn calls(&self, event_id: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(event_id)
            .copied()
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, conn: &mut sqlx::AnyConnection, event: &Envelope) -> anyhow::Result<()> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(event.event_id.clone())
            .or_default() += 1;
        if self.panic_once.lock().unwrap().remove(&event.event_id) {
            panic!("handler bug while handling {}", event.event_id);
        }
        let hold = self.hold.lock().unwrap().as_ref() == Some(&event.event_id);
        if hold {
            self.held.notify_one();
            self.release.notified().await;
        }
        if self.fail.lock().unwrap().contains(&event.event_id) {
            anyhow::bail!("refusing event {}", event.event_id);
        }
        let payload: String = bus::decode_payload(event)?;
        anyhow::ensure!(
            payload
                == format!(
                    "patient-data-{}-{}",
                    event.aggregate_id, event.aggregate_version
                )
        );
        sqlx::query("INSERT INTO test_effects (grp, event_id, aggregate_id, version) VALUES ($1, $2, $3, $4)")
            .bind(&self.group)
            .bind(&event.event_id)
            .bind(&event.aggregate_id)
            .bind(event.aggregate_version)
            .execute(&mut *conn)
            .await?;
        if self.swallow.lock().unwrap().contains(&event.event_id) {
            let _ignored = sqlx::query("SELECT * FROM no_such_table")
                .execute(&mut *conn)
                .await;
        }
        self.seen
            .lock()
            .unwrap()
            .push((event.aggregate_id.clone(), event.aggregate_version));
        Ok(())
    }

    fn handles_batches(&self) -> bool {
        self.batched
    }

    async fn handle_batch(
        &self,
        conn: &mut sqlx::AnyConnection,
        events: &[&Envelope],
    ) -> anyhow::Result<()> {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for event in events {
            self.handle(conn, event).await?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// Cases run against both buses.

/// Every event reaches every group exactly once in effect, also a group that subscribes after
/// the events were published (it starts at the beginning of the retained log).
async fn at_least_once_delivery(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let (a, b) = (f.group("alpha"), f.group("beta"));
    let events = f.events(3, 10);
    let relay = f.start_relay();
    let (ra, rb) = (Recorder::new(&a), Recorder::new(&b));
    // Two replicas share group alpha.
    let ca = f.start_consumer(&a, "alpha-1", ra.clone());
    let ca2 = f.start_consumer(&a, "alpha-2", ra.clone());
    f.publish(&events[..12], 1).await?;
    f.publish(&events[12..], 6).await?;
    f.wait_effects(&a, 30).await?;
    let cb = f.start_consumer(&b, "beta-1", rb.clone());
    f.wait_effects(&b, 30).await?;
    f.wait_settled(&a).await?;
    f.wait_settled(&b).await?;
    assert_eq!(f.effects(&a).await?, (30, 30));
    assert_eq!(f.effects(&b).await?, (30, 30));
    assert_eq!(f.consumed(&a, "ok"), 30);
    assert_eq!(f.consumed(&b, "ok"), 30);
    assert_eq!(
        metrics()
            .events_published
            .with_label_values(&[f.producer.as_str(), "arflow.test.v1.Changed"])
            .get(),
        30
    );
    let producer = f.producer.clone();
    eventually(WAIT, || {
        let labels = [producer.as_str(), a.as_str()];
        async move { (metrics().consumer_lag.with_label_values(&labels).get() == 0).then_some(()) }
    })
    .await?;
    if kind == Kind::Redis {
        assert_eq!(
            metrics()
                .events_relayed
                .with_label_values(&[f.producer.as_str()])
                .get(),
            30
        );
        let p = f.producer.clone();
        eventually(WAIT, || {
            let p = p.clone();
            async move {
                (metrics()
                    .outbox_backlog
                    .with_label_values(&[p.as_str()])
                    .get()
                    == 0)
                    .then_some(())
            }
        })
        .await?;
    }
    ca.stop().await?;
    ca2.stop().await?;
    cb.stop().await?;
    relay.stop().await
}

/// A consumer that dies after committing a batch's effects but before acknowledging them: the
/// events are redelivered (Redis, to another replica) and skipped by the inbox; the embedded
/// cursor moved in the same transaction, so they are not even redelivered. Never a second
/// effect.
async fn redelivery_after_crash_has_no_duplicate_effect(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("crash");
    let relay = f.start_relay();
    let rec = Recorder::new(&g);
    f.publish(&f.events(1, 5), 5).await?;
    f.bus.inject_fault(Fault::ConsumerCrashAfterCommit, 1);
    let first = f.start_consumer(&g, "replica-1", rec.clone());
    let err = first.ended().await.expect_err("the consumer crashes");
    assert!(err.to_string().contains("simulated crash"), "{err:#}");
    // The five events were published together, so they arrive as one batch (one read, one
    // transaction), committed before the crash.
    assert_eq!(
        f.effects(&g).await?,
        (5, 5),
        "the first batch was committed before the crash"
    );

    let second = f.start_consumer(&g, "replica-2", rec.clone());
    f.wait_effects(&g, 5).await?;
    f.wait_settled(&g).await?;
    match kind {
        // The crashed replica's entries were claimed after claim_idle_ms and found in the inbox.
        Kind::Redis => {
            let dups = eventually(WAIT, || async {
                Some(f.consumed(&g, "duplicate")).filter(|n| *n >= 5)
            })
            .await?;
            assert_eq!(dups, 5);
        }
        Kind::Embedded => assert_eq!(
            f.consumed(&g, "duplicate"),
            0,
            "the cursor moved with the effects"
        ),
    }
    assert_eq!(f.effects(&g).await?, (5, 5), "each effect exactly once");
    assert_eq!(f.consumed(&g, "ok"), 5);
    let events_handled: u32 = rec.calls.lock().unwrap().values().sum();
    assert_eq!(
        events_handled, 5,
        "the handler never ran twice for one event"
    );
    second.stop().await?;
    relay.stop().await
}

/// A handler failure in the middle of a batch rolls the batch back; its events are then handled
/// one by one: the ones before the failure and after it are applied once, the failed one is
/// not called again until its redelivery. Nothing is lost, nothing is applied twice, and
/// (embedded, strict order) nothing after the failed event is applied before it.
async fn batch_failure_falls_back_one_by_one(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("fallback");
    let rec = Recorder::new(&g);
    let events = f.events(1, 8);
    let bad = events[3].event_id.clone();
    rec.panic_once.lock().unwrap().insert(bad.clone());
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    // One transaction: one relay batch, one read.
    f.publish(&events, 8).await?;
    f.wait_effects(&g, 8).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (8, 8));
    assert_eq!(f.consumed(&g, "ok"), 8);
    assert_eq!(f.consumed(&g, "error"), 1);
    assert_eq!(f.consumed(&g, "duplicate"), 0);
    assert_eq!(
        rec.calls(&bad),
        2,
        "the failed handler ran once per delivery"
    );
    for (i, e) in events.iter().enumerate() {
        // Before the failure: in the rolled-back batch, then one by one. After it: once.
        let expect = if i <= 3 { 2 } else { 1 };
        assert_eq!(rec.calls(&e.event_id), expect, "handler calls of event {i}");
    }
    if kind == Kind::Embedded {
        // `seen` includes handler runs that were rolled back: the batch ran 1..=3 and failed at
        // 4; then 1..=3 one by one, 4 failed again without its handler being called (the
        // batch's failure counts); after the backoff 4 and the rest.
        let versions: Vec<i64> = rec.seen.lock().unwrap().iter().map(|(_, v)| *v).collect();
        assert_eq!(versions, [1, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8], "strict order");
        let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_delivery")
            .fetch_one(f.db.pool())
            .await?;
        assert_eq!(
            attempts, 0,
            "attempts are cleared once the event is applied"
        );
    }
    consumer.stop().await?;
    relay.stop().await
}

/// A handler that takes whole batches gets the events of a read in one call, each once in
/// effect; when the batch fails (here a panic), every event of it is handled again one by one
/// through `handle`, and nothing is lost or applied twice.
async fn batch_handler_takes_whole_reads(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("batched");
    let rec = Arc::new(Recorder {
        group: g.clone(),
        batched: true,
        ..Recorder::default()
    });
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    let events = f.events(2, 8);
    f.publish(&events[..8], 8).await?;
    f.wait_effects(&g, 8).await?;
    f.wait_settled(&g).await?;
    let batches = rec.batches.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..8).contains(&batches),
        "8 events in {batches} batch calls"
    );
    for e in &events[..8] {
        assert_eq!(rec.calls(&e.event_id), 1);
    }
    let bad = events[11].event_id.clone();
    rec.panic_once.lock().unwrap().insert(bad.clone());
    f.publish(&events[8..], 8).await?;
    f.wait_effects(&g, 16).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (16, 16));
    assert_eq!(f.consumed(&g, "ok"), 16);
    assert_eq!(f.consumed(&g, "duplicate"), 0);
    assert!(
        rec.calls(&bad) >= 2,
        "the panicking event ran in the batch and again on its own"
    );
    consumer.stop().await?;
    relay.stop().await
}

/// `publish_many` writes every envelope, in order, in the caller's transaction (and nothing
/// when the transaction rolls back or an envelope is invalid); consumers see them like
/// single publishes.
async fn publish_many_is_transactional_and_ordered(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("many");
    let rec = Recorder::new(&g);
    // 300 events: on SQLite more than one statement (256, then 44 padded to 64); on Postgres
    // two rows (256 and 44 events).
    let events = f.events(3, 100);
    let mut tx = f.db.begin().await?;
    bus::publish_many(&mut tx, &events[..10]).await?;
    tx.rollback().await?;
    let mut invalid = events[10..20].to_vec();
    invalid[9].event_type.clear();
    let mut tx = f.db.begin().await?;
    assert!(bus::publish_many(&mut tx, &invalid).await.is_err());
    tx.commit().await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_outbox")
        .fetch_one(f.db.pool())
        .await?;
    assert_eq!(count, 0, "rolled back or refused: nothing written");

    let mut tx = f.db.begin().await?;
    bus::publish_many(&mut tx, &[]).await?;
    bus::publish_many(&mut tx, &events).await?;
    tx.commit().await?;
    let rows = sqlx::query("SELECT envelope, events FROM bus_outbox ORDER BY seq")
        .fetch_all(f.db.pool())
        .await?;
    let mut logged = Vec::new();
    for row in &rows {
        let envelopes = bus::outbox_envelopes(
            &row.try_get::<Vec<u8>, _>("envelope")?,
            row.try_get("events")?,
        )?;
        logged.extend(envelopes.into_iter().map(|e| e.event_id));
    }
    let expect: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        logged, expect,
        "seq order, then batch order, is slice order"
    );
    // Postgres packs a run of one producer, tenant and type into rows of up to 256 events;
    // SQLite writes a row per event.
    let expect_rows = match kind {
        Kind::Redis => 2,
        Kind::Embedded => 300,
    };
    assert_eq!(rows.len(), expect_rows);
    // Counted when written (as `publish` does), so the rolled-back ten count too; the refused
    // batch does not.
    assert_eq!(
        metrics()
            .events_published
            .with_label_values(&[f.producer.as_str(), "arflow.test.v1.Changed"])
            .get(),
        310
    );

    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.wait_effects(&g, 300).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (300, 300));
    assert_eq!(f.consumed(&g, "ok"), 300);
    let mut last: HashMap<String, i64> = HashMap::new();
    for (aggregate, version) in rec.seen.lock().unwrap().iter() {
        let prev = last.insert(aggregate.clone(), *version).unwrap_or(0);
        assert_eq!(
            *version,
            prev + 1,
            "{aggregate}: version {version} after {prev}"
        );
    }
    consumer.stop().await?;
    relay.stop().await
}

/// Stop the relay mid-stream, publish more, crash a relay between XADD and marking the rows,
/// start a new relay: everything arrives, each effect once.
async fn no_loss_across_relay_restart(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("relay");
    let rec = Recorder::new(&g);
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    let events = f.events(4, 10);
    f.publish(&events[..20], 1).await?;
    let relay = f.start_relay();
    f.wait_effects(&g, 1).await?;
    relay.stop().await?;
    f.publish(&events[20..], 3).await?;

    f.bus.inject_fault(Fault::RelayCrashAfterPublish, 1);
    let crashing = f.start_relay();
    match kind {
        Kind::Redis => {
            let err = crashing
                .ended()
                .await
                .expect_err("the relay crashes after XADD");
            assert!(err.to_string().contains("simulated crash"), "{err:#}");
        }
        // Nothing to relay in embedded mode: the log is the outbox.
        Kind::Embedded => crashing.stop().await?,
    }
    let relay = f.start_relay();
    f.wait_effects(&g, 40).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (40, 40));
    if kind == Kind::Redis {
        assert!(
            f.consumed(&g, "duplicate") >= 1,
            "the crashed batch was published twice"
        );
        let unpublished: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM bus_outbox WHERE published_at IS NULL")
                .fetch_one(f.db.pool())
                .await?;
        assert_eq!(unpublished, 0);
    }
    consumer.stop().await?;
    relay.stop().await
}

/// A handler that always fails for one event: after max_deliveries it is dead-lettered (with
/// its envelope); the other events still flow.
async fn dead_letter_after_max_deliveries(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("dead");
    let rec = Recorder::new(&g);
    let events = f.events(2, 3);
    let poison = events[2].event_id.clone();
    rec.fail.lock().unwrap().insert(poison.clone());
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.publish(&events, 1).await?;
    f.wait_effects(&g, 5).await?;
    let dead = eventually(WAIT, || async {
        let dead = f.bus.dead_letters(&g, 10).await.ok()?;
        (!dead.is_empty()).then_some(dead)
    })
    .await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0], events[2],
        "the dead letter keeps the whole envelope"
    );
    assert_eq!(
        rec.calls(&poison),
        3,
        "handled exactly max_deliveries times"
    );
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (5, 5));
    assert_eq!(f.consumed(&g, "dead_letter"), 1);
    assert_eq!(f.consumed(&g, "error"), 3);
    assert!(f.bus.dead_letters(&f.group("other"), 10).await?.is_empty());
    if kind == Kind::Redis {
        let mut conn = f.redis_conn().await?;
        let key = f.bus.dead_letter_key(&g).unwrap();
        let range: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await?;
        assert_eq!(range.ids.len(), 1);
        let entry = &range.ids[0];
        assert_eq!(
            entry.get::<String>("event_id").as_deref(),
            Some(poison.as_str())
        );
        assert_eq!(entry.get::<String>("group").as_deref(), Some(g.as_str()));
        assert_eq!(
            entry.get::<String>("stream").as_deref(),
            Some(f.producer.as_str())
        );
        assert_eq!(entry.get::<i64>("deliveries"), Some(3));
    }
    // Nothing more happens to it.
    assert_eq!(rec.calls(&poison), 3);
    assert_no_payload_logged();
    consumer.stop().await?;
    relay.stop().await
}

/// With a single consumer, each aggregate's versions arrive in increasing order.
async fn ordering_per_aggregate(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("order");
    let rec = Recorder::new(&g);
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    let events = f.events(4, 15);
    // Interleave transactions of different sizes while the relay and consumer run.
    f.publish(&events[..7], 1).await?;
    f.publish(&events[7..30], 5).await?;
    f.publish(&events[30..], 2).await?;
    f.wait_effects(&g, 60).await?;
    let seen = rec.seen.lock().unwrap().clone();
    let mut last: HashMap<String, i64> = HashMap::new();
    for (aggregate, version) in &seen {
        let prev = last.insert(aggregate.clone(), *version).unwrap_or(0);
        assert_eq!(
            *version,
            prev + 1,
            "{aggregate}: version {version} after {prev}"
        );
        assert_eq!(
            bus::version_order(Some(prev), &f.event(aggregate, *version)),
            bus::VersionOrder::Next
        );
    }
    assert_eq!(last.len(), 4);
    assert!(last.values().all(|v| *v == 15));
    consumer.stop().await?;
    relay.stop().await
}

/// Several relays at once (as with several processes) take turns: nothing is published twice,
/// per-aggregate order holds.
async fn concurrent_relays_take_turns(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("relays");
    let rec = Recorder::new(&g);
    let relays = [f.start_relay(), f.start_relay(), f.start_relay()];
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    // Two concurrent producers, each on its own aggregates (as under a row lock per aggregate).
    let events = f.events(4, 15);
    let (first, second): (Vec<Envelope>, Vec<Envelope>) = events
        .into_iter()
        .partition(|e| e.aggregate_id == "agg-0" || e.aggregate_id == "agg-1");
    tokio::try_join!(f.publish(&first, 1), f.publish(&second, 2))?;
    f.wait_effects(&g, 60).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (60, 60));
    assert_eq!(
        f.consumed(&g, "duplicate"),
        0,
        "no event was published twice"
    );
    let mut last: HashMap<String, i64> = HashMap::new();
    for (aggregate, version) in rec.seen.lock().unwrap().iter() {
        let prev = last.insert(aggregate.clone(), *version).unwrap_or(0);
        assert_eq!(
            *version,
            prev + 1,
            "{aggregate}: version {version} after {prev}"
        );
    }
    if kind == Kind::Redis {
        let mut conn = f.redis_conn().await?;
        let len: i64 = redis::cmd("XLEN")
            .arg(f.bus.stream_key(&f.producer).unwrap())
            .query_async(&mut conn)
            .await?;
        assert_eq!(len, 60);
    }
    consumer.stop().await?;
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// A panicking handler does not kill the loop: the event counts as failed and is retried.
async fn handler_panic_is_retried(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("panic");
    let rec = Recorder::new(&g);
    let events = f.events(1, 4);
    rec.panic_once
        .lock()
        .unwrap()
        .insert(events[1].event_id.clone());
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.publish(&events, 4).await?;
    f.wait_effects(&g, 4).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (4, 4));
    assert_eq!(rec.calls(&events[1].event_id), 2);
    assert!(
        !consumer.handle.is_finished(),
        "the consumer loop survived the panic"
    );
    assert_no_payload_logged();
    consumer.stop().await?;
    relay.stop().await
}

/// A stopped consumer resumes where its group left off: nothing lost, nothing repeated.
async fn consumer_restart_resumes(kind: Kind) -> anyhow::Result<()> {
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("restart");
    let rec = Recorder::new(&g);
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    let events = f.events(2, 6);
    f.publish(&events[..6], 2).await?;
    f.wait_effects(&g, 6).await?;
    consumer.stop().await?;
    f.publish(&events[6..], 2).await?;
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.wait_effects(&g, 12).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (12, 12));
    consumer.stop().await?;
    relay.stop().await
}

// ------------------------------------------------------------------------------------------------
// Redis only.

/// The stream key disappears (Redis lost its data) while the consumer runs: it recreates its
/// group and keeps consuming what is published next. Once while the consumer waits for entries
/// (Redis unblocks its XREADGROUP with UNBLOCKED), once while it is busy handling an entry (its
/// read-ahead is unblocked the same way, and the relay recreates the stream without the group
/// meanwhile). Then the group alone is destroyed: the blocked read answers NOGROUP.
async fn nogroup_recovery(kind: Kind) -> anyhow::Result<()> {
    assert_eq!(kind, Kind::Redis);
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("nogroup");
    let rec = Recorder::new(&g);
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    let events = f.events(1, 15);
    let mut conn = f.redis_conn().await?;
    let key = f.bus.stream_key(&f.producer).unwrap();

    f.publish(&events[..3], 1).await?;
    f.wait_effects(&g, 3).await?;
    let deleted: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
    assert_eq!(deleted, 1);
    f.publish(&events[3..6], 1).await?;
    f.wait_effects(&g, 6).await?;

    *rec.hold.lock().unwrap() = Some(events[6].event_id.clone());
    f.publish(&events[6..9], 3).await?;
    tokio::time::timeout(WAIT, rec.held.notified()).await?;
    let deleted: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
    assert_eq!(deleted, 1);
    f.publish(&events[9..12], 3).await?;
    // The relay recreated the stream, without the group.
    eventually(WAIT, || async {
        let mut conn = conn.clone();
        let n: i64 = redis::cmd("XLEN")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .ok()?;
        (n == 3).then_some(())
    })
    .await?;
    rec.release.notify_one();
    f.wait_effects(&g, 12).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (12, 12));

    let destroyed: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&key)
        .arg(&g)
        .query_async(&mut conn)
        .await?;
    assert_eq!(destroyed, 1);
    f.publish(&events[12..], 3).await?;
    // The recreated group reads the stream from its start again: the inbox skips what was done.
    f.wait_effects(&g, 15).await?;
    f.wait_settled(&g).await?;
    assert_eq!(f.effects(&g).await?, (15, 15));
    assert!(!consumer.handle.is_finished());
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string();
    assert!(logs.contains("UNBLOCKED"), "the UNBLOCKED path ran");
    assert!(logs.contains("NOGROUP"), "the NOGROUP path ran");
    consumer.stop().await?;
    relay.stop().await
}

/// Retention trims what every group is done with, and never an entry still pending in a group
/// or not yet delivered to one.
async fn retention_never_trims_pending(kind: Kind) -> anyhow::Result<()> {
    assert_eq!(kind, Kind::Redis);
    let cfg = BusConfig {
        retention_secs: 0,
        max_deliveries: 1000,
        ..test_config()
    };
    let f = Fixture::new(kind, cfg).await?;
    let g = f.group("keep");
    let rec = Recorder::new(&g);
    let events = f.events(1, 7);
    let stuck = events[2].event_id.clone();
    rec.fail.lock().unwrap().insert(stuck.clone());
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.publish(&events[..5], 1).await?;
    f.wait_effects(&g, 4).await?;

    let mut conn = f.redis_conn().await?;
    let key = f.bus.stream_key(&f.producer).unwrap();
    // Entries 1 and 2 are done everywhere: trimmed. 3 is pending (failing): it and what follows stay.
    let kept = eventually(WAIT, || async {
        stream_event_ids(&conn, &key)
            .await
            .filter(|ids| ids.len() == 3)
    })
    .await?;
    let expect: Vec<String> = events[2..5].iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(kept, expect);
    let pending: StreamPendingReply = redis::cmd("XPENDING")
        .arg(&key)
        .arg(&g)
        .query_async(&mut conn)
        .await?;
    assert_eq!(pending.count(), 1);

    // A second group that has not read past entry 5 yet.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("laggard")
        .arg("$")
        .query_async(&mut conn)
        .await?;
    f.publish(&events[5..], 1).await?;
    rec.fail.lock().unwrap().clear();
    f.wait_effects(&g, 7).await?;
    f.wait_settled(&g).await?;
    // Ours is done with everything; the laggard still needs 6 and 7 (and its position, 5).
    let kept = eventually(WAIT, || async {
        stream_event_ids(&conn, &key)
            .await
            .filter(|ids| ids.len() == 3)
    })
    .await?;
    let expect: Vec<String> = events[4..].iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(kept, expect);

    // The laggard reads and acks them; then only its last-delivered entry remains.
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("laggard")
        .arg("l-1")
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query_async(&mut conn)
        .await?;
    let got: Vec<String> = read.keys[0].ids.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got.len(), 2);
    let _: i64 = redis::cmd("XACK")
        .arg(&key)
        .arg("laggard")
        .arg(&got)
        .query_async(&mut conn)
        .await?;
    let kept = eventually(WAIT, || async {
        stream_event_ids(&conn, &key)
            .await
            .filter(|ids| ids.len() <= 1)
    })
    .await?;
    assert_eq!(kept, vec![events[6].event_id.clone()]);

    // Published outbox rows past the retention are deleted by the relay.
    eventually(WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_outbox")
            .fetch_one(f.db.pool())
            .await
            .ok()?;
        (n == 0).then_some(())
    })
    .await?;
    let pending: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(&key)
        .arg(&g)
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut conn)
        .await?;
    assert!(pending.ids.is_empty());
    assert_eq!(f.effects(&g).await?, (7, 7));
    consumer.stop().await?;
    relay.stop().await
}

/// A handler that swallows a failed statement and returns Ok, last in its batch: Postgres
/// aborted the transaction, so its COMMIT would silently roll back the whole batch while the
/// entries are acknowledged. The bus notices: the batch mates are applied (one by one), the
/// offending event counts as failed and is dead-lettered in the end, never acknowledged
/// without its effects.
async fn swallowed_statement_error_is_a_failure(kind: Kind) -> anyhow::Result<()> {
    assert_eq!(kind, Kind::Redis);
    let f = Fixture::new(kind, test_config()).await?;
    let g = f.group("swallow");
    let rec = Recorder::new(&g);
    let events = f.events(1, 6);
    let bad = events[5].event_id.clone();
    rec.swallow.lock().unwrap().insert(bad.clone());
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.publish(&events, 6).await?;
    let dead = eventually(WAIT, || async {
        let dead = f.bus.dead_letters(&g, 10).await.ok()?;
        (!dead.is_empty()).then_some(dead)
    })
    .await?;
    assert_eq!(dead[0].event_id, bad);
    f.wait_settled(&g).await?;
    assert_eq!(
        f.effects(&g).await?,
        (5, 5),
        "every other event applied once"
    );
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM test_effects WHERE event_id = $1")
        .bind(&bad)
        .fetch_one(f.db.pool())
        .await?;
    assert_eq!(applied, 0);
    assert_eq!(f.consumed(&g, "ok"), 5);
    assert_eq!(f.consumed(&g, "error"), 3);
    assert_eq!(f.consumed(&g, "dead_letter"), 1);
    consumer.stop().await?;
    relay.stop().await
}

/// The event ids of a stream's entries, in order.
async fn stream_event_ids(
    conn: &redis::aio::MultiplexedConnection,
    key: &str,
) -> Option<Vec<String>> {
    let mut conn = conn.clone();
    let range: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .ok()?;
    Some(
        range
            .ids
            .iter()
            .map(|e| e.get::<String>("event_id").unwrap_or_default())
            .collect(),
    )
}

// ------------------------------------------------------------------------------------------------
// Embedded only.

/// The embedded log deletes rows every group has passed once older than the retention; a row a
/// group still waits on (failing, retried) stays, and so does everything after it.
async fn embedded_retention_keeps_unfinished(kind: Kind) -> anyhow::Result<()> {
    assert_eq!(kind, Kind::Embedded);
    let cfg = BusConfig {
        retention_secs: 0,
        max_deliveries: 1000,
        ..test_config()
    };
    let f = Fixture::new(kind, cfg).await?;
    assert_eq!(f.db.backend(), Backend::Sqlite);
    let g = f.group("keep");
    let rec = Recorder::new(&g);
    let events = f.events(1, 5);
    rec.fail.lock().unwrap().insert(events[2].event_id.clone());
    let relay = f.start_relay();
    let consumer = f.start_consumer(&g, "c-1", rec.clone());
    f.publish(&events, 1).await?;
    f.wait_effects(&g, 2).await?;
    let log = || async {
        sqlx::query_scalar::<_, String>("SELECT event_id FROM bus_outbox ORDER BY seq")
            .fetch_all(f.db.pool())
            .await
            .ok()
    };
    let kept = eventually(WAIT, || async { log().await.filter(|ids| ids.len() == 3) }).await?;
    let expect: Vec<String> = events[2..].iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        kept, expect,
        "strict order: the stream waits behind the failing event"
    );
    let attempts: i64 = sqlx::query_scalar(
        "SELECT attempts FROM bus_delivery WHERE consumer_group = $1 AND event_id = $2",
    )
    .bind(&g)
    .bind(&events[2].event_id)
    .fetch_one(f.db.pool())
    .await?;
    assert!(attempts >= 1);
    rec.fail.lock().unwrap().clear();
    f.wait_effects(&g, 5).await?;
    eventually(WAIT, || async { log().await.filter(|ids| ids.is_empty()) }).await?;
    assert_eq!(f.effects(&g).await?, (5, 5));
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_delivery")
        .fetch_one(f.db.pool())
        .await?;
    assert_eq!(left, 0, "attempts are cleared once the event is applied");
    consumer.stop().await?;
    relay.stop().await
}

// ------------------------------------------------------------------------------------------------

macro_rules! conformance {
    ($backend:ident, $kind:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    super::$case($kind).await
                }
            )*
        }
    };
}

conformance!(
    redis_bus,
    super::Kind::Redis,
    [
        at_least_once_delivery,
        redelivery_after_crash_has_no_duplicate_effect,
        no_loss_across_relay_restart,
        dead_letter_after_max_deliveries,
        ordering_per_aggregate,
        handler_panic_is_retried,
        consumer_restart_resumes,
        concurrent_relays_take_turns,
        batch_failure_falls_back_one_by_one,
        batch_handler_takes_whole_reads,
        publish_many_is_transactional_and_ordered,
        nogroup_recovery,
        retention_never_trims_pending,
        swallowed_statement_error_is_a_failure,
    ]
);

conformance!(
    embedded_bus,
    super::Kind::Embedded,
    [
        at_least_once_delivery,
        redelivery_after_crash_has_no_duplicate_effect,
        no_loss_across_relay_restart,
        dead_letter_after_max_deliveries,
        ordering_per_aggregate,
        handler_panic_is_retried,
        consumer_restart_resumes,
        concurrent_relays_take_turns,
        batch_failure_falls_back_one_by_one,
        batch_handler_takes_whole_reads,
        publish_many_is_transactional_and_ordered,
        embedded_retention_keeps_unfinished,
    ]
);
