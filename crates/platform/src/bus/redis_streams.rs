//! Distributed mode: outbox relay to Redis Streams, consumer groups, redelivery, dead letters,
//! retention. See the module docs of [`super`] for the contract.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use chrono::Utc;
use prost::Message as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply,
    StreamPendingReply, StreamRangeReply, StreamReadReply,
};
use redis::{AsyncConnectionConfig, RedisError};
use sqlx::Row as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::store::{self, Backoff, DeadLetter, InjectedCrash};
use super::{Bus, Envelope, Fault, Subscription};
use crate::db::{Backend, to_micros};
use crate::metrics::metrics;

/// Response timeout of non-blocking commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than BLOCK the blocking reader waits for a reply.
const READ_MARGIN: Duration = Duration::from_secs(5);
/// Approximate cap of a group's dead-letter stream.
const DEAD_LETTER_MAXLEN: usize = 10_000;
/// Key of the Postgres advisory lock that serialises relays across processes ("arflowrl").
const RELAY_LOCK_KEY: i64 = 0x6172_666c_6f77_726c;
/// How often the relay refreshes the backlog gauge and deletes old published rows.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// How often a consumer deletes inbox rows past their keep time.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// XAUTOCLAIM pages per redelivery pass and stream.
const CLAIM_PAGES: usize = 10;

pub(super) struct RedisBus {
    client: redis::Client,
    conn: ConnectionManager,
    pub(super) prefix: String,
}

impl RedisBus {
    pub(super) async fn connect(url: &str, prefix: &str) -> anyhow::Result<RedisBus> {
        anyhow::ensure!(
            !prefix.contains(char::is_whitespace),
            "redis key prefix must not contain whitespace"
        );
        let client = redis::Client::open(url).context("parse redis url")?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .context("connect to redis")?;
        Ok(RedisBus {
            client,
            conn,
            prefix: prefix.to_string(),
        })
    }

    pub(super) fn stream_key(&self, producer: &str) -> String {
        format!("{}stream:{}", self.prefix, producer)
    }

    pub(super) fn dead_key(&self, group: &str) -> String {
        format!("{}dead:{}", self.prefix, group)
    }

    // ---------------------------------------------------------------- relay

    pub(super) async fn run_relay(
        &self,
        bus: &Bus,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let poll = Duration::from_millis(bus.config().poll_interval_ms.max(1));
        let mut backoff = Backoff::new(poll, Duration::from_secs(5));
        let mut next_housekeeping = Instant::now();
        let mut producers = HashSet::new();
        tracing::info!("event relay started");
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if Instant::now() >= next_housekeeping {
                next_housekeeping = Instant::now() + HOUSEKEEPING_EVERY;
                if let Err(err) = housekeeping(bus, &mut producers).await {
                    tracing::warn!(error = %store::error_text(&err), "outbox housekeeping");
                }
            }
            let wait = match self.relay_batch(bus, &mut conn).await {
                // More may have been committed meanwhile: waiting here, not only after a full
                // batch, capped the relay at about one batch per poll interval under load.
                Ok(n) if n > 0 => {
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    poll
                }
                Err(err) if store::is_crash(&err) => return Err(err),
                Err(err) => {
                    tracing::warn!(error = %store::error_text(&err), "event relay round failed; retrying");
                    backoff.next_delay()
                }
            };
            if store::sleep_or_cancel(wait, &shutdown).await {
                return Ok(());
            }
        }
    }

    /// Moves one batch of unpublished outbox rows to the streams; returns how many events.
    async fn relay_batch(&self, bus: &Bus, conn: &mut ConnectionManager) -> anyhow::Result<usize> {
        let db = bus.db();
        let mut tx = db.begin().await.context("begin relay transaction")?;
        if db.backend() == Backend::Postgres {
            // One relay at a time across processes, for the whole round: streams never interleave.
            // The commit need not wait for the WAL flush: losing it in a crash only republishes
            // the batch, which the inbox absorbs (as after a relay crash). Its statements are
            // key scans and updates: generic plans (`db::reuse_plans`).
            let locked: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock($1) AS locked, \
                 set_config('synchronous_commit', 'off', true) AS async_commit, \
                 set_config('plan_cache_mode', 'force_generic_plan', true) AS plans",
            )
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut *tx)
            .await
            .context("take relay lock")?;
            if !locked {
                tx.rollback().await?;
                return Ok(0);
            }
        }
        // Marks the rows and reads them in one statement (one scan of the unpublished index);
        // nothing is visible to others before the commit, which follows the XADDs. A row can
        // carry many events (`publish_many`): rows are taken while the events before them number
        // fewer than batch_size (the first one always).
        let batch = i64::try_from(bus.config().batch_size.max(1)).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "UPDATE bus_outbox SET published_at = $1 WHERE seq IN (SELECT seq FROM \
             (SELECT seq, SUM(events) OVER (ORDER BY seq) - events AS before FROM bus_outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $2) head WHERE before < $2) \
             RETURNING seq, event_id, producer, events, envelope",
        )
        .bind(to_micros(Utc::now()))
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .context("read outbox")?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let mut seqs = Vec::with_capacity(rows.len());
        for row in &rows {
            seqs.push(row.try_get::<i64, _>("seq")?);
        }
        // RETURNING follows no order: the streams get the rows in seq order.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by_key(|&i| seqs[i]);
        // MULTI/EXEC: a consumer blocked in XREADGROUP wakes once, to the whole batch (a plain
        // pipeline would wake it with the first entry alone).
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut per_producer: HashMap<String, u64> = HashMap::new();
        let mut relayed = 0;
        for &i in &order {
            let row = &rows[i];
            let event_id: String = row.try_get("event_id")?;
            let producer: String = row.try_get("producer")?;
            let events: i64 = row.try_get("events")?;
            let envelope: Vec<u8> = row.try_get("envelope")?;
            let key = self.stream_key(&producer);
            let entries = match super::outbox_entries(&envelope, events, event_id.clone()) {
                Ok(entries) => entries,
                Err(err) => {
                    // Sent whole: consumers cannot decode it and dead-letter it with its bytes.
                    tracing::warn!(seq = seqs[i], %producer, error = %store::error_text(&err), "outbox row does not split into envelopes; relayed as it is");
                    vec![(event_id, envelope.as_slice())]
                }
            };
            for (event_id, bytes) in &entries {
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("event_id")
                    .arg(event_id)
                    .arg("envelope")
                    .arg(*bytes)
                    .ignore();
            }
            relayed += entries.len();
            *per_producer.entry(producer).or_default() += entries.len() as u64;
        }
        let () = pipe.query_async(conn).await.context("XADD outbox batch")?;
        if bus.fault(Fault::RelayCrashAfterPublish) {
            // Dropping the transaction rolls it back: the rows stay unpublished.
            return Err(InjectedCrash.into());
        }
        tx.commit().await.context("commit relay transaction")?;
        for (producer, n) in per_producer {
            metrics()
                .events_relayed
                .with_label_values(&[producer.as_str()])
                .inc_by(n);
        }
        Ok(relayed)
    }

    // ---------------------------------------------------------------- consumer

    pub(super) async fn run_consumer(
        &self,
        bus: &Bus,
        sub: Subscription,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let streams = sub
            .streams
            .iter()
            .map(|s| (self.stream_key(s), s.clone()))
            .collect();
        let mut consumer = Consumer {
            bus,
            r: self,
            conn: self.conn.clone(),
            reader: None,
            ahead: None,
            acking: None,
            counters: store::Counters::new(&sub.group),
            sub,
            streams,
        };
        consumer.run(shutdown).await
    }
}

/// Refreshes `outbox_backlog` and deletes published rows older than the retention.
async fn housekeeping(bus: &Bus, producers: &mut HashSet<String>) -> anyhow::Result<()> {
    let db = bus.db();
    let rows = sqlx::query(
        "SELECT producer, SUM(events) AS n FROM bus_outbox WHERE published_at IS NULL \
         GROUP BY producer",
    )
    .fetch_all(db.pool())
    .await
    .context("count outbox backlog")?;
    let mut seen = HashSet::new();
    for row in rows {
        let producer: String = row.try_get("producer")?;
        let n: i64 = row.try_get("n")?;
        metrics()
            .outbox_backlog
            .with_label_values(&[producer.as_str()])
            .set(n);
        seen.insert(producer);
    }
    for gone in producers.difference(&seen) {
        metrics()
            .outbox_backlog
            .with_label_values(&[gone.as_str()])
            .set(0);
    }
    producers.extend(seen);
    let cutoff = store::micros_ago(Duration::from_secs(bus.config().retention_secs));
    // The head of the log, 1000 rows at a time in seq order (the primary key; no index on
    // published_at, see migration 0007): the relay publishes in seq order, so the rows past their
    // retention are at the head. A row still unpublished (or young) stays, and so does what
    // follows it once a whole head is such rows.
    loop {
        let n = sqlx::query(
            "DELETE FROM bus_outbox WHERE seq IN (SELECT seq FROM \
             (SELECT seq, published_at FROM bus_outbox ORDER BY seq LIMIT 1000) head \
             WHERE published_at IS NOT NULL AND published_at < $1)",
        )
        .bind(cutoff)
        .execute(db.pool())
        .await
        .context("delete published outbox rows")?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
    }
}

/// Runs an XREADGROUP `cmd` on `reader` (its own connection, whose response timeout allows for
/// BLOCK); the entries as (stream key, entry), empty when it timed out or `shutdown` fired.
async fn read_entries(
    mut reader: MultiplexedConnection,
    cmd: redis::Cmd,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<(String, StreamId)>> {
    let reply: Option<StreamReadReply> = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Vec::new()),
        reply = cmd.query_async(&mut reader) => reply.context("XREADGROUP")?,
    };
    Ok(reply
        .map(|r| r.keys)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|k| {
            let key = k.key;
            k.ids.into_iter().map(move |entry| (key.clone(), entry))
        })
        .collect())
}

struct Consumer<'a> {
    bus: &'a Bus,
    r: &'a RedisBus,
    /// Non-blocking commands (reconnects by itself).
    conn: ConnectionManager,
    /// The blocking XREADGROUP's own connection, with a response timeout longer than BLOCK.
    reader: Option<MultiplexedConnection>,
    /// Entries the read-ahead delivered while the previous batch was handled (see
    /// [`Self::read_new`]); handled next.
    ahead: Option<Vec<(String, StreamId)>>,
    /// The XACK of the last committed batch, sent while the next one runs.
    acking: Option<tokio::task::JoinHandle<()>>,
    sub: Subscription,
    /// (stream key, stream name = producer)
    streams: Vec<(String, String)>,
    counters: store::Counters,
}

impl Consumer<'_> {
    async fn run(&mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let result = self.run_loop(shutdown).await;
        self.settle_ack().await;
        result
    }

    async fn run_loop(&mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let cfg = self.bus.config().clone();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while let Err(err) = self.ensure_groups().await {
            tracing::warn!(group = %self.sub.group, error = %store::error_text(&err), "create consumer groups; retrying");
            if store::sleep_or_cancel(backoff.next_delay(), &shutdown).await {
                return Ok(());
            }
        }
        backoff.reset();
        tracing::info!(group = %self.sub.group, consumer = %self.sub.consumer, streams = ?self.sub.streams, "event consumer started");
        let maintain_every = Duration::from_millis((cfg.claim_idle_ms / 2).clamp(50, 5_000));
        // The first pass runs at once: after a restart, this consumer's own pending entries are
        // taken up again as soon as they are idle long enough.
        let mut next_maintenance = Instant::now();
        let mut next_prune = Instant::now();
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let now = Instant::now();
            let mut result = Ok(());
            if now >= next_maintenance {
                next_maintenance = now + maintain_every;
                result = self.maintain(&shutdown).await;
            }
            if now >= next_prune {
                next_prune = now + PRUNE_EVERY;
                if let Err(err) =
                    store::prune_inbox(self.bus.db(), &self.sub.group, cfg.retention_secs).await
                {
                    tracing::warn!(group = %self.sub.group, error = %store::error_text(&err), "prune inbox");
                }
            }
            if result.is_ok() {
                result = self.read_new(&shutdown).await;
            }
            match result {
                Ok(()) => backoff.reset(),
                Err(err) if store::is_crash(&err) => return Err(err),
                Err(err) => {
                    self.recover(&err).await;
                    if store::sleep_or_cancel(backoff.next_delay(), &shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// After an error: reconnect the reader when the connection failed, recreate the groups
    /// when they are gone (NOGROUP: Redis lost the stream).
    async fn recover(&mut self, err: &anyhow::Error) {
        let redis_err = err.chain().find_map(|e| e.downcast_ref::<RedisError>());
        let text = store::error_text(err);
        match redis_err {
            Some(e)
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal() =>
            {
                tracing::warn!(group = %self.sub.group, error = %text, "redis connection failed; reconnecting");
                self.reader = None;
            }
            Some(e) if is_missing_group(e) => {
                tracing::warn!(group = %self.sub.group, error = %text, "consumer group or stream missing (Redis lost data?); recreating");
            }
            _ => {
                tracing::warn!(group = %self.sub.group, error = %text, "event consumer round failed")
            }
        }
        if let Err(err) = self.ensure_groups().await {
            tracing::debug!(error = %store::error_text(&err), "recreate consumer groups");
        }
    }

    async fn ensure_groups(&mut self) -> anyhow::Result<()> {
        for (key, _) in &self.streams {
            let created: Result<(), RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(&self.sub.group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.conn)
                .await;
            match created {
                Ok(()) => {
                    tracing::debug!(group = %self.sub.group, stream = %key, "consumer group created")
                }
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e).context("XGROUP CREATE"),
            }
        }
        Ok(())
    }

    async fn reader(&mut self) -> anyhow::Result<&mut MultiplexedConnection> {
        if self.reader.is_none() {
            let block = Duration::from_millis(self.bus.config().block_ms.max(1));
            let config = AsyncConnectionConfig::new()
                .set_response_timeout(Some(block + READ_MARGIN))
                .set_connection_timeout(Some(CONNECT_TIMEOUT));
            let conn = self
                .r
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .context("connect the stream reader")?;
            self.reader = Some(conn);
        }
        self.reader.as_mut().context("stream reader")
    }

    /// Handles one XREADGROUP's new entries as one batch. While it does, the next XREADGROUP
    /// (blocking up to `block_ms`) already waits on the reader's connection: the Redis round
    /// trip and the reply's parsing overlap the database work instead of following it. So a
    /// consumer holds up to two reads at once: the second stays pending until its own turn, which
    /// `claim_idle_ms` must allow for (see the module docs).
    async fn read_new(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let entries = match self.ahead.take() {
            Some(entries) => entries,
            None => self.read_entries(shutdown).await?,
        };
        if entries.is_empty() || shutdown.is_cancelled() {
            // Left pending when cancelled: claimed again after claim_idle_ms.
            return Ok(());
        }
        // A task of its own, not a future joined to the batch's: the reply's parsing then runs
        // on another worker thread instead of taking turns with the batch's.
        let next = tokio::spawn(read_entries(
            self.reader().await?.clone(),
            self.read_command(),
            shutdown.clone(),
        ));
        let handled = self.handle_batch(entries, shutdown).await;
        let next = match next.await {
            Ok(next) => next,
            Err(join) => Err(anyhow::anyhow!("the read-ahead task failed: {join}")),
        };
        match next {
            Ok(next) => self.ahead = Some(next),
            // After the batch's own outcome: the caller recovers from either.
            Err(err) => {
                handled?;
                return Err(err);
            }
        }
        handled
    }

    /// One XREADGROUP of new entries (blocking up to `block_ms`), on the reader's connection.
    async fn read_entries(
        &mut self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Vec<(String, StreamId)>> {
        let cmd = self.read_command();
        let reader = self.reader().await?.clone();
        read_entries(reader, cmd, shutdown.clone()).await
    }

    fn read_command(&self) -> redis::Cmd {
        let cfg = self.bus.config();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.sub.group)
            .arg(&self.sub.consumer)
            .arg("COUNT")
            .arg(cfg.batch_size.max(1))
            .arg("BLOCK")
            .arg(cfg.block_ms.max(1))
            .arg("STREAMS");
        for (key, _) in &self.streams {
            cmd.arg(key);
        }
        for _ in &self.streams {
            cmd.arg(">");
        }
        cmd
    }

    fn stream_name<'k>(&'k self, key: &'k str) -> &'k str {
        self.streams
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.as_str())
            .unwrap_or(key)
    }

    /// Handles the entries of one read: inbox rows and handlers in one transaction, commit, one
    /// XACK per stream (pipelined). When a handler fails (or anything before it), the
    /// transaction is rolled back and the entries are handled one by one instead
    /// ([`Self::handle_event`]), except the failed one, which stays pending for this delivery
    /// (its handler is not called twice per delivery). An undecodable entry sends the whole
    /// read one by one, where it is dead-lettered. Err only for a simulated crash.
    async fn handle_batch(
        &mut self,
        entries: Vec<(String, StreamId)>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let events: Vec<Envelope> = entries
            .iter()
            .map_while(|(_, entry)| Envelope::decode(envelope_bytes(entry)?).ok())
            .collect();
        if events.len() < entries.len() {
            for (key, entry) in entries {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                self.handle_entry(&key, entry).await?;
            }
            return Ok(());
        }
        let group = self.sub.group.clone();
        let streams: Vec<String> = entries
            .iter()
            .map(|(key, _)| self.stream_name(key).to_string())
            .collect();
        let spans: Vec<tracing::Span> = events
            .iter()
            .zip(&streams)
            .map(|(event, stream)| store::handle_span(&group, stream, event))
            .collect();
        let items: Vec<(&Envelope, &tracing::Span)> = events.iter().zip(&spans).collect();
        let handler = self.sub.handler.clone();
        let failed = match store::apply_batch(self.bus.db(), &group, handler.as_ref(), &items).await
        {
            Ok((tx, applied)) => {
                if let Err(err) = tx.commit().await {
                    for (stream, span) in streams.iter().zip(&spans) {
                        self.counters.add(stream, "error", 1);
                        span.in_scope(|| {
                            tracing::warn!(error = %err, "commit consumer transaction failed; will be redelivered");
                        });
                    }
                    return Ok(());
                }
                for ((stream, span), applied) in streams.iter().zip(&spans).zip(&applied) {
                    self.counters.add(stream, applied.outcome(), 1);
                    span.in_scope(|| tracing::debug!(outcome = applied.outcome(), "event handled"));
                }
                if self.bus.fault(Fault::ConsumerCrashAfterCommit) {
                    return Err(InjectedCrash.into());
                }
                let mut pipe = redis::pipe();
                for (key, ids) in ids_per_key(&entries) {
                    pipe.cmd("XACK").arg(key).arg(&group).arg(ids).ignore();
                }
                self.ack_in_background(pipe, entries.len()).await;
                return Ok(());
            }
            Err(store::BatchError::Handler { index, error }) => {
                self.counters.add(&streams[index], "error", 1);
                spans[index].in_scope(|| {
                    tracing::warn!(error = %store::error_text(&error), "event handler failed; will be redelivered");
                });
                Some(index)
            }
            Err(store::BatchError::Store(err)) => {
                tracing::warn!(%group, error = %store::error_text(&err), "batched consumer transaction failed; handling the entries one by one");
                None
            }
        };
        drop(items);
        drop(spans);
        for (i, (((key, entry), stream), event)) in
            entries.iter().zip(&streams).zip(events).enumerate()
        {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if Some(i) != failed {
                self.handle_event(key, &entry.id, stream, event).await?;
            }
        }
        Ok(())
    }

    /// Sends a committed batch's XACKs while the next batch runs: at most one such XACK is in
    /// flight (this waits for the previous one first). A failed XACK only means the entries are
    /// delivered again and found in the inbox.
    async fn ack_in_background(&mut self, pipe: redis::Pipeline, entries: usize) {
        self.settle_ack().await;
        let mut conn = self.conn.clone();
        let group = self.sub.group.clone();
        self.acking = Some(tokio::spawn(async move {
            if let Err(err) = pipe.query_async::<()>(&mut conn).await {
                tracing::warn!(%group, entries, error = %err, "XACK failed; the entries will be redelivered and skipped");
            }
        }));
    }

    /// Waits for the XACK [`Self::ack_in_background`] left in flight, if any.
    async fn settle_ack(&mut self) {
        if let Some(acking) = self.acking.take() {
            let _ = acking.await;
        }
    }

    /// Decodes and handles one entry ([`Self::handle_event`]); an undecodable one is
    /// dead-lettered. Err only for a simulated crash.
    async fn handle_entry(&mut self, key: &str, entry: StreamId) -> anyhow::Result<()> {
        let stream = self.stream_name(key).to_string();
        let bytes: Option<Vec<u8>> = entry.get("envelope");
        let Some(event) = bytes.as_deref().and_then(|b| Envelope::decode(b).ok()) else {
            // Poison: no retry can fix it.
            let group = self.sub.group.clone();
            let source_id = entry.id.clone();
            let event_id: String = entry.get("event_id").unwrap_or_else(|| source_id.clone());
            let dl = DeadLetter {
                group: &group,
                event_id: &event_id,
                stream: &stream,
                source_id: &source_id,
                event_type: "",
                deliveries: 1,
                last_error: Some("undecodable envelope"),
                envelope: bytes.as_deref().unwrap_or_default(),
            };
            return self.dead_letter(key, &dl).await;
        };
        self.handle_event(key, &entry.id, &stream, event).await
    }

    /// Handles one event on its own: inbox + handler in one transaction, commit, XACK. A
    /// failure leaves the entry pending. Err only for a simulated crash.
    async fn handle_event(
        &mut self,
        key: &str,
        entry_id: &str,
        stream: &str,
        event: Envelope,
    ) -> anyhow::Result<()> {
        let group = self.sub.group.clone();
        let span = store::handle_span(&group, stream, &event);
        match store::apply(
            self.bus.db(),
            &group,
            self.sub.handler.as_ref(),
            &event,
            &span,
        )
        .await
        {
            Ok((tx, applied)) => {
                if let Err(err) = tx.commit().await {
                    self.counters.add(stream, "error", 1);
                    span.in_scope(|| {
                        tracing::warn!(error = %err, "commit consumer transaction failed; will be redelivered");
                    });
                    return Ok(());
                }
                self.counters.add(stream, applied.outcome(), 1);
                span.in_scope(|| tracing::debug!(outcome = applied.outcome(), "event handled"));
                if self.bus.fault(Fault::ConsumerCrashAfterCommit) {
                    return Err(InjectedCrash.into());
                }
                let acked: Result<i64, RedisError> = redis::cmd("XACK")
                    .arg(key)
                    .arg(&group)
                    .arg(entry_id)
                    .query_async(&mut self.conn)
                    .await;
                if let Err(err) = acked {
                    // Committed: the redelivery will find the inbox row.
                    span.in_scope(|| {
                        tracing::warn!(error = %err, "XACK failed; the entry will be redelivered and skipped");
                    });
                }
            }
            Err(err) => {
                self.counters.add(stream, "error", 1);
                span.in_scope(|| {
                    tracing::warn!(error = %store::error_text(&err), "event handler failed; will be redelivered");
                });
            }
        }
        Ok(())
    }

    /// Records a dead letter (table, then dead-letter stream) and acknowledges the entry.
    async fn dead_letter(&mut self, key: &str, dl: &DeadLetter<'_>) -> anyhow::Result<()> {
        let mut conn = self
            .bus
            .db()
            .pool()
            .acquire()
            .await
            .context("acquire connection")?;
        store::insert_dead_letter(&mut conn, dl)
            .await
            .context("record dead letter")?;
        drop(conn);
        let _id: Option<String> = redis::cmd("XADD")
            .arg(self.r.dead_key(dl.group))
            .arg("MAXLEN")
            .arg("~")
            .arg(DEAD_LETTER_MAXLEN)
            .arg("*")
            .arg("event_id")
            .arg(dl.event_id)
            .arg("event_type")
            .arg(dl.event_type)
            .arg("group")
            .arg(dl.group)
            .arg("stream")
            .arg(dl.stream)
            .arg("entry_id")
            .arg(dl.source_id)
            .arg("deliveries")
            .arg(dl.deliveries)
            .arg("envelope")
            .arg(dl.envelope)
            .query_async(&mut self.conn)
            .await
            .context("XADD dead letter")?;
        let _acked: i64 = redis::cmd("XACK")
            .arg(key)
            .arg(dl.group)
            .arg(dl.source_id)
            .query_async(&mut self.conn)
            .await
            .context("XACK dead letter")?;
        store::report_dead_letter(dl);
        Ok(())
    }

    /// Redelivery, dead letters, metrics and retention of every stream.
    async fn maintain(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        for i in 0..self.streams.len() {
            let (key, stream) = self.streams[i].clone();
            self.dead_letter_pass(&key, &stream).await?;
            self.claim_pass(&key, &stream, shutdown).await?;
            self.stats_and_trim(&key, &stream).await?;
            if shutdown.is_cancelled() {
                break;
            }
        }
        Ok(())
    }

    /// Dead-letters entries idle past `claim_idle_ms` that were delivered `max_deliveries` times.
    async fn dead_letter_pass(&mut self, key: &str, stream: &str) -> anyhow::Result<()> {
        let cfg = self.bus.config();
        let max = usize::try_from(cfg.max_deliveries.max(1)).unwrap_or(usize::MAX);
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(key)
            .arg(&self.sub.group)
            .arg("IDLE")
            .arg(cfg.claim_idle_ms)
            .arg("-")
            .arg("+")
            .arg(cfg.batch_size.max(1))
            .query_async(&mut self.conn)
            .await
            .context("XPENDING IDLE")?;
        for p in pending.ids.into_iter().filter(|p| p.times_delivered >= max) {
            let range: StreamRangeReply = redis::cmd("XRANGE")
                .arg(key)
                .arg(&p.id)
                .arg(&p.id)
                .query_async(&mut self.conn)
                .await
                .context("XRANGE")?;
            let Some(entry) = range.ids.into_iter().next() else {
                // Trimmed or deleted under the group: nothing left to handle.
                tracing::warn!(group = %self.sub.group, %stream, entry_id = %p.id, "pending entry no longer in the stream; acknowledging");
                let _acked: i64 = redis::cmd("XACK")
                    .arg(key)
                    .arg(&self.sub.group)
                    .arg(&p.id)
                    .query_async(&mut self.conn)
                    .await?;
                continue;
            };
            self.dead_letter_entry(
                key,
                stream,
                entry,
                i64::try_from(p.times_delivered).unwrap_or(i64::MAX),
            )
            .await?;
        }
        Ok(())
    }

    /// Dead-letters a stream entry delivered `deliveries` times.
    async fn dead_letter_entry(
        &mut self,
        key: &str,
        stream: &str,
        entry: StreamId,
        deliveries: i64,
    ) -> anyhow::Result<()> {
        let bytes: Vec<u8> = entry.get("envelope").unwrap_or_default();
        let event = Envelope::decode(bytes.as_slice()).ok();
        let event_id = match &event {
            Some(e) => e.event_id.clone(),
            None => entry.get("event_id").unwrap_or_else(|| entry.id.clone()),
        };
        let event_type = event
            .as_ref()
            .map(|e| e.event_type.clone())
            .unwrap_or_default();
        let group = self.sub.group.clone();
        let dl = DeadLetter {
            group: &group,
            event_id: &event_id,
            stream,
            source_id: &entry.id,
            event_type: &event_type,
            deliveries,
            last_error: None,
            envelope: &bytes,
        };
        self.dead_letter(key, &dl).await
    }

    /// Claims entries idle past `claim_idle_ms` (failed here, or of a crashed replica) and
    /// handles them.
    async fn claim_pass(
        &mut self,
        key: &str,
        stream: &str,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let cfg = self.bus.config().clone();
        let max = usize::try_from(cfg.max_deliveries.max(1)).unwrap_or(usize::MAX);
        let mut start = "0-0".to_string();
        for _ in 0..CLAIM_PAGES {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(&self.sub.group)
                .arg(&self.sub.consumer)
                .arg(cfg.claim_idle_ms)
                .arg(&start)
                .arg("COUNT")
                .arg(cfg.batch_size.max(1))
                .query_async(&mut self.conn)
                .await
                .context("XAUTOCLAIM")?;
            if !reply.claimed.is_empty() {
                tracing::debug!(group = %self.sub.group, stream = %key, entries = reply.claimed.len(), "claimed idle entries");
            }
            for entry in reply.claimed {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                // The claim counted as a delivery: an entry that became due for the dead-letter
                // pass since it ran is dead-lettered here instead of being handled once more.
                let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                    .arg(key)
                    .arg(&self.sub.group)
                    .arg(&entry.id)
                    .arg(&entry.id)
                    .arg(1)
                    .query_async(&mut self.conn)
                    .await
                    .context("XPENDING entry")?;
                let delivered = pending
                    .ids
                    .first()
                    .map(|p| p.times_delivered)
                    .unwrap_or_default();
                if delivered > max {
                    let deliveries = i64::try_from(delivered - 1).unwrap_or(i64::MAX);
                    self.dead_letter_entry(key, stream, entry, deliveries)
                        .await?;
                    continue;
                }
                self.handle_entry(key, entry).await?;
            }
            if reply.next_stream_id == "0-0" || reply.next_stream_id.is_empty() {
                break;
            }
            start = reply.next_stream_id;
        }
        Ok(())
    }

    /// Exports lag and pending of this group, then trims the stream below what every group still
    /// needs and what the retention keeps.
    async fn stats_and_trim(&mut self, key: &str, stream: &str) -> anyhow::Result<()> {
        let info: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key)
            .query_async(&mut self.conn)
            .await
            .context("XINFO GROUPS")?;
        let retention_ms = self.bus.config().retention_secs.saturating_mul(1000);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let now_ms = u64::try_from(now_ms).unwrap_or(u64::MAX);
        let mut threshold = (now_ms.saturating_sub(retention_ms), 0u64);
        for g in &info.groups {
            if g.name == self.sub.group {
                let labels = [stream, self.sub.group.as_str()];
                if let Some(lag) = g.lag {
                    metrics()
                        .consumer_lag
                        .with_label_values(&labels)
                        .set(i64::try_from(lag).unwrap_or(i64::MAX));
                }
                metrics()
                    .consumer_pending
                    .with_label_values(&labels)
                    .set(i64::try_from(g.pending).unwrap_or(i64::MAX));
            }
            // Entries after last-delivered are not yet delivered to this group.
            threshold = threshold.min(parse_id(&g.last_delivered_id).unwrap_or_default());
            if g.pending > 0 {
                let summary: StreamPendingReply = redis::cmd("XPENDING")
                    .arg(key)
                    .arg(&g.name)
                    .query_async(&mut self.conn)
                    .await
                    .context("XPENDING")?;
                if let StreamPendingReply::Data(data) = summary {
                    threshold = threshold.min(parse_id(&data.start_id).unwrap_or_default());
                }
            }
        }
        if threshold > (0, 0) {
            let trimmed: i64 = redis::cmd("XTRIM")
                .arg(key)
                .arg("MINID")
                .arg("=")
                .arg(format!("{}-{}", threshold.0, threshold.1))
                .query_async(&mut self.conn)
                .await
                .context("XTRIM")?;
            if trimmed > 0 {
                tracing::debug!(stream = %key, trimmed, "stream retention");
            }
        }
        Ok(())
    }
}

/// The entry ids of `entries` per stream key, keys in order of first appearance.
/// The entry's `envelope` field as it was read, without a copy (`StreamId::get` clones).
fn envelope_bytes(entry: &StreamId) -> Option<&[u8]> {
    match entry.map.get("envelope")? {
        redis::Value::BulkString(bytes) => Some(bytes),
        _ => None,
    }
}

fn ids_per_key(entries: &[(String, StreamId)]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, entry) in entries {
        match out.iter_mut().find(|(k, _)| *k == key.as_str()) {
            Some((_, ids)) => ids.push(entry.id.as_str()),
            None => out.push((key.as_str(), vec![entry.id.as_str()])),
        }
    }
    out
}

/// NOGROUP, or a blocked read whose stream was deleted.
fn is_missing_group(err: &RedisError) -> bool {
    err.code() == Some("NOGROUP")
        || err.code() == Some("UNBLOCKED")
        || err
            .detail()
            .is_some_and(|d| d.contains("no longer exists") || d.contains("no such key"))
}

/// A stream entry id `ms-seq` as a comparable pair.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_compare_numerically() {
        assert_eq!(parse_id("1700000000000-5"), Some((1_700_000_000_000, 5)));
        assert_eq!(parse_id("0-0"), Some((0, 0)));
        assert_eq!(parse_id("42"), Some((42, 0)));
        assert_eq!(parse_id("x-1"), None);
        assert!(parse_id("9-10") > parse_id("9-9"));
    }
}
