//! Balance totals (SummarizeBalances) and what a claim's history proves to a payer (timely
//! filing, for CO-29).
use std::fmt::Write as _;

use arflow_domain::{ClaimStatus, Frequency, Money, followup};
use arflow_platform::db::Db;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::TenantId;

/// Filters of SummarizeBalances. `None` means "any".
#[derive(Clone, Debug, Default)]
pub struct BalanceFilter {
    pub clinic_id: Option<String>,
    /// When the caller's key is limited to some clinics: only those.
    pub clinic_scope: Vec<String>,
    pub payer_id: Option<String>,
}

/// What is owed on a tenant's claims, by the payers and by the patients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalanceTotals {
    /// Sum of the payer balances of the claims with the payer (billed, not paid, written off
    /// or closed): accounts receivable from payers.
    pub payer_balance: Money,
    /// Those claims with a payer balance above zero.
    pub payer_balance_claims: i64,
    /// Sum of the patient balances of every claim, whatever its status with the payer.
    pub patient_balance: Money,
    /// Claims with a patient balance above zero.
    pub patient_balance_claims: i64,
}

/// Whether a claim in `status` counts in the payers' receivables: billed (not a draft) and
/// open with the payer.
fn owed_by_payer(status: ClaimStatus) -> bool {
    status.is_open() && status != ClaimStatus::Draft
}

/// Payer and patient balance totals of the claims the filter selects (voids carry no money and
/// are left out). One grouped query.
pub async fn summarize_balances(
    db: &Db,
    tenant: &TenantId,
    filter: &BalanceFilter,
) -> Result<BalanceTotals, sqlx::Error> {
    let mut sql = String::from(
        "SELECT status, CAST(SUM(balance_cents) AS BIGINT) AS payer, \
         CAST(SUM(CASE WHEN balance_cents > 0 THEN 1 ELSE 0 END) AS BIGINT) AS payer_n, \
         CAST(SUM(patient_balance_cents) AS BIGINT) AS patient, \
         CAST(SUM(CASE WHEN patient_balance_cents > 0 THEN 1 ELSE 0 END) AS BIGINT) AS patient_n \
         FROM claims WHERE tenant_id = $1 AND frequency <> $2",
    );
    let mut binds: Vec<String> = vec![
        tenant.as_str().to_string(),
        Frequency::Void.code().to_string(),
    ];
    if let Some(c) = &filter.clinic_id {
        binds.push(c.clone());
        let _ = write!(sql, " AND clinic_id = ${}", binds.len());
    }
    if let Some(p) = &filter.payer_id {
        binds.push(p.clone());
        let _ = write!(sql, " AND payer_id = ${}", binds.len());
    }
    if !filter.clinic_scope.is_empty() {
        let start = binds.len();
        let marks: Vec<String> = (0..filter.clinic_scope.len())
            .map(|i| format!("${}", start + i + 1))
            .collect();
        let _ = write!(sql, " AND clinic_id IN ({})", marks.join(", "));
        binds.extend(filter.clinic_scope.iter().cloned());
    }
    sql.push_str(" GROUP BY status");
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let mut totals = BalanceTotals::default();
    for row in q.fetch_all(db.pool()).await? {
        let status = ClaimStatus::parse(&row.try_get::<String, _>("status")?)
            .ok_or_else(|| sqlx::Error::Decode("bad stored status".into()))?;
        let cents = |name: &str| {
            row.try_get::<Option<i64>, _>(name)
                .map(Option::unwrap_or_default)
        };
        if owed_by_payer(status) {
            totals.payer_balance =
                Money::from_cents(totals.payer_balance.cents() + cents("payer")?);
            totals.payer_balance_claims += cents("payer_n")?;
        }
        totals.patient_balance =
            Money::from_cents(totals.patient_balance.cents() + cents("patient")?);
        totals.patient_balance_claims += cents("patient_n")?;
    }
    Ok(totals)
}

/// Whether arflow holds proof that the payer or its clearinghouse had the claim (for CO-29,
/// "appeal with proof of timely filing when arflow holds it"): the claim's history shows a move
/// made by a payer file (a 277/277CA, reason `277CA A2:20`, or an 835, reason `835 TRN …`) to a
/// status that proves filing ([`followup::proves_filing`]: accepted, pending, paid, partially
/// paid, denied, appealed). A rejection (277CA A3/A7, 999 R) or a status set by hand is not
/// proof. Call it before the current posting writes its own history row.
pub async fn timely_filing_proof(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claim_id: &str,
) -> Result<bool, sqlx::Error> {
    let proving: Vec<&str> = ClaimStatus::ALL
        .into_iter()
        .filter(|s| followup::proves_filing(*s))
        .map(ClaimStatus::as_str)
        .collect();
    let marks: Vec<String> = (0..proving.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT 1 AS held FROM claim_status_history WHERE tenant_id = $1 AND claim_id = $2 \
         AND (reason LIKE '277%' OR reason LIKE '835 %') AND to_status IN ({}) LIMIT 1",
        marks.join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(claim_id);
    for s in proving {
        q = q.bind(s);
    }
    Ok(q.fetch_optional(&mut *conn).await?.is_some())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{self, NewClaim};
    use arflow_domain::{fixtures, validate_claim};
    use arflow_testkit::{PgDatabase, SqliteFile};
    use chrono::{NaiveDate, TimeZone, Utc};

    async fn proof_contract(db: Db) {
        let t = TenantId::new("acme");
        let other = TenantId::new("globex");
        let today = NaiveDate::from_ymd_opt(2026, 6, 15).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap();
        let new = |pcn: &str| {
            let mut input = fixtures::valid_claim_input(today);
            input.external_id = pcn.into();
            NewClaim {
                request_id: pcn.into(),
                request_hash: pcn.into(),
                claim: validate_claim(&input, today).unwrap(),
                warnings: Vec::new(),
            }
        };
        let held = |id: String, tenant: TenantId| {
            let db = db.clone();
            async move {
                let mut conn = db.pool().acquire().await.unwrap();
                timely_filing_proof(&mut conn, &tenant, &id).await.unwrap()
            }
        };
        let mv = |id: String, to: ClaimStatus, reason: &'static str| {
            let (db, t) = (db.clone(), t.clone());
            async move {
                store::update_status(&db, &t, &id, to, reason, None, "key:k", now)
                    .await
                    .unwrap();
            }
        };

        // Submitted only: nothing a payer said.
        let a = store::create_one(&db, &t, "key:k", &new("P1"), now)
            .await
            .unwrap();
        let a = a.claim.id;
        assert!(!held(a.clone(), t.clone()).await);
        // A 277CA rejection is not proof.
        mv(a.clone(), ClaimStatus::Rejected, "277CA A7:562").await;
        assert!(!held(a.clone(), t.clone()).await);
        // A status set by hand is not proof either.
        mv(a.clone(), ClaimStatus::Submitted, "resubmitted").await;
        mv(a.clone(), ClaimStatus::Accepted, "phoned the payer").await;
        assert!(!held(a.clone(), t.clone()).await);

        // A 277CA acceptance is.
        let b = store::create_one(&db, &t, "key:k", &new("P2"), now)
            .await
            .unwrap();
        let b = b.claim.id;
        mv(b.clone(), ClaimStatus::Accepted, "277CA A2:20").await;
        assert!(held(b.clone(), t.clone()).await);
        // Only for its tenant.
        assert!(!held(b.clone(), other).await);

        // So is an earlier adjudication read from an 835.
        let c = store::create_one(&db, &t, "key:k", &new("P3"), now)
            .await
            .unwrap();
        let c = c.claim.id;
        mv(c.clone(), ClaimStatus::Denied, "835 TRN T1 CLP02 4").await;
        assert!(held(c, t.clone()).await);
    }

    #[tokio::test]
    async fn timely_filing_proof_on_postgres() {
        let pg = PgDatabase::create().await.unwrap();
        let db = Db::connect(&pg.url, 5).await.unwrap();
        db.migrate().await.unwrap();
        proof_contract(db).await;
    }

    #[tokio::test]
    async fn timely_filing_proof_on_sqlite() {
        let file = SqliteFile::create().unwrap();
        let db = Db::connect(&file.url, 5).await.unwrap();
        db.migrate().await.unwrap();
        proof_contract(db).await;
    }
}
