//! The scheduler service: durable timers, the aging and follow-up checks and deadline warnings
//! they stand for, and cron jobs (docs/design.md §4).
//!
//! Map of the crate:
//! - [`consumer`]: the consumer of stream `claims` (and `assignment`'s FollowUpScheduled), group
//!   `scheduler`: each payload parsed once into domain types, one method per event.
//!   ClaimSubmitted sets aging, status-check and timely-filing timers; paid, closed or written
//!   off cancels what is left; ClaimDenied sets the appeal-deadline warning.
//! - [`jobs`]: the background loops. [`jobs::timers`] fires due timers (claimed in batches,
//!   `SKIP LOCKED` on Postgres, marked fired and published as `TimerFired` on stream
//!   `scheduler` in one transaction: exactly once across replicas; a timer due while no replica
//!   ran fires on start). [`jobs::cron`] runs the daily aging snapshot, the weekly denial
//!   digest, the timer purge and the reconcile schedule in each tenant's time zone, each
//!   instant once across replicas.
//! - [`reconcile`]: the daily repair of what lost events left wrong, asking the claims service
//!   over gRPC ([`reconcile::GrpcClaimSource`]) which claims are open.
//! - [`grpc`]: `arflow.scheduler.v1.SchedulerService` (ListTimers, CreateTimer, CancelTimer,
//!   ListCronRuns): transport only.
//! - [`store`]: the SQL (`scheduler_*` tables of migration 0005). The scheduler never reads
//!   another service's tables: it keeps its own projection of claims from their events.
//! - [`settings`]: the service's [`Settings`] (`[scheduler]`), validated by [`build`].
//! - [`error`]: the one [`Error`] and its mapping onto gRPC statuses.
//! - [`metrics`]: timers fired by kind, firing delay, next due, cron runs.
//!
//! What a claim gets (tenant aging policy, payer cadence, lead times, local midnight) and
//! business days are pure rules in `arflow_domain::followup` and `arflow_domain::calendar`.
//!
//! Shape (docs/adding-a-service.md): [`Options`] -> [`build`] -> [`Scheduler::run`]; the
//! binary mounts [`Scheduler::grpc_service`] on the shared server.
pub mod consumer;
pub mod error;
pub mod grpc;
pub mod jobs;
pub mod metrics;
pub mod reconcile;
pub mod settings;
pub mod store;

use std::sync::Arc;

use arflow_api::scheduler::v1::scheduler_service_server::SchedulerServiceServer;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::bus::Subscription;
use arflow_platform::service::Deps;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use settings::Settings;

/// gRPC health name of the service.
pub const HEALTH_NAME: &str = "arflow.scheduler.v1.SchedulerService";
/// The consumer group of the scheduler on the streams it reads.
pub const GROUP: &str = "scheduler";
/// Streams the scheduler consumes: claim events, and follow-up dates from assignment.
pub const STREAMS: [&str; 2] = ["claims", "assignment"];
/// Producer (= stream) of the scheduler's events.
pub const PRODUCER: &str = "scheduler";

/// What the scheduler needs besides the process's [`Deps`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub settings: Settings,
    /// Payer rules (timely filing and appeal windows), the same set the claims service uses.
    pub payer_rules: PayerRuleSet,
    /// Where the reconciler asks which claims are open (the claims service over gRPC, with a
    /// key per tenant); None runs no reconciler.
    pub claim_source: Option<Arc<dyn reconcile::ClaimSource>>,
}

/// A built scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    api: grpc::SchedulerApi,
    deps: Deps,
    settings: Arc<Settings>,
    payer_rules: Arc<PayerRuleSet>,
    claim_source: Option<Arc<dyn reconcile::ClaimSource>>,
}

/// Validates the process deps and the settings (time zone, thresholds, cron expressions) and
/// builds the service.
pub fn build(deps: Deps, options: Options) -> Result<Scheduler, Error> {
    deps.validate().map_err(Error::Deps)?;
    options.settings.validate()?;
    Ok(Scheduler {
        api: grpc::SchedulerApi {
            db: deps.db.clone(),
            clock: deps.clock.clone(),
        },
        deps,
        settings: Arc::new(options.settings),
        payer_rules: Arc::new(options.payer_rules),
        claim_source: options.claim_source,
    })
}

impl Scheduler {
    pub fn grpc_service(&self) -> SchedulerServiceServer<grpc::SchedulerApi> {
        SchedulerServiceServer::new(self.api.clone())
            .max_decoding_message_size(self.deps.max_message_bytes)
            .max_encoding_message_size(self.deps.max_message_bytes)
    }

    /// The consumer's handler (tests drive it directly; `run` subscribes it).
    pub fn handler(&self) -> Arc<consumer::ClaimEvents> {
        Arc::new(consumer::ClaimEvents {
            settings: self.settings.clone(),
            payer_rules: self.payer_rules.clone(),
            clock: self.deps.clock.clone(),
        })
    }

    /// The service's background work until `shutdown`: the claim-event consumer, the firing
    /// loop and (when enabled) the cron loop. The first of them to fail stops the others and
    /// its error is returned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let stop = shutdown.child_token();
        let subscription = Subscription {
            group: GROUP.to_string(),
            consumer: self.deps.replica.clone(),
            streams: STREAMS.iter().map(|s| s.to_string()).collect(),
            handler: self.handler(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (bus, stop) = (self.deps.bus.clone(), stop.clone());
            tasks.spawn(async move {
                bus.run_consumer(subscription, stop)
                    .await
                    .map_err(|e| Error::other("claim-event consumer", e))
            });
        }
        {
            let (db, clock, settings, stop) = (
                self.deps.db.clone(),
                self.deps.clock.clone(),
                self.settings.clone(),
                stop.clone(),
            );
            tasks.spawn(async move { jobs::timers::run(db, clock, settings, stop).await });
        }
        if self.settings.cron_enabled {
            let (db, clock, settings, replica, stop) = (
                self.deps.db.clone(),
                self.deps.clock.clone(),
                self.settings.clone(),
                self.deps.replica.clone(),
                stop.clone(),
            );
            let reconciler = self
                .claim_source
                .clone()
                .map(|source| jobs::cron::Reconciler {
                    handler: self.handler(),
                    source,
                });
            tasks.spawn(async move {
                jobs::cron::run(db, clock, settings, replica, reconciler, stop).await
            });
        }
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let outcome =
                joined.unwrap_or_else(|e| Err(Error::other("scheduler task panicked", e)));
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
