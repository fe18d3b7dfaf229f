//! Follow-up timer planning: what a claim gets from the tenant's aging policy, the payer's
//! follow-up cadence and the warning lead times, and when each timer falls.
//!
//! Pure: the scheduler loads the policy, cadence, calendar and payer rules, and turns a claim
//! event into timers with [`plan_submitted`], [`plan_timely_filing_warnings`], [`plan_denied`]
//! and [`plan_next_status_check`].
//!
//! Clocks (docs/reference/billing-rules.md C6, C7):
//! - aging counts from the original bill date (the first submission; or the first date of
//!   service, per tenant): a resubmission does not restart it;
//! - the status-check cadence counts from the latest submission: the payer has the new claim
//!   from then;
//! - timely filing counts from the first date of service, warned at every configured stage
//!   still ahead, until the payer is seen to have the claim ([`proves_filing`]);
//! - a denial's first-level appeal counts from the denial (initial determination) date, the
//!   corrected-claim window from the remittance or the date of service as the payer's rule
//!   says. Later appeal levels count from the previous level's decision, which no event
//!   carries yet, so only level 1 is planned.
//!
//! Every timer is due at local midnight of its day in the tenant's time zone
//! ([`local_midnight`]), so a specialist finds the 30-day check in the morning queue of day 30,
//! wherever the server runs.
use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::deadlines::{appeal_deadline, corrected_claim_last_day, timely_filing_deadline};
use crate::denial::DenialCategory;
use crate::priority::TaskKindName;
use crate::rules::PayerRules;
use crate::status::ClaimStatus;

/// Timer kinds (the scheduler's `kind` column and `TimerFired.kind_name`).
pub mod kinds {
    /// Prefix of aging kinds: `aging_30`, `aging_60`, ...
    pub const AGING_PREFIX: &str = "aging_";
    pub const STATUS_CHECK: &str = "status_check";
    pub const TIMELY_FILING_WARNING: &str = "timely_filing_warning";
    pub const APPEAL_DEADLINE_WARNING: &str = "appeal_deadline_warning";
    pub const CORRECTED_CLAIM_DEADLINE_WARNING: &str = "corrected_claim_deadline_warning";
    pub const FOLLOW_UP: &str = "follow_up";
    /// A 277 said the claim was finalized (F1/F4) and no remittance has come since
    /// ([`super::NO_ERA_DAYS`] later): assignment makes it a no-response task.
    pub const NO_ERA: &str = "no_era";

    pub fn aging(threshold_days: u32) -> String {
        format!("{AGING_PREFIX}{threshold_days}")
    }

    pub fn is_aging(kind: &str) -> bool {
        kind.starts_with(AGING_PREFIX)
    }

    /// Kinds a resubmission replaces: the status-check cadence restarts from the new
    /// submission. Aging (from the original bill date), deadline warnings and follow-ups stay.
    pub fn replaced_on_resubmission(kind: &str) -> bool {
        kind == STATUS_CHECK
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cadence {
    pub first_check_business_days: u32,
    pub repeat_business_days: u32,
    pub max_checks: u32,
    /// Days before the timely-filing deadline to warn, one warning per stage (e.g. 30, 14, 7).
    pub timely_filing_warning_stages_days: Vec<u32>,
    /// Days before a denial's appeal and corrected-claim deadlines to warn.
    pub appeal_warning_days: u32,
}

/// Whether a claim in `status` shows the payer has it (proof of timely filing): accepted into
/// adjudication (277CA A1/A2), pending there, or adjudicated (paid, partially paid, denied,
/// appealed). A rejected claim was never filed; submitted and draft claims are not yet known
/// to be.
pub fn proves_filing(status: ClaimStatus) -> bool {
    matches!(
        status,
        ClaimStatus::Accepted
            | ClaimStatus::Pending
            | ClaimStatus::Paid
            | ClaimStatus::PartiallyPaid
            | ClaimStatus::Denied
            | ClaimStatus::Appealed
    )
}

/// Warning stages are days before a deadline, at most ten years, each once.
pub fn validate_warning_stages(days: &[u32]) -> Result<(), String> {
    if days.iter().any(|d| *d > 3650) {
        return Err("stages must be 0..=3650 days".into());
    }
    let mut seen = days.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != days.len() {
        return Err("each stage once".into());
    }
    Ok(())
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

/// What the scheduler knows of a submitted claim.
#[derive(Clone, Copy, Debug)]
pub struct SubmittedClaim {
    /// The original bill date: the first submission (aging counts from it).
    pub first_submission_date: NaiveDate,
    /// The latest submission (the status-check cadence counts from it).
    pub submission_date: NaiveDate,
    pub first_service_date: NaiveDate,
    /// The payer is known to have the claim ([`proves_filing`]): no timely-filing warnings.
    pub filed: bool,
}

/// The timers a submitted claim gets: one per aging threshold (from the original bill date, or
/// the date of service), the first payer status check from the latest submission (the next
/// ones are set as each fires, see [`plan_next_status_check`]), and the timely-filing warnings
/// still ahead of `now` unless the claim is filed ([`plan_timely_filing_warnings`]).
pub fn plan_submitted(
    claim: &SubmittedClaim,
    policy: &AgingPolicy,
    cadence: &Cadence,
    calendar: &Calendar,
    payer: &PayerRules,
    now: DateTime<Utc>,
) -> Vec<PlannedTimer> {
    let mut timers = Vec::new();
    let at = |kind: String, day: NaiveDate, details: TimerDetails| PlannedTimer {
        kind,
        due_at: local_midnight(day, policy.time_zone),
        details,
    };
    let basis_date = match policy.basis {
        AgingBasis::Submission => claim.first_submission_date,
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
    if !claim.filed {
        timers.extend(plan_timely_filing_warnings(
            claim.first_service_date,
            policy,
            cadence,
            payer,
            now,
        ));
    }
    timers
}

/// One timely-filing warning per stage of the cadence (days before the deadline) still after
/// `now`, largest lead first. A rejected claim was never filed, so the filing clock runs from
/// the first date of service whatever happened since (docs/design.md §7); the same holds for a
/// claim not yet submitted.
pub fn plan_timely_filing_warnings(
    first_service_date: NaiveDate,
    policy: &AgingPolicy,
    cadence: &Cadence,
    payer: &PayerRules,
    now: DateTime<Utc>,
) -> Vec<PlannedTimer> {
    let deadline = timely_filing_deadline(first_service_date, payer);
    let mut stages = cadence.timely_filing_warning_stages_days.clone();
    stages.sort_unstable_by(|a, b| b.cmp(a));
    stages.dedup();
    stages
        .into_iter()
        .filter_map(|lead| {
            let day = deadline.checked_sub_days(Days::new(u64::from(lead)))?;
            let due_at = local_midnight(day, policy.time_zone);
            (due_at > now).then(|| PlannedTimer {
                kind: kinds::TIMELY_FILING_WARNING.to_string(),
                due_at,
                details: TimerDetails {
                    deadline: Some(deadline),
                    lead_days: Some(lead),
                    ..TimerDetails::default()
                },
            })
        })
        .collect()
}

/// What a ClaimDenied (and the claim's projection) tells the planner.
#[derive(Clone, Debug)]
pub struct DeniedClaim<'a> {
    pub denial_id: &'a str,
    /// The denial (remittance) date: the initial determination.
    pub denial_date: NaiveDate,
    /// None when the scheduler has not heard of the claim's submission yet.
    pub first_service_date: Option<NaiveDate>,
    pub appealable: bool,
    /// None: a category this build does not know.
    pub category: Option<DenialCategory>,
}

/// Whether a denial of `category` is AR work that may end in a corrected claim: every denial
/// but contractual reductions and patient responsibility (not denials), which make no task.
pub fn may_need_correction(category: Option<DenialCategory>) -> bool {
    !matches!(
        category,
        Some(DenialCategory::Contractual | DenialCategory::PatientResponsibility)
    )
}

/// The deadline warnings of a denial, `appeal_warning_days` before each deadline:
/// - appealable: the first-level appeal deadline, counted from the denial date (Medicare
///   redetermination: 120 days); none when the payer has no appeal level configured. Later
///   levels count from the previous level's decision, unknown at denial time, so they are not
///   planned here;
/// - AR work ([`may_need_correction`]): the corrected-claim deadline
///   ([`corrected_claim_last_day`]: the payer's corrected-claim window from the remittance or
///   from the date of service, else the initial timely-filing limit). A window counted from the
///   date of service needs it: none while the claim's submission has not been seen.
pub fn plan_denied(
    claim: &DeniedClaim<'_>,
    policy: &AgingPolicy,
    cadence: &Cadence,
    payer: &PayerRules,
) -> Vec<PlannedTimer> {
    let warn = |kind: &str, deadline: NaiveDate| {
        let day = deadline.checked_sub_days(Days::new(u64::from(cadence.appeal_warning_days)))?;
        Some(PlannedTimer {
            kind: kind.to_string(),
            due_at: local_midnight(day, policy.time_zone),
            details: TimerDetails {
                deadline: Some(deadline),
                lead_days: Some(cadence.appeal_warning_days),
                denial_id: Some(claim.denial_id.to_string()),
                ..TimerDetails::default()
            },
        })
    };
    let mut timers = Vec::new();
    if claim.appealable
        && let Some(deadline) = appeal_deadline(claim.denial_date, 1, payer)
    {
        timers.extend(warn(kinds::APPEAL_DEADLINE_WARNING, deadline));
    }
    if may_need_correction(claim.category)
        && let Some(deadline) =
            corrected_claim_last_day(claim.first_service_date, claim.denial_date, payer)
    {
        timers.extend(warn(kinds::CORRECTED_CLAIM_DEADLINE_WARNING, deadline));
    }
    timers
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

/// Days after a 277 F1/F4 (finalized) without a remittance before the "no ERA yet" timer
/// fires.
pub const NO_ERA_DAYS: u32 = 30;
/// Business days after a 277 E* (the payer could not answer) to retry the status check.
pub const STATUS_RETRY_BUSINESS_DAYS: u32 = 3;
/// Days the payer is given to receive the information it asked for (277 P3/P4), from the
/// STC's effective date (else the day the report was posted).
pub const INFORMATION_REQUEST_DAYS: u32 = 14;

/// One status composite of a 277/277CA claim-level STC (STC01, STC10 or STC11), as the
/// ClaimStatusReported event carries it: codes and dates, never patient data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportedStatus {
    /// Claim status category (list 507): `A4`, `P3`, `R4`, `F1`, `E0`, ...
    pub category: String,
    /// Claim status code (list 508), or a LOINC code when `code_list_qualifier` is `LOI`.
    pub status_code: String,
    pub entity_code: String,
    /// STC01-4: `LOI` (LOINC: the documentation requested), `RX` (NCPDP).
    pub code_list_qualifier: String,
    /// STC02, the status effective date.
    pub date: Option<NaiveDate>,
    /// STC12 of an R* STC: the payer's words naming what it requests (empty otherwise).
    pub message: String,
}

/// What a claim status category of a 277/277CA asks of follow-up (docs/reference/x12.md §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusAction {
    /// A4: the payer has no record of the claim: resubmit it.
    Resubmit,
    /// P3/P4: the claim is pended for information the payer requested: send it by a due date.
    ProvideInformation,
    /// R*: the payer requests documentation or more detail: send what it names.
    SendDocumentation,
    /// F1/F4: finalized: a remittance should follow; if none comes, chase it.
    AwaitRemittance,
    /// E*: the payer could not answer: ask again a few business days later.
    RetryStatusCheck,
}

/// The follow-up a status category asks for; None for the categories that only move the
/// claim (A2, A3/A6-A8, P1/P2, F2) or mean nothing to follow up (A0, A1, ...).
pub fn status_action(category: &str) -> Option<StatusAction> {
    let numbered = |prefix: char| {
        category
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    match category {
        "A4" => Some(StatusAction::Resubmit),
        "P3" | "P4" => Some(StatusAction::ProvideInformation),
        "F1" | "F4" => Some(StatusAction::AwaitRemittance),
        _ if numbered('R') => Some(StatusAction::SendDocumentation),
        _ if numbered('E') => Some(StatusAction::RetryStatusCheck),
        _ => None,
    }
}

/// A task a status report asks for: one per kind, whatever the number of STCs behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusTask {
    pub kind: TaskKindName,
    /// What raised it: `payer_has_no_record`, or what the payer asks for.
    pub detail: String,
    /// When the payer expects the information (P3/P4): the earliest of the report's.
    pub due: Option<NaiveDate>,
}

/// At most this many characters of a payer's free text go into a task's detail.
const MESSAGE_CHARS: usize = 120;

/// One STC as a task names it: `P3:21`, `R4:LOINC 18842-5 (entity 1P) "SEND NOTES"`.
fn describe(s: &ReportedStatus) -> String {
    let mut out = format!("{}:", s.category);
    if s.code_list_qualifier == "LOI" {
        out.push_str("LOINC ");
    }
    out.push_str(&s.status_code);
    if !s.entity_code.is_empty() {
        out.push_str(&format!(" (entity {})", s.entity_code));
    }
    let message = s.message.trim();
    if !message.is_empty() {
        let short: String = message.chars().take(MESSAGE_CHARS).collect();
        out.push_str(&format!(" \"{short}\""));
    }
    out
}

/// The tasks a claim's reported statuses ask for (pure; the assignment service opens them):
/// A4 a resubmission task; P3/P4 and R* one information-requested task that names every
/// request (`information requested: P3:21; documentation requested: R4:LOINC 18842-5`), due
/// `information_days` after the P3/P4 STC's date (else `report_day`). F1/F4 and E* are the
/// scheduler's (timers), other categories ask for nothing.
pub fn plan_status_tasks(
    statuses: &[ReportedStatus],
    report_day: NaiveDate,
    information_days: u32,
) -> Vec<StatusTask> {
    let mut resubmit = false;
    let mut requests: Vec<String> = Vec::new();
    let mut due: Option<NaiveDate> = None;
    for s in statuses {
        let (label, with_due) = match status_action(&s.category) {
            Some(StatusAction::Resubmit) => {
                resubmit = true;
                continue;
            }
            Some(StatusAction::ProvideInformation) => ("information requested", true),
            Some(StatusAction::SendDocumentation) => ("documentation requested", false),
            _ => continue,
        };
        let text = format!("{label}: {}", describe(s));
        if !requests.contains(&text) {
            requests.push(text);
        }
        if with_due {
            let from = s.date.unwrap_or(report_day);
            let day = from
                .checked_add_days(Days::new(u64::from(information_days)))
                .unwrap_or(from);
            due = Some(due.map_or(day, |d| d.min(day)));
        }
    }
    let mut tasks = Vec::new();
    if resubmit {
        tasks.push(StatusTask {
            kind: TaskKindName::Resubmission,
            detail: "payer_has_no_record".into(),
            due: None,
        });
    }
    if !requests.is_empty() {
        tasks.push(StatusTask {
            kind: TaskKindName::InformationRequested,
            detail: requests.join("; "),
            due,
        });
    }
    tasks
}

/// Whether a claim in `status` has had its remittance (paid, partially paid, denied, or
/// settled since): a 277 F1/F4 then starts no "no ERA yet" window.
pub fn remittance_seen(status: Option<ClaimStatus>) -> bool {
    status.is_some_and(|s| {
        matches!(
            s,
            ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
        ) || !s.is_open()
    })
}

/// The "no ERA yet" timer a 277 F1/F4 starts: `days` after the report's local day.
pub fn plan_no_era(report_day: NaiveDate, days: u32, time_zone: Tz) -> PlannedTimer {
    let day = report_day
        .checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(report_day);
    PlannedTimer {
        kind: kinds::NO_ERA.to_string(),
        due_at: local_midnight(day, time_zone),
        details: TimerDetails::default(),
    }
}

/// When a status check is retried after a 277 E* (the payer could not answer):
/// `business_days` business days after the report's local day. The claim's pending check
/// moves there (sooner or later): the error answered the check that was made.
pub fn plan_status_retry(
    report_day: NaiveDate,
    business_days: u32,
    time_zone: Tz,
    calendar: &Calendar,
) -> DateTime<Utc> {
    local_midnight(
        calendar.add_business_days(report_day, business_days),
        time_zone,
    )
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
            first_submission_date: ymd(2026, 1, 5),
            submission_date: ymd(2026, 1, 5),
            first_service_date: ymd(2025, 12, 29),
            filed: false,
        }
    }

    /// Before everything these tests plan.
    fn now() -> DateTime<Utc> {
        local_midnight(ymd(2026, 1, 5), chrono_tz::UTC)
    }

    fn policy(basis: AgingBasis, thresholds_days: Vec<u32>) -> AgingPolicy {
        AgingPolicy {
            basis,
            thresholds_days,
            time_zone: chrono_tz::UTC,
        }
    }

    /// First check after 14 business days, then every 14, at most 12; one timely-filing
    /// warning 14 days ahead (the default stages are 30, 14 and 7); appeal warnings 14 days
    /// ahead.
    fn cadence() -> Cadence {
        Cadence {
            first_check_business_days: 14,
            repeat_business_days: 14,
            max_checks: 12,
            timely_filing_warning_stages_days: vec![14],
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
            now(),
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
            now(),
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
            first_service_date: None,
            appealable: true,
            category: Some(DenialCategory::Authorization),
        };
        let timers = plan_denied(
            &denied,
            &policy(AgingBasis::Submission, vec![30, 60, 90]),
            &cadence(),
            &payer,
        );
        let t = timers
            .iter()
            .find(|t| t.kind == kinds::APPEAL_DEADLINE_WARNING)
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

    #[test]
    fn a_resubmission_keeps_aging_from_the_original_bill_date() {
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", "87726", ymd(2025, 12, 29))
            .clone();
        let resubmitted = SubmittedClaim {
            submission_date: ymd(2026, 2, 10),
            ..claim()
        };
        let timers = plan_submitted(
            &resubmitted,
            &policy(AgingBasis::Submission, vec![30, 60]),
            &cadence(),
            &Calendar::us_federal(),
            &payer,
            now(),
        );
        let kinds: Vec<(&str, NaiveDate)> = timers
            .iter()
            .map(|t| (t.kind.as_str(), t.due_at.date_naive()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                // From the original bill date, Jan 5.
                ("aging_30", ymd(2026, 2, 4)),
                ("aging_60", ymd(2026, 3, 6)),
                // From the new submission: 14 business days from Tue Feb 10, skipping
                // Presidents' Day.
                ("status_check", ymd(2026, 3, 3)),
                ("timely_filing_warning", ymd(2026, 3, 15)),
            ]
        );
        assert_eq!(timers[0].details.basis_date, Some(ymd(2026, 1, 5)));
        // On the date-of-service basis nothing about submissions moves aging.
        let timers = plan_submitted(
            &resubmitted,
            &policy(AgingBasis::DateOfService, vec![30]),
            &cadence(),
            &Calendar::us_federal(),
            &payer,
            now(),
        );
        assert_eq!(timers[0].due_at.date_naive(), ymd(2026, 1, 28));
    }

    #[test]
    fn timely_filing_warns_at_every_stage_still_ahead_until_filed() {
        let payer = PayerRuleSet::builtin()
            .for_payer("t1", "87726", ymd(2025, 12, 29))
            .clone();
        let staged = Cadence {
            timely_filing_warning_stages_days: vec![7, 30, 14],
            ..cadence()
        };
        let policy = policy(AgingBasis::Submission, vec![30]);
        let warnings = |now: DateTime<Utc>| -> Vec<(NaiveDate, Option<u32>)> {
            plan_timely_filing_warnings(ymd(2025, 12, 29), &policy, &staged, &payer, now)
                .iter()
                .map(|t| {
                    assert_eq!(t.kind, kinds::TIMELY_FILING_WARNING);
                    assert_eq!(t.details.deadline, Some(ymd(2026, 3, 29)));
                    (t.due_at.date_naive(), t.details.lead_days)
                })
                .collect()
        };
        // Deadline Mar 29 (90 days from Dec 29): 30, 14 and 7 days before.
        assert_eq!(
            warnings(now()),
            vec![
                (ymd(2026, 2, 27), Some(30)),
                (ymd(2026, 3, 15), Some(14)),
                (ymd(2026, 3, 22), Some(7)),
            ]
        );
        // Planned on Mar 1: the 30-day stage has passed.
        assert_eq!(
            warnings(local_midnight(ymd(2026, 3, 1), chrono_tz::UTC)),
            vec![(ymd(2026, 3, 15), Some(14)), (ymd(2026, 3, 22), Some(7))]
        );
        // A claim the payer is known to have gets none.
        let filed = SubmittedClaim {
            filed: true,
            ..claim()
        };
        let timers = plan_submitted(
            &filed,
            &policy,
            &staged,
            &Calendar::us_federal(),
            &payer,
            now(),
        );
        assert!(
            timers
                .iter()
                .all(|t| t.kind != kinds::TIMELY_FILING_WARNING)
        );
        validate_warning_stages(&[30, 14, 7]).unwrap();
        validate_warning_stages(&[]).unwrap();
        assert!(validate_warning_stages(&[14, 14]).is_err());
        assert!(validate_warning_stages(&[4000]).is_err());
    }

    #[test]
    fn filing_is_proven_once_the_payer_has_the_claim() {
        assert!(proves_filing(ClaimStatus::Accepted));
        assert!(proves_filing(ClaimStatus::PartiallyPaid));
        assert!(proves_filing(ClaimStatus::Denied));
        assert!(!proves_filing(ClaimStatus::Submitted));
        assert!(!proves_filing(ClaimStatus::Rejected));
        assert!(!proves_filing(ClaimStatus::Draft));
    }

    #[test]
    fn denial_gets_a_corrected_claim_warning_on_the_payer_clock() {
        let policy = policy(AgingBasis::Submission, vec![30]);
        let denied = DeniedClaim {
            denial_id: "d1",
            denial_date: ymd(2026, 2, 1),
            first_service_date: Some(ymd(2026, 1, 5)),
            appealable: true,
            category: Some(DenialCategory::CodingModifier),
        };
        let plan = |denied: &DeniedClaim<'_>, payer: &PayerRules| -> Vec<(String, NaiveDate)> {
            plan_denied(denied, &policy, &cadence(), payer)
                .into_iter()
                .map(|t| {
                    assert_eq!(t.details.denial_id.as_deref(), Some("d1"));
                    (t.kind, t.details.deadline.unwrap())
                })
                .collect()
        };
        let medicare = PayerRuleSet::builtin()
            .for_payer("t1", crate::rules::payer::MEDICARE, ymd(2026, 1, 5))
            .clone();
        // Medicare: redetermination 120 days from the denial; a reopening within 365 days of
        // the remittance.
        assert_eq!(
            plan(&denied, &medicare),
            vec![
                (kinds::APPEAL_DEADLINE_WARNING.to_string(), ymd(2026, 6, 1)),
                (
                    kinds::CORRECTED_CLAIM_DEADLINE_WARNING.to_string(),
                    ymd(2027, 2, 1)
                ),
            ]
        );
        // A payer counting corrected claims from the date of service (Anthem: 365 days).
        let mut from_dos = medicare.clone();
        from_dos.corrected_claim_clock = crate::rules::CorrectedClaimClock::FromServiceDate;
        let timers = plan_denied(&denied, &policy, &cadence(), &from_dos);
        assert_eq!(timers[1].details.deadline, Some(ymd(2027, 1, 5)));
        assert_eq!(timers[1].due_at.date_naive(), ymd(2026, 12, 22));
        // Not appealable (N290): the corrected claim only. Not known when the clock needs the
        // date of service and the submission was not seen.
        let not_appealable = DeniedClaim {
            appealable: false,
            ..denied.clone()
        };
        assert_eq!(
            plan(&not_appealable, &medicare),
            vec![(
                kinds::CORRECTED_CLAIM_DEADLINE_WARNING.to_string(),
                ymd(2027, 2, 1)
            )]
        );
        let unseen = DeniedClaim {
            first_service_date: None,
            ..not_appealable.clone()
        };
        assert!(plan(&unseen, &from_dos).is_empty());
        // No separate window: the initial timely-filing limit (Medicare: a calendar year from
        // the date of service).
        let mut no_window = medicare.clone();
        no_window.corrected_claim_days = None;
        assert_eq!(
            plan(&not_appealable, &no_window),
            vec![(
                kinds::CORRECTED_CLAIM_DEADLINE_WARNING.to_string(),
                ymd(2027, 1, 5)
            )]
        );
        // Contractual and patient-responsibility adjustments are not AR work.
        let contractual = DeniedClaim {
            category: Some(DenialCategory::Contractual),
            appealable: false,
            ..denied.clone()
        };
        assert!(plan(&contractual, &medicare).is_empty());
    }

    #[test]
    fn status_categories_ask_for_their_follow_up() {
        assert_eq!(status_action("A4"), Some(StatusAction::Resubmit));
        assert_eq!(status_action("P3"), Some(StatusAction::ProvideInformation));
        assert_eq!(status_action("P4"), Some(StatusAction::ProvideInformation));
        assert_eq!(status_action("R4"), Some(StatusAction::SendDocumentation));
        assert_eq!(status_action("R16"), Some(StatusAction::SendDocumentation));
        assert_eq!(status_action("F1"), Some(StatusAction::AwaitRemittance));
        assert_eq!(status_action("F4"), Some(StatusAction::AwaitRemittance));
        assert_eq!(status_action("E0"), Some(StatusAction::RetryStatusCheck));
        for c in ["A1", "A2", "A7", "P1", "P2", "F2", "F3", "RX", "R", "E", ""] {
            assert_eq!(status_action(c), None, "{c}");
        }
    }

    #[test]
    fn a_report_asks_for_one_task_per_kind_naming_every_request() {
        let stc =
            |category: &str, code: &str, qualifier: &str, date, message: &str| ReportedStatus {
                category: category.into(),
                status_code: code.into(),
                entity_code: if category == "R4" {
                    "1P".into()
                } else {
                    String::new()
                },
                code_list_qualifier: qualifier.into(),
                date,
                message: message.into(),
            };
        let report_day = ymd(2026, 6, 15);
        let tasks = plan_status_tasks(
            &[
                stc("A2", "20", "", None, ""),
                stc("A4", "35", "", None, ""),
                stc("P3", "21", "", Some(ymd(2026, 6, 10)), ""),
                stc("R4", "18842-5", "LOI", None, "SEND DISCHARGE SUMMARY"),
                stc("P4", "21", "", None, ""),
                stc("F1", "65", "", None, ""),
                stc("E0", "0", "", None, ""),
            ],
            report_day,
            INFORMATION_REQUEST_DAYS,
        );
        assert_eq!(
            tasks,
            vec![
                StatusTask {
                    kind: TaskKindName::Resubmission,
                    detail: "payer_has_no_record".into(),
                    due: None,
                },
                StatusTask {
                    kind: TaskKindName::InformationRequested,
                    detail: "information requested: P3:21; documentation requested: \
                             R4:LOINC 18842-5 (entity 1P) \"SEND DISCHARGE SUMMARY\"; \
                             information requested: P4:21"
                        .into(),
                    // The earliest: 14 days after the P3's own date.
                    due: Some(ymd(2026, 6, 24)),
                },
            ]
        );
        // Documentation alone: a task without a due date; timers and moves alone: none.
        let docs = plan_status_tasks(&[stc("R3", "252", "", None, "")], report_day, 14);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].due, None);
        assert_eq!(docs[0].detail, "documentation requested: R3:252");
        assert!(plan_status_tasks(&[stc("F1", "65", "", None, "")], report_day, 14).is_empty());
        let p3 = plan_status_tasks(&[stc("P3", "21", "", None, "")], report_day, 14);
        assert_eq!(p3[0].due, Some(ymd(2026, 6, 29)));
    }

    #[test]
    fn finalized_without_remittance_and_errors_set_timers() {
        let tz = chrono_tz::America::New_York;
        let t = plan_no_era(ymd(2026, 6, 15), NO_ERA_DAYS, tz);
        assert_eq!(t.kind, kinds::NO_ERA);
        assert_eq!(t.due_at, local_midnight(ymd(2026, 7, 15), tz));
        // Mon Jun 15 + 3 business days: Thu Jun 18; from Thu Jul 2, Independence Day
        // (observed Fri Jul 3) is skipped: Wed Jul 8.
        let cal = Calendar::us_federal();
        assert_eq!(
            plan_status_retry(ymd(2026, 6, 15), STATUS_RETRY_BUSINESS_DAYS, tz, &cal),
            local_midnight(ymd(2026, 6, 18), tz)
        );
        assert_eq!(
            plan_status_retry(ymd(2026, 7, 2), 3, tz, &cal),
            local_midnight(ymd(2026, 7, 8), tz)
        );
        assert!(remittance_seen(Some(ClaimStatus::PartiallyPaid)));
        assert!(remittance_seen(Some(ClaimStatus::Closed)));
        assert!(!remittance_seen(Some(ClaimStatus::Accepted)));
        assert!(!remittance_seen(None));
    }
}
