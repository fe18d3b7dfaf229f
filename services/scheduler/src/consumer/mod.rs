//! Reacting to claim events (stream `claims`) and follow-up promises (stream `assignment`):
//! the consumer group `scheduler`'s [`Handler`].
//!
//! Each payload is parsed once, at the edge ([`ClaimEvents::handle`]), into the scheduler's
//! view of it with domain types (statuses through `wire::parse_claim_status`, categories
//! through `wire::parse_denial_category`), and handed to one method per event. The reconciler
//! calls the same methods with what the claims service answers.
//!
//! Everything runs inside the bus's consumer transaction with its inbox, so a redelivered
//! event changes nothing; the unique key on timers makes that certain even for an event
//! repeated under another id.
//!
//! Ordering: replicas and redelivery can hand over a claim's events out of order. The
//! projection `scheduler_claims` keeps the last aggregate version applied, and every event is
//! folded into it by the domain's one rule, `projection::ClaimFacts::merge`: an event at the
//! recorded version still applies (several events share a version; their effects are
//! idempotent) and only an older one is stale. A stale status or payment never overwrites a
//! newer one and has no effects; a stale ClaimSubmitted only teaches its dates, and sets no
//! timers when its claim was paid since. The write is guarded by version too, so a replica
//! handling an older event at the same time cannot overwrite a newer one.
use std::sync::Arc;

use arflow_api::events::v1 as events;
use arflow_domain::ClaimStatus;
use arflow_domain::followup::{self, DeniedClaim, StatusAction, SubmittedClaim, kinds};
use arflow_domain::projection::ClaimFacts;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::Clock;
use arflow_platform::bus::{self, Envelope, Handler};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AnyConnection;

use crate::error::Error;
use crate::settings::Settings;
use crate::store::{
    self, CancelReason, NewTimer, ProjectedClaim, SeenDenial, TenantId, TimerOwner, TimerPayload,
};

mod views;

pub use views::{Denial, FollowUp, StatusNews, StatusReport, Submission};

/// The scheduler's consumer: claim events in, timers and projection rows out.
#[derive(Debug)]
pub struct ClaimEvents {
    pub(crate) settings: Arc<Settings>,
    pub(crate) payer_rules: Arc<PayerRuleSet>,
    pub(crate) clock: Clock,
}

/// Where an event belongs and when it happened: what every method needs of the envelope.
#[derive(Clone, Debug)]
pub struct EventMeta {
    pub event_id: String,
    pub tenant: TenantId,
    /// The claim's aggregate version the event carries.
    pub version: i64,
    /// When the producer says it happened (the envelope's time, else now).
    pub occurred: DateTime<Utc>,
}

impl EventMeta {
    fn of(event: &Envelope, now: DateTime<Utc>) -> EventMeta {
        EventMeta {
            event_id: event.event_id.clone(),
            tenant: TenantId::new(&event.tenant_id),
            version: event.aggregate_version,
            occurred: bus::occur_time(event).unwrap_or(now),
        }
    }
}

#[async_trait::async_trait]
impl Handler for ClaimEvents {
    /// Dispatches on the payload type; RemittancePosted and types of later versions have
    /// nothing to schedule.
    async fn handle(&self, conn: &mut AnyConnection, event: &Envelope) -> anyhow::Result<()> {
        let meta = EventMeta::of(event, self.clock.now());
        if let Some(p) = bus::payload::<events::ClaimSubmitted>(event) {
            self.on_claim_submitted(conn, &meta, p?.into()).await?;
        } else if let Some(p) = bus::payload::<events::ClaimStatusChanged>(event) {
            self.on_claim_status_changed(conn, &meta, p?.into()).await?;
        } else if let Some(p) = bus::payload::<events::ClaimPaid>(event) {
            self.on_claim_paid(conn, &meta, p?.into()).await?;
        } else if let Some(p) = bus::payload::<events::ClaimDenied>(event) {
            self.on_claim_denied(conn, &meta, p?.into()).await?;
        } else if let Some(p) = bus::payload::<events::ClaimStatusReported>(event) {
            self.on_claim_status_reported(conn, &meta, p?.into())
                .await?;
        } else if let Some(p) = bus::payload::<events::FollowUpScheduled>(event) {
            self.on_follow_up_scheduled(conn, &meta, p?.try_into()?)
                .await?;
        }
        Ok(())
    }
}

impl ClaimEvents {
    /// Projects the claim and plans its aging, status-check and timely-filing timers. Aging
    /// counts from the original bill date (the earliest submission the projection has seen, or
    /// the date of service per tenant), so a claim submitted again keeps its aging timers; only
    /// its status checks are re-planned from the new submission. A late original submission
    /// (delivered after its resubmission) moves the aging timers to the earlier date.
    pub async fn on_claim_submitted(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        p: Submission,
    ) -> Result<(), Error> {
        if p.void {
            // A void asks the payer to forget its original (whose closing cancels the
            // original's timers): there is nothing to collect on it, so it never ages.
            tracing::debug!(event_id = %meta.event_id, "void claim: not followed up");
            return Ok(());
        }
        let tenant = &meta.tenant;
        let now = self.clock.now();
        let submission_date = p
            .submission_date
            .unwrap_or_else(|| meta.occurred.date_naive());
        let first_service_date = p.first_service_date.unwrap_or(submission_date);
        let existing = store::get_claim(conn, tenant, &p.claim_id).await?;
        // A replacement (frequency 7) is the original billed again: it ages from the
        // original's bill date, not from its own submission (docs/design.md §4).
        let original_bill_date = match &p.original_claim_id {
            Some(id) => store::get_claim(conn, tenant, id)
                .await?
                .and_then(|o| o.aging_submission_date()),
            None => None,
        };
        // A newer event applied first keeps its status and balance; this one teaches the dates.
        let (projected, fresh) = self
            .project(
                conn,
                meta,
                &p.claim_id,
                existing.as_ref(),
                ClaimFacts {
                    clinic_id: p.clinic_id.clone(),
                    payer_id: p.payer_id.clone(),
                    status: p.status,
                    balance_cents: p.balance_cents,
                    submission_date: Some(submission_date),
                    first_service_date: Some(first_service_date),
                    version: meta.version,
                },
                original_bill_date,
            )
            .await?;
        if fresh {
            self.follow_filing(conn, meta, existing.as_ref(), &projected)
                .await?;
        }
        // Submitted again (after a rejection) on another day: the status-check cadence
        // restarts from the new submission.
        let resubmitted = fresh
            && existing
                .as_ref()
                .and_then(|c| c.facts.submission_date)
                .is_some_and(|d| d != submission_date);
        if projected.is_closed() {
            tracing::debug!(event_id = %meta.event_id, "claim already closed: no timers");
            return Ok(());
        }
        // What the projection holds now: the latest submission (a stale event's is older) and
        // the original bill date.
        let latest_submission = projected.facts.submission_date.unwrap_or(submission_date);
        let first_submission_date = projected.aging_submission_date().unwrap_or(submission_date);
        let aging_moved = existing
            .as_ref()
            .and_then(ProjectedClaim::aging_submission_date)
            .is_some_and(|d| d != first_submission_date);
        let first_service_date = projected
            .facts
            .first_service_date
            .unwrap_or(first_service_date);
        let policy = store::load_policy(conn, tenant, &self.settings).await?;
        let cadence = store::load_cadence(conn, tenant, &p.payer_id, &self.settings).await?;
        let calendar = store::load_calendar(conn, tenant).await?;
        let payer = self
            .payer_rules
            .for_payer(tenant.as_str(), &p.payer_id, first_service_date);
        let owner = TimerOwner {
            tenant_id: tenant.as_str(),
            claim_id: &p.claim_id,
            clinic_id: &p.clinic_id,
            payer_id: &p.payer_id,
        };
        let timers: Vec<NewTimer> = followup::plan_submitted(
            &SubmittedClaim {
                first_submission_date,
                submission_date: latest_submission,
                first_service_date,
                filed: projected.filed_on.is_some(),
            },
            &policy,
            &cadence,
            &calendar,
            payer,
            now,
        )
        .into_iter()
        .map(|t| NewTimer::planned(t, owner))
        .collect();
        if resubmitted {
            let replaced = store::cancel_replaced(
                conn,
                tenant,
                &p.claim_id,
                &timers,
                kinds::replaced_on_resubmission,
                now,
            )
            .await?;
            tracing::debug!(event_id = %meta.event_id, replaced, "claim resubmitted");
        }
        if aging_moved {
            let replaced =
                store::cancel_replaced(conn, tenant, &p.claim_id, &timers, kinds::is_aging, now)
                    .await?;
            tracing::debug!(event_id = %meta.event_id, replaced, "earlier bill date learnt");
        }
        let set = store::insert_timers(conn, &timers, now).await?;
        tracing::debug!(event_id = %meta.event_id, timers = set, "claim submitted: timers set");
        Ok(())
    }

    /// Acts on a change of the claim's proof of timely filing (`filed_on`, set by a fresh
    /// status that shows the payer has the claim, cleared by a rejection): once filed, its
    /// timely-filing warnings are cancelled; rejected after that, the ones still ahead come
    /// back (and any never planned are planned).
    async fn follow_filing(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        existing: Option<&ProjectedClaim>,
        projected: &ProjectedClaim,
    ) -> Result<(), Error> {
        let tenant = &meta.tenant;
        let now = self.clock.now();
        let was_filed = existing.is_some_and(|c| c.filed_on.is_some());
        let filed = projected.filed_on.is_some();
        let kind = kinds::TIMELY_FILING_WARNING;
        if filed && !was_filed {
            let n = store::cancel_kind(
                conn,
                tenant,
                &projected.claim_id,
                kind,
                CancelReason::Filed,
                now,
            )
            .await?;
            tracing::debug!(event_id = %meta.event_id, cancelled = n, "claim filed: timely-filing warnings cancelled");
        } else if was_filed && !filed && !projected.is_closed() {
            let n = store::restore_kind(
                conn,
                tenant,
                &projected.claim_id,
                kind,
                CancelReason::Filed,
                now,
            )
            .await?;
            if let Some(first_service_date) = projected.facts.first_service_date {
                let facts = &projected.facts;
                let policy = store::load_policy(conn, tenant, &self.settings).await?;
                let cadence =
                    store::load_cadence(conn, tenant, &facts.payer_id, &self.settings).await?;
                let payer = self.payer_rules.for_payer(
                    tenant.as_str(),
                    &facts.payer_id,
                    first_service_date,
                );
                let owner = TimerOwner {
                    tenant_id: tenant.as_str(),
                    claim_id: &projected.claim_id,
                    clinic_id: &facts.clinic_id,
                    payer_id: &facts.payer_id,
                };
                let timers: Vec<NewTimer> = followup::plan_timely_filing_warnings(
                    first_service_date,
                    &policy,
                    &cadence,
                    payer,
                    now,
                )
                .into_iter()
                .map(|t| NewTimer::planned(t, owner))
                .collect();
                store::insert_timers(conn, &timers, now).await?;
            }
            tracing::debug!(event_id = %meta.event_id, restored = n, "claim rejected: timely-filing warnings back");
        }
        Ok(())
    }

    /// A status change: see [`ClaimEvents::on_status`].
    pub async fn on_claim_status_changed(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        news: StatusNews,
    ) -> Result<(), Error> {
        self.on_status(conn, meta, news).await
    }

    /// A payment: the remittance came (its "no ERA yet" timer is cancelled); see
    /// [`ClaimEvents::on_status`].
    pub async fn on_claim_paid(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        news: StatusNews,
    ) -> Result<(), Error> {
        self.remittance_came(conn, meta, &news.claim_id).await?;
        self.on_status(conn, meta, news).await
    }

    /// A remittance posted on the claim (ClaimPaid, ClaimDenied): its pending "no ERA yet"
    /// timer is cancelled, whatever the order the events come in.
    async fn remittance_came(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        claim_id: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        store::cancel_kind(
            conn,
            &meta.tenant,
            claim_id,
            kinds::NO_ERA,
            CancelReason::Remitted,
            now,
        )
        .await?;
        Ok(())
    }

    /// A 277/277CA's statuses of a claim (`followup::status_action`): F1/F4 (finalized) start
    /// the "no ERA yet" timer, `NO_ERA_DAYS` after the report, unless a remittance was seen or
    /// one is already pending; E* (the payer could not answer) moves the claim's pending
    /// status check to `STATUS_RETRY_BUSINESS_DAYS` business days after the report (a
    /// one-off check when none is pending). Nothing for a closed claim. The other categories
    /// are assignment's (tasks) or only moved the claim (ClaimStatusChanged).
    pub async fn on_claim_status_reported(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        report: StatusReport,
    ) -> Result<(), Error> {
        let tenant = &meta.tenant;
        let now = self.clock.now();
        let actions: Vec<StatusAction> = report
            .statuses
            .iter()
            .filter_map(|s| followup::status_action(&s.category))
            .collect();
        let await_era = actions.contains(&StatusAction::AwaitRemittance);
        let retry = actions.contains(&StatusAction::RetryStatusCheck);
        if !await_era && !retry {
            return Ok(());
        }
        let claim = store::get_claim(conn, tenant, &report.claim_id).await?;
        if claim.as_ref().is_some_and(ProjectedClaim::is_closed) {
            tracing::debug!(event_id = %meta.event_id, "status report on a closed claim: no timers");
            return Ok(());
        }
        let policy = store::load_policy(conn, tenant, &self.settings).await?;
        let report_day = meta.occurred.with_timezone(&policy.time_zone).date_naive();
        let owner = TimerOwner {
            tenant_id: tenant.as_str(),
            claim_id: &report.claim_id,
            clinic_id: &report.clinic_id,
            payer_id: &report.payer_id,
        };
        let status = claim.as_ref().and_then(|c| c.facts.status);
        if await_era && !followup::remittance_seen(status) {
            let pending =
                store::pending_of_kind(conn, tenant, &report.claim_id, kinds::NO_ERA).await?;
            if pending.is_empty() {
                let timer = NewTimer::planned(
                    followup::plan_no_era(report_day, followup::NO_ERA_DAYS, policy.time_zone),
                    owner,
                );
                store::set_pending(conn, &timer, now).await?;
            }
        }
        if retry {
            let calendar = store::load_calendar(conn, tenant).await?;
            let due_at = followup::plan_status_retry(
                report_day,
                followup::STATUS_RETRY_BUSINESS_DAYS,
                policy.time_zone,
                &calendar,
            );
            let pending =
                store::pending_of_kind(conn, tenant, &report.claim_id, kinds::STATUS_CHECK).await?;
            if !pending.iter().any(|t| t.due_at == due_at) {
                // The cadence goes on from the retry (same sequence and repeat); without a
                // pending check, the retry is a one-off.
                let payload = pending.first().map_or_else(
                    || TimerPayload {
                        payer_id: Some(report.payer_id.clone()),
                        sequence: Some(1),
                        repeat_business_days: Some(0),
                        max_checks: Some(1),
                        ..TimerPayload::default()
                    },
                    |t| t.payload.clone(),
                );
                store::cancel_kind(
                    conn,
                    tenant,
                    &report.claim_id,
                    kinds::STATUS_CHECK,
                    CancelReason::Replaced,
                    now,
                )
                .await?;
                let timer = NewTimer {
                    tenant_id: tenant.as_str().to_string(),
                    subject: report.claim_id.clone(),
                    kind: kinds::STATUS_CHECK.to_string(),
                    due_at,
                    clinic_id: report.clinic_id.clone(),
                    payload,
                };
                store::set_pending(conn, &timer, now).await?;
                tracing::debug!(event_id = %meta.event_id, %due_at, "status check retried after a payer error");
            }
        }
        Ok(())
    }

    /// ClaimStatusChanged and ClaimPaid: update the projection; a status showing the payer has
    /// the claim (277CA accepted, adjudicated) cancels the timely-filing warnings, a rejection
    /// brings them back; a closing status cancels what is left; a claim reopened (a reversed
    /// payment) gets the future timers its closing cancelled back.
    async fn on_status(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        news: StatusNews,
    ) -> Result<(), Error> {
        let tenant = &meta.tenant;
        let now = self.clock.now();
        let existing = store::get_claim(conn, tenant, &news.claim_id).await?;
        let (projected, fresh) = self
            .project(
                conn,
                meta,
                &news.claim_id,
                existing.as_ref(),
                ClaimFacts {
                    clinic_id: news.clinic_id.clone(),
                    payer_id: news.payer_id.clone(),
                    status: news.status,
                    balance_cents: news.balance_cents,
                    version: meta.version,
                    ..ClaimFacts::default()
                },
                None,
            )
            .await?;
        if !fresh {
            tracing::debug!(event_id = %meta.event_id, "stale claim event skipped");
            return Ok(());
        }
        self.follow_filing(conn, meta, existing.as_ref(), &projected)
            .await?;
        let was_closed = existing.as_ref().is_some_and(ProjectedClaim::is_closed);
        if projected.is_closed() {
            let n = store::cancel_subject(conn, tenant, &news.claim_id, now).await?;
            tracing::debug!(event_id = %meta.event_id, cancelled = n, "claim closed: timers cancelled");
        } else if was_closed {
            let n = store::reopen_subject(conn, tenant, &news.claim_id, now).await?;
            tracing::debug!(event_id = %meta.event_id, reopened = n, "claim reopened: timers restored");
        }
        Ok(())
    }

    /// Records the denial for the digest and, while the claim is open, sets its deadline
    /// warnings (`followup::plan_denied`): the first-level appeal when it can be appealed, and
    /// the corrected claim (from the remittance or the date of service, as the payer's rule
    /// says) unless it is a contractual or patient-responsibility adjustment.
    pub async fn on_claim_denied(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        p: Denial,
    ) -> Result<(), Error> {
        let tenant = &meta.tenant;
        let now = self.clock.now();
        self.remittance_came(conn, meta, &p.claim_id).await?;
        // The digest counts every denial, in whatever order it arrives.
        store::insert_denial(
            conn,
            &SeenDenial {
                tenant_id: tenant.as_str().to_string(),
                denial_id: p.denial_id.clone(),
                claim_id: p.claim_id.clone(),
                payer_id: p.payer_id.clone(),
                clinic_id: p.clinic_id.clone(),
                category: p.category,
                reason_code: p.reason_code.clone(),
                amount_cents: p.amount_cents,
                denial_date: p.denial_date,
                occurred_at: meta.occurred,
            },
        )
        .await?;
        let existing = store::get_claim(conn, tenant, &p.claim_id).await?;
        let (projected, fresh) = self
            .project(
                conn,
                meta,
                &p.claim_id,
                existing.as_ref(),
                ClaimFacts {
                    clinic_id: p.clinic_id.clone(),
                    payer_id: p.payer_id.clone(),
                    // A denial names no status (its ClaimStatusChanged does); a claim first
                    // heard of through its denial is taken as denied.
                    status: existing.is_none().then_some(ClaimStatus::Denied),
                    balance_cents: p.balance_cents,
                    version: meta.version,
                    ..ClaimFacts::default()
                },
                None,
            )
            .await?;
        if fresh {
            self.follow_filing(conn, meta, existing.as_ref(), &projected)
                .await?;
        }
        if projected.is_closed() {
            return Ok(());
        }
        let denial_date = p.denial_date.unwrap_or_else(|| meta.occurred.date_naive());
        let first_service_date = projected.facts.first_service_date;
        let policy = store::load_policy(conn, tenant, &self.settings).await?;
        let cadence = store::load_cadence(conn, tenant, &p.payer_id, &self.settings).await?;
        // Payer rules are effective by date of service; the denial date when it is not known.
        let payer = self.payer_rules.for_payer(
            tenant.as_str(),
            &p.payer_id,
            first_service_date.unwrap_or(denial_date),
        );
        let owner = TimerOwner {
            tenant_id: tenant.as_str(),
            claim_id: &p.claim_id,
            clinic_id: &p.clinic_id,
            payer_id: &p.payer_id,
        };
        let timers: Vec<NewTimer> = followup::plan_denied(
            &DeniedClaim {
                denial_id: &p.denial_id,
                denial_date,
                first_service_date,
                appealable: p.appealable,
                category: p.category,
            },
            &policy,
            &cadence,
            payer,
        )
        .into_iter()
        .map(|t| NewTimer::planned(t, owner))
        .collect();
        store::insert_timers(conn, &timers, now).await?;
        Ok(())
    }

    /// Folds what an event says of a claim into what the projection holds (`existing`) by
    /// the domain's rule (`ClaimFacts::merge`: the newest version kept, a stale event teaching
    /// only missing dates) and writes the result when it changed. Also keeps the original bill
    /// date (the earliest submission date, whatever the order) and, on a fresh event, the
    /// proof of timely filing: set by a status that shows the payer has the claim
    /// (`followup::proves_filing`), cleared by a rejection. Returns the claim as projected now
    /// and whether the event was fresh (not older than what was applied, here or by another
    /// replica meanwhile).
    async fn project(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        claim_id: &str,
        existing: Option<&ProjectedClaim>,
        event: ClaimFacts,
        original_bill_date: Option<NaiveDate>,
    ) -> Result<(ProjectedClaim, bool), Error> {
        let stored = existing.map(|c| &c.facts);
        let event_status = event.status;
        let event_submission = event.submission_date;
        let merged = ClaimFacts::merge(stored, event);
        let earliest = |a: Option<NaiveDate>, b: Option<NaiveDate>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let first_submission_date = earliest(
            earliest(
                existing.and_then(ProjectedClaim::aging_submission_date),
                original_bill_date,
            ),
            earliest(event_submission, merged.facts.submission_date),
        );
        let stored_filed = existing.and_then(|c| c.filed_on);
        let filed_on = match event_status {
            Some(ClaimStatus::Rejected) if merged.fresh => None,
            Some(s) if merged.fresh && followup::proves_filing(s) => {
                stored_filed.or(Some(meta.occurred.date_naive()))
            }
            _ => stored_filed,
        };
        let projected = ProjectedClaim {
            tenant_id: meta.tenant.as_str().to_string(),
            claim_id: claim_id.to_string(),
            facts: merged.facts,
            first_submission_date,
            filed_on,
        };
        let written = if merged.fresh || existing != Some(&projected) {
            store::upsert_claim(conn, &projected, self.clock.now()).await?
        } else {
            false
        };
        Ok((projected, merged.fresh && written))
    }

    /// A specialist's next follow-up date becomes a `follow_up` timer at local midnight.
    pub async fn on_follow_up_scheduled(
        &self,
        conn: &mut AnyConnection,
        meta: &EventMeta,
        p: FollowUp,
    ) -> Result<(), Error> {
        let tenant = &meta.tenant;
        let now = self.clock.now();
        let policy = store::load_policy(conn, tenant, &self.settings).await?;
        let claim = store::get_claim(conn, tenant, &p.claim_id).await?;
        let timer = NewTimer {
            tenant_id: tenant.as_str().to_string(),
            subject: p.claim_id,
            kind: kinds::FOLLOW_UP.to_string(),
            due_at: followup::local_midnight(p.due_date, policy.time_zone),
            clinic_id: claim
                .as_ref()
                .map(|c| c.facts.clinic_id.clone())
                .unwrap_or_default(),
            payload: TimerPayload {
                payer_id: claim.map(|c| c.facts.payer_id),
                follow_up_id: Some(p.follow_up_id),
                specialist_id: Some(p.specialist_id),
                task_id: Some(p.task_id),
                ..TimerPayload::default()
            },
        };
        store::insert_timers(conn, &[timer], now).await?;
        Ok(())
    }
}
