//! Denial taxonomy: CAS group + CARC (+ RARCs) → root-cause category, appealability, next
//! action, owner and the evidence an appeal needs (docs/design.md §7, docs/reference/billing-rules.md C8).
//!
//! Denials are read from the adjustment codes, not from CLP02 alone. The classification is a
//! table ([`CARC_TABLE`]) refined by RARCs ([`RARC_REFINEMENTS`]) and by the group code (PR
//! shifts non-covered services to the patient; CO keeps them with the provider). Codes not in
//! the table classify as [`DenialCategory::Other`] and count as denials, so a human looks; the
//! raw codes are always kept.
//!
//! Sources: CARC wording checked against a republished X12 CARC list
//! (docs/reference/billing-rules.md C8); RARC wording against a republished RARC list.
//! Categories and owners follow docs/reference/billing-rules.md C8 (an open-source "Denial
//! Intelligence Engine", the appealwin.app glossary, denialfixer.com). CARC 15 is absent from the
//! republished list (deactivated in favour of 284/296, as far as we can tell) but docs/design.md §7 names
//! it and older remits still carry it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Root cause of an adjustment, for routing and analytics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialCategory {
    MissingInformation,
    Eligibility,
    Authorization,
    CodingModifier,
    MedicalNecessity,
    NonCovered,
    Credentialing,
    Duplicate,
    CoordinationOfBenefits,
    TimelyFiling,
    /// Not a denial: contractual reductions (CO-45, sequestration CO-253, …).
    Contractual,
    /// Not a denial: deductible, coinsurance, copay (PR-1/2/3, …).
    PatientResponsibility,
    Other,
}

impl DenialCategory {
    pub const ALL: [DenialCategory; 13] = [
        DenialCategory::MissingInformation,
        DenialCategory::Eligibility,
        DenialCategory::Authorization,
        DenialCategory::CodingModifier,
        DenialCategory::MedicalNecessity,
        DenialCategory::NonCovered,
        DenialCategory::Credentialing,
        DenialCategory::Duplicate,
        DenialCategory::CoordinationOfBenefits,
        DenialCategory::TimelyFiling,
        DenialCategory::Contractual,
        DenialCategory::PatientResponsibility,
        DenialCategory::Other,
    ];

    /// Stable name stored in the database; never rename one.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenialCategory::MissingInformation => "missing_information",
            DenialCategory::Eligibility => "eligibility",
            DenialCategory::Authorization => "authorization",
            DenialCategory::CodingModifier => "coding_modifier",
            DenialCategory::MedicalNecessity => "medical_necessity",
            DenialCategory::NonCovered => "non_covered",
            DenialCategory::Credentialing => "credentialing",
            DenialCategory::Duplicate => "duplicate",
            DenialCategory::CoordinationOfBenefits => "coordination_of_benefits",
            DenialCategory::TimelyFiling => "timely_filing",
            DenialCategory::Contractual => "contractual",
            DenialCategory::PatientResponsibility => "patient_responsibility",
            DenialCategory::Other => "other",
        }
    }

    /// Inverse of [`DenialCategory::as_str`]; exact match only.
    pub fn parse(s: &str) -> Option<DenialCategory> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for DenialCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The next action on the adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// File an appeal with the evidence listed.
    Appeal,
    /// Fix the claim and send a corrected (frequency 7) or new claim.
    CorrectAndResubmit,
    /// Send the records / attachment the payer asked for.
    SubmitDocumentation,
    /// Ask the payer for a retro-authorization, then resubmit or appeal.
    RequestRetroAuthorization,
    /// Fix enrollment / NPI linkage, then rebill.
    FixCredentialingAndRebill,
    /// Re-verify eligibility or the claim's history, then resubmit if warranted.
    VerifyAndResubmit,
    /// Bill the right payer (primary, carve-out, other coverage).
    RebillOtherPayer,
    /// Move the balance to the patient.
    BillPatient,
    /// Write the balance off (provider liability).
    WriteOff,
    /// Not a denial: post the adjustment.
    PostAdjustment,
    /// Unknown code: a specialist reads the remit and decides.
    Review,
}

impl Resolution {
    pub const ALL: [Resolution; 11] = [
        Resolution::Appeal,
        Resolution::CorrectAndResubmit,
        Resolution::SubmitDocumentation,
        Resolution::RequestRetroAuthorization,
        Resolution::FixCredentialingAndRebill,
        Resolution::VerifyAndResubmit,
        Resolution::RebillOtherPayer,
        Resolution::BillPatient,
        Resolution::WriteOff,
        Resolution::PostAdjustment,
        Resolution::Review,
    ];

    /// Stable name stored in the database; never rename one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::Appeal => "appeal",
            Resolution::CorrectAndResubmit => "correct_and_resubmit",
            Resolution::SubmitDocumentation => "submit_documentation",
            Resolution::RequestRetroAuthorization => "request_retro_authorization",
            Resolution::FixCredentialingAndRebill => "fix_credentialing_and_rebill",
            Resolution::VerifyAndResubmit => "verify_and_resubmit",
            Resolution::RebillOtherPayer => "rebill_other_payer",
            Resolution::BillPatient => "bill_patient",
            Resolution::WriteOff => "write_off",
            Resolution::PostAdjustment => "post_adjustment",
            Resolution::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Resolution> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who works the adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Eligibility and demographics (patient access).
    FrontDesk,
    Coder,
    /// The AR specialist.
    Biller,
    /// Clinical documentation, letters of medical necessity.
    Clinician,
    AuthTeam,
    CredentialingTeam,
    /// Not a denial: auto-posted.
    PaymentPosting,
}

impl Owner {
    pub const ALL: [Owner; 7] = [
        Owner::FrontDesk,
        Owner::Coder,
        Owner::Biller,
        Owner::Clinician,
        Owner::AuthTeam,
        Owner::CredentialingTeam,
        Owner::PaymentPosting,
    ];

    /// Stable name stored in the database; never rename one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Owner::FrontDesk => "front_desk",
            Owner::Coder => "coder",
            Owner::Biller => "biller",
            Owner::Clinician => "clinician",
            Owner::AuthTeam => "auth_team",
            Owner::CredentialingTeam => "credentialing_team",
            Owner::PaymentPosting => "payment_posting",
        }
    }

    pub fn parse(s: &str) -> Option<Owner> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`classify_denial`] concludes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DenialClassification {
    pub category: DenialCategory,
    /// Whether this adjustment is a denial at all (false for CO-45, PR-1/2/3, OA-23, …).
    pub is_denial: bool,
    /// Whether an appeal is the way to fix it (false for unprocessable claims, timely filing,
    /// duplicates, non-denials; those are corrected, rebilled, billed or written off).
    pub appealable: bool,
    pub resolution: Resolution,
    pub owner: Owner,
    /// What an appeal or correction needs (for the evidence packet).
    pub evidence: Vec<&'static str>,
    /// The CARC's meaning, paraphrased (empty for an unknown code).
    pub description: &'static str,
    /// The RARC that refined the classification, if one did.
    pub refined_by: Option<String>,
    /// Raw codes, trimmed and uppercased; always kept.
    pub group: String,
    pub carc: String,
    pub rarcs: Vec<String>,
}

/// One CARC's classification.
#[derive(Clone, Copy, Debug)]
pub struct CarcRule {
    pub carc: &'static str,
    pub category: DenialCategory,
    pub is_denial: bool,
    pub appealable: bool,
    pub resolution: Resolution,
    pub owner: Owner,
    pub evidence: &'static [&'static str],
    pub description: &'static str,
}

/// A RARC that changes what its CARC means; `carc: None` applies to any CARC. Fields left
/// `None` keep the CARC's value.
#[derive(Clone, Copy, Debug)]
pub struct RarcRefinement {
    pub carc: Option<&'static str>,
    pub rarc: &'static str,
    pub category: Option<DenialCategory>,
    pub appealable: Option<bool>,
    pub resolution: Option<Resolution>,
    pub owner: Option<Owner>,
    pub evidence: Option<&'static [&'static str]>,
}

const EV_CORRECTED: &[&str] = &[
    "corrected claim (frequency 7) with the payer's claim number",
    "the missing or corrected data element named by the RARC",
];
const EV_DOCS: &[&str] = &[
    "the documentation the payer requested (progress note, treatment plan)",
    "the payer's request letter or RARC reference",
];
const EV_ELIGIBILITY: &[&str] = &[
    "eligibility response (271) or payer portal screenshot for the date of service",
    "copy of the insurance card (front and back)",
];
const EV_WRONG_PAYER: &[&str] = &[
    "the correct payer or behavioral-health carve-out (eligibility response naming it)",
    "this payer's remit showing the redirect",
];
const EV_AUTH: &[&str] = &[
    "authorization approval covering the date of service, code and units",
    "retro-authorization request and decision when none was obtained in time",
    "progress notes supporting the sessions",
];
const EV_CODING: &[&str] = &[
    "progress note with start and stop times supporting the code",
    "corrected claim (frequency 7) with the right code, modifiers or POS",
];
const EV_BUNDLING: &[&str] = &[
    "documentation that the services were separate and distinct (separate session, time, purpose)",
    "corrected claim with the distinct-service modifier (59/XE/XP/XS/XU) if missing",
];
const EV_MEDICAL_NECESSITY: &[&str] = &[
    "progress notes with start/stop times, interventions and response",
    "treatment plan with goals and diagnosis-specific functional impairment",
    "letter of medical necessity from the treating clinician",
    "the payer's level-of-care or frequency guideline and how the patient meets it",
];
const EV_BENEFIT_MAX: &[&str] = &[
    "count of sessions used this period (to check the payer's count)",
    "medical necessity letter requesting an exception or additional visits",
];
const EV_NON_COVERED: &[&str] = &[
    "plan benefit summary for behavioral health",
    "signed patient financial-responsibility notice (ABN/waiver), if any",
];
const EV_CREDENTIALING: &[&str] = &[
    "enrollment or credentialing approval with its effective date",
    "NPPES record and payer roster showing the rendering NPI linked to the group NPI (2310B vs 2010AA)",
];
const EV_DUPLICATE: &[&str] = &[
    "status and claim number of the original claim",
    "documentation of a separate session when both are distinct (modifier 59/76/XU)",
];
const EV_COB: &[&str] = &[
    "primary payer's EOB/ERA with its claim number",
    "the patient's updated coordination-of-benefits information",
];
const EV_TIMELY: &[&str] = &[
    "proof of timely submission: clearinghouse acceptance report (999/277CA) dated within the filing limit",
    "payer acknowledgement or earlier rejection showing the original submission date",
];
const EV_NONE: &[&str] = &[];

use DenialCategory as C;
use Owner as O;
use Resolution as R;

const fn carc(
    carc: &'static str,
    category: DenialCategory,
    appealable: bool,
    resolution: Resolution,
    owner: Owner,
    evidence: &'static [&'static str],
    description: &'static str,
) -> CarcRule {
    CarcRule {
        carc,
        category,
        is_denial: true,
        appealable,
        resolution,
        owner,
        evidence,
        description,
    }
}

const fn not_denial(
    carc: &'static str,
    category: DenialCategory,
    description: &'static str,
) -> CarcRule {
    CarcRule {
        carc,
        category,
        is_denial: false,
        appealable: false,
        resolution: Resolution::PostAdjustment,
        owner: Owner::PaymentPosting,
        evidence: EV_NONE,
        description,
    }
}

/// CARC → classification. Descriptions paraphrase the X12 CARC list.
pub static CARC_TABLE: &[CarcRule] = &[
    // Missing / invalid data (docs/reference/billing-rules.md C8): CO-16 and NPI codes. CO-16 is an
    // unprocessable claim: corrected claim, not an appeal (Medicare adds MA130, "no appeal
    // rights").
    carc(
        "16",
        C::MissingInformation,
        false,
        R::CorrectAndResubmit,
        O::Biller,
        EV_CORRECTED,
        "claim lacks information or has submission/billing errors",
    ),
    carc(
        "206",
        C::MissingInformation,
        false,
        R::CorrectAndResubmit,
        O::Biller,
        EV_CORRECTED,
        "NPI missing",
    ),
    carc(
        "207",
        C::MissingInformation,
        false,
        R::CorrectAndResubmit,
        O::Biller,
        EV_CORRECTED,
        "NPI invalid format",
    ),
    carc(
        "208",
        C::MissingInformation,
        false,
        R::CorrectAndResubmit,
        O::Biller,
        EV_CORRECTED,
        "NPI not matched",
    ),
    carc(
        "163",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
        "attachment referenced on the claim not received",
    ),
    carc(
        "164",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
        "attachment not received in a timely fashion",
    ),
    carc(
        "226",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
        "information requested from the provider not provided or incomplete",
    ),
    carc(
        "227",
        C::MissingInformation,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_DOCS,
        "information requested from the patient not provided or incomplete",
    ),
    carc(
        "250",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
        "wrong attachment received; the expected one is still missing",
    ),
    carc(
        "251",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
        "attachment received was incomplete or deficient",
    ),
    carc(
        "252",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
        "an attachment or other documentation is required",
    ),
    // Eligibility / coverage: patients change plans often; BH carve-outs
    // (docs/reference/billing-rules.md C5, C8).
    carc(
        "26",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "expenses incurred prior to coverage",
    ),
    carc(
        "27",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "expenses incurred after coverage terminated",
    ),
    carc(
        "31",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "patient cannot be identified as our insured",
    ),
    carc(
        "32",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "patient is not an eligible dependent",
    ),
    carc(
        "33",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "insured has no dependent coverage",
    ),
    carc(
        "140",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "patient/insured id and name do not match",
    ),
    carc(
        "177",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "patient has not met the eligibility requirements",
    ),
    carc(
        "200",
        C::Eligibility,
        false,
        R::VerifyAndResubmit,
        O::FrontDesk,
        EV_ELIGIBILITY,
        "expenses incurred during a lapse in coverage",
    ),
    carc(
        "239",
        C::Eligibility,
        false,
        R::CorrectAndResubmit,
        O::Biller,
        EV_ELIGIBILITY,
        "claim spans eligible and ineligible coverage periods; rebill separately",
    ),
    carc(
        "109",
        C::Eligibility,
        false,
        R::RebillOtherPayer,
        O::FrontDesk,
        EV_WRONG_PAYER,
        "not covered by this payer; send to the correct payer",
    ),
    carc(
        "300",
        C::Eligibility,
        false,
        R::RebillOtherPayer,
        O::FrontDesk,
        EV_WRONG_PAYER,
        "medical plan forwarded the claim to the behavioral-health plan",
    ),
    carc(
        "301",
        C::Eligibility,
        false,
        R::RebillOtherPayer,
        O::FrontDesk,
        EV_WRONG_PAYER,
        "medical plan: submit to the patient's behavioral-health plan",
    ),
    // Authorization: "the dominant BH denial" (vendor, docs/reference/billing-rules.md C8).
    carc(
        "197",
        C::Authorization,
        true,
        R::RequestRetroAuthorization,
        O::AuthTeam,
        EV_AUTH,
        "precertification/authorization/notification absent",
    ),
    carc(
        "15",
        C::Authorization,
        false,
        R::CorrectAndResubmit,
        O::AuthTeam,
        EV_AUTH,
        "authorization number missing, invalid or not for the billed service/provider",
    ),
    carc(
        "198",
        C::Authorization,
        true,
        R::RequestRetroAuthorization,
        O::AuthTeam,
        EV_AUTH,
        "precertification/authorization exceeded",
    ),
    carc(
        "210",
        C::Authorization,
        true,
        R::Appeal,
        O::AuthTeam,
        EV_AUTH,
        "authorization not received in a timely fashion",
    ),
    carc(
        "39",
        C::Authorization,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "services denied when authorization was requested",
    ),
    carc(
        "284",
        C::Authorization,
        false,
        R::CorrectAndResubmit,
        O::AuthTeam,
        EV_AUTH,
        "authorization number does not apply to the billed services",
    ),
    carc(
        "296",
        C::Authorization,
        false,
        R::CorrectAndResubmit,
        O::AuthTeam,
        EV_AUTH,
        "authorization number does not apply to the provider",
    ),
    carc(
        "287",
        C::Authorization,
        true,
        R::RequestRetroAuthorization,
        O::AuthTeam,
        EV_AUTH,
        "referral exceeded",
    ),
    carc(
        "288",
        C::Authorization,
        true,
        R::RequestRetroAuthorization,
        O::AuthTeam,
        EV_AUTH,
        "referral absent",
    ),
    // Coding / modifier: time-code mismatch, add-on without primary, telehealth modifier, POS.
    carc(
        "4",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "procedure code inconsistent with the modifier, or a required modifier is missing",
    ),
    carc(
        "5",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "procedure code inconsistent with the place of service",
    ),
    carc(
        "6",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "procedure inconsistent with the patient's age",
    ),
    carc(
        "7",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "procedure inconsistent with the patient's gender",
    ),
    carc(
        "9",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "diagnosis inconsistent with the patient's age",
    ),
    carc(
        "10",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "diagnosis inconsistent with the patient's gender",
    ),
    carc(
        "11",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "diagnosis inconsistent with the procedure",
    ),
    carc(
        "58",
        C::CodingModifier,
        true,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "inappropriate or invalid place of service",
    ),
    carc(
        "146",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "diagnosis invalid for the date of service",
    ),
    carc(
        "181",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "procedure code invalid on the date of service",
    ),
    carc(
        "182",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "modifier invalid on the date of service",
    ),
    carc(
        "189",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
        "unlisted code billed when a specific code exists",
    ),
    carc(
        "97",
        C::CodingModifier,
        true,
        R::Appeal,
        O::Coder,
        EV_BUNDLING,
        "benefit included in the payment for another service",
    ),
    carc(
        "231",
        C::CodingModifier,
        true,
        R::Appeal,
        O::Coder,
        EV_BUNDLING,
        "mutually exclusive procedures on the same day",
    ),
    carc(
        "234",
        C::CodingModifier,
        true,
        R::Appeal,
        O::Coder,
        EV_BUNDLING,
        "procedure not paid separately",
    ),
    carc(
        "236",
        C::CodingModifier,
        true,
        R::Appeal,
        O::Coder,
        EV_BUNDLING,
        "procedure/modifier combination incompatible with another on the same day (NCCI)",
    ),
    // Medical necessity / frequency: clinical appeal (docs/reference/billing-rules.md C8; 90837
    // over-utilization).
    carc(
        "50",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "not deemed a medical necessity by the payer",
    ),
    carc(
        "55",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "deemed experimental/investigational by the payer",
    ),
    carc(
        "56",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "not deemed proven to be effective by the payer",
    ),
    carc(
        "150",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "information does not support this level of service",
    ),
    carc(
        "151",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "information does not support this many services / this frequency",
    ),
    carc(
        "152",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "information does not support this length of service",
    ),
    carc(
        "167",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "diagnosis not covered",
    ),
    carc(
        "261",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "procedure inconsistent with the patient's history",
    ),
    carc(
        "272",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "coverage/program guidelines not met",
    ),
    carc(
        "273",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_MEDICAL_NECESSITY,
        "coverage/program guidelines exceeded",
    ),
    carc(
        "119",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_BENEFIT_MAX,
        "benefit maximum for this period or occurrence reached",
    ),
    carc(
        "35",
        C::MedicalNecessity,
        false,
        R::BillPatient,
        O::Biller,
        EV_BENEFIT_MAX,
        "lifetime benefit maximum reached",
    ),
    carc(
        "149",
        C::MedicalNecessity,
        false,
        R::BillPatient,
        O::Biller,
        EV_BENEFIT_MAX,
        "lifetime benefit maximum reached for this benefit category",
    ),
    carc(
        "222",
        C::MedicalNecessity,
        true,
        R::Appeal,
        O::Clinician,
        EV_BENEFIT_MAX,
        "exceeds the contracted maximum hours/days/units for this period",
    ),
    // Non-covered benefit: CO stays with the provider, PR shifts to the patient (group rule below).
    carc(
        "96",
        C::NonCovered,
        false,
        R::WriteOff,
        O::Biller,
        EV_NON_COVERED,
        "non-covered charges",
    ),
    carc(
        "204",
        C::NonCovered,
        false,
        R::WriteOff,
        O::Biller,
        EV_NON_COVERED,
        "service not covered under the patient's current benefit plan",
    ),
    carc(
        "49",
        C::NonCovered,
        false,
        R::WriteOff,
        O::Biller,
        EV_NON_COVERED,
        "routine/preventive service not covered",
    ),
    carc(
        "256",
        C::NonCovered,
        false,
        R::WriteOff,
        O::Biller,
        EV_NON_COVERED,
        "service not payable per managed care contract",
    ),
    // Credentialing: MFT/MHC before 2024-01-01 at Medicare, associates, network
    // (docs/reference/billing-rules.md C4).
    carc(
        "170",
        C::Credentialing,
        false,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "denied when performed/billed by this type of provider",
    ),
    carc(
        "171",
        C::Credentialing,
        false,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "denied for this type of provider in this type of facility",
    ),
    carc(
        "172",
        C::Credentialing,
        false,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "adjusted when performed/billed by a provider of this specialty",
    ),
    carc(
        "185",
        C::Credentialing,
        true,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "rendering provider not eligible to perform the service",
    ),
    carc(
        "8",
        C::Credentialing,
        true,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "procedure code inconsistent with the provider type/specialty (taxonomy)",
    ),
    carc(
        "B7",
        C::Credentialing,
        true,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "provider not certified/eligible to be paid for this service on this date",
    ),
    carc(
        "242",
        C::Credentialing,
        false,
        R::VerifyAndResubmit,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "services not provided by network/primary care providers",
    ),
    carc(
        "243",
        C::Credentialing,
        false,
        R::VerifyAndResubmit,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "services not authorized by network/primary care providers",
    ),
    carc(
        "279",
        C::Credentialing,
        false,
        R::VerifyAndResubmit,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "services not provided by preferred network providers",
    ),
    carc(
        "299",
        C::Credentialing,
        false,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
        "billing provider not eligible to receive payment",
    ),
    // Duplicate: sessions on the same DOS; freq 7/8 or write off
    // (docs/reference/billing-rules.md C8).
    carc(
        "18",
        C::Duplicate,
        false,
        R::VerifyAndResubmit,
        O::Biller,
        EV_DUPLICATE,
        "exact duplicate claim/service",
    ),
    // Coordination of benefits: secondary needs the primary EOB / ICN.
    carc(
        "22",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
        "may be covered by another payer per coordination of benefits",
    ),
    carc(
        "19",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
        "work-related: liability of the workers' compensation carrier",
    ),
    carc(
        "20",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
        "covered by the liability carrier",
    ),
    carc(
        "21",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
        "liability of the no-fault carrier",
    ),
    carc(
        "136",
        C::CoordinationOfBenefits,
        true,
        R::Appeal,
        O::Biller,
        EV_COB,
        "failure to follow the prior payer's coverage rules",
    ),
    // Timely filing: not appealable (not an initial determination at Medicare) except with proof
    // of timely submission (docs/reference/billing-rules.md C6, C8).
    carc(
        "29",
        C::TimelyFiling,
        false,
        R::WriteOff,
        O::Biller,
        EV_TIMELY,
        "time limit for filing has expired",
    ),
    carc(
        "286",
        C::TimelyFiling,
        false,
        R::WriteOff,
        O::Biller,
        EV_TIMELY,
        "appeal time limits not met",
    ),
    // Not denials: auto-post (docs/reference/billing-rules.md C8, "not denials").
    not_denial(
        "45",
        C::Contractual,
        "charge exceeds fee schedule/maximum allowable",
    ),
    not_denial(
        "253",
        C::Contractual,
        "sequestration: reduction in federal payment",
    ),
    not_denial(
        "59",
        C::Contractual,
        "processed under multiple or concurrent procedure rules",
    ),
    not_denial("94", C::Contractual, "processed in excess of charges"),
    not_denial("131", C::Contractual, "claim-specific negotiated discount"),
    not_denial("144", C::Contractual, "incentive adjustment"),
    not_denial(
        "24",
        C::Contractual,
        "covered under a capitation agreement/managed care plan",
    ),
    not_denial("104", C::Contractual, "managed care withholding"),
    not_denial("105", C::Contractual, "tax withholding"),
    not_denial("1", C::PatientResponsibility, "deductible"),
    not_denial("2", C::PatientResponsibility, "coinsurance"),
    not_denial("3", C::PatientResponsibility, "co-payment"),
    not_denial("66", C::PatientResponsibility, "blood deductible"),
    not_denial(
        "142",
        C::PatientResponsibility,
        "monthly Medicaid patient liability",
    ),
    not_denial(
        "187",
        C::PatientResponsibility,
        "consumer spending account payments",
    ),
    not_denial(
        "241",
        C::PatientResponsibility,
        "low income subsidy co-payment",
    ),
    not_denial(
        "100",
        C::PatientResponsibility,
        "payment made to the patient/insured",
    ),
    not_denial(
        "23",
        C::CoordinationOfBenefits,
        "impact of prior payer adjudication (secondary claim)",
    ),
];

const fn refine(
    carc: Option<&'static str>,
    rarc: &'static str,
    category: DenialCategory,
    appealable: bool,
    resolution: Resolution,
    owner: Owner,
    evidence: &'static [&'static str],
) -> RarcRefinement {
    RarcRefinement {
        carc,
        rarc,
        category: Some(category),
        appealable: Some(appealable),
        resolution: Some(resolution),
        owner: Some(owner),
        evidence: Some(evidence),
    }
}

/// RARCs that change the meaning of their CARC. Descriptions from the RARC list.
pub static RARC_REFINEMENTS: &[RarcRefinement] = &[
    // N290 "missing/incomplete/invalid rendering provider primary identifier": the rendering
    // NPI must be enrolled and linked to the group NPI (2310B vs 2010AA, Noridian); no appeal
    // rights (docs/reference/billing-rules.md C4, C8).
    refine(
        Some("16"),
        "N290",
        C::Credentialing,
        false,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
    ),
    // N288 rendering provider taxonomy.
    refine(
        Some("16"),
        "N288",
        C::Credentialing,
        false,
        R::FixCredentialingAndRebill,
        O::CredentialingTeam,
        EV_CREDENTIALING,
    ),
    // N257 billing provider primary identifier: a data fix.
    refine(
        Some("16"),
        "N257",
        C::MissingInformation,
        false,
        R::CorrectAndResubmit,
        O::Biller,
        EV_CORRECTED,
    ),
    // M51 procedure code, M76 diagnosis, M77 place of service: coding.
    refine(
        Some("16"),
        "M51",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
    ),
    refine(
        Some("16"),
        "M76",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
    ),
    refine(
        Some("16"),
        "M77",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_CODING,
    ),
    // M62 treatment authorization code, N54 claim inconsistent with authorized services.
    refine(
        Some("16"),
        "M62",
        C::Authorization,
        false,
        R::CorrectAndResubmit,
        O::AuthTeam,
        EV_AUTH,
    ),
    refine(
        Some("16"),
        "N54",
        C::Authorization,
        false,
        R::CorrectAndResubmit,
        O::AuthTeam,
        EV_AUTH,
    ),
    // MA04 secondary payment needs the primary payer's information; N4 / N479 prior payer EOB.
    refine(
        Some("16"),
        "MA04",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
    ),
    refine(
        Some("16"),
        "N4",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
    ),
    refine(
        Some("16"),
        "N479",
        C::CoordinationOfBenefits,
        false,
        R::RebillOtherPayer,
        O::Biller,
        EV_COB,
    ),
    // N29 / M127 / N706 missing documentation: send the records.
    refine(
        Some("16"),
        "N29",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
    ),
    refine(
        Some("16"),
        "M127",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
    ),
    refine(
        Some("16"),
        "N706",
        C::MissingInformation,
        false,
        R::SubmitDocumentation,
        O::Biller,
        EV_DOCS,
    ),
    // M86 "payment already made for same/similar procedure within set time frame": duplicate.
    refine(
        None,
        "M86",
        C::Duplicate,
        false,
        R::VerifyAndResubmit,
        O::Biller,
        EV_DUPLICATE,
    ),
    // M80 "not covered when performed during the same session/date as a previously processed
    // service": a same-day pair edit.
    refine(
        None,
        "M80",
        C::CodingModifier,
        true,
        R::Appeal,
        O::Coder,
        EV_BUNDLING,
    ),
    // MA130 "no appeal rights are afforded because the claim is unprocessable; submit a new
    // claim": whatever the CARC, not appealable.
    RarcRefinement {
        carc: None,
        rarc: "MA130",
        category: None,
        appealable: Some(false),
        resolution: Some(R::CorrectAndResubmit),
        owner: None,
        evidence: None,
    },
];

fn norm(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// The table row for a CARC (normalized).
pub fn carc_rule(carc: &str) -> Option<&'static CarcRule> {
    let c = norm(carc);
    CARC_TABLE.iter().find(|r| r.carc == c)
}

/// Classifies one CAS adjustment: group code (CO, PR, OA, PI; CR tolerated), CARC and the
/// RARCs that came with it (LQ in 2110, MOA/MIA at claim level). Never fails: an unknown code is
/// [`DenialCategory::Other`], counted as a denial for review, with the raw codes kept.
pub fn classify_denial(group: &str, carc: &str, rarcs: &[String]) -> DenialClassification {
    let group = norm(group);
    let code = norm(carc);
    let rarcs: Vec<String> = rarcs
        .iter()
        .map(|r| norm(r))
        .filter(|r| !r.is_empty())
        .collect();

    let mut out = match carc_rule(&code) {
        Some(r) => DenialClassification {
            category: r.category,
            is_denial: r.is_denial,
            appealable: r.appealable,
            resolution: r.resolution,
            owner: r.owner,
            evidence: r.evidence.to_vec(),
            description: r.description,
            refined_by: None,
            group: String::new(),
            carc: String::new(),
            rarcs: Vec::new(),
        },
        None => DenialClassification {
            category: DenialCategory::Other,
            is_denial: true,
            appealable: false,
            resolution: Resolution::Review,
            owner: Owner::Biller,
            evidence: Vec::new(),
            description: "",
            refined_by: None,
            group: String::new(),
            carc: String::new(),
            rarcs: Vec::new(),
        },
    };

    // RARC refinements, in the order the payer sent them; the first one that changes the
    // category wins, flag-only ones (MA130) always apply.
    if out.is_denial {
        for r in &rarcs {
            for f in RARC_REFINEMENTS
                .iter()
                .filter(|f| f.rarc == r && f.carc.is_none_or(|c| c == code))
            {
                if f.category.is_some() && out.refined_by.is_some() {
                    continue;
                }
                if let Some(c) = f.category {
                    out.category = c;
                    out.refined_by = Some(r.clone());
                }
                if let Some(a) = f.appealable {
                    out.appealable = a;
                }
                if let Some(res) = f.resolution {
                    out.resolution = res;
                }
                if let Some(o) = f.owner {
                    out.owner = o;
                }
                if let Some(e) = f.evidence {
                    out.evidence = e.to_vec();
                }
                if f.category.is_none() && out.refined_by.is_none() {
                    out.refined_by = Some(r.clone());
                }
            }
        }
    }

    // Group code: PR means the patient owes it (the payer says so, e.g. a signed ABN or a
    // non-covered benefit): PR-204 shifts to the patient (docs/reference/billing-rules.md C8); CO
    // keeps non-covered services with the provider.
    if out.is_denial && group == "PR" {
        match out.category {
            DenialCategory::NonCovered => {
                out.resolution = Resolution::BillPatient;
                out.appealable = false;
            }
            DenialCategory::MedicalNecessity => out.resolution = Resolution::BillPatient,
            _ => {}
        }
    }

    out.group = group;
    out.carc = code;
    out.rarcs = rarcs;
    out
}

/// Whether a CAS adjustment is a denial that needs follow-up, as opposed to an expected
/// reduction to post (CO-45, PR-1/2/3 deductible/coinsurance/copay, OA-23, sequestration).
/// Unknown codes count as denials so that someone looks.
///
/// The group is in the signature because the X12 pairs them, but no code in the table changes
/// between denial and non-denial with the group today: PR-204 is still a denial (to bill the
/// patient), and PR-45 / CO-45 are both contractual.
pub fn is_denial_adjustment(group: &str, carc: &str) -> bool {
    let _ = group;
    carc_rule(carc).is_none_or(|r| r.is_denial)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn c(group: &str, carc: &str, rarcs: &[&str]) -> DenialClassification {
        let rarcs: Vec<String> = rarcs.iter().map(|s| s.to_string()).collect();
        classify_denial(group, carc, &rarcs)
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut seen = HashSet::new();
        for r in CARC_TABLE {
            assert!(seen.insert(r.carc), "CARC {} listed twice", r.carc);
            assert!(!r.description.is_empty());
            if r.is_denial {
                assert!(!r.evidence.is_empty(), "CARC {} has no evidence", r.carc);
            }
        }
    }

    #[test]
    fn every_category_has_a_carc() {
        let examples = [
            (DenialCategory::MissingInformation, "CO", "16"),
            (DenialCategory::Eligibility, "CO", "27"),
            (DenialCategory::Authorization, "CO", "197"),
            (DenialCategory::Authorization, "CO", "15"),
            (DenialCategory::CodingModifier, "CO", "4"),
            (DenialCategory::CodingModifier, "CO", "11"),
            (DenialCategory::MedicalNecessity, "CO", "50"),
            (DenialCategory::NonCovered, "CO", "96"),
            (DenialCategory::NonCovered, "PR", "204"),
            (DenialCategory::Credentialing, "CO", "170"),
            (DenialCategory::Credentialing, "CO", "185"),
            (DenialCategory::Duplicate, "OA", "18"),
            (DenialCategory::CoordinationOfBenefits, "CO", "22"),
            (DenialCategory::TimelyFiling, "CO", "29"),
            (DenialCategory::Contractual, "CO", "45"),
            (DenialCategory::PatientResponsibility, "PR", "1"),
            (DenialCategory::Other, "CO", "999"),
        ];
        for (want, g, code) in examples {
            assert_eq!(c(g, code, &[]).category, want, "{g}-{code}");
        }
        let covered: HashSet<_> = examples.iter().map(|e| e.0).collect();
        for cat in DenialCategory::ALL {
            assert!(covered.contains(&cat), "{cat} has no example");
            assert_eq!(DenialCategory::parse(cat.as_str()), Some(cat));
        }
    }

    #[test]
    fn names_round_trip() {
        for r in Resolution::ALL {
            assert_eq!(Resolution::parse(r.as_str()), Some(r));
        }
        for o in Owner::ALL {
            assert_eq!(Owner::parse(o.as_str()), Some(o));
        }
        assert_eq!(DenialCategory::parse("Other"), None);
    }

    #[test]
    fn co16_with_n290_is_credentialing_without_appeal_rights() {
        let plain = c("CO", "16", &[]);
        assert_eq!(plain.category, DenialCategory::MissingInformation);
        let n290 = c("CO", "16", &["N290"]);
        assert_eq!(n290.category, DenialCategory::Credentialing);
        assert!(!n290.appealable);
        assert_eq!(n290.owner, Owner::CredentialingTeam);
        assert_eq!(n290.refined_by.as_deref(), Some("N290"));
        // The first category-changing RARC wins; the raw list is kept in order.
        let both = c("CO", "16", &["m51", " N290 "]);
        assert_eq!(both.category, DenialCategory::CodingModifier);
        assert_eq!(both.rarcs, ["M51", "N290"]);
        // N290 refines CO-16 only.
        assert_eq!(
            c("CO", "50", &["N290"]).category,
            DenialCategory::MedicalNecessity
        );
    }

    #[test]
    fn ma130_removes_appeal_rights() {
        let x = c("CO", "50", &["MA130"]);
        assert_eq!(x.category, DenialCategory::MedicalNecessity);
        assert!(!x.appealable);
        assert_eq!(x.resolution, Resolution::CorrectAndResubmit);
        assert!(c("CO", "50", &[]).appealable);
    }

    #[test]
    fn group_decides_who_pays_for_non_covered() {
        let pr = c("PR", "204", &[]);
        assert_eq!(pr.resolution, Resolution::BillPatient);
        assert!(!pr.appealable);
        let co = c("CO", "204", &[]);
        assert_eq!(co.resolution, Resolution::WriteOff);
        assert_eq!(c("PR", "50", &[]).resolution, Resolution::BillPatient);
        assert_eq!(c("CO", "50", &[]).resolution, Resolution::Appeal);
    }

    #[test]
    fn timely_filing_is_not_appealable_but_names_the_proof() {
        let x = c("CO", "29", &[]);
        assert_eq!(x.category, DenialCategory::TimelyFiling);
        assert!(!x.appealable);
        assert_eq!(x.resolution, Resolution::WriteOff);
        assert!(
            x.evidence
                .iter()
                .any(|e| e.contains("proof of timely submission"))
        );
    }

    #[test]
    fn unknown_codes_keep_the_raw_codes() {
        let x = c(" co ", "Z99", &["X1", ""]);
        assert_eq!(x.category, DenialCategory::Other);
        assert!(x.is_denial);
        assert_eq!(x.resolution, Resolution::Review);
        assert_eq!((x.group.as_str(), x.carc.as_str()), ("CO", "Z99"));
        assert_eq!(x.rarcs, ["X1"]);
    }

    #[test]
    fn denial_or_not() {
        for (g, code) in [
            ("CO", "45"),
            ("PR", "1"),
            ("PR", "2"),
            ("PR", "3"),
            ("OA", "23"),
            ("CO", "253"),
        ] {
            assert!(!is_denial_adjustment(g, code), "{g}-{code}");
            assert!(!c(g, code, &[]).is_denial);
        }
        for (g, code) in [
            ("CO", "16"),
            ("CO", "197"),
            ("CO", "29"),
            ("PR", "204"),
            ("CO", "4"),
            ("CO", "12345"),
        ] {
            assert!(is_denial_adjustment(g, code), "{g}-{code}");
        }
        // A non-denial stays one whatever RARC comes with it.
        let x = c("CO", "45", &["MA130"]);
        assert!(!x.is_denial && x.resolution == Resolution::PostAdjustment);
    }
}
