//! The service's background loops, started by [`crate::Assignment::run`]: the sweep (retries
//! the unassigned queue, rescores open tasks once a day) and the daily denial reconciler's
//! schedule (the pass itself is [`crate::reconcile`]). A failed round is logged and tried
//! again; only shutdown ends a loop.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arflow_platform::{Clock, Db};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::{reconcile, store};

/// Tasks retried per sweep transaction.
const SWEEP_BATCH: i64 = 50;

/// A failed reconcile pass is tried again after this long (real time), not every interval.
const RECONCILE_RETRY: Duration = Duration::from_secs(60);
/// A replica's hold on a tenant's daily pass ([`store::claim_reconcile`]): past this (real
/// time) without finishing, another replica takes it over.
const RECONCILE_LEASE: Duration = Duration::from_secs(15 * 60);

/// Runs the denial reconciler once per (possibly simulated) day and tenant, and at start, until
/// `shutdown`. Apart from the sweep: it makes network calls, which must not delay the sweep.
/// One replica runs each (tenant, day) pass: the first to take it in `asg_reconcile_runs`; the
/// others skip it, or take it over when its lease expires unfinished. The repairs are
/// idempotent anyway (see [`reconcile`]).
pub(crate) async fn reconcile_daily(
    db: Db,
    clock: Clock,
    source: Option<Arc<dyn reconcile::DenialSource>>,
    replica: String,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let Some(source) = source else {
        return Ok(());
    };
    let lease = chrono::Duration::from_std(RECONCILE_LEASE).unwrap_or(chrono::Duration::MAX);
    // Per tenant, so one failing tenant does not re-run the others.
    let mut reconciled_on: HashMap<String, chrono::NaiveDate> = HashMap::new();
    loop {
        let today = clock.today();
        let mut wait = interval;
        for tenant in source.tenants() {
            if reconciled_on.get(&tenant) == Some(&today) {
                continue;
            }
            let id = store::TenantId::new(tenant.clone());
            let now = chrono::Utc::now();
            match store::claim_reconcile(&db, &id, today, &replica, now, now - lease).await {
                Ok(store::ReconcileClaim::Won) => {}
                Ok(store::ReconcileClaim::Done) => {
                    reconciled_on.insert(tenant, today);
                    continue;
                }
                // Another replica runs it; looked at again next round.
                Ok(store::ReconcileClaim::Busy) => continue,
                Err(e) => {
                    tracing::warn!(tenant = tenant.as_str(), error = %e, "take the denial reconcile pass; retrying");
                    wait = RECONCILE_RETRY.max(interval);
                    continue;
                }
            }
            let pass = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = reconcile::reconcile_tenant(&db, &clock, source.as_ref(), &id) => r,
            };
            let pass = match pass {
                Ok(created) => {
                    store::finish_reconcile(&db, &id, today, &replica, chrono::Utc::now())
                        .await
                        .map(|()| created)
                }
                Err(e) => Err(e),
            };
            match pass {
                Ok(created) => {
                    tracing::info!(tenant = tenant.as_str(), created, "denial reconcile ran");
                    reconciled_on.insert(tenant, today);
                }
                Err(e) => {
                    tracing::warn!(
                        tenant = tenant.as_str(),
                        error = %e,
                        "denial reconcile failed; retrying"
                    );
                    wait = RECONCILE_RETRY.max(interval);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Retries the unassigned queue (a task waits there when nobody had room, and someone may
/// have room now) and rescores open tasks once a day. A failed round is logged and retried
/// next interval.
pub(crate) async fn sweep(
    db: Db,
    clock: Clock,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut scored_on = None;
    loop {
        // Once per (possibly simulated) day, and at start: ages and deadlines moved.
        let today = clock.today();
        if scored_on != Some(today) {
            match store::rescore_open(&db, today).await {
                Ok(_) => scored_on = Some(today),
                Err(e) => tracing::warn!(error = %e, "priority rescoring failed"),
            }
        }
        // Go again at once while a full batch got assigned; otherwise wait.
        let wait = match store::assign_waiting(&db, SWEEP_BATCH, clock.now()).await {
            Ok(n) if n as i64 == SWEEP_BATCH => Duration::ZERO,
            Ok(_) => interval,
            Err(e) => {
                tracing::warn!(error = %e, "assignment sweep failed");
                interval
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}
