//! SQL of the assignment service: specialists, tasks, the claim projection, the follow-up
//! log, the change log, and the events written to the outbox with each change.
//!
//! Every function takes the tenant as a typed [`TenantId`]; no query can forget it.
//!
//! # Assignment and concurrency
//!
//! A task is handed out by [`assign`]: the claim's last specialist first (sticky), else the
//! active, in-office specialist covering the payer and clinic who is least loaded relative to
//! capacity. Taking a specialist is a conditional
//! `UPDATE … SET open_tasks = open_tasks + 1 WHERE open_tasks < capacity AND active …`, so
//! two replicas can never overfill a queue: on Postgres the row lock serialises them and the
//! condition is re-checked after the lock; SQLite has one writer. The task itself moves with
//! `WHERE specialist_id IS NULL AND closed_at IS NULL`, so it is never assigned twice.
//!
//! Every transaction that changes a tenant's tasks first takes the tenant lock
//! ([`lock_tenant`]): it orders the WatchQueues change log and gives all writers one lock
//! order. On top of it, specialist rows are taken with `FOR UPDATE SKIP LOCKED` on Postgres
//! (a specialist held by another transaction is skipped, never waited for), so the invariant
//! does not depend on the tenant lock alone. A task that finds every fitting specialist busy
//! that way stays unassigned quietly and the sweep ([`assign_waiting`]) retries it; one that
//! finds nobody who fits publishes TaskUnassigned (once per stay in the queue).
//!
//! Known cost: a consumer batch that holds events of several tenants takes their locks in
//! stream order; two replicas taking two tenants in opposite orders deadlock, Postgres aborts
//! one batch after `deadlock_timeout`, and the bus re-applies it event by event.
use arflow_api::events::v1 as events;
use arflow_platform::bus;
use arflow_platform::db::{Backend, Db, date_from_sql, date_to_sql, from_micros, to_micros};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use arflow_domain::priority::{self, PriorityInput, Reason, TaskKindName};

/// Producer name of the service's events (= its stream).
pub const PRODUCER: &str = "assignment";

/// The tenant every query is scoped to (one type for every store).
pub use arflow_platform::db::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn flag(v: bool) -> i64 {
    i64::from(v)
}

// ---------------------------------------------------------------------------------------------
// Specialists

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// 1 = Monday .. 7 = Sunday.
    pub days: Vec<i32>,
    pub start_time: String,
    pub end_time: String,
    pub time_zone: String,
}

/// What a supervisor sets on a specialist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialistFields {
    pub display_name: String,
    pub payer_ids: Vec<String>,
    pub clinic_ids: Vec<String>,
    pub capacity: i64,
    pub working_hours: WorkingHours,
    pub active: bool,
    pub out_of_office: bool,
    pub key_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Specialist {
    pub id: String,
    pub fields: SpecialistFields,
    pub open_tasks: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Specialist {
    /// True when new work may go to the specialist.
    pub fn available(&self) -> bool {
        self.fields.active && !self.fields.out_of_office
    }
}

pub async fn create_specialist(
    db: &Db,
    tenant: &TenantId,
    fields: &SpecialistFields,
    now: DateTime<Utc>,
) -> Result<Specialist> {
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO asg_specialists (id, tenant_id, display_name, key_id, capacity, open_tasks, \
         working_hours, active, out_of_office, deleted, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, 0, $9, $9)",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(&fields.display_name)
    .bind(fields.key_id.as_deref())
    .bind(fields.capacity)
    .bind(hours_json(&fields.working_hours))
    .bind(flag(fields.active))
    .bind(flag(fields.out_of_office))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        return Err(key_conflict(e));
    }
    write_coverage(&mut tx, tenant, &id, fields).await?;
    tx.commit().await?;
    get_specialist(db, tenant, &id).await
}

fn key_conflict(e: sqlx::Error) -> Error {
    if arflow_platform::db::is_unique_violation(&e) {
        Error::Conflict("another specialist already uses this key_id".into())
    } else {
        Error::Db(e)
    }
}

fn hours_json(h: &WorkingHours) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "{}".into())
}

async fn write_coverage(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    fields: &SpecialistFields,
) -> Result<()> {
    sqlx::query("DELETE FROM asg_specialist_payers WHERE tenant_id = $1 AND specialist_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM asg_specialist_clinics WHERE tenant_id = $1 AND specialist_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for payer in &fields.payer_ids {
        sqlx::query(
            "INSERT INTO asg_specialist_payers (tenant_id, specialist_id, payer_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(payer)
        .execute(&mut *conn)
        .await?;
    }
    for clinic in &fields.clinic_ids {
        sqlx::query(
            "INSERT INTO asg_specialist_clinics (tenant_id, specialist_id, clinic_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(clinic)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const SPECIALIST_COLUMNS: &str = "id, display_name, key_id, capacity, open_tasks, working_hours, \
     active, out_of_office, created_at, updated_at";

async fn specialist_from_row(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    row: &AnyRow,
) -> Result<Specialist> {
    let id: String = row.try_get("id")?;
    let payer_ids: Vec<String> = sqlx::query_scalar(
        "SELECT payer_id FROM asg_specialist_payers WHERE tenant_id = $1 AND specialist_id = $2 \
         ORDER BY payer_id",
    )
    .bind(tenant.as_str())
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let clinic_ids: Vec<String> = sqlx::query_scalar(
        "SELECT clinic_id FROM asg_specialist_clinics WHERE tenant_id = $1 \
         AND specialist_id = $2 ORDER BY clinic_id",
    )
    .bind(tenant.as_str())
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let hours: String = row.try_get("working_hours")?;
    Ok(Specialist {
        fields: SpecialistFields {
            display_name: row.try_get("display_name")?,
            payer_ids,
            clinic_ids,
            capacity: row.try_get("capacity")?,
            working_hours: serde_json::from_str(&hours).unwrap_or_default(),
            active: row.try_get::<i64, _>("active")? != 0,
            out_of_office: row.try_get::<i64, _>("out_of_office")? != 0,
            key_id: row.try_get("key_id")?,
        },
        id,
        open_tasks: row.try_get("open_tasks")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

pub async fn get_specialist(db: &Db, tenant: &TenantId, id: &str) -> Result<Specialist> {
    let mut conn = db.pool().acquire().await?;
    get_specialist_on(&mut conn, tenant, id).await
}

async fn get_specialist_on(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Specialist> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPECIALIST_COLUMNS} FROM asg_specialists \
         WHERE tenant_id = $1 AND id = $2 AND deleted = 0"
    )))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("specialist"))?;
    specialist_from_row(conn, tenant, &row).await
}

/// The specialist an API key calls as (set by a supervisor with `key_id`).
pub async fn specialist_by_key(db: &Db, tenant: &TenantId, key_id: &str) -> Result<Specialist> {
    let mut conn = db.pool().acquire().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPECIALIST_COLUMNS} FROM asg_specialists \
         WHERE tenant_id = $1 AND key_id = $2 AND deleted = 0"
    )))
    .bind(tenant.as_str())
    .bind(key_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("specialist"))?;
    specialist_from_row(&mut conn, tenant, &row).await
}

/// A page of specialists in id order, after `after_id`.
pub async fn list_specialists(
    db: &Db,
    tenant: &TenantId,
    after_id: &str,
    limit: i64,
) -> Result<Vec<Specialist>> {
    let mut conn = db.pool().acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPECIALIST_COLUMNS} FROM asg_specialists \
         WHERE tenant_id = $1 AND deleted = 0 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant.as_str())
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(specialist_from_row(&mut conn, tenant, row).await?);
    }
    Ok(out)
}

/// Replaces a specialist's fields; when they stop being available (inactive, out of office)
/// their open tasks move to others. Returns the specialist and how many tasks moved.
pub async fn update_specialist(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    fields: &SpecialistFields,
    now: DateTime<Utc>,
) -> Result<(Specialist, i64)> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    lock_specialist(&mut tx, db.backend(), tenant, id).await?;
    let updated = sqlx::query(
        "UPDATE asg_specialists SET display_name = $3, key_id = $4, capacity = $5, \
         working_hours = $6, active = $7, out_of_office = $8, updated_at = $9 \
         WHERE tenant_id = $1 AND id = $2 AND deleted = 0",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(&fields.display_name)
    .bind(fields.key_id.as_deref())
    .bind(fields.capacity)
    .bind(hours_json(&fields.working_hours))
    .bind(flag(fields.active))
    .bind(flag(fields.out_of_office))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await
    .map_err(key_conflict)?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound("specialist"));
    }
    write_coverage(&mut tx, tenant, id, fields).await?;
    let moved = if fields.active && !fields.out_of_office {
        0
    } else {
        let reason = if fields.out_of_office {
            "out_of_office"
        } else {
            "specialist_inactive"
        };
        move_open_tasks(&mut tx, db.backend(), tenant, id, reason, now).await?
    };
    tx.commit().await?;
    Ok((get_specialist(db, tenant, id).await?, moved))
}

/// Removes a specialist (kept as a row for history); their open tasks move to others.
pub async fn delete_specialist(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    lock_specialist(&mut tx, db.backend(), tenant, id).await?;
    let done = sqlx::query(
        "UPDATE asg_specialists SET deleted = 1, active = 0, key_id = NULL, updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND deleted = 0",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("specialist"));
    }
    let moved =
        move_open_tasks(&mut tx, db.backend(), tenant, id, "specialist_removed", now).await?;
    tx.commit().await?;
    Ok(moved)
}

/// Waits for the specialist's row lock (Postgres): supervisor changes are rare and must not
/// race an assignment that still counts the old capacity.
async fn lock_specialist(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    id: &str,
) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM asg_specialists WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Takes every open task from `specialist_id` and hands each to someone else by the usual
/// rules (or the unassigned queue). Claim locks the specialist held are released.
async fn move_open_tasks(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    specialist_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let rows = sqlx::query(
        "SELECT id FROM asg_tasks WHERE tenant_id = $1 AND specialist_id = $2 \
         AND closed_at IS NULL ORDER BY priority DESC, id",
    )
    .bind(tenant.as_str())
    .bind(specialist_id)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
    sqlx::query("DELETE FROM asg_claim_locks WHERE tenant_id = $1 AND specialist_id = $2")
        .bind(tenant.as_str())
        .bind(specialist_id)
        .execute(&mut *conn)
        .await?;
    for id in &ids {
        unassign(conn, tenant, id, now).await?;
        sqlx::query(
            "UPDATE asg_specialists SET open_tasks = open_tasks - 1 \
             WHERE tenant_id = $1 AND id = $2 AND open_tasks > 0",
        )
        .bind(tenant.as_str())
        .bind(specialist_id)
        .execute(&mut *conn)
        .await?;
        let task = get_task_on(conn, tenant, id).await?;
        let to = assign(
            conn,
            backend,
            tenant,
            &task,
            Some(specialist_id),
            AssignMode::Moved(reason),
            now,
        )
        .await?;
        if to.is_none() {
            // Moved to the unassigned queue; say so even when someone is merely busy, so the
            // supervisor sees the move.
            publish_unassigned(conn, tenant, &task, reason, Some(specialist_id), now).await?;
        }
    }
    Ok(ids.len() as i64)
}

async fn unassign(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE asg_tasks SET specialist_id = NULL, status = 'unassigned', version = version + 1, \
         updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND closed_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(task_id)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Claim projection

/// What a claim event says about the claim. `status` empty = the event does not say.
#[derive(Clone, Debug, Default)]
pub struct ClaimFacts {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub status: String,
    pub balance_cents: i64,
    pub submission_date: Option<NaiveDate>,
    pub first_service_date: Option<NaiveDate>,
    pub version: i64,
}

/// The claim as the projection knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimView {
    pub clinic_id: String,
    pub payer_id: String,
    pub status: String,
    pub balance_cents: i64,
    pub submission_date: Option<NaiveDate>,
    pub first_service_date: Option<NaiveDate>,
    pub version: i64,
}

impl ClaimView {
    /// Paid, closed or written off: nothing left to follow up.
    pub fn settled(&self) -> bool {
        is_settled_status(&self.status)
    }
}

pub fn is_settled_status(status: &str) -> bool {
    matches!(
        status,
        "CLAIM_STATUS_PAID" | "CLAIM_STATUS_CLOSED" | "CLAIM_STATUS_WRITTEN_OFF"
    )
}

/// Applies a claim event to the projection. Older versions than the one applied do not
/// overwrite newer state (replicas and redelivery reorder events); the same version applies
/// again, because one claims transaction publishes several events with the claim's one new
/// version (835 posting: ClaimStatusChanged, ClaimPaid, ClaimDenied…), all describing the
/// same state. Returns true when applied.
pub async fn apply_claim_facts(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    f: &ClaimFacts,
    now: DateTime<Utc>,
) -> Result<bool> {
    let status = if f.status.is_empty() {
        "CLAIM_STATUS_UNSPECIFIED"
    } else {
        f.status.as_str()
    };
    let done = sqlx::query(
        "INSERT INTO asg_claims (tenant_id, claim_id, clinic_id, payer_id, status, balance_cents, \
         submission_date, first_service_date, version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, claim_id) DO UPDATE SET \
         clinic_id = excluded.clinic_id, payer_id = excluded.payer_id, \
         status = CASE WHEN $11 = 1 THEN excluded.status ELSE asg_claims.status END, \
         balance_cents = excluded.balance_cents, \
         submission_date = COALESCE(excluded.submission_date, asg_claims.submission_date), \
         first_service_date = COALESCE(excluded.first_service_date, asg_claims.first_service_date), \
         version = excluded.version, updated_at = excluded.updated_at \
         WHERE asg_claims.version <= excluded.version",
    )
    .bind(tenant.as_str())
    .bind(&f.claim_id)
    .bind(&f.clinic_id)
    .bind(&f.payer_id)
    .bind(status)
    .bind(f.balance_cents)
    .bind(f.submission_date.map(date_to_sql))
    .bind(f.first_service_date.map(date_to_sql))
    .bind(f.version)
    .bind(to_micros(now))
    .bind(flag(!f.status.is_empty()))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn claim_view(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
) -> Result<Option<ClaimView>> {
    let row = sqlx::query(
        "SELECT clinic_id, payer_id, status, balance_cents, submission_date, first_service_date, \
         version FROM asg_claims WHERE tenant_id = $1 AND claim_id = $2",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let date = |col: &str| -> Result<Option<NaiveDate>> {
        Ok(match row.try_get::<Option<String>, _>(col)? {
            Some(s) => Some(date_from_sql(&s)?),
            None => None,
        })
    };
    Ok(Some(ClaimView {
        clinic_id: row.try_get("clinic_id")?,
        payer_id: row.try_get("payer_id")?,
        status: row.try_get("status")?,
        balance_cents: row.try_get("balance_cents")?,
        submission_date: date("submission_date")?,
        first_service_date: date("first_service_date")?,
        version: row.try_get("version")?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub kind: TaskKindName,
    /// unassigned | assigned | in_progress | completed
    pub status: String,
    pub detail: String,
    pub specialist_id: Option<String>,
    pub priority: i64,
    pub reasons: Vec<Reason>,
    pub balance_cents: i64,
    pub denial_category: String,
    pub denial_resolution: String,
    pub denial_owner: String,
    pub appealable: bool,
    pub denied_amount_cents: i64,
    /// The denial a denial task is for ('' for other kinds, and tasks older than the column).
    pub denial_id: String,
    pub deadline: Option<NaiveDate>,
    pub notes: String,
    pub snooze_until: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    pub outcome: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

const TASK_COLUMNS: &str = "id, claim_id, clinic_id, payer_id, kind, status, detail, \
     specialist_id, priority, priority_reasons, balance_cents, denial_category, \
     denial_resolution, denial_owner, appealable, denied_amount_cents, denial_id, deadline, \
     notes, snooze_until, due_at, outcome, version, created_at, updated_at, closed_at";

fn task_from_row(row: &AnyRow) -> Result<Task> {
    let kind: String = row.try_get("kind")?;
    let reasons: String = row.try_get("priority_reasons")?;
    Ok(Task {
        id: row.try_get("id")?,
        claim_id: row.try_get("claim_id")?,
        clinic_id: row.try_get("clinic_id")?,
        payer_id: row.try_get("payer_id")?,
        kind: TaskKindName::parse(&kind).unwrap_or_default(),
        status: row.try_get("status")?,
        detail: row.try_get("detail")?,
        specialist_id: row.try_get("specialist_id")?,
        priority: row.try_get("priority")?,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        balance_cents: row.try_get("balance_cents")?,
        denial_category: row.try_get("denial_category")?,
        denial_resolution: row.try_get("denial_resolution")?,
        denial_owner: row.try_get("denial_owner")?,
        appealable: row.try_get::<i64, _>("appealable")? != 0,
        denied_amount_cents: row.try_get("denied_amount_cents")?,
        denial_id: row.try_get("denial_id")?,
        deadline: match row.try_get::<Option<String>, _>("deadline")? {
            Some(s) => Some(date_from_sql(&s)?),
            None => None,
        },
        notes: row.try_get("notes")?,
        snooze_until: row
            .try_get::<Option<i64>, _>("snooze_until")?
            .map(from_micros),
        due_at: from_micros(row.try_get("due_at")?),
        outcome: row.try_get("outcome")?,
        version: row.try_get("version")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
        closed_at: row.try_get::<Option<i64>, _>("closed_at")?.map(from_micros),
    })
}

pub async fn get_task(db: &Db, tenant: &TenantId, id: &str) -> Result<Task> {
    let mut conn = db.pool().acquire().await?;
    get_task_on(&mut conn, tenant, id).await
}

pub async fn get_task_on(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<Task> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("task"))?;
    task_from_row(&row)
}

/// What an event asks for: a task of `kind` on a claim.
#[derive(Clone, Debug, Default)]
pub struct TaskRequest {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub kind: TaskKindName,
    pub detail: String,
    pub balance_cents: i64,
    pub denial_category: String,
    pub denial_resolution: String,
    pub denial_owner: String,
    pub appealable: bool,
    pub denied_amount_cents: i64,
    /// The denial a denial task is for (claims.v1 Denial.id).
    pub denial_id: String,
    pub deadline: Option<NaiveDate>,
    /// Submission date (else first date of service): the age factor.
    pub age_basis: Option<NaiveDate>,
    pub source_event_id: Option<String>,
}

impl TaskRequest {
    pub fn priority(&self, today: NaiveDate) -> priority::Priority {
        let is_denial = self.kind == TaskKindName::Denial;
        priority::score(&PriorityInput {
            kind: self.kind,
            balance_cents: self.balance_cents,
            age_days: self.age_basis.map(|d| (today - d).num_days()),
            days_to_deadline: self.deadline.map(|d| (d - today).num_days()),
            appealable: is_denial.then_some(self.appealable),
            category: (is_denial && !self.denial_category.is_empty())
                .then(|| self.denial_category.clone()),
        })
    }
}

/// What [`open_task`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    pub task: Task,
    /// False: an open task of that claim and kind existed and was refreshed instead.
    pub created: bool,
}

/// Opens the task of `req.kind` on the claim, or refreshes the open one (one open task per
/// claim and kind, enforced by a unique partial index), then assigns a new task.
pub async fn open_task(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    req: &TaskRequest,
    now: DateTime<Utc>,
) -> Result<Opened> {
    let p = req.priority(now.date_naive());
    let reasons = serde_json::to_string(&p.reasons).unwrap_or_else(|_| "[]".into());
    let id = uuid::Uuid::now_v7().to_string();
    let due_at = now + TimeDelta::days(req.kind.sla_days());
    // DO NOTHING (not DO UPDATE) so that we know whether this call created the task: a
    // second event for an open (claim, kind) refreshes it below and assigns nothing.
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO asg_tasks (id, tenant_id, claim_id, clinic_id, payer_id, kind, status, \
         detail, specialist_id, priority, priority_reasons, balance_cents, denial_category, \
         denial_resolution, denial_owner, appealable, denied_amount_cents, deadline, notes, \
         snooze_until, due_at, outcome, automatic_close, source_event_id, version, created_at, \
         updated_at, closed_at, denial_id) \
         VALUES ($1, $2, $3, $4, $5, $6, 'unassigned', $7, NULL, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, '', NULL, $17, NULL, 0, $18, 1, $19, $19, NULL, $20) \
         ON CONFLICT (tenant_id, claim_id, kind) WHERE closed_at IS NULL DO NOTHING \
         RETURNING id",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(&req.claim_id)
    .bind(&req.clinic_id)
    .bind(&req.payer_id)
    .bind(req.kind.as_str())
    .bind(&req.detail)
    .bind(i64::from(p.score))
    .bind(&reasons)
    .bind(req.balance_cents)
    .bind(&req.denial_category)
    .bind(&req.denial_resolution)
    .bind(&req.denial_owner)
    .bind(flag(req.appealable))
    .bind(req.denied_amount_cents)
    .bind(req.deadline.map(date_to_sql))
    .bind(to_micros(due_at))
    .bind(req.source_event_id.as_deref())
    .bind(to_micros(now))
    .bind(&req.denial_id)
    .fetch_optional(&mut *conn)
    .await?;

    if inserted.is_none() {
        // Refresh the open task with what the newer event says (no summing: a repeated event
        // must not double an amount).
        let existing: String = sqlx::query_scalar(
            "SELECT id FROM asg_tasks WHERE tenant_id = $1 AND claim_id = $2 AND kind = $3 \
             AND closed_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(&req.claim_id)
        .bind(req.kind.as_str())
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE asg_tasks SET detail = $3, priority = $4, priority_reasons = $5, \
             balance_cents = $6, denial_category = CASE WHEN $7 = '' THEN denial_category ELSE $7 END, \
             denial_resolution = CASE WHEN $8 = '' THEN denial_resolution ELSE $8 END, \
             denial_owner = CASE WHEN $9 = '' THEN denial_owner ELSE $9 END, \
             appealable = $10, denied_amount_cents = $11, deadline = COALESCE($12, deadline), \
             denial_id = CASE WHEN $14 = '' THEN denial_id ELSE $14 END, \
             version = version + 1, updated_at = $13 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(&existing)
        .bind(&req.detail)
        .bind(i64::from(p.score))
        .bind(&reasons)
        .bind(req.balance_cents)
        .bind(&req.denial_category)
        .bind(&req.denial_resolution)
        .bind(&req.denial_owner)
        .bind(flag(req.appealable))
        .bind(req.denied_amount_cents)
        .bind(req.deadline.map(date_to_sql))
        .bind(to_micros(now))
        .bind(&req.denial_id)
        .execute(&mut *conn)
        .await?;
        let task = get_task_on(conn, tenant, &existing).await?;
        record_change(conn, tenant, &task, "updated", now).await?;
        return Ok(Opened {
            task,
            created: false,
        });
    }

    let task = get_task_on(conn, tenant, &id).await?;
    let payload = events::TaskCreated {
        task_id: task.id.clone(),
        claim_id: task.claim_id.clone(),
        clinic_id: task.clinic_id.clone(),
        payer_id: task.payer_id.clone(),
        kind: kind_event_name(task.kind),
        detail: task.detail.clone(),
        priority: p.score,
        source_event_id: req.source_event_id.clone().unwrap_or_default(),
    };
    publish(conn, tenant, &task, "TaskCreated", &payload, now).await?;
    record_change(conn, tenant, &task, "created", now).await?;
    let assigned = assign(conn, backend, tenant, &task, None, AssignMode::New, now).await?;
    let task = if assigned.is_some() {
        get_task_on(conn, tenant, &id).await?
    } else {
        task
    };
    Ok(Opened {
        task,
        created: true,
    })
}

/// The TaskKind enum name of the API for a stored kind.
pub fn kind_event_name(kind: TaskKindName) -> String {
    format!("TASK_KIND_{}", kind.as_str().to_ascii_uppercase())
}

async fn publish<M: prost::Message>(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    name: &str,
    payload: &M,
    now: DateTime<Utc>,
) -> Result<()> {
    let envelope = bus::new_envelope(
        PRODUCER,
        &format!("arflow.events.v1.{name}"),
        tenant.as_str(),
        &task.id,
        task.version,
        now,
        payload,
    );
    bus::publish(conn, &envelope).await?;
    Ok(())
}

async fn publish_unassigned(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    reason: &str,
    previous: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE asg_tasks SET unassigned_notice = 1 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(&task.id)
        .execute(&mut *conn)
        .await?;
    let task = get_task_on(conn, tenant, &task.id).await?;
    let payload = events::TaskUnassigned {
        task_id: task.id.clone(),
        claim_id: task.claim_id.clone(),
        clinic_id: task.clinic_id.clone(),
        payer_id: task.payer_id.clone(),
        reason: reason.to_string(),
        previous_specialist_id: previous.unwrap_or_default().to_string(),
    };
    publish(conn, tenant, &task, "TaskUnassigned", &payload, now).await?;
    record_change(conn, tenant, &task, "unassigned", now).await
}

/// Why [`assign`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignMode<'a> {
    /// A new task: nobody fits = TaskUnassigned.
    New,
    /// A task taken from a specialist (out of office, removed, reassigned); the caller
    /// publishes the unassignment when nobody takes it.
    Moved(&'a str),
    /// The sweep retrying the unassigned queue: TaskUnassigned only if none was sent for
    /// this stay in the queue.
    Retry,
}

/// Hands an unassigned task to a specialist (sticky first, else least loaded); returns who,
/// or None when it stays unassigned. `exclude`: a specialist it must not go to.
pub async fn assign(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    task: &Task,
    exclude: Option<&str>,
    mode: AssignMode<'_>,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let exclude = exclude.unwrap_or("");
    // Sticky: the specialist who has (or last had) this claim keeps its follow-ups, so the
    // payer hears from one person who knows the history.
    let sticky: Option<String> = sqlx::query_scalar(
        "SELECT specialist_id FROM asg_tasks WHERE tenant_id = $1 AND claim_id = $2 \
         AND id <> $3 AND specialist_id IS NOT NULL AND specialist_id <> $4 \
         ORDER BY CASE WHEN closed_at IS NULL THEN 0 ELSE 1 END, updated_at DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(&task.claim_id)
    .bind(&task.id)
    .bind(exclude)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(s) = sticky
        && take_specialist(conn, backend, tenant, &s, &task.payer_id, &task.clinic_id).await?
    {
        return finish_assign(conn, tenant, task, &s, "sticky", now).await;
    }
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT s.id FROM asg_specialists s \
         WHERE s.tenant_id = $1 AND s.active = 1 AND s.out_of_office = 0 AND s.deleted = 0 \
         AND s.open_tasks < s.capacity AND s.id <> $4 \
         AND EXISTS (SELECT 1 FROM asg_specialist_payers p WHERE p.tenant_id = s.tenant_id \
             AND p.specialist_id = s.id AND p.payer_id IN ($2, '*')) \
         AND EXISTS (SELECT 1 FROM asg_specialist_clinics c WHERE c.tenant_id = s.tenant_id \
             AND c.specialist_id = s.id AND c.clinic_id IN ($3, '*')) \
         ORDER BY (s.open_tasks * 1000000) / s.capacity, s.open_tasks, s.id LIMIT 8",
    )
    .bind(tenant.as_str())
    .bind(&task.payer_id)
    .bind(&task.clinic_id)
    .bind(exclude)
    .fetch_all(&mut *conn)
    .await?;
    for s in &candidates {
        if take_specialist(conn, backend, tenant, s, &task.payer_id, &task.clinic_id).await? {
            let reason = match mode {
                AssignMode::Moved(r) => r,
                _ => "least_loaded",
            };
            return finish_assign(conn, tenant, task, s, reason, now).await;
        }
    }
    // Nobody fits at all (not merely busy in another transaction): say so, once per stay in
    // the unassigned queue. Candidates that exist but were all locked by other transactions
    // leave the task to the sweep without an event: they will likely have room for it.
    if candidates.is_empty() && !matches!(mode, AssignMode::Moved(_)) {
        let notified: i64 = sqlx::query_scalar(
            "SELECT unassigned_notice FROM asg_tasks WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(&task.id)
        .fetch_one(&mut *conn)
        .await?;
        if notified == 0 {
            publish_unassigned(conn, tenant, task, "no_specialist_fits", None, now).await?;
        }
    }
    Ok(None)
}

/// Counts one more open task on the specialist if they are available, cover the payer and
/// clinic, and have room. See the module docs for why this cannot overfill a queue.
async fn take_specialist(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    specialist_id: &str,
    payer_id: &str,
    clinic_id: &str,
) -> Result<bool> {
    if backend == Backend::Postgres {
        let locked: Option<String> = sqlx::query_scalar(
            "SELECT id FROM asg_specialists WHERE tenant_id = $1 AND id = $2 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(tenant.as_str())
        .bind(specialist_id)
        .fetch_optional(&mut *conn)
        .await?;
        if locked.is_none() {
            return Ok(false);
        }
    }
    let done = sqlx::query(
        "UPDATE asg_specialists SET open_tasks = open_tasks + 1 \
         WHERE tenant_id = $1 AND id = $2 AND open_tasks < capacity AND active = 1 \
         AND out_of_office = 0 AND deleted = 0 \
         AND EXISTS (SELECT 1 FROM asg_specialist_payers p WHERE p.tenant_id = $1 \
             AND p.specialist_id = $2 AND p.payer_id IN ($3, '*')) \
         AND EXISTS (SELECT 1 FROM asg_specialist_clinics c WHERE c.tenant_id = $1 \
             AND c.specialist_id = $2 AND c.clinic_id IN ($4, '*'))",
    )
    .bind(tenant.as_str())
    .bind(specialist_id)
    .bind(payer_id)
    .bind(clinic_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn release_specialist(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    specialist_id: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE asg_specialists SET open_tasks = open_tasks - 1 \
         WHERE tenant_id = $1 AND id = $2 AND open_tasks > 0",
    )
    .bind(tenant.as_str())
    .bind(specialist_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn finish_assign(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    specialist_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let done = sqlx::query(
        "UPDATE asg_tasks SET specialist_id = $3, status = 'assigned', version = version + 1, \
         unassigned_notice = 0, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
         AND specialist_id IS NULL \
         AND closed_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(&task.id)
    .bind(specialist_id)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        // Someone else assigned or closed it meanwhile: give the slot back.
        release_specialist(conn, tenant, specialist_id).await?;
        return Ok(None);
    }
    let fresh = get_task_on(conn, tenant, &task.id).await?;
    let payload = events::TaskAssigned {
        task_id: fresh.id.clone(),
        claim_id: fresh.claim_id.clone(),
        specialist_id: specialist_id.to_string(),
        previous_specialist_id: task.specialist_id.clone().unwrap_or_default(),
        reason: reason.to_string(),
    };
    publish(conn, tenant, &fresh, "TaskAssigned", &payload, now).await?;
    record_change(conn, tenant, &fresh, "assigned", now).await?;
    Ok(Some(specialist_id.to_string()))
}

/// The sweep: tries to assign up to `limit` waiting tasks per tenant, highest priority
/// first, one transaction per tenant (under the tenant lock, like every writer). Returns how
/// many were assigned.
pub async fn assign_waiting(db: &Db, limit: i64, now: DateTime<Utc>) -> Result<usize> {
    let tenants: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tenant_id FROM asg_tasks WHERE status = 'unassigned' \
         AND closed_at IS NULL",
    )
    .fetch_all(db.pool())
    .await?;
    let mut assigned = 0;
    for tenant in tenants {
        let tenant = TenantId::new(tenant);
        let mut tx = db.begin().await?;
        lock_tenant(&mut tx, &tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 \
             AND status = 'unassigned' AND closed_at IS NULL ORDER BY priority DESC, id LIMIT $2"
        )))
        .bind(tenant.as_str())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let task = task_from_row(row)?;
            if assign(
                &mut tx,
                db.backend(),
                &tenant,
                &task,
                None,
                AssignMode::Retry,
                now,
            )
            .await?
            .is_some()
            {
                assigned += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(assigned)
}

/// Recomputes the priority of every open task as of `today`: age and deadline proximity
/// change with the calendar, and partial payments change the balance (the projection's
/// balance wins over the one the task was opened with). Not a task change: no version bump,
/// no change-log row. Returns how many scores moved.
pub async fn rescore_open(db: &Db, today: NaiveDate) -> Result<usize> {
    let tenants: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM asg_tasks WHERE closed_at IS NULL")
            .fetch_all(db.pool())
            .await?;
    let mut moved = 0;
    for tenant in tenants {
        let tenant = TenantId::new(tenant);
        let mut tx = db.begin().await?;
        lock_tenant(&mut tx, &tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS}, (SELECT c.balance_cents FROM asg_claims c \
             WHERE c.tenant_id = asg_tasks.tenant_id AND c.claim_id = asg_tasks.claim_id) \
             AS claim_balance, (SELECT COALESCE(c.submission_date, c.first_service_date) \
             FROM asg_claims c WHERE c.tenant_id = asg_tasks.tenant_id \
             AND c.claim_id = asg_tasks.claim_id) AS age_basis \
             FROM asg_tasks WHERE tenant_id = $1 AND closed_at IS NULL"
        )))
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let task = task_from_row(row)?;
            let balance = row
                .try_get::<Option<i64>, _>("claim_balance")?
                .unwrap_or(task.balance_cents);
            let basis = match row.try_get::<Option<String>, _>("age_basis")? {
                Some(s) => Some(date_from_sql(&s)?),
                None => None,
            };
            let req = TaskRequest {
                kind: task.kind,
                balance_cents: balance,
                denial_category: task.denial_category.clone(),
                appealable: task.appealable,
                deadline: task.deadline,
                age_basis: basis,
                ..Default::default()
            };
            let p = req.priority(today);
            if i64::from(p.score) == task.priority
                && p.reasons == task.reasons
                && balance == task.balance_cents
            {
                continue;
            }
            let reasons = serde_json::to_string(&p.reasons).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "UPDATE asg_tasks SET priority = $3, priority_reasons = $4, balance_cents = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(&task.id)
            .bind(i64::from(p.score))
            .bind(&reasons)
            .bind(balance)
            .execute(&mut *tx)
            .await?;
            moved += 1;
        }
        tx.commit().await?;
    }
    Ok(moved)
}

/// Serialises the tenant's assignment writers: every transaction that changes tasks takes
/// this row lock (the tenant's change counter) FIRST. Two reasons:
/// - WatchQueues' cursor: per tenant, a higher change sequence always commits later, so a
///   reader resuming from a sequence never skips a change that committed after it read;
/// - one lock order: without it, two replicas handling events of one claim could each hold a
///   row the other needs (the claim's projection row, the counter) and deadlock.
///
/// The cost is that one tenant's task writes run one at a time across replicas; each is a
/// few short statements. On SQLite there is one writer anyway.
pub async fn lock_tenant(conn: &mut AnyConnection, tenant: &TenantId) -> Result<()> {
    sqlx::query(
        "INSERT INTO asg_change_seq (tenant_id, last_seq) VALUES ($1, 0) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = asg_change_seq.last_seq",
    )
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What [`claim_reconcile`] found for the day's denial reconcile pass of a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileClaim {
    /// This replica holds the pass: run it, then [`finish_reconcile`].
    Won,
    /// A replica finished today's pass.
    Done,
    /// Another replica holds a live lease on it.
    Busy,
}

/// Takes the day's denial reconcile pass of `tenant` for `replica` (table
/// `asg_reconcile_runs`): won when nobody holds it, when `replica` holds it already (its retry
/// after a failure), or when another replica's lease started before `stale_before` (it died);
/// otherwise done or busy. `now` and `stale_before` are real time.
pub async fn claim_reconcile(
    db: &Db,
    tenant: &TenantId,
    day: NaiveDate,
    replica: &str,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> Result<ReconcileClaim> {
    let won: Option<String> = sqlx::query_scalar(
        "INSERT INTO asg_reconcile_runs (tenant_id, day, replica, started_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, day) DO UPDATE SET replica = excluded.replica, \
         started_at = excluded.started_at \
         WHERE asg_reconcile_runs.finished_at IS NULL \
         AND (asg_reconcile_runs.replica = excluded.replica OR asg_reconcile_runs.started_at < $5) \
         RETURNING replica",
    )
    .bind(tenant.as_str())
    .bind(date_to_sql(day))
    .bind(replica)
    .bind(to_micros(now))
    .bind(to_micros(stale_before))
    .fetch_optional(db.pool())
    .await?;
    if won.is_some() {
        return Ok(ReconcileClaim::Won);
    }
    let finished: Option<i64> = sqlx::query_scalar(
        "SELECT finished_at FROM asg_reconcile_runs WHERE tenant_id = $1 AND day = $2",
    )
    .bind(tenant.as_str())
    .bind(date_to_sql(day))
    .fetch_one(db.pool())
    .await?;
    Ok(if finished.is_some() {
        ReconcileClaim::Done
    } else {
        ReconcileClaim::Busy
    })
}

/// Marks the day's pass of `tenant` finished (by `replica`, which won it) and deletes the
/// tenant's rows older than 30 days.
pub async fn finish_reconcile(
    db: &Db,
    tenant: &TenantId,
    day: NaiveDate,
    replica: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE asg_reconcile_runs SET finished_at = $4 \
         WHERE tenant_id = $1 AND day = $2 AND replica = $3",
    )
    .bind(tenant.as_str())
    .bind(date_to_sql(day))
    .bind(replica)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM asg_reconcile_runs WHERE tenant_id = $1 AND day < $2")
        .bind(tenant.as_str())
        .bind(date_to_sql(day - TimeDelta::days(30)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Closes every open task of a settled claim (paid, closed, written off); their specialists
/// get the slots back. Returns how many closed.
pub async fn close_claim_tasks(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND claim_id = $2 \
         AND closed_at IS NULL"
    )))
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let task = task_from_row(row)?;
        close_task(conn, tenant, &task, outcome, "", true, now).await?;
    }
    Ok(rows.len())
}

/// Closes the claim's open task of one kind automatically (e.g. the rejected-claim task once
/// the corrected claim is back with the payer). Returns whether one was open.
pub async fn close_claim_task_of_kind(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
    kind: TaskKindName,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND claim_id = $2 \
         AND kind = $3 AND closed_at IS NULL"
    )))
    .bind(tenant.as_str())
    .bind(claim_id)
    .bind(kind.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let task = task_from_row(&row)?;
    close_task(conn, tenant, &task, outcome, "", true, now).await?;
    Ok(true)
}

async fn close_task(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    outcome: &str,
    notes: &str,
    automatic: bool,
    now: DateTime<Utc>,
) -> Result<Task> {
    let done = sqlx::query(
        "UPDATE asg_tasks SET status = 'completed', outcome = $3, automatic_close = $4, \
         notes = CASE WHEN $5 = '' THEN notes ELSE $5 END, closed_at = $6, updated_at = $6, \
         version = version + 1 WHERE tenant_id = $1 AND id = $2 AND closed_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(&task.id)
    .bind(outcome)
    .bind(flag(automatic))
    .bind(notes)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Conflict("the task is already completed".into()));
    }
    if let Some(s) = &task.specialist_id {
        release_specialist(conn, tenant, s).await?;
        // The claim lock ends with the specialist's last open task on the claim.
        sqlx::query(
            "DELETE FROM asg_claim_locks WHERE tenant_id = $1 AND claim_id = $2 \
             AND specialist_id = $3 AND NOT EXISTS (SELECT 1 FROM asg_tasks t \
             WHERE t.tenant_id = $1 AND t.claim_id = $2 AND t.specialist_id = $3 \
             AND t.closed_at IS NULL)",
        )
        .bind(tenant.as_str())
        .bind(&task.claim_id)
        .bind(s)
        .execute(&mut *conn)
        .await?;
    }
    let fresh = get_task_on(conn, tenant, &task.id).await?;
    let payload = events::TaskCompleted {
        task_id: fresh.id.clone(),
        claim_id: fresh.claim_id.clone(),
        specialist_id: task.specialist_id.clone().unwrap_or_default(),
        outcome: format!("TASK_OUTCOME_{}", outcome.to_ascii_uppercase()),
        automatic,
    };
    publish(conn, tenant, &fresh, "TaskCompleted", &payload, now).await?;
    record_change(conn, tenant, &fresh, "completed", now).await?;
    Ok(fresh)
}

/// Completes a task with its outcome (stored lowercase, e.g. `appealed`).
pub async fn complete_task(
    db: &Db,
    tenant: &TenantId,
    task_id: &str,
    outcome: &str,
    notes: &str,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    let task = lock_task(&mut tx, db.backend(), tenant, task_id).await?;
    let done = close_task(&mut tx, tenant, &task, outcome, notes, false, now).await?;
    tx.commit().await?;
    Ok(done)
}

async fn lock_task(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    task_id: &str,
) -> Result<Task> {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND id = $2{lock}"
    )))
    .bind(tenant.as_str())
    .bind(task_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("task"))?;
    task_from_row(&row)
}

/// Notes and snooze (None = leave as is; Some(None) = clear the snooze).
pub async fn update_task(
    db: &Db,
    tenant: &TenantId,
    task_id: &str,
    notes: Option<&str>,
    snooze_until: Option<Option<DateTime<Utc>>>,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    let task = lock_task(&mut tx, db.backend(), tenant, task_id).await?;
    if task.closed_at.is_some() {
        return Err(Error::Conflict("the task is already completed".into()));
    }
    let notes = notes.map(str::to_string).unwrap_or(task.notes.clone());
    let snooze = snooze_until.unwrap_or(task.snooze_until);
    sqlx::query(
        "UPDATE asg_tasks SET notes = $3, snooze_until = $4, version = version + 1, \
         updated_at = $5 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(task_id)
    .bind(&notes)
    .bind(snooze.map(to_micros))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    let fresh = get_task_on(&mut tx, tenant, task_id).await?;
    record_change(&mut tx, tenant, &fresh, "updated", now).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// A specialist's open tasks: awake ones by priority, then (when asked) snoozed ones.
pub async fn list_tasks_of(
    db: &Db,
    tenant: &TenantId,
    specialist_id: &str,
    include_snoozed: bool,
    now: DateTime<Utc>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Task>> {
    let snooze = if include_snoozed {
        ""
    } else {
        " AND (snooze_until IS NULL OR snooze_until <= $3)"
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND specialist_id = $2 \
         AND closed_at IS NULL{snooze} \
         ORDER BY CASE WHEN snooze_until IS NOT NULL AND snooze_until > $3 THEN 1 ELSE 0 END, \
         priority DESC, created_at, id LIMIT $4 OFFSET $5"
    )))
    .bind(tenant.as_str())
    .bind(specialist_id)
    .bind(to_micros(now))
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(task_from_row).collect()
}

/// ClaimNextTask: the specialist's highest-priority awake task (their own assigned one, or an
/// unassigned one they cover when they have room), marked in progress, with its claim locked
/// to them. Concurrent pulls never take the same task or the same claim: on Postgres candidate
/// rows are locked with SKIP LOCKED (a task another pull holds is passed over) and the claim
/// lock is a row keyed by claim that only one specialist can hold.
/// How many candidates one ClaimNextTask call looks at before answering "nothing".
const CLAIM_NEXT_ATTEMPTS: usize = 16;

pub async fn claim_next(
    db: &Db,
    tenant: &TenantId,
    specialist: &Specialist,
    now: DateTime<Utc>,
) -> Result<Option<Task>> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    let lock = if db.backend() == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    // One candidate at a time (LIMIT 1 with SKIP LOCKED, the queue idiom): locking a batch
    // of candidates would hide them from every concurrent pull until this one commits.
    // Without room only the specialist's own tasks can be pulled; filtering them up front
    // keeps this pull from locking (and hiding) unassigned tasks it could not take.
    let room: Option<i64> = sqlx::query_scalar(
        "SELECT capacity - open_tasks FROM asg_specialists WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(&specialist.id)
    .fetch_optional(&mut *tx)
    .await?;
    let own_only = if room.unwrap_or(0) > 0 {
        ""
    } else {
        " AND t.status = 'assigned'"
    };
    let mut tried: Vec<String> = Vec::new();
    while tried.len() < CLAIM_NEXT_ATTEMPTS {
        let not_tried = (0..tried.len())
            .map(|i| format!("${}", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let not_tried = if tried.is_empty() {
            String::new()
        } else {
            format!(" AND t.id NOT IN ({not_tried})")
        };
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM asg_tasks t WHERE t.tenant_id = $1 AND t.closed_at IS NULL \
             AND (t.snooze_until IS NULL OR t.snooze_until <= $3) \
             AND ((t.status = 'assigned' AND t.specialist_id = $2) OR (t.status = 'unassigned' \
               AND EXISTS (SELECT 1 FROM asg_specialist_payers p WHERE p.tenant_id = $1 \
                   AND p.specialist_id = $2 AND p.payer_id IN (t.payer_id, '*')) \
               AND EXISTS (SELECT 1 FROM asg_specialist_clinics c WHERE c.tenant_id = $1 \
                   AND c.specialist_id = $2 AND c.clinic_id IN (t.clinic_id, '*')))) \
             AND NOT EXISTS (SELECT 1 FROM asg_claim_locks l WHERE l.tenant_id = $1 \
                 AND l.claim_id = t.claim_id AND l.specialist_id <> $2){not_tried}{own_only} \
             ORDER BY CASE WHEN t.specialist_id = $2 THEN 0 ELSE 1 END, t.priority DESC, \
             t.created_at, t.id LIMIT 1{lock}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(&specialist.id)
            .bind(to_micros(now));
        for id in &tried {
            query = query.bind(id.as_str());
        }
        let Some(row) = query.fetch_optional(&mut *tx).await? else {
            break;
        };
        let task = task_from_row(&row)?;
        tried.push(task.id.clone());
        // The claim lock: insert, or keep it when it is already ours; another specialist's
        // lock makes RETURNING empty (on Postgres an uncommitted one is waited for).
        let mine: Option<String> = sqlx::query_scalar(
            "INSERT INTO asg_claim_locks (tenant_id, claim_id, specialist_id, locked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, claim_id) DO UPDATE \
             SET locked_at = excluded.locked_at \
             WHERE asg_claim_locks.specialist_id = excluded.specialist_id \
             RETURNING specialist_id",
        )
        .bind(tenant.as_str())
        .bind(&task.claim_id)
        .bind(&specialist.id)
        .bind(to_micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        if mine.is_none() {
            continue;
        }
        if task.status == "unassigned"
            && !take_specialist(
                &mut tx,
                db.backend(),
                tenant,
                &specialist.id,
                &task.payer_id,
                &task.clinic_id,
            )
            .await?
        {
            // No room for more; only their own tasks can be pulled. Undo the lock.
            sqlx::query(
                "DELETE FROM asg_claim_locks WHERE tenant_id = $1 AND claim_id = $2 \
                     AND specialist_id = $3 AND NOT EXISTS (SELECT 1 FROM asg_tasks t \
                     WHERE t.tenant_id = $1 AND t.claim_id = $2 AND t.specialist_id = $3 \
                     AND t.closed_at IS NULL)",
            )
            .bind(tenant.as_str())
            .bind(&task.claim_id)
            .bind(&specialist.id)
            .execute(&mut *tx)
            .await?;
            continue;
        }
        let done = sqlx::query(
            "UPDATE asg_tasks SET status = 'in_progress', specialist_id = $3, \
             unassigned_notice = 0, version = version + 1, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
             AND closed_at IS NULL AND (specialist_id = $3 OR specialist_id IS NULL)",
        )
        .bind(tenant.as_str())
        .bind(&task.id)
        .bind(&specialist.id)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        let fresh = get_task_on(&mut tx, tenant, &task.id).await?;
        if task.specialist_id.is_none() {
            let payload = events::TaskAssigned {
                task_id: fresh.id.clone(),
                claim_id: fresh.claim_id.clone(),
                specialist_id: specialist.id.clone(),
                previous_specialist_id: String::new(),
                reason: "pulled".into(),
            };
            publish(&mut tx, tenant, &fresh, "TaskAssigned", &payload, now).await?;
        }
        record_change(&mut tx, tenant, &fresh, "in_progress", now).await?;
        tx.commit().await?;
        return Ok(Some(fresh));
    }
    tx.commit().await?;
    Ok(None)
}

/// ReassignTask: to `to` (checked against availability, coverage and capacity unless
/// `force`), or back through the assignment rules when `to` is None.
pub async fn reassign(
    db: &Db,
    tenant: &TenantId,
    task_id: &str,
    to: Option<&str>,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    let backend = db.backend();
    let task = lock_task(&mut tx, backend, tenant, task_id).await?;
    if task.closed_at.is_some() {
        return Err(Error::Conflict("the task is already completed".into()));
    }
    if let Some(to) = to {
        let target = get_specialist_on(&mut tx, tenant, to).await?;
        if task.specialist_id.as_deref() == Some(to) {
            tx.commit().await?;
            return Ok(task);
        }
        if force {
            if !target.available() {
                return Err(Error::Conflict(
                    "the specialist is inactive or out of office".into(),
                ));
            }
            lock_specialist(&mut tx, backend, tenant, to).await?;
            sqlx::query(
                "UPDATE asg_specialists SET open_tasks = open_tasks + 1 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(to)
            .execute(&mut *tx)
            .await?;
        } else if !take_specialist(
            &mut tx,
            backend,
            tenant,
            to,
            &task.payer_id,
            &task.clinic_id,
        )
        .await?
        {
            return Err(Error::Conflict(
                "the specialist is unavailable, at capacity, or does not cover the claim's payer and clinic".into(),
            ));
        }
        release_from(&mut tx, tenant, &task, now).await?;
        let moved = get_task_on(&mut tx, tenant, task_id).await?;
        let previous = Task {
            specialist_id: task.specialist_id.clone(),
            ..moved.clone()
        };
        finish_assign(&mut tx, tenant, &previous, to, "reassigned", now).await?;
    } else {
        release_from(&mut tx, tenant, &task, now).await?;
        let moved = get_task_on(&mut tx, tenant, task_id).await?;
        let exclude = task.specialist_id.clone();
        let got = assign(
            &mut tx,
            backend,
            tenant,
            &moved,
            exclude.as_deref(),
            AssignMode::Moved("reassigned"),
            now,
        )
        .await?;
        if got.is_none() {
            publish_unassigned(
                &mut tx,
                tenant,
                &moved,
                "reassigned",
                exclude.as_deref(),
                now,
            )
            .await?;
        }
    }
    let fresh = get_task_on(&mut tx, tenant, task_id).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// Takes a task from its specialist (slot and claim lock released) into the unassigned state.
async fn release_from(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    now: DateTime<Utc>,
) -> Result<()> {
    unassign(conn, tenant, &task.id, now).await?;
    if let Some(s) = &task.specialist_id {
        release_specialist(conn, tenant, s).await?;
        sqlx::query(
            "DELETE FROM asg_claim_locks WHERE tenant_id = $1 AND claim_id = $2 \
             AND specialist_id = $3",
        )
        .bind(tenant.as_str())
        .bind(&task.claim_id)
        .bind(s)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every open task of the tenant (GetQueueStats aggregates them in memory).
pub async fn open_tasks(db: &Db, tenant: &TenantId) -> Result<Vec<(Task, Option<NaiveDate>)>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS}, (SELECT COALESCE(c.submission_date, c.first_service_date) \
         FROM asg_claims c WHERE c.tenant_id = asg_tasks.tenant_id \
         AND c.claim_id = asg_tasks.claim_id) AS age_basis \
         FROM asg_tasks WHERE tenant_id = $1 AND closed_at IS NULL"
    )))
    .bind(tenant.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let basis = match row.try_get::<Option<String>, _>("age_basis")? {
                Some(s) => Some(date_from_sql(&s)?),
                None => None,
            };
            Ok((task_from_row(row)?, basis))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Change log (WatchQueues)

/// Appends a change with the tenant's next sequence. The caller holds the tenant lock
/// ([`lock_tenant`]), so per tenant sequences commit in order (see the migration).
async fn record_change(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    change: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO asg_change_seq (tenant_id, last_seq) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = asg_change_seq.last_seq + 1 \
         RETURNING last_seq",
    )
    .bind(tenant.as_str())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO asg_task_changes (tenant_id, seq, task_id, change, specialist_id, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(seq)
    .bind(&task.id)
    .bind(change)
    .bind(task.specialist_id.as_deref())
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub task_id: String,
    pub change: String,
    pub specialist_id: Option<String>,
    pub changed_at: DateTime<Utc>,
}

/// Changes after `after_seq`, oldest first.
pub async fn changes_after(
    db: &Db,
    tenant: &TenantId,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Change>> {
    let rows = sqlx::query(
        "SELECT seq, task_id, change, specialist_id, changed_at FROM asg_task_changes \
         WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(after_seq)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Change {
                seq: r.try_get("seq")?,
                task_id: r.try_get("task_id")?,
                change: r.try_get("change")?,
                specialist_id: r.try_get("specialist_id")?,
                changed_at: from_micros(r.try_get("changed_at")?),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Follow-up log

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowUp {
    pub id: String,
    pub claim_id: String,
    pub task_id: Option<String>,
    pub specialist_id: Option<String>,
    /// phone | portal | edi_276_277 | fax | mail
    pub channel: String,
    pub payer_reference: String,
    pub representative: String,
    /// in_process | paid | denied | more_info_needed | no_record
    pub answer: String,
    pub paid_date: Option<NaiveDate>,
    pub check_number: String,
    pub denial_reason: String,
    pub notes: String,
    pub next_follow_up_date: Option<NaiveDate>,
    pub contacted_at: DateTime<Utc>,
}

/// Records a payer contact. A `no_record` answer opens a resubmission task (returned); a next
/// follow-up date publishes FollowUpScheduled for the scheduler to keep as a timer.
pub async fn log_follow_up(
    db: &Db,
    tenant: &TenantId,
    f: &FollowUp,
    now: DateTime<Utc>,
) -> Result<(FollowUp, Option<Task>)> {
    let mut tx = db.begin().await?;
    lock_tenant(&mut tx, tenant).await?;
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO asg_follow_ups (id, tenant_id, claim_id, task_id, specialist_id, channel, \
         payer_reference, representative, answer, paid_date, check_number, denial_reason, notes, \
         next_follow_up_date, contacted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(&f.claim_id)
    .bind(f.task_id.as_deref())
    .bind(f.specialist_id.as_deref())
    .bind(&f.channel)
    .bind(&f.payer_reference)
    .bind(&f.representative)
    .bind(&f.answer)
    .bind(f.paid_date.map(date_to_sql))
    .bind(&f.check_number)
    .bind(&f.denial_reason)
    .bind(&f.notes)
    .bind(f.next_follow_up_date.map(date_to_sql))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;

    if let Some(due) = f.next_follow_up_date {
        let payload = events::FollowUpScheduled {
            follow_up_id: id.clone(),
            claim_id: f.claim_id.clone(),
            due_date: Some(arflow_api::common::v1::Date {
                year: chrono::Datelike::year(&due),
                month: chrono::Datelike::month(&due) as i32,
                day: chrono::Datelike::day(&due) as i32,
            }),
            specialist_id: f.specialist_id.clone().unwrap_or_default(),
            task_id: f.task_id.clone().unwrap_or_default(),
        };
        let envelope = bus::new_envelope(
            PRODUCER,
            "arflow.events.v1.FollowUpScheduled",
            tenant.as_str(),
            &id,
            1,
            now,
            &payload,
        );
        bus::publish(&mut tx, &envelope).await?;
    }

    let mut raised = None;
    if f.answer == "no_record" {
        let view = claim_view(&mut tx, tenant, &f.claim_id).await?;
        let from_task = match &f.task_id {
            Some(t) => Some(get_task_on(&mut tx, tenant, t).await?),
            None => None,
        };
        let (clinic_id, payer_id, balance) = match (&view, &from_task) {
            (Some(v), _) => (v.clinic_id.clone(), v.payer_id.clone(), v.balance_cents),
            (None, Some(t)) => (t.clinic_id.clone(), t.payer_id.clone(), t.balance_cents),
            (None, None) => (String::new(), String::new(), 0),
        };
        let req = TaskRequest {
            claim_id: f.claim_id.clone(),
            clinic_id,
            payer_id,
            kind: TaskKindName::Resubmission,
            detail: "payer_has_no_record".into(),
            balance_cents: balance,
            age_basis: view
                .as_ref()
                .and_then(|v| v.submission_date.or(v.first_service_date)),
            ..Default::default()
        };
        raised = Some(
            open_task(&mut tx, db.backend(), tenant, &req, now)
                .await?
                .task,
        );
    }
    tx.commit().await?;
    let mut stored = f.clone();
    stored.id = id;
    stored.contacted_at = now;
    Ok((stored, raised))
}

/// A claim's follow-up log, oldest first.
pub async fn list_follow_ups(db: &Db, tenant: &TenantId, claim_id: &str) -> Result<Vec<FollowUp>> {
    let rows = sqlx::query(
        "SELECT id, claim_id, task_id, specialist_id, channel, payer_reference, representative, \
         answer, paid_date, check_number, denial_reason, notes, next_follow_up_date, contacted_at \
         FROM asg_follow_ups WHERE tenant_id = $1 AND claim_id = $2 ORDER BY contacted_at, id",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let date = |col: &str| -> Result<Option<NaiveDate>> {
                Ok(match r.try_get::<Option<String>, _>(col)? {
                    Some(s) => Some(date_from_sql(&s)?),
                    None => None,
                })
            };
            Ok(FollowUp {
                id: r.try_get("id")?,
                claim_id: r.try_get("claim_id")?,
                task_id: r.try_get("task_id")?,
                specialist_id: r.try_get("specialist_id")?,
                channel: r.try_get("channel")?,
                payer_reference: r.try_get("payer_reference")?,
                representative: r.try_get("representative")?,
                answer: r.try_get("answer")?,
                paid_date: date("paid_date")?,
                check_number: r.try_get("check_number")?,
                denial_reason: r.try_get("denial_reason")?,
                notes: r.try_get("notes")?,
                next_follow_up_date: date("next_follow_up_date")?,
                contacted_at: from_micros(r.try_get("contacted_at")?),
            })
        })
        .collect()
}
