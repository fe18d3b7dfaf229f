//! Writers read back identically: generate claims → write → read → equal.
//!
//! - 837P: generated claims (shaped as the claims service maps its validated claims: NPIs with
//!   their check digit, lines numbered from 1, pointers into the diagnoses) go through
//!   [`write_837p`]; reading the file gives exactly [`Professional837::from_submission`] of the
//!   submission, with no problem at all (envelope counts and control numbers included).
//! - 276: any request the writer accepts reads back as the same [`StatusRequest276`], whatever
//!   HL grouping the writer chose.
//! - Text that X12 cannot carry (delimiters, control characters, non-ASCII) is refused, never
//!   written: for arbitrary names the writer either refuses or the name reads back unchanged.
// Helpers outside #[test] fns may unwrap too: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use arflow_domain::Money;
use arflow_domain::codes::npi_check_digit;
use arflow_x12::common::{Address, Procedure};
use arflow_x12::inquiry::{ClaimInquiry, InquiryLine, Organization, Person};
use arflow_x12::professional::{
    BillingProviderDetails, ClaimInput837, ClaimSubmission, LineInput837, Party, PatientInput837,
    ProviderInput837, Submitter, SubscriberDetails,
};
use arflow_x12::value::Decimal;
use arflow_x12::{
    Envelope, Error, Professional837, StatusRequest276, Submission, Transaction, read, write_276,
    write_837p,
};
use chrono::{Days, NaiveDate, NaiveTime};
use proptest::prelude::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 30).unwrap()
}

fn envelope(ctrl: u32) -> Envelope {
    Envelope {
        sender_qualifier: "ZZ".into(),
        sender_id: "ARFLOW".into(),
        receiver_qualifier: "ZZ".into(),
        receiver_id: "CLEARINGHOUSE".into(),
        application_sender: "ARFLOW".into(),
        application_receiver: "CH".into(),
        interchange_control_number: ctrl,
        group_control_number: ctrl,
        transaction_control_number: ctrl % 10_000,
        date: today(),
        time: NaiveTime::from_hms_opt(8, 5, 0).unwrap(),
        production: ctrl.is_multiple_of(2),
        acknowledgment_requested: false,
    }
}

fn npi() -> impl Strategy<Value = String> {
    (100_000_000u32..999_999_999).prop_map(|base| {
        let base = base.to_string();
        let check = npi_check_digit(&base).unwrap();
        format!("{base}{check}")
    })
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z'.-]{0,8}( [A-Za-z][A-Za-z'.-]{0,8}){0,2}"
}

fn line() -> impl Strategy<Value = LineInput837> {
    (
        prop::sample::select(vec![
            "90837", "90834", "90791", "90785", "H0031", "H2019", "99214",
        ]),
        prop::sample::subsequence(vec!["95", "HJ", "GT", "U4", "HO"], 0..=3),
        1u32..=8,
        1i64..=500_000,
        prop::sample::select(vec!["11", "02", "10", "12", "53"]),
        prop::sample::subsequence(vec![1u8, 2, 3, 4], 1..=4),
        0u64..60,
    )
        .prop_map(
            |(code, mods, units, charge, pos, ptrs, days)| LineInput837 {
                line_number: 0,
                service_date: today().checked_sub_days(Days::new(days + 1)).unwrap(),
                procedure_code: code.into(),
                modifiers: mods.into_iter().map(String::from).collect(),
                units,
                charge_cents: charge,
                place_of_service: pos.into(),
                diagnosis_pointers: ptrs,
            },
        )
}

prop_compose! {
    fn claim()(
        id in "[A-Z0-9][A-Z0-9-]{0,20}",
        first in name(),
        last in name(),
        member in "[A-Z0-9]{2,15}",
        payer_id in "[0-9]{5}",
        payer_name in name(),
        rendering_npi in npi(),
        rendering_name in name(),
        billing_name in name(),
        diagnoses in prop::sample::subsequence(vec!["F331", "F411", "F4310", "F900", "Z630"], 4..=5),
        lines in prop::collection::vec(line(), 1..6),
        frequency in prop::sample::select(vec!["1", "7", "8"]),
        original in "[A-Z0-9]{5,14}",
        prior_auth in prop::option::of("[A-Z0-9]{3,12}"),
        born_days in 7_000u64..25_000,
    ) -> ClaimInput837 {
        let service_lines: Vec<LineInput837> = lines
            .into_iter()
            .zip(1u32..)
            .map(|(line, n)| LineInput837 { line_number: n, ..line })
            .collect();
        ClaimInput837 {
            patient_control_number: id,
            patient: PatientInput837 {
                first_name: first,
                last_name: last,
                birth_date: today().checked_sub_days(Days::new(born_days)).unwrap(),
                member_id: member,
            },
            payer: Party { id: payer_id, name: payer_name },
            rendering_provider: ProviderInput837 { npi: rendering_npi, name: rendering_name },
            billing_provider: ProviderInput837 { npi: "1245319599".into(), name: billing_name },
            diagnoses: diagnoses.into_iter().map(String::from).collect(),
            total_charge_cents: service_lines.iter().map(|l| l.charge_cents).sum(),
            service_lines,
            frequency_code: frequency.into(),
            original_claim_id: (frequency != "1").then_some(original),
            prior_authorization: prior_auth,
        }
    }
}

fn address() -> impl Strategy<Value = Address> {
    (
        "[1-9][0-9]{0,4} [A-Z]{2,10} (ST|AVE|RD)",
        prop::option::of("(SUITE|APT) [0-9]{1,3}"),
        "[A-Z]{3,12}",
        "[A-Z]{2}",
        "[0-9]{5}([0-9]{4})?",
    )
        .prop_map(|(line1, line2, city, state, postal_code)| Address {
            line1,
            line2,
            city,
            state,
            postal_code,
        })
}

prop_compose! {
    fn submission()(
        claims in prop::collection::vec((claim(), address(), prop::sample::select(vec!["F", "M", "U"]), prop::option::of("[A-Z0-9]{1,10}"), prop::sample::select(vec!["CI", "MC", "MB", "BL", "HM"])), 1..5),
        ctrl in 1u32..999_999_999,
        billing_address in address(),
        taxonomy in prop::option::of(Just("101YM0800X".to_string())),
        contact in prop::option::of(name()),
        phone in prop::option::of("[0-9]{10}"),
    ) -> Submission {
        Submission {
            envelope: envelope(ctrl),
            reference: format!("B{ctrl}"),
            submitter: Submitter {
                name: "RIVERSIDE BH".into(),
                id: "SUB123".into(),
                contact_name: contact,
                phone,
            },
            receiver: Party { name: "CLEARINGHOUSE".into(), id: "CH01".into() },
            billing_provider: BillingProviderDetails {
                address: billing_address,
                tax_id: "123456789".into(),
                taxonomy,
            },
            claims: claims
                .into_iter()
                .map(|(claim, address, gender, group, filing)| ClaimSubmission {
                    claim,
                    subscriber: SubscriberDetails {
                        gender: gender.into(),
                        address,
                        group_number: group,
                        filing_indicator: filing.into(),
                    },
                })
                .collect(),
        }
    }
}

fn read_back_837(text: &str) -> (Professional837, Vec<arflow_x12::Problem>) {
    let doc = read(text.as_bytes());
    let mut sets = doc.transactions();
    let got = match sets.next().map(|t| &t.content) {
        Some(Transaction::Professional837(p)) => (**p).clone(),
        other => panic!("not an 837P: {other:?}"),
    };
    assert!(sets.next().is_none());
    (got, doc.problems.clone())
}

fn org() -> impl Strategy<Value = Organization> {
    (name(), "[A-Z0-9]{2,12}").prop_map(|(name, id)| Organization { name, id })
}

fn person(member: bool) -> impl Strategy<Value = Person> {
    (
        name(),
        prop::option::of(name()),
        "[A-Z0-9]{2,12}",
        prop::option::of(0u64..30_000),
        prop::option::of(prop::sample::select(vec!["F", "M", "U"])),
    )
        .prop_map(move |(last_name, first_name, id, born, gender)| Person {
            last_name,
            first_name,
            member_id: member.then_some(id),
            birth_date: born.and_then(|d| today().checked_sub_days(Days::new(d))),
            gender: gender.map(String::from),
        })
}

fn period() -> impl Strategy<Value = (Option<NaiveDate>, Option<NaiveDate>)> {
    prop::option::of((0u64..400, prop::option::of(0u64..30))).prop_map(|p| match p {
        None => (None, None),
        Some((from, len)) => {
            let a = today().checked_sub_days(Days::new(from + 30));
            (a, len.and_then(|l| a?.checked_add_days(Days::new(l))))
        }
    })
}

fn inquiry_line() -> impl Strategy<Value = InquiryLine> {
    (
        prop::sample::select(vec!["90837", "90834", "H0031"]),
        prop::sample::subsequence(vec!["95", "HJ", "GT"], 0..=2),
        prop::option::of(0i64..1_000_000),
        prop::option::of(1i64..20),
        prop::option::of("[0-9]{1,3}"),
        period(),
    )
        .prop_map(|(code, mods, charge, units, id, (from, to))| InquiryLine {
            procedure: Procedure {
                qualifier: "HC".into(),
                code: code.into(),
                modifiers: mods.into_iter().map(Into::into).collect(),
                description: None,
            },
            charge: charge.map(Money::from_cents),
            units: units.map(Decimal::from_int),
            line_item_control_number: id,
            service_from: from,
            service_to: to,
        })
}

prop_compose! {
    fn request()(
        payers in prop::collection::vec(org(), 1..3),
        providers in prop::collection::vec(org(), 1..3),
        subscribers in prop::collection::vec(person(true), 1..3),
        dependents in prop::collection::vec(person(false), 1..3),
        picks in prop::collection::vec((0usize..3, 0usize..3, 0usize..3, prop::option::of(0usize..3)), 1..8),
        claims in prop::collection::vec((
            "[A-Z0-9-]{1,20}",
            prop::option::of("[A-Z0-9-]{1,20}"),
            prop::option::of("[A-Z0-9]{5,15}"),
            prop::option::of("[0-9]{3}"),
            prop::option::of(-100_000i64..10_000_000),
            period(),
            prop::collection::vec(inquiry_line(), 0..3),
        ), 8),
    ) -> StatusRequest276 {
        fn pick<T: Clone>(v: &[T], i: usize) -> T {
            v[i % v.len()].clone()
        }
        let inquiries = picks
            .into_iter()
            .zip(claims)
            .map(|((p, v, s, d), (trace, pcn, icn, blt, charge, (from, to), lines))| ClaimInquiry {
                payer: pick(&payers, p),
                receiver: Organization { name: "ARFLOW".into(), id: "ARFLOW01".into() },
                provider: pick(&providers, v),
                subscriber: pick(&subscribers, s),
                dependent: d.map(|d| pick(&dependents, d)),
                trace_number: trace,
                patient_control_number: pcn,
                payer_claim_control_number: icn,
                bill_type: blt,
                charge: charge.map(Money::from_cents),
                service_from: from,
                service_to: to,
                lines,
            })
            .collect();
        StatusRequest276 { reference: "Q1".into(), inquiries }
    }
}

fn read_back_276(text: &str) -> (StatusRequest276, Vec<arflow_x12::Problem>) {
    let doc = read(text.as_bytes());
    let got = match doc.transactions().next().map(|t| &t.content) {
        Some(Transaction::StatusRequest276(r)) => (**r).clone(),
        other => panic!("not a 276: {other:?}"),
    };
    (got, doc.problems.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn submissions_read_back_as_written(s in submission()) {
        let text = write_837p(&s).expect("a valid submission is writable");
        let (got, problems) = read_back_837(&text);
        prop_assert!(problems.is_empty(), "{problems:#?}");
        prop_assert_eq!(got, Professional837::from_submission(&s).unwrap());
        // Our line ids come back in the 835 as REF*6R; they must be the domain line numbers.
        let ids: Vec<String> = s.claims[0].claim.service_lines.iter().map(|l| l.line_number.to_string()).collect();
        let (back, _) = read_back_837(&text);
        let back_ids: Vec<String> = back.claims[0].lines.iter().filter_map(|l| l.line_item_control_number.clone()).collect();
        prop_assert_eq!(ids, back_ids);
    }

    #[test]
    fn requests_read_back_as_written(r in request()) {
        let text = write_276(&envelope(7), &r).expect("a generated request is writable");
        let (got, problems) = read_back_276(&text);
        prop_assert!(problems.is_empty(), "{problems:#?}");
        prop_assert_eq!(got, r);
    }

    #[test]
    fn unsendable_text_is_refused_never_written(s in submission(), bad in ".{1,12}") {
        let mut s = s;
        s.submitter.name = bad.clone();
        match write_837p(&s) {
            Ok(text) => {
                let (got, problems) = read_back_837(&text);
                prop_assert!(problems.is_empty(), "{problems:#?}");
                prop_assert_eq!(got.submitter.name, bad);
            }
            Err(Error::Unsendable { field, found }) => {
                prop_assert_eq!(field, "submitter.name");
                prop_assert!(bad.contains(found));
            }
            Err(Error::Missing { .. }) => prop_assert!(bad.trim().is_empty()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn unsendable_names_in_276_are_refused(r in request(), bad in ".{1,12}") {
        let mut r = r;
        let first = r.inquiries[0].subscriber.clone();
        for q in &mut r.inquiries {
            if q.subscriber == first {
                q.subscriber.last_name = bad.clone();
            }
        }
        match write_276(&envelope(9), &r) {
            Ok(text) => {
                let (got, problems) = read_back_276(&text);
                prop_assert!(problems.is_empty(), "{problems:#?}");
                prop_assert_eq!(&got.inquiries[0].subscriber.last_name, &bad);
            }
            Err(Error::Unsendable { found, .. }) => prop_assert!(bad.contains(found)),
            Err(Error::Missing { .. }) => prop_assert!(bad.trim().is_empty()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
