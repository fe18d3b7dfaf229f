//! The append-only record of calls that touch patient data.
//!
//! The gRPC bootstrap writes one [`AuditRecord`] for every authenticated call (health and
//! reflection are not audited; unauthenticated calls reach no data and are only logged and
//! counted): who (tenant, key id, role), what (full method name and the ids of the objects the
//! handler reported with [`crate::grpc::audit_objects`]), the outcome (the gRPC status code
//! name, `OK`, `NOT_FOUND`, …, or `CANCELLED` when the client went away), the trace id and
//! when. Records never hold request or response bodies: those carry PHI.
//!
//! Writing: each call reserves a slot in a bounded queue *before* its handler runs and fills it
//! when the call ends; one writer task per server drains the queue in multi-row INSERTs. A call
//! never waits for the database, but when the writer falls behind (the database is slow or
//! down) the queue fills and new calls wait for a slot, within their deadline. We chose this
//! backpressure over dropping records: an access that cannot be recorded does not happen.
//! Records still queued at shutdown are flushed; a record is lost only when the database stays
//! unreachable through the shutdown flush (logged and counted in
//! `arflow_audit_records_dropped_total`).
//!
//! Append-only is enforced by the database: `audit_log` has triggers that refuse UPDATE and
//! DELETE (and TRUNCATE on Postgres), see migrations/*/0001_platform.sql.
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use prometheus::{IntCounter, IntCounterVec, Opts};
use sqlx::{AssertSqlSafe, Row as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::db::{Db, from_micros, to_micros};

/// One audited call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// UUIDv7.
    pub id: String,
    pub tenant_id: String,
    pub key_id: String,
    pub role: String,
    /// Full gRPC method, e.g. `/arflow.claims.v1.ClaimsService/GetClaim`.
    pub method: String,
    /// Ids of the objects the call touched, as reported by the handler.
    pub object_ids: Vec<String>,
    /// gRPC status code name (`OK`, `NOT_FOUND`, …).
    pub outcome: String,
    /// W3C trace id (32 hex digits), empty when the call had none.
    pub trace_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// Appends records in one statement. Used by the writer task; services that audit work done
/// outside a call (an event handler reading patient data) may call it too.
pub async fn append(db: &Db, records: &[AuditRecord]) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    const COLUMNS: usize = 9;
    let mut sql = String::from(
        "INSERT INTO audit_log (id, tenant_id, key_id, role, method, object_ids, outcome, trace_id, occurred_at) VALUES ",
    );
    for i in 0..records.len() {
        let b = i * COLUMNS;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 9
        ));
    }
    // The statement is made of constants and placeholders only; every value is bound.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for r in records {
        query = query
            .bind(r.id.clone())
            .bind(r.tenant_id.clone())
            .bind(r.key_id.clone())
            .bind(r.role.clone())
            .bind(r.method.clone())
            .bind(serde_json::to_string(&r.object_ids)?)
            .bind(r.outcome.clone())
            .bind(r.trace_id.clone())
            .bind(to_micros(r.occurred_at));
    }
    let mut tx = db.begin().await?;
    query
        .execute(&mut *tx)
        .await
        .context("insert audit records")?;
    tx.commit().await?;
    Ok(())
}

/// The newest `limit` records of a tenant, newest first. For operators and tests.
pub async fn list_audit(db: &Db, tenant_id: &str, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
    let rows = sqlx::query(
        "SELECT id, tenant_id, key_id, role, method, object_ids, outcome, trace_id, occurred_at \
         FROM audit_log WHERE tenant_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
    )
    .bind(tenant_id)
    .bind(limit.max(0))
    .fetch_all(db.pool())
    .await
    .context("list audit records")?;
    rows.iter()
        .map(|row| {
            let objects: String = row.try_get("object_ids")?;
            Ok(AuditRecord {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                key_id: row.try_get("key_id")?,
                role: row.try_get("role")?,
                method: row.try_get("method")?,
                object_ids: serde_json::from_str(&objects).context("audit object ids")?,
                outcome: row.try_get("outcome")?,
                trace_id: row.try_get("trace_id")?,
                occurred_at: from_micros(row.try_get("occurred_at")?),
            })
        })
        .collect()
}

struct AuditMetrics {
    written: IntCounter,
    dropped: IntCounter,
    write_errors: IntCounterVec,
}

static METRICS: LazyLock<AuditMetrics> = LazyLock::new(|| {
    let written = IntCounter::new("audit_records_written_total", "audit records stored")
        .expect("static metric");
    let dropped = IntCounter::new(
        "audit_records_dropped_total",
        "audit records given up at shutdown because the database stayed unreachable",
    )
    .expect("static metric");
    let write_errors = IntCounterVec::new(
        Opts::new(
            "audit_write_errors_total",
            "failed audit batch writes (retried)",
        ),
        &["backend"],
    )
    .expect("static metric");
    let registry = &crate::metrics::metrics().registry;
    let _ = registry.register(Box::new(written.clone()));
    let _ = registry.register(Box::new(dropped.clone()));
    let _ = registry.register(Box::new(write_errors.clone()));
    AuditMetrics {
        written,
        dropped,
        write_errors,
    }
});

/// Records in flight or queued at most; a call waits for a slot when all are taken.
const QUEUE_CAPACITY: usize = 8192;
/// Records per INSERT (9 binds each: far below both backends' bind limits).
const BATCH: usize = 256;
/// Attempts per batch once shutdown has begun; before that, the writer retries forever and
/// backpressure holds new calls.
const SHUTDOWN_ATTEMPTS: u32 = 3;

/// A reserved slot in the audit queue: filling it cannot block or fail.
pub(crate) type AuditSlot = mpsc::OwnedPermit<AuditRecord>;

/// The calls' side of the audit queue. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// Waits for a free slot (backpressure). `None` once the writer has stopped.
    pub(crate) async fn reserve(&self) -> Option<AuditSlot> {
        self.tx.clone().reserve_owned().await.ok()
    }
}

/// The writer task of one server.
pub(crate) struct AuditWriter {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AuditWriter {
    pub(crate) fn spawn(db: Db) -> (AuditSink, AuditWriter) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_writer(db, rx, stop.clone()));
        (AuditSink { tx }, AuditWriter { stop, task })
    }

    /// Stops taking new records, writes what is queued and what calls still in flight
    /// deliver, and returns; gives up after `timeout` (calls still running then are lost).
    pub(crate) async fn finish(self, timeout: Duration) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(timeout, &mut task).await.is_err() {
            tracing::error!(
                "audit writer did not finish within {timeout:?}; records of unfinished calls are lost"
            );
            task.abort();
        }
    }
}

async fn run_writer(db: Db, mut rx: mpsc::Receiver<AuditRecord>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut closing = false;
    loop {
        let received = if closing {
            // Closed: returns 0 once the queue is empty and every reserved slot was filled
            // or released.
            rx.recv_many(&mut batch, BATCH).await
        } else {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => n,
                () = stop.cancelled() => {
                    rx.close();
                    closing = true;
                    continue;
                }
            }
        };
        if received == 0 {
            return;
        }
        write_batch(&db, &mut batch, &stop).await;
    }
}

async fn write_batch(db: &Db, batch: &mut Vec<AuditRecord>, stop: &CancellationToken) {
    let mut attempt = 0u32;
    loop {
        match append(db, batch).await {
            Ok(()) => {
                METRICS.written.inc_by(batch.len() as u64);
                batch.clear();
                return;
            }
            Err(err) => {
                attempt += 1;
                METRICS
                    .write_errors
                    .with_label_values(&[db.backend().name()])
                    .inc();
                tracing::error!(error = %format!("{err:#}"), attempt, records = batch.len(), "audit write failed; retrying");
                if stop.is_cancelled() && attempt >= SHUTDOWN_ATTEMPTS {
                    tracing::error!(
                        records = batch.len(),
                        "shutting down: audit records dropped"
                    );
                    METRICS.dropped.inc_by(batch.len() as u64);
                    batch.clear();
                    return;
                }
                let backoff = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)))
                    .min(Duration::from_secs(5));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
