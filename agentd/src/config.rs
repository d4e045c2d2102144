//! `agent.yml`: every key of the seed's agent example plus node identity.
//! Defaults live in the `Default` impls and match the README.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdn_common::config::{ConfigError, HostPort, Invalid, Validate};
use serde::{Deserialize, Deserializer, Serialize};

/// The configuration in force, replaced whole when SIGHUP reloads
/// agent.yml (see [`crate::reload`]); tasks that can follow a change
/// watch it.
pub type LiveConfig = tokio::sync::watch::Receiver<std::sync::Arc<AgentConfig>>;

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub master: MasterLink,
    pub heartbeat: HeartbeatConfig,
    pub status: StatusConfig,
    pub node: NodeConfig,
    pub config: ManagedConfig,
    pub exec: ExecPolicy,
    pub compression: CompressionAccept,
    /// Where the agent keeps its key, certificate and the master's CA.
    pub data_dir: PathBuf,
}

/// Content encodings this agent decodes; the master sends one of them, or
/// the content as it is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionAccept {
    /// Any of `gzip`, `zstd`.
    pub accept: Vec<String>,
}

impl Default for CompressionAccept {
    fn default() -> Self {
        Self {
            accept: vec!["gzip".into(), "zstd".into()],
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            master: MasterLink::default(),
            heartbeat: HeartbeatConfig::default(),
            status: StatusConfig::default(),
            node: NodeConfig::default(),
            config: ManagedConfig::default(),
            exec: ExecPolicy::default(),
            compression: CompressionAccept::default(),
            data_dir: default_data_dir(),
        }
    }
}

/// `/var/lib/cdn-agentd` for root; `$XDG_DATA_HOME/cdn-agentd` (usually
/// `~/.local/share/cdn-agentd`) otherwise.
pub fn default_data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/cdn-agentd");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("cdn-agentd"))
        .unwrap_or_else(|| PathBuf::from("cdn-agentd-data"))
}

/// What `cdnctl exec` may run on this node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecPolicy {
    /// Whether remote commands run at all.
    pub enabled: bool,
    /// Allowed programs: a name (`uptime`), a path (`/usr/bin/uptime`) or a
    /// pattern with `*` (`/opt/cdn/bin/*`); empty allows every program.
    pub allow: Vec<String>,
    /// Run commands as this user when agentd runs as root.
    pub user: Option<String>,
    /// Sessions running at once; more are refused.
    pub max_sessions: NonZeroU32,
}

impl Default for ExecPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            allow: Vec::new(),
            user: None,
            max_sessions: NonZeroU32::new(100).expect("100 is not zero"),
        }
    }
}

/// The config file this agent manages for the edge software.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagedConfig {
    /// Where pushed configs are written.
    pub path: PathBuf,
    /// Applied versions kept beside it for rollback.
    pub keep: NonZeroU32,
    /// Run with `sh -c` after a successful write; a failure restores the
    /// previous file.
    pub reload_command: Option<String>,
    /// Limit on the reload command; below cdnctl's push wait (30 s), so a
    /// hanging reload is reported failed rather than pending.
    #[serde(with = "cdn_common::duration")]
    pub reload_timeout: Duration,
    /// An apply is refused unless this many bytes stay free after it.
    pub min_free_bytes: u64,
    /// Parse the content as YAML again before writing it. Off by default:
    /// the master refuses invalid YAML before storing a version and the
    /// content's sha256 is checked here, so this is defence in depth
    /// against a master that lets bad YAML through; it costs about 20 ms of
    /// CPU per MiB on every node.
    pub check_yaml: bool,
    /// Run with `sh -c` after every successful apply and reload (before
    /// the master is told) and every `health_interval`: exit 0 means the
    /// edge software is healthy. Unset or empty: no check.
    pub health_command: Option<String>,
    /// Time between two runs of the health command.
    #[serde(with = "cdn_common::duration")]
    pub health_interval: Duration,
    /// A health command still running after this fails ("timed out").
    #[serde(with = "cdn_common::duration")]
    pub health_timeout: Duration,
}

impl ManagedConfig {
    /// The health command in force, None when unset or blank.
    pub fn health_command(&self) -> Option<&str> {
        self.health_command
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    }
}

/// Default free space kept on the config file's file system.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 10 * 1024 * 1024;

impl Default for ManagedConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/etc/cdn-agent/edge.yml"),
            keep: NonZeroU32::new(5).expect("5 is not zero"),
            reload_command: None,
            reload_timeout: Duration::from_secs(20),
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            check_yaml: false,
            health_command: None,
            health_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(10),
        }
    }
}

/// How to reach the master.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterLink {
    /// One `host:port` or a list tried in order.
    pub addr: MasterAddrs,
    /// Limit on TCP connect plus the HTTP/2 handshake.
    #[serde(with = "cdn_common::duration")]
    pub dial_timeout: Duration,
    /// Failed tries against one address before moving to the next; unset =
    /// the master's `reconnect.max_retries`.
    pub max_retries: Option<NonZeroU32>,
    pub keepalive: ClientKeepalive,
    /// Join token for the first start (`masterd token create` prints it):
    /// it names the master's CA, so the agent trusts the right master from
    /// its first connection. Not needed once enrolled.
    pub join_token: Option<String>,
    /// File holding the join token instead (keeps it out of this file).
    pub join_token_file: Option<PathBuf>,
    /// Trust this CA (PEM) for the master's certificate instead of the one
    /// the token names: for a master serving the operator's own certificate.
    pub ca_file: Option<PathBuf>,
    /// Name the master's certificate is checked against; default: the host
    /// of each `addr`.
    pub server_name: Option<String>,
}

impl Default for MasterLink {
    fn default() -> Self {
        Self {
            addr: MasterAddrs(vec![HostPort {
                host: "127.0.0.1".into(),
                port: 50051,
            }]),
            dial_timeout: Duration::from_secs(10),
            max_retries: None,
            keepalive: ClientKeepalive::default(),
            join_token: None,
            join_token_file: None,
            ca_file: None,
            server_name: None,
        }
    }
}

/// One or more master addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MasterAddrs(pub Vec<HostPort>);

impl<'de> Deserialize<'de> for MasterAddrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MasterAddrs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a host:port address or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MasterAddrs, E> {
                HostPort::parse(s)
                    .map(|a| MasterAddrs(vec![a]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MasterAddrs, A::Error> {
                let mut out = Vec::new();
                while let Some(a) = seq.next_element::<HostPort>()? {
                    out.push(a);
                }
                if out.is_empty() {
                    return Err(serde::de::Error::custom("the address list is empty"));
                }
                Ok(MasterAddrs(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// HTTP/2 keepalive of the agent's connection.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientKeepalive {
    /// Interval between HTTP/2 PINGs to the master.
    #[serde(with = "cdn_common::duration")]
    pub time: Duration,
    /// A PING unanswered this long drops the connection.
    #[serde(with = "cdn_common::duration")]
    pub timeout: Duration,
}

impl Default for ClientKeepalive {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Heartbeats to the master.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    #[serde(with = "cdn_common::duration")]
    pub interval: Duration,
    /// A heartbeat unanswered this long drops the connection and reconnects.
    #[serde(with = "cdn_common::duration")]
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// System figures: how often they are measured and sent, and when the agent
/// calls itself degraded.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    #[serde(with = "cdn_common::duration")]
    pub collect_interval: Duration,
    #[serde(with = "cdn_common::duration")]
    pub report_interval: Duration,
    /// Memory use (percent) above which the agent reports `degraded`.
    pub degraded_mem_percent: Percent,
    /// Disk use (percent, all disks together) above which it reports `degraded`.
    pub degraded_disk_percent: Percent,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            collect_interval: Duration::from_secs(10),
            report_interval: Duration::from_secs(10),
            degraded_mem_percent: Percent(95.0),
            degraded_disk_percent: Percent(95.0),
        }
    }
}

/// A percentage in `0..=100`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=100.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range (expected 0 to 100)"
            )));
        }
        Ok(Self(v))
    }
}

/// Who this node is.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Node id; the host name when unset.
    pub id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl AgentConfig {
    /// Loads and validates `file`.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        cdn_common::config::load(file)
    }

    /// The node id in force: `node.id`, else the host name.
    pub fn node_id(&self) -> Result<String, String> {
        if let Some(id) = &self.node.id {
            return Ok(id.clone());
        }
        let host = sysinfo::System::host_name()
            .ok_or("cannot read the host name; set node.id in agent.yml")?;
        // A FQDN's first label is the conventional short name.
        let short = host.split('.').next().unwrap_or(&host).to_string();
        cdn_common::check_node_id(&short)
            .map_err(|e| format!("host name cannot serve as node id ({e}); set node.id"))?;
        Ok(short)
    }
}

impl Validate for AgentConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if let Some(id) = &self.node.id {
            cdn_common::check_node_id(id).map_err(|m| Invalid::new("node.id", m))?;
        }
        cdn_common::check_labels(self.node.labels.iter())
            .map_err(|m| Invalid::new("node.labels", m))?;
        if self.config.path.file_name().is_none() || self.config.path.as_os_str().is_empty() {
            return Err(Invalid::new("config.path", "must name a file"));
        }
        if self.config.path.is_dir() {
            return Err(Invalid::new(
                "config.path",
                format!(
                    "{} is a directory; name the file pushed configs are written to",
                    self.config.path.display()
                ),
            ));
        }
        for (key, d, min, max) in [
            (
                "heartbeat.interval",
                self.heartbeat.interval,
                SHORTEST_INTERVAL,
                LONGEST_INTERVAL,
            ),
            (
                "heartbeat.timeout",
                self.heartbeat.timeout,
                SHORTEST_INTERVAL,
                LONGEST_INTERVAL,
            ),
            (
                "status.collect_interval",
                self.status.collect_interval,
                SHORTEST_INTERVAL,
                LONGEST_INTERVAL,
            ),
            (
                "status.report_interval",
                self.status.report_interval,
                SHORTEST_INTERVAL,
                LONGEST_INTERVAL,
            ),
            (
                "master.dial_timeout",
                self.master.dial_timeout,
                Duration::ZERO,
                LONGEST_INTERVAL,
            ),
            (
                "master.keepalive.time",
                self.master.keepalive.time,
                Duration::ZERO,
                LONGEST_INTERVAL,
            ),
            (
                "master.keepalive.timeout",
                self.master.keepalive.timeout,
                Duration::ZERO,
                LONGEST_INTERVAL,
            ),
            (
                "config.reload_timeout",
                self.config.reload_timeout,
                Duration::ZERO,
                LONGEST_INTERVAL,
            ),
            (
                "config.health_interval",
                self.config.health_interval,
                SHORTEST_HEALTH_INTERVAL,
                LONGEST_INTERVAL,
            ),
            (
                "config.health_timeout",
                self.config.health_timeout,
                SHORTEST_INTERVAL,
                LONGEST_INTERVAL,
            ),
        ] {
            within(key, d, min, max)?;
        }
        if self
            .config
            .reload_command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(Invalid::new(
                "config.reload_command",
                "is empty; remove the key instead",
            ));
        }
        if let Some(bad) = self
            .compression
            .accept
            .iter()
            .find(|a| !matches!(a.as_str(), "gzip" | "zstd"))
        {
            return Err(Invalid::new(
                "compression.accept",
                format!("unknown encoding `{bad}` (expected gzip or zstd)"),
            ));
        }
        if self.master.join_token.is_some() && self.master.join_token_file.is_some() {
            return Err(Invalid::new(
                "master.join_token_file",
                "give master.join_token or master.join_token_file, not both",
            ));
        }
        if let Some(t) = &self.master.join_token {
            t.parse::<cdn_common::tls::JoinToken>()
                .map_err(|e| Invalid::new("master.join_token", e.to_string()))?;
        }
        for a in &self.master.addr.0 {
            if a.host.is_empty() {
                return Err(Invalid::new(
                    "master.addr",
                    format!("`{a}` has no host; write for example 127.0.0.1:{}", a.port),
                ));
            }
        }
        Ok(())
    }
}

/// Heartbeats and status reports no more often than this: a 1 ms
/// heartbeat is a typo that would load the master.
const SHORTEST_INTERVAL: Duration = Duration::from_millis(100);
/// The health command no more often than this: each run starts a shell.
const SHORTEST_HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Intervals and timeouts of the agent no longer than this: a heartbeat
/// an hour apart already means the node shows offline for most of it.
const LONGEST_INTERVAL: Duration = Duration::from_secs(3600);

/// `d` of `key` lies in `min..=max`.
fn within(key: &str, d: Duration, min: Duration, max: Duration) -> Result<(), Invalid> {
    if d < min {
        return Err(Invalid::new(
            key,
            format!(
                "{} is shorter than the {} allowed",
                cdn_common::duration::short(d),
                cdn_common::duration::short(min)
            ),
        ));
    }
    if d > max {
        return Err(Invalid::new(
            key,
            format!(
                "{} is longer than the {} allowed",
                cdn_common::duration::short(d),
                cdn_common::duration::short(max)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_parses() {
        let text = include_str!("../../examples/agent.yml");
        let cfg: AgentConfig =
            cdn_common::config::parse_and_validate(Path::new("agent.yml"), text).unwrap();
        assert_eq!(cfg.master.addr.0[0].host, "master.ai-cdn.local");
        assert_eq!(cfg.master.max_retries.map(|n| n.get()), Some(3));
        assert_eq!(cfg.status.report_interval, Duration::from_secs(10));
    }

    #[test]
    fn address_list_is_accepted() {
        let text = "master:\n  addr: [\"a:1\", \"b:2\"]\n";
        let cfg: AgentConfig = cdn_common::config::parse(Path::new("a.yml"), text).unwrap();
        assert_eq!(cfg.master.addr.0.len(), 2);
    }

    #[test]
    fn bad_node_id_is_refused() {
        let text = "node:\n  id: \"bad id\"\n";
        let e = cdn_common::config::parse_and_validate::<AgentConfig>(Path::new("a.yml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.yml:2:3: key `node.id`"), "{e}");
    }

    #[test]
    fn health_keys_have_defaults_and_bounds() {
        let cfg: AgentConfig =
            cdn_common::config::parse_and_validate(Path::new("a.yml"), "{}\n").unwrap();
        assert_eq!(cfg.config.health_command(), None);
        assert_eq!(cfg.config.health_interval, Duration::from_secs(5));
        assert_eq!(cfg.config.health_timeout, Duration::from_secs(10));
        let blank = "config:\n  health_command: \"  \"\n";
        let cfg: AgentConfig =
            cdn_common::config::parse_and_validate(Path::new("a.yml"), blank).unwrap();
        assert_eq!(cfg.config.health_command(), None, "blank is no check");
        for (text, key, says) in [
            (
                "config:\n  health_interval: 0s\n",
                "config.health_interval",
                "0s",
            ),
            (
                "config:\n  health_interval: 2h\n",
                "config.health_interval",
                "longer",
            ),
            (
                "config:\n  health_timeout: 50ms\n",
                "config.health_timeout",
                "shorter",
            ),
            (
                "config:\n  health_timeout: 5x\n",
                "config.health_timeout",
                "",
            ),
        ] {
            let e = cdn_common::config::parse_and_validate::<AgentConfig>(Path::new("a.yml"), text)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("a.yml:2:")
                    && e.contains(&format!("key `{key}`"))
                    && e.contains(says),
                "{e}"
            );
        }
    }
}
