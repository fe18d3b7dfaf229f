//! The scheduler's Prometheus metrics, registered on the process registry
//! (`arflow_platform::metrics`), so `/metrics` on the admin port shows them.
//!
//! Labels are the timer kind family (`aging`, `status_check`, ...: the TimerKind enum, not the
//! stored name, whose thresholds a tenant chooses) and the cron job name: bounded, no tenant
//! data.
use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

pub struct Metrics {
    /// Timers fired, by kind family.
    pub timers_fired: IntCounterVec,
    /// How late timers fired, in the scheduler clock's seconds (simulated seconds on a
    /// simulated clock): a backlog or a catch-up after downtime shows here.
    pub fire_delay: Histogram,
    /// Seconds from now until the earliest pending timer (negative: that much overdue).
    pub next_due: IntGauge,
    /// Cron runs made by this process, by job.
    pub cron_runs: IntCounterVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let timers_fired = IntCounterVec::new(
        Opts::new("scheduler_timers_fired_total", "durable timers fired"),
        &["kind"],
    )?;
    let fire_delay = Histogram::with_opts(
        HistogramOpts::new(
            "scheduler_fire_delay_seconds",
            "time from a timer's due instant to its firing, on the scheduler's clock",
        )
        .buckets(vec![
            0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3_600.0, 86_400.0, 604_800.0,
        ]),
    )?;
    let next_due = IntGauge::with_opts(Opts::new(
        "scheduler_next_due_seconds",
        "seconds until the earliest pending timer is due (negative when overdue)",
    ))?;
    let cron_runs = IntCounterVec::new(
        Opts::new(
            "scheduler_cron_runs_total",
            "cron job runs made by this process",
        ),
        &["job"],
    )?;
    let registry = &arflow_platform::metrics::metrics().registry;
    registry.register(Box::new(timers_fired.clone()))?;
    registry.register(Box::new(fire_delay.clone()))?;
    registry.register(Box::new(next_due.clone()))?;
    registry.register(Box::new(cron_runs.clone()))?;
    Ok(Metrics {
        timers_fired,
        fire_delay,
        next_due,
        cron_runs,
    })
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().expect("scheduler metric definitions are static and valid"));

/// The scheduler's metrics (registered on first use).
pub fn metrics() -> &'static Metrics {
    &METRICS
}
