//! The event bus: transactional outbox, relay, idempotent consumers; Redis Streams in
//! distributed mode, the outbox itself as the log in embedded (SQLite) mode. One contract.
//!
//! # Contract
//!
//! - **Publishing** ([`publish`], or [`publish_many`] for several events in one multi-row
//!   INSERT) writes an [`Envelope`] to the `bus_outbox` table in the caller's transaction, next
//!   to the state change that caused it: the event exists if and only if the change committed.
//!   Nothing is sent anywhere at that point. On Postgres, envelopes of one call that follow each
//!   other with the same producer, tenant and type share a row (`events` > 1, the `envelope`
//!   column an encoded `EnvelopeBatch`, up to [`PACK_MAX`]); [`outbox_envelopes`] reads a row.
//! - **Delivery is at least once.** Every committed event reaches every consumer group that
//!   subscribes to its producer's stream, possibly more than once (a relay that crashes after
//!   XADD republishes; a consumer that crashes after committing but before XACK gets the entry
//!   again). In distributed mode this holds as long as Redis keeps its data (see NOGROUP below).
//! - **Effects are exactly once per group.** A [`Handler`] runs inside a transaction that also
//!   inserts `(group, event_id)` into `bus_inbox`; a redelivered event finds its inbox row and is
//!   acknowledged without calling the handler again. A handler must therefore do all its effects
//!   on the connection it is given (and nothing irreversible outside it).
//! - **Batches.** A consumer applies the events it reads together (one XREADGROUP, or one poll
//!   of the embedded log: up to `bus.batch_size`) in ONE transaction: a plain multi-row
//!   `INSERT INTO bus_inbox` claims them all (almost every read is new; this costs Postgres half
//!   of what `ON CONFLICT` does); when it fails on a duplicate, the transaction starts over and
//!   `INSERT … ON CONFLICT DO NOTHING RETURNING event_id` tells which events are new. The
//!   handler runs for each new one, in stream order, on the same connection (an event
//!   already in the inbox, or earlier in the batch, is skipped as a duplicate); then one commit,
//!   and (Redis) one XACK per stream. When a handler fails or panics (or the transaction fails
//!   before the handlers), the whole batch is rolled back and its events are handled one per
//!   transaction instead, with the semantics below; the failed event's handler is not called
//!   again in that pass, so a failing event's handler runs once per delivery. The handler of an
//!   event *before* the failed one in its batch runs twice in that delivery (the first run was
//!   rolled back; so does one that returned Ok on an aborted transaction, see Failure, which
//!   only the one-by-one pass can single out); its effects commit once. Each event keeps its own `bus.handle` span, log
//!   lines and `events_consumed_total` count.
//! - **Order**: per stream and group, one consumer processes entries in stream order, and the
//!   stream is in outbox `seq` order. Producers change an aggregate under a row lock in the same
//!   transaction that publishes, so per aggregate, seq order is version order. With several
//!   replicas in a group (or after a redelivery), entries of one aggregate can be handled out of
//!   order: handlers tolerate it by comparing the envelope's `aggregate_version` with the version
//!   they last applied ([`version_order`] does the comparison).
//! - **Failure**: a handler error (or panic, caught and treated as an error) rolls the
//!   transaction back (its batch, see above); the event is delivered again later. So does a
//!   handler that returns Ok on Postgres after one of its statements failed (the transaction is
//!   aborted, and COMMIT would silently roll back: the bus checks before committing). After
//!   `bus.max_deliveries` deliveries it is dead-lettered: recorded in `bus_dead_letter` (both
//!   modes) with the envelope, group, stream and delivery count ([`Bus::dead_letters`]), counted
//!   in `events_consumed_total{outcome="dead_letter"}`, logged at WARN; then skipped.
//! - **Logs and traces** carry event ids, types, groups and streams only, never payloads (PHI).
//!   Each handled event runs in a `bus.handle` span (`event_type`, `event_id`, `group`,
//!   `stream`, `aggregate_version`) whose parent is the envelope's W3C `traceparent`.
//!
//! # Distributed mode: Redis Streams ([`Bus::redis`])
//!
//! - **Streams**: one per producing service, key `{prefix}stream:{producer}`; entry fields
//!   `event_id` (text) and `envelope` (the encoded [`Envelope`]).
//! - **Relay** ([`Bus::run_relay`]): in one transaction, sets `published_at` on the oldest (by
//!   seq) unpublished outbox rows, while the events before a row number fewer than
//!   `bus.batch_size`, and reads them in the same statement (`UPDATE … WHERE seq IN (SELECT …)
//!   RETURNING`), XADDs their events (a packed row's one entry each, in order; its bytes split,
//!   not decoded) in seq order in one MULTI/EXEC, then commits; a failed XADD rolls the marks
//!   back. (MULTI/EXEC is what batches reads: Redis serves a blocked XREADGROUP after each
//!   command, so a plain pipeline wakes a waiting consumer with its first entry alone; the
//!   batch conformance cases fail without it.) A packed row that does not split is sent whole
//!   as one entry, which consumers
//!   dead-letter (its bytes kept). After a round that moved events it goes again
//!   at once; after an empty one (or one another process's relay held) it waits
//!   `bus.poll_interval_ms`. On Postgres each round holds `pg_try_advisory_xact_lock` for the
//!   duration, so relays of all processes take turns and never interleave a stream. A crash
//!   between XADD and the commit republishes the batch; the inbox absorbs the duplicates. For
//!   the same reason the relay's commit does not wait for the WAL flush (`synchronous_commit`
//!   off for its transaction): a database crash that loses it only republishes the batch.
//!   Published rows stay in the outbox for `bus.retention_secs` (a copy that outlives a Redis
//!   loss, for the reconciler and operators) and are then deleted in batches from the head of
//!   the log (seq order: on Postgres the outbox has no index on `published_at`, migration 0007).
//!   `outbox_backlog{producer}` counts unpublished events.
//! - **Groups**: one consumer group per [`Subscription::group`] on each stream, created with
//!   `XGROUP CREATE … 0 MKSTREAM` (a new group reads the retained stream from its start;
//!   BUSYGROUP is ignored). Replicas of a service share the group; each has its own
//!   [`Subscription::consumer`] name.
//! - **Reading**: `XREADGROUP … BLOCK bus.block_ms` on a connection of its own whose response
//!   timeout is longer than BLOCK (the client's 500 ms default would cut blocking reads,
//!   redis-rs #1924/#2269). The entries of one read are one batch (see Batches): begin; one
//!   inbox insert; the handlers; commit; one XACK per stream, pipelined, sent while the next
//!   batch runs (at most one such XACK in flight; the consumer waits for it before it stops).
//!   While a batch is handled, the next XREADGROUP already waits (read-ahead): its entries are
//!   delivered, and pending, during the batch before them. An error leaves the
//!   entries pending. One by one (after a failed batch, and for claimed entries, below): per
//!   entry begin; inbox insert (duplicate: skip the handler); handler; commit; XACK; an error
//!   leaves that entry pending and the next entries are still handled. A read with an
//!   undecodable envelope is handled one by one (that entry is dead-lettered).
//! - **Redelivery**: every `bus.claim_idle_ms / 2` (50 ms to 5 s) a consumer first
//!   dead-letters pending entries idle longer than `bus.claim_idle_ms` that were delivered
//!   `bus.max_deliveries` times (XPENDING IDLE), then XAUTOCLAIMs entries idle longer than
//!   `bus.claim_idle_ms` and handles them: a failed entry is retried after `claim_idle_ms`, and
//!   a crashed replica's entries are taken over by the others. A claimed entry whose delivery
//!   count passed `max_deliveries` meanwhile is dead-lettered instead, so a handler sees an
//!   event at most `max_deliveries` times. An entry whose envelope does not decode is
//!   dead-lettered at once. Claimed entries are handled one by one. `claim_idle_ms` must exceed
//!   the two slowest batches (an entry stays pending while the batch read before it runs, then
//!   until its own whole batch has committed: up to `batch_size` handler runs each, and
//!   one-by-one handling after a failure): an entry claimed while
//!   its first batch still runs is handled twice concurrently, and the inbox's primary key lets
//!   only one of the two commit its effects.
//! - **Dead letters**: besides `bus_dead_letter`, a copy goes to the stream
//!   `{prefix}dead:{group}` (one per group, approximate MAXLEN 10 000) with fields `envelope`,
//!   `event_id`, `event_type`, `group`, `stream`, `entry_id`, `deliveries`, for alerting. Two
//!   replicas can race to dead-letter one entry; the table keeps one row, the stream may get two.
//! - **NOGROUP** (Redis restarted without its data, or the key was deleted): the consumer
//!   recreates its groups and keeps reading. Entries lost with Redis are not replayed
//!   automatically: Redis is a signal, the outbox keeps published rows for the retention period
//!   and the services' reconcilers re-derive what must exist.
//! - **Retention**: with the redelivery pass, a consumer trims each stream with
//!   `XTRIM MINID`, at the smallest of: every group's last-delivered id, every group's oldest
//!   pending id, and now minus `bus.retention_secs`. So no entry still pending in a group, or not
//!   yet delivered to a group, is trimmed, and entries younger than the retention are kept. A
//!   group created later starts at the beginning of what is retained.
//! - **Metrics**: `consumer_lag{stream,group}` (XINFO GROUPS `lag`), `consumer_pending`,
//!   `events_consumed_total{group,stream,outcome}` (`ok`, `duplicate`, `error`, `dead_letter`),
//!   `events_relayed_total{producer}`, `outbox_backlog{producer}`.
//!
//! # Embedded mode: the outbox is the log ([`Bus::embedded`])
//!
//! - One process on SQLite. The `bus_outbox` rows of a producer are its stream; a group keeps a
//!   cursor per stream (`bus_cursor.last_seq`), starting at 0: a group that subscribes later
//!   starts from the beginning of the retained log.
//! - The consumer polls (`bus.poll_interval_ms`; at once again after progress) up to
//!   `bus.batch_size` rows with `seq > cursor` in order, with the group's recorded attempts at
//!   them; a batch, in ONE transaction: inbox rows, handlers, cursor advanced past the batch
//!   (see Batches). The cursor moves with the effects, so an event cannot be applied twice, even
//!   across a crash. The transaction holds SQLite's write lock for the whole batch.
//! - One by one (after a failed batch, or when an event of the batch has failed attempts or does
//!   not decode): per event, in ONE transaction: inbox insert, handler, cursor advance.
//! - A handler error records the attempt in `bus_delivery` (outside the failed transaction) and
//!   retries the event after a backoff (doubling from `bus.poll_interval_ms`, at most
//!   `bus.claim_idle_ms`); the stream waits behind it for that group (strict order: after a
//!   failed batch, the events before the failed one are applied one by one, the ones after it
//!   wait). After `bus.max_deliveries` attempts the event is dead-lettered and the cursor
//!   advances past it.
//! - [`Bus::run_relay`] has nothing to relay; it keeps retention: outbox rows that every group
//!   with a cursor on the stream has passed are deleted once older than `bus.retention_secs`.
//!   A cursor of a group that no longer runs pins the log: delete its `bus_cursor` row.
//! - Everything is in SQLite, so progress, attempts and dead letters survive restarts.
//! - Metrics: `consumer_lag{stream,group}` counts the log rows after the group's cursor;
//!   `events_consumed_total` as in Redis mode; nothing is relayed.
//! - On SQLite, seq order is commit order (one writer at a time). The embedded bus is meant for
//!   SQLite: on Postgres, a transaction could commit a lower seq after a consumer has passed it.
//!
//! # Housekeeping of both modes
//!
//! - Inbox rows are deleted once older than `bus.retention_secs` plus one day; by then the event
//!   is no longer redelivered (unless every consumer of its group was down that long while the
//!   entry was pending).
//! - Bus bookkeeping (`created_at`, `published_at`, `processed_at`, retention) uses real time:
//!   it is about the machinery, not the domain. The envelope's `occur_time` is the producer's
//!   (possibly simulated) clock.
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeZone as _, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::BusConfig;
use crate::db::{Db, to_micros};
use crate::metrics::metrics;

mod embedded;
mod redis_streams;
mod store;

pub use arflow_api::events::v1::Envelope;
pub use arflow_api::wire::EventPayload;

/// Builds an envelope: event_id = UUIDv7, event_type = the given full protobuf name, payload =
/// the encoded message, traceparent = the current tracing span's W3C traceparent when an
/// OpenTelemetry layer is installed (empty otherwise).
pub fn new_envelope<M: prost::Message>(
    producer: &str,
    event_type: &str,
    tenant_id: &str,
    aggregate_id: &str,
    aggregate_version: i64,
    occur_time: DateTime<Utc>,
    payload: &M,
) -> Envelope {
    Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: event_type.to_string(),
        tenant_id: tenant_id.to_string(),
        aggregate_id: aggregate_id.to_string(),
        aggregate_version,
        occur_time: Some(prost_types::Timestamp {
            seconds: occur_time.timestamp(),
            nanos: occur_time.timestamp_subsec_nanos().min(999_999_999) as i32,
        }),
        traceparent: current_traceparent().unwrap_or_default(),
        producer: producer.to_string(),
        payload: payload.encode_to_vec(),
    }
}

/// Builds the envelope of a typed event: [`new_envelope`] with `event_type` =
/// [`EventPayload::TYPE`], so a payload's type name is written in one place.
pub fn envelope<M: EventPayload>(
    producer: &str,
    tenant_id: &str,
    aggregate_id: &str,
    aggregate_version: i64,
    occur_time: DateTime<Utc>,
    payload: &M,
) -> Envelope {
    new_envelope(
        producer,
        M::TYPE,
        tenant_id,
        aggregate_id,
        aggregate_version,
        occur_time,
        payload,
    )
}

/// The envelope's payload as `M` when the envelope carries an `M` (None for other types), so a
/// consumer dispatches on the payload type: `if let Some(e) = bus::payload::<ClaimPaid>(ev)`.
pub fn payload<M: EventPayload>(event: &Envelope) -> Option<Result<M, prost::DecodeError>> {
    (event.event_type == M::TYPE).then(|| decode_payload(event))
}

/// The envelope's `occur_time`, when present and in range.
pub fn occur_time(event: &Envelope) -> Option<DateTime<Utc>> {
    let ts = event.occur_time.as_ref()?;
    Utc.timestamp_opt(ts.seconds, u32::try_from(ts.nanos).ok()?)
        .single()
}

/// Decodes the envelope's payload as `M` (check `event_type` first).
pub fn decode_payload<M: prost::Message + Default>(
    event: &Envelope,
) -> Result<M, prost::DecodeError> {
    M::decode(event.payload.as_slice())
}

/// Writes the envelope to the outbox in the caller's transaction (the transactional outbox).
/// Increments `metrics().events_published`. [`publish_many`] with one envelope.
pub async fn publish(
    conn: &mut sqlx::AnyConnection,
    envelope: &Envelope,
) -> Result<(), sqlx::Error> {
    publish_many(conn, std::slice::from_ref(envelope)).await
}

/// Writes the envelopes to the outbox in the caller's transaction, in order (their `seq`s
/// follow the slice). Every envelope is validated before anything is written. Increments
/// `metrics().events_published` once the rows are written.
///
/// On Postgres, envelopes that follow each other with the same producer, tenant and type share
/// one outbox row, up to [`PACK_MAX`] (an encoded `EnvelopeBatch`, see migration 0010); the
/// relay sends each to the stream as its own entry. On SQLite each envelope is a row of its own
/// (the embedded consumers address events by row).
///
/// The rows go in one INSERT per 256. So that a connection caches a few statement shapes, not
/// one per batch length, a statement is padded to the next power of two with rows of NULLs that
/// it filters out (100 events on SQLite: one statement of 128 rows).
pub async fn publish_many(
    conn: &mut sqlx::AnyConnection,
    envelopes: &[Envelope],
) -> Result<(), sqlx::Error> {
    /// Seven bound values per row plus the shared `created_at` ($1): at most 1 793 parameters.
    /// `columnN` names the VALUES columns on both Postgres and SQLite.
    static INSERT: store::Shapes = store::Shapes::new(|rows| {
        let values: Vec<String> = (0..rows)
            .map(|i| format!("({})", store::placeholders(2 + 7 * i, 7)))
            .collect();
        format!(
            "INSERT INTO bus_outbox \
             (event_id, producer, tenant_id, aggregate_id, event_type, envelope, events, \
             created_at) \
             SELECT column1, column2, column3, column4, column5, column6, column7, $1 \
             FROM (VALUES {}) AS v WHERE column1 IS NOT NULL",
            values.join(", ")
        )
    });
    for envelope in envelopes {
        if envelope.producer.is_empty() || envelope.producer.contains(char::is_whitespace) {
            return Err(sqlx::Error::InvalidArgument(
                "envelope.producer must be a non-empty name without whitespace".into(),
            ));
        }
        if envelope.event_id.is_empty() || envelope.event_type.is_empty() {
            return Err(sqlx::Error::InvalidArgument(
                "envelope.event_id and event_type must be set".into(),
            ));
        }
    }
    let pack = if crate::db::is_postgres(conn) {
        PACK_MAX
    } else {
        1
    };
    let packs = outbox_packs(envelopes, pack);
    let created_at = to_micros(Utc::now());
    for chunk in packs.chunks(store::MAX_ROWS) {
        let rows = store::padded_len(chunk.len());
        let mut insert = sqlx::query(INSERT.sql(rows)).bind(created_at);
        for pack in chunk {
            let first = &pack[0];
            insert = insert
                .bind(first.event_id.as_str())
                .bind(first.producer.as_str())
                .bind(first.tenant_id.as_str())
                .bind(first.aggregate_id.as_str())
                .bind(first.event_type.as_str())
                .bind(encode_pack(pack))
                .bind(pack.len() as i64);
        }
        for _ in chunk.len()..rows {
            insert = insert
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<Vec<u8>>)
                .bind(None::<i64>);
        }
        insert.execute(&mut *conn).await?;
    }
    // One label lookup per run of equal (producer, event type), not per event.
    for run in envelopes.chunk_by(|a, b| a.producer == b.producer && a.event_type == b.event_type) {
        metrics()
            .events_published
            .with_label_values(&[run[0].producer.as_str(), run[0].event_type.as_str()])
            .inc_by(run.len() as u64);
    }
    Ok(())
}

/// Most events one Postgres outbox row carries ([`publish_many`]).
pub const PACK_MAX: usize = 256;

/// `envelopes` cut into outbox rows: runs with the same producer, tenant and type, at most
/// `max` long.
fn outbox_packs(envelopes: &[Envelope], max: usize) -> Vec<&[Envelope]> {
    envelopes
        .chunk_by(|a, b| {
            a.producer == b.producer && a.tenant_id == b.tenant_id && a.event_type == b.event_type
        })
        .flat_map(|run| run.chunks(max.max(1)))
        .collect()
}

/// The `envelope` column of an outbox row holding `pack`: the envelope itself when alone, else
/// an encoded `EnvelopeBatch`.
fn encode_pack(pack: &[Envelope]) -> Vec<u8> {
    use prost::Message as _;
    match pack {
        [one] => one.encode_to_vec(),
        many => {
            let len: usize = many
                .iter()
                .map(|e| prost::encoding::message::encoded_len(1, e))
                .sum();
            let mut buf = Vec::with_capacity(len);
            for e in many {
                prost::encoding::message::encode(1, e, &mut buf);
            }
            buf
        }
    }
}

/// The envelopes of an outbox row (its `envelope` and `events` columns, see [`publish_many`]),
/// decoded, in order. For operators' tools and tests; the relay does not decode them.
pub fn outbox_envelopes(bytes: &[u8], events: i64) -> anyhow::Result<Vec<Envelope>> {
    use prost::Message as _;
    if events == 1 {
        return Ok(vec![Envelope::decode(bytes)?]);
    }
    let batch = arflow_api::events::v1::EnvelopeBatch::decode(bytes)?;
    anyhow::ensure!(
        batch.envelopes.len() as i64 == events,
        "outbox row: a batch of {} envelopes where {events} were written",
        batch.envelopes.len()
    );
    Ok(batch.envelopes)
}

/// The envelopes of an outbox row as the relay sends them: (event id, encoded envelope), in
/// order, without decoding the envelopes. `event_id` is the row's column (the only event's id
/// when `events` is 1).
fn outbox_entries(
    bytes: &[u8],
    events: i64,
    event_id: String,
) -> anyhow::Result<Vec<(String, &[u8])>> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    if events == 1 {
        return Ok(vec![(event_id, bytes)]);
    }
    let mut entries = Vec::with_capacity(usize::try_from(events).unwrap_or(0));
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, wire) = decode_key(&mut rest)?;
        anyhow::ensure!(
            tag == 1 && wire == WireType::LengthDelimited,
            "outbox row: an EnvelopeBatch holds only field 1"
        );
        let len = usize::try_from(decode_varint(&mut rest)?)?;
        anyhow::ensure!(len <= rest.len(), "outbox row: a truncated envelope");
        let (envelope, tail) = rest.split_at(len);
        rest = tail;
        entries.push((first_event_id(envelope)?, envelope));
    }
    anyhow::ensure!(
        entries.len() as i64 == events,
        "outbox row: a batch of {} envelopes where {events} were written",
        entries.len()
    );
    Ok(entries)
}

/// An encoded envelope's `event_id`. prost writes fields in number order and `publish_many`
/// refuses an empty id, so field 1 comes first; anything else is decoded in full.
fn first_event_id(mut envelope: &[u8]) -> anyhow::Result<String> {
    use prost::Message as _;
    use prost::encoding::{WireType, decode_key, decode_varint};
    let whole = envelope;
    if let Ok((1, WireType::LengthDelimited)) = decode_key(&mut envelope)
        && let Ok(len) = decode_varint(&mut envelope)
        && let Some(id) = usize::try_from(len).ok().and_then(|l| envelope.get(..l))
        && let Ok(id) = std::str::from_utf8(id)
    {
        return Ok(id.to_string());
    }
    Ok(Envelope::decode(whole)?.event_id)
}

/// Applies events of the streams a [`Subscription`] names.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies the event's effects on `conn`, inside the consumer's transaction. The bus records
    /// the event id in the inbox in the same transaction and commits; then (Redis) XACKs. The
    /// transaction usually holds a batch: the effects of the events before this one (in stream
    /// order) are in it too, and locks taken here are held until the batch commits.
    /// Err = not committed; the event is redelivered later (dead-lettered after
    /// `bus.max_deliveries`). A panic counts as an error, and so does returning Ok after a
    /// failed statement on Postgres (the transaction is aborted). A handler can run again for
    /// an event whose earlier run was rolled back with a failing batch mate.
    async fn handle(&self, conn: &mut sqlx::AnyConnection, event: &Envelope) -> anyhow::Result<()>;

    /// True when [`Handler::handle_batch`] is worth calling: the handler's effects for many
    /// events take fewer statements than one per event (a multi-row insert, say). Default false:
    /// the bus calls [`Handler::handle`] per event, each in its own span.
    fn handles_batches(&self) -> bool {
        false
    }

    /// Applies the effects of `events` (new to the group's inbox, in stream order) on `conn`,
    /// inside the consumer's transaction; called instead of [`Handler::handle`] per event when
    /// [`Handler::handles_batches`] is true. Err (or a panic) rolls the whole batch back; the bus
    /// then handles its events one at a time with [`Handler::handle`], so the two must have the
    /// same effects. Default: [`Handler::handle`] on each event in order.
    async fn handle_batch(
        &self,
        conn: &mut sqlx::AnyConnection,
        events: &[&Envelope],
    ) -> anyhow::Result<()> {
        for event in events {
            self.handle(conn, event).await?;
        }
        Ok(())
    }
}

/// What a consumer loop reads and who handles it.
#[derive(Clone)]
pub struct Subscription {
    /// The consuming service, e.g. `"scheduler"`: the consumer group, and the inbox's scope.
    pub group: String,
    /// The replica's name, unique per process within the group (e.g. service + host + pid).
    pub consumer: String,
    /// Producer names (= streams), e.g. `["claims"]`.
    pub streams: Vec<String>,
    pub handler: Arc<dyn Handler>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    fn validate(&self) -> anyhow::Result<()> {
        let name_ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        anyhow::ensure!(
            name_ok(&self.group),
            "subscription group must be a name without whitespace"
        );
        anyhow::ensure!(
            name_ok(&self.consumer),
            "subscription consumer must be a name without whitespace"
        );
        anyhow::ensure!(
            !self.streams.is_empty(),
            "subscription of group {} names no stream",
            self.group
        );
        for s in &self.streams {
            anyhow::ensure!(
                name_ok(s),
                "stream names must be producer names without whitespace"
            );
        }
        Ok(())
    }
}

/// How an event's `aggregate_version` relates to the version a consumer last applied for that
/// aggregate (see the module docs on ordering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionOrder {
    /// The next version (or the first one seen): apply it.
    Next,
    /// At or below what was applied: a late or repeated event; skip it.
    Stale,
    /// Beyond the next version: an earlier event has not been applied yet. Apply it if the
    /// event carries the full state the consumer needs (and record its version), or return an
    /// error so the bus delivers it again later.
    Ahead,
}

/// Compares `event.aggregate_version` with the last version applied (None: nothing applied).
pub fn version_order(last_applied: Option<i64>, event: &Envelope) -> VersionOrder {
    match last_applied {
        None => VersionOrder::Next,
        Some(last) if event.aggregate_version <= last => VersionOrder::Stale,
        Some(last) if event.aggregate_version == last.saturating_add(1) => VersionOrder::Next,
        Some(_) => VersionOrder::Ahead,
    }
}

/// A crash to simulate, for tests of the delivery guarantees ([`Bus::inject_fault`]); the
/// conformance suite (`crates/platform/tests/bus_conformance.rs`) uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The consumer loop returns an error right after committing an event's transaction, before
    /// acknowledging it (Redis: before XACK; embedded: the cursor moved with the commit).
    ConsumerCrashAfterCommit,
    /// The relay returns an error right after XADD, before marking the rows published.
    RelayCrashAfterPublish,
}

#[derive(Default)]
struct Faults {
    consumer_crash_after_commit: AtomicU32,
    relay_crash_after_publish: AtomicU32,
}

impl Faults {
    fn counter(&self, fault: Fault) -> &AtomicU32 {
        match fault {
            Fault::ConsumerCrashAfterCommit => &self.consumer_crash_after_commit,
            Fault::RelayCrashAfterPublish => &self.relay_crash_after_publish,
        }
    }

    /// True (once per armed count) when `fault` should happen now.
    fn fire(&self, fault: Fault) -> bool {
        self.counter(fault)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The event bus of a process. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    cfg: BusConfig,
    kind: Kind,
    faults: Faults,
}

enum Kind {
    Embedded,
    Redis(redis_streams::RedisBus),
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Embedded => f.debug_struct("Bus").field("mode", &"embedded").finish(),
            Kind::Redis(r) => f
                .debug_struct("Bus")
                .field("mode", &"redis")
                .field("prefix", &r.prefix)
                .finish(),
        }
    }
}

impl Bus {
    /// The embedded bus: the outbox is the log, no Redis (one process, SQLite; see module docs).
    pub fn embedded(db: Db, cfg: BusConfig) -> Bus {
        if db.backend() != crate::db::Backend::Sqlite {
            tracing::warn!(
                "embedded event bus on {}: meant for SQLite, where seq order is commit order",
                db.backend().name()
            );
        }
        Bus {
            inner: Arc::new(Inner {
                db,
                cfg,
                kind: Kind::Embedded,
                faults: Faults::default(),
            }),
        }
    }

    /// The distributed bus on Redis Streams; every key starts with `key_prefix`.
    pub async fn redis(
        db: Db,
        redis_url: &str,
        key_prefix: &str,
        cfg: BusConfig,
    ) -> anyhow::Result<Bus> {
        let r = redis_streams::RedisBus::connect(redis_url, key_prefix).await?;
        Ok(Bus {
            inner: Arc::new(Inner {
                db,
                cfg,
                kind: Kind::Redis(r),
                faults: Faults::default(),
            }),
        })
    }

    /// Outbox → stream relay loop until `shutdown` is cancelled (embedded: nothing to relay; it
    /// keeps the log's retention and returns when cancelled).
    pub async fn run_relay(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        match &self.inner.kind {
            Kind::Embedded => embedded::run_housekeeping(self, shutdown).await,
            Kind::Redis(r) => r.run_relay(self, shutdown).await,
        }
    }

    /// Consumer loop until `shutdown` is cancelled.
    pub async fn run_consumer(
        &self,
        sub: Subscription,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        sub.validate()?;
        match &self.inner.kind {
            Kind::Embedded => embedded::run_consumer(self, sub, shutdown).await,
            Kind::Redis(r) => r.run_consumer(self, sub, shutdown).await,
        }
    }

    /// Dead-lettered events of a group, oldest first (for operators and tests).
    pub async fn dead_letters(&self, group: &str, limit: usize) -> anyhow::Result<Vec<Envelope>> {
        store::dead_letters(&self.inner.db, group, limit).await
    }

    /// True for the embedded bus.
    pub fn is_embedded(&self) -> bool {
        matches!(self.inner.kind, Kind::Embedded)
    }

    /// The Redis key of a producer's stream (None for the embedded bus).
    pub fn stream_key(&self, producer: &str) -> Option<String> {
        match &self.inner.kind {
            Kind::Embedded => None,
            Kind::Redis(r) => Some(r.stream_key(producer)),
        }
    }

    /// The Redis key of a group's dead-letter stream (None for the embedded bus).
    pub fn dead_letter_key(&self, group: &str) -> Option<String> {
        match &self.inner.kind {
            Kind::Embedded => None,
            Kind::Redis(r) => Some(r.dead_key(group)),
        }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.cfg
    }

    /// Arms a simulated crash for the next `times` occasions (tests of the delivery guarantees;
    /// never armed in production).
    pub fn inject_fault(&self, fault: Fault, times: u32) {
        self.inner
            .faults
            .counter(fault)
            .fetch_add(times, Ordering::SeqCst);
    }

    fn fault(&self, fault: Fault) -> bool {
        self.inner.faults.fire(fault)
    }
}

/// The W3C traceparent of the current span, when OpenTelemetry tracing is active.
fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `span` a child of the remote span named by a W3C traceparent (ignored when malformed).
fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace_id, span_id, flags] = parts.as_slice() else {
        return;
    };
    if *version != "00" || trace_id.len() != 32 || span_id.len() != 16 || flags.len() != 2 {
        return;
    }
    let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
        TraceId::from_hex(trace_id),
        SpanId::from_hex(span_id),
        u8::from_str_radix(flags, 16),
    ) else {
        return;
    };
    let sc = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    if sc.is_valid() {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(version: i64) -> Envelope {
        new_envelope(
            "claims",
            "t",
            "tenant",
            "agg",
            version,
            Utc::now(),
            &"x".to_string(),
        )
    }

    #[test]
    fn outbox_rows_pack_runs_of_one_producer_tenant_and_type() {
        let mut events: Vec<Envelope> = (1..=7).map(env).collect();
        events[3].event_type = "other".into();
        events[5].tenant_id = "another".into();
        let lens: Vec<usize> = outbox_packs(&events, 2).iter().map(|p| p.len()).collect();
        assert_eq!(
            lens,
            vec![2, 1, 1, 1, 1, 1],
            "runs of 3, 1, 1, 1, 1; at most 2 a row"
        );
        assert_eq!(outbox_packs(&events, 1).len(), 7);
        assert_eq!(outbox_packs(&events[..3], PACK_MAX).len(), 1);
        assert!(outbox_packs(&[], PACK_MAX).is_empty());
    }

    #[test]
    fn packed_rows_split_back_into_their_envelopes() {
        use prost::Message as _;
        let events: Vec<Envelope> = (1..=5).map(env).collect();
        let bytes = encode_pack(&events);
        assert_eq!(outbox_envelopes(&bytes, 5).unwrap(), events);
        let entries = outbox_entries(&bytes, 5, "ignored".into()).unwrap();
        assert_eq!(entries.len(), 5);
        for ((id, encoded), event) in entries.iter().zip(&events) {
            assert_eq!(id, &event.event_id);
            assert_eq!(Envelope::decode(*encoded).unwrap(), *event);
        }
        // A single event's row is the envelope itself, its id the row's column.
        let one = encode_pack(&events[..1]);
        assert_eq!(one, events[0].encode_to_vec());
        assert_eq!(outbox_envelopes(&one, 1).unwrap(), events[..1]);
        let entries = outbox_entries(&one, 1, "col".into()).unwrap();
        assert_eq!(entries, vec![("col".to_string(), one.as_slice())]);
        // A count that does not match, or bytes cut short, is an error, never a partial row.
        assert!(outbox_envelopes(&bytes, 4).is_err());
        assert!(outbox_entries(&bytes, 6, String::new()).is_err());
        assert!(outbox_entries(&bytes[..bytes.len() - 3], 5, String::new()).is_err());
    }

    #[test]
    fn envelopes_carry_what_consumers_need() {
        let at = Utc
            .timestamp_opt(1_700_000_000, 123_000)
            .single()
            .expect("valid instant");
        let e = new_envelope(
            "claims",
            "arflow.events.v1.X",
            "t1",
            "c1",
            3,
            at,
            &"payload".to_string(),
        );
        assert_eq!(
            uuid::Uuid::parse_str(&e.event_id)
                .expect("uuid")
                .get_version_num(),
            7
        );
        assert_eq!(occur_time(&e), Some(at));
        assert_eq!(decode_payload::<String>(&e).expect("decodes"), "payload");
        assert_eq!((e.producer.as_str(), e.aggregate_version), ("claims", 3));
    }

    #[test]
    fn version_order_detects_reordering() {
        assert_eq!(version_order(None, &env(5)), VersionOrder::Next);
        assert_eq!(version_order(Some(4), &env(5)), VersionOrder::Next);
        assert_eq!(version_order(Some(5), &env(5)), VersionOrder::Stale);
        assert_eq!(version_order(Some(6), &env(5)), VersionOrder::Stale);
        assert_eq!(version_order(Some(3), &env(5)), VersionOrder::Ahead);
    }

    #[test]
    fn faults_fire_as_often_as_armed() {
        let f = Faults::default();
        assert!(!f.fire(Fault::RelayCrashAfterPublish));
        f.counter(Fault::RelayCrashAfterPublish)
            .fetch_add(2, Ordering::SeqCst);
        assert!(f.fire(Fault::RelayCrashAfterPublish));
        assert!(f.fire(Fault::RelayCrashAfterPublish));
        assert!(!f.fire(Fault::RelayCrashAfterPublish));
        assert!(!f.fire(Fault::ConsumerCrashAfterCommit));
    }
}
