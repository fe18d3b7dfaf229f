#![allow(clippy::unwrap_used)]

use chrono::{Datelike, Days, Months, NaiveDate};
use proptest::prelude::*;

use super::*;
use crate::claim::{ClaimInput, Credential, ServiceLineInput, validate_claim};
use crate::fixtures::valid_claim_input;
use crate::rules::payer::MEDICARE;
use crate::rules::{PayerRuleSet, RULES, has_errors};

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn today() -> NaiveDate {
    ymd(2026, 6, 15)
}

/// The fixture's date of service.
fn dos() -> NaiveDate {
    today().checked_sub_days(Days::new(7)).unwrap()
}

fn ln(code: &str, minutes: i64) -> ServiceLineInput {
    ServiceLineInput {
        line_number: 0,
        service_date: Some(dos()),
        procedure_code: code.into(),
        modifiers: vec![],
        units: 1,
        minutes,
        charge_cents: 10_000,
        place_of_service: "11".into(),
        diagnosis_pointers: vec![1],
    }
}

fn on(mut l: ServiceLineInput, d: NaiveDate) -> ServiceLineInput {
    l.service_date = Some(d);
    l
}

fn with_mods(mut l: ServiceLineInput, mods: &[&str]) -> ServiceLineInput {
    l.modifiers = mods.iter().map(|m| m.to_string()).collect();
    l
}

fn at(mut l: ServiceLineInput, pos: &str) -> ServiceLineInput {
    l.place_of_service = pos.into();
    l
}

fn units(mut l: ServiceLineInput, n: i64) -> ServiceLineInput {
    l.units = n;
    l
}

fn input(lines: Vec<ServiceLineInput>) -> ClaimInput {
    let mut c = valid_claim_input(today());
    // The coding tests bill E/M visits, their psychotherapy add-ons and 90792, which a
    // psychiatrist bills and the fixture's LCSW does not (credential.medical_codes has its own
    // tests below, with the licence set explicitly).
    c.rendering_provider.credential = Some(Credential::Psychiatrist);
    c.service_lines = lines;
    c
}

fn by(credential: Credential, lines: Vec<ServiceLineInput>) -> ValidClaim {
    let mut c = input(lines);
    c.rendering_provider.credential = Some(credential);
    valid(&c, today())
}

fn valid(input: &ClaimInput, today: NaiveDate) -> ValidClaim {
    match validate_claim(input, today) {
        Ok(c) => c,
        Err(v) => panic!("fixture claim is invalid: {v:#?}"),
    }
}

fn commercial() -> PayerRules {
    PayerRuleSet::builtin()
        .for_payer("t", "87726", today())
        .clone()
}

fn medicare(on: NaiveDate) -> PayerRules {
    PayerRuleSet::builtin().for_payer("t", MEDICARE, on).clone()
}

fn run(lines: Vec<ServiceLineInput>) -> Vec<ScrubFinding> {
    run_with(lines, &commercial(), &[])
}

fn run_with(
    lines: Vec<ServiceLineInput>,
    payer: &PayerRules,
    history: &[PriorService],
) -> Vec<ScrubFinding> {
    scrub(&valid(&input(lines), today()), payer, history, today())
}

/// Findings of one rule.
fn of<'a>(findings: &'a [ScrubFinding], id: &str) -> Vec<&'a ScrubFinding> {
    findings.iter().filter(|f| f.rule_id == id).collect()
}

/// Asserts exactly one finding of `id`, on `field`, at `severity`; returns its message.
#[track_caller]
fn one(findings: &[ScrubFinding], id: &str, field: &str, severity: Severity) -> String {
    let hits = of(findings, id);
    assert_eq!(hits.len(), 1, "expected one {id}, got {findings:#?}");
    assert_eq!(hits[0].field, field, "{findings:#?}");
    assert_eq!(hits[0].severity, severity, "{findings:#?}");
    hits[0].message.clone()
}

#[track_caller]
fn none_of(findings: &[ScrubFinding], id: &str) {
    assert!(
        of(findings, id).is_empty(),
        "unexpected {id}: {findings:#?}"
    );
}

#[track_caller]
fn clean(findings: &[ScrubFinding]) {
    assert!(
        findings.is_empty(),
        "expected no findings, got {findings:#?}"
    );
}

fn prior(code: &str, d: NaiveDate) -> PriorService {
    PriorService {
        service_date: d,
        procedure_code: code.into(),
        units: 1,
        modifiers: vec![],
        place_of_service: "11".into(),
        rendering_npi: crate::fixtures::RENDERING_NPI.into(),
    }
}

fn days_before(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).unwrap()
}

// ---- the fixture -------------------------------------------------------------------------

#[test]
fn fixture_scrubs_clean() {
    let claim = valid(&valid_claim_input(today()), today());
    clean(&scrub(&claim, &commercial(), &[], today()));
    clean(&scrub(&claim, &medicare(dos()), &[], today()));
    assert!(!has_errors(&[]));
}

// ---- psychotherapy time (docs/reference/billing-rules.md C1) ----------------------------------

#[test]
fn psychotherapy_time_boundaries() {
    use ids::{PSYCHOTHERAPY_TIME as TIME, PSYCHOTHERAPY_UNDERCODED as UNDER};
    // (code, minutes, expected rule and severity)
    type Case<'a> = (&'a str, i64, Option<(&'a str, Severity)>);
    let cases: [Case<'_>; 12] = [
        ("90832", 15, Some((TIME, Severity::Error))),
        ("90832", 16, None),
        ("90832", 37, None),
        ("90832", 38, Some((UNDER, Severity::Warning))),
        ("90834", 37, Some((TIME, Severity::Error))),
        ("90834", 38, None),
        ("90834", 52, None),
        ("90834", 53, Some((UNDER, Severity::Warning))),
        ("90837", 15, Some((TIME, Severity::Error))),
        ("90837", 52, Some((TIME, Severity::Error))),
        ("90837", 53, None),
        ("90837", 180, None),
    ];
    for (code, minutes, want) in cases {
        let f = run(vec![ln(code, minutes)]);
        match want {
            None => clean(&f),
            Some((id, sev)) => {
                let msg = one(&f, id, "service_lines[0].minutes", sev);
                assert_eq!(f.len(), 1, "{code} {minutes}: {f:#?}");
                assert!(msg.contains(code), "{msg}");
            }
        }
    }
    // The message names the code the time supports.
    let f = run(vec![ln("90837", 45)]);
    let msg = one(&f, TIME, "service_lines[0].minutes", Severity::Error);
    assert!(msg.contains("supports 90834"), "{msg}");
    let f = run(vec![ln("90832", 60)]);
    assert!(one(&f, UNDER, "service_lines[0].minutes", Severity::Warning).contains("90837"));
    let f = run(vec![ln("90834", 15)]);
    assert!(
        one(&f, TIME, "service_lines[0].minutes", Severity::Error).contains("not billable"),
        "{f:#?}"
    );
}

#[test]
fn addon_time_uses_the_same_ranges() {
    let em = ln("99214", 0);
    for (code, minutes, ok) in [
        ("90833", 15, false),
        ("90833", 16, true),
        ("90836", 37, false),
        ("90836", 38, true),
        ("90838", 52, false),
        ("90838", 53, true),
    ] {
        let f = run(vec![em.clone(), ln(code, minutes)]);
        if ok {
            clean(&f);
        } else {
            one(
                &f,
                ids::PSYCHOTHERAPY_TIME,
                "service_lines[1].minutes",
                Severity::Error,
            );
        }
    }
    let f = run(vec![em, ln("90833", 30)]);
    clean(&f);
}

#[test]
fn time_based_codes_need_minutes() {
    for code in ["90832", "90834", "90837", "90846", "90847", "90839"] {
        let f = run(vec![ln(code, 0)]);
        one(
            &f,
            ids::MINUTES_DOCUMENTED,
            "service_lines[0].minutes",
            Severity::Error,
        );
        // One finding for the missing time, not a second one for "under 16 minutes".
        none_of(&f, ids::PSYCHOTHERAPY_TIME);
        none_of(&f, ids::FAMILY_TIME);
        none_of(&f, ids::CRISIS_TIME);
    }
    // Evaluations and add-ons such as +90785 are not timed.
    clean(&run(vec![ln("90791", 0)]));
}

#[test]
fn psychotherapy_units_are_one_except_partial_hospitalization() {
    let f = run(vec![units(ln("90834", 45), 2)]);
    one(
        &f,
        ids::PSYCHOTHERAPY_UNITS,
        "service_lines[0].units",
        Severity::Error,
    );
    clean(&run(vec![at(units(ln("90834", 45), 2), "52")]));
}

// ---- add-ons and code pairs (docs/reference/billing-rules.md C2) ------------------------------

#[test]
fn em_addon_needs_a_primary_em_on_the_same_date() {
    let f = run(vec![ln("90836", 45)]);
    let msg = one(
        &f,
        ids::ADDON_REQUIRES_EM,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    assert!(msg.contains("90834"), "suggests the standalone code: {msg}");
    clean(&run(vec![ln("99213", 0), ln("90836", 45)]));
    // The E/M on another date does not count.
    let other_day = on(ln("99213", 0), days_before(dos(), 1));
    let f = run(vec![other_day, ln("90836", 45)]);
    one(
        &f,
        ids::ADDON_REQUIRES_EM,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
    // 99201 was deleted in 2021 and is outside the ranges.
    let f = run(vec![ln("99201", 0), ln("90836", 45)]);
    assert_eq!(of(&f, ids::ADDON_REQUIRES_EM).len(), 1);
}

#[test]
fn primary_em_list_is_a_payer_parameter() {
    // Consults 99242–99245 are in Novitas's 99202–99255 but not in BCBS IL's 99202–99239.
    let lines = || vec![ln("99244", 0), ln("90833", 20)];
    clean(&run(lines()));
    let json = r#"{"payers": [{"payer_id": "bcbsil", "name": "BCBS IL", "timely_filing_days": 180,
        "coding": {"primary_em": [{"from": "99202", "to": "99239"}, {"from": "99304", "to": "99316"},
                                  {"from": "99341", "to": "99350"}]}}]}"#;
    let set = PayerRuleSet::from_json(json).unwrap();
    let f = run_with(lines(), set.for_payer("t", "bcbsil", dos()), &[]);
    one(
        &f,
        ids::ADDON_REQUIRES_EM,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
}

#[test]
fn standalone_and_addon_psychotherapy_on_one_date() {
    let f = run(vec![ln("99214", 0), ln("90834", 45), ln("90836", 45)]);
    one(
        &f,
        ids::PSYCHOTHERAPY_CODE_PAIRS,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
}

#[test]
fn psychotherapy_with_family_or_crisis_needs_a_distinct_modifier() {
    let f = run(vec![ln("90834", 45), ln("90847", 50)]);
    one(
        &f,
        ids::PSYCHOTHERAPY_CODE_PAIRS,
        "service_lines[0].modifiers",
        Severity::Warning,
    );
    clean(&run(vec![
        ln("90834", 45),
        with_mods(ln("90847", 50), &["59"]),
    ]));
    clean(&run(vec![
        with_mods(ln("90834", 45), &["XU"]),
        ln("90847", 50),
    ]));
    // On different dates there is nothing to separate.
    clean(&run(vec![
        ln("90834", 45),
        on(ln("90847", 50), days_before(dos(), 2)),
    ]));
}

#[test]
fn family_psychotherapy_needs_26_minutes() {
    for code in ["90846", "90847"] {
        let f = run(vec![ln(code, 25)]);
        one(
            &f,
            ids::FAMILY_TIME,
            "service_lines[0].minutes",
            Severity::Error,
        );
        clean(&run(vec![ln(code, 26)]));
    }
}

#[test]
fn crisis_psychotherapy() {
    clean(&run(vec![ln("90839", 30)]));
    clean(&run(vec![ln("90839", 74)]));
    let f = run(vec![ln("90839", 29)]);
    one(
        &f,
        ids::CRISIS_TIME,
        "service_lines[0].minutes",
        Severity::Error,
    );

    // Once per day, one unit.
    let f = run(vec![ln("90839", 60), ln("90839", 40)]);
    one(
        &f,
        ids::CRISIS_ONCE_PER_DAY,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
    let f = run(vec![units(ln("90839", 60), 2)]);
    one(
        &f,
        ids::CRISIS_ONCE_PER_DAY,
        "service_lines[0].units",
        Severity::Error,
    );
    // On different days each is fine.
    clean(&run(vec![
        ln("90839", 60),
        on(ln("90839", 60), days_before(dos(), 1)),
    ]));

    // +90840 requires 90839 on the same date.
    let f = run(vec![ln("90840", 30)]);
    one(
        &f,
        ids::CRISIS_ADDON_REQUIRES_PRIMARY,
        "service_lines[0].procedure_code",
        Severity::Error,
    );

    // +90840 units: one per 30 minutes beyond 74 of the day's crisis time.
    let f = run(vec![ln("90839", 74), ln("90840", 0)]);
    one(
        &f,
        ids::CRISIS_ADDON_UNITS,
        "service_lines[1].units",
        Severity::Error,
    );
    clean(&run(vec![ln("90839", 75), ln("90840", 0)]));
    // Time split across the lines: 74 + 30 = 104 supports 1 unit, 105 supports 2.
    clean(&run(vec![ln("90839", 74), ln("90840", 30)]));
    let f = run(vec![ln("90839", 74), units(ln("90840", 30), 2)]);
    let msg = one(
        &f,
        ids::CRISIS_ADDON_UNITS,
        "service_lines[1].units",
        Severity::Error,
    );
    assert!(
        msg.contains("104 minutes") && msg.contains("supports 1"),
        "{msg}"
    );
    clean(&run(vec![ln("90839", 74), units(ln("90840", 31), 2)]));
}

#[test]
fn crisis_addon_unit_table() {
    use crate::rules::psychotherapy::crisis_addon_units;
    for (minutes, want) in [
        (0, 0),
        (74, 0),
        (75, 1),
        (104, 1),
        (105, 2),
        (134, 2),
        (135, 3),
    ] {
        assert_eq!(crisis_addon_units(minutes), want, "{minutes}");
    }
}

#[test]
fn interactive_complexity_pairs() {
    // The fixture: +90785 with 90837 is fine.
    clean(&run(vec![ln("90837", 55), ln("90785", 0)]));
    for primary in ["90791", "90792", "90832", "90834", "90853"] {
        let minutes = if primary == "90832" {
            30
        } else if primary == "90834" {
            45
        } else {
            0
        };
        clean(&run(vec![ln(primary, minutes), ln("90785", 0)]));
    }
    // Never with family psychotherapy.
    let f = run(vec![ln("90846", 50), ln("90785", 0)]);
    let msg = one(
        &f,
        ids::INTERACTIVE_COMPLEXITY_EXCLUDED,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
    assert!(msg.contains("90846"), "{msg}");
    // 90846 is not a listed primary either.
    one(
        &f,
        ids::INTERACTIVE_COMPLEXITY_PRIMARY,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
    // Not even when a listed primary is there too.
    let f = run(vec![
        ln("90834", 45),
        with_mods(ln("90839", 60), &["59"]),
        ln("90785", 0),
    ]);
    one(
        &f,
        ids::INTERACTIVE_COMPLEXITY_EXCLUDED,
        "service_lines[2].procedure_code",
        Severity::Error,
    );
    none_of(&f, ids::INTERACTIVE_COMPLEXITY_PRIMARY);
    // Alone.
    let f = run(vec![ln("90785", 0)]);
    one(
        &f,
        ids::INTERACTIVE_COMPLEXITY_PRIMARY,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
}

#[test]
fn pharmacologic_management_addon() {
    clean(&run(vec![ln("90834", 45), ln("90863", 0)]));
    let f = run(vec![ln("90863", 0)]);
    one(
        &f,
        ids::PHARMACOLOGIC_ADDON,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    let f = run(vec![
        with_mods(ln("90834", 45), &["59"]),
        ln("90839", 60),
        ln("90863", 0),
    ]);
    let msg = one(
        &f,
        ids::PHARMACOLOGIC_ADDON,
        "service_lines[2].procedure_code",
        Severity::Error,
    );
    assert!(msg.contains("crisis"), "{msg}");
}

// ---- evaluations ---------------------------------------------------------------------------

#[test]
fn one_evaluation_per_day() {
    let f = run(vec![ln("90791", 0), ln("90792", 0)]);
    one(
        &f,
        ids::EVALUATION_PER_DAY,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
    let f = run(vec![units(ln("90791", 0), 2)]);
    one(
        &f,
        ids::EVALUATION_PER_DAY,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    // Another claim already billed one that day.
    let f = run_with(
        vec![ln("90791", 0)],
        &commercial(),
        &[prior("90792", dos())],
    );
    let msg = one(
        &f,
        ids::EVALUATION_PER_DAY,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    assert!(msg.contains("another claim"), "{msg}");
    // Another day is fine (no interval limit by default).
    clean(&run_with(
        vec![ln("90791", 0)],
        &commercial(),
        &[prior("90791", days_before(dos(), 30))],
    ));
}

#[test]
fn evaluation_repeat_interval_is_a_payer_parameter() {
    let mut payer = commercial();
    payer.coding.evaluation_min_interval_months = Some(6);
    let five_months = dos().checked_sub_months(Months::new(5)).unwrap();
    let six_months = dos().checked_sub_months(Months::new(6)).unwrap();
    let f = run_with(vec![ln("90791", 0)], &payer, &[prior("90791", five_months)]);
    one(
        &f,
        ids::EVALUATION_INTERVAL,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    clean(&run_with(
        vec![ln("90791", 0)],
        &payer,
        &[prior("90791", six_months)],
    ));
    clean(&run_with(vec![ln("90791", 0)], &payer, &[]));
    // Two on the same claim, a month apart.
    let f = run_with(
        vec![on(ln("90791", 0), days_before(dos(), 30)), ln("90792", 0)],
        &payer,
        &[],
    );
    one(
        &f,
        ids::EVALUATION_INTERVAL,
        "service_lines[1].procedure_code",
        Severity::Error,
    );
}

#[test]
fn evaluation_and_em_same_day_same_clinician() {
    // On one claim (one rendering clinician): the evaluation line carries the finding.
    for eval in ["90791", "90792"] {
        for em in ["99213", "99204", "99244"] {
            let f = run(vec![ln(em, 0), ln(eval, 0)]);
            let msg = one(
                &f,
                ids::EVALUATION_WITH_EM,
                "service_lines[1].procedure_code",
                Severity::Error,
            );
            assert!(msg.contains(eval) && msg.contains(em), "{msg}");
        }
    }
    // Other dates, or no E/M: fine.
    none_of(
        &run(vec![
            on(ln("99213", 0), days_before(dos(), 1)),
            ln("90792", 0),
        ]),
        ids::EVALUATION_WITH_EM,
    );
    clean(&run(vec![ln("90792", 0)]));
    // Psychotherapy with an E/M is the add-on rule's business, not this one.
    none_of(
        &run(vec![ln("99213", 0), ln("90833", 30)]),
        ids::EVALUATION_WITH_EM,
    );
    // Another claim of the same clinician the same day counts, either way round.
    let f = run_with(
        vec![ln("90791", 0)],
        &commercial(),
        &[prior("99214", dos())],
    );
    let msg = one(
        &f,
        ids::EVALUATION_WITH_EM,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    assert!(msg.contains("another claim"), "{msg}");
    let f = run_with(
        vec![ln("99214", 0)],
        &commercial(),
        &[prior("90792", dos())],
    );
    one(
        &f,
        ids::EVALUATION_WITH_EM,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
    // Another clinician's (or an unknown clinician's) E/M that day does not.
    let mut other = prior("99214", dos());
    other.rendering_npi = "1245319599".into();
    none_of(
        &run_with(vec![ln("90791", 0)], &commercial(), &[other.clone()]),
        ids::EVALUATION_WITH_EM,
    );
    other.rendering_npi = String::new();
    none_of(
        &run_with(vec![ln("90791", 0)], &commercial(), &[other]),
        ids::EVALUATION_WITH_EM,
    );
    // Effective-dated: 90791/90792 exist from CPT 2013.
    let r = rule(ids::EVALUATION_WITH_EM).unwrap();
    assert!(!r.in_force(ymd(2012, 12, 31)) && r.in_force(ymd(2013, 1, 1)));
    // A payer can switch it off.
    let mut payer = commercial();
    payer.disabled_rules.push(ids::EVALUATION_WITH_EM.into());
    none_of(
        &run_with(vec![ln("99213", 0), ln("90791", 0)], &payer, &[]),
        ids::EVALUATION_WITH_EM,
    );
}

#[test]
fn non_medical_licences_do_not_bill_90792_em_or_em_addons() {
    use crate::rules::psychotherapy::bills_medical_services;
    let non_medical = [
        Credential::Psychologist,
        Credential::Lcsw,
        Credential::Lpc,
        Credential::Lmft,
        Credential::Lmhc,
        Credential::Lcadc,
        Credential::Associate,
    ];
    for cred in non_medical {
        assert_eq!(bills_medical_services(cred), Some(false), "{cred}");
        // 90792: report 90791 instead.
        let f = scrub(&by(cred, vec![ln("90792", 0)]), &commercial(), &[], today());
        let msg = one(
            &f,
            ids::CREDENTIAL_MEDICAL_CODES,
            "service_lines[0].procedure_code",
            Severity::Error,
        );
        assert!(
            msg.contains(cred.as_str()) && msg.contains("90791"),
            "{msg}"
        );
        // An E/M visit.
        for em in ["99213", "99205", "99232", "99244", "99310", "99348"] {
            let f = scrub(&by(cred, vec![ln(em, 0)]), &commercial(), &[], today());
            one(
                &f,
                ids::CREDENTIAL_MEDICAL_CODES,
                "service_lines[0].procedure_code",
                Severity::Error,
            );
        }
        // The psychotherapy add-ons that need an E/M (both lines are findings).
        let f = scrub(
            &by(cred, vec![ln("99214", 0), ln("90836", 45)]),
            &commercial(),
            &[],
            today(),
        );
        let hits = of(&f, ids::CREDENTIAL_MEDICAL_CODES);
        assert_eq!(hits.len(), 2, "{f:#?}");
        assert!(hits[1].message.contains("report 90834"), "{f:#?}");
        // What they do bill is clean.
        clean(&scrub(
            &by(cred, vec![ln("90791", 0), ln("90785", 0)]),
            &commercial(),
            &[],
            today(),
        ));
        clean(&scrub(
            &by(cred, vec![ln("90837", 55), ln("90785", 0)]),
            &commercial(),
            &[],
            today(),
        ));
        // Team conferences and preventive counseling are not E/M visits for this rule.
        for code in ["99366", "99408"] {
            none_of(
                &scrub(&by(cred, vec![ln(code, 0)]), &commercial(), &[], today()),
                ids::CREDENTIAL_MEDICAL_CODES,
            );
        }
    }
    // Prescribers bill them; an unknown licence is not checked.
    for cred in [
        Credential::Psychiatrist,
        Credential::Physician,
        Credential::NursePractitioner,
        Credential::PhysicianAssistant,
        Credential::Other,
    ] {
        let f = scrub(
            &by(
                cred,
                vec![ln("90792", 0), on(ln("99214", 0), days_before(dos(), 1))],
            ),
            &commercial(),
            &[],
            today(),
        );
        none_of(&f, ids::CREDENTIAL_MEDICAL_CODES);
    }
    // Effective-dated like the other CPT 2013 rules; a payer may switch it off (e.g. for a
    // prescribing psychologist).
    let r = rule(ids::CREDENTIAL_MEDICAL_CODES).unwrap();
    assert!(!r.in_force(ymd(2012, 12, 31)) && r.in_force(ymd(2013, 1, 1)));
    let mut payer = commercial();
    payer
        .disabled_rules
        .push(ids::CREDENTIAL_MEDICAL_CODES.into());
    none_of(
        &scrub(
            &by(Credential::Psychologist, vec![ln("90792", 0)]),
            &payer,
            &[],
            today(),
        ),
        ids::CREDENTIAL_MEDICAL_CODES,
    );
    // Medicare too.
    let f = scrub(
        &by(Credential::Lcsw, vec![ln("90792", 0)]),
        &medicare(dos()),
        &[],
        today(),
    );
    one(
        &f,
        ids::CREDENTIAL_MEDICAL_CODES,
        "service_lines[0].procedure_code",
        Severity::Error,
    );
}

// ---- telehealth (docs/reference/billing-rules.md C3) ------------------------------------------

#[test]
fn audio_only_and_audio_video_together_is_an_error() {
    let f = run(vec![at(with_mods(ln("90834", 45), &["95", "93"]), "10")]);
    one(
        &f,
        ids::TELEHEALTH_MODIFIER_CONFLICT,
        "service_lines[0].modifiers",
        Severity::Error,
    );
}

#[test]
fn telehealth_pos_and_modifier_follow_the_payer_table() {
    // The generic table wants 95 or 93 with POS 02/10.
    clean(&run(vec![at(with_mods(ln("90834", 45), &["95"]), "10")]));
    clean(&run(vec![at(with_mods(ln("90834", 45), &["93"]), "02")]));
    let f = run(vec![at(ln("90834", 45), "02")]);
    let msg = one(
        &f,
        ids::TELEHEALTH_POS_MODIFIER,
        "service_lines[0].modifiers",
        Severity::Warning,
    );
    assert!(msg.contains("95"), "{msg}");
    // The reverse: a telehealth modifier on an office POS.
    let f = run(vec![with_mods(ln("90834", 45), &["95"])]);
    one(
        &f,
        ids::TELEHEALTH_POS_MODIFIER,
        "service_lines[0].place_of_service",
        Severity::Warning,
    );
    // GT is a telehealth modifier the generic table does not accept.
    let f = run(vec![at(with_mods(ln("90834", 45), &["GT"]), "02")]);
    one(
        &f,
        ids::TELEHEALTH_POS_MODIFIER,
        "service_lines[0].modifiers",
        Severity::Warning,
    );

    // Medicare from 2024 accepts POS 02/10 with or without a modifier; through 2023 it took the
    // in-person POS with 95.
    let m = medicare(dos());
    clean(&run_with(vec![at(ln("90834", 45), "10")], &m, &[]));
    let f = run_with(vec![with_mods(ln("90834", 45), &["95"])], &m, &[]);
    assert_eq!(of(&f, ids::TELEHEALTH_POS_MODIFIER).len(), 1);
    let d2023 = ymd(2023, 6, 1);
    let old = medicare(d2023);
    let claim = valid(
        &input(vec![on(with_mods(ln("90834", 45), &["95"]), d2023)]),
        ymd(2023, 6, 10),
    );
    clean(&scrub(&claim, &old, &[], ymd(2023, 6, 10)));

    // A payer whose table takes POS 02 without a modifier.
    let json = r#"{"payers": [{"payer_id": "p", "name": "P", "timely_filing_days": 90,
        "telehealth": {"accepted": [{"pos": "02"}, {"pos": "02", "modifier": "95"}]}}]}"#;
    let set = PayerRuleSet::from_json(json).unwrap();
    let p = set.for_payer("t", "p", dos());
    clean(&run_with(vec![at(ln("90834", 45), "02")], p, &[]));
    let f = run_with(vec![at(ln("90834", 45), "10")], p, &[]);
    one(
        &f,
        ids::TELEHEALTH_POS_MODIFIER,
        "service_lines[0].modifiers",
        Severity::Warning,
    );
}

#[test]
fn effective_dated_rule_is_not_applied_before_its_start() {
    // FQ → 93 from 2023-01-01.
    let check = |d: NaiveDate| {
        let t = d.checked_add_days(Days::new(10)).unwrap();
        let mut claim = input(vec![on(at(with_mods(ln("90834", 45), &["FQ"]), "10"), d)]);
        claim.patient.birth_date = Some(ymd(1980, 1, 1));
        let claim = valid(&claim, t);
        scrub(&claim, &commercial(), &[], t)
    };
    none_of(&check(ymd(2022, 12, 31)), ids::TELEHEALTH_FQ_REPLACED);
    let f = check(ymd(2023, 1, 1));
    one(
        &f,
        ids::TELEHEALTH_FQ_REPLACED,
        "service_lines[0].modifiers",
        Severity::Warning,
    );

    // The CPT 2013 psychotherapy time rule does not apply to a 2012 date of service.
    let run_on = |d: NaiveDate| {
        let t = d.checked_add_days(Days::new(10)).unwrap();
        let claim = valid(&input(vec![on(ln("90834", 20), d)]), t);
        scrub(&claim, &commercial(), &[], t)
    };
    clean(&run_on(ymd(2012, 12, 31)));
    one(
        &run_on(ymd(2013, 1, 1)),
        ids::PSYCHOTHERAPY_TIME,
        "service_lines[0].minutes",
        Severity::Error,
    );
}

#[test]
fn medicare_in_person_requirement_only_when_enforced() {
    let tele = || at(with_mods(ln("90834", 45), &["95"]), "10");
    // Built in but not enforced.
    clean(&run_with(vec![tele()], &medicare(dos()), &[]));

    let json = r#"{"payers": [{"payer_id": "12502", "based_on": "medicare",
        "telehealth": {"in_person_requirement": {"enforced": true, "effective_from": "2026-01-01"}}}]}"#;
    let set = PayerRuleSet::from_json(json).unwrap();
    let p = set.for_payer("t", "12502", dos());
    let f = run_with(vec![tele()], p, &[]);
    let msg = one(
        &f,
        ids::TELEHEALTH_IN_PERSON,
        "service_lines[0].place_of_service",
        Severity::Warning,
    );
    assert!(msg.contains("6 months"), "{msg}");
    // An in-person visit 3 months before satisfies it.
    let visit = prior("90837", dos().checked_sub_months(Months::new(3)).unwrap());
    clean(&run_with(vec![tele()], p, std::slice::from_ref(&visit)));
    // Later telehealth needs a visit every 12 months.
    let mut earlier_tele = prior("90834", dos().checked_sub_months(Months::new(13)).unwrap());
    earlier_tele.place_of_service = "10".into();
    let old_visit = prior("90837", dos().checked_sub_months(Months::new(14)).unwrap());
    let f = run_with(vec![tele()], p, &[earlier_tele.clone(), old_visit]);
    assert!(
        of(&f, ids::TELEHEALTH_IN_PERSON)[0]
            .message
            .contains("12 months")
    );
    let recent = prior("90837", dos().checked_sub_months(Months::new(11)).unwrap());
    clean(&run_with(vec![tele()], p, &[earlier_tele, recent]));
    // Substance-use treatment is exempt.
    let mut sud = input(vec![tele()]);
    sud.diagnoses = vec!["F10.20".into()];
    clean(&scrub(&valid(&sud, today()), p, &[], today()));
    // Not before its effective date.
    let d = ymd(2025, 12, 31);
    let claim = valid(&input(vec![on(tele(), d)]), today());
    none_of(&scrub(&claim, p, &[], today()), ids::TELEHEALTH_IN_PERSON);
}

// ---- payer rules ---------------------------------------------------------------------------

#[test]
fn medicare_pays_lmft_from_2024() {
    let check = |d: NaiveDate| {
        let t = d.checked_add_days(Days::new(10)).unwrap();
        let mut claim = input(vec![on(ln("90834", 45), d)]);
        claim.rendering_provider.credential = Some(Credential::Lmft);
        let claim = valid(&claim, t);
        let payer = medicare(claim.first_service_date());
        scrub(&claim, &payer, &[], t)
    };
    let f = check(ymd(2023, 12, 31));
    let msg = one(
        &f,
        ids::CREDENTIAL,
        "rendering_provider.credential",
        Severity::Error,
    );
    assert!(msg.contains("lmft"), "{msg}");
    clean(&check(ymd(2024, 1, 1)));
    // Associates never.
    let mut claim = input(vec![ln("90834", 45)]);
    claim.rendering_provider.credential = Some(Credential::Associate);
    let f = scrub(&valid(&claim, today()), &medicare(dos()), &[], today());
    one(
        &f,
        ids::CREDENTIAL,
        "rendering_provider.credential",
        Severity::Error,
    );
    // The commercial default pays any licence.
    clean(&scrub(&valid(&claim, today()), &commercial(), &[], today()));
}

#[test]
fn prior_authorization_by_code() {
    let mut payer = commercial();
    payer.prior_auth.codes = vec!["90837".into()];
    let f = run_with(vec![ln("90837", 55)], &payer, &[]);
    one(
        &f,
        ids::PRIOR_AUTHORIZATION,
        "prior_authorization_number",
        Severity::Error,
    );
    let mut with_auth = input(vec![ln("90837", 55)]);
    with_auth.prior_authorization_number = "AUTH-123".into();
    clean(&scrub(&valid(&with_auth, today()), &payer, &[], today()));
}

#[test]
fn prior_authorization_after_n_sessions_in_the_period() {
    let mut payer = commercial();
    payer.prior_auth.after_sessions = Some(3);
    let year_start = ymd(dos().year(), 1, 1);
    let this_year: Vec<PriorService> = [0u64, 7, 14]
        .iter()
        .map(|&n| prior("90834", year_start.checked_add_days(Days::new(n)).unwrap()))
        .collect();
    // Three sessions already: the fourth needs authorization.
    let f = run_with(vec![ln("90834", 45)], &payer, &this_year);
    let msg = one(
        &f,
        ids::PRIOR_AUTHORIZATION,
        "prior_authorization_number",
        Severity::Error,
    );
    assert!(
        msg.contains("number 4") && msg.contains("calendar year"),
        "{msg}"
    );
    // Two: still free.
    clean(&run_with(vec![ln("90834", 45)], &payer, &this_year[..2]));
    // Two plus two sessions on this claim: the claim's second session is the fourth.
    let f = run_with(
        vec![on(ln("90834", 45), days_before(dos(), 7)), ln("90834", 45)],
        &payer,
        &this_year[..2],
    );
    assert!(
        of(&f, ids::PRIOR_AUTHORIZATION)[0]
            .message
            .contains("service_lines[1]")
    );
    // Last year's sessions do not count in a calendar year.
    let last_year: Vec<PriorService> = this_year
        .iter()
        .map(|p| prior("90834", days_before(p.service_date, 366)))
        .collect();
    clean(&run_with(vec![ln("90834", 45)], &payer, &last_year));
    // They do in a rolling 600 days.
    payer.prior_auth.per = Period::Rolling { days: 600 };
    assert_eq!(
        of(
            &run_with(vec![ln("90834", 45)], &payer, &last_year),
            ids::PRIOR_AUTHORIZATION
        )
        .len(),
        1
    );
    // Add-ons and E/M are not sessions; a session date with two codes is one session.
    payer.prior_auth.per = Period::CalendarYear;
    let mut history = this_year[..2].to_vec();
    history.push(prior("90785", this_year[1].service_date));
    history.push(prior("99213", days_before(dos(), 3)));
    clean(&run_with(vec![ln("90834", 45)], &payer, &history));
    // An authorization number satisfies it.
    let mut claim = input(vec![ln("90834", 45)]);
    claim.prior_authorization_number = "A1".into();
    clean(&scrub(&valid(&claim, today()), &payer, &this_year, today()));
}

#[test]
fn payer_can_disable_a_rule_or_change_its_severity() {
    let lines = || vec![ln("90834", 20)];
    one(
        &run(lines()),
        ids::PSYCHOTHERAPY_TIME,
        "service_lines[0].minutes",
        Severity::Error,
    );
    let json = r#"{"payers": [
        {"payer_id": "lenient", "name": "L", "timely_filing_days": 90, "disabled_rules": ["psychotherapy.time_range"]},
        {"payer_id": "soft", "name": "S", "timely_filing_days": 90, "severity_overrides": {"psychotherapy.time_range": "warning"}}
    ]}"#;
    let set = PayerRuleSet::from_json(json).unwrap();
    clean(&run_with(
        lines(),
        set.for_payer("t", "lenient", dos()),
        &[],
    ));
    one(
        &run_with(lines(), set.for_payer("t", "soft", dos()), &[]),
        ids::PSYCHOTHERAPY_TIME,
        "service_lines[0].minutes",
        Severity::Warning,
    );
}

#[test]
fn timely_filing_warning() {
    // Medicare, DOS Feb 29: filed Feb 28 next year is on time, Mar 1 is late.
    let dos = ymd(2024, 2, 29);
    let check = |filed: NaiveDate| {
        let mut c = input(vec![on(ln("90834", 45), dos)]);
        c.patient.birth_date = Some(ymd(1980, 1, 1));
        let claim = valid(&c, filed);
        assert_eq!(claim.submission_date, Some(filed));
        scrub(&claim, &medicare(dos), &[], filed)
    };
    clean(&check(ymd(2025, 2, 28)));
    let f = check(ymd(2025, 3, 1));
    let msg = one(
        &f,
        ids::TIMELY_FILING,
        "service_lines[0].service_date",
        Severity::Warning,
    );
    assert!(
        msg.contains("past timely filing") && msg.contains("12-month"),
        "{msg}"
    );

    // Commercial default 90 days; the field points at the earliest line.
    let d = days_before(today(), 91);
    let f = run(vec![ln("90834", 45), on(ln("90834", 45), d)]);
    one(
        &f,
        ids::TIMELY_FILING,
        "service_lines[1].service_date",
        Severity::Warning,
    );
    clean(&run(vec![on(ln("90834", 45), days_before(today(), 90))]));

    // A draft is judged as if filed today; an imported claim by its submission date.
    let mut c = input(vec![on(ln("90834", 45), d)]);
    c.submission_date = Some(days_before(today(), 10));
    clean(&scrub(&valid(&c, today()), &commercial(), &[], today()));
}

#[test]
fn corrected_claims_use_their_own_window_and_voids_are_not_scrubbed() {
    let d = days_before(today(), 200);
    let mut c = input(vec![on(ln("90834", 20), d)]);
    c.frequency = Some(Frequency::Replacement);
    c.original_claim_id = Some("ICN-1".into());
    let claim = valid(&c, today());
    // From the RA (unknown here): no timely-filing finding.
    let f = scrub(&claim, &commercial(), &[], today());
    none_of(&f, ids::TIMELY_FILING);
    // Anthem-style 365 days from DOS: within; 180: past.
    let mut p = commercial();
    p.corrected_claim_clock = crate::rules::CorrectedClaimClock::FromServiceDate;
    p.corrected_claim_days = Some(365);
    none_of(&scrub(&claim, &p, &[], today()), ids::TIMELY_FILING);
    p.corrected_claim_days = Some(180);
    let f = scrub(&claim, &p, &[], today());
    assert!(
        of(&f, ids::TIMELY_FILING)[0]
            .message
            .contains("corrected-claim")
    );

    c.frequency = Some(Frequency::Void);
    clean(&scrub(&valid(&c, today()), &p, &[], today()));
}

#[test]
fn reported_rule_ids_are_registered() {
    // A smoke check that the ids used in findings are registered (a typo in a check would
    // otherwise report an id that `disabled_rules` can never name).
    let f = run(vec![
        ln("90833", 10),
        ln("90785", 0),
        at(with_mods(ln("90834", 0), &["93", "95"]), "02"),
        ln("90840", 10),
    ]);
    assert!(!f.is_empty());
    for x in &f {
        assert!(RULES.iter().any(|r| r.id == x.rule_id), "{}", x.rule_id);
    }
}

// ---- property: never panics, never leaks PHI -----------------------------------------------

const CODES: &[&str] = &[
    "90791", "90792", "90832", "90833", "90834", "90836", "90837", "90838", "90839", "90840",
    "90846", "90847", "90853", "90785", "90863", "99213", "99214", "99244", "97151", "H0004",
];
const MODIFIERS: &[&str] = &["95", "93", "GT", "FQ", "59", "XU", "25", "HJ"];
const POS: &[&str] = &["02", "10", "11", "12", "52", "53"];
const DIAGNOSES: &[&str] = &[
    "F33.1", "F41.1", "F43.10", "F90.0", "F31.81", "F32.A", "F10.20", "F84.0", "Z63.0",
];

fn line_strategy() -> impl Strategy<Value = (usize, i64, i64, Vec<usize>, usize, u64)> {
    (
        0..CODES.len(),
        0i64..300,
        1i64..5,
        proptest::collection::vec(0..MODIFIERS.len(), 0..3),
        0..POS.len(),
        0u64..400,
    )
}

fn history_strategy() -> impl Strategy<Value = Vec<(usize, u64, usize)>> {
    proptest::collection::vec((0..CODES.len(), 0u64..800, 0..POS.len()), 0..12)
}

fn payers() -> Vec<PayerRules> {
    let json = r#"{"payers": [
        {"payer_id": "strict", "name": "Strict", "timely_filing_days": 30,
         "prior_auth": {"codes": ["90837"], "after_sessions": 2, "per": {"kind": "fiscal_year", "start_month": 7}},
         "coding": {"evaluation_min_interval_months": 6},
         "allowed_credentials": ["psychologist"]},
        {"payer_id": "12502", "based_on": "medicare",
         "telehealth": {"in_person_requirement": {"enforced": true}}}
    ]}"#;
    PayerRuleSet::from_json(json)
        .unwrap()
        .entries()
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scrub_never_panics_and_never_leaks_phi(
        first in "Zq[a-z]{4,10}",
        last in "Xv[a-z]{4,12}",
        member in "M[0-9]{9}Q",
        birth_days in 0u64..28_000,
        dx in proptest::collection::vec(0..DIAGNOSES.len(), 1..4),
        lines in proptest::collection::vec(line_strategy(), 1..7),
        history in history_strategy(),
        credential in 0..Credential::ALL.len(),
        auth in proptest::option::of("[A-Z0-9]{6}"),
        payer_index in 0usize..16,
    ) {
        let birth = ymd(1930, 1, 1).checked_add_days(Days::new(birth_days)).unwrap();
        let mut c = valid_claim_input(today());
        c.patient.first_name = first.clone();
        c.patient.last_name = last.clone();
        c.patient.member_id = member.clone();
        c.patient.birth_date = Some(birth);
        let mut dx = dx;
        dx.sort_unstable();
        dx.dedup();
        c.diagnoses = dx.iter().map(|&i| DIAGNOSES[i].to_string()).collect();
        c.rendering_provider.credential = Some(Credential::ALL[credential]);
        c.prior_authorization_number = auth.unwrap_or_default();
        c.service_lines = lines
            .iter()
            .map(|(code, minutes, units, mods, pos, ago)| {
                let mut mods: Vec<&str> = mods.iter().map(|&m| MODIFIERS[m]).collect();
                mods.sort_unstable();
                mods.dedup();
                ServiceLineInput {
                    line_number: 0,
                    service_date: Some(days_before(today(), *ago)),
                    procedure_code: CODES[*code].into(),
                    modifiers: mods.iter().map(|m| m.to_string()).collect(),
                    units: *units,
                    minutes: *minutes,
                    charge_cents: 12_345,
                    place_of_service: POS[*pos].into(),
                    diagnosis_pointers: vec![1],
                }
            })
            .collect();
        // Every generated input is a valid claim: scrub only ever sees those.
        let claim = validate_claim(&c, today());
        prop_assert!(claim.is_ok(), "{:?}", claim.err());
        let claim = claim.unwrap();
        let history: Vec<PriorService> = history
            .iter()
            .map(|&(code, ago, pos)| {
                let mut p = prior(CODES[code], days_before(today(), ago));
                p.place_of_service = POS[pos].into();
                p
            })
            .collect();
        let payers = payers();
        let payer = &payers[payer_index % payers.len()];
        let findings = scrub(&claim, payer, &history, today());

        let mut secrets: Vec<String> = vec![first, last, member];
        for fmt in ["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%-m/%-d/%Y"] {
            secrets.push(birth.format(fmt).to_string());
            for l in &claim.service_lines {
                secrets.push(l.service_date.format(fmt).to_string());
            }
        }
        for d in &c.diagnoses {
            secrets.push(d.clone());
            secrets.push(d.replace('.', ""));
        }
        for f in &findings {
            prop_assert!(RULES.iter().any(|r| r.id == f.rule_id), "{}", f.rule_id);
            prop_assert!(!f.message.is_empty());
            prop_assert!(
                f.field.starts_with("service_lines[")
                    || f.field == "prior_authorization_number"
                    || f.field == "rendering_provider.credential",
                "{}", f.field
            );
            for s in &secrets {
                prop_assert!(!f.message.contains(s.as_str()), "{:?} leaks {:?}", f.message, s);
                prop_assert!(!f.field.contains(s.as_str()), "{:?} leaks {:?}", f.field, s);
            }
        }
    }
}
