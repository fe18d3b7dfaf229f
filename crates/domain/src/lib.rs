//! Pure billing rules for arflow: no I/O, no async, no clocks (callers pass `today`).
//!
//! Map of the crate:
//! - [`money`]: [`Money`], integer cents with checked arithmetic and `$1,234.56` display.
//! - [`codes`]: shapes of NPIs (check digit), ICD-10-CM, CPT/HCPCS, modifiers, place of service
//!   and our own identifiers.
//! - [`status`]: the claim state machine, [`ClaimStatus`] and its table of legal moves.
//! - [`claim`]: intake types ([`ClaimInput`]), the validated [`ValidClaim`] the store saves,
//!   and [`validate_claim`], which reports every [`FieldViolation`] at once without echoing
//!   patient data.
//! - [`fixtures`]: a realistic valid claim for tests in every crate.
//!
//! Services map their protos onto these types at the edge; nothing here knows about gRPC,
//! databases or event buses, so every rule is testable in microseconds. Rules cite their
//! source (`billing-rules` sections refer to the project's billing reference) where they are
//! encoded.

pub mod claim;
pub mod codes;
pub mod fixtures;
pub mod money;
pub mod status;

pub use claim::{
    ClaimInput, Credential, FieldViolation, Frequency, Patient, PatientInput, Payer, PayerInput,
    Provider, ProviderInput, ServiceLine, ServiceLineInput, ValidClaim, validate_claim,
};
pub use money::Money;
pub use status::{ClaimStatus, IllegalTransition};
