//! Who gets a task (`asg_specialists.open_tasks`, `asg_claim_locks`): assignment (sticky,
//! then least loaded), the sweep of the unassigned queue, ClaimNextTask and ReassignTask. See
//! the module docs of [`crate::store`] for why capacity holds under concurrency.
use super::*;
use crate::error::Context as _;

pub(super) async fn unassign(
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
    .await
    .context("unassign")?;
    Ok(())
}

pub(super) async fn publish_unassigned(
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
        .await
        .context("publish unassigned")?;
    let task = get_task_on(conn, tenant, &task.id).await?;
    let payload = events::TaskUnassigned {
        task_id: task.id.clone(),
        claim_id: task.claim_id.clone(),
        clinic_id: task.clinic_id.clone(),
        payer_id: task.payer_id.clone(),
        reason: reason.to_string(),
        previous_specialist_id: previous.unwrap_or_default().to_string(),
    };
    publish(conn, tenant, &task, &payload, now).await?;
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
    .await
    .context("assign task")?;
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
    .await
    .context("assign task")?;
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
        .await
        .context("assign task")?;
        if notified == 0 {
            publish_unassigned(conn, tenant, task, "no_specialist_fits", None, now).await?;
        }
    }
    Ok(None)
}

/// Counts one more open task on the specialist if they are available, cover the payer and
/// clinic, and have room. See the module docs for why this cannot overfill a queue.
pub(super) async fn take_specialist(
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
        .await
        .context("take specialist")?;
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
    .await
    .context("take specialist")?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn release_specialist(
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
    .await
    .context("release specialist")?;
    Ok(())
}

pub(super) async fn finish_assign(
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
    .await
    .context("finish assign")?;
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
    publish(conn, tenant, &fresh, &payload, now).await?;
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
    .await
    .context("assign waiting")?;
    let mut assigned = 0;
    for tenant in tenants {
        let tenant = TenantId::new(tenant);
        let mut tx = db.begin().await.context("assign waiting")?;
        lock_tenant(&mut tx, &tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM asg_tasks WHERE tenant_id = $1 \
             AND status = 'unassigned' AND closed_at IS NULL ORDER BY priority DESC, id LIMIT $2"
        )))
        .bind(tenant.as_str())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context("assign waiting")?;
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
        tx.commit().await.context("assign waiting")?;
    }
    Ok(assigned)
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
    let mut tx = db.begin().await.context("claim next task")?;
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
    .await
    .context("claim next task")?;
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
        let Some(row) = query
            .fetch_optional(&mut *tx)
            .await
            .context("claim next task")?
        else {
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
        .await
        .context("claim next task")?;
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
            .await
            .context("claim next task")?;
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
        .await
.context("claim next task")?;
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
            publish(&mut tx, tenant, &fresh, &payload, now).await?;
        }
        record_change(&mut tx, tenant, &fresh, "in_progress", now).await?;
        tx.commit().await.context("claim next task")?;
        return Ok(Some(fresh));
    }
    tx.commit().await.context("claim next task")?;
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
    let mut tx = db.begin().await.context("reassign")?;
    lock_tenant(&mut tx, tenant).await?;
    let backend = db.backend();
    let task = lock_task(&mut tx, backend, tenant, task_id).await?;
    if task.closed_at.is_some() {
        return Err(Error::Conflict("the task is already completed".into()));
    }
    if let Some(to) = to {
        let target = get_specialist_on(&mut tx, tenant, to).await?;
        if task.specialist_id.as_deref() == Some(to) {
            tx.commit().await.context("reassign")?;
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
            .await
            .context("reassign")?;
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
    tx.commit().await.context("reassign")?;
    Ok(fresh)
}

/// Takes a task from its specialist (slot and claim lock released) into the unassigned state.
pub(super) async fn release_from(
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
        .await
        .context("release from")?;
    }
    Ok(())
}
