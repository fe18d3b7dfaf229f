//! Prometheus metrics of every process, served on the admin port at `/metrics`.
//!
//! Labels carry method names, stream and group names, service names and status codes only:
//! never a tenant's patient data, never an unbounded id.
use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// RPC latency in seconds by full method and gRPC status code.
    pub rpc_duration: HistogramVec,
    /// Events written to the outbox, by producer and event type.
    pub events_published: IntCounterVec,
    /// Events relayed from the outbox to the stream, by producer.
    pub events_relayed: IntCounterVec,
    /// Events handled, by consumer group, stream and outcome (ok, duplicate, error, dead_letter).
    pub events_consumed: IntCounterVec,
    /// Entries not yet delivered to a group, by stream and group.
    pub consumer_lag: IntGaugeVec,
    /// Entries delivered but not acknowledged, by stream and group.
    pub consumer_pending: IntGaugeVec,
    /// Outbox rows not yet relayed, by producer.
    pub outbox_backlog: IntGaugeVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("arflow".into()), None)?;
    let rpc_duration = HistogramVec::new(
        HistogramOpts::new("rpc_duration_seconds", "gRPC call latency").buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["method", "code"],
    )?;
    let events_published = IntCounterVec::new(
        Opts::new("events_published_total", "events written to the outbox"),
        &["producer", "event_type"],
    )?;
    let events_relayed = IntCounterVec::new(
        Opts::new(
            "events_relayed_total",
            "outbox events published to the stream",
        ),
        &["producer"],
    )?;
    let events_consumed = IntCounterVec::new(
        Opts::new("events_consumed_total", "events handled by consumers"),
        &["group", "stream", "outcome"],
    )?;
    let consumer_lag = IntGaugeVec::new(
        Opts::new(
            "consumer_lag",
            "stream entries not yet delivered to the group",
        ),
        &["stream", "group"],
    )?;
    let consumer_pending = IntGaugeVec::new(
        Opts::new("consumer_pending", "entries delivered and not acknowledged"),
        &["stream", "group"],
    )?;
    let outbox_backlog = IntGaugeVec::new(
        Opts::new("outbox_backlog", "outbox rows not yet relayed"),
        &["producer"],
    )?;
    registry.register(Box::new(rpc_duration.clone()))?;
    registry.register(Box::new(events_published.clone()))?;
    registry.register(Box::new(events_relayed.clone()))?;
    registry.register(Box::new(events_consumed.clone()))?;
    registry.register(Box::new(consumer_lag.clone()))?;
    registry.register(Box::new(consumer_pending.clone()))?;
    registry.register(Box::new(outbox_backlog.clone()))?;
    Ok(Metrics {
        registry,
        rpc_duration,
        events_published,
        events_relayed,
        events_consumed,
        consumer_lag,
        consumer_pending,
        outbox_backlog,
    })
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().expect("metric definitions are static and valid"));

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
