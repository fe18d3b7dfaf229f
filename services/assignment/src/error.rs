//! The one error of the assignment service and its one mapping to a gRPC status.
//!
//! The store, the transport checks and the running service all answer [`Error`]; the
//! transport turns it into a [`tonic::Status`] in one place ([`From<Error> for Status`]), so
//! every RPC answers the same code for the same failure. Messages never carry patient data:
//! they name fields and kinds of objects, never values.
use arflow_platform::grpc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist for the caller's tenant (or is outside its scope): NOT_FOUND,
    /// answered exactly like a missing one.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well formed but the state does not allow it (task already completed,
    /// specialist at capacity, key already linked): FAILED_PRECONDITION.
    #[error("{0}")]
    Conflict(String),
    /// The request is not valid: INVALID_ARGUMENT with a `google.rpc.BadRequest` of every
    /// violation `(field, description)`.
    #[error("{message}")]
    InvalidArgument {
        message: String,
        violations: Vec<(String, String)>,
    },
    /// A statement (or the outbox write in its transaction) failed, with what was being done
    /// (`lock tenant: …`): INTERNAL (logged, never sent).
    #[error("{context}: {source}")]
    Db {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The service's settings are refused at build.
    #[error("assignment settings: {0}")]
    Settings(String),
    /// Something else the service depends on failed (the bus consumer, the claims service
    /// the reconciler asks), with what was being done.
    #[error("{context}: {cause:#}")]
    Other {
        context: &'static str,
        cause: anyhow::Error,
    },
}

/// A database error of a step that names no context of its own (reading a column).
impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Error {
        Error::Db {
            context: "database",
            source,
        }
    }
}

/// Adds what was being done to a database error: `.await.context("open task")?`.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Db { context, source })
    }
}

impl Error {
    /// A failure of something the service depends on, with what was being done.
    pub fn other(context: &'static str, cause: impl Into<anyhow::Error>) -> Error {
        Error::Other {
            context,
            cause: cause.into(),
        }
    }

    /// INVALID_ARGUMENT naming the violations (field, description).
    pub fn invalid(
        message: impl Into<String>,
        violations: impl IntoIterator<Item = (String, String)>,
    ) -> Error {
        Error::InvalidArgument {
            message: message.into(),
            violations: violations.into_iter().collect(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        match e {
            Error::NotFound(kind) => grpc::not_found(kind),
            Error::Conflict(message) => grpc::failed_precondition(message),
            Error::InvalidArgument {
                message,
                violations,
            } => grpc::invalid_argument(&message, violations),
            other @ (Error::Db { .. } | Error::Settings(_) | Error::Other { .. }) => {
                grpc::internal(other)
            }
        }
    }
}
