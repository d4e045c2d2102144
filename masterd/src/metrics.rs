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

/// `change` of a leadership change: `acquired` or `lost`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabel {
    pub change: &'static str,
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

/// `kind` of byte counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `raw` (before compression) or `wire` (as sent).
    pub kind: &'static str,
}

/// `result` of a scheduled backup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The master's metric families.
pub struct Metrics {
    registry: Registry,
    /// Open HTTP/2 connections (agents and cdnctl).
    pub connections: Gauge,
    /// Heartbeat round trips as agents measured them.
    pub heartbeat_latency: Histogram,
    /// Heartbeats refused (`refused`) or missed until offline (`missed`).
    pub heartbeat_failures: Family<ReasonLabel, Counter>,
    /// Registrations of nodes that had a session before.
    pub reconnects: Counter,
    /// Time a reconnecting node was away (last sign of life to register).
    pub reconnect_latency: Histogram,
    /// Exec sessions running now.
    pub exec_active: Gauge,
    /// Config payload bytes sent to agents, raw and on the wire.
    pub config_bytes: Family<KindLabel, Counter>,
    /// Process figures, refreshed at each scrape.
    pub process_rss: Gauge,
    pub process_cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub process_fds: Gauge,
    pub config_push_latency: Family<ScopeLabel, Histogram>,
    pub config_push_failures: Family<ReasonLabel, Counter>,
    pub nodes: Family<StateLabel, Gauge>,
    /// Requests refused by authentication, authorisation, rate or input
    /// limits, by reason.
    pub refused: Family<ReasonLabel, Counter>,
    /// 1 while this master leads (always on the embedded store).
    pub master_is_leader: Gauge,
    /// Leadership acquired or lost by this master (failovers).
    pub leadership_changes: Family<ChangeLabel, Counter>,
    /// When the newest scheduled backup was written (unix seconds; 0 =
    /// none known).
    pub backup_last_success: Gauge,
    /// Scheduled backups by result.
    pub backups: Family<ResultLabel, Counter>,
    /// `backup.interval` while this master schedules backups (it leads and
    /// they are on), else 0: alerts look only at masters that should be
    /// writing them.
    pub backup_interval: Gauge,
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
            "Requests refused: unauthenticated, permission_denied, rate_limited, invalid, duplicate; connections closed for too_many_pings",
            refused.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "grpc_connections_active",
            "Open HTTP/2 connections to the master (agents and cdnctl)",
            connections.clone(),
        );
        let heartbeat_latency = latency_histogram();
        registry.register(
            "agent_heartbeat_latency_seconds",
            "Heartbeat round trips as the agents measured them",
            heartbeat_latency.clone(),
        );
        let heartbeat_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "agent_heartbeat_failures",
            "Heartbeats refused (refused) or missed until a node went offline (missed)",
            heartbeat_failures.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "agent_reconnect",
            "Registrations of nodes that had a session before",
            reconnects.clone(),
        );
        let reconnect_latency = latency_histogram();
        registry.register(
            "agent_reconnect_latency_seconds",
            "Time a reconnecting node was away, from its last sign of life to its new registration",
            reconnect_latency.clone(),
        );
        let exec_active = Gauge::default();
        registry.register(
            "cdn_exec_sessions_active",
            "Exec sessions running now",
            exec_active.clone(),
        );
        let config_bytes = Family::<KindLabel, Counter>::default();
        registry.register(
            "cdn_config_bytes",
            "Config payload bytes sent to agents: raw (before compression) and wire",
            config_bytes.clone(),
        );
        let process_rss = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of masterd",
            process_rss.clone(),
        );
        let process_cpu_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time masterd used (user + system)",
            process_cpu_seconds.clone(),
        );
        let process_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Open file descriptors of masterd",
            process_fds.clone(),
        );
        let master_is_leader = Gauge::default();
        registry.register(
            "cdn_master_is_leader",
            "1 while this master leads (serves agents and operators), 0 while it is a standby",
            master_is_leader.clone(),
        );
        let leadership_changes = Family::<ChangeLabel, Counter>::default();
        registry.register(
            "cdn_master_leadership_changes",
            "Times this master acquired or lost the leadership (etcd store)",
            leadership_changes.clone(),
        );
        for change in ["acquired", "lost"] {
            let _ = leadership_changes.get_or_create(&ChangeLabel { change });
        }
        let backup_last_success = Gauge::default();
        registry.register(
            "cdn_backup_last_success_timestamp_seconds",
            "When the newest scheduled backup was written, unix seconds (0 = none known)",
            backup_last_success.clone(),
        );
        let backups = Family::<ResultLabel, Counter>::default();
        registry.register(
            "cdn_backups",
            "Scheduled backups by result: ok or error",
            backups.clone(),
        );
        let backup_interval = Gauge::default();
        registry.register(
            "cdn_backup_interval_seconds",
            "backup.interval while this master schedules backups, else 0",
            backup_interval.clone(),
        );
        // Every label set exists from the start: a scrape shows each series
        // at 0 rather than not at all.
        for reason in ["refused", "missed"] {
            let _ = heartbeat_failures.get_or_create(&ReasonLabel { reason });
        }
        for reason in ["failed", "timeout"] {
            let _ = config_push_failures.get_or_create(&ReasonLabel { reason });
        }
        for reason in [
            "unauthenticated",
            "permission_denied",
            "rate_limited",
            "invalid",
            "duplicate",
            "too_many_pings",
        ] {
            let _ = refused.get_or_create(&ReasonLabel { reason });
        }
        for result in ["ok", "error"] {
            let _ = backups.get_or_create(&ResultLabel { result });
        }
        for kind in ["raw", "wire"] {
            let _ = config_bytes.get_or_create(&KindLabel { kind });
        }
        for scope in ["push", "node"] {
            let _ = config_push_latency.get_or_create(&ScopeLabel { scope });
        }
        Self {
            connections,
            heartbeat_latency,
            heartbeat_failures,
            reconnects,
            reconnect_latency,
            exec_active,
            config_bytes,
            process_rss,
            process_cpu_seconds,
            process_fds,
            refused,
            registry,
            config_push_latency,
            config_push_failures,
            nodes,
            master_is_leader,
            leadership_changes,
            backup_last_success,
            backups,
            backup_interval,
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

    /// Counts one config payload sent: `raw` bytes before compression,
    /// `wire` as sent.
    pub fn config_sent(&self, raw: u64, wire: u64) {
        self.config_bytes
            .get_or_create(&KindLabel { kind: "raw" })
            .inc_by(raw);
        self.config_bytes
            .get_or_create(&KindLabel { kind: "wire" })
            .inc_by(wire);
    }

    /// Counts a scheduled backup written at `created_ms` (unix ms).
    pub fn backup_succeeded(&self, created_ms: i64) {
        self.backups
            .get_or_create(&ResultLabel { result: "ok" })
            .inc();
        self.backup_last_success.set(created_ms / 1000);
    }

    /// Counts a scheduled backup that failed.
    pub fn backup_failed(&self) {
        self.backups
            .get_or_create(&ResultLabel { result: "error" })
            .inc();
    }

    /// Reads this process's memory, CPU time and open files from /proc.
    pub fn refresh_process(&self) {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status")
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        {
            self.process_rss.set(kb * 1024);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
        {
            // Fields after the command: state is 3rd, utime 14th, stime 15th.
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: i64 = [11, 12]
                .iter()
                .filter_map(|i| f.get(*i).and_then(|v| v.parse::<i64>().ok()))
                .sum();
            // USER_HZ is 100 on Linux.
            self.process_cpu_seconds.set(ticks as f64 / 100.0);
        }
        if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
            self.process_fds.set(d.count() as i64);
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
