//! The claims service: intake from partners, validation, lifecycle and history of claims,
//! posting of what payers say about them, and 837P export.
//!
//! - [`grpc`]: `arflow.claims.v1.ClaimsService`, transport only (request checks, scoping,
//!   `grpc::convert` for proto <-> domain); `grpc::claims` and `grpc::posting` by resource.
//! - [`intake`]: validate -> scrub -> write (one claim, or ImportClaims chunks), idempotent by
//!   request id.
//! - [`store`]: the SQL of claims, claim_lines, claim_status_history, claim_requests and the
//!   interchange sequence, with the events written to the outbox with each change
//!   (ClaimSubmitted, ClaimStatusChanged).
//! - [`posting`]: 835 remittance (`posting::era`) and 277/277CA status (`posting::status`)
//!   posting, denials and payments as recorded (events ClaimPaid, ClaimDenied, RemittancePosted).
//! - [`x12_map`]: X12 documents (crates/x12) mapped onto posting inputs; claims mapped onto the
//!   837P writer's input.
//! - [`error`]: the service's one `Error` and its mapping onto gRPC statuses.
//! - [`settings`]: the `[claims]` section of the config.
//!
//! Shape (docs/adding-a-service.md): [`Options`] -> [`build`] -> [`Claims::run`]; the binary
//! mounts [`Claims::grpc_service`] on the shared server.
pub mod error;
pub mod grpc;
pub mod intake;
pub mod posting;
pub mod settings;
pub mod store;
pub mod x12_map;

use arflow_api::claims::v1::claims_service_server::ClaimsServiceServer;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::service::Deps;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use settings::Settings;

/// gRPC health name of the service.
pub const HEALTH_NAME: &str = "arflow.claims.v1.ClaimsService";

/// What the claims service needs besides the process's [`Deps`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub settings: Settings,
    /// Payer rules (built-in defaults layered with `settings.payer_rules_file`), read once by
    /// the process: the scheduler uses the same set.
    pub payer_rules: PayerRuleSet,
}

/// A built claims service. Cheap to clone.
#[derive(Clone)]
pub struct Claims {
    api: grpc::ClaimsApi,
    max_message_bytes: usize,
}

/// Builds the service after checking its settings.
pub fn build(deps: Deps, options: Options) -> Result<Claims, Error> {
    deps.validate().map_err(Error::Settings)?;
    options.settings.validate()?;
    let intake = intake::Intake::new(deps.db.clone(), deps.clock.clone(), options.payer_rules);
    Ok(Claims {
        api: grpc::ClaimsApi::new(deps.db, deps.clock, intake),
        max_message_bytes: deps.max_message_bytes,
    })
}

impl Claims {
    pub fn grpc_service(&self) -> ClaimsServiceServer<grpc::ClaimsApi> {
        ClaimsServiceServer::new(self.api.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
    }

    /// The service's background work until `shutdown`. Claims has none yet (its work is all
    /// in calls); the loop is here so every service has the same shape.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        shutdown.cancelled().await;
        Ok(())
    }
}
