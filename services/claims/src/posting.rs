//! Posting what payers say onto claims: 835 remittances (payments, adjustments, denials,
//! reversals, provider adjustments) and 277/277CA status reports.
//!
//! The transport layer maps X12 documents onto the plain inputs here ([`RemitIn`],
//! [`StatusIn`]); this module is SQL and the posting rules, in one transaction per remittance
//! (or per claim for status reports), with events in the outbox.
//!
//! Rules (DESIGN §7, docs/architecture.md "Posting"):
//! - The raw file is stored (and hashed) before anything is posted from it.
//! - A remittance posts once, keyed by (tenant, payer, payee, TRN02); a second post changes
//!   nothing and says so.
//! - CLP01 matches claims by patient control number; unmatched claim payments are kept with
//!   the reason.
//! - Balance: charge − payments − adjustments that settle the claim (contractual CO-45,
//!   patient responsibility, prior payer...). Denial adjustments keep the balance open: that
//!   money is what AR follow-up goes after.
//! - A reversal (CLP02 = 22) is a new posting linked to the payment it reverses; its negative
//!   amounts flow through the same arithmetic.
use arflow_api::events::v1 as events;
use arflow_domain::{ClaimStatus, Money};
use arflow_platform::bus;
use arflow_platform::db::{self, Backend, Db, date_to_sql, to_micros};
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::store::{self, PRODUCER, StoredClaim, TenantId};

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
    pub trace_number: String,
    pub payment: Money,
    pub method: String,
    pub payment_date: Option<NaiveDate>,
    pub claims: Vec<ClaimPayIn>,
    pub provider_adjustments: Vec<PlbIn>,
}

/// A denial as recorded.
#[derive(Clone, Debug)]
pub struct DenialRow {
    pub id: String,
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    pub procedure_code: String,
    pub group_code: String,
    pub reason_code: String,
    pub remark_codes: Vec<String>,
    pub category: String,
    pub appealable: bool,
    pub resolution: String,
    pub owner: String,
    pub evidence: Vec<String>,
    pub amount: Money,
    pub denial_date: NaiveDate,
    pub remittance_id: String,
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
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

/// Posts one remittance in one transaction (see the module docs).
pub async fn post_remittance(
    db: &Db,
    tenant: &TenantId,
    file_id: &str,
    remit: &RemitIn,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<PostedRemit, Error> {
    let existing = || async {
        sqlx::query(
            "SELECT id FROM remittances WHERE tenant_id = $1 AND payer_id = $2 AND payee_id = $3 \
             AND trace_number = $4",
        )
        .bind(tenant.as_str())
        .bind(remit.payer_id.as_str())
        .bind(remit.payee_id.as_str())
        .bind(remit.trace_number.as_str())
        .fetch_optional(db.pool())
        .await
    };
    let already = |id: String| PostedRemit {
        remittance_id: id,
        already_posted: true,
        claims: Vec::new(),
        provider_adjustment: Money::ZERO,
    };
    if let Some(row) = existing().await? {
        return Ok(already(row.try_get("id")?));
    }
    let mut tx = db.begin().await?;
    let remittance_id = uuid::Uuid::now_v7().to_string();
    let plb_total = remit
        .provider_adjustments
        .iter()
        .fold(Money::ZERO, |acc, p| {
            acc.checked_add(p.amount).unwrap_or(acc)
        });
    let inserted = sqlx::query(
        "INSERT INTO remittances (id, tenant_id, file_id, transaction_control_number, payer_id, \
         payer_name, payee_id, trace_number, payment_cents, payment_method, payment_date, \
         provider_adjustment_cents, posted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(remittance_id.as_str())
    .bind(tenant.as_str())
    .bind(file_id)
    .bind(remit.control_number.as_str())
    .bind(remit.payer_id.as_str())
    .bind(remit.payer_name.as_str())
    .bind(remit.payee_id.as_str())
    .bind(remit.trace_number.as_str())
    .bind(remit.payment.cents())
    .bind(remit.method.as_str())
    .bind(remit.payment_date.map(date_to_sql))
    .bind(plb_total.cents())
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if db::is_unique_violation(&e) => {
            // A concurrent post of the same ERA won the race.
            drop(tx);
            let row = existing().await?.ok_or(e)?;
            return Ok(already(row.try_get("id")?));
        }
        Err(e) => return Err(e.into()),
    }
    let payment_date = remit.payment_date.unwrap_or_else(|| now.date_naive());
    let mut claims = Vec::with_capacity(remit.claims.len());
    for (position, clp) in remit.claims.iter().enumerate() {
        let posted = post_claim_payment(
            &mut tx,
            db.backend(),
            tenant,
            &remittance_id,
            position,
            remit,
            clp,
            payment_date,
            actor,
            now,
        )
        .await?;
        claims.push(posted);
    }
    for (position, plb) in remit.provider_adjustments.iter().enumerate() {
        sqlx::query(
            "INSERT INTO provider_adjustments (remittance_id, tenant_id, position, provider_id, \
             reason_code, reference, amount_cents) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(remittance_id.as_str())
        .bind(tenant.as_str())
        .bind(position as i64)
        .bind(plb.provider_id.as_str())
        .bind(plb.reason.as_str())
        .bind(plb.reference.as_str())
        .bind(plb.amount.cents())
        .execute(&mut *tx)
        .await?;
    }
    let posted_count = claims.iter().filter(|c| c.claim_id.is_some()).count();
    let payload = events::RemittancePosted {
        remittance_id: remittance_id.clone(),
        payer_id: remit.payer_id.clone(),
        payee_id: remit.payee_id.clone(),
        trace_number: remit.trace_number.clone(),
        payment_cents: remit.payment.cents(),
        claims_posted: posted_count as i32,
        claims_unmatched: (claims.len() - posted_count) as i32,
        payment_date: Some(store::date_msg(payment_date)),
    };
    let envelope = bus::new_envelope(
        PRODUCER,
        "arflow.events.v1.RemittancePosted",
        tenant.as_str(),
        &remittance_id,
        1,
        now,
        &payload,
    );
    bus::publish(&mut tx, &envelope).await?;
    tx.commit().await?;
    Ok(PostedRemit {
        remittance_id,
        already_posted: false,
        claims,
        provider_adjustment: plb_total,
    })
}

/// Finds the claim a CLP names: the newest non-void claim with that patient control number,
/// preferring one that already carries the payer's claim control number.
async fn match_claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    pcn: &str,
    payer_ccn: &str,
) -> Result<Option<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, payer_claim_control_number, frequency FROM claims \
         WHERE tenant_id = $1 AND external_id = $2 ORDER BY id DESC",
    )
    .bind(tenant.as_str())
    .bind(pcn)
    .fetch_all(&mut *conn)
    .await?;
    let mut best: Option<String> = None;
    for row in &rows {
        let id: String = row.try_get("id")?;
        let ccn: String = row.try_get("payer_claim_control_number")?;
        let frequency: String = row.try_get("frequency")?;
        if !payer_ccn.is_empty() && ccn == payer_ccn {
            return Ok(Some(id));
        }
        if best.is_none() && frequency != "8" {
            best = Some(id);
        }
    }
    Ok(best)
}

#[allow(clippy::too_many_arguments)]
async fn post_claim_payment(
    tx: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    remittance_id: &str,
    position: usize,
    remit: &RemitIn,
    clp: &ClaimPayIn,
    payment_date: NaiveDate,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<PostedClaim, Error> {
    let reversal = clp.status_code == "22";
    let payment_id = uuid::Uuid::now_v7().to_string();
    let claim_id = match_claim(
        tx,
        tenant,
        &clp.patient_control_number,
        &clp.payer_claim_control_number,
    )
    .await?;
    let mut claim = match &claim_id {
        Some(id) => store::load_claim(tx, tenant, id, true, backend).await?,
        None => None,
    };
    let unmatched_reason = claim
        .is_none()
        .then(|| "no claim with this patient control number".to_string());
    let reverses = match (&claim, reversal) {
        (Some(c), true) => {
            reversed_payment(tx, tenant, &c.id, &clp.payer_claim_control_number).await?
        }
        _ => None,
    };
    sqlx::query(
        "INSERT INTO claim_payments (id, tenant_id, remittance_id, position, claim_id, \
         patient_control_number, status_code, charge_cents, paid_cents, \
         patient_responsibility_cents, payer_claim_control_number, reverses_payment_id, \
         unmatched_reason, payment_date, posted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(payment_id.as_str())
    .bind(tenant.as_str())
    .bind(remittance_id)
    .bind(position as i64)
    .bind(claim.as_ref().map(|c| c.id.clone()))
    .bind(clp.patient_control_number.as_str())
    .bind(clp.status_code.as_str())
    .bind(clp.charge.cents())
    .bind(clp.paid.cents())
    .bind(clp.patient_responsibility.cents())
    .bind(clp.payer_claim_control_number.as_str())
    .bind(reverses)
    .bind(unmatched_reason.clone())
    .bind(date_to_sql(payment_date))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    insert_lines_and_adjustments(tx, tenant, &payment_id, clp, claim.as_ref()).await?;

    let Some(claim) = claim.as_mut() else {
        return Ok(PostedClaim {
            patient_control_number: clp.patient_control_number.clone(),
            claim_id: None,
            status_code: clp.status_code.clone(),
            charge: clp.charge,
            paid: clp.paid,
            claim_status: None,
            balance: None,
            unmatched_reason,
            denials: Vec::new(),
            reversal,
        });
    };

    // Balance and paid-to-date move by this posting.
    let all_adjustments = clp
        .adjustments
        .iter()
        .chain(clp.lines.iter().flat_map(|l| l.adjustments.iter()));
    let settled = all_adjustments
        .clone()
        .filter(|a| settles(a))
        .fold(Money::ZERO, |acc, a| {
            acc.checked_add(a.amount).unwrap_or(acc)
        });
    let denied_amount = all_adjustments
        .filter(|a| !settles(a))
        .fold(Money::ZERO, |acc, a| {
            acc.checked_add(a.amount).unwrap_or(acc)
        });
    let new_balance = claim
        .balance
        .checked_sub(clp.paid)
        .and_then(|b| b.checked_sub(settled))
        .unwrap_or(claim.balance);
    let new_paid = claim.paid.checked_add(clp.paid).unwrap_or(claim.paid);

    let from = claim.claim.status;
    let target = if reversal {
        if new_paid.cents() <= 0 {
            ClaimStatus::Pending
        } else if new_balance.cents() <= 0 {
            ClaimStatus::Paid
        } else {
            ClaimStatus::PartiallyPaid
        }
    } else if clp.status_code == "4" || (clp.paid.cents() <= 0 && denied_amount.cents() > 0) {
        ClaimStatus::Denied
    } else if clp.status_code == "23" {
        from // not ours, forwarded: nothing to conclude
    } else if new_balance.cents() <= 0 {
        ClaimStatus::Paid
    } else if new_paid.cents() > 0 {
        ClaimStatus::PartiallyPaid
    } else {
        ClaimStatus::Denied
    };
    let moved = target != from && from.can_transition_to(target);
    let previous_version = claim.version;
    claim.balance = new_balance;
    claim.paid = new_paid;
    claim.version += 1;
    claim.updated_at = now;
    if !clp.payer_claim_control_number.is_empty() {
        claim.payer_claim_control_number = clp.payer_claim_control_number.clone();
    }
    if moved {
        claim.claim.status = target;
    }
    sqlx::query(
        "UPDATE claims SET balance_cents = $1, paid_cents = $2, status = $3, version = $4, \
         updated_at = $5, payer_claim_control_number = $6 \
         WHERE tenant_id = $7 AND id = $8 AND version = $9",
    )
    .bind(claim.balance.cents())
    .bind(claim.paid.cents())
    .bind(claim.claim.status.as_str())
    .bind(claim.version)
    .bind(to_micros(now))
    .bind(claim.payer_claim_control_number.as_str())
    .bind(tenant.as_str())
    .bind(claim.id.as_str())
    .bind(previous_version)
    .execute(&mut *tx)
    .await?;
    let reason = format!("835 TRN {} CLP02 {}", remit.trace_number, clp.status_code);
    if moved {
        sqlx::query(
            "INSERT INTO claim_status_history (claim_id, tenant_id, version, from_status, \
             to_status, reason, actor, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(claim.id.as_str())
        .bind(tenant.as_str())
        .bind(claim.version)
        .bind(Some(from.as_str()))
        .bind(target.as_str())
        .bind(reason.as_str())
        .bind(actor)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        bus::publish(tx, &store::status_changed_event(claim, from, &reason, now)).await?;
    }
    if clp.paid.cents() != 0 {
        let payload = events::ClaimPaid {
            claim_id: claim.id.clone(),
            clinic_id: claim.claim.clinic_id.clone(),
            payer_id: claim.claim.payer.id.clone(),
            remittance_id: remittance_id.to_string(),
            paid_cents: clp.paid.cents(),
            balance_cents: claim.balance.cents(),
            status: store::status_event_name(claim.claim.status),
            payment_date: Some(store::date_msg(payment_date)),
        };
        bus::publish(
            tx,
            &bus::new_envelope(
                PRODUCER,
                "arflow.events.v1.ClaimPaid",
                tenant.as_str(),
                &claim.id,
                claim.version,
                now,
                &payload,
            ),
        )
        .await?;
    }
    let denials = if reversal {
        Vec::new()
    } else {
        record_denials(
            tx,
            tenant,
            remittance_id,
            &payment_id,
            remit,
            clp,
            claim,
            payment_date,
            now,
        )
        .await?
    };
    Ok(PostedClaim {
        patient_control_number: clp.patient_control_number.clone(),
        claim_id: Some(claim.id.clone()),
        status_code: clp.status_code.clone(),
        charge: clp.charge,
        paid: clp.paid,
        claim_status: Some(claim.claim.status),
        balance: Some(claim.balance),
        unmatched_reason: None,
        denials,
        reversal,
    })
}

/// The payment a reversal takes back: the newest non-reversal posting of the claim (with the
/// same payer claim control number when one is given) not already reversed.
async fn reversed_payment(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
    payer_ccn: &str,
) -> Result<Option<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.payer_claim_control_number FROM claim_payments p \
         WHERE p.tenant_id = $1 AND p.claim_id = $2 AND p.status_code <> '22' \
         AND NOT EXISTS (SELECT 1 FROM claim_payments r WHERE r.tenant_id = $1 AND r.reverses_payment_id = p.id) \
         ORDER BY p.id DESC",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut fallback = None;
    for row in rows {
        let id: String = row.try_get("id")?;
        let ccn: String = row.try_get("payer_claim_control_number")?;
        if payer_ccn.is_empty() || ccn == payer_ccn {
            return Ok(Some(id));
        }
        fallback.get_or_insert(id);
    }
    Ok(fallback)
}

/// The claim line an SVC paid: by line item control number (REF*6R = our line number), else
/// by procedure code and date of service.
fn match_line(claim: &StoredClaim, line: &LinePayIn) -> u32 {
    if let Ok(n) = line.line_control_number.trim().parse::<u32>()
        && claim.claim.service_lines.iter().any(|l| l.line_number == n)
    {
        return n;
    }
    claim
        .claim
        .service_lines
        .iter()
        .find(|l| {
            (l.procedure_code == line.procedure_code
                || l.procedure_code == line.original_procedure_code)
                && line.service_date.is_none_or(|d| d == l.service_date)
        })
        .map(|l| l.line_number)
        .unwrap_or(0)
}

async fn insert_lines_and_adjustments(
    tx: &mut AnyConnection,
    tenant: &TenantId,
    payment_id: &str,
    clp: &ClaimPayIn,
    claim: Option<&StoredClaim>,
) -> Result<(), sqlx::Error> {
    let mut adjustments: Vec<(usize, &AdjIn)> = clp.adjustments.iter().map(|a| (0, a)).collect();
    for (i, line) in clp.lines.iter().enumerate() {
        adjustments.extend(line.adjustments.iter().map(|a| (i + 1, a)));
    }
    if !clp.lines.is_empty() {
        let sql = format!(
            "INSERT INTO payment_lines (payment_id, tenant_id, position, line_number, procedure_code, \
             modifiers, original_procedure_code, charge_cents, paid_cents, remark_codes) VALUES {}",
            store::values_clause(clp.lines.len(), 10)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (i, line) in clp.lines.iter().enumerate() {
            q = q
                .bind(payment_id)
                .bind(tenant.as_str())
                .bind((i + 1) as i64)
                .bind(claim.map(|c| i64::from(match_line(c, line))).unwrap_or(0))
                .bind(line.procedure_code.as_str())
                .bind(line.modifiers.join(","))
                .bind(line.original_procedure_code.as_str())
                .bind(line.charge.cents())
                .bind(line.paid.cents())
                .bind(line.remarks.join(","));
        }
        q.execute(&mut *tx).await?;
    }
    if !adjustments.is_empty() {
        let sql = format!(
            "INSERT INTO payment_adjustments (payment_id, tenant_id, position, line_position, \
             group_code, reason_code, amount_cents, quantity) VALUES {}",
            store::values_clause(adjustments.len(), 8)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (i, (line, a)) in adjustments.iter().enumerate() {
            q = q
                .bind(payment_id)
                .bind(tenant.as_str())
                .bind(i as i64)
                .bind(*line as i64)
                .bind(a.group.as_str())
                .bind(a.reason.as_str())
                .bind(a.amount.cents())
                .bind(a.quantity.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Reads denials from the adjustments (claim and line level), classifies them, records them and
/// emits ClaimDenied for each.
#[allow(clippy::too_many_arguments)]
async fn record_denials(
    tx: &mut AnyConnection,
    tenant: &TenantId,
    remittance_id: &str,
    payment_id: &str,
    remit: &RemitIn,
    clp: &ClaimPayIn,
    claim: &StoredClaim,
    denial_date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<DenialRow>, sqlx::Error> {
    let mut found: Vec<(String, &AdjIn, Vec<String>)> = Vec::new();
    for a in clp
        .adjustments
        .iter()
        .filter(|a| !settles(a) && a.amount.cents() > 0)
    {
        found.push((String::new(), a, clp.remarks.clone()));
    }
    for line in &clp.lines {
        for a in line
            .adjustments
            .iter()
            .filter(|a| !settles(a) && a.amount.cents() > 0)
        {
            let mut remarks = clp.remarks.clone();
            remarks.extend(line.remarks.iter().cloned());
            found.push((line.procedure_code.clone(), a, remarks));
        }
    }
    // CLP02 = 4 says "denied" even when every adjustment code reads as contractual: keep it
    // visible as a denial of the unpaid amount, classified by its largest adjustment.
    let fallback;
    if found.is_empty() && clp.status_code == "4" {
        let largest = clp
            .adjustments
            .iter()
            .chain(clp.lines.iter().flat_map(|l| l.adjustments.iter()))
            .max_by_key(|a| a.amount.cents());
        fallback = AdjIn {
            group: largest.map(|a| a.group.clone()).unwrap_or_default(),
            reason: largest.map(|a| a.reason.clone()).unwrap_or_default(),
            amount: clp.charge.checked_sub(clp.paid).unwrap_or(clp.charge),
            quantity: String::new(),
        };
        found.push((String::new(), &fallback, clp.remarks.clone()));
    }
    let mut rows = Vec::with_capacity(found.len());
    for (procedure_code, adj, remarks) in found {
        let class = arflow_domain::classify_denial(&adj.group, &adj.reason, &remarks);
        let row = DenialRow {
            id: uuid::Uuid::now_v7().to_string(),
            claim_id: claim.id.clone(),
            clinic_id: claim.claim.clinic_id.clone(),
            payer_id: if remit.payer_id.is_empty() {
                claim.claim.payer.id.clone()
            } else {
                remit.payer_id.clone()
            },
            procedure_code,
            group_code: adj.group.clone(),
            reason_code: adj.reason.clone(),
            remark_codes: remarks,
            category: class.category.as_str().to_string(),
            appealable: class.appealable,
            resolution: class.resolution.as_str().to_string(),
            owner: class.owner.as_str().to_string(),
            evidence: class.evidence.iter().map(|e| e.to_string()).collect(),
            amount: adj.amount,
            denial_date,
            remittance_id: remittance_id.to_string(),
        };
        sqlx::query(
            "INSERT INTO denials (id, tenant_id, claim_id, payment_id, remittance_id, clinic_id, \
             payer_id, procedure_code, group_code, reason_code, remark_codes, category, appealable, \
             resolution, owner, evidence, amount_cents, denial_date, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(row.id.as_str())
        .bind(tenant.as_str())
        .bind(row.claim_id.as_str())
        .bind(payment_id)
        .bind(remittance_id)
        .bind(row.clinic_id.as_str())
        .bind(row.payer_id.as_str())
        .bind(row.procedure_code.as_str())
        .bind(row.group_code.as_str())
        .bind(row.reason_code.as_str())
        .bind(row.remark_codes.join(","))
        .bind(row.category.as_str())
        .bind(i64::from(row.appealable))
        .bind(row.resolution.as_str())
        .bind(row.owner.as_str())
        .bind(row.evidence.join("|"))
        .bind(row.amount.cents())
        .bind(date_to_sql(denial_date))
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        let payload = events::ClaimDenied {
            claim_id: row.claim_id.clone(),
            clinic_id: row.clinic_id.clone(),
            payer_id: row.payer_id.clone(),
            remittance_id: remittance_id.to_string(),
            denial_id: row.id.clone(),
            category: format!("DENIAL_CATEGORY_{}", row.category.to_ascii_uppercase()),
            group_code: row.group_code.clone(),
            reason_code: row.reason_code.clone(),
            remark_codes: row.remark_codes.clone(),
            appealable: row.appealable,
            resolution: row.resolution.clone(),
            owner: row.owner.clone(),
            amount_cents: row.amount.cents(),
            balance_cents: claim.balance.cents(),
            denial_date: Some(store::date_msg(denial_date)),
            procedure_code: row.procedure_code.clone(),
        };
        bus::publish(
            tx,
            &bus::new_envelope(
                PRODUCER,
                "arflow.events.v1.ClaimDenied",
                tenant.as_str(),
                &claim.id,
                claim.version,
                now,
                &payload,
            ),
        )
        .await?;
        rows.push(row);
    }
    Ok(rows)
}

/// One claim-level status from a 277/277CA.
#[derive(Clone, Debug, Default)]
pub struct StatusIn {
    pub patient_control_number: String,
    pub payer_claim_control_number: String,
    /// STC01-1, e.g. `A2`, `A7`, `P1`, `F2`.
    pub category: String,
    /// STC01-2.
    pub status_code: String,
}

#[derive(Clone, Debug)]
pub struct StatusOut {
    pub patient_control_number: String,
    pub claim_id: Option<String>,
    pub category: String,
    pub status_code: String,
    pub claim_status: Option<ClaimStatus>,
    pub note: String,
}

/// What a 277 claim status category means for the claim (billing-rules C9, x12-notes §4.3).
pub fn status_for_category(category: &str) -> Option<ClaimStatus> {
    match category {
        "A2" => Some(ClaimStatus::Accepted),
        "A3" | "A6" | "A7" | "A8" => Some(ClaimStatus::Rejected),
        c if c.starts_with('P') => Some(ClaimStatus::Pending),
        "F2" => Some(ClaimStatus::Denied),
        _ => None,
    }
}

fn category_note(category: &str) -> &'static str {
    match category {
        "A0" => "forwarded by the clearinghouse",
        "A1" => "received by the payer, not yet accepted",
        "A4" => "the payer has no record of the claim",
        "A5" => "split by the payer",
        "F0" | "F1" | "F3" | "F3F" | "F3N" | "F4" | "F5" => "finalized: the ERA posts the money",
        c if c.starts_with('R') => "the payer requests information",
        c if c.starts_with('E') => "the payer's system reported an error",
        _ => "no status change for this category",
    }
}

/// Posts one claim's status from a 277/277CA (its own transaction via `store::update_status`).
pub async fn post_status(
    db: &Db,
    tenant: &TenantId,
    status: &StatusIn,
    source: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StatusOut, store::Error> {
    let mut out = StatusOut {
        patient_control_number: status.patient_control_number.clone(),
        claim_id: None,
        category: status.category.clone(),
        status_code: status.status_code.clone(),
        claim_status: None,
        note: String::new(),
    };
    let mut conn = db.pool().acquire().await?;
    let claim_id = match_claim(
        &mut conn,
        tenant,
        &status.patient_control_number,
        &status.payer_claim_control_number,
    )
    .await?;
    drop(conn);
    let Some(claim_id) = claim_id else {
        out.note = "no claim with this patient control number".into();
        return Ok(out);
    };
    let claim = store::get_claim(db, tenant, &claim_id)
        .await?
        .ok_or(store::Error::NotFound)?;
    out.claim_id = Some(claim_id.clone());
    out.claim_status = Some(claim.claim.status);
    let Some(target) = status_for_category(&status.category) else {
        out.note = category_note(&status.category).into();
        return Ok(out);
    };
    if target == claim.claim.status {
        out.note = "already in this status".into();
        return Ok(out);
    }
    if !claim.claim.status.can_transition_to(target) {
        out.note = format!(
            "not applied: {} to {} is not a legal move",
            claim.claim.status, target
        );
        return Ok(out);
    }
    let reason = format!("{source} {}:{}", status.category, status.status_code);
    let updated =
        store::update_status(db, tenant, &claim_id, target, &reason, None, actor, now).await?;
    out.claim_status = Some(updated.claim.status);
    if target == ClaimStatus::Rejected {
        out.note = "rejected: the timely filing clock keeps running".into();
    }
    Ok(out)
}

/// Filters of ListDenials.
#[derive(Clone, Debug, Default)]
pub struct DenialFilter {
    pub clinic_id: Option<String>,
    pub clinic_scope: Vec<String>,
    pub payer_id: Option<String>,
    pub category: Option<String>,
    pub claim_id: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

const DENIAL_COLUMNS: &str = "id, claim_id, clinic_id, payer_id, procedure_code, group_code, \
    reason_code, remark_codes, category, appealable, resolution, owner, evidence, amount_cents, \
    denial_date, remittance_id";

fn denial_from_row(row: &sqlx::any::AnyRow) -> Result<DenialRow, sqlx::Error> {
    let text = |n: &str| row.try_get::<String, _>(n);
    Ok(DenialRow {
        id: text("id")?,
        claim_id: text("claim_id")?,
        clinic_id: text("clinic_id")?,
        payer_id: text("payer_id")?,
        procedure_code: text("procedure_code")?,
        group_code: text("group_code")?,
        reason_code: text("reason_code")?,
        remark_codes: store::split(&text("remark_codes")?),
        category: text("category")?,
        appealable: row.try_get::<i64, _>("appealable")? != 0,
        resolution: text("resolution")?,
        owner: text("owner")?,
        evidence: text("evidence")?
            .split('|')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        amount: Money::from_cents(row.try_get("amount_cents")?),
        denial_date: db::date_from_sql(&text("denial_date")?)?,
        remittance_id: text("remittance_id")?,
    })
}

/// WHERE clause and binds of a denial filter (tenant is `$1`).
fn denial_where(filter: &DenialFilter) -> (String, Vec<String>) {
    let mut sql = String::from(" WHERE tenant_id = $1");
    let mut binds = Vec::new();
    let mut add = |sql: &mut String, clause: &str, v: String| {
        binds.push(v);
        sql.push_str(&format!(" AND {clause} ${}", binds.len() + 1));
    };
    if let Some(v) = &filter.clinic_id {
        add(&mut sql, "clinic_id =", v.clone());
    }
    if let Some(v) = &filter.payer_id {
        add(&mut sql, "payer_id =", v.clone());
    }
    if let Some(v) = &filter.category {
        add(&mut sql, "category =", v.clone());
    }
    if let Some(v) = &filter.claim_id {
        add(&mut sql, "claim_id =", v.clone());
    }
    if let Some(v) = filter.from {
        add(&mut sql, "denial_date >=", date_to_sql(v));
    }
    if let Some(v) = filter.to {
        add(&mut sql, "denial_date <=", date_to_sql(v));
    }
    if !filter.clinic_scope.is_empty() {
        let marks: Vec<String> = (0..filter.clinic_scope.len())
            .map(|i| format!("${}", binds.len() + i + 2))
            .collect();
        sql.push_str(&format!(" AND clinic_id IN ({})", marks.join(", ")));
        binds.extend(filter.clinic_scope.iter().cloned());
    }
    (sql, binds)
}

/// A page of denials, newest first, and the id to continue after.
pub async fn list_denials(
    db: &Db,
    tenant: &TenantId,
    filter: &DenialFilter,
    after_id: Option<&str>,
    page_size: usize,
) -> Result<(Vec<DenialRow>, Option<String>), sqlx::Error> {
    let (mut clause, mut binds) = denial_where(filter);
    if let Some(after) = after_id {
        binds.push(after.to_string());
        clause.push_str(&format!(" AND id < ${}", binds.len() + 1));
    }
    let sql = format!(
        "SELECT {DENIAL_COLUMNS} FROM denials{clause} ORDER BY id DESC LIMIT {}",
        page_size + 1
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(db.pool()).await?;
    let more = rows.len() > page_size;
    let denials = rows
        .iter()
        .take(page_size)
        .map(denial_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        denials.last().map(|d| d.id.clone())
    } else {
        None
    };
    Ok((denials, next))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    pub category: String,
    pub payer_id: String,
    pub procedure_code: String,
    pub clinic_id: String,
    pub count: i64,
    pub amount: Money,
}

/// Denial counts and dollars by category x payer x procedure x clinic, largest amount first.
pub async fn summarize_denials(
    db: &Db,
    tenant: &TenantId,
    filter: &DenialFilter,
) -> Result<Vec<SummaryRow>, sqlx::Error> {
    let (clause, binds) = denial_where(filter);
    let sql = format!(
        "SELECT category, payer_id, procedure_code, clinic_id, COUNT(*) AS n, \
         CAST(SUM(amount_cents) AS BIGINT) AS amount FROM denials{clause} \
         GROUP BY category, payer_id, procedure_code, clinic_id \
         ORDER BY amount DESC, n DESC, category, payer_id, procedure_code, clinic_id"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
    for b in binds {
        q = q.bind(b);
    }
    q.fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(SummaryRow {
                category: row.try_get("category")?,
                payer_id: row.try_get("payer_id")?,
                procedure_code: row.try_get("procedure_code")?,
                clinic_id: row.try_get("clinic_id")?,
                count: row.try_get("n")?,
                amount: Money::from_cents(row.try_get("amount")?),
            })
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct UnmatchedRow {
    pub id: String,
    pub remittance_id: String,
    pub patient_control_number: String,
    pub payer_claim_control_number: String,
    pub payer_id: String,
    pub paid: Money,
    pub reason: String,
}

/// Unmatched claim payments, newest first.
pub async fn list_unmatched(
    db: &Db,
    tenant: &TenantId,
    after_id: Option<&str>,
    page_size: usize,
) -> Result<(Vec<UnmatchedRow>, Option<String>), sqlx::Error> {
    let sql = format!(
        "SELECT p.id, p.remittance_id, p.patient_control_number, p.payer_claim_control_number, \
         p.paid_cents, p.unmatched_reason, r.payer_id FROM claim_payments p \
         JOIN remittances r ON r.id = p.remittance_id \
         WHERE p.tenant_id = $1 AND p.claim_id IS NULL{} ORDER BY p.id DESC LIMIT {}",
        if after_id.is_some() {
            " AND p.id < $2"
        } else {
            ""
        },
        page_size + 1
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
    if let Some(after) = after_id {
        q = q.bind(after);
    }
    let rows = q.fetch_all(db.pool()).await?;
    let more = rows.len() > page_size;
    let list = rows
        .iter()
        .take(page_size)
        .map(|row| {
            Ok(UnmatchedRow {
                id: row.try_get("id")?,
                remittance_id: row.try_get("remittance_id")?,
                patient_control_number: row.try_get("patient_control_number")?,
                payer_claim_control_number: row.try_get("payer_claim_control_number")?,
                payer_id: row.try_get("payer_id")?,
                paid: Money::from_cents(row.try_get("paid_cents")?),
                reason: row
                    .try_get::<Option<String>, _>("unmatched_reason")?
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let next = if more {
        list.last().map(|u| u.id.clone())
    } else {
        None
    };
    Ok((list, next))
}

#[derive(Clone, Debug)]
pub struct PaymentRow {
    pub id: String,
    pub remittance_id: String,
    pub status_code: String,
    pub charge: Money,
    pub paid: Money,
    pub patient_responsibility: Money,
    pub payer_claim_control_number: String,
    pub reverses_payment_id: Option<String>,
    pub payment_date: Option<NaiveDate>,
    /// (group, reason, amount, claim line number or 0).
    pub adjustments: Vec<(String, String, Money, u32)>,
}

/// The postings of a claim, oldest first.
pub async fn claim_payments(
    db: &Db,
    tenant: &TenantId,
    claim_id: &str,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, remittance_id, status_code, charge_cents, paid_cents, \
         patient_responsibility_cents, payer_claim_control_number, reverses_payment_id, payment_date \
         FROM claim_payments WHERE tenant_id = $1 AND claim_id = $2 ORDER BY id",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let adjustments = sqlx::query(
            "SELECT a.group_code, a.reason_code, a.amount_cents, COALESCE(l.line_number, 0) AS line_number \
             FROM payment_adjustments a LEFT JOIN payment_lines l \
             ON l.payment_id = a.payment_id AND l.position = a.line_position \
             WHERE a.tenant_id = $1 AND a.payment_id = $2 ORDER BY a.position",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|a| {
            let line: i64 = a.try_get("line_number")?;
            Ok((
                a.try_get("group_code")?,
                a.try_get("reason_code")?,
                Money::from_cents(a.try_get("amount_cents")?),
                u32::try_from(line).unwrap_or(0),
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.push(PaymentRow {
            id,
            remittance_id: row.try_get("remittance_id")?,
            status_code: row.try_get("status_code")?,
            charge: Money::from_cents(row.try_get("charge_cents")?),
            paid: Money::from_cents(row.try_get("paid_cents")?),
            patient_responsibility: Money::from_cents(row.try_get("patient_responsibility_cents")?),
            payer_claim_control_number: row.try_get("payer_claim_control_number")?,
            reverses_payment_id: row.try_get("reverses_payment_id")?,
            payment_date: row
                .try_get::<Option<String>, _>("payment_date")?
                .map(|d| db::date_from_sql(&d))
                .transpose()?,
            adjustments,
        });
    }
    Ok(out)
}
