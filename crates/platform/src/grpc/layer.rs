//! The per-call pipeline every request goes through before it reaches a service:
//!
//! 1. a `tracing` span (child of the caller's W3C `traceparent` when there is one);
//! 2. the deadline: the call's `grpc-timeout`, or `grpc.default_timeout_ms` when it sent none;
//! 3. authentication (health and reflection are exempt) and an audit queue slot;
//! 4. the request message size limit;
//! 5. the service; then the response body is watched to the end, because a gRPC call's outcome
//!    is its final `grpc-status` (in the trailers, or in the headers of a trailers-only
//!    response), and the response message size limit applies to what it sends.
//!
//! When the call ends — or is dropped because the client cancelled or the connection went —
//! a [`CallGuard`] records it once: the latency histogram, the span's status, one log line and
//! (for authenticated calls) the audit record with the object ids the handler attached.
use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use opentelemetry::trace::TraceContextExt as _;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::{Code, Status};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::AuditObjects;
use super::limits::{FrameLimit, LimitedBody};
use crate::audit::{AuditRecord, AuditSink, AuditSlot};
use crate::auth::Authenticator;
use crate::clock::Clock;

tokio::task_local! {
    /// Trace id of the call being handled, for code that runs without an OpenTelemetry layer.
    static CALL_TRACE_ID: String;
}

/// The trace id of the gRPC call the current task is handling, if any.
pub(crate) fn call_trace_id() -> Option<String> {
    CALL_TRACE_ID
        .try_with(Clone::clone)
        .ok()
        .filter(|t| !t.is_empty())
}

/// Services that answer without a key and are not audited: stock tools (grpcurl, load
/// balancers, Kubernetes probes) call them anonymously, and they touch no tenant data.
const EXEMPT_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

fn is_exempt(path: &str) -> bool {
    EXEMPT_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// What every call shares.
pub(crate) struct Shared {
    pub(crate) auth: Authenticator,
    pub(crate) audit: AuditSink,
    pub(crate) clock: Clock,
    /// Deadline of a call without `grpc-timeout`; zero for none.
    pub(crate) default_timeout: Duration,
    pub(crate) max_message_bytes: usize,
    /// Full paths of the methods the server can answer: anything else is labelled `unknown`
    /// in metrics, so a client inventing paths cannot blow up the label set.
    pub(crate) known_methods: HashSet<String>,
    /// Cancelled when the drain deadline passes: every call still running ends UNAVAILABLE.
    pub(crate) abort: CancellationToken,
}

const SHUTTING_DOWN: &str = "the server is shutting down";

/// The tower layer the server is built with.
#[derive(Clone)]
pub(crate) struct CallLayer {
    shared: Arc<Shared>,
}

impl CallLayer {
    pub(crate) fn new(shared: Shared) -> CallLayer {
        CallLayer {
            shared: Arc::new(shared),
        }
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> CallService<S> {
        CallService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct CallService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> tower::Service<http::Request<Body>> for CallService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // Use the instance that was driven to readiness; leave a fresh clone for the next call.
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(handle(self.shared.clone(), inner, req))
    }
}

macro_rules! rpc_span {
    ($level:expr, $path:expr) => {
        tracing::span!(
            $level,
            "rpc",
            otel.name = $path.trim_start_matches('/'),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.method = $path,
            rpc.grpc.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            tenant_id = tracing::field::Empty,
            key_id = tracing::field::Empty,
        )
    };
}

async fn handle<S>(
    shared: Arc<Shared>,
    mut inner: S,
    mut req: http::Request<Body>,
) -> Result<http::Response<Body>, Infallible>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    let started = Instant::now();
    let occurred_at = shared.clock.now();
    let path = req.uri().path().to_string();
    let exempt = is_exempt(&path);
    let label = if shared.known_methods.contains(&path) {
        path.clone()
    } else {
        "unknown".to_string()
    };

    // Probes call health every few seconds: their spans stay at debug.
    let span = if exempt {
        rpc_span!(tracing::Level::DEBUG, path.as_str())
    } else {
        rpc_span!(tracing::Level::INFO, path.as_str())
    };
    let parent = crate::telemetry::context_from_headers(req.headers());
    let parent_trace = parent.span().span_context().clone();
    if parent_trace.is_valid() {
        let _ = span.set_parent(parent);
    }
    let own_trace = span.context().span().span_context().clone();
    let trace_id = if own_trace.is_valid() {
        own_trace.trace_id().to_string()
    } else if parent_trace.is_valid() {
        parent_trace.trace_id().to_string()
    } else {
        String::new()
    };
    if !trace_id.is_empty() {
        span.record("trace_id", trace_id.as_str());
    }

    let mut guard = CallGuard {
        started,
        label,
        exempt,
        span: span.clone(),
        audit: None,
        objects: Vec::new(),
        code: None,
        done: false,
    };
    let timeout = grpc_timeout(req.headers()).unwrap_or(shared.default_timeout);
    let max_message_bytes = shared.max_message_bytes;

    let call = async {
        if !exempt {
            let principal = shared
                .auth
                .authenticate(req.headers().get(http::header::AUTHORIZATION))
                .await?;
            span.record("tenant_id", principal.tenant_id.as_str());
            span.record("key_id", principal.key_id.as_str());
            // Backpressure: wait for room in the audit queue before touching any data.
            let slot = shared
                .audit
                .reserve()
                .await
                .ok_or_else(|| Status::unavailable(SHUTTING_DOWN))?;
            guard.audit = Some((
                slot,
                AuditRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    tenant_id: principal.tenant_id.clone(),
                    key_id: principal.key_id.clone(),
                    role: principal.role.as_str().to_string(),
                    method: path.chars().take(256).collect(),
                    object_ids: Vec::new(),
                    outcome: String::new(),
                    trace_id: trace_id.clone(),
                    occurred_at,
                },
            ));
            req.extensions_mut().insert(principal);
        }
        let req = req.map(|body| Body::new(LimitedBody::new(body, max_message_bytes)));
        let response = match inner.call(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        Ok::<_, Status>(response)
    };
    let call = CALL_TRACE_ID
        .scope(trace_id.clone(), call)
        .instrument(span.clone());
    let deadline = async {
        if timeout.is_zero() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(timeout).await;
    };
    // When the deadline or the drain deadline wins, the handler's future is dropped: its work
    // stops at its next await.
    let mut response = tokio::select! {
        result = call => match result {
            Ok(response) => response,
            Err(status) => status.into_http(),
        },
        () = deadline => Status::deadline_exceeded("deadline exceeded").into_http(),
        () = shared.abort.cancelled() => Status::unavailable(SHUTTING_DOWN).into_http(),
    };

    if let Some(objects) = response.extensions_mut().remove::<AuditObjects>() {
        guard.objects = objects.0;
    }
    // A trailers-only response (every error tonic answers) carries its status in the headers.
    guard.code = status_code(response.headers());
    let abort = Box::pin(shared.abort.clone().cancelled_owned());
    Ok(response.map(|inner| {
        Body::new(ObservedBody {
            inner,
            span,
            frames: FrameLimit::new(max_message_bytes),
            guard,
            abort,
            done: false,
        })
    }))
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn status_code(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// The canonical name of a gRPC status code, as the audit log and metrics spell it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Codes that mean the server failed (OpenTelemetry's rule for server spans); the others are
/// the caller's mistakes and leave the span's status unset.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Records a call exactly once: when its response ends, or when it is dropped unfinished.
struct CallGuard {
    started: Instant,
    label: String,
    exempt: bool,
    span: tracing::Span,
    audit: Option<(AuditSlot, AuditRecord)>,
    objects: Vec<String>,
    /// The status from a trailers-only response's headers.
    code: Option<Code>,
    done: bool,
}

impl CallGuard {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let name = code_name(code);
        crate::metrics::metrics()
            .rpc_duration
            .with_label_values(&[self.label.as_str(), name])
            .observe(elapsed.as_secs_f64());
        self.span.record("rpc.grpc.status_code", code as i32);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        if self.exempt {
            tracing::debug!(parent: &self.span, code = name, duration_ms, "rpc finished");
        } else {
            tracing::info!(parent: &self.span, code = name, duration_ms, "rpc finished");
        }
        if let Some((slot, mut record)) = self.audit.take() {
            record.outcome = name.to_string();
            record.object_ids = std::mem::take(&mut self.objects);
            // A reserved slot cannot be refused: this never blocks and never fails.
            slot.send(record);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        // Unfinished: a trailers-only response whose empty body was never polled, or a call
        // the client (or the connection, or the drain deadline) cut short.
        let code = self.code.unwrap_or(Code::Cancelled);
        self.finish(code);
    }
}

/// The response body, watched for its final status and its message sizes.
struct ObservedBody {
    inner: Body,
    span: tracing::Span,
    frames: FrameLimit,
    guard: CallGuard,
    /// The drain deadline: a stream still open then is ended with UNAVAILABLE.
    abort: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl ObservedBody {
    /// Ends the call early with `status`: drops what the handler would still send and returns
    /// the trailers frame that closes the stream.
    fn end_with(&mut self, status: Status) -> Frame<Bytes> {
        self.done = true;
        self.inner = Body::empty();
        self.guard.finish(status.code());
        let mut trailers = http::HeaderMap::new();
        let _ = status.add_header(&mut trailers);
        Frame::trailers(trailers)
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // Server-streaming handlers produce their messages here: keep them in the call's span.
        let span = this.span.clone();
        let _entered = span.enter();
        if this.abort.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Ok(this.end_with(Status::unavailable(SHUTTING_DOWN)))));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(status)) => {
                this.done = true;
                this.guard.finish(status.code());
                return Poll::Ready(Some(Err(status)));
            }
            None => {
                this.done = true;
                this.guard.finish(this.guard.code.unwrap_or(Code::Unknown));
                return Poll::Ready(None);
            }
        };
        if let Some(data) = frame.data_ref()
            && let Err(len) = this.frames.check(data)
        {
            // Replace the oversized message with the end of the call.
            let status = Status::resource_exhausted(format!(
                "response message of {len} bytes is larger than the limit of {} bytes",
                this.frames.limit()
            ));
            return Poll::Ready(Some(Ok(this.end_with(status))));
        }
        if let Some(trailers) = frame.trailers_ref() {
            this.guard
                .finish(status_code(trailers).unwrap_or(Code::Unknown));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        let parse = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("grpc-timeout", http::HeaderValue::from_str(v).unwrap());
            grpc_timeout(&h)
        };
        assert_eq!(parse("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse("123456789m"), None, "more than 8 digits");
        assert_eq!(parse("10x"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }

    #[test]
    fn exempt_paths() {
        assert!(is_exempt("/grpc.health.v1.Health/Check"));
        assert!(is_exempt(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_exempt("/arflow.claims.v1.ClaimsService/GetClaim"));
        assert!(!is_exempt("/grpc.health.v1.HealthX/Check"));
    }

    #[test]
    fn code_names_are_canonical() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
    }
}
