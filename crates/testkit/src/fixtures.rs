//! Proto fixtures shared by every crate's tests: a realistic claim as a partner sends it and
//! an 837P export request. No real patient: the names and member id are made up.
use arflow_api::claims::v1 as pb;
use arflow_api::common::v1::Date;

/// `Date` for a proto field.
pub fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

/// A realistic outpatient psychotherapy claim: 90837 (55 min, telehealth at home) + 90785.
pub fn claim(clinic: &str, pcn: &str) -> pb::Claim {
    pb::Claim {
        clinic_id: clinic.into(),
        external_id: pcn.into(),
        patient: Some(pb::Patient {
            id: "pt-100".into(),
            first_name: "Jordan".into(),
            last_name: "Rivera".into(),
            birth_date: date(1988, 4, 12),
            member_id: "UHC123456789".into(),
        }),
        payer: Some(pb::Payer {
            id: "87726".into(),
            name: "UnitedHealthcare".into(),
        }),
        rendering_provider: Some(pb::Provider {
            npi: "1234567893".into(),
            name: "Dana Okafor".into(),
            credential: pb::ProviderCredential::Lcsw as i32,
        }),
        billing_provider: Some(pb::Provider {
            npi: "1245319599".into(),
            name: "Calm Harbor Counseling".into(),
            credential: 0,
        }),
        diagnoses: vec!["F41.1".into(), "F33.1".into()],
        service_lines: vec![
            pb::ServiceLine {
                service_date: date(2026, 5, 4),
                procedure_code: "90837".into(),
                modifiers: vec!["95".into()],
                units: 1,
                minutes: 55,
                charge_cents: 18_000,
                place_of_service: "10".into(),
                diagnosis_pointers: vec![1, 2],
                ..Default::default()
            },
            pb::ServiceLine {
                service_date: date(2026, 5, 4),
                procedure_code: "90785".into(),
                modifiers: vec!["95".into()],
                units: 1,
                minutes: 0,
                charge_cents: 2_500,
                place_of_service: "10".into(),
                diagnosis_pointers: vec![1],
                ..Default::default()
            },
        ],
        submission_date: date(2026, 5, 6),
        ..Default::default()
    }
}

/// An 837P export request with every field a clearinghouse needs (test addresses and ids).
pub fn export_request(claim_id: &str) -> pb::ExportClaim837Request {
    let address = Some(pb::PostalAddress {
        line1: "1 MAIN ST".into(),
        line2: String::new(),
        city: "SPRINGFIELD".into(),
        state: "IL".into(),
        postal_code: "62701".into(),
    });
    pb::ExportClaim837Request {
        claim_id: claim_id.into(),
        submitter_id: "ARF1".into(),
        submitter_name: "ARFLOW RCM".into(),
        receiver_id: "CLEARHOUSE".into(),
        receiver_name: "CLEARING HOUSE".into(),
        billing_provider_address: address.clone(),
        billing_provider_tax_id: "123456789".into(),
        billing_provider_taxonomy: String::new(),
        subscriber_gender: "U".into(),
        subscriber_address: address,
        subscriber_group_number: String::new(),
        claim_filing_indicator: "CI".into(),
        production: false,
    }
}

/// Element `n` of the first `segment` (e.g. `"ISA*"`) of an X12 file.
pub fn element(content: &[u8], segment: &str, n: usize) -> String {
    let text = String::from_utf8_lossy(content);
    text.split('~')
        .map(str::trim)
        .find(|s| s.starts_with(segment))
        .and_then(|s| s.split('*').nth(n))
        .unwrap_or_else(|| panic!("no {segment} element {n}"))
        .to_string()
}
