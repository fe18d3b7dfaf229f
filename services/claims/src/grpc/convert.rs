//! Proto <-> domain conversion of claims and what the service says about them (scrub
//! findings, denials, history entries). Dates, timestamps, statuses and denial categories go
//! through `arflow_api::wire`, the one home of those conversions.
use arflow_api::claims::v1 as pb;
use arflow_api::common::v1 as common;
use arflow_api::wire::{
    claim_status_from_pb, claim_status_to_pb, date_to_pb, denial_category_to_pb, opt_date,
    timestamp,
};
use arflow_domain::rules::{ScrubFinding, Severity};
use arflow_domain::{
    ClaimInput, Credential, FieldViolation, Frequency, PatientInput, PayerInput, ProviderInput,
    ServiceLineInput, ValidClaim, validate_claim,
};
use arflow_platform::auth::Principal;
use chrono::NaiveDate;

use arflow_x12::common::Address;
use arflow_x12::professional::{BillingProviderDetails, SubscriberDetails};

use crate::posting::DenialRow;
use crate::store::{HistoryEntry, StoredClaim};
use crate::x12_map::Export837;

fn credential_from_pb(c: i32) -> Option<Credential> {
    use pb::ProviderCredential as P;
    Some(match P::try_from(c).ok()? {
        P::Unspecified => return None,
        P::Psychologist => Credential::Psychologist,
        P::Lcsw => Credential::Lcsw,
        P::Lpc => Credential::Lpc,
        P::Lmft => Credential::Lmft,
        P::Psychiatrist => Credential::Psychiatrist,
        P::NursePractitioner => Credential::NursePractitioner,
        P::Physician => Credential::Physician,
        P::PhysicianAssistant => Credential::PhysicianAssistant,
        P::Lmhc => Credential::Lmhc,
        P::Lcadc => Credential::Lcadc,
        P::Associate => Credential::Associate,
        P::Other => Credential::Other,
    })
}

fn credential_to_pb(c: Option<Credential>) -> pb::ProviderCredential {
    use pb::ProviderCredential as P;
    match c {
        None => P::Unspecified,
        Some(Credential::Psychologist) => P::Psychologist,
        Some(Credential::Lcsw) => P::Lcsw,
        Some(Credential::Lpc) => P::Lpc,
        Some(Credential::Lmft) => P::Lmft,
        Some(Credential::Psychiatrist) => P::Psychiatrist,
        Some(Credential::NursePractitioner) => P::NursePractitioner,
        Some(Credential::Physician) => P::Physician,
        Some(Credential::PhysicianAssistant) => P::PhysicianAssistant,
        Some(Credential::Lmhc) => P::Lmhc,
        Some(Credential::Lcadc) => P::Lcadc,
        Some(Credential::Associate) => P::Associate,
        Some(Credential::Other) => P::Other,
    }
}

fn frequency_from_pb(f: i32) -> Option<Frequency> {
    match pb::ClaimFrequency::try_from(f).ok()? {
        pb::ClaimFrequency::Unspecified => None,
        pb::ClaimFrequency::Original => Some(Frequency::Original),
        pb::ClaimFrequency::Replacement => Some(Frequency::Replacement),
        pb::ClaimFrequency::Void => Some(Frequency::Void),
    }
}

fn frequency_to_pb(f: Frequency) -> pb::ClaimFrequency {
    match f {
        Frequency::Original => pb::ClaimFrequency::Original,
        Frequency::Replacement => pb::ClaimFrequency::Replacement,
        Frequency::Void => pb::ClaimFrequency::Void,
    }
}

/// Turns a request's claim into a validated domain claim, or every violation found, with
/// field paths prefixed by `prefix` (`claim.`).
pub fn claim_from_pb(
    claim: Option<&pb::Claim>,
    principal: &Principal,
    today: NaiveDate,
) -> Result<ValidClaim, Vec<FieldViolation>> {
    let Some(c) = claim else {
        return Err(vec![FieldViolation {
            field: "claim".into(),
            description: "required".into(),
        }]);
    };
    let mut v = Vec::new();
    let patient = c.patient.clone().unwrap_or_default();
    let payer = c.payer.clone().unwrap_or_default();
    let rendering = c.rendering_provider.clone().unwrap_or_default();
    let billing = c.billing_provider.clone().unwrap_or_default();
    if c.status != 0 && claim_status_from_pb(c.status).is_none() {
        v.push(FieldViolation {
            field: "status".into(),
            description: "unknown status".into(),
        });
    }
    let input = ClaimInput {
        clinic_id: c.clinic_id.clone(),
        external_id: c.external_id.clone(),
        patient: PatientInput {
            id: patient.id,
            first_name: patient.first_name,
            last_name: patient.last_name,
            birth_date: opt_date(patient.birth_date.as_ref(), "patient.birth_date", &mut v),
            member_id: patient.member_id,
        },
        payer: PayerInput {
            id: payer.id,
            name: payer.name,
        },
        rendering_provider: ProviderInput {
            npi: rendering.npi,
            name: rendering.name,
            credential: credential_from_pb(rendering.credential),
        },
        billing_provider: ProviderInput {
            npi: billing.npi,
            name: billing.name,
            credential: credential_from_pb(billing.credential),
        },
        diagnoses: c.diagnoses.clone(),
        service_lines: c
            .service_lines
            .iter()
            .enumerate()
            .map(|(i, l)| ServiceLineInput {
                line_number: i64::from(l.line_number),
                service_date: opt_date(
                    l.service_date.as_ref(),
                    &format!("service_lines[{i}].service_date"),
                    &mut v,
                ),
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                units: i64::from(l.units),
                minutes: i64::from(l.minutes),
                charge_cents: l.charge_cents,
                place_of_service: l.place_of_service.clone(),
                diagnosis_pointers: l.diagnosis_pointers.iter().map(|p| i64::from(*p)).collect(),
            })
            .collect(),
        prior_authorization_number: c.prior_authorization_number.clone(),
        frequency: frequency_from_pb(c.frequency),
        original_claim_id: Some(c.original_claim_id.clone()).filter(|s| !s.is_empty()),
        submission_date: opt_date(c.submission_date.as_ref(), "submission_date", &mut v),
        status: claim_status_from_pb(c.status),
    };
    if !c.clinic_id.is_empty() && !principal.can_access_clinic(&c.clinic_id) {
        v.push(FieldViolation {
            field: "clinic_id".into(),
            description: "your API key does not cover this clinic".into(),
        });
    }
    let result = validate_claim(&input, today);
    match result {
        Ok(valid) if v.is_empty() => Ok(valid),
        Ok(_) => Err(prefix(v)),
        Err(mut more) => {
            // A malformed date was reported above; the domain then only sees "required".
            more.retain(|m| !v.iter().any(|x| x.field == m.field));
            v.extend(more);
            Err(prefix(v))
        }
    }
}

fn prefix(v: Vec<FieldViolation>) -> Vec<FieldViolation> {
    v.into_iter()
        .map(|f| FieldViolation {
            field: format!("claim.{}", f.field),
            ..f
        })
        .collect()
}

pub fn claim_to_pb(s: &StoredClaim) -> pb::Claim {
    let c = &s.claim;
    pb::Claim {
        id: s.id.clone(),
        tenant_id: s.tenant_id.clone(),
        clinic_id: c.clinic_id.clone(),
        external_id: c.external_id.clone(),
        patient: Some(pb::Patient {
            id: c.patient.id.clone(),
            first_name: c.patient.first_name.clone(),
            last_name: c.patient.last_name.clone(),
            birth_date: Some(date_to_pb(c.patient.birth_date)),
            member_id: c.patient.member_id.clone(),
        }),
        payer: Some(pb::Payer {
            id: c.payer.id.clone(),
            name: c.payer.name.clone(),
        }),
        rendering_provider: Some(pb::Provider {
            npi: c.rendering_provider.npi.clone(),
            name: c.rendering_provider.name.clone(),
            credential: credential_to_pb(c.rendering_provider.credential) as i32,
        }),
        billing_provider: Some(pb::Provider {
            npi: c.billing_provider.npi.clone(),
            name: c.billing_provider.name.clone(),
            credential: credential_to_pb(c.billing_provider.credential) as i32,
        }),
        diagnoses: c.diagnoses.clone(),
        service_lines: c
            .service_lines
            .iter()
            .map(|l| pb::ServiceLine {
                line_number: l.line_number as i32,
                service_date: Some(date_to_pb(l.service_date)),
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                units: l.units as i32,
                minutes: l.minutes as i32,
                charge_cents: l.charge.cents(),
                place_of_service: l.place_of_service.clone(),
                diagnosis_pointers: l.diagnosis_pointers.iter().map(|p| i32::from(*p)).collect(),
            })
            .collect(),
        prior_authorization_number: c.prior_authorization_number.clone().unwrap_or_default(),
        frequency: frequency_to_pb(c.frequency) as i32,
        submission_date: c.submission_date.map(date_to_pb),
        status: claim_status_to_pb(c.status) as i32,
        total_charge_cents: c.total_charge.cents(),
        balance_cents: s.balance.cents(),
        patient_balance_cents: s.patient_balance.cents(),
        create_time: Some(timestamp(s.created_at)),
        update_time: Some(timestamp(s.updated_at)),
        version: s.version,
        original_claim_id: c.original_claim_id.clone().unwrap_or_default(),
        warnings: s
            .warnings
            .iter()
            .map(|w| pb::ScrubFinding {
                rule_id: w.rule_id.clone(),
                severity: pb::ScrubSeverity::Warning as i32,
                field: format!("claim.{}", w.field),
                message: w.message.clone(),
            })
            .collect(),
        payer_claim_control_number: s.payer_claim_control_number.clone(),
        paid_cents: s.paid.cents(),
    }
}

pub fn finding_to_pb(f: &ScrubFinding) -> pb::ScrubFinding {
    pb::ScrubFinding {
        rule_id: f.rule_id.clone(),
        severity: match f.severity {
            Severity::Error => pb::ScrubSeverity::Error,
            Severity::Warning => pb::ScrubSeverity::Warning,
        } as i32,
        field: format!("claim.{}", f.field),
        message: f.message.clone(),
    }
}

/// Domain field violations as the API's (ImportClaims and ScrubClaim answer them in the body).
pub fn violations_to_pb(v: Vec<FieldViolation>) -> Vec<common::FieldViolation> {
    v.into_iter()
        .map(|f| common::FieldViolation {
            field: f.field,
            description: f.description,
        })
        .collect()
}

/// A claim status the API may leave unset (`None` is UNSPECIFIED).
pub fn opt_status_to_pb(s: Option<arflow_domain::ClaimStatus>) -> i32 {
    s.map(claim_status_to_pb)
        .unwrap_or(pb::ClaimStatus::Unspecified) as i32
}

pub fn history_entry_to_pb(e: HistoryEntry) -> pb::ClaimHistoryEntry {
    pb::ClaimHistoryEntry {
        version: e.version,
        from_status: opt_status_to_pb(e.from_status),
        to_status: claim_status_to_pb(e.to_status) as i32,
        reason: e.reason,
        actor: e.actor,
        change_time: Some(timestamp(e.changed_at)),
    }
}

pub fn denial_to_pb(d: &DenialRow) -> pb::Denial {
    pb::Denial {
        id: d.id.clone(),
        claim_id: d.claim_id.clone(),
        clinic_id: d.clinic_id.clone(),
        payer_id: d.payer_id.clone(),
        procedure_code: d.procedure_code.clone(),
        group_code: d.group_code.clone(),
        reason_code: d.reason_code.clone(),
        remark_codes: d.remark_codes.clone(),
        category: denial_category_to_pb(d.category) as i32,
        appealable: d.appealable,
        resolution: d.resolution.clone(),
        owner: d.owner.clone(),
        evidence: d.evidence.clone(),
        amount_cents: d.amount.cents(),
        denial_date: Some(date_to_pb(d.denial_date)),
        remittance_id: d.remittance_id.clone(),
    }
}

/// The ExportClaim837 request checked at the edge: every part the 837P needs that the claim
/// record does not hold, or one violation per missing or malformed field.
impl TryFrom<&pb::ExportClaim837Request> for Export837 {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &pb::ExportClaim837Request) -> Result<Export837, Vec<FieldViolation>> {
        let mut v = Vec::new();
        let mut violation = |field: &str, description: &str| {
            v.push(FieldViolation {
                field: field.to_string(),
                description: description.to_string(),
            })
        };
        for (field, value) in [
            ("submitter_id", &req.submitter_id),
            ("submitter_name", &req.submitter_name),
            ("receiver_id", &req.receiver_id),
            ("receiver_name", &req.receiver_name),
            ("claim_filing_indicator", &req.claim_filing_indicator),
        ] {
            if value.trim().is_empty() {
                violation(field, "required for the 837P");
            }
        }
        for (name, address) in [
            ("billing_provider_address", &req.billing_provider_address),
            ("subscriber_address", &req.subscriber_address),
        ] {
            let a = address.clone().unwrap_or_default();
            for (part, value) in [
                ("line1", &a.line1),
                ("city", &a.city),
                ("state", &a.state),
                ("postal_code", &a.postal_code),
            ] {
                if value.trim().is_empty() {
                    violation(&format!("{name}.{part}"), "required for the 837P");
                }
            }
        }
        let tax_id = &req.billing_provider_tax_id;
        if !(tax_id.len() == 9 && tax_id.chars().all(|c| c.is_ascii_digit())) {
            violation(
                "billing_provider_tax_id",
                "the billing provider's 9-digit EIN (REF*EI)",
            );
        }
        if !matches!(req.subscriber_gender.as_str(), "F" | "M" | "U") {
            violation("subscriber_gender", "F, M or U");
        }
        if !v.is_empty() {
            return Err(v);
        }
        let non_empty = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        Ok(Export837 {
            submitter_id: req.submitter_id.clone(),
            submitter_name: req.submitter_name.clone(),
            receiver_id: req.receiver_id.clone(),
            receiver_name: req.receiver_name.clone(),
            billing_provider: BillingProviderDetails {
                address: address_from_pb(req.billing_provider_address.as_ref()),
                tax_id: tax_id.clone(),
                taxonomy: non_empty(&req.billing_provider_taxonomy),
            },
            subscriber: SubscriberDetails {
                gender: req.subscriber_gender.clone(),
                address: address_from_pb(req.subscriber_address.as_ref()),
                group_number: non_empty(&req.subscriber_group_number),
                filing_indicator: req.claim_filing_indicator.clone(),
            },
            production: req.production,
        })
    }
}

fn address_from_pb(a: Option<&pb::PostalAddress>) -> Address {
    let a = a.cloned().unwrap_or_default();
    Address {
        line1: a.line1,
        line2: Some(a.line2).filter(|l| !l.is_empty()),
        city: a.city,
        state: a.state,
        postal_code: a.postal_code,
    }
}
