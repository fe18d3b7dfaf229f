//! SQL of the assignment service: specialists, tasks, the claim projection, the follow-up
//! log, the change log, and the events written to the outbox with each change.
//!
//! Every function takes the tenant as a typed [`TenantId`]; no query can forget it.
//!
//! # Assignment and concurrency
//!
//! A task is handed out by `assign`: the claim's last specialist first (sticky), else the
//! active, in-office specialist covering the payer and clinic who is least loaded relative to
//! capacity. Taking a specialist is a conditional
//! `UPDATE … SET open_tasks = open_tasks + 1 WHERE open_tasks < capacity AND active …`, so
//! two replicas can never overfill a queue: on Postgres the row lock serialises them and the
//! condition is re-checked after the lock; SQLite has one writer. The task itself moves with
//! `WHERE specialist_id IS NULL AND closed_at IS NULL`, so it is never assigned twice.
//!
//! Every transaction that changes a tenant's tasks first takes the tenant lock
//! ([`lock_tenant`]): it orders the WatchQueues change log and gives all writers one lock
//! order. On top of it, specialist rows are taken with `FOR UPDATE SKIP LOCKED` on Postgres
//! (a specialist held by another transaction is skipped, never waited for), so the invariant
//! does not depend on the tenant lock alone. A task that finds every fitting specialist busy
//! that way stays unassigned quietly and the sweep ([`assign_waiting`]) retries it; one that
//! finds nobody who fits publishes TaskUnassigned (once per stay in the queue).
//!
//! Known cost: a consumer batch that holds events of several tenants takes their locks in
//! stream order; two replicas taking two tenants in opposite orders deadlock, Postgres aborts
//! one batch after `deadlock_timeout`, and the bus re-applies it event by event.
//!
//! By table group: `specialists` (`asg_specialists` and their coverage), `tasks`
//! (`asg_tasks`: open, refresh, close, rescore, list), `assign` (who gets a task, the
//! sweep, ClaimNextTask, ReassignTask, `asg_claim_locks`), `claims` (the `asg_claims`
//! projection), `follow_ups` (`asg_follow_ups`), `changes` (`asg_task_changes`, the
//! WatchQueues log), `reconcile_runs` (`asg_reconcile_runs`).
mod assign;
mod changes;
mod claims;
mod follow_ups;
mod reconcile_runs;
mod specialists;
mod tasks;

pub use assign::*;
pub use changes::*;
pub use claims::*;
pub use follow_ups::*;
pub use reconcile_runs::*;
pub use specialists::*;
pub use tasks::*;

use arflow_api::events::v1 as events;
use arflow_api::wire::{self, EventPayload};
use arflow_platform::bus;
use arflow_platform::db::{Backend, Db, date_from_sql, date_to_sql, from_micros, to_micros};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use arflow_domain::priority::{self, PriorityInput, Reason, TaskKindName};

use crate::error::Context as _;
/// The service's one error type; the store's queries answer it too.
pub use crate::error::Error;
pub use crate::hours::WorkingHours;

/// Producer name of the service's events (= its stream).
pub const PRODUCER: &str = "assignment";

/// The tenant every query is scoped to (one type for every store).
pub use arflow_platform::db::TenantId;

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn flag(v: bool) -> i64 {
    i64::from(v)
}

/// Writes a task event to the outbox in the caller's transaction (its type name from `M`).
async fn publish<M: EventPayload>(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    task: &Task,
    payload: &M,
    now: DateTime<Utc>,
) -> Result<()> {
    let envelope = bus::envelope(
        PRODUCER,
        tenant.as_str(),
        &task.id,
        task.version,
        now,
        payload,
    );
    bus::publish(conn, &envelope)
        .await
        .context("publish task event")?;
    Ok(())
}

/// Serialises the tenant's assignment writers: every transaction that changes tasks takes
/// this row lock (the tenant's change counter) FIRST. Two reasons:
/// - WatchQueues' cursor: per tenant, a higher change sequence always commits later, so a
///   reader resuming from a sequence never skips a change that committed after it read;
/// - one lock order: without it, two replicas handling events of one claim could each hold a
///   row the other needs (the claim's projection row, the counter) and deadlock.
///
/// The cost is that one tenant's task writes run one at a time across replicas; each is a
/// few short statements. On SQLite there is one writer anyway.
pub async fn lock_tenant(conn: &mut AnyConnection, tenant: &TenantId) -> Result<()> {
    sqlx::query(
        "INSERT INTO asg_change_seq (tenant_id, last_seq) VALUES ($1, 0) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = asg_change_seq.last_seq",
    )
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await
    .context("lock tenant")?;
    Ok(())
}
