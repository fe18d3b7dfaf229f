//! SQL and bookkeeping shared by both modes: the consumer transaction with its inbox row, dead
//! letters, inbox pruning, metrics and spans.
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use futures::FutureExt as _;
use prost::Message as _;
use sqlx::Row as _;
use tracing::Instrument as _;

use super::{Envelope, Handler, set_remote_parent};
use crate::db::{Db, Tx, to_micros};
use crate::metrics::metrics;

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
/// handler (a panic counts as an error). On Ok the transaction is still open: the caller adds
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
        let result = AssertUnwindSafe(handler.handle(&mut tx, event))
            .catch_unwind()
            .await;
        let err = match result {
            Ok(Ok(())) => return Ok((tx, Applied::Handled)),
            Ok(Err(err)) => err,
            // The panic message is the handler's text and may quote data: not repeated here.
            Err(_panic) => anyhow::anyhow!("event handler panicked"),
        };
        if let Err(rollback) = tx.rollback().await {
            tracing::debug!(error = %rollback, "rollback after handler error failed");
        }
        Err(err)
    }
    .instrument(span.clone())
    .await
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
    if !event.traceparent.is_empty() {
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

/// Deletes a group's inbox rows older than [`inbox_keep`], in batches.
pub(super) async fn prune_inbox(db: &Db, group: &str, retention_secs: u64) -> anyhow::Result<u64> {
    let cutoff = micros_ago(inbox_keep(retention_secs));
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM bus_inbox WHERE consumer_group = $1 AND event_id IN \
             (SELECT event_id FROM bus_inbox WHERE consumer_group = $1 AND processed_at < $2 LIMIT 1000)",
        )
        .bind(group)
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
