//! Turns claim and scheduler events into tasks (bus group `assignment`, streams `claims` and
//! `scheduler`).
//!
//! Runs inside the consumer's transaction with its inbox (DESIGN §3), so a redelivered event
//! is never applied twice; a *repeated* event (a new event id saying the same thing, e.g. a
//! timer fired again) finds the open task of its (claim, kind) and refreshes it.
//!
//! | event | effect |
//! |---|---|
//! | every claim event | the claim projection (payer, clinic, status, balance, dates) |
//! | ClaimStatusChanged to rejected | rejected-claim task |
//! | ClaimStatusChanged from rejected to submitted, accepted, pending | close the rejected-claim task (corrected and resubmitted) |
//! | ClaimStatusChanged / ClaimPaid to paid, closed, written off | close every open task of the claim (aging, follow-up, denial…: a settled claim has nothing left to chase) |
//! | ClaimDenied | denial task (category, resolution, owner, amount, appealable) |
//! | TimerFired aging | aging follow-up task (detail `aging_30`, `aging_60`, …) |
//! | TimerFired status_check | no-response task |
//! | TimerFired *_deadline_warning | deadline task (with the deadline) |
//! | TimerFired follow_up | follow-up task |
use arflow_api::common::v1::Date;
use arflow_api::events::v1 as events;
use arflow_platform::bus::{self, Envelope, Handler};
use arflow_platform::{Backend, Clock};
use chrono::NaiveDate;
use sqlx::AnyConnection;

use crate::store::{self, ClaimFacts, TaskRequest, TenantId};
use arflow_domain::priority::TaskKindName;

/// Consumer group of the service.
pub const GROUP: &str = "assignment";
/// Streams it reads.
pub const STREAMS: [&str; 2] = ["claims", "scheduler"];

pub struct TaskHandler {
    pub(crate) backend: Backend,
    pub(crate) clock: Clock,
}

impl TaskHandler {
    /// The handler [`crate::Assignment::run`] subscribes (also for driving events in tests).
    pub fn new(backend: Backend, clock: Clock) -> TaskHandler {
        TaskHandler { backend, clock }
    }
}

pub(crate) fn date(d: &Option<Date>) -> Option<NaiveDate> {
    let d = d.as_ref()?;
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

/// Category names arrive as the claims.v1 enum names (`DENIAL_CATEGORY_AUTHORIZATION`); the
/// task keeps the domain's stable name (`authorization`).
pub(crate) fn category_name(s: &str) -> String {
    s.strip_prefix("DENIAL_CATEGORY_")
        .unwrap_or(s)
        .to_ascii_lowercase()
}

#[async_trait::async_trait]
impl Handler for TaskHandler {
    async fn handle(&self, conn: &mut AnyConnection, event: &Envelope) -> anyhow::Result<()> {
        let tenant = TenantId::new(event.tenant_id.clone());
        let now = self.clock.now();
        let name = event
            .event_type
            .strip_prefix("arflow.events.v1.")
            .unwrap_or("");
        if matches!(
            name,
            "ClaimSubmitted" | "ClaimStatusChanged" | "ClaimPaid" | "ClaimDenied" | "TimerFired"
        ) {
            // First, before any other row: see `store::lock_tenant`.
            store::lock_tenant(conn, &tenant).await?;
        }
        match name {
            "ClaimSubmitted" => {
                let e: events::ClaimSubmitted = bus::decode_payload(event)?;
                let facts = ClaimFacts {
                    claim_id: e.claim_id,
                    clinic_id: e.clinic_id,
                    payer_id: e.payer_id,
                    status: e.status,
                    balance_cents: e.balance_cents,
                    submission_date: date(&e.submission_date),
                    first_service_date: date(&e.first_service_date),
                    version: event.aggregate_version,
                };
                store::apply_claim_facts(conn, &tenant, &facts, now).await?;
            }
            "ClaimStatusChanged" => {
                let e: events::ClaimStatusChanged = bus::decode_payload(event)?;
                let facts = ClaimFacts {
                    claim_id: e.claim_id.clone(),
                    clinic_id: e.clinic_id.clone(),
                    payer_id: e.payer_id.clone(),
                    status: e.to_status.clone(),
                    balance_cents: e.balance_cents,
                    version: event.aggregate_version,
                    ..Default::default()
                };
                let fresh = store::apply_claim_facts(conn, &tenant, &facts, now).await?;
                if !fresh {
                    // An older event than what we applied: the claim moved on since.
                    return Ok(());
                }
                if store::is_settled_status(&e.to_status) {
                    let outcome = settled_outcome(&e.to_status);
                    store::close_claim_tasks(conn, &tenant, &e.claim_id, outcome, now).await?;
                } else if e.from_status == "CLAIM_STATUS_REJECTED"
                    && matches!(
                        e.to_status.as_str(),
                        "CLAIM_STATUS_SUBMITTED" | "CLAIM_STATUS_ACCEPTED" | "CLAIM_STATUS_PENDING"
                    )
                {
                    // The rejection was fixed and the claim is back with the payer: the
                    // rejected-claim work is done.
                    store::close_claim_task_of_kind(
                        conn,
                        &tenant,
                        &e.claim_id,
                        TaskKindName::Rejected,
                        "corrected_and_resubmitted",
                        now,
                    )
                    .await?;
                } else if e.to_status == "CLAIM_STATUS_REJECTED" {
                    let view = store::claim_view(conn, &tenant, &e.claim_id).await?;
                    let req = TaskRequest {
                        claim_id: e.claim_id,
                        clinic_id: e.clinic_id,
                        payer_id: e.payer_id,
                        kind: TaskKindName::Rejected,
                        detail: "rejected".into(),
                        balance_cents: e.balance_cents,
                        age_basis: view.and_then(|v| v.submission_date.or(v.first_service_date)),
                        source_event_id: Some(event.event_id.clone()),
                        ..Default::default()
                    };
                    store::open_task(conn, self.backend, &tenant, &req, now).await?;
                }
            }
            "ClaimPaid" => {
                let e: events::ClaimPaid = bus::decode_payload(event)?;
                let facts = ClaimFacts {
                    claim_id: e.claim_id.clone(),
                    clinic_id: e.clinic_id,
                    payer_id: e.payer_id,
                    status: e.status.clone(),
                    balance_cents: e.balance_cents,
                    version: event.aggregate_version,
                    ..Default::default()
                };
                let fresh = store::apply_claim_facts(conn, &tenant, &facts, now).await?;
                if fresh && store::is_settled_status(&e.status) {
                    let outcome = settled_outcome(&e.status);
                    store::close_claim_tasks(conn, &tenant, &e.claim_id, outcome, now).await?;
                }
            }
            "ClaimDenied" => {
                let e: events::ClaimDenied = bus::decode_payload(event)?;
                let facts = ClaimFacts {
                    claim_id: e.claim_id.clone(),
                    clinic_id: e.clinic_id.clone(),
                    payer_id: e.payer_id.clone(),
                    balance_cents: e.balance_cents,
                    version: event.aggregate_version,
                    ..Default::default()
                };
                store::apply_claim_facts(conn, &tenant, &facts, now).await?;
                let category = category_name(&e.category);
                // Contractual and patient-responsibility adjustments are not denials: posting
                // handles them, no AR work.
                if matches!(category.as_str(), "contractual" | "patient_responsibility")
                    || e.owner == "payment_posting"
                {
                    return Ok(());
                }
                let view = store::claim_view(conn, &tenant, &e.claim_id).await?;
                if view.as_ref().is_some_and(|v| v.settled()) {
                    return Ok(());
                }
                let req = TaskRequest {
                    claim_id: e.claim_id,
                    clinic_id: e.clinic_id,
                    payer_id: e.payer_id,
                    kind: TaskKindName::Denial,
                    detail: category.clone(),
                    balance_cents: e.balance_cents,
                    denial_category: category,
                    denial_resolution: e.resolution,
                    denial_owner: e.owner,
                    appealable: e.appealable,
                    denied_amount_cents: e.amount_cents,
                    denial_id: e.denial_id,
                    age_basis: view.and_then(|v| v.submission_date.or(v.first_service_date)),
                    source_event_id: Some(event.event_id.clone()),
                    ..Default::default()
                };
                store::open_task(conn, self.backend, &tenant, &req, now).await?;
            }
            "TimerFired" => {
                let e: events::TimerFired = bus::decode_payload(event)?;
                let Some(kind) = timer_task_kind(&e) else {
                    return Ok(());
                };
                let claim_id = e.subject.clone();
                let view = store::claim_view(conn, &tenant, &claim_id).await?;
                // A timer that fires after the claim was settled (its cancel raced the fire)
                // makes no work.
                if view.as_ref().is_some_and(|v| v.settled()) {
                    return Ok(());
                }
                let pick = |from_event: &str, from_view: Option<&String>| {
                    if from_event.is_empty() {
                        from_view.cloned().unwrap_or_default()
                    } else {
                        from_event.to_string()
                    }
                };
                let req = TaskRequest {
                    clinic_id: pick(&e.clinic_id, view.as_ref().map(|v| &v.clinic_id)),
                    payer_id: pick(&e.payer_id, view.as_ref().map(|v| &v.payer_id)),
                    claim_id,
                    kind,
                    detail: if e.kind_name.is_empty() {
                        kind.as_str().to_string()
                    } else {
                        e.kind_name.clone()
                    },
                    balance_cents: view.as_ref().map_or(0, |v| v.balance_cents),
                    deadline: date(&e.deadline),
                    age_basis: view
                        .as_ref()
                        .and_then(|v| v.submission_date.or(v.first_service_date))
                        .or_else(|| date(&e.basis_date)),
                    source_event_id: Some(event.event_id.clone()),
                    ..Default::default()
                };
                store::open_task(conn, self.backend, &tenant, &req, now).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The task outcome recorded when a claim event settles the claim.
fn settled_outcome(status: &str) -> &'static str {
    match status {
        "CLAIM_STATUS_PAID" => "paid",
        "CLAIM_STATUS_WRITTEN_OFF" => "written_off",
        _ => "other",
    }
}

/// The task a fired timer asks for, by its kind (enum first, then the stored kind name).
fn timer_task_kind(e: &events::TimerFired) -> Option<TaskKindName> {
    use events::TimerKind;
    match TimerKind::try_from(e.kind).unwrap_or(TimerKind::Unspecified) {
        TimerKind::Aging => return Some(TaskKindName::Aging),
        TimerKind::StatusCheck => return Some(TaskKindName::NoResponse),
        TimerKind::TimelyFilingWarning | TimerKind::AppealDeadlineWarning => {
            return Some(TaskKindName::Deadline);
        }
        TimerKind::FollowUp => return Some(TaskKindName::FollowUp),
        TimerKind::Unspecified => {}
    }
    let k = e.kind_name.as_str();
    if k.starts_with("aging_") {
        Some(TaskKindName::Aging)
    } else if k == "status_check" {
        Some(TaskKindName::NoResponse)
    } else if k.ends_with("_deadline_warning") || k == "timely_filing_warning" {
        Some(TaskKindName::Deadline)
    } else if k == "follow_up" {
        Some(TaskKindName::FollowUp)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_kinds_map_to_task_kinds() {
        let by_name = |n: &str| {
            timer_task_kind(&events::TimerFired {
                kind_name: n.into(),
                ..Default::default()
            })
        };
        assert_eq!(by_name("aging_60"), Some(TaskKindName::Aging));
        assert_eq!(by_name("status_check"), Some(TaskKindName::NoResponse));
        assert_eq!(
            by_name("appeal_deadline_warning"),
            Some(TaskKindName::Deadline)
        );
        assert_eq!(
            by_name("timely_filing_warning"),
            Some(TaskKindName::Deadline)
        );
        assert_eq!(by_name("follow_up"), Some(TaskKindName::FollowUp));
        assert_eq!(by_name("daily_snapshot"), None);
        let by_enum = timer_task_kind(&events::TimerFired {
            kind: events::TimerKind::StatusCheck as i32,
            ..Default::default()
        });
        assert_eq!(by_enum, Some(TaskKindName::NoResponse));
    }

    #[test]
    fn categories_use_the_domain_names() {
        assert_eq!(
            category_name("DENIAL_CATEGORY_MISSING_INFORMATION"),
            "missing_information"
        );
        for c in arflow_domain::denial::DenialCategory::ALL {
            let wire = format!("DENIAL_CATEGORY_{}", c.as_str().to_ascii_uppercase());
            assert_eq!(
                arflow_domain::denial::DenialCategory::parse(&category_name(&wire)),
                Some(c)
            );
        }
    }
}
