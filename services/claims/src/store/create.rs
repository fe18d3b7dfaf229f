//! Creating claims: one at a time (with replay of a retried request id) or a whole intake chunk
//! with multi-row INSERTs (see the module docs of [`crate::store`] for the batch strategy).
use arflow_domain::{ClaimStatus, Money, ServiceLine};
use arflow_platform::bus;
use arflow_platform::db::{self, Db, date_to_sql, to_micros};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::corrections::close_corrected_original;
use super::events::submitted_event;
use super::{
    CLAIM_COLUMN_COUNT, CLAIM_COLUMNS, Created, Error, HISTORY_COLUMNS, LINE_COLUMN_COUNT,
    LINE_COLUMNS, NewClaim, REQUEST_COLUMNS, StoredClaim, TenantId, claim_exists, get_claim, join,
    values_clause,
};

/// Creates claims, in order; one result per item. See the module docs for the batch strategy.
pub async fn create_claims(
    db: &Db,
    tenant: &TenantId,
    actor: &str,
    items: &[NewClaim],
    now: DateTime<Utc>,
) -> Vec<Result<Created, Error>> {
    if items.is_empty() {
        return Vec::new();
    }
    if items.len() > 1 {
        match create_batch(db, tenant, actor, items, now).await {
            Ok(Some(created)) => return created.into_iter().map(Ok).collect(),
            Ok(None) => {} // a conflict somewhere: fall back to one transaction per item
            Err(err) => tracing::warn!(error = %err, "claims batch failed; retrying item by item"),
        }
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(create_one(db, tenant, actor, item, now).await);
    }
    results
}

/// Creates one claim in its own transaction, or replays the claim its request id made.
pub async fn create_one(
    db: &Db,
    tenant: &TenantId,
    actor: &str,
    item: &NewClaim,
    now: DateTime<Utc>,
) -> Result<Created, Error> {
    // Two attempts: a concurrent retry of the same request id loses the insert race once,
    // then finds the winner's claim.
    for _ in 0..2 {
        if let Some(found) = replay(db, tenant, item).await? {
            return Ok(found);
        }
        let mut tx = db.begin().await?;
        if let Some(original) = &item.claim.original_claim_id
            && !claim_exists(&mut tx, tenant, original).await?
        {
            return Err(Error::OriginalNotFound);
        }
        let stored = new_stored(tenant, item, now);
        match insert_rows(&mut tx, tenant, actor, &[(item, &stored)], now).await {
            Ok(()) => {
                if stored.claim.status == ClaimStatus::Submitted {
                    // A correction sent to the payer closes its original for AR.
                    close_corrected_original(&mut tx, db.backend(), tenant, &stored, actor, now)
                        .await?;
                }
                tx.commit().await?;
                return Ok(Created {
                    claim: stored,
                    replayed: false,
                });
            }
            Err(err) if db::is_unique_violation(&err) => {
                drop(tx);
                if replay(db, tenant, item).await?.is_none() {
                    return Err(Error::DuplicateExternalId);
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    replay(db, tenant, item)
        .await?
        .ok_or(Error::DuplicateExternalId)
}

/// The batch path: `Ok(None)` when anything needs item-by-item treatment.
async fn create_batch(
    db: &Db,
    tenant: &TenantId,
    actor: &str,
    items: &[NewClaim],
    now: DateTime<Utc>,
) -> Result<Option<Vec<Created>>, sqlx::Error> {
    // Retries and replacements are rare in bulk: send them down the careful path.
    if items.iter().any(|i| i.claim.original_claim_id.is_some()) {
        return Ok(None);
    }
    // A request id seen before (a retried import) fails the first INSERT (`claim_requests`
    // goes first, see `insert_rows`), before any other work: then item by item, which replays.
    let mut tx = db.begin().await?;
    let stored: Vec<StoredClaim> = items.iter().map(|i| new_stored(tenant, i, now)).collect();
    let pairs: Vec<(&NewClaim, &StoredClaim)> = items.iter().zip(stored.iter()).collect();
    // Only multi-row INSERTs follow.
    db::reuse_plans(&mut tx).await?;
    match insert_rows(&mut tx, tenant, actor, &pairs, now).await {
        Ok(()) => {}
        Err(err) if db::is_unique_violation(&err) => return Ok(None),
        Err(err) => return Err(err),
    }
    tx.commit().await?;
    Ok(Some(
        stored
            .into_iter()
            .map(|claim| Created {
                claim,
                replayed: false,
            })
            .collect(),
    ))
}

fn new_stored(tenant: &TenantId, item: &NewClaim, now: DateTime<Utc>) -> StoredClaim {
    let claim = &item.claim;
    StoredClaim {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.as_str().to_string(),
        claim: claim.clone(),
        balance: claim.total_charge,
        patient_balance: Money::ZERO,
        paid: Money::ZERO,
        payer_claim_control_number: String::new(),
        warnings: item.warnings.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn replay(db: &Db, tenant: &TenantId, item: &NewClaim) -> Result<Option<Created>, Error> {
    let row = sqlx::query(
        "SELECT request_hash, claim_id FROM claim_requests WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(tenant.as_str())
    .bind(item.request_id.as_str())
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("request_hash")?;
    if hash != item.request_hash {
        return Err(Error::RequestIdReused);
    }
    let claim_id: String = row.try_get("claim_id")?;
    let claim = get_claim(db, tenant, &claim_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Some(Created {
        claim,
        replayed: true,
    }))
}

/// Inserts request ids (first: a retried request fails here, before the other work), claims,
/// lines, first history entries and events with one multi-row INSERT per table.
async fn insert_rows(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    actor: &str,
    items: &[(&NewClaim, &StoredClaim)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // Postgres allows 65 535 bind parameters per statement; stay well under it.
    for chunk in items.chunks(500) {
        let sql = format!(
            "INSERT INTO claim_requests ({REQUEST_COLUMNS}) VALUES {}",
            values_clause(chunk.len(), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (n, s) in chunk {
            q = q
                .bind(tenant.as_str())
                .bind(n.request_id.as_str())
                .bind(n.request_hash.as_str())
                .bind(s.id.as_str())
                .bind(to_micros(now));
        }
        q.execute(&mut *conn).await?;
        insert_claims(conn, chunk).await?;
        insert_lines(conn, chunk).await?;
        let sql = format!(
            "INSERT INTO claim_status_history ({HISTORY_COLUMNS}) VALUES {}",
            values_clause(chunk.len(), 8)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (_, s) in chunk {
            q = q
                .bind(s.id.as_str())
                .bind(tenant.as_str())
                .bind(1_i64)
                .bind(None::<String>)
                .bind(s.claim.status.as_str())
                .bind("created")
                .bind(actor)
                .bind(to_micros(now));
        }
        q.execute(&mut *conn).await?;
        let events: Vec<bus::Envelope> = chunk
            .iter()
            .filter(|(_, s)| s.claim.status == ClaimStatus::Submitted)
            .map(|(_, s)| submitted_event(s, now))
            .collect();
        bus::publish_many(conn, &events).await?;
    }
    Ok(())
}

async fn insert_claims(
    conn: &mut AnyConnection,
    chunk: &[(&NewClaim, &StoredClaim)],
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO claims ({CLAIM_COLUMNS}) VALUES {}",
        values_clause(chunk.len(), CLAIM_COLUMN_COUNT)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (_, s) in chunk {
        let c = &s.claim;
        q = q
            .bind(s.id.as_str())
            .bind(s.tenant_id.as_str())
            .bind(c.clinic_id.as_str())
            .bind(c.external_id.as_str())
            .bind(c.patient.id.as_str())
            .bind(c.patient.first_name.as_str())
            .bind(c.patient.last_name.as_str())
            .bind(date_to_sql(c.patient.birth_date))
            .bind(c.patient.member_id.as_str())
            .bind(c.payer.id.as_str())
            .bind(c.payer.name.as_str())
            .bind(c.rendering_provider.npi.as_str())
            .bind(c.rendering_provider.name.as_str())
            .bind(c.rendering_provider.credential.map(|x| x.as_str()))
            .bind(c.billing_provider.npi.as_str())
            .bind(c.billing_provider.name.as_str())
            .bind(c.diagnoses.join(","))
            .bind(c.prior_authorization_number.clone())
            .bind(c.frequency.code().to_string())
            .bind(c.original_claim_id.clone())
            .bind(c.status.as_str())
            .bind(c.submission_date.map(date_to_sql))
            .bind(date_to_sql(c.first_service_date()))
            .bind(date_to_sql(c.last_service_date()))
            .bind(c.total_charge.cents())
            .bind(s.balance.cents())
            .bind(s.version)
            .bind(to_micros(s.created_at))
            .bind(to_micros(s.updated_at))
            .bind(s.payer_claim_control_number.as_str())
            .bind(s.paid.cents())
            .bind(serde_json::to_string(&s.warnings).unwrap_or_else(|_| "[]".into()));
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

async fn insert_lines(
    conn: &mut AnyConnection,
    chunk: &[(&NewClaim, &StoredClaim)],
) -> Result<(), sqlx::Error> {
    let lines: Vec<(&StoredClaim, &ServiceLine)> = chunk
        .iter()
        .flat_map(|(_, s)| s.claim.service_lines.iter().map(move |l| (*s, l)))
        .collect();
    for part in lines.chunks(2000) {
        let sql = format!(
            "INSERT INTO claim_lines ({LINE_COLUMNS}) VALUES {}",
            values_clause(part.len(), LINE_COLUMN_COUNT)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (s, l) in part {
            q = q
                .bind(s.id.as_str())
                .bind(s.tenant_id.as_str())
                .bind(i64::from(l.line_number))
                .bind(date_to_sql(l.service_date))
                .bind(l.procedure_code.as_str())
                .bind(l.modifiers.join(","))
                .bind(i64::from(l.units))
                .bind(i64::from(l.minutes))
                .bind(l.charge.cents())
                .bind(l.place_of_service.as_str())
                .bind(join(&l.diagnosis_pointers));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
