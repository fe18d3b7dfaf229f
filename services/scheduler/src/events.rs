//! Reacting to claim events (stream `claims`) and follow-up promises (stream `assignment`):
//! the consumer group `scheduler`'s [`Handler`].
//!
//! Everything runs inside the bus's consumer transaction with its inbox, so a redelivered
//! event changes nothing; the unique key on timers makes that certain even for an event
//! repeated under another id.
//!
//! Ordering: replicas and redelivery can hand over a claim's events out of order. The
//! projection `scheduler_claims` keeps the last aggregate version applied. Several events share
//! a version (a draft -> submitted move publishes ClaimStatusChanged and ClaimSubmitted with
//! one version; a posting publishes ClaimPaid, ClaimDenied and ClaimStatusChanged with one),
//! so an event at the recorded version still applies (its effects are idempotent) and only an
//! older one is stale: a stale status never overwrites a newer one, and a ClaimSubmitted that
//! arrives after its claim was paid sets no timers.
use std::sync::Arc;

use arflow_api::common::v1::Date;
use arflow_api::events::v1 as events;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::Clock;
use arflow_platform::bus::{self, Envelope, Handler};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AnyConnection;

use crate::policy::{self, DeniedClaim, Settings, SubmittedClaim, kinds};
use crate::store::{self, NewTimer, ProjectedClaim, SeenDenial, TenantId, TimerPayload};

pub const CLAIM_SUBMITTED: &str = "arflow.events.v1.ClaimSubmitted";
pub const CLAIM_STATUS_CHANGED: &str = "arflow.events.v1.ClaimStatusChanged";
pub const CLAIM_PAID: &str = "arflow.events.v1.ClaimPaid";
pub const CLAIM_DENIED: &str = "arflow.events.v1.ClaimDenied";
pub const FOLLOW_UP_SCHEDULED: &str = "arflow.events.v1.FollowUpScheduled";

/// The scheduler's consumer: claim events in, timers and projection rows out.
#[derive(Debug)]
pub struct ClaimEvents {
    pub(crate) settings: Arc<Settings>,
    pub(crate) payer_rules: Arc<PayerRuleSet>,
    pub(crate) clock: Clock,
}

#[async_trait::async_trait]
impl Handler for ClaimEvents {
    async fn handle(&self, conn: &mut AnyConnection, event: &Envelope) -> anyhow::Result<()> {
        match event.event_type.as_str() {
            CLAIM_SUBMITTED => {
                self.on_submitted(conn, event, bus::decode_payload(event)?)
                    .await
            }
            CLAIM_STATUS_CHANGED => {
                let p: events::ClaimStatusChanged = bus::decode_payload(event)?;
                self.on_status(
                    conn,
                    event,
                    StatusNews {
                        claim_id: &p.claim_id,
                        clinic_id: &p.clinic_id,
                        payer_id: &p.payer_id,
                        status: &p.to_status,
                        balance_cents: p.balance_cents,
                    },
                )
                .await
            }
            CLAIM_PAID => {
                let p: events::ClaimPaid = bus::decode_payload(event)?;
                self.on_status(
                    conn,
                    event,
                    StatusNews {
                        claim_id: &p.claim_id,
                        clinic_id: &p.clinic_id,
                        payer_id: &p.payer_id,
                        status: &p.status,
                        balance_cents: p.balance_cents,
                    },
                )
                .await
            }
            CLAIM_DENIED => {
                self.on_denied(conn, event, bus::decode_payload(event)?)
                    .await
            }
            FOLLOW_UP_SCHEDULED => {
                self.on_follow_up(conn, event, bus::decode_payload(event)?)
                    .await
            }
            // RemittancePosted and events of later versions: nothing to schedule.
            _ => Ok(()),
        }
    }
}

/// The part of a status-bearing event the scheduler uses.
struct StatusNews<'a> {
    claim_id: &'a str,
    clinic_id: &'a str,
    payer_id: &'a str,
    status: &'a str,
    balance_cents: i64,
}

impl StatusNews<'_> {
    /// Nothing is left to follow up: a closing status, or nothing owed.
    fn closes(&self) -> bool {
        store::is_closed(self.status, self.balance_cents)
    }
}

fn to_date(d: Option<&Date>) -> Option<NaiveDate> {
    let d = d?;
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

impl ClaimEvents {
    async fn on_submitted(
        &self,
        conn: &mut AnyConnection,
        event: &Envelope,
        p: events::ClaimSubmitted,
    ) -> anyhow::Result<()> {
        let tenant = TenantId::new(&event.tenant_id);
        let now = self.clock.now();
        let occurred = bus::occur_time(event).unwrap_or(now);
        let submission_date =
            to_date(p.submission_date.as_ref()).unwrap_or_else(|| occurred.date_naive());
        let first_service_date = to_date(p.first_service_date.as_ref()).unwrap_or(submission_date);
        let existing = store::get_claim(conn, &tenant, &p.claim_id).await?;
        // Submitted again (after a rejection) on another day: the payer's clock restarts, so
        // the aging and status checks planned from the earlier submission give way.
        let resubmitted = existing.as_ref().is_some_and(|c| {
            c.last_version <= event.aggregate_version
                && c.submission_date.is_some_and(|d| d != submission_date)
        });
        let projected = match existing {
            // A newer event was applied first: keep its status and balance, learn the dates.
            Some(c) if c.last_version > event.aggregate_version => ProjectedClaim {
                submission_date: c.submission_date.or(Some(submission_date)),
                first_service_date: c.first_service_date.or(Some(first_service_date)),
                ..c
            },
            _ => ProjectedClaim {
                tenant_id: event.tenant_id.clone(),
                claim_id: p.claim_id.clone(),
                clinic_id: p.clinic_id.clone(),
                payer_id: p.payer_id.clone(),
                status: p.status.clone(),
                submission_date: Some(submission_date),
                first_service_date: Some(first_service_date),
                balance_cents: p.balance_cents,
                last_version: event.aggregate_version,
            },
        };
        store::upsert_claim(conn, &projected, now).await?;
        if store::is_closed(&projected.status, projected.balance_cents) {
            tracing::debug!(event_id = %event.event_id, "claim already closed: no timers");
            return Ok(());
        }
        let policy = store::load_policy(conn, &tenant, &self.settings).await?;
        let cadence = store::load_cadence(conn, &tenant, &p.payer_id, &self.settings).await?;
        let calendar = store::load_calendar(conn, &tenant).await?;
        let payer = self
            .payer_rules
            .for_payer(&event.tenant_id, &p.payer_id, first_service_date);
        let timers = policy::plan_submitted(
            &SubmittedClaim {
                tenant_id: &event.tenant_id,
                claim_id: &p.claim_id,
                clinic_id: &p.clinic_id,
                payer_id: &p.payer_id,
                submission_date,
                first_service_date,
            },
            &policy,
            &cadence,
            &calendar,
            payer,
        );
        if resubmitted {
            let replaced = store::cancel_replaced(conn, &tenant, &p.claim_id, &timers, now).await?;
            tracing::debug!(event_id = %event.event_id, replaced, "claim resubmitted");
        }
        let set = store::insert_timers(conn, &timers, now).await?;
        tracing::debug!(event_id = %event.event_id, timers = set, "claim submitted: timers set");
        Ok(())
    }

    /// ClaimStatusChanged and ClaimPaid: update the projection; a closing status cancels what
    /// is left; a claim reopened (a reversed payment) gets its cancelled future timers back.
    async fn on_status(
        &self,
        conn: &mut AnyConnection,
        event: &Envelope,
        news: StatusNews<'_>,
    ) -> anyhow::Result<()> {
        let tenant = TenantId::new(&event.tenant_id);
        let now = self.clock.now();
        let existing = store::get_claim(conn, &tenant, news.claim_id).await?;
        if let Some(c) = &existing
            && c.last_version > event.aggregate_version
        {
            tracing::debug!(event_id = %event.event_id, "stale claim event skipped");
            return Ok(());
        }
        let was_closed = existing
            .as_ref()
            .is_some_and(|c| store::is_closed(&c.status, c.balance_cents));
        let status = news.status;
        let projected = match existing {
            Some(c) => ProjectedClaim {
                status: status.to_string(),
                balance_cents: news.balance_cents,
                last_version: event.aggregate_version,
                ..c
            },
            None => ProjectedClaim {
                tenant_id: event.tenant_id.clone(),
                claim_id: news.claim_id.to_string(),
                clinic_id: news.clinic_id.to_string(),
                payer_id: news.payer_id.to_string(),
                status: status.to_string(),
                submission_date: None,
                first_service_date: None,
                balance_cents: news.balance_cents,
                last_version: event.aggregate_version,
            },
        };
        store::upsert_claim(conn, &projected, now).await?;
        if news.closes() {
            let n = store::cancel_subject(conn, &tenant, news.claim_id, now).await?;
            tracing::debug!(event_id = %event.event_id, cancelled = n, "claim closed: timers cancelled");
        } else if was_closed {
            let n = store::reopen_subject(conn, &tenant, news.claim_id, now).await?;
            tracing::debug!(event_id = %event.event_id, reopened = n, "claim reopened: timers restored");
        }
        Ok(())
    }

    async fn on_denied(
        &self,
        conn: &mut AnyConnection,
        event: &Envelope,
        p: events::ClaimDenied,
    ) -> anyhow::Result<()> {
        let tenant = TenantId::new(&event.tenant_id);
        let now = self.clock.now();
        let occurred = bus::occur_time(event).unwrap_or(now);
        let denial_date = to_date(p.denial_date.as_ref());
        // The digest counts every denial, in whatever order it arrives.
        store::insert_denial(
            conn,
            &SeenDenial {
                tenant_id: event.tenant_id.clone(),
                denial_id: p.denial_id.clone(),
                claim_id: p.claim_id.clone(),
                payer_id: p.payer_id.clone(),
                clinic_id: p.clinic_id.clone(),
                category: p.category.clone(),
                reason_code: format!("{}-{}", p.group_code, p.reason_code),
                amount_cents: p.amount_cents,
                denial_date,
                occurred_at: occurred,
            },
        )
        .await?;
        let existing = store::get_claim(conn, &tenant, &p.claim_id).await?;
        let closed = match existing {
            Some(c) if c.last_version > event.aggregate_version => {
                store::is_closed(&c.status, c.balance_cents)
            }
            existing => {
                let projected = match existing {
                    Some(c) => ProjectedClaim {
                        balance_cents: p.balance_cents,
                        last_version: event.aggregate_version,
                        ..c
                    },
                    None => ProjectedClaim {
                        tenant_id: event.tenant_id.clone(),
                        claim_id: p.claim_id.clone(),
                        clinic_id: p.clinic_id.clone(),
                        payer_id: p.payer_id.clone(),
                        status: "CLAIM_STATUS_DENIED".to_string(),
                        submission_date: None,
                        first_service_date: None,
                        balance_cents: p.balance_cents,
                        last_version: event.aggregate_version,
                    },
                };
                store::upsert_claim(conn, &projected, now).await?;
                store::is_closed(&projected.status, projected.balance_cents)
            }
        };
        if !p.appealable || closed {
            return Ok(());
        }
        let denial_date = denial_date.unwrap_or_else(|| occurred.date_naive());
        let policy = store::load_policy(conn, &tenant, &self.settings).await?;
        let cadence = store::load_cadence(conn, &tenant, &p.payer_id, &self.settings).await?;
        let payer = self
            .payer_rules
            .for_payer(&event.tenant_id, &p.payer_id, denial_date);
        if let Some(timer) = policy::plan_denied(
            &DeniedClaim {
                tenant_id: &event.tenant_id,
                claim_id: &p.claim_id,
                clinic_id: &p.clinic_id,
                payer_id: &p.payer_id,
                denial_id: &p.denial_id,
                denial_date,
            },
            &policy,
            &cadence,
            payer,
        ) {
            store::insert_timers(conn, &[timer], now).await?;
        }
        Ok(())
    }

    /// A specialist's next follow-up date becomes a `follow_up` timer at local midnight.
    async fn on_follow_up(
        &self,
        conn: &mut AnyConnection,
        event: &Envelope,
        p: events::FollowUpScheduled,
    ) -> anyhow::Result<()> {
        let tenant = TenantId::new(&event.tenant_id);
        let now = self.clock.now();
        let Some(due) = to_date(p.due_date.as_ref()) else {
            anyhow::bail!("FollowUpScheduled without a valid due_date");
        };
        let policy = store::load_policy(conn, &tenant, &self.settings).await?;
        let claim = store::get_claim(conn, &tenant, &p.claim_id).await?;
        let timer = NewTimer {
            tenant_id: event.tenant_id.clone(),
            subject: p.claim_id.clone(),
            kind: kinds::FOLLOW_UP.to_string(),
            due_at: policy::local_midnight(due, policy.time_zone),
            clinic_id: claim
                .as_ref()
                .map(|c| c.clinic_id.clone())
                .unwrap_or_default(),
            payload: TimerPayload {
                payer_id: claim.map(|c| c.payer_id),
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

/// `at` as a proto timestamp.
pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
