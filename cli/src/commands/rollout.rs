//! `cdnctl rollout list|status|pause|resume|abort|undo`, and the staged
//! rollout flags of `config push` and `config rollback`: a version reaches
//! its targets wave by wave (a canary, then growing waves), each wave gated
//! by health checks, halted and rolled back by the master when a gate
//! fails.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cdn_common::config::{Invalid, Validate};
use cdn_proto::v1::{
    ControlRolloutRequest, GateReading, GetRolloutRequest, ListRolloutsRequest, RolloutAction,
    RolloutInfo, RolloutNode, RolloutNodeState, RolloutOnFailure, RolloutState, RolloutStrategy,
    RolloutWave, RolloutWaveState,
};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::output::{self, Cell, Format, Human, Kind, Listing, Row, Tone, Word};
use crate::{CliError, Context};

/// Verbs of `cdnctl rollout`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Staged rollouts, newest first.
    ///
    /// Example: `cdnctl rollout list --active`
    List(ListArgs),
    /// One rollout: its waves, their nodes, the gates' last readings.
    ///
    /// With --watch, a line per change until the rollout ends; exits 0 if
    /// it succeeded, 1 if it ended otherwise (as `kubectl rollout status`).
    ///
    /// Example: `cdnctl rollout status --watch`
    Status(StatusArgs),
    /// Finish the current step, then start nothing new until resumed.
    Pause(ControlArgs),
    /// Carry on with a paused rollout.
    Resume(ControlArgs),
    /// Stop a rollout for good, leaving every node as it is.
    Abort(ControlArgs),
    /// Stop a rollout (if it runs) and put every node it updated back on
    /// the version it had before; also for a rollout that succeeded.
    Undo(ControlArgs),
}

/// Arguments of `rollout list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only rollouts that have not ended (running or paused).
    #[arg(long)]
    pub active: bool,
    /// Show at most this many rollouts.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(RolloutRow::FORMATS))]
    pub output: Format,
}

/// Arguments of `rollout status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Rollout id; the newest when left out.
    pub id: Option<u64>,
    /// Follow the rollout until it ends: a line per change.
    #[arg(short, long)]
    pub watch: bool,
    /// Output format (with --watch: one document per change for json/yaml).
    #[arg(short, long, default_value = "table", value_parser = output::formats(RolloutView::FORMATS))]
    pub output: Format,
}

/// Arguments of `rollout pause|resume|abort|undo`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Rollout id; the newest when left out.
    pub id: Option<u64>,
    /// Why, recorded in the audit log and the rollout's events.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// The staged-rollout flags of `config push` and `config rollback`; any of
/// them makes the change a staged rollout.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Staged rollout")]
pub struct StrategyArgs {
    /// Nodes in the first wave (the canary), in name order.
    #[arg(long, value_name = "N")]
    pub canary: Option<u32>,
    /// How far the rollout reaches after each following wave: percentages
    /// of the targets or node counts, cumulative (`10%,50%,100%`).
    #[arg(long, value_name = "SIZES", value_delimiter = ',')]
    pub waves: Option<Vec<String>>,
    /// Wait between a wave that passed and the next one.
    #[arg(long, value_name = "DURATION", value_parser = parse_pause)]
    pub pause: Option<Duration>,
    /// How long each wave's gates are watched after its nodes applied.
    #[arg(long, value_name = "DURATION", value_parser = cdn_common::duration::parse_flag)]
    pub bake: Option<Duration>,
    /// Failed nodes tolerated over the whole rollout; one more halts it.
    #[arg(long, value_name = "N")]
    pub max_failed: Option<u32>,
    /// A label key: one value of it per wave (`--by pop`: PoP after PoP).
    #[arg(long, value_name = "LABEL")]
    pub by: Option<String>,
    /// A Prometheus gate, `QUERY OP NUMBER` (OP: < <= > >= == !=), read
    /// while each wave bakes; `{{nodes}}` in QUERY matches the updated
    /// nodes. Repeatable.
    #[arg(long = "gate", value_name = "QUERY OP NUMBER")]
    pub gates: Vec<String>,
    /// What a failed gate does: put updated nodes back (`rollback`, the
    /// default) or leave them for a human (`halt`).
    #[arg(long, value_name = "ACTION", value_parser = ["rollback", "halt"])]
    pub on_failure: Option<String>,
    /// Time a wave's nodes have to apply before the pending ones count as
    /// failed (default: the master's).
    #[arg(long, value_name = "DURATION", value_parser = cdn_common::duration::parse_flag)]
    pub apply_timeout: Option<Duration>,
    /// Store the version and plan the waves, but wait for `cdnctl rollout
    /// resume` before the first one.
    #[arg(long)]
    pub start_paused: bool,
    /// A YAML file with a `rollout:` mapping of these settings (keys
    /// canary, waves, pause, bake, max_failed, by, gates, on_failure,
    /// apply_timeout, start_paused); flags override it.
    #[arg(long, value_name = "FILE")]
    pub strategy: Option<PathBuf>,
}

/// `--pause`: zero is allowed (no pause).
fn parse_pause(text: &str) -> Result<Duration, String> {
    if matches!(text.trim(), "0" | "0s") {
        return Ok(Duration::ZERO);
    }
    cdn_common::duration::parse_flag(text)
}

impl StrategyArgs {
    /// The strategy these flags (over the strategy file) ask for; None for
    /// a plain change to every target at once.
    pub fn to_proto(&self) -> Result<Option<RolloutStrategy>, CliError> {
        let file = match &self.strategy {
            Some(path) => Some(StrategyFile::read(path)?),
            None => None,
        };
        let flags_set = self.canary.is_some()
            || self.waves.is_some()
            || self.pause.is_some()
            || self.bake.is_some()
            || self.max_failed.is_some()
            || self.by.is_some()
            || !self.gates.is_empty()
            || self.on_failure.is_some()
            || self.apply_timeout.is_some()
            || self.start_paused;
        if file.is_none() && !flags_set {
            return Ok(None);
        }
        let f = file.unwrap_or_default();
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as u64);
        let on_failure = self
            .on_failure
            .as_deref()
            .or(f.on_failure.as_deref())
            .map(|w| RolloutOnFailure::from_word(w).unwrap_or(RolloutOnFailure::Rollback))
            .unwrap_or(RolloutOnFailure::Unspecified);
        let mut s = RolloutStrategy {
            canary: self.canary.or(f.canary).unwrap_or(0),
            waves: self
                .waves
                .clone()
                .unwrap_or_else(|| f.waves.iter().map(|w| w.0.clone()).collect()),
            pause_ms: ms(self.pause.or(f.pause)),
            bake_ms: ms(self.bake.or(f.bake)),
            max_failed: self.max_failed.or(f.max_failed).unwrap_or(0),
            by: self.by.clone().or(f.by).unwrap_or_default(),
            gates: if self.gates.is_empty() {
                f.gates
            } else {
                self.gates.clone()
            },
            on_failure: 0,
            apply_timeout_ms: ms(self.apply_timeout.or(f.apply_timeout)),
            start_paused: self.start_paused || f.start_paused.unwrap_or(false),
        };
        s.set_on_failure(on_failure);
        if s.waves.iter().any(|w| w.trim().is_empty()) {
            return Err(CliError::Usage(
                "--waves: an empty size; write e.g. --waves 10%,50%,100%".into(),
            ));
        }
        Ok(Some(s))
    }
}

/// A strategy file: `rollout:` and its settings, as master.yml's
/// `rollout:` section has them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyFile {
    rollout: Option<FileStrategy>,
}

/// The `rollout:` mapping of a strategy file; durations as text (`30s`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStrategy {
    canary: Option<u32>,
    #[serde(default)]
    waves: Vec<WaveSize>,
    #[serde(default, deserialize_with = "duration_text")]
    pause: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    bake: Option<Duration>,
    max_failed: Option<u32>,
    by: Option<String>,
    #[serde(default)]
    gates: Vec<String>,
    on_failure: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    apply_timeout: Option<Duration>,
    start_paused: Option<bool>,
}

/// A wave's size in a strategy file: `10%` or a count (`5` or `"5"`).
#[derive(Debug, Clone)]
struct WaveSize(String);

impl<'de> Deserialize<'de> for WaveSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WaveSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a wave size: a percentage (`10%`) or a node count (`5`)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WaveSize, E> {
                Ok(WaveSize(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WaveSize, E> {
                Ok(WaveSize(v.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WaveSize, E> {
                Ok(WaveSize(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A duration with its unit (`30s`, `0s`), as master.yml writes them.
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_pause(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl Validate for StrategyFile {
    fn validate(&self) -> Result<(), Invalid> {
        let Some(r) = &self.rollout else {
            return Err(Invalid::new(
                "rollout",
                "missing: a strategy file holds a `rollout:` mapping (canary, waves, pause, bake, max_failed, by, gates, on_failure, apply_timeout, start_paused)",
            ));
        };
        if let Some(w) = &r.on_failure
            && RolloutOnFailure::from_word(w).is_none()
        {
            return Err(Invalid::new(
                "rollout.on_failure",
                format!("`{w}`: write rollback or halt"),
            ));
        }
        Ok(())
    }
}

impl StrategyFile {
    /// Reads `path`; errors name file, line and key.
    fn read(path: &Path) -> Result<FileStrategy, CliError> {
        let file: StrategyFile =
            cdn_common::config::load(path).map_err(|e| CliError::Local(e.to_string()))?;
        Ok(file.rollout.unwrap_or_default())
    }
}

/// Runs a `rollout` verb.
pub async fn run(ctx: &Context, cmd: RolloutCommand) -> Result<ExitCode, CliError> {
    match cmd {
        RolloutCommand::List(a) => list(ctx, a).await,
        RolloutCommand::Status(a) if a.watch => watch(ctx, a).await,
        RolloutCommand::Status(a) => status(ctx, a).await,
        RolloutCommand::Pause(a) => control(ctx, a, RolloutAction::Pause).await,
        RolloutCommand::Resume(a) => control(ctx, a, RolloutAction::Resume).await,
        RolloutCommand::Abort(a) => control(ctx, a, RolloutAction::Abort).await,
        RolloutCommand::Undo(a) => control(ctx, a, RolloutAction::Undo).await,
    }
}

/// Said when the master predates staged rollouts.
const NOT_SUPPORTED: &str = "this master has no staged rollouts; upgrade masterd";

fn unsupported(s: tonic::Status) -> tonic::Status {
    match s.code() {
        tonic::Code::Unimplemented => tonic::Status::unimplemented(NOT_SUPPORTED),
        _ => s,
    }
}

async fn list(ctx: &Context, a: ListArgs) -> Result<ExitCode, CliError> {
    let request = ListRolloutsRequest {
        limit: a.limit,
        active: a.active,
    };
    let reply = ctx
        .call(request, |mut c, r| async move {
            c.list_rollouts(r).await.map_err(unsupported)
        })
        .await?;
    let now = output::now_ms();
    let rows: Vec<RolloutRow> = reply
        .rollouts
        .into_iter()
        .map(|r| RolloutRow::new(RolloutView::from(r), now))
        .collect();
    output::print(&rows, a.output)?;
    Ok(ExitCode::SUCCESS)
}

async fn status(ctx: &Context, a: StatusArgs) -> Result<ExitCode, CliError> {
    let request = GetRolloutRequest {
        id: a.id.unwrap_or(0),
    };
    let info = ctx
        .call(request, |mut c, r| async move {
            c.get_rollout(r).await.map_err(unsupported)
        })
        .await?;
    output::print(&RolloutView::from(info), a.output)?;
    Ok(ExitCode::SUCCESS)
}

/// `rollout status --watch`: the rollout now, then a line per change (or a
/// document per change in json/yaml) until it ends.
async fn watch(ctx: &Context, a: StatusArgs) -> Result<ExitCode, CliError> {
    let request = GetRolloutRequest {
        id: a.id.unwrap_or(0),
    };
    let mut stream = ctx
        .call(request, |mut c, r| async move {
            let mut req = tonic::Request::new(r);
            // A watcher follows the rollout as long as it runs.
            req.set_timeout(Duration::from_secs(100 * 365 * 24 * 3600));
            c.watch_rollout(req).await.map_err(unsupported)
        })
        .await?;
    let lines = matches!(a.output.kind(), Kind::Table | Kind::Wide);
    let mut printer = output::Printer::new(a.output.clone());
    let mut progress = Progress::new(Sink::Stdout);
    let mut last: Option<RolloutView> = None;
    loop {
        let next = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            m = stream.message() => m.map_err(|s| ctx.call_error(&s))?,
        };
        let Some(info) = next else { break };
        let view = RolloutView::from(info);
        if lines {
            progress.update(&view);
        } else {
            printer.print(&view)?;
        }
        last = Some(view);
    }
    let Some(last) = last else {
        return Err(CliError::ConnectionLost(
            "the master ended the watch before sending the rollout".into(),
        ));
    };
    if !last.state.ended() {
        return Err(CliError::ConnectionLost(format!(
            "stopped watching rollout {} while it was {}; it goes on on the master — `cdnctl rollout status {}`",
            last.id,
            last.state.word(),
            last.id
        )));
    }
    Ok(crate::exit::all_ok(last.state == RolloutState::Succeeded))
}

async fn control(
    ctx: &Context,
    a: ControlArgs,
    action: RolloutAction,
) -> Result<ExitCode, CliError> {
    let mut request = ControlRolloutRequest {
        id: a.id.unwrap_or(0),
        action: 0,
        reason: a.reason,
    };
    request.set_action(action);
    let info = ctx
        .call(request, |mut c, r| async move {
            c.control_rollout(r).await.map_err(unsupported)
        })
        .await?;
    let view = RolloutView::from(info);
    output::print_text(&format!(
        "rollout {} (version {}): {}",
        view.id,
        view.version,
        view.state.word()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// A rollout as cdnctl prints it (`-o json|yaml`: these fields).
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    pub id: u64,
    pub version: u64,
    #[serde(serialize_with = "output::as_word")]
    pub state: RolloutState,
    pub current_wave: u32,
    pub reason: String,
    pub author: String,
    pub rollback: bool,
    pub created: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Unix milliseconds the next wave starts while pausing between waves;
    /// 0 = not waiting.
    pub next_wave_ms: i64,
    pub strategy: StrategyView,
    pub waves: Vec<WaveView>,
    pub gates: Vec<GateView>,
}

/// The strategy of a rollout.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyView {
    pub canary: u32,
    pub waves: Vec<String>,
    pub pause_ms: u64,
    pub bake_ms: u64,
    pub max_failed: u32,
    pub by: String,
    pub gates: Vec<String>,
    pub on_failure: String,
    pub apply_timeout_ms: u64,
    pub start_paused: bool,
}

/// One wave.
#[derive(Debug, Clone, Serialize)]
pub struct WaveView {
    pub index: u32,
    #[serde(serialize_with = "output::as_word")]
    pub state: RolloutWaveState,
    pub label_value: String,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub nodes: Vec<NodeView>,
}

/// One node of a wave.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub node: String,
    #[serde(serialize_with = "output::as_word")]
    pub state: RolloutNodeState,
    pub previous_version: u64,
    pub reason: String,
}

/// The last reading of one gate.
#[derive(Debug, Clone, Serialize)]
pub struct GateView {
    pub gate: String,
    pub wave: u32,
    pub passed: bool,
    /// Null when the gate gave no value.
    pub value: Option<f64>,
    pub detail: String,
    pub time_ms: i64,
}

impl From<RolloutInfo> for RolloutView {
    fn from(r: RolloutInfo) -> Self {
        let state = r.state();
        let s = r.strategy.unwrap_or_default();
        let on_failure = s.on_failure().word().to_string();
        let wave = |w: RolloutWave| WaveView {
            state: w.state(),
            index: w.index,
            label_value: w.label_value,
            started_ms: w.started_ms,
            finished_ms: w.finished_ms,
            nodes: w.nodes.into_iter().map(NodeView::from).collect(),
        };
        let gate = |g: GateReading| GateView {
            value: g.has_value.then_some(g.value),
            gate: g.gate,
            wave: g.wave,
            passed: g.passed,
            detail: g.detail,
            time_ms: g.time_ms,
        };
        Self {
            id: r.id,
            version: r.version,
            state,
            current_wave: r.current_wave,
            reason: r.reason,
            author: r.author,
            rollback: r.rollback,
            created: output::rfc3339(r.created_ms),
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            next_wave_ms: r.next_wave_ms,
            strategy: StrategyView {
                canary: s.canary,
                waves: s.waves,
                pause_ms: s.pause_ms,
                bake_ms: s.bake_ms,
                max_failed: s.max_failed,
                by: s.by,
                gates: s.gates,
                on_failure,
                apply_timeout_ms: s.apply_timeout_ms,
                start_paused: s.start_paused,
            },
            waves: r.waves.into_iter().map(wave).collect(),
            gates: r.gates.into_iter().map(gate).collect(),
        }
    }
}

impl From<RolloutNode> for NodeView {
    fn from(n: RolloutNode) -> Self {
        Self {
            state: n.state(),
            node: n.node,
            previous_version: n.previous_version,
            reason: n.reason,
        }
    }
}

impl WaveView {
    fn count(&self, state: RolloutNodeState) -> usize {
        self.nodes.iter().filter(|n| n.state == state).count()
    }

    /// `wave 2/3 (5 nodes, pop=fra)`.
    fn title(&self, of: usize, by: &str) -> String {
        let n = self.nodes.len();
        let mut t = format!(
            "wave {}/{of} ({n} node{}",
            self.index + 1,
            if n == 1 { "" } else { "s" }
        );
        if !by.is_empty() && !self.label_value.is_empty() {
            t.push_str(&format!(", {by}={}", self.label_value));
        }
        t.push(')');
        t
    }
}

impl RolloutView {
    /// How its nodes ended up: `3 applied, 1 rolled back, 6 not reached`
    /// (only the states some node is in).
    pub fn node_counts(&self) -> String {
        let nodes = || self.waves.iter().flat_map(|w| &w.nodes);
        let count = |s: RolloutNodeState| nodes().filter(|n| n.state == s).count();
        let parts = [
            (count(RolloutNodeState::Applied), "applied"),
            (count(RolloutNodeState::Applying), "applying"),
            (count(RolloutNodeState::Failed), "failed"),
            (count(RolloutNodeState::RolledBack), "rolled back"),
            (count(RolloutNodeState::Waiting), "not reached"),
        ];
        let said: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if said.is_empty() {
            "no nodes".into()
        } else {
            said.join(", ")
        }
    }
}

impl StrategyView {
    /// `canary 1, waves 50%,100%, bake 2s, …`: what was asked, for people.
    fn summary(&self) -> String {
        let dur = |ms: u64| cdn_common::duration::short(Duration::from_millis(ms));
        let mut parts = Vec::new();
        if self.canary > 0 {
            parts.push(format!("canary {}", self.canary));
        }
        if !self.waves.is_empty() {
            parts.push(format!("waves {}", self.waves.join(",")));
        }
        if !self.by.is_empty() {
            parts.push(format!("by {}", self.by));
        }
        if self.bake_ms > 0 {
            parts.push(format!("bake {}", dur(self.bake_ms)));
        }
        if self.pause_ms > 0 {
            parts.push(format!("pause {}", dur(self.pause_ms)));
        }
        parts.push(format!("max failed {}", self.max_failed));
        parts.push(format!("on failure {}", self.on_failure));
        parts.join(", ")
    }
}

impl Word for RolloutState {
    fn word(self) -> &'static str {
        RolloutState::word(self)
    }

    fn tone(self) -> Tone {
        match self {
            Self::Succeeded => Tone::Good,
            Self::Running | Self::Unspecified => Tone::Plain,
            Self::Paused | Self::Aborted | Self::Undone => Tone::Warning,
            Self::RollingBack | Self::RolledBack | Self::Halted => Tone::Bad,
        }
    }
}

impl Word for RolloutWaveState {
    fn word(self) -> &'static str {
        RolloutWaveState::word(self)
    }

    fn tone(self) -> Tone {
        match self {
            Self::Passed => Tone::Good,
            Self::Failed | Self::RolledBack => Tone::Bad,
            Self::Applying | Self::Baking => Tone::Warning,
            Self::Pending | Self::Unspecified => Tone::Plain,
        }
    }
}

impl Word for RolloutNodeState {
    fn word(self) -> &'static str {
        RolloutNodeState::word(self)
    }

    fn tone(self) -> Tone {
        match self {
            Self::Applied => Tone::Good,
            Self::Failed | Self::RolledBack => Tone::Bad,
            Self::Applying => Tone::Warning,
            Self::Waiting | Self::Unspecified => Tone::Plain,
        }
    }
}

impl Listing for RolloutView {
    const FORMATS: &'static [Kind] = Kind::ALL;
    /// Custom columns: a row per wave.
    const ITEMS: Option<&'static str> = Some("waves");

    fn data(&self) -> impl Serialize {
        self
    }

    fn names(&self) -> Vec<String> {
        vec![format!("rollout/{}", self.id)]
    }

    /// Headline lines, the waves, the gates; `wide` lists each wave's
    /// nodes with their state.
    fn human(&self, wide: bool) -> Human {
        let now = output::now_ms();
        let mut text = format!(
            "Rollout:   {}\nVersion:   {}{}\nState:     {}\nWave:      {} of {}\nStrategy:  {}\nAuthor:    {}\nStarted:   {}\n",
            self.id,
            self.version,
            if self.rollback { " (rollback)" } else { "" },
            self.state.word(),
            (self.current_wave + 1).min(self.waves.len() as u32),
            self.waves.len(),
            self.strategy.summary(),
            output::dash(&self.author),
            if self.created_ms > 0 {
                format!("{} ago", output::age(now - self.created_ms))
            } else {
                "-".into()
            },
        );
        if self.next_wave_ms > now {
            text.push_str(&format!(
                "Next wave: in {}\n",
                output::age(self.next_wave_ms - now)
            ));
        }
        if !self.reason.is_empty() {
            text.push_str(&format!("Reason:    {}\n", self.reason));
        }
        let waves: Vec<WaveRow> = self
            .waves
            .iter()
            .map(|w| WaveRow { wave: w, now })
            .collect();
        text.push('\n');
        text.push_str(&output::table_string(&waves, wide));
        if !self.gates.is_empty() {
            text.push_str("\n\n");
            text.push_str(&output::table_string(&self.gates, wide));
        }
        Human::Text(text)
    }
}

/// One wave as a table row.
struct WaveRow<'a> {
    wave: &'a WaveView,
    now: i64,
}

impl Row for WaveRow<'_> {
    fn columns(wide: bool) -> Vec<&'static str> {
        let mut c = vec![
            "WAVE", "STATE", "NODES", "APPLIED", "FAILED", "LABEL", "STARTED",
        ];
        if wide {
            c.push("NODE STATES");
        }
        c
    }

    fn cells(&self, wide: bool) -> Vec<Cell> {
        let w = self.wave;
        let started = if w.started_ms > 0 {
            format!("{} ago", output::age(self.now - w.started_ms))
        } else {
            "-".into()
        };
        let mut cells = vec![
            Cell::new(w.index + 1),
            Cell::word(w.state),
            Cell::new(w.nodes.len()),
            Cell::new(w.count(RolloutNodeState::Applied)),
            Cell::new(w.count(RolloutNodeState::Failed)),
            Cell::or_dash(&w.label_value),
            Cell::new(started),
        ];
        if wide {
            let states: Vec<String> = w
                .nodes
                .iter()
                .map(|n| format!("{}={}", n.node, n.state.word()))
                .collect();
            cells.push(Cell::new(states.join(",")));
        }
        cells
    }

    fn name(&self) -> String {
        format!("wave/{}", self.wave.index + 1)
    }
}

impl Row for GateView {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["GATE", "WAVE", "RESULT", "VALUE", "DETAIL"]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        vec![
            Cell::new(&self.gate),
            Cell::new(self.wave + 1),
            if self.passed {
                Cell::new("pass").tone(Tone::Good)
            } else {
                Cell::new("fail").tone(Tone::Bad)
            },
            Cell::new(self.value.map_or("-".to_string(), |v| format!("{v}"))),
            Cell::or_dash(&self.detail),
        ]
    }

    fn name(&self) -> String {
        format!("gate/{}", self.gate)
    }
}

/// One rollout in `rollout list`.
#[derive(Debug, Serialize)]
pub struct RolloutRow {
    #[serde(flatten)]
    rollout: RolloutView,
    #[serde(skip)]
    now: i64,
}

impl RolloutRow {
    fn new(rollout: RolloutView, now: i64) -> Self {
        Self { rollout, now }
    }
}

impl Row for RolloutRow {
    const EMPTY: &'static str = "No rollouts yet.";

    fn columns(wide: bool) -> Vec<&'static str> {
        let mut c = vec![
            "ID", "VERSION", "STATE", "WAVE", "NODES", "AUTHOR", "AGE", "REASON",
        ];
        if wide {
            c.push("STRATEGY");
        }
        c
    }

    fn cells(&self, wide: bool) -> Vec<Cell> {
        let r = &self.rollout;
        let nodes: usize = r.waves.iter().map(|w| w.nodes.len()).sum();
        let mut cells = vec![
            Cell::new(r.id),
            Cell::new(if r.rollback {
                format!("{} (rollback)", r.version)
            } else {
                r.version.to_string()
            }),
            Cell::word(r.state),
            Cell::new(format!(
                "{}/{}",
                (r.current_wave + 1).min(r.waves.len() as u32),
                r.waves.len()
            )),
            Cell::new(nodes),
            Cell::or_dash(&r.author),
            Cell::new(if r.created_ms > 0 {
                output::age(self.now - r.created_ms)
            } else {
                "-".into()
            }),
            Cell::or_dash(&r.reason),
        ];
        if wide {
            cells.push(Cell::new(r.strategy.summary()));
        }
        cells
    }

    fn name(&self) -> String {
        format!("rollout/{}", self.rollout.id)
    }
}

/// Where progress lines go: stderr beside a push's report, stdout for
/// `rollout status --watch` (they are its output).
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// Prints what changed between two states of a rollout, one line each:
/// a wave starting, baking, passing or failing, a gate failing, the
/// rollout pausing, halting or ending. On a terminal's stderr, a bar per
/// wave instead of wave lines.
pub struct Progress {
    sink: Sink,
    seen: Option<RolloutView>,
    bars: Option<Bars>,
}

/// One progress bar per wave, drawn on stderr.
struct Bars {
    multi: indicatif::MultiProgress,
    bars: Vec<indicatif::ProgressBar>,
}

impl Progress {
    /// Progress lines to `sink`; bars when it is stderr on a terminal.
    pub fn new(sink: Sink) -> Self {
        let bars =
            (matches!(sink, Sink::Stderr) && std::io::stderr().is_terminal()).then(|| Bars {
                multi: indicatif::MultiProgress::with_draw_target(
                    indicatif::ProgressDrawTarget::stderr(),
                ),
                bars: Vec::new(),
            });
        Self {
            sink,
            seen: None,
            bars,
        }
    }

    fn say(&self, line: &str) {
        match (&self.bars, self.sink) {
            (Some(b), _) => {
                let _ = b.multi.println(line);
            }
            (None, Sink::Stderr) => output::print_diagnostic(line),
            (None, Sink::Stdout) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }

    /// Reports what changed since the last state seen.
    pub fn update(&mut self, now: &RolloutView) {
        let before = self.seen.take();
        let of = now.waves.len();
        let by = now.strategy.by.as_str();
        if before.as_ref().is_none_or(|b| b.id != now.id) {
            self.say(&format!(
                "rollout {} of version {} to {} node(s) in {of} wave(s): {}",
                now.id,
                now.version,
                now.waves.iter().map(|w| w.nodes.len()).sum::<usize>(),
                now.strategy.summary()
            ));
        }
        for w in &now.waves {
            let old = before
                .as_ref()
                .and_then(|b| b.waves.get(w.index as usize))
                .map(|o| o.state);
            if old != Some(w.state) && w.state != RolloutWaveState::Pending {
                let mut line = format!("{}: {}", w.title(of, by), w.state.word());
                if w.state == RolloutWaveState::Failed {
                    let failed: Vec<String> = w
                        .nodes
                        .iter()
                        .filter(|n| n.state == RolloutNodeState::Failed)
                        .map(|n| format!("{} ({})", n.node, output::dash(&n.reason)))
                        .collect();
                    if !failed.is_empty() {
                        line.push_str(&format!(": {}", failed.join(", ")));
                    }
                }
                if self.bars.is_none() {
                    self.say(&line);
                }
            }
        }
        for g in &now.gates {
            let was = before.as_ref().and_then(|b| {
                b.gates
                    .iter()
                    .find(|o| o.gate == g.gate && o.wave == g.wave)
                    .map(|o| o.passed)
            });
            if !g.passed && was != Some(false) {
                self.say(&format!(
                    "gate `{}` failed in wave {}: {}",
                    g.gate,
                    g.wave + 1,
                    g.detail
                ));
            }
        }
        if before.as_ref().map(|b| b.state) != Some(now.state) && now.state != RolloutState::Running
        {
            let mut line = format!("rollout {}: {}", now.id, now.state.word());
            // The reason once, when it is new (rolling back, then rolled
            // back, share theirs).
            let said = before.as_ref().is_some_and(|b| b.reason == now.reason);
            if !now.reason.is_empty() && !said {
                line.push_str(&format!(": {}", now.reason));
            }
            self.say(&line);
        }
        self.draw(now);
        self.seen = Some(now.clone());
    }

    /// Moves the bars: one per wave, its nodes answered over its size.
    fn draw(&mut self, now: &RolloutView) {
        let Some(b) = &mut self.bars else { return };
        let of = now.waves.len();
        while b.bars.len() < of {
            let w = &now.waves[b.bars.len()];
            let bar = b
                .multi
                .add(indicatif::ProgressBar::new(w.nodes.len() as u64));
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{prefix:24} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(w.title(of, &now.strategy.by));
            b.bars.push(bar);
        }
        for (w, bar) in now.waves.iter().zip(&b.bars) {
            let answered = w.count(RolloutNodeState::Applied) + w.count(RolloutNodeState::Failed);
            bar.set_position(answered as u64);
            bar.set_message(w.state.word());
        }
        if now.state.ended() {
            for bar in &b.bars {
                bar.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy_from(yaml: &str) -> Result<FileStrategy, CliError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canary.yml");
        std::fs::write(&path, yaml).unwrap();
        StrategyFile::read(&path)
    }

    #[test]
    fn a_strategy_file_reads_with_flags_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canary.yml");
        std::fs::write(
            &path,
            "rollout:\n  canary: 2\n  waves: [10%, 5, \"100%\"]\n  pause: 0s\n  bake: 30s\n  gates:\n    - 'up < 1'\n  on_failure: halt\n",
        )
        .unwrap();
        let args = StrategyArgs {
            strategy: Some(path),
            canary: Some(1),
            ..StrategyArgs::default()
        };
        let s = args.to_proto().unwrap().unwrap();
        assert_eq!(s.canary, 1, "the flag wins");
        assert_eq!(s.waves, ["10%", "5", "100%"]);
        assert_eq!(s.bake_ms, 30_000);
        assert_eq!(s.pause_ms, 0);
        assert_eq!(s.gates, ["up < 1"]);
        assert_eq!(s.on_failure(), RolloutOnFailure::Halt);
    }

    #[test]
    fn no_flag_and_no_file_is_a_plain_change() {
        assert!(StrategyArgs::default().to_proto().unwrap().is_none());
        let only_bake = StrategyArgs {
            bake: Some(Duration::from_secs(5)),
            ..StrategyArgs::default()
        };
        let s = only_bake.to_proto().unwrap().unwrap();
        assert_eq!(s.on_failure(), RolloutOnFailure::Unspecified);
        assert!(s.waves.is_empty() && s.canary == 0);
    }

    #[test]
    fn bad_strategy_files_name_line_and_key() {
        let e = strategy_from("rollout:\n  canary: 1\n  bake: soon\n").unwrap_err();
        assert!(e.to_string().contains("canary.yml:3"), "{e}");
        let e = strategy_from("rollout:\n  canry: 1\n").unwrap_err();
        assert!(e.to_string().contains("canry"), "{e}");
        let e = strategy_from("rollout:\n  on_failure: panic\n").unwrap_err();
        assert!(
            e.to_string().contains("rollout.on_failure") && e.to_string().contains(":2"),
            "{e}"
        );
        let e = strategy_from("canary: 1\n").unwrap_err();
        assert!(e.to_string().contains("canary"), "{e}");
        let e = strategy_from("# nothing\n").unwrap_err();
        assert!(e.to_string().contains("`rollout:`"), "{e}");
    }

    fn info() -> RolloutInfo {
        let node = |n: &str, s: RolloutNodeState| {
            let mut x = RolloutNode {
                node: n.into(),
                previous_version: 1,
                ..RolloutNode::default()
            };
            x.set_state(s);
            x
        };
        let wave = |i: u32, s: RolloutWaveState, nodes: Vec<RolloutNode>| {
            let mut w = RolloutWave {
                index: i,
                nodes,
                started_ms: 1,
                ..RolloutWave::default()
            };
            w.set_state(s);
            w
        };
        let mut r = RolloutInfo {
            id: 3,
            version: 7,
            current_wave: 1,
            author: "alice".into(),
            strategy: Some(RolloutStrategy {
                canary: 1,
                waves: vec!["100%".into()],
                ..RolloutStrategy::default()
            }),
            waves: vec![
                wave(
                    0,
                    RolloutWaveState::Passed,
                    vec![node("a", RolloutNodeState::Applied)],
                ),
                wave(
                    1,
                    RolloutWaveState::Failed,
                    vec![
                        node("b", RolloutNodeState::Applied),
                        node("c", RolloutNodeState::Failed),
                    ],
                ),
            ],
            gates: vec![GateReading {
                gate: "errors < 1".into(),
                wave: 1,
                passed: false,
                has_value: true,
                value: 4.0,
                detail: "4 > 1".into(),
                ..GateReading::default()
            }],
            reason: "gate `errors < 1` failed in wave 2".into(),
            ..RolloutInfo::default()
        };
        r.set_state(RolloutState::RolledBack);
        r
    }

    #[test]
    fn json_speaks_in_words_and_nulls() {
        let v = serde_json::to_value(RolloutView::from(info())).unwrap();
        assert_eq!(v["state"], "rolled_back");
        assert_eq!(v["waves"][1]["state"], "failed");
        assert_eq!(v["waves"][1]["nodes"][1]["state"], "failed");
        assert_eq!(v["gates"][0]["value"], 4.0);
        assert_eq!(v["strategy"]["on_failure"], "rollback");
        let mut no_value = info();
        no_value.gates[0].has_value = false;
        let v = serde_json::to_value(RolloutView::from(no_value)).unwrap();
        assert!(v["gates"][0]["value"].is_null());
    }

    #[test]
    fn the_human_form_has_waves_gates_and_the_reason() {
        let Human::Text(text) = RolloutView::from(info()).human(true) else {
            panic!("text expected")
        };
        assert!(text.contains("State:     rolled_back"), "{text}");
        assert!(
            text.contains("Reason:    gate `errors < 1` failed"),
            "{text}"
        );
        assert!(text.contains("b=applied,c=failed"), "{text}");
        assert!(text.contains("errors < 1"), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()), "{text:?}");
        assert_eq!(
            RolloutView::from(info()).node_counts(),
            "2 applied, 1 failed"
        );
    }
}
