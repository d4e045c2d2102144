//! Who is connected and in what state: sessions and liveness, nothing else
//! (a node's config state belongs to [`crate::configs`]).
//!
//! One entry per known node in a sharded map; no lock is held across an
//! `.await`. A node has at most one live *session* (an epoch started by
//! `Register`); liveness is judged by the master's own clock on receipt of
//! heartbeats. A registration is durable before it is answered; the time a
//! node was last seen is flushed in batches by the liveness sweeper. Every
//! write of a node's record is sent to the store while its entry is locked,
//! so an older copy can never land after a newer one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use cdn_proto::v1::{CommandResponse, LinkStats, OfflineReason, SystemStatus};
use dashmap::DashMap;
use tokio::sync::mpsc;
use tonic::Status;

use crate::error::MasterError;
use crate::selector::Selector;
use crate::store::{NodeRecord, Store, Write};

/// Messages queued to one agent's command stream.
pub type CommandTx = mpsc::Sender<Result<CommandResponse, Status>>;

/// Liveness settings derived from `master.yml`.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub interval: Duration,
    /// Silence after which a heartbeat counts as late: node shown `degraded`.
    pub degraded_after: Duration,
    /// Silence after which the node is `offline`.
    pub offline_after: Duration,
    /// Time a new session has to open its command stream.
    pub stream_open_timeout: Duration,
}

impl Liveness {
    /// From the heartbeat section of the config.
    pub fn from_config(hb: &crate::config::HeartbeatConfig) -> Self {
        let offline_after = hb.offline_after();
        Self {
            interval: hb.interval,
            degraded_after: (hb.interval * 2).min(offline_after),
            offline_after,
            stream_open_timeout: hb.timeout,
        }
    }

    /// Intervals missed before a node is offline.
    fn missed_intervals(&self) -> u128 {
        self.offline_after.as_millis() / self.interval.as_millis().max(1)
    }
}

/// A node's state as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Online,
    Degraded,
    Offline,
}

impl NodeState {
    /// The operator API's spelling.
    pub fn wire(self) -> cdn_proto::v1::NodeStatus {
        match self {
            Self::Online => cdn_proto::v1::NodeStatus::Online,
            Self::Degraded => cdn_proto::v1::NodeStatus::Degraded,
            Self::Offline => cdn_proto::v1::NodeStatus::Offline,
        }
    }

    /// From the operator API's spelling (unspecified reads as offline).
    pub fn from_wire(s: cdn_proto::v1::NodeStatus) -> Self {
        match s {
            cdn_proto::v1::NodeStatus::Online => Self::Online,
            cdn_proto::v1::NodeStatus::Degraded => Self::Degraded,
            _ => Self::Offline,
        }
    }
}

/// Why a node is offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offline {
    /// Loaded from the store at start; the agent has not come back yet.
    MasterRestarted,
    /// Silent for `silent`; `missed` intervals when the sweeper said so.
    NoHeartbeat {
        silent: Duration,
        missed: Option<u128>,
    },
    /// The agent said goodbye.
    AgentShutDown,
    /// The command stream closed and no goodbye came.
    ConnectionLost,
    /// Registered, but the command stream was not opened in time.
    StreamNotOpened,
    /// An admin revoked the node's certificate.
    CertificateRevoked,
}

impl Offline {
    /// The operator API's enum.
    pub fn wire(&self) -> OfflineReason {
        match self {
            Self::MasterRestarted => OfflineReason::MasterRestarted,
            Self::NoHeartbeat { .. } => OfflineReason::NoHeartbeat,
            Self::AgentShutDown => OfflineReason::AgentShutDown,
            Self::ConnectionLost => OfflineReason::ConnectionLost,
            Self::StreamNotOpened => OfflineReason::StreamNotOpened,
            Self::CertificateRevoked => OfflineReason::CertificateRevoked,
        }
    }
}

impl std::fmt::Display for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MasterRestarted => {
                f.write_str("master restarted; waiting for the agent to reconnect")
            }
            Self::NoHeartbeat {
                silent,
                missed: None,
            } => write!(f, "no heartbeat for {}", fmt_secs(*silent)),
            Self::NoHeartbeat {
                silent,
                missed: Some(n),
            } => write!(
                f,
                "no heartbeat for {} (offline after {n} missed intervals)",
                fmt_secs(*silent)
            ),
            Self::AgentShutDown => f.write_str("agent shut down"),
            Self::ConnectionLost => f.write_str("connection lost (command stream closed)"),
            Self::StreamNotOpened => {
                f.write_str("command stream not opened in time after registering")
            }
            Self::CertificateRevoked => {
                f.write_str("certificate revoked; the node cannot reconnect until enrolled again")
            }
        }
    }
}

/// What an agent says of itself in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    Online,
    Degraded(String),
}

/// The last result of a node's health command (agent.yml
/// `config.health_command`), as the agent reported it in a heartbeat or
/// with a config acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The command exited 0.
    pub ok: bool,
    /// Why it fails ("exit 1: ...", "timed out after 10s"); empty when ok.
    pub detail: String,
    /// The config version applied on the node when the check ran.
    pub version: Option<cdn_proto::Version>,
    /// Agent wall clock, unix milliseconds, when the check finished.
    pub checked_ms: i64,
}

/// Longest health detail kept from an agent, bytes: the agent sends about
/// 512; more is cut, so a hostile agent cannot bloat the registry.
pub const MAX_HEALTH_DETAIL_BYTES: usize = 1024;

impl HealthReport {
    /// From what an agent sent: None for no check configured (state
    /// unspecified, or an agent that does not report health).
    pub fn from_wire(h: Option<&cdn_proto::v1::HealthCheck>) -> Option<Self> {
        use cdn_proto::v1::HealthState;
        let h = h?;
        let ok = match HealthState::try_from(h.state) {
            Ok(HealthState::Ok) => true,
            Ok(HealthState::Failing) => false,
            // Unspecified, or a state this master does not know.
            _ => return None,
        };
        let mut detail = h.detail.clone();
        if detail.len() > MAX_HEALTH_DETAIL_BYTES {
            let mut cut = MAX_HEALTH_DETAIL_BYTES;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        if !ok && detail.is_empty() {
            detail = "failing (the agent gave no detail)".into();
        }
        Some(Self {
            ok,
            detail,
            version: cdn_proto::Version::new(h.config_version),
            checked_ms: h.checked_ms,
        })
    }

    /// The operator API's form.
    pub fn wire(&self) -> cdn_proto::v1::HealthCheck {
        use cdn_proto::v1::HealthState;
        cdn_proto::v1::HealthCheck {
            state: if self.ok {
                HealthState::Ok
            } else {
                HealthState::Failing
            }
            .into(),
            detail: self.detail.clone(),
            config_version: cdn_proto::Version::to_u64(self.version),
            checked_ms: self.checked_ms,
        }
    }
}

/// A change of a node's health, for the `node.health` event.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthChange {
    /// What it was; None: no check.
    pub before: Option<bool>,
    /// What it is now.
    pub now: Option<HealthReport>,
}

impl HealthChange {
    /// The event's detail: "ok", "failing: ...", "no health check".
    pub fn describe(&self) -> String {
        match &self.now {
            Some(h) if h.ok => "ok".into(),
            Some(h) => format!("failing: {}", h.detail),
            None => "no health check".into(),
        }
    }
}

/// The live connection of a node.
#[derive(Debug)]
struct Session {
    id: u64,
    instance_id: String,
    registered_at: Instant,
    last_heartbeat: Instant,
    reported: Reported,
    stream: Option<StreamSlot>,
    /// When the command stream closed (the connection broke, or the agent
    /// is stopping and its goodbye heartbeat is on the way).
    stream_lost_at: Option<Instant>,
    clock_skew_ms: i64,
    /// Content encodings the agent decodes.
    accept_encodings: Vec<String>,
}

#[derive(Debug)]
struct StreamSlot {
    /// Distinguishes successive streams of one session.
    generation: u64,
    tx: CommandTx,
}

#[derive(Debug)]
struct Node {
    record: NodeRecord,
    session: Option<Session>,
    system: Option<SystemStatus>,
    link: Option<LinkStats>,
    /// Why the node last went offline (shown while it has no session).
    offline: Offline,
    /// The last health report; kept across sessions (the agent sends a
    /// fresh one with its first heartbeat).
    health: Option<HealthReport>,
    /// The record changed since the last flush (a `last_seen_ms` alone
    /// marks it only every [`LAST_SEEN_FLUSH_MS`]).
    dirty: bool,
    /// `last_seen_ms` as last written to the store.
    flushed_seen_ms: i64,
}

/// A point-in-time view of one node, for the AdminService.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub record: NodeRecord,
    pub state: NodeState,
    /// Why it is offline; None unless `state` is offline.
    pub offline: Option<Offline>,
    /// Why it is degraded or offline, in words; empty when online.
    pub reason: String,
    pub session_id: u64,
    pub stream_open: bool,
    pub system: Option<SystemStatus>,
    pub link: Option<LinkStats>,
    pub clock_skew_ms: i64,
    /// The last health report, None when no check is configured.
    pub health: Option<HealthReport>,
}

/// What `Register` asks for.
#[derive(Debug, Clone)]
pub struct Registration {
    pub node_id: String,
    pub instance_id: String,
    pub labels: BTreeMap<String, String>,
    pub addresses: Vec<String>,
    pub hostname: String,
    pub agent_version: String,
    /// Content encodings the agent decodes (empty: an older agent).
    pub accept_encodings: Vec<String>,
}

/// A transition the sweeper made, for logging.
#[derive(Debug)]
pub struct WentOffline {
    pub node_id: String,
    pub why: Offline,
}

/// The node registry.
pub struct Registry {
    nodes: DashMap<String, Node>,
    liveness: Liveness,
    store: Store,
    next_session: AtomicU64,
    next_stream: AtomicU64,
}

/// How long a session whose command stream closed is kept before the
/// node is marked offline: long enough for a stopping agent's goodbye
/// heartbeat to arrive and say so, short enough that a vanished agent shows
/// offline within a sweep or two.
pub const STREAM_LOSS_GRACE: Duration = Duration::from_secs(1);

/// A node's `last_seen_ms` alone is written to the store at most this
/// often (other changes at the next sweep): after a crash, the time a node
/// was last seen may be this much older than it was.
pub const LAST_SEEN_FLUSH_MS: i64 = 60_000;

/// How the reason of a node degraded by its health command starts.
pub const HEALTH_REASON_PREFIX: &str = "health check failed: ";

/// Why a node is in its state.
enum Why<'a> {
    Offline(&'a Offline),
    Degraded(&'a str),
    /// Its health command fails, with this detail: degraded.
    Health(&'a str),
    /// No heartbeat for this long: offline.
    Silent(Duration),
    /// Heartbeat late by this much: degraded.
    Late(Duration),
    None,
}

impl Registry {
    /// The registry of the nodes in `records` (all offline until they
    /// register), writing through `store`.
    pub fn load(store: Store, records: Vec<NodeRecord>, liveness: Liveness) -> Self {
        let last_session = records.iter().map(|r| r.last_session_id).max().unwrap_or(0);
        let nodes = DashMap::new();
        for record in records {
            let seen = record.last_seen_ms;
            nodes.insert(
                record.name.clone(),
                Node {
                    record,
                    session: None,
                    system: None,
                    link: None,
                    offline: Offline::MasterRestarted,
                    health: None,
                    dirty: false,
                    flushed_seen_ms: seen,
                },
            );
        }
        Self {
            nodes,
            liveness,
            store,
            next_session: AtomicU64::new(last_session + 1),
            next_stream: AtomicU64::new(1),
        }
    }

    /// Liveness settings in force.
    pub fn liveness(&self) -> Liveness {
        self.liveness
    }

    /// Number of known nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether `node_id` is known.
    pub fn contains(&self, node_id: &str) -> bool {
        self.nodes.contains_key(node_id)
    }

    fn session_is_live(&self, s: &Session, now: Instant) -> bool {
        if now.duration_since(s.last_heartbeat) > self.liveness.offline_after {
            return false;
        }
        match &s.stream {
            Some(slot) => !slot.tx.is_closed(),
            None => now.duration_since(s.registered_at) <= self.liveness.stream_open_timeout,
        }
    }

    /// Starts a new session for `reg`, replacing a dead session or an older
    /// session of the same agent process; refuses a second live agent.
    ///
    /// The node record is durable before this returns, so an acknowledged
    /// registration survives a crash.
    pub async fn register(&self, reg: Registration) -> Result<u64, MasterError> {
        let slot = self.store.reserve().await?;
        let now = Instant::now();
        let now_ms = cdn_common::unix_millis_now();
        let session_id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let written = {
            let mut entry = self
                .nodes
                .entry(reg.node_id.clone())
                .or_insert_with(|| Node {
                    record: NodeRecord {
                        name: reg.node_id.clone(),
                        first_seen_ms: now_ms,
                        ..Default::default()
                    },
                    session: None,
                    system: None,
                    link: None,
                    offline: Offline::MasterRestarted,
                    health: None,
                    dirty: false,
                    flushed_seen_ms: 0,
                });
            if let Some(old) = &entry.session {
                if old.instance_id != reg.instance_id && self.session_is_live(old, now) {
                    return Err(MasterError::DuplicateNode {
                        node_id: reg.node_id,
                        holder: entry.record.addresses.first().cloned().unwrap_or_default(),
                        since_ms: entry.record.connected_since_ms,
                    });
                }
                if let Some(slot) = &old.stream {
                    let _ = slot.tx.try_send(Ok(close_message(
                        "replaced by a newer session of the same node",
                    )));
                }
            }
            let node = &mut *entry;
            node.record.labels = reg.labels;
            node.record.addresses = reg.addresses;
            node.record.hostname = reg.hostname;
            node.record.agent_version = reg.agent_version;
            node.record.last_seen_ms = now_ms;
            node.record.connected_since_ms = now_ms;
            node.record.last_session_id = session_id;
            // Written now, before the registration is answered.
            node.dirty = false;
            node.flushed_seen_ms = now_ms;
            node.session = Some(Session {
                id: session_id,
                instance_id: reg.instance_id,
                registered_at: now,
                last_heartbeat: now,
                reported: Reported::Online,
                stream: None,
                stream_lost_at: None,
                clock_skew_ms: 0,
                accept_encodings: reg.accept_encodings,
            });
            slot.send(vec![Write::Node(node.record.clone())])
        };
        written.await?;
        Ok(session_id)
    }

    /// Runs `f` on the node's current session if `session_id` is current.
    fn with_session<T>(
        &self,
        node_id: &str,
        session_id: u64,
        f: impl FnOnce(&mut Node, Instant) -> T,
    ) -> Result<T, MasterError> {
        let unknown = |why: String| MasterError::UnknownSession {
            node_id: node_id.to_string(),
            session_id,
            why,
        };
        let mut node = self
            .nodes
            .get_mut(node_id)
            .ok_or_else(|| unknown("the node is not registered".into()))?;
        let now = Instant::now();
        match &node.session {
            // Silent past the offline window: the node was shown offline, so
            // the session is over even if the sweeper has not run yet.
            Some(s)
                if s.id == session_id
                    && now.duration_since(s.last_heartbeat) > self.liveness.offline_after =>
            {
                let silent = now.duration_since(s.last_heartbeat);
                node.session = None;
                node.offline = Offline::NoHeartbeat {
                    silent,
                    missed: None,
                };
                node.dirty = true;
                tracing::warn!(node = %node_id, silent = %fmt_secs(silent), "node offline: session expired");
                Err(unknown(format!("ended: {}", node.offline)))
            }
            Some(s) if s.id == session_id => Ok(f(&mut node, now)),
            // The agent is told why, not only the master's log.
            Some(s) if s.id > session_id => Err(unknown(format!(
                "replaced by session {} (a later registration of this node)",
                s.id
            ))),
            Some(s) => Err(unknown(format!("the current session is {}", s.id))),
            None => Err(unknown(format!("ended: {}", node.offline))),
        }
    }

    /// Records a heartbeat received now. `reported` is `None` when the agent
    /// says it is going offline (clean shutdown), which ends the session.
    pub fn heartbeat(
        &self,
        node_id: &str,
        session_id: u64,
        reported: Option<Reported>,
        agent_time_ms: i64,
    ) -> Result<(), MasterError> {
        let now_ms = cdn_common::unix_millis_now();
        self.with_session(node_id, session_id, |node, now| {
            node.record.last_seen_ms = now_ms;
            // 15,000 agents heartbeating would otherwise rewrite every
            // record at every sweep just for the time they were last seen.
            if reported.is_none() || now_ms - node.flushed_seen_ms >= LAST_SEEN_FLUSH_MS {
                node.dirty = true;
            }
            match reported {
                Some(r) => {
                    if let Some(s) = node.session.as_mut() {
                        s.last_heartbeat = now;
                        s.reported = r;
                        if agent_time_ms > 0 {
                            s.clock_skew_ms = agent_time_ms - now_ms;
                        }
                    }
                }
                None => {
                    node.session = None;
                    node.offline = Offline::AgentShutDown;
                }
            }
        })
    }

    /// Records the health an agent reported on its session (None: no
    /// check configured). Returns the change when the node went from ok to
    /// failing or back, or a check appeared or went away, for the
    /// `node.health` event; None when only the detail or time changed.
    pub fn record_health(
        &self,
        node_id: &str,
        session_id: u64,
        report: Option<HealthReport>,
    ) -> Result<Option<HealthChange>, MasterError> {
        self.with_session(node_id, session_id, |node, _| {
            let before = node.health.as_ref().map(|h| h.ok);
            let after = report.as_ref().map(|h| h.ok);
            node.health = report;
            (before != after).then(|| HealthChange {
                before,
                now: node.health.clone(),
            })
        })
    }

    /// The node's last health report; None when it has no health check
    /// configured, has never reported one, or is not known.
    pub fn health(&self, node: &str) -> Option<HealthReport> {
        self.nodes.get(node).and_then(|n| n.health.clone())
    }

    /// Fails unless `session_id` is the node's live session.
    pub fn check_session(&self, node_id: &str, session_id: u64) -> Result<(), MasterError> {
        self.with_session(node_id, session_id, |_, _| ())
    }

    /// Names of the nodes a push is for: `names` (each must be known) plus
    /// nodes matching `selector`; every known node when both are empty.
    pub fn resolve_targets(
        &self,
        names: &[String],
        selector: &Selector,
    ) -> Result<Vec<String>, MasterError> {
        let mut out = std::collections::BTreeSet::new();
        for n in names {
            if !self.nodes.contains_key(n) {
                return Err(MasterError::NodeNotFound(n.clone()));
            }
            out.insert(n.clone());
        }
        if names.is_empty() || !selector.is_empty() {
            for node in self.nodes.iter() {
                if selector.matches(&node.record.labels) {
                    out.insert(node.record.name.clone());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Stores the latest system figures of a node.
    pub fn report_status(
        &self,
        node_id: &str,
        session_id: u64,
        system: Option<SystemStatus>,
        link: Option<LinkStats>,
        agent_version: &str,
    ) -> Result<(), MasterError> {
        self.with_session(node_id, session_id, |node, _| {
            if system.is_some() {
                node.system = system;
            }
            if link.is_some() {
                node.link = link;
            }
            if !agent_version.is_empty() && node.record.agent_version != agent_version {
                node.record.agent_version = agent_version.to_string();
                node.dirty = true;
            }
        })
    }

    /// Attaches a freshly opened command stream to the session; returns the
    /// stream's generation for [`Registry::detach_stream`].
    pub fn attach_stream(
        &self,
        node_id: &str,
        session_id: u64,
        tx: CommandTx,
    ) -> Result<u64, MasterError> {
        let generation = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.with_session(node_id, session_id, |node, _| {
            if let Some(s) = node.session.as_mut() {
                s.stream = Some(StreamSlot { generation, tx });
                s.stream_lost_at = None;
            }
            generation
        })
    }

    /// Forgets a closed command stream if it is still the session's current one.
    pub fn detach_stream(&self, node_id: &str, session_id: u64, generation: u64) {
        let _ = self.with_session(node_id, session_id, |node, _| {
            if let Some(s) = node.session.as_mut()
                && s.stream.as_ref().map(|x| x.generation) == Some(generation)
            {
                s.stream = None;
                s.stream_lost_at = Some(Instant::now());
            }
        });
    }

    /// Content encodings the node's current session decodes.
    pub fn accept_encodings(&self, node_id: &str) -> Vec<String> {
        self.nodes
            .get(node_id)
            .and_then(|n| n.session.as_ref().map(|s| s.accept_encodings.clone()))
            .unwrap_or_default()
    }

    /// Sender of the node's command stream, if it is open.
    pub fn command_tx(&self, node_id: &str) -> Option<CommandTx> {
        let node = self.nodes.get(node_id)?;
        node.session
            .as_ref()
            .and_then(|s| s.stream.as_ref())
            .map(|slot| slot.tx.clone())
    }

    /// The node's command stream; a node that has just registered (online,
    /// stream not open yet) gets up to `wait` to open it.
    pub async fn command_tx_soon(&self, node_id: &str, wait: Duration) -> Option<CommandTx> {
        const POLL: Duration = Duration::from_millis(20);
        let deadline = Instant::now() + wait;
        loop {
            if let Some(tx) = self.command_tx(node_id) {
                return Some(tx);
            }
            let live = self.state(node_id).is_some_and(|s| s != NodeState::Offline);
            if !live || Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The node's state now and, unless online, why; nothing allocated.
    fn judge<'a>(&self, node: &'a Node, now: Instant) -> (NodeState, Why<'a>) {
        match &node.session {
            None => (NodeState::Offline, Why::Offline(&node.offline)),
            Some(s) => {
                let silent = now.duration_since(s.last_heartbeat);
                if silent > self.liveness.offline_after {
                    (NodeState::Offline, Why::Silent(silent))
                } else if let Some(h) = node.health.as_ref().filter(|h| !h.ok) {
                    (NodeState::Degraded, Why::Health(&h.detail))
                } else if let Reported::Degraded(why) = &s.reported
                    && !why.starts_with(HEALTH_REASON_PREFIX)
                {
                    (NodeState::Degraded, Why::Degraded(why))
                } else if silent > self.liveness.degraded_after {
                    (NodeState::Degraded, Why::Late(silent))
                } else {
                    (NodeState::Online, Why::None)
                }
            }
        }
    }

    /// Nodes online, degraded and offline now (for the metrics), without
    /// copying any record.
    pub fn count_states(&self) -> [usize; 3] {
        let now = Instant::now();
        let mut counts = [0usize; 3];
        for n in self.nodes.iter() {
            counts[match self.judge(&n, now).0 {
                NodeState::Online => 0,
                NodeState::Degraded => 1,
                NodeState::Offline => 2,
            }] += 1;
        }
        counts
    }

    fn view(&self, node: &Node, now: Instant) -> NodeView {
        let (state, why) = self.judge(node, now);
        let (offline, reason) = match why {
            Why::Offline(o) => (Some(o.clone()), o.to_string()),
            Why::Silent(silent) => {
                let o = Offline::NoHeartbeat {
                    silent,
                    missed: None,
                };
                let text = o.to_string();
                (Some(o), text)
            }
            Why::Degraded(t) => (None, t.to_string()),
            Why::Health(detail) => (None, format!("{HEALTH_REASON_PREFIX}{detail}")),
            Why::Late(d) => (None, format!("heartbeat late by {}", fmt_secs(d))),
            Why::None => (None, String::new()),
        };
        let session = node.session.as_ref();
        NodeView {
            record: node.record.clone(),
            state,
            offline,
            reason,
            session_id: session.map_or(node.record.last_session_id, |s| s.id),
            stream_open: session
                .and_then(|s| s.stream.as_ref())
                .is_some_and(|slot| !slot.tx.is_closed()),
            system: node.system,
            link: node.link,
            clock_skew_ms: session.map_or(0, |s| s.clock_skew_ms),
            health: node.health.clone(),
        }
    }

    /// One node, if known.
    pub fn get(&self, node_id: &str) -> Option<NodeView> {
        let now = Instant::now();
        self.nodes.get(node_id).map(|n| self.view(&n, now))
    }

    /// The node's state now, if known (no record copied).
    pub fn state(&self, node_id: &str) -> Option<NodeState> {
        let now = Instant::now();
        self.nodes.get(node_id).map(|n| self.judge(&n, now).0)
    }

    /// Unix milliseconds the node was last seen, if known.
    /// Whether `instance_id` (one agentd process) holds the node's current
    /// session, alive by its heartbeats: a registration it marks as an
    /// update (labels changed on SIGHUP) is then no reconnect.
    pub fn is_current_instance(&self, node_id: &str, instance_id: &str) -> bool {
        let now = Instant::now();
        self.nodes.get(node_id).is_some_and(|n| {
            n.session.as_ref().is_some_and(|s| {
                s.instance_id == instance_id
                    && now.duration_since(s.last_heartbeat) <= self.liveness.offline_after
            })
        })
    }

    pub fn last_seen_ms(&self, node_id: &str) -> Option<i64> {
        self.nodes.get(node_id).map(|n| n.record.last_seen_ms)
    }

    /// Every node for which `keep` is true, sorted by name.
    pub fn list(&self, keep: impl Fn(&NodeView) -> bool) -> Vec<NodeView> {
        let now = Instant::now();
        let mut out: Vec<NodeView> = self
            .nodes
            .iter()
            .map(|n| self.view(&n, now))
            .filter(|v| keep(v))
            .collect();
        out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        out
    }

    /// Ends sessions that went silent or never opened their stream, and
    /// writes changed records to the store.
    pub async fn sweep(&self) -> Result<Vec<WentOffline>, MasterError> {
        self.sweep_and_flush(false).await
    }

    /// The last sweep before the master stops: also writes every
    /// `last_seen_ms` not yet on disk.
    pub async fn final_flush(&self) -> Result<Vec<WentOffline>, MasterError> {
        self.sweep_and_flush(true).await
    }

    async fn sweep_and_flush(&self, all_seen: bool) -> Result<Vec<WentOffline>, MasterError> {
        let now = Instant::now();
        let mut offline = Vec::new();
        let mut dirty = Vec::new();
        for mut node in self.nodes.iter_mut() {
            let why = match &node.session {
                Some(s) if now.duration_since(s.last_heartbeat) > self.liveness.offline_after => {
                    Some(Offline::NoHeartbeat {
                        silent: now.duration_since(s.last_heartbeat),
                        missed: Some(self.liveness.missed_intervals()),
                    })
                }
                // A stopping agent closes its stream just before its goodbye
                // heartbeat: give that a moment, so the node shows why it went.
                Some(s) if s.stream.is_none() => match s.stream_lost_at {
                    Some(lost) if now.duration_since(lost) > STREAM_LOSS_GRACE => {
                        Some(Offline::ConnectionLost)
                    }
                    None if now.duration_since(s.registered_at)
                        > self.liveness.stream_open_timeout =>
                    {
                        Some(Offline::StreamNotOpened)
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(why) = why {
                node.session = None;
                node.offline = why.clone();
                node.dirty = true;
                offline.push(WentOffline {
                    node_id: node.record.name.clone(),
                    why,
                });
            }
            if node.dirty || (all_seen && node.record.last_seen_ms != node.flushed_seen_ms) {
                node.dirty = false;
                node.flushed_seen_ms = node.record.last_seen_ms;
                dirty.push(node.record.name.clone());
            }
        }
        self.write_records(dirty).await?;
        Ok(offline)
    }

    /// Writes the named nodes' records, each copied and queued while its
    /// entry is locked, and waits until all are durable.
    async fn write_records(&self, names: Vec<String>) -> Result<(), MasterError> {
        let mut pending = Vec::with_capacity(names.len());
        for name in names {
            let slot = self.store.reserve().await?;
            if let Some(node) = self.nodes.get(&name) {
                pending.push(slot.send(vec![Write::Node(node.record.clone())]));
            }
        }
        for p in pending {
            p.await?;
        }
        Ok(())
    }

    /// Ends the node's session at once (its certificate was revoked): the
    /// command stream is told why and closed, and the node shows offline.
    /// True if it had a session.
    pub fn cut(&self, node_id: &str, why: Offline) -> bool {
        let Some(mut node) = self.nodes.get_mut(node_id) else {
            return false;
        };
        let reason = why.to_string();
        node.offline = why;
        let Some(mut session) = node.session.take() else {
            return false;
        };
        if let Some(slot) = session.stream.take() {
            let _ = slot.tx.try_send(Ok(close_message(&reason)));
        }
        node.dirty = true;
        true
    }

    /// Removes a deleted node: its session, if it has one, ends (its
    /// command stream is told `reason` and closed) and its record is
    /// deleted from the store, queued while its entry is locked. Returns
    /// whether it had a session, or None if the node is not known. If the
    /// store refuses, the node is put back (offline).
    pub async fn forget(&self, node_id: &str, reason: &str) -> Result<Option<bool>, MasterError> {
        let slot = self.store.reserve().await?;
        let (mut node, written) = match self.nodes.entry(node_id.to_string()) {
            dashmap::Entry::Occupied(entry) => {
                let written = slot.send(vec![Write::ForgetNode(node_id.to_string())]);
                (entry.remove(), written)
            }
            dashmap::Entry::Vacant(_) => return Ok(None),
        };
        let session = node.session.take();
        let had_session = session.is_some();
        if let Some(slot) = session.and_then(|mut s| s.stream.take()) {
            let _ = slot.tx.try_send(Ok(close_message(reason)));
        }
        if let Err(e) = written.await {
            node.dirty = true;
            self.nodes.entry(node_id.to_string()).or_insert(node);
            return Err(e.into());
        }
        Ok(Some(had_session))
    }

    /// Asks every open command stream to close (master shutting down).
    pub fn close_all_streams(&self, reason: &str) {
        for mut node in self.nodes.iter_mut() {
            if let Some(s) = node.session.as_mut()
                && let Some(slot) = s.stream.take()
            {
                let _ = slot.tx.try_send(Ok(close_message(reason)));
            }
        }
    }
}

fn close_message(reason: &str) -> CommandResponse {
    CommandResponse {
        command_id: 0,
        body: Some(cdn_proto::v1::command_response::Body::Close(
            cdn_proto::v1::Close {
                reason: reason.to_string(),
            },
        )),
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EmbeddedStore, StoreWriter};
    use std::sync::Arc;

    fn liveness(ms: u64) -> Liveness {
        Liveness {
            interval: Duration::from_millis(ms),
            degraded_after: Duration::from_millis(2 * ms),
            offline_after: Duration::from_millis(3 * ms),
            stream_open_timeout: Duration::from_millis(3 * ms),
        }
    }

    /// A registry on a fresh or existing store in `dir`; drop the writer
    /// (closing it) before opening the same directory again.
    async fn registry(dir: &std::path::Path, ms: u64) -> (Arc<Registry>, StoreWriter) {
        let (store, writer) = Store::start(Arc::new(EmbeddedStore::open(dir).unwrap()));
        let nodes = store.load().await.unwrap().nodes;
        (Arc::new(Registry::load(store, nodes, liveness(ms))), writer)
    }

    async fn reopen(
        dir: &std::path::Path,
        ms: u64,
        old: (Arc<Registry>, StoreWriter),
    ) -> (Arc<Registry>, StoreWriter) {
        drop(old.0);
        old.1.close().await;
        registry(dir, ms).await
    }

    fn reg(node: &str, instance: &str) -> Registration {
        Registration {
            node_id: node.into(),
            instance_id: instance.into(),
            labels: BTreeMap::from([("role".into(), "edge".into())]),
            addresses: vec!["127.0.0.1".into()],
            hostname: "h".into(),
            agent_version: "0.1.0".into(),
            accept_encodings: Vec::new(),
        }
    }

    #[tokio::test]
    async fn second_live_agent_is_refused_and_same_agent_replaces_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _w) = registry(dir.path(), 10_000).await;
        let first = r.register(reg("n1", "A")).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        r.attach_stream("n1", first, tx).unwrap();

        let dup = r.register(reg("n1", "B")).await;
        assert!(matches!(dup, Err(MasterError::DuplicateNode { .. })));
        assert_eq!(r.get("n1").unwrap().session_id, first);

        let again = r.register(reg("n1", "A")).await.unwrap();
        assert!(again > first);
        assert!(matches!(
            r.heartbeat("n1", first, Some(Reported::Online), 0),
            Err(MasterError::UnknownSession { .. })
        ));
        r.heartbeat("n1", again, Some(Reported::Online), 0).unwrap();
    }

    #[tokio::test]
    async fn dead_stream_frees_the_node_id_for_another_agent() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _w) = registry(dir.path(), 10_000).await;
        let first = r.register(reg("n1", "A")).await.unwrap();
        let (tx, rx) = mpsc::channel(1);
        r.attach_stream("n1", first, tx).unwrap();
        drop(rx); // the agent's connection went away
        assert!(r.register(reg("n1", "B")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn silent_node_goes_offline_and_its_session_expires() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _w) = registry(dir.path(), 20).await;
        let s = r.register(reg("n1", "A")).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        r.attach_stream("n1", s, tx).unwrap();
        assert_eq!(r.get("n1").unwrap().state, NodeState::Online);
        tokio::time::advance(Duration::from_millis(45)).await;
        assert_eq!(r.get("n1").unwrap().state, NodeState::Degraded);
        tokio::time::advance(Duration::from_millis(30)).await;
        let v = r.get("n1").unwrap();
        assert_eq!(v.state, NodeState::Offline);
        assert!(matches!(v.offline, Some(Offline::NoHeartbeat { .. })));
        assert!(r.heartbeat("n1", s, Some(Reported::Online), 0).is_err());
        assert_eq!(r.get("n1").unwrap().state, NodeState::Offline);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_says_why_each_node_went_offline() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _w) = registry(dir.path(), 20).await;
        let silent = r.register(reg("silent", "A")).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        r.attach_stream("silent", silent, tx).unwrap();
        r.register(reg("no-stream", "B")).await.unwrap();
        let bye = r.register(reg("bye", "C")).await.unwrap();
        r.heartbeat("bye", bye, None, 0).unwrap();
        tokio::time::advance(Duration::from_millis(70)).await;
        let mut went = r.sweep().await.unwrap();
        went.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let why: Vec<(&str, OfflineReason)> = went
            .iter()
            .map(|w| (w.node_id.as_str(), w.why.wire()))
            .collect();
        assert_eq!(
            why,
            [
                ("no-stream", OfflineReason::NoHeartbeat),
                ("silent", OfflineReason::NoHeartbeat)
            ]
        );
        assert_eq!(r.get("bye").unwrap().offline, Some(Offline::AgentShutDown));
        assert_eq!(
            went[1].why.to_string(),
            "no heartbeat for 0.1s (offline after 3 missed intervals)"
        );
        assert!(!r.cut("silent", Offline::CertificateRevoked));
        assert_eq!(
            r.get("silent").unwrap().offline.map(|o| o.wire()),
            Some(OfflineReason::CertificateRevoked)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_storm_is_durable_for_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let (r, w) = registry(dir.path(), 10_000).await;
        let storm: Vec<_> = (0..300)
            .map(|i| {
                let r = Arc::clone(&r);
                tokio::spawn(async move { r.register(reg(&format!("n-{i:03}"), "a")).await })
            })
            .collect();
        let mut sessions = Vec::new();
        for t in storm {
            sessions.push(t.await.unwrap().unwrap());
        }
        sessions.sort_unstable();
        sessions.dedup();
        assert_eq!(
            sessions.len(),
            300,
            "every registration got its own session"
        );
        let (again, _w) = reopen(dir.path(), 10_000, (r, w)).await;
        assert_eq!(
            again.len(),
            300,
            "every acknowledged registration is on disk"
        );
    }

    #[tokio::test]
    async fn known_nodes_survive_a_reload_as_offline() {
        let dir = tempfile::tempdir().unwrap();
        let (r, w) = registry(dir.path(), 10_000).await;
        let s = r.register(reg("n1", "A")).await.unwrap();
        r.heartbeat("n1", s, Some(Reported::Online), 0).unwrap();
        r.sweep().await.unwrap();
        let (r, _w) = reopen(dir.path(), 10_000, (r, w)).await;
        let v = r.get("n1").unwrap();
        assert_eq!(v.state, NodeState::Offline);
        assert_eq!(v.offline, Some(Offline::MasterRestarted));
        assert_eq!(
            v.record.labels.get("role").map(String::as_str),
            Some("edge")
        );
        let next = r.register(reg("n1", "A")).await.unwrap();
        assert!(next > s, "session ids keep increasing across restarts");
    }

    #[tokio::test]
    async fn last_seen_alone_is_written_rarely_and_always_at_the_final_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (r, w) = registry(dir.path(), 10_000).await;
        let s = r.register(reg("n1", "A")).await.unwrap();
        let registered = r.get("n1").unwrap().record.last_seen_ms;
        tokio::time::sleep(Duration::from_millis(5)).await;
        r.heartbeat("n1", s, Some(Reported::Online), 0).unwrap();
        r.sweep().await.unwrap();
        let seen = r.get("n1").unwrap().record.last_seen_ms;
        assert!(seen > registered);
        let (r, w) = reopen(dir.path(), 10_000, (r, w)).await;
        assert_eq!(
            r.get("n1").unwrap().record.last_seen_ms,
            registered,
            "a sweep skips last_seen alone"
        );
        let s = r.register(reg("n1", "A")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        r.heartbeat("n1", s, Some(Reported::Online), 0).unwrap();
        let seen = r.get("n1").unwrap().record.last_seen_ms;
        r.final_flush().await.unwrap();
        let (r, _w) = reopen(dir.path(), 10_000, (r, w)).await;
        assert_eq!(
            r.get("n1").unwrap().record.last_seen_ms,
            seen,
            "the final flush writes it"
        );
    }

    #[tokio::test]
    async fn a_forgotten_node_is_told_why_and_gone_from_memory_and_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (r, w) = registry(dir.path(), 10_000).await;
        let s = r.register(reg("live", "A")).await.unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        r.attach_stream("live", s, tx).unwrap();
        r.register(reg("kept", "B")).await.unwrap();
        assert_eq!(
            r.forget("live", "deleted by alice").await.unwrap(),
            Some(true)
        );
        let close = rx.recv().await.unwrap().unwrap();
        assert!(
            matches!(close.body, Some(cdn_proto::v1::command_response::Body::Close(c)) if c.reason == "deleted by alice")
        );
        assert!(r.get("live").is_none());
        assert!(r.heartbeat("live", s, Some(Reported::Online), 0).is_err());
        assert_eq!(r.count_states(), [1, 0, 0]);
        assert_eq!(r.forget("live", "again").await.unwrap(), None);
        let (r, _w) = reopen(dir.path(), 10_000, (r, w)).await;
        assert!(r.get("live").is_none(), "the deletion is on disk");
        assert!(r.get("kept").is_some());
        // An offline node had no session to end.
        assert_eq!(r.forget("kept", "x").await.unwrap(), Some(false));
    }

    #[tokio::test]
    async fn degraded_report_is_shown_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _w) = registry(dir.path(), 10_000).await;
        let s = r.register(reg("n1", "A")).await.unwrap();
        r.heartbeat("n1", s, Some(Reported::Degraded("disk full".into())), 0)
            .unwrap();
        let v = r.get("n1").unwrap();
        assert_eq!(v.state, NodeState::Degraded);
        assert_eq!(v.reason, "disk full");
        assert_eq!(r.count_states(), [0, 1, 0]);
        r.register(reg("n2", "B")).await.unwrap();
        assert_eq!(r.count_states(), [1, 1, 0]);
    }

    #[tokio::test]
    async fn a_failing_health_check_degrades_the_node_until_it_passes() {
        use cdn_proto::v1::{HealthCheck, HealthState};
        let dir = tempfile::tempdir().unwrap();
        let (r, _w) = registry(dir.path(), 10_000).await;
        let s = r.register(reg("n1", "A")).await.unwrap();
        assert_eq!(r.health("n1"), None);
        let wire = |state: HealthState, detail: &str| HealthCheck {
            state: state.into(),
            detail: detail.into(),
            config_version: 3,
            checked_ms: 7,
        };
        // No check configured: nothing recorded, no change.
        let none = HealthReport::from_wire(Some(&wire(HealthState::Unspecified, "")));
        assert_eq!(r.record_health("n1", s, none).unwrap(), None);
        let ok = HealthReport::from_wire(Some(&wire(HealthState::Ok, "")));
        let change = r.record_health("n1", s, ok).unwrap().unwrap();
        assert_eq!((change.before, change.describe().as_str()), (None, "ok"));
        assert_eq!(r.get("n1").unwrap().state, NodeState::Online);
        let failing = HealthReport::from_wire(Some(&wire(HealthState::Failing, "exit 1: no")));
        let change = r.record_health("n1", s, failing).unwrap().unwrap();
        assert_eq!(change.describe(), "failing: exit 1: no");
        let v = r.get("n1").unwrap();
        assert_eq!(v.state, NodeState::Degraded);
        assert_eq!(v.reason, "health check failed: exit 1: no");
        let h = r.health("n1").unwrap();
        assert!(!h.ok);
        assert_eq!(h.version, cdn_proto::Version::new(3));
        assert_eq!(h.checked_ms, 7);
        // Another detail alone is no change.
        let again = HealthReport::from_wire(Some(&wire(HealthState::Failing, "exit 2: no")));
        assert_eq!(r.record_health("n1", s, again).unwrap(), None);
        // The agent's own heartbeat saying so changes nothing once it passes.
        r.heartbeat(
            "n1",
            s,
            Some(Reported::Degraded("health check failed: exit 2: no".into())),
            0,
        )
        .unwrap();
        let ok = HealthReport::from_wire(Some(&wire(HealthState::Ok, "")));
        assert!(r.record_health("n1", s, ok).unwrap().is_some());
        assert_eq!(r.get("n1").unwrap().state, NodeState::Online);
        // A health report of an ended session is refused.
        assert!(r.record_health("n1", s + 100, None).is_err());
        // A huge detail is cut.
        let long = "x".repeat(10 * MAX_HEALTH_DETAIL_BYTES);
        let cut = HealthReport::from_wire(Some(&wire(HealthState::Failing, &long))).unwrap();
        assert_eq!(cut.detail.len(), MAX_HEALTH_DETAIL_BYTES);
    }
}
