//! SQL of the claims service: claims, their lines, status history and request ids.
//!
//! Every function takes the tenant as a typed [`TenantId`]; no query can forget it. Writes
//! put their events in the outbox inside the same transaction (`bus::publish`).
//!
//! Bulk intake ([`create_claims`]) writes a whole chunk with multi-row INSERTs in one
//! transaction; if the chunk hits a conflict (a duplicate patient control number, a racing
//! retry) it is rolled back and every item is written on its own, so one bad item never costs
//! the others and each gets its precise error.
use std::fmt::Write as _;

use arflow_domain::{
    ClaimStatus, Credential, Frequency, Money, Patient, Payer, Provider, ServiceLine, ValidClaim,
};
use arflow_platform::bus;
use arflow_platform::db::{Backend, Db, date_from_sql, date_to_sql, from_micros, to_micros};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

mod balances;
mod corrections;
mod create;
mod events;
mod interchange;

pub use balances::{BalanceFilter, BalanceTotals, summarize_balances, timely_filing_proof};
pub use create::{create_claims, create_one};
use events::submitted_event;
pub(crate) use events::{claim_event, status_changed_event};
pub use interchange::{exported_claim, next_interchange_control_number, record_export};

/// The tenant every query is scoped to (one type for every store).
pub use arflow_platform::db::TenantId;

pub use crate::error::Error;

/// A claim as stored: the validated claim plus what the service keeps about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredClaim {
    pub id: String,
    pub tenant_id: String,
    pub claim: ValidClaim,
    /// What the payer still owes (`balance_cents`): charge − payments − adjustments that settle
    /// the claim − what moved to the patient.
    pub balance: Money,
    /// What the patient owes (`patient_balance_cents`, migration 0016): patient responsibility
    /// adjustments (CAS group PR, CARC 100) moved here from the payer balance; a reversal moves
    /// them back.
    pub patient_balance: Money,
    /// What payers paid so far (reversals subtract).
    pub paid: Money,
    /// CLP07 / REF*1K, once a payer sent one; empty before.
    pub payer_claim_control_number: String,
    /// Scrubber warnings found at intake.
    pub warnings: Vec<StoredFinding>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A scrubber finding as stored with the claim (JSON in `claims.warnings`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredFinding {
    pub rule_id: String,
    /// `error` or `warning`.
    pub severity: String,
    pub field: String,
    pub message: String,
}

/// One claim to create.
#[derive(Clone, Debug)]
pub struct NewClaim {
    pub request_id: String,
    /// SHA-256 (hex) of the request's claim, to tell a retry from a reused request id.
    pub request_hash: String,
    pub claim: ValidClaim,
    /// Scrubber warnings to keep with the claim.
    pub warnings: Vec<StoredFinding>,
}

/// What creating one claim did.
#[derive(Clone, Debug)]
pub struct Created {
    pub claim: StoredClaim,
    /// The request id had already created this claim; nothing new was written.
    pub replayed: bool,
}

#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub version: i64,
    pub from_status: Option<ClaimStatus>,
    pub to_status: ClaimStatus,
    pub reason: String,
    pub actor: String,
    pub changed_at: DateTime<Utc>,
}

/// Filters of ListClaims. Empty strings and `None` mean "any".
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub clinic_id: Option<String>,
    /// When the caller's key is limited to some clinics: only those.
    pub clinic_scope: Vec<String>,
    pub payer_id: Option<String>,
    pub status: Option<ClaimStatus>,
    pub submitted_from: Option<NaiveDate>,
    pub submitted_to: Option<NaiveDate>,
    pub min_balance: Option<Money>,
}

pub const PRODUCER: &str = "claims";
pub(crate) const CLAIM_COLUMNS: &str = "id, tenant_id, clinic_id, external_id, patient_id, patient_first_name, \
    patient_last_name, patient_birth_date, member_id, payer_id, payer_name, rendering_npi, \
    rendering_name, rendering_credential, billing_npi, billing_name, diagnoses, \
    prior_authorization_number, frequency, original_claim_id, status, submission_date, \
    first_service_date, last_service_date, total_charge_cents, balance_cents, version, \
    created_at, updated_at, payer_claim_control_number, paid_cents, warnings";
pub(crate) const CLAIM_COLUMN_COUNT: usize = 32;
/// Read beside [`CLAIM_COLUMNS`] (written only by posting; a new claim's is 0, the default).
pub(crate) const CLAIM_READ_EXTRA: &str = "patient_balance_cents";
pub(crate) const LINE_COLUMNS: &str = "claim_id, tenant_id, line_number, service_date, procedure_code, \
    modifiers, units, minutes, charge_cents, place_of_service, diagnosis_pointers";
pub(crate) const LINE_COLUMN_COUNT: usize = 11;
pub(crate) const HISTORY_COLUMNS: &str =
    "claim_id, tenant_id, version, from_status, to_status, reason, actor, changed_at";
pub(crate) const REQUEST_COLUMNS: &str =
    "tenant_id, request_id, request_hash, claim_id, created_at";

/// `($1, $2, …), ($n, …)` for `rows` rows of `cols` placeholders each.
pub(crate) fn values_clause(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", r * cols + c + 1);
        }
        sql.push(')');
    }
    sql
}

pub(crate) fn join<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

pub(crate) fn split(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split(',').map(str::to_string).collect()
    }
}

/// Refreshes Postgres's planner statistics of the intake tables (SQLite plans without them).
/// A bulk import calls it as it grows the tables (`intake::Import`): until
/// autovacuum gets to it, Postgres plans the scrubber's history lookup as if the tenant had next
/// to no rows, and then reads every row of the tenant per chunk
/// (measured: 4 ms per chunk of 200 at 20 000 claims, against 0.2 ms once analyzed).
pub async fn refresh_intake_stats(db: &Db) -> Result<(), sqlx::Error> {
    if db.backend() == Backend::Postgres {
        // Only the columns those plans hinge on: the whole tables cost 10x more.
        sqlx::Executor::execute(db.pool(), "ANALYZE claims (tenant_id, patient_id)").await?;
    }
    Ok(())
}

pub(crate) async fn claim_exists(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM claims WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

pub async fn get_claim(
    db: &Db,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<StoredClaim>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    load_claim(&mut conn, tenant, id, false, db.backend()).await
}

pub(crate) async fn load_claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: bool,
    backend: Backend,
) -> Result<Option<StoredClaim>, sqlx::Error> {
    let lock = if for_update && backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {CLAIM_COLUMNS}, {CLAIM_READ_EXTRA} FROM claims WHERE tenant_id = $1 AND id = $2{lock}"
    );
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut claims = vec![claim_from_row(&row)?];
    attach_lines(conn, tenant, &mut claims).await?;
    Ok(claims.pop())
}

pub(crate) fn claim_from_row(row: &AnyRow) -> Result<StoredClaim, sqlx::Error> {
    let decode = |what: &str| sqlx::Error::Decode(format!("bad stored {what}").into());
    let text = |name: &str| row.try_get::<String, _>(name);
    let opt = |name: &str| row.try_get::<Option<String>, _>(name);
    let status = ClaimStatus::parse(&text("status")?).ok_or_else(|| decode("status"))?;
    let frequency = text("frequency")?
        .chars()
        .next()
        .and_then(Frequency::from_code)
        .ok_or_else(|| decode("frequency"))?;
    let credential = match opt("rendering_credential")? {
        Some(c) => Some(Credential::parse(&c).ok_or_else(|| decode("credential"))?),
        None => None,
    };
    let claim = ValidClaim {
        clinic_id: text("clinic_id")?,
        external_id: text("external_id")?,
        patient: Patient {
            id: text("patient_id")?,
            first_name: text("patient_first_name")?,
            last_name: text("patient_last_name")?,
            birth_date: date_from_sql(&text("patient_birth_date")?)?,
            member_id: text("member_id")?,
        },
        payer: Payer {
            id: text("payer_id")?,
            name: text("payer_name")?,
        },
        rendering_provider: Provider {
            npi: text("rendering_npi")?,
            name: text("rendering_name")?,
            credential,
        },
        billing_provider: Provider {
            npi: text("billing_npi")?,
            name: text("billing_name")?,
            credential: None,
        },
        diagnoses: split(&text("diagnoses")?),
        service_lines: Vec::new(),
        prior_authorization_number: opt("prior_authorization_number")?,
        frequency,
        original_claim_id: opt("original_claim_id")?,
        submission_date: opt("submission_date")?
            .map(|d| date_from_sql(&d))
            .transpose()?,
        status,
        total_charge: Money::from_cents(row.try_get("total_charge_cents")?),
    };
    Ok(StoredClaim {
        id: text("id")?,
        tenant_id: text("tenant_id")?,
        claim,
        balance: Money::from_cents(row.try_get("balance_cents")?),
        patient_balance: Money::from_cents(row.try_get("patient_balance_cents")?),
        paid: Money::from_cents(row.try_get("paid_cents")?),
        payer_claim_control_number: text("payer_claim_control_number")?,
        warnings: serde_json::from_str(&text("warnings")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        version: row.try_get("version")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

/// Loads the service lines of `claims` with one query.
pub(crate) async fn attach_lines(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    claims: &mut [StoredClaim],
) -> Result<(), sqlx::Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT {LINE_COLUMNS} FROM claim_lines WHERE tenant_id = $1 AND claim_id IN ({}) \
         ORDER BY claim_id, line_number",
        (0..claims.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
    for c in claims.iter() {
        q = q.bind(c.id.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    for row in rows {
        let claim_id: String = row.try_get("claim_id")?;
        let int = |name: &str| -> Result<u32, sqlx::Error> {
            let v: i64 = row.try_get(name)?;
            u32::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        };
        let pointers = split(&row.try_get::<String, _>("diagnosis_pointers")?)
            .iter()
            .map(|p| {
                p.parse::<u8>()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let line = ServiceLine {
            line_number: int("line_number")?,
            service_date: date_from_sql(&row.try_get::<String, _>("service_date")?)?,
            procedure_code: row.try_get("procedure_code")?,
            modifiers: split(&row.try_get::<String, _>("modifiers")?),
            units: int("units")?,
            minutes: int("minutes")?,
            charge: Money::from_cents(row.try_get("charge_cents")?),
            place_of_service: row.try_get("place_of_service")?,
            diagnosis_pointers: pointers,
        };
        if let Some(c) = claims.iter_mut().find(|c| c.id == claim_id) {
            c.claim.service_lines.push(line);
        }
    }
    Ok(())
}

/// One page of claims, newest first, and the id to continue after (when there is more).
pub async fn list_claims(
    db: &Db,
    tenant: &TenantId,
    filter: &ListFilter,
    after_id: Option<&str>,
    page_size: usize,
) -> Result<(Vec<StoredClaim>, Option<String>), sqlx::Error> {
    let mut sql =
        format!("SELECT {CLAIM_COLUMNS}, {CLAIM_READ_EXTRA} FROM claims WHERE tenant_id = $1");
    let mut binds: Vec<Bind> = vec![Bind::Text(tenant.as_str().to_string())];
    let mut push = |sql: &mut String, clause: &str, value: Bind| {
        binds.push(value);
        let _ = write!(sql, " AND {clause} ${}", binds.len());
    };
    if let Some(v) = &filter.clinic_id {
        push(&mut sql, "clinic_id =", Bind::Text(v.clone()));
    }
    if let Some(v) = &filter.payer_id {
        push(&mut sql, "payer_id =", Bind::Text(v.clone()));
    }
    if let Some(v) = filter.status {
        push(&mut sql, "status =", Bind::Text(v.as_str().to_string()));
    }
    if let Some(v) = filter.submitted_from {
        push(&mut sql, "submission_date >=", Bind::Text(date_to_sql(v)));
    }
    if let Some(v) = filter.submitted_to {
        push(&mut sql, "submission_date <=", Bind::Text(date_to_sql(v)));
    }
    if let Some(v) = filter.min_balance {
        push(&mut sql, "balance_cents >=", Bind::Int(v.cents()));
    }
    if let Some(v) = after_id {
        push(&mut sql, "id <", Bind::Text(v.to_string()));
    }
    if !filter.clinic_scope.is_empty() {
        let start = binds.len();
        let marks: Vec<String> = (0..filter.clinic_scope.len())
            .map(|i| format!("${}", start + i + 1))
            .collect();
        let _ = write!(sql, " AND clinic_id IN ({})", marks.join(", "));
        binds.extend(filter.clinic_scope.iter().cloned().map(Bind::Text));
    }
    let _ = write!(sql, " ORDER BY id DESC LIMIT {}", page_size + 1);
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        };
    }
    let mut conn = db.pool().acquire().await?;
    let rows = q.fetch_all(&mut *conn).await?;
    let more = rows.len() > page_size;
    let mut claims = rows
        .iter()
        .take(page_size)
        .map(claim_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    attach_lines(&mut conn, tenant, &mut claims).await?;
    let next = if more {
        claims.last().map(|c| c.id.clone())
    } else {
        None
    };
    Ok((claims, next))
}

enum Bind {
    Text(String),
    Int(i64),
}

/// Moves a claim through its state machine, records the change and emits its events.
#[allow(clippy::too_many_arguments)]
pub async fn update_status(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    to: ClaimStatus,
    reason: &str,
    expected_version: Option<i64>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StoredClaim, Error> {
    update_status_with(
        db,
        tenant,
        id,
        to,
        reason,
        expected_version,
        actor,
        now,
        |_| Vec::new(),
    )
    .await
}

/// [`update_status`], also publishing `also(claim as moved)` in the move's transaction: the
/// events that describe the same change (a 277's ClaimStatusReported) commit with it or not
/// at all.
#[allow(clippy::too_many_arguments)]
pub async fn update_status_with(
    db: &Db,
    tenant: &TenantId,
    id: &str,
    to: ClaimStatus,
    reason: &str,
    expected_version: Option<i64>,
    actor: &str,
    now: DateTime<Utc>,
    also: impl FnOnce(&StoredClaim) -> Vec<bus::Envelope>,
) -> Result<StoredClaim, Error> {
    let mut tx = db.begin().await?;
    let mut claim = load_claim(&mut tx, tenant, id, true, db.backend())
        .await?
        .ok_or(Error::NotFound)?;
    if let Some(expected) = expected_version
        && expected != claim.version
    {
        return Err(Error::VersionMismatch {
            expected,
            found: claim.version,
        });
    }
    let from = claim.claim.status;
    from.transition(to)?;
    let previous_version = claim.version;
    claim.claim.status = to;
    claim.version += 1;
    claim.updated_at = now;
    if to == ClaimStatus::Submitted {
        // A (re)submission starts the payer's clock again; the filing clock never stopped.
        claim.claim.submission_date = Some(now.date_naive());
    }
    let updated = sqlx::query(
        "UPDATE claims SET status = $1, version = $2, updated_at = $3, submission_date = $4 \
         WHERE tenant_id = $5 AND id = $6 AND version = $7",
    )
    .bind(to.as_str())
    .bind(claim.version)
    .bind(to_micros(now))
    .bind(claim.claim.submission_date.map(date_to_sql))
    .bind(tenant.as_str())
    .bind(id)
    .bind(previous_version)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Only reachable on SQLite without row locks if a writer slipped in; BEGIN IMMEDIATE
        // makes that impossible, but the guard keeps the invariant explicit.
        return Err(Error::VersionMismatch {
            expected: previous_version,
            found: previous_version + 1,
        });
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO claim_status_history ({HISTORY_COLUMNS}) VALUES {}",
        values_clause(1, 8)
    )))
    .bind(id)
    .bind(tenant.as_str())
    .bind(claim.version)
    .bind(Some(from.as_str()))
    .bind(to.as_str())
    .bind(reason)
    .bind(actor)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    bus::publish(&mut tx, &status_changed_event(&claim, from, reason, now)).await?;
    if to == ClaimStatus::Submitted {
        bus::publish(&mut tx, &submitted_event(&claim, now)).await?;
        // A correction sent to the payer closes its original for AR.
        corrections::close_corrected_original(&mut tx, db.backend(), tenant, &claim, actor, now)
            .await?;
    }
    let also = also(&claim);
    if !also.is_empty() {
        bus::publish_many(&mut tx, &also).await?;
    }
    tx.commit().await?;
    Ok(claim)
}

pub async fn history(
    db: &Db,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Vec<HistoryEntry>>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    if !claim_exists(&mut conn, tenant, id).await? {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT version, from_status, to_status, reason, actor, changed_at FROM claim_status_history \
         WHERE tenant_id = $1 AND claim_id = $2 ORDER BY version",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let decode = || sqlx::Error::Decode("bad stored status".into());
    rows.iter()
        .map(|row| {
            Ok(HistoryEntry {
                version: row.try_get("version")?,
                from_status: match row.try_get::<Option<String>, _>("from_status")? {
                    Some(s) => Some(ClaimStatus::parse(&s).ok_or_else(decode)?),
                    None => None,
                },
                to_status: ClaimStatus::parse(&row.try_get::<String, _>("to_status")?)
                    .ok_or_else(decode)?,
                reason: row.try_get("reason")?,
                actor: row.try_get("actor")?,
                changed_at: from_micros(row.try_get("changed_at")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map(Some)
}

/// Each claim's patient history with its payer (same clinic and patient id, same payer): the
/// lines of earlier claims, without voids, claims since replaced, and `replacing`. One query
/// for all `claims`.
pub async fn prior_services_many(
    db: &Db,
    tenant: &TenantId,
    claims: &[&ValidClaim],
    replacing: Option<&str>,
) -> Result<Vec<Vec<arflow_domain::rules::PriorService>>, sqlx::Error> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let mut patients: Vec<&str> = claims.iter().map(|c| c.patient.id.as_str()).collect();
    patients.sort_unstable();
    patients.dedup();
    let sql = format!(
        "SELECT c.clinic_id, c.patient_id, c.payer_id, c.rendering_npi, l.service_date, \
         l.procedure_code, l.units, l.modifiers, l.place_of_service \
         FROM claims c JOIN claim_lines l ON l.claim_id = c.id \
         WHERE c.tenant_id = $1 AND c.frequency <> '8' AND c.id <> $2 \
         AND NOT EXISTS (SELECT 1 FROM claims r WHERE r.tenant_id = c.tenant_id AND r.original_claim_id = c.id) \
         AND c.patient_id IN ({})",
        (0..patients.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(replacing.unwrap_or(""));
    for p in &patients {
        q = q.bind(*p);
    }
    let rows = q.fetch_all(db.pool()).await?;
    let mut out = vec![Vec::new(); claims.len()];
    for row in rows {
        let (clinic, patient, payer): (String, String, String) = (
            row.try_get("clinic_id")?,
            row.try_get("patient_id")?,
            row.try_get("payer_id")?,
        );
        let units: i64 = row.try_get("units")?;
        let service = arflow_domain::rules::PriorService {
            service_date: date_from_sql(&row.try_get::<String, _>("service_date")?)?,
            procedure_code: row.try_get("procedure_code")?,
            units: u32::try_from(units).unwrap_or(0),
            modifiers: split(&row.try_get::<String, _>("modifiers")?),
            place_of_service: row.try_get("place_of_service")?,
            rendering_npi: row.try_get("rendering_npi")?,
        };
        for (i, c) in claims.iter().enumerate() {
            if c.clinic_id == clinic && c.patient.id == patient && c.payer.id == payer {
                out[i].push(service.clone());
            }
        }
    }
    Ok(out)
}
