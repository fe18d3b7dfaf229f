#![allow(clippy::unwrap_used)]

use super::*;
use crate::fixtures::{BILLING_NPI, RENDERING_NPI, valid_claim_input};
use chrono::Days;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn days_ago(n: u64) -> NaiveDate {
    today().checked_sub_days(Days::new(n)).unwrap()
}

fn tomorrow() -> NaiveDate {
    today().checked_add_days(Days::new(1)).unwrap()
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn base() -> ClaimInput {
    valid_claim_input(today())
}

fn ok(input: &ClaimInput) -> ValidClaim {
    match validate_claim(input, today()) {
        Ok(c) => c,
        Err(v) => panic!("expected a valid claim, got {v:#?}"),
    }
}

fn violations(input: &ClaimInput) -> Vec<FieldViolation> {
    match validate_claim(input, today()) {
        Ok(_) => panic!("expected violations, the claim was accepted"),
        Err(v) => {
            assert!(!v.is_empty());
            v
        }
    }
}

/// Asserts that the claim fails on `field` and on nothing else, and returns the description.
#[track_caller]
fn only(input: &ClaimInput, field: &str) -> String {
    let v = violations(input);
    assert!(
        v.iter().all(|x| x.field == field),
        "expected only {field}, got {v:#?}"
    );
    v[0].description.clone()
}

fn line(input: &mut ClaimInput, i: usize) -> &mut ServiceLineInput {
    &mut input.service_lines[i]
}

#[test]
fn fixture_is_valid_and_normalized() {
    let c = ok(&base());
    assert_eq!(c.clinic_id, "clinic-riverside");
    assert_eq!(c.diagnoses, ["F331", "F411"]);
    assert_eq!(c.status, ClaimStatus::Submitted);
    assert_eq!(c.submission_date, Some(today()));
    assert_eq!(c.frequency, Frequency::Original);
    assert_eq!(c.original_claim_id, None);
    assert_eq!(c.prior_authorization_number, None);
    assert_eq!(c.total_charge, Money::from_cents(20_500));
    assert_eq!(c.rendering_provider.npi, RENDERING_NPI);
    assert_eq!(c.billing_provider.npi, BILLING_NPI);
    assert_eq!(c.rendering_provider.credential, Some(Credential::Lcsw));
    let l = &c.service_lines;
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].line_number, l[1].line_number), (1, 2));
    assert_eq!(l[0].procedure_code, "90837");
    assert_eq!(l[0].minutes, 55);
    assert_eq!(l[0].diagnosis_pointers, [1, 2]);
    assert_eq!(l[1].procedure_code, "90785");
    assert_eq!(l[1].charge, Money::from_cents(2_500));
    assert_eq!(c.first_service_date(), days_ago(7));
}

#[test]
fn surrounding_whitespace_is_dropped_and_codes_are_uppercased() {
    let mut i = base();
    i.clinic_id = " clinic-riverside ".into();
    i.external_id = "  RBH-000123\t".into();
    i.patient.last_name = " Rivera ".into();
    i.payer.id = "87726 ".into();
    i.rendering_provider.npi = " 1234567893".into();
    i.diagnoses = vec![" f33.1 ".into()];
    line(&mut i, 0).procedure_code = " h2019 ".into();
    line(&mut i, 0).modifiers = vec![" hj".into(), "95 ".into()];
    line(&mut i, 0).place_of_service = " 11 ".into();
    line(&mut i, 0).diagnosis_pointers = vec![1];
    i.service_lines.truncate(1);
    i.prior_authorization_number = "  AUTH-1 ".into();
    let c = ok(&i);
    assert_eq!(c.clinic_id, "clinic-riverside");
    assert_eq!(c.external_id, "RBH-000123");
    assert_eq!(c.patient.last_name, "Rivera");
    assert_eq!(c.payer.id, "87726");
    assert_eq!(c.rendering_provider.npi, RENDERING_NPI);
    assert_eq!(c.diagnoses, ["F331"]);
    assert_eq!(c.service_lines[0].procedure_code, "H2019");
    assert_eq!(c.service_lines[0].modifiers, ["HJ", "95"]);
    assert_eq!(c.service_lines[0].place_of_service, "11");
    assert_eq!(c.prior_authorization_number.as_deref(), Some("AUTH-1"));
}

#[test]
fn required_fields() {
    type Mutation = fn(&mut ClaimInput);
    let cases: &[(&str, Mutation)] = &[
        ("clinic_id", |i| i.clinic_id.clear()),
        ("external_id", |i| i.external_id = "   ".into()),
        ("patient.id", |i| i.patient.id.clear()),
        ("patient.first_name", |i| i.patient.first_name.clear()),
        ("patient.last_name", |i| i.patient.last_name = " ".into()),
        ("patient.birth_date", |i| i.patient.birth_date = None),
        ("patient.member_id", |i| i.patient.member_id.clear()),
        ("payer.id", |i| i.payer.id.clear()),
        ("payer.name", |i| i.payer.name.clear()),
        ("rendering_provider.npi", |i| {
            i.rendering_provider.npi.clear()
        }),
        ("rendering_provider.credential", |i| {
            i.rendering_provider.credential = None
        }),
        ("billing_provider.npi", |i| i.billing_provider.npi.clear()),
        ("billing_provider.name", |i| i.billing_provider.name.clear()),
    ];
    for (field, mutate) in cases {
        let mut i = base();
        mutate(&mut i);
        assert_eq!(only(&i, field), "is required", "{field}");
    }
}

#[test]
fn rendering_name_and_billing_credential_are_optional() {
    let mut i = base();
    i.rendering_provider.name.clear();
    i.billing_provider.credential = None;
    let c = ok(&i);
    assert_eq!(c.rendering_provider.name, "");
    assert_eq!(c.billing_provider.credential, None);
}

#[test]
fn identifiers_must_have_the_identifier_shape() {
    let mut i = base();
    i.clinic_id = "clinic riverside".into();
    only(&i, "clinic_id");

    let mut i = base();
    i.payer.id = "877/26".into();
    only(&i, "payer.id");

    let mut i = base();
    i.clinic_id = "c".repeat(65);
    only(&i, "clinic_id");
    i.clinic_id = "c".repeat(64);
    ok(&i);
}

#[test]
fn external_id_fits_clm01() {
    let mut i = base();
    i.external_id = "X".repeat(38);
    ok(&i);
    i.external_id = "X".repeat(39);
    assert!(only(&i, "external_id").contains("38"));
}

#[test]
fn external_id_is_printable_ascii_without_delimiters() {
    for bad in [
        "RBH*1",
        "RBH~1",
        "RBH:1",
        "RBH^1",
        "RBH\u{7}1",
        "RBHé1",
        "RBH\n1",
    ] {
        let mut i = base();
        i.external_id = bad.into();
        only(&i, "external_id");
    }
    let mut i = base();
    i.external_id = "RBH 2026/06-01.a_b#7".into();
    ok(&i);
}

#[test]
fn member_id_at_most_80() {
    let mut i = base();
    i.patient.member_id = "M".repeat(80);
    ok(&i);
    i.patient.member_id = "M".repeat(81);
    only(&i, "patient.member_id");
}

#[test]
fn names_fit_nm1_elements() {
    let mut i = base();
    i.patient.first_name = "F".repeat(35);
    i.patient.last_name = "L".repeat(60);
    i.payer.name = "P".repeat(60);
    i.billing_provider.name = "B".repeat(60);
    ok(&i);

    let mut j = i.clone();
    j.patient.first_name.push('F');
    only(&j, "patient.first_name");
    let mut j = i.clone();
    j.patient.last_name.push('L');
    only(&j, "patient.last_name");
    let mut j = i.clone();
    j.payer.name.push('P');
    only(&j, "payer.name");
    let mut j = i;
    j.billing_provider.name.push('B');
    only(&j, "billing_provider.name");
}

#[test]
fn names_allow_accents_but_not_x12_delimiters() {
    let mut i = base();
    i.patient.last_name = "Núñez-O'Brien".into();
    ok(&i);
    for bad in [
        "Rivera*Smith",
        "Rivera~",
        "Ri:vera",
        "Ri^vera",
        "Ri\u{0}vera",
    ] {
        let mut i = base();
        i.patient.last_name = bad.into();
        only(&i, "patient.last_name");
    }
    let mut i = base();
    i.patient.member_id = "XEH*123".into();
    only(&i, "patient.member_id");
}

#[test]
fn npis_must_pass_the_check_digit() {
    let mut i = base();
    i.rendering_provider.npi = "1234567890".into();
    only(&i, "rendering_provider.npi");

    let mut i = base();
    i.billing_provider.npi = "124531959".into();
    only(&i, "billing_provider.npi");
}

#[test]
fn at_least_one_diagnosis() {
    let mut i = base();
    i.diagnoses.clear();
    let v = violations(&i);
    assert!(v.iter().any(|x| x.field == "diagnoses"));
    // Every pointer now points at nothing, which is reported on the lines too.
    assert!(
        v.iter()
            .all(|x| x.field == "diagnoses" || x.field.contains("diagnosis_pointers"))
    );
}

#[test]
fn at_most_twelve_diagnoses() {
    let codes: Vec<String> = (0..13).map(|n| format!("F{:02}", 10 + n)).collect();
    let mut i = base();
    i.diagnoses = codes[..12].to_vec();
    ok(&i);
    i.diagnoses = codes;
    only(&i, "diagnoses");
}

#[test]
fn diagnoses_must_be_icd10_shaped() {
    let mut i = base();
    i.diagnoses = vec!["F33.1".into(), "296.32".into()];
    only(&i, "diagnoses[1]");

    let mut i = base();
    i.diagnoses[0] = "".into();
    assert_eq!(only(&i, "diagnoses[0]"), "is required");
}

#[test]
fn duplicate_diagnoses_are_rejected_after_normalization() {
    let mut i = base();
    i.diagnoses = vec!["F33.1".into(), "f331".into()];
    assert_eq!(only(&i, "diagnoses[1]"), "repeats diagnoses[0]");
}

#[test]
fn at_least_one_service_line() {
    let mut i = base();
    i.service_lines.clear();
    only(&i, "service_lines");
}

#[test]
fn at_most_fifty_service_lines() {
    let mut i = base();
    let template = i.service_lines[0].clone();
    i.service_lines = vec![template; 50];
    let c = ok(&i);
    assert_eq!(c.service_lines.len(), 50);
    assert_eq!(c.service_lines[49].line_number, 50);
    assert_eq!(c.total_charge, Money::from_cents(50 * 18_000));
    i.service_lines.push(i.service_lines[0].clone());
    only(&i, "service_lines");
}

#[test]
fn service_date_is_required() {
    let mut i = base();
    line(&mut i, 1).service_date = None;
    assert_eq!(only(&i, "service_lines[1].service_date"), "is required");
}

#[test]
fn service_date_not_in_the_future() {
    let mut i = base();
    line(&mut i, 0).service_date = Some(today());
    ok(&i);
    line(&mut i, 0).service_date = Some(tomorrow());
    // A future service date also makes the default submission date (today) precede it.
    let v = violations(&i);
    assert!(
        v.iter()
            .any(|x| x.field == "service_lines[0].service_date"
                && x.description == "is in the future")
    );
}

#[test]
fn service_date_not_before_1900() {
    let mut i = base();
    i.patient.birth_date = Some(ymd(1880, 1, 1));
    line(&mut i, 0).service_date = Some(ymd(1899, 12, 31));
    let v = violations(&i);
    assert!(
        v.iter()
            .any(|x| x.field == "service_lines[0].service_date" && x.description.contains("1900"))
    );
}

#[test]
fn procedure_code_shape() {
    let mut i = base();
    line(&mut i, 0).procedure_code = "9083".into();
    only(&i, "service_lines[0].procedure_code");
    line(&mut i, 0).procedure_code = "".into();
    assert_eq!(only(&i, "service_lines[0].procedure_code"), "is required");
    line(&mut i, 0).procedure_code = "h0004".into();
    assert_eq!(ok(&i).service_lines[0].procedure_code, "H0004");
}

#[test]
fn at_most_four_modifiers() {
    let mut i = base();
    line(&mut i, 0).modifiers = ["95", "HJ", "U4", "GT"].map(String::from).to_vec();
    ok(&i);
    line(&mut i, 0).modifiers.push("59".into());
    only(&i, "service_lines[0].modifiers");
}

#[test]
fn modifiers_must_be_two_alphanumerics() {
    let mut i = base();
    line(&mut i, 1).modifiers = vec!["95".into(), "9".into()];
    only(&i, "service_lines[1].modifiers[1]");
    line(&mut i, 1).modifiers = vec!["".into()];
    only(&i, "service_lines[1].modifiers[0]");
}

#[test]
fn repeated_modifiers_are_rejected() {
    let mut i = base();
    line(&mut i, 0).modifiers = vec!["95".into(), "HJ".into(), "hj".into()];
    assert_eq!(
        only(&i, "service_lines[0].modifiers[2]"),
        "repeats modifiers[1]"
    );
}

#[test]
fn units_between_1_and_999() {
    for (units, good) in [
        (0, false),
        (-1, false),
        (1, true),
        (999, true),
        (1000, false),
    ] {
        let mut i = base();
        line(&mut i, 0).units = units;
        if good {
            assert_eq!(ok(&i).service_lines[0].units, u32::try_from(units).unwrap());
        } else {
            only(&i, "service_lines[0].units");
        }
    }
}

#[test]
fn minutes_between_0_and_1440() {
    for (minutes, good) in [(-1, false), (0, true), (1440, true), (1441, false)] {
        let mut i = base();
        line(&mut i, 0).minutes = minutes;
        if good {
            ok(&i);
        } else {
            only(&i, "service_lines[0].minutes");
        }
    }
}

#[test]
fn charge_not_negative() {
    let mut i = base();
    line(&mut i, 1).charge_cents = 0;
    assert_eq!(ok(&i).total_charge, Money::from_cents(18_000));
    line(&mut i, 1).charge_cents = -1;
    only(&i, "service_lines[1].charge_cents");
}

#[test]
fn total_charge_must_not_overflow() {
    let mut i = base();
    line(&mut i, 0).charge_cents = i64::MAX;
    line(&mut i, 1).charge_cents = 1;
    only(&i, "service_lines[1].charge_cents");
}

#[test]
fn place_of_service_shape() {
    for bad in ["00", "2", "1A", "100"] {
        let mut i = base();
        line(&mut i, 0).place_of_service = bad.into();
        only(&i, "service_lines[0].place_of_service");
    }
    let mut i = base();
    line(&mut i, 0).place_of_service = "".into();
    assert_eq!(only(&i, "service_lines[0].place_of_service"), "is required");
    line(&mut i, 0).place_of_service = "02".into();
    ok(&i);
}

#[test]
fn one_to_four_diagnosis_pointers() {
    let mut i = base();
    line(&mut i, 0).diagnosis_pointers.clear();
    only(&i, "service_lines[0].diagnosis_pointers");

    let mut i = base();
    i.diagnoses = ["F33.1", "F41.1", "F43.10", "Z63.0", "F90.0"]
        .map(String::from)
        .to_vec();
    line(&mut i, 0).diagnosis_pointers = vec![1, 2, 3, 4];
    ok(&i);
    line(&mut i, 0).diagnosis_pointers = vec![1, 2, 3, 4, 5];
    only(&i, "service_lines[0].diagnosis_pointers");
}

#[test]
fn diagnosis_pointers_point_at_a_diagnosis() {
    for bad in [0, -1, 3, 256] {
        let mut i = base();
        line(&mut i, 1).diagnosis_pointers = vec![1, bad];
        let d = only(&i, "service_lines[1].diagnosis_pointers[1]");
        assert!(d.contains("1 to 2"), "{d}");
    }
}

#[test]
fn diagnosis_pointers_stop_at_twelve() {
    // Thirteen diagnoses are already an error; a pointer to the thirteenth is one too.
    let mut i = base();
    i.diagnoses = (0..13).map(|n| format!("F{:02}", 10 + n)).collect();
    line(&mut i, 0).diagnosis_pointers = vec![13];
    let v = violations(&i);
    assert!(
        v.iter()
            .any(|x| x.field == "service_lines[0].diagnosis_pointers[0]")
    );
}

#[test]
fn repeated_diagnosis_pointers_are_rejected() {
    let mut i = base();
    line(&mut i, 0).diagnosis_pointers = vec![2, 1, 2];
    assert_eq!(
        only(&i, "service_lines[0].diagnosis_pointers[2]"),
        "repeats diagnosis_pointers[0]"
    );
}

#[test]
fn explicit_line_numbers_are_kept() {
    let mut i = base();
    line(&mut i, 0).line_number = 7;
    line(&mut i, 1).line_number = 3;
    let c = ok(&i);
    assert_eq!(c.service_lines[0].line_number, 7);
    assert_eq!(c.service_lines[1].line_number, 3);
}

#[test]
fn line_numbers_must_be_positive() {
    let mut i = base();
    line(&mut i, 1).line_number = -2;
    only(&i, "service_lines[1].line_number");
    line(&mut i, 1).line_number = i64::from(u32::MAX) + 1;
    only(&i, "service_lines[1].line_number");
}

#[test]
fn line_numbers_must_be_unique() {
    let mut i = base();
    line(&mut i, 0).line_number = 4;
    line(&mut i, 1).line_number = 4;
    let d = only(&i, "service_lines[1].line_number");
    assert!(d.contains("service_lines[0]"), "{d}");
}

#[test]
fn assigned_line_numbers_must_not_collide_with_explicit_ones() {
    let mut i = base();
    line(&mut i, 0).line_number = 2;
    line(&mut i, 1).line_number = 0;
    let d = only(&i, "service_lines[1].line_number");
    assert!(d.contains("assigned from its position"), "{d}");
}

#[test]
fn birth_date_not_in_the_future() {
    let mut i = base();
    i.patient.birth_date = Some(tomorrow());
    let v = violations(&i);
    assert!(
        v.iter()
            .any(|x| x.field == "patient.birth_date" && x.description == "is in the future")
    );
    assert!(v.iter().all(|x| x.field == "patient.birth_date"));
}

#[test]
fn birth_date_not_after_any_service_date() {
    let mut i = base();
    line(&mut i, 1).service_date = Some(days_ago(30));
    i.patient.birth_date = Some(days_ago(20));
    let d = only(&i, "patient.birth_date");
    assert!(d.contains("service_lines[1]"), "{d}");

    // Born on the day of service (a newborn's first visit) is fine.
    i.patient.birth_date = Some(days_ago(30));
    ok(&i);
}

#[test]
fn birth_date_not_before_1900() {
    let mut i = base();
    i.patient.birth_date = Some(ymd(1899, 12, 31));
    only(&i, "patient.birth_date");
}

#[test]
fn submitted_claim_without_submission_date_gets_today() {
    let mut i = base();
    i.status = Some(ClaimStatus::Submitted);
    assert_eq!(ok(&i).submission_date, Some(today()));
}

#[test]
fn given_submission_date_is_kept() {
    let mut i = base();
    i.submission_date = Some(days_ago(3));
    assert_eq!(ok(&i).submission_date, Some(days_ago(3)));
    // Submitted on the day of service is fine.
    i.submission_date = Some(days_ago(7));
    ok(&i);
}

#[test]
fn submission_date_not_in_the_future() {
    let mut i = base();
    i.submission_date = Some(tomorrow());
    assert_eq!(only(&i, "submission_date"), "is in the future");
}

#[test]
fn submission_date_not_before_earliest_service() {
    let mut i = base();
    line(&mut i, 1).service_date = Some(days_ago(10));
    i.submission_date = Some(days_ago(11));
    assert_eq!(
        only(&i, "submission_date"),
        "is before the earliest date of service"
    );
}

#[test]
fn draft_has_no_submission_date() {
    let mut i = base();
    i.status = Some(ClaimStatus::Draft);
    let c = ok(&i);
    assert_eq!(c.status, ClaimStatus::Draft);
    assert_eq!(c.submission_date, None);

    i.submission_date = Some(days_ago(1));
    only(&i, "submission_date");
}

#[test]
fn only_draft_or_submitted_at_intake() {
    for s in ClaimStatus::ALL {
        let mut i = base();
        i.status = Some(s);
        match s {
            ClaimStatus::Draft | ClaimStatus::Submitted => assert_eq!(ok(&i).status, s),
            _ => {
                let d = only(&i, "status");
                assert!(d.contains(s.as_str()), "{d}");
            }
        }
    }
}

#[test]
fn frequency_defaults_to_original() {
    let mut i = base();
    i.frequency = None;
    assert_eq!(ok(&i).frequency, Frequency::Original);
    i.original_claim_id = Some("   ".into());
    assert_eq!(ok(&i).original_claim_id, None);
}

#[test]
fn replacement_and_void_need_the_original_claim() {
    for f in [Frequency::Replacement, Frequency::Void] {
        let mut i = base();
        i.frequency = Some(f);
        only(&i, "original_claim_id");
        i.original_claim_id = Some(String::new());
        only(&i, "original_claim_id");
        i.original_claim_id = Some("0190a3f2-7c1e-7b6a-9d2e-3f4a5b6c7d8e".into());
        let c = ok(&i);
        assert_eq!(c.frequency, f);
        assert_eq!(
            c.original_claim_id.as_deref(),
            Some("0190a3f2-7c1e-7b6a-9d2e-3f4a5b6c7d8e")
        );
    }
}

#[test]
fn original_must_not_reference_a_claim() {
    let mut i = base();
    i.frequency = Some(Frequency::Original);
    i.original_claim_id = Some("0190a3f2-7c1e-7b6a-9d2e-3f4a5b6c7d8e".into());
    only(&i, "original_claim_id");
}

#[test]
fn prior_authorization_at_most_50() {
    let mut i = base();
    i.prior_authorization_number = "A".repeat(50);
    assert_eq!(
        ok(&i).prior_authorization_number.as_deref(),
        Some("A".repeat(50).as_str())
    );
    i.prior_authorization_number = "A".repeat(51);
    only(&i, "prior_authorization_number");
    i.prior_authorization_number = "AUTH*1".into();
    only(&i, "prior_authorization_number");
}

/// A claim with something wrong in nearly every field, PHI included in the broken values.
fn broken_claim() -> ClaimInput {
    ClaimInput {
        clinic_id: "".into(),
        external_id: "Zebulon*Quixote-record".into(),
        patient: PatientInput {
            id: "".into(),
            first_name: "Zebulonzebulonzebulonzebulonzebulon!".into(),
            last_name: "Quixote*Marchbanks".into(),
            birth_date: Some(ymd(2031, 7, 19)),
            member_id: "MBR*77441100".into(),
        },
        payer: PayerInput {
            id: "bad payer".into(),
            name: "".into(),
        },
        rendering_provider: ProviderInput {
            npi: "1234567890".into(),
            name: "".into(),
            credential: None,
        },
        billing_provider: ProviderInput {
            npi: "".into(),
            name: "".into(),
            credential: None,
        },
        diagnoses: vec!["F33.1".into(), "f331".into(), "Q9Z.ZZZZZ9".into()],
        service_lines: vec![ServiceLineInput {
            line_number: -1,
            service_date: Some(ymd(2031, 7, 20)),
            procedure_code: "9083".into(),
            modifiers: vec!["X".into(); 5],
            units: 0,
            minutes: 2000,
            charge_cents: -5,
            place_of_service: "00".into(),
            diagnosis_pointers: vec![0, 9, 9, 1, 2],
        }],
        prior_authorization_number: "P".repeat(60),
        frequency: Some(Frequency::Void),
        original_claim_id: None,
        submission_date: Some(ymd(2031, 7, 18)),
        status: Some(ClaimStatus::Paid),
    }
}

#[test]
fn collects_every_violation() {
    let v = violations(&broken_claim());
    let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
    for want in [
        "clinic_id",
        "external_id",
        "patient.id",
        "patient.first_name",
        "patient.last_name",
        "patient.birth_date",
        "patient.member_id",
        "payer.id",
        "payer.name",
        "rendering_provider.npi",
        "rendering_provider.credential",
        "billing_provider.npi",
        "billing_provider.name",
        "diagnoses[1]",
        "diagnoses[2]",
        "service_lines[0].line_number",
        "service_lines[0].service_date",
        "service_lines[0].procedure_code",
        "service_lines[0].modifiers",
        "service_lines[0].modifiers[0]",
        "service_lines[0].modifiers[4]",
        "service_lines[0].units",
        "service_lines[0].minutes",
        "service_lines[0].charge_cents",
        "service_lines[0].place_of_service",
        "service_lines[0].diagnosis_pointers",
        "service_lines[0].diagnosis_pointers[0]",
        "service_lines[0].diagnosis_pointers[1]",
        "service_lines[0].diagnosis_pointers[2]",
        "prior_authorization_number",
        "original_claim_id",
        "submission_date",
        "status",
    ] {
        assert!(fields.contains(&want), "missing {want} in {fields:#?}");
    }
    for x in &v {
        assert!(!x.description.is_empty(), "{x:?}");
        assert!(!x.field.is_empty(), "{x:?}");
    }
}

#[test]
fn never_echoes_phi_in_descriptions() {
    let input = broken_claim();
    let v = violations(&input);
    let birth = input.patient.birth_date.unwrap();
    let mut phi: Vec<String> = vec![
        "zebulon".into(),
        "quixote".into(),
        "marchbanks".into(),
        "77441100".into(),
        "q9z".into(),
        "zzzzz".into(),
        "f33".into(),
        "f331".into(),
        "2031".into(),
        birth.to_string(),
        birth.format("%m/%d/%Y").to_string(),
        birth.format("%Y%m%d").to_string(),
    ];
    // Dates of service are PHI as well.
    phi.push(ymd(2031, 7, 20).format("%Y%m%d").to_string());
    for x in &v {
        let d = x.description.to_lowercase();
        for p in &phi {
            assert!(
                !d.contains(p.as_str()),
                "{} description {:?} echoes {p:?}",
                x.field,
                x.description
            );
        }
    }
    // The same holds for a claim whose only problems are PHI fields.
    let mut i = base();
    i.patient.first_name = "Zebulon".repeat(10);
    i.patient.member_id = "MBR^77441100".into();
    i.diagnoses = vec!["Q9Z.ZZZZZ".into(), "Q9Z.ZZZZZ".into()];
    for x in violations(&i) {
        let d = x.description.to_lowercase();
        assert!(!d.contains("zebulon") && !d.contains("77441100") && !d.contains("q9z"));
    }
}

#[test]
fn service_date_span() {
    let mut i = base();
    line(&mut i, 0).service_date = Some(days_ago(2));
    line(&mut i, 1).service_date = Some(days_ago(9));
    let c = ok(&i);
    assert_eq!(c.first_service_date(), days_ago(9));
    assert_eq!(c.last_service_date(), days_ago(2));

    let mut empty = c;
    empty.service_lines.clear();
    assert_eq!(empty.first_service_date(), NaiveDate::MIN);
    assert_eq!(empty.last_service_date(), NaiveDate::MIN);
}

#[test]
fn credential_names_round_trip() {
    for c in Credential::ALL {
        assert_eq!(Credential::parse(c.as_str()), Some(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert_eq!(Credential::NursePractitioner.as_str(), "nurse_practitioner");
    assert_eq!(
        Credential::PhysicianAssistant.as_str(),
        "physician_assistant"
    );
    assert_eq!(Credential::Lcsw.as_str(), "lcsw");
    assert_eq!(Credential::parse("LCSW"), None);
}

#[test]
fn frequency_codes_round_trip() {
    assert_eq!(Frequency::Original.code(), '1');
    assert_eq!(Frequency::Replacement.code(), '7');
    assert_eq!(Frequency::Void.code(), '8');
    for f in [Frequency::Original, Frequency::Replacement, Frequency::Void] {
        assert_eq!(Frequency::from_code(f.code()), Some(f));
    }
    for c in ['0', '2', '6', '9', 'A'] {
        assert_eq!(Frequency::from_code(c), None);
    }
}

#[test]
fn field_violation_display() {
    let v = FieldViolation::new("patient.id", "is required");
    assert_eq!(v.to_string(), "patient.id: is required");
}
