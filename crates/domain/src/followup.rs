//! Follow-up timer planning: what a claim gets from the tenant's aging policy, the payer's
//! follow-up cadence and the warning lead times, and when each timer falls.
//!
//! Pure: the scheduler loads the policy, cadence, calendar and payer rules, and turns a claim
//! event into timers with [`plan_submitted`], [`plan_denied`] and [`plan_next_status_check`].
//! Every timer is due at local midnight of its day in the tenant's time zone
//! ([`local_midnight`]), so a specialist finds the 30-day check in the morning queue of day 30,
//! wherever the server runs.
use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::deadlines::{appeal_deadline, timely_filing_deadline};
use crate::rules::PayerRules;
use crate::status::ClaimStatus;

/// Timer kinds (the scheduler's `kind` column and `TimerFired.kind_name`).
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

    pub fn is_aging(kind: &str) -> bool {
        kind.starts_with(AGING_PREFIX)
    }

    /// Kinds a resubmission replaces: the payer's clock restarts, so aging and status checks
    /// are planned again from the new submission; deadline warnings and follow-ups stay.
    pub fn replaced_on_resubmission(kind: &str) -> bool {
        is_aging(kind) || kind == STATUS_CHECK
    }
}

/// Nothing is left to follow up: a closing status (paid, written off, closed), or nothing
/// owed (a claim is never submitted with a zero charge, so a zero balance means settled). An
/// unknown status (None) counts as open.
pub fn is_closed(status: Option<ClaimStatus>, balance_cents: i64) -> bool {
    status.is_some_and(|s| !s.is_open()) || balance_cents <= 0
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

/// The time zone of an IANA name.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone {name:?} (an IANA name)"))
}

/// Thresholds must be positive, increasing and at most ten years.
pub fn validate_thresholds(days: &[u32]) -> Result<(), String> {
    if days.is_empty() {
        return Err("at least one threshold".into());
    }
    if !days.windows(2).all(|w| w[0] < w[1]) {
        return Err("thresholds must increase".into());
    }
    if !days.iter().all(|d| (1..=3650).contains(d)) {
        return Err("thresholds must be 1..=3650 days".into());
    }
    Ok(())
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

/// What a planned timer carries besides its kind and due instant: ids, codes, dates and
/// numbers only, never patient data. The scheduler stores them with the timer and publishes
/// them in TimerFired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerDetails {
    pub threshold_days: Option<u32>,
    pub basis: Option<AgingBasis>,
    pub basis_date: Option<NaiveDate>,
    pub sequence: Option<u32>,
    pub repeat_business_days: Option<u32>,
    pub max_checks: Option<u32>,
    pub deadline: Option<NaiveDate>,
    pub lead_days: Option<u32>,
    pub denial_id: Option<String>,
}

/// A timer the planner sets for a claim; the caller adds the tenant, claim, clinic and payer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTimer {
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub details: TimerDetails,
}

/// What a ClaimSubmitted tells the planner.
#[derive(Clone, Copy, Debug)]
pub struct SubmittedClaim {
    pub submission_date: NaiveDate,
    pub first_service_date: NaiveDate,
}

/// The timers a submitted claim gets: one per aging threshold, the first payer status check
/// (the next ones are set as each fires, see [`plan_next_status_check`]), and the
/// timely-filing warning.
pub fn plan_submitted(
    claim: &SubmittedClaim,
    policy: &AgingPolicy,
    cadence: &Cadence,
    calendar: &Calendar,
    payer: &PayerRules,
) -> Vec<PlannedTimer> {
    let mut timers = Vec::new();
    let at = |kind: String, day: NaiveDate, details: TimerDetails| PlannedTimer {
        kind,
        due_at: local_midnight(day, policy.time_zone),
        details,
    };
    let basis_date = match policy.basis {
        AgingBasis::Submission => claim.submission_date,
        AgingBasis::DateOfService => claim.first_service_date,
    };
    for &days in &policy.thresholds_days {
        let Some(day) = basis_date.checked_add_days(Days::new(u64::from(days))) else {
            continue;
        };
        timers.push(at(
            kinds::aging(days),
            day,
            TimerDetails {
                threshold_days: Some(days),
                basis: Some(policy.basis),
                basis_date: Some(basis_date),
                ..TimerDetails::default()
            },
        ));
    }
    if cadence.max_checks > 0 {
        // The payer had the claim from its submission: count business days from there.
        let day =
            calendar.add_business_days(claim.submission_date, cadence.first_check_business_days);
        timers.push(at(
            kinds::STATUS_CHECK.to_string(),
            day,
            TimerDetails {
                sequence: Some(1),
                repeat_business_days: Some(cadence.repeat_business_days),
                max_checks: Some(cadence.max_checks),
                ..TimerDetails::default()
            },
        ));
    }
    // A rejected claim was never filed, so the filing clock runs from the first date of
    // service whatever happened since (docs/design.md §7); warn while there is time to refile.
    let deadline = timely_filing_deadline(claim.first_service_date, payer);
    if let Some(day) =
        deadline.checked_sub_days(Days::new(u64::from(cadence.timely_filing_warning_days)))
    {
        timers.push(at(
            kinds::TIMELY_FILING_WARNING.to_string(),
            day,
            TimerDetails {
                deadline: Some(deadline),
                lead_days: Some(cadence.timely_filing_warning_days),
                ..TimerDetails::default()
            },
        ));
    }
    timers
}

/// What a ClaimDenied tells the planner.
#[derive(Clone, Debug)]
pub struct DeniedClaim<'a> {
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
) -> Option<PlannedTimer> {
    let deadline = appeal_deadline(claim.denial_date, 1, payer)?;
    let day = deadline.checked_sub_days(Days::new(u64::from(cadence.appeal_warning_days)))?;
    Some(PlannedTimer {
        kind: kinds::APPEAL_DEADLINE_WARNING.to_string(),
        due_at: local_midnight(day, policy.time_zone),
        details: TimerDetails {
            deadline: Some(deadline),
            lead_days: Some(cadence.appeal_warning_days),
            denial_id: Some(claim.denial_id.to_string()),
            ..TimerDetails::default()
        },
    })
}

/// A status check that fired.
#[derive(Clone, Copy, Debug)]
pub struct FiredStatusCheck {
    pub due_at: DateTime<Utc>,
    /// 1 for the first check.
    pub sequence: u32,
    /// Business days to the next check (0 = no more checks).
    pub repeat_business_days: u32,
    pub max_checks: u32,
}

impl FiredStatusCheck {
    /// Whether the cadence allows another check after this one.
    pub fn has_next(&self) -> bool {
        self.repeat_business_days > 0 && self.sequence < self.max_checks
    }
}

/// The next status check after `fired`, `repeat_business_days` business days after the local
/// day it fell on: (due instant, its sequence). None when the cadence allows no more checks.
/// A claim holds at most one pending check, so each sets its successor as it fires (the
/// caller checks the claim is still open).
pub fn plan_next_status_check(
    fired: &FiredStatusCheck,
    time_zone: Tz,
    calendar: &Calendar,
) -> Option<(DateTime<Utc>, u32)> {
    if !fired.has_next() {
        return None;
    }
    let local_day = fired.due_at.with_timezone(&time_zone).date_naive();
    let next_day = calendar.add_business_days(local_day, fired.repeat_business_days);
    Some((local_midnight(next_day, time_zone), fired.sequence + 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rules::PayerRuleSet;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn claim() -> SubmittedClaim {
        SubmittedClaim {
            submission_date: ymd(2026, 1, 5),
            first_service_date: ymd(2025, 12, 29),
        }
    }

    fn policy(basis: AgingBasis, thresholds_days: Vec<u32>) -> AgingPolicy {
        AgingPolicy {
            basis,
            thresholds_days,
            time_zone: chrono_tz::UTC,
        }
    }

    /// The scheduler's default cadence: first check after 14 business days, then every 14, at
    /// most 12; warnings 14 days ahead.
    fn cadence() -> Cadence {
        Cadence {
            first_check_business_days: 14,
            repeat_business_days: 14,
            max_checks: 12,
            timely_filing_warning_days: 14,
            appeal_warning_days: 14,
        }
    }

    #[test]
    fn thresholds_and_time_zones_are_checked() {
        validate_thresholds(&[30, 60, 90]).unwrap();
        assert!(validate_thresholds(&[60, 30]).is_err());
        assert!(validate_thresholds(&[]).is_err());
        assert!(validate_thresholds(&[0]).is_err());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert_eq!(
            parse_time_zone("America/New_York").unwrap(),
            chrono_tz::America::New_York
        );
    }

    #[test]
    fn closed_means_a_closing_status_or_nothing_owed() {
        assert!(is_closed(Some(ClaimStatus::Paid), 100));
        assert!(is_closed(Some(ClaimStatus::WrittenOff), 100));
        assert!(is_closed(Some(ClaimStatus::Closed), 100));
        assert!(is_closed(Some(ClaimStatus::PartiallyPaid), 0));
        assert!(!is_closed(Some(ClaimStatus::Denied), 100));
        assert!(!is_closed(None, 100));
    }

    #[test]
    fn submitted_claim_gets_aging_status_check_and_filing_warning() {
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", "87726", ymd(2025, 12, 29))
            .clone();
        let timers = plan_submitted(
            &claim(),
            &policy(AgingBasis::Submission, vec![30, 60, 90, 120]),
            &cadence(),
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
        assert_eq!(timers[5].details.deadline, Some(ymd(2026, 3, 29)));
    }

    #[test]
    fn aging_from_date_of_service_when_the_tenant_says_so() {
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", "87726", ymd(2025, 12, 29))
            .clone();
        let timers = plan_submitted(
            &claim(),
            &policy(AgingBasis::DateOfService, vec![30, 60, 90]),
            &cadence(),
            &Calendar::us_federal(),
            &payer,
        );
        assert_eq!(timers[0].due_at.date_naive(), ymd(2026, 1, 28));
        assert_eq!(timers[0].details.basis, Some(AgingBasis::DateOfService));
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
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", crate::rules::payer::MEDICARE, ymd(2026, 1, 1))
            .clone();
        let denied = DeniedClaim {
            denial_id: "d1",
            denial_date: ymd(2026, 2, 1),
        };
        let t = plan_denied(
            &denied,
            &policy(AgingBasis::Submission, vec![30, 60, 90]),
            &cadence(),
            &payer,
        )
        .unwrap();
        // Medicare redetermination: 120 days from Feb 1 = Jun 1; warned 14 days before.
        assert_eq!(t.details.deadline, Some(ymd(2026, 6, 1)));
        assert_eq!(t.due_at.date_naive(), ymd(2026, 5, 18));
    }

    #[test]
    fn next_status_check_counts_business_days_from_the_local_day() {
        let tz = chrono_tz::America::New_York;
        let fired = FiredStatusCheck {
            due_at: local_midnight(ymd(2026, 1, 26), tz),
            sequence: 1,
            repeat_business_days: 14,
            max_checks: 12,
        };
        let (due, sequence) = plan_next_status_check(&fired, tz, &Calendar::us_federal()).unwrap();
        // 14 business days after Mon Jan 26: Fri Feb 13.
        assert_eq!(due, local_midnight(ymd(2026, 2, 13), tz));
        assert_eq!(sequence, 2);
        let last = FiredStatusCheck {
            sequence: 12,
            ..fired
        };
        assert!(plan_next_status_check(&last, tz, &Calendar::us_federal()).is_none());
    }
}
