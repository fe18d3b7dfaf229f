//! What the scheduler knows of claims, from the claims stream: the projection
//! `scheduler_claims` (status, dates, balance, last version applied) and the denials seen
//! (`scheduler_denials`, for the weekly digest). The scheduler never reads the claims service's
//! tables.
//!
//! Statuses and categories are stored as the names events carry (`CLAIM_STATUS_PAID`,
//! `DENIAL_CATEGORY_ELIGIBILITY`), converted here through `arflow_api::wire`; the store works
//! with domain types.
use arflow_api::claims::v1 as claims_pb;
use arflow_api::wire;
use arflow_domain::projection::ClaimFacts;
use arflow_domain::{ClaimStatus, DenialCategory, followup};
use arflow_platform::Db;
use arflow_platform::db::{date_from_sql, date_to_sql, to_micros};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, Row as _};

use super::TenantId;
use crate::error::{Context as _, Error};

/// What the scheduler knows of a claim, from the claims stream: the facts its events taught
/// (folded in by `ClaimFacts::merge`, the newest version kept), with the claim's ids, and
/// what only the scheduler keeps (migration 0015).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectedClaim {
    pub tenant_id: String,
    pub claim_id: String,
    /// `facts.version` is the column `last_version`: the last aggregate version applied.
    /// `facts.submission_date` is the latest submission (the status-check cadence's start).
    pub facts: ClaimFacts,
    /// The original bill date: the earliest submission date seen, which aging counts from. A
    /// write never moves it later; None on write means `facts.submission_date`.
    pub first_submission_date: Option<NaiveDate>,
    /// The day the payer was seen to have the claim (`followup::proves_filing`): proof of
    /// timely filing. Cleared by a rejection.
    pub filed_on: Option<NaiveDate>,
}

impl ProjectedClaim {
    /// The original bill date (aging's start on the submission basis).
    pub fn aging_submission_date(&self) -> Option<NaiveDate> {
        match (self.first_submission_date, self.facts.submission_date) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Nothing left to follow up (`followup::is_closed`).
    pub fn is_closed(&self) -> bool {
        followup::is_closed(self.facts.status, self.facts.balance_cents)
    }
}

/// The stored name of a status (`CLAIM_STATUS_UNSPECIFIED` for an unknown one).
fn status_column(status: Option<ClaimStatus>) -> &'static str {
    status.map_or(
        claims_pb::ClaimStatus::Unspecified.as_str_name(),
        wire::claim_status_name,
    )
}

/// `AND status NOT IN (…)` over the statuses that close a claim (`ClaimStatus::is_open`),
/// numbered from `$first`, and the names to bind in that order.
pub(super) fn open_status_clause(first: usize) -> (String, Vec<&'static str>) {
    let closed: Vec<&'static str> = ClaimStatus::ALL
        .into_iter()
        .filter(|s| !s.is_open())
        .map(wire::claim_status_name)
        .collect();
    let slots: Vec<String> = (first..first + closed.len())
        .map(|n| format!("${n}"))
        .collect();
    (format!(" AND status NOT IN ({})", slots.join(", ")), closed)
}

pub async fn get_claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
) -> Result<Option<ProjectedClaim>, Error> {
    let row = sqlx::query(
        "SELECT tenant_id, claim_id, clinic_id, payer_id, status, submission_date, \
         first_service_date, balance_cents, last_version, first_submission_date, filed_on \
         FROM scheduler_claims WHERE tenant_id = $1 AND claim_id = $2",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_optional(&mut *conn)
    .await
    .context("read claim projection")?;
    let Some(r) = row else { return Ok(None) };
    let date = |name: &str| -> Result<Option<NaiveDate>, sqlx::Error> {
        r.try_get::<Option<String>, _>(name)?
            .map(|t| date_from_sql(&t))
            .transpose()
    };
    (|| {
        Ok(Some(ProjectedClaim {
            tenant_id: r.try_get("tenant_id")?,
            claim_id: r.try_get("claim_id")?,
            facts: ClaimFacts {
                clinic_id: r.try_get("clinic_id")?,
                payer_id: r.try_get("payer_id")?,
                status: wire::parse_claim_status(&r.try_get::<String, _>("status")?),
                submission_date: date("submission_date")?,
                first_service_date: date("first_service_date")?,
                balance_cents: r.try_get("balance_cents")?,
                version: r.try_get("last_version")?,
            },
            first_submission_date: date("first_submission_date")?,
            filed_on: date("filed_on")?,
        }))
    })()
    .context("read claim projection")
}

/// Writes the projection row. Guarded by version: a row another replica wrote at a newer
/// version is left as it is (false). `first_submission_date` keeps the earlier of the stored
/// and the written date.
pub async fn upsert_claim(
    conn: &mut AnyConnection,
    claim: &ProjectedClaim,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO scheduler_claims (tenant_id, claim_id, clinic_id, payer_id, status, \
         submission_date, first_service_date, balance_cents, last_version, updated_at, \
         first_submission_date, filed_on) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (tenant_id, claim_id) DO UPDATE SET clinic_id = excluded.clinic_id, \
         payer_id = excluded.payer_id, status = excluded.status, \
         submission_date = excluded.submission_date, \
         first_service_date = excluded.first_service_date, \
         balance_cents = excluded.balance_cents, last_version = excluded.last_version, \
         updated_at = excluded.updated_at, \
         first_submission_date = CASE WHEN scheduler_claims.first_submission_date IS NULL \
         OR excluded.first_submission_date < scheduler_claims.first_submission_date \
         THEN excluded.first_submission_date ELSE scheduler_claims.first_submission_date END, \
         filed_on = excluded.filed_on \
         WHERE scheduler_claims.last_version <= excluded.last_version",
    )
    .bind(&claim.tenant_id)
    .bind(&claim.claim_id)
    .bind(&claim.facts.clinic_id)
    .bind(&claim.facts.payer_id)
    .bind(status_column(claim.facts.status))
    .bind(claim.facts.submission_date.map(date_to_sql))
    .bind(claim.facts.first_service_date.map(date_to_sql))
    .bind(claim.facts.balance_cents)
    .bind(claim.facts.version)
    .bind(to_micros(now))
    .bind(claim.aging_submission_date().map(date_to_sql))
    .bind(claim.filed_on.map(date_to_sql))
    .execute(&mut *conn)
    .await
    .context("write claim projection")?;
    Ok(done.rows_affected() > 0)
}

/// Claims the projection holds open (not closed, balance above zero).
pub async fn open_claim_ids(db: &Db, tenant: &TenantId) -> Result<Vec<String>, Error> {
    let (open, closed) = open_status_clause(2);
    let sql = format!(
        "SELECT claim_id FROM scheduler_claims WHERE tenant_id = $1 AND balance_cents > 0\
         {open} ORDER BY claim_id"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str());
    for name in closed {
        query = query.bind(name);
    }
    query
        .fetch_all(db.pool())
        .await
        .and_then(|rows| rows.iter().map(|r| r.try_get("claim_id")).collect())
        .context("list open claims")
}

/// A denial seen on the claims stream.
#[derive(Clone, Debug)]
pub struct SeenDenial {
    pub tenant_id: String,
    pub denial_id: String,
    pub claim_id: String,
    pub payer_id: String,
    pub clinic_id: String,
    /// None when the event carried no category this version knows.
    pub category: Option<DenialCategory>,
    pub reason_code: String,
    pub amount_cents: i64,
    pub denial_date: Option<NaiveDate>,
    pub occurred_at: DateTime<Utc>,
}

pub async fn insert_denial(conn: &mut AnyConnection, d: &SeenDenial) -> Result<(), Error> {
    let category = d.category.map_or(
        claims_pb::DenialCategory::Unspecified.as_str_name(),
        wire::denial_category_name,
    );
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
    .bind(category)
    .bind(&d.reason_code)
    .bind(d.amount_cents)
    .bind(d.denial_date.map(date_to_sql))
    .bind(to_micros(d.occurred_at))
    .execute(&mut *conn)
    .await
    .context("record denial")?;
    Ok(())
}

/// Denials seen in (from, to] by category (its stored name): (category, count, cents), largest
/// amount first.
pub async fn denial_digest(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64)>, Error> {
    sqlx::query(
        "SELECT category, CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) AS cents FROM scheduler_denials \
         WHERE tenant_id = $1 AND occurred_at > $2 AND occurred_at <= $3 \
         GROUP BY category ORDER BY 3 DESC, 1",
    )
    .bind(tenant.as_str())
    .bind(to_micros(from))
    .bind(to_micros(to))
    .fetch_all(&mut *conn)
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|r| Ok((r.try_get("category")?, r.try_get("n")?, r.try_get("cents")?)))
            .collect()
    })
    .context("compile denial digest")
}
