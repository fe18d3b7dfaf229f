//! `arflow claims …`: what a billing team does by hand, over the same gRPC API partners use.
//!
//! Import files hold one claim per JSON line, or CSV with one row per service line (rows of
//! one claim share `clinic_id` + `external_id` and sit together). Every claim gets a request id
//! derived from its content, so importing the same file twice creates nothing new. Errors name
//! the file's line.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_client::ClaimsServiceClient;
use arflow_api::common::v1 as common;
use clap::{Args as ClapArgs, Subcommand};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(ClapArgs, Debug)]
pub struct Connection {
    /// arflow gRPC address.
    #[arg(
        long,
        env = "ARFLOW_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub addr: String,
    /// API key (printed by `arflow serve` in embedded mode, or `arflow keys create`).
    #[arg(long, env = "ARFLOW_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ClaimsCommand {
    /// Imports claims from a JSON-lines or CSV file, with a per-line error report.
    Import {
        file: PathBuf,
        /// jsonl or csv; default: from the file extension.
        #[arg(long)]
        format: Option<String>,
    },
    /// Prints one claim as JSON.
    Get { claim_id: String },
    /// Lists claims, newest first.
    List {
        #[arg(long)]
        clinic: Option<String>,
        #[arg(long)]
        payer: Option<String>,
        /// e.g. submitted, denied, partially_paid.
        #[arg(long)]
        status: Option<String>,
        /// Only claims with at least this balance, in cents.
        #[arg(long)]
        min_balance_cents: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Moves a claim to a new status.
    SetStatus {
        claim_id: String,
        status: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum EraCommand {
    /// Posts an 835 file: payments, adjustments, denials, reversals; prints what moved.
    Import { file: PathBuf },
}

type Client = ClaimsServiceClient<InterceptedService<Channel, Auth>>;

pub async fn run_era(conn: &Connection, command: &EraCommand) -> anyhow::Result<()> {
    let mut client = connect(conn).await?;
    let EraCommand::Import { file } = command;
    let content = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let report = client
        .post_remittance(pb::PostRemittanceRequest {
            file_name: name,
            content,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    for p in &report.problems {
        eprintln!("{}:{}: {} {}", file.display(), p.line, p.segment, p.message);
    }
    for r in &report.remittances {
        if r.already_posted {
            println!(
                "TRN {} from payer {}: already posted, nothing changed",
                r.trace_number, r.payer_id
            );
            continue;
        }
        let matched = r.claims.iter().filter(|c| !c.claim_id.is_empty()).count();
        let denials: usize = r.claims.iter().map(|c| c.denials.len()).sum();
        println!(
            "TRN {} from payer {}: {} paid, {} claims posted, {} unmatched, {} denials, provider adjustments {}",
            r.trace_number,
            r.payer_id,
            dollars(r.payment_cents),
            matched,
            r.claims.len() - matched,
            denials,
            dollars(r.provider_adjustment_cents)
        );
        for c in r.claims.iter().filter(|c| c.claim_id.is_empty()) {
            println!(
                "  unmatched {}: {} ({})",
                c.patient_control_number,
                dollars(c.paid_cents),
                c.unmatched_reason
            );
        }
        for p in &r.balance_problems {
            eprintln!(
                "{}:{}: out of balance: {}",
                file.display(),
                p.line,
                p.message
            );
        }
    }
    if report.problems.iter().any(|p| p.blocking) {
        bail!("part of {} could not be posted", file.display());
    }
    Ok(())
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct Auth(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Auth {
    pub fn new(value: Option<MetadataValue<tonic::metadata::Ascii>>) -> Auth {
        Auth(value)
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub async fn connect(conn: &Connection) -> anyhow::Result<Client> {
    let key = conn
        .key
        .as_deref()
        .context("no API key: pass --key or set ARFLOW_API_KEY")?;
    let value: MetadataValue<_> = format!("Bearer {key}")
        .parse()
        .context("the API key is not valid ASCII")?;
    let channel = Channel::from_shared(conn.addr.clone())
        .context("invalid --addr")?
        .connect()
        .await
        .with_context(|| format!("connect to {}", conn.addr))?;
    Ok(
        ClaimsServiceClient::with_interceptor(channel, Auth(Some(value)))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20),
    )
}

pub async fn run_claims(conn: &Connection, command: &ClaimsCommand) -> anyhow::Result<()> {
    let mut client = connect(conn).await?;
    match command {
        ClaimsCommand::Import { file, format } => {
            import(&mut client, file, format.as_deref()).await
        }
        ClaimsCommand::Get { claim_id } => {
            let claim = client
                .get_claim(pb::GetClaimRequest {
                    claim_id: claim_id.clone(),
                })
                .await
                .map_err(status_error)?
                .into_inner()
                .claim
                .context("empty response")?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ClaimJson::from_pb(&claim))?
            );
            Ok(())
        }
        ClaimsCommand::List {
            clinic,
            payer,
            status,
            min_balance_cents,
            limit,
            json,
        } => {
            let status = match status {
                Some(s) => parse_status(s)? as i32,
                None => 0,
            };
            let mut page_token = String::new();
            let mut shown = 0;
            if !json {
                println!(
                    "{:<36}  {:<12} {:<16} {:<10} {:<15} {:>12} {:>12}",
                    "ID", "CLINIC", "PCN", "PAYER", "STATUS", "CHARGE", "BALANCE"
                );
            }
            loop {
                let resp = client
                    .list_claims(pb::ListClaimsRequest {
                        clinic_id: clinic.clone().unwrap_or_default(),
                        payer_id: payer.clone().unwrap_or_default(),
                        status,
                        min_balance_cents: min_balance_cents.unwrap_or_default(),
                        page_size: (*limit - shown).min(1000) as i32,
                        page_token: page_token.clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                for c in &resp.claims {
                    if *json {
                        println!("{}", serde_json::to_string(&ClaimJson::from_pb(c))?);
                    } else {
                        println!(
                            "{:<36}  {:<12} {:<16} {:<10} {:<15} {:>12} {:>12}",
                            c.id,
                            c.clinic_id,
                            c.external_id,
                            c.payer.as_ref().map(|p| p.id.as_str()).unwrap_or(""),
                            status_name(c.status),
                            dollars(c.total_charge_cents),
                            dollars(c.balance_cents)
                        );
                    }
                }
                shown += resp.claims.len();
                if resp.next_page_token.is_empty() || shown >= *limit {
                    break;
                }
                page_token = resp.next_page_token;
            }
            Ok(())
        }
        ClaimsCommand::SetStatus {
            claim_id,
            status,
            reason,
        } => {
            let claim = client
                .update_claim_status(pb::UpdateClaimStatusRequest {
                    claim_id: claim_id.clone(),
                    status: parse_status(status)? as i32,
                    reason: reason.clone(),
                    expected_version: 0,
                })
                .await
                .map_err(status_error)?
                .into_inner()
                .claim
                .context("empty response")?;
            println!(
                "{} is now {} (version {})",
                claim.id,
                status_name(claim.status),
                claim.version
            );
            Ok(())
        }
    }
}

/// A status error as a person reads it, with field violations one per line.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt as _;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            text.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    anyhow::anyhow!(text)
}

fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn status_name(s: i32) -> String {
    pb::ClaimStatus::try_from(s)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("CLAIM_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| s.to_string())
}

fn parse_status(s: &str) -> anyhow::Result<pb::ClaimStatus> {
    let name = format!(
        "CLAIM_STATUS_{}",
        s.trim().to_ascii_uppercase().replace('-', "_")
    );
    pb::ClaimStatus::from_str_name(&name)
        .filter(|s| *s != pb::ClaimStatus::Unspecified)
        .with_context(|| format!("unknown status {s:?}"))
}

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
fn line_of(claim: &FileClaim, field: &str) -> usize {
    let service_line = field
        .strip_prefix("claim.service_lines[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse::<usize>().ok());
    match service_line {
        Some(i) if claim.lines.len() > 1 => claim.lines.get(i).copied().unwrap_or(claim.lines[0]),
        _ => claim.lines[0],
    }
}

async fn import(client: &mut Client, path: &Path, format: Option<&str>) -> anyhow::Result<()> {
    let (claims, mut errors) = read_import_file(path, format)?;
    let unreadable = errors.len();
    let total = claims.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} claims sent ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let requests: Vec<pb::ImportClaimsRequest> = claims.iter().map(|c| c.request.clone()).collect();
    let progress = bar.clone();
    let stream = tokio_stream::iter(requests.into_iter().inspect(move |_| progress.inc(1)));
    // A large file streams for longer than the server's default deadline: ask for an hour.
    let mut request = tonic::Request::new(stream);
    request.set_timeout(std::time::Duration::from_secs(3600));
    let response = client
        .import_claims(request)
        .await
        .map_err(status_error)?
        .into_inner();
    bar.finish_and_clear();
    for result in &response.results {
        let Some(claim) = claims.get(result.index as usize) else {
            continue;
        };
        if !result.error.is_empty() {
            errors.push(LineError {
                line: claim.lines[0],
                message: result.error.clone(),
            });
        }
        for v in &result.field_violations {
            errors.push(LineError {
                line: line_of(claim, &v.field),
                message: format!("{}: {}", v.field, v.description),
            });
        }
    }
    errors.sort_by_key(|e| e.line);
    for e in &errors {
        eprintln!("{}:{}: {}", path.display(), e.line, e.message);
    }
    let replayed = response.results.iter().filter(|r| r.replayed).count();
    println!(
        "{} claims sent, {} accepted ({} already imported), {} rejected; {} unreadable line(s)",
        total, response.accepted_count, replayed, response.rejected_count, unreadable
    );
    if !errors.is_empty() {
        bail!("{} problem(s) in {}", errors.len(), path.display());
    }
    Ok(())
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
