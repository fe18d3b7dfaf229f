//! Denials as recorded: the ListDenials page and the SummarizeDenials roll-up (open denials:
//! those a reversal cancelled are left out).
use arflow_domain::{DenialCategory, Money};
use arflow_platform::db::{self, Db, date_to_sql};
use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, Row};

use crate::store::{self, TenantId};

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
    pub category: DenialCategory,
    pub appealable: bool,
    pub resolution: String,
    pub owner: String,
    pub evidence: Vec<String>,
    pub amount: Money,
    pub denial_date: NaiveDate,
    pub remittance_id: String,
}

/// Filters of ListDenials.
#[derive(Clone, Debug, Default)]
pub struct DenialFilter {
    pub clinic_id: Option<String>,
    pub clinic_scope: Vec<String>,
    pub payer_id: Option<String>,
    pub category: Option<DenialCategory>,
    pub claim_id: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The stored category (`DenialCategory::as_str`) of a denials row.
fn category_from_row(row: &sqlx::any::AnyRow) -> Result<DenialCategory, sqlx::Error> {
    DenialCategory::parse(&row.try_get::<String, _>("category")?)
        .ok_or_else(|| sqlx::Error::Decode("bad stored denial category".into()))
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
        category: category_from_row(row)?,
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

/// WHERE clause and binds of a denial filter (tenant is `$1`). Only open denials: one whose
/// payment the payer reversed (CLP02 = 22, `reversed_by_payment_id`, migration 0013) was
/// undone with it and is left out of lists and summaries.
fn denial_where(filter: &DenialFilter) -> (String, Vec<String>) {
    let mut sql = String::from(" WHERE tenant_id = $1 AND reversed_by_payment_id IS NULL");
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
        add(&mut sql, "category =", v.as_str().to_string());
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
    pub category: DenialCategory,
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
                category: category_from_row(row)?,
                payer_id: row.try_get("payer_id")?,
                procedure_code: row.try_get("procedure_code")?,
                clinic_id: row.try_get("clinic_id")?,
                count: row.try_get("n")?,
                amount: Money::from_cents(row.try_get("amount")?),
            })
        })
        .collect()
}
