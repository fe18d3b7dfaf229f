//! Cron jobs, in each tenant's time zone, each run exactly once per scheduled instant across
//! replicas: the daily aging snapshot, the weekly denial digest, the daily purge of finished
//! timers, and (when a claims source is wired) the daily reconciler of [`crate::reconcile`].
//!
//! Exactly once: a run is one transaction that first inserts the row (job, tenant, instant)
//! of `scheduler_cron_runs`, then computes, publishes its event and records its summary. A
//! replica whose insert conflicts skips the instant (on Postgres the insert waits for the
//! transaction that holds the row, so the loser only learns once the winner committed); a run
//! that fails rolls its row back and is retried on the next tick.
//!
//! Catch-up: each tick runs the instants after the last recorded run of (job, tenant), up to
//! now, within `cron_catch_up_secs`; a (job, tenant) that never ran starts with its most recent
//! instant. So a restart after an outage runs the missed snapshots once each, and a new tenant
//! does not get a week of them at once.
//!
//! The jobs read only the scheduler's own tables (its projection of claims and the denials it
//! saw), never the claims service's: a snapshot is "as the scheduler knows it when it runs".
use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_domain::followup::AgingBasis;
use arflow_platform::bus;
use arflow_platform::db::{date_to_sql, from_micros, to_micros};
use arflow_platform::{Clock, Db};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::PRODUCER;
use crate::consumer::ClaimEvents;
use crate::error::{Context as _, Error};
use crate::reconcile::{ClaimSource, RECONCILE};
use crate::settings::Settings;
use crate::store::{self, TenantId};

pub const AGING_SNAPSHOT: &str = "aging_snapshot";
pub const DENIAL_DIGEST: &str = "denial_digest";
pub const TIMER_PURGE: &str = "timer_purge";
/// Timers one purge run deletes at most; a larger backlog (after raising the retention, say)
/// goes on at the next run.
const PURGE_MAX_ROWS: u64 = 100_000;
/// Instants run per (job, tenant) per tick; the rest follow on the next ticks.
const MAX_RUNS_PER_TICK: usize = 64;

/// A job and its schedule.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: &'static str,
    pub schedule: cron::Schedule,
}

/// The reconciler's means: the consumer's handler (repairs go through it) and the claims
/// service.
#[derive(Clone, Debug)]
pub struct Reconciler {
    pub handler: Arc<ClaimEvents>,
    pub source: Arc<dyn ClaimSource>,
}

/// The jobs of the settings (validated by `Settings::validate`); `reconcile` only when a
/// claims source is wired.
pub fn jobs(settings: &Settings, with_reconcile: bool) -> Result<Vec<Job>, Error> {
    let schedule = |name: &str, expr: &str| {
        cron::Schedule::from_str(expr)
            .map_err(|e| Error::Settings(format!("scheduler.{name}: {e}")))
    };
    let mut jobs = vec![
        Job {
            name: AGING_SNAPSHOT,
            schedule: schedule("aging_snapshot_cron", &settings.aging_snapshot_cron)?,
        },
        Job {
            name: DENIAL_DIGEST,
            schedule: schedule("denial_digest_cron", &settings.denial_digest_cron)?,
        },
    ];
    if settings.finished_timer_retention_days > 0 {
        jobs.push(Job {
            name: TIMER_PURGE,
            schedule: schedule("timer_purge_cron", &settings.timer_purge_cron)?,
        });
    }
    if with_reconcile {
        jobs.push(Job {
            name: RECONCILE,
            schedule: schedule("reconcile_cron", &settings.reconcile_cron)?,
        });
    }
    Ok(jobs)
}

/// The cron loop until `shutdown`: a tick every `poll_interval_ms` of real time; missed
/// instants are found from the runs table, so the tick rate never drops or doubles a run.
pub async fn run(
    db: Db,
    clock: Clock,
    settings: Arc<Settings>,
    replica: String,
    reconciler: Option<Reconciler>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let jobs = jobs(&settings, reconciler.is_some())?;
    let poll = Duration::from_millis(settings.poll_interval_ms);
    while !shutdown.is_cancelled() {
        if let Err(e) = tick(&db, &clock, &settings, &jobs, &replica, reconciler.as_ref()).await {
            tracing::warn!(error = %e, "scheduler: cron tick failed; retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = shutdown.cancelled() => break,
        }
    }
    Ok(())
}

/// One pass over every (job, tenant); returns the runs this replica made.
pub async fn tick(
    db: &Db,
    clock: &Clock,
    settings: &Settings,
    jobs: &[Job],
    replica: &str,
    reconciler: Option<&Reconciler>,
) -> Result<usize, Error> {
    let now = clock.now();
    let known = store::known_tenants(db).await?;
    let last = store::last_runs(db).await?;
    let window_start = now
        - TimeDelta::seconds(i64::try_from(settings.cron_catch_up_secs).unwrap_or(i64::MAX / 2));
    let mut policies = HashMap::new();
    let mut made = 0;
    for job in jobs {
        // The reconciler answers for the tenants it has keys for, including one whose every
        // event was lost (the scheduler would not know it).
        let tenants: Vec<TenantId> = match (job.name, reconciler) {
            (RECONCILE, Some(r)) => r.source.tenants().into_iter().map(TenantId::new).collect(),
            (RECONCILE, None) => continue,
            _ => known.clone(),
        };
        for tenant in &tenants {
            if !policies.contains_key(tenant) {
                let mut conn = db
                    .pool()
                    .acquire()
                    .await
                    .context("acquire a connection for the cron tick")?;
                let policy = store::load_policy(&mut conn, tenant, settings).await?;
                policies.insert(tenant.clone(), policy);
            }
            let Some(policy) = policies.get(tenant) else {
                continue;
            };
            let tz = policy.time_zone;
            let previous = last
                .get(&(job.name.to_string(), tenant.as_str().to_string()))
                .map(|m| from_micros(*m));
            let since = previous.map_or(window_start, |p| p.max(window_start));
            let mut due: Vec<DateTime<Utc>> = job
                .schedule
                .after(&since.with_timezone(&tz))
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t <= now)
                .take(if previous.is_some() && !latest_only(job.name) {
                    MAX_RUNS_PER_TICK
                } else {
                    usize::MAX
                })
                .collect();
            if previous.is_none() || latest_only(job.name) {
                // Never ran: only the most recent instant. The reconciler re-derives
                // everything and a purge deletes all that is old enough, so for them one run
                // covers every missed one.
                due = due.pop().into_iter().collect();
            }
            for instant in due {
                let ran = match (job.name, reconciler) {
                    (RECONCILE, Some(r)) => {
                        crate::reconcile::run_once(
                            db,
                            clock,
                            &r.handler,
                            r.source.as_ref(),
                            tenant,
                            instant,
                            replica,
                        )
                        .await?
                    }
                    (TIMER_PURGE, _) => {
                        purge_once(
                            db,
                            clock,
                            tenant,
                            instant,
                            settings.finished_timer_retention_days,
                            replica,
                        )
                        .await?
                    }
                    _ => {
                        run_once(
                            db,
                            clock,
                            job.name,
                            tenant,
                            tz,
                            policy.basis,
                            instant,
                            replica,
                        )
                        .await?
                    }
                };
                if ran {
                    made += 1;
                }
            }
        }
    }
    Ok(made)
}

/// Jobs for which only the most recent missed instant runs.
fn latest_only(job: &str) -> bool {
    job == RECONCILE || job == TIMER_PURGE
}

/// Runs the timer purge of (tenant, instant) unless it has run: deletes the tenant's fired and
/// cancelled timers due more than `retention_days` before `instant` (at most
/// [`PURGE_MAX_ROWS`]); the run's summary says how many. True when this call ran it.
pub async fn purge_once(
    db: &Db,
    clock: &Clock,
    tenant: &TenantId,
    instant: DateTime<Utc>,
    retention_days: u32,
    replica: &str,
) -> Result<bool, Error> {
    let Some((mut tx, run_id)) =
        store::begin_run(db, TIMER_PURGE, tenant, instant, clock.now(), replica).await?
    else {
        return Ok(false);
    };
    let due_before = instant - TimeDelta::days(i64::from(retention_days));
    let deleted = store::purge_finished_timers(&mut tx, tenant, due_before, PURGE_MAX_ROWS).await?;
    let summary = serde_json::json!({
        "due_before": to_micros(due_before),
        "deleted": deleted,
    });
    store::finish_run(&mut tx, &run_id, &summary.to_string(), clock.now()).await?;
    tx.commit().await.context("commit timer purge")?;
    crate::metrics::metrics()
        .cron_runs
        .with_label_values(&[TIMER_PURGE])
        .inc();
    tracing::info!(
        job = TIMER_PURGE,
        tenant = tenant.as_str(),
        deleted,
        scheduled_at = %instant,
        "cron job ran"
    );
    Ok(true)
}

/// Runs (job, tenant, instant) unless it has run; true when this call ran it.
#[allow(clippy::too_many_arguments)]
pub async fn run_once(
    db: &Db,
    clock: &Clock,
    job: &str,
    tenant: &TenantId,
    tz: Tz,
    basis: AgingBasis,
    instant: DateTime<Utc>,
    replica: &str,
) -> Result<bool, Error> {
    if job != AGING_SNAPSHOT && job != DENIAL_DIGEST {
        return Err(Error::other(
            "run a cron job",
            anyhow::anyhow!("unknown cron job {job}"),
        ));
    }
    let Some((mut tx, run_id)) =
        store::begin_run(db, job, tenant, instant, clock.now(), replica).await?
    else {
        return Ok(false);
    };
    let (summary, envelope) = if job == AGING_SNAPSHOT {
        let as_of = instant.with_timezone(&tz).date_naive();
        let buckets = store::aging_buckets(&mut tx, tenant, basis, as_of).await?;
        let summary = serde_json::json!({
            "as_of": date_to_sql(as_of),
            "buckets": buckets.iter().map(|(b, n, cents)| serde_json::json!({
                "bucket": b, "claims": n, "balance_cents": cents,
            })).collect::<Vec<_>>(),
        });
        let payload = events::AgingSnapshotTaken {
            run_id: run_id.clone(),
            scheduled_time: Some(wire::timestamp(instant)),
            as_of: Some(wire::date_to_pb(as_of)),
            buckets: buckets
                .into_iter()
                .map(
                    |(bucket, claim_count, balance_cents)| events::AgingBucketTotal {
                        bucket,
                        claim_count,
                        balance_cents,
                    },
                )
                .collect(),
        };
        let envelope = bus::envelope(PRODUCER, tenant.as_str(), &run_id, 1, clock.now(), &payload);
        (summary, envelope)
    } else {
        let from = instant - TimeDelta::days(7);
        let lines = store::denial_digest(&mut tx, tenant, from, instant).await?;
        let summary = serde_json::json!({
            "from": to_micros(from),
            "to": to_micros(instant),
            "categories": lines.iter().map(|(c, n, cents)| serde_json::json!({
                "category": c, "denials": n, "amount_cents": cents,
            })).collect::<Vec<_>>(),
        });
        let payload = events::DenialDigestCompiled {
            run_id: run_id.clone(),
            scheduled_time: Some(wire::timestamp(instant)),
            period_start_time: Some(wire::timestamp(from)),
            period_end_time: Some(wire::timestamp(instant)),
            lines: lines
                .into_iter()
                .map(
                    |(category, denial_count, amount_cents)| events::DenialDigestLine {
                        category,
                        denial_count,
                        amount_cents,
                    },
                )
                .collect(),
        };
        let envelope = bus::envelope(PRODUCER, tenant.as_str(), &run_id, 1, clock.now(), &payload);
        (summary, envelope)
    };
    bus::publish(&mut tx, &envelope)
        .await
        .context("publish cron event")?;
    store::finish_run(&mut tx, &run_id, &summary.to_string(), clock.now()).await?;
    tx.commit().await.context("commit cron run")?;
    crate::metrics::metrics()
        .cron_runs
        .with_label_values(&[job])
        .inc();
    tracing::info!(job, tenant = tenant.as_str(), scheduled_at = %instant, "cron job ran");
    Ok(true)
}
