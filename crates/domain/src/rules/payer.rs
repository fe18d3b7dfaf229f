//! Payer rules as data: per tenant, per payer, effective-dated
//! (docs/reference/billing-rules.md C3–C7).
//!
//! Nothing payer-specific is code. A [`PayerRules`] value holds one payer's filing limits,
//! appeal windows, prior-authorization rule, telehealth POS/modifier table, credentials,
//! disabled rule ids and coding parameters for a date range. A [`PayerRuleSet`] holds many and
//! answers [`PayerRuleSet::for_payer`] with this precedence:
//!
//! 1. the tenant's entry for the payer,
//! 2. the entry for the payer shared by every tenant (the built-in Medicare one, or a loaded one),
//! 3. the tenant's default (an entry with no `payer_id`),
//! 4. the default shared by every tenant: a loaded one while in force, else the built-in one,
//!    which always exists.
//!
//! Within one level a loaded entry beats a built-in one, and a later loaded entry beats an
//! earlier one. Both ends of an effective range are inclusive.
//!
//! # JSON
//!
//! [`PayerRuleSet::from_json`] reads `{"payers": [ ... ]}`, layered over [`PayerRuleSet::builtin`].
//! Each entry is a [`PayerRules`] in its serde form. An entry may say `"based_on": "medicare"`
//! (any payer id): it then starts from every version of that payer (the tenant's own, else a
//! shared loaded one, else the built-in one), deep-merges its own keys over each (objects merge
//! key by key, arrays and scalars replace), and keeps each version's date range cut to its own.
//! Unknown keys, unknown rule ids, bad codes and overlapping versions are errors: a typo in a
//! payer table must not silently switch a rule off.
//!
//! ```json
//! {"payers": [
//!   {"tenant_id": "acme", "payer_id": "12502", "based_on": "medicare", "name": "Novitas JL Part B"},
//!   {"tenant_id": "acme", "payer_id": "87726", "name": "UnitedHealthcare", "timely_filing_days": 90,
//!    "appeal_windows_days": [65], "corrected_claim_days": 180, "corrected_claim_clock": "from_remit_date",
//!    "prior_auth": {"after_sessions": 12, "per": {"kind": "calendar_year"}}}
//! ]}
//! ```
//!
//! TOML callers can deserialize [`PayerRules`] directly; the JSON loader is what adds
//! `based_on` and validation.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Severity, const_date, in_range, rule};
use crate::claim::Credential;
use crate::codes::{
    identifier_is_valid, normalize_modifier, normalize_procedure_code, place_of_service_is_valid,
};

/// Where a corrected claim's (frequency 7) own filing window starts
/// (docs/reference/billing-rules.md C7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectedClaimClock {
    /// From the remittance / denial notice (UHC 180 days, Cigna 90/180 days from the RA).
    #[default]
    FromRemitDate,
    /// From the first date of service (Anthem 365 days from DOS).
    FromServiceDate,
}

/// The period a session count is reset in (docs/reference/billing-rules.md C5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Period {
    /// January to December (Texas Medicaid: 30 visits per calendar year).
    #[default]
    CalendarYear,
    /// A fiscal year starting on the first of `start_month` (Montana youth Medicaid counts per
    /// state fiscal year, which starts in July).
    FiscalYear { start_month: u32 },
    /// The `days` days ending on the date of service, inclusive.
    Rolling { days: u32 },
}

impl Period {
    /// First day of the period that contains `on` (`None` for an invalid period or a date at
    /// the edge of the calendar).
    pub fn start(self, on: NaiveDate) -> Option<NaiveDate> {
        use chrono::Datelike;
        match self {
            Period::CalendarYear => NaiveDate::from_ymd_opt(on.year(), 1, 1),
            Period::FiscalYear { start_month } => {
                let year = if on.month() >= start_month {
                    on.year()
                } else {
                    on.year() - 1
                };
                NaiveDate::from_ymd_opt(year, start_month, 1)
            }
            Period::Rolling { days } => {
                on.checked_sub_days(chrono::Days::new(u64::from(days.checked_sub(1)?)))
            }
        }
    }
}

/// When the payer wants a prior authorization number on the claim
/// (docs/reference/billing-rules.md C5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorAuthRule {
    /// Codes that always need authorization.
    pub codes: Vec<String>,
    /// Sessions allowed per period without authorization; the next one needs it. `None` = no
    /// session limit.
    pub after_sessions: Option<u32>,
    /// Codes that count as a session (a date of service with any of them is one session).
    /// Empty = [`DEFAULT_SESSION_CODES`].
    pub session_codes: Vec<String>,
    pub per: Period,
}

/// Outpatient behavioral-health visit codes counted as sessions when a payer does not list its
/// own: evaluations, individual, crisis, family and group psychotherapy. Add-ons (+90785) are
/// not sessions; +90833/6/8 are, because the visit they belong to is a psychotherapy visit.
pub const DEFAULT_SESSION_CODES: &[&str] = &[
    "90791", "90792", "90832", "90833", "90834", "90836", "90837", "90838", "90839", "90846",
    "90847", "90849", "90853",
];

/// An accepted telehealth combination: this POS with this telehealth modifier (`None` = no
/// telehealth modifier). `pos` may be `*` for any POS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelehealthCombination {
    pub pos: String,
    #[serde(default)]
    pub modifier: Option<String>,
}

impl TelehealthCombination {
    fn new(pos: &str, modifier: Option<&str>) -> TelehealthCombination {
        TelehealthCombination {
            pos: pos.to_owned(),
            modifier: modifier.map(str::to_owned),
        }
    }
}

/// Medicare's in-person requirement for mental-health telehealth at home
/// (docs/reference/billing-rules.md C3): an in-person visit within `months_before_first` months
/// before the first telehealth service, then at least every `every_months` months;
/// substance-use-disorder treatment exempt. Its effective date has slipped repeatedly, so it is a
/// dated rule with an enforcement flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InPersonRequirement {
    pub enforced: bool,
    pub effective_from: Option<NaiveDate>,
    /// POS where the patient is at home.
    pub place_of_service: Vec<String>,
    pub months_before_first: u32,
    pub every_months: u32,
    /// A claim with a diagnosis starting with one of these is exempt (SUD: F10–F19).
    pub exempt_diagnosis_prefixes: Vec<String>,
}

impl Default for InPersonRequirement {
    fn default() -> InPersonRequirement {
        InPersonRequirement {
            enforced: false,
            effective_from: None,
            place_of_service: vec!["10".into()],
            months_before_first: 6,
            every_months: 12,
            exempt_diagnosis_prefixes: (10..=19).map(|n| format!("F{n}")).collect(),
        }
    }
}

/// A payer's telehealth table (docs/reference/billing-rules.md C3: "model payer, product, effective
/// date, POS and modifier as a data table, not as code").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelehealthRules {
    /// POS codes that mean telehealth: 02 (patient not at home), 10 (patient at home), CMS CR 12427.
    pub telehealth_pos: Vec<String>,
    /// Modifiers that mark a telehealth service.
    pub telehealth_modifiers: Vec<String>,
    /// 95 (synchronous audio-video).
    pub audio_video_modifier: String,
    /// 93 (audio-only).
    pub audio_only_modifier: String,
    /// The combinations this payer accepts. A telehealth line (telehealth POS or modifier)
    /// whose combination is not here is a warning.
    pub accepted: Vec<TelehealthCombination>,
    pub in_person_requirement: Option<InPersonRequirement>,
}

impl TelehealthRules {
    /// POS codes that appear in the accepted table (ignoring `*`).
    pub fn accepted_pos(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.accepted {
            if c.pos != "*" && !out.contains(&c.pos.as_str()) {
                out.push(&c.pos);
            }
        }
        out
    }

    /// Modifiers accepted with `pos` (`None` in the list = no modifier needed).
    pub fn modifiers_for_pos(&self, pos: &str) -> Vec<Option<&str>> {
        self.accepted
            .iter()
            .filter(|c| c.pos == pos || c.pos == "*")
            .map(|c| c.modifier.as_deref())
            .collect()
    }
}

impl Default for TelehealthRules {
    /// The generic table: POS 02/10 with 95 or 93. A telehealth POS without a modifier, or a
    /// telehealth modifier on another POS, is a warning.
    fn default() -> TelehealthRules {
        TelehealthRules {
            telehealth_pos: vec!["02".into(), "10".into()],
            // GT (interactive audio and video) is still used by some Medicaid plans; FQ is left
            // to its own rule (telehealth.fq_replaced_by_93).
            telehealth_modifiers: vec!["95".into(), "93".into(), "GT".into()],
            audio_video_modifier: "95".into(),
            audio_only_modifier: "93".into(),
            accepted: vec![
                TelehealthCombination::new("02", Some("95")),
                TelehealthCombination::new("10", Some("95")),
                TelehealthCombination::new("02", Some("93")),
                TelehealthCombination::new("10", Some("93")),
            ],
            in_person_requirement: None,
        }
    }
}

/// An inclusive range of five-digit procedure codes, e.g. 99202–99255.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRange {
    pub from: String,
    pub to: String,
}

impl CodeRange {
    fn new(from: &str, to: &str) -> CodeRange {
        CodeRange {
            from: from.to_owned(),
            to: to.to_owned(),
        }
    }

    /// Whether `code` is in the range (same-length codes compare like numbers).
    pub fn contains(&self, code: &str) -> bool {
        code.len() == self.from.len()
            && code.len() == self.to.len()
            && self.from.as_str() <= code
            && code <= self.to.as_str()
    }
}

/// Parameters of the coding rules a payer may change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodingParameters {
    /// Primary E/M codes that +90833/+90836/+90838 may ride on. Default: Novitas's list
    /// (99202–99255, 99304–99337, 99341–99350); BCBS IL lists the narrower 99202–99239,
    /// 99304–99316, 99341–99350 (docs/reference/billing-rules.md C2).
    pub primary_em: Vec<CodeRange>,
    /// POS where 90832–90838 may carry more than 1 unit: Medicare partial hospitalization (52),
    /// Novitas.
    pub multi_unit_pos: Vec<String>,
    /// Modifiers that mark a separate and distinct service (NCCI): 59, XE, XP, XS, XU.
    pub distinct_service_modifiers: Vec<String>,
    /// 90791/90792 per patient per day.
    pub evaluations_per_day: u32,
    /// Minimum break between evaluations (BCBS IL: 6 months); `None` = no history limit.
    pub evaluation_min_interval_months: Option<u32>,
}

impl Default for CodingParameters {
    fn default() -> CodingParameters {
        CodingParameters {
            // Novitas: 99202–99255, 99304–99337, 99341–99350 (docs/reference/billing-rules.md C2).
            primary_em: vec![
                CodeRange::new("99202", "99255"),
                CodeRange::new("99304", "99337"),
                CodeRange::new("99341", "99350"),
            ],
            multi_unit_pos: vec!["52".into()],
            distinct_service_modifiers: ["59", "XE", "XP", "XS", "XU"].map(String::from).to_vec(),
            evaluations_per_day: 1,
            evaluation_min_interval_months: None,
        }
    }
}

/// One payer's rules for a date range (optionally for one tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerRules {
    /// `None`: every tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// `None`: the default for payers without their own entry.
    #[serde(default)]
    pub payer_id: Option<String>,
    pub name: String,
    /// First date of service these rules apply to (inclusive); `None` = always.
    #[serde(default)]
    pub effective_from: Option<NaiveDate>,
    /// Last date of service these rules apply to (inclusive); `None` = open-ended.
    #[serde(default)]
    pub effective_until: Option<NaiveDate>,
    /// Initial claim filing limit in days from the first date of service.
    pub timely_filing_days: u32,
    /// When set, the limit is this many calendar months instead of `timely_filing_days`
    /// (Medicare: 12 months = one calendar year, 42 CFR 424.44; Feb 29 → Feb 28).
    #[serde(default)]
    pub timely_filing_months: Option<u32>,
    /// The corrected-claim window; `None` = no separate window (the initial timely-filing
    /// limit applies, e.g. Humana does not reset the clock).
    #[serde(default)]
    pub corrected_claim_days: Option<u32>,
    #[serde(default)]
    pub corrected_claim_clock: CorrectedClaimClock,
    /// Appeal window per level (index 0 = level 1) in days from the notice being appealed.
    #[serde(default)]
    pub appeal_windows_days: Vec<u32>,
    #[serde(default)]
    pub prior_auth: PriorAuthRule,
    #[serde(default)]
    pub telehealth: TelehealthRules,
    /// Licences the payer pays for; `None` = any.
    #[serde(default)]
    pub allowed_credentials: Option<Vec<Credential>>,
    /// Rule ids ([`super::RULES`]) this payer does not apply.
    #[serde(default)]
    pub disabled_rules: Vec<String>,
    /// Severity per rule id where this payer differs from the rule's default.
    #[serde(default)]
    pub severity_overrides: BTreeMap<String, Severity>,
    #[serde(default)]
    pub coding: CodingParameters,
    /// Where these figures come from (manual URL, contract section), for the person who
    /// reviews them.
    #[serde(default)]
    pub source: String,
}

impl PayerRules {
    /// Whether these rules apply to a service on `on`.
    pub fn in_force(&self, on: NaiveDate) -> bool {
        in_range(self.effective_from, self.effective_until, on)
    }

    /// Whether the payer switched rule `id` off.
    pub fn disables(&self, id: &str) -> bool {
        self.disabled_rules.iter().any(|r| r == id)
    }

    /// Checks the values and normalizes codes and modifiers to uppercase.
    fn validate(&mut self) -> Result<(), String> {
        for (what, id) in [("tenant_id", &self.tenant_id), ("payer_id", &self.payer_id)] {
            if let Some(id) = id
                && !identifier_is_valid(id)
            {
                return Err(format!(
                    "{what} must be 1 to 64 letters, digits, '.', '_' or '-'"
                ));
            }
        }
        if self.name.trim().is_empty() {
            return Err("name is required".into());
        }
        if let (Some(f), Some(u)) = (self.effective_from, self.effective_until)
            && f > u
        {
            return Err("effective_until is before effective_from".into());
        }
        if self.timely_filing_days == 0 {
            return Err("timely_filing_days must be at least 1".into());
        }
        if self.timely_filing_months == Some(0) {
            return Err("timely_filing_months must be at least 1".into());
        }
        if self.corrected_claim_days == Some(0) {
            return Err("corrected_claim_days must be at least 1".into());
        }
        if self.appeal_windows_days.contains(&0) {
            return Err("appeal_windows_days must all be at least 1".into());
        }
        if self.allowed_credentials.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "allowed_credentials is empty, which pays nobody; leave it out to allow any".into(),
            );
        }
        for id in self
            .disabled_rules
            .iter()
            .chain(self.severity_overrides.keys())
        {
            if rule(id).is_none() {
                return Err(format!("unknown rule id {id:?}"));
            }
        }

        let pa = &mut self.prior_auth;
        procedure_codes(&mut pa.codes, "prior_auth.codes")?;
        procedure_codes(&mut pa.session_codes, "prior_auth.session_codes")?;
        match pa.per {
            Period::FiscalYear { start_month } if !(1..=12).contains(&start_month) => {
                return Err("prior_auth.per.start_month must be 1 to 12".into());
            }
            Period::Rolling { days: 0 } => {
                return Err("prior_auth.per.days must be at least 1".into());
            }
            _ => {}
        }

        let th = &mut self.telehealth;
        pos_codes(&mut th.telehealth_pos, "telehealth.telehealth_pos")?;
        modifiers(
            &mut th.telehealth_modifiers,
            "telehealth.telehealth_modifiers",
        )?;
        for (field, m) in [
            (
                "telehealth.audio_video_modifier",
                &mut th.audio_video_modifier,
            ),
            (
                "telehealth.audio_only_modifier",
                &mut th.audio_only_modifier,
            ),
        ] {
            *m = normalize_modifier(m).ok_or_else(|| format!("{field} is not a modifier"))?;
        }
        for c in &mut th.accepted {
            if c.pos != "*" && !place_of_service_is_valid(&c.pos) {
                return Err(format!(
                    "telehealth.accepted: {:?} is not a POS code (or *)",
                    c.pos
                ));
            }
            if let Some(m) = &mut c.modifier {
                *m = normalize_modifier(m)
                    .ok_or_else(|| format!("telehealth.accepted: {m:?} is not a modifier"))?;
            }
        }
        if let Some(ip) = &mut th.in_person_requirement {
            pos_codes(
                &mut ip.place_of_service,
                "telehealth.in_person_requirement.place_of_service",
            )?;
            if ip.months_before_first == 0 || ip.every_months == 0 {
                return Err("telehealth.in_person_requirement months must be at least 1".into());
            }
            for p in &mut ip.exempt_diagnosis_prefixes {
                *p = p.trim().replace('.', "").to_ascii_uppercase();
            }
        }

        let coding = &mut self.coding;
        for r in &mut coding.primary_em {
            for c in [&mut r.from, &mut r.to] {
                *c = normalize_procedure_code(c)
                    .ok_or_else(|| format!("coding.primary_em: {c:?} is not a procedure code"))?;
            }
            if r.from > r.to {
                return Err("coding.primary_em: a range ends before it starts".into());
            }
        }
        pos_codes(&mut coding.multi_unit_pos, "coding.multi_unit_pos")?;
        modifiers(
            &mut coding.distinct_service_modifiers,
            "coding.distinct_service_modifiers",
        )?;
        if coding.evaluation_min_interval_months == Some(0) {
            return Err("coding.evaluation_min_interval_months must be at least 1".into());
        }
        Ok(())
    }
}

fn procedure_codes(codes: &mut [String], field: &str) -> Result<(), String> {
    for c in codes {
        *c = normalize_procedure_code(c)
            .ok_or_else(|| format!("{field}: {c:?} is not a procedure code"))?;
    }
    Ok(())
}

fn modifiers(mods: &mut [String], field: &str) -> Result<(), String> {
    for m in mods {
        *m = normalize_modifier(m).ok_or_else(|| format!("{field}: {m:?} is not a modifier"))?;
    }
    Ok(())
}

fn pos_codes(pos: &mut [String], field: &str) -> Result<(), String> {
    for p in pos {
        *p = p.trim().to_owned();
        if !place_of_service_is_valid(p) {
            return Err(format!("{field}: {p:?} is not a POS code"));
        }
    }
    Ok(())
}

/// Problems loading payer rules. Messages name the entry by index and the field, never data
/// from claims (there is none in a payer table).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("payer rules are not valid: {0}")]
    Json(String),
    #[error("payers[{index}]: {message}")]
    Invalid { index: usize, message: String },
}

/// Many [`PayerRules`], looked up by tenant, payer and date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayerRuleSet {
    /// Built-in entries, then loaded ones; later entries win within a precedence level.
    entries: Vec<PayerRules>,
    /// The built-in default: the answer when nothing else applies.
    fallback: PayerRules,
}

/// Payer id of the built-in Medicare fee-for-service entries. Claims carry the MAC's payer id
/// (e.g. Novitas JL 12502), so a tenant maps it with `"based_on": "medicare"`.
pub const MEDICARE: &str = "medicare";

/// MFTs and MHCs bill Medicare independently for services from this date (cms.gov, MFT/MHC
/// page; docs/reference/billing-rules.md C4). By coincidence the same day CMS ended "POS as if in
/// person + modifier 95" for telehealth, with minimal exceptions (NGS, "Telehealth Changes for 2024
/// – Modifier 95 and Place of Service Codes"), so the two Medicare versions split here.
pub const MEDICARE_MFT_MHC_FROM: NaiveDate = const_date(2024, 1, 1);

impl PayerRuleSet {
    /// The built-in defaults: Medicare fee-for-service (two versions, split at 2024-01-01) and
    /// a generic commercial default. Every figure cites its source; vendor-compiled ones say so.
    pub fn builtin() -> PayerRuleSet {
        PayerRuleSet {
            entries: vec![medicare_before_2024(), medicare_from_2024()],
            fallback: commercial_default(),
        }
    }

    /// Payer rules from JSON text (see the module docs), layered over [`PayerRuleSet::builtin`].
    pub fn from_json(text: &str) -> Result<PayerRuleSet, RulesError> {
        let mut doc: Value =
            serde_json::from_str(text).map_err(|e| RulesError::Json(e.to_string()))?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(RulesError::Json(
                "expected an object with a \"payers\" array".into(),
            ));
        };
        if let Some(k) = obj.keys().find(|k| *k != "payers") {
            return Err(RulesError::Json(format!(
                "unknown key {k:?}; expected only \"payers\""
            )));
        }
        let payers = match obj.remove("payers") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(RulesError::Json("\"payers\" must be an array".into())),
            None => Vec::new(),
        };

        let mut set = PayerRuleSet::builtin();
        let builtin_len = set.entries.len();
        for (index, entry) in payers.into_iter().enumerate() {
            let invalid = |message: String| RulesError::Invalid { index, message };
            let Value::Object(mut entry) = entry else {
                return Err(invalid("must be an object".into()));
            };
            let versions = match entry.remove("based_on") {
                None => vec![parse_entry(Value::Object(entry)).map_err(invalid)?],
                Some(Value::String(base)) => {
                    set.derive(&base, &entry, builtin_len).map_err(invalid)?
                }
                Some(_) => return Err(invalid("based_on must be a payer id".into())),
            };
            for v in versions {
                let clash = set.entries[builtin_len..].iter().any(|e| {
                    e.tenant_id == v.tenant_id
                        && e.payer_id == v.payer_id
                        && overlaps(
                            (e.effective_from, e.effective_until),
                            (v.effective_from, v.effective_until),
                        )
                });
                if clash {
                    return Err(invalid(
                        "overlaps the dates of an earlier entry for the same tenant and payer"
                            .into(),
                    ));
                }
                set.entries.push(v);
            }
        }
        Ok(set)
    }

    /// The rules for `payer_id` as `tenant_id` bills it on `on` (the first date of service):
    /// tenant + payer > payer > tenant default > shared default (loaded, else built in).
    pub fn for_payer(&self, tenant_id: &str, payer_id: &str, on: NaiveDate) -> &PayerRules {
        let levels: [(Option<&str>, Option<&str>); 4] = [
            (Some(tenant_id), Some(payer_id)),
            (None, Some(payer_id)),
            (Some(tenant_id), None),
            // A loaded default shared by every tenant replaces the built-in one.
            (None, None),
        ];
        levels
            .iter()
            .find_map(|&(t, p)| {
                self.entries.iter().rev().find(|e| {
                    e.tenant_id.as_deref() == t && e.payer_id.as_deref() == p && e.in_force(on)
                })
            })
            .unwrap_or(&self.fallback)
    }

    /// Every entry, built-in first, plus the built-in default last.
    pub fn entries(&self) -> impl Iterator<Item = &PayerRules> {
        self.entries.iter().chain(std::iter::once(&self.fallback))
    }

    /// Versions of `entry` derived from every version of payer `base`.
    fn derive(
        &self,
        base: &str,
        entry: &serde_json::Map<String, Value>,
        builtin_len: usize,
    ) -> Result<Vec<PayerRules>, String> {
        let tenant = entry.get("tenant_id").and_then(Value::as_str);
        let loaded = &self.entries[builtin_len..];
        let builtin = &self.entries[..builtin_len];
        let of = |es: &[PayerRules], t: Option<&str>| -> Vec<PayerRules> {
            es.iter()
                .filter(|e| e.payer_id.as_deref() == Some(base) && e.tenant_id.as_deref() == t)
                .cloned()
                .collect()
        };
        let mut bases = tenant.map(|t| of(loaded, Some(t))).unwrap_or_default();
        if bases.is_empty() {
            bases = of(loaded, None);
        }
        if bases.is_empty() {
            bases = of(builtin, None);
        }
        if bases.is_empty() {
            return Err(format!(
                "based_on {base:?}: no such payer among the built-in or earlier entries"
            ));
        }
        let own_from = date_key(entry, "effective_from")?;
        let own_until = date_key(entry, "effective_until")?;
        let mut out = Vec::new();
        for b in bases {
            let from = later(b.effective_from, own_from);
            let until = earlier(b.effective_until, own_until);
            if let (Some(f), Some(u)) = (from, until)
                && f > u
            {
                continue;
            }
            let mut merged = serde_json::to_value(&b).map_err(|e| e.to_string())?;
            merge(&mut merged, Value::Object(entry.clone()));
            if let Value::Object(m) = &mut merged {
                m.insert("effective_from".into(), serde_json::json!(from));
                m.insert("effective_until".into(), serde_json::json!(until));
                // An entry without a tenant stays shared even if its base was a tenant's.
                if !entry.contains_key("tenant_id") {
                    m.insert("tenant_id".into(), Value::Null);
                }
            }
            out.push(parse_entry(merged)?);
        }
        if out.is_empty() {
            return Err(format!(
                "based_on {base:?}: no version of that payer overlaps this entry's dates"
            ));
        }
        Ok(out)
    }
}

impl Default for PayerRuleSet {
    fn default() -> PayerRuleSet {
        PayerRuleSet::builtin()
    }
}

fn parse_entry(v: Value) -> Result<PayerRules, String> {
    let mut rules: PayerRules = serde_json::from_value(v).map_err(|e| e.to_string())?;
    rules.validate()?;
    Ok(rules)
}

fn date_key(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<NaiveDate>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
    }
}

fn later(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn earlier(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

type Range = (Option<NaiveDate>, Option<NaiveDate>);

fn overlaps(a: Range, b: Range) -> bool {
    let starts_before_end = |(from, _): Range, (_, until): Range| match (from, until) {
        (Some(f), Some(u)) => f <= u,
        _ => true,
    };
    starts_before_end(a, b) && starts_before_end(b, a)
}

/// Objects merge key by key; everything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Medicare fee-for-service, shared by both versions.
fn medicare_common() -> PayerRules {
    PayerRules {
        tenant_id: None,
        payer_id: Some(MEDICARE.into()),
        name: "Medicare fee-for-service (Part B)".into(),
        effective_from: None,
        effective_until: None,
        // 42 CFR 424.44: no later than 12 months (one calendar year) after the date of service;
        // a Feb 29 DOS must be filed by Feb 28 (medicare.fcso.com/node/5026;
        // cgsmedicare.com/parta/claims/timely.html). athena's "15 months to 2+ years" conflicts
        // with the regulation and is not used (docs/reference/billing-rules.md C6).
        timely_filing_days: 365,
        timely_filing_months: Some(12),
        // Part B does not take frequency-7 corrections the way commercial payers do: a clerical
        // error is fixed by a reopening within 1 year of the initial determination (42 CFR
        // 405.980(b)(1); docs/reference/billing-rules.md C7). 365 days from the RA is the
        // conservative reading of "1 year".
        corrected_claim_days: Some(365),
        corrected_claim_clock: CorrectedClaimClock::FromRemitDate,
        // Level 1 redetermination: 120 days (IOM 100-04 ch.29 §310.2, via findacode.com).
        // Level 2 QIC reconsideration: 180 days (immedicaresolutions.com/wiki/payer-medicare,
        // vendor-compiled). Levels 3–5 (ALJ, Appeals Council, judicial review): 60 days each
        // (42 CFR 405.1014, 405.1102, 405.1130; docs/reference/billing-rules.md C7). 42 CFR
        // 405.942 presumes receipt 5 days after the notice date; we count from the notice date,
        // which is 5 days conservative.
        appeal_windows_days: vec![120, 180, 60, 60, 60],
        // Traditional Medicare has no prior authorization for outpatient psychotherapy.
        prior_auth: PriorAuthRule::default(),
        telehealth: TelehealthRules::default(),
        allowed_credentials: None,
        disabled_rules: Vec::new(),
        severity_overrides: BTreeMap::new(),
        // Novitas is a Medicare contractor; its E/M list is the default.
        coding: CodingParameters::default(),
        source:
            "42 CFR 424.44; IOM 100-04 ch.29; cms.gov MFT/MHC page; NGS telehealth 2024 article"
                .into(),
    }
}

/// Licences Medicare pays for, before MFTs and MHCs joined (docs/reference/billing-rules.md C4).
/// Clinical nurse specialists are paid too but have no [`Credential`] of their own. Associates
/// (provisionally licensed) are never paid
/// (psychbillingcoach.com/incident-to-vs-supervisory-billing/).
const MEDICARE_CREDENTIALS: [Credential; 6] = [
    Credential::Psychologist,
    Credential::Lcsw,
    Credential::Psychiatrist,
    Credential::Physician,
    Credential::NursePractitioner,
    Credential::PhysicianAssistant,
];

fn medicare_before_2024() -> PayerRules {
    // Through 2023 CMS had practitioners bill the POS they would have used in person with
    // modifier 95 (NGS, "Telehealth Changes for 2024"), so a telehealth modifier on any POS is
    // accepted, as are POS 02/10 with or without a modifier.
    let tele = TelehealthRules {
        accepted: vec![
            TelehealthCombination::new("*", Some("95")),
            TelehealthCombination::new("*", Some("93")),
            TelehealthCombination::new("02", None),
            TelehealthCombination::new("10", None),
        ],
        ..TelehealthRules::default()
    };
    PayerRules {
        effective_until: MEDICARE_MFT_MHC_FROM.pred_opt(),
        allowed_credentials: Some(MEDICARE_CREDENTIALS.to_vec()),
        telehealth: tele,
        ..medicare_common()
    }
}

fn medicare_from_2024() -> PayerRules {
    let mut credentials = MEDICARE_CREDENTIALS.to_vec();
    // From 2024-01-01 MFTs and MHCs (LPC, LPCC, LMHC and similar) enroll and bill Medicare
    // independently (cms.gov MFT/MHC page). Addiction counselors who meet the MHC requirements
    // enroll as MHCs, so an LCADC is accepted here; PECOS enrollment is the real gate.
    credentials.extend([
        Credential::Lmft,
        Credential::Lpc,
        Credential::Lmhc,
        Credential::Lcadc,
    ]);
    let tele = TelehealthRules {
        // From 2024 the only Medicare telehealth POS are 02 and 10. CMS transmittal 12671 says
        // they "must be paired with the appropriate telehealth modifier (93 audio-only, 95
        // audio/video)" (compliancecosmos.org, 2024-06-10), while NGS says 95 is appropriate
        // only when the clinician is in a hospital and the patient at home, or for PT/OT/SLP.
        // The sources disagree, so both forms are accepted and neither warns.
        accepted: vec![
            TelehealthCombination::new("02", Some("95")),
            TelehealthCombination::new("10", Some("95")),
            TelehealthCombination::new("02", Some("93")),
            TelehealthCombination::new("10", Some("93")),
            TelehealthCombination::new("02", None),
            TelehealthCombination::new("10", None),
        ],
        // The in-person requirement's start has been postponed by Congress repeatedly
        // (docs/reference/billing-rules.md C3, pain point 15): configured but not enforced until a
        // tenant sets the current date and `enforced: true`.
        in_person_requirement: Some(InPersonRequirement::default()),
        ..TelehealthRules::default()
    };
    PayerRules {
        effective_from: Some(MEDICARE_MFT_MHC_FROM),
        allowed_credentials: Some(credentials),
        telehealth: tele,
        ..medicare_common()
    }
}

/// The default for any payer without its own entry. Each figure is the earliest common one, so
/// an unconfigured payer's deadlines come too early rather than too late.
fn commercial_default() -> PayerRules {
    PayerRules {
        tenant_id: None,
        payer_id: None,
        name: "Commercial default".into(),
        effective_from: None,
        effective_until: None,
        // Commercial limits vary, 90–365 days (docs/reference/billing-rules.md C6: UHC 120, Humana
        // 120, BCBS NE 180 in an old health-system table; "typical commercial 90–180" is marked
        // [guess]). 90 days is the short end.
        timely_filing_days: 90,
        timely_filing_months: None,
        // Cigna in-network: 90 days from the RA; UHC 180 from the RA (muni.health, vendor-compiled).
        corrected_claim_days: Some(90),
        corrected_claim_clock: CorrectedClaimClock::FromRemitDate,
        // Vendor-compiled (prospyrmed.com, muni.health): UHC 65 days, Aetna/Cigna/many BCBS
        // 180, Medicare Advantage 60, from the denial notice date. The default is 60 for both
        // levels so that an unconfigured payer's appeal is never scheduled past its real
        // deadline; configure each contract's own windows.
        appeal_windows_days: vec![60, 60],
        prior_auth: PriorAuthRule::default(),
        telehealth: TelehealthRules::default(),
        allowed_credentials: None,
        disabled_rules: Vec::new(),
        severity_overrides: BTreeMap::new(),
        coding: CodingParameters::default(),
        source: "billing-rules C6/C7 (vendor-compiled commercial figures; configure per contract)"
            .into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn builtin_entries_are_valid() {
        for e in PayerRuleSet::builtin().entries() {
            let mut copy = e.clone();
            copy.validate().unwrap();
            assert_eq!(&copy, e, "builtin {} is not normalized", e.name);
            // The serde form round-trips, which `based_on` relies on.
            let json = serde_json::to_value(e).unwrap();
            assert_eq!(&parse_entry(json).unwrap(), e);
        }
    }

    #[test]
    fn medicare_versions_split_at_2024() {
        let set = PayerRuleSet::builtin();
        let old = set.for_payer("t", MEDICARE, ymd(2023, 12, 31));
        let new = set.for_payer("t", MEDICARE, ymd(2024, 1, 1));
        let lmft = Credential::Lmft;
        assert!(!old.allowed_credentials.as_ref().unwrap().contains(&lmft));
        assert!(new.allowed_credentials.as_ref().unwrap().contains(&lmft));
        assert_eq!(new.appeal_windows_days[..2], [120, 180]);
        assert_eq!(new.timely_filing_months, Some(12));
        // Unknown payers get the commercial default.
        let other = set.for_payer("t", "87726", ymd(2024, 1, 1));
        assert_eq!(other.payer_id, None);
        assert_eq!(other.timely_filing_days, 90);
    }

    #[test]
    fn lookup_precedence() {
        let json = r#"{"payers": [
            {"payer_id": "87726", "name": "UHC shared", "timely_filing_days": 120},
            {"tenant_id": "acme", "payer_id": "87726", "name": "UHC acme", "timely_filing_days": 90,
             "effective_from": "2025-01-01"},
            {"tenant_id": "acme", "name": "acme default", "timely_filing_days": 180},
            {"tenant_id": "beta", "name": "beta default", "timely_filing_days": 365,
             "effective_until": "2024-12-31"}
        ]}"#;
        let set = PayerRuleSet::from_json(json).unwrap();
        let d = ymd(2025, 3, 1);
        assert_eq!(set.for_payer("acme", "87726", d).name, "UHC acme");
        // Before the tenant's own entry starts, the shared payer entry applies.
        assert_eq!(
            set.for_payer("acme", "87726", ymd(2024, 6, 1)).name,
            "UHC shared"
        );
        assert_eq!(set.for_payer("beta", "87726", d).name, "UHC shared");
        assert_eq!(set.for_payer("acme", "60054", d).name, "acme default");
        assert_eq!(
            set.for_payer("beta", "60054", ymd(2024, 6, 1)).name,
            "beta default"
        );
        // The tenant default expired: the built-in default.
        assert_eq!(set.for_payer("beta", "60054", d).name, "Commercial default");
        // A loaded shared default replaces the built-in one while in force.
        let shared = PayerRuleSet::from_json(
            r#"{"payers": [{"name": "house default", "timely_filing_days": 120, "effective_from": "2025-01-01"}]}"#,
        )
        .unwrap();
        assert_eq!(shared.for_payer("x", "60054", d).name, "house default");
        assert_eq!(
            shared.for_payer("x", "60054", ymd(2024, 6, 1)).name,
            "Commercial default"
        );
        // A shared payer entry beats a tenant default; Medicare is built in.
        assert_eq!(
            set.for_payer("acme", MEDICARE, d).payer_id.as_deref(),
            Some(MEDICARE)
        );
    }

    #[test]
    fn based_on_inherits_every_version() {
        let json = r#"{"payers": [
            {"tenant_id": "acme", "payer_id": "12502", "based_on": "medicare",
             "name": "Novitas JL", "telehealth": {"accepted": [{"pos": "02", "modifier": "95"}]}}
        ]}"#;
        let set = PayerRuleSet::from_json(json).unwrap();
        let old = set.for_payer("acme", "12502", ymd(2023, 6, 1));
        let new = set.for_payer("acme", "12502", ymd(2024, 6, 1));
        assert_eq!(old.name, "Novitas JL");
        assert_eq!(old.payer_id.as_deref(), Some("12502"));
        assert!(
            !old.allowed_credentials
                .as_ref()
                .unwrap()
                .contains(&Credential::Lpc)
        );
        assert!(
            new.allowed_credentials
                .as_ref()
                .unwrap()
                .contains(&Credential::Lpc)
        );
        assert_eq!(new.timely_filing_months, Some(12));
        // Deep merge: the accepted table is replaced, the rest of telehealth inherited.
        assert_eq!(new.telehealth.accepted.len(), 1);
        assert!(new.telehealth.in_person_requirement.is_some());
        // Another tenant is not affected.
        assert_eq!(
            set.for_payer("beta", "12502", ymd(2024, 6, 1)).name,
            "Commercial default"
        );
    }

    #[test]
    fn based_on_cuts_versions_to_the_entrys_dates() {
        let json = r#"{"payers": [
            {"payer_id": "12502", "based_on": "medicare", "effective_from": "2024-03-01"}
        ]}"#;
        let set = PayerRuleSet::from_json(json).unwrap();
        let versions: Vec<_> = set
            .entries()
            .filter(|e| e.payer_id.as_deref() == Some("12502"))
            .collect();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].effective_from, Some(ymd(2024, 3, 1)));
        assert_eq!(
            set.for_payer("t", "12502", ymd(2024, 2, 1)).name,
            "Commercial default"
        );
    }

    #[test]
    fn bad_tables_are_refused() {
        let cases = [
            ("[]", "object"),
            (r#"{"payers": [], "extra": 1}"#, "unknown key"),
            (r#"{"payers": [{"name": "x"}]}"#, "timely_filing_days"),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "timely_filling_days": 1}]}"#,
                "unknown field",
            ),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "disabled_rules": ["psychotherapy.tme_range"]}]}"#,
                "unknown rule id",
            ),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "prior_auth": {"per": {"kind": "fiscal_year", "start_month": 13}}}]}"#,
                "start_month",
            ),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "prior_auth": {"codes": ["9083"]}}]}"#,
                "procedure code",
            ),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "allowed_credentials": []}]}"#,
                "allowed_credentials",
            ),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "allowed_credentials": ["wizard"]}]}"#,
                "unknown variant",
            ),
            (
                r#"{"payers": [{"payer_id": "a b", "name": "x", "timely_filing_days": 90}]}"#,
                "payer_id",
            ),
            (
                r#"{"payers": [{"payer_id": "p", "based_on": "nobody"}]}"#,
                "no such payer",
            ),
            (
                r#"{"payers": [{"name": "x", "timely_filing_days": 90, "effective_from": "2025-01-01", "effective_until": "2024-01-01"}]}"#,
                "before",
            ),
            (
                r#"{"payers": [
                    {"payer_id": "p", "name": "x", "timely_filing_days": 90, "effective_until": "2024-12-31"},
                    {"payer_id": "p", "name": "y", "timely_filing_days": 90, "effective_from": "2024-12-31"}]}"#,
                "overlaps",
            ),
            ("{", "not valid"),
        ];
        for (json, want) in cases {
            let err = PayerRuleSet::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn codes_are_normalized_on_load() {
        let json = r#"{"payers": [{"payer_id": "p", "name": "x", "timely_filing_days": 90,
            "prior_auth": {"codes": [" h0004 "]},
            "telehealth": {"accepted": [{"pos": "02", "modifier": "gt"}]}}]}"#;
        let set = PayerRuleSet::from_json(json).unwrap();
        let p = set.for_payer("t", "p", ymd(2024, 1, 1));
        assert_eq!(p.prior_auth.codes, ["H0004"]);
        assert_eq!(p.telehealth.accepted[0].modifier.as_deref(), Some("GT"));
        assert_eq!(p.telehealth.accepted_pos(), ["02"]);
        assert_eq!(p.telehealth.modifiers_for_pos("02"), [Some("GT")]);
    }

    #[test]
    fn periods() {
        let d = ymd(2025, 3, 15);
        assert_eq!(Period::CalendarYear.start(d), Some(ymd(2025, 1, 1)));
        assert_eq!(
            Period::FiscalYear { start_month: 7 }.start(d),
            Some(ymd(2024, 7, 1))
        );
        assert_eq!(
            Period::FiscalYear { start_month: 3 }.start(d),
            Some(ymd(2025, 3, 1))
        );
        assert_eq!(Period::Rolling { days: 1 }.start(d), Some(d));
        assert_eq!(
            Period::Rolling { days: 30 }.start(d),
            Some(ymd(2025, 2, 14))
        );
        assert_eq!(Period::Rolling { days: 0 }.start(d), None);
    }

    #[test]
    fn code_ranges() {
        let r = CodeRange::new("99202", "99255");
        assert!(r.contains("99202") && r.contains("99214") && r.contains("99255"));
        assert!(!r.contains("99201") && !r.contains("99256") && !r.contains("9921"));
    }
}
