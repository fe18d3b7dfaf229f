//! Claim intake: the raw input a partner sends, the validated claim the store saves, and the
//! validation between them.
//!
//! [`validate_claim`] is the "parse, don't validate" edge: the claims service maps a proto to
//! a [`ClaimInput`] field for field and gets back either a [`ValidClaim`] whose types are
//! settled (dates present, codes normalized, money in [`Money`]) or every [`FieldViolation`]
//! at once, so a partner fixes a claim in one round trip instead of one field per call.
//!
//! Conventions:
//! - Field paths are the proto field names relative to the claim (`patient.birth_date`,
//!   `service_lines[1].diagnosis_pointers[0]`), ready for `google.rpc.BadRequest`.
//! - Descriptions never contain patient data (names, birth date, member id, diagnoses, dates
//!   of service): they end up in logs, API responses and partner dashboards (docs/design.md §6).
//! - Surrounding whitespace is ignored and dropped from every text field; a field that is only
//!   whitespace is missing.
//! - Text that goes into the 837P may not contain control characters or the delimiters our
//!   X12 writer uses (`*` element, `:` component, `^` repetition, `~` segment): one stray `*`
//!   in a name would shift every later element of the segment.

use std::collections::HashMap;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::codes::{
    identifier_is_valid, normalize_icd10, normalize_modifier, normalize_procedure_code,
    npi_is_valid, place_of_service_is_valid,
};
use crate::money::Money;
use crate::status::ClaimStatus;

/// Licence of a clinician. Which ones a payer credentials (e.g. Medicare pays LMFT/LMHC only
/// from 2024-01-01, and never provisionally licensed associates) is a rule-pack question,
/// docs/reference/billing-rules.md C4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    Psychologist,
    Lcsw,
    Lpc,
    Lmft,
    Psychiatrist,
    NursePractitioner,
    Physician,
    PhysicianAssistant,
    Lmhc,
    Lcadc,
    /// Provisionally licensed (pre-licensure) clinician billing under supervision.
    Associate,
    Other,
}

impl Credential {
    pub const ALL: [Credential; 12] = [
        Credential::Psychologist,
        Credential::Lcsw,
        Credential::Lpc,
        Credential::Lmft,
        Credential::Psychiatrist,
        Credential::NursePractitioner,
        Credential::Physician,
        Credential::PhysicianAssistant,
        Credential::Lmhc,
        Credential::Lcadc,
        Credential::Associate,
        Credential::Other,
    ];

    /// Stable name stored in the database; never rename one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Credential::Psychologist => "psychologist",
            Credential::Lcsw => "lcsw",
            Credential::Lpc => "lpc",
            Credential::Lmft => "lmft",
            Credential::Psychiatrist => "psychiatrist",
            Credential::NursePractitioner => "nurse_practitioner",
            Credential::Physician => "physician",
            Credential::PhysicianAssistant => "physician_assistant",
            Credential::Lmhc => "lmhc",
            Credential::Lcadc => "lcadc",
            Credential::Associate => "associate",
            Credential::Other => "other",
        }
    }

    /// Inverse of [`Credential::as_str`]; exact match only.
    pub fn parse(s: &str) -> Option<Credential> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Claim frequency type code, 837P CLM05-3: what this submission does to earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// 1: a new claim.
    Original,
    /// 7: replaces a prior claim in full (corrected claim, docs/reference/billing-rules.md C7).
    Replacement,
    /// 8: voids a prior claim.
    Void,
}

impl Frequency {
    /// The CLM05-3 code.
    pub const fn code(self) -> char {
        match self {
            Frequency::Original => '1',
            Frequency::Replacement => '7',
            Frequency::Void => '8',
        }
    }

    pub const fn from_code(code: char) -> Option<Frequency> {
        match code {
            '1' => Some(Frequency::Original),
            '7' => Some(Frequency::Replacement),
            '8' => Some(Frequency::Void),
            _ => None,
        }
    }

    /// Whether the claim refers to an earlier one (REF*F8 in the 837P).
    pub const fn needs_original_claim(self) -> bool {
        !matches!(self, Frequency::Original)
    }
}

/// One problem with one field, as `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldViolation {
    /// Path relative to the claim, e.g. `service_lines[0].procedure_code`.
    pub field: String,
    /// What is wrong, for a biller. Never contains patient data.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[derive(Clone, Debug, Default)]
pub struct PatientInput {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: Option<NaiveDate>,
    pub member_id: String,
}

#[derive(Clone, Debug, Default)]
pub struct PayerInput {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default)]
pub struct ProviderInput {
    pub npi: String,
    pub name: String,
    pub credential: Option<Credential>,
}

#[derive(Clone, Debug, Default)]
pub struct ServiceLineInput {
    /// 0 means "number by position" (index + 1).
    pub line_number: i64,
    pub service_date: Option<NaiveDate>,
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    pub units: i64,
    pub minutes: i64,
    pub charge_cents: i64,
    pub place_of_service: String,
    pub diagnosis_pointers: Vec<i64>,
}

/// A claim as a partner sent it; nothing is checked yet.
#[derive(Clone, Debug, Default)]
pub struct ClaimInput {
    pub clinic_id: String,
    pub external_id: String,
    pub patient: PatientInput,
    pub payer: PayerInput,
    pub rendering_provider: ProviderInput,
    pub billing_provider: ProviderInput,
    pub diagnoses: Vec<String>,
    pub service_lines: Vec<ServiceLineInput>,
    /// Empty means none.
    pub prior_authorization_number: String,
    /// `None` means original.
    pub frequency: Option<Frequency>,
    pub original_claim_id: Option<String>,
    pub submission_date: Option<NaiveDate>,
    /// `None` means submitted.
    pub status: Option<ClaimStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    pub member_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Ten digits, check digit verified.
    pub npi: String,
    /// May be empty for a rendering provider.
    pub name: String,
    /// Always present for a rendering provider.
    pub credential: Option<Credential>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLine {
    /// Unique within the claim, 1-based.
    pub line_number: u32,
    pub service_date: NaiveDate,
    /// Uppercase CPT or HCPCS Level II code.
    pub procedure_code: String,
    /// Uppercase, at most four.
    pub modifiers: Vec<String>,
    pub units: u32,
    pub minutes: u32,
    pub charge: Money,
    pub place_of_service: String,
    /// 1-based indexes into [`ValidClaim::diagnoses`], one to four, distinct.
    pub diagnosis_pointers: Vec<u8>,
}

/// A claim that passed [`validate_claim`]: what the store saves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidClaim {
    pub clinic_id: String,
    pub external_id: String,
    pub patient: Patient,
    pub payer: Payer,
    pub rendering_provider: Provider,
    pub billing_provider: Provider,
    /// ICD-10-CM, uppercase without the dot (as the 837P HI segment carries them), principal
    /// first, one to twelve, distinct.
    pub diagnoses: Vec<String>,
    /// One to fifty, in the order received.
    pub service_lines: Vec<ServiceLine>,
    pub prior_authorization_number: Option<String>,
    pub frequency: Frequency,
    /// Present exactly when `frequency` is a replacement or void.
    pub original_claim_id: Option<String>,
    /// Present for a submitted claim (defaults to the day of intake), absent for a draft.
    pub submission_date: Option<NaiveDate>,
    /// Draft or submitted at intake.
    pub status: ClaimStatus,
    /// Sum of the line charges.
    pub total_charge: Money,
}

impl ValidClaim {
    /// The earliest date of service: where timely filing and (per tenant) aging start
    /// (docs/reference/billing-rules.md C6: Part B span claims use the "From" date).
    ///
    /// A claim from [`validate_claim`] always has lines; for a hand-built one without lines
    /// this returns `NaiveDate::MIN`, which makes every deadline look overdue rather than
    /// silently far away.
    pub fn first_service_date(&self) -> NaiveDate {
        self.service_lines
            .iter()
            .map(|l| l.service_date)
            .min()
            .unwrap_or(NaiveDate::MIN)
    }

    /// The latest date of service. Falls back to `NaiveDate::MIN` like
    /// [`ValidClaim::first_service_date`].
    pub fn last_service_date(&self) -> NaiveDate {
        self.service_lines
            .iter()
            .map(|l| l.service_date)
            .max()
            .unwrap_or(NaiveDate::MIN)
    }
}

/// CLM01 (patient control number) is AN 1–20 in 4010 and 1–38 in 005010X222A1; the 835 CLP01
/// echoes it back and is how a remittance finds its claim (docs/reference/x12.md §5).
pub const MAX_EXTERNAL_ID_LEN: usize = 38;
/// NM109 (member id) is AN 2–80 in 005010X222A1.
pub const MAX_MEMBER_ID_LEN: usize = 80;
/// NM103 (last or organization name) is AN 1–60 in 005010.
pub const MAX_LAST_NAME_LEN: usize = 60;
/// NM104 (first name) is AN 1–35 in 005010.
pub const MAX_FIRST_NAME_LEN: usize = 35;
/// Our own bound for ids that are not X12 elements (patient id, original claim id).
pub const MAX_ID_LEN: usize = 80;
/// REF02 of the 2300 REF*G1 (prior authorization) is AN 1–50.
pub const MAX_PRIOR_AUTH_LEN: usize = 50;
/// The 837P HI segment carries at most twelve diagnosis codes (HI01–HI12).
pub const MAX_DIAGNOSES: usize = 12;
/// The 837P 2400 loop repeats at most 50 times per claim.
pub const MAX_SERVICE_LINES: usize = 50;
/// SV101-3..SV101-6: at most four procedure modifiers.
pub const MAX_MODIFIERS: usize = 4;
/// SV107: at most four diagnosis pointers per line.
pub const MAX_DIAGNOSIS_POINTERS: usize = 4;
/// SV104 units: our sanity bound; no outpatient behavioral-health line bills 1,000 units.
pub const MAX_UNITS: i64 = 999;
/// Minutes in a day: a line covers one date of service.
pub const MAX_MINUTES: i64 = 1440;
/// The X12 delimiters our 837P writer uses: element, segment, component, repetition.
pub const X12_DELIMITERS: [char; 4] = ['*', '~', ':', '^'];

/// The earliest plausible date (birth or service); also the lower bound of the API's Date.
const EARLIEST_DATE_YEAR: i32 = 1900;

/// Checks every rule and normalizes the claim, or returns every violation found.
///
/// `today` is the intake date in the tenant's calendar (from the injected clock): dates after
/// it are in the future, and a submitted claim without a submission date gets it.
pub fn validate_claim(
    input: &ClaimInput,
    today: NaiveDate,
) -> Result<ValidClaim, Vec<FieldViolation>> {
    let mut v = Violations::default();

    let clinic_id = identifier(&mut v, "clinic_id", &input.clinic_id);
    let external_id = external_id(&mut v, &input.external_id);

    let p = &input.patient;
    let patient_id = text(&mut v, "patient.id", &p.id, Presence::Required, MAX_ID_LEN);
    let first_name = text(
        &mut v,
        "patient.first_name",
        &p.first_name,
        Presence::Required,
        MAX_FIRST_NAME_LEN,
    );
    let last_name = text(
        &mut v,
        "patient.last_name",
        &p.last_name,
        Presence::Required,
        MAX_LAST_NAME_LEN,
    );
    let birth_date = date(&mut v, "patient.birth_date", p.birth_date, today);
    let member_id = text(
        &mut v,
        "patient.member_id",
        &p.member_id,
        Presence::Required,
        MAX_MEMBER_ID_LEN,
    );

    let payer = Payer {
        id: identifier(&mut v, "payer.id", &input.payer.id),
        name: text(
            &mut v,
            "payer.name",
            &input.payer.name,
            Presence::Required,
            MAX_LAST_NAME_LEN,
        ),
    };

    // The rendering clinician's licence decides whether the payer pays at all
    // (docs/reference/billing-rules.md C4: CARC 170/185), so it is required; the billing provider
    // is an organization whose name goes into 2010AA NM103.
    let rendering_provider = provider(
        &mut v,
        "rendering_provider",
        &input.rendering_provider,
        Presence::Optional,
        Presence::Required,
    );
    let billing_provider = provider(
        &mut v,
        "billing_provider",
        &input.billing_provider,
        Presence::Required,
        Presence::Optional,
    );

    let diagnoses = diagnoses(&mut v, &input.diagnoses);
    let (service_lines, total_charge) =
        service_lines(&mut v, &input.service_lines, input.diagnoses.len(), today);

    // A birth date after a date of service is a typo in one of them; payers reject it.
    if let Some(born) = birth_date {
        let first_after_birth = input
            .service_lines
            .iter()
            .position(|l| l.service_date.is_some_and(|d| d < born));
        if let Some(i) = first_after_birth {
            v.push(
                "patient.birth_date",
                format!("is after the date of service of service_lines[{i}]"),
            );
        }
    }

    let earliest_service = input
        .service_lines
        .iter()
        .filter_map(|l| l.service_date)
        .min();
    let status = intake_status(&mut v, input.status);
    let submission_date = submission_date(
        &mut v,
        input.submission_date,
        status,
        earliest_service,
        today,
    );
    let (frequency, original_claim_id) =
        frequency(&mut v, input.frequency, input.original_claim_id.as_deref());

    let prior_authorization_number = Some(text(
        &mut v,
        "prior_authorization_number",
        &input.prior_authorization_number,
        Presence::Optional,
        MAX_PRIOR_AUTH_LEN,
    ))
    .filter(|s| !s.is_empty());

    match (v.is_empty(), birth_date, service_lines, total_charge) {
        (true, Some(birth_date), Some(service_lines), Some(total_charge)) => Ok(ValidClaim {
            clinic_id,
            external_id,
            patient: Patient {
                id: patient_id,
                first_name,
                last_name,
                birth_date,
                member_id,
            },
            payer,
            rendering_provider,
            billing_provider,
            diagnoses,
            service_lines,
            prior_authorization_number,
            frequency,
            original_claim_id,
            submission_date,
            status,
            total_charge,
        }),
        _ => Err(v.finish()),
    }
}

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn finish(mut self) -> Vec<FieldViolation> {
        // Every path that leaves a value unset also records why; this only guards against a
        // future rule forgetting to, so that a failure is never an empty list.
        if self.0.is_empty() {
            self.push("", "the claim could not be validated");
        }
        self.0
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Required,
    Optional,
}

const REQUIRED: &str = "is required";

fn has_forbidden_char(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || X12_DELIMITERS.contains(&c))
}

const FORBIDDEN_CHARS: &str = "must not contain control characters or the X12 delimiters * ~ : ^";

/// Trimmed free text. Returns the trimmed value even when it is invalid, so later rules can
/// keep checking; the caller only uses it when there are no violations.
fn text(v: &mut Violations, field: &str, raw: &str, presence: Presence, max: usize) -> String {
    let s = raw.trim();
    if s.is_empty() {
        if presence == Presence::Required {
            v.push(field, REQUIRED);
        }
    } else if s.chars().count() > max {
        v.push(field, format!("must be at most {max} characters"));
    } else if has_forbidden_char(s) {
        v.push(field, FORBIDDEN_CHARS);
    }
    s.to_owned()
}

fn identifier(v: &mut Violations, field: &str, raw: &str) -> String {
    let s = raw.trim();
    if s.is_empty() {
        v.push(field, REQUIRED);
    } else if !identifier_is_valid(s) {
        v.push(
            field,
            "must be 1 to 64 letters, digits, '.', '_' or '-' (no spaces)",
        );
    }
    s.to_owned()
}

/// CLM01: the key an 835 (CLP01) and 277CA (TRN02) use to find the claim again, so it must
/// survive the round trip through X12 unchanged: printable ASCII, no delimiters, at most 38
/// characters (005010X222A1 CLM01; docs/reference/x12.md §5).
fn external_id(v: &mut Violations, raw: &str) -> String {
    let field = "external_id";
    let s = raw.trim();
    if s.is_empty() {
        v.push(field, REQUIRED);
    } else if s.chars().count() > MAX_EXTERNAL_ID_LEN {
        v.push(
            field,
            format!(
                "must be at most {MAX_EXTERNAL_ID_LEN} characters (the 837P CLM01 patient control number limit)"
            ),
        );
    } else if !s.chars().all(|c| c.is_ascii_graphic() || c == ' ') || has_forbidden_char(s) {
        v.push(
            field,
            "must be printable ASCII without the X12 delimiters * ~ : ^",
        );
    }
    s.to_owned()
}

/// A required date that may not be in the future or before 1900.
fn date(
    v: &mut Violations,
    field: &str,
    d: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let Some(d) = d else {
        v.push(field, REQUIRED);
        return None;
    };
    if d > today {
        v.push(field, "is in the future");
    } else if d.year() < EARLIEST_DATE_YEAR {
        v.push(field, "is before 1900");
    }
    Some(d)
}

fn provider(
    v: &mut Violations,
    prefix: &str,
    p: &ProviderInput,
    name: Presence,
    credential: Presence,
) -> Provider {
    let npi_field = format!("{prefix}.npi");
    let npi = p.npi.trim();
    if npi.is_empty() {
        v.push(npi_field, REQUIRED);
    } else if !npi_is_valid(npi) {
        // CO-16 + N290 (rendering) / N257 (billing) at the payer
        // (docs/reference/billing-rules.md C8).
        v.push(
            npi_field,
            "is not a valid NPI: it must be 10 digits ending in the correct check digit",
        );
    }
    let name = text(
        v,
        &format!("{prefix}.name"),
        &p.name,
        name,
        MAX_LAST_NAME_LEN,
    );
    if credential == Presence::Required && p.credential.is_none() {
        v.push(format!("{prefix}.credential"), REQUIRED);
    }
    Provider {
        npi: npi.to_owned(),
        name,
        credential: p.credential,
    }
}

fn diagnoses(v: &mut Violations, raw: &[String]) -> Vec<String> {
    if raw.is_empty() {
        v.push("diagnoses", "at least one ICD-10-CM diagnosis is required");
    } else if raw.len() > MAX_DIAGNOSES {
        v.push(
            "diagnoses",
            format!("at most {MAX_DIAGNOSES} diagnoses fit on an 837P claim"),
        );
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, code) in raw.iter().enumerate() {
        let field = format!("diagnoses[{i}]");
        // The value is PHI: the description names the rule, never the code.
        match normalize_icd10(code) {
            None if code.trim().is_empty() => v.push(field, REQUIRED),
            None => v.push(
                field,
                "is not shaped like an ICD-10-CM code (a letter, a digit, a letter or digit, then up to 4 more after an optional dot)",
            ),
            Some(norm) => {
                if let Some(&first) = seen.get(&norm) {
                    v.push(field, format!("repeats diagnoses[{first}]"));
                } else {
                    seen.insert(norm.clone(), i);
                }
                out.push(norm);
            }
        }
    }
    out
}

/// Validates the lines; returns them (when every line could be built) and their checked total.
fn service_lines(
    v: &mut Violations,
    raw: &[ServiceLineInput],
    diagnosis_count: usize,
    today: NaiveDate,
) -> (Option<Vec<ServiceLine>>, Option<Money>) {
    if raw.is_empty() {
        v.push("service_lines", "at least one service line is required");
    } else if raw.len() > MAX_SERVICE_LINES {
        v.push(
            "service_lines",
            format!("at most {MAX_SERVICE_LINES} service lines fit on an 837P claim"),
        );
    }

    let numbers = line_numbers(v, raw);
    // Pointers beyond the twelfth diagnosis cannot be sent even when more were given.
    let pointable = diagnosis_count.min(MAX_DIAGNOSES);
    let mut total = Some(Money::ZERO);
    let mut lines = Some(Vec::with_capacity(raw.len()));
    for (i, (line, number)) in raw.iter().zip(numbers).enumerate() {
        let built = service_line(v, i, line, number, pointable, today);
        if let Some(charge) = built.as_ref().map(|l| l.charge) {
            let sum = total.and_then(|t| t.checked_add(charge));
            if total.is_some() && sum.is_none() {
                v.push(
                    format!("service_lines[{i}].charge_cents"),
                    "makes the claim total larger than can be recorded",
                );
            }
            total = sum;
        }
        match (built, lines.as_mut()) {
            (Some(l), Some(ls)) => ls.push(l),
            _ => lines = None,
        }
    }
    (lines, total)
}

/// Final line numbers (explicit or position + 1), `None` where the given number is invalid.
fn line_numbers(v: &mut Violations, raw: &[ServiceLineInput]) -> Vec<Option<u32>> {
    let mut used: HashMap<u32, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, line) in raw.iter().enumerate() {
        let field = format!("service_lines[{i}].line_number");
        let assigned = line.line_number == 0;
        let n = if assigned {
            u32::try_from(i + 1).ok()
        } else {
            u32::try_from(line.line_number).ok().filter(|&n| n > 0)
        };
        let Some(n) = n else {
            v.push(
                field,
                "must be a positive number (or 0 to number the line by its position)",
            );
            out.push(None);
            continue;
        };
        if let Some(&first) = used.get(&n) {
            let how = if assigned {
                " (assigned from its position; number every line or none)"
            } else {
                ""
            };
            v.push(
                field,
                format!("line number {n}{how} is already used by service_lines[{first}]"),
            );
        } else {
            used.insert(n, i);
        }
        out.push(Some(n));
    }
    out
}

fn service_line(
    v: &mut Violations,
    i: usize,
    line: &ServiceLineInput,
    number: Option<u32>,
    pointable: usize,
    today: NaiveDate,
) -> Option<ServiceLine> {
    let f = |name: &str| format!("service_lines[{i}].{name}");

    let service_date = date(v, &f("service_date"), line.service_date, today);

    let procedure_code = normalize_procedure_code(&line.procedure_code);
    if procedure_code.is_none() {
        if line.procedure_code.trim().is_empty() {
            v.push(f("procedure_code"), REQUIRED);
        } else {
            v.push(
                f("procedure_code"),
                "must be a CPT code (5 digits, or 4 digits then F or T) or a HCPCS Level II code (a letter A-V then 4 digits)",
            );
        }
    }

    if line.modifiers.len() > MAX_MODIFIERS {
        v.push(
            f("modifiers"),
            format!("at most {MAX_MODIFIERS} modifiers fit on an 837P service line"),
        );
    }
    let mut modifiers = Vec::with_capacity(line.modifiers.len());
    for (j, m) in line.modifiers.iter().enumerate() {
        let field = format!("service_lines[{i}].modifiers[{j}]");
        match normalize_modifier(m) {
            None => v.push(field, "must be 2 letters or digits, e.g. 95 or HJ"),
            Some(m) => {
                // A repeated modifier is a scrubber reject (CO-4 at the payer,
                // docs/reference/billing-rules.md C8).
                if let Some(k) = modifiers.iter().position(|x| *x == m) {
                    v.push(field, format!("repeats modifiers[{k}]"));
                }
                modifiers.push(m);
            }
        }
    }

    let units = u32::try_from(line.units)
        .ok()
        .filter(|u| (1..=MAX_UNITS).contains(&i64::from(*u)));
    if units.is_none() {
        v.push(f("units"), format!("must be between 1 and {MAX_UNITS}"));
    }

    let minutes = u32::try_from(line.minutes)
        .ok()
        .filter(|m| i64::from(*m) <= MAX_MINUTES);
    if minutes.is_none() {
        v.push(f("minutes"), format!("must be between 0 and {MAX_MINUTES}"));
    }

    // Credits belong on remittances (adjustments), never on the billed charge.
    let charge = (line.charge_cents >= 0).then(|| Money::from_cents(line.charge_cents));
    if charge.is_none() {
        v.push(f("charge_cents"), "must not be negative");
    }

    let pos = line.place_of_service.trim();
    if pos.is_empty() {
        v.push(f("place_of_service"), REQUIRED);
    } else if !place_of_service_is_valid(pos) {
        v.push(
            f("place_of_service"),
            "must be a two-digit CMS place of service code, 01 to 99 (e.g. 11 office, 02 or 10 telehealth)",
        );
    }

    let diagnosis_pointers = pointers(v, i, &line.diagnosis_pointers, pointable);

    Some(ServiceLine {
        line_number: number?,
        service_date: service_date?,
        procedure_code: procedure_code?,
        modifiers,
        units: units?,
        minutes: minutes?,
        charge: charge?,
        place_of_service: pos.to_owned(),
        diagnosis_pointers,
    })
}

/// SV107: one to four distinct 1-based pointers into the claim's diagnoses.
fn pointers(v: &mut Violations, i: usize, raw: &[i64], pointable: usize) -> Vec<u8> {
    let field = format!("service_lines[{i}].diagnosis_pointers");
    if raw.is_empty() {
        v.push(
            &field,
            "at least one diagnosis pointer is required (1 for the first diagnosis)",
        );
    } else if raw.len() > MAX_DIAGNOSIS_POINTERS {
        v.push(
            &field,
            format!(
                "at most {MAX_DIAGNOSIS_POINTERS} diagnosis pointers fit on an 837P service line"
            ),
        );
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for (j, &p) in raw.iter().enumerate() {
        let pf = format!("{field}[{j}]");
        let ok = u8::try_from(p)
            .ok()
            .filter(|&n| n >= 1 && usize::from(n) <= pointable);
        match ok {
            None => v.push(
                pf,
                format!("must point to a diagnosis on the claim: 1 to {pointable}"),
            ),
            Some(n) => {
                if let Some(k) = out.iter().position(|&x| x == n) {
                    v.push(pf, format!("repeats diagnosis_pointers[{k}]"));
                }
                out.push(n);
            }
        }
    }
    out
}

/// A claim enters the system as a draft or as sent; every later status comes from the payer's
/// answers or a specialist through the state machine.
fn intake_status(v: &mut Violations, status: Option<ClaimStatus>) -> ClaimStatus {
    match status {
        None | Some(ClaimStatus::Submitted) => ClaimStatus::Submitted,
        Some(ClaimStatus::Draft) => ClaimStatus::Draft,
        Some(other) => {
            v.push(
                "status",
                format!(
                    "a new claim must be draft or submitted, not {other}; later statuses come from payer responses"
                ),
            );
            other
        }
    }
}

/// Aging (30/60/90 days) counts from the submission date (docs/design.md §4), so it must be real:
/// not in the future, not before the service it bills, and absent for a draft that has not
/// been sent.
fn submission_date(
    v: &mut Violations,
    given: Option<NaiveDate>,
    status: ClaimStatus,
    earliest_service: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let field = "submission_date";
    let Some(d) = given else {
        return (status == ClaimStatus::Submitted).then_some(today);
    };
    if status == ClaimStatus::Draft {
        v.push(
            field,
            "must be empty for a draft: a draft has not been sent to the payer",
        );
    }
    if d > today {
        v.push(field, "is in the future");
    } else if earliest_service.is_some_and(|s| d < s) {
        v.push(field, "is before the earliest date of service");
    }
    Some(d)
}

/// CLM05-3 and REF*F8: a replacement or void must name the claim it acts on, and an original
/// must not (a stray reference makes payers treat an original as a correction).
fn frequency(
    v: &mut Violations,
    given: Option<Frequency>,
    original: Option<&str>,
) -> (Frequency, Option<String>) {
    let field = "original_claim_id";
    let frequency = given.unwrap_or(Frequency::Original);
    let original = original
        .map(|s| text(v, field, s, Presence::Optional, MAX_ID_LEN))
        .filter(|s| !s.is_empty());
    match (frequency, &original) {
        (Frequency::Replacement | Frequency::Void, None) => v.push(
            field,
            format!(
                "is required for a replacement (frequency 7) or void (frequency 8) claim; this claim has frequency {}",
                frequency.code()
            ),
        ),
        (Frequency::Original, Some(_)) => v.push(
            field,
            "must be empty for an original claim (frequency 1); use frequency 7 to replace or 8 to void",
        ),
        _ => {}
    }
    (frequency, original)
}

#[cfg(test)]
mod tests;
