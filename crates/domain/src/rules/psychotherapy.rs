//! Psychotherapy coding rules: the CPT time rule and the code-pair edits
//! (docs/reference/billing-rules.md C1, C2).
//!
//! Sources, cited again at each check:
//! - Novitas JL (Medicare): time ranges, under 16 minutes not billable, units = 1 except POS 52,
//!   add-on E/M list, time documentation
//!   (www.novitas-solutions.com/webcenter/portal/MedicareJL/pagebyid?contentId=00026768);
//! - APA: the same ranges, 90846/90847 need 26+ minutes
//!   (www.apaservices.org/practice/reimbursement/health-codes/psychotherapy);
//! - BCBS IL via openpayer: crisis 90839/+90840, +90785 and +90863 pairs, 90791 repeat interval
//!   (www.openpayer.com/policy-updates/blue-cross-blue-shield-illinois/reimbursement-payment/blue-cross-blue-shield-illinois-psychiatry-psychotherapy).

use std::fmt;

use chrono::{Months, NaiveDate};

use super::ids;
use super::scrub::{Ctx, field, list};
use crate::claim::Credential;

/// Individual psychotherapy without E/M.
pub const PSYCHOTHERAPY: [&str; 3] = ["90832", "90834", "90837"];
/// Psychotherapy add-ons to an E/M visit.
pub const PSYCHOTHERAPY_WITH_EM: [&str; 3] = ["90833", "90836", "90838"];
/// Family psychotherapy without / with the patient.
pub const FAMILY: [&str; 2] = ["90846", "90847"];
/// Crisis psychotherapy, first 30–74 minutes.
pub const CRISIS: &str = "90839";
/// Crisis psychotherapy, each additional 30 minutes.
pub const CRISIS_ADDON: &str = "90840";
/// Interactive complexity add-on.
pub const INTERACTIVE_COMPLEXITY: &str = "90785";
/// Codes +90785 may be reported with (BCBS IL).
pub const INTERACTIVE_COMPLEXITY_PRIMARIES: [&str; 9] = [
    "90791", "90792", "90832", "90833", "90834", "90836", "90837", "90838", "90853",
];
/// Codes +90785 may never be reported with (BCBS IL; 97151 is the adaptive-behavior assessment).
pub const INTERACTIVE_COMPLEXITY_EXCLUDED: [&str; 5] =
    ["90839", "90840", "90846", "90847", "97151"];
/// Psychiatric diagnostic evaluation without / with medical services.
pub const EVALUATIONS: [&str; 2] = ["90791", "90792"];
/// Pharmacologic management add-on.
pub const PHARMACOLOGIC_ADDON: &str = "90863";
/// Psychiatric diagnostic evaluation with medical services: prescribers only.
pub const EVALUATION_WITH_MEDICAL: &str = "90792";

/// E/M visit codes (office, hospital, consultations, emergency, critical care, nursing
/// facility, home): medical services a non-medical licence does not bill (AAPC: psychologists and
/// social workers "cannot bill E/M codes"; docs/reference/billing-rules.md C4). Team conferences
/// (99366–99368) and preventive counseling (99401–99412) are left out: some of those are billed
/// by non-physician professionals.
pub const EM_VISITS: [(&str, &str); 1] = [("99202", "99350")];

/// E/M codes CPT does not report with 90791/90792, as AAPC quotes the parenthetical:
/// 99201–99337, 99341–99350, 99366–99368, 99401–99444 (docs/reference/billing-rules.md C2).
pub const EM_NOT_WITH_EVALUATION: [(&str, &str); 4] = [
    ("99201", "99337"),
    ("99341", "99350"),
    ("99366", "99368"),
    ("99401", "99444"),
];

fn in_ranges(ranges: &[(&str, &str)], code: &str) -> bool {
    ranges
        .iter()
        .any(|(from, to)| code.len() == from.len() && *from <= code && code <= *to)
}

/// Whether `code` is an E/M visit (see [`EM_VISITS`]).
pub fn is_em_visit(code: &str) -> bool {
    in_ranges(&EM_VISITS, code)
}

/// Licences that do not bill medical services (90792, E/M, the E/M psychotherapy add-ons):
/// psychologists, clinical social workers, professional/mental health counselors, marriage and
/// family therapists, addiction counselors and pre-licensure associates
/// (docs/reference/billing-rules.md C4). Physicians, psychiatrists, NPs and PAs do; `Other` is
/// unknown and not checked.
pub fn bills_medical_services(credential: Credential) -> Option<bool> {
    match credential {
        Credential::Psychiatrist
        | Credential::Physician
        | Credential::NursePractitioner
        | Credential::PhysicianAssistant => Some(true),
        Credential::Psychologist
        | Credential::Lcsw
        | Credential::Lpc
        | Credential::Lmft
        | Credential::Lmhc
        | Credential::Lcadc
        | Credential::Associate => Some(false),
        Credential::Other => None,
    }
}

/// Under this, a session is not billable as psychotherapy (Novitas).
pub const MIN_PSYCHOTHERAPY_MINUTES: u32 = 16;
/// 90846/90847 minimum (APA).
pub const FAMILY_MIN_MINUTES: u32 = 26;
/// 90839 minimum (BCBS IL: "first 30–74 min").
pub const CRISIS_MIN_MINUTES: u32 = 30;
/// The time 90839 alone covers.
pub const CRISIS_FIRST_MAX_MINUTES: u32 = 74;
/// Each +90840 unit.
pub const CRISIS_ADDON_MINUTES: u32 = 30;

/// The minutes a time-based psychotherapy code covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBand {
    pub code: &'static str,
    pub min: u32,
    /// `None`: no upper bound.
    pub max: Option<u32>,
}

impl fmt::Display for TimeBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) => write!(f, "{}-{max} minutes", self.min),
            None => write!(f, "{} or more minutes", self.min),
        }
    }
}

/// Novitas / APA: 90832 16–37, 90834 38–52, 90837 53+, and the same for the E/M add-ons.
const BANDS: [TimeBand; 6] = [
    TimeBand {
        code: "90832",
        min: 16,
        max: Some(37),
    },
    TimeBand {
        code: "90834",
        min: 38,
        max: Some(52),
    },
    TimeBand {
        code: "90837",
        min: 53,
        max: None,
    },
    TimeBand {
        code: "90833",
        min: 16,
        max: Some(37),
    },
    TimeBand {
        code: "90836",
        min: 38,
        max: Some(52),
    },
    TimeBand {
        code: "90838",
        min: 53,
        max: None,
    },
];

/// The band of an individual psychotherapy code.
pub fn time_band(code: &str) -> Option<TimeBand> {
    BANDS.iter().copied().find(|b| b.code == code)
}

/// The psychotherapy code `minutes` supports (the E/M add-on when `with_em`), `None` under 16.
pub fn psychotherapy_code_for(minutes: u32, with_em: bool) -> Option<&'static str> {
    let codes = if with_em {
        &PSYCHOTHERAPY_WITH_EM
    } else {
        &PSYCHOTHERAPY
    };
    codes.iter().copied().find(|c| {
        time_band(c).is_some_and(|b| b.min <= minutes && b.max.is_none_or(|m| minutes <= m))
    })
}

/// Codes whose minutes must be documented (Novitas: "require start/stop times or total minutes").
pub fn is_time_based(code: &str) -> bool {
    time_band(code).is_some() || FAMILY.contains(&code) || code == CRISIS
}

/// +90840 units that `total` crisis minutes on a date support: one per 30 minutes beyond 74
/// (BCBS IL; CPT: 75–104 minutes = 1 unit, 105–134 = 2).
pub fn crisis_addon_units(total_minutes: u32) -> u32 {
    total_minutes
        .saturating_sub(CRISIS_FIRST_MAX_MINUTES)
        .div_ceil(CRISIS_ADDON_MINUTES)
}

pub(super) fn check(ctx: &mut Ctx<'_>) {
    line_rules(ctx);
    let by_date = ctx.by_date();
    for (date, lines) in &by_date {
        same_date_rules(ctx, *date, lines);
    }
    evaluations_per_day(ctx, &by_date);
    evaluation_interval(ctx);
    evaluation_with_em(ctx, &by_date);
    credential_medical_codes(ctx);
}

/// 90791/90792 and an E/M on the same date by the same clinician: not reported together
/// (Medicare LCD L31887; the CPT parenthetical under 90792 as AAPC quotes it). The claim has
/// one rendering clinician; other claims count when their rendering NPI is the same (history
/// with an unknown NPI does not).
fn evaluation_with_em(
    ctx: &mut Ctx<'_>,
    by_date: &std::collections::BTreeMap<NaiveDate, Vec<usize>>,
) {
    let npi = ctx.claim.rendering_provider.npi.clone();
    for (&d, lines) in by_date {
        if !ctx.applies(ids::EVALUATION_WITH_EM, d) {
            continue;
        }
        let same_clinician = |h: &super::PriorService| {
            h.service_date == d && !h.rendering_npi.is_empty() && h.rendering_npi == npi
        };
        let em_here = lines
            .iter()
            .find(|&&i| in_ranges(&EM_NOT_WITH_EVALUATION, &ctx.line(i).procedure_code))
            .map(|&i| ctx.line(i).procedure_code.clone());
        let em_before = ctx
            .history
            .iter()
            .find(|h| same_clinician(h) && in_ranges(&EM_NOT_WITH_EVALUATION, &h.procedure_code))
            .map(|h| h.procedure_code.clone());
        let eval_before = ctx
            .history
            .iter()
            .find(|h| same_clinician(h) && EVALUATIONS.contains(&h.procedure_code.as_str()))
            .map(|h| h.procedure_code.clone());
        for &i in lines {
            let code = ctx.line(i).procedure_code.clone();
            let other = if EVALUATIONS.contains(&code.as_str()) {
                match (&em_here, &em_before) {
                    (Some(em), _) => Some(format!("{em} on this claim")),
                    (None, Some(em)) => Some(format!("{em} on another claim")),
                    (None, None) => None,
                }
            } else if in_ranges(&EM_NOT_WITH_EVALUATION, &code) {
                // On this claim the evaluation line carries the finding; an evaluation billed
                // earlier on another claim makes this E/M the conflict.
                let eval_here = lines
                    .iter()
                    .any(|&j| EVALUATIONS.contains(&ctx.line(j).procedure_code.as_str()));
                match (eval_here, &eval_before) {
                    (false, Some(e)) => Some(format!("{e} on another claim")),
                    _ => None,
                }
            } else {
                None
            };
            if let Some(other) = other {
                ctx.report(
                    ids::EVALUATION_WITH_EM,
                    field(i, "procedure_code"),
                    format!("{code} and an E/M service ({other}) are not reported for the same patient on the same date by the same clinician: report the evaluation or the E/M"),
                );
            }
        }
    }
}

/// 90792, E/M visits and the E/M psychotherapy add-ons are medical services: a psychologist,
/// LCSW, LPC/LMHC, LMFT, addiction counselor or associate does not bill them (AAPC Psychiatry
/// Coding Alert; docs/reference/billing-rules.md C4). A payer that pays one of these licences
/// for them (e.g. a prescribing psychologist) disables the rule.
fn credential_medical_codes(ctx: &mut Ctx<'_>) {
    let Some(credential) = ctx.claim.rendering_provider.credential else {
        return;
    };
    if bills_medical_services(credential) != Some(false) {
        return;
    }
    for i in 0..ctx.claim.service_lines.len() {
        let l = ctx.line(i);
        let (code, d) = (l.procedure_code.clone(), l.service_date);
        if !ctx.applies(ids::CREDENTIAL_MEDICAL_CODES, d) {
            continue;
        }
        let why = if code == EVALUATION_WITH_MEDICAL {
            "90792 is the evaluation with medical services; report 90791".to_string()
        } else if is_em_visit(&code) {
            format!("{code} is an E/M visit")
        } else if PSYCHOTHERAPY_WITH_EM.contains(&code.as_str()) {
            let alone = PSYCHOTHERAPY_WITH_EM
                .iter()
                .position(|c| *c == code)
                .map_or("90832/90834/90837", |k| PSYCHOTHERAPY[k]);
            format!("+{code} is an add-on to an E/M visit; report {alone}")
        } else {
            continue;
        };
        ctx.report(
            ids::CREDENTIAL_MEDICAL_CODES,
            field(i, "procedure_code"),
            format!(
                "a clinician with credential {credential} does not bill medical services: {why}"
            ),
        );
    }
}

/// Rules about one line on its own: minutes, units.
fn line_rules(ctx: &mut Ctx<'_>) {
    let multi_unit_pos = ctx.payer.coding.multi_unit_pos.clone();
    for i in 0..ctx.claim.service_lines.len() {
        let l = ctx.line(i);
        let (code, d, m, units) = (l.procedure_code.clone(), l.service_date, l.minutes, l.units);
        let pos = l.place_of_service.clone();
        let code = code.as_str();

        // Novitas: 90832–90838 are reported with units = 1, except in Medicare partial
        // hospitalization (POS 52).
        if time_band(code).is_some()
            && units != 1
            && !multi_unit_pos.contains(&pos)
            && ctx.applies(ids::PSYCHOTHERAPY_UNITS, d)
        {
            ctx.report(
                ids::PSYCHOTHERAPY_UNITS,
                field(i, "units"),
                format!(
                    "{code} is reported with 1 unit per session (more only at POS {}), not {units}",
                    list(&multi_unit_pos)
                ),
            );
        }

        // Novitas: CERT's most frequent error is missing time documentation.
        if is_time_based(code) && m == 0 {
            if ctx.applies(ids::MINUTES_DOCUMENTED, d) {
                ctx.report(
                    ids::MINUTES_DOCUMENTED,
                    field(i, "minutes"),
                    format!("{code} is a time-based code: document the session minutes (start and stop times or total time)"),
                );
            }
            continue;
        }

        // Novitas / APA time rule.
        if let Some(band) = time_band(code) {
            let with_em = PSYCHOTHERAPY_WITH_EM.contains(&code);
            if m < MIN_PSYCHOTHERAPY_MINUTES {
                if ctx.applies(ids::PSYCHOTHERAPY_TIME, d) {
                    ctx.report(
                        ids::PSYCHOTHERAPY_TIME,
                        field(i, "minutes"),
                        format!("{m} minutes is under the {MIN_PSYCHOTHERAPY_MINUTES}-minute minimum: not billable as psychotherapy ({code})"),
                    );
                }
            } else if m < band.min {
                if ctx.applies(ids::PSYCHOTHERAPY_TIME, d) {
                    let fits = psychotherapy_code_for(m, with_em).unwrap_or("a shorter code");
                    ctx.report(
                        ids::PSYCHOTHERAPY_TIME,
                        field(i, "minutes"),
                        format!("{code} needs {band}; {m} minutes supports {fits}"),
                    );
                }
            } else if band.max.is_some_and(|max| m > max)
                && ctx.applies(ids::PSYCHOTHERAPY_UNDERCODED, d)
            {
                let fits = psychotherapy_code_for(m, with_em).unwrap_or("a longer code");
                ctx.report(
                    ids::PSYCHOTHERAPY_UNDERCODED,
                    field(i, "minutes"),
                    format!("{code} covers {band}; {m} minutes supports {fits}"),
                );
            }
        }

        // APA: family psychotherapy (a 50-minute code) needs 26 minutes or more.
        if FAMILY.contains(&code) && m < FAMILY_MIN_MINUTES && ctx.applies(ids::FAMILY_TIME, d) {
            ctx.report(
                ids::FAMILY_TIME,
                field(i, "minutes"),
                format!(
                    "{code} needs at least {FAMILY_MIN_MINUTES} minutes; {m} minutes documented"
                ),
            );
        }
    }
}

/// Rules about the codes billed together on one date of service.
fn same_date_rules(ctx: &mut Ctx<'_>, d: NaiveDate, lines: &[usize]) {
    let code_of = |ctx: &Ctx<'_>, i: usize| ctx.line(i).procedure_code.clone();
    let with = |ctx: &Ctx<'_>, pred: &dyn Fn(&str) -> bool| -> Vec<usize> {
        lines
            .iter()
            .copied()
            .filter(|&i| pred(&ctx.line(i).procedure_code))
            .collect()
    };
    let standalone = with(ctx, &|c| PSYCHOTHERAPY.contains(&c));
    let addons = with(ctx, &|c| PSYCHOTHERAPY_WITH_EM.contains(&c));
    let crisis = with(ctx, &|c| c == CRISIS);
    let crisis_addons = with(ctx, &|c| c == CRISIS_ADDON);
    let family = with(ctx, &|c| FAMILY.contains(&c));
    let primary_em = ctx.payer.coding.primary_em.clone();
    let em = with(ctx, &|c| primary_em.iter().any(|r| r.contains(c)));

    // Novitas / BCBS IL: +90833/+90836/+90838 require a primary E/M on the same date.
    if em.is_empty() && ctx.applies(ids::ADDON_REQUIRES_EM, d) {
        for &i in &addons {
            let code = code_of(ctx, i);
            let alone = PSYCHOTHERAPY_WITH_EM
                .iter()
                .position(|c| *c == code)
                .map_or("90832/90834/90837", |k| PSYCHOTHERAPY[k]);
            ctx.report(
                ids::ADDON_REQUIRES_EM,
                field(i, "procedure_code"),
                format!("+{code} is an add-on to an E/M visit, and no E/M is billed for the same date; without an E/M report {alone}"),
            );
        }
    }

    // BCBS IL: 90832/90834/90837 are not billed with +90833/+90836/+90838, 90839/+90840 or
    // 90846/90847 unless separate and distinct.
    if ctx.applies(ids::PSYCHOTHERAPY_CODE_PAIRS, d) {
        for &s in &standalone {
            let code = code_of(ctx, s);
            if let Some(&a) = addons.first() {
                let other = code_of(ctx, a);
                ctx.report(
                    ids::PSYCHOTHERAPY_CODE_PAIRS,
                    field(s, "procedure_code"),
                    format!("{code} and +{other} both bill psychotherapy for the same date: report one (the add-on only with an E/M)"),
                );
            }
            let distinct = &ctx.payer.coding.distinct_service_modifiers;
            let marked = |i: usize| ctx.line(i).modifiers.iter().any(|m| distinct.contains(m));
            let conflicts: Vec<usize> = crisis
                .iter()
                .chain(&crisis_addons)
                .chain(&family)
                .copied()
                .filter(|&o| !marked(s) && !marked(o))
                .collect();
            let modifiers = list(distinct);
            for o in conflicts {
                let other = code_of(ctx, o);
                ctx.report_as(
                    ids::PSYCHOTHERAPY_CODE_PAIRS,
                    super::Severity::Warning,
                    field(s, "modifiers"),
                    format!("{code} with {other} on the same date is payable only as a separate and distinct session: document it and add a distinct-service modifier ({modifiers})"),
                );
            }
        }
    }

    crisis_rules(ctx, d, &crisis, &crisis_addons);

    // BCBS IL: +90785 only with the listed primaries, never with crisis, family or 97151.
    let ic = with(ctx, &|c| c == INTERACTIVE_COMPLEXITY);
    if !ic.is_empty() {
        let has_primary = lines.iter().any(|&i| {
            INTERACTIVE_COMPLEXITY_PRIMARIES.contains(&ctx.line(i).procedure_code.as_str())
        });
        let mut excluded: Vec<String> = lines
            .iter()
            .map(|&i| code_of(ctx, i))
            .filter(|c| INTERACTIVE_COMPLEXITY_EXCLUDED.contains(&c.as_str()))
            .collect();
        excluded.dedup();
        for &i in &ic {
            if !has_primary && ctx.applies(ids::INTERACTIVE_COMPLEXITY_PRIMARY, d) {
                ctx.report(
                    ids::INTERACTIVE_COMPLEXITY_PRIMARY,
                    field(i, "procedure_code"),
                    format!(
                        "+{INTERACTIVE_COMPLEXITY} needs one of {} on the same date",
                        list(&INTERACTIVE_COMPLEXITY_PRIMARIES)
                    ),
                );
            }
            if ctx.applies(ids::INTERACTIVE_COMPLEXITY_EXCLUDED, d) {
                for x in &excluded {
                    ctx.report(
                        ids::INTERACTIVE_COMPLEXITY_EXCLUDED,
                        field(i, "procedure_code"),
                        format!("+{INTERACTIVE_COMPLEXITY} may not be reported with {x} on the same date"),
                    );
                }
            }
        }
    }

    // BCBS IL: +90863 requires 90832/90834/90837 and may not be billed with 90839/+90840.
    let pharm = with(ctx, &|c| c == PHARMACOLOGIC_ADDON);
    if !pharm.is_empty() && ctx.applies(ids::PHARMACOLOGIC_ADDON, d) {
        for &i in &pharm {
            if standalone.is_empty() {
                ctx.report(
                    ids::PHARMACOLOGIC_ADDON,
                    field(i, "procedure_code"),
                    format!(
                        "+{PHARMACOLOGIC_ADDON} needs {} on the same date",
                        list(&PSYCHOTHERAPY)
                    ),
                );
            }
            if !crisis.is_empty() || !crisis_addons.is_empty() {
                ctx.report(
                    ids::PHARMACOLOGIC_ADDON,
                    field(i, "procedure_code"),
                    format!("+{PHARMACOLOGIC_ADDON} may not be billed with crisis psychotherapy ({CRISIS}/+{CRISIS_ADDON}) on the same date"),
                );
            }
        }
    }
}

/// BCBS IL: 90839 covers the first 30–74 minutes once per day; +90840 each additional 30
/// minutes beyond 74 and only with 90839. The day's crisis time is the sum of the minutes on the
/// 90839 and +90840 lines, which works whether a clinic records the total on the 90839 line or
/// splits it across the lines.
fn crisis_rules(ctx: &mut Ctx<'_>, d: NaiveDate, crisis: &[usize], addons: &[usize]) {
    if ctx.applies(ids::CRISIS_ONCE_PER_DAY, d) {
        for (n, &i) in crisis.iter().enumerate() {
            if n > 0 {
                ctx.report(
                    ids::CRISIS_ONCE_PER_DAY,
                    field(i, "procedure_code"),
                    format!("{CRISIS} is reported once per day; bill crisis time beyond {CRISIS_FIRST_MAX_MINUTES} minutes with +{CRISIS_ADDON}"),
                );
            }
            let units = ctx.line(i).units;
            if units != 1 {
                ctx.report(
                    ids::CRISIS_ONCE_PER_DAY,
                    field(i, "units"),
                    format!("{CRISIS} is reported with 1 unit, not {units}; time beyond {CRISIS_FIRST_MAX_MINUTES} minutes is +{CRISIS_ADDON}"),
                );
            }
        }
    }

    if crisis.is_empty() {
        if ctx.applies(ids::CRISIS_ADDON_REQUIRES_PRIMARY, d) {
            for &i in addons {
                ctx.report(
                    ids::CRISIS_ADDON_REQUIRES_PRIMARY,
                    field(i, "procedure_code"),
                    format!("+{CRISIS_ADDON} is an add-on to {CRISIS}, and no {CRISIS} is billed for the same date"),
                );
            }
        }
        return;
    }

    let total: u32 = crisis
        .iter()
        .chain(addons)
        .map(|&i| ctx.line(i).minutes)
        .fold(0, u32::saturating_add);
    if total == 0 {
        // Reported by psychotherapy.minutes_documented.
        return;
    }
    if total < CRISIS_MIN_MINUTES && ctx.applies(ids::CRISIS_TIME, d) {
        ctx.report(
            ids::CRISIS_TIME,
            field(crisis[0], "minutes"),
            format!("{CRISIS} needs at least {CRISIS_MIN_MINUTES} minutes of crisis psychotherapy; {total} minutes is reported as psychotherapy by time (90832/90833)"),
        );
    }
    let claimed: u32 = addons
        .iter()
        .map(|&i| ctx.line(i).units)
        .fold(0, u32::saturating_add);
    let supported = crisis_addon_units(total);
    if claimed > supported && ctx.applies(ids::CRISIS_ADDON_UNITS, d) {
        ctx.report(
            ids::CRISIS_ADDON_UNITS,
            field(addons[0], "units"),
            format!("{total} minutes of crisis psychotherapy supports {supported} unit(s) of +{CRISIS_ADDON} (one per {CRISIS_ADDON_MINUTES} minutes beyond {CRISIS_FIRST_MAX_MINUTES}), not {claimed}"),
        );
    }
}

/// BCBS IL: at most one 90791/90792 per patient per day, counting evaluations already billed
/// for that date on other claims (the history).
fn evaluations_per_day(
    ctx: &mut Ctx<'_>,
    by_date: &std::collections::BTreeMap<NaiveDate, Vec<usize>>,
) {
    let limit = ctx.payer.coding.evaluations_per_day;
    for (&d, lines) in by_date {
        if !ctx.applies(ids::EVALUATION_PER_DAY, d) {
            continue;
        }
        let mut count: u32 = ctx
            .history
            .iter()
            .filter(|h| h.service_date == d && EVALUATIONS.contains(&h.procedure_code.as_str()))
            .map(|h| h.units.max(1))
            .fold(0, u32::saturating_add);
        let from_history = count > 0;
        for &i in lines {
            let l = ctx.line(i);
            if !EVALUATIONS.contains(&l.procedure_code.as_str()) {
                continue;
            }
            let code = l.procedure_code.clone();
            count = count.saturating_add(l.units.max(1));
            if count > limit {
                let already = if from_history {
                    "another claim already bills one for the same date"
                } else {
                    "this claim bills more for the same date"
                };
                ctx.report(
                    ids::EVALUATION_PER_DAY,
                    field(i, "procedure_code"),
                    format!("at most {limit} psychiatric diagnostic evaluation (90791/90792) per patient per day, and {already} ({code})"),
                );
            }
        }
    }
}

/// BCBS IL: 90791/90792 at treatment onset, repeatable only after a break of at least N months
/// (payer parameter `coding.evaluation_min_interval_months`, off by default).
fn evaluation_interval(ctx: &mut Ctx<'_>) {
    let Some(months) = ctx.payer.coding.evaluation_min_interval_months else {
        return;
    };
    let is_eval = |c: &str| EVALUATIONS.contains(&c);
    let mut earlier: Vec<NaiveDate> = ctx
        .history
        .iter()
        .filter(|h| is_eval(&h.procedure_code))
        .map(|h| h.service_date)
        .collect();
    earlier.extend(
        ctx.lines()
            .filter(|(_, l)| is_eval(&l.procedure_code))
            .map(|(_, l)| l.service_date),
    );
    for i in 0..ctx.claim.service_lines.len() {
        let l = ctx.line(i);
        let (d, code) = (l.service_date, l.procedure_code.clone());
        if !is_eval(&code) || !ctx.applies(ids::EVALUATION_INTERVAL, d) {
            continue;
        }
        // The break must be at least N months: an evaluation exactly N months before is fine.
        let window_start = d
            .checked_sub_months(Months::new(months))
            .unwrap_or(NaiveDate::MIN);
        if earlier.iter().any(|&e| window_start < e && e < d) {
            ctx.report(
                ids::EVALUATION_INTERVAL,
                field(i, "procedure_code"),
                format!("this payer pays {code} again only after {months} months without a diagnostic evaluation, and an earlier one falls within that break"),
            );
        }
    }
}
