//! 277/277CA posting: the claim-level status category of the first STC moves the claim;
//! every STC of a matched claim is published (ClaimStatusReported) for follow-up: tasks and
//! timers (`arflow_domain::followup::status_action`).
use arflow_api::events::v1 as events;
use arflow_api::wire::{self, claim_status_name};
use arflow_domain::ClaimStatus;
use arflow_domain::followup::ReportedStatus;
use arflow_platform::bus;
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
    /// Every status composite of every claim-level STC (the first included), in file order:
    /// published with ClaimStatusReported for follow-up.
    pub reported: Vec<ReportedStatus>,
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
    if !move_claim(db, tenant, &claim, status, source, actor, now, &mut out).await? {
        // No move: the report is the only change, in a transaction of its own.
        let mut tx = db.begin().await?;
        bus::publish(&mut tx, &report_event(&claim, status, source, now)).await?;
        tx.commit().await?;
    }
    Ok(out)
}

/// Why a payer's or clearinghouse's report (277, 999) may not move a claim from `from` to
/// `target`; None when it may. Only money taken back (an 835 reversal) reopens a closed or
/// written-off claim.
pub(super) fn report_cannot_move(from: ClaimStatus, target: ClaimStatus) -> Option<String> {
    if matches!(from, ClaimStatus::Closed | ClaimStatus::WrittenOff) {
        return Some(format!(
            "not applied: a status report does not reopen a {from} claim"
        ));
    }
    (!from.can_transition_to(target))
        .then(|| format!("not applied: {from} to {target} is not a legal move"))
}

/// Moves the claim by the first STC's category (when it names a legal move), publishing the
/// report (ClaimStatusReported) in the move's transaction, and notes why not otherwise.
/// Returns whether it moved.
#[allow(clippy::too_many_arguments)]
async fn move_claim(
    db: &Db,
    tenant: &TenantId,
    claim: &store::StoredClaim,
    status: &StatusIn,
    source: &str,
    actor: &str,
    now: DateTime<Utc>,
    out: &mut StatusOut,
) -> Result<bool, Error> {
    let Some(target) = status_for_category(&status.category) else {
        out.note = category_note(&status.category).into();
        return Ok(false);
    };
    if target == claim.claim.status {
        out.note = "already in this status".into();
        return Ok(false);
    }
    if let Some(why) = report_cannot_move(claim.claim.status, target) {
        out.note = why;
        return Ok(false);
    }
    let reason = format!("{source} {}:{}", status.category, status.status_code);
    let updated = store::update_status_with(
        db,
        tenant,
        &claim.id,
        target,
        &reason,
        None,
        actor,
        now,
        |moved| vec![report_event(moved, status, source, now)],
    )
    .await?;
    out.claim_status = Some(updated.claim.status);
    if target == ClaimStatus::Rejected {
        out.note = "rejected: the timely filing clock keeps running".into();
    }
    Ok(true)
}

/// ClaimStatusReported (every STC of the claim) at the claim's version: published with the
/// move when the report moves the claim, else on its own.
fn report_event(
    claim: &store::StoredClaim,
    status: &StatusIn,
    source: &str,
    now: DateTime<Utc>,
) -> bus::Envelope {
    let payload = events::ClaimStatusReported {
        claim_id: claim.id.clone(),
        clinic_id: claim.claim.clinic_id.clone(),
        payer_id: claim.claim.payer.id.clone(),
        source: source.to_string(),
        statuses: status
            .reported
            .iter()
            .map(wire::reported_status_to_pb)
            .collect(),
        status: claim_status_name(claim.claim.status).to_string(),
        balance_cents: claim.balance.cents(),
    };
    store::claim_event(claim, now, &payload)
}
