//! The claim projection (`asg_claims`): what claim events said about each claim, folded in by
//! the domain's rule (`ClaimFacts::merge`: the newest version kept).
pub use arflow_domain::projection::ClaimFacts;

use super::*;
use crate::error::Context as _;

/// The claim as the projection knows it: the facts its events taught (`settled`, `age_basis`).
/// `status` None until an event named a status (or when the stored one is not known).
pub type ClaimView = ClaimFacts;

/// Applies what a claim event (or the claims service, to the reconciler) says about the claim
/// to the projection, by `ClaimFacts::merge`: an older version than the one applied does not
/// overwrite newer state (replicas and redelivery reorder events) but teaches the dates the
/// projection lacks; the same version applies again, because one claims transaction publishes
/// several events with the claim's one new version (835 posting: ClaimStatusChanged,
/// ClaimPaid, ClaimDenied…), all describing the same state. The write keeps the newest version
/// too (`WHERE version <= excluded.version`). Returns true when the event was fresh and applied.
pub async fn apply_claim_facts(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
    event: &ClaimFacts,
    now: DateTime<Utc>,
) -> Result<bool> {
    let stored = claim_view(conn, tenant, claim_id).await?;
    let merged = ClaimFacts::merge(stored.as_ref(), event.clone());
    if !merged.fresh && stored.as_ref() == Some(&merged.facts) {
        return Ok(false);
    }
    let f = &merged.facts;
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
         status = excluded.status, balance_cents = excluded.balance_cents, \
         submission_date = excluded.submission_date, \
         first_service_date = excluded.first_service_date, \
         version = excluded.version, updated_at = excluded.updated_at \
         WHERE asg_claims.version <= excluded.version",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .bind(&f.clinic_id)
    .bind(&f.payer_id)
    .bind(status)
    .bind(f.balance_cents)
    .bind(f.submission_date.map(date_to_sql))
    .bind(f.first_service_date.map(date_to_sql))
    .bind(f.version)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await
    .context("update claim projection")?;
    Ok(merged.fresh && done.rows_affected() > 0)
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
