//! Prometheus metrics of the master and the HTTP endpoint on
//! `metrics.addr` that serves them for the life of the process:
//! `GET /metrics` (the text format 0.0.4, or OpenMetrics when the scraper
//! asks for it: see [`crate::exposition`]), `GET /healthz` (the process
//! answers) and `GET /readyz` (this master serves: see [`crate::health`]).
//! Names follow the seed, every family has HELP text, histograms resolve
//! sub-millisecond latencies, and the conventional `process_*` figures
//! are read from /proc at each scrape.
//!
//! No series is per node, so deleting a node leaves nothing behind here;
//! a per-node family added later must be cleared with `Family::remove`.

use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition::{Format, negotiate};
use crate::health::Health;

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

/// Counts nodes `[online, degraded, offline]` at a scrape; installed by
/// the term of the master that serves.
pub type NodeCounter = Box<dyn Fn() -> [usize; 3] + Send + Sync>;

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
    /// Session recordings started.
    pub exec_recordings: Counter,
    /// Bytes written to session recordings.
    pub exec_recording_bytes: Counter,
    /// Recordings cut at exec.recording.max_bytes.
    pub exec_recordings_truncated: Counter,
    /// Recordings left incomplete by a failed write.
    pub exec_recording_errors: Counter,
    /// Recordings deleted by exec.recording.retention.
    pub exec_recordings_deleted: Counter,
    /// Config payload bytes sent to agents, raw and on the wire.
    pub config_bytes: Family<KindLabel, Counter>,
    /// Time from a version being stored to the answers, per push and per
    /// node.
    pub config_push_latency: Family<ScopeLabel, Histogram>,
    /// Deliveries that failed or got no answer in time.
    pub config_push_failures: Family<ReasonLabel, Counter>,
    /// Known nodes by state, counted at each scrape while a term serves
    /// (0 on a standby).
    pub nodes: Family<StateLabel, Gauge>,
    /// What counts the nodes, while this master serves.
    node_counter: RwLock<Option<NodeCounter>>,
    /// Requests refused by authentication, authorisation, rate or input
    /// limits, by reason.
    pub refused: Family<ReasonLabel, Counter>,
    /// Audit entries the store refused to write.
    pub audit_write_failures: Counter,
    /// Refused calls not written to the audit log because their source
    /// refused too many recently (counted in the next entry written).
    pub audit_refusals_unrecorded: Counter,
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
    /// Current wave (0-based) of the newest staged rollout that has not
    /// ended; -1 when none runs.
    pub rollout_wave: Gauge,
    /// Staged rollouts halted, by why: apply, health, node_state,
    /// prometheus, operator (aborted or undone while running).
    pub rollout_halts: Family<ReasonLabel, Counter>,
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
        let audit_write_failures = Counter::default();
        registry.register(
            "cdn_audit_write_failures",
            "Audit entries the store could not write (the action was refused when the entry came first)",
            audit_write_failures.clone(),
        );
        let audit_refusals_unrecorded = Counter::default();
        registry.register(
            "cdn_audit_refusals_unrecorded",
            "Refused calls left out of the audit log by its per-source rate limit",
            audit_refusals_unrecorded.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "cdn_refused_requests",
            "Requests refused: unauthenticated, permission_denied, rate_limited, invalid, duplicate, audit_unwritable (the audit entry could not be written first); connections closed for too_many_pings",
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
        let exec_recordings = Counter::default();
        registry.register(
            "cdn_exec_recordings",
            "Exec session recordings started (one per session per node)",
            exec_recordings.clone(),
        );
        let exec_recording_bytes = Counter::default();
        registry.register(
            "cdn_exec_recording_bytes",
            "Bytes written to exec session recordings",
            exec_recording_bytes.clone(),
        );
        let exec_recordings_truncated = Counter::default();
        registry.register(
            "cdn_exec_recordings_truncated",
            "Exec session recordings cut at exec.recording.max_bytes",
            exec_recordings_truncated.clone(),
        );
        let exec_recording_errors = Counter::default();
        registry.register(
            "cdn_exec_recording_errors",
            "Exec session recordings left incomplete because a write failed",
            exec_recording_errors.clone(),
        );
        let exec_recordings_deleted = Counter::default();
        registry.register(
            "cdn_exec_recordings_deleted",
            "Exec session recordings deleted by exec.recording.retention",
            exec_recordings_deleted.clone(),
        );
        let config_bytes = Family::<KindLabel, Counter>::default();
        registry.register(
            "cdn_config_bytes",
            "Config payload bytes sent to agents: raw (before compression) and wire",
            config_bytes.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
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
        let rollout_wave = Gauge::default();
        rollout_wave.set(-1);
        registry.register(
            "cdn_rollout_wave",
            "Current wave (0-based) of the newest staged rollout that has not ended; -1 when none runs",
            rollout_wave.clone(),
        );
        let rollout_halts = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "cdn_rollout_halts",
            "Staged rollouts halted, by reason: apply, health, node_state, prometheus, operator",
            rollout_halts.clone(),
        );
        for reason in crate::rollouts::HALT_REASONS {
            let _ = rollout_halts.get_or_create(&ReasonLabel { reason });
        }
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
            "audit_unwritable",
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
            exec_recordings,
            exec_recording_bytes,
            exec_recordings_truncated,
            exec_recording_errors,
            exec_recordings_deleted,
            config_bytes,
            refused,
            audit_write_failures,
            audit_refusals_unrecorded,
            registry,
            config_push_latency,
            config_push_failures,
            nodes,
            node_counter: RwLock::new(None),
            master_is_leader,
            leadership_changes,
            backup_last_success,
            backups,
            backup_interval,
            rollout_wave,
            rollout_halts,
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

    /// Counts nodes with `counter` at each scrape from now on; None (a
    /// term ended) stops counting and shows 0 in every state.
    pub fn count_nodes_with(&self, counter: Option<NodeCounter>) {
        if counter.is_none() {
            for state in NODE_STATES {
                self.nodes.get_or_create(&StateLabel { state }).set(0);
            }
        }
        if let Ok(mut c) = self.node_counter.write() {
            *c = counter;
        }
    }

    /// Brings the node gauges up to date.
    fn count_nodes(&self) {
        let Ok(counter) = self.node_counter.read() else {
            return;
        };
        if let Some(count) = counter.as_ref() {
            for (state, n) in NODE_STATES.into_iter().zip(count()) {
                self.nodes
                    .get_or_create(&StateLabel { state })
                    .set(n as i64);
            }
        }
    }

    /// The exposition in the classic text format 0.0.4.
    pub fn render(&self) -> String {
        self.render_as(Format::Text004)
    }

    /// The exposition in `format`, every figure as of now.
    pub fn render_as(&self, format: Format) -> String {
        self.count_nodes();
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        match format {
            Format::OpenMetrics => out,
            Format::Text004 => crate::exposition::to_text_004(&out),
        }
    }
}

/// The node states `cdn_nodes` shows, in [`NodeCounter`]'s order.
const NODE_STATES: [&str; 3] = ["online", "degraded", "offline"];

/// The conventional process figures, read from /proc at each scrape, as
/// Prometheus' own client libraries name them.
#[derive(Debug)]
struct ProcessCollector;

impl ProcessCollector {
    fn gauge(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: f64,
    ) -> Result<(), std::fmt::Error> {
        let g = ConstGauge::new(value);
        g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                cpu.metric_type(),
            )?)?;
            if let Ok(boot) = procfs::boot_time_secs() {
                Self::gauge(
                    &mut encoder,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    boot as f64 + stat.starttime as f64 / ticks,
                )?;
            }
            Self::gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                (stat.rss * procfs::page_size()) as f64,
            )?;
            Self::gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.vsize as f64,
            )?;
        }
        if let Ok(n) = me.fd_count() {
            Self::gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                n as f64,
            )?;
        }
        if let Ok(limits) = me.limits() {
            let max = match limits.max_open_files.soft_limit {
                procfs::process::LimitValue::Value(v) => v as f64,
                procfs::process::LimitValue::Unlimited => f64::INFINITY,
            };
            Self::gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max,
            )?;
        }
        Ok(())
    }
}

/// Body of `/healthz`, and of `/readyz` when ready.
const OK_BODY: &str = "ok\n";

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until
/// `shutdown`.
/// The metrics endpoint ([`serve`]) in a task of its own: it outlives a
/// master's drain (so `/readyz` says 503 to the end) and stops with
/// [`Endpoint::stop`], or when dropped on an early way out.
pub struct Endpoint {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Endpoint {
    /// Serves `listener` until stopped.
    pub fn start(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, metrics, health, stop.clone()));
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stops it and waits until it has, logging how it failed if it did.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "metrics endpoint failed"),
                Err(e) => tracing::error!(error = %e, "metrics endpoint task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{HeaderMap, StatusCode, header};
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let metrics = Arc::clone(&metrics);
                async move {
                    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                    let format = negotiate(accept);
                    (
                        [(header::CONTENT_TYPE, format.content_type())],
                        metrics.render_as(format),
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { OK_BODY }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let health = Arc::clone(&health);
                async move {
                    match health.readiness() {
                        Ok(()) => (StatusCode::OK, OK_BODY.to_string()),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        ),
                    }
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
        let text = m.render_as(Format::OpenMetrics);
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

    #[test]
    fn the_classic_format_names_counters_with_total_and_has_help_everywhere() {
        let m = Metrics::default();
        m.push_done(0.003, 1);
        let text = m.render_as(Format::Text004);
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE config_push_failures_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        for name in [
            "process_start_time_seconds",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} gauge\n")),
                "{name}: {text}"
            );
        }
        // Every TYPE line has its HELP line just before it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(
                    i > 0 && lines[i - 1].starts_with(&format!("# HELP {name} ")),
                    "{name} has no HELP: {text}"
                );
            }
        }
    }

    #[test]
    fn node_counts_follow_the_term_and_drop_to_zero_after_it() {
        let m = Metrics::default();
        m.count_nodes_with(Some(Box::new(|| [2, 1, 3])));
        let text = m.render_as(Format::Text004);
        assert!(text.contains("cdn_nodes{state=\"offline\"} 3"), "{text}");
        m.count_nodes_with(None);
        let text = m.render_as(Format::Text004);
        assert!(text.contains("cdn_nodes{state=\"offline\"} 0"), "{text}");
    }
}
