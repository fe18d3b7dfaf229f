//! Timers: `scheduler_timers` rows (due_at, tenant, subject = claim id, kind, payload), unique
//! on (tenant, subject, kind, due_at), so a redelivered event sets nothing twice.
use arflow_domain::followup::PlannedTimer;
use arflow_platform::Db;
use arflow_platform::db::{date_to_sql, from_micros, to_micros};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use super::TenantId;
use crate::error::{Context as _, Error};

/// Typed fields of a timer, stored as JSON in `payload`: what TimerFired carries besides the
/// timer's own columns. Ids, codes, dates and numbers only: never patient data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_business_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_checks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialist_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// A timer to set.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTimer {
    pub tenant_id: String,
    pub subject: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub clinic_id: String,
    pub payload: TimerPayload,
}

/// Whose claim a planned timer is for.
#[derive(Clone, Copy, Debug)]
pub struct TimerOwner<'a> {
    pub tenant_id: &'a str,
    pub claim_id: &'a str,
    pub clinic_id: &'a str,
    pub payer_id: &'a str,
}

impl NewTimer {
    /// The row of a timer the domain planned for `owner`'s claim.
    pub fn planned(planned: PlannedTimer, owner: TimerOwner<'_>) -> NewTimer {
        let d = planned.details;
        NewTimer {
            tenant_id: owner.tenant_id.to_string(),
            subject: owner.claim_id.to_string(),
            kind: planned.kind,
            due_at: planned.due_at,
            clinic_id: owner.clinic_id.to_string(),
            payload: TimerPayload {
                payer_id: Some(owner.payer_id.to_string()),
                threshold_days: d.threshold_days,
                basis: d.basis.map(|b| b.as_str().to_string()),
                basis_date: d.basis_date.map(date_to_sql),
                sequence: d.sequence,
                repeat_business_days: d.repeat_business_days,
                max_checks: d.max_checks,
                deadline: d.deadline.map(date_to_sql),
                lead_days: d.lead_days,
                denial_id: d.denial_id,
                ..TimerPayload::default()
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerState {
    Pending,
    Fired,
    Cancelled,
}

impl TimerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerState::Pending => "pending",
            TimerState::Fired => "fired",
            TimerState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<TimerState, sqlx::Error> {
        match text {
            "pending" => Ok(TimerState::Pending),
            "fired" => Ok(TimerState::Fired),
            "cancelled" => Ok(TimerState::Cancelled),
            other => Err(sqlx::Error::Decode(
                format!("unknown timer state {other:?}").into(),
            )),
        }
    }
}

/// A timer as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTimer {
    pub id: String,
    pub tenant_id: String,
    pub subject: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub clinic_id: String,
    pub payload: TimerPayload,
    pub state: TimerState,
    pub created_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

const TIMER_COLUMNS: &str = "id, tenant_id, subject, kind, due_at, clinic_id, payload, state, created_at, fired_at, cancelled_at";

fn timer_from_row(row: &AnyRow) -> Result<StoredTimer, sqlx::Error> {
    let payload: String = row.try_get("payload")?;
    Ok(StoredTimer {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        subject: row.try_get("subject")?,
        kind: row.try_get("kind")?,
        due_at: from_micros(row.try_get("due_at")?),
        clinic_id: row.try_get("clinic_id")?,
        // A payload this version cannot read still fires, with the fields it can read.
        payload: serde_json::from_str(&payload).unwrap_or_default(),
        state: TimerState::parse(&row.try_get::<String, _>("state")?)?,
        created_at: from_micros(row.try_get("created_at")?),
        fired_at: row.try_get::<Option<i64>, _>("fired_at")?.map(from_micros),
        cancelled_at: row
            .try_get::<Option<i64>, _>("cancelled_at")?
            .map(from_micros),
    })
}

/// Marks up to `limit` pending timers due at `now` fired and returns them (unordered). On
/// Postgres the claim skips rows another round holds (`SKIP LOCKED`), so replicas take
/// disjoint sets; SQLite has one writer.
pub async fn claim_due(
    conn: &mut AnyConnection,
    db: &Db,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<StoredTimer>, Error> {
    let lock = match db.backend() {
        arflow_platform::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        arflow_platform::Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE scheduler_timers SET state = 'fired', fired_at = $1 WHERE id IN \
         (SELECT id FROM scheduler_timers WHERE state = 'pending' AND due_at <= $2 \
         ORDER BY due_at LIMIT $3{lock}) RETURNING {TIMER_COLUMNS}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_micros(now))
        .bind(to_micros(now))
        .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .context("claim due timers")?;
    rows.iter()
        .map(timer_from_row)
        .collect::<Result<_, _>>()
        .context("read fired timers")
}

/// Sets timers that do not exist yet; an identical (tenant, subject, kind, due_at) is left as
/// it is, so a redelivered event sets nothing twice. Returns how many were new.
pub async fn insert_timers(
    conn: &mut AnyConnection,
    timers: &[NewTimer],
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let mut inserted = 0;
    for t in timers {
        let payload = serde_json::to_string(&t.payload)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))
            .context("encode timer payload")?;
        inserted += sqlx::query(
            "INSERT INTO scheduler_timers \
             (id, tenant_id, subject, kind, due_at, clinic_id, payload, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) \
             ON CONFLICT (tenant_id, subject, kind, due_at) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&t.tenant_id)
        .bind(&t.subject)
        .bind(&t.kind)
        .bind(to_micros(t.due_at))
        .bind(&t.clinic_id)
        .bind(payload)
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await
        .context("insert timer")?
        .rows_affected();
    }
    Ok(inserted)
}

/// The pending timers of `subject` of one kind, by due instant.
pub async fn pending_of_kind(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    kind: &str,
) -> Result<Vec<StoredTimer>, Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TIMER_COLUMNS} FROM scheduler_timers \
         WHERE tenant_id = $1 AND subject = $2 AND kind = $3 AND state = 'pending' \
         ORDER BY due_at"
    )))
    .bind(tenant.as_str())
    .bind(subject)
    .bind(kind)
    .fetch_all(&mut *conn)
    .await
    .context("read a claim's pending timers of a kind")?;
    rows.iter()
        .map(timer_from_row)
        .collect::<Result<_, _>>()
        .context("read a claim's pending timers of a kind")
}

/// Makes `timer` pending: inserts it, or, when the same (subject, kind, due instant) was
/// cancelled before, sets that one pending again with `timer`'s payload. A fired one stays
/// fired. Returns whether a timer is now pending that was not.
pub async fn set_pending(
    conn: &mut AnyConnection,
    timer: &NewTimer,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    if insert_timers(conn, std::slice::from_ref(timer), now).await? > 0 {
        return Ok(true);
    }
    let payload = serde_json::to_string(&timer.payload)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
        .context("encode timer payload")?;
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'pending', cancelled_at = NULL, \
         cancel_reason = NULL, payload = $5 \
         WHERE tenant_id = $1 AND subject = $2 AND kind = $3 AND due_at = $4 \
         AND state = 'cancelled'",
    )
    .bind(&timer.tenant_id)
    .bind(&timer.subject)
    .bind(&timer.kind)
    .bind(to_micros(timer.due_at))
    .bind(payload)
    .execute(&mut *conn)
    .await
    .context("set a cancelled timer pending again")?
    .rows_affected()
        > 0)
}

/// Why the consumer cancelled a timer (`cancel_reason`, migration 0015): what may bring it
/// back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The claim closed (paid, closed, written off): a reopened claim gets it back.
    Closed,
    /// A resubmission re-planned it (status checks): never back.
    Replaced,
    /// A timely-filing warning the payer's acceptance made moot: back if the claim is
    /// rejected.
    Filed,
    /// A "no ERA yet" timer (`no_era`) whose remittance came: never back.
    Remitted,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Closed => "closed",
            CancelReason::Replaced => "replaced",
            CancelReason::Filed => "filed",
            CancelReason::Remitted => "remitted",
        }
    }
}

/// Cancels every pending timer of `subject` because the claim closed (idempotent). Returns how
/// many it cancelled.
pub async fn cancel_subject(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'cancelled', cancelled_at = $3, \
         cancel_reason = 'closed' \
         WHERE tenant_id = $1 AND subject = $2 AND state = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await
    .context("cancel a claim's timers")?
    .rows_affected())
}

/// Cancels the pending timers of `subject` whose kind `replaced` names (a resubmission: status
/// checks, `kinds::replaced_on_resubmission`; an earlier original bill date learnt late:
/// aging) and that `plan` does not contain (same kind and due instant). Returns how many it
/// cancelled.
pub async fn cancel_replaced(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    plan: &[NewTimer],
    replaced: fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let rows = sqlx::query(
        "SELECT id, kind, due_at FROM scheduler_timers \
         WHERE tenant_id = $1 AND subject = $2 AND state = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .fetch_all(&mut *conn)
    .await
    .context("read a claim's pending timers")?;
    let keep: std::collections::HashSet<(&str, i64)> = plan
        .iter()
        .map(|t| (t.kind.as_str(), to_micros(t.due_at)))
        .collect();
    let mut cancelled = 0;
    for r in rows {
        let (id, kind, due_at) = (|| {
            Ok::<_, sqlx::Error>((
                r.try_get::<String, _>("id")?,
                r.try_get::<String, _>("kind")?,
                r.try_get::<i64, _>("due_at")?,
            ))
        })()
        .context("read a claim's pending timers")?;
        if !replaced(&kind) || keep.contains(&(kind.as_str(), due_at)) {
            continue;
        }
        cancelled += sqlx::query(
            "UPDATE scheduler_timers SET state = 'cancelled', cancelled_at = $3, \
             cancel_reason = 'replaced' \
             WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await
        .context("cancel a replaced timer")?
        .rows_affected();
    }
    Ok(cancelled)
}

/// Cancels the pending timers of `subject` of one kind, for `reason` (idempotent). Returns how
/// many it cancelled.
pub async fn cancel_kind(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    kind: &str,
    reason: CancelReason,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'cancelled', cancelled_at = $4, cancel_reason = $5 \
         WHERE tenant_id = $1 AND subject = $2 AND kind = $3 AND state = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(kind)
    .bind(to_micros(now))
    .bind(reason.as_str())
    .execute(&mut *conn)
    .await
    .context("cancel a claim's timers of a kind")?
    .rows_affected())
}

/// Restores the still future timers of `subject` of one kind cancelled for `reason`. Returns
/// how many.
pub async fn restore_kind(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    kind: &str,
    reason: CancelReason,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'pending', cancelled_at = NULL, cancel_reason = NULL \
         WHERE tenant_id = $1 AND subject = $2 AND kind = $3 AND state = 'cancelled' \
         AND cancel_reason = $4 AND due_at > $5",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(kind)
    .bind(reason.as_str())
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await
    .context("restore a claim's timers of a kind")?
    .rows_affected())
}

/// Restores the still future timers of a claim that was reopened (a payment reversed after it
/// closed the claim): the ones its closing cancelled (or cancelled before reasons were kept),
/// not the status checks a resubmission replaced nor the timely-filing warnings its filing
/// made moot. Returns how many.
pub async fn reopen_subject(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'pending', cancelled_at = NULL, cancel_reason = NULL \
         WHERE tenant_id = $1 AND subject = $2 AND state = 'cancelled' AND due_at > $3 \
         AND (cancel_reason IS NULL OR cancel_reason = 'closed')",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await
    .context("reopen a claim's timers")?
    .rows_affected())
}

pub async fn get_timer(db: &Db, tenant: &TenantId, id: &str) -> Result<StoredTimer, Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TIMER_COLUMNS} FROM scheduler_timers WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(db.pool())
    .await
    .context("read timer")?
    .ok_or(Error::NotFound("timer"))?;
    timer_from_row(&row).context("read timer")
}

/// Sets one timer (CreateTimer): idempotent on (subject, kind, due_at), answering the timer
/// that exists.
pub async fn create_timer(
    db: &Db,
    timer: &NewTimer,
    now: DateTime<Utc>,
) -> Result<StoredTimer, Error> {
    let mut tx = db.begin().await.context("begin create timer")?;
    insert_timers(&mut tx, std::slice::from_ref(timer), now).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TIMER_COLUMNS} FROM scheduler_timers \
         WHERE tenant_id = $1 AND subject = $2 AND kind = $3 AND due_at = $4"
    )))
    .bind(&timer.tenant_id)
    .bind(&timer.subject)
    .bind(&timer.kind)
    .bind(to_micros(timer.due_at))
    .fetch_one(&mut *tx)
    .await
    .context("read created timer")?;
    tx.commit().await.context("commit create timer")?;
    timer_from_row(&row).context("read created timer")
}

/// Cancels one timer. Idempotent: a cancelled timer is answered as it is; a fired one is
/// FAILED_PRECONDITION; another tenant's is NOT_FOUND.
pub async fn cancel_timer(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<StoredTimer, Error> {
    let mut tx = db.begin().await.context("begin cancel timer")?;
    // Postgres: the row lock orders this against a firing round that holds the timer; once it
    // commits, the state read here is `fired`.
    let lock = match db.backend() {
        arflow_platform::Backend::Postgres => " FOR UPDATE",
        arflow_platform::Backend::Sqlite => "",
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TIMER_COLUMNS} FROM scheduler_timers WHERE tenant_id = $1 AND id = $2{lock}"
    )))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .context("read timer to cancel")?
    .ok_or(Error::NotFound("timer"))?;
    let mut timer = timer_from_row(&row).context("read timer to cancel")?;
    match timer.state {
        TimerState::Fired => return Err(Error::FailedPrecondition("the timer has already fired")),
        TimerState::Cancelled => return Ok(timer),
        TimerState::Pending => {}
    }
    sqlx::query(
        "UPDATE scheduler_timers SET state = 'cancelled', cancelled_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await
    .context("cancel timer")?;
    tx.commit().await.context("commit cancel timer")?;
    timer.state = TimerState::Cancelled;
    timer.cancelled_at = Some(now);
    Ok(timer)
}

/// ListTimers filters; every field optional.
#[derive(Clone, Debug, Default)]
pub struct TimerFilter {
    pub subject: Option<String>,
    pub kind: Option<String>,
    pub state: Option<TimerState>,
    pub due_from: Option<DateTime<Utc>>,
    pub due_before: Option<DateTime<Utc>>,
    /// Only these clinics (a clinic-scoped key); empty = all.
    pub clinic_ids: Vec<String>,
    /// Keyset: strictly after this (due_at, id).
    pub after: Option<(i64, String)>,
}

enum Arg {
    Text(String),
    Int(i64),
}

/// Timers in (due_at, id) order, at most `limit`.
pub async fn list_timers(
    db: &Db,
    tenant: &TenantId,
    filter: &TimerFilter,
    limit: usize,
) -> Result<Vec<StoredTimer>, Error> {
    fn push(args: &mut Vec<Arg>, sql: &mut String, clause: &str, arg: Arg) {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    }
    let mut args = vec![Arg::Text(tenant.as_str().to_string())];
    let mut sql = format!("SELECT {TIMER_COLUMNS} FROM scheduler_timers WHERE tenant_id = $1");
    if let Some(s) = &filter.subject {
        push(
            &mut args,
            &mut sql,
            " AND subject = ?",
            Arg::Text(s.clone()),
        );
    }
    if let Some(k) = &filter.kind {
        push(&mut args, &mut sql, " AND kind = ?", Arg::Text(k.clone()));
    }
    if let Some(s) = filter.state {
        push(
            &mut args,
            &mut sql,
            " AND state = ?",
            Arg::Text(s.as_str().to_string()),
        );
    }
    if let Some(t) = filter.due_from {
        push(
            &mut args,
            &mut sql,
            " AND due_at >= ?",
            Arg::Int(to_micros(t)),
        );
    }
    if let Some(t) = filter.due_before {
        push(
            &mut args,
            &mut sql,
            " AND due_at < ?",
            Arg::Int(to_micros(t)),
        );
    }
    if !filter.clinic_ids.is_empty() {
        sql.push_str(" AND clinic_id IN (");
        for (i, c) in filter.clinic_ids.iter().enumerate() {
            let sep = if i > 0 { ", ?" } else { "?" };
            push(&mut args, &mut sql, sep, Arg::Text(c.clone()));
        }
        sql.push(')');
    }
    if let Some((due, id)) = &filter.after {
        push(&mut args, &mut sql, " AND (due_at > ?", Arg::Int(*due));
        let due_slot = args.len();
        push(
            &mut args,
            &mut sql,
            &format!(" OR (due_at = ${due_slot} AND id > ?))"),
            Arg::Text(id.clone()),
        );
    }
    sql.push_str(&format!(" ORDER BY due_at, id LIMIT {}", limit.max(1)));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        query = match a {
            Arg::Text(t) => query.bind(t),
            Arg::Int(i) => query.bind(i),
        };
    }
    query
        .fetch_all(db.pool())
        .await
        .and_then(|rows| rows.iter().map(timer_from_row).collect())
        .context("list timers")
}

/// The earliest pending due instant (one probe of the partial index), for the firing loop's
/// sleep.
pub async fn next_due_at(db: &Db) -> Result<Option<DateTime<Utc>>, Error> {
    let row = sqlx::query(
        "SELECT due_at FROM scheduler_timers WHERE state = 'pending' ORDER BY due_at LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await
    .context("read the next due timer")?;
    row.map(|r| r.try_get("due_at").map(from_micros))
        .transpose()
        .context("read the next due timer")
}

/// Deletes the tenant's fired and cancelled timers due before `due_before`, in batches of 1000
/// along `scheduler_timers_tenant_due`, at most `max_rows` (rounded up to a batch). Returns how
/// many it deleted. Pending timers are never deleted.
pub async fn purge_finished_timers(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    due_before: DateTime<Utc>,
    max_rows: u64,
) -> Result<u64, Error> {
    const BATCH: i64 = 1000;
    let mut deleted = 0;
    while deleted < max_rows {
        let n = sqlx::query(
            "DELETE FROM scheduler_timers WHERE id IN (SELECT id FROM scheduler_timers \
             WHERE tenant_id = $1 AND due_at < $2 AND state <> 'pending' \
             ORDER BY due_at LIMIT $3)",
        )
        .bind(tenant.as_str())
        .bind(to_micros(due_before))
        .bind(BATCH)
        .execute(&mut *conn)
        .await
        .context("purge finished timers")?
        .rows_affected();
        deleted += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}
