//! 277/277CA posting: the claim-level status category moves the claim.
use arflow_domain::ClaimStatus;
use arflow_platform::db::Db;
use chrono::{DateTime, Utc};

use super::match_claim;
use crate::error::Error;
use crate::store::{self, TenantId};
use arflow_domain::remit_match::{ClpKeys, ClpMatch};

/// One claim-level status from a 277/277CA.
#[derive(Clone, Debug, Default)]
pub struct StatusIn {
    pub patient_control_number: String,
    pub payer_claim_control_number: String,
    /// STC01-1, e.g. `A2`, `A7`, `P1`, `F2`.
    pub category: String,
    /// STC01-2.
    pub status_code: String,
}

#[derive(Clone, Debug)]
pub struct StatusOut {
    pub patient_control_number: String,
    pub claim_id: Option<String>,
    pub category: String,
    pub status_code: String,
    pub claim_status: Option<ClaimStatus>,
    pub note: String,
}

/// What a 277 claim status category means for the claim (docs/reference/billing-rules.md C9,
/// docs/reference/x12.md §4.3).
pub fn status_for_category(category: &str) -> Option<ClaimStatus> {
    match category {
        "A2" => Some(ClaimStatus::Accepted),
        "A3" | "A6" | "A7" | "A8" => Some(ClaimStatus::Rejected),
        c if c.starts_with('P') => Some(ClaimStatus::Pending),
        "F2" => Some(ClaimStatus::Denied),
        _ => None,
    }
}

fn category_note(category: &str) -> &'static str {
    match category {
        "A0" => "forwarded by the clearinghouse",
        "A1" => "received by the payer, not yet accepted",
        "A4" => "the payer has no record of the claim",
        "A5" => "split by the payer",
        "F0" | "F1" | "F3" | "F3F" | "F3N" | "F4" | "F5" => "finalized: the ERA posts the money",
        c if c.starts_with('R') => "the payer requests information",
        c if c.starts_with('E') => "the payer's system reported an error",
        _ => "no status change for this category",
    }
}

/// Posts one claim's status from a 277/277CA (its own transaction via `store::update_status`).
pub async fn post_status(
    db: &Db,
    tenant: &TenantId,
    clinic_scope: &[String],
    status: &StatusIn,
    source: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StatusOut, Error> {
    let mut out = StatusOut {
        patient_control_number: status.patient_control_number.clone(),
        claim_id: None,
        category: status.category.clone(),
        status_code: status.status_code.clone(),
        claim_status: None,
        note: String::new(),
    };
    let mut conn = db.pool().acquire().await?;
    // A 277 names the claim by CLM01 and the payer's number; payee and payer are not compared
    // here (a 277CA comes from the clearinghouse as often as from the payer).
    let keys = ClpKeys {
        payer_claim_control_number: &status.payer_claim_control_number,
        ..ClpKeys::default()
    };
    let matched = match_claim(
        &mut conn,
        tenant,
        clinic_scope,
        &status.patient_control_number,
        &keys,
    )
    .await?;
    drop(conn);
    let claim_id = match matched {
        ClpMatch::Claim(id) => id,
        ClpMatch::Unmatched(reason) => {
            out.note = reason.into();
            return Ok(out);
        }
    };
    let claim = store::get_claim(db, tenant, &claim_id)
        .await?
        .ok_or(Error::NotFound)?;
    out.claim_id = Some(claim_id.clone());
    out.claim_status = Some(claim.claim.status);
    let Some(target) = status_for_category(&status.category) else {
        out.note = category_note(&status.category).into();
        return Ok(out);
    };
    if target == claim.claim.status {
        out.note = "already in this status".into();
        return Ok(out);
    }
    if matches!(
        claim.claim.status,
        ClaimStatus::Closed | ClaimStatus::WrittenOff
    ) {
        // Only money taken back (an 835 reversal) reopens a closed or written-off claim.
        out.note = format!(
            "not applied: a status report does not reopen a {} claim",
            claim.claim.status
        );
        return Ok(out);
    }
    if !claim.claim.status.can_transition_to(target) {
        out.note = format!(
            "not applied: {} to {} is not a legal move",
            claim.claim.status, target
        );
        return Ok(out);
    }
    let reason = format!("{source} {}:{}", status.category, status.status_code);
    let updated =
        store::update_status(db, tenant, &claim_id, target, &reason, None, actor, now).await?;
    out.claim_status = Some(updated.claim.status);
    if target == ClaimStatus::Rejected {
        out.note = "rejected: the timely filing clock keeps running".into();
    }
    Ok(out)
}
