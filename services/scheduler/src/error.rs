//! The scheduler's one error type and its one mapping onto gRPC statuses.
//!
//! Store and bus failures carry what was being done (`list timers: …`); the cause stays in the
//! logs (`platform::grpc::internal`), never in a status. No message carries patient data: the
//! scheduler holds ids, codes, dates and amounts only.
use arflow_platform::grpc::{failed_precondition, internal, invalid_argument, not_found};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings the scheduler cannot run with, naming the setting.
    #[error("{0}")]
    Settings(String),
    /// Process dependencies the scheduler cannot run with (a replica name that cannot name a
    /// consumer).
    #[error("scheduler: {0}")]
    Deps(String),
    /// A request with field violations `(field, description)`: INVALID_ARGUMENT with a
    /// BadRequest.
    #[error("the request is not valid")]
    InvalidArgument(Vec<(String, String)>),
    /// `{0} not found`; also what another tenant's (or clinic's) object answers.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// An event whose payload the scheduler cannot act on (`{0}`); the bus retries it and
    /// then dead-letters it.
    #[error("malformed event: {0}")]
    InvalidEvent(&'static str),
    /// A statement (or the outbox write, in the same transaction) failed.
    #[error("{context}: {source}")]
    Store {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Anything else the scheduler depends on failed (the bus consumer, the claims service,
    /// a background task).
    #[error("{context}: {cause:#}")]
    Other {
        context: &'static str,
        cause: anyhow::Error,
    },
}

impl Error {
    pub(crate) fn other(context: &'static str, cause: impl Into<anyhow::Error>) -> Error {
        Error::Other {
            context,
            cause: cause.into(),
        }
    }
}

/// Adds what was being done to a store error: `.context("list timers")?`.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Store { context, source })
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::InvalidArgument(violations) => {
                invalid_argument("the request is not valid", violations)
            }
            Error::NotFound(kind) => not_found(kind),
            Error::FailedPrecondition(message) => failed_precondition(message),
            e @ (Error::Settings(_)
            | Error::Deps(_)
            | Error::InvalidEvent(_)
            | Error::Store { .. }
            | Error::Other { .. }) => internal(e),
        }
    }
}
