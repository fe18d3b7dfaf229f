//! Claim payments as recorded: unmatched ones (ListUnmatchedPayments) and a claim's postings.
use arflow_domain::Money;
use arflow_platform::db::{self, Db};
use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, Row};

use crate::store::TenantId;

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

/// A provider-level adjustment tied to a claim (migration 0018).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimPlbRow {
    pub remittance_id: String,
    pub reason_code: String,
    pub reference: String,
    pub amount: Money,
}

/// The PLB adjustments that name the claim, in posting order.
pub async fn claim_provider_adjustments(
    db: &Db,
    tenant: &TenantId,
    claim_id: &str,
) -> Result<Vec<ClaimPlbRow>, sqlx::Error> {
    sqlx::query(
        "SELECT remittance_id, reason_code, reference, amount_cents FROM provider_adjustments \
         WHERE tenant_id = $1 AND claim_id = $2 ORDER BY remittance_id, position",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(ClaimPlbRow {
            remittance_id: r.try_get("remittance_id")?,
            reason_code: r.try_get("reason_code")?,
            reference: r.try_get("reference")?,
            amount: Money::from_cents(r.try_get("amount_cents")?),
        })
    })
    .collect()
}
