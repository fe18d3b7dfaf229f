//! What the scheduler sets for a claim: the tenant's aging policy, the payer's follow-up
//! cadence and warning lead times, and the configured defaults behind both ([`Settings`]).
//!
//! Pure: the store loads the rows, [`plan_submitted`] and [`plan_denied`] turn a claim event into
//! timers. Every timer is due at local midnight of its day in the tenant's time zone, so a
//! specialist finds the 30-day check in the morning queue of day 30, wherever the server runs.
use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use arflow_domain::deadlines::{appeal_deadline, timely_filing_deadline};
use arflow_domain::rules::PayerRules;

use crate::store::{NewTimer, TimerPayload};
use arflow_domain::calendar::Calendar;

/// Stored timer kinds (the `kind` column and `TimerFired.kind_name`).
pub mod kinds {
    /// Prefix of aging kinds: `aging_30`, `aging_60`, ...
    pub const AGING_PREFIX: &str = "aging_";
    pub const STATUS_CHECK: &str = "status_check";
    pub const TIMELY_FILING_WARNING: &str = "timely_filing_warning";
    pub const APPEAL_DEADLINE_WARNING: &str = "appeal_deadline_warning";
    pub const FOLLOW_UP: &str = "follow_up";

    pub fn aging(threshold_days: u32) -> String {
        format!("{AGING_PREFIX}{threshold_days}")
    }
}

/// Settings of the scheduler (`[scheduler]` in the config file; `ARFLOW_SCHEDULER__…`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Longest real wait between two firing ticks; the loop wakes earlier when the next
    /// timer is due sooner (on the simulated clock, much sooner).
    pub poll_interval_ms: u64,
    /// Timers fired per transaction.
    pub fire_batch_size: usize,
    /// Concurrent firing workers per replica on Postgres (SQLite always uses one: it has one
    /// writer). One worker fires about 16k timers/s on the benchmark machine, three about 42k.
    pub fire_workers: usize,
    /// Time zone of a tenant without a policy row (IANA name).
    pub default_time_zone: String,
    /// Aging basis of a tenant without a policy row: `submission` or `date_of_service`.
    pub aging_basis: AgingBasis,
    /// Aging thresholds of a tenant without a policy row, in days.
    pub aging_thresholds_days: Vec<u32>,
    /// First payer status check after this many business days without an answer.
    pub first_status_check_business_days: u32,
    /// Then every this many business days (0 = one check only).
    pub status_check_every_business_days: u32,
    /// At most this many status checks per claim.
    pub max_status_checks: u32,
    /// Warn this many days before the timely-filing deadline.
    pub timely_filing_warning_days: u32,
    /// Warn this many days before the first-level appeal deadline.
    pub appeal_warning_days: u32,
    /// Cron expression (with seconds, `cron` crate syntax) of the daily aging snapshot, in the
    /// tenant's time zone.
    pub aging_snapshot_cron: String,
    /// Cron expression of the weekly denial digest, in the tenant's time zone.
    pub denial_digest_cron: String,
    /// Cron expression of the reconciler (runs only where a claims source is wired).
    pub reconcile_cron: String,
    /// Cron expression of the daily purge of finished timers, in the tenant's time zone.
    pub timer_purge_cron: String,
    /// Fired and cancelled timers due more than this many days before a purge run are deleted
    /// (0: kept forever, and no purge job runs).
    pub finished_timer_retention_days: u32,
    /// Missed cron instants older than this are not run after a restart (the most recent ones
    /// within it are).
    pub cron_catch_up_secs: u64,
    /// Whether this process runs the cron jobs.
    pub cron_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval_ms: 1_000,
            fire_batch_size: 1_000,
            fire_workers: 3,
            default_time_zone: "America/New_York".into(),
            aging_basis: AgingBasis::Submission,
            aging_thresholds_days: vec![30, 60, 90],
            first_status_check_business_days: 14,
            status_check_every_business_days: 14,
            max_status_checks: 12,
            timely_filing_warning_days: 14,
            appeal_warning_days: 14,
            aging_snapshot_cron: "0 0 6 * * *".into(),
            denial_digest_cron: "0 0 7 * * Mon".into(),
            reconcile_cron: "0 30 2 * * *".into(),
            timer_purge_cron: "0 15 3 * * *".into(),
            // Past a year and a month: a timely-filing window (up to a year) and its follow-up
            // stay visible in ListTimers.
            finished_timer_retention_days: 400,
            cron_catch_up_secs: 7 * 24 * 3600,
            cron_enabled: true,
        }
    }
}

impl Settings {
    /// Refuses settings the scheduler cannot run with, naming the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        parse_time_zone(&self.default_time_zone)
            .map_err(|e| anyhow::anyhow!("scheduler.default_time_zone: {e}"))?;
        validate_thresholds(&self.aging_thresholds_days)
            .map_err(|e| anyhow::anyhow!("scheduler.aging_thresholds_days: {e}"))?;
        anyhow::ensure!(
            self.fire_batch_size > 0,
            "scheduler.fire_batch_size must be at least 1"
        );
        anyhow::ensure!(
            self.poll_interval_ms > 0,
            "scheduler.poll_interval_ms must be at least 1"
        );
        for (name, expr) in [
            ("aging_snapshot_cron", &self.aging_snapshot_cron),
            ("denial_digest_cron", &self.denial_digest_cron),
            ("reconcile_cron", &self.reconcile_cron),
            ("timer_purge_cron", &self.timer_purge_cron),
        ] {
            expr.parse::<cron::Schedule>()
                .map_err(|e| anyhow::anyhow!("scheduler.{name}: {e}"))?;
        }
        Ok(())
    }

    pub fn default_policy(&self) -> anyhow::Result<AgingPolicy> {
        Ok(AgingPolicy {
            basis: self.aging_basis,
            thresholds_days: self.aging_thresholds_days.clone(),
            time_zone: parse_time_zone(&self.default_time_zone)?,
        })
    }

    pub fn default_cadence(&self) -> Cadence {
        Cadence {
            first_check_business_days: self.first_status_check_business_days,
            repeat_business_days: self.status_check_every_business_days,
            max_checks: self.max_status_checks,
            timely_filing_warning_days: self.timely_filing_warning_days,
            appeal_warning_days: self.appeal_warning_days,
        }
    }
}

pub fn parse_time_zone(name: &str) -> anyhow::Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| anyhow::anyhow!("unknown time zone {name:?} (an IANA name)"))
}

/// Thresholds must be positive, increasing and at most ten years.
pub fn validate_thresholds(days: &[u32]) -> anyhow::Result<()> {
    anyhow::ensure!(!days.is_empty(), "at least one threshold");
    anyhow::ensure!(
        days.windows(2).all(|w| w[0] < w[1]),
        "thresholds must increase"
    );
    anyhow::ensure!(
        days.iter().all(|d| (1..=3650).contains(d)),
        "thresholds must be 1..=3650 days"
    );
    Ok(())
}

/// Where aging counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgingBasis {
    Submission,
    DateOfService,
}

impl AgingBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            AgingBasis::Submission => "submission",
            AgingBasis::DateOfService => "date_of_service",
        }
    }

    pub fn parse(text: &str) -> Option<AgingBasis> {
        match text {
            "submission" => Some(AgingBasis::Submission),
            "date_of_service" => Some(AgingBasis::DateOfService),
            _ => None,
        }
    }
}

/// A tenant's aging policy.
#[derive(Clone, Debug, PartialEq)]
pub struct AgingPolicy {
    pub basis: AgingBasis,
    pub thresholds_days: Vec<u32>,
    pub time_zone: Tz,
}

/// A payer's follow-up cadence and warning lead times for a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    pub first_check_business_days: u32,
    pub repeat_business_days: u32,
    pub max_checks: u32,
    pub timely_filing_warning_days: u32,
    pub appeal_warning_days: u32,
}

/// Local midnight of `day` in `tz`, as a UTC instant. A zone whose clocks skip midnight that
/// day (DST at 00:00) gives the first instant of the day.
pub fn local_midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = day.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        // In a gap: one hour later exists in every zone with a midnight transition.
        None => tz
            .from_local_datetime(&(naive + chrono::TimeDelta::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| naive.and_utc()),
    }
}

/// What a ClaimSubmitted tells the planner.
#[derive(Clone, Debug)]
pub struct SubmittedClaim<'a> {
    pub tenant_id: &'a str,
    pub claim_id: &'a str,
    pub clinic_id: &'a str,
    pub payer_id: &'a str,
    pub submission_date: NaiveDate,
    pub first_service_date: NaiveDate,
}

/// The timers a submitted claim gets: one per aging threshold, the first payer status check
/// (the next ones are set as each fires, see `timers`), and the timely-filing warning.
pub fn plan_submitted(
    claim: &SubmittedClaim<'_>,
    policy: &AgingPolicy,
    cadence: &Cadence,
    calendar: &Calendar,
    payer: &PayerRules,
) -> Vec<NewTimer> {
    let mut timers = Vec::new();
    let base = |kind: String, day: NaiveDate, payload: TimerPayload| NewTimer {
        tenant_id: claim.tenant_id.to_string(),
        subject: claim.claim_id.to_string(),
        kind,
        due_at: local_midnight(day, policy.time_zone),
        clinic_id: claim.clinic_id.to_string(),
        payload: TimerPayload {
            payer_id: Some(claim.payer_id.to_string()),
            ..payload
        },
    };
    let basis_date = match policy.basis {
        AgingBasis::Submission => claim.submission_date,
        AgingBasis::DateOfService => claim.first_service_date,
    };
    for &days in &policy.thresholds_days {
        let Some(day) = basis_date.checked_add_days(Days::new(u64::from(days))) else {
            continue;
        };
        timers.push(base(
            kinds::aging(days),
            day,
            TimerPayload {
                threshold_days: Some(days),
                basis: Some(policy.basis.as_str().to_string()),
                basis_date: Some(crate::store::date_text(basis_date)),
                ..TimerPayload::default()
            },
        ));
    }
    if cadence.max_checks > 0 {
        // The payer had the claim from its submission: count business days from there.
        let day =
            calendar.add_business_days(claim.submission_date, cadence.first_check_business_days);
        timers.push(base(
            kinds::STATUS_CHECK.to_string(),
            day,
            TimerPayload {
                sequence: Some(1),
                repeat_business_days: Some(cadence.repeat_business_days),
                max_checks: Some(cadence.max_checks),
                ..TimerPayload::default()
            },
        ));
    }
    // A rejected claim was never filed, so the filing clock runs from the first date of
    // service whatever happened since (DESIGN §7); warn while there is time to refile.
    let deadline = timely_filing_deadline(claim.first_service_date, payer);
    if let Some(day) =
        deadline.checked_sub_days(Days::new(u64::from(cadence.timely_filing_warning_days)))
    {
        timers.push(base(
            kinds::TIMELY_FILING_WARNING.to_string(),
            day,
            TimerPayload {
                deadline: Some(crate::store::date_text(deadline)),
                lead_days: Some(cadence.timely_filing_warning_days),
                ..TimerPayload::default()
            },
        ));
    }
    timers
}

/// What a ClaimDenied tells the planner.
#[derive(Clone, Debug)]
pub struct DeniedClaim<'a> {
    pub tenant_id: &'a str,
    pub claim_id: &'a str,
    pub clinic_id: &'a str,
    pub payer_id: &'a str,
    pub denial_id: &'a str,
    pub denial_date: NaiveDate,
}

/// The appeal-deadline warning of a denial: first level, counted from the denial (remittance)
/// date; none when the payer has no appeal level configured.
pub fn plan_denied(
    claim: &DeniedClaim<'_>,
    policy: &AgingPolicy,
    cadence: &Cadence,
    payer: &PayerRules,
) -> Option<NewTimer> {
    let deadline = appeal_deadline(claim.denial_date, 1, payer)?;
    let day = deadline.checked_sub_days(Days::new(u64::from(cadence.appeal_warning_days)))?;
    Some(NewTimer {
        tenant_id: claim.tenant_id.to_string(),
        subject: claim.claim_id.to_string(),
        kind: kinds::APPEAL_DEADLINE_WARNING.to_string(),
        due_at: local_midnight(day, policy.time_zone),
        clinic_id: claim.clinic_id.to_string(),
        payload: TimerPayload {
            payer_id: Some(claim.payer_id.to_string()),
            deadline: Some(crate::store::date_text(deadline)),
            lead_days: Some(cadence.appeal_warning_days),
            denial_id: Some(claim.denial_id.to_string()),
            ..TimerPayload::default()
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arflow_domain::rules::PayerRuleSet;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn claim() -> SubmittedClaim<'static> {
        SubmittedClaim {
            tenant_id: "t1",
            claim_id: "c1",
            clinic_id: "clinic-1",
            payer_id: "87726",
            submission_date: ymd(2026, 1, 5),
            first_service_date: ymd(2025, 12, 29),
        }
    }

    #[test]
    fn default_settings_are_valid() {
        Settings::default().validate().unwrap();
        let bad = Settings {
            aging_thresholds_days: vec![60, 30],
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
        let bad = Settings {
            default_time_zone: "Mars/Olympus".into(),
            ..Settings::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("default_time_zone")
        );
    }

    #[test]
    fn submitted_claim_gets_aging_status_check_and_filing_warning() {
        let s = Settings::default();
        let policy = AgingPolicy {
            time_zone: chrono_tz::UTC,
            thresholds_days: vec![30, 60, 90, 120],
            ..s.default_policy().unwrap()
        };
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", "87726", ymd(2025, 12, 29))
            .clone();
        let timers = plan_submitted(
            &claim(),
            &policy,
            &s.default_cadence(),
            &Calendar::us_federal(),
            &payer,
        );
        let kinds: Vec<(&str, NaiveDate)> = timers
            .iter()
            .map(|t| (t.kind.as_str(), t.due_at.date_naive()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("aging_30", ymd(2026, 2, 4)),
                ("aging_60", ymd(2026, 3, 6)),
                ("aging_90", ymd(2026, 4, 5)),
                ("aging_120", ymd(2026, 5, 5)),
                // 14 business days from Jan 5 with MLK day: Jan 26.
                ("status_check", ymd(2026, 1, 26)),
                // Commercial 90 days from DOS Dec 29 = Mar 29, minus 14 days.
                ("timely_filing_warning", ymd(2026, 3, 15)),
            ]
        );
        assert_eq!(timers[5].payload.deadline.as_deref(), Some("2026-03-29"));
    }

    #[test]
    fn aging_from_date_of_service_when_the_tenant_says_so() {
        let s = Settings::default();
        let policy = AgingPolicy {
            basis: AgingBasis::DateOfService,
            time_zone: chrono_tz::UTC,
            ..s.default_policy().unwrap()
        };
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", "87726", ymd(2025, 12, 29))
            .clone();
        let timers = plan_submitted(
            &claim(),
            &policy,
            &s.default_cadence(),
            &Calendar::us_federal(),
            &payer,
        );
        assert_eq!(timers[0].due_at.date_naive(), ymd(2026, 1, 28));
        assert_eq!(timers[0].payload.basis.as_deref(), Some("date_of_service"));
    }

    #[test]
    fn timers_fall_at_local_midnight() {
        let t = local_midnight(ymd(2026, 7, 1), chrono_tz::America::New_York);
        assert_eq!(t.to_rfc3339(), "2026-07-01T04:00:00+00:00");
        let t = local_midnight(ymd(2026, 1, 1), chrono_tz::America::New_York);
        assert_eq!(t.to_rfc3339(), "2026-01-01T05:00:00+00:00");
    }

    #[test]
    fn denial_gets_an_appeal_warning_from_the_payer_window() {
        let s = Settings::default();
        let policy = AgingPolicy {
            time_zone: chrono_tz::UTC,
            ..s.default_policy().unwrap()
        };
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", arflow_domain::rules::payer::MEDICARE, ymd(2026, 1, 1))
            .clone();
        let denied = DeniedClaim {
            tenant_id: "t1",
            claim_id: "c1",
            clinic_id: "k",
            payer_id: arflow_domain::rules::payer::MEDICARE,
            denial_id: "d1",
            denial_date: ymd(2026, 2, 1),
        };
        let t = plan_denied(&denied, &policy, &s.default_cadence(), &payer).unwrap();
        // Medicare redetermination: 120 days from Feb 1 = Jun 1; warned 14 days before.
        assert_eq!(t.payload.deadline.as_deref(), Some("2026-06-01"));
        assert_eq!(t.due_at.date_naive(), ymd(2026, 5, 18));
    }
}
