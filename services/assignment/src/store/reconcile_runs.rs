//! One denial reconcile pass per (tenant, day) across replicas (`asg_reconcile_runs`).
use super::*;
use crate::error::Context as _;

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
    .await
    .context("take reconcile pass")?;
    if won.is_some() {
        return Ok(ReconcileClaim::Won);
    }
    let finished: Option<i64> = sqlx::query_scalar(
        "SELECT finished_at FROM asg_reconcile_runs WHERE tenant_id = $1 AND day = $2",
    )
    .bind(tenant.as_str())
    .bind(date_to_sql(day))
    .fetch_one(db.pool())
    .await
    .context("take reconcile pass")?;
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
    let mut tx = db.begin().await.context("finish reconcile pass")?;
    sqlx::query(
        "UPDATE asg_reconcile_runs SET finished_at = $4 \
         WHERE tenant_id = $1 AND day = $2 AND replica = $3",
    )
    .bind(tenant.as_str())
    .bind(date_to_sql(day))
    .bind(replica)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await
    .context("finish reconcile pass")?;
    sqlx::query("DELETE FROM asg_reconcile_runs WHERE tenant_id = $1 AND day < $2")
        .bind(tenant.as_str())
        .bind(date_to_sql(day - TimeDelta::days(30)))
        .execute(&mut *tx)
        .await
        .context("finish reconcile pass")?;
    tx.commit().await.context("finish reconcile pass")?;
    Ok(())
}
