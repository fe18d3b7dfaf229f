//! 835 posting: one remittance in one transaction (payments, adjustments, denials, reversals,
//! provider adjustments), with ClaimPaid, ClaimDenied, ClaimStatusChanged and RemittancePosted
//! in the outbox.
use arflow_api::events::v1 as events;
use arflow_api::wire::{claim_status_name, date_to_pb, denial_category_name};
use arflow_domain::{ClaimStatus, Money};
use arflow_platform::bus;
use arflow_platform::db::{self, Backend, Db, date_to_sql, to_micros};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{
    AdjIn, ClaimPayIn, DenialRow, LinePayIn, PostedClaim, PostedRemit, RemitIn,
    is_timely_filing_denial, match_claim, moves_to_patient, plb_claim, settles,
};
use crate::error::Error;
use crate::store::{self, PRODUCER, StoredClaim, TenantId};
use arflow_domain::denial::{DenialContext, classify_denial_in};
use arflow_domain::remit_match::{self, ClpKeys, ClpMatch};

/// `claim_payments.note` of a CLP02 = 25 posting.
const PREDETERMINATION_NOTE: &str =
    "predetermination pricing only (CLP02 25): recorded, no money posted";
/// `claim_payments.note` of a denial held because the claim's payment stands.
const HELD_DENIAL_NOTE: &str = "denial recorded, claim not moved: its payment stands until \
     the payer reverses it (CLP02 22)";

/// Posts one remittance in one transaction (see the module docs).
pub async fn post_remittance(
    db: &Db,
    tenant: &TenantId,
    clinic_scope: &[String],
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
            clinic_scope,
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
        // A recoupment, forwarding balance or interest that names one of our claims is tied to
        // it (recorded, not netted again: a takeback's CLP 22 reversal moves the money).
        let claim_id = plb_claim(&mut tx, tenant, clinic_scope, plb).await?;
        sqlx::query(
            "INSERT INTO provider_adjustments (remittance_id, tenant_id, position, provider_id, \
             reason_code, reference, amount_cents, claim_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(remittance_id.as_str())
        .bind(tenant.as_str())
        .bind(position as i64)
        .bind(plb.provider_id.as_str())
        .bind(plb.reason.as_str())
        .bind(plb.reference.as_str())
        .bind(plb.amount.cents())
        .bind(claim_id)
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
        payment_date: Some(date_to_pb(payment_date)),
    };
    let envelope = bus::envelope(PRODUCER, tenant.as_str(), &remittance_id, 1, now, &payload);
    bus::publish(&mut tx, &envelope).await?;
    tx.commit().await?;
    Ok(PostedRemit {
        remittance_id,
        already_posted: false,
        claims,
        provider_adjustment: plb_total,
    })
}

#[allow(clippy::too_many_arguments)]
async fn post_claim_payment(
    tx: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    clinic_scope: &[String],
    remittance_id: &str,
    position: usize,
    remit: &RemitIn,
    clp: &ClaimPayIn,
    payment_date: NaiveDate,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<PostedClaim, Error> {
    let reversal = clp.status_code == "22";
    // CLP02 = 25: the payer priced the claim for a predetermination; nothing was paid or
    // adjudicated. Recorded with a note, it moves no money, status or denial.
    let predetermination = clp.status_code == "25";
    let payment_id = uuid::Uuid::now_v7().to_string();
    let keys = ClpKeys {
        payee_npi: remit.payee_npi.as_deref(),
        payer_id: remit.payer_given_id.as_deref(),
        payer_claim_control_number: &clp.payer_claim_control_number,
        service_dates: clp.service_dates,
        charge_cents: Some(clp.charge.cents()),
    };
    let matched = match_claim(tx, tenant, clinic_scope, &clp.patient_control_number, &keys).await?;
    let (mut claim, unmatched_reason) = match matched {
        ClpMatch::Claim(id) => match store::load_claim(tx, tenant, &id, true, backend).await? {
            Some(c) => (Some(c), None),
            None => (None, Some(remit_match::NO_CLAIM.to_string())),
        },
        ClpMatch::Unmatched(reason) => (None, Some(reason.to_string())),
    };
    let reverses = match (&claim, reversal) {
        (Some(c), true) => {
            reversed_payment(tx, tenant, &c.id, &clp.payer_claim_control_number, clp.paid).await?
        }
        _ => None,
    };
    sqlx::query(
        "INSERT INTO claim_payments (id, tenant_id, remittance_id, position, claim_id, \
         patient_control_number, status_code, charge_cents, paid_cents, \
         patient_responsibility_cents, payer_claim_control_number, reverses_payment_id, \
         unmatched_reason, payment_date, posted_at, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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
    .bind(reverses.clone())
    .bind(unmatched_reason.clone())
    .bind(date_to_sql(payment_date))
    .bind(to_micros(now))
    .bind(predetermination.then_some(PREDETERMINATION_NOTE))
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
            patient_balance: None,
            unmatched_reason,
            denials: Vec::new(),
            reversal,
        });
    };
    if predetermination {
        return Ok(PostedClaim {
            patient_control_number: clp.patient_control_number.clone(),
            claim_id: Some(claim.id.clone()),
            status_code: clp.status_code.clone(),
            charge: clp.charge,
            paid: clp.paid,
            claim_status: Some(claim.claim.status),
            balance: Some(claim.balance),
            patient_balance: Some(claim.patient_balance),
            unmatched_reason: None,
            denials: Vec::new(),
            reversal,
        });
    }

    // Balance and paid-to-date move by this posting.
    let all_adjustments = clp
        .adjustments
        .iter()
        .chain(clp.lines.iter().flat_map(|l| l.adjustments.iter()));
    // OA-133 (pended for review) is neither a denial nor settled: it leaves the balance owed.
    let pended = |a: &AdjIn| arflow_domain::denial::is_pending_adjustment(&a.group, &a.reason);
    let any_pended = all_adjustments.clone().any(pended);
    let settled = all_adjustments
        .clone()
        .filter(|a| settles(a) && !pended(a) && !moves_to_patient(a))
        .fold(Money::ZERO, |acc, a| {
            acc.checked_add(a.amount).unwrap_or(acc)
        });
    // Patient responsibility leaves the payer's balance for the patient's (negative amounts of a
    // reversal bring it back).
    let to_patient = all_adjustments
        .clone()
        .filter(|a| moves_to_patient(a))
        .fold(Money::ZERO, |acc, a| {
            acc.checked_add(a.amount).unwrap_or(acc)
        });
    // CO-29's next step depends on whether arflow holds proof of timely filing; read from the
    // history before this posting adds to it.
    let ctx = DenialContext {
        timely_filing_proof: !reversal
            && all_adjustments.clone().any(is_timely_filing_denial)
            && store::timely_filing_proof(&mut *tx, tenant, &claim.id).await?,
    };
    let denied_amount = all_adjustments
        .filter(|a| !settles(a))
        .fold(Money::ZERO, |acc, a| {
            acc.checked_add(a.amount).unwrap_or(acc)
        });
    let mut new_balance = claim
        .balance
        .checked_sub(clp.paid)
        .and_then(|b| b.checked_sub(settled))
        .and_then(|b| b.checked_sub(to_patient))
        .unwrap_or(claim.balance);
    let mut new_patient_balance = claim
        .patient_balance
        .checked_add(to_patient)
        .unwrap_or(claim.patient_balance);
    let new_paid = claim.paid.checked_add(clp.paid).unwrap_or(claim.paid);

    let from = claim.claim.status;
    let mut target = if reversal {
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
    } else if any_pended {
        ClaimStatus::Pending
    } else {
        ClaimStatus::Denied
    };
    // A denial while the payer's payment stands is held: typically CO-18/OA-18 on a
    // resubmitted copy. The payment stands while the claim keeps a paid-to-date above zero
    // after this posting, or is paid or partially paid (a $0 payment, all deductible, too)
    // and this posting takes no money back. The denial is recorded (row, ClaimDenied), but the
    // claim keeps its status, balance and payer claim number; it is accepted once a reversal
    // (CLP02 = 22) has taken the payment back. A held posting moves only its own CLP04 (the
    // duplicate's adjustments describe the copy, not the claim's balance).
    let takes_back = reversal || clp.paid.cents() < 0;
    let payment_stands = new_paid.cents() > 0
        || (!takes_back && matches!(from, ClaimStatus::Paid | ClaimStatus::PartiallyPaid));
    let held_denial = !reversal && target == ClaimStatus::Denied && payment_stands;
    if held_denial {
        target = from;
        new_balance = claim.balance.checked_sub(clp.paid).unwrap_or(claim.balance);
        new_patient_balance = claim.patient_balance;
    }
    // Money taken back (a reversal, or a negative payment) on a closed or written-off claim
    // reopens it: pending with the payer until re-adjudicated, so AR follow-up sees it again.
    if takes_back
        && matches!(from, ClaimStatus::Closed | ClaimStatus::WrittenOff)
        && new_balance.cents() > 0
    {
        target = ClaimStatus::Pending;
    }
    let moved = target != from && from.can_transition_to(target);
    let previous_version = claim.version;
    claim.balance = new_balance;
    claim.patient_balance = new_patient_balance;
    claim.paid = new_paid;
    claim.version += 1;
    claim.updated_at = now;
    if !clp.payer_claim_control_number.is_empty() && !held_denial {
        claim.payer_claim_control_number = clp.payer_claim_control_number.clone();
    }
    if moved {
        claim.claim.status = target;
    }
    sqlx::query(
        "UPDATE claims SET balance_cents = $1, paid_cents = $2, status = $3, version = $4, \
         updated_at = $5, payer_claim_control_number = $6, patient_balance_cents = $10 \
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
    .bind(claim.patient_balance.cents())
    .execute(&mut *tx)
    .await?;
    if held_denial {
        sqlx::query("UPDATE claim_payments SET note = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(HELD_DENIAL_NOTE)
            .bind(tenant.as_str())
            .bind(payment_id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    if let Some(reversed) = &reverses {
        cancel_reversed_denials(tx, tenant, reversed, &payment_id).await?;
    }
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
            status: claim_status_name(claim.claim.status).to_string(),
            payment_date: Some(date_to_pb(payment_date)),
        };
        bus::publish(tx, &store::claim_event(claim, now, &payload)).await?;
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
            &ctx,
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
        patient_balance: Some(claim.patient_balance),
        unmatched_reason: None,
        denials,
        reversal,
    })
}

/// The payment a reversal takes back: among the claim's postings not already reversed
/// (reversals and predeterminations, which post nothing, excluded), the newest with the same
/// payer claim control number (when one is given) whose payment the reversal's negative CLP04
/// cancels; else the newest with that number; else the newest. The amount keeps a reversal of
/// a payment from taking a held duplicate denial (CO-18) of the same claim for it.
async fn reversed_payment(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
    payer_ccn: &str,
    reversal_paid: Money,
) -> Result<Option<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.payer_claim_control_number, p.paid_cents FROM claim_payments p \
         WHERE p.tenant_id = $1 AND p.claim_id = $2 AND p.status_code NOT IN ('22', '25') \
         AND NOT EXISTS (SELECT 1 FROM claim_payments r WHERE r.tenant_id = $1 AND r.reverses_payment_id = p.id) \
         ORDER BY p.id DESC",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(&mut *conn)
    .await?;
    let (mut same_number, mut newest) = (None, None);
    for row in rows {
        let id: String = row.try_get("id")?;
        let ccn: String = row.try_get("payer_claim_control_number")?;
        let paid: i64 = row.try_get("paid_cents")?;
        if payer_ccn.is_empty() || ccn == payer_ccn {
            if paid.checked_add(reversal_paid.cents()) == Some(0) {
                return Ok(Some(id));
            }
            same_number.get_or_insert_with(|| id.clone());
        }
        newest.get_or_insert(id);
    }
    Ok(same_number.or(newest))
}

/// Marks the denials recorded with a reversed payment as cancelled by the reversal: the payer
/// took that adjudication back, so they are no longer open (ListDenials and SummarizeDenials
/// leave them out).
async fn cancel_reversed_denials(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    reversed_payment_id: &str,
    reversal_payment_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE denials SET reversed_by_payment_id = $1 \
         WHERE tenant_id = $2 AND payment_id = $3 AND reversed_by_payment_id IS NULL",
    )
    .bind(reversal_payment_id)
    .bind(tenant.as_str())
    .bind(reversed_payment_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// Reads denials from the adjustments (claim and line level), classifies them with what arflow
/// knows about the claim (`ctx`: proof of timely filing for CO-29), records them and emits
/// ClaimDenied for each.
#[allow(clippy::too_many_arguments)]
async fn record_denials(
    tx: &mut AnyConnection,
    tenant: &TenantId,
    remittance_id: &str,
    payment_id: &str,
    remit: &RemitIn,
    clp: &ClaimPayIn,
    claim: &StoredClaim,
    ctx: &DenialContext,
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
        let class = classify_denial_in(&adj.group, &adj.reason, &remarks, ctx);
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
            category: class.category,
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
            category: denial_category_name(row.category).to_string(),
            group_code: row.group_code.clone(),
            reason_code: row.reason_code.clone(),
            remark_codes: row.remark_codes.clone(),
            appealable: row.appealable,
            resolution: row.resolution.clone(),
            owner: row.owner.clone(),
            amount_cents: row.amount.cents(),
            balance_cents: claim.balance.cents(),
            denial_date: Some(date_to_pb(denial_date)),
            procedure_code: row.procedure_code.clone(),
        };
        bus::publish(tx, &store::claim_event(claim, now, &payload)).await?;
        rows.push(row);
    }
    Ok(rows)
}
