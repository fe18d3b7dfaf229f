//! Turns claim and scheduler events into tasks (bus group `assignment`, streams `claims` and
//! `scheduler`).
//!
//! Runs inside the consumer's transaction with its inbox (docs/design.md §3), so a redelivered event
//! is never applied twice; a *repeated* event (a new event id saying the same thing, e.g. a
//! timer fired again) finds the open task of its (claim, kind) and refreshes it.
//!
//! Each payload is decoded by its type ([`bus::payload`]) and its wire strings parsed once,
//! here at the edge, into domain types (`wire::parse_claim_status`,
//! `wire::parse_denial_category`); one method per event then asks the domain its questions
//! (`ClaimStatus::is_open`). Other event types are ignored.
//!
//! | event | effect |
//! |---|---|
//! | every claim event | the claim projection (payer, clinic, status, balance, dates) |
//! | ClaimStatusChanged to rejected | rejected-claim task |
//! | ClaimStatusChanged from rejected to submitted, accepted, pending | close the rejected-claim task (corrected and resubmitted) |
//! | ClaimStatusChanged / ClaimPaid to paid, closed, written off | close every open task of the claim (aging, follow-up, denial…: a settled claim has nothing left to chase) |
//! | ClaimStatusChanged to closed with `replaced_by_claim_id` (a frequency-7 replacement was submitted) | move every open task of the claim to the replacement (closed here as corrected and resubmitted, opened there) |
//! | ClaimStatusChanged from closed or written off to an open status (a reversal or takeback) | recoupment task (detail `recouped`) |
//! | ClaimDenied | denial task (category, resolution, owner, amount, appealable) |
//! | ClaimStatusReported A4 | resubmission task (the payer has no record of the claim) |
//! | ClaimStatusReported P3/P4, R* | information-requested task naming every request, with a deadline for P3/P4 (`followup::plan_status_tasks`) |
//! | TimerFired aging | aging follow-up task (detail `aging_30`, `aging_60`, …) |
//! | TimerFired status_check | no-response task |
//! | TimerFired no_era (277 F1/F4 and no remittance since) | no-response task (detail `no_era`) |
//! | TimerFired *_deadline_warning | deadline task (with the deadline) |
//! | TimerFired follow_up | follow-up task |
use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_domain::followup::{self, ReportedStatus, kinds};
use arflow_domain::priority::TaskKindName;
use arflow_domain::{ClaimStatus, DenialCategory};
use arflow_platform::bus::{self, Envelope, Handler};
use arflow_platform::{Backend, Clock};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::error::Error;
use crate::store::{self, ClaimFacts, TaskRequest, TenantId};

/// Consumer group of the service.
pub const GROUP: &str = "assignment";
/// Streams it reads.
pub const STREAMS: [&str; 2] = ["claims", "scheduler"];

pub struct TaskHandler {
    pub(crate) backend: Backend,
    pub(crate) clock: Clock,
}

/// What every handler needs of the envelope besides its payload.
struct Delivery<'a> {
    tenant: TenantId,
    event_id: &'a str,
    version: i64,
    now: DateTime<Utc>,
}

impl TaskHandler {
    /// The handler [`crate::Assignment::run`] subscribes (also for driving events in tests).
    pub fn new(backend: Backend, clock: Clock) -> TaskHandler {
        TaskHandler { backend, clock }
    }

    async fn on_claim_submitted(
        &self,
        conn: &mut AnyConnection,
        d: &Delivery<'_>,
        e: events::ClaimSubmitted,
    ) -> Result<(), Error> {
        let facts = ClaimFacts {
            status: wire::parse_claim_status(&e.status),
            submission_date: e.submission_date.as_ref().and_then(wire::date_from_pb),
            first_service_date: e.first_service_date.as_ref().and_then(wire::date_from_pb),
            clinic_id: e.clinic_id,
            payer_id: e.payer_id,
            balance_cents: e.balance_cents,
            version: d.version,
        };
        // Late (older than what was applied): it teaches the projection its dates only.
        store::apply_claim_facts(conn, &d.tenant, &e.claim_id, &facts, d.now).await?;
        Ok(())
    }

    async fn on_claim_status_changed(
        &self,
        conn: &mut AnyConnection,
        d: &Delivery<'_>,
        e: events::ClaimStatusChanged,
    ) -> Result<(), Error> {
        let from = wire::parse_claim_status(&e.from_status);
        let to = wire::parse_claim_status(&e.to_status);
        let facts = ClaimFacts {
            clinic_id: e.clinic_id.clone(),
            payer_id: e.payer_id.clone(),
            status: to,
            balance_cents: e.balance_cents,
            version: d.version,
            ..Default::default()
        };
        let fresh = store::apply_claim_facts(conn, &d.tenant, &e.claim_id, &facts, d.now).await?;
        if !fresh {
            // An older event than what we applied: the claim moved on since.
            return Ok(());
        }
        let Some(to) = to else { return Ok(()) };
        if !to.is_open() && !e.replaced_by_claim_id.is_empty() {
            // Closed by its frequency-7 replacement: the replacement takes the work over.
            store::move_claim_tasks(
                conn,
                self.backend,
                &d.tenant,
                &e.claim_id,
                &e.replaced_by_claim_id,
                d.now,
            )
            .await?;
        } else if !to.is_open() {
            let outcome = settled_outcome(to);
            store::close_claim_tasks(conn, &d.tenant, &e.claim_id, outcome, d.now).await?;
        } else if matches!(from, Some(ClaimStatus::Closed | ClaimStatus::WrittenOff)) {
            // A reversal or takeback reopened a settled claim: money went back to the payer.
            let view = store::claim_view(conn, &d.tenant, &e.claim_id).await?;
            let req = TaskRequest {
                claim_id: e.claim_id,
                clinic_id: e.clinic_id,
                payer_id: e.payer_id,
                kind: TaskKindName::Recoupment,
                detail: "recouped".into(),
                balance_cents: e.balance_cents,
                age_basis: view.and_then(|v| v.age_basis()),
                source_event_id: Some(d.event_id.to_string()),
                ..Default::default()
            };
            store::open_task(conn, self.backend, &d.tenant, &req, d.now).await?;
        } else if from == Some(ClaimStatus::Rejected)
            && matches!(
                to,
                ClaimStatus::Submitted | ClaimStatus::Accepted | ClaimStatus::Pending
            )
        {
            // The rejection was fixed and the claim is back with the payer: the
            // rejected-claim work is done.
            store::close_claim_task_of_kind(
                conn,
                &d.tenant,
                &e.claim_id,
                TaskKindName::Rejected,
                "corrected_and_resubmitted",
                d.now,
            )
            .await?;
        } else if to == ClaimStatus::Rejected {
            let view = store::claim_view(conn, &d.tenant, &e.claim_id).await?;
            let req = TaskRequest {
                claim_id: e.claim_id,
                clinic_id: e.clinic_id,
                payer_id: e.payer_id,
                kind: TaskKindName::Rejected,
                detail: "rejected".into(),
                balance_cents: e.balance_cents,
                age_basis: view.and_then(|v| v.age_basis()),
                source_event_id: Some(d.event_id.to_string()),
                ..Default::default()
            };
            store::open_task(conn, self.backend, &d.tenant, &req, d.now).await?;
        }
        Ok(())
    }

    async fn on_claim_paid(
        &self,
        conn: &mut AnyConnection,
        d: &Delivery<'_>,
        e: events::ClaimPaid,
    ) -> Result<(), Error> {
        let status = wire::parse_claim_status(&e.status);
        let facts = ClaimFacts {
            clinic_id: e.clinic_id,
            payer_id: e.payer_id,
            status,
            balance_cents: e.balance_cents,
            version: d.version,
            ..Default::default()
        };
        let fresh = store::apply_claim_facts(conn, &d.tenant, &e.claim_id, &facts, d.now).await?;
        if let Some(status) = status
            && fresh
            && !status.is_open()
        {
            let outcome = settled_outcome(status);
            store::close_claim_tasks(conn, &d.tenant, &e.claim_id, outcome, d.now).await?;
        }
        Ok(())
    }

    async fn on_claim_denied(
        &self,
        conn: &mut AnyConnection,
        d: &Delivery<'_>,
        e: events::ClaimDenied,
    ) -> Result<(), Error> {
        let category = wire::parse_denial_category(&e.category);
        // A denial names no status: the projection keeps the one it has.
        let facts = ClaimFacts {
            clinic_id: e.clinic_id.clone(),
            payer_id: e.payer_id.clone(),
            balance_cents: e.balance_cents,
            version: d.version,
            ..Default::default()
        };
        store::apply_claim_facts(conn, &d.tenant, &e.claim_id, &facts, d.now).await?;
        if !is_ar_work(category, &e.owner) {
            return Ok(());
        }
        let view = store::claim_view(conn, &d.tenant, &e.claim_id).await?;
        if view.as_ref().is_some_and(|v| v.settled()) {
            return Ok(());
        }
        let req = TaskRequest {
            claim_id: e.claim_id,
            clinic_id: e.clinic_id,
            payer_id: e.payer_id,
            balance_cents: e.balance_cents,
            denial_resolution: e.resolution,
            denial_owner: e.owner,
            appealable: e.appealable,
            denied_amount_cents: e.amount_cents,
            denial_id: e.denial_id,
            age_basis: view.and_then(|v| v.age_basis()),
            source_event_id: Some(d.event_id.to_string()),
            ..TaskRequest::denial(category)
        };
        store::open_task(conn, self.backend, &d.tenant, &req, d.now).await?;
        Ok(())
    }

    async fn on_claim_status_reported(
        &self,
        conn: &mut AnyConnection,
        d: &Delivery<'_>,
        e: events::ClaimStatusReported,
    ) -> Result<(), Error> {
        let statuses: Vec<ReportedStatus> = e
            .statuses
            .into_iter()
            .map(wire::reported_status_from_pb)
            .collect();
        let tasks = followup::plan_status_tasks(
            &statuses,
            d.now.date_naive(),
            followup::INFORMATION_REQUEST_DAYS,
        );
        if tasks.is_empty() {
            return Ok(());
        }
        let view = store::claim_view(conn, &d.tenant, &e.claim_id).await?;
        // A report that comes after the claim was settled makes no work.
        if view.as_ref().is_some_and(|v| v.settled())
            || wire::parse_claim_status(&e.status).is_some_and(|s| !s.is_open())
        {
            return Ok(());
        }
        for t in tasks {
            let req = TaskRequest {
                claim_id: e.claim_id.clone(),
                clinic_id: e.clinic_id.clone(),
                payer_id: e.payer_id.clone(),
                kind: t.kind,
                detail: t.detail,
                balance_cents: view.as_ref().map_or(e.balance_cents, |v| v.balance_cents),
                deadline: t.due,
                age_basis: view.as_ref().and_then(|v| v.age_basis()),
                source_event_id: Some(d.event_id.to_string()),
                ..Default::default()
            };
            store::open_task(conn, self.backend, &d.tenant, &req, d.now).await?;
        }
        Ok(())
    }

    async fn on_timer_fired(
        &self,
        conn: &mut AnyConnection,
        d: &Delivery<'_>,
        e: events::TimerFired,
    ) -> Result<(), Error> {
        let Some(kind) = timer_task_kind(&e) else {
            return Ok(());
        };
        let claim_id = e.subject.clone();
        let view = store::claim_view(conn, &d.tenant, &claim_id).await?;
        // A timer that fires after the claim was settled (its cancel raced the fire) makes no
        // work.
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
            deadline: e.deadline.as_ref().and_then(wire::date_from_pb),
            age_basis: view
                .as_ref()
                .and_then(|v| v.age_basis())
                .or_else(|| e.basis_date.as_ref().and_then(wire::date_from_pb)),
            source_event_id: Some(d.event_id.to_string()),
            ..Default::default()
        };
        store::open_task(conn, self.backend, &d.tenant, &req, d.now).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for TaskHandler {
    async fn handle(&self, conn: &mut AnyConnection, event: &Envelope) -> anyhow::Result<()> {
        let d = Delivery {
            tenant: TenantId::new(event.tenant_id.clone()),
            event_id: &event.event_id,
            version: event.aggregate_version,
            now: self.clock.now(),
        };
        // Every event handled here takes the tenant lock first, before any other row: see
        // `store::lock_tenant`.
        if let Some(e) = bus::payload::<events::ClaimSubmitted>(event) {
            store::lock_tenant(conn, &d.tenant).await?;
            Ok(self.on_claim_submitted(conn, &d, e?).await?)
        } else if let Some(e) = bus::payload::<events::ClaimStatusChanged>(event) {
            store::lock_tenant(conn, &d.tenant).await?;
            Ok(self.on_claim_status_changed(conn, &d, e?).await?)
        } else if let Some(e) = bus::payload::<events::ClaimPaid>(event) {
            store::lock_tenant(conn, &d.tenant).await?;
            Ok(self.on_claim_paid(conn, &d, e?).await?)
        } else if let Some(e) = bus::payload::<events::ClaimDenied>(event) {
            store::lock_tenant(conn, &d.tenant).await?;
            Ok(self.on_claim_denied(conn, &d, e?).await?)
        } else if let Some(e) = bus::payload::<events::ClaimStatusReported>(event) {
            store::lock_tenant(conn, &d.tenant).await?;
            Ok(self.on_claim_status_reported(conn, &d, e?).await?)
        } else if let Some(e) = bus::payload::<events::TimerFired>(event) {
            store::lock_tenant(conn, &d.tenant).await?;
            Ok(self.on_timer_fired(conn, &d, e?).await?)
        } else {
            Ok(())
        }
    }
}

/// Whether a denial is AR work. Contractual and patient-responsibility adjustments are not
/// denials (posting handles them), nor is work owned by payment posting. Shared by the
/// ClaimDenied handler and the reconciler, so both make a task of the same denials.
pub(crate) fn is_ar_work(category: Option<DenialCategory>, owner: &str) -> bool {
    !matches!(
        category,
        Some(DenialCategory::Contractual | DenialCategory::PatientResponsibility)
    ) && owner != "payment_posting"
}

/// The task outcome recorded when a claim event settles the claim.
fn settled_outcome(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::Paid => "paid",
        ClaimStatus::WrittenOff => "written_off",
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
    } else if k == "status_check" || k == kinds::NO_ERA {
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
        assert_eq!(by_name("no_era"), Some(TaskKindName::NoResponse));
        assert_eq!(by_name("daily_snapshot"), None);
        let by_enum = timer_task_kind(&events::TimerFired {
            kind: events::TimerKind::StatusCheck as i32,
            ..Default::default()
        });
        assert_eq!(by_enum, Some(TaskKindName::NoResponse));
    }

    #[test]
    fn categories_use_the_domain_names() {
        // The task keeps the domain's stable name of the category the event names.
        let req = TaskRequest::denial(wire::parse_denial_category(wire::denial_category_name(
            DenialCategory::MissingInformation,
        )));
        assert_eq!(req.denial_category, "missing_information");
        assert_eq!(req.detail, "missing_information");
        for c in DenialCategory::ALL {
            let named = wire::parse_denial_category(wire::denial_category_name(c));
            // Every category survives the event, the two that are not denials too (so the
            // consumer can skip them).
            assert_eq!(named, Some(c));
            assert_eq!(
                DenialCategory::parse(&TaskRequest::denial(named).denial_category),
                named
            );
        }
    }

    #[test]
    fn adjustments_and_posting_work_are_not_ar_work() {
        assert!(is_ar_work(Some(DenialCategory::Authorization), "biller"));
        assert!(is_ar_work(None, "biller"));
        assert!(!is_ar_work(Some(DenialCategory::Contractual), "biller"));
        assert!(!is_ar_work(
            Some(DenialCategory::PatientResponsibility),
            "biller"
        ));
        assert!(!is_ar_work(
            Some(DenialCategory::Authorization),
            "payment_posting"
        ));
    }
}
