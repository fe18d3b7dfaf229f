//! Logs, traces and the admin HTTP port.
//!
//! [`init`] installs one `tracing` subscriber for the process: an env-filter (`RUST_LOG` wins
//! over `telemetry.filter`), text or JSON log lines on stderr, and an OpenTelemetry layer.
//! The OpenTelemetry layer is there even when no collector is configured: it gives every span
//! a W3C trace id, so log lines, audit rows, error messages and event envelopes can be joined
//! up without a collector. With `telemetry.otlp_endpoint` set, spans are also batched to that
//! collector over OTLP/gRPC (call [`init`] inside the Tokio runtime then: the exporter's
//! client needs it). The returned [`TelemetryGuard`] flushes pending spans when dropped.
//!
//! Trace context crosses process boundaries as a W3C `traceparent`: the gRPC bootstrap reads
//! it from call metadata, the bus stamps [`current_traceparent`] on envelopes and consumers
//! continue the trace with [`set_parent_from_traceparent`].
//!
//! Nothing here records PHI: spans carry method names, ids, tenants and codes; errors logged by
//! [`crate::grpc::internal`] are the callers' responsibility to keep free of patient data.
//!
//! [`serve_admin`] serves `GET /metrics` (Prometheus text) and `GET /healthz` on the admin port.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, TelemetryConfig};

static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Flushes and shuts the span exporter down when dropped. Keep it alive for the process.
#[must_use = "dropping the guard shuts tracing export down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
}

/// Installs the process's subscriber (see the module docs). A second call, or a call after
/// another subscriber was installed (tests), does nothing and returns an inert guard.
pub fn init(cfg: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    if INITIALIZED.swap(true, Ordering::SeqCst) {
        return Ok(TelemetryGuard { provider: None });
    }
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => config_filter(&cfg.filter)?,
    };

    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .build(),
    );
    let exporting = !cfg.otlp_endpoint.trim().is_empty();
    if exporting {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.otlp_endpoint.trim())
            .build()
            .context("build the OTLP span exporter")?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("arflow"));

    let (text, json) = match cfg.log_format {
        LogFormat::Text => (
            Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init();
    if installed.is_err() {
        // Someone else owns the global subscriber (a test harness): stay out of the way.
        let _ = provider.shutdown();
        return Ok(TelemetryGuard { provider: None });
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    if exporting {
        tracing::info!(endpoint = %cfg.otlp_endpoint, "exporting spans over OTLP/gRPC");
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// `telemetry.filter` plus quiet defaults for the transport crates, whose per-frame debug
/// logs would drown ours (unless the filter names them itself).
fn config_filter(directives: &str) -> anyhow::Result<EnvFilter> {
    let mut filter = EnvFilter::try_new(directives)
        .with_context(|| format!("telemetry.filter {directives:?}"))?;
    for quiet in [
        "h2",
        "hyper",
        "hyper_util",
        "tower",
        "opentelemetry",
        "opentelemetry_sdk",
    ] {
        if !directives.contains(quiet) {
            filter = filter.add_directive(
                format!("{quiet}=warn")
                    .parse()
                    .context("static directive")?,
            );
        }
    }
    Ok(filter)
}

/// The W3C `traceparent` of the current span; empty when there is none (no subscriber, or
/// outside any span).
pub fn current_traceparent() -> String {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut MapCarrier(&mut carrier));
    carrier.remove("traceparent").unwrap_or_default()
}

/// Makes `traceparent` (a W3C header, e.g. from an event envelope) the parent of `span`.
/// Must be called before the span is first entered; a no-op for empty or invalid values.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let cx = context_from_traceparent(traceparent);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The OpenTelemetry context a `traceparent` value describes (empty when invalid).
pub(crate) fn context_from_traceparent(traceparent: &str) -> opentelemetry::Context {
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_string(), traceparent.trim().to_string());
    TraceContextPropagator::new().extract(&MapCarrier(&mut carrier))
}

/// The OpenTelemetry context carried by HTTP/2 headers (gRPC metadata).
pub(crate) fn context_from_headers(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderCarrier(headers))
}

/// The trace id (32 hex digits) of the current span, or of the gRPC call being handled;
/// empty when there is none.
pub fn current_trace_id() -> String {
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        return sc.trace_id().to_string();
    }
    crate::grpc::call_trace_id().unwrap_or_default()
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct HeaderCarrier<'a>(&'a http::HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Serves the admin HTTP port until `shutdown`: `GET /metrics` (Prometheus text format) and
/// `GET /healthz` (200 `ok` while the process runs; readiness is the gRPC health service).
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    crate::metrics::render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("admin http server")
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = context_from_traceparent(header);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(
            !context_from_traceparent("garbage")
                .span()
                .span_context()
                .is_valid()
        );
        // Outside any span there is nothing to propagate.
        assert_eq!(current_traceparent(), "");
    }

    #[test]
    fn init_is_idempotent_and_spans_get_trace_context() {
        // Only this module's spans are enabled, so the test prints nothing. (RUST_LOG, when
        // set, replaces the filter; keep it permissive enough for this module.)
        let cfg = TelemetryConfig {
            filter: "off,arflow_platform::telemetry=trace".into(),
            ..Default::default()
        };
        let _first = init(&cfg).unwrap();
        let second = init(&cfg).unwrap();
        assert!(second.provider.is_none(), "the second call is a no-op");

        let span = tracing::info_span!("work");
        let _entered = span.enter();
        let traceparent = current_traceparent();
        assert!(
            traceparent.starts_with("00-") && traceparent.len() == 55,
            "{traceparent:?}"
        );
        assert_eq!(current_trace_id(), traceparent[3..35]);

        // A child of a remote parent continues the parent's trace.
        let child = tracing::info_span!("handler");
        set_parent_from_traceparent(
            &child,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        let _child = child.enter();
        assert_eq!(current_trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn config_filter_quietens_transport_crates() {
        let filter = config_filter("info").unwrap().to_string();
        assert!(filter.contains("h2=warn"), "{filter}");
        let filter = config_filter("info,h2=trace").unwrap().to_string();
        assert!(!filter.contains("h2=warn"), "{filter}");
        assert!(config_filter("info,[").is_err());
    }
}
