//! Specialists and their coverage (`asg_specialists`, `asg_specialist_payers`,
//! `asg_specialist_clinics`); a specialist who stops being available hands their open tasks
//! on.
use super::*;
use crate::error::Context as _;

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
    let mut tx = db.begin().await.context("create specialist")?;
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
        return Err(key_conflict("create specialist", e));
    }
    write_coverage(&mut tx, tenant, &id, fields).await?;
    tx.commit().await.context("create specialist")?;
    get_specialist(db, tenant, &id).await
}

/// A unique violation on the key id is the caller's conflict; anything else failed `context`.
fn key_conflict(context: &'static str, e: sqlx::Error) -> Error {
    if arflow_platform::db::is_unique_violation(&e) {
        Error::Conflict("another specialist already uses this key_id".into())
    } else {
        Error::Db { context, source: e }
    }
}

fn hours_json(h: &WorkingHours) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "{}".into())
}

pub(super) async fn write_coverage(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    fields: &SpecialistFields,
) -> Result<()> {
    sqlx::query("DELETE FROM asg_specialist_payers WHERE tenant_id = $1 AND specialist_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("write coverage")?;
    sqlx::query("DELETE FROM asg_specialist_clinics WHERE tenant_id = $1 AND specialist_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("write coverage")?;
    for payer in &fields.payer_ids {
        sqlx::query(
            "INSERT INTO asg_specialist_payers (tenant_id, specialist_id, payer_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(payer)
        .execute(&mut *conn)
        .await
        .context("write coverage")?;
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
        .await
        .context("write coverage")?;
    }
    Ok(())
}

const SPECIALIST_COLUMNS: &str = "id, display_name, key_id, capacity, open_tasks, working_hours, \
     active, out_of_office, created_at, updated_at";

pub(super) async fn specialist_from_row(
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
    .await
    .context("read specialist coverage")?;
    let clinic_ids: Vec<String> = sqlx::query_scalar(
        "SELECT clinic_id FROM asg_specialist_clinics WHERE tenant_id = $1 \
         AND specialist_id = $2 ORDER BY clinic_id",
    )
    .bind(tenant.as_str())
    .bind(&id)
    .fetch_all(&mut *conn)
    .await
    .context("read specialist coverage")?;
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
    let mut conn = db.pool().acquire().await.context("get specialist")?;
    get_specialist_on(&mut conn, tenant, id).await
}

pub(super) async fn get_specialist_on(
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
    .await
    .context("get specialist")?
    .ok_or(Error::NotFound("specialist"))?;
    specialist_from_row(conn, tenant, &row).await
}

/// The specialist an API key calls as (set by a supervisor with `key_id`).
pub async fn specialist_by_key(db: &Db, tenant: &TenantId, key_id: &str) -> Result<Specialist> {
    let mut conn = db
        .pool()
        .acquire()
        .await
        .context("find specialist by key")?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPECIALIST_COLUMNS} FROM asg_specialists \
         WHERE tenant_id = $1 AND key_id = $2 AND deleted = 0"
    )))
    .bind(tenant.as_str())
    .bind(key_id)
    .fetch_optional(&mut *conn)
    .await
    .context("find specialist by key")?
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
    let mut conn = db.pool().acquire().await.context("list specialists")?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPECIALIST_COLUMNS} FROM asg_specialists \
         WHERE tenant_id = $1 AND deleted = 0 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant.as_str())
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .context("list specialists")?;
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
    let mut tx = db.begin().await.context("update specialist")?;
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
    .map_err(|e| key_conflict("update specialist", e))?;
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
    tx.commit().await.context("update specialist")?;
    Ok((get_specialist(db, tenant, id).await?, moved))
}

/// Removes a specialist (kept as a row for history); their open tasks move to others.
pub async fn delete_specialist(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = db.begin().await.context("delete specialist")?;
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
    .await
    .context("delete specialist")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("specialist"));
    }
    let moved =
        move_open_tasks(&mut tx, db.backend(), tenant, id, "specialist_removed", now).await?;
    tx.commit().await.context("delete specialist")?;
    Ok(moved)
}

/// Waits for the specialist's row lock (Postgres): supervisor changes are rare and must not
/// race an assignment that still counts the old capacity.
pub(super) async fn lock_specialist(
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
            .await
            .context("lock specialist")?;
    }
    Ok(())
}

/// Takes every open task from `specialist_id` and hands each to someone else by the usual
/// rules (or the unassigned queue). Claim locks the specialist held are released.
pub(super) async fn move_open_tasks(
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
    .await
    .context("move open tasks")?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
    sqlx::query("DELETE FROM asg_claim_locks WHERE tenant_id = $1 AND specialist_id = $2")
        .bind(tenant.as_str())
        .bind(specialist_id)
        .execute(&mut *conn)
        .await
        .context("move open tasks")?;
    for id in &ids {
        unassign(conn, tenant, id, now).await?;
        sqlx::query(
            "UPDATE asg_specialists SET open_tasks = open_tasks - 1 \
             WHERE tenant_id = $1 AND id = $2 AND open_tasks > 0",
        )
        .bind(tenant.as_str())
        .bind(specialist_id)
        .execute(&mut *conn)
        .await
        .context("move open tasks")?;
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
