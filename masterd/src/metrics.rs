//! Prometheus metrics of the master, served as text on `metrics.addr`
//! (`GET /metrics`). Names follow the seed; histograms resolve
//! sub-millisecond latencies.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Smallest latency bucket: 100 µs, doubling 20 times (to about 52 s).
const LATENCY_BUCKET_START_SECONDS: f64 = 0.0001;
const LATENCY_BUCKETS: u16 = 20;

/// `scope` of a push latency sample.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    /// `push`: store to last answer; `node`: store to one node's answer.
    pub scope: &'static str,
}

/// `reason` of a push failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Push failures: `failed` (the agent refused or could not apply) or
    /// `timeout`. Refusals: see [`Metrics::refused`].
    pub reason: &'static str,
}

/// `state` of nodes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_BUCKET_START_SECONDS,
        2.0,
        LATENCY_BUCKETS,
    ))
}

/// The master's metric families.
pub struct Metrics {
    registry: Registry,
    pub config_push_latency: Family<ScopeLabel, Histogram>,
    pub config_push_failures: Family<ReasonLabel, Counter>,
    pub nodes: Family<StateLabel, Gauge>,
    /// Requests refused by authentication, authorisation, rate or input
    /// limits, by reason.
    pub refused: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let config_push_latency = Family::<ScopeLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "config_push_latency_seconds",
            "Time from a config version being stored to acknowledgements: per push (last answer) and per node",
            config_push_latency.clone(),
        );
        let config_push_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "config_push_failures",
            "Config deliveries that failed on a node or got no answer in time",
            config_push_failures.clone(),
        );
        let nodes = Family::<StateLabel, Gauge>::default();
        registry.register("cdn_nodes", "Known nodes by state", nodes.clone());
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "cdn_refused_requests",
            "Requests refused: unauthenticated, permission_denied, rate_limited, invalid, duplicate",
            refused.clone(),
        );
        Self {
            refused,
            registry,
            config_push_latency,
            config_push_failures,
            nodes,
        }
    }
}

impl Metrics {
    /// Records one node's answer after `seconds`.
    pub fn node_answer(&self, seconds: f64, success: bool) {
        self.config_push_latency
            .get_or_create(&ScopeLabel { scope: "node" })
            .observe(seconds);
        if !success {
            self.config_push_failures
                .get_or_create(&ReasonLabel { reason: "failed" })
                .inc();
        }
    }

    /// Records a whole push that ended after `seconds` with `timed_out` nodes
    /// that never answered.
    pub fn push_done(&self, seconds: f64, timed_out: u64) {
        self.config_push_latency
            .get_or_create(&ScopeLabel { scope: "push" })
            .observe(seconds);
        if timed_out > 0 {
            self.config_push_failures
                .get_or_create(&ReasonLabel { reason: "timeout" })
                .inc_by(timed_out);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`; `refresh` runs
/// before each scrape to update gauges.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    refresh: Arc<dyn Fn() + Send + Sync>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            let refresh = Arc::clone(&refresh);
            async move {
                refresh();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_seed_names_with_sub_millisecond_buckets() {
        let m = Metrics::default();
        m.node_answer(0.00042, true);
        m.node_answer(0.002, false);
        m.push_done(0.003, 2);
        let text = m.render();
        assert!(
            text.contains("config_push_latency_seconds_bucket{le=\"0.0002\",scope=\"node\"}")
                || text.contains("scope=\"node\",le=\"0.0002\""),
            "{text}"
        );
        assert!(
            text.contains("config_push_failures_total{reason=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("config_push_failures_total{reason=\"timeout\"} 2"),
            "{text}"
        );
    }
}
