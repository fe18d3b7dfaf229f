//! The scheduler service: durable timers, the aging and follow-up checks and deadline warnings
//! they stand for, and cron jobs (DESIGN §4).
//!
//! - [`timers`]: the firing loop. Due timers are claimed in batches (`SKIP LOCKED` on
//!   Postgres), marked fired and published as `TimerFired` (stream `scheduler`) in one
//!   transaction: exactly once across replicas; a timer due while no replica ran fires on start.
//! - [`events`]: the consumer of stream `claims` (and `assignment`'s FollowUpScheduled), group
//!   `scheduler`: ClaimSubmitted sets aging, status-check and timely-filing timers; paid, closed
//!   or written off cancels what is left; ClaimDenied sets the appeal-deadline warning.
//! - [`policy`]: what a claim gets (tenant aging policy, payer cadence, lead times) and the
//!   service's [`Settings`]; pure.
//! - business days (weekends, federal holidays, tenant overrides) are `arflow_domain::calendar`.
//! - [`cron_jobs`]: the daily aging snapshot and the weekly denial digest in each tenant's time
//!   zone, each instant run once across replicas.
//! - [`reconcile`]: the daily repair of what lost events left wrong, asking the claims service
//!   over gRPC ([`reconcile::GrpcClaimSource`]) which claims are open.
//! - [`grpc`]: `arflow.scheduler.v1.SchedulerService` (ListTimers, CreateTimer, CancelTimer,
//!   ListCronRuns).
//! - [`metrics`]: timers fired by kind, firing delay, next due, cron runs.
//! - [`store`]: the SQL (`scheduler_*` tables of migration 0005). The scheduler never reads
//!   another service's tables: it keeps its own projection of claims from their events.
//!
//! Shape (DESIGN §1): [`Options`] -> [`build`] -> [`Scheduler::run`]; the binary mounts
//! [`Scheduler::grpc_service`] on the shared server.
pub mod cron_jobs;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod policy;
pub mod reconcile;
pub mod store;
pub mod timers;

use std::sync::Arc;

use arflow_api::scheduler::v1::scheduler_service_server::SchedulerServiceServer;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::bus::{Bus, Subscription};
use arflow_platform::{Clock, Db};
use tokio_util::sync::CancellationToken;

pub use policy::Settings;

/// gRPC health name of the service.
pub const HEALTH_NAME: &str = "arflow.scheduler.v1.SchedulerService";
/// The consumer group of the scheduler on the streams it reads.
pub const GROUP: &str = "scheduler";
/// Streams the scheduler consumes: claim events, and follow-up dates from assignment.
pub const STREAMS: [&str; 2] = ["claims", "assignment"];

/// What the scheduler needs from the process.
#[derive(Clone, Debug)]
pub struct Options {
    pub db: Db,
    pub clock: Clock,
    /// The process's bus: the scheduler consumes `claims` and `assignment` through it.
    pub bus: Bus,
    /// This replica's consumer name, unique within the group (e.g. `scheduler-<host>-<pid>`);
    /// also recorded on the cron runs it makes.
    pub replica: String,
    pub settings: Settings,
    /// Payer rules (timely filing and appeal windows), the same set the claims service uses.
    pub payer_rules: PayerRuleSet,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// Where the reconciler asks which claims are open (the claims service over gRPC, with a
    /// key per tenant); None runs no reconciler.
    pub claim_source: Option<Arc<dyn reconcile::ClaimSource>>,
}

/// A built scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    api: grpc::SchedulerApi,
    db: Db,
    clock: Clock,
    bus: Bus,
    replica: String,
    settings: Arc<Settings>,
    payer_rules: Arc<PayerRuleSet>,
    max_message_bytes: usize,
    claim_source: Option<Arc<dyn reconcile::ClaimSource>>,
}

/// Validates the settings (time zone, thresholds, cron expressions) and builds the service.
pub fn build(options: Options) -> anyhow::Result<Scheduler> {
    options.settings.validate()?;
    anyhow::ensure!(
        !options.replica.is_empty() && !options.replica.contains(char::is_whitespace),
        "scheduler replica name must be a non-empty name without whitespace"
    );
    Ok(Scheduler {
        api: grpc::SchedulerApi {
            db: options.db.clone(),
            clock: options.clock.clone(),
        },
        db: options.db,
        clock: options.clock,
        bus: options.bus,
        replica: options.replica,
        settings: Arc::new(options.settings),
        payer_rules: Arc::new(options.payer_rules),
        max_message_bytes: options.max_message_bytes,
        claim_source: options.claim_source,
    })
}

impl Scheduler {
    pub fn grpc_service(&self) -> SchedulerServiceServer<grpc::SchedulerApi> {
        SchedulerServiceServer::new(self.api.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
    }

    /// The consumer's handler (tests drive it directly; `run` subscribes it).
    pub fn handler(&self) -> Arc<events::ClaimEvents> {
        Arc::new(events::ClaimEvents {
            settings: self.settings.clone(),
            payer_rules: self.payer_rules.clone(),
            clock: self.clock.clone(),
        })
    }

    /// The service's background work until `shutdown`: the claim-event consumer, the firing
    /// loop and (when enabled) the cron loop. The first of them to fail stops the others and
    /// its error is returned.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let subscription = Subscription {
            group: GROUP.to_string(),
            consumer: self.replica.clone(),
            streams: STREAMS.iter().map(|s| s.to_string()).collect(),
            handler: self.handler(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (bus, stop) = (self.bus.clone(), stop.clone());
            tasks.spawn(async move { bus.run_consumer(subscription, stop).await });
        }
        {
            let (db, clock, settings, stop) = (
                self.db.clone(),
                self.clock.clone(),
                self.settings.clone(),
                stop.clone(),
            );
            tasks.spawn(async move { timers::run(db, clock, settings, stop).await });
        }
        if self.settings.cron_enabled {
            let (db, clock, settings, replica, stop) = (
                self.db.clone(),
                self.clock.clone(),
                self.settings.clone(),
                self.replica.clone(),
                stop.clone(),
            );
            let reconciler = self
                .claim_source
                .clone()
                .map(|source| cron_jobs::Reconciler {
                    handler: self.handler(),
                    source,
                });
            tasks.spawn(async move {
                cron_jobs::run(db, clock, settings, replica, reconciler, stop).await
            });
        }
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let outcome = match joined {
                Ok(r) => r,
                Err(e) => Err(anyhow::anyhow!("scheduler task panicked: {e}")),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "scheduler task failed: stopping the scheduler");
                stop.cancel();
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }
}
