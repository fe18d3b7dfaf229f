//! What a tenant configures: its aging policy (`scheduler_tenant_policies`), each payer's
//! follow-up cadence (`scheduler_payer_cadence`) and business-day overrides
//! (`scheduler_calendar_days`). A tenant without rows gets the configured defaults.
use arflow_domain::calendar::Calendar;
use arflow_domain::followup::{AgingBasis, AgingPolicy, Cadence, parse_time_zone};
use arflow_platform::Db;
use arflow_platform::db::{date_from_sql, date_to_sql, to_micros};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, Row as _};

use super::TenantId;
use crate::error::{Context as _, Error};
use crate::settings::Settings;

/// The tenant's aging policy (configured defaults when it has no row). A row that no longer
/// parses (a time zone removed from the database) falls back to the defaults, logged.
pub async fn load_policy(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    settings: &Settings,
) -> Result<AgingPolicy, Error> {
    let row = sqlx::query(
        "SELECT aging_basis, aging_thresholds, time_zone FROM scheduler_tenant_policies \
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await
    .context("read tenant policy")?;
    let default = settings.default_policy()?;
    let Some(row) = row else {
        return Ok(default);
    };
    let text = |name: &str| row.try_get::<String, _>(name).context("read tenant policy");
    let basis = AgingBasis::parse(&text("aging_basis")?);
    let thresholds: Option<Vec<u32>> = serde_json::from_str(&text("aging_thresholds")?).ok();
    let tz = parse_time_zone(&text("time_zone")?).ok();
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
) -> Result<(), Error> {
    let thresholds = serde_json::to_string(&policy.thresholds_days)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
        .context("encode aging thresholds")?;
    let mut tx = db.begin().await.context("begin set policy")?;
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
    .await
    .context("set tenant policy")?;
    tx.commit().await.context("commit set policy")
}

/// The payer's cadence for the tenant: the payer's row, else the tenant's `*` row, else the
/// configured defaults. A row's timely-filing warning stages are its JSON
/// `timely_filing_warning_stages` (migration 0015), else its one `timely_filing_warning_days`.
pub async fn load_cadence(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    payer_id: &str,
    settings: &Settings,
) -> Result<Cadence, Error> {
    let row = sqlx::query(
        "SELECT first_check_business_days, repeat_business_days, max_checks, \
         timely_filing_warning_days, timely_filing_warning_stages, appeal_warning_days \
         FROM scheduler_payer_cadence WHERE tenant_id = $1 AND payer_id IN ($2, '*') \
         ORDER BY CASE WHEN payer_id = '*' THEN 1 ELSE 0 END LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(payer_id)
    .fetch_optional(&mut *conn)
    .await
    .context("read payer cadence")?;
    let Some(row) = row else {
        return Ok(settings.default_cadence());
    };
    let days = |name: &str| -> Result<u32, Error> {
        let n = row.try_get::<i64, _>(name).context("read payer cadence")?;
        Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
    };
    let stages = row
        .try_get::<Option<String>, _>("timely_filing_warning_stages")
        .context("read payer cadence")?
        .and_then(|text| serde_json::from_str::<Vec<u32>>(&text).ok());
    let timely_filing_warning_stages_days = match stages {
        Some(stages) => stages,
        None => vec![days("timely_filing_warning_days")?],
    };
    Ok(Cadence {
        first_check_business_days: days("first_check_business_days")?,
        repeat_business_days: days("repeat_business_days")?,
        max_checks: days("max_checks")?,
        timely_filing_warning_stages_days,
        appeal_warning_days: days("appeal_warning_days")?,
    })
}

/// Sets a payer's cadence for a tenant (`*` = the tenant's default). The stages are stored as
/// JSON; the older one-stage column keeps the largest stage (0 for none).
pub async fn set_cadence(
    db: &Db,
    tenant: &TenantId,
    payer_id: &str,
    cadence: &Cadence,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let stages = serde_json::to_string(&cadence.timely_filing_warning_stages_days)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
        .context("encode warning stages")?;
    let largest = cadence
        .timely_filing_warning_stages_days
        .iter()
        .max()
        .copied()
        .unwrap_or(0);
    let mut tx = db.begin().await.context("begin set cadence")?;
    sqlx::query(
        "INSERT INTO scheduler_payer_cadence (tenant_id, payer_id, first_check_business_days, \
         repeat_business_days, max_checks, timely_filing_warning_days, appeal_warning_days, \
         updated_at, timely_filing_warning_stages) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, payer_id) DO UPDATE SET \
         first_check_business_days = excluded.first_check_business_days, \
         repeat_business_days = excluded.repeat_business_days, \
         max_checks = excluded.max_checks, \
         timely_filing_warning_days = excluded.timely_filing_warning_days, \
         appeal_warning_days = excluded.appeal_warning_days, updated_at = excluded.updated_at, \
         timely_filing_warning_stages = excluded.timely_filing_warning_stages",
    )
    .bind(tenant.as_str())
    .bind(payer_id)
    .bind(i64::from(cadence.first_check_business_days))
    .bind(i64::from(cadence.repeat_business_days))
    .bind(i64::from(cadence.max_checks))
    .bind(i64::from(largest))
    .bind(i64::from(cadence.appeal_warning_days))
    .bind(to_micros(now))
    .bind(stages)
    .execute(&mut *tx)
    .await
    .context("set payer cadence")?;
    tx.commit().await.context("commit set cadence")
}

/// The tenant's business-day calendar (US federal with its overrides).
pub async fn load_calendar(conn: &mut AnyConnection, tenant: &TenantId) -> Result<Calendar, Error> {
    let rows =
        sqlx::query("SELECT day, business_day FROM scheduler_calendar_days WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_all(&mut *conn)
            .await
            .context("read calendar overrides")?;
    let overrides = rows
        .iter()
        .map(|r| {
            let day = date_from_sql(&r.try_get::<String, _>("day")?)?;
            Ok((day, r.try_get::<i64, _>("business_day")? != 0))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .context("read calendar overrides")?;
    Ok(Calendar::with_overrides(overrides))
}

/// Marks a day open or closed for a tenant.
pub async fn set_calendar_day(
    db: &Db,
    tenant: &TenantId,
    day: NaiveDate,
    business_day: bool,
    note: &str,
) -> Result<(), Error> {
    let mut tx = db.begin().await.context("begin set calendar day")?;
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
    .await
    .context("set calendar day")?;
    tx.commit().await.context("commit set calendar day")
}
