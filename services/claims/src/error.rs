//! The one error type of the claims service and its one mapping onto gRPC statuses.
//!
//! Store, posting and intake code return [`Error`]; the transport answers with
//! `Status::from(err)`. Messages never carry patient data: violations name proto field paths
//! and say what is wrong, database errors are logged with their context and answered INTERNAL
//! without details (`platform::grpc::internal`).
use arflow_domain::FieldViolation;
use arflow_platform::grpc::{failed_precondition, internal, invalid_argument, not_found};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claim not found")]
    NotFound,
    #[error("a claim with this patient control number already exists for the clinic")]
    DuplicateExternalId,
    #[error("request_id was already used for a different claim")]
    RequestIdReused,
    #[error(transparent)]
    IllegalTransition(#[from] arflow_domain::IllegalTransition),
    #[error("claim changed: expected version {expected}, found {found}")]
    VersionMismatch { expected: i64, found: i64 },
    #[error("the original claim of a replacement or void was not found")]
    OriginalNotFound,
    /// The request is not valid: every violation, with proto field paths.
    #[error("{message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    /// The request is valid but the claim's state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A database error, with what was being done.
    #[error("{context}: {source}")]
    Db {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A background task (an import chunk) failed to run to its end.
    #[error("{context}: {source}")]
    Task {
        context: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The service's settings or files are not usable (at build time).
    #[error("claims settings: {0}")]
    Settings(String),
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Error {
        Error::Db {
            context: "database",
            source,
        }
    }
}

impl Error {
    /// `map_err(Error::db("load the claim"))`: a database error with what was being done.
    pub fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Db { context, source }
    }

    /// INVALID_ARGUMENT with `(field, description)` violations.
    pub fn invalid(
        message: impl Into<String>,
        violations: impl IntoIterator<Item = (String, String)>,
    ) -> Error {
        Error::Invalid {
            message: message.into(),
            violations: violations
                .into_iter()
                .map(|(field, description)| FieldViolation { field, description })
                .collect(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::NotFound => not_found("claim"),
            Error::DuplicateExternalId => Status::already_exists(err.to_string()),
            Error::RequestIdReused => invalid_argument(
                "request_id was already used for a different claim",
                [(
                    "request_id".to_string(),
                    "reused with different content; use a new request_id".to_string(),
                )],
            ),
            Error::IllegalTransition(t) => failed_precondition(t.to_string()),
            Error::VersionMismatch { .. } => Status::aborted(err.to_string()),
            Error::OriginalNotFound => invalid_argument(
                "original claim not found",
                [(
                    "claim.original_claim_id".to_string(),
                    "no claim with this id in your tenant".to_string(),
                )],
            ),
            Error::Invalid {
                message,
                violations,
            } => invalid_argument(
                &message,
                violations.into_iter().map(|v| (v.field, v.description)),
            ),
            Error::FailedPrecondition(message) => failed_precondition(message),
            Error::Db { .. } | Error::Task { .. } | Error::Settings(_) => internal(err),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tonic_types::StatusExt as _;

    #[test]
    fn invalid_input_keeps_its_field_violations() {
        let status = Status::from(Error::invalid(
            "the claim is not valid",
            [("claim.submission_date".into(), "is in the future".into())],
        ));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "the claim is not valid: claim.submission_date: is in the future"
        );
        let fields: Vec<String> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["claim.submission_date"]);
    }

    #[test]
    fn database_errors_say_nothing_of_their_cause() {
        let status = Status::from(Error::db("load the claim")(sqlx::Error::RowNotFound));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("load the claim"));
        assert_eq!(Status::from(Error::NotFound).code(), tonic::Code::NotFound);
    }
}
