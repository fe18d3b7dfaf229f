//! The behavioral-health rule pack: coding rules, payer rules as data, and the scrubber that
//! checks every new claim against both (docs/design.md §7, docs/reference/billing-rules.md C1–C7).
//!
//! - Every coding rule is a [`Rule`] value in [`RULES`]: a stable id, a description, its source
//!   (the same reference as the comment next to the code that enforces it) and an effective
//!   date range, so a claim is checked against the rules in force on its dates of service.
//! - Payers differ, so everything a payer can change is data: [`PayerRules`] (timely filing,
//!   appeal windows, prior authorization, telehealth POS/modifier table, credentials, disabled
//!   rule ids, severity overrides, coding parameters), effective-dated, per tenant and payer,
//!   looked up through [`PayerRuleSet::for_payer`].
//! - [`scrub`] runs every rule and returns [`ScrubFinding`]s whose messages never carry
//!   patient data: no names, member ids, birth dates, diagnoses or dates of service (docs/design.md §6).
//!
//! Map:
//! - [`psychotherapy`]: the CPT time rules and code-pair edits
//!   (docs/reference/billing-rules.md C1, C2).
//! - [`telehealth`]: POS 02/10 and modifiers 93/95 against the payer's table (C3).
//! - [`payer`]: [`PayerRules`], [`PayerRuleSet`] and the built-in defaults (C4–C7).
//! - `scrub`: [`scrub`] and the payer-level checks (prior auth, credential, timely filing).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::claim::{ServiceLine, ValidClaim};

pub mod payer;
pub mod psychotherapy;
mod scrub;
pub mod telehealth;

pub use payer::{
    CodeRange, CodingParameters, CorrectedClaimClock, InPersonRequirement, PayerRuleSet,
    PayerRules, Period, PriorAuthRule, RulesError, TelehealthCombination, TelehealthRules,
};
pub use scrub::scrub;

/// A date known at compile time. Only ever called in `const` items, so a bad literal is a
/// build error rather than a runtime panic.
pub(crate) const fn const_date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("invalid constant date"),
    }
}

/// Whether `on` falls in `[from, until]`; both ends inclusive, `None` is open-ended.
pub(crate) fn in_range(from: Option<NaiveDate>, until: Option<NaiveDate>, on: NaiveDate) -> bool {
    from.is_none_or(|f| f <= on) && until.is_none_or(|u| on <= u)
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The payer will deny or reject the line as billed (or billing it is non-compliant):
    /// fix before sending.
    Error,
    /// Likely a problem, or a judgement call (undercoding, a payer table gap, a deadline that
    /// passed): a biller looks before sending.
    Warning,
}

impl Severity {
    /// Stable name stored in the database; never rename one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Error, Severity::Warning]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem the scrubber found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubFinding {
    /// A [`Rule::id`] from [`RULES`].
    pub rule_id: String,
    pub severity: Severity,
    /// Proto-style path relative to the claim, e.g. `service_lines[0].minutes`.
    pub field: String,
    /// For a biller. Never contains patient data (names, member id, birth date, diagnoses,
    /// dates of service); codes, minutes, units, POS and modifiers are fine.
    pub message: String,
}

impl fmt::Display for ScrubFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} [{}]",
            self.severity, self.field, self.message, self.rule_id
        )
    }
}

/// Whether any finding blocks sending the claim.
pub fn has_errors(findings: &[ScrubFinding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// A service the patient already had, from the caller's store: the history that frequency
/// limits (90791 repeat interval), session-count prior authorization and the Medicare
/// in-person requirement look at.
///
/// The caller passes this patient's services with the payer in question (for session limits
/// counted "across all behavioral-health providers", docs/reference/billing-rules.md C5, include
/// other providers' services when known), and leaves out the lines of the claim being scrubbed and
/// of the claim it replaces; otherwise a claim would count against itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorService {
    pub service_date: NaiveDate,
    /// Uppercase CPT/HCPCS.
    pub procedure_code: String,
    pub units: u32,
    /// Uppercase.
    pub modifiers: Vec<String>,
    pub place_of_service: String,
    /// Empty when unknown.
    pub rendering_npi: String,
}

impl PriorService {
    pub fn from_line(line: &ServiceLine, rendering_npi: &str) -> PriorService {
        PriorService {
            service_date: line.service_date,
            procedure_code: line.procedure_code.clone(),
            units: line.units,
            modifiers: line.modifiers.clone(),
            place_of_service: line.place_of_service.clone(),
            rendering_npi: rendering_npi.to_owned(),
        }
    }

    /// Every line of a stored claim as history.
    pub fn from_claim(claim: &ValidClaim) -> Vec<PriorService> {
        claim
            .service_lines
            .iter()
            .map(|l| PriorService::from_line(l, &claim.rendering_provider.npi))
            .collect()
    }
}

/// A coding or payer rule: what the scrubber enforces, where it comes from, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable id: findings, `disabled_rules` and `severity_overrides` refer to it. Never
    /// rename one.
    pub id: &'static str,
    pub description: &'static str,
    /// Where the rule comes from (URL or regulation, as in docs/reference/billing-rules.md).
    pub source: &'static str,
    /// First date of service the rule applies to; `None` = always.
    pub effective_from: Option<NaiveDate>,
    /// Last date of service the rule applies to (inclusive); `None` = still in force.
    pub effective_until: Option<NaiveDate>,
    /// Severity unless the payer overrides it. A rule may report some findings as warnings
    /// regardless (documented on the rule).
    pub severity: Severity,
}

impl Rule {
    /// Whether the rule applies to a service on `on`.
    pub fn in_force(&self, on: NaiveDate) -> bool {
        in_range(self.effective_from, self.effective_until, on)
    }
}

/// Stable rule ids.
pub mod ids {
    pub const MINUTES_DOCUMENTED: &str = "psychotherapy.minutes_documented";
    pub const PSYCHOTHERAPY_TIME: &str = "psychotherapy.time_range";
    pub const PSYCHOTHERAPY_UNDERCODED: &str = "psychotherapy.undercoded";
    pub const PSYCHOTHERAPY_UNITS: &str = "psychotherapy.units";
    pub const ADDON_REQUIRES_EM: &str = "psychotherapy.addon_requires_em";
    pub const PSYCHOTHERAPY_CODE_PAIRS: &str = "psychotherapy.code_pairs";
    pub const FAMILY_TIME: &str = "family_psychotherapy.time";
    pub const CRISIS_ONCE_PER_DAY: &str = "crisis.once_per_day";
    pub const CRISIS_TIME: &str = "crisis.time";
    pub const CRISIS_ADDON_REQUIRES_PRIMARY: &str = "crisis.addon_requires_90839";
    pub const CRISIS_ADDON_UNITS: &str = "crisis.addon_units";
    pub const INTERACTIVE_COMPLEXITY_PRIMARY: &str = "interactive_complexity.primary";
    pub const INTERACTIVE_COMPLEXITY_EXCLUDED: &str = "interactive_complexity.excluded";
    pub const PHARMACOLOGIC_ADDON: &str = "pharmacologic_management.addon";
    pub const EVALUATION_PER_DAY: &str = "evaluation.once_per_day";
    pub const EVALUATION_INTERVAL: &str = "evaluation.repeat_interval";
    pub const EVALUATION_WITH_EM: &str = "evaluation.em_same_day";
    pub const CREDENTIAL_MEDICAL_CODES: &str = "credential.medical_codes";
    pub const TELEHEALTH_MODIFIER_CONFLICT: &str = "telehealth.modifier_conflict";
    pub const TELEHEALTH_POS_MODIFIER: &str = "telehealth.pos_modifier";
    pub const TELEHEALTH_FQ_REPLACED: &str = "telehealth.fq_replaced_by_93";
    pub const TELEHEALTH_IN_PERSON: &str = "telehealth.in_person_visit";
    pub const PRIOR_AUTHORIZATION: &str = "payer.prior_authorization";
    pub const CREDENTIAL: &str = "payer.credential";
    pub const TIMELY_FILING: &str = "payer.timely_filing";
}

/// CPT 2013 replaced the old psychotherapy codes (90804–90829) with 90832–90838 and the time
/// rule they carry (AMA CPT 2013; APA, www.apaservices.org/practice/reimbursement/health-codes/psychotherapy).
const CPT_2013: NaiveDate = const_date(2013, 1, 1);
/// FQHCs/RHCs switched from modifier FQ to 93 for audio-only on 2023-01-01
/// (docs/reference/billing-rules.md C3, codingintel.com/telemedicine-and-covid-19-faq/).
const FQ_TO_93: NaiveDate = const_date(2023, 1, 1);

const NOVITAS: &str = "Novitas JL psychiatry/psychotherapy billing: www.novitas-solutions.com/webcenter/portal/MedicareJL/pagebyid?contentId=00026768";
const APA: &str = "APA psychotherapy codes: www.apaservices.org/practice/reimbursement/health-codes/psychotherapy";
const BCBS_IL: &str = "BCBS IL psychiatry/psychotherapy policy via www.openpayer.com/policy-updates/blue-cross-blue-shield-illinois/reimbursement-payment/blue-cross-blue-shield-illinois-psychiatry-psychotherapy";
const LCD_L31887: &str = "Medicare LCD L31887 outpatient psychiatry fact sheet, as quoted by AAPC (aapc.com/codes/coding-newsletters/my-primary-care-coding-alert/reader-questions-check-out-guidelines-before-billing-for-psych-evals-165232-article); CPT 90792 parenthetical via AAPC (billing-rules C2)";
const AAPC_90792: &str = "AAPC Psychiatry Coding Alert, 'Billing 90792 for All Clinicians? Not So Fast' (aapc.com/codes/coding-newsletters/my-psychiatry-coding-alert/reader-question-billing-90792-for-all-clinicians-not-so-fast-136114-article); add-ons need an E/M (billing-rules C2, C4)";

/// Every rule the scrubber knows, in the order it reports them.
pub static RULES: &[Rule] = &[
    Rule {
        id: ids::MINUTES_DOCUMENTED,
        description: "Time-based psychotherapy codes (90832-90838, 90839, 90846, 90847) need the session minutes documented; missing time is CERT's most frequent error",
        source: NOVITAS,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::PSYCHOTHERAPY_TIME,
        description: "Psychotherapy minutes must reach the code's range: 90832/+90833 16-37, 90834/+90836 38-52, 90837/+90838 53+; under 16 minutes is not billable as psychotherapy",
        source: NOVITAS,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::PSYCHOTHERAPY_UNDERCODED,
        description: "Psychotherapy minutes above the code's range: the documented time supports a longer code",
        source: NOVITAS,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Warning,
    },
    Rule {
        id: ids::PSYCHOTHERAPY_UNITS,
        description: "90832-90838 are reported with 1 unit, except in Medicare partial hospitalization (POS 52)",
        source: NOVITAS,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::ADDON_REQUIRES_EM,
        description: "+90833/+90836/+90838 require a primary E/M (99202-99255, 99304-99337, 99341-99350 by default) on the same date",
        source: NOVITAS,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::PSYCHOTHERAPY_CODE_PAIRS,
        description: "90832/90834/90837 are not billed with +90833/+90836/+90838 on the same date, nor with 90839/+90840/90846/90847 unless separate and distinct (modifier 59/X{EPSU}, reported as a warning)",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::FAMILY_TIME,
        description: "Family psychotherapy 90846/90847 needs at least 26 minutes",
        source: APA,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::CRISIS_ONCE_PER_DAY,
        description: "90839 covers the first 30-74 minutes of crisis psychotherapy and is reported once per day with 1 unit",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::CRISIS_TIME,
        description: "90839 needs at least 30 minutes of crisis psychotherapy on the date (under 30, report psychotherapy by time)",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::CRISIS_ADDON_REQUIRES_PRIMARY,
        description: "+90840 requires 90839 on the same date",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::CRISIS_ADDON_UNITS,
        description: "+90840 is one unit per additional 30 minutes beyond 74 (75-104 minutes: 1 unit, 105-134: 2, ...)",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::INTERACTIVE_COMPLEXITY_PRIMARY,
        description: "+90785 is reported only with 90791, 90792, 90832, +90833, 90834, +90836, 90837, +90838 or 90853 on the same date",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::INTERACTIVE_COMPLEXITY_EXCLUDED,
        description: "+90785 is never reported with 90839, +90840, 90846, 90847 or 97151 on the same date",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::PHARMACOLOGIC_ADDON,
        description: "+90863 requires 90832, 90834 or 90837 on the same date and is not billed with 90839/+90840",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::EVALUATION_PER_DAY,
        description: "At most one psychiatric diagnostic evaluation (90791 or 90792) per patient per day",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::EVALUATION_INTERVAL,
        description: "90791/90792 repeat only after the payer's minimum break (BCBS IL: 6 months); off unless the payer sets coding.evaluation_min_interval_months",
        source: BCBS_IL,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::EVALUATION_WITH_EM,
        description: "90791/90792 are not reported on the same date as an E/M service by the same clinician for the same patient",
        source: LCD_L31887,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::CREDENTIAL_MEDICAL_CODES,
        description: "Psychologists, LCSWs, LPCs/LMHCs, LMFTs, addiction counselors and associates do not bill medical services: 90792, E/M visits (99202-99350) or the psychotherapy add-ons that need an E/M (+90833/+90836/+90838)",
        source: AAPC_90792,
        effective_from: Some(CPT_2013),
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::TELEHEALTH_MODIFIER_CONFLICT,
        description: "A line cannot be both audio-only (93) and audio-video (95)",
        source: "codingintel.com/telemedicine-and-covid-19-faq/ (93 audio-only, 95 audio-video)",
        effective_from: None,
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::TELEHEALTH_POS_MODIFIER,
        description: "A telehealth POS (02/10) and a telehealth modifier (93/95) go together as the payer's table accepts them",
        source: "CMS CR 12427 via www.apaservices.org/practice/clinic/cms-telehealth-service-codes; payer tables (billing-rules C3)",
        effective_from: None,
        effective_until: None,
        severity: Severity::Warning,
    },
    Rule {
        id: ids::TELEHEALTH_FQ_REPLACED,
        description: "From 2023-01-01 audio-only services use modifier 93, not FQ",
        source: "codingintel.com/telemedicine-and-covid-19-faq/ (FQHCs/RHCs switched from FQ to 93 on 1/1/23)",
        effective_from: Some(FQ_TO_93),
        effective_until: None,
        severity: Severity::Warning,
    },
    Rule {
        id: ids::TELEHEALTH_IN_PERSON,
        description: "Medicare mental-health telehealth at home needs an in-person visit within 6 months before the first telehealth service, then every 12 months (SUD treatment exempt); enforced only when the payer's table says so",
        source: "foley.com/insights/publications/2021/12/medicare-telehealth-mental-health-faqs-cms; psychiatry.org FAQ",
        effective_from: None,
        effective_until: None,
        severity: Severity::Warning,
    },
    Rule {
        id: ids::PRIOR_AUTHORIZATION,
        description: "The payer requires prior authorization for the code, or after N sessions in the period, and the claim has no authorization number",
        source: "billing-rules C5 (TMHP 2016 BH handbook; payer manuals)",
        effective_from: None,
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::CREDENTIAL,
        description: "The rendering clinician's licence is not one the payer pays for on the date of service (e.g. Medicare LMFT/LMHC before 2024-01-01)",
        source: "cms.gov/medicare/payment/fee-schedules/physician-fee-schedule/marriage-and-family-therapists-mental-health-counselors",
        effective_from: None,
        effective_until: None,
        severity: Severity::Error,
    },
    Rule {
        id: ids::TIMELY_FILING,
        description: "The payer's timely-filing window from the first date of service has passed",
        source: "42 CFR 424.44 (Medicare); payer contracts (billing-rules C6)",
        effective_from: None,
        effective_until: None,
        severity: Severity::Warning,
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rule_ids_are_unique_and_sourced() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(!r.source.is_empty(), "{} has no source", r.id);
            assert!(!r.description.is_empty(), "{} has no description", r.id);
            if let (Some(f), Some(u)) = (r.effective_from, r.effective_until) {
                assert!(f <= u, "{} ends before it starts", r.id);
            }
        }
        assert_eq!(rule(ids::CREDENTIAL).unwrap().id, ids::CREDENTIAL);
        assert!(rule("no.such_rule").is_none());
    }

    #[test]
    fn effective_range_is_inclusive() {
        let r = rule(ids::TELEHEALTH_FQ_REPLACED).unwrap();
        assert!(!r.in_force(const_date(2022, 12, 31)));
        assert!(r.in_force(const_date(2023, 1, 1)));
        let d = const_date(2024, 5, 1);
        assert!(in_range(Some(d), Some(d), d));
        assert!(!in_range(None, Some(d), d.succ_opt().unwrap()));
    }

    #[test]
    fn severity_names_round_trip() {
        for s in [Severity::Error, Severity::Warning] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse("Error"), None);
    }
}
