//! The scheduler's view of each event it consumes: the payload parsed once, at the edge, into
//! domain types (statuses through `wire::parse_claim_status`, categories through
//! `wire::parse_denial_category`, dates through `wire::date_from_pb`).
use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_domain::followup::ReportedStatus;
use arflow_domain::{ClaimStatus, DenialCategory};
use chrono::NaiveDate;

use crate::error::Error;

/// A claim submitted (ClaimSubmitted).
#[derive(Clone, Debug)]
pub struct Submission {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub status: Option<ClaimStatus>,
    /// None: the day the event happened.
    pub submission_date: Option<NaiveDate>,
    /// None: the submission date.
    pub first_service_date: Option<NaiveDate>,
    pub balance_cents: i64,
    /// A frequency-8 void: not followed up (no projection, no timers; it never ages).
    pub void: bool,
    /// A replacement's original claim: the replacement ages from the original's bill date.
    pub original_claim_id: Option<String>,
}

impl From<events::ClaimSubmitted> for Submission {
    fn from(p: events::ClaimSubmitted) -> Submission {
        Submission {
            status: wire::parse_claim_status(&p.status),
            submission_date: p.submission_date.as_ref().and_then(wire::date_from_pb),
            first_service_date: p.first_service_date.as_ref().and_then(wire::date_from_pb),
            claim_id: p.claim_id,
            clinic_id: p.clinic_id,
            payer_id: p.payer_id,
            balance_cents: p.balance_cents,
            void: p.void,
            original_claim_id: Some(p.original_claim_id).filter(|id| !id.is_empty()),
        }
    }
}

/// A claim's status and balance as a ClaimStatusChanged or ClaimPaid carries them.
#[derive(Clone, Debug)]
pub struct StatusNews {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub status: Option<ClaimStatus>,
    pub balance_cents: i64,
}

impl From<events::ClaimStatusChanged> for StatusNews {
    fn from(p: events::ClaimStatusChanged) -> StatusNews {
        StatusNews {
            status: wire::parse_claim_status(&p.to_status),
            claim_id: p.claim_id,
            clinic_id: p.clinic_id,
            payer_id: p.payer_id,
            balance_cents: p.balance_cents,
        }
    }
}

impl From<events::ClaimPaid> for StatusNews {
    fn from(p: events::ClaimPaid) -> StatusNews {
        StatusNews {
            status: wire::parse_claim_status(&p.status),
            claim_id: p.claim_id,
            clinic_id: p.clinic_id,
            payer_id: p.payer_id,
            balance_cents: p.balance_cents,
        }
    }
}

/// A denial (ClaimDenied).
#[derive(Clone, Debug)]
pub struct Denial {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub denial_id: String,
    pub category: Option<DenialCategory>,
    /// `{group}-{CARC}`, e.g. `CO-197`.
    pub reason_code: String,
    pub appealable: bool,
    pub amount_cents: i64,
    pub balance_cents: i64,
    pub denial_date: Option<NaiveDate>,
}

impl From<events::ClaimDenied> for Denial {
    fn from(p: events::ClaimDenied) -> Denial {
        Denial {
            category: wire::parse_denial_category(&p.category),
            reason_code: format!("{}-{}", p.group_code, p.reason_code),
            denial_date: p.denial_date.as_ref().and_then(wire::date_from_pb),
            claim_id: p.claim_id,
            clinic_id: p.clinic_id,
            payer_id: p.payer_id,
            denial_id: p.denial_id,
            appealable: p.appealable,
            amount_cents: p.amount_cents,
            balance_cents: p.balance_cents,
        }
    }
}

/// What a 277/277CA reported of a claim (ClaimStatusReported): every status composite.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub statuses: Vec<ReportedStatus>,
}

impl From<events::ClaimStatusReported> for StatusReport {
    fn from(p: events::ClaimStatusReported) -> StatusReport {
        StatusReport {
            statuses: p
                .statuses
                .into_iter()
                .map(wire::reported_status_from_pb)
                .collect(),
            claim_id: p.claim_id,
            clinic_id: p.clinic_id,
            payer_id: p.payer_id,
        }
    }
}

/// A specialist's next follow-up date (FollowUpScheduled).
#[derive(Clone, Debug)]
pub struct FollowUp {
    pub claim_id: String,
    pub follow_up_id: String,
    pub specialist_id: String,
    pub task_id: String,
    pub due_date: NaiveDate,
}

impl TryFrom<events::FollowUpScheduled> for FollowUp {
    type Error = Error;

    fn try_from(p: events::FollowUpScheduled) -> Result<FollowUp, Error> {
        let Some(due_date) = p.due_date.as_ref().and_then(wire::date_from_pb) else {
            return Err(Error::InvalidEvent(
                "FollowUpScheduled without a valid due_date",
            ));
        };
        Ok(FollowUp {
            claim_id: p.claim_id,
            follow_up_id: p.follow_up_id,
            specialist_id: p.specialist_id,
            task_id: p.task_id,
            due_date,
        })
    }
}
