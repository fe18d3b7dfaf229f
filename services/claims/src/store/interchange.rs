//! The per-tenant sequence of 837P interchange control numbers (`claims_interchange_seq`).
use arflow_platform::db::Db;
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
