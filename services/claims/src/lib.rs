//! The claims service: intake from partners, validation, lifecycle and history of claims.
//!
//! - [`grpc`]: `arflow.claims.v1.ClaimsService` — proto <-> domain, scoping, errors.
//! - `grpc_posting`: the posting, denial and correction methods of the same service.
//! - [`store`]: the SQL (claims, claim_lines, claim_status_history, claim_requests) and the
//!   events written to the outbox with each change (ClaimSubmitted, ClaimStatusChanged).
//! - [`posting`]: 835 remittance and 277/277CA status posting, denials, unmatched payments
//!   (events ClaimPaid, ClaimDenied, RemittancePosted).
//! - [`x12_map`]: X12 documents (crates/x12) mapped onto posting inputs; claims rendered as 837P.
//!
//! Shape (DESIGN §1): [`Options`] -> [`build`] -> [`Claims::run`]; the binary mounts
//! [`Claims::grpc_service`] on the shared server.
pub mod grpc;
mod grpc_posting;
pub mod posting;
pub mod store;
pub mod x12_map;

use arflow_api::claims::v1::claims_service_server::ClaimsServiceServer;
use arflow_platform::{Clock, Db};
use tokio_util::sync::CancellationToken;

/// gRPC health name of the service.
pub const HEALTH_NAME: &str = "arflow.claims.v1.ClaimsService";

/// What the claims service needs from the process.
#[derive(Clone, Debug)]
pub struct Options {
    pub db: Db,
    pub clock: Clock,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// Payer rules (built-in defaults layered with the tenant's file).
    pub payer_rules: arflow_domain::rules::PayerRuleSet,
}

/// A built claims service. Cheap to clone.
#[derive(Clone)]
pub struct Claims {
    api: grpc::ClaimsApi,
    max_message_bytes: usize,
}

pub fn build(options: Options) -> Claims {
    Claims {
        api: grpc::ClaimsApi::new(options.db, options.clock, options.payer_rules),
        max_message_bytes: options.max_message_bytes,
    }
}

impl Claims {
    pub fn grpc_service(&self) -> ClaimsServiceServer<grpc::ClaimsApi> {
        ClaimsServiceServer::new(self.api.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
    }

    /// The service's background work until `shutdown`. Claims has none yet (its work is all
    /// in calls); the loop is here so every service has the same shape.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        shutdown.cancelled().await;
        Ok(())
    }
}
