//! Staged rollouts: a push or rollback with a strategy reaches its targets
//! wave by wave, each wave gated by checks, halted and rolled back when a
//! check fails.
//!
//! Each rollout that has not ended is driven by one task, its
//! [`runner`], the only writer of its [`RolloutRecord`]: it writes the
//! record to the store at every change of state and publishes it here for
//! readers ([`Rollouts::get`], [`Rollouts::watch`]). A runner asks the
//! config owner ([`Configs`]) to make the version desired by a wave's
//! nodes; no other node sees it. Operators' pause, resume, abort and undo
//! reach the runner as [`Control`] messages. On start (and at each term of
//! leadership on etcd) every rollout that had not ended is resumed from
//! its wave ([`Rollouts::resume_all`]).

pub mod plan;
mod runner;

pub use runner::HALT_REASONS;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use cdn_proto::Version;
use cdn_proto::v1::{
    GateReading, RolloutInfo, RolloutNode, RolloutNodeState, RolloutOnFailure, RolloutState,
    RolloutStrategy, RolloutWave, RolloutWaveState,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::Audit;
use crate::config::RolloutConfig;
use crate::configs::Configs;
use crate::error::MasterError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{Loaded, NodePhase, RolloutPhase, RolloutRecord, Store, WavePhase, Write};

/// Controls one runner may have queued.
const CONTROL_QUEUE_DEPTH: usize = 8;
/// Rollouts listed when the caller gives no limit.
pub const DEFAULT_LIST_LIMIT: usize = 20;

/// What an operator asks of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Abort,
    Undo,
}

impl Action {
    /// The word in events and the audit log (`rollout.pause`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Abort => "abort",
            Action::Undo => "undo",
        }
    }
}

/// An operator's control, sent to a rollout's runner.
pub struct Control {
    pub action: Action,
    /// Who asked, and why (recorded as the rollout's reason).
    pub by: String,
    pub reason: String,
    pub reply: oneshot::Sender<Result<RolloutRecord, MasterError>>,
}

/// A rollout to start.
pub struct Start {
    pub version: Version,
    pub targets: Vec<String>,
    pub strategy: RolloutStrategy,
    pub author: String,
    pub fleet_wide: bool,
    /// Started by a rollback.
    pub rollback: bool,
}

/// One rollout as readers see it, and its runner while one runs.
struct Slot {
    watch: watch::Sender<RolloutRecord>,
    control: Option<mpsc::Sender<Control>>,
}

struct Inner {
    configs: Configs,
    registry: Arc<Registry>,
    store: Store,
    audit: Arc<Audit>,
    metrics: Arc<Metrics>,
    settings: RwLock<RolloutConfig>,
    slots: Mutex<BTreeMap<u64, Slot>>,
    next_id: AtomicU64,
    tasks: TaskTracker,
    closing: CancellationToken,
}

/// The handle to staged rollouts.
#[derive(Clone)]
pub struct Rollouts {
    inner: Arc<Inner>,
}

impl Rollouts {
    /// Rollouts as `loaded` from the store; none runs until
    /// [`Rollouts::resume_all`].
    pub fn load(
        loaded: &mut Loaded,
        configs: Configs,
        registry: Arc<Registry>,
        store: Store,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
        settings: RolloutConfig,
    ) -> Self {
        let records = std::mem::take(&mut loaded.rollouts);
        let next = records.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        let slots = records
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    Slot {
                        watch: watch::Sender::new(r),
                        control: None,
                    },
                )
            })
            .collect();
        let me = Self {
            inner: Arc::new(Inner {
                configs,
                registry,
                store,
                audit,
                metrics,
                settings: RwLock::new(settings),
                slots: Mutex::new(slots),
                next_id: AtomicU64::new(next),
                tasks: TaskTracker::new(),
                closing: CancellationToken::new(),
            }),
        };
        me.update_gauge();
        me
    }

    /// Resumes every rollout that had not ended, from its wave.
    pub fn resume_all(&self) {
        let unfinished: Vec<RolloutRecord> = self
            .lock()
            .values()
            .map(|s| s.watch.borrow().clone())
            .filter(|r| !r.state.ended())
            .collect();
        for r in unfinished {
            tracing::info!(rollout = r.id, version = %r.version, state = ?r.state, wave = r.current_wave, "resuming rollout");
            self.spawn_runner(r, None);
        }
    }

    /// New settings from a reloaded master.yml (SIGHUP).
    pub fn set_settings(&self, s: RolloutConfig) {
        if let Ok(mut w) = self.inner.settings.write() {
            *w = s;
        }
    }

    fn settings(&self) -> RolloutConfig {
        self.inner
            .settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Tells every runner to stop where it is, before agents' streams
    /// close (a node going away because the master stops is no failure):
    /// the stored records resume at the next start.
    pub fn stopping(&self) {
        self.inner.closing.cancel();
    }

    /// Resolves once the runners are told to stop.
    pub async fn closed(&self) {
        self.inner.closing.cancelled().await
    }

    /// Stops every runner and waits for them.
    pub async fn stop(&self) {
        self.inner.closing.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses (FAILED_PRECONDITION) when a rollout that has not ended
    /// holds any of `targets`.
    pub fn check_free(&self, targets: &[String]) -> Result<(), MasterError> {
        busy(&self.lock(), targets)
    }

    /// Checks `strategy` against `targets` (INVALID_ARGUMENT naming the
    /// problem) and that no rollout holds them.
    pub fn check(&self, strategy: &RolloutStrategy, targets: &[String]) -> Result<(), MasterError> {
        self.planned(strategy, targets).map(|_| ())?;
        self.check_free(targets)
    }

    fn planned(
        &self,
        strategy: &RolloutStrategy,
        targets: &[String],
    ) -> Result<
        (
            crate::store::StrategyRecord,
            Vec<crate::store::RolloutWaveRecord>,
        ),
        MasterError,
    > {
        let settings = self.settings();
        let targets = targets
            .iter()
            .map(|n| plan::Target {
                name: n.clone(),
                labels: self
                    .inner
                    .registry
                    .get(n)
                    .map(|v| v.record.labels)
                    .unwrap_or_default(),
                desired: self.inner.configs.desired(n),
            })
            .collect();
        plan::plan(
            strategy,
            targets,
            &plan::Settings {
                prometheus: !settings.prometheus.url.is_empty(),
                default_apply_timeout: settings.default_apply_timeout,
            },
        )
        .map_err(|e| MasterError::Invalid(e.to_string()))
    }

    /// Plans, stores and starts a rollout; returns it as first written.
    pub async fn start(&self, s: Start) -> Result<RolloutRecord, MasterError> {
        let (strategy, waves) = self.planned(&s.strategy, &s.targets)?;
        let now = cdn_common::unix_millis_now();
        let previous_fleet = self.inner.configs.fleet_desired();
        let start_paused = strategy.start_paused;
        // Reserved under the lock: a second rollout on these nodes is
        // refused even while this one is being written.
        let record = {
            let mut slots = self.lock();
            busy(&slots, &s.targets)?;
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let record = RolloutRecord {
                id,
                version: s.version,
                state: if start_paused {
                    RolloutPhase::Paused
                } else {
                    RolloutPhase::Running
                },
                strategy,
                current_wave: 0,
                waves,
                author: s.author.clone(),
                created_ms: now,
                updated_ms: now,
                reason: if start_paused {
                    "started paused; `cdnctl rollout resume` starts the first wave".into()
                } else {
                    String::new()
                },
                gates: Vec::new(),
                rollback: s.rollback,
                next_wave_ms: 0,
                fleet_wide: s.fleet_wide,
                previous_fleet,
                undo: false,
            };
            slots.insert(
                id,
                Slot {
                    watch: watch::Sender::new(record.clone()),
                    control: None,
                },
            );
            record
        };
        if let Err(e) = self
            .inner
            .store
            .write(vec![Write::Rollout(Box::new(record.clone()))])
            .await
        {
            self.lock().remove(&record.id);
            return Err(e.into());
        }
        let sizes: Vec<String> = record
            .waves
            .iter()
            .map(|w| w.nodes.len().to_string())
            .collect();
        self.inner
            .audit
            .record(crate::audit::Entry {
                user: &s.author,
                role: "",
                peer: "",
                action: "rollout.start",
                target: &format!("rollout {}", record.id),
                detail: format!(
                    "{} version {} to {} node(s) in {} wave(s) of {}{}",
                    if s.rollback { "rollback to" } else { "push of" },
                    record.version,
                    s.targets.len(),
                    record.waves.len(),
                    sizes.join(", "),
                    if start_paused { ", paused" } else { "" }
                ),
                result: Ok(()),
            })
            .await;
        self.spawn_runner(record.clone(), None);
        Ok(record)
    }

    fn spawn_runner(&self, record: RolloutRecord, first: Option<Control>) {
        let (tx, rx) = mpsc::channel(CONTROL_QUEUE_DEPTH);
        let watch = {
            let mut slots = self.lock();
            let slot = slots.entry(record.id).or_insert_with(|| Slot {
                watch: watch::Sender::new(record.clone()),
                control: None,
            });
            slot.control = Some(tx.clone());
            slot.watch.clone()
        };
        if let Some(c) = first {
            let _ = tx.try_send(c);
        }
        let runner = runner::Runner::new(self.clone(), record, watch, rx);
        self.inner.tasks.spawn(runner.run());
    }

    /// The runner of `id` ended: controls go to the record from now on.
    fn runner_ended(&self, id: u64) {
        if let Some(slot) = self.lock().get_mut(&id) {
            slot.control = None;
        }
        self.update_gauge();
    }

    /// `cdn_rollout_wave`: the current wave of the newest rollout that has
    /// not ended, -1 when none runs.
    fn update_gauge(&self) {
        let wave = self
            .lock()
            .values()
            .rev()
            .map(|s| s.watch.borrow().clone())
            .find(|r| !r.state.ended())
            .map_or(-1, |r| r.current_wave as i64);
        self.inner.metrics.rollout_wave.set(wave);
    }

    /// Rollout `id` (0 = the newest).
    pub fn get(&self, id: u64) -> Result<RolloutRecord, MasterError> {
        let slots = self.lock();
        let slot = match id {
            0 => slots.values().next_back(),
            id => slots.get(&id),
        };
        slot.map(|s| s.watch.borrow().clone()).ok_or_else(|| {
            MasterError::NotFound(match id {
                0 => "no rollout yet".into(),
                id => format!("rollout {id} not found"),
            })
        })
    }

    /// The newest rollout of `version`, if any (a staged push sent again).
    pub fn of_version(&self, version: Version) -> Option<RolloutRecord> {
        self.lock()
            .values()
            .rev()
            .map(|s| s.watch.borrow().clone())
            .find(|r| r.version == version && !r.rollback)
    }

    /// The newest `limit` rollouts (0 = [`DEFAULT_LIST_LIMIT`]), newest
    /// first; only those that have not ended when `active`.
    pub fn list(&self, limit: usize, active: bool) -> Vec<RolloutRecord> {
        let limit = if limit == 0 {
            DEFAULT_LIST_LIMIT
        } else {
            limit
        };
        self.lock()
            .values()
            .rev()
            .map(|s| s.watch.borrow().clone())
            .filter(|r| !active || !r.state.ended())
            .take(limit)
            .collect()
    }

    /// Rollout `id` (0 = the newest) now and at every change.
    pub fn watch(&self, id: u64) -> Result<watch::Receiver<RolloutRecord>, MasterError> {
        let id = self.get(id)?.id;
        self.lock()
            .get(&id)
            .map(|s| s.watch.subscribe())
            .ok_or_else(|| MasterError::NotFound(format!("rollout {id} not found")))
    }

    /// Applies an operator's `action` to rollout `id` (0 = the newest).
    pub async fn control(
        &self,
        id: u64,
        action: Action,
        by: &str,
        reason: &str,
    ) -> Result<RolloutRecord, MasterError> {
        let record = self.get(id)?;
        let (reply, answer) = oneshot::channel();
        let control = Control {
            action,
            by: by.to_string(),
            reason: reason.to_string(),
            reply,
        };
        let runner = self.lock().get(&record.id).and_then(|s| s.control.clone());
        let control = match runner {
            Some(tx) => match tx.send(control).await {
                Ok(()) => {
                    return answer.await.map_err(|_| {
                        MasterError::Unavailable(
                            "the rollout stopped (master shutting down)".into(),
                        )
                    })?;
                }
                Err(mpsc::error::SendError(c)) => c,
            },
            None => control,
        };
        // No runner: the rollout has ended (or just did). Only an undo of
        // one that left nodes on its version does something.
        let record = self.get(record.id)?;
        let undoable = matches!(
            record.state,
            RolloutPhase::Succeeded | RolloutPhase::Halted | RolloutPhase::Aborted
        );
        if action == Action::Undo && undoable {
            self.spawn_runner(record, Some(control));
            return answer.await.map_err(|_| {
                MasterError::Unavailable("the rollout stopped (master shutting down)".into())
            })?;
        }
        Err(MasterError::Precondition(format!(
            "rollout {} has ended ({}); there is nothing to {}{}",
            record.id,
            phase_word(record.state),
            action.as_str(),
            if action == Action::Undo {
                " (its nodes are back on their previous versions already)"
            } else {
                ""
            }
        )))
    }
}

/// FAILED_PRECONDITION when a rollout of `slots` that has not ended holds
/// any of `targets`.
fn busy(slots: &BTreeMap<u64, Slot>, targets: &[String]) -> Result<(), MasterError> {
    let wanted: HashSet<&str> = targets.iter().map(String::as_str).collect();
    for slot in slots.values() {
        let r = slot.watch.borrow();
        if r.state.ended() {
            continue;
        }
        let overlap: Vec<&str> = r
            .nodes()
            .map(|n| n.node.as_str())
            .filter(|n| wanted.contains(n))
            .collect();
        if let Some(first) = overlap.first() {
            return Err(MasterError::Precondition(format!(
                "rollout {id} is {state} on these nodes ({first}{more}); wait for it, or `cdnctl rollout abort {id}`",
                id = r.id,
                state = phase_word(r.state).replace('_', " "),
                more = match overlap.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                }
            )));
        }
    }
    Ok(())
}

/// The state's word, as `cdnctl rollout status -o json` prints it.
pub fn phase_word(p: RolloutPhase) -> &'static str {
    match p {
        RolloutPhase::Running => "running",
        RolloutPhase::Paused => "paused",
        RolloutPhase::RollingBack => "rolling_back",
        RolloutPhase::RolledBack => "rolled_back",
        RolloutPhase::Halted => "halted",
        RolloutPhase::Aborted => "aborted",
        RolloutPhase::Succeeded => "succeeded",
        RolloutPhase::Undone => "undone",
    }
}

/// The wire form of a rollout.
pub fn info(r: &RolloutRecord) -> RolloutInfo {
    let s = &r.strategy;
    RolloutInfo {
        id: r.id,
        version: r.version.get(),
        state: match r.state {
            RolloutPhase::Running => RolloutState::Running,
            RolloutPhase::Paused => RolloutState::Paused,
            RolloutPhase::RollingBack => RolloutState::RollingBack,
            RolloutPhase::RolledBack => RolloutState::RolledBack,
            RolloutPhase::Halted => RolloutState::Halted,
            RolloutPhase::Aborted => RolloutState::Aborted,
            RolloutPhase::Succeeded => RolloutState::Succeeded,
            RolloutPhase::Undone => RolloutState::Undone,
        }
        .into(),
        strategy: Some(RolloutStrategy {
            canary: s.canary,
            waves: s.waves.clone(),
            pause_ms: s.pause_ms,
            bake_ms: s.bake_ms,
            max_failed: s.max_failed,
            by: s.by.clone(),
            gates: s.gates.clone(),
            on_failure: if s.halt_only {
                RolloutOnFailure::Halt
            } else {
                RolloutOnFailure::Rollback
            }
            .into(),
            apply_timeout_ms: s.apply_timeout_ms,
            start_paused: s.start_paused,
        }),
        current_wave: r.current_wave,
        waves: r
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| RolloutWave {
                index: i as u32,
                state: match w.state {
                    WavePhase::Pending => RolloutWaveState::Pending,
                    WavePhase::Applying => RolloutWaveState::Applying,
                    WavePhase::Baking => RolloutWaveState::Baking,
                    WavePhase::Passed => RolloutWaveState::Passed,
                    WavePhase::Failed => RolloutWaveState::Failed,
                    WavePhase::RolledBack => RolloutWaveState::RolledBack,
                }
                .into(),
                label_value: w.label_value.clone(),
                nodes: w
                    .nodes
                    .iter()
                    .map(|n| RolloutNode {
                        node: n.node.clone(),
                        state: match n.state {
                            NodePhase::Waiting => RolloutNodeState::Waiting,
                            NodePhase::Applying => RolloutNodeState::Applying,
                            NodePhase::Applied => RolloutNodeState::Applied,
                            NodePhase::Failed => RolloutNodeState::Failed,
                            NodePhase::RolledBack => RolloutNodeState::RolledBack,
                        }
                        .into(),
                        previous_version: Version::to_u64(n.previous),
                        reason: n.reason.clone(),
                    })
                    .collect(),
                started_ms: w.started_ms,
                finished_ms: w.finished_ms,
            })
            .collect(),
        author: r.author.clone(),
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
        reason: r.reason.clone(),
        gates: r
            .gates
            .iter()
            .map(|g| GateReading {
                gate: g.gate.clone(),
                wave: g.wave,
                passed: g.passed,
                has_value: g.value.is_some(),
                value: g.value.unwrap_or_default(),
                detail: g.detail.clone(),
                time_ms: g.time_ms,
            })
            .collect(),
        rollback: r.rollback,
        next_wave_ms: r.next_wave_ms,
    }
}

/// `done` counts of a rollout over all its targets: applied, failed,
/// and the rest (never reached, or put back).
pub fn counts(r: &RolloutRecord) -> (u32, u32, u32) {
    let (mut applied, mut failed, mut other) = (0, 0, 0);
    for n in r.nodes() {
        match n.state {
            NodePhase::Applied => applied += 1,
            NodePhase::Failed => failed += 1,
            _ => other += 1,
        }
    }
    (applied, failed, other)
}
