//! Realistic inputs for tests in this and other crates.
//!
//! Compiled into the library (it is small and pure) so that service and end-to-end tests build
//! their claims from one place instead of each inventing a slightly wrong one. All data is made
//! up; the NPIs are valid check-digit examples, not real providers.

use chrono::{Days, NaiveDate};

use crate::claim::{
    ClaimInput, Credential, PatientInput, PayerInput, ProviderInput, ServiceLineInput,
};

/// Rendering clinician's NPI (the CMS check-digit worked example).
pub const RENDERING_NPI: &str = "1234567893";
/// Billing group's NPI (valid check digit).
pub const BILLING_NPI: &str = "1245319599";

const BIRTH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1988, 3, 14) {
    Some(d) => d,
    None => panic!("fixture birth date is a real date"),
};

/// A clean outpatient psychotherapy claim: a 60-minute individual session (90837, 55 min,
/// docs/reference/billing-rules.md C1: 53+ minutes) with interactive complexity (+90785, allowed
/// with 90837 per docs/reference/billing-rules.md C2), in the office (POS 11), a week before
/// `today`, submitted (status and submission date left for validation to default). Two diagnoses:
/// recurrent moderate major depression and generalized anxiety.
pub fn valid_claim_input(today: NaiveDate) -> ClaimInput {
    let service_date = today.checked_sub_days(Days::new(7)).unwrap_or(today);
    ClaimInput {
        clinic_id: "clinic-riverside".into(),
        external_id: "RBH-000123".into(),
        patient: PatientInput {
            id: "PT-000123".into(),
            first_name: "Jordan".into(),
            last_name: "Rivera".into(),
            birth_date: Some(BIRTH_DATE.min(service_date)),
            member_id: "XEH123456789".into(),
        },
        payer: PayerInput {
            id: "87726".into(),
            name: "UnitedHealthcare".into(),
        },
        rendering_provider: ProviderInput {
            npi: RENDERING_NPI.into(),
            name: "Avery Chen".into(),
            credential: Some(Credential::Lcsw),
        },
        billing_provider: ProviderInput {
            npi: BILLING_NPI.into(),
            name: "Riverside Behavioral Health PLLC".into(),
            credential: None,
        },
        diagnoses: vec!["F33.1".into(), "F41.1".into()],
        service_lines: vec![
            ServiceLineInput {
                line_number: 0,
                service_date: Some(service_date),
                procedure_code: "90837".into(),
                modifiers: vec![],
                units: 1,
                minutes: 55,
                charge_cents: 18_000,
                place_of_service: "11".into(),
                diagnosis_pointers: vec![1, 2],
            },
            ServiceLineInput {
                line_number: 0,
                service_date: Some(service_date),
                procedure_code: "90785".into(),
                modifiers: vec![],
                units: 1,
                minutes: 0,
                charge_cents: 2_500,
                place_of_service: "11".into(),
                diagnosis_pointers: vec![1],
            },
        ],
        prior_authorization_number: String::new(),
        frequency: None,
        original_claim_id: None,
        submission_date: None,
        status: None,
    }
}
