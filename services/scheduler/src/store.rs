//! The scheduler's SQL: timers, tenant policies, payer cadence, calendar overrides, the claim
//! projection, denials seen, cron runs. One code path for Postgres and SQLite (see
//! `arflow_platform::db`); the only dialect branch is the firing claim (`timers`).
//!
//! Functions that are part of a larger transaction (a consumer's batch, a firing round, a cron
//! run) take a `&mut AnyConnection`; the ones the API calls on their own take the [`Db`].
use std::collections::HashMap;

use arflow_platform::db::{date_from_sql, date_to_sql, from_micros, to_micros};
use arflow_platform::{Db, Tx};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use crate::policy::{AgingBasis, AgingPolicy, Cadence, Settings, parse_time_zone};
use arflow_domain::calendar::Calendar;

/// The tenant every query is scoped to (one type for every store).
pub use arflow_platform::db::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("timer not found")]
    NotFound,
    #[error("the timer has already fired")]
    AlreadyFired,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A date as the scheduler stores and publishes it.
pub fn date_text(date: NaiveDate) -> String {
    date_to_sql(date)
}

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

pub(crate) const TIMER_COLUMNS: &str = "id, tenant_id, subject, kind, due_at, clinic_id, payload, state, created_at, fired_at, cancelled_at";

pub(crate) fn timer_from_row(row: &AnyRow) -> Result<StoredTimer, sqlx::Error> {
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

/// Sets timers that do not exist yet; an identical (tenant, subject, kind, due_at) is left as
/// it is, so a redelivered event sets nothing twice. Returns how many were new.
pub async fn insert_timers(
    conn: &mut AnyConnection,
    timers: &[NewTimer],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for t in timers {
        let payload =
            serde_json::to_string(&t.payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
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
        .await?
        .rows_affected();
    }
    Ok(inserted)
}

/// Cancels every pending timer of `subject` (idempotent). Returns how many it cancelled.
pub async fn cancel_subject(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'cancelled', cancelled_at = $3 \
         WHERE tenant_id = $1 AND subject = $2 AND state = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Cancels the pending aging and status-check timers of `subject` that `plan` does not
/// contain (same kind and due instant): what a resubmission replaces. Deadline warnings and
/// follow-ups stay. Returns how many it cancelled.
pub async fn cancel_replaced(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    plan: &[NewTimer],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, due_at FROM scheduler_timers \
         WHERE tenant_id = $1 AND subject = $2 AND state = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?;
    let keep: std::collections::HashSet<(&str, i64)> = plan
        .iter()
        .map(|t| (t.kind.as_str(), to_micros(t.due_at)))
        .collect();
    let mut cancelled = 0;
    for r in rows {
        let kind: String = r.try_get("kind")?;
        let replaceable = kind.starts_with(crate::policy::kinds::AGING_PREFIX)
            || kind == crate::policy::kinds::STATUS_CHECK;
        if !replaceable || keep.contains(&(kind.as_str(), r.try_get::<i64, _>("due_at")?)) {
            continue;
        }
        cancelled += sqlx::query(
            "UPDATE scheduler_timers SET state = 'cancelled', cancelled_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        )
        .bind(tenant.as_str())
        .bind(r.try_get::<String, _>("id")?)
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(cancelled)
}

/// Restores the cancelled, still future timers of a claim that was reopened (a payment
/// reversed after it closed the claim). Returns how many.
pub async fn reopen_subject(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE scheduler_timers SET state = 'pending', cancelled_at = NULL \
         WHERE tenant_id = $1 AND subject = $2 AND state = 'cancelled' AND due_at > $3",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

pub async fn get_timer(db: &Db, tenant: &TenantId, id: &str) -> Result<StoredTimer, Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TIMER_COLUMNS} FROM scheduler_timers WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(Error::NotFound)?;
    Ok(timer_from_row(&row)?)
}

/// Sets one timer (CreateTimer): idempotent on (subject, kind, due_at), answering the timer
/// that exists.
pub async fn create_timer(
    db: &Db,
    timer: &NewTimer,
    now: DateTime<Utc>,
) -> Result<StoredTimer, Error> {
    let mut tx = db.begin().await?;
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
    .await?;
    tx.commit().await?;
    Ok(timer_from_row(&row)?)
}

/// Cancels one timer. Idempotent: a cancelled timer is answered as it is; a fired one is
/// [`Error::AlreadyFired`]; another tenant's is [`Error::NotFound`].
pub async fn cancel_timer(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<StoredTimer, Error> {
    let mut tx = db.begin().await?;
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
    .await?
    .ok_or(Error::NotFound)?;
    let mut timer = timer_from_row(&row)?;
    match timer.state {
        TimerState::Fired => return Err(Error::AlreadyFired),
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
    .await?;
    tx.commit().await?;
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
) -> Result<Vec<StoredTimer>, sqlx::Error> {
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
        .await?
        .iter()
        .map(timer_from_row)
        .collect()
}

/// The earliest pending due instant (one probe of the partial index), for the firing loop's
/// sleep.
pub async fn next_due_at(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT due_at FROM scheduler_timers WHERE state = 'pending' ORDER BY due_at LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(r) => Some(from_micros(r.try_get("due_at")?)),
        None => None,
    })
}

// ---- policies ----------------------------------------------------------------------------

/// The tenant's aging policy (configured defaults when it has no row). A row that no longer
/// parses (a time zone removed from the database) falls back to the defaults, logged.
pub async fn load_policy(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    settings: &Settings,
) -> anyhow::Result<AgingPolicy> {
    let row = sqlx::query(
        "SELECT aging_basis, aging_thresholds, time_zone FROM scheduler_tenant_policies \
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let default = settings.default_policy()?;
    let Some(row) = row else {
        return Ok(default);
    };
    let basis = AgingBasis::parse(&row.try_get::<String, _>("aging_basis")?);
    let thresholds: Option<Vec<u32>> =
        serde_json::from_str(&row.try_get::<String, _>("aging_thresholds")?).ok();
    let tz = parse_time_zone(&row.try_get::<String, _>("time_zone")?).ok();
    match (basis, thresholds, tz) {
        (Some(basis), Some(thresholds_days), Some(time_zone)) => Ok(AgingPolicy {
            basis,
            thresholds_days,
            time_zone,
        }),
        _ => {
            tracing::warn!(
                tenant = tenant.as_str(),
                "unreadable scheduler policy row: using the defaults"
            );
            Ok(default)
        }
    }
}

/// Sets a tenant's aging policy (operators and tests; validated by the caller).
pub async fn set_policy(
    db: &Db,
    tenant: &TenantId,
    policy: &AgingPolicy,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let thresholds = serde_json::to_string(&policy.thresholds_days)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO scheduler_tenant_policies \
         (tenant_id, aging_basis, aging_thresholds, time_zone, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id) DO UPDATE SET aging_basis = excluded.aging_basis, \
         aging_thresholds = excluded.aging_thresholds, time_zone = excluded.time_zone, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(policy.basis.as_str())
    .bind(thresholds)
    .bind(policy.time_zone.name())
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The payer's cadence for the tenant: the payer's row, else the tenant's `*` row, else the
/// configured defaults.
pub async fn load_cadence(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    payer_id: &str,
    settings: &Settings,
) -> Result<Cadence, sqlx::Error> {
    let row = sqlx::query(
        "SELECT first_check_business_days, repeat_business_days, max_checks, \
         timely_filing_warning_days, appeal_warning_days FROM scheduler_payer_cadence \
         WHERE tenant_id = $1 AND payer_id IN ($2, '*') \
         ORDER BY CASE WHEN payer_id = '*' THEN 1 ELSE 0 END LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(payer_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(settings.default_cadence());
    };
    let days = |name: &str| -> Result<u32, sqlx::Error> {
        Ok(u32::try_from(row.try_get::<i64, _>(name)?.max(0)).unwrap_or(u32::MAX))
    };
    Ok(Cadence {
        first_check_business_days: days("first_check_business_days")?,
        repeat_business_days: days("repeat_business_days")?,
        max_checks: days("max_checks")?,
        timely_filing_warning_days: days("timely_filing_warning_days")?,
        appeal_warning_days: days("appeal_warning_days")?,
    })
}

/// Sets a payer's cadence for a tenant (`*` = the tenant's default).
pub async fn set_cadence(
    db: &Db,
    tenant: &TenantId,
    payer_id: &str,
    cadence: &Cadence,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO scheduler_payer_cadence (tenant_id, payer_id, first_check_business_days, \
         repeat_business_days, max_checks, timely_filing_warning_days, appeal_warning_days, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, payer_id) DO UPDATE SET \
         first_check_business_days = excluded.first_check_business_days, \
         repeat_business_days = excluded.repeat_business_days, \
         max_checks = excluded.max_checks, \
         timely_filing_warning_days = excluded.timely_filing_warning_days, \
         appeal_warning_days = excluded.appeal_warning_days, updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(payer_id)
    .bind(i64::from(cadence.first_check_business_days))
    .bind(i64::from(cadence.repeat_business_days))
    .bind(i64::from(cadence.max_checks))
    .bind(i64::from(cadence.timely_filing_warning_days))
    .bind(i64::from(cadence.appeal_warning_days))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The tenant's business-day calendar (US federal with its overrides).
pub async fn load_calendar(
    conn: &mut AnyConnection,
    tenant: &TenantId,
) -> Result<Calendar, sqlx::Error> {
    let rows =
        sqlx::query("SELECT day, business_day FROM scheduler_calendar_days WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let mut overrides = Vec::with_capacity(rows.len());
    for r in rows {
        let day = date_from_sql(&r.try_get::<String, _>("day")?)?;
        overrides.push((day, r.try_get::<i64, _>("business_day")? != 0));
    }
    Ok(Calendar::with_overrides(overrides))
}

/// Marks a day open or closed for a tenant.
pub async fn set_calendar_day(
    db: &Db,
    tenant: &TenantId,
    day: NaiveDate,
    business_day: bool,
    note: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO scheduler_calendar_days (tenant_id, day, business_day, note) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, day) DO UPDATE SET \
         business_day = excluded.business_day, note = excluded.note",
    )
    .bind(tenant.as_str())
    .bind(date_to_sql(day))
    .bind(i64::from(business_day))
    .bind(note)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

// ---- claim projection --------------------------------------------------------------------

/// What the scheduler knows of a claim, from the claims stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectedClaim {
    pub tenant_id: String,
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub status: String,
    pub submission_date: Option<NaiveDate>,
    pub first_service_date: Option<NaiveDate>,
    pub balance_cents: i64,
    pub last_version: i64,
}

/// Statuses after which nothing is left to follow up (claims.v1 enum names).
pub const CLOSED_STATUSES: [&str; 3] = [
    "CLAIM_STATUS_PAID",
    "CLAIM_STATUS_CLOSED",
    "CLAIM_STATUS_WRITTEN_OFF",
];

pub fn is_closed_status(status: &str) -> bool {
    CLOSED_STATUSES.contains(&status)
}

/// Nothing left to follow up: a closing status, or nothing owed (a claim is never submitted
/// with a zero charge, so a zero balance means settled).
pub fn is_closed(status: &str, balance_cents: i64) -> bool {
    is_closed_status(status) || balance_cents <= 0
}

pub async fn get_claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
) -> Result<Option<ProjectedClaim>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT tenant_id, claim_id, clinic_id, payer_id, status, submission_date, \
         first_service_date, balance_cents, last_version FROM scheduler_claims \
         WHERE tenant_id = $1 AND claim_id = $2",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let date = |name: &str| -> Result<Option<NaiveDate>, sqlx::Error> {
        r.try_get::<Option<String>, _>(name)?
            .map(|t| date_from_sql(&t))
            .transpose()
    };
    Ok(Some(ProjectedClaim {
        tenant_id: r.try_get("tenant_id")?,
        claim_id: r.try_get("claim_id")?,
        clinic_id: r.try_get("clinic_id")?,
        payer_id: r.try_get("payer_id")?,
        status: r.try_get("status")?,
        submission_date: date("submission_date")?,
        first_service_date: date("first_service_date")?,
        balance_cents: r.try_get("balance_cents")?,
        last_version: r.try_get("last_version")?,
    }))
}

pub async fn upsert_claim(
    conn: &mut AnyConnection,
    claim: &ProjectedClaim,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scheduler_claims (tenant_id, claim_id, clinic_id, payer_id, status, \
         submission_date, first_service_date, balance_cents, last_version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, claim_id) DO UPDATE SET clinic_id = excluded.clinic_id, \
         payer_id = excluded.payer_id, status = excluded.status, \
         submission_date = excluded.submission_date, \
         first_service_date = excluded.first_service_date, \
         balance_cents = excluded.balance_cents, last_version = excluded.last_version, \
         updated_at = excluded.updated_at",
    )
    .bind(&claim.tenant_id)
    .bind(&claim.claim_id)
    .bind(&claim.clinic_id)
    .bind(&claim.payer_id)
    .bind(&claim.status)
    .bind(claim.submission_date.map(date_to_sql))
    .bind(claim.first_service_date.map(date_to_sql))
    .bind(claim.balance_cents)
    .bind(claim.last_version)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Claims the projection holds open (not closed, balance above zero).
pub async fn open_claim_ids(db: &Db, tenant: &TenantId) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT claim_id FROM scheduler_claims WHERE tenant_id = $1 AND balance_cents > 0 \
         AND status NOT IN ('CLAIM_STATUS_PAID', 'CLAIM_STATUS_CLOSED', 'CLAIM_STATUS_WRITTEN_OFF') \
         ORDER BY claim_id",
    )
    .bind(tenant.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| r.try_get("claim_id")).collect()
}

/// A denial seen on the claims stream.
#[derive(Clone, Debug)]
pub struct SeenDenial {
    pub tenant_id: String,
    pub denial_id: String,
    pub claim_id: String,
    pub payer_id: String,
    pub clinic_id: String,
    pub category: String,
    pub reason_code: String,
    pub amount_cents: i64,
    pub denial_date: Option<NaiveDate>,
    pub occurred_at: DateTime<Utc>,
}

pub async fn insert_denial(conn: &mut AnyConnection, d: &SeenDenial) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scheduler_denials (tenant_id, denial_id, claim_id, payer_id, clinic_id, \
         category, reason_code, amount_cents, denial_date, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, denial_id) DO NOTHING",
    )
    .bind(&d.tenant_id)
    .bind(&d.denial_id)
    .bind(&d.claim_id)
    .bind(&d.payer_id)
    .bind(&d.clinic_id)
    .bind(&d.category)
    .bind(&d.reason_code)
    .bind(d.amount_cents)
    .bind(d.denial_date.map(date_to_sql))
    .bind(to_micros(d.occurred_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---- cron --------------------------------------------------------------------------------

/// Tenants the scheduler knows: those with claims in its projection or a policy row.
///
/// The cron loop asks every tick, so this must not read every claim: the recursive query
/// walks the primary key from one tenant to the next (a "loose index scan", one index probe
/// per tenant) on both backends, where `SELECT DISTINCT` would scan the whole projection.
pub async fn known_tenants(db: &Db) -> Result<Vec<TenantId>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH RECURSIVE t(tenant_id) AS ( \
           SELECT MIN(tenant_id) FROM scheduler_claims \
           UNION ALL \
           SELECT (SELECT MIN(c.tenant_id) FROM scheduler_claims c WHERE c.tenant_id > t.tenant_id) \
           FROM t WHERE t.tenant_id IS NOT NULL) \
         SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL \
         UNION SELECT tenant_id FROM scheduler_tenant_policies ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(TenantId::new(r.try_get::<String, _>(0)?)))
        .collect()
}

/// The latest scheduled instant of each (job, tenant) that has run.
pub async fn last_runs(db: &Db) -> Result<HashMap<(String, String), i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT job, tenant_id, MAX(scheduled_at) AS last FROM scheduler_cron_runs \
         GROUP BY job, tenant_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        out.insert(
            (r.try_get("job")?, r.try_get("tenant_id")?),
            r.try_get::<i64, _>("last")?,
        );
    }
    Ok(out)
}

/// Deletes the tenant's fired and cancelled timers due before `due_before`, in batches of 1000
/// along `scheduler_timers_tenant_due`, at most `max_rows` (rounded up to a batch). Returns how
/// many it deleted. Pending timers are never deleted.
pub async fn purge_finished_timers(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    due_before: DateTime<Utc>,
    max_rows: u64,
) -> Result<u64, sqlx::Error> {
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
        .await?
        .rows_affected();
        deleted += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}

/// Claims the run of (job, tenant, instant) in the caller's transaction: Some(run id) when this
/// replica won the insert, None when the instant has run (or another replica is running it and
/// then commits: Postgres makes this insert wait for that transaction).
pub async fn claim_run(
    conn: &mut AnyConnection,
    job: &str,
    tenant: &TenantId,
    scheduled_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    replica: &str,
) -> Result<Option<String>, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let inserted = sqlx::query(
        "INSERT INTO scheduler_cron_runs (id, job, tenant_id, scheduled_at, state, started_at, \
         replica) VALUES ($1, $2, $3, $4, 'running', $5, $6) \
         ON CONFLICT (job, tenant_id, scheduled_at) DO NOTHING",
    )
    .bind(&id)
    .bind(job)
    .bind(tenant.as_str())
    .bind(to_micros(scheduled_at))
    .bind(to_micros(started_at))
    .bind(replica)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(id))
}

/// Begins the run of (job, tenant, instant): a transaction holding the claimed run
/// ([`claim_run`]) and the run id, or None (nothing held) when the instant has run.
pub async fn begin_run(
    db: &Db,
    job: &str,
    tenant: &TenantId,
    scheduled_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    replica: &str,
) -> Result<Option<(Tx, String)>, sqlx::Error> {
    let mut tx = db.begin().await?;
    match claim_run(&mut tx, job, tenant, scheduled_at, started_at, replica).await? {
        Some(run_id) => Ok(Some((tx, run_id))),
        None => {
            tx.rollback().await?;
            Ok(None)
        }
    }
}

pub async fn finish_run(
    conn: &mut AnyConnection,
    run_id: &str,
    summary: &str,
    finished_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler_cron_runs SET state = 'succeeded', summary = $2, finished_at = $3 \
         WHERE id = $1",
    )
    .bind(run_id)
    .bind(summary)
    .bind(to_micros(finished_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A cron run as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronRunRow {
    pub id: String,
    pub job: String,
    pub scheduled_at: DateTime<Utc>,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub summary: String,
}

/// Runs of the tenant, newest first, keyset after (scheduled_at, id).
pub async fn list_runs(
    db: &Db,
    tenant: &TenantId,
    job: Option<&str>,
    before: Option<(i64, String)>,
    limit: usize,
) -> Result<Vec<CronRunRow>, sqlx::Error> {
    let mut sql = String::from(
        "SELECT id, job, scheduled_at, state, started_at, finished_at, summary \
         FROM scheduler_cron_runs WHERE tenant_id = $1",
    );
    let mut n = 1;
    if job.is_some() {
        n += 1;
        sql.push_str(&format!(" AND job = ${n}"));
    }
    if before.is_some() {
        sql.push_str(&format!(
            " AND (scheduled_at < ${a} OR (scheduled_at = ${a} AND id < ${b}))",
            a = n + 1,
            b = n + 2
        ));
    }
    sql.push_str(&format!(
        " ORDER BY scheduled_at DESC, id DESC LIMIT {}",
        limit.max(1)
    ));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str());
    if let Some(j) = job {
        q = q.bind(j);
    }
    if let Some((at, id)) = before {
        q = q.bind(at).bind(id);
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(CronRunRow {
                id: r.try_get("id")?,
                job: r.try_get("job")?,
                scheduled_at: from_micros(r.try_get("scheduled_at")?),
                state: r.try_get("state")?,
                started_at: from_micros(r.try_get("started_at")?),
                finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(from_micros),
                summary: r.try_get("summary")?,
            })
        })
        .collect()
}

/// Aging buckets of a snapshot, in order.
pub const AGING_BUCKETS: [&str; 5] = ["0-30", "31-60", "61-90", "91-120", "120+"];

/// Open claims (not paid, closed or written off; balance above zero) by aging bucket on
/// `as_of`, counted from the tenant's basis date: (bucket, count, balance cents), every bucket
/// present.
pub async fn aging_buckets(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    basis: AgingBasis,
    as_of: NaiveDate,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    // A fixed column name chosen here, never from input.
    let col = match basis {
        AgingBasis::Submission => "submission_date",
        AgingBasis::DateOfService => "first_service_date",
    };
    // Dates sort as text, so the buckets are bounds computed here: 0-30 = on or after
    // as_of - 30 days, and so on.
    let bound = |days: u64| {
        date_to_sql(
            as_of
                .checked_sub_days(chrono::Days::new(days))
                .unwrap_or(NaiveDate::MIN),
        )
    };
    let sql = format!(
        "SELECT CASE WHEN {col} >= $2 THEN '0-30' WHEN {col} >= $3 THEN '31-60' \
         WHEN {col} >= $4 THEN '61-90' WHEN {col} >= $5 THEN '91-120' ELSE '120+' END AS bucket, \
         CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(balance_cents), 0) AS BIGINT) AS cents \
         FROM scheduler_claims WHERE tenant_id = $1 AND balance_cents > 0 AND {col} IS NOT NULL \
         AND status NOT IN ('CLAIM_STATUS_PAID', 'CLAIM_STATUS_CLOSED', 'CLAIM_STATUS_WRITTEN_OFF') \
         GROUP BY 1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(bound(30))
        .bind(bound(60))
        .bind(bound(90))
        .bind(bound(120))
        .fetch_all(&mut *conn)
        .await?;
    let mut found = HashMap::new();
    for r in rows {
        found.insert(
            r.try_get::<String, _>("bucket")?,
            (r.try_get::<i64, _>("n")?, r.try_get::<i64, _>("cents")?),
        );
    }
    Ok(AGING_BUCKETS
        .iter()
        .map(|b| {
            let (n, cents) = found.get(*b).copied().unwrap_or((0, 0));
            (b.to_string(), n, cents)
        })
        .collect())
}

/// Denials seen in (from, to] by category: (category, count, cents), largest amount first.
pub async fn denial_digest(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT category, CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) AS cents FROM scheduler_denials \
         WHERE tenant_id = $1 AND occurred_at > $2 AND occurred_at <= $3 \
         GROUP BY category ORDER BY 3 DESC, 1",
    )
    .bind(tenant.as_str())
    .bind(to_micros(from))
    .bind(to_micros(to))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("category")?, r.try_get("n")?, r.try_get("cents")?)))
        .collect()
}
