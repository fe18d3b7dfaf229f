//! Embedded mode: the outbox is the log, a cursor per (group, stream), all in SQLite.
//! See the module docs of [`super`] for the contract.
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use prost::Message as _;
use sqlx::Row as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::store::{self, Backoff, DeadLetter, InjectedCrash};
use super::{Bus, Envelope, Fault, Subscription};
use crate::db::to_micros;
use crate::metrics::metrics;

/// How often lag metrics are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// How often inbox rows past their keep time are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub(super) async fn run_consumer(
    bus: &Bus,
    sub: Subscription,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let db = bus.db();
    for stream in &sub.streams {
        // A new group starts at the beginning of the retained log.
        sqlx::query(
            "INSERT INTO bus_cursor (consumer_group, stream, last_seq, updated_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&sub.group)
        .bind(stream)
        .bind(to_micros(Utc::now()))
        .execute(db.pool())
        .await
        .context("create consumer cursor")?;
    }
    tracing::info!(group = %sub.group, consumer = %sub.consumer, streams = ?sub.streams, "embedded event consumer started");
    let poll = Duration::from_millis(bus.config().poll_interval_ms.max(1));
    let mut backoff = Backoff::new(poll, Duration::from_secs(5));
    let mut next_stats = Instant::now();
    let mut next_prune = Instant::now();
    let mut counters = store::Counters::new(&sub.group);
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_stats {
            next_stats = now + STATS_EVERY;
            if let Err(err) = refresh_lag(bus, &sub).await {
                tracing::debug!(error = %store::error_text(&err), "refresh consumer lag");
            }
        }
        if now >= next_prune {
            next_prune = now + PRUNE_EVERY;
            if let Err(err) = store::prune_inbox(db, &sub.group, bus.config().retention_secs).await
            {
                tracing::warn!(group = %sub.group, error = %store::error_text(&err), "prune inbox");
            }
        }
        let mut progressed = false;
        let mut failed = false;
        for stream in &sub.streams {
            match drain(bus, &sub, stream, &shutdown, &mut counters).await {
                Ok(n) => progressed |= n > 0,
                Err(err) if store::is_crash(&err) => return Err(err),
                Err(err) => {
                    failed = true;
                    tracing::warn!(group = %sub.group, %stream, error = %store::error_text(&err), "event consumer round failed");
                }
            }
        }
        let wait = if failed {
            backoff.next_delay()
        } else {
            backoff.reset();
            if progressed {
                continue;
            }
            poll
        };
        if store::sleep_or_cancel(wait, &shutdown).await {
            return Ok(());
        }
    }
}

/// A log row after a group's cursor, with the group's failed attempts at it.
struct LogRow {
    seq: i64,
    event_id: String,
    event_type: String,
    bytes: Vec<u8>,
    event: Result<Envelope, prost::DecodeError>,
    /// Failed attempts so far (0 = none recorded) and when the next one may run (micros).
    attempts: i64,
    next_attempt_at: i64,
}

/// Handles the events after the group's cursor on `stream`, in order, until one has to wait
/// (a failure backing off) or the batch is done. Returns how many events were processed.
///
/// The batch is applied in one transaction ([`store::apply_batch`]) that also moves the cursor
/// past it. When a handler fails (or anything before it), or when an event of the batch has
/// failed attempts or does not decode, the events are handled one at a time instead
/// ([`drain_one_by_one`]); the handler that failed in the batch is not called again for this
/// attempt.
async fn drain(
    bus: &Bus,
    sub: &Subscription,
    stream: &str,
    shutdown: &CancellationToken,
    counters: &mut store::Counters,
) -> anyhow::Result<usize> {
    let (db, cfg) = (bus.db(), bus.config());
    let cursor: i64 = sqlx::query_scalar(
        "SELECT last_seq FROM bus_cursor WHERE consumer_group = $1 AND stream = $2",
    )
    .bind(&sub.group)
    .bind(stream)
    .fetch_one(db.pool())
    .await
    .context("read cursor")?;
    let rows = sqlx::query(
        "SELECT o.seq, o.event_id, o.event_type, o.envelope, d.attempts, d.next_attempt_at \
         FROM bus_outbox o LEFT JOIN bus_delivery d \
         ON d.consumer_group = $2 AND d.event_id = o.event_id \
         WHERE o.producer = $1 AND o.seq > $3 ORDER BY o.seq LIMIT $4",
    )
    .bind(stream)
    .bind(&sub.group)
    .bind(cursor)
    .bind(i64::try_from(cfg.batch_size.max(1)).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .context("read log")?;
    let mut log = Vec::with_capacity(rows.len());
    for row in rows {
        let bytes: Vec<u8> = row.try_get("envelope")?;
        log.push(LogRow {
            seq: row.try_get("seq")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            event: Envelope::decode(bytes.as_slice()),
            bytes,
            attempts: row.try_get::<Option<i64>, _>("attempts")?.unwrap_or(0),
            next_attempt_at: row
                .try_get::<Option<i64>, _>("next_attempt_at")?
                .unwrap_or(0),
        });
    }
    let Some(last) = log.last() else {
        return Ok(0);
    };
    if shutdown.is_cancelled() {
        return Ok(0);
    }
    let last_seq = last.seq;
    if log.iter().any(|r| r.attempts > 0 || r.event.is_err()) {
        return drain_one_by_one(bus, sub, stream, log, None, shutdown, counters).await;
    }
    let spans: Vec<tracing::Span> = log
        .iter()
        .filter_map(|r| r.event.as_ref().ok())
        .map(|event| store::handle_span(&sub.group, stream, event))
        .collect();
    let items: Vec<(&Envelope, &tracing::Span)> = log
        .iter()
        .filter_map(|r| r.event.as_ref().ok())
        .zip(&spans)
        .collect();
    let failed = match store::apply_batch(db, &sub.group, sub.handler.as_ref(), &items).await {
        Ok((mut tx, applied)) => {
            advance_cursor(&mut tx, &sub.group, stream, last_seq).await?;
            tx.commit().await.context("commit consumer transaction")?;
            for (span, applied) in spans.iter().zip(&applied) {
                counters.add(stream, applied.outcome(), 1);
                span.in_scope(|| tracing::debug!(outcome = applied.outcome(), "event handled"));
            }
            if bus.fault(Fault::ConsumerCrashAfterCommit) {
                return Err(InjectedCrash.into());
            }
            return Ok(log.len());
        }
        Err(store::BatchError::Handler { index, error }) => {
            Some((index, error, spans[index].clone()))
        }
        Err(store::BatchError::Store(err)) => {
            tracing::warn!(group = %sub.group, %stream, error = %store::error_text(&err), "batched consumer transaction failed; handling the events one by one");
            None
        }
    };
    drop(items);
    drain_one_by_one(bus, sub, stream, log, failed, shutdown, counters).await
}

/// The one-event-per-transaction form of [`drain`] (see there). `failed`: the index in `log`
/// of an event whose handler already failed in this attempt, its error and span.
async fn drain_one_by_one(
    bus: &Bus,
    sub: &Subscription,
    stream: &str,
    log: Vec<LogRow>,
    mut failed: Option<(usize, anyhow::Error, tracing::Span)>,
    shutdown: &CancellationToken,
    counters: &mut store::Counters,
) -> anyhow::Result<usize> {
    let (db, cfg) = (bus.db(), bus.config());
    let mut processed = 0;
    for (index, row) in log.into_iter().enumerate() {
        if shutdown.is_cancelled() {
            break;
        }
        let LogRow {
            seq,
            event_id,
            event_type,
            bytes,
            event,
            attempts: prior_attempts,
            next_attempt_at,
        } = row;
        if prior_attempts > 0 && next_attempt_at > to_micros(Utc::now()) {
            // Backing off; the stream waits behind this event (strict order).
            return Ok(processed);
        }

        let (result, span) = match (failed.take_if(|(i, _, _)| *i == index), event) {
            (Some((_, err, span)), _) => (Err(err), span),
            (None, Ok(env)) => {
                let span = store::handle_span(&sub.group, stream, &env);
                (
                    store::apply(db, &sub.group, sub.handler.as_ref(), &env, &span).await,
                    span,
                )
            }
            (None, Err(err)) => (
                Err(anyhow::anyhow!("undecodable envelope: {err}")),
                tracing::info_span!("bus.handle", %event_type, %event_id, group = %sub.group, %stream),
            ),
        };
        match result {
            Ok((mut tx, applied)) => {
                advance_cursor(&mut tx, &sub.group, stream, seq).await?;
                if prior_attempts > 0 {
                    clear_attempts(&mut tx, &sub.group, &event_id).await?;
                }
                tx.commit().await.context("commit consumer transaction")?;
                counters.add(stream, applied.outcome(), 1);
                processed += 1;
                span.in_scope(|| tracing::debug!(outcome = applied.outcome(), "event handled"));
                if bus.fault(Fault::ConsumerCrashAfterCommit) {
                    return Err(InjectedCrash.into());
                }
            }
            Err(err) => {
                let attempts = prior_attempts + 1;
                let text = store::error_text(&err);
                counters.add(stream, "error", 1);
                span.in_scope(|| {
                    tracing::warn!(attempts, error = %text, "event handler failed");
                });
                if attempts >= i64::from(cfg.max_deliveries.max(1)) {
                    let dl = DeadLetter {
                        group: &sub.group,
                        event_id: &event_id,
                        stream,
                        source_id: &seq.to_string(),
                        event_type: &event_type,
                        deliveries: attempts,
                        last_error: Some(&text),
                        envelope: &bytes,
                    };
                    let mut tx = db.begin().await?;
                    store::insert_dead_letter(&mut tx, &dl)
                        .await
                        .context("record dead letter")?;
                    advance_cursor(&mut tx, &sub.group, stream, seq).await?;
                    clear_attempts(&mut tx, &sub.group, &event_id).await?;
                    tx.commit().await.context("commit dead letter")?;
                    span.in_scope(|| store::report_dead_letter(&dl));
                    processed += 1;
                    continue;
                }
                let delay = retry_delay(bus, attempts);
                let next_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                sqlx::query(
                    "INSERT INTO bus_delivery (consumer_group, event_id, attempts, next_attempt_at, last_error) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer_group, event_id) DO UPDATE SET \
                     attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, \
                     last_error = excluded.last_error",
                )
                .bind(&sub.group)
                .bind(&event_id)
                .bind(attempts)
                .bind(to_micros(next_at))
                .bind(&text)
                .execute(db.pool())
                .await
                .context("record delivery attempt")?;
                return Ok(processed);
            }
        }
    }
    Ok(processed)
}

/// Delay before the next attempt: doubling from the poll interval, at most `claim_idle_ms`
/// (the Redis bus's retry delay).
fn retry_delay(bus: &Bus, attempts: i64) -> Duration {
    let cfg = bus.config();
    let base = Duration::from_millis(cfg.poll_interval_ms.max(10));
    let cap = Duration::from_millis(cfg.claim_idle_ms.max(cfg.poll_interval_ms).max(10));
    let shift = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    base.saturating_mul(1 << shift).min(cap)
}

async fn advance_cursor(
    conn: &mut sqlx::AnyConnection,
    group: &str,
    stream: &str,
    seq: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE bus_cursor SET last_seq = $3, updated_at = $4 \
         WHERE consumer_group = $1 AND stream = $2 AND last_seq < $3",
    )
    .bind(group)
    .bind(stream)
    .bind(seq)
    .bind(to_micros(Utc::now()))
    .execute(conn)
    .await
    .context("advance cursor")?;
    Ok(())
}

async fn clear_attempts(
    conn: &mut sqlx::AnyConnection,
    group: &str,
    event_id: &str,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM bus_delivery WHERE consumer_group = $1 AND event_id = $2")
        .bind(group)
        .bind(event_id)
        .execute(conn)
        .await
        .context("clear delivery attempts")?;
    Ok(())
}

async fn refresh_lag(bus: &Bus, sub: &Subscription) -> anyhow::Result<()> {
    for stream in &sub.streams {
        let lag: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bus_outbox WHERE producer = $1 AND seq > \
             (SELECT last_seq FROM bus_cursor WHERE consumer_group = $2 AND stream = $1)",
        )
        .bind(stream)
        .bind(&sub.group)
        .fetch_one(bus.db().pool())
        .await?;
        metrics()
            .consumer_lag
            .with_label_values(&[stream.as_str(), sub.group.as_str()])
            .set(lag);
    }
    Ok(())
}

/// The embedded "relay": nothing to relay; deletes log rows every group has passed once they
/// are older than the retention, until cancelled.
pub(super) async fn run_housekeeping(bus: &Bus, shutdown: CancellationToken) -> anyhow::Result<()> {
    let every = Duration::from_secs((bus.config().retention_secs / 10).clamp(1, 60));
    loop {
        match apply_retention(bus).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "event log retention"),
            Err(err) => tracing::warn!(error = %store::error_text(&err), "event log retention"),
        }
        if store::sleep_or_cancel(every, &shutdown).await {
            return Ok(());
        }
    }
}

/// Deletes outbox rows older than the retention that every group with a cursor on their
/// stream has passed.
pub(super) async fn apply_retention(bus: &Bus) -> anyhow::Result<u64> {
    let cutoff = store::micros_ago(Duration::from_secs(bus.config().retention_secs));
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM bus_outbox WHERE seq IN (SELECT o.seq FROM bus_outbox o WHERE o.created_at < $1 \
             AND o.seq <= COALESCE((SELECT MIN(c.last_seq) FROM bus_cursor c WHERE c.stream = o.producer), $2) \
             LIMIT 1000)",
        )
        .bind(cutoff)
        .bind(i64::MAX)
        .execute(bus.db().pool())
        .await
        .context("delete old log rows")?
        .rows_affected();
        total += n;
        if n < 1000 {
            return Ok(total);
        }
    }
}
