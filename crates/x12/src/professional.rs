//! 837P professional claim (005010X222A1): the model, its writer and its reader
//! (docs/reference/x12.md §5).
//!
//! [`Submission`] is the writer's input: plain claims ([`ClaimInput837`], mapped by the claims
//! service from its validated claims) plus what a claim record does not hold (submitter and
//! receiver, the billing provider's address and tax id, subscriber details). This is a format
//! library: it knows no billing policy, only what the implementation guide says. Money is
//! exact cents. [`Professional837::from_submission`] turns a submission into the 837P content
//! model, [`write_837p`] serializes that, and the reader decodes an 837P into the same model,
//! so `read(write_837p(s)) == Professional837::from_submission(s)`.
//!
//! What our 837P carries, and how:
//! - one 2000A billing provider HL per run of claims with the same billing provider; one 2000B
//!   subscriber HL per claim, the patient being the subscriber (SBR02 `18`);
//! - CLM05 `<place of service>:B:<frequency>` with the frequency code as given (1 original,
//!   7 replacement, 8 void); a replacement or void adds REF*F8 with the payer's original claim
//!   number, which the guide requires for them;
//! - HI: the principal diagnosis as `ABK`, the others as `ABF`;
//! - 2310B rendering provider NM1*82 when it differs from the billing provider;
//! - per line LX (1, 2, ...), SV1 `HC:<code>:<modifiers>` with charge, `UN` units, place of
//!   service only when it differs from the claim's, diagnosis pointers; DTP*472; REF*6R with the
//!   line number given (the line item control number the 835 echoes in its own REF*6R).
//!
//! Not carried: minutes (SV1 has no element for them), the clinic, our patient id, credentials.

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::Serialize;

use crate::common::{Address, Entity, Procedure, amount, quantity, require};
use crate::lex::{Segment, id};
use crate::problem::{Cx, ProblemKind};
use crate::status::{HlNode, resolve_parents};
use crate::text::Text;
use crate::value::{Decimal, format_amount, format_date8, opt};
use crate::write::{Envelope, Error, SetWriter, composite, optional, required};

/// What the writer needs besides the claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub envelope: Envelope,
    /// BHT03: our batch reference.
    pub reference: String,
    pub submitter: Submitter,
    /// 1000B receiver (the clearinghouse or payer we send to).
    pub receiver: Party,
    /// Address and tax id of the billing provider named in the claims.
    pub billing_provider: BillingProviderDetails,
    pub claims: Vec<ClaimSubmission>,
}

/// 1000A submitter with its EDI contact.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Submitter {
    pub name: String,
    /// NM109 (ETIN, qualifier `46`).
    pub id: String,
    /// PER02.
    pub contact_name: Option<String>,
    /// PER04 with PER03 `TE`, digits only.
    pub phone: Option<String>,
}

/// An organization by name and identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Party {
    pub name: String,
    pub id: String,
}

/// What the 837P needs of the billing provider beyond its NPI and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct BillingProviderDetails {
    /// 2010AA N3/N4: a street address (no PO box).
    pub address: Address,
    /// REF*EI employer identification number, 9 digits.
    pub tax_id: String,
    /// PRV*BI*PXC taxonomy code, when the payer wants it.
    pub taxonomy: Option<String>,
}

/// One claim and the subscriber details the claim record does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimSubmission {
    pub claim: ClaimInput837,
    pub subscriber: SubscriberDetails,
}

/// One claim as the writer takes it: plain values (text, dates, cents).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClaimInput837 {
    /// CLM01: the submitter's patient control number.
    pub patient_control_number: String,
    /// 2010BA subscriber (the patient).
    pub patient: PatientInput837,
    /// 2010BB payer (NM1*PR, id with qualifier `PI`).
    pub payer: Party,
    /// 2010AA billing provider (NM1*85).
    pub billing_provider: ProviderInput837,
    /// 2310B rendering provider, written only when its NPI differs from the billing one.
    pub rendering_provider: ProviderInput837,
    /// HI: ICD-10-CM codes without the dot, principal first (one to twelve).
    pub diagnoses: Vec<String>,
    /// 2400 service lines, in order; the first one's place of service is CLM05-1.
    pub service_lines: Vec<LineInput837>,
    /// CLM02 in cents.
    pub total_charge_cents: i64,
    /// CLM05-3: `1` original, `7` replacement, `8` void.
    pub frequency_code: String,
    /// REF*F8: the payer's claim control number of the claim replaced or voided.
    pub original_claim_id: Option<String>,
    /// REF*G1.
    pub prior_authorization: Option<String>,
}

/// The patient, who is the subscriber (NM1*IL, DMG).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PatientInput837 {
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    /// NM109 with qualifier `MI`.
    pub member_id: String,
}

/// A provider by NPI and name (an organization's name, or "First Last" of a person).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProviderInput837 {
    pub npi: String,
    pub name: String,
}

/// One service line as the writer takes it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LineInput837 {
    /// REF*6R line item control number.
    pub line_number: u32,
    /// DTP*472.
    pub service_date: NaiveDate,
    /// SV101-2 (HCPCS/CPT, qualifier `HC`).
    pub procedure_code: String,
    /// SV101-3.. (at most four).
    pub modifiers: Vec<String>,
    /// SV104 with SV103 `UN`.
    pub units: u32,
    /// SV102 in cents.
    pub charge_cents: i64,
    /// SV105 when it differs from CLM05-1.
    pub place_of_service: String,
    /// SV107: 1-based pointers into the claim's diagnoses.
    pub diagnosis_pointers: Vec<u8>,
}

/// Subscriber details (the patient is the subscriber).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct SubscriberDetails {
    /// DMG03 `F`, `M` or `U`.
    pub gender: String,
    /// 2010BA N3/N4 (required when the patient is the subscriber).
    pub address: Address,
    /// SBR03 group or policy number.
    pub group_number: Option<String>,
    /// SBR09 claim filing indicator (`CI` commercial, `MC` Medicaid, `MB` Medicare B, `BL`...).
    pub filing_indicator: String,
}

// ------------------------------------------------------------------------------------------
// Model

/// A decoded 837P (or the content a [`Submission`] writes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Professional837 {
    /// BHT03.
    pub reference: String,
    pub submitter: Submitter,
    pub receiver: Party,
    pub claims: Vec<Claim837>,
}

/// 2010AA billing provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct BillingProvider837 {
    pub name: String,
    pub npi: String,
    pub address: Option<Address>,
    pub tax_id: Option<String>,
    pub taxonomy: Option<String>,
}

/// 2000B/2010BA subscriber.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Subscriber837 {
    /// SBR01 `P` primary, `S` secondary, `T` tertiary.
    pub payer_responsibility: String,
    /// SBR02 `18` self when the subscriber is the patient.
    pub relationship: Option<String>,
    pub group_number: Option<String>,
    pub filing_indicator: Option<String>,
    pub last_name: String,
    pub first_name: Option<String>,
    pub member_id: Option<String>,
    pub address: Option<Address>,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<String>,
}

/// 2000C/2010CA patient, when not the subscriber.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Patient837 {
    /// PAT01 relationship to the subscriber.
    pub relationship: Option<String>,
    pub last_name: String,
    pub first_name: Option<String>,
    pub address: Option<Address>,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<String>,
}

/// 2310B rendering provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Rendering837 {
    pub last_name: String,
    pub first_name: Option<String>,
    pub npi: Option<String>,
}

/// One 2300 claim with the parties above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Claim837 {
    pub billing_provider: BillingProvider837,
    pub subscriber: Subscriber837,
    pub patient: Option<Patient837>,
    /// 2010BB NM1*PR.
    pub payer: Party,
    /// CLM01.
    pub patient_control_number: String,
    /// CLM02.
    pub total_charge: Option<Money>,
    /// CLM05-1.
    pub place_of_service: String,
    /// CLM05-3 (`1` original, `7` replacement, `8` void).
    pub frequency_code: String,
    /// REF*F8 payer claim control number of the claim replaced or voided.
    pub original_claim_id: Option<String>,
    /// REF*G1.
    pub prior_authorization: Option<String>,
    /// HI codes without qualifiers, principal first.
    pub diagnoses: Vec<String>,
    pub rendering_provider: Option<Rendering837>,
    pub lines: Vec<Line837>,
}

/// A 2400 service line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Line837 {
    /// LX01.
    pub assigned_number: Option<u32>,
    /// SV101.
    pub procedure: Procedure,
    /// SV102.
    pub charge: Option<Money>,
    /// SV103 (`UN` units, `MJ` minutes).
    pub unit_basis: Option<String>,
    /// SV104.
    pub units: Option<Decimal>,
    /// SV105, only when it differs from CLM05-1.
    pub place_of_service: Option<String>,
    /// SV107 pointers into the claim's diagnoses (1-based).
    pub diagnosis_pointers: Vec<u8>,
    /// DTP*472.
    pub service_date: Option<NaiveDate>,
    /// REF*6R.
    pub line_item_control_number: Option<String>,
}

// ------------------------------------------------------------------------------------------
// Submission → model

/// An empty optional value is not written, so the model (what reads back) has `None`.
fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

fn clean_address(a: &Address) -> Address {
    Address {
        line2: non_empty(&a.line2),
        ..a.clone()
    }
}

/// Splits "First Middle Last" at the last space: NM1*82 wants last and first name separately.
fn split_name(full: &str) -> (String, Option<String>) {
    match full.trim().rsplit_once(' ') {
        Some((first, last)) => (last.to_owned(), opt(first.trim_end())),
        None => (full.trim().to_owned(), None),
    }
}

impl Professional837 {
    /// The 837P content of a submission: what the writer writes and the reader reads back.
    pub fn from_submission(s: &Submission) -> Result<Professional837, Error> {
        let Some(first) = s.claims.first() else {
            return Err(Error::Missing {
                field: "claims".into(),
            });
        };
        let billing = &first.claim.billing_provider;
        let mut claims = Vec::with_capacity(s.claims.len());
        for (i, cs) in s.claims.iter().enumerate() {
            let c = &cs.claim;
            // One address and tax id per submission: they must describe one billing provider.
            if c.billing_provider.npi != billing.npi {
                return Err(Error::Invalid {
                    field: format!("claims[{i}].claim.billing_provider.npi"),
                    reason: "all claims of a submission must have the same billing provider".into(),
                });
            }
            let Some(pos) = c.service_lines.first().map(|l| l.place_of_service.clone()) else {
                return Err(Error::Missing {
                    field: format!("claims[{i}].claim.service_lines"),
                });
            };
            let rendering = if c.rendering_provider.npi == c.billing_provider.npi {
                None
            } else if c.rendering_provider.name.trim().is_empty() {
                // 2310B NM103 is required; a blank name cannot be sent.
                return Err(Error::Missing {
                    field: format!("claims[{i}].claim.rendering_provider.name"),
                });
            } else {
                let (last, first) = split_name(&c.rendering_provider.name);
                Some(Rendering837 {
                    last_name: last,
                    first_name: first,
                    npi: Some(c.rendering_provider.npi.clone()),
                })
            };
            let lines = c
                .service_lines
                .iter()
                .enumerate()
                .map(|(k, l)| Line837 {
                    assigned_number: u32::try_from(k + 1).ok(),
                    procedure: Procedure {
                        qualifier: "HC".into(),
                        code: l.procedure_code.as_str().into(),
                        modifiers: l.modifiers.iter().map(Text::from).collect(),
                        description: None,
                    },
                    charge: Some(Money::from_cents(l.charge_cents)),
                    unit_basis: Some("UN".into()),
                    units: Some(Decimal::from_int(i64::from(l.units))),
                    place_of_service: (l.place_of_service != pos)
                        .then(|| l.place_of_service.clone()),
                    diagnosis_pointers: l.diagnosis_pointers.clone(),
                    service_date: Some(l.service_date),
                    line_item_control_number: Some(l.line_number.to_string()),
                })
                .collect();
            claims.push(Claim837 {
                billing_provider: BillingProvider837 {
                    name: c.billing_provider.name.clone(),
                    npi: c.billing_provider.npi.clone(),
                    address: Some(clean_address(&s.billing_provider.address)),
                    tax_id: Some(s.billing_provider.tax_id.clone()),
                    taxonomy: non_empty(&s.billing_provider.taxonomy),
                },
                subscriber: Subscriber837 {
                    payer_responsibility: "P".into(),
                    relationship: Some("18".into()),
                    group_number: non_empty(&cs.subscriber.group_number),
                    filing_indicator: Some(cs.subscriber.filing_indicator.clone()),
                    last_name: c.patient.last_name.clone(),
                    first_name: Some(c.patient.first_name.clone()),
                    member_id: Some(c.patient.member_id.clone()),
                    address: Some(clean_address(&cs.subscriber.address)),
                    birth_date: Some(c.patient.birth_date),
                    gender: Some(cs.subscriber.gender.clone()),
                },
                patient: None,
                payer: Party {
                    name: c.payer.name.clone(),
                    id: c.payer.id.clone(),
                },
                patient_control_number: c.patient_control_number.clone(),
                total_charge: Some(Money::from_cents(c.total_charge_cents)),
                place_of_service: pos,
                frequency_code: c.frequency_code.clone(),
                original_claim_id: non_empty(&c.original_claim_id),
                prior_authorization: non_empty(&c.prior_authorization),
                diagnoses: c.diagnoses.clone(),
                rendering_provider: rendering,
                lines,
            });
        }
        Ok(Professional837 {
            reference: s.reference.clone(),
            submitter: Submitter {
                contact_name: non_empty(&s.submitter.contact_name),
                phone: non_empty(&s.submitter.phone),
                ..s.submitter.clone()
            },
            receiver: s.receiver.clone(),
            claims,
        })
    }
}

// ------------------------------------------------------------------------------------------
// Writer

/// Writes a submission as one 837P interchange (GS01 `HC`, GS08 `005010X222A1`).
pub fn write_837p(s: &Submission) -> Result<String, Error> {
    let model = Professional837::from_submission(s)?;
    encode_837p(&s.envelope, &model)
}

fn write_address(w: &mut SetWriter, field: &str, a: &Address) -> Result<(), Error> {
    let l1 = required(&format!("{field}.line1"), &a.line1, 55)?;
    let l2 = optional(&format!("{field}.line2"), a.line2.as_deref(), 55)?;
    w.segment("N3", &[l1, l2.unwrap_or("")]);
    w.segment(
        "N4",
        &[
            required(&format!("{field}.city"), &a.city, 30)?,
            required(&format!("{field}.state"), &a.state, 2)?,
            required(&format!("{field}.postal_code"), &a.postal_code, 15)?,
        ],
    );
    Ok(())
}

fn write_dmg(
    w: &mut SetWriter,
    field: &str,
    birth: Option<NaiveDate>,
    gender: Option<&str>,
) -> Result<(), Error> {
    if birth.is_none() && gender.is_none() {
        return Ok(());
    }
    let dob = birth.map(format_date8).unwrap_or_default();
    let g = optional(&format!("{field}.gender"), gender, 1)?;
    w.segment("DMG", &["D8", &dob, g.unwrap_or("")]);
    Ok(())
}

/// Serializes the 837P content model (see the module docs for the layout).
pub fn encode_837p(env: &Envelope, m: &Professional837) -> Result<String, Error> {
    if m.claims.is_empty() {
        return Err(Error::Missing {
            field: "claims".into(),
        });
    }
    let mut w = SetWriter::new();
    let date = format_date8(env.date);
    let time = env.time.format("%H%M").to_string();
    let reference = required("reference", &m.reference, 50)?;
    w.segment("BHT", &["0019", "00", reference, &date, &time, "CH"]);
    let sub = &m.submitter;
    w.segment(
        "NM1",
        &[
            "41",
            "2",
            required("submitter.name", &sub.name, 60)?,
            "",
            "",
            "",
            "",
            "46",
            required("submitter.id", &sub.id, 80)?,
        ],
    );
    let contact = optional("submitter.contact_name", sub.contact_name.as_deref(), 60)?;
    let phone = optional("submitter.phone", sub.phone.as_deref(), 256)?;
    if contact.is_some() || phone.is_some() {
        let te = if phone.is_some() { "TE" } else { "" };
        w.segment(
            "PER",
            &["IC", contact.unwrap_or(""), te, phone.unwrap_or("")],
        );
    }
    w.segment(
        "NM1",
        &[
            "40",
            "2",
            required("receiver.name", &m.receiver.name, 60)?,
            "",
            "",
            "",
            "",
            "46",
            required("receiver.id", &m.receiver.id, 80)?,
        ],
    );

    let mut hl = 0usize;
    let mut billing_hl = 0usize;
    let mut last_billing: Option<&BillingProvider837> = None;
    for (i, c) in m.claims.iter().enumerate() {
        let f = |name: &str| format!("claims[{i}].{name}");
        if last_billing != Some(&c.billing_provider) {
            hl += 1;
            billing_hl = hl;
            last_billing = Some(&c.billing_provider);
            w.segment("HL", &[&hl.to_string(), "", "20", "1"]);
            let b = &c.billing_provider;
            if let Some(t) = optional(&f("billing_provider.taxonomy"), b.taxonomy.as_deref(), 50)? {
                w.segment("PRV", &["BI", "PXC", t]);
            }
            w.segment(
                "NM1",
                &[
                    "85",
                    "2",
                    required(&f("billing_provider.name"), &b.name, 60)?,
                    "",
                    "",
                    "",
                    "",
                    "XX",
                    required(&f("billing_provider.npi"), &b.npi, 80)?,
                ],
            );
            if let Some(a) = &b.address {
                write_address(&mut w, &f("billing_provider.address"), a)?;
            }
            if let Some(t) = optional(&f("billing_provider.tax_id"), b.tax_id.as_deref(), 50)? {
                w.segment("REF", &["EI", t]);
            }
        }
        hl += 1;
        let subscriber_hl = hl;
        let has_patient = c.patient.is_some();
        w.segment(
            "HL",
            &[
                &subscriber_hl.to_string(),
                &billing_hl.to_string(),
                "22",
                if has_patient { "1" } else { "0" },
            ],
        );
        let s = &c.subscriber;
        w.segment(
            "SBR",
            &[
                required(
                    &f("subscriber.payer_responsibility"),
                    &s.payer_responsibility,
                    1,
                )?,
                optional(&f("subscriber.relationship"), s.relationship.as_deref(), 2)?
                    .unwrap_or(""),
                optional(&f("subscriber.group_number"), s.group_number.as_deref(), 50)?
                    .unwrap_or(""),
                "",
                "",
                "",
                "",
                "",
                optional(
                    &f("subscriber.filing_indicator"),
                    s.filing_indicator.as_deref(),
                    2,
                )?
                .unwrap_or(""),
            ],
        );
        let member = optional(&f("subscriber.member_id"), s.member_id.as_deref(), 80)?;
        w.segment(
            "NM1",
            &[
                "IL",
                "1",
                required(&f("subscriber.last_name"), &s.last_name, 60)?,
                optional(&f("subscriber.first_name"), s.first_name.as_deref(), 35)?.unwrap_or(""),
                "",
                "",
                "",
                if member.is_some() { "MI" } else { "" },
                member.unwrap_or(""),
            ],
        );
        if let Some(a) = &s.address {
            write_address(&mut w, &f("subscriber.address"), a)?;
        }
        write_dmg(&mut w, &f("subscriber"), s.birth_date, s.gender.as_deref())?;
        w.segment(
            "NM1",
            &[
                "PR",
                "2",
                required(&f("payer.name"), &c.payer.name, 60)?,
                "",
                "",
                "",
                "",
                "PI",
                required(&f("payer.id"), &c.payer.id, 80)?,
            ],
        );
        if let Some(p) = &c.patient {
            hl += 1;
            w.segment(
                "HL",
                &[&hl.to_string(), &subscriber_hl.to_string(), "23", "0"],
            );
            w.segment(
                "PAT",
                &[
                    optional(&f("patient.relationship"), p.relationship.as_deref(), 2)?
                        .unwrap_or(""),
                ],
            );
            w.segment(
                "NM1",
                &[
                    "QC",
                    "1",
                    required(&f("patient.last_name"), &p.last_name, 60)?,
                    optional(&f("patient.first_name"), p.first_name.as_deref(), 35)?.unwrap_or(""),
                ],
            );
            if let Some(a) = &p.address {
                write_address(&mut w, &f("patient.address"), a)?;
            }
            write_dmg(&mut w, &f("patient"), p.birth_date, p.gender.as_deref())?;
        }
        write_claim(&mut w, i, c)?;
    }
    w.finish(env, "HC", "837", "005010X222A1")
}

fn write_claim(w: &mut SetWriter, i: usize, c: &Claim837) -> Result<(), Error> {
    let f = |name: &str| format!("claims[{i}].{name}");
    let charge = c.total_charge.map(format_amount).unwrap_or_default();
    let pos = required(&f("place_of_service"), &c.place_of_service, 2)?;
    let freq = required(&f("frequency_code"), &c.frequency_code, 1)?;
    w.segment(
        "CLM",
        &[
            required(&f("patient_control_number"), &c.patient_control_number, 38)?,
            &charge,
            "",
            "",
            &composite(&[pos, "B", freq]),
            "Y",
            "A",
            "Y",
            "Y",
        ],
    );
    // 2300 REF order of the implementation guide: G1 (prior authorization) before F8.
    if let Some(v) = optional(
        &f("prior_authorization"),
        c.prior_authorization.as_deref(),
        50,
    )? {
        w.segment("REF", &["G1", v]);
    }
    let original = optional(&f("original_claim_id"), c.original_claim_id.as_deref(), 50)?;
    // A replacement (7) or void (8) names the claim it replaces: REF*F8 is required then.
    match original {
        None if matches!(c.frequency_code.as_str(), "7" | "8") => {
            return Err(Error::Missing {
                field: f("original_claim_id"),
            });
        }
        Some(v) => w.segment("REF", &["F8", v]),
        None => {}
    }
    if c.diagnoses.is_empty() || c.diagnoses.len() > 12 {
        return Err(Error::Invalid {
            field: f("diagnoses"),
            reason: "one to twelve diagnoses fit in HI".into(),
        });
    }
    let mut hi = Vec::with_capacity(c.diagnoses.len());
    for (k, d) in c.diagnoses.iter().enumerate() {
        let code = required(&f(&format!("diagnoses[{k}]")), d, 30)?;
        hi.push(composite(&[if k == 0 { "ABK" } else { "ABF" }, code]));
    }
    let hi_refs: Vec<&str> = hi.iter().map(String::as_str).collect();
    w.segment("HI", &hi_refs);
    if let Some(r) = &c.rendering_provider {
        let npi = optional(&f("rendering_provider.npi"), r.npi.as_deref(), 80)?;
        w.segment(
            "NM1",
            &[
                "82",
                "1",
                required(&f("rendering_provider.last_name"), &r.last_name, 60)?,
                optional(
                    &f("rendering_provider.first_name"),
                    r.first_name.as_deref(),
                    35,
                )?
                .unwrap_or(""),
                "",
                "",
                "",
                if npi.is_some() { "XX" } else { "" },
                npi.unwrap_or(""),
            ],
        );
    }
    for (k, l) in c.lines.iter().enumerate() {
        let lf = |name: &str| format!("claims[{i}].lines[{k}].{name}");
        let n = l.assigned_number.map(|n| n.to_string()).unwrap_or_default();
        w.segment("LX", &[&n]);
        let p = &l.procedure;
        let mut parts = vec![
            required(&lf("procedure.qualifier"), &p.qualifier, 2)?,
            required(&lf("procedure.code"), &p.code, 48)?,
        ];
        if p.modifiers.len() > 4 {
            return Err(Error::Invalid {
                field: lf("procedure.modifiers"),
                reason: "at most 4 modifiers".into(),
            });
        }
        for (j, m) in p.modifiers.iter().enumerate() {
            parts.push(required(&lf(&format!("procedure.modifiers[{j}]")), m, 2)?);
        }
        if let Some(d) = &p.description {
            while parts.len() < 6 {
                parts.push("");
            }
            parts.push(required(&lf("procedure.description"), d, 80)?);
        }
        if l.diagnosis_pointers.len() > 4 {
            return Err(Error::Invalid {
                field: lf("diagnosis_pointers"),
                reason: "at most 4 pointers".into(),
            });
        }
        let pointers: Vec<String> = l.diagnosis_pointers.iter().map(u8::to_string).collect();
        let pointer_refs: Vec<&str> = pointers.iter().map(String::as_str).collect();
        let charge = l.charge.map(format_amount).unwrap_or_default();
        let units = l.units.map(|u| u.to_string()).unwrap_or_default();
        w.segment(
            "SV1",
            &[
                &composite(&parts),
                &charge,
                optional(&lf("unit_basis"), l.unit_basis.as_deref(), 2)?.unwrap_or(""),
                &units,
                optional(&lf("place_of_service"), l.place_of_service.as_deref(), 2)?.unwrap_or(""),
                "",
                &composite(&pointer_refs),
            ],
        );
        if let Some(d) = l.service_date {
            w.segment("DTP", &["472", "D8", &format_date8(d)]);
        }
        if let Some(v) = optional(
            &lf("line_item_control_number"),
            l.line_item_control_number.as_deref(),
            50,
        )? {
            w.segment("REF", &["6R", v]);
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Reader

#[derive(Default)]
struct HlData {
    id: String,
    parent_id: Option<String>,
    code: String,
    parent: Option<usize>,
    location: (usize, u32),
    billing: Option<BillingProvider837>,
    subscriber: Option<Subscriber837>,
    payer: Option<Party>,
    patient: Option<Patient837>,
}

impl HlNode for HlData {
    fn id(&self) -> &str {
        &self.id
    }
    fn parent_id(&self) -> Option<&str> {
        self.parent_id.as_deref()
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn allowed_parents(&self) -> Option<&'static [&'static str]> {
        match self.code.as_str() {
            "20" => Some(&[]),
            "22" => Some(&["20"]),
            "23" => Some(&["22"]),
            _ => None,
        }
    }
    fn set_parent(&mut self, parent: Option<usize>) {
        self.parent = parent;
    }
    fn location(&self) -> (usize, u32) {
        self.location
    }
}

/// Which NM1 the following N3/N4/DMG/REF belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name {
    None,
    Submitter,
    Billing,
    Subscriber,
    Payer,
    Patient,
    Rendering,
    /// Pay-to, service facility, other payers...: not kept.
    Ignored,
}

pub(crate) struct Decoder {
    out: Professional837,
    levels: Vec<HlData>,
    claims: Vec<(usize, Claim837)>,
    name: Name,
    in_claim: bool,
    /// After a 2320 SBR (other subscriber) nothing until the next LX is ours to keep.
    in_other_payer: bool,
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            out: Professional837::default(),
            levels: Vec::new(),
            claims: Vec::new(),
            name: Name::None,
            in_claim: false,
            in_other_payer: false,
        }
    }

    fn claim(&mut self) -> Option<&mut Claim837> {
        self.claims.last_mut().map(|(_, c)| c)
    }

    fn line(&mut self) -> Option<&mut Line837> {
        self.claim().and_then(|c| c.lines.last_mut())
    }

    fn address(&mut self) -> Option<&mut Address> {
        let name = self.name;
        let l = self.levels.last_mut()?;
        let slot = match name {
            Name::Billing => &mut l.billing.get_or_insert_with(Default::default).address,
            Name::Subscriber => &mut l.subscriber.get_or_insert_with(Default::default).address,
            Name::Patient => &mut l.patient.get_or_insert_with(Default::default).address,
            _ => return None,
        };
        Some(slot.get_or_insert_with(Address::default))
    }

    pub(crate) fn segment(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        match seg.key {
            id::BHT => seg.element(3).clone_into(&mut self.out.reference),
            id::HL => {
                let [id, parent, code] = seg.fields::<3>();
                require(cx, seg, "HL01", id);
                if !matches!(code, "20" | "22" | "23") {
                    cx.warning(
                        seg,
                        ProblemKind::UnknownCode,
                        format!("HL03 {code:?} is not an 837P level code (20, 22, 23)"),
                    );
                }
                self.levels.push(HlData {
                    id: id.to_owned(),
                    parent_id: opt(parent),
                    code: code.to_owned(),
                    location: (seg.index, seg.line),
                    ..HlData::default()
                });
                self.name = Name::None;
                self.in_claim = false;
                self.in_other_payer = false;
            }
            id::NM1 => self.nm1(seg),
            id::PER if self.name == Name::Submitter => {
                let [_, name, q, number] = seg.fields::<4>();
                self.out.submitter.contact_name = opt(name);
                self.out.submitter.phone = if q == "TE" { opt(number) } else { None };
            }
            id::N3 | id::N4 => {
                if let Some(a) = self.address() {
                    if seg.key == id::N3 {
                        a.set_n3(seg);
                    } else {
                        a.set_n4(seg);
                    }
                }
            }
            id::DMG => {
                let [_, dob, gender] = seg.fields::<3>();
                let birth = crate::common::date(cx, seg, "DMG02", dob);
                let name = self.name;
                if let Some(l) = self.levels.last_mut() {
                    match name {
                        Name::Subscriber => {
                            let s = l.subscriber.get_or_insert_with(Default::default);
                            s.birth_date = birth;
                            s.gender = opt(gender);
                        }
                        Name::Patient => {
                            let p = l.patient.get_or_insert_with(Default::default);
                            p.birth_date = birth;
                            p.gender = opt(gender);
                        }
                        _ => {}
                    }
                }
            }
            id::PRV => {
                let [code, _, taxonomy] = seg.fields::<3>();
                if code == "BI"
                    && let Some(l) = self.levels.last_mut()
                {
                    l.billing.get_or_insert_with(Default::default).taxonomy = opt(taxonomy);
                }
            }
            id::SBR => {
                if self.in_claim {
                    self.in_other_payer = true;
                    self.name = Name::Ignored;
                    return;
                }
                let f = seg.fields::<9>();
                let [resp, rel, group, ..] = f;
                if let Some(l) = self.levels.last_mut() {
                    let s = l.subscriber.get_or_insert_with(Default::default);
                    resp.clone_into(&mut s.payer_responsibility);
                    s.relationship = opt(rel);
                    s.group_number = opt(group);
                    s.filing_indicator = f.get(8).and_then(|x| opt(x));
                }
            }
            id::PAT => {
                if let Some(l) = self.levels.last_mut() {
                    l.patient.get_or_insert_with(Default::default).relationship =
                        opt(seg.element(1));
                }
            }
            id::CLM => self.clm(seg, cx),
            id::REF => self.reference(seg),
            id::HI => {
                if self.in_other_payer {
                    return;
                }
                let codes: Vec<String> = seg
                    .elements()
                    .filter_map(|e| {
                        let [_, code] = seg.composite::<2>(e);
                        opt(code)
                    })
                    .collect();
                if let Some(c) = self.claim() {
                    c.diagnoses.extend(codes);
                }
            }
            id::LX => {
                self.in_other_payer = false;
                self.name = Name::Ignored;
                let n = seg.element(1).trim().parse().ok();
                match self.claim() {
                    Some(c) => c.lines.push(Line837 {
                        assigned_number: n,
                        ..Line837::default()
                    }),
                    None => crate::common::unexpected(cx, seg, "outside a claim (CLM)"),
                }
            }
            id::SV1 => {
                let [p1, charge, basis, units, pos, _, pointers] = seg.fields::<7>();
                let procedure = Procedure::parse(seg, p1);
                let charge = amount(cx, seg, "SV102", charge);
                let units = quantity(cx, seg, "SV104", units);
                let pointers = seg
                    .components(pointers)
                    .filter_map(|p| p.trim().parse::<u8>().ok())
                    .collect();
                match self.line() {
                    Some(l) => {
                        l.procedure = procedure;
                        l.charge = charge;
                        l.unit_basis = opt(basis);
                        l.units = units;
                        l.place_of_service = opt(pos);
                        l.diagnosis_pointers = pointers;
                    }
                    None => crate::common::unexpected(cx, seg, "outside a service line (LX)"),
                }
            }
            id::DTP => {
                let [q, format, value] = seg.fields::<3>();
                if q == "472"
                    && format == "D8"
                    && let Some(d) = crate::common::date(cx, seg, "DTP03", value)
                    && let Some(l) = self.line()
                {
                    l.service_date = Some(d);
                }
            }
            _ => {}
        }
    }

    fn nm1(&mut self, seg: &Segment<'_>) {
        let e = Entity::from_nm1(seg);
        if self.in_other_payer {
            return;
        }
        if self.levels.is_empty() {
            match e.entity_code.as_str() {
                "41" => {
                    self.out.submitter.name = String::from(e.name);
                    self.out.submitter.id = e.id.map(String::from).unwrap_or_default();
                    self.name = Name::Submitter;
                }
                "40" => {
                    self.out.receiver = Party {
                        name: String::from(e.name),
                        id: e.id.map(String::from).unwrap_or_default(),
                    };
                    self.name = Name::Ignored;
                }
                _ => self.name = Name::Ignored,
            }
            return;
        }
        let in_claim = self.in_claim;
        let in_line = self.claims.last().is_some_and(|(_, c)| !c.lines.is_empty()) && in_claim;
        if in_claim {
            self.name = Name::Ignored;
            if e.entity_code == "82"
                && !in_line
                && let Some(c) = self.claim()
            {
                c.rendering_provider = Some(Rendering837 {
                    last_name: String::from(e.name),
                    first_name: e.first_name.map(String::from),
                    npi: e.id.map(String::from),
                });
                self.name = Name::Rendering;
            }
            return;
        }
        let Some(l) = self.levels.last_mut() else {
            return;
        };
        self.name = match e.entity_code.as_str() {
            "85" => {
                let b = l.billing.get_or_insert_with(Default::default);
                b.name = String::from(e.name);
                b.npi = e.id.map(String::from).unwrap_or_default();
                Name::Billing
            }
            "IL" => {
                let s = l.subscriber.get_or_insert_with(Default::default);
                s.last_name = String::from(e.name);
                s.first_name = e.first_name.map(String::from);
                s.member_id = e.id.map(String::from);
                Name::Subscriber
            }
            "PR" => {
                l.payer = Some(Party {
                    name: String::from(e.name),
                    id: e.id.map(String::from).unwrap_or_default(),
                });
                Name::Payer
            }
            "QC" => {
                let p = l.patient.get_or_insert_with(Default::default);
                p.last_name = String::from(e.name);
                p.first_name = e.first_name.map(String::from);
                Name::Patient
            }
            _ => Name::Ignored,
        };
    }

    fn clm(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let [pcn, charge, _, _, facility] = seg.fields::<5>();
        require(cx, seg, "CLM01", pcn);
        let [pos, _, freq] = seg.composite::<3>(facility);
        let Some(level) = self.levels.len().checked_sub(1) else {
            crate::common::unexpected(cx, seg, "before the first HL");
            return;
        };
        let claim = Claim837 {
            patient_control_number: pcn.to_owned(),
            total_charge: amount(cx, seg, "CLM02", charge),
            place_of_service: pos.to_owned(),
            frequency_code: freq.to_owned(),
            ..Claim837::default()
        };
        self.claims.push((level, claim));
        self.in_claim = true;
        self.in_other_payer = false;
        self.name = Name::None;
    }

    fn reference(&mut self, seg: &Segment<'_>) {
        let [q, v] = seg.fields::<2>();
        if self.in_other_payer {
            return;
        }
        if self.in_claim {
            let name = self.name;
            let in_line = self.claims.last().is_some_and(|(_, c)| !c.lines.is_empty());
            if in_line {
                if q == "6R"
                    && let Some(l) = self.line()
                {
                    l.line_item_control_number = opt(v);
                }
                return;
            }
            if name != Name::None {
                // REF of a 2310 provider (e.g. G2 of the rendering provider).
                return;
            }
            if let Some(c) = self.claim() {
                match q {
                    "F8" => c.original_claim_id = opt(v),
                    "G1" => c.prior_authorization = opt(v),
                    _ => {}
                }
            }
            return;
        }
        if self.name == Name::Billing
            && q == "EI"
            && let Some(l) = self.levels.last_mut()
        {
            l.billing.get_or_insert_with(Default::default).tax_id = opt(v);
        }
    }

    pub(crate) fn finish(mut self, cx: &mut Cx<'_>) -> Professional837 {
        resolve_parents(&mut self.levels, cx);
        let levels = &self.levels;
        self.out.claims = self
            .claims
            .into_iter()
            .map(|(at, mut c)| {
                let mut cur = Some(at);
                let mut steps = 0;
                while let Some(i) = cur {
                    let Some(l) = levels.get(i) else { break };
                    match l.code.as_str() {
                        "20" => c.billing_provider = l.billing.clone().unwrap_or_default(),
                        "22" => {
                            c.subscriber = l.subscriber.clone().unwrap_or_default();
                            c.payer = l.payer.clone().unwrap_or_default();
                        }
                        "23" => c.patient = l.patient.clone(),
                        _ => {}
                    }
                    steps += 1;
                    if steps > levels.len() {
                        break;
                    }
                    cur = l.parent;
                }
                c
            })
            .collect();
        self.out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::document::{Transaction, read};
    use crate::write::tests::envelope;

    fn address(line1: &str) -> Address {
        Address {
            line1: line1.into(),
            line2: None,
            city: "ALBANY".into(),
            state: "NY".into(),
            postal_code: "122070000".into(),
        }
    }

    pub(crate) fn submission(claims: Vec<ClaimInput837>) -> Submission {
        Submission {
            envelope: envelope(),
            reference: "BATCH0001".into(),
            submitter: Submitter {
                name: "RIVERSIDE BH".into(),
                id: "SUB123".into(),
                contact_name: Some("BILLING DESK".into()),
                phone: Some("5185550100".into()),
            },
            receiver: Party {
                name: "CLEARINGHOUSE".into(),
                id: "CH01".into(),
            },
            billing_provider: BillingProviderDetails {
                address: address("1 MAIN ST"),
                tax_id: "123456789".into(),
                taxonomy: Some("101YM0800X".into()),
            },
            claims: claims
                .into_iter()
                .map(|claim| ClaimSubmission {
                    claim,
                    subscriber: SubscriberDetails {
                        gender: "F".into(),
                        address: address("2 ELM ST"),
                        group_number: Some("GRP1".into()),
                        filing_indicator: "CI".into(),
                    },
                })
                .collect(),
        }
    }

    /// The domain's fixture claim (`arflow_domain::fixtures::valid_claim_input` on 2024-03-15),
    /// as the claims service maps it.
    pub(crate) fn claim() -> ClaimInput837 {
        let day = NaiveDate::from_ymd_opt(2024, 3, 8).unwrap();
        let line = |n: u32, code: &str, cents: i64, pointers: Vec<u8>| LineInput837 {
            line_number: n,
            service_date: day,
            procedure_code: code.into(),
            modifiers: Vec::new(),
            units: 1,
            charge_cents: cents,
            place_of_service: "11".into(),
            diagnosis_pointers: pointers,
        };
        ClaimInput837 {
            patient_control_number: "RBH-000123".into(),
            patient: PatientInput837 {
                first_name: "Jordan".into(),
                last_name: "Rivera".into(),
                birth_date: NaiveDate::from_ymd_opt(1988, 3, 14).unwrap(),
                member_id: "XEH123456789".into(),
            },
            payer: Party {
                name: "UnitedHealthcare".into(),
                id: "87726".into(),
            },
            billing_provider: ProviderInput837 {
                npi: "1245319599".into(),
                name: "Riverside Behavioral Health PLLC".into(),
            },
            rendering_provider: ProviderInput837 {
                npi: "1234567893".into(),
                name: "Avery Chen".into(),
            },
            diagnoses: vec!["F331".into(), "F411".into()],
            service_lines: vec![
                line(1, "90837", 18_000, vec![1, 2]),
                line(2, "90785", 2_500, vec![1]),
            ],
            total_charge_cents: 20_500,
            frequency_code: "1".into(),
            original_claim_id: None,
            prior_authorization: None,
        }
    }

    fn read_837(text: &str) -> (Professional837, Vec<crate::Problem>) {
        let doc = read(text.as_bytes());
        let p = doc
            .transactions()
            .find_map(|t| match &t.content {
                Transaction::Professional837(p) => Some((**p).clone()),
                _ => None,
            })
            .unwrap();
        (p, doc.problems)
    }

    #[test]
    fn writes_an_837p_that_reads_back() {
        let s = submission(vec![claim()]);
        let text = write_837p(&s).unwrap();
        for part in [
            "~GS*HC*ARFLOW*CLEARINGHOUSE*20240301*0930*7*X*005010X222A1~ST*837*0001*005010X222A1~BHT*0019*00*BATCH0001*20240301*0930*CH~",
            "~NM1*41*2*RIVERSIDE BH*****46*SUB123~PER*IC*BILLING DESK*TE*5185550100~NM1*40*2*CLEARINGHOUSE*****46*CH01~",
            "~HL*1**20*1~PRV*BI*PXC*101YM0800X~NM1*85*2*Riverside Behavioral Health PLLC*****XX*1245319599~N3*1 MAIN ST~N4*ALBANY*NY*122070000~REF*EI*123456789~",
            "~HL*2*1*22*0~SBR*P*18*GRP1******CI~NM1*IL*1*Rivera*Jordan****MI*XEH123456789~N3*2 ELM ST~N4*ALBANY*NY*122070000~DMG*D8*19880314*F~NM1*PR*2*UnitedHealthcare*****PI*87726~",
            "~CLM*RBH-000123*205***11:B:1*Y*A*Y*Y~HI*ABK:F331*ABF:F411~NM1*82*1*Chen*Avery****XX*1234567893~",
            "~LX*1~SV1*HC:90837*180*UN*1***1:2~DTP*472*D8*20240308~REF*6R*1~LX*2~SV1*HC:90785*25*UN*1***1~DTP*472*D8*20240308~REF*6R*2~SE*",
        ] {
            assert!(text.contains(part), "missing {part}\nin {text}");
        }
        let (back, problems) = read_837(&text);
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(back, Professional837::from_submission(&s).unwrap());
    }

    #[test]
    fn replacement_claims_carry_the_original_number() {
        let mut c = claim();
        c.frequency_code = "7".into();
        c.original_claim_id = Some("ICN0001".into());
        c.prior_authorization = Some("PA77".into());
        let text = write_837p(&submission(vec![c])).unwrap();
        assert!(
            text.contains("~CLM*RBH-000123*205***11:B:7*Y*A*Y*Y~REF*G1*PA77~REF*F8*ICN0001~HI*")
        );
        let (back, _) = read_837(&text);
        assert_eq!(back.claims[0].frequency_code, "7");
        assert_eq!(back.claims[0].original_claim_id.as_deref(), Some("ICN0001"));

        let mut void = claim();
        void.frequency_code = "8".into();
        void.original_claim_id = None;
        assert!(matches!(
            write_837p(&submission(vec![void])),
            Err(Error::Missing { field }) if field == "claims[0].original_claim_id"
        ));
    }

    #[test]
    fn line_place_of_service_only_when_it_differs_and_modifiers() {
        let mut c = claim();
        c.service_lines[1].place_of_service = "02".into();
        c.service_lines[0].modifiers = vec!["95".into(), "HJ".into()];
        let text = write_837p(&submission(vec![c])).unwrap();
        assert!(text.contains("~SV1*HC:90837:95:HJ*180*UN*1***1:2~"));
        assert!(text.contains("~SV1*HC:90785*25*UN*1*02**1~"));
        let (back, _) = read_837(&text);
        assert_eq!(
            back.claims[0].lines[1].place_of_service.as_deref(),
            Some("02")
        );
    }

    #[test]
    fn rendering_provider_only_when_not_the_billing_provider() {
        let mut c = claim();
        c.rendering_provider.npi = c.billing_provider.npi.clone();
        let text = write_837p(&submission(vec![c])).unwrap();
        assert!(!text.contains("NM1*82"));
        let mut c = claim();
        c.rendering_provider.name = String::new();
        assert!(matches!(
            write_837p(&submission(vec![c])),
            Err(Error::Missing { field }) if field == "claims[0].claim.rendering_provider.name"
        ));
    }

    #[test]
    fn refuses_delimiters_and_mixed_billing_providers() {
        let mut s = submission(vec![claim()]);
        s.billing_provider.address.line1 = "1 MAIN ST ~ SUITE 2".into();
        assert!(matches!(
            write_837p(&s),
            Err(Error::Unsendable { field, found: '~' }) if field == "claims[0].billing_provider.address.line1"
        ));
        let mut other = claim();
        other.billing_provider.npi = "1234567893".into();
        assert!(matches!(
            write_837p(&submission(vec![claim(), other])),
            Err(Error::Invalid { .. })
        ));
        assert!(write_837p(&submission(vec![])).is_err());
    }

    #[test]
    fn several_claims_share_the_billing_provider_level() {
        let mut second = claim();
        second.patient_control_number = "RBH-000124".into();
        let s = submission(vec![claim(), second]);
        let text = write_837p(&s).unwrap();
        assert_eq!(text.matches("~HL*").count(), 3);
        assert!(text.contains("~HL*3*1*22*0~"));
        let doc = read(text.as_bytes());
        assert!(doc.problems.is_empty(), "{:#?}", doc.problems);
        let (back, _) = read_837(&text);
        assert_eq!(back.claims.len(), 2);
        assert_eq!(back.claims[1].patient_control_number, "RBH-000124");
        assert_eq!(
            back.claims[1].billing_provider.tax_id.as_deref(),
            Some("123456789")
        );
    }

    #[test]
    fn reads_a_dependent_claim_with_other_payer_loops() {
        // Shaped like the X222 COB example: patient HL 23, 2320/2330 loops after the claim.
        let text = "ST*837*0021*005010X222A1~BHT*0019*00*0123*20051015*1023*CH~NM1*41*2*PREMIER BILLING*****46*TGJ23~PER*IC*JERRY*TE*3055552222~NM1*40*2*REPRICER*****46*66783JJT~HL*1**20*1~NM1*85*1*KILDARE*BEN****XX*1999996666~N3*1234 SEAWAY ST~N4*MIAMI*FL*33111~REF*EI*123456789~NM1*87*2~N3*2345 OCEAN BLVD~N4*MIAMI*FL*33111~HL*2*1*22*1~SBR*P********CI~NM1*IL*1*SMITH*JANE****MI*111223333~DMG*D8*19430501*F~NM1*PR*2*KEY INSURANCE*****PI*999996666~N3*3333 OCEAN ST~N4*SOUTH MIAMI*FL*33000~HL*3*2*23*0~PAT*19~NM1*QC*1*SMITH*TED~N3*236 N MAIN ST~N4*MIAMI*FL*33413~DMG*D8*19730501*M~CLM*26407789*79.04***11:B:1*Y*A*Y*I*P~HI*BK:4779*BF:2724~NM1*82*1*KILDARE*BEN****XX*1999996666~PRV*PE*PXC*204C00000X~REF*G2*KA6663~SBR*S*01*******12~NM1*IL*1*SMITH*JACK****MI*T55TY666~LX*1~SV1*HC:99213*43.00*UN*1.00***1:2~DTP*472*D8*20051003~SE*37*0021~";
        let (p, problems) = read_837(text);
        assert!(
            problems.iter().all(|p| p.kind == ProblemKind::NoEnvelope),
            "{problems:#?}"
        );
        assert_eq!(p.submitter.contact_name.as_deref(), Some("JERRY"));
        let c = &p.claims[0];
        assert_eq!(
            c.billing_provider.address.as_ref().unwrap().line1,
            "1234 SEAWAY ST"
        );
        assert_eq!(c.subscriber.last_name, "SMITH");
        assert_eq!(c.subscriber.first_name.as_deref(), Some("JANE"));
        assert_eq!(c.payer.id, "999996666");
        let pat = c.patient.as_ref().unwrap();
        assert_eq!(
            (pat.first_name.as_deref(), pat.relationship.as_deref()),
            (Some("TED"), Some("19"))
        );
        assert_eq!(pat.address.as_ref().unwrap().city, "MIAMI");
        assert_eq!(c.diagnoses, ["4779", "2724"]);
        assert_eq!(
            c.rendering_provider.as_ref().unwrap().npi.as_deref(),
            Some("1999996666")
        );
        assert_eq!(c.total_charge, Some(Money::from_cents(7_904)));
        assert_eq!(c.lines[0].diagnosis_pointers, [1, 2]);
        assert_eq!(c.lines[0].units.map(|u| u.to_string()), Some("1".into()));
    }
}
