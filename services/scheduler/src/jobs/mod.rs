//! The scheduler's background loops, started by `Scheduler::run`:
//!
//! - [`timers`]: the firing loop (due timers to TimerFired, exactly once across replicas).
//! - [`cron`]: the cron loop: the daily aging snapshot, the weekly denial digest, the daily
//!   timer purge and, where a claims source is wired, the daily reconcile
//!   ([`crate::reconcile`]), each in the tenant's time zone and run once per instant.
pub mod cron;
pub mod timers;
