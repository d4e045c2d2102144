//! Config rollouts: the one owner of config versions and of every node's
//! desired, applied and failed config, and the path of a push from top to
//! bottom.
//!
//! A push is validated, hashed and compressed off the async workers
//! ([`prepare`]); then the [`RolloutOwner`] task — the only writer of this
//! state — numbers the version, decides the targets and stores the version
//! with their new desired version in one transaction; then the push sends
//! it to every online target at once over the agents' open command streams
//! ([`Configs::fan_out`]) and reports each [`Answer`] as it arrives.
//! Agents' answers ([`ApplyOutcome`]) and the versions they report in
//! heartbeats reach the owner as typed commands, never as strings. Offline
//! targets get their desired version when they come back: on stream attach
//! ([`Configs::catch_up`]) and through the heartbeat reply.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cdn_proto::Version;
use cdn_proto::v1::{
    ApplyConfig, ApplyResult, CommandResponse, ConfigPushEvent, ConfigVersionInfo, NodeApplyResult,
    NodeConfigStatus, PushDone, PushStored, command_response, config_push_event,
};
use dashmap::DashMap;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, info, warn};

use crate::config::CompressionConfig;
use crate::error::MasterError;
use crate::metrics::Metrics;
use crate::offers::Offers;
use crate::registry::Registry;
use crate::store::{FailedApply, Loaded, NodeConfigRecord, Store, VersionRecord, Write};
use crate::wire::{Encoder, Prepared, WirePayload};

/// Time a just-registered node has to open its command stream before a
/// push counts it as pending.
const STREAM_WAIT: Duration = Duration::from_secs(3);
/// Time a fan-out may wait for room in one agent's command queue.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a push re-reads node state for answers it may have missed.
const STATE_RECHECK: Duration = Duration::from_millis(250);
/// How long a push nobody waits for still collects answers (for metrics).
const UNWATCHED_WAIT: Duration = Duration::from_secs(60);
/// Commands that may wait for the owner.
const COMMAND_QUEUE_DEPTH: usize = 1024;
/// Depth of the answer broadcast; a push that lags re-reads node state.
const ANSWER_CHANNEL_DEPTH: usize = 4096;
/// How often the owner writes answered and reported config state.
const FLUSH_PERIOD: Duration = Duration::from_secs(1);

/// Events streamed back to cdnctl.
pub type EventTx = mpsc::Sender<Result<ConfigPushEvent, Status>>;

/// What an agent answered for a config version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Written and reloaded; `hash` is the content's sha256 on its disk.
    Applied { hash: String },
    /// Refused or failed; the previous file is in place.
    Failed(String),
}

/// One node's answer to one version.
#[derive(Debug, Clone)]
pub struct Answer {
    pub node: String,
    pub version: Version,
    pub outcome: ApplyOutcome,
}

/// Which nodes one push or rollback is for, and how long to wait.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// Named and selected nodes (every known node when fleet-wide).
    pub targets: Vec<String>,
    /// For the whole fleet: nodes that register later get it too, and the
    /// targets are read again when the version is stored.
    pub fleet_wide: bool,
    /// None: nobody waits for the answers (`--no-wait`).
    pub wait: Option<Duration>,
    /// A staged rollout's push: the version is stored but made desired by
    /// no node (the rollout's waves do that, node by node), and the
    /// fleet's desired version does not move.
    pub staged: bool,
}

/// A version stored for a staged rollout.
#[derive(Debug, Clone)]
pub struct Staged {
    pub version: Version,
    /// The rollout's targets (every known node when fleet-wide).
    pub targets: Vec<String>,
    /// The first event of the push.
    pub stored: PushStored,
}

/// What a push asks to store: the prepared content and what goes with it.
pub struct NewVersion {
    pub prepared: Prepared,
    pub author: String,
    pub message: String,
    /// The client's key for this push, stored with the version (empty:
    /// none). See [`VersionRecord::idempotency_key`].
    pub idempotency_key: String,
    pub dry_run: bool,
}

/// Test-only: when this environment variable is set, masterd kills itself
/// with SIGKILL right after a pushed version is durable in the store,
/// before anything is answered or sent. The integration tests use it to
/// cut the connection at the one moment where a client cannot know the
/// outcome (`tests/tests/config_push.rs`). Never set it in production.
pub const TEST_KILL_AFTER_VERSION_STORED: &str = "MASTERD_TEST_KILL_AFTER_VERSION_STORED";

/// What the owner decided for a push.
enum Decision {
    /// Every target already desires `version`, which has this content.
    Unchanged {
        version: Version,
        targets: Vec<String>,
        all_applied: bool,
    },
    /// Stored earlier by a push with the same idempotency key: nothing new
    /// is stored, the push reports on that version.
    Replayed {
        version: Version,
        targets: Vec<String>,
    },
    /// Validated only; `version` is the number it would get.
    DryRun {
        version: Version,
        targets: Vec<String>,
    },
    /// Stored and desired by `targets`.
    Stored {
        payload: WirePayload,
        targets: Vec<String>,
    },
}

/// What the owner is asked to do.
enum Command {
    Push {
        new: NewVersion,
        plan: PushPlan,
        reply: oneshot::Sender<Result<Decision, MasterError>>,
    },
    Rollback {
        version: Version,
        plan: PushPlan,
        reply: oneshot::Sender<Result<Vec<String>, MasterError>>,
    },
    /// A node registered, reporting the version it runs.
    Joined {
        node: String,
        applied: Option<Version>,
        reply: oneshot::Sender<()>,
    },
    /// A node reported the version it runs or the hash of its file.
    Observed {
        node: String,
        applied: Option<Version>,
        disk_hash: Option<String>,
    },
    Answered(Answer),
    /// The version nodes registering for the first time are given.
    FleetDesired {
        version: Option<Version>,
        reply: oneshot::Sender<Result<(), MasterError>>,
    },
    /// A node was deleted: its config state goes, from memory and store.
    Forget {
        node: String,
        reply: oneshot::Sender<Result<(), MasterError>>,
    },
}

/// State the owner writes and everyone reads.
struct State {
    registry: Arc<Registry>,
    store: Store,
    metrics: Arc<Metrics>,
    wire: Encoder,
    versions: RwLock<BTreeMap<Version, VersionRecord>>,
    nodes: DashMap<String, NodeConfigRecord>,
    fleet_desired: RwLock<Option<Version>>,
    answers: broadcast::Sender<Answer>,
    /// What was sent to whom and when it may be offered again.
    offers: Offers,
    /// Cancelled when the master shuts down: waiting pushes report at once.
    stopping: CancellationToken,
}

/// The handle to config state: reads are direct, changes go to the owner.
#[derive(Clone)]
pub struct Configs {
    state: Arc<State>,
    commands: mpsc::Sender<Command>,
}

/// The task that owns config state; run it with [`RolloutOwner::run`].
pub struct RolloutOwner {
    state: Arc<State>,
    commands: mpsc::Receiver<Command>,
    /// Nodes whose config state changed since the last flush.
    dirty: BTreeSet<String>,
}

impl Configs {
    /// Config state as `loaded` from the store, and the task that owns it.
    pub fn load(
        loaded: &mut Loaded,
        registry: Arc<Registry>,
        store: Store,
        metrics: Arc<Metrics>,
        compression: CompressionConfig,
    ) -> (Self, RolloutOwner) {
        let versions = std::mem::take(&mut loaded.versions)
            .into_iter()
            .map(|v| (v.version, v))
            .collect();
        let nodes = std::mem::take(&mut loaded.node_configs)
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        let state = Arc::new(State {
            registry,
            store,
            metrics,
            wire: Encoder::new(compression),
            versions: RwLock::new(versions),
            nodes,
            fleet_desired: RwLock::new(loaded.fleet_desired),
            answers: broadcast::channel(ANSWER_CHANNEL_DEPTH).0,
            offers: Offers::default(),
            stopping: CancellationToken::new(),
        });
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE_DEPTH);
        let owner = RolloutOwner {
            state: Arc::clone(&state),
            commands: rx,
            dirty: BTreeSet::new(),
        };
        (
            Self {
                state,
                commands: tx,
            },
            owner,
        )
    }

    /// Sends `command` to the owner and waits for its reply.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MasterError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || MasterError::Unavailable("config rollouts stopped (master shutting down)".into());
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }

    /// Tells the owner, without waiting for it to act.
    async fn tell(&self, command: Command) {
        if self.commands.send(command).await.is_err() {
            debug!("config rollouts stopped; report dropped");
        }
    }

    fn version(&self, v: Version) -> Option<VersionRecord> {
        self.state.versions.read().ok()?.get(&v).cloned()
    }

    /// Whether version `v` is stored.
    pub fn exists(&self, v: Version) -> bool {
        self.state
            .versions
            .read()
            .is_ok_and(|versions| versions.contains_key(&v))
    }

    /// The version `node` should run.
    pub fn desired(&self, node: &str) -> Option<Version> {
        self.state.nodes.get(node).and_then(|n| n.desired)
    }

    /// The version `node` last applied.
    pub fn applied(&self, node: &str) -> Option<Version> {
        self.state.nodes.get(node).and_then(|n| n.applied)
    }

    /// The version a push with idempotency `key` stored, if any.
    pub fn version_of_key(&self, key: &str) -> Option<Version> {
        if key.is_empty() {
            return None;
        }
        let versions = self.state.versions.read().ok()?;
        versions
            .values()
            .rev()
            .find(|m| m.idempotency_key == key)
            .map(|m| m.version)
    }

    /// Why `node` could not apply version `v`, if that was its last
    /// failure.
    pub fn failure(&self, node: &str, v: Version) -> Option<String> {
        self.state
            .nodes
            .get(node)
            .and_then(|n| n.last_error.clone())
            .filter(|e| e.version == v)
            .map(|e| e.reason)
    }

    /// Metadata of the newest `limit` versions, newest first (0 = all).
    pub fn history(&self, limit: usize) -> Vec<ConfigVersionInfo> {
        let Ok(versions) = self.state.versions.read() else {
            return Vec::new();
        };
        let take = if limit == 0 { usize::MAX } else { limit };
        versions.values().rev().take(take).map(info).collect()
    }

    /// Metadata and content of version `v`.
    pub async fn content(&self, v: Version) -> Result<(ConfigVersionInfo, Bytes), MasterError> {
        let meta = self
            .version(v)
            .ok_or(MasterError::VersionNotFound(v.get()))?;
        let content = self
            .state
            .store
            .version_content(v)
            .await?
            .ok_or(MasterError::VersionNotFound(v.get()))?;
        Ok((info(&meta), content))
    }

    /// Desired and applied version, sync and drift of each of `names`.
    pub fn status(&self, names: &[String]) -> Vec<NodeConfigStatus> {
        names
            .iter()
            .filter_map(|name| {
                let node_state = self.state.registry.state(name)?;
                let n = self
                    .state
                    .nodes
                    .get(name)
                    .map(|n| n.clone())
                    .unwrap_or_default();
                let applied_hash = n.applied.and_then(|v| self.version(v)).map(|v| v.hash);
                let drift = !n.disk_hash.is_empty()
                    && applied_hash.as_deref().is_some_and(|h| h != n.disk_hash);
                Some(NodeConfigStatus {
                    node: name.clone(),
                    node_status: node_state.wire().into(),
                    desired_version: Version::to_u64(n.desired),
                    applied_version: Version::to_u64(n.applied),
                    in_sync: n.desired == n.applied && !drift,
                    drift,
                    last_error: n
                        .last_error
                        .map(|e| format!("version {}: {}", e.version, e.reason))
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// New compression settings from a reloaded config (SIGHUP).
    pub fn set_compression(&self, c: CompressionConfig) {
        self.state.wire.set(c);
    }

    /// The master is shutting down: pushes still waiting for answers report
    /// their pending nodes now (their desired version is already stored).
    pub fn stop(&self) {
        self.state.stopping.cancel();
    }

    /// A node registered running `applied`: a node never seen before is
    /// given the fleet's desired version. Returns once the owner noted it.
    pub async fn joined(&self, node: &str, applied: Option<Version>) {
        // A node seen before only reports its version: no round trip to the
        // owner unless that changed (a restart storm stays off its queue).
        if self.state.nodes.contains_key(node) {
            return self.observed(node, applied, None).await;
        }
        let _ = self
            .ask(|reply| Command::Joined {
                node: node.to_string(),
                applied,
                reply,
            })
            .await;
    }

    /// A node reported the version it runs (if any) and the hash of its
    /// config file (if given).
    pub async fn observed(&self, node: &str, applied: Option<Version>, disk_hash: Option<&str>) {
        let changed = self.state.nodes.get(node).is_none_or(|n| {
            applied.is_some_and(|a| n.applied != Some(a))
                || disk_hash.is_some_and(|h| n.disk_hash != h)
        });
        if changed {
            self.tell(Command::Observed {
                node: node.to_string(),
                applied,
                disk_hash: disk_hash.map(str::to_string),
            })
            .await;
        }
    }

    /// A node was deleted: forgets its desired, applied and failed config,
    /// in memory and in the store.
    pub async fn forget(&self, node: &str) -> Result<(), MasterError> {
        self.state.offers.forget(node);
        self.ask(|reply| Command::Forget {
            node: node.to_string(),
            reply,
        })
        .await?
    }

    /// A node answered a version on its command stream.
    pub async fn answered(&self, answer: Answer) {
        match &answer.outcome {
            ApplyOutcome::Applied { .. } => self.state.offers.forget(&answer.node),
            ApplyOutcome::Failed(_) => {
                let wait = self
                    .state
                    .offers
                    .failed(&answer.node, answer.version, Instant::now());
                debug!(node = %answer.node, version = %answer.version, retry_in_s = wait.as_secs(), "failed version offered again later");
            }
        }
        self.tell(Command::Answered(answer)).await;
    }

    /// A node registered afresh: whatever failed on it before may be
    /// offered again at once.
    pub fn new_session(&self, node: &str) {
        self.state.offers.forget(node);
    }

    /// What a heartbeat reply says of `node`'s config: its desired version,
    /// and whether the agent should fetch it now (behind, not already on
    /// its way, not failed within its backoff). A true answer is noted as
    /// an offer.
    pub fn heartbeat_offer(&self, node: &str, applied: Option<Version>) -> (Option<Version>, bool) {
        let desired = self.desired(node);
        let due = match desired {
            Some(d) if applied != Some(d) => self.state.offers.claim(node, d, Instant::now()),
            _ => false,
        };
        (desired, due)
    }

    /// The agent fetched `version` (a chunk from `offset`).
    pub fn fetched(&self, node: &str, version: Version) {
        self.state.offers.fetched(node, version, Instant::now());
    }

    /// The wire form of version `v` for a node that decodes `accepts`.
    pub async fn payload_for(
        &self,
        v: Version,
        accepts: &[String],
    ) -> Result<WirePayload, MasterError> {
        self.payload_in(v, self.state.wire.algorithm_for(accepts))
            .await
    }

    /// The wire form of version `v` in the configured encoding.
    async fn payload(&self, v: Version) -> Result<WirePayload, MasterError> {
        self.payload_in(v, self.state.wire.settings().algorithm)
            .await
    }

    /// The wire form of version `v` in `algorithm`, from the cache or the
    /// store.
    async fn payload_in(
        &self,
        v: Version,
        algorithm: crate::config::Algorithm,
    ) -> Result<WirePayload, MasterError> {
        if let Some(p) = self.state.wire.cached(v, algorithm) {
            return Ok(p);
        }
        let (meta, content) = (
            self.version(v)
                .ok_or(MasterError::VersionNotFound(v.get()))?,
            self.content(v).await?.1,
        );
        self.state.wire.encode(&meta, content, algorithm).await
    }

    /// Counts a payload an agent fetched itself.
    pub fn count_fetch(&self, payload: &WirePayload) {
        self.state
            .metrics
            .config_sent(payload.size, payload.bytes.len() as u64);
    }

    /// The desired version of `node` if it does not run it.
    pub fn behind(&self, node: &str) -> Option<Version> {
        self.state
            .nodes
            .get(node)
            .and_then(|n| n.desired.filter(|d| n.applied != Some(*d)))
    }

    /// The version to send `node` now that its command stream opened: its
    /// desired one if it is behind and that is not already on its way or
    /// failed within its backoff. Noted as sent; pass it to
    /// [`Configs::catch_up`].
    pub fn catch_up_due(&self, node: &str) -> Option<Version> {
        self.behind(node)
            .filter(|v| self.state.offers.claim(node, *v, Instant::now()))
    }

    /// Sends `node` version `v` (from [`Configs::catch_up_due`]).
    pub async fn catch_up(&self, node: &str, v: Version) {
        let accepts = self.state.registry.accept_encodings(node);
        match self.payload_for(v, &accepts).await {
            Ok(p) => {
                if self.send_to(node, &p).await {
                    debug!(node, version = %v, "sent desired config on reconnect");
                }
            }
            Err(e) => {
                self.state.offers.unsent(node, v);
                warn!(node, version = %v, error = %e, "cannot load desired config")
            }
        }
    }

    /// Sends `payload` to `node` over its command stream, if it is open, in
    /// an encoding the node decodes, in chunks of at most
    /// `CONFIG_CHUNK_BYTES`. False when it could not be queued (the version
    /// is then offered in the next heartbeat reply).
    async fn send_to(&self, node: &str, payload: &WirePayload) -> bool {
        let sent = self.send_chunks(node, payload).await;
        if !sent {
            self.state.offers.unsent(node, payload.version);
        }
        sent
    }

    async fn send_chunks(&self, node: &str, payload: &WirePayload) -> bool {
        // A node that registered a moment ago may not have opened its
        // stream yet: it is online, so it is given that moment.
        let Some(tx) = self.state.registry.command_tx_soon(node, STREAM_WAIT).await else {
            return false;
        };
        let accepts = self.state.registry.accept_encodings(node);
        let fallback;
        let payload =
            if self.state.wire.algorithm_for(&accepts) == self.state.wire.settings().algorithm {
                payload
            } else {
                match self.payload_for(payload.version, &accepts).await {
                    Ok(p) => {
                        fallback = p;
                        &fallback
                    }
                    Err(e) => {
                        warn!(node, error = %e, "cannot encode config for this node");
                        return false;
                    }
                }
            };
        let deadline = tokio::time::Instant::now() + ENQUEUE_TIMEOUT;
        for (offset, content) in payload.chunks() {
            let msg = CommandResponse {
                command_id: payload.version.get(),
                body: Some(command_response::Body::ApplyConfig(ApplyConfig {
                    version: payload.version.to_string(),
                    hash: payload.hash.clone(),
                    content,
                    encoding: payload.encoding.to_string(),
                    size: payload.size,
                    offset,
                    wire_size: payload.bytes.len() as u64,
                })),
            };
            match tokio::time::timeout_at(deadline, tx.send(Ok(msg))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return false,
                Err(_) => {
                    warn!(
                        node,
                        "command queue full; config not sent, the heartbeat will retry"
                    );
                    return false;
                }
            }
        }
        self.state
            .metrics
            .config_sent(payload.size, payload.bytes.len() as u64);
        true
    }

    /// The compression settings in force (what [`prepare`] encodes with).
    pub fn compression(&self) -> CompressionConfig {
        self.state.wire.settings()
    }

    /// Stores `prepared` content as a new version desired by the plan's
    /// targets, fans it out, and streams progress on `events`.
    pub async fn push(
        &self,
        new: NewVersion,
        plan: PushPlan,
        events: EventTx,
    ) -> Result<(), MasterError> {
        let started = Instant::now();
        let hash = new.prepared.hash.clone();
        let size = new.prepared.content.len();
        let wire_bytes = new.prepared.wire.1.len() as u64;
        let dry_run = new.dry_run;
        let wait = plan.wait;
        let decision = self
            .ask(|reply| Command::Push { new, plan, reply })
            .await??;
        match decision {
            Decision::Unchanged {
                version,
                targets,
                all_applied,
            } => {
                if all_applied || dry_run {
                    send(
                        &events,
                        stored(version, &hash, size, &targets, true, dry_run, 0),
                    )
                    .await;
                    send(&events, done(0, 0, 0)).await;
                    return Ok(());
                }
                // Some targets are not there yet: send it again and report.
                let payload = self.payload(version).await?;
                self.fan_out(payload, targets, wait, started, false, events)
                    .await;
            }
            Decision::Replayed { version, targets } => {
                info!(%version, "push sent again with the key of a stored version; nothing new stored");
                let payload = self.payload(version).await?;
                self.fan_out(payload, targets, wait, started, true, events)
                    .await;
            }
            Decision::DryRun { version, targets } => {
                send(
                    &events,
                    stored(version, &hash, size, &targets, false, true, wire_bytes),
                )
                .await;
                send(&events, done(0, 0, targets.len() as u32)).await;
            }
            Decision::Stored { payload, targets } => {
                info!(
                    version = %payload.version,
                    targets = targets.len(),
                    size = payload.size,
                    wire_bytes = payload.bytes.len(),
                    "config version stored"
                );
                self.fan_out(payload, targets, wait, started, false, events)
                    .await;
            }
        }
        Ok(())
    }

    /// Stores `new` for a staged rollout: desired by no node yet (see
    /// [`PushPlan::staged`]). What was stored, or the version a push sent
    /// again with the same idempotency key stored earlier.
    pub async fn store_staged(
        &self,
        new: NewVersion,
        mut plan: PushPlan,
    ) -> Result<Staged, MasterError> {
        plan.staged = true;
        let (hash, size) = (new.prepared.hash.clone(), new.prepared.content.len());
        let wire_bytes = new.prepared.wire.1.len() as u64;
        let decision = self
            .ask(|reply| Command::Push { new, plan, reply })
            .await??;
        let (version, targets, replayed, dry_run) = match decision {
            Decision::Stored { payload, targets } => (payload.version, targets, false, false),
            Decision::Replayed { version, targets } => (version, targets, true, false),
            Decision::DryRun { version, targets } => (version, targets, false, true),
            Decision::Unchanged {
                version, targets, ..
            } => (version, targets, false, false),
        };
        let mut stored = PushStored {
            version: version.get(),
            hash,
            size: size as u64,
            targets: targets.clone(),
            unchanged: false,
            dry_run,
            wire_bytes,
            replayed,
        };
        if replayed && let Some(v) = self.version(version) {
            stored.hash = v.hash;
            stored.size = v.size;
        }
        if !dry_run {
            info!(%version, targets = targets.len(), replayed, "config version stored for a staged rollout");
        }
        Ok(Staged {
            version,
            targets,
            stored,
        })
    }

    /// The event that reports stored version `v` to `targets` (a staged
    /// rollback's first event).
    pub fn stored_event(&self, v: Version, targets: &[String]) -> PushStored {
        let meta = self.version(v);
        PushStored {
            version: v.get(),
            hash: meta.as_ref().map(|m| m.hash.clone()).unwrap_or_default(),
            size: meta.as_ref().map_or(0, |m| m.size),
            targets: targets.to_vec(),
            ..Default::default()
        }
    }

    /// Makes `v` the version nodes registering for the first time get
    /// (None: none).
    pub async fn set_fleet_desired(&self, v: Option<Version>) -> Result<(), MasterError> {
        self.ask(|reply| Command::FleetDesired { version: v, reply })
            .await?
    }

    /// The version nodes registering for the first time get.
    pub fn fleet_desired(&self) -> Option<Version> {
        self.state.fleet_desired.read().ok().and_then(|f| *f)
    }

    /// Makes stored version `v` desired again for the plan's targets, sends
    /// it and reports as a push does.
    pub async fn rollback(
        &self,
        v: Version,
        plan: PushPlan,
        events: EventTx,
    ) -> Result<(), MasterError> {
        let started = Instant::now();
        let payload = self.payload(v).await?;
        let wait = plan.wait;
        let targets = self
            .ask(|reply| Command::Rollback {
                version: v,
                plan,
                reply,
            })
            .await??;
        info!(version = %v, targets = targets.len(), "config rolled back");
        self.fan_out(payload, targets, wait, started, false, events)
            .await;
        Ok(())
    }

    /// Outcomes of `version` that node state already shows for `waiting`.
    fn settled(&self, waiting: &HashSet<String>, version: Version) -> Vec<Answer> {
        waiting
            .iter()
            .filter_map(|n| {
                let state = self.state.nodes.get(n)?;
                let outcome = if state.applied == Some(version) {
                    ApplyOutcome::Applied {
                        hash: state.disk_hash.clone(),
                    }
                } else {
                    match &state.last_error {
                        Some(e) if e.version == version => ApplyOutcome::Failed(e.reason.clone()),
                        _ => return None,
                    }
                };
                Some(Answer {
                    node: n.clone(),
                    version,
                    outcome,
                })
            })
            .collect()
    }

    /// Reports the stored version, sends `payload` to every online target
    /// and reports answers until all answered or the wait ends. A
    /// `replayed` push (sent again with the key of this version) reports
    /// the targets that already answered it at once, sends it only to the
    /// others and awaits offline ones too, within the wait.
    async fn fan_out(
        &self,
        payload: WirePayload,
        targets: Vec<String>,
        wait: Option<Duration>,
        started: Instant,
        replayed: bool,
        events: EventTx,
    ) {
        let mut answers = self.state.answers.subscribe();
        let version = payload.version;
        let mut event = stored(
            version,
            &payload.hash,
            payload.size as usize,
            &targets,
            false,
            false,
            payload.bytes.len() as u64,
        );
        if let config_push_event::Event::Stored(s) = &mut event {
            s.replayed = replayed;
        }
        send(&events, event).await;
        let mut waiting = HashSet::new();
        let mut pending = 0u32;
        let mut early = Vec::new();
        let targets: Vec<String> = if replayed {
            let all: HashSet<String> = targets.iter().cloned().collect();
            early = self.settled(&all, version);
            let done: HashSet<&str> = early.iter().map(|a| a.node.as_str()).collect();
            targets
                .iter()
                .filter(|n| !done.contains(n.as_str()))
                .cloned()
                .collect()
        } else {
            targets
        };
        for a in &early {
            waiting.insert(a.node.clone());
        }
        let now = Instant::now();
        let sends = targets.iter().map(|node| {
            let payload = &payload;
            self.state.offers.pushed(node, version, now);
            async move { (node, self.send_to(node, payload).await) }
        });
        for (node, sent) in futures::future::join_all(sends).await {
            // A replayed push follows a broken connection, often a master
            // restart with agents still reconnecting: those are awaited
            // (they get the version when their stream attaches).
            if sent || replayed {
                waiting.insert(node.clone());
            } else {
                pending += 1;
                send(
                    &events,
                    node_result(
                        node,
                        ApplyResult::Pending,
                        version,
                        "node is offline; it gets this version when it reconnects",
                        started,
                    ),
                )
                .await;
            }
        }
        // Nobody may be listening (--no-wait): answers are still collected
        // for the node state and the latency metrics.
        let wait = wait.unwrap_or(UNWATCHED_WAIT);
        let (mut applied, mut failed) = (0u32, 0u32);
        let deadline = tokio::time::Instant::now() + wait;
        let mut recheck = tokio::time::interval(STATE_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut why_late = format!("no answer within {}", cdn_common::duration::short(wait));
        let mut early = Some(early);
        while !waiting.is_empty() {
            // Answers come from the owner; node state is re-read too, in
            // case this push lagged behind the broadcast.
            let got: Vec<Answer> = if let Some(e) = early.take() {
                e
            } else {
                tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = self.state.stopping.cancelled() => {
                    why_late = "master shutting down; the node gets this version when it reconnects".into();
                    break;
                }
                _ = recheck.tick() => self.settled(&waiting, version),
                a = answers.recv() => match a {
                    Ok(a) if a.version == version && waiting.contains(&a.node) => vec![a],
                    Ok(_) => Vec::new(),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.settled(&waiting, version),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                }
            };
            for a in got {
                if !waiting.remove(&a.node) {
                    continue;
                }
                let (result, error) = match &a.outcome {
                    ApplyOutcome::Applied { .. } => {
                        applied += 1;
                        (ApplyResult::Applied, "")
                    }
                    ApplyOutcome::Failed(why) => {
                        failed += 1;
                        (ApplyResult::Failed, why.as_str())
                    }
                };
                self.state.metrics.node_answer(
                    started.elapsed().as_secs_f64(),
                    result == ApplyResult::Applied,
                );
                send(
                    &events,
                    node_result(&a.node, result, version, error, started),
                )
                .await;
            }
        }
        self.state
            .metrics
            .push_done(started.elapsed().as_secs_f64(), waiting.len() as u64);
        let mut late: Vec<&String> = waiting.iter().collect();
        late.sort();
        for n in late {
            pending += 1;
            send(
                &events,
                node_result(n, ApplyResult::Pending, version, &why_late, started),
            )
            .await;
        }
        send(&events, done(applied, failed, pending)).await;
    }
}

impl RolloutOwner {
    /// Serves commands until `closing` is cancelled, then answers what is
    /// still queued and writes every changed node's config state.
    pub async fn run(mut self, closing: CancellationToken) {
        let mut flush = tokio::time::interval(FLUSH_PERIOD);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                c = self.commands.recv() => match c {
                    Some(c) => self.handle(c).await,
                    None => break,
                },
                _ = flush.tick() => self.flush().await,
                _ = closing.cancelled() => {
                    self.commands.close();
                    while let Some(c) = self.commands.recv().await {
                        self.handle(c).await;
                    }
                    break;
                }
            }
        }
        self.flush().await;
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Push { new, plan, reply } => {
                let _ = reply.send(self.decide_push(new, plan).await);
            }
            Command::Rollback {
                version,
                plan,
                reply,
            } => {
                let _ = reply.send(self.make_desired(version, plan, None).await);
            }
            Command::Joined {
                node,
                applied,
                reply,
            } => {
                if !self.state.nodes.contains_key(&node) {
                    let desired = self.fleet_desired();
                    self.state.nodes.insert(
                        node.clone(),
                        NodeConfigRecord {
                            name: node.clone(),
                            desired,
                            ..Default::default()
                        },
                    );
                    self.dirty.insert(node.clone());
                }
                self.observe(&node, applied, None);
                let _ = reply.send(());
            }
            Command::Observed {
                node,
                applied,
                disk_hash,
            } => self.observe(&node, applied, disk_hash),
            Command::FleetDesired { version, reply } => {
                let written = self
                    .state
                    .store
                    .write(vec![Write::FleetDesired(version)])
                    .await
                    .map_err(MasterError::from);
                if written.is_ok()
                    && let Ok(mut f) = self.state.fleet_desired.write()
                {
                    *f = version;
                }
                let _ = reply.send(written);
            }
            Command::Forget { node, reply } => {
                self.state.nodes.remove(&node);
                self.dirty.remove(&node);
                let written = self
                    .state
                    .store
                    .write(vec![Write::ForgetNodeConfig(node)])
                    .await;
                let _ = reply.send(written.map_err(MasterError::from));
            }
            Command::Answered(a) => {
                {
                    let mut n = self.entry(&a.node);
                    match &a.outcome {
                        ApplyOutcome::Applied { hash } => {
                            n.applied = Some(a.version);
                            n.last_error = None;
                            // The agent just wrote this content.
                            n.disk_hash = hash.clone();
                        }
                        ApplyOutcome::Failed(reason) => {
                            n.last_error = Some(FailedApply {
                                version: a.version,
                                reason: reason.clone(),
                            });
                        }
                    }
                }
                self.dirty.insert(a.node.clone());
                let _ = self.state.answers.send(a);
            }
        }
    }

    fn fleet_desired(&self) -> Option<Version> {
        self.state.fleet_desired.read().ok().and_then(|f| *f)
    }

    fn entry(&self, node: &str) -> dashmap::mapref::one::RefMut<'_, String, NodeConfigRecord> {
        entry(&self.state.nodes, node)
    }

    /// Notes what a node reported; a newly applied version counts as its
    /// answer to that version (its ack may have been lost in a reconnect).
    fn observe(&mut self, node: &str, applied: Option<Version>, disk_hash: Option<String>) {
        let mut answer = None;
        {
            let mut n = entry(&self.state.nodes, node);
            if let Some(a) = applied
                && n.applied != Some(a)
            {
                n.applied = Some(a);
                answer = Some(Answer {
                    node: node.to_string(),
                    version: a,
                    outcome: ApplyOutcome::Applied {
                        hash: n.disk_hash.clone(),
                    },
                });
                self.dirty.insert(node.to_string());
            }
            if let Some(h) = disk_hash
                && n.disk_hash != h
            {
                n.disk_hash = h;
                self.dirty.insert(node.to_string());
            }
        }
        if let Some(a) = answer {
            let _ = self.state.answers.send(a);
        }
    }

    /// Writes the config state of every node changed since the last flush.
    async fn flush(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let names = std::mem::take(&mut self.dirty);
        let writes: Vec<Write> = names
            .iter()
            .filter_map(|n| {
                self.state
                    .nodes
                    .get(n)
                    .map(|r| Write::NodeConfig(r.clone()))
            })
            .collect();
        if let Err(e) = self.state.store.write(writes).await {
            warn!(error = %e, nodes = names.len(), "cannot write node config state; will retry");
            self.dirty.extend(names);
        }
    }

    /// The targets of `plan` now: a fleet-wide push is for every node known
    /// at this moment, including nodes that registered since it was asked.
    fn targets(&self, plan: PushPlan) -> Result<Vec<String>, MasterError> {
        if plan.fleet_wide {
            self.state
                .registry
                .resolve_targets(&[], &crate::selector::Selector::default())
        } else {
            Ok(plan.targets)
        }
    }

    async fn decide_push(
        &mut self,
        new: NewVersion,
        plan: PushPlan,
    ) -> Result<Decision, MasterError> {
        let NewVersion {
            prepared: p,
            author,
            message,
            idempotency_key,
            dry_run,
        } = new;
        // Sent again after a broken connection: the version it stored.
        if !dry_run && !idempotency_key.is_empty() {
            let earlier = self.state.versions.read().ok().and_then(|v| {
                v.values()
                    .rev()
                    .find(|m| m.idempotency_key == idempotency_key)
                    .cloned()
            });
            if let Some(m) = earlier {
                if m.hash != p.hash {
                    return Err(MasterError::Invalid(format!(
                        "idempotency key {idempotency_key} was used for version {} with other content; a new push needs a new key",
                        m.version
                    )));
                }
                return Ok(Decision::Replayed {
                    version: m.version,
                    targets: m.targets,
                });
            }
        }
        let (fleet_wide, staged) = (plan.fleet_wide, plan.staged);
        let targets = self.targets(plan.clone())?;
        // A staged push always stores (its rollout decides who gets it).
        let targets_now = if staged { Vec::new() } else { targets.clone() };
        // Unchanged: every target already desires a version with this content.
        let desired: Vec<Option<Version>> = targets_now
            .iter()
            .map(|n| self.state.nodes.get(n).and_then(|x| x.desired))
            .collect();
        let same = desired.first().copied().flatten().filter(|d| {
            desired.iter().all(|x| *x == Some(*d))
                && self
                    .state
                    .versions
                    .read()
                    .ok()
                    .and_then(|v| v.get(d).map(|m| m.hash == p.hash))
                    .unwrap_or(false)
        });
        if let Some(v) = same {
            // Nodes that join later get it too when this push was for the
            // whole fleet.
            if fleet_wide && !dry_run && self.fleet_desired() != Some(v) {
                self.state
                    .store
                    .write(vec![Write::FleetDesired(Some(v))])
                    .await?;
                if let Ok(mut f) = self.state.fleet_desired.write() {
                    *f = Some(v);
                }
            }
            let all_applied = targets.iter().all(|n| {
                self.state
                    .nodes
                    .get(n)
                    .is_some_and(|x| x.applied == Some(v))
            });
            return Ok(Decision::Unchanged {
                version: v,
                targets,
                all_applied,
            });
        }
        let next = self
            .state
            .versions
            .read()
            .map_err(|_| MasterError::Internal("version index poisoned".into()))?
            .keys()
            .next_back()
            .map_or(Version::FIRST, |v| v.next());
        if dry_run {
            return Ok(Decision::DryRun {
                version: next,
                targets,
            });
        }
        let meta = VersionRecord {
            version: next,
            hash: p.hash,
            size: p.content.len() as u64,
            author,
            message,
            created_ms: cdn_common::unix_millis_now(),
            targets: targets.clone(),
            fleet_wide,
            idempotency_key,
        };
        let payload = WirePayload::new(&meta, p.wire);
        let desired_by = self
            .make_desired(
                next,
                PushPlan {
                    targets: if staged { Vec::new() } else { targets.clone() },
                    fleet_wide: fleet_wide && !staged,
                    wait: plan.wait,
                    staged,
                },
                Some((meta, p.content)),
            )
            .await?;
        let targets = if staged { targets } else { desired_by };
        self.state
            .wire
            .remember(self.state.wire.settings().algorithm, payload.clone());
        Ok(Decision::Stored { payload, targets })
    }

    /// Makes `version` desired for the plan's targets (and for the fleet
    /// when fleet-wide), storing `new` with it in one transaction; memory
    /// changes once the store has it. Returns the targets.
    async fn make_desired(
        &mut self,
        version: Version,
        plan: PushPlan,
        new: Option<(VersionRecord, Bytes)>,
    ) -> Result<Vec<String>, MasterError> {
        let fleet_wide = plan.fleet_wide;
        let targets = match &new {
            // The push resolved its targets already.
            Some(_) => plan.targets,
            None => self.targets(plan)?,
        };
        let records: Vec<NodeConfigRecord> = targets
            .iter()
            .map(|n| {
                let mut r = self
                    .state
                    .nodes
                    .get(n)
                    .map(|x| x.clone())
                    .unwrap_or_else(|| NodeConfigRecord {
                        name: n.clone(),
                        ..Default::default()
                    });
                r.desired = Some(version);
                if r.applied != Some(version) {
                    r.last_error = None;
                }
                r
            })
            .collect();
        let mut writes: Vec<Write> = Vec::with_capacity(records.len() + 2);
        if let Some((meta, content)) = &new {
            writes.push(Write::Version(meta.clone(), content.clone()));
        }
        if fleet_wide {
            writes.push(Write::FleetDesired(Some(version)));
        }
        writes.extend(records.iter().cloned().map(Write::NodeConfig));
        self.state.store.write(writes).await?;
        if new.is_some() && std::env::var_os(TEST_KILL_AFTER_VERSION_STORED).is_some() {
            warn!("{TEST_KILL_AFTER_VERSION_STORED} is set: killing this master now (test hook)");
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        if let Some((meta, _)) = new
            && let Ok(mut v) = self.state.versions.write()
        {
            v.insert(meta.version, meta);
        }
        for r in records {
            self.dirty.remove(&r.name);
            self.state.nodes.insert(r.name.clone(), r);
        }
        if fleet_wide && let Ok(mut f) = self.state.fleet_desired.write() {
            *f = Some(version);
        }
        Ok(targets)
    }
}

/// The config state of `node`, made empty if it has none yet.
fn entry<'a>(
    nodes: &'a DashMap<String, NodeConfigRecord>,
    node: &str,
) -> dashmap::mapref::one::RefMut<'a, String, NodeConfigRecord> {
    nodes
        .entry(node.to_string())
        .or_insert_with(|| NodeConfigRecord {
            name: node.to_string(),
            ..Default::default()
        })
}

fn info(v: &VersionRecord) -> ConfigVersionInfo {
    ConfigVersionInfo {
        version: v.version.get(),
        hash: v.hash.clone(),
        size: v.size,
        author: v.author.clone(),
        message: v.message.clone(),
        created_ms: v.created_ms,
        targets: v.targets.clone(),
    }
}

async fn send(events: &EventTx, ev: config_push_event::Event) {
    // A client that stopped listening (--no-wait) is not an error.
    let _ = events.send(Ok(ConfigPushEvent { event: Some(ev) })).await;
}

fn stored(
    version: Version,
    hash: &str,
    size: usize,
    targets: &[String],
    unchanged: bool,
    dry_run: bool,
    wire_bytes: u64,
) -> config_push_event::Event {
    config_push_event::Event::Stored(PushStored {
        version: version.get(),
        hash: hash.to_string(),
        size: size as u64,
        targets: targets.to_vec(),
        unchanged,
        dry_run,
        wire_bytes,
        replayed: false,
    })
}

fn node_result(
    node: &str,
    result: ApplyResult,
    version: Version,
    error: &str,
    started: Instant,
) -> config_push_event::Event {
    let us = started.elapsed().as_micros() as u64;
    config_push_event::Event::Node(NodeApplyResult {
        node: node.to_string(),
        result: result.into(),
        version: version.get(),
        error: error.to_string(),
        duration_ms: us / 1000,
        duration_us: us,
    })
}

fn done(applied: u32, failed: u32, pending: u32) -> config_push_event::Event {
    config_push_event::Event::Done(PushDone {
        applied,
        failed,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Liveness, Registration};
    use crate::store::{EmbeddedStore, StoreWriter};
    use cdn_proto::v1::command_response::Body;

    /// A registry and rollouts on the store in `dir`, the owner running.
    struct Rig {
        registry: Arc<Registry>,
        configs: Configs,
        closing: CancellationToken,
        owner: tokio::task::JoinHandle<()>,
        writer: StoreWriter,
    }

    impl Rig {
        async fn open(dir: &std::path::Path) -> Self {
            let (store, writer) = Store::start(Arc::new(EmbeddedStore::open(dir).unwrap()));
            let mut loaded = store.load().await.unwrap();
            let liveness = Liveness {
                interval: Duration::from_secs(10),
                degraded_after: Duration::from_secs(20),
                offline_after: Duration::from_secs(30),
                stream_open_timeout: Duration::from_secs(30),
            };
            let registry = Arc::new(Registry::load(
                store.clone(),
                std::mem::take(&mut loaded.nodes),
                liveness,
            ));
            let (configs, owner) = Configs::load(
                &mut loaded,
                Arc::clone(&registry),
                store,
                Arc::new(Metrics::default()),
                CompressionConfig::default(),
            );
            let closing = CancellationToken::new();
            let owner = tokio::spawn(owner.run(closing.clone()));
            Self {
                registry,
                configs,
                closing,
                owner,
                writer,
            }
        }

        /// Registers `node` with an open command stream; returns its queue.
        async fn node(&self, node: &str) -> mpsc::Receiver<Result<CommandResponse, Status>> {
            let session = self
                .registry
                .register(Registration {
                    node_id: node.into(),
                    instance_id: "i".into(),
                    labels: Default::default(),
                    addresses: vec![],
                    hostname: String::new(),
                    agent_version: String::new(),
                    accept_encodings: vec![],
                })
                .await
                .unwrap();
            self.configs.joined(node, None).await;
            let (tx, rx) = mpsc::channel(8);
            self.registry.attach_stream(node, session, tx).unwrap();
            rx
        }

        async fn close(self) {
            self.closing.cancel();
            self.owner.await.unwrap();
            drop((self.registry, self.configs));
            self.writer.close().await;
        }
    }

    fn plan(targets: &[&str], fleet_wide: bool) -> PushPlan {
        PushPlan {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            fleet_wide,
            wait: Some(Duration::from_secs(10)),
            staged: false,
        }
    }

    /// The version an agent was sent.
    async fn sent(rx: &mut mpsc::Receiver<Result<CommandResponse, Status>>) -> Version {
        match rx.recv().await.unwrap().unwrap().body {
            Some(Body::ApplyConfig(a)) => a.version.parse().unwrap(),
            other => panic!("not a config: {other:?}"),
        }
    }

    async fn events_of(
        mut rx: mpsc::Receiver<Result<ConfigPushEvent, Status>>,
    ) -> Vec<config_push_event::Event> {
        let mut out = Vec::new();
        while let Some(e) = rx.recv().await {
            out.push(e.unwrap().event.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_push_is_stored_sent_answered_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig::open(dir.path()).await;
        let (mut a, mut b) = (rig.node("a").await, rig.node("b").await);
        let (tx, rx) = mpsc::channel(64);
        let configs = rig.configs.clone();
        let push = tokio::spawn(async move {
            let prepared =
                crate::wire::prepare(Bytes::from_static(b"cache: 20g\n"), &configs.compression())
                    .await
                    .unwrap();
            configs
                .push(
                    new_version(prepared, "alice", "m", ""),
                    plan(&["a", "b"], true),
                    tx,
                )
                .await
        });
        let v = sent(&mut a).await;
        assert_eq!((v, sent(&mut b).await), (Version::FIRST, Version::FIRST));
        rig.configs
            .answered(Answer {
                node: "a".into(),
                version: v,
                outcome: ApplyOutcome::Applied { hash: "h".into() },
            })
            .await;
        rig.configs
            .answered(Answer {
                node: "b".into(),
                version: v,
                outcome: ApplyOutcome::Failed("reload failed".into()),
            })
            .await;
        push.await.unwrap().unwrap();
        let events = events_of(rx).await;
        assert!(
            matches!(events.last(), Some(config_push_event::Event::Done(d)) if d.applied == 1 && d.failed == 1)
        );
        let status = rig.configs.status(&["a".into(), "b".into()]);
        assert_eq!(status[0].applied_version, 1);
        assert_eq!(status[1].last_error, "version 1: reload failed");
        rig.close().await;

        let rig = Rig::open(dir.path()).await;
        assert!(rig.configs.exists(Version::FIRST));
        assert_eq!(rig.configs.desired("b"), Some(Version::FIRST));
        assert_eq!(rig.configs.applied("a"), Some(Version::FIRST));
        let (_, content) = rig.configs.content(Version::FIRST).await.unwrap();
        assert_eq!(&content[..], b"cache: 20g\n");
        // A node that joins after a fleet-wide push is given it.
        let mut c = rig.node("c").await;
        assert_eq!(rig.configs.desired("c"), Some(Version::FIRST));
        let due = rig.configs.catch_up_due("c").unwrap();
        // Once on its way, it is neither sent again nor offered in a
        // heartbeat reply.
        assert_eq!(rig.configs.catch_up_due("c"), None);
        assert_eq!(
            rig.configs.heartbeat_offer("c", None),
            (Some(Version::FIRST), false)
        );
        rig.configs.catch_up("c", due).await;
        assert_eq!(sent(&mut c).await, Version::FIRST);
        rig.close().await;
    }

    fn new_version(prepared: Prepared, author: &str, message: &str, key: &str) -> NewVersion {
        NewVersion {
            prepared,
            author: author.into(),
            message: message.into(),
            idempotency_key: key.into(),
            dry_run: false,
        }
    }

    /// Pushes `content` to node `a` with idempotency `key`, waiting
    /// `wait_ms` for answers; the events or the error.
    async fn push_with_key(
        rig: &Rig,
        content: &'static [u8],
        key: &str,
        wait_ms: u64,
    ) -> Result<Vec<config_push_event::Event>, MasterError> {
        let (tx, rx) = mpsc::channel(64);
        let configs = rig.configs.clone();
        let key = key.to_string();
        let push = tokio::spawn(async move {
            let mut p = plan(&["a"], false);
            p.wait = Some(Duration::from_millis(wait_ms));
            let prepared =
                crate::wire::prepare(Bytes::from_static(content), &configs.compression()).await?;
            configs
                .push(new_version(prepared, "u", "", &key), p, tx)
                .await
        });
        let events = events_of(rx).await;
        push.await.unwrap().map(|()| events)
    }

    #[tokio::test]
    async fn a_push_sent_again_with_its_key_gets_the_stored_version_back() {
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig::open(dir.path()).await;
        let mut a = rig.node("a").await;
        let first = push_with_key(&rig, b"x: 1\n", "k1", 200).await.unwrap();
        assert_eq!(sent(&mut a).await, Version::FIRST);
        assert!(
            matches!(&first[0], config_push_event::Event::Stored(s) if s.version == 1 && !s.replayed)
        );
        rig.configs
            .answered(Answer {
                node: "a".into(),
                version: Version::FIRST,
                outcome: ApplyOutcome::Applied { hash: "h".into() },
            })
            .await;
        // Once the answer is noted, the same request again reports version
        // 1 as stored earlier and applied, sends nothing, stores nothing.
        wait_until_applied(&rig, "a", Version::FIRST).await;
        let again = push_with_key(&rig, b"x: 1\n", "k1", 200).await.unwrap();
        assert!(
            matches!(&again[0], config_push_event::Event::Stored(s) if s.version == 1 && s.replayed && !s.unchanged),
            "{again:?}"
        );
        assert!(
            matches!(again.last(), Some(config_push_event::Event::Done(d)) if d.applied == 1),
            "{again:?}"
        );
        assert!(a.try_recv().is_err(), "nothing is sent again");
        assert_eq!(rig.configs.history(0).len(), 1);
        // The key survives a restart with the version.
        rig.close().await;
        let rig = Rig::open(dir.path()).await;
        let _a = rig.node("a").await;
        let after = push_with_key(&rig, b"x: 1\n", "k1", 200).await.unwrap();
        assert!(
            matches!(&after[0], config_push_event::Event::Stored(s) if s.version == 1 && s.replayed)
        );
        // The same key with other content is refused; a new key stores.
        let e = push_with_key(&rig, b"x: 2\n", "k1", 200)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("idempotency key k1") && e.contains("version 1"),
            "{e}"
        );
        let new = push_with_key(&rig, b"x: 2\n", "k2", 0).await.unwrap();
        assert!(matches!(&new[0], config_push_event::Event::Stored(s) if s.version == 2));
        rig.close().await;
    }

    async fn wait_until_applied(rig: &Rig, node: &str, v: Version) {
        for _ in 0..200 {
            if rig.configs.applied(node) == Some(v) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{node} never applied {v}");
    }

    #[tokio::test]
    async fn the_same_content_again_stores_nothing_and_a_rollback_makes_an_old_version_desired() {
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig::open(dir.path()).await;
        let mut a = rig.node("a").await;
        for (content, expect) in [(&b"x: 1\n"[..], 1), (b"x: 2\n", 2), (b"x: 2\n", 2)] {
            let (tx, rx) = mpsc::channel(64);
            let configs = rig.configs.clone();
            let content = Bytes::copy_from_slice(content);
            let push = tokio::spawn(async move {
                let mut p = plan(&["a"], false);
                p.wait = Some(Duration::from_millis(300));
                let prepared = crate::wire::prepare(content, &configs.compression()).await?;
                configs
                    .push(new_version(prepared, "u", "", ""), p, tx)
                    .await
            });
            let events = events_of(rx).await;
            push.await.unwrap().unwrap();
            match &events[0] {
                config_push_event::Event::Stored(s) => assert_eq!(s.version, expect),
                other => panic!("{other:?}"),
            }
            if expect == 1
                || matches!(&events[0], config_push_event::Event::Stored(s) if !s.unchanged)
            {
                let v = sent(&mut a).await;
                rig.configs
                    .answered(Answer {
                        node: "a".into(),
                        version: v,
                        outcome: ApplyOutcome::Applied {
                            hash: String::new(),
                        },
                    })
                    .await;
            }
        }
        assert_eq!(rig.configs.history(0).len(), 2);
        let (tx, rx) = mpsc::channel(64);
        let configs = rig.configs.clone();
        let rollback = tokio::spawn(async move {
            let mut p = plan(&["a"], false);
            p.wait = Some(Duration::from_millis(300));
            configs.rollback(Version::FIRST, p, tx).await
        });
        assert_eq!(sent(&mut a).await, Version::FIRST);
        let _ = events_of(rx).await;
        rollback.await.unwrap().unwrap();
        assert_eq!(rig.configs.desired("a"), Some(Version::FIRST));
        rig.close().await;
    }
}
