//! `arflow claims …`: what a billing team does by hand, over the same gRPC API partners use.
//!
//! - this module: the commands (`claims …`, `era …`), the connection and its API key, the
//!   upload of an import file with a progress bar, and errors as a person reads them.
//! - [`import_file`]: JSONL and CSV import files read into `ImportClaims` requests, every
//!   problem with its file line.
mod import_file;

use import_file::line_of;
pub use import_file::{
    CSV_COLUMNS, ClaimJson, FileClaim, LineError, LineJson, PatientJson, PayerJson, ProviderJson,
    parse_dollars, read_import_file, read_jsonl,
};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_client::ClaimsServiceClient;
use arflow_api::wire;
use arflow_domain::ClaimStatus;
use clap::{Args as ClapArgs, Subcommand};
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

/// A status as billers write it: the domain's stable name (`partially_paid`).
fn status_name(s: i32) -> String {
    wire::claim_status_from_pb(s)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| s.to_string())
}

/// Inverse of [`status_name`]; `partially-paid` is accepted too.
fn parse_status(s: &str) -> anyhow::Result<pb::ClaimStatus> {
    ClaimStatus::parse(&s.trim().to_ascii_lowercase().replace('-', "_"))
        .map(wire::claim_status_to_pb)
        .with_context(|| format!("unknown status {s:?}"))
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
