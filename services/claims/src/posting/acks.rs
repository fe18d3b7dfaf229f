//! 999 acknowledgments of our 837P exports (docs/reference/x12.md §2.3): a transaction set the
//! clearinghouse rejected (IK5 `R`, or AK9 `R` without IK5) rejects the claim it carried, found
//! through the interchange control number the export recorded (`claim_exports`: AK2 names our
//! ST02, AK1 our GS06, both the interchange's number). A rejected claim was never filed, so its
//! timely-filing clock keeps running (docs/reference/billing-rules.md C6).
use arflow_domain::ClaimStatus;
use arflow_platform::db::Db;
use chrono::{DateTime, Utc};

use super::status::{StatusOut, report_cannot_move};
use crate::error::Error;
use crate::store::{self, TenantId};

/// One acknowledged transaction set of a 999.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckIn {
    /// AK202: the ST02 of our 837P.
    pub transaction_control_number: String,
    /// AK102: the GS06 of our 837P.
    pub group_control_number: String,
    /// IK501 (else AK901): `A`, `E`, `P`, `R`, `M`, `W`, `X`.
    pub code: String,
    /// The set was rejected (IK501, else AK901, is R, M, W or X).
    pub rejected: bool,
    /// IK502.. and IK304 error codes, for the history's reason.
    pub errors: Vec<String>,
}

/// Applies one acknowledged transaction set to the claim it carried.
pub async fn post_ack(
    db: &Db,
    tenant: &TenantId,
    clinic_scope: &[String],
    ack: &AckIn,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StatusOut, Error> {
    let mut out = StatusOut {
        patient_control_number: String::new(),
        claim_id: None,
        category: "999".into(),
        status_code: ack.code.clone(),
        claim_status: None,
        note: String::new(),
    };
    let number = [&ack.transaction_control_number, &ack.group_control_number]
        .into_iter()
        .find_map(|n| n.trim().parse::<i64>().ok().filter(|n| *n > 0));
    let claim_id = match number {
        Some(n) => store::exported_claim(db, tenant, n).await?,
        None => None,
    };
    let claim = match claim_id {
        Some(id) => store::get_claim(db, tenant, &id)
            .await
            .map_err(Error::db("load the acknowledged claim"))?,
        None => None,
    };
    // Another clinic's claim is as unknown to a clinic-scoped key as a missing one.
    let Some(claim) =
        claim.filter(|c| clinic_scope.is_empty() || clinic_scope.contains(&c.claim.clinic_id))
    else {
        out.note = "no 837P we exported has this control number".into();
        return Ok(out);
    };
    out.patient_control_number = claim.claim.external_id.clone();
    out.claim_id = Some(claim.id.clone());
    out.claim_status = Some(claim.claim.status);
    if !ack.rejected {
        out.note = "accepted by the receiver's syntax check (999)".into();
        return Ok(out);
    }
    let target = ClaimStatus::Rejected;
    if claim.claim.status == target {
        out.note = "already rejected".into();
        return Ok(out);
    }
    if let Some(why) = report_cannot_move(claim.claim.status, target) {
        out.note = why;
        return Ok(out);
    }
    let mut reason = format!("999 {}", ack.code);
    if !ack.errors.is_empty() {
        reason.push(':');
        reason.push_str(&ack.errors.join(","));
    }
    let updated =
        store::update_status(db, tenant, &claim.id, target, &reason, None, actor, now).await?;
    out.claim_status = Some(updated.claim.status);
    out.note = "rejected by the 999: fix and resend; the timely filing clock keeps running".into();
    Ok(out)
}
