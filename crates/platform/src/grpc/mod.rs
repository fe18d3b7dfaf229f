//! The gRPC server every arflow process runs, and the error helpers its handlers use.
//!
//! [`serve`] mounts the enabled services next to `grpc.health.v1` and server reflection (v1
//! and v1alpha, so grpcurl and other stock clients work) and puts every call through one
//! pipeline ([`layer`]): tracing span, deadline, authentication, audit, message size limits,
//! latency metric. Handlers read the caller with [`crate::auth::principal`] and name the
//! objects they touched with [`audit_objects`].
//!
//! Shutdown follows docs/design.md §6: when the token is cancelled, health turns NOT_SERVING (open
//! `Watch` streams receive it and then end), the listener closes, calls in flight get
//! `drain_timeout` to finish, the audit queue is flushed, and `serve` returns. Calls still
//! running at the deadline (including open streams) are ended with UNAVAILABLE and audited so.
//!
//! Errors: handlers answer with the helpers below so that clients see stable, PHI-free
//! messages: [`invalid_argument`] (with `google.rpc.BadRequest` field violations),
//! [`not_found`], [`failed_precondition`], and [`internal`], which logs the cause and answers a
//! generic message with the trace id to quote to operators.
//!
//! Calling another service on behalf of tenants (the reconcilers): [`TenantKeys`].
mod client;
mod layer;
mod limits;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::audit::AuditWriter;
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::db::Db;

pub use client::{TenantKeys, all_pages, found};
pub(crate) use layer::call_trace_id;

/// Everything the shared server needs besides the service routes.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Default deadline (`default_timeout_ms`, 0 = none) and message size limit.
    pub grpc: crate::config::GrpcConfig,
    /// API key cache lifetime (the revocation lag).
    pub auth: crate::config::AuthConfig,
    /// How long calls in flight may run once shutdown begins.
    pub drain_timeout: std::time::Duration,
}

/// Health name of the whole server (the gRPC health protocol's empty service name).
const OVERALL: &str = "";
/// How long connections get to close once the drain deadline has ended their calls.
const CLOSE_AFTER_ABORT: Duration = Duration::from_secs(2);
/// How long `serve` waits, after the drain, for the audit writer to store what is queued.
const AUDIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `routes` (the enabled services, e.g.
/// `tonic::service::Routes::new(ClaimsServiceServer::new(x))`) on `listener` until `shutdown`
/// is cancelled, with health (overall `""` and each of `health_names` SERVING, NOT_SERVING as
/// soon as shutdown starts), reflection, auth, audit, tracing, metrics, deadlines, message
/// size limits and a graceful drain (see the module docs).
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    health_names: &[&'static str],
    db: Db,
    clock: Clock,
    options: ServerOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr().ok();
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in health_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }

    // Reflection advertises what this process serves, not every service arflow has: a
    // `--service` subset must not list services that would answer UNIMPLEMENTED.
    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(arflow_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection");
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(arflow_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in health_names {
        reflection_v1 = reflection_v1.with_service_name(*name);
        reflection_v1alpha = reflection_v1alpha.with_service_name(*name);
    }
    let reflection_v1 = reflection_v1.build_v1().context("build reflection v1")?;
    let reflection_v1alpha = reflection_v1alpha
        .build_v1alpha()
        .context("build reflection v1alpha")?;

    let (audit, audit_writer) = AuditWriter::spawn(db.clone());
    let abort = CancellationToken::new();
    let call_layer = layer::CallLayer::new(layer::Shared {
        auth: Authenticator::new(db, Duration::from_secs(options.auth.key_cache_secs)),
        audit,
        clock,
        default_timeout: Duration::from_millis(options.grpc.default_timeout_ms),
        max_message_bytes: options.grpc.max_message_bytes,
        known_methods: known_methods()?,
        abort: abort.clone(),
    });
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let stop_accepting = CancellationToken::new();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        // Find clients that vanished without closing (a NAT dropped them) instead of holding
        // their streams until the drain deadline.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(call_layer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop_accepting.clone().cancelled_owned());
    let mut server = std::pin::pin!(server);
    tracing::debug!(addr = ?local, "grpc server started");

    let result = tokio::select! {
        ended = &mut server => ended.context("grpc server"),
        () = shutdown.cancelled() => {
            // NOT_SERVING first, while the listener is still open, so a prober or a watching
            // load balancer sees the drain before connections are refused.
            let mut health = health;
            for name in std::iter::once(OVERALL).chain(health_names.iter().copied()) {
                health.set_service_status(name, ServingStatus::NotServing).await;
            }
            // Dropping the statuses ends open Watch streams (after they deliver NOT_SERVING),
            // so a watching client does not hold the drain to its deadline.
            for name in std::iter::once(OVERALL).chain(health_names.iter().copied()) {
                health.clear_service_status(name).await;
            }
            tracing::info!(drain_timeout = ?options.drain_timeout, "grpc server draining");
            stop_accepting.cancel();
            match tokio::time::timeout(options.drain_timeout, &mut server).await {
                Ok(ended) => ended.context("grpc server"),
                Err(_) => {
                    tracing::warn!(drain_timeout = ?options.drain_timeout, "drain deadline passed: ending calls still in flight");
                    // Every call still running answers UNAVAILABLE now; give the connections a
                    // moment to send that and close.
                    abort.cancel();
                    match tokio::time::timeout(CLOSE_AFTER_ABORT, &mut server).await {
                        Ok(ended) => ended.context("grpc server"),
                        Err(_) => Ok(()),
                    }
                }
            }
        }
    };
    audit_writer.finish(AUDIT_FLUSH_TIMEOUT).await;
    tracing::info!("grpc server stopped");
    result
}

/// `/package.Service/Method` of every method the server can mount.
fn known_methods() -> anyhow::Result<HashSet<String>> {
    let mut methods = HashSet::new();
    for encoded in [
        arflow_api::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        let set = prost_types::FileDescriptorSet::decode(encoded)
            .context("decode a file descriptor set")?;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    Ok(methods)
}

/// The ids of the objects a call touched (claim ids, …), attached by the handler to its
/// response so the audit record names them.
#[derive(Clone, Debug, Default)]
pub struct AuditObjects(pub Vec<String>);

/// Adds `ids` to the objects the audit record of this call names. tonic 0.14 moves
/// `Response::extensions` into the HTTP response (`Response::into_http`), where the audit layer
/// reads them; an error answer (`Err(Status)`) has no response to carry them, so its record
/// names no objects.
pub fn audit_objects<T>(response: &mut tonic::Response<T>, ids: impl IntoIterator<Item = String>) {
    let extensions = response.extensions_mut();
    match extensions.get_mut::<AuditObjects>() {
        Some(objects) => objects.0.extend(ids),
        None => {
            extensions.insert(AuditObjects(ids.into_iter().collect()));
        }
    }
}

/// INVALID_ARGUMENT with `google.rpc.BadRequest` field violations `(field, description)`,
/// readable with `tonic_types::StatusExt::get_details_bad_request`.
/// Page size of a list call whose request leaves `page_size` at 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page a list call returns; a larger `page_size` gets this many.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The page size a list request asked for, the same on every list call (AIP-158): 0 is
/// [`DEFAULT_PAGE_SIZE`], above [`MAX_PAGE_SIZE`] is [`MAX_PAGE_SIZE`], negative is the field
/// violation returned as Err (for [`invalid_argument`]).
pub fn page_size(requested: i32) -> Result<usize, (String, String)> {
    match usize::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
        Err(_) => Err(("page_size".into(), "must not be negative".into())),
    }
}

/// [`page_size`] for a request with no other field to check: a negative one is answered
/// INVALID_ARGUMENT at once.
pub fn page_size_or_invalid(requested: i32) -> Result<usize, Status> {
    page_size(requested).map_err(|v| invalid_argument("page_size must not be negative", [v]))
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` of every violation. The message names the
/// first violations too (`the claim is not valid: claim.submission_date: is in the future`),
/// since many clients show only the message. Violations never carry patient data.
pub fn invalid_argument(
    message: &str,
    violations: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let violations: Vec<FieldViolation> = violations
        .into_iter()
        .map(|(f, d)| FieldViolation::new(f, d))
        .collect();
    Status::with_error_details(
        tonic::Code::InvalidArgument,
        violations_message(message, &violations),
        ErrorDetails::with_bad_request(violations),
    )
}

/// How many violations the message of [`invalid_argument`] spells out.
const VIOLATIONS_IN_MESSAGE: usize = 3;

fn violations_message(message: &str, violations: &[FieldViolation]) -> String {
    let named: Vec<String> = violations
        .iter()
        .take(VIOLATIONS_IN_MESSAGE)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    let mut text = message.to_string();
    if named.is_empty() || named.iter().all(|n| message.contains(n.as_str())) {
        return text;
    }
    text.push_str(": ");
    text.push_str(&named.join("; "));
    if violations.len() > VIOLATIONS_IN_MESSAGE {
        text.push_str(&format!(
            " (and {} more)",
            violations.len() - VIOLATIONS_IN_MESSAGE
        ));
    }
    text
}

/// The opaque `page_token` of every list call: the list's tag and the cursor its store pages
/// by (the last id of the page, or `"{instant}:{id}"`), hex-encoded so callers treat it as
/// opaque. A token from another list is refused.
pub struct PageToken;

impl PageToken {
    pub fn encode(list: &str, cursor: &str) -> String {
        hex::encode(format!("{list}:{cursor}"))
    }

    /// The cursor of `token` (None for the empty token: the first page); a token not made by
    /// [`PageToken::encode`] for `list` is a `page_token` violation (for [`invalid_argument`]).
    pub fn decode(token: &str, list: &str) -> Result<Option<String>, (String, String)> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || {
            (
                "page_token".to_string(),
                "not a token from this method".to_string(),
            )
        };
        let bytes = hex::decode(token).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let cursor = text
            .strip_prefix(list)
            .and_then(|t| t.strip_prefix(':'))
            .ok_or_else(bad)?;
        Ok(Some(cursor.to_string()))
    }

    /// [`PageToken::decode`] answering INVALID_ARGUMENT at once.
    pub fn decode_or_invalid(token: &str, list: &str) -> Result<Option<String>, Status> {
        Self::decode(token, list).map_err(|v| invalid_argument("invalid page_token", [v]))
    }
}

/// NOT_FOUND, `"{kind} not found"`. Never echoes the id: the caller may be probing another
/// tenant's objects, which answer exactly like missing ones.
pub fn not_found(kind: &str) -> Status {
    Status::not_found(format!("{kind} not found"))
}

pub fn failed_precondition(message: impl Into<String>) -> Status {
    Status::failed_precondition(message)
}

/// Logs `err` (the cause stays in the logs; callers keep PHI out of it) and returns INTERNAL
/// with a generic message and the trace id, which operators use to find the log line.
pub fn internal(err: impl std::fmt::Display) -> Status {
    let trace_id = crate::telemetry::current_trace_id();
    tracing::error!(error = %err, trace_id = %trace_id, "internal error");
    if trace_id.is_empty() {
        Status::internal("internal error")
    } else {
        Status::internal(format!("internal error (trace id {trace_id})"))
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_cover_arflow_health_and_reflection() {
        let methods = known_methods().unwrap();
        assert!(methods.contains("/arflow.claims.v1.ClaimsService/GetClaim"));
        assert!(methods.contains("/grpc.health.v1.Health/Check"));
        assert!(methods.contains("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
    }

    #[test]
    fn page_sizes_read_the_same_everywhere() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1), Ok(1));
        assert_eq!(page_size(1000), Ok(1000));
        assert_eq!(page_size(5000), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_size(-1).unwrap_err().0, "page_size");
    }

    #[test]
    fn audit_objects_accumulate() {
        let mut response = tonic::Response::new(());
        audit_objects(&mut response, ["a".to_string()]);
        audit_objects(&mut response, ["b".to_string(), "c".to_string()]);
        assert_eq!(
            response.extensions().get::<AuditObjects>().unwrap().0,
            ["a", "b", "c"]
        );
    }

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = invalid_argument(
            "bad claim",
            [("claim.npi".to_string(), "check digit".to_string())],
        );
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "claim.npi");
        assert_eq!(not_found("claim").message(), "claim not found");
        assert_eq!(internal("db down").message(), "internal error");
    }

    #[test]
    fn invalid_argument_names_the_first_violations_in_its_message() {
        let v = |f: &str, d: &str| (f.to_string(), d.to_string());
        let one = invalid_argument(
            "the claim is not valid",
            [v("claim.submission_date", "is in the future")],
        );
        assert_eq!(
            one.message(),
            "the claim is not valid: claim.submission_date: is in the future"
        );
        let many = invalid_argument(
            "the claim is not valid",
            [
                v("a", "1"),
                v("b", "2"),
                v("c", "3"),
                v("d", "4"),
                v("e", "5"),
            ],
        );
        assert_eq!(
            many.message(),
            "the claim is not valid: a: 1; b: 2; c: 3 (and 2 more)"
        );
        assert_eq!(
            many.get_details_bad_request()
                .unwrap()
                .field_violations
                .len(),
            5
        );
        // A message that already says it is not repeated.
        let said = invalid_argument(
            "page_size: must not be negative",
            [v("page_size", "must not be negative")],
        );
        assert_eq!(said.message(), "page_size: must not be negative");
    }

    #[test]
    fn page_tokens_belong_to_their_list() {
        let token = PageToken::encode("c1", "0190-abc");
        assert_eq!(
            PageToken::decode(&token, "c1"),
            Ok(Some("0190-abc".to_string()))
        );
        assert_eq!(PageToken::decode("", "c1"), Ok(None));
        assert_eq!(PageToken::decode(&token, "d1").unwrap_err().0, "page_token");
        assert_eq!(PageToken::decode("zz", "c1").unwrap_err().0, "page_token");
        let status = PageToken::decode_or_invalid("zz", "c1").unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
