//! The assignment service: specialists, follow-up tasks, their queues and the follow-up log.
//!
//! - [`consumer`]: claim and scheduler events -> tasks (bus group `assignment`, streams
//!   `claims` and `scheduler`), and the per-claim projection it keeps (we never read the
//!   claims tables). Payloads are parsed once, at the edge, into domain types.
//! - [`store`]: the SQL, by table group: specialists and their coverage, tasks (one OPEN task
//!   per claim and kind), assignment under concurrency and ClaimNextTask, the claim
//!   projection, the follow-up log, the change log WatchQueues streams, the reconcile runs;
//!   the events written to the outbox with each change (TaskCreated, TaskAssigned,
//!   TaskCompleted, TaskUnassigned, FollowUpScheduled on stream `assignment`).
//! - the priority score and its reasons are pure rules: `arflow_domain::priority`.
//! - [`grpc`]: `arflow.assignment.v1.AssignmentService` — transport: request checks, proto
//!   <-> store, roles, scoping.
//! - [`jobs`]: the background loops: the sweep (unassigned queue, daily rescoring) and the
//!   daily denial reconciler's schedule.
//! - [`reconcile`]: once a day, every recent denial (asked of the claims service over gRPC)
//!   whose claim has no denial task gets one (a lost ClaimDenied event).
//! - [`error`]: the one [`Error`] and its one mapping to a gRPC status; [`settings`]: the
//!   `[assignment]` [`Settings`]; [`hours`]: working hours and the business-hours default.
//!
//! Shape (see `arflow_platform::service`): [`Options`] -> [`build`] -> [`Assignment::run`]
//! (the event consumer and the jobs); the binary mounts [`Assignment::grpc_service`] on the
//! shared server.
pub mod consumer;
pub mod error;
pub mod grpc;
pub mod hours;
pub mod jobs;
pub mod reconcile;
pub mod settings;
pub mod store;

use std::sync::Arc;

use arflow_api::assignment::v1::assignment_service_server::AssignmentServiceServer;
use arflow_platform::bus::Subscription;
use arflow_platform::service::Deps;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use reconcile::DenialSource;
pub use settings::Settings;

/// gRPC health name of the service.
pub const HEALTH_NAME: &str = "arflow.assignment.v1.AssignmentService";

/// What the assignment service needs besides the process's [`Deps`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The `[assignment]` settings, validated by [`build`].
    pub settings: Settings,
    /// Where the daily denial reconciler asks which denials exist (the claims service, e.g.
    /// [`reconcile::GrpcDenialSource`]). None: no reconciler.
    pub denial_source: Option<Arc<dyn DenialSource>>,
}

/// A built assignment service. Cheap to clone.
#[derive(Clone)]
pub struct Assignment {
    api: grpc::AssignmentApi,
    deps: Deps,
    options: Options,
}

/// Validates the deps and settings and builds the service.
pub fn build(deps: Deps, options: Options) -> Result<Assignment, Error> {
    deps.validate().map_err(Error::Settings)?;
    options.settings.validate()?;
    Ok(Assignment {
        api: grpc::AssignmentApi::new(deps.db.clone(), deps.clock.clone(), &options.settings),
        deps,
        options,
    })
}

impl Assignment {
    pub fn grpc_service(&self) -> AssignmentServiceServer<grpc::AssignmentApi> {
        AssignmentServiceServer::new(self.api.clone())
            .max_decoding_message_size(self.deps.max_message_bytes)
            .max_encoding_message_size(self.deps.max_message_bytes)
    }

    /// The event consumer, the unassigned-queue sweep and (with a denial source) the daily
    /// denial reconciler, until `shutdown`. Open WatchQueues streams end with it too.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let d = &self.deps;
        let interval = self.options.settings.sweep_interval();
        let subscription = Subscription {
            group: consumer::GROUP.to_string(),
            consumer: d.replica.clone(),
            streams: consumer::STREAMS.iter().map(|s| s.to_string()).collect(),
            handler: Arc::new(consumer::TaskHandler::new(d.db.backend(), d.clock.clone())),
        };
        let consume = async {
            d.bus
                .run_consumer(subscription, shutdown.clone())
                .await
                .map_err(|e| Error::other("assignment event consumer", e))
        };
        let sweep = jobs::sweep(d.db.clone(), d.clock.clone(), interval, shutdown.clone());
        let reconciler = jobs::reconcile_daily(
            d.db.clone(),
            d.clock.clone(),
            self.options.denial_source.clone(),
            d.replica.clone(),
            interval,
            shutdown.clone(),
        );
        let result = tokio::try_join!(consume, sweep, reconciler).map(|_| ());
        self.api.shutdown();
        result
    }
}
