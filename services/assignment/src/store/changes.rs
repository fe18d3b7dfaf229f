//! The change log WatchQueues streams (`asg_change_seq`, `asg_task_changes`).
use super::*;
use crate::error::Context as _;

/// Appends a change with the tenant's next sequence. The caller holds the tenant lock
/// ([`lock_tenant`]), so per tenant sequences commit in order (see the migration).
pub(super) async fn record_change(
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
    .await
    .context("record change")?;
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
    .await
    .context("record change")?;
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
    .await
    .context("read task changes")?;
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
