//! Cron runs (`scheduler_cron_runs`, one row per job, tenant and scheduled instant) and what
//! the cron jobs read: the tenants the scheduler knows and the aging buckets of its claim
//! projection.
use std::collections::HashMap;

use arflow_domain::followup::AgingBasis;
use arflow_platform::db::{date_to_sql, from_micros, to_micros};
use arflow_platform::{Db, Tx};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, Row as _};

use super::TenantId;
use super::claims::open_status_clause;
use crate::error::{Context as _, Error};

/// Tenants the scheduler knows: those with claims in its projection or a policy row.
///
/// The cron loop asks every tick, so this must not read every claim: the recursive query
/// walks the primary key from one tenant to the next (a "loose index scan", one index probe
/// per tenant) on both backends, where `SELECT DISTINCT` would scan the whole projection.
pub async fn known_tenants(db: &Db) -> Result<Vec<TenantId>, Error> {
    sqlx::query(
        "WITH RECURSIVE t(tenant_id) AS ( \
           SELECT MIN(tenant_id) FROM scheduler_claims \
           UNION ALL \
           SELECT (SELECT MIN(c.tenant_id) FROM scheduler_claims c WHERE c.tenant_id > t.tenant_id) \
           FROM t WHERE t.tenant_id IS NOT NULL) \
         SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL \
         UNION SELECT tenant_id FROM scheduler_tenant_policies ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|r| Ok(TenantId::new(r.try_get::<String, _>(0)?)))
            .collect()
    })
    .context("list known tenants")
}

/// The latest scheduled instant of each (job, tenant) that has run.
pub async fn last_runs(db: &Db) -> Result<HashMap<(String, String), i64>, Error> {
    sqlx::query(
        "SELECT job, tenant_id, MAX(scheduled_at) AS last FROM scheduler_cron_runs \
         GROUP BY job, tenant_id",
    )
    .fetch_all(db.pool())
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|r| {
                Ok((
                    (r.try_get("job")?, r.try_get("tenant_id")?),
                    r.try_get::<i64, _>("last")?,
                ))
            })
            .collect()
    })
    .context("read last cron runs")
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
) -> Result<Option<String>, Error> {
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
    .await
    .context("claim cron run")?
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
) -> Result<Option<(Tx, String)>, Error> {
    let mut tx = db.begin().await.context("begin cron run")?;
    match claim_run(&mut tx, job, tenant, scheduled_at, started_at, replica).await? {
        Some(run_id) => Ok(Some((tx, run_id))),
        None => {
            tx.rollback().await.context("roll back cron run")?;
            Ok(None)
        }
    }
}

pub async fn finish_run(
    conn: &mut AnyConnection,
    run_id: &str,
    summary: &str,
    finished_at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE scheduler_cron_runs SET state = 'succeeded', summary = $2, finished_at = $3 \
         WHERE id = $1",
    )
    .bind(run_id)
    .bind(summary)
    .bind(to_micros(finished_at))
    .execute(&mut *conn)
    .await
    .context("finish cron run")?;
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
) -> Result<Vec<CronRunRow>, Error> {
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
    q.fetch_all(db.pool())
        .await
        .and_then(|rows| {
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
        })
        .context("list cron runs")
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
) -> Result<Vec<(String, i64, i64)>, Error> {
    // A fixed expression chosen here, never from input. On the submission basis, the original
    // bill date (migration 0015): a resubmission does not make a claim younger.
    let col = match basis {
        AgingBasis::Submission => "COALESCE(first_submission_date, submission_date)",
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
    let (open, closed) = open_status_clause(6);
    let sql = format!(
        "SELECT CASE WHEN {col} >= $2 THEN '0-30' WHEN {col} >= $3 THEN '31-60' \
         WHEN {col} >= $4 THEN '61-90' WHEN {col} >= $5 THEN '91-120' ELSE '120+' END AS bucket, \
         CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(balance_cents), 0) AS BIGINT) AS cents \
         FROM scheduler_claims WHERE tenant_id = $1 AND balance_cents > 0 AND {col} IS NOT NULL\
         {open} GROUP BY 1"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(bound(30))
        .bind(bound(60))
        .bind(bound(90))
        .bind(bound(120));
    for name in closed {
        query = query.bind(name);
    }
    let found: HashMap<String, (i64, i64)> = query
        .fetch_all(&mut *conn)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String, _>("bucket")?,
                        (r.try_get::<i64, _>("n")?, r.try_get::<i64, _>("cents")?),
                    ))
                })
                .collect()
        })
        .context("count open claims by age")?;
    Ok(AGING_BUCKETS
        .iter()
        .map(|b| {
            let (n, cents) = found.get(*b).copied().unwrap_or((0, 0));
            (b.to_string(), n, cents)
        })
        .collect())
}
