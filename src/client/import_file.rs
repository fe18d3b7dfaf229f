//! Import files as a billing team keeps them: one claim per JSON line, or CSV with one row per
//! service line (rows of one claim share `clinic_id` + `external_id` and sit together), read
//! into `ImportClaims` requests. Every claim gets a request id derived from its content, so
//! importing the same file twice creates nothing new; every problem names the file's line.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use arflow_api::claims::v1 as pb;
use arflow_api::common::v1 as common;
use serde::{Deserialize, Serialize};

use super::{parse_status, status_name};
/// A claim as it appears in import files and in `claims get` output.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimJson {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(skip_deserializing, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub clinic_id: String,
    pub external_id: String,
    pub patient: PatientJson,
    pub payer: PayerJson,
    pub rendering_provider: ProviderJson,
    pub billing_provider: ProviderJson,
    pub diagnoses: Vec<String>,
    pub service_lines: Vec<LineJson>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prior_authorization_number: String,
    /// "1" original, "7" replacement, "8" void.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub frequency: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub original_claim_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub submission_date: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_deserializing)]
    pub total_charge_cents: i64,
    #[serde(skip_deserializing)]
    pub balance_cents: i64,
    #[serde(skip_deserializing)]
    pub version: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatientJson {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    pub member_id: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayerJson {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderJson {
    pub npi: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineJson {
    pub service_date: String,
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    pub units: i32,
    pub minutes: i32,
    pub charge_cents: i64,
    pub place_of_service: String,
    pub diagnosis_pointers: Vec<i32>,
}

/// `YYYY-MM-DD` -> Date; the server checks the calendar, this only splits.
fn parse_date(s: &str, field: &str) -> anyhow::Result<Option<common::Date>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = s.trim().split('-').collect();
    let bad = || anyhow::anyhow!("{field}: {s:?} is not a YYYY-MM-DD date");
    if parts.len() != 3 {
        return Err(bad());
    }
    let n = |p: &str| p.parse::<i32>().map_err(|_| bad());
    Ok(Some(common::Date {
        year: n(parts[0])?,
        month: n(parts[1])?,
        day: n(parts[2])?,
    }))
}

fn fmt_date(d: &Option<common::Date>) -> String {
    d.as_ref()
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default()
}

fn credential_pb(s: &str) -> anyhow::Result<i32> {
    if s.trim().is_empty() {
        return Ok(0);
    }
    let name = format!(
        "PROVIDER_CREDENTIAL_{}",
        s.trim().to_ascii_uppercase().replace([' ', '-'], "_")
    );
    pb::ProviderCredential::from_str_name(&name)
        .map(|c| c as i32)
        .with_context(|| format!("unknown credential {s:?}"))
}

fn credential_name(c: i32) -> String {
    match pb::ProviderCredential::try_from(c) {
        Ok(pb::ProviderCredential::Unspecified) | Err(_) => String::new(),
        Ok(c) => c
            .as_str_name()
            .trim_start_matches("PROVIDER_CREDENTIAL_")
            .to_ascii_lowercase(),
    }
}

impl ClaimJson {
    pub fn to_pb(&self) -> anyhow::Result<pb::Claim> {
        Ok(pb::Claim {
            clinic_id: self.clinic_id.clone(),
            external_id: self.external_id.clone(),
            patient: Some(pb::Patient {
                id: self.patient.id.clone(),
                first_name: self.patient.first_name.clone(),
                last_name: self.patient.last_name.clone(),
                birth_date: parse_date(&self.patient.birth_date, "patient.birth_date")?,
                member_id: self.patient.member_id.clone(),
            }),
            payer: Some(pb::Payer {
                id: self.payer.id.clone(),
                name: self.payer.name.clone(),
            }),
            rendering_provider: Some(pb::Provider {
                npi: self.rendering_provider.npi.clone(),
                name: self.rendering_provider.name.clone(),
                credential: credential_pb(&self.rendering_provider.credential)?,
            }),
            billing_provider: Some(pb::Provider {
                npi: self.billing_provider.npi.clone(),
                name: self.billing_provider.name.clone(),
                credential: credential_pb(&self.billing_provider.credential)?,
            }),
            diagnoses: self.diagnoses.clone(),
            service_lines: self
                .service_lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    Ok(pb::ServiceLine {
                        line_number: 0,
                        service_date: parse_date(
                            &l.service_date,
                            &format!("service_lines[{i}].service_date"),
                        )?,
                        procedure_code: l.procedure_code.clone(),
                        modifiers: l.modifiers.clone(),
                        units: l.units,
                        minutes: l.minutes,
                        charge_cents: l.charge_cents,
                        place_of_service: l.place_of_service.clone(),
                        diagnosis_pointers: l.diagnosis_pointers.clone(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            prior_authorization_number: self.prior_authorization_number.clone(),
            frequency: match self.frequency.trim() {
                "" => 0,
                "1" => pb::ClaimFrequency::Original as i32,
                "7" => pb::ClaimFrequency::Replacement as i32,
                "8" => pb::ClaimFrequency::Void as i32,
                other => bail!("frequency {other:?} must be 1, 7 or 8"),
            },
            original_claim_id: self.original_claim_id.clone(),
            submission_date: parse_date(&self.submission_date, "submission_date")?,
            status: if self.status.is_empty() {
                0
            } else {
                parse_status(&self.status)? as i32
            },
            ..Default::default()
        })
    }

    pub fn from_pb(c: &pb::Claim) -> ClaimJson {
        let patient = c.patient.clone().unwrap_or_default();
        let payer = c.payer.clone().unwrap_or_default();
        let provider = |p: &Option<pb::Provider>| {
            let p = p.clone().unwrap_or_default();
            ProviderJson {
                npi: p.npi,
                name: p.name,
                credential: credential_name(p.credential),
            }
        };
        ClaimJson {
            request_id: String::new(),
            id: c.id.clone(),
            clinic_id: c.clinic_id.clone(),
            external_id: c.external_id.clone(),
            patient: PatientJson {
                id: patient.id,
                first_name: patient.first_name,
                last_name: patient.last_name,
                birth_date: fmt_date(&patient.birth_date),
                member_id: patient.member_id,
            },
            payer: PayerJson {
                id: payer.id,
                name: payer.name,
            },
            rendering_provider: provider(&c.rendering_provider),
            billing_provider: provider(&c.billing_provider),
            diagnoses: c.diagnoses.clone(),
            service_lines: c
                .service_lines
                .iter()
                .map(|l| LineJson {
                    service_date: fmt_date(&l.service_date),
                    procedure_code: l.procedure_code.clone(),
                    modifiers: l.modifiers.clone(),
                    units: l.units,
                    minutes: l.minutes,
                    charge_cents: l.charge_cents,
                    place_of_service: l.place_of_service.clone(),
                    diagnosis_pointers: l.diagnosis_pointers.clone(),
                })
                .collect(),
            prior_authorization_number: c.prior_authorization_number.clone(),
            frequency: match pb::ClaimFrequency::try_from(c.frequency) {
                Ok(pb::ClaimFrequency::Replacement) => "7".into(),
                Ok(pb::ClaimFrequency::Void) => "8".into(),
                _ => "1".into(),
            },
            original_claim_id: c.original_claim_id.clone(),
            submission_date: fmt_date(&c.submission_date),
            status: status_name(c.status),
            total_charge_cents: c.total_charge_cents,
            balance_cents: c.balance_cents,
            version: c.version,
        }
    }
}

/// One claim read from a file, with the file lines it came from.
pub struct FileClaim {
    /// 1-based line of the claim (JSON lines) or of each service line's row (CSV).
    pub lines: Vec<usize>,
    pub request: pb::ImportClaimsRequest,
}

/// A problem in the file itself, before anything is sent.
#[derive(Debug)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Reads an import file. Problems are per line; good claims are returned beside them.
pub fn read_import_file(
    path: &Path,
    format: Option<&str>,
) -> anyhow::Result<(Vec<FileClaim>, Vec<LineError>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let format = match format {
        Some(f) => f.to_ascii_lowercase(),
        None => path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("jsonl")
            .to_ascii_lowercase(),
    };
    match format.as_str() {
        "jsonl" | "ndjson" | "json" => Ok(read_jsonl(&text)),
        "csv" => read_csv(&text),
        other => bail!("unknown import format {other:?}: use jsonl or csv"),
    }
}

/// A request id derived from the claim's content: re-importing a file replays, never duplicates.
fn content_request_id(claim: &pb::Claim) -> String {
    use prost::Message as _;
    use sha2::Digest as _;
    format!(
        "import-{}",
        &hex::encode(sha2::Sha256::digest(claim.encode_to_vec()))[..32]
    )
}

fn to_request(json: &ClaimJson) -> anyhow::Result<pb::ImportClaimsRequest> {
    let claim = json.to_pb()?;
    let request_id = if json.request_id.is_empty() {
        content_request_id(&claim)
    } else {
        json.request_id.clone()
    };
    Ok(pb::ImportClaimsRequest {
        request_id,
        claim: Some(claim),
    })
}

pub fn read_jsonl(text: &str) -> (Vec<FileClaim>, Vec<LineError>) {
    let (mut claims, mut errors) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let parsed = serde_json::from_str::<ClaimJson>(raw)
            .map_err(|e| anyhow::anyhow!("not a claim object: {}", e))
            .and_then(|json| to_request(&json));
        match parsed {
            Ok(request) => claims.push(FileClaim {
                lines: vec![line],
                request,
            }),
            Err(e) => errors.push(LineError {
                line,
                message: format!("{e:#}"),
            }),
        }
    }
    (claims, errors)
}

/// CSV columns (header row required; order free). List cells use `;` between items.
pub const CSV_COLUMNS: &[&str] = &[
    "clinic_id",
    "external_id",
    "patient_id",
    "patient_first_name",
    "patient_last_name",
    "patient_birth_date",
    "member_id",
    "payer_id",
    "payer_name",
    "rendering_npi",
    "rendering_name",
    "rendering_credential",
    "billing_npi",
    "billing_name",
    "diagnoses",
    "prior_authorization_number",
    "submission_date",
    "status",
    "service_date",
    "procedure_code",
    "modifiers",
    "units",
    "minutes",
    "charge",
    "place_of_service",
    "diagnosis_pointers",
];

/// `150`, `150.5`, `150.50`, `$1,234.56` -> cents, exactly (no floating point).
pub fn parse_dollars(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches('$').replace(',', "");
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let frac_cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse::<i64>().ok()?,
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac_cents)
}

fn read_csv(text: &str) -> anyhow::Result<(Vec<FileClaim>, Vec<LineError>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().context("read the CSV header")?.clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let missing: Vec<&&str> = CSV_COLUMNS
        .iter()
        .filter(|c| !index.contains_key(**c))
        .collect();
    if !missing.is_empty() {
        bail!(
            "CSV header lacks columns: {}",
            missing.iter().map(|c| **c).collect::<Vec<_>>().join(", ")
        );
    }
    let mut groups: Vec<(Vec<usize>, ClaimJson)> = Vec::new();
    let mut errors = Vec::new();
    let mut bad_claims: Vec<(String, String)> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                errors.push(LineError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |c: &str| record.get(index[c]).unwrap_or("").to_string();
        let list = |c: &str| -> Vec<String> {
            get(c)
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let number = |c: &str| -> Result<i32, String> {
            let v = get(c);
            if v.is_empty() {
                Ok(0)
            } else {
                v.parse::<i32>()
                    .map_err(|_| format!("{c}: {v:?} is not a whole number"))
            }
        };
        let line_json = (|| -> Result<LineJson, String> {
            Ok(LineJson {
                service_date: get("service_date"),
                procedure_code: get("procedure_code"),
                modifiers: list("modifiers"),
                units: number("units")?,
                minutes: number("minutes")?,
                charge_cents: parse_dollars(&get("charge")).ok_or_else(|| {
                    format!("charge: {:?} is not an amount like 150.00", get("charge"))
                })?,
                place_of_service: get("place_of_service"),
                diagnosis_pointers: list("diagnosis_pointers")
                    .iter()
                    .map(|p| {
                        p.parse::<i32>()
                            .map_err(|_| format!("diagnosis_pointers: {p:?} is not a number"))
                    })
                    .collect::<Result<_, _>>()?,
            })
        })();
        let key = (get("clinic_id"), get("external_id"));
        let line_json = match line_json {
            Ok(l) => l,
            Err(message) => {
                errors.push(LineError { line, message });
                bad_claims.push(key);
                continue;
            }
        };
        match groups.last_mut() {
            Some((lines, claim)) if claim.clinic_id == key.0 && claim.external_id == key.1 => {
                lines.push(line);
                claim.service_lines.push(line_json);
            }
            _ => groups.push((
                vec![line],
                ClaimJson {
                    clinic_id: key.0,
                    external_id: key.1,
                    patient: PatientJson {
                        id: get("patient_id"),
                        first_name: get("patient_first_name"),
                        last_name: get("patient_last_name"),
                        birth_date: get("patient_birth_date"),
                        member_id: get("member_id"),
                    },
                    payer: PayerJson {
                        id: get("payer_id"),
                        name: get("payer_name"),
                    },
                    rendering_provider: ProviderJson {
                        npi: get("rendering_npi"),
                        name: get("rendering_name"),
                        credential: get("rendering_credential"),
                    },
                    billing_provider: ProviderJson {
                        npi: get("billing_npi"),
                        name: get("billing_name"),
                        credential: String::new(),
                    },
                    diagnoses: list("diagnoses"),
                    service_lines: vec![line_json],
                    prior_authorization_number: get("prior_authorization_number"),
                    submission_date: get("submission_date"),
                    status: get("status"),
                    ..Default::default()
                },
            )),
        }
    }
    let mut claims = Vec::new();
    for (lines, json) in groups {
        // A claim with an unreadable row is not sent half-built.
        if bad_claims
            .iter()
            .any(|(c, e)| *c == json.clinic_id && *e == json.external_id)
        {
            errors.push(LineError {
                line: lines[0],
                message: "claim skipped: another of its rows is unreadable".into(),
            });
            continue;
        }
        match to_request(&json) {
            Ok(request) => claims.push(FileClaim { lines, request }),
            Err(e) => errors.push(LineError {
                line: lines[0],
                message: format!("{e:#}"),
            }),
        }
    }
    errors.sort_by_key(|e| e.line);
    Ok((claims, errors))
}

/// The file line a server-side violation points at: the service line's own row in CSV.
pub(super) fn line_of(claim: &FileClaim, field: &str) -> usize {
    let service_line = field
        .strip_prefix("claim.service_lines[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse::<usize>().ok());
    match service_line {
        Some(i) if claim.lines.len() > 1 => claim.lines.get(i).copied().unwrap_or(claim.lines[0]),
        _ => claim.lines[0],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_exactly() {
        assert_eq!(parse_dollars("150"), Some(15000));
        assert_eq!(parse_dollars("150.5"), Some(15050));
        assert_eq!(parse_dollars("$1,234.56"), Some(123456));
        assert_eq!(parse_dollars("0.07"), Some(7));
        assert_eq!(parse_dollars("1.234"), None);
        assert_eq!(parse_dollars("-5"), None);
        assert_eq!(parse_dollars("abc"), None);
    }

    #[test]
    fn csv_groups_rows_into_claims_and_names_bad_lines() {
        let header = CSV_COLUMNS.join(",");
        let row = |pcn: &str, code: &str, charge: &str| {
            format!(
                "c1,{pcn},p1,Ann,Lee,1980-02-03,M1,87726,UHC,1234567893,Dr A,lcsw,1234567893,Clinic,F41.1,,2026-01-10,submitted,2026-01-05,{code},95,1,55,{charge},10,1"
            )
        };
        let text = format!(
            "{header}\n{}\n{}\n{}\n",
            row("A1", "90837", "150.00"),
            row("A1", "90785", "20"),
            row("B2", "90834", "x")
        );
        let (claims, errors) = read_csv(&text).unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].lines, vec![2, 3]);
        assert_eq!(
            claims[0]
                .request
                .claim
                .as_ref()
                .unwrap()
                .service_lines
                .len(),
            2
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4);
        assert!(errors[0].message.contains("charge"));
    }

    #[test]
    fn same_content_same_request_id() {
        let text = r#"{"clinic_id":"c1","external_id":"A1"}"#;
        let (a, _) = read_jsonl(text);
        let (b, _) = read_jsonl(text);
        assert_eq!(a[0].request.request_id, b[0].request.request_id);
        let (bad, errors) = read_jsonl("{\"clinic_id\": 5}\n\n{\"nope\":1}");
        assert!(bad.is_empty());
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
