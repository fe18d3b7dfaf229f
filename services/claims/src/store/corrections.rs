//! A submitted correction closes its original for AR (issue 10, docs/architecture.md
//! "Corrections"): a frequency-7 replacement takes over the original's open balance and work, a
//! frequency-8 void ends it. Runs in the transaction that submits the correction, so the
//! correction's ClaimSubmitted and the original's ClaimStatusChanged commit together.
use arflow_domain::{ClaimStatus, Frequency};
use arflow_platform::bus;
use arflow_platform::db::{Backend, to_micros};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AssertSqlSafe};

use super::events::{replaced_event, status_changed_event};
use super::{HISTORY_COLUMNS, StoredClaim, TenantId, load_claim, values_clause};

/// Closes the original of the submitted correction `correction` (status Closed, a history row
/// naming the correction, one ClaimStatusChanged). The original's payer balance stays on its
/// row as history but leaves the receivables with its open status (SummarizeBalances counts
/// open claims only), so it is not counted twice beside the replacement's. An original that is
/// already closed (a second correction) is left alone. Returns whether it closed one.
pub(crate) async fn close_corrected_original(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
    correction: &StoredClaim,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let Some(original_id) = &correction.claim.original_claim_id else {
        return Ok(false);
    };
    let replaced = match correction.claim.frequency {
        Frequency::Replacement => true,
        Frequency::Void => false,
        _ => return Ok(false),
    };
    let Some(mut original) = load_claim(conn, tenant, original_id, true, backend).await? else {
        return Ok(false);
    };
    let from = original.claim.status;
    if !from.can_transition_to(ClaimStatus::Closed) {
        return Ok(false);
    }
    let previous_version = original.version;
    original.claim.status = ClaimStatus::Closed;
    original.version += 1;
    original.updated_at = now;
    let updated = sqlx::query(
        "UPDATE claims SET status = $1, version = $2, updated_at = $3 \
         WHERE tenant_id = $4 AND id = $5 AND version = $6",
    )
    .bind(ClaimStatus::Closed.as_str())
    .bind(original.version)
    .bind(to_micros(now))
    .bind(tenant.as_str())
    .bind(original_id.as_str())
    .bind(previous_version)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    let (reason, history) = if replaced {
        ("replaced", format!("replaced by claim {}", correction.id))
    } else {
        ("voided", format!("voided by claim {}", correction.id))
    };
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO claim_status_history ({HISTORY_COLUMNS}) VALUES {}",
        values_clause(1, 8)
    )))
    .bind(original_id.as_str())
    .bind(tenant.as_str())
    .bind(original.version)
    .bind(Some(from.as_str()))
    .bind(ClaimStatus::Closed.as_str())
    .bind(history.as_str())
    .bind(actor)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    let event = if replaced {
        replaced_event(&original, from, reason, &correction.id, now)
    } else {
        status_changed_event(&original, from, reason, now)
    };
    bus::publish(conn, &event).await?;
    Ok(true)
}
