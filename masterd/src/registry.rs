//! Who is connected and in what state.
//!
//! One entry per known node in a sharded map; no lock is held across an
//! `.await`. A node has at most one live *session* (an epoch started by
//! `Register`); liveness is judged by the master's own clock on receipt of
//! heartbeats. Durable facts go to the [`NodeStore`]; per-heartbeat times are
//! flushed in batches by the liveness sweeper.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use cdn_proto::v1::{CommandResponse, LinkStats, SystemStatus};
use dashmap::DashMap;
use tokio::sync::{broadcast, mpsc};
use tonic::Status;

use crate::error::MasterError;
use crate::store::{NodeRecord, NodeStore, StoreError};

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

/// What an agent says of itself in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    Online,
    Degraded(String),
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
    /// Why the node last went offline (shown while offline).
    offline_reason: String,
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
    pub reason: String,
    pub session_id: u64,
    pub stream_open: bool,
    pub system: Option<SystemStatus>,
    pub link: Option<LinkStats>,
    pub clock_skew_ms: i64,
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
    pub config_version: String,
    /// Content encodings the agent decodes (empty: an older agent).
    pub accept_encodings: Vec<String>,
}

/// A transition the sweeper made, for logging.
#[derive(Debug)]
pub struct WentOffline {
    pub node_id: String,
    pub reason: String,
}

/// The node registry.
pub struct Registry {
    nodes: DashMap<String, Node>,
    liveness: Liveness,
    store: Arc<dyn NodeStore>,
    next_session: AtomicU64,
    next_stream: AtomicU64,
    /// Version nodes registering for the first time are given.
    fleet_desired: AtomicU64,
    /// Store writes take turns (see [`Registry::persist`]).
    store_turn: tokio::sync::Mutex<()>,
    /// Writes waiting for the next turn; whoever gets the turn writes them
    /// all in one transaction (group commit: a registration storm costs a
    /// few fsyncs, not one each).
    waiting: std::sync::Mutex<Vec<Waiting>>,
    acks: broadcast::Sender<AckEvent>,
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

/// Why a node is in its state.
enum Why<'a> {
    Text(&'a str),
    /// No heartbeat for this long: offline.
    Silent(Duration),
    /// Heartbeat late by this much: degraded.
    Late(Duration),
}

/// A write waiting for its turn.
struct Waiting {
    names: Vec<String>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// Depth of the config-acknowledgement broadcast; a waiter that lags
/// re-reads node state instead.
pub const ACK_CHANNEL_DEPTH: usize = 4096;

/// An agent's answer to a config version.
#[derive(Debug, Clone)]
pub struct AckEvent {
    pub node_id: String,
    pub version: u64,
    /// Hash of the content the agent wrote (on success).
    pub hash: String,
    pub success: bool,
    pub error: String,
}

impl Registry {
    /// Loads known nodes from `store`; all start offline.
    pub fn load(store: Arc<dyn NodeStore>, liveness: Liveness) -> Result<Self, MasterError> {
        let records = store.load_nodes()?;
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
                    offline_reason: "master restarted; waiting for the agent to reconnect".into(),
                    dirty: false,
                    flushed_seen_ms: seen,
                },
            );
        }
        let fleet_desired = store.fleet_desired()?;
        Ok(Self {
            nodes,
            liveness,
            store,
            next_session: AtomicU64::new(last_session + 1),
            next_stream: AtomicU64::new(1),
            fleet_desired: AtomicU64::new(fleet_desired),
            store_turn: tokio::sync::Mutex::new(()),
            waiting: std::sync::Mutex::new(Vec::new()),
            acks: broadcast::channel(ACK_CHANNEL_DEPTH).0,
        })
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
    /// Persists the node record before answering, so an acknowledged
    /// registration survives a crash.
    pub async fn register(self: &Arc<Self>, reg: Registration) -> Result<u64, MasterError> {
        let now = Instant::now();
        let now_ms = cdn_common::unix_millis_now();
        let session_id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let record = {
            let mut entry = self
                .nodes
                .entry(reg.node_id.clone())
                .or_insert_with(|| Node {
                    record: NodeRecord {
                        name: reg.node_id.clone(),
                        first_seen_ms: now_ms,
                        desired_version: self.fleet_desired.load(Ordering::Relaxed),
                        ..Default::default()
                    },
                    session: None,
                    system: None,
                    link: None,
                    offline_reason: String::new(),
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
            if let Ok(v) = reg.config_version.parse::<u64>() {
                node.record.applied_version = v;
            }
            node.record.config_version = reg.config_version;
            node.record.last_seen_ms = now_ms;
            node.record.connected_since_ms = now_ms;
            node.record.last_session_id = session_id;
            node.offline_reason.clear();
            // Written below, before the registration is answered.
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
            node.record.name.clone()
        };
        self.persist(vec![record]).await?;
        Ok(session_id)
    }

    /// Writes the named nodes' records as they are when the write starts,
    /// and returns once they are durable.
    ///
    /// Writers take turns, and records are copied only by the holder of the
    /// turn, so an older copy can never land after a newer one (a desired
    /// version set by a push is never overwritten by a stale copy). The
    /// holder writes every request queued so far in one transaction.
    async fn persist(&self, names: Vec<String>) -> Result<(), MasterError> {
        if names.is_empty() {
            return Ok(());
        }
        let (done, written) = tokio::sync::oneshot::channel();
        self.lock_waiting().push(Waiting { names, done });
        {
            let _turn = self.store_turn.lock().await;
            let batch = std::mem::take(&mut *self.lock_waiting());
            // Empty: an earlier turn took ours along.
            if !batch.is_empty() {
                let mut names: Vec<&String> = batch.iter().flat_map(|w| &w.names).collect();
                names.sort_unstable();
                names.dedup();
                let records: Vec<NodeRecord> = names
                    .iter()
                    .filter_map(|n| self.nodes.get(*n).map(|x| x.record.clone()))
                    .collect();
                let store = Arc::clone(&self.store);
                let result = tokio::task::spawn_blocking(move || store.put_nodes(&records))
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Io(format!("store task failed: {e}"))));
                for w in batch {
                    let _ = w.done.send(result.clone());
                }
            }
        }
        written
            .await
            .map_err(|_| MasterError::Internal("store write abandoned".into()))??;
        Ok(())
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the node's current session if `session_id` is current.
    fn with_session<T>(
        &self,
        node_id: &str,
        session_id: u64,
        f: impl FnOnce(&mut Node, Instant) -> T,
    ) -> Result<T, MasterError> {
        let mut node = self
            .nodes
            .get_mut(node_id)
            .ok_or_else(|| MasterError::UnknownSession {
                node_id: node_id.to_string(),
                session_id,
            })?;
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
                node.offline_reason = format!("no heartbeat for {}", fmt_secs(silent));
                node.dirty = true;
                tracing::warn!(node = %node_id, silent = %fmt_secs(silent), "node offline: session expired");
                Err(MasterError::UnknownSession {
                    node_id: node_id.to_string(),
                    session_id,
                })
            }
            Some(s) if s.id == session_id => Ok(f(&mut node, now)),
            _ => Err(MasterError::UnknownSession {
                node_id: node_id.to_string(),
                session_id,
            }),
        }
    }

    /// Records a heartbeat received now. `reported` is `None` when the agent
    /// says it is going offline (clean shutdown), which ends the session.
    /// Returns the node's desired config version (0 = none).
    pub fn heartbeat(
        &self,
        node_id: &str,
        session_id: u64,
        reported: Option<Reported>,
        agent_time_ms: i64,
        config_version: &str,
        disk_hash: &str,
    ) -> Result<u64, MasterError> {
        let now_ms = cdn_common::unix_millis_now();
        self.with_session(node_id, session_id, |node, now| {
            node.record.last_seen_ms = now_ms;
            let mut changed = reported.is_none();
            if !config_version.is_empty() && node.record.config_version != config_version {
                changed = true;
                node.record.config_version = config_version.to_string();
                if let Ok(v) = config_version.parse::<u64>() {
                    node.record.applied_version = v;
                }
            }
            if node.record.disk_hash != disk_hash {
                changed = true;
                node.record.disk_hash = disk_hash.to_string();
            }
            // 15,000 agents heartbeating would otherwise rewrite every
            // record at every sweep just for the time they were last seen.
            if changed || now_ms - node.flushed_seen_ms >= LAST_SEEN_FLUSH_MS {
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
                    node.offline_reason = "agent shut down".into();
                }
            }
            node.record.desired_version
        })
    }

    /// Fails unless `session_id` is the node's live session.
    pub fn check_session(&self, node_id: &str, session_id: u64) -> Result<(), MasterError> {
        self.with_session(node_id, session_id, |_, _| ())
    }

    /// Records an agent's answer to a config version and tells waiters.
    pub fn config_ack(&self, node_id: &str, session_id: u64, ack: AckEvent) {
        let updated = self.with_session(node_id, session_id, |node, _| {
            if ack.success {
                node.record.applied_version = ack.version;
                node.record.config_version = ack.version.to_string();
                node.record.config_error.clear();
                // The agent just wrote this content.
                node.record.disk_hash = ack.hash.clone();
            } else {
                node.record.config_error = format!("version {}: {}", ack.version, ack.error);
            }
            node.dirty = true;
        });
        if updated.is_ok() {
            let _ = self.acks.send(ack);
        }
    }

    /// Subscribes to config acknowledgements.
    pub fn subscribe_acks(&self) -> broadcast::Receiver<AckEvent> {
        self.acks.subscribe()
    }

    /// Names of the nodes a push is for: `names` (each must be known) plus
    /// nodes matching `selector`; every known node when both are empty.
    pub fn resolve_targets(
        &self,
        names: &[String],
        selector: &BTreeMap<String, String>,
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
                if selector
                    .iter()
                    .all(|(k, v)| node.record.labels.get(k) == Some(v))
                {
                    out.insert(node.record.name.clone());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The version nodes registering for the first time are given.
    pub fn fleet_desired(&self) -> u64 {
        self.fleet_desired.load(Ordering::Relaxed)
    }

    /// Applied versions of `names`, in order (0 for an unknown node).
    pub fn applied_versions(&self, names: &[String]) -> Vec<u64> {
        names
            .iter()
            .map(|n| self.nodes.get(n).map_or(0, |x| x.record.applied_version))
            .collect()
    }

    /// Desired versions of `names`, in order (0 for an unknown node).
    pub fn desired_versions(&self, names: &[String]) -> Vec<u64> {
        names
            .iter()
            .map(|n| self.nodes.get(n).map_or(0, |x| x.record.desired_version))
            .collect()
    }

    /// Makes `version` desired for `names` (and for the fleet when
    /// `fleet_wide`), persisting it together with `new_version` first.
    pub async fn set_desired(
        &self,
        names: &[String],
        version: u64,
        new_version: Option<(crate::store::ConfigVersion, Vec<u8>)>,
        fleet_wide: bool,
    ) -> Result<(), MasterError> {
        let _turn = self.store_turn.lock().await;
        let records: Vec<NodeRecord> = names
            .iter()
            .filter_map(|n| {
                self.nodes.get(n).map(|x| NodeRecord {
                    desired_version: version,
                    ..x.record.clone()
                })
            })
            .collect();
        let change = crate::store::ConfigChange {
            version: new_version,
            nodes: records,
            fleet_desired: fleet_wide.then_some(version),
        };
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.put_config(&change))
            .await
            .map_err(|e| MasterError::Internal(format!("store task failed: {e}")))??;
        for n in names {
            if let Some(mut x) = self.nodes.get_mut(n) {
                x.record.desired_version = version;
                if x.record.applied_version != version {
                    x.record.config_error.clear();
                }
            }
        }
        if fleet_wide {
            self.fleet_desired.store(version, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Stores the latest system figures of a node.
    pub fn report_status(
        &self,
        node_id: &str,
        session_id: u64,
        system: Option<SystemStatus>,
        link: Option<LinkStats>,
        config_version: &str,
        agent_version: &str,
    ) -> Result<(), MasterError> {
        self.with_session(node_id, session_id, |node, _| {
            if system.is_some() {
                node.system = system;
            }
            if link.is_some() {
                node.link = link;
            }
            if !config_version.is_empty() {
                node.record.config_version = config_version.to_string();
                if let Ok(v) = config_version.parse::<u64>() {
                    node.record.applied_version = v;
                }
            }
            if !agent_version.is_empty() {
                node.record.agent_version = agent_version.to_string();
            }
        })
    }

    /// Attaches a freshly opened command stream to the session; returns the
    /// stream's generation for [`Registry::detach_stream`] and the desired
    /// config version if the node is behind it.
    pub fn attach_stream(
        &self,
        node_id: &str,
        session_id: u64,
        tx: CommandTx,
    ) -> Result<(u64, Option<u64>), MasterError> {
        let generation = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.with_session(node_id, session_id, |node, _| {
            if let Some(s) = node.session.as_mut() {
                s.stream = Some(StreamSlot { generation, tx });
                s.stream_lost_at = None;
            }
            let r = &node.record;
            let behind = r.desired_version != 0 && r.desired_version != r.applied_version;
            (generation, behind.then_some(r.desired_version))
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

    /// The node's state now and, unless online, why; nothing allocated.
    fn judge<'a>(&self, node: &'a Node, now: Instant) -> (NodeState, Why<'a>) {
        match &node.session {
            None => (NodeState::Offline, Why::Text(&node.offline_reason)),
            Some(s) => {
                let silent = now.duration_since(s.last_heartbeat);
                if silent > self.liveness.offline_after {
                    (NodeState::Offline, Why::Silent(silent))
                } else if let Reported::Degraded(why) = &s.reported {
                    (NodeState::Degraded, Why::Text(why))
                } else if silent > self.liveness.degraded_after {
                    (NodeState::Degraded, Why::Late(silent))
                } else {
                    (NodeState::Online, Why::Text(""))
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
        let reason = match why {
            Why::Text(t) => t.to_string(),
            Why::Silent(d) => format!("no heartbeat for {}", fmt_secs(d)),
            Why::Late(d) => format!("heartbeat late by {}", fmt_secs(d)),
        };
        let session = node.session.as_ref();
        NodeView {
            record: node.record.clone(),
            state,
            reason,
            session_id: session.map_or(node.record.last_session_id, |s| s.id),
            stream_open: session
                .and_then(|s| s.stream.as_ref())
                .is_some_and(|slot| !slot.tx.is_closed()),
            system: node.system,
            link: node.link,
            clock_skew_ms: session.map_or(0, |s| s.clock_skew_ms),
        }
    }

    /// One node, if known.
    pub fn get(&self, node_id: &str) -> Option<NodeView> {
        let now = Instant::now();
        self.nodes.get(node_id).map(|n| self.view(&n, now))
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
    /// flushes changed records to the store in one transaction.
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
            let reason = match &node.session {
                Some(s) if now.duration_since(s.last_heartbeat) > self.liveness.offline_after => {
                    Some(format!(
                        "no heartbeat for {} (offline after {} missed intervals)",
                        fmt_secs(now.duration_since(s.last_heartbeat)),
                        self.liveness.offline_after.as_millis()
                            / self.liveness.interval.as_millis().max(1)
                    ))
                }
                // A stopping agent closes its stream just before its goodbye
                // heartbeat: give that a moment, so the node shows why it went.
                Some(s) if s.stream.is_none() => match s.stream_lost_at {
                    Some(lost) if now.duration_since(lost) > STREAM_LOSS_GRACE => {
                        Some("connection lost (command stream closed)".to_string())
                    }
                    None if now.duration_since(s.registered_at)
                        > self.liveness.stream_open_timeout =>
                    {
                        Some("command stream not opened in time after registering".to_string())
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(reason) = reason {
                node.session = None;
                node.offline_reason = reason.clone();
                node.dirty = true;
                offline.push(WentOffline {
                    node_id: node.record.name.clone(),
                    reason,
                });
            }
            if node.dirty || (all_seen && node.record.last_seen_ms != node.flushed_seen_ms) {
                node.dirty = false;
                node.flushed_seen_ms = node.record.last_seen_ms;
                dirty.push(node.record.name.clone());
            }
        }
        self.persist(dirty).await?;
        Ok(offline)
    }

    /// Ends the node's session at once (its certificate was revoked): the
    /// command stream is told why and closed, and the node shows offline
    /// with `reason`. True if it had a session.
    pub fn cut(&self, node_id: &str, reason: &str) -> bool {
        let Some(mut node) = self.nodes.get_mut(node_id) else {
            return false;
        };
        let Some(mut session) = node.session.take() else {
            node.offline_reason = reason.to_string();
            return false;
        };
        if let Some(slot) = session.stream.take() {
            let _ = slot.tx.try_send(Ok(close_message(reason)));
        }
        node.offline_reason = reason.to_string();
        node.dirty = true;
        true
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
    use crate::store::EmbeddedStore;

    fn liveness(ms: u64) -> Liveness {
        Liveness {
            interval: Duration::from_millis(ms),
            degraded_after: Duration::from_millis(2 * ms),
            offline_after: Duration::from_millis(3 * ms),
            stream_open_timeout: Duration::from_millis(3 * ms),
        }
    }

    fn registry(dir: &std::path::Path, ms: u64) -> Arc<Registry> {
        let store = Arc::new(EmbeddedStore::open(dir).unwrap());
        Arc::new(Registry::load(store, liveness(ms)).unwrap())
    }

    fn reg(node: &str, instance: &str) -> Registration {
        Registration {
            node_id: node.into(),
            instance_id: instance.into(),
            labels: BTreeMap::from([("role".into(), "edge".into())]),
            addresses: vec!["127.0.0.1".into()],
            hostname: "h".into(),
            agent_version: "0.1.0".into(),
            config_version: String::new(),
            accept_encodings: Vec::new(),
        }
    }

    #[tokio::test]
    async fn second_live_agent_is_refused_and_same_agent_replaces_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path(), 10_000);
        let first = r.register(reg("n1", "A")).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        r.attach_stream("n1", first, tx).unwrap();

        let dup = r.register(reg("n1", "B")).await;
        assert!(matches!(dup, Err(MasterError::DuplicateNode { .. })));
        assert_eq!(r.get("n1").unwrap().session_id, first);

        let again = r.register(reg("n1", "A")).await.unwrap();
        assert!(again > first);
        assert!(matches!(
            r.heartbeat("n1", first, Some(Reported::Online), 0, "", ""),
            Err(MasterError::UnknownSession { .. })
        ));
        r.heartbeat("n1", again, Some(Reported::Online), 0, "", "")
            .unwrap();
    }

    #[tokio::test]
    async fn dead_stream_frees_the_node_id_for_another_agent() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path(), 10_000);
        let first = r.register(reg("n1", "A")).await.unwrap();
        let (tx, rx) = mpsc::channel(1);
        r.attach_stream("n1", first, tx).unwrap();
        drop(rx); // the agent's connection went away
        assert!(r.register(reg("n1", "B")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn silent_node_goes_offline_and_its_session_expires() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path(), 20);
        let s = r.register(reg("n1", "A")).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        r.attach_stream("n1", s, tx).unwrap();
        assert_eq!(r.get("n1").unwrap().state, NodeState::Online);
        tokio::time::advance(Duration::from_millis(45)).await;
        assert_eq!(r.get("n1").unwrap().state, NodeState::Degraded);
        tokio::time::advance(Duration::from_millis(30)).await;
        assert_eq!(r.get("n1").unwrap().state, NodeState::Offline);
        assert!(
            r.heartbeat("n1", s, Some(Reported::Online), 0, "", "")
                .is_err()
        );
        assert_eq!(r.get("n1").unwrap().state, NodeState::Offline);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_storm_is_durable_for_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path(), 10_000);
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
        drop(r);
        let again = registry(dir.path(), 10_000);
        assert_eq!(
            again.len(),
            300,
            "every acknowledged registration is on disk"
        );
    }

    #[tokio::test]
    async fn known_nodes_survive_a_reload_as_offline() {
        let dir = tempfile::tempdir().unwrap();
        let s = {
            let r = registry(dir.path(), 10_000);
            let s = r.register(reg("n1", "A")).await.unwrap();
            r.heartbeat("n1", s, Some(Reported::Online), 0, "", "")
                .unwrap();
            r.sweep().await.unwrap();
            s
        };
        let r = registry(dir.path(), 10_000);
        let v = r.get("n1").unwrap();
        assert_eq!(v.state, NodeState::Offline);
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
        let stored_seen = |dir: &std::path::Path| {
            let r = registry(dir, 10_000);
            r.get("n1").unwrap().record.last_seen_ms
        };
        let (registered, seen) = {
            let r = registry(dir.path(), 10_000);
            let s = r.register(reg("n1", "A")).await.unwrap();
            let registered = r.get("n1").unwrap().record.last_seen_ms;
            tokio::time::sleep(Duration::from_millis(5)).await;
            r.heartbeat("n1", s, Some(Reported::Online), 0, "", "")
                .unwrap();
            r.sweep().await.unwrap();
            (registered, r.get("n1").unwrap().record.last_seen_ms)
        };
        assert!(seen > registered);
        assert_eq!(
            stored_seen(dir.path()),
            registered,
            "a sweep skips last_seen alone"
        );
        {
            let r = registry(dir.path(), 10_000);
            let s = r.register(reg("n1", "A")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            r.heartbeat("n1", s, Some(Reported::Online), 0, "7", "")
                .unwrap();
            let seen = r.get("n1").unwrap().record.last_seen_ms;
            r.final_flush().await.unwrap();
            drop(r);
            assert_eq!(stored_seen(dir.path()), seen, "the final flush writes it");
        }
    }

    #[tokio::test]
    async fn degraded_report_is_shown_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path(), 10_000);
        let s = r.register(reg("n1", "A")).await.unwrap();
        r.heartbeat(
            "n1",
            s,
            Some(Reported::Degraded("disk full".into())),
            0,
            "",
            "",
        )
        .unwrap();
        let v = r.get("n1").unwrap();
        assert_eq!(v.state, NodeState::Degraded);
        assert_eq!(v.reason, "disk full");
        assert_eq!(r.count_states(), [0, 1, 0]);
        r.register(reg("n2", "B")).await.unwrap();
        assert_eq!(r.count_states(), [1, 1, 0]);
    }
}
