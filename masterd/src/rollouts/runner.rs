//! One rollout's task: the only writer of its record. It walks the waves
//! (pause, apply, bake), reads the gates while a wave bakes, halts and
//! puts nodes back when one fails, and obeys operators' controls. The
//! record is written to the store at every change of state (wave started,
//! applied, passed, halted, paused...) and published to readers at every
//! change, node answers included. A runner stopped by a shutdown leaves
//! its record as last written: the next master resumes it from there (a
//! wave that was applying is sent again to the nodes that do not run the
//! version yet; a wave that was baking bakes again in full).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cdn_proto::v1::{ApplyResult, ConfigPushEvent, config_push_event};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Action, Control, Rollouts, phase_word};
use crate::configs::PushPlan;
use crate::error::MasterError;
use crate::registry::{NodeState, Registry};
use crate::store::{GateRecord, NodePhase, RolloutPhase, RolloutRecord, WavePhase, Write};

/// The kinds of halt counted in `cdn_rollout_halts_total{reason}`.
pub const HALT_REASONS: [&str; 5] = ["apply", "health", "node_state", "prometheus", "operator"];

/// How often a wave waiting for late nodes re-reads their state.
const STATE_RECHECK: Duration = Duration::from_millis(250);

/// What woke the runner.
enum Input {
    Control(Control),
    Event(ConfigPushEvent),
    /// The push task ended (its channel closed).
    EventsDone,
    Timer,
    Closing,
}

/// Whether the step in progress goes on after a control.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(super) struct Runner {
    rollouts: Rollouts,
    rec: RolloutRecord,
    watch: watch::Sender<RolloutRecord>,
    controls: mpsc::Receiver<Control>,
    /// When this runner started: nodes not back online within the
    /// liveness window of it are judged (after a restart every node is
    /// offline until its agent reconnects).
    started: Instant,
    /// Nodes seen online since this runner started.
    seen_online: HashSet<String>,
    apply_started: HashMap<usize, Instant>,
    /// The last gate reading left a node undecided (not back yet).
    undecided: bool,
}

impl Runner {
    pub(super) fn new(
        rollouts: Rollouts,
        rec: RolloutRecord,
        watch: watch::Sender<RolloutRecord>,
        controls: mpsc::Receiver<Control>,
    ) -> Self {
        Self {
            rollouts,
            rec,
            watch,
            controls,
            started: Instant::now(),
            seen_online: HashSet::new(),
            apply_started: HashMap::new(),
            undecided: false,
        }
    }

    /// When wave `w` started applying, on this master's clock (a wave
    /// resumed after a restart gets a full apply timeout again).
    fn started_apply(&mut self, w: usize) -> Instant {
        *self.apply_started.entry(w).or_insert_with(Instant::now)
    }

    fn closing(&self) -> bool {
        self.rollouts.inner.closing.is_cancelled()
    }

    /// Drives the rollout until it ends or the master stops.
    pub(super) async fn run(mut self) {
        let id = self.rec.id;
        loop {
            if self.closing() {
                break;
            }
            match self.rec.state {
                RolloutPhase::RollingBack => {
                    self.roll_back().await;
                }
                RolloutPhase::Paused => match self.next_input(None, None).await {
                    Input::Control(c) => {
                        self.on_control(c).await;
                    }
                    Input::Closing => break,
                    _ => {}
                },
                RolloutPhase::Running => self.step().await,
                ended => {
                    // An undo of an ended rollout comes as the first control.
                    match self.controls.try_recv() {
                        Ok(c) => {
                            self.on_control(c).await;
                        }
                        Err(_) => {
                            info!(rollout = id, state = phase_word(ended), "rollout ended");
                            break;
                        }
                    }
                }
            }
        }
        // Controls that came too late are told so.
        self.controls.close();
        while let Ok(c) = self.controls.try_recv() {
            let _ = c.reply.send(Err(MasterError::Precondition(format!(
                "rollout {id} has ended ({})",
                phase_word(self.rec.state)
            ))));
        }
        self.rollouts.runner_ended(id);
    }

    /// Publishes the record to readers (not written).
    fn publish(&mut self) {
        self.rec.updated_ms = cdn_common::unix_millis_now();
        self.watch.send_replace(self.rec.clone());
    }

    /// Writes the record and publishes it. A write that fails is retried
    /// at the next change; the rollout goes on (its nodes' desired
    /// versions are durable with the config owner).
    async fn save(&mut self) {
        self.publish();
        if let Err(e) = self
            .rollouts
            .inner
            .store
            .write(vec![Write::Rollout(Box::new(self.rec.clone()))])
            .await
        {
            warn!(rollout = self.rec.id, error = %e, "cannot write the rollout record");
        }
        self.rollouts.update_gauge();
    }

    /// An engine decision: an event and an audit entry.
    async fn decide(&self, action: &str, detail: String, ok: bool) {
        info!(rollout = self.rec.id, action, %detail, "rollout");
        self.rollouts
            .inner
            .audit
            .record(crate::audit::Entry {
                user: "masterd",
                role: "",
                peer: "",
                action,
                target: &format!("rollout {}", self.rec.id),
                detail,
                result: if ok { Ok(()) } else { Err("halted".into()) },
            })
            .await;
    }

    /// Waits for a control, a push event (when `events` is given), the
    /// `deadline` or the master stopping.
    async fn next_input(
        &mut self,
        deadline: Option<Instant>,
        events: Option<&mut mpsc::Receiver<Result<ConfigPushEvent, tonic::Status>>>,
    ) -> Input {
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let event = async {
            match events {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            c = self.controls.recv() => match c {
                Some(c) => Input::Control(c),
                None => Input::Closing,
            },
            e = event => match e {
                Some(Ok(e)) => Input::Event(e),
                _ => Input::EventsDone,
            },
            _ = timer => Input::Timer,
            _ = self.rollouts.inner.closing.cancelled() => Input::Closing,
        }
    }

    /// Acts on an operator's control; [`Flow::Stop`] when the step in
    /// progress must end (abort, undo).
    async fn on_control(&mut self, c: Control) -> Flow {
        let id = self.rec.id;
        let state = self.rec.state;
        let refuse = |why: String| Err(MasterError::Precondition(why));
        let why = |by: &str, reason: &str| {
            if reason.is_empty() {
                format!("by {by}")
            } else {
                format!("by {by}: {reason}")
            }
        };
        let (result, flow) = match (c.action, state) {
            (Action::Pause, RolloutPhase::Running) => {
                self.rec.state = RolloutPhase::Paused;
                self.rec.reason = format!("paused {}", why(&c.by, &c.reason));
                (Ok(()), Flow::Continue)
            }
            (Action::Pause, RolloutPhase::Paused) => (Ok(()), Flow::Continue),
            (Action::Resume, RolloutPhase::Paused) => {
                self.rec.state = RolloutPhase::Running;
                self.rec.reason = format!("resumed {}", why(&c.by, &c.reason));
                (Ok(()), Flow::Continue)
            }
            (Action::Resume, RolloutPhase::Running) => (Ok(()), Flow::Continue),
            (Action::Abort, RolloutPhase::Running | RolloutPhase::Paused) => {
                self.rec.state = RolloutPhase::Aborted;
                self.rec.next_wave_ms = 0;
                self.rec.reason = format!(
                    "aborted {}; every node left as it is",
                    why(&c.by, &c.reason)
                );
                self.count_halt("operator");
                (Ok(()), Flow::Stop)
            }
            (
                Action::Undo,
                RolloutPhase::Running
                | RolloutPhase::Paused
                | RolloutPhase::Succeeded
                | RolloutPhase::Halted
                | RolloutPhase::Aborted,
            ) => {
                if !state.ended() {
                    self.count_halt("operator");
                }
                self.rec.state = RolloutPhase::RollingBack;
                self.rec.undo = true;
                self.rec.next_wave_ms = 0;
                self.rec.reason = format!(
                    "undone {}; updated nodes go back to their previous versions",
                    why(&c.by, &c.reason)
                );
                (Ok(()), Flow::Stop)
            }
            (action, state) => (
                refuse(format!(
                    "rollout {id} is {}; cannot {} it",
                    phase_word(state).replace('_', " "),
                    action.as_str()
                )),
                Flow::Continue,
            ),
        };
        if result.is_ok() && self.rec.state != state {
            self.save().await;
        }
        let _ = c.reply.send(result.map(|()| self.rec.clone()));
        flow
    }

    fn count_halt(&self, reason: &'static str) {
        self.rollouts
            .inner
            .metrics
            .rollout_halts
            .get_or_create(&crate::metrics::ReasonLabel { reason })
            .inc();
    }

    /// One step of a running rollout: the next pause, apply or bake.
    async fn step(&mut self) {
        let Some(w) = self
            .rec
            .waves
            .iter()
            .position(|w| w.state != WavePhase::Passed)
        else {
            return self.succeed().await;
        };
        if self.rec.waves[w].state != WavePhase::Pending {
            self.rec.current_wave = w as u32;
        }
        match self.rec.waves[w].state {
            WavePhase::Pending => self.start_wave(w).await,
            WavePhase::Applying => self.apply_wave(w).await,
            WavePhase::Baking => self.bake(w).await,
            WavePhase::Failed | WavePhase::RolledBack | WavePhase::Passed => {
                // Not a state a running rollout is left in; halt rather
                // than guess.
                self.halt(w, "apply", "a failed wave was found on resume".into())
                    .await;
            }
        }
    }

    /// The pause before wave `w` (not before the first), then the wave
    /// starts: its nodes are marked applying and the record written.
    async fn start_wave(&mut self, w: usize) {
        let pause = Duration::from_millis(self.rec.strategy.pause_ms);
        if w > 0 && !pause.is_zero() {
            let now_ms = cdn_common::unix_millis_now();
            if self.rec.next_wave_ms == 0 {
                self.rec.next_wave_ms = now_ms + pause.as_millis() as i64;
                self.save().await;
            }
            let left = Duration::from_millis((self.rec.next_wave_ms - now_ms).max(0) as u64);
            let deadline = Instant::now() + left;
            if self.wait_until(deadline).await == Flow::Stop {
                return;
            }
            // Paused meanwhile: the pause is over, the wave waits.
            if self.rec.state != RolloutPhase::Running {
                return;
            }
        }
        self.rec.next_wave_ms = 0;
        self.rec.current_wave = w as u32;
        let wave = &mut self.rec.waves[w];
        wave.state = WavePhase::Applying;
        wave.started_ms = cdn_common::unix_millis_now();
        for n in &mut wave.nodes {
            n.state = NodePhase::Applying;
        }
        let names: Vec<String> = wave.nodes.iter().map(|n| n.node.clone()).collect();
        let label = match wave.label_value.as_str() {
            "" => String::new(),
            v => format!(" ({}={v})", self.rec.strategy.by),
        };
        self.save().await;
        self.decide(
            "rollout.wave",
            format!(
                "wave {} of {}{label} started: version {} to {}",
                w + 1,
                self.rec.waves.len(),
                self.rec.version,
                names.join(",")
            ),
            true,
        )
        .await;
    }

    /// Sends the version to wave `w`'s nodes that do not run it yet, and
    /// waits for their answers (within the apply timeout).
    async fn apply_wave(&mut self, w: usize) {
        let version = self.rec.version;
        let configs = self.rollouts.inner.configs.clone();
        let timeout = Duration::from_millis(self.rec.strategy.apply_timeout_ms.max(1));
        // A node that runs the version already (a resumed wave) is not
        // sent it again.
        self.started_apply(w);
        let mut send = Vec::new();
        for n in &mut self.rec.waves[w].nodes {
            if n.state != NodePhase::Applying {
                continue;
            }
            if configs.desired(&n.node) == Some(version)
                && configs.applied(&n.node) == Some(version)
            {
                n.state = NodePhase::Applied;
            } else {
                send.push(n.node.clone());
            }
        }
        if !send.is_empty() {
            let (tx, mut rx) = mpsc::channel(send.len() * 2 + 16);
            let plan = PushPlan {
                targets: send.clone(),
                fleet_wide: false,
                wait: Some(timeout),
                staged: false,
            };
            let push = tokio::spawn(async move { configs.rollback(version, plan, tx).await });
            let deadline = Instant::now() + timeout + Duration::from_secs(5);
            let mut stopped = false;
            loop {
                match self.next_input(Some(deadline), Some(&mut rx)).await {
                    Input::Event(e) => {
                        if let Some(config_push_event::Event::Node(r)) = e.event {
                            self.node_answer(w, &r);
                            self.publish();
                        }
                    }
                    Input::EventsDone | Input::Timer => break,
                    Input::Closing => {
                        stopped = true;
                        break;
                    }
                    Input::Control(c) => {
                        if self.on_control(c).await == Flow::Stop {
                            stopped = true;
                            break;
                        }
                    }
                }
            }
            if stopped {
                push.abort();
                return;
            }
            if let Ok(Err(e)) = push.await {
                return self
                    .halt(w, "apply", format!("cannot send version {version}: {e}"))
                    .await;
            }
            // Nodes that were offline (a master that just restarted, an
            // agent reconnecting) get the version when they come back:
            // their answers are read from node state until the deadline.
            let deadline = self.started_apply(w) + timeout;
            loop {
                let configs = &self.rollouts.inner.configs;
                let mut waiting = false;
                for n in &mut self.rec.waves[w].nodes {
                    if n.state != NodePhase::Applying {
                        continue;
                    }
                    if configs.applied(&n.node) == Some(version) {
                        n.state = NodePhase::Applied;
                        n.reason.clear();
                    } else if let Some(why) = configs.failure(&n.node, version) {
                        n.state = NodePhase::Failed;
                        n.reason = format!("apply failed: {why}");
                    } else {
                        waiting = true;
                    }
                }
                self.publish();
                if !waiting || Instant::now() >= deadline {
                    break;
                }
                let next = (Instant::now() + STATE_RECHECK).min(deadline);
                let stop = match self.next_input(Some(next), None).await {
                    Input::Closing => true,
                    Input::Control(c) => self.on_control(c).await == Flow::Stop,
                    _ => false,
                };
                if stop {
                    return;
                }
            }
        }
        let late = format!("no answer within {}", cdn_common::duration::short(timeout));
        for n in &mut self.rec.waves[w].nodes {
            if n.state == NodePhase::Applying {
                n.state = NodePhase::Failed;
                if n.reason.is_empty() {
                    n.reason = late.clone();
                }
            }
        }
        if let Some(why) = self.too_many_failed() {
            return self.halt(w, "apply", why).await;
        }
        self.rec.waves[w].state = WavePhase::Baking;
        self.save().await;
    }

    /// Notes one node's answer from the push.
    fn node_answer(&mut self, w: usize, r: &cdn_proto::v1::NodeApplyResult) {
        let Some(n) = self.rec.waves[w]
            .nodes
            .iter_mut()
            .find(|n| n.node == r.node)
        else {
            return;
        };
        match ApplyResult::try_from(r.result) {
            Ok(ApplyResult::Applied) => {
                n.state = NodePhase::Applied;
                n.reason.clear();
            }
            Ok(ApplyResult::Failed) => {
                n.state = NodePhase::Failed;
                n.reason = format!("apply failed: {}", r.error);
            }
            // Pending: offline, or no answer in time; failed at the end of
            // the wait if it stays so.
            _ => n.reason = r.error.clone(),
        }
    }

    /// The halt reason when more nodes failed than the strategy tolerates.
    fn too_many_failed(&self) -> Option<String> {
        let failed: Vec<String> = self
            .rec
            .nodes()
            .filter(|n| n.state == NodePhase::Failed)
            .map(|n| format!("{}: {}", n.node, n.reason))
            .collect();
        (failed.len() > self.rec.strategy.max_failed as usize).then(|| {
            format!(
                "{} node(s) failed, {} tolerated (max_failed): {}",
                failed.len(),
                self.rec.strategy.max_failed,
                failed.join("; ")
            )
        })
    }

    /// Watches wave `w`'s gates for the bake time, reading them every
    /// `rollout.gate_interval`; the wave passes when none failed.
    async fn bake(&mut self, w: usize) {
        let settings = self.rollouts.settings();
        let bake = Duration::from_millis(self.rec.strategy.bake_ms);
        let end = Instant::now() + bake;
        loop {
            if let Some((kind, why)) = self.read_gates(w).await {
                return self.halt(w, kind, why).await;
            }
            self.publish();
            let now = Instant::now();
            if now >= end && !self.undecided {
                break;
            }
            let next = if now >= end {
                now + STATE_RECHECK
            } else {
                (now + settings.gate_interval).min(end)
            };
            if self.wait_until(next).await == Flow::Stop {
                return;
            }
        }
        let wave = &mut self.rec.waves[w];
        wave.state = WavePhase::Passed;
        wave.finished_ms = cdn_common::unix_millis_now();
        let n = wave.nodes.len();
        self.save().await;
        self.decide(
            "rollout.wave",
            format!(
                "wave {} of {} passed: {n} node(s) on version {}, baked {}",
                w + 1,
                self.rec.waves.len(),
                self.rec.version,
                cdn_common::duration::short(bake)
            ),
            true,
        )
        .await;
    }

    /// Reads every gate once for wave `w`; the halt kind and reason when
    /// one failed.
    async fn read_gates(&mut self, w: usize) -> Option<(&'static str, String)> {
        let registry = std::sync::Arc::clone(&self.rollouts.inner.registry);
        let now_ms = cdn_common::unix_millis_now();
        // A node not seen online since this runner started (the master
        // restarted) is given the liveness window to come back.
        let grace = self.started.elapsed() < registry.liveness().offline_after;
        self.undecided = false;
        let (sick, checked) = self.unhealthy(w, &registry);
        if checked > 0 {
            let passed = format!("{checked} node(s) pass their health check");
            self.node_gate("health", w, &sick, passed, now_ms).await;
        }
        if !sick.is_empty()
            && let Some(why) = self.too_many_failed()
        {
            return Some(("health", why));
        }
        let bad = self.not_online(w, &registry, grace);
        let passed = "every updated node online".to_string();
        self.node_gate("node-state", w, &bad, passed, now_ms).await;
        if let Some(why) = self.too_many_failed() {
            return Some(("node_state", why));
        }
        self.read_prometheus(w).await.map(|why| ("prometheus", why))
    }

    /// Health: a node updated so far whose check of this version fails
    /// (the agent runs it after the reload and on its interval) is marked
    /// failed. Returns one line per such node, and how many nodes had a
    /// check of this version.
    fn unhealthy(&mut self, w: usize, registry: &Registry) -> (Vec<String>, usize) {
        let version = self.rec.version;
        let mut sick = Vec::new();
        let mut checked = 0usize;
        for wave in &mut self.rec.waves[..=w] {
            for n in &mut wave.nodes {
                if n.state != NodePhase::Applied {
                    continue;
                }
                let Some(h) = registry.health(&n.node) else {
                    continue;
                };
                if h.version != Some(version) {
                    continue;
                }
                checked += 1;
                if !h.ok {
                    n.state = NodePhase::Failed;
                    n.reason = format!("health check failed: {}", h.detail);
                    sick.push(format!("{}: {}", n.node, h.detail));
                }
            }
        }
        (sick, checked)
    }

    /// Node state: a node updated so far that is not online (past the
    /// `grace` a restarted master gives nodes it has not seen yet) is
    /// marked failed. Returns one line per such node.
    fn not_online(&mut self, w: usize, registry: &Registry, grace: bool) -> Vec<String> {
        let mut bad = Vec::new();
        for wave in &mut self.rec.waves[..=w] {
            for n in &mut wave.nodes {
                if n.state != NodePhase::Applied {
                    continue;
                }
                let state = registry.state(&n.node);
                if state == Some(NodeState::Online) {
                    self.seen_online.insert(n.node.clone());
                    continue;
                }
                if grace && !self.seen_online.contains(&n.node) {
                    self.undecided = true;
                    continue;
                }
                let why = match state {
                    Some(NodeState::Online) => continue,
                    Some(NodeState::Degraded) => {
                        let reason = registry.get(&n.node).map(|v| v.reason).unwrap_or_default();
                        format!("degraded during the bake: {reason}")
                    }
                    Some(NodeState::Offline) => "offline during the bake".to_string(),
                    None => "deleted during the bake".to_string(),
                };
                n.state = NodePhase::Failed;
                n.reason = why.clone();
                bad.push(format!("{}: {why}", n.node));
            }
        }
        bad
    }

    /// Prometheus: every gate over the nodes updated so far; the first
    /// that failed, if one did.
    async fn read_prometheus(&mut self, w: usize) -> Option<String> {
        if self.rec.strategy.gates.is_empty() {
            return None;
        }
        let settings = self.rollouts.settings();
        let client = match crate::promgate::PromClient::new(
            &settings.prometheus.url,
            settings.prometheus.timeout,
        ) {
            Ok(c) => c,
            Err(e) => return Some(format!("cannot read the gates: {e}")),
        };
        let updated: Vec<String> = self.rec.waves[..=w]
            .iter()
            .flat_map(|w| w.nodes.iter())
            .filter(|n| n.state == NodePhase::Applied)
            .map(|n| n.node.clone())
            .collect();
        let ctx = crate::promgate::GateContext {
            nodes: &updated,
            wave: w as u32,
            version: self.rec.version.get(),
        };
        let mut failed = None;
        for text in self.rec.strategy.gates.clone() {
            let outcome = match text.parse::<crate::promgate::PromGate>() {
                Ok(gate) => client.read(&gate, &ctx).await,
                Err(e) => crate::promgate::GateOutcome {
                    passed: false,
                    value: None,
                    detail: e.to_string(),
                },
            };
            self.reading(GateRecord {
                gate: text.clone(),
                wave: w as u32,
                passed: outcome.passed,
                value: outcome.value,
                detail: outcome.detail.clone(),
                time_ms: cdn_common::unix_millis_now(),
            });
            if !outcome.passed && failed.is_none() {
                failed = Some(format!("gate `{text}` failed: {}", outcome.detail));
            }
        }
        if let Some(why) = &failed {
            self.decide("rollout.gate", format!("wave {}: {why}", w + 1), false)
                .await;
        }
        failed
    }

    /// Waits until `deadline`, taking operators' controls meanwhile; Stop
    /// when the master closes or a control ends the rollout.
    async fn wait_until(&mut self, deadline: Instant) -> Flow {
        loop {
            match self.next_input(Some(deadline), None).await {
                Input::Timer => return Flow::Continue,
                Input::Closing => return Flow::Stop,
                Input::Control(c) => {
                    if self.on_control(c).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Input::Event(_) | Input::EventsDone => {}
            }
        }
    }

    /// Keeps the latest reading of each gate for each wave.
    /// Records the reading of a per-node gate of wave `w` (`failures`, one
    /// per failed node; none: it passed, as `passed` says) and, when it
    /// failed, decides so in an event and the audit log.
    async fn node_gate(
        &mut self,
        gate: &str,
        w: usize,
        failures: &[String],
        passed: String,
        now_ms: i64,
    ) {
        let failed = failures.join("; ");
        self.reading(GateRecord {
            gate: gate.into(),
            wave: w as u32,
            passed: failures.is_empty(),
            value: None,
            detail: if failures.is_empty() {
                passed
            } else {
                failed.clone()
            },
            time_ms: now_ms,
        });
        if !failures.is_empty() {
            let detail = format!("wave {}: {gate} failed: {failed}", w + 1);
            self.decide("rollout.gate", detail, false).await;
        }
    }

    fn reading(&mut self, g: GateRecord) {
        match self
            .rec
            .gates
            .iter_mut()
            .find(|x| x.gate == g.gate && x.wave == g.wave)
        {
            Some(x) => *x = g,
            None => self.rec.gates.push(g),
        }
    }

    /// Wave `w` failed: halt, and put updated nodes back unless the
    /// strategy says to leave them.
    async fn halt(&mut self, w: usize, kind: &'static str, why: String) {
        self.count_halt(kind);
        self.rec.waves[w].state = WavePhase::Failed;
        self.rec.waves[w].finished_ms = cdn_common::unix_millis_now();
        self.rec.next_wave_ms = 0;
        self.rec.reason = format!("wave {} failed: {why}", w + 1);
        if self.rec.strategy.halt_only {
            self.rec.state = RolloutPhase::Halted;
            self.rec
                .reason
                .push_str("; nodes left as they are (on_failure halt)");
        } else {
            self.rec.state = RolloutPhase::RollingBack;
        }
        self.save().await;
        self.decide("rollout.halt", self.rec.reason.clone(), false)
            .await;
    }

    /// Every wave passed: the fleet's desired version moves too when the
    /// rollout was for the whole fleet.
    async fn succeed(&mut self) {
        if self.rec.fleet_wide
            && let Err(e) = self
                .rollouts
                .inner
                .configs
                .set_fleet_desired(Some(self.rec.version))
                .await
        {
            warn!(rollout = self.rec.id, error = %e, "cannot make the version the fleet's; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        if self.rec.fleet_wide {
            self.catch_up_late_nodes();
        }
        self.rec.state = RolloutPhase::Succeeded;
        self.rec.reason = String::new();
        let n = self.rec.nodes().count();
        // Decided before it is published: the push that follows it ends
        // (and is audited) once it sees the end.
        self.decide(
            "rollout.done",
            format!(
                "succeeded: version {} on {n} node(s) in {} wave(s)",
                self.rec.version,
                self.rec.waves.len()
            ),
            true,
        )
        .await;
        self.save().await;
    }

    /// Nodes that registered while a fleet-wide rollout ran were given
    /// the fleet's version of then; now that the rollout's version is the
    /// fleet's, those still on that older version get it too (as a
    /// plain push would have given it to them, without waves).
    fn catch_up_late_nodes(&self) {
        let inner = &self.rollouts.inner;
        let ours: HashSet<&str> = self.rec.nodes().map(|n| n.node.as_str()).collect();
        let Ok(known) = inner
            .registry
            .resolve_targets(&[], &crate::selector::Selector::default())
        else {
            return;
        };
        let late: Vec<String> = known
            .into_iter()
            .filter(|n| !ours.contains(n.as_str()))
            .filter(|n| inner.configs.desired(n) == self.rec.previous_fleet)
            .collect();
        if late.is_empty() {
            return;
        }
        info!(
            rollout = self.rec.id,
            nodes = late.len(),
            "nodes that registered during the rollout get its version"
        );
        let (configs, version) = (inner.configs.clone(), self.rec.version);
        let timeout = Duration::from_millis(self.rec.strategy.apply_timeout_ms.max(1));
        let (tx, mut rx) = mpsc::channel(late.len() * 2 + 16);
        let plan = PushPlan {
            targets: late,
            fleet_wide: false,
            wait: Some(timeout),
            staged: false,
        };
        inner.tasks.spawn(async move {
            let push = configs.rollback(version, plan, tx);
            let drain = async { while rx.recv().await.is_some() {} };
            let (result, ()) = tokio::join!(push, drain);
            if let Err(e) = result {
                warn!(%version, error = %e, "cannot send the fleet's version to late nodes");
            }
        });
    }

    /// Puts every node this rollout updated (or tried to) back on the
    /// version it desired before, grouped by that version. A node that
    /// had none is left on this version (there is nothing to go back to)
    /// and says so.
    async fn roll_back(&mut self) {
        let version = self.rec.version;
        let timeout = Duration::from_millis(self.rec.strategy.apply_timeout_ms.max(1));
        let mut groups: std::collections::BTreeMap<cdn_proto::Version, Vec<String>> =
            Default::default();
        let mut kept = Vec::new();
        for n in self.rec.waves.iter_mut().flat_map(|w| w.nodes.iter_mut()) {
            if !matches!(
                n.state,
                NodePhase::Applying | NodePhase::Applied | NodePhase::Failed
            ) {
                continue;
            }
            match n.previous {
                Some(p) if p != version => groups.entry(p).or_default().push(n.node.clone()),
                _ => {
                    n.reason = format!("had no earlier version; left on version {version}");
                    kept.push(n.node.clone());
                }
            }
        }
        let mut failed = Vec::new();
        for (previous, nodes) in groups {
            let (tx, mut rx) = mpsc::channel(nodes.len() * 2 + 16);
            let plan = PushPlan {
                targets: nodes.clone(),
                fleet_wide: false,
                wait: Some(timeout),
                staged: false,
            };
            let configs = self.rollouts.inner.configs.clone();
            let push = tokio::spawn(async move { configs.rollback(previous, plan, tx).await });
            let mut answered = std::collections::HashMap::new();
            while let Some(e) = rx.recv().await {
                if let Ok(ConfigPushEvent {
                    event: Some(config_push_event::Event::Node(r)),
                }) = e
                {
                    answered.insert(r.node.clone(), r);
                }
            }
            if let Ok(Err(e)) = push.await {
                warn!(rollout = self.rec.id, error = %e, "rollback to {previous} failed");
                failed.push(format!("{}: {e}", nodes.join(",")));
            }
            for n in self
                .rec
                .waves
                .iter_mut()
                .flat_map(|w| w.nodes.iter_mut())
                .filter(|n| nodes.contains(&n.node))
            {
                n.state = NodePhase::RolledBack;
                n.reason = match answered.get(&n.node) {
                    Some(r) if r.result == ApplyResult::Applied as i32 => {
                        format!("back on version {previous}")
                    }
                    Some(r) if r.result == ApplyResult::Failed as i32 => {
                        failed.push(format!("{}: {}", n.node, r.error));
                        format!(
                            "version {previous} desired again; its apply failed: {}",
                            r.error
                        )
                    }
                    Some(r) => format!(
                        "version {previous} desired again; not applied yet: {}",
                        r.error
                    ),
                    None => format!("version {previous} desired again"),
                };
            }
            self.publish();
        }
        for w in &mut self.rec.waves {
            if w.state != WavePhase::Pending {
                w.state = WavePhase::RolledBack;
            }
        }
        if self.rec.undo && self.rec.fleet_wide {
            // The fleet's version moves back only if this rollout moved it.
            let fleet = self.rollouts.inner.configs.fleet_desired();
            if fleet == Some(version)
                && let Err(e) = self
                    .rollouts
                    .inner
                    .configs
                    .set_fleet_desired(self.rec.previous_fleet)
                    .await
            {
                failed.push(format!("fleet version: {e}"));
            }
        }
        let mut extra = String::new();
        if !kept.is_empty() {
            extra.push_str(&format!(
                "; left on version {version} (no earlier version): {}",
                kept.join(",")
            ));
        }
        if !failed.is_empty() {
            extra.push_str(&format!("; could not go back: {}", failed.join("; ")));
        }
        self.rec.reason.push_str(&extra);
        self.rec.state = if self.rec.undo {
            RolloutPhase::Undone
        } else {
            RolloutPhase::RolledBack
        };
        self.decide(
            "rollout.rollback",
            format!(
                "{}: {}",
                phase_word(self.rec.state).replace('_', " "),
                self.rec.reason
            ),
            failed.is_empty(),
        )
        .await;
        self.save().await;
    }
}
