//! `master.yml`: every key of the seed's master example plus `data_dir` and
//! `admin.addr`. Defaults live in the `Default` impls and match the README.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdn_common::config::{ConfigError, Fraction, HostPort, Invalid, Validate};
use serde::{Deserialize, Serialize};

/// Default port of the agent and admin APIs (the seed's `:50051`).
pub const DEFAULT_GRPC_PORT: u16 = 50051;

/// The whole master configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterConfig {
    pub grpc: GrpcConfig,
    pub admin: AdminConfig,
    pub heartbeat: HeartbeatConfig,
    pub reconnect: ReconnectConfig,
    pub metrics: MetricsConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub compression: CompressionConfig,
    pub pool: PoolConfig,
    /// Exec sessions: what the master records of them.
    pub exec: ExecConfig,
    /// Where master state lives: the embedded file (one master) or etcd
    /// (active/standby masters).
    pub store: StoreConfig,
    /// Scheduled backups of the whole store, written by the leader.
    pub backup: BackupConfig,
    /// Staged rollouts: the Prometheus their gates read, default timings.
    pub rollout: RolloutConfig,
    /// Where the node registry, the CA and the credentials are stored.
    pub data_dir: PathBuf,
}

/// `store:` — which backend keeps master state.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (one redb file in `data_dir`, one master) or `etcd`
    /// (several masters, one leads).
    pub backend: BackendKind,
    pub etcd: EtcdConfig,
}

/// A store backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Embedded,
    Etcd,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Embedded => "embedded",
            BackendKind::Etcd => "etcd",
        }
    }
}

/// `store.etcd:` — the etcd cluster master state lives in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Client URLs of the members (`http://10.0.0.1:2379` or
    /// `https://…`); any member will do, the client moves on when one fails.
    pub endpoints: Vec<String>,
    /// Every key masterd writes starts with this (several fleets can share
    /// one etcd under different prefixes).
    pub prefix: String,
    /// Lifetime of the leader's lease: a leader that cannot renew it for
    /// this long loses leadership, and a standby takes over after it.
    #[serde(with = "cdn_common::duration")]
    pub lease_ttl: Duration,
    /// Longest wait for a connection to a member.
    #[serde(with = "cdn_common::duration")]
    pub dial_timeout: Duration,
    /// Longest wait for one request (a commit, a read).
    #[serde(with = "cdn_common::duration")]
    pub request_timeout: Duration,
    /// CA of the members' certificates (https endpoints).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, when the members require one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// This master's name among the masters (`cdnctl masters`); the host
    /// name and the agent API's port when empty.
    pub name: String,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            prefix: "/cdn/".into(),
            lease_ttl: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            ca_file: None,
            cert_file: None,
            key_file: None,
            name: String::new(),
        }
    }
}

/// `backup:` — scheduled backups (the seed's 定期备份配置).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Time between scheduled backups; `0s` turns them off.
    #[serde(with = "cdn_common::duration::zero_is_off")]
    pub interval: Duration,
    /// Where backups are written; `<data_dir>/backups` when unset.
    pub dir: Option<PathBuf>,
    /// Newest backups kept in `dir`; older ones are deleted.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            interval: Duration::ZERO,
            dir: None,
            keep: 7,
        }
    }
}

/// TLS of both APIs. By default the master makes its own CA and server
/// certificate in `<data_dir>/pki/`; `cert_file` and `key_file` replace the
/// server certificate with one of the operator's (clients then need that
/// certificate's CA: agents through `master.ca_file`, cdnctl through the
/// credential's `ca`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain of the master (leaf first).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the generated server
    /// certificate (loopback, the host name and the local addresses are
    /// always in it).
    pub names: Vec<String>,
    /// Lifetime of the client certificates issued to agents and users.
    #[serde(with = "cdn_common::duration")]
    pub client_cert_ttl: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            names: Vec::new(),
            client_cert_ttl: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Default of `pool.max_sessions`: at 2 MiB a stalled session, 2 GiB at
/// most held for readers that stopped reading.
pub const DEFAULT_MAX_EXEC_SESSIONS: u32 = 1024;

/// Sessions pooled on each agent's connection (the seed's pool).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Exec sessions one agent may have open at once through this master.
    pub size: std::num::NonZeroU32,
    /// Exec sessions open at once through this master, every agent's
    /// together: each holds buffers for a reader that stopped reading.
    pub max_sessions: std::num::NonZeroU32,
    /// An exec session with no traffic either way for this long is closed
    /// and its processes killed.
    #[serde(with = "cdn_common::duration")]
    pub max_idle_time: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            size: std::num::NonZeroU32::new(100).expect("100 is not zero"),
            max_sessions: std::num::NonZeroU32::new(DEFAULT_MAX_EXEC_SESSIONS).expect("not zero"),
            max_idle_time: Duration::from_secs(300),
        }
    }
}

/// `exec:` — exec sessions.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Session recording (every byte the master relays, with timing).
    pub recording: RecordingConfig,
}

/// What is recorded of an exec session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingMode {
    /// Nothing.
    Off,
    /// stdout, stderr, terminal sizes, signals, the exit code.
    #[default]
    Output,
    /// `output` and stdin (which may carry secrets).
    All,
}

impl RecordingMode {
    /// The word of master.yml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Output => "output",
            Self::All => "all",
        }
    }
}

/// `exec.recording:` — session recordings in `<data_dir>/recordings`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// `off`, `output` or `all` (stdin too).
    pub mode: RecordingMode,
    /// Bytes recorded of one session per node; past them the recording
    /// stops and says so (the operator still gets all the output).
    pub max_bytes: u64,
    /// How long and how much is kept.
    pub retention: RetentionConfig,
    /// Operators may replay their own sessions (else only admins).
    pub operators_replay_own: bool,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            mode: RecordingMode::Output,
            max_bytes: 64 * 1024 * 1024,
            retention: RetentionConfig::default(),
            operators_replay_own: false,
        }
    }
}

/// `exec.recording.retention:` — the oldest whole recordings go first.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Recordings older than this are deleted; `0s` keeps them.
    #[serde(with = "cdn_common::duration::zero_is_off")]
    pub max_age: Duration,
    /// Total bytes of all recordings; `0` for no limit.
    pub max_bytes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 24 * 3600),
            max_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

/// How config content is compressed for the wire.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionConfig {
    /// `gzip` (the seed's), `zstd` or `none`. An agent that does not decode
    /// it gets gzip, or the content as it is.
    pub algorithm: Algorithm,
    /// 1 (fastest) to 9 (smallest), for gzip and zstd alike.
    pub level: u32,
    /// Content smaller than this is sent as it is.
    pub min_size: u64,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Gzip,
            level: 6,
            min_size: 1024,
        }
    }
}

/// A content encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Gzip,
    Zstd,
    None,
}

impl Algorithm {
    /// The name on the wire ("" for none).
    pub fn wire_name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
            Algorithm::None => "",
        }
    }
}

/// Limits on what one source address may ask.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Registrations per second per source address (0 = no limit).
    pub register_rate: u32,
    /// Registrations one source may make at once before the rate applies.
    pub register_burst: u32,
    /// Failed authentications (bad token, no or unknown certificate) per
    /// minute per source address; past it, its unauthenticated calls are
    /// refused without being looked at.
    pub auth_failures_per_minute: u32,
    /// Failed authentications allowed at once before the rate applies.
    pub auth_failure_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            register_rate: 200,
            register_burst: 2000,
            auth_failures_per_minute: 30,
            auth_failure_burst: 20,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (Prometheus text) here; off when unset.
    pub addr: Option<HostPort>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            grpc: GrpcConfig::default(),
            admin: AdminConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            reconnect: ReconnectConfig::default(),
            metrics: MetricsConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            compression: CompressionConfig::default(),
            pool: PoolConfig::default(),
            exec: ExecConfig::default(),
            store: StoreConfig::default(),
            backup: BackupConfig::default(),
            rollout: RolloutConfig::default(),
            data_dir: default_data_dir(),
        }
    }
}

/// `rollout:` — staged rollouts (`cdnctl config push --canary …`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// The Prometheus that `--gate` queries are read from.
    pub prometheus: PrometheusConfig,
    /// Time a wave's nodes have to apply when the strategy names none.
    #[serde(with = "cdn_common::duration")]
    pub default_apply_timeout: Duration,
    /// How often gates are read while a wave bakes.
    #[serde(with = "cdn_common::duration")]
    pub gate_interval: Duration,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            prometheus: PrometheusConfig::default(),
            default_apply_timeout: Duration::from_secs(60),
            gate_interval: Duration::from_secs(5),
        }
    }
}

/// `rollout.prometheus:` — where Prometheus gates are read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Base URL of the Prometheus HTTP API (`http://127.0.0.1:9090`);
    /// empty: rollouts with Prometheus gates are refused.
    pub url: String,
    /// Time one query may take; a query that takes longer fails its gate.
    #[serde(with = "cdn_common::duration")]
    pub timeout: Duration,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// `$XDG_DATA_HOME/masterd` (usually `~/.local/share/masterd`), or
/// `./masterd-data` where no home is known.
pub fn default_data_dir() -> PathBuf {
    dirs::data_local_dir()
        .map(|d| d.join("masterd"))
        .unwrap_or_else(|| PathBuf::from("masterd-data"))
}

/// The gRPC listener agents dial (and cdnctl, unless `admin.addr` is set).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Listen address; `:50051` means every interface.
    pub addr: HostPort,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection.
    pub max_concurrent_streams: u32,
    /// SO_SNDBUF of every accepted socket, bytes.
    pub send_buffer_size: u32,
    /// SO_RCVBUF of every accepted socket, bytes.
    pub recv_buffer_size: u32,
    pub keepalive: ServerKeepalive,
}

/// Default SO_SNDBUF and SO_RCVBUF of accepted sockets: sized for
/// throughput (an exec stream or a config push fills it; 32 KiB held a
/// 200 MB stream 6-19 % below this). The kernel only uses what is queued.
pub const DEFAULT_SOCKET_BUFFER_BYTES: u32 = 4 * 1024 * 1024;

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            // Loopback unless the operator opens it (`:50051` = every
            // interface): a fresh master is reachable only from its host.
            addr: HostPort {
                host: "127.0.0.1".into(),
                port: DEFAULT_GRPC_PORT,
            },
            max_concurrent_streams: 1000,
            send_buffer_size: DEFAULT_SOCKET_BUFFER_BYTES,
            recv_buffer_size: DEFAULT_SOCKET_BUFFER_BYTES,
            keepalive: ServerKeepalive::default(),
        }
    }
}

/// HTTP/2 keepalive of the master's side of each connection.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerKeepalive {
    /// Interval between the master's HTTP/2 PINGs on an idle connection.
    #[serde(with = "cdn_common::duration")]
    pub time: Duration,
    /// A PING unanswered this long closes the connection.
    #[serde(with = "cdn_common::duration")]
    pub timeout: Duration,
    /// Handed to agents: whether they may ping while no stream is open.
    pub permit_without_stream: bool,
    /// Shortest interval between a client's PINGs: a client pinging more
    /// often (three times in a row without the master sending anything in
    /// between) gets GOAWAY `too_many_pings` and is disconnected (gRFC A8);
    /// agents then double their `keepalive.time`. `0s` turns this off.
    #[serde(with = "cdn_common::duration::zero_is_off")]
    pub min_ping_interval: Duration,
}

impl Default for ServerKeepalive {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(60),
            timeout: Duration::from_secs(20),
            permit_without_stream: true,
            // Below agentd's default keepalive.time (10s), as gRFC A8 asks.
            min_ping_interval: Duration::from_secs(5),
        }
    }
}

/// A separate listener for the AdminService.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// When unset, AdminService shares `grpc.addr` with AgentService.
    pub addr: Option<HostPort>,
}

/// How the master judges liveness.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    /// Expected interval between an agent's heartbeats.
    #[serde(with = "cdn_common::duration")]
    pub interval: Duration,
    /// Time a registered agent has to open its command stream; a session
    /// without one after this is dropped.
    #[serde(with = "cdn_common::duration")]
    pub timeout: Duration,
    /// Missed intervals after which a node is offline.
    pub offline_threshold: std::num::NonZeroU32,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            offline_threshold: std::num::NonZeroU32::new(3).expect("3 is not zero"),
        }
    }
}

impl HeartbeatConfig {
    /// Silence after which a node is offline.
    pub fn offline_after(&self) -> Duration {
        self.interval * self.offline_threshold.get()
    }
}

/// Reconnect policy handed to every agent at registration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectConfig {
    /// Failed tries against one master address before an agent moves to the
    /// next (an agent's own `master.max_retries` wins).
    pub max_retries: std::num::NonZeroU32,
    #[serde(with = "cdn_common::duration")]
    pub base_delay: Duration,
    #[serde(with = "cdn_common::duration")]
    pub max_delay: Duration,
    /// ± fraction of randomisation applied to each delay.
    pub jitter: Fraction,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            max_retries: std::num::NonZeroU32::new(3).expect("3 is not zero"),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            jitter: Fraction(0.3),
        }
    }
}

impl MasterConfig {
    /// Loads and validates `file`.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        cdn_common::config::load(file)
    }
}

/// `d` within `lo..=hi`, or an error naming `key` and the range; `zero_ok`
/// also takes `0s` (the key's "off").
fn within(key: &str, d: Duration, lo: &str, hi: &str, zero_ok: bool) -> Result<(), Invalid> {
    let bound = |s: &str| cdn_common::duration::parse(s).unwrap_or(Duration::ZERO);
    if (zero_ok && d.is_zero()) || (bound(lo)..=bound(hi)).contains(&d) {
        return Ok(());
    }
    let off = if zero_ok { " (or 0s: off)" } else { "" };
    Err(Invalid::new(
        key,
        format!(
            "{} is out of range ({lo} to {hi}{off})",
            cdn_common::duration::short(d)
        ),
    ))
}

impl MasterConfig {
    /// Every duration within what works: a value the master would take but
    /// that breaks it at run time (a keepalive of years, an idle limit no
    /// session reaches) is refused when the file is read, at start and on
    /// SIGHUP alike.
    fn check_durations(&self) -> Result<(), Invalid> {
        let (ka, hb) = (&self.grpc.keepalive, &self.heartbeat);
        within("heartbeat.interval", hb.interval, "100ms", "1h", false)?;
        within("heartbeat.timeout", hb.timeout, "100ms", "1h", false)?;
        within("grpc.keepalive.time", ka.time, "1s", "2h", false)?;
        within("grpc.keepalive.timeout", ka.timeout, "1s", "10m", false)?;
        within(
            "grpc.keepalive.min_ping_interval",
            ka.min_ping_interval,
            "1ms",
            "1h",
            true,
        )?;
        within(
            "pool.max_idle_time",
            self.pool.max_idle_time,
            "1s",
            "7d",
            false,
        )?;
        within(
            "reconnect.base_delay",
            self.reconnect.base_delay,
            "1ms",
            "1m",
            false,
        )?;
        within(
            "reconnect.max_delay",
            self.reconnect.max_delay,
            "1ms",
            "1h",
            false,
        )?;
        within(
            "tls.client_cert_ttl",
            self.tls.client_cert_ttl,
            "1m",
            "3650d",
            false,
        )?;
        within(
            "exec.recording.retention.max_age",
            self.exec.recording.retention.max_age,
            "1m",
            "3650d",
            true,
        )?;
        let r = &self.rollout;
        within(
            "rollout.prometheus.timeout",
            r.prometheus.timeout,
            "100ms",
            "5m",
            false,
        )?;
        within(
            "rollout.default_apply_timeout",
            r.default_apply_timeout,
            "1s",
            "1d",
            false,
        )?;
        within(
            "rollout.gate_interval",
            r.gate_interval,
            "100ms",
            "1h",
            false,
        )
    }
}

impl Validate for MasterConfig {
    fn validate(&self) -> Result<(), Invalid> {
        self.check_durations()?;
        if self.reconnect.base_delay > self.reconnect.max_delay {
            return Err(Invalid::new(
                "reconnect.base_delay",
                format!(
                    "base_delay ({}) is larger than max_delay ({})",
                    cdn_common::duration::short(self.reconnect.base_delay),
                    cdn_common::duration::short(self.reconnect.max_delay)
                ),
            ));
        }
        let rec = &self.exec.recording;
        if rec.max_bytes < 1024 {
            return Err(Invalid::new(
                "exec.recording.max_bytes",
                format!("{} is too small (at least 1024 bytes)", rec.max_bytes),
            ));
        }
        if rec.retention.max_bytes != 0 && rec.retention.max_bytes < rec.max_bytes {
            return Err(Invalid::new(
                "exec.recording.retention.max_bytes",
                format!(
                    "{} is less than exec.recording.max_bytes ({}): one session would not fit",
                    rec.retention.max_bytes, rec.max_bytes
                ),
            ));
        }
        let url = &self.rollout.prometheus.url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Invalid::new(
                "rollout.prometheus.url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        if self.grpc.max_concurrent_streams == 0 {
            return Err(Invalid::new(
                "grpc.max_concurrent_streams",
                "must be at least 1",
            ));
        }
        for (key, v) in [
            ("grpc.send_buffer_size", self.grpc.send_buffer_size),
            ("grpc.recv_buffer_size", self.grpc.recv_buffer_size),
        ] {
            if !(1024..=64 * 1024 * 1024).contains(&v) {
                return Err(Invalid::new(
                    key,
                    format!("{v} is out of range (1024 to 67108864 bytes)"),
                ));
            }
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            let key = if self.tls.cert_file.is_some() {
                "tls.key_file"
            } else {
                "tls.cert_file"
            };
            return Err(Invalid::new(
                key,
                "tls.cert_file and tls.key_file go together: give both or neither",
            ));
        }
        if !(1..=9).contains(&self.compression.level) {
            return Err(Invalid::new(
                "compression.level",
                format!("{} is out of range (1 to 9)", self.compression.level),
            ));
        }
        if self.store.backend == BackendKind::Etcd {
            let etcd = &self.store.etcd;
            if etcd.endpoints.is_empty() {
                return Err(Invalid::new(
                    "store.etcd.endpoints",
                    "store.backend is etcd but no endpoint is given (for example [\"http://127.0.0.1:2379\"])",
                ));
            }
            for e in &etcd.endpoints {
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(Invalid::new(
                        "store.etcd.endpoints",
                        format!("{e:?} is not an http:// or https:// URL"),
                    ));
                }
            }
            if !etcd.prefix.starts_with('/') || !etcd.prefix.ends_with('/') {
                return Err(Invalid::new(
                    "store.etcd.prefix",
                    format!("{:?} must start and end with `/`", etcd.prefix),
                ));
            }
            if !(Duration::from_secs(2)..=Duration::from_secs(3600)).contains(&etcd.lease_ttl) {
                return Err(Invalid::new(
                    "store.etcd.lease_ttl",
                    "must be between 2s and 1h (etcd leases count whole seconds)",
                ));
            }
            for (key, d) in [
                ("store.etcd.dial_timeout", etcd.dial_timeout),
                ("store.etcd.request_timeout", etcd.request_timeout),
            ] {
                if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&d) {
                    return Err(Invalid::new(key, "must be between 100ms and 10m"));
                }
            }
            if etcd.cert_file.is_some() != etcd.key_file.is_some() {
                return Err(Invalid::new(
                    "store.etcd.cert_file",
                    "store.etcd.cert_file and store.etcd.key_file go together",
                ));
            }
        }
        if !self.backup.interval.is_zero() {
            if self.backup.interval < Duration::from_secs(1) {
                return Err(Invalid::new(
                    "backup.interval",
                    "must be at least 1s (or 0s: off)",
                ));
            }
            if self.backup.keep == 0 {
                return Err(Invalid::new("backup.keep", "must be at least 1"));
            }
        }
        if self.limits.auth_failures_per_minute == 0 {
            return Err(Invalid::new(
                "limits.auth_failures_per_minute",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_that_would_break_the_master_are_refused_by_key() {
        let dir = tempfile::tempdir().unwrap();
        for (yaml, key, range) in [
            (
                "grpc:\n  keepalive:\n    time: 3650d\n",
                "grpc.keepalive.time",
                "1s to 2h",
            ),
            (
                "grpc:\n  keepalive:\n    timeout: 1h\n",
                "grpc.keepalive.timeout",
                "1s to 10m",
            ),
            (
                "pool:\n  max_idle_time: 100d\n",
                "pool.max_idle_time",
                "1s to 7d",
            ),
            (
                "heartbeat:\n  interval: 1ms\n",
                "heartbeat.interval",
                "100ms to 1h",
            ),
            (
                "heartbeat:\n  timeout: 2h\n",
                "heartbeat.timeout",
                "100ms to 1h",
            ),
            (
                "reconnect:\n  max_delay: 2h\n",
                "reconnect.max_delay",
                "1ms to 1h",
            ),
            (
                "tls:\n  client_cert_ttl: 1s\n",
                "tls.client_cert_ttl",
                "1m to 3650d",
            ),
        ] {
            let file = dir.path().join("master.yml");
            std::fs::write(&file, yaml).unwrap();
            let e = MasterConfig::load(&file).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(range), "{yaml}: {e}");
            assert!(e.contains("master.yml:"), "names the file and line: {e}");
        }
        // Off where off is a meaning.
        let file = dir.path().join("master.yml");
        std::fs::write(
            &file,
            "grpc:\n  keepalive:\n    min_ping_interval: 0s\nexec:\n  recording:\n    retention:\n      max_age: 0s\n",
        )
        .unwrap();
        MasterConfig::load(&file).unwrap();
    }

    #[test]
    fn seed_example_parses() {
        let text = include_str!("../../examples/master.yml");
        let cfg: MasterConfig =
            cdn_common::config::parse_and_validate(Path::new("master.yml"), text).unwrap();
        assert_eq!(cfg.grpc.addr.port, 50051);
        assert_eq!(cfg.heartbeat.offline_after(), Duration::from_secs(30));
        assert_eq!(cfg.reconnect.jitter, Fraction(0.3));
    }

    #[test]
    fn bad_rollout_settings_are_refused_by_key() {
        for (text, want) in [
            (
                "rollout:\n  prometheus:\n    url: 127.0.0.1:9090\n",
                "m.yml:3:5: key `rollout.prometheus.url`",
            ),
            (
                "rollout:\n  gate_interval: 0s\n",
                "m.yml:2:18: key `rollout.gate_interval`",
            ),
            (
                "rollout:\n  prometheus:\n    timeout: 1h\n",
                "m.yml:3:5: key `rollout.prometheus.timeout`",
            ),
        ] {
            let e =
                cdn_common::config::parse_and_validate::<MasterConfig>(Path::new("m.yml"), text)
                    .unwrap_err()
                    .to_string();
            assert!(e.starts_with(want), "{want}: {e}");
        }
        let ok: MasterConfig = cdn_common::config::parse_and_validate(
            Path::new("m.yml"),
            "rollout:\n  prometheus:\n    url: http://127.0.0.1:9090\n",
        )
        .unwrap();
        assert_eq!(ok.rollout.gate_interval, Duration::from_secs(5));
        assert_eq!(ok.rollout.default_apply_timeout, Duration::from_secs(60));
    }

    #[test]
    fn base_above_max_is_refused() {
        let text = "reconnect:\n  base_delay: 1m\n  max_delay: 1s\n";
        let e = cdn_common::config::parse_and_validate::<MasterConfig>(Path::new("m.yml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.yml:2:3: key `reconnect.base_delay`"),
            "{e}"
        );
    }
}
