//! The claim projection (`asg_claims`): what claim events said about each claim.
use arflow_domain::ClaimStatus;

use super::*;
use crate::error::Context as _;

/// What a claim event (or the claims service, to the reconciler) says about the claim.
/// `status` None = it does not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimFacts {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub status: Option<ClaimStatus>,
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
    /// None until an event named a status (or when the stored one is not known).
    pub status: Option<ClaimStatus>,
    pub balance_cents: i64,
    pub submission_date: Option<NaiveDate>,
    pub first_service_date: Option<NaiveDate>,
    pub version: i64,
}

impl ClaimView {
    /// No longer open (paid, closed or written off): nothing left to follow up.
    pub fn settled(&self) -> bool {
        self.status.is_some_and(|s| !s.is_open())
    }

    /// What a task's age counts from: the submission date, else the first date of service.
    pub fn age_basis(&self) -> Option<NaiveDate> {
        self.submission_date.or(self.first_service_date)
    }
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
    // The column keeps the name events carry (`CLAIM_STATUS_PAID`); UNSPECIFIED until an
    // event names a status.
    let status = f.status.map_or(
        arflow_api::claims::v1::ClaimStatus::Unspecified.as_str_name(),
        wire::claim_status_name,
    );
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
    .bind(flag(f.status.is_some()))
    .execute(&mut *conn)
    .await
.context("update claim projection")?;
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
    .await
    .context("read claim projection")?;
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
        status: wire::parse_claim_status(&row.try_get::<String, _>("status")?),
        balance_cents: row.try_get("balance_cents")?,
        submission_date: date("submission_date")?,
        first_service_date: date("first_service_date")?,
        version: row.try_get("version")?,
    }))
}
