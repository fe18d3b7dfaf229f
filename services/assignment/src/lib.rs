//! The assignment service: specialists, follow-up tasks, their queues and the follow-up log.
//!
//! - [`consumer`]: claim and scheduler events -> tasks (bus group `assignment`, streams
//!   `claims` and `scheduler`), and the per-claim projection it keeps (we never read the
//!   claims tables).
//! - [`store`]: the SQL: specialists and their coverage, tasks (one OPEN task per claim and
//!   kind), assignment under concurrency, ClaimNextTask, the follow-up log, the change log
//!   WatchQueues streams; the events written to the outbox with each change (TaskCreated,
//!   TaskAssigned, TaskCompleted, TaskUnassigned, FollowUpScheduled on stream `assignment`).
//! - the priority score and its reasons are pure rules: `arflow_domain::priority`.
//! - [`grpc`]: `arflow.assignment.v1.AssignmentService` — proto <-> store, roles, scoping,
//!   errors.
//! - [`reconcile`]: once a day, every recent denial (asked of the claims service over gRPC)
//!   whose claim has no denial task gets one (a lost ClaimDenied event).
//!
//! Shape (DESIGN §1): [`Options`] -> [`build`] -> [`Assignment::run`] (the event consumer, and
//! the sweep that retries the unassigned queue and rescores open tasks daily, and the daily
//! denial reconciler when [`Options::denial_source`] is set); the binary mounts
//! [`Assignment::grpc_service`] on the shared server.
pub mod consumer;
pub mod grpc;
pub mod reconcile;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arflow_api::assignment::v1::assignment_service_server::AssignmentServiceServer;
use arflow_platform::bus::{Bus, Subscription};
use arflow_platform::{Clock, Db};
use tokio_util::sync::CancellationToken;

/// gRPC health name of the service.
pub const HEALTH_NAME: &str = "arflow.assignment.v1.AssignmentService";

/// What the assignment service needs from the process.
#[derive(Clone, Debug)]
pub struct Options {
    pub db: Db,
    pub clock: Clock,
    /// The process's event bus (the consumer reads `claims` and `scheduler` through it).
    pub bus: Bus,
    /// This replica's consumer name, unique within the group (e.g. `assignment-<host>-<pid>`).
    pub consumer_name: String,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// How often the unassigned queue is retried (capacity freed, a specialist added or back
    /// in office). Real time.
    pub sweep_interval: Duration,
    /// How often an open WatchQueues stream looks for new changes. Real time.
    pub watch_poll_interval: Duration,
    /// Where the daily denial reconciler asks which denials exist (the claims service, e.g.
    /// [`reconcile::GrpcDenialSource`]). None: no reconciler.
    pub denial_source: Option<Arc<dyn reconcile::DenialSource>>,
}

impl Options {
    /// Options with the default intervals (sweep 1 s, watch poll 200 ms).
    pub fn new(db: Db, clock: Clock, bus: Bus, consumer_name: impl Into<String>) -> Options {
        Options {
            db,
            clock,
            bus,
            consumer_name: consumer_name.into(),
            max_message_bytes: 4 * 1024 * 1024,
            sweep_interval: Duration::from_secs(1),
            watch_poll_interval: Duration::from_millis(200),
            denial_source: None,
        }
    }
}

/// A built assignment service. Cheap to clone.
#[derive(Clone)]
pub struct Assignment {
    api: grpc::AssignmentApi,
    options: Options,
}

pub fn build(options: Options) -> Assignment {
    Assignment {
        api: grpc::AssignmentApi::new(
            options.db.clone(),
            options.clock.clone(),
            options.watch_poll_interval,
        ),
        options,
    }
}

/// Tasks retried per sweep transaction.
const SWEEP_BATCH: i64 = 50;

impl Assignment {
    pub fn grpc_service(&self) -> AssignmentServiceServer<grpc::AssignmentApi> {
        AssignmentServiceServer::new(self.api.clone())
            .max_decoding_message_size(self.options.max_message_bytes)
            .max_encoding_message_size(self.options.max_message_bytes)
    }

    /// The event consumer, the unassigned-queue sweep and (with a denial source) the daily
    /// denial reconciler, until `shutdown`. Open WatchQueues streams end with it too.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let o = &self.options;
        let subscription = Subscription {
            group: consumer::GROUP.to_string(),
            consumer: o.consumer_name.clone(),
            streams: consumer::STREAMS.iter().map(|s| s.to_string()).collect(),
            handler: Arc::new(consumer::TaskHandler {
                backend: o.db.backend(),
                clock: o.clock.clone(),
            }),
        };
        let consume = o.bus.run_consumer(subscription, shutdown.clone());
        let sweep = sweep(
            o.db.clone(),
            o.clock.clone(),
            o.sweep_interval,
            shutdown.clone(),
        );
        let reconciler = reconcile_daily(
            o.db.clone(),
            o.clock.clone(),
            o.denial_source.clone(),
            o.consumer_name.clone(),
            o.sweep_interval,
            shutdown.clone(),
        );
        let result = tokio::try_join!(consume, sweep, reconciler).map(|_| ());
        self.api.shutdown();
        result
    }
}

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
async fn reconcile_daily(
    db: Db,
    clock: Clock,
    source: Option<Arc<dyn reconcile::DenialSource>>,
    replica: String,
    interval: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
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
                        .map_err(anyhow::Error::from)
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
async fn sweep(
    db: Db,
    clock: Clock,
    interval: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
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
