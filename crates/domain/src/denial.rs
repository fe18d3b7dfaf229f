//! Denial taxonomy: CAS group + CARC (+ RARCs) → root-cause category, appealability, next
//! action, owner and the evidence an appeal needs (docs/design.md §7, docs/reference/billing-rules.md C8).
//!
//! Denials are read from the adjustment codes, not from CLP02 alone. The classification is a
//! table ([`CARC_TABLE`]) refined by RARCs ([`RARC_REFINEMENTS`]) and by the group code (PR
//! shifts non-covered services to the patient; CO keeps them with the provider). Codes not in
//! the table classify as [`DenialCategory::Other`] and count as denials, so a human looks; the
//! raw codes are always kept.
//!
//! An adjustment is one of three things ([`is_denial_adjustment`], [`is_pending_adjustment`],
//! [`adjustment_settles`]): a denial (keeps the balance open, makes a denial row), pending
//! (OA-133: keeps the balance open, makes no denial) or a settlement (CO-45, PR-1/2/3, OA-23).
//! What arflow knows beyond the remit (proof of timely filing for CO-29) is passed in a
//! [`DenialContext`] to [`classify_denial_in`].
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
    /// Unknown code, or one whose meaning is in its RARC (CO-96 without a known RARC): a
    /// specialist reads the remit and decides.
    Review,
    /// A duplicate (CARC 18, B13, RARC M86): find the original claim and its payment; do not
    /// resubmit. A corrected claim with modifier 59/XU/76 only when the second service was
    /// separate and distinct.
    CheckOriginal,
    /// A coder reviews the codes against the documentation (CARC 167): corrected claim if
    /// miscoded, appeal if coded right.
    CodingReview,
    /// Benefit maximum reached (CO-119): count the sessions used in the benefit period against
    /// the payer's count; ask for reprocessing if the payer miscounted.
    VerifyVisitCount,
    /// Out of network (CARC 242): ask the payer for a single-case agreement (network-gap
    /// exception) covering the patient, then rebill.
    SingleCaseAgreement,
    /// The patient's behavioral-health benefit is carved out to another plan (CARC 301, CO-96
    /// with RARC N216): send the claim to the behavioral-health plan.
    RouteToBehavioralHealthPlan,
    /// The payer forwarded the claim to another payer or processor (CARC 300, B11): confirm the
    /// receiving payer has it (claim status) before anything else; rebill there only if not.
    ConfirmForwardedClaim,
    /// The payer paid the patient (CARC 100): collect that payment from the patient.
    CollectFromPatient,
    /// Not a denial: the payer pended the line (OA-133); wait for its final adjudication (a
    /// reversal and correction follows) and check its status if none comes.
    AwaitAdjudication,
}

impl Resolution {
    pub const ALL: [Resolution; 19] = [
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
        Resolution::CheckOriginal,
        Resolution::CodingReview,
        Resolution::VerifyVisitCount,
        Resolution::SingleCaseAgreement,
        Resolution::RouteToBehavioralHealthPlan,
        Resolution::ConfirmForwardedClaim,
        Resolution::CollectFromPatient,
        Resolution::AwaitAdjudication,
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
            Resolution::CheckOriginal => "check_original",
            Resolution::CodingReview => "coding_review",
            Resolution::VerifyVisitCount => "verify_visit_count",
            Resolution::SingleCaseAgreement => "single_case_agreement",
            Resolution::RouteToBehavioralHealthPlan => "route_to_behavioral_health_plan",
            Resolution::ConfirmForwardedClaim => "confirm_forwarded_claim",
            Resolution::CollectFromPatient => "collect_from_patient",
            Resolution::AwaitAdjudication => "await_adjudication",
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
    /// Whether the payer has not decided yet (OA-133, line pended for review): neither a
    /// denial nor an adjustment that settles the balance.
    pub pending: bool,
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
    /// Pended, not decided (see [`DenialClassification::pending`]).
    pub pending: bool,
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
    "status, claim number and payment of the original claim (do not resubmit the same service)",
    "only when the second service was separate and distinct: a corrected claim with modifier 59, XU or 76 and the note of the separate session",
];
const EV_DISTINCT: &[&str] = &[
    "corrected claim (frequency 7) with modifier 59 or XU on the separate and distinct service",
    "documentation that the services were separate and distinct (separate session, time, purpose)",
];
const EV_ADDON_PRIMARY: &[&str] = &[
    "the primary (qualifying) code billed with the add-on on the same claim and date (e.g. the E/M with +90833/+90836/+90838, 90839 with +90840)",
    "when the primary is on another claim: that claim's number and status",
];
const EV_CODING_REVIEW: &[&str] = &[
    "progress note and the diagnosis it documents (specificity, order of the diagnosis pointers)",
    "corrected claim (frequency 7) if miscoded; the payer's covered-diagnosis policy if coded right",
];
const EV_SCA: &[&str] = &[
    "single-case agreement (network-gap exception) covering the patient, code and dates of service",
    "why no in-network clinician was available (distance, wait time, specialty, continuity of care)",
];
const EV_FORWARDED: &[&str] = &[
    "this payer's remit saying the claim was forwarded, with its claim number",
    "claim status from the receiving payer (behavioral-health plan or processor)",
];
const EV_COLLECT: &[&str] = &[
    "this payer's remit showing the payment made to the patient/insured",
    "patient statement for the amount the patient received",
];
const EV_NON_COVERED_REVIEW: &[&str] = &[
    "the remark code (RARC) sent with CARC 96: it names why the charge is not covered",
    "plan benefit summary for behavioral health (carve-out to a behavioral-health plan?)",
    "signed patient financial-responsibility notice (ABN/waiver), if any",
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
        pending: false,
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
        pending: false,
        appealable: false,
        resolution: Resolution::PostAdjustment,
        owner: Owner::PaymentPosting,
        evidence: EV_NONE,
        description,
    }
}

/// A code that says the payer has not decided yet: no denial, and no settlement either.
const fn pended(carc: &'static str, description: &'static str) -> CarcRule {
    CarcRule {
        carc,
        category: DenialCategory::Other,
        is_denial: false,
        pending: true,
        appealable: false,
        resolution: Resolution::AwaitAdjudication,
        owner: Owner::Biller,
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
    // 300: the medical plan already forwarded the claim: confirm the behavioral-health plan
    // has it; rebilling it blind makes a duplicate. 301: send it there
    // (docs/reference/billing-rules.md C8).
    carc(
        "300",
        C::Eligibility,
        false,
        R::ConfirmForwardedClaim,
        O::Biller,
        EV_FORWARDED,
        "medical plan: benefits not available under this plan; claim forwarded to the patient's behavioral-health plan",
    ),
    carc(
        "301",
        C::Eligibility,
        false,
        R::RouteToBehavioralHealthPlan,
        O::FrontDesk,
        EV_WRONG_PAYER,
        "medical plan: benefits not available under this plan; submit to the patient's behavioral-health plan",
    ),
    carc(
        "B11",
        C::Eligibility,
        false,
        R::ConfirmForwardedClaim,
        O::Biller,
        EV_FORWARDED,
        "transferred to the proper payer/processor; not covered by this payer/processor",
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
        "302",
        C::Authorization,
        true,
        R::RequestRetroAuthorization,
        O::AuthTeam,
        EV_AUTH,
        "precertification/notification/authorization/pre-treatment time limit has expired",
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
    // 97: bundled into another service already adjudicated: a corrected claim with 59/XU
    // when the service was distinct, not an appeal (docs/reference/billing-rules.md C8).
    carc(
        "97",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_DISTINCT,
        "benefit included in the payment for another service already adjudicated",
    ),
    // B15 / 107: an add-on without its qualifying (primary) service on the claim.
    carc(
        "B15",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_ADDON_PRIMARY,
        "requires a qualifying service that has not been received/adjudicated (add-on without its primary code)",
    ),
    carc(
        "107",
        C::CodingModifier,
        false,
        R::CorrectAndResubmit,
        O::Coder,
        EV_ADDON_PRIMARY,
        "the related or qualifying claim/service was not identified on this claim (add-on without its primary code)",
    ),
    // 167 "diagnosis not covered": first a coding review of the diagnosis.
    carc(
        "167",
        C::CodingModifier,
        true,
        R::CodingReview,
        O::Coder,
        EV_CODING_REVIEW,
        "diagnosis not covered",
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
    // 119: check the payer's visit count first; PR-119 goes to the patient (group rule below).
    carc(
        "119",
        C::MedicalNecessity,
        true,
        R::VerifyVisitCount,
        O::Biller,
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
    // CARC 96 requires a RARC that says why: N216 (carve-out) goes to the behavioral-health
    // plan; without a known RARC a specialist reads it, never an automatic write-off.
    carc(
        "96",
        C::NonCovered,
        false,
        R::Review,
        O::Biller,
        EV_NON_COVERED_REVIEW,
        "non-covered charges (the RARC says why)",
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
        R::SingleCaseAgreement,
        O::CredentialingTeam,
        EV_SCA,
        "services not provided by network/primary care providers (out of network)",
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
        R::CheckOriginal,
        O::Biller,
        EV_DUPLICATE,
        "exact duplicate claim/service",
    ),
    carc(
        "B13",
        C::Duplicate,
        false,
        R::CheckOriginal,
        O::Biller,
        EV_DUPLICATE,
        "previously paid: payment may have been provided in a previous payment",
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
    // 100: the payer paid the patient. The provider is still owed that money, by the patient:
    // a denial row (so the balance stays open) whose action is to collect it.
    carc(
        "100",
        C::PatientResponsibility,
        false,
        R::CollectFromPatient,
        O::Biller,
        EV_COLLECT,
        "payment made to the patient/insured/responsible party",
    ),
    // 133: pended for review ("use only with group code OA"; a reversal and correction follow
    // when the line is finalized): neither a denial nor a settlement.
    pended(
        "133",
        "disposition of this service line pending further review",
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
        R::CheckOriginal,
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
    // N216 "patient is not enrolled in this portion of our benefit package": with CARC 96 or
    // 204, the behavioral-health benefit is carved out to another plan
    // (docs/reference/billing-rules.md C8).
    refine(
        Some("96"),
        "N216",
        C::Eligibility,
        false,
        R::RouteToBehavioralHealthPlan,
        O::FrontDesk,
        EV_WRONG_PAYER,
    ),
    refine(
        Some("204"),
        "N216",
        C::Eligibility,
        false,
        R::RouteToBehavioralHealthPlan,
        O::FrontDesk,
        EV_WRONG_PAYER,
    ),
    // N418 "misrouted claim; see the payer's claim submission instructions": the right payer.
    refine(
        Some("96"),
        "N418",
        C::Eligibility,
        false,
        R::RebillOtherPayer,
        O::FrontDesk,
        EV_WRONG_PAYER,
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

/// What arflow knows about the claim beyond the remit, for the codes whose next step depends
/// on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DenialContext {
    /// arflow holds proof that the claim was filed in time: a clearinghouse or payer
    /// acceptance (999/277CA) dated within the payer's filing limit. CO-29 is then appealed
    /// with that proof; without it, written off (docs/reference/billing-rules.md C6, C8).
    pub timely_filing_proof: bool,
}

/// Classifies one CAS adjustment: group code (CO, PR, OA, PI; CR tolerated), CARC and the
/// RARCs that came with it (LQ in 2110, MOA/MIA at claim level). Never fails: an unknown code is
/// [`DenialCategory::Other`], counted as a denial for review, with the raw codes kept.
///
/// Same as [`classify_denial_in`] with nothing known beyond the remit (no proof of timely
/// filing).
pub fn classify_denial(group: &str, carc: &str, rarcs: &[String]) -> DenialClassification {
    classify_denial_in(group, carc, rarcs, &DenialContext::default())
}

/// [`classify_denial`] with what arflow knows about the claim ([`DenialContext`]).
pub fn classify_denial_in(
    group: &str,
    carc: &str,
    rarcs: &[String],
    ctx: &DenialContext,
) -> DenialClassification {
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
            pending: r.pending,
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
            pending: false,
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
    // PR-119: the benefit maximum is the patient's to pay (docs/reference/billing-rules.md C8).
    if out.is_denial && group == "PR" {
        match out.category {
            DenialCategory::NonCovered => {
                out.resolution = Resolution::BillPatient;
                out.appealable = false;
            }
            DenialCategory::MedicalNecessity if out.resolution == Resolution::VerifyVisitCount => {
                out.resolution = Resolution::BillPatient;
                out.appealable = false;
            }
            DenialCategory::MedicalNecessity => out.resolution = Resolution::BillPatient,
            _ => {}
        }
    }

    // CO-29 with proof of timely filing is appealed with that proof; without it, written off.
    if code == "29" && ctx.timely_filing_proof && out.category == DenialCategory::TimelyFiling {
        out.appealable = true;
        out.resolution = Resolution::Appeal;
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

/// Whether a CAS adjustment says the payer has not decided yet (OA-133, "pending further
/// review"): not a denial ([`is_denial_adjustment`] is false), and not money that settles the
/// claim either. The line stays owed; posting keeps its balance open and makes no denial.
pub fn is_pending_adjustment(group: &str, carc: &str) -> bool {
    let _ = group;
    carc_rule(carc).is_some_and(|r| r.pending)
}

/// Whether a CAS adjustment settles part of the claim's balance: neither a denial nor pending
/// (CO-45, PR-1/2/3, OA-23, …).
pub fn adjustment_settles(group: &str, carc: &str) -> bool {
    !is_denial_adjustment(group, carc) && !is_pending_adjustment(group, carc)
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

    // ---- issue 10, denial taxonomy fixes (docs/reference/billing-rules.md C8) ----------------

    /// (category, appealable, resolution, owner) of one adjustment.
    fn decided(g: &str, code: &str, rarcs: &[&str]) -> (DenialCategory, bool, Resolution, Owner) {
        let x = c(g, code, rarcs);
        assert!(x.is_denial, "{g}-{code} is a denial");
        assert!(!x.pending, "{g}-{code} is not pending");
        assert!(!x.description.is_empty(), "{g}-{code} is a known code");
        assert!(!x.evidence.is_empty(), "{g}-{code} names its evidence");
        (x.category, x.appealable, x.resolution, x.owner)
    }

    #[test]
    fn duplicate_18_checks_the_original_and_is_not_resubmitted() {
        for g in ["OA", "CO"] {
            assert_eq!(
                decided(g, "18", &[]),
                (C::Duplicate, false, R::CheckOriginal, O::Biller)
            );
        }
        let x = c("OA", "18", &[]);
        assert!(x.evidence.iter().any(|e| e.contains("do not resubmit")));
        assert!(
            x.evidence
                .iter()
                .any(|e| e.contains("59") && e.contains("XU") && e.contains("76")),
            "a corrected claim with 59/XU/76 only for a distinct service: {:?}",
            x.evidence
        );
        // B13 "previously paid" and RARC M86 are the same work.
        assert_eq!(
            decided("CO", "B13", &[]),
            (C::Duplicate, false, R::CheckOriginal, O::Biller)
        );
        assert_eq!(c("CO", "50", &["M86"]).resolution, R::CheckOriginal);
    }

    #[test]
    fn timely_filing_29_is_appealed_only_with_proof() {
        // Without proof arflow holds: written off.
        assert_eq!(
            decided("CO", "29", &[]),
            (C::TimelyFiling, false, R::WriteOff, O::Biller)
        );
        let proof = DenialContext {
            timely_filing_proof: true,
        };
        let x = classify_denial_in("CO", "29", &[], &proof);
        assert_eq!(
            (x.category, x.appealable, x.resolution, x.owner),
            (C::TimelyFiling, true, R::Appeal, O::Biller)
        );
        assert!(x.evidence.iter().any(|e| e.contains("999/277CA")));
        // The proof changes nothing for other codes.
        assert_eq!(
            classify_denial_in("CO", "50", &[], &proof),
            c("CO", "50", &[])
        );
        assert_eq!(
            classify_denial_in("CO", "29", &[], &DenialContext::default()),
            c("CO", "29", &[])
        );
    }

    #[test]
    fn non_covered_96_reads_the_rarc() {
        // Default: a specialist reads it; never an automatic write-off.
        assert_eq!(
            decided("CO", "96", &[]),
            (C::NonCovered, false, R::Review, O::Biller)
        );
        assert_eq!(decided("CO", "96", &["M15"]).2, R::Review);
        // N216: the behavioral-health benefit is carved out.
        let n216 = c("CO", "96", &["N216"]);
        assert_eq!(
            (n216.category, n216.appealable, n216.resolution, n216.owner),
            (
                C::Eligibility,
                false,
                R::RouteToBehavioralHealthPlan,
                O::FrontDesk
            )
        );
        assert_eq!(n216.refined_by.as_deref(), Some("N216"));
        assert_eq!(
            c("PR", "96", &["N216"]).resolution,
            R::RouteToBehavioralHealthPlan
        );
        assert_eq!(
            c("CO", "204", &["N216"]).resolution,
            R::RouteToBehavioralHealthPlan
        );
        // N418 misrouted: the right payer.
        assert_eq!(decided("CO", "96", &["N418"]).2, R::RebillOtherPayer);
        // PR-96 without a RARC: the payer put it on the patient.
        assert_eq!(c("PR", "96", &[]).resolution, R::BillPatient);
    }

    #[test]
    fn bundled_97_is_a_corrected_claim_with_59_or_xu() {
        assert_eq!(
            decided("CO", "97", &[]),
            (C::CodingModifier, false, R::CorrectAndResubmit, O::Coder)
        );
        let x = c("CO", "97", &[]);
        assert!(
            x.evidence
                .iter()
                .any(|e| e.contains("59") && e.contains("XU"))
        );
    }

    #[test]
    fn benefit_maximum_119_verifies_the_count_and_pr_goes_to_the_patient() {
        assert_eq!(
            decided("CO", "119", &[]),
            (C::MedicalNecessity, true, R::VerifyVisitCount, O::Biller)
        );
        assert!(
            c("CO", "119", &[])
                .evidence
                .iter()
                .any(|e| e.contains("count of sessions"))
        );
        assert_eq!(
            decided("PR", "119", &[]),
            (C::MedicalNecessity, false, R::BillPatient, O::Biller)
        );
    }

    #[test]
    fn diagnosis_not_covered_167_is_a_coding_review() {
        assert_eq!(
            decided("CO", "167", &[]),
            (C::CodingModifier, true, R::CodingReview, O::Coder)
        );
    }

    #[test]
    fn out_of_network_242_asks_for_a_single_case_agreement() {
        assert_eq!(
            decided("CO", "242", &[]),
            (
                C::Credentialing,
                false,
                R::SingleCaseAgreement,
                O::CredentialingTeam
            )
        );
    }

    #[test]
    fn behavioral_health_plan_300_301_and_transferred_b11() {
        // 300: already forwarded: confirm, do not rebill blind.
        assert_eq!(
            decided("CO", "300", &[]),
            (C::Eligibility, false, R::ConfirmForwardedClaim, O::Biller)
        );
        assert!(c("CO", "300", &[]).description.contains("forwarded"));
        // 301: submit there.
        assert_eq!(
            decided("CO", "301", &[]),
            (
                C::Eligibility,
                false,
                R::RouteToBehavioralHealthPlan,
                O::FrontDesk
            )
        );
        assert_eq!(
            decided("OA", "B11", &[]),
            (C::Eligibility, false, R::ConfirmForwardedClaim, O::Biller)
        );
    }

    #[test]
    fn payment_to_the_patient_100_is_collected_from_the_patient() {
        for g in ["OA", "PR", "CO"] {
            assert_eq!(
                decided(g, "100", &[]),
                (
                    C::PatientResponsibility,
                    false,
                    R::CollectFromPatient,
                    O::Biller
                ),
                "{g}-100"
            );
            // The money is still owed (by the patient): it keeps the balance open.
            assert!(is_denial_adjustment(g, "100"));
            assert!(!adjustment_settles(g, "100"));
        }
    }

    #[test]
    fn pended_133_is_neither_a_denial_nor_settled() {
        let x = c("OA", "133", &[]);
        assert!(!x.is_denial && x.pending);
        assert!(!x.appealable);
        assert_eq!(x.resolution, R::AwaitAdjudication);
        assert!(!is_denial_adjustment("OA", "133"));
        assert!(is_pending_adjustment("OA", "133"));
        assert!(!adjustment_settles("OA", "133"));
        // A RARC does not turn it into a denial.
        let x = c("OA", "133", &["MA130"]);
        assert!(!x.is_denial && x.pending);
        // Nothing else is pending; contractual adjustments settle.
        assert!(!is_pending_adjustment("CO", "45") && adjustment_settles("CO", "45"));
        assert!(!is_pending_adjustment("CO", "16") && !adjustment_settles("CO", "16"));
        assert!(!is_pending_adjustment("CO", "Z99"));
        assert_eq!(
            CARC_TABLE.iter().filter(|r| r.pending).count(),
            1,
            "only 133"
        );
    }

    #[test]
    fn authorization_time_limit_302() {
        assert_eq!(
            decided("CO", "302", &[]),
            (
                C::Authorization,
                true,
                R::RequestRetroAuthorization,
                O::AuthTeam
            )
        );
        assert!(c("CO", "302", &[]).description.contains("time limit"));
    }

    #[test]
    fn addon_without_its_primary_b15_107() {
        for code in ["B15", "107"] {
            assert_eq!(
                decided("CO", code, &[]),
                (C::CodingModifier, false, R::CorrectAndResubmit, O::Coder),
                "{code}"
            );
            let x = c("CO", code, &[]);
            assert!(x.description.contains("add-on without its primary"));
            assert!(x.evidence.iter().any(|e| e.contains("primary")));
        }
    }

    #[test]
    fn new_resolution_names_are_stable_snake_case() {
        for (r, name) in [
            (R::CheckOriginal, "check_original"),
            (R::CodingReview, "coding_review"),
            (R::VerifyVisitCount, "verify_visit_count"),
            (R::SingleCaseAgreement, "single_case_agreement"),
            (
                R::RouteToBehavioralHealthPlan,
                "route_to_behavioral_health_plan",
            ),
            (R::ConfirmForwardedClaim, "confirm_forwarded_claim"),
            (R::CollectFromPatient, "collect_from_patient"),
            (R::AwaitAdjudication, "await_adjudication"),
        ] {
            assert_eq!(r.as_str(), name);
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(name.into())
            );
        }
        let names: HashSet<&str> = Resolution::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Resolution::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
    }
}
