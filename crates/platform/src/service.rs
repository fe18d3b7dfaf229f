//! What every service's `build` gets from the process, so the services share one shape:
//!
//! ```text
//! pub fn build(deps: Deps, options: Options) -> Result<Service, Error>   // validates settings
//! Service::grpc_service(&self) -> XServiceServer<…>                        // mounted by the binary
//! Service::run(self, shutdown: CancellationToken) -> Result<(), Error>     // consumers, jobs
//! ```
//!
//! `Deps` is the same for every service (storage, clock, bus, replica name, message limit);
//! a service's own `Options` holds its typed `Settings` (its section of the config file) and
//! the collaborators only it needs. docs/adding-a-service.md walks through the template.
use crate::bus::Bus;
use crate::{Clock, Db};

/// The process's shared resources, handed to every service's `build`. Cheap to clone.
#[derive(Clone)]
pub struct Deps {
    pub db: Db,
    pub clock: Clock,
    /// The process's event bus (Redis Streams, or the embedded log).
    pub bus: Bus,
    /// This replica's name within its role (`scheduler-<host>-<pid>`): its consumer name in
    /// the role's groups and the owner recorded on cron runs and leases. Unique per replica.
    pub replica: String,
    /// Largest gRPC message the service accepts or sends.
    pub max_message_bytes: usize,
}

impl Deps {
    /// Refuses a replica name that cannot name a consumer (empty, or with whitespace).
    pub fn validate(&self) -> Result<(), String> {
        if self.replica.is_empty() || self.replica.contains(char::is_whitespace) {
            return Err("the replica name must be non-empty and without whitespace".into());
        }
        Ok(())
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("backend", &self.db.backend())
            .field("replica", &self.replica)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}
