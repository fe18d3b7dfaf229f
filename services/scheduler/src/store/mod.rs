//! The scheduler's SQL (the `scheduler_*` tables of migration 0005): one code path for
//! Postgres and SQLite (see `arflow_platform::db`); the only dialect branches are the row
//! locks of firing and cancelling.
//!
//! - [`timers`]: set, cancel, reopen, list and purge timers.
//! - [`policies`]: tenant aging policies, payer cadence and business-day calendar overrides.
//! - [`claims`]: the projection of claims from their events, and the denials seen.
//! - [`cron`]: cron runs (one per job, tenant and instant) and what the cron jobs read.
//!
//! Functions that are part of a larger transaction (a consumer's batch, a firing round, a cron
//! run) take a `&mut AnyConnection`; the ones the API calls on their own take the [`Db`].
//! Every failure says what was being done ([`crate::error::Error::Store`]).
//!
//! [`Db`]: arflow_platform::Db
pub mod claims;
pub mod cron;
pub mod policies;
pub mod timers;

/// The tenant every query is scoped to (one type for every store).
pub use arflow_platform::db::TenantId;

pub use claims::*;
pub use cron::*;
pub use policies::*;
pub use timers::*;
