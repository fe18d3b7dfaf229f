//! The per-tenant sequence of 837P interchange control numbers (`claims_interchange_seq`) and
//! which claim each exported interchange carried (`claim_exports`).
use arflow_platform::db::{Db, to_micros};
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Error, TenantId};

/// Largest ISA13: the element has nine digits; the sequence wraps to 1 after it.
pub const MAX_INTERCHANGE_CONTROL_NUMBER: i64 = 999_999_999;

/// Takes the tenant's next interchange control number (1 for its first export). One statement,
/// so concurrent exports never get the same number; `INSERT … ON CONFLICT DO UPDATE …
/// RETURNING` reads the same on Postgres and SQLite (3.35+).
pub async fn next_interchange_control_number(db: &Db, tenant: &TenantId) -> Result<u32, Error> {
    let row = sqlx::query(
        "INSERT INTO claims_interchange_seq (tenant_id, last_control_number) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_control_number = CASE \
         WHEN claims_interchange_seq.last_control_number >= $2 THEN 1 \
         ELSE claims_interchange_seq.last_control_number + 1 END \
         RETURNING last_control_number",
    )
    .bind(tenant.as_str())
    .bind(MAX_INTERCHANGE_CONTROL_NUMBER)
    .fetch_one(db.pool())
    .await
    .map_err(Error::db("take the next interchange control number"))?;
    let number: i64 = row
        .try_get("last_control_number")
        .map_err(Error::db("read the interchange control number"))?;
    u32::try_from(number).map_err(|e| Error::Db {
        context: "interchange control number out of range",
        source: sqlx::Error::Decode(Box::new(e)),
    })
}

/// Records that interchange `control_number` carries `claim_id`, so its 999 acknowledgment
/// finds the claim (migration 0014). A number reused after the sequence wrapped names its
/// newest export.
pub async fn record_export(
    db: &Db,
    tenant: &TenantId,
    control_number: u32,
    claim_id: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO claim_exports (tenant_id, control_number, claim_id, exported_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, control_number) DO UPDATE SET \
         claim_id = excluded.claim_id, exported_at = excluded.exported_at",
    )
    .bind(tenant.as_str())
    .bind(i64::from(control_number))
    .bind(claim_id)
    .bind(to_micros(now))
    .execute(db.pool())
    .await
    .map_err(Error::db("record the 837P export"))?;
    Ok(())
}

/// The claim the tenant's interchange `control_number` carried, if we exported it.
pub async fn exported_claim(
    db: &Db,
    tenant: &TenantId,
    control_number: i64,
) -> Result<Option<String>, Error> {
    let row = sqlx::query(
        "SELECT claim_id FROM claim_exports WHERE tenant_id = $1 AND control_number = $2",
    )
    .bind(tenant.as_str())
    .bind(control_number)
    .fetch_optional(db.pool())
    .await
    .map_err(Error::db("find the exported claim"))?;
    row.map(|r| r.try_get("claim_id"))
        .transpose()
        .map_err(Error::db("read the exported claim"))
}
