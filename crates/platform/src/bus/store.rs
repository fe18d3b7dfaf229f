//! SQL and bookkeeping shared by both modes: the consumer transaction with its inbox rows
//! (one event, or a batch), dead letters, inbox pruning, metrics and spans.
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use futures::FutureExt as _;
use prometheus::IntCounter;
use prost::Message as _;
use sqlx::Row as _;
use tracing::Instrument as _;

use super::{Envelope, Handler, set_remote_parent};
use crate::db::{Db, Tx, to_micros};
use crate::metrics::metrics;

/// Most rows (or ids) one multi-row statement carries. Such statements are only built for
/// power-of-two counts up to it: sqlx prepares and caches every distinct SQL text per connection
/// (a miss costs a round trip and can evict the application's own statements), so each
/// multi-row statement has at most 9 shapes.
pub(super) const MAX_ROWS: usize = 256;

/// The SQL texts of one multi-row statement, per power-of-two row count up to [`MAX_ROWS`],
/// built on first use.
pub(super) struct Shapes {
    texts: OnceLock<Vec<String>>,
    build: fn(usize) -> String,
}

impl Shapes {
    /// `build(rows)` writes the statement for `rows` rows.
    pub(super) const fn new(build: fn(usize) -> String) -> Shapes {
        Shapes {
            texts: OnceLock::new(),
            build,
        }
    }

    /// The statement for `rows` rows, a power of two at most [`MAX_ROWS`] (see [`padded_len`]).
    pub(super) fn sql(&'static self, rows: usize) -> &'static str {
        debug_assert!(rows.is_power_of_two() && rows <= MAX_ROWS);
        let texts = self.texts.get_or_init(|| {
            (0..=MAX_ROWS.trailing_zeros())
                .map(|k| (self.build)(1 << k))
                .collect()
        });
        let k = rows.clamp(1, MAX_ROWS).next_power_of_two().trailing_zeros();
        texts[k as usize].as_str()
    }
}

/// The statement size for `n` (1..=[`MAX_ROWS`]) rows once padded: the next power of two.
/// The padding rows repeat the last one where a repeat is harmless (`ON CONFLICT DO NOTHING`,
/// `IN (...)` lists), or are NULL rows the statement filters out (`bus::publish_many`).
pub(super) fn padded_len(n: usize) -> usize {
    n.clamp(1, MAX_ROWS).next_power_of_two()
}

/// `count` placeholders from `$first` on, comma-separated: `$2, $3, $4`.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What became of an event handed to [`apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Applied {
    /// The handler ran; its effects and the inbox row are in the open transaction.
    Handled,
    /// The group's inbox already has the event: the handler was not called.
    Duplicate,
}

impl Applied {
    pub(super) fn outcome(self) -> &'static str {
        match self {
            Applied::Handled => "ok",
            Applied::Duplicate => "duplicate",
        }
    }
}

/// Begins the consumer transaction, records the event in the group's inbox and runs the
/// handler (a panic counts as an error, and so does Ok on an aborted transaction, see
/// [`ensure_not_aborted`]). On Ok the transaction is still open: the caller adds
/// its own statements and commits. On Err it has been rolled back.
/// Runs in `span` ([`handle_span`]), in which callers also log the outcome.
pub(super) async fn apply(
    db: &Db,
    group: &str,
    handler: &dyn Handler,
    event: &Envelope,
    span: &tracing::Span,
) -> anyhow::Result<(Tx, Applied)> {
    async {
        let mut tx = db.begin().await.context("begin consumer transaction")?;
        let inserted = sqlx::query(
            "INSERT INTO bus_inbox (consumer_group, event_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(&event.event_id)
        .bind(to_micros(Utc::now()))
        .execute(&mut *tx)
        .await
        .context("insert inbox row")?
        .rows_affected();
        if inserted == 0 {
            tracing::debug!("duplicate delivery, already in the inbox");
            return Ok((tx, Applied::Duplicate));
        }
        let err = match guarded(handler.handle(&mut tx, event)).await {
            Ok(()) => match ensure_not_aborted(db, &mut tx).await {
                Ok(()) => return Ok((tx, Applied::Handled)),
                Err(err) => err,
            },
            Err(err) => err,
        };
        if let Err(rollback) = tx.rollback().await {
            tracing::debug!(error = %rollback, "rollback after handler error failed");
        }
        Err(err)
    }
    .instrument(span.clone())
    .await
}

/// Why [`apply_batch`] gave up; the transaction has been rolled back.
pub(super) enum BatchError {
    /// The handler of `items[index]` failed or panicked (the items before it ran, and were
    /// rolled back with it; the items after it did not run).
    Handler { index: usize, error: anyhow::Error },
    /// Begin or the inbox insert failed; no handler ran.
    Store(anyhow::Error),
}

/// The batched form of [`apply`]: begins one transaction, records every event of `items` in
/// the group's inbox with one multi-row insert per [`MAX_ROWS`] events (`RETURNING` tells which
/// are new), then runs the handler of each new event in order, each in its span; an event
/// already in the inbox (or earlier in the same batch) is a duplicate and skipped. On Ok the
/// transaction is still open: the caller adds its own statements and commits. On Err it has
/// been rolled back: the caller handles the batch one event at a time instead, without calling
/// the failed handler again ([`BatchError::Handler`]).
pub(super) async fn apply_batch(
    db: &Db,
    group: &str,
    handler: &dyn Handler,
    items: &[(&Envelope, &tracing::Span)],
) -> Result<(Tx, Vec<Applied>), BatchError> {
    let mut tx = db
        .begin()
        .await
        .context("begin consumer transaction")
        .map_err(BatchError::Store)?;
    let ids: Vec<&str> = items.iter().map(|(e, _)| e.event_id.as_str()).collect();
    // Almost every read is new to the inbox: a plain INSERT says so for half of what `ON
    // CONFLICT DO NOTHING RETURNING` costs Postgres (measured 3.0 against 6.2 µs a row). A
    // duplicate fails it (the transaction has done nothing else yet); then the batch starts over
    // and asks which ids are new.
    let mut new = match insert_inbox(&mut tx, group, &ids, Existing::Fail).await {
        Ok(new) => new,
        Err(err) => {
            rollback(tx).await;
            let duplicate = err
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::db::is_unique_violation);
            if !duplicate {
                return Err(BatchError::Store(err));
            }
            tx = db
                .begin()
                .await
                .context("begin consumer transaction")
                .map_err(BatchError::Store)?;
            match insert_inbox(&mut tx, group, &ids, Existing::Skip).await {
                Ok(new) => new,
                Err(err) => {
                    rollback(tx).await;
                    return Err(BatchError::Store(err));
                }
            }
        }
    };
    if handler.handles_batches() {
        return apply_whole_batch(db, group, handler, items, tx, new).await;
    }
    let mut applied = Vec::with_capacity(items.len());
    for (index, (event, span)) in items.iter().enumerate() {
        if !new.remove(event.event_id.as_str()) {
            span.in_scope(|| tracing::debug!("duplicate delivery, already in the inbox"));
            applied.push(Applied::Duplicate);
            continue;
        }
        let result = guarded(handler.handle(&mut tx, event))
            .instrument((*span).clone())
            .await;
        let error = match result {
            Ok(()) => {
                applied.push(Applied::Handled);
                continue;
            }
            Err(err) => err,
        };
        rollback(tx).await;
        return Err(BatchError::Handler { index, error });
    }
    if let Err(err) = ensure_not_aborted(db, &mut tx).await {
        // Which handler swallowed the error is unknown: one by one finds it.
        rollback(tx).await;
        return Err(BatchError::Store(err));
    }
    Ok((tx, applied))
}

/// [`apply_batch`] for a handler that [`Handler::handles_batches`]: one
/// [`Handler::handle_batch`] call for the events `new` to the inbox, in a `bus.handle_batch`
/// span. Its failure is not tied to one event: [`BatchError::Store`], so the caller retries every
/// event on its own.
async fn apply_whole_batch(
    db: &Db,
    group: &str,
    handler: &dyn Handler,
    items: &[(&Envelope, &tracing::Span)],
    mut tx: Tx,
    mut new: HashSet<String>,
) -> Result<(Tx, Vec<Applied>), BatchError> {
    let mut applied = Vec::with_capacity(items.len());
    let mut events = Vec::with_capacity(new.len());
    for (event, span) in items {
        if new.remove(event.event_id.as_str()) {
            applied.push(Applied::Handled);
            events.push(*event);
        } else {
            span.in_scope(|| tracing::debug!("duplicate delivery, already in the inbox"));
            applied.push(Applied::Duplicate);
        }
    }
    if events.is_empty() {
        return Ok((tx, applied));
    }
    let span = tracing::info_span!("bus.handle_batch", group = %group, events = events.len());
    let result = guarded(handler.handle_batch(&mut tx, &events))
        .instrument(span)
        .await;
    let error = match result {
        Ok(()) => match ensure_not_aborted(db, &mut tx).await {
            Ok(()) => return Ok((tx, applied)),
            Err(err) => err,
        },
        Err(err) => err,
    };
    rollback(tx).await;
    Err(BatchError::Store(
        error.context("the handler's batch failed"),
    ))
}

/// A handler's run; a panic counts as an error. (The panic message is the handler's text and may
/// quote data: not repeated.)
async fn guarded(run: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result,
        Err(_panic) => Err(anyhow::anyhow!("event handler panicked")),
    }
}

/// Fails when the transaction is aborted. Postgres ignores every statement after a failed one
/// until the transaction ends, and then turns COMMIT into a silent ROLLBACK (sqlx reports
/// success): a handler that swallowed a database error and returned Ok would lose its effects
/// and inbox row (and those of its whole batch) while the entries are acknowledged. One cheap
/// statement tells. (SQLite has no such state.)
async fn ensure_not_aborted(db: &Db, conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    if db.backend() == crate::db::Backend::Postgres {
        sqlx::query("SELECT 1")
            .execute(conn)
            .await
            .context("the handler returned Ok after a failed statement (transaction aborted)")?;
    }
    Ok(())
}

async fn rollback(tx: Tx) {
    if let Err(err) = tx.rollback().await {
        tracing::debug!(error = %err, "rollback of the consumer transaction failed");
    }
}

/// What [`insert_inbox`] does with an id already in the group's inbox (or twice in `ids`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// A plain INSERT, which fails with a unique violation.
    Fail,
    /// `ON CONFLICT DO NOTHING`: the row is skipped.
    Skip,
}

/// Inserts the group's inbox rows of `ids`, one multi-row INSERT per [`MAX_ROWS`], padded with
/// NULL rows the statement filters out; returns the ids that were new (with
/// [`Existing::Fail`], every id, or an error). Runs with generic plans ([`db::reuse_plans`]);
/// the handlers that follow plan each statement again, as everywhere else.
async fn insert_inbox(
    conn: &mut sqlx::AnyConnection,
    group: &str,
    ids: &[&str],
    existing: Existing,
) -> anyhow::Result<HashSet<String>> {
    fn sql(rows: usize, existing: Existing) -> String {
        let values: Vec<String> = (0..rows).map(|i| format!("(${})", i + 3)).collect();
        format!(
            "INSERT INTO bus_inbox (consumer_group, event_id, processed_at) \
             SELECT $1, column1, $2 FROM (VALUES {}) AS v WHERE column1 IS NOT NULL{}",
            values.join(", "),
            match existing {
                Existing::Fail => "",
                Existing::Skip => " ON CONFLICT DO NOTHING RETURNING event_id",
            }
        )
    }
    static FAIL: Shapes = Shapes::new(|rows| sql(rows, Existing::Fail));
    static SKIP: Shapes = Shapes::new(|rows| sql(rows, Existing::Skip));
    let shapes = match existing {
        Existing::Fail => &FAIL,
        Existing::Skip => &SKIP,
    };
    crate::db::reuse_plans(conn).await?;
    let now = to_micros(Utc::now());
    let mut new = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_ROWS) {
        let rows = padded_len(chunk.len());
        let mut query = sqlx::query(shapes.sql(rows)).bind(group).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        for _ in chunk.len()..rows {
            query = query.bind(None::<&str>);
        }
        match existing {
            Existing::Fail => {
                query.execute(&mut *conn).await?;
                new.extend(chunk.iter().map(|id| id.to_string()));
            }
            Existing::Skip => {
                for row in query
                    .fetch_all(&mut *conn)
                    .await
                    .context("insert inbox rows")?
                {
                    new.insert(row.try_get::<String, _>("event_id")?);
                }
            }
        }
    }
    crate::db::plan_each_run(conn).await?;
    Ok(new)
}

/// The span of one handled event: ids and names only, never the payload.
pub(super) fn handle_span(group: &str, stream: &str, event: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "bus.handle",
        event_type = %event.event_type,
        event_id = %event.event_id,
        group = %group,
        stream = %stream,
        aggregate_version = event.aggregate_version,
    );
    // Parsing the traceparent is wasted on a span no subscriber records.
    if !event.traceparent.is_empty() && !span.is_disabled() {
        set_remote_parent(&span, &event.traceparent);
    }
    span
}

pub(super) fn count_consumed(group: &str, stream: &str, outcome: &str) {
    metrics()
        .events_consumed
        .with_label_values(&[group, stream, outcome])
        .inc();
}

/// A consumer's `events_consumed_total` counters, looked up once per stream (not per event).
pub(super) struct Counters {
    group: String,
    by_stream: HashMap<String, [IntCounter; 4]>,
}

const OUTCOMES: [&str; 4] = ["ok", "duplicate", "error", "dead_letter"];

impl Counters {
    pub(super) fn new(group: &str) -> Counters {
        Counters {
            group: group.to_string(),
            by_stream: HashMap::new(),
        }
    }

    /// Adds `n` to `events_consumed_total{group, stream, outcome}`.
    pub(super) fn add(&mut self, stream: &str, outcome: &str, n: u64) {
        let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) else {
            metrics()
                .events_consumed
                .with_label_values(&[self.group.as_str(), stream, outcome])
                .inc_by(n);
            return;
        };
        if !self.by_stream.contains_key(stream) {
            let group = self.group.as_str();
            let counters = OUTCOMES.map(|o| {
                metrics()
                    .events_consumed
                    .with_label_values(&[group, stream, o])
            });
            self.by_stream.insert(stream.to_string(), counters);
        }
        if let Some(counters) = self.by_stream.get(stream) {
            counters[i].inc_by(n);
        }
    }
}

/// A dead letter as recorded in `bus_dead_letter`.
pub(super) struct DeadLetter<'a> {
    pub group: &'a str,
    pub event_id: &'a str,
    pub stream: &'a str,
    pub source_id: &'a str,
    pub event_type: &'a str,
    pub deliveries: i64,
    pub last_error: Option<&'a str>,
    pub envelope: &'a [u8],
}

/// Records a dead letter (idempotent: a second one for the same group and event is ignored).
pub(super) async fn insert_dead_letter(
    conn: &mut sqlx::AnyConnection,
    dl: &DeadLetter<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bus_dead_letter (consumer_group, event_id, stream, source_id, event_type, \
         deliveries, last_error, envelope, dead_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT DO NOTHING",
    )
    .bind(dl.group)
    .bind(dl.event_id)
    .bind(dl.stream)
    .bind(dl.source_id)
    .bind(dl.event_type)
    .bind(dl.deliveries)
    .bind(dl.last_error)
    .bind(dl.envelope)
    .bind(to_micros(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Logs and counts a dead letter (ids only).
pub(super) fn report_dead_letter(dl: &DeadLetter<'_>) {
    count_consumed(dl.group, dl.stream, "dead_letter");
    tracing::warn!(
        event_id = %dl.event_id,
        event_type = %dl.event_type,
        group = %dl.group,
        stream = %dl.stream,
        deliveries = dl.deliveries,
        "event dead-lettered after repeated failures"
    );
}

/// Dead letters of a group, oldest first. Undecodable envelopes are skipped (and logged).
pub(super) async fn dead_letters(
    db: &Db,
    group: &str,
    limit: usize,
) -> anyhow::Result<Vec<Envelope>> {
    let rows = sqlx::query(
        "SELECT event_id, envelope FROM bus_dead_letter WHERE consumer_group = $1 \
         ORDER BY dead_at, event_id LIMIT $2",
    )
    .bind(group)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .context("read dead letters")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let event_id: String = row.try_get("event_id")?;
        let bytes: Vec<u8> = row.try_get("envelope")?;
        match Envelope::decode(bytes.as_slice()) {
            Ok(env) => out.push(env),
            Err(_) => tracing::warn!(%event_id, %group, "dead letter with an undecodable envelope"),
        }
    }
    Ok(out)
}

/// The instant `ago` before now, as stored (micros); the epoch when out of range.
pub(super) fn micros_ago(ago: Duration) -> i64 {
    let ago = chrono::Duration::from_std(ago).unwrap_or(chrono::Duration::MAX);
    to_micros(Utc::now().checked_sub_signed(ago).unwrap_or_default())
}

/// How long inbox rows are kept: retention plus a day (see the module docs).
pub(super) fn inbox_keep(retention_secs: u64) -> Duration {
    Duration::from_secs(retention_secs.saturating_add(24 * 3600))
}

/// Deletes a group's inbox rows processed before [`inbox_keep`], in batches, along the primary
/// key (migration 0011): event ids are UUIDv7s, whose text sorts by creation time, and an event
/// is created before it is processed, so every such row has an id below the cutoff's
/// ([`v7_floor`]). Rows of old events processed recently are in that range too, and stay until
/// their own `processed_at` passes. (An id that is not a UUIDv7 is pruned only if its text sorts
/// below the cutoff's; `bus::new_envelope` mints every id.)
pub(super) async fn prune_inbox(db: &Db, group: &str, retention_secs: u64) -> anyhow::Result<u64> {
    let cutoff = micros_ago(inbox_keep(retention_secs));
    let below = v7_floor(cutoff);
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM bus_inbox WHERE consumer_group = $1 AND event_id IN \
             (SELECT event_id FROM bus_inbox WHERE consumer_group = $1 AND event_id < $2 \
             AND processed_at < $3 LIMIT 1000)",
        )
        .bind(group)
        .bind(&below)
        .bind(cutoff)
        .execute(db.pool())
        .await
        .context("prune inbox")?
        .rows_affected();
        total += n;
        if n < 1000 {
            return Ok(total);
        }
    }
}

/// The smallest UUIDv7 (hyphenated text) of the millisecond of `micros`: every UUIDv7 minted
/// earlier sorts below it, every one minted then or later does not.
fn v7_floor(micros: i64) -> String {
    let millis = u64::try_from(micros.div_euclid(1000)).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10])
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Doubling retry delays for loops that hit errors, reset on success.
pub(super) struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(super) fn new(base: Duration, max: Duration) -> Backoff {
        let base = base.max(Duration::from_millis(10));
        Backoff {
            base,
            max: max.max(base),
            current: base,
        }
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d
    }

    pub(super) fn reset(&mut self) {
        self.current = self.base;
    }
}

/// Sleeps for `d` unless `shutdown` is cancelled first; true when cancelled.
pub(super) async fn sleep_or_cancel(
    d: Duration,
    shutdown: &tokio_util::sync::CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// The error a loop returns when a simulated crash ([`super::Bus::inject_fault`]) fires.
#[derive(Debug, thiserror::Error)]
#[error("simulated crash (Bus::inject_fault)")]
pub(super) struct InjectedCrash;

pub(super) fn is_crash(err: &anyhow::Error) -> bool {
    err.is::<InjectedCrash>()
}

/// An error as one log field, with its causes (errors of the bus, the database and Redis never
/// quote payloads; a handler's own error text is the handler's responsibility).
pub(super) fn error_text(err: &anyhow::Error) -> String {
    // `{:#}` would repeat a cause that its wrapper already quotes (as redis errors do).
    let mut text = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !previous.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        previous = part;
    }
    if text.len() > 2000 {
        let mut cut = 2000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_sizes_are_powers_of_two() {
        assert_eq!(padded_len(1), 1);
        assert_eq!(padded_len(3), 4);
        assert_eq!(padded_len(100), 128);
        assert_eq!(padded_len(256), 256);
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }

    #[test]
    fn v7_floor_splits_ids_by_creation_time() {
        let at = chrono::Utc::now();
        let micros = to_micros(at);
        let floor = v7_floor(micros);
        let millis = u64::try_from(micros / 1000).unwrap();
        let minted = |ms: u64| {
            uuid::Builder::from_unix_timestamp_millis(ms, &[0xff; 10])
                .into_uuid()
                .to_string()
        };
        assert!(minted(millis - 1) < floor);
        assert!(minted(millis) >= floor);
        assert!(uuid::Uuid::now_v7().to_string() >= floor);
        assert!(v7_floor(micros - 86_400_000_000) < floor);
    }

    /// Rows of events created and processed before the cutoff go; an old event processed
    /// recently, a recent one, and another group's rows stay.
    async fn prune_inbox_keeps_what_may_be_redelivered(db: Db) -> anyhow::Result<()> {
        db.migrate().await?;
        let now = chrono::Utc::now();
        let two_days_ago = now - chrono::Duration::days(2);
        let id_at = |at: chrono::DateTime<chrono::Utc>| {
            let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
            uuid::Builder::from_unix_timestamp_millis(millis, &rand_bytes())
                .into_uuid()
                .to_string()
        };
        let rows = [
            ("g", id_at(two_days_ago), two_days_ago, false),
            ("g", id_at(two_days_ago), now, true),
            ("g", id_at(now), now, true),
            ("other", id_at(two_days_ago), two_days_ago, true),
        ];
        for (group, id, processed, _) in &rows {
            sqlx::query(
                "INSERT INTO bus_inbox (consumer_group, event_id, processed_at) VALUES ($1, $2, $3)",
            )
            .bind(*group)
            .bind(id)
            .bind(to_micros(*processed))
            .execute(db.pool())
            .await?;
        }
        // Retention 0: rows are kept one day.
        assert_eq!(prune_inbox(&db, "g", 0).await?, 1);
        for (group, id, _, kept) in &rows {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM bus_inbox WHERE consumer_group = $1 AND event_id = $2",
            )
            .bind(*group)
            .bind(id)
            .fetch_one(db.pool())
            .await?;
            assert_eq!(n == 1, *kept, "{group} {id}");
        }
        Ok(())
    }

    fn rand_bytes() -> [u8; 10] {
        *uuid::Uuid::new_v4()
            .as_bytes()
            .first_chunk()
            .unwrap_or(&[0; 10])
    }

    #[tokio::test]
    async fn prune_inbox_on_postgres() -> anyhow::Result<()> {
        let pg = arflow_testkit::PgDatabase::create().await?;
        prune_inbox_keeps_what_may_be_redelivered(Db::connect(&pg.url, 2).await?).await
    }

    #[tokio::test]
    async fn prune_inbox_on_sqlite() -> anyhow::Result<()> {
        let file = arflow_testkit::SqliteFile::create()?;
        prune_inbox_keeps_what_may_be_redelivered(Db::connect(&file.url, 2).await?).await
    }

    #[test]
    fn shapes_build_one_statement_per_size() {
        static S: Shapes = Shapes::new(|rows| format!("rows {rows}"));
        assert_eq!(S.sql(1), "rows 1");
        assert_eq!(S.sql(64), "rows 64");
        assert_eq!(S.sql(MAX_ROWS), "rows 256");
        assert!(std::ptr::eq(S.sql(8), S.sql(8)));
    }
}
