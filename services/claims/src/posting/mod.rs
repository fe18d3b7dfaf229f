//! Posting what payers say onto claims: 835 remittances (payments, adjustments, denials,
//! reversals, provider adjustments) and 277/277CA status reports.
//!
//! The transport layer maps X12 documents onto the plain inputs here ([`RemitIn`],
//! [`StatusIn`]); this module is SQL and the posting rules, in one transaction per remittance
//! (or per claim for status reports), with events in the outbox.
//!
//! Rules (docs/design.md §7, docs/architecture.md "Posting"):
//! - The raw file is stored (and hashed) before anything is posted from it.
//! - A remittance posts once, keyed by (tenant, payer, payee, TRN02); a second post changes
//!   nothing and says so.
//! - A CLP is matched on the payee (N1*PE NPI = the claim's billing provider), the payer, then
//!   CLP01 and CLP07, among the claims the caller's key may see
//!   ([`arflow_domain::remit_match`]); an unmatched or ambiguous claim payment is kept with
//!   its reason, never posted on a guess.
//! - Balance (the payer's): charge − payments − adjustments that settle the claim (contractual
//!   CO-45, prior payer...) − patient responsibility, which moves to the claim's patient balance
//!   (CAS group PR with any CARC, CARC 100; a reversal moves it back). Denial adjustments keep
//!   the balance open: that money is what AR follow-up goes after.
//! - CO-29 is classified with what arflow holds: a payer file in the claim's history showing the
//!   payer had it (277CA acceptance, an adjudication) is proof of timely filing (appeal);
//!   without it, a write-off.
//! - A reversal (CLP02 = 22) is a new posting linked to the payment it reverses; its negative
//!   amounts flow through the same arithmetic, and it cancels the denials recorded with that
//!   payment (`denials.reversed_by_payment_id`: no longer listed or summarized).
//! - A denial while the claim's payment stands (e.g. CO-18/OA-18 on a resubmitted copy) is
//!   recorded but held: the claim keeps its status and balance until a reversal takes the
//!   payment back. CLP02 = 25 (predetermination pricing only) is recorded and posts nothing.
//! - Money taken back from a closed or written-off claim reopens it (pending).
use arflow_domain::remit_match::{
    Candidate, ClpKeys, ClpMatch, match_clp, match_plb, plb_names_claim,
};
use arflow_domain::{ClaimStatus, Money};
use arflow_platform::db::{self, Db, to_micros};
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::store::TenantId;

mod acks;
mod denials;
mod era;
mod payments;
mod status;

pub use acks::{AckIn, post_ack};
pub use denials::{DenialFilter, DenialRow, SummaryRow, list_denials, summarize_denials};
pub use era::post_remittance;
pub use payments::{
    ClaimPlbRow, PaymentRow, UnmatchedRow, claim_payments, claim_provider_adjustments,
    list_unmatched,
};
pub use status::{StatusIn, StatusOut, post_status, status_for_category};

/// One CAS adjustment (group, CARC, amount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjIn {
    pub group: String,
    pub reason: String,
    pub amount: Money,
    pub quantity: String,
}

#[derive(Clone, Debug, Default)]
pub struct LinePayIn {
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    pub original_procedure_code: String,
    pub charge: Money,
    pub paid: Money,
    pub adjustments: Vec<AdjIn>,
    /// LQ*HE remark codes.
    pub remarks: Vec<String>,
    /// REF*6R, the line item control number we sent.
    pub line_control_number: String,
    pub service_date: Option<NaiveDate>,
}

#[derive(Clone, Debug, Default)]
pub struct ClaimPayIn {
    /// CLP01.
    pub patient_control_number: String,
    /// CLP02.
    pub status_code: String,
    pub charge: Money,
    pub paid: Money,
    pub patient_responsibility: Money,
    /// CLP07.
    pub payer_claim_control_number: String,
    /// The earliest and latest date of service the CLP names: DTM*232/233 and the lines'
    /// DTM*472 (matching confirms the claim with them).
    pub service_dates: Option<(NaiveDate, NaiveDate)>,
    /// Claim-level CAS.
    pub adjustments: Vec<AdjIn>,
    /// MOA/MIA remark codes.
    pub remarks: Vec<String>,
    pub lines: Vec<LinePayIn>,
}

#[derive(Clone, Debug, Default)]
pub struct PlbIn {
    pub provider_id: String,
    pub reason: String,
    pub reference: String,
    pub amount: Money,
}

/// One 835 transaction, as posting needs it.
#[derive(Clone, Debug, Default)]
pub struct RemitIn {
    pub control_number: String,
    pub payer_id: String,
    pub payer_name: String,
    pub payee_id: String,
    /// N1*PE N104 when N103 is `XX` (an NPI): what matching compares with a claim's billing
    /// provider. None for a TIN or no id.
    pub payee_npi: Option<String>,
    /// N1*PR N104 when the payer gave one (not the TRN03 or name fallback of `payer_id`).
    pub payer_given_id: Option<String>,
    pub trace_number: String,
    pub payment: Money,
    pub method: String,
    pub payment_date: Option<NaiveDate>,
    pub claims: Vec<ClaimPayIn>,
    pub provider_adjustments: Vec<PlbIn>,
}

#[derive(Clone, Debug)]
pub struct PostedClaim {
    pub patient_control_number: String,
    pub claim_id: Option<String>,
    pub status_code: String,
    pub charge: Money,
    pub paid: Money,
    pub claim_status: Option<ClaimStatus>,
    pub balance: Option<Money>,
    pub patient_balance: Option<Money>,
    pub unmatched_reason: Option<String>,
    pub denials: Vec<DenialRow>,
    pub reversal: bool,
}

#[derive(Clone, Debug)]
pub struct PostedRemit {
    pub remittance_id: String,
    pub already_posted: bool,
    pub claims: Vec<PostedClaim>,
    pub provider_adjustment: Money,
}

/// Stores a received X12 file (once per distinct content) and returns its id.
pub async fn store_file(
    db: &Db,
    tenant: &TenantId,
    kind: &str,
    file_name: &str,
    content: &[u8],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String, sqlx::Error> {
    let sha = hex::encode(Sha256::digest(content));
    let find = || async {
        sqlx::query("SELECT id FROM x12_files WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant.as_str())
            .bind(sha.as_str())
            .fetch_optional(db.pool())
            .await
    };
    if let Some(row) = find().await? {
        return row.try_get("id");
    }
    let id = uuid::Uuid::now_v7().to_string();
    let inserted = sqlx::query(
        "INSERT INTO x12_files (id, tenant_id, kind, sha256, file_name, content, received_at, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(kind)
    .bind(sha.as_str())
    .bind(file_name)
    .bind(content.to_vec())
    .bind(to_micros(now))
    .bind(actor)
    .execute(db.pool())
    .await;
    match inserted {
        Ok(_) => Ok(id),
        Err(e) if db::is_unique_violation(&e) => find().await?.ok_or(e)?.try_get("id"),
        Err(e) => Err(e),
    }
}

/// Adjustments that settle part of the claim rather than deny it.
fn settles(adj: &AdjIn) -> bool {
    !arflow_domain::is_denial_adjustment(&adj.group, &adj.reason)
}

/// Patient responsibility: adjustments whose amount the patient owes, moved from the claim's
/// payer balance to its patient balance (a reversal's negative amounts move it back). Group PR
/// with any CARC (PR-1/2/3 deductible, coinsurance, copay; PR-45 out of network; PR-119 benefit
/// maximum; PR-204 not covered) and CARC 100 with any group (the payer paid the patient, who
/// owes the provider). They may still be denials (PR-204, PR-119, 100 make denial rows), but
/// the money is no longer the payer's to pay. A pended adjustment (133) stays owed by the payer.
fn moves_to_patient(adj: &AdjIn) -> bool {
    let group = adj.group.trim();
    let reason = adj.reason.trim();
    (group.eq_ignore_ascii_case("PR") || reason == "100")
        && !arflow_domain::denial::is_pending_adjustment(group, reason)
}

/// Whether a CAS's CARC is 29 (time limit for filing expired): its next step depends on
/// whether arflow holds proof of timely filing.
fn is_timely_filing_denial(adj: &AdjIn) -> bool {
    adj.reason.trim() == "29"
}

/// Finds the claim a CLP (or a 277's claim status) names, among the claims with its patient
/// control number that the caller may see (`clinic_scope`; empty = every clinic), by the rule
/// of [`arflow_domain::remit_match`] (payee, payer, CLP01, CLP07; never a guess).
async fn match_claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    clinic_scope: &[String],
    pcn: &str,
    keys: &ClpKeys<'_>,
) -> Result<ClpMatch, sqlx::Error> {
    let candidates = candidates(conn, tenant, clinic_scope, "external_id = $2", pcn).await?;
    Ok(match_clp(&candidates, keys))
}

/// The claim a provider-level adjustment names in PLB03-2 (its ICN, or our patient control
/// number), when its reason is one that names a claim and exactly one visible claim fits
/// ([`arflow_domain::remit_match::match_plb`]); None keeps it provider-level.
async fn plb_claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    clinic_scope: &[String],
    plb: &PlbIn,
) -> Result<Option<String>, sqlx::Error> {
    if !plb_names_claim(&plb.reason) || plb.reference.is_empty() {
        return Ok(None);
    }
    let candidates = candidates(
        conn,
        tenant,
        clinic_scope,
        "(payer_claim_control_number = $2 OR external_id = $2)",
        &plb.reference,
    )
    .await?;
    Ok(match_plb(&candidates, &plb.reference))
}

/// The claims `condition` (on `$2` = `key`) selects in the tenant, newest first, that the
/// caller may see: another clinic's claim is invisible to a clinic-scoped caller.
async fn candidates(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    clinic_scope: &[String],
    condition: &'static str,
    key: &str,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, clinic_id, payer_id, billing_npi, frequency, payer_claim_control_number, \
         first_service_date, last_service_date, total_charge_cents \
         FROM claims WHERE tenant_id = $1 AND {condition} ORDER BY id DESC"
    )))
    .bind(tenant.as_str())
    .bind(key)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let clinic_id: String = row.try_get("clinic_id")?;
        if !clinic_scope.is_empty() && !clinic_scope.contains(&clinic_id) {
            continue;
        }
        out.push(Candidate {
            claim_id: row.try_get("id")?,
            clinic_id,
            payer_id: row.try_get("payer_id")?,
            billing_npi: row.try_get("billing_npi")?,
            frequency_code: row.try_get("frequency")?,
            payer_claim_control_number: row.try_get("payer_claim_control_number")?,
            service_dates: Some((
                db::date_from_sql(&row.try_get::<String, _>("first_service_date")?)?,
                db::date_from_sql(&row.try_get::<String, _>("last_service_date")?)?,
            )),
            total_charge_cents: row.try_get("total_charge_cents")?,
        });
    }
    Ok(out)
}
