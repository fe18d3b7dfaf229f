//! Tasks (`asg_tasks`): one open task per claim and kind, opened or refreshed by events,
//! closed by specialists or by the claim settling, rescored daily, listed per specialist.
use arflow_domain::DenialCategory;

use super::*;
use crate::error::Context as _;

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

pub(super) const TASK_COLUMNS: &str = "id, claim_id, clinic_id, payer_id, kind, status, detail, \
     specialist_id, priority, priority_reasons, balance_cents, denial_category, \
     denial_resolution, denial_owner, appealable, denied_amount_cents, denial_id, deadline, \
     notes, snooze_until, due_at, outcome, version, created_at, updated_at, closed_at";

pub(super) fn task_from_row(row: &AnyRow) -> Result<Task> {
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
    let mut conn = db.pool().acquire().await.context("get task")?;
    get_task_on(&mut conn, tenant, id).await
}

pub async fn get_task_on(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<Task> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .context("get task")?
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
    /// A denial task's request, its detail and category the stable name of `category`
    /// (`authorization`). None, a category this build does not know: no category, and the
    /// kind's name as detail.
    pub fn denial(category: Option<DenialCategory>) -> TaskRequest {
        let name = category.map_or("", DenialCategory::as_str);
        TaskRequest {
            kind: TaskKindName::Denial,
            detail: if name.is_empty() {
                TaskKindName::Denial.as_str()
            } else {
                name
            }
            .to_string(),
            denial_category: name.to_string(),
            ..TaskRequest::default()
        }
    }

    pub fn priority(&self, today: NaiveDate) -> priority::Priority {
        let is_denial = self.kind == TaskKindName::Denial;
        priority::score(&PriorityInput {
            kind: self.kind,
            balance_cents: self.balance_cents,
            age_days: self.age_basis.map(|d| (today - d).num_days()),
            days_to_deadline: self.deadline.map(|d| (d - today).num_days()),
            appealable: is_denial.then_some(self.appealable),
            category: is_denial
                .then(|| DenialCategory::parse(&self.denial_category))
                .flatten(),
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
    .await
    .context("open task")?;

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
        .await
        .context("open task")?;
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
        .await
.context("open task")?;
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
        kind: crate::grpc::task_kind_name(task.kind).to_string(),
        detail: task.detail.clone(),
        priority: p.score,
        source_event_id: req.source_event_id.clone().unwrap_or_default(),
    };
    publish(conn, tenant, &task, &payload, now).await?;
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

/// Recomputes the priority of every open task as of `today`: age and deadline proximity
/// change with the calendar, and partial payments change the balance (the projection's
/// balance wins over the one the task was opened with). Not a task change: no version bump,
/// no change-log row. Returns how many scores moved.
pub async fn rescore_open(db: &Db, today: NaiveDate) -> Result<usize> {
    let tenants: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM asg_tasks WHERE closed_at IS NULL")
            .fetch_all(db.pool())
            .await
            .context("rescore open tasks")?;
    let mut moved = 0;
    for tenant in tenants {
        let tenant = TenantId::new(tenant);
        let mut tx = db.begin().await.context("rescore open tasks")?;
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
        .await
        .context("rescore open tasks")?;
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
            .await
            .context("rescore open tasks")?;
            moved += 1;
        }
        tx.commit().await.context("rescore open tasks")?;
    }
    Ok(moved)
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
    .await
    .context("close claim tasks")?;
    for row in &rows {
        let task = task_from_row(row)?;
        close_task(conn, tenant, &task, outcome, "", true, now).await?;
    }
    Ok(rows.len())
}

/// Moves the open tasks of a claim closed by its frequency-7 replacement onto the replacement
/// (issue 10: the replacement takes over the original's open balance and work). Each task is
/// closed on the original (outcome `corrected_and_resubmitted`, automatic) and opened again on
/// the replacement with the same kind, detail, deadline and denial facts, priced with the
/// replacement's balance and aged from the original (the work did not start over) through the
/// ordinary path (priority, assignment, TaskCreated). Returns how many moved.
pub async fn move_claim_tasks(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    original_id: &str,
    replacement_id: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 AND claim_id = $2 \
         AND closed_at IS NULL ORDER BY created_at"
    )))
    .bind(tenant.as_str())
    .bind(original_id)
    .fetch_all(&mut *conn)
    .await
    .context("move claim tasks")?;
    if rows.is_empty() {
        return Ok(0);
    }
    let original = claim_view(conn, tenant, original_id).await?;
    let replacement = claim_view(conn, tenant, replacement_id).await?;
    let age_basis = original
        .as_ref()
        .and_then(|v| v.age_basis())
        .or_else(|| replacement.as_ref().and_then(|v| v.age_basis()));
    for row in &rows {
        let task = task_from_row(row)?;
        close_task(
            conn,
            tenant,
            &task,
            "corrected_and_resubmitted",
            "",
            true,
            now,
        )
        .await?;
        let req = TaskRequest {
            claim_id: replacement_id.to_string(),
            clinic_id: replacement
                .as_ref()
                .map_or_else(|| task.clinic_id.clone(), |v| v.clinic_id.clone()),
            payer_id: replacement
                .as_ref()
                .map_or_else(|| task.payer_id.clone(), |v| v.payer_id.clone()),
            kind: task.kind,
            detail: task.detail.clone(),
            balance_cents: replacement
                .as_ref()
                .map_or(task.balance_cents, |v| v.balance_cents),
            denial_category: task.denial_category.clone(),
            denial_resolution: task.denial_resolution.clone(),
            denial_owner: task.denial_owner.clone(),
            appealable: task.appealable,
            denied_amount_cents: task.denied_amount_cents,
            denial_id: task.denial_id.clone(),
            deadline: task.deadline,
            age_basis,
            source_event_id: None,
        };
        open_task(conn, backend, tenant, &req, now).await?;
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
    .await
    .context("close claim task")?;
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
    .await
    .context("close task")?;
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
        .await
        .context("close task")?;
    }
    let fresh = get_task_on(conn, tenant, &task.id).await?;
    let payload = events::TaskCompleted {
        task_id: fresh.id.clone(),
        claim_id: fresh.claim_id.clone(),
        specialist_id: task.specialist_id.clone().unwrap_or_default(),
        outcome: crate::grpc::outcome_name(outcome).to_string(),
        automatic,
    };
    publish(conn, tenant, &fresh, &payload, now).await?;
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
    let mut tx = db.begin().await.context("complete task")?;
    lock_tenant(&mut tx, tenant).await?;
    let task = lock_task(&mut tx, db.backend(), tenant, task_id).await?;
    let done = close_task(&mut tx, tenant, &task, outcome, notes, false, now).await?;
    tx.commit().await.context("complete task")?;
    Ok(done)
}

pub(super) async fn lock_task(
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
    .await
    .context("lock task")?
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
    let mut tx = db.begin().await.context("update task")?;
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
    .await
    .context("update task")?;
    let fresh = get_task_on(&mut tx, tenant, task_id).await?;
    record_change(&mut tx, tenant, &fresh, "updated", now).await?;
    tx.commit().await.context("update task")?;
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
    .await
    .context("list specialist tasks")?;
    rows.iter().map(task_from_row).collect()
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
    .await
    .context("list open tasks")?;
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

/// Has a denial task (open or closed) of the claim taken up the denial `denial_id` (dated
/// `denial_date`)? One that records it, or one made before tasks recorded their denial (empty
/// `denial_id`) on or after its date. The reconciler's check ([`crate::reconcile`]).
pub async fn covers_denial(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
    denial_id: &str,
    denial_date: Option<NaiveDate>,
) -> Result<bool> {
    let since = denial_date
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(i64::MIN, |t| to_micros(t.and_utc()));
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM asg_tasks WHERE tenant_id = $1 AND claim_id = $2 AND kind = $3 \
         AND (denial_id = $4 OR (denial_id = '' AND created_at >= $5)) LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .bind(TaskKindName::Denial.as_str())
    .bind(denial_id)
    .bind(since)
    .fetch_optional(&mut *conn)
    .await
    .context("check denial task")?;
    Ok(found.is_some())
}
