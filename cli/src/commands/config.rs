//! `cdnctl config push|status|history|show|diff|rollback`: versioned desired
//! configuration for the fleet, and the push report, status and history
//! listings.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use cdn_proto::v1::{
    ApplyResult, ConfigHistoryRequest, ConfigPushEvent, ConfigPushRequest, ConfigRollbackRequest,
    ConfigStatusRequest, GetConfigVersionRequest, NodeApplyResult, NodeStatus, PushStored, Targets,
    config_push_event,
};
use clap::{Args, Subcommand};
use serde::Serialize;
use tonic::codec::CompressionEncoding;

use crate::commands::rollout::{Progress, RolloutView, Sink, StrategyArgs};
use crate::output::{self, Cell, Format, Human, Listing, Row};
use crate::{CliError, Context};

/// Uploads from this size on go zstd-compressed. A smaller file gains
/// nothing measurable on the wire, and setting up the compressor costs
/// the invocation more than sending it as it is.
const COMPRESS_UPLOAD_FROM: usize = 64 * 1024;

/// Largest config file cdnctl sends (the master enforces the same).
pub const MAX_CONFIG_BYTES: u64 = cdn_proto::limits::MAX_CONFIG_BYTES as u64;

/// Verbs of `cdnctl config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Store FILE as a new version and apply it on the target nodes.
    ///
    /// The default target is every node, including nodes that register
    /// later. The master checks the YAML (errors name line and column) and
    /// sends it on; FILE goes up zstd-compressed from 64 KiB on. Waits (up
    /// to --timeout, default 30s) until every online target answered; exits
    /// 0 only if every target applied it. If the connection breaks after
    /// FILE was sent, cdnctl reconnects (for up to --timeout) and sends the push
    /// again under the same idempotency key: a version the master stored
    /// already is reported, never stored twice.
    Push(PushArgs),
    /// Make an earlier version desired again and apply it (same progress).
    Rollback(RollbackArgs),
    /// Per node: desired and applied version, in sync or not, drift, last error.
    Status(StatusArgs),
    /// Stored versions, newest first.
    History(HistoryArgs),
    /// Print the content of a version.
    Show(ShowArgs),
    /// Unified diff between two versions.
    Diff(DiffArgs),
}

/// Which nodes a command is for.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Only this node; repeatable.
    #[arg(short = 'n', long = "node", value_name = "NODE", add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes))]
    pub nodes: Vec<String>,
    /// Only nodes whose labels match, in kubectl's grammar: `k=v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; commas and repeated flags
    /// mean all of them.
    #[arg(short = 'l', long, value_name = "SELECTOR", value_parser = crate::selector::parse)]
    pub selector: Vec<Vec<cdn_proto::v1::LabelRequirement>>,
    /// Every node (the default when no --node or --selector is given).
    #[arg(long, conflicts_with_all = ["nodes", "selector"])]
    pub all: bool,
}

impl TargetArgs {
    fn to_proto(&self) -> Targets {
        let selector = crate::selector::merge(&self.selector);
        Targets {
            nodes: self.nodes.clone(),
            selector: selector.legacy,
            label_selector: selector.requirements,
        }
    }
}

/// How a push or rollback reports.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Return once the master stored the version; do not wait for nodes
    /// (a staged rollout goes on on the master: `cdnctl rollout status`).
    #[arg(long, alias = "detach", overrides_with = "wait")]
    pub no_wait: bool,
    /// Wait until every online target answered (default; bounded by --timeout).
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// How long to wait for the nodes' answers; later ones are `pending`.
    /// A staged rollout is followed until it ends, whatever this says.
    #[arg(long, default_value = "30s", value_parser = cdn_common::duration::parse_flag, value_name = "DURATION")]
    pub timeout: std::time::Duration,
    /// Output format of the final report.
    #[arg(short, long, default_value = "table", value_parser = output::formats(PushReport::FORMATS))]
    pub output: Format,
}

/// Arguments of `config push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// YAML file to push.
    pub file: PathBuf,
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Note stored with the version.
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// Check the YAML here and on the master, and show what would happen;
    /// store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Push a file with no YAML content (empty, or only comments): every
    /// target's config file becomes empty. Refused without this flag.
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub strategy: StrategyArgs,
}

/// Arguments of `config rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Version to make desired again.
    pub version: u64,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub strategy: StrategyArgs,
}

/// Arguments of `config status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(NodeConfigRow::FORMATS))]
    pub output: Format,
}

/// Arguments of `config history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most this many versions (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(VersionRow::FORMATS))]
    pub output: Format,
}

/// Arguments of `config show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Version number.
    pub version: u64,
}

/// Arguments of `config diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Older version.
    pub from: u64,
    /// Newer version.
    pub to: u64,
}

/// Runs a `config` verb.
pub async fn run(ctx: &Context, cmd: ConfigCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ConfigCommand::Push(a) => push(ctx, a).await,
        ConfigCommand::Rollback(a) => rollback(ctx, a).await,
        ConfigCommand::Status(a) => status(ctx, a).await,
        ConfigCommand::History(a) => history(ctx, a).await,
        ConfigCommand::Show(a) => show(ctx, a).await,
        ConfigCommand::Diff(a) => diff(ctx, a).await,
    }
}

/// Reads FILE, refusing one larger than [`MAX_CONFIG_BYTES`].
fn read_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        CliError::Local(format!(
            "{}: cannot read: {}",
            path.display(),
            crate::error::describe_io(&e)
        ))
    })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(CliError::Local(format!(
            "{}: {} bytes, at most {MAX_CONFIG_BYTES} allowed",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| {
        CliError::Local(format!(
            "{}: cannot read: {}",
            path.display(),
            crate::error::describe_io(&e)
        ))
    })
}

/// Whether `content` holds nothing but blanks, comments and document
/// markers.
fn no_yaml_content(content: &[u8]) -> bool {
    String::from_utf8_lossy(content).lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Checks `content` is YAML; the error names file, line and column.
fn check_yaml(path: &std::path::Path, content: &[u8]) -> Result<(), CliError> {
    let text = std::str::from_utf8(content)
        .map_err(|e| CliError::Local(format!("{}: not UTF-8 text: {e}", path.display())))?;
    cdn_common::config::check_yaml_syntax(text).map_err(|e| {
        let at = match (e.line, e.column) {
            (Some(l), Some(c)) => format!(":{l}:{c}"),
            _ => String::new(),
        };
        CliError::Local(format!(
            "{}{at}: invalid YAML: {}",
            path.display(),
            e.message
        ))
    })
}

/// How long a push or rollback may take: the wait plus the time to store;
/// none for a staged rollout that is followed to its end.
fn deadline(ctx: &Context, w: &WaitArgs, staged: bool) -> Option<std::time::Duration> {
    (!staged || w.no_wait).then(|| ctx.timeout + w.timeout)
}

fn wait_ms(w: &WaitArgs) -> u64 {
    if w.no_wait {
        0
    } else {
        w.timeout.as_millis() as u64
    }
}

async fn push(ctx: &Context, a: PushArgs) -> Result<ExitCode, CliError> {
    let strategy = a.strategy.to_proto()?;
    let content = bytes::Bytes::from(read_file(&a.file)?);
    if !a.allow_empty && no_yaml_content(&content) {
        return Err(CliError::Local(format!(
            "{}: has no YAML content (empty or only comments); pushing it would empty the config file of every target — pass --allow-empty if that is what you want",
            a.file.display()
        )));
    }
    // The master validates what it stores; a dry run checks here too,
    // while the connection is being made.
    if a.dry_run {
        let checking = {
            let (path, content) = (a.file.clone(), content.clone());
            tokio::task::spawn_blocking(move || check_yaml(&path, &content))
        };
        let connected = ctx.connect().await;
        checking
            .await
            .map_err(|e| CliError::Local(format!("YAML check failed: {e}")))??;
        connected?;
    } else {
        // A master that cannot be reached got nothing: no resend below.
        ctx.connect().await?;
    }
    let request = ConfigPushRequest {
        content,
        targets: Some(a.targets.to_proto()),
        message: a.message,
        author: ctx.author(),
        dry_run: a.dry_run,
        wait_ms: wait_ms(&a.wait),
        idempotency_key: if a.dry_run {
            String::new()
        } else {
            idempotency_key()
        },
        strategy,
    };
    let request_staged = request.strategy.is_some();
    let limit = deadline(ctx, &a.wait, request_staged);
    let compress = request.content.len() >= COMPRESS_UPLOAD_FROM;
    let send = |request: ConfigPushRequest| {
        ctx.call(request, move |c, r| async move {
            let mut req = tonic::Request::new(r);
            if let Some(limit) = limit {
                req.set_timeout(limit);
            }
            let mut c = if compress {
                c.send_compressed(CompressionEncoding::Zstd)
            } else {
                c
            };
            c.push_config(req).await
        })
    };
    let file = a.file.display().to_string();
    let refused = |e: CliError| match e {
        // The master's verdict on the content names the file it came from.
        CliError::Master(m) if m.starts_with(REFUSED_CONTENT) => CliError::Master(format!(
            "{file}: refused by the master: {}",
            &m[REFUSED_CONTENT.len() - "config ".len()..]
        )),
        other => other,
    };
    // A dry run stores nothing: nothing to recover when it breaks.
    if a.dry_run {
        let stream = send(request).await.map_err(|e| match e {
            CliError::ConnectionLost(_) => change_lost(Change::Push, None),
            other => refused(other),
        })?;
        return follow(
            ctx,
            stream,
            &a.wait,
            Change::Push,
            Attempt::First,
            &mut None,
            request_staged,
        )
        .await
        .map_err(refused);
    }
    // Broken after the request went out: the master may have stored it.
    // Sent again under the same key, the master answers for what it
    // stored instead of storing it twice.
    let resend_until = tokio::time::Instant::now() + a.wait.timeout;
    let mut attempt = Attempt::First;
    let mut delay = RESEND_FIRST_DELAY;
    // The version a broken progress stream said was stored, if one did.
    let mut stored = None;
    loop {
        let lost = match send(request.clone()).await {
            Ok(stream) => {
                match follow(
                    ctx,
                    stream,
                    &a.wait,
                    Change::Push,
                    attempt,
                    &mut stored,
                    request_staged,
                )
                .await
                {
                    Err(CliError::ConnectionLost(why)) => why,
                    done => return done.map_err(refused),
                }
            }
            // The connection broke, or the master is not back yet: sending
            // again is safe under the key, while there is time.
            Err(CliError::ConnectionLost(why)) => why,
            Err(e @ (CliError::Unreachable { .. } | CliError::NoMaster(_))) => e.to_string(),
            Err(e) => return Err(refused(e)),
        };
        if tokio::time::Instant::now() + delay > resend_until {
            return Err(push_unresolved(a.wait.timeout, &lost, stored));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RESEND_MAX_DELAY);
        ctx.drop_connection();
        attempt = Attempt::Resent;
    }
}

/// How the master's refusal of pushed content begins (`MasterError::Invalid`
/// on a config): cdnctl puts the file's name in front.
const REFUSED_CONTENT: &str = "invalid request: config ";

/// First pause before a push is sent again after a broken connection.
const RESEND_FIRST_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest pause between two attempts to send a push again.
const RESEND_MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a push's progress stream answers the request as first sent, or
/// the same request sent again after the connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    First,
    Resent,
}

/// A fresh key for one push: 128 random bits, hex.
fn idempotency_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The error when a push could not be sent again within `window` after
/// its connection broke (`last` says why the last attempt failed);
/// `stored` is the version the master said it stored, if it did.
fn push_unresolved(window: std::time::Duration, last: &str, stored: Option<u64>) -> CliError {
    let lost = format!(
        "lost the connection to the master during the push and could not reach it again within {} ({last})",
        cdn_common::duration::short(window)
    );
    CliError::ConnectionLost(match stored {
        None => format!("{lost}; the push may have been stored: `cdnctl config history` shows it"),
        Some(v) => format!(
            "{lost}; version {v} was stored, but not every node's answer was reported — check `cdnctl config status`"
        ),
    })
}

async fn rollback(ctx: &Context, a: RollbackArgs) -> Result<ExitCode, CliError> {
    let request = ConfigRollbackRequest {
        version: a.version,
        targets: Some(a.targets.to_proto()),
        author: ctx.author(),
        wait_ms: wait_ms(&a.wait),
        strategy: a.strategy.to_proto()?,
    };
    let staged = request.strategy.is_some();
    let limit = deadline(ctx, &a.wait, staged);
    let stream = ctx
        .call(request, move |mut c, r| async move {
            let mut req = tonic::Request::new(r);
            if let Some(limit) = limit {
                req.set_timeout(limit);
            }
            c.rollback_config(req).await
        })
        .await
        // Broken while the request went out: the master may have stored
        // it before it went away.
        .map_err(|e| match e {
            CliError::ConnectionLost(_) => change_lost(Change::Rollback, None),
            other => other,
        })?;
    follow(
        ctx,
        stream,
        &a.wait,
        Change::Rollback,
        Attempt::First,
        &mut None,
        staged,
    )
    .await
}

/// What a progress stream reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Push,
    Rollback,
}

/// The error when the progress stream of `change` broke before its final
/// result; `stored` is the version the master said it stored, if it did.
fn change_lost(change: Change, stored: Option<u64>) -> CliError {
    let (noun, again) = match change {
        Change::Push => ("push", "push again"),
        Change::Rollback => ("rollback", "roll back again"),
    };
    let lost = format!(
        "lost the connection to the master during the {noun} (master stopped or failed over)"
    );
    CliError::ConnectionLost(match stored {
        None => format!(
            "{lost}; the version may or may not have been stored — check `cdnctl config history` and {again}"
        ),
        Some(v) => format!(
            "{lost}; version {v} was stored, but not every node's answer was reported — check `cdnctl config status`"
        ),
    })
}

/// The final report of a push or rollback (`-o json|yaml`).
#[derive(Debug, Default, Serialize)]
struct PushReport {
    version: u64,
    hash: String,
    size: u64,
    wire_bytes: u64,
    unchanged: bool,
    dry_run: bool,
    targets: Vec<String>,
    applied: u32,
    failed: u32,
    pending: u32,
    results: Vec<NodeResultRow>,
    /// The connection broke after the push was sent, and this report is
    /// the master's answer to the same push sent again.
    resent: bool,
    /// The master had stored this version from the first attempt (found
    /// by the push's idempotency key); nothing was stored twice.
    replayed: bool,
    /// `--no-wait`: the master stored the version; nodes were not awaited.
    #[serde(skip)]
    no_wait: bool,
    /// A staged rollout's last state (its final one unless `--no-wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<RolloutView>,
}

/// One target's outcome in a push or rollback report.
#[derive(Debug, Serialize)]
struct NodeResultRow {
    node: String,
    #[serde(serialize_with = "output::as_word")]
    result: ApplyResult,
    version: u64,
    duration_ms: f64,
    error: String,
}

impl From<NodeApplyResult> for NodeResultRow {
    fn from(n: NodeApplyResult) -> Self {
        Self {
            result: n.result(),
            node: n.node,
            version: n.version,
            duration_ms: n.duration_us as f64 / 1000.0,
            error: n.error,
        }
    }
}

/// Reads the progress stream, drawing a bar on a terminal, then prints the
/// report. Exit 0 only if every target applied the version. A stream that
/// breaks before its final result is a [`CliError::ConnectionLost`] saying
/// whether the version was stored.
async fn follow(
    ctx: &Context,
    mut stream: tonic::Streaming<ConfigPushEvent>,
    w: &WaitArgs,
    change: Change,
    attempt: Attempt,
    stored_seen: &mut Option<u64>,
    staged: bool,
) -> Result<ExitCode, CliError> {
    let mut progress = staged.then(|| Progress::new(Sink::Stderr));
    let mut report = PushReport {
        no_wait: w.no_wait,
        resent: attempt == Attempt::Resent,
        ..PushReport::default()
    };
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut stored = None;
    let mut finished = false;
    let mut broken = None;
    loop {
        let ev = match stream.message().await {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(s) => {
                broken = Some(s);
                break;
            }
        };
        match ev.event {
            Some(config_push_event::Event::Stored(s)) => {
                let PushStored {
                    version,
                    hash,
                    size,
                    targets,
                    unchanged,
                    dry_run,
                    wire_bytes,
                    replayed,
                } = s;
                report.replayed = replayed;
                report.version = version;
                report.hash = hash;
                report.size = size;
                report.targets = targets;
                report.unchanged = unchanged;
                report.dry_run = dry_run;
                report.wire_bytes = wire_bytes;
                stored = (!dry_run).then_some(version);
                if stored.is_some() {
                    *stored_seen = stored;
                }
                // A staged rollout's id comes with its first state.
                if w.no_wait && !(staged && stored.is_some()) {
                    finished = true;
                    break;
                }
                if !staged && !unchanged && !dry_run && std::io::stderr().is_terminal() {
                    bar = Some(progress_bar(report.targets.len() as u64));
                }
            }
            Some(config_push_event::Event::Node(n)) => {
                match n.result() {
                    ApplyResult::Applied => report.applied += 1,
                    ApplyResult::Failed => report.failed += 1,
                    ApplyResult::Pending | ApplyResult::Unspecified => report.pending += 1,
                }
                if let Some(b) = &bar {
                    b.inc(1);
                    b.set_message(format!(
                        "applied {} · failed {} · pending {}",
                        report.applied,
                        report.failed,
                        report.targets.len() as u32 - report.applied - report.failed
                    ));
                }
                report.results.push(n.into());
            }
            Some(config_push_event::Event::Done(d)) => {
                report.applied = d.applied;
                report.failed = d.failed;
                report.pending = d.pending;
                finished = true;
                break;
            }
            Some(config_push_event::Event::Rollout(info)) => {
                let view = RolloutView::from(info);
                if let Some(p) = &mut progress
                    && !w.no_wait
                {
                    p.update(&view);
                }
                report.rollout = Some(view);
                if w.no_wait {
                    finished = true;
                    break;
                }
            }
            None => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match broken {
        Some(s) if !crate::error::connection_lost(&s) => return Err(ctx.call_error(&s)),
        // Broken, or ended without the final result.
        _ if !finished => return Err(change_lost(change, stored)),
        _ => {}
    }
    report.results.sort_by(|a, b| a.node.cmp(&b.node));
    output::print(&report, w.output.clone())?;
    let ok = match &report.rollout {
        Some(r) if !w.no_wait => r.state == cdn_proto::v1::RolloutState::Succeeded,
        _ => {
            report.unchanged
                || report.dry_run
                || w.no_wait
                || (report.failed == 0 && report.pending == 0)
        }
    };
    Ok(crate::exit::all_ok(ok))
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

impl Listing for PushReport {
    /// Custom columns: a row per node result.
    const ITEMS: Option<&'static str> = Some("results");

    fn data(&self) -> impl Serialize {
        self
    }

    fn names(&self) -> Vec<String> {
        vec![format!("configversion/{}", self.version)]
    }

    /// The per-node table; nothing when no node was awaited.
    fn human(&self, wide: bool) -> Human {
        if self.results.is_empty() {
            Human::Nothing
        } else {
            Human::Table(output::Table::of(&self.results, wide))
        }
    }

    /// The headline: what was stored and how the targets answered.
    fn note(&self) -> Option<String> {
        let r = self;
        let n = r.targets.len();
        let headline = self.headline(n);
        Some(match (r.resent, r.replayed) {
            (false, _) => headline,
            (true, true) => format!(
                "{headline}\n(the connection to the master broke after the push was sent; this answer came after a reconnect: the master had stored version {} from the first attempt, nothing was stored twice)",
                r.version
            ),
            (true, false) => format!(
                "{headline}\n(the connection to the master broke before the push was stored; it was sent again after a reconnect)"
            ),
        })
    }
}

impl PushReport {
    /// The first line of the report: what was stored and how the targets
    /// answered.
    fn headline(&self, n: usize) -> String {
        let r = self;
        if let Some(ro) = &r.rollout {
            return if r.no_wait {
                format!(
                    "stored version {} ({}, {} bytes) for {n} target(s); rollout {} is {} in {} wave(s) — follow it with `cdnctl rollout status {} --watch`",
                    r.version,
                    short_hash(&r.hash),
                    r.size,
                    ro.id,
                    ro.state.word(),
                    ro.waves.len(),
                    ro.id
                )
            } else {
                let mut line = format!(
                    "version {} ({}): rollout {} {} after wave {} of {}: {} of {n}",
                    r.version,
                    short_hash(&r.hash),
                    ro.id,
                    ro.state.word(),
                    (ro.current_wave + 1).min(ro.waves.len() as u32),
                    ro.waves.len(),
                    ro.node_counts()
                );
                if !ro.reason.is_empty() {
                    line.push_str(&format!("\nreason: {}", ro.reason));
                }
                line
            };
        }
        if r.unchanged {
            format!(
                "unchanged: version {} ({}) is already desired by all {n} target(s); nothing stored",
                r.version,
                short_hash(&r.hash)
            )
        } else if r.dry_run {
            format!(
                "dry run: would store version {} ({}, {} bytes, {} on the wire) for {n} target(s): {}",
                r.version,
                short_hash(&r.hash),
                r.size,
                r.wire_bytes,
                r.targets.join(", ")
            )
        } else if r.no_wait {
            format!(
                "stored version {} ({}, {} bytes) for {n} target(s); not waiting for nodes",
                r.version,
                short_hash(&r.hash),
                r.size
            )
        } else if n == 0 {
            format!(
                "stored version {} ({}); no nodes yet: nodes get it when they register",
                r.version,
                short_hash(&r.hash)
            )
        } else {
            format!(
                "version {} ({}, {} bytes): {} applied, {} failed, {} pending of {n}",
                r.version,
                short_hash(&r.hash),
                r.size,
                r.applied,
                r.failed,
                r.pending
            )
        }
    }
}

impl Row for NodeResultRow {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NODE", "RESULT", "VERSION", "DURATION", "ERROR"]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        vec![
            Cell::new(&self.node),
            Cell::word(self.result),
            Cell::new(self.version),
            Cell::new(format!("{:.1}ms", self.duration_ms)),
            Cell::or_dash(&self.error),
        ]
    }

    fn name(&self) -> String {
        format!("node/{}", self.node)
    }
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(12)]
}

async fn status(ctx: &Context, a: StatusArgs) -> Result<ExitCode, CliError> {
    let request = ConfigStatusRequest {
        targets: Some(a.targets.to_proto()),
    };
    let nodes = ctx
        .call(request, |mut c, r| async move { c.config_status(r).await })
        .await?
        .nodes;
    let rows: Vec<NodeConfigRow> = nodes
        .into_iter()
        .map(|n| NodeConfigRow {
            node_status: n.node_status(),
            node: n.node,
            desired_version: n.desired_version,
            applied_version: n.applied_version,
            in_sync: n.in_sync,
            drift: n.drift,
            last_error: n.last_error,
        })
        .collect();
    output::print(&rows, a.output)?;
    Ok(ExitCode::SUCCESS)
}

/// One node of `config status`.
#[derive(Serialize)]
struct NodeConfigRow {
    node: String,
    #[serde(serialize_with = "output::as_word")]
    node_status: NodeStatus,
    desired_version: u64,
    applied_version: u64,
    in_sync: bool,
    drift: bool,
    last_error: String,
}

impl Row for NodeConfigRow {
    const EMPTY: &'static str = "No nodes found.";

    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "NODE",
            "STATUS",
            "DESIRED",
            "APPLIED",
            "IN SYNC",
            "DRIFT",
            "LAST ERROR",
        ]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        let version = |n: u64| {
            if n == 0 {
                "-".to_string()
            } else {
                n.to_string()
            }
        };
        vec![
            Cell::new(&self.node),
            Cell::word(self.node_status),
            Cell::new(version(self.desired_version)),
            Cell::new(version(self.applied_version)),
            Cell::new(if self.in_sync { "yes" } else { "no" }),
            Cell::new(if self.drift { "changed on disk" } else { "-" }),
            Cell::or_dash(&self.last_error),
        ]
    }

    fn name(&self) -> String {
        format!("node/{}", self.node)
    }
}

async fn history(ctx: &Context, a: HistoryArgs) -> Result<ExitCode, CliError> {
    let request = ConfigHistoryRequest { limit: a.limit };
    let versions = ctx
        .call(request, |mut c, r| async move { c.config_history(r).await })
        .await?
        .versions;
    let rows: Vec<VersionRow> = versions
        .into_iter()
        .map(|v| VersionRow {
            version: v.version,
            hash: v.hash,
            size: v.size,
            author: v.author,
            created: output::rfc3339(v.created_ms),
            message: v.message,
            targets: v.targets,
            created_ms: v.created_ms,
        })
        .collect();
    output::print(&rows, a.output)?;
    Ok(ExitCode::SUCCESS)
}

/// One stored version in `config history`.
#[derive(Serialize)]
struct VersionRow {
    version: u64,
    hash: String,
    size: u64,
    author: String,
    created: Option<String>,
    message: String,
    targets: Vec<String>,
    /// Unix milliseconds, as the README lists it.
    created_ms: i64,
}

impl Row for VersionRow {
    const EMPTY: &'static str = "No config versions yet.";

    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "VERSION", "HASH", "SIZE", "AUTHOR", "AGE", "TARGETS", "MESSAGE",
        ]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        let targets = match self.targets.len() {
            0..=3 => self.targets.join(","),
            n => format!("{n} nodes"),
        };
        vec![
            Cell::new(self.version),
            Cell::new(short_hash(&self.hash)),
            Cell::new(output::bytes(self.size)),
            Cell::new(&self.author),
            Cell::new(output::age(output::now_ms() - self.created_ms)),
            Cell::or_dash(&targets),
            Cell::or_dash(&self.message),
        ]
    }

    fn name(&self) -> String {
        format!("configversion/{}", self.version)
    }
}

async fn fetch(ctx: &Context, version: u64) -> Result<String, CliError> {
    let request = GetConfigVersionRequest { version };
    let v = ctx
        .call(
            request,
            |mut c, r| async move { c.get_config_version(r).await },
        )
        .await?;
    Ok(String::from_utf8_lossy(&v.content).into_owned())
}

async fn show(ctx: &Context, a: ShowArgs) -> Result<ExitCode, CliError> {
    let text = fetch(ctx, a.version).await?;
    output::print_raw(&text)?;
    Ok(ExitCode::SUCCESS)
}

async fn diff(ctx: &Context, a: DiffArgs) -> Result<ExitCode, CliError> {
    let old = fetch(ctx, a.from).await?;
    let new = fetch(ctx, a.to).await?;
    let d = similar::TextDiff::from_lines(&old, &new);
    let text = d
        .unified_diff()
        .header(&format!("version {}", a.from), &format!("version {}", a.to))
        .to_string();
    if !text.is_empty() {
        output::print_raw(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
