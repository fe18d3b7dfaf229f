//! The events the claims store writes to the outbox with each change (ClaimSubmitted,
//! ClaimStatusChanged); posting adds ClaimPaid, ClaimDenied and RemittancePosted.
use arflow_api::events::v1 as events;
use arflow_api::wire::{EventPayload, claim_status_name, date_to_pb};
use arflow_domain::{ClaimStatus, Frequency};
use arflow_platform::bus;
use chrono::{DateTime, Utc};

use super::{PRODUCER, StoredClaim};

/// ClaimSubmitted of a claim that is (again) submitted.
pub(crate) fn submitted_event(s: &StoredClaim, now: DateTime<Utc>) -> bus::Envelope {
    let c = &s.claim;
    let payload = events::ClaimSubmitted {
        claim_id: s.id.clone(),
        clinic_id: c.clinic_id.clone(),
        payer_id: c.payer.id.clone(),
        status: claim_status_name(c.status).to_string(),
        submission_date: c.submission_date.map(date_to_pb),
        first_service_date: Some(date_to_pb(c.first_service_date())),
        last_service_date: Some(date_to_pb(c.last_service_date())),
        total_charge_cents: c.total_charge.cents(),
        balance_cents: s.balance.cents(),
        original_claim_id: c.original_claim_id.clone().unwrap_or_default(),
        void: c.frequency == Frequency::Void,
    };
    claim_event(s, now, &payload)
}

/// ClaimStatusChanged of a claim that moved from `from` to its current status.
pub(crate) fn status_changed_event(
    s: &StoredClaim,
    from: ClaimStatus,
    reason: &str,
    now: DateTime<Utc>,
) -> bus::Envelope {
    let payload = events::ClaimStatusChanged {
        claim_id: s.id.clone(),
        clinic_id: s.claim.clinic_id.clone(),
        payer_id: s.claim.payer.id.clone(),
        from_status: claim_status_name(from).to_string(),
        to_status: claim_status_name(s.claim.status).to_string(),
        reason: reason.to_string(),
        balance_cents: s.balance.cents(),
        replaced_by_claim_id: String::new(),
    };
    claim_event(s, now, &payload)
}

/// ClaimStatusChanged of an original closed by its frequency-7 replacement `replacement_id`:
/// consumers move its open work to the replacement.
pub(crate) fn replaced_event(
    s: &StoredClaim,
    from: ClaimStatus,
    reason: &str,
    replacement_id: &str,
    now: DateTime<Utc>,
) -> bus::Envelope {
    let payload = events::ClaimStatusChanged {
        claim_id: s.id.clone(),
        clinic_id: s.claim.clinic_id.clone(),
        payer_id: s.claim.payer.id.clone(),
        from_status: claim_status_name(from).to_string(),
        to_status: claim_status_name(s.claim.status).to_string(),
        reason: reason.to_string(),
        balance_cents: s.balance.cents(),
        replaced_by_claim_id: replacement_id.to_string(),
    };
    claim_event(s, now, &payload)
}

/// The envelope of an event about claim `s`, at its current version (its aggregate version).
pub(crate) fn claim_event<M: EventPayload>(
    s: &StoredClaim,
    now: DateTime<Utc>,
    payload: &M,
) -> bus::Envelope {
    bus::envelope(PRODUCER, &s.tenant_id, &s.id, s.version, now, payload)
}
