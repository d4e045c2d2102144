//! `cdnctl exec`: run a command on one node like `ssh host cmd`, or on many
//! with prefixed output and a summary table; `cdnctl exec history` lists
//! audited sessions.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cdn_proto::v1::{
    ExecExit, ExecHistoryRequest, ExecRequest, ExecResponse, ExecStart, ListNodesRequest,
    WindowSize, exec_request, exec_response,
};
use clap::{Args, Subcommand};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::output::{self, Cell, Format, Row};
use crate::stdio::{Output, Sink};
use crate::{CliError, Context, exit};

/// Bytes of local stdin sent per message: as much as a message may carry.
const STDIN_CHUNK_BYTES: usize = cdn_proto::limits::EXEC_CHUNK_BYTES;
/// Messages queued towards the master per session.
const SEND_DEPTH: usize = 16;
/// Longest unterminated line a fan-out holds before printing it anyway.
const MAX_PARTIAL_LINE_BYTES: usize = 64 * 1024;
/// How long after --timeout cdnctl gives up by itself if the node's exit
/// report has not arrived.
const LOCAL_TIMEOUT_GRACE: Duration = Duration::from_secs(3);
/// Default number of nodes run at once in a fan-out.
const DEFAULT_PARALLEL: usize = 64;

const AFTER_HELP: &str = "\
Examples:
  cdnctl exec agent-1 -- uptime
  cdnctl exec agent-1 -- sh -c 'journalctl -u nginx | tail -5'
  tar c dir | cdnctl exec agent-1 -- tar x -C /srv     (stdin is forwarded when it is not a terminal)
  cdnctl exec --all -- systemctl is-active nginx
  cdnctl exec --selector pop=fra --parallel 10 -- nginx -t

Exit code: the remote command's (128 + N when killed by signal N, 124 after
--timeout, 127 command not found, 126 not executable); 255 when the command
could not be run (unknown or offline node, refused by the agent's policy)
or the connection to the master was lost during the session (then the
command's outcome on the node is unknown).
A fan-out exits 0 only if every node's command exited 0, else 1 (255 when
the connection to the master was lost: each lost node's row says so).
Ctrl-C sends SIGINT to the remote process group; a second Ctrl-C sends SIGKILL.";

/// Arguments of `cdnctl exec`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct ExecArgs {
    #[command(subcommand)]
    pub sub: Option<ExecSub>,
    /// Run on this node (repeatable; fan-out with prefixed output).
    #[arg(short = 'n', long = "node", value_name = "NODE", add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes))]
    pub nodes: Vec<String>,
    /// Run on nodes whose labels match, in kubectl's grammar: `k=v`,
    /// `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; commas and
    /// repeated flags mean all of them.
    #[arg(short = 'l', long, value_name = "SELECTOR", value_parser = crate::selector::parse)]
    pub selector: Vec<Vec<cdn_proto::v1::LabelRequirement>>,
    /// Run on every node.
    #[arg(long)]
    pub all: bool,
    /// Forward local stdin (default: when stdin is not a terminal; single node only).
    #[arg(short = 'i', long = "stdin")]
    pub stdin: bool,
    /// Allocate a terminal on the node (as ssh -t): the local terminal goes
    /// raw, window size changes are forwarded; stdout and stderr merge.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable for the command; repeatable.
    #[arg(short = 'e', long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Working directory on the node.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Kill the remote command after this long and exit 124.
    #[arg(long, value_parser = cdn_common::duration::parse_flag, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Nodes run at once in a fan-out.
    #[arg(long, default_value_t = DEFAULT_PARALLEL, value_name = "K")]
    pub parallel: usize,
    /// NODE, then the command and its arguments (after `--` if they start with `-`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "NODE] [--] [CMD",
        add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes)
    )]
    pub command: Vec<String>,
}

/// Subcommands of `cdnctl exec`.
#[derive(Debug, Subcommand)]
pub enum ExecSub {
    /// Sessions run through the master, newest first (the audit log), with
    /// the size of their recordings; with --grep, the recorded sessions
    /// whose output contains a text.
    History(HistoryArgs),
    /// Play a recorded session again, or export it (admin; operators their
    /// own sessions when the master allows it).
    #[command(after_help = REPLAY_HELP)]
    Replay(ReplayArgs),
}

const REPLAY_HELP: &str = "\
Examples:
  cdnctl exec replay 42                       (the session's only recording)
  cdnctl exec replay 42 --node agent-3 --speed 2 --idle-limit 1s
  cdnctl exec replay 42 --node agent-3 -o asciicast > s.cast && asciinema play s.cast
  cdnctl exec replay 42 -o json | sha256sum   (the file as stored: its sha256 is in exec history -o json)

On a terminal the session plays in real time (stdout to stdout, stderr to
stderr); to a pipe the bytes come at once. Every replay is in the audit log.";

/// What `exec replay` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// The session's output bytes, as the operator saw them.
    Raw,
    /// asciicast v2, for asciinema (stdout and stderr both as output).
    Asciicast,
    /// The recording as stored (JSON lines), byte for byte.
    Json,
}

/// Arguments of `cdnctl exec replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The exec id (`cdnctl exec history`); a fan-out's recordings are all
    /// under its first session's id.
    #[arg(value_name = "ID")]
    pub id: u64,
    /// The node whose recording to play (needed when the id has several).
    #[arg(short = 'n', long, value_name = "NODE", add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes))]
    pub node: Option<String>,
    /// Play faster (2 = twice as fast) or slower (0.5).
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = parse_speed)]
    pub speed: f64,
    /// Cap every pause at this long.
    #[arg(long, value_parser = cdn_common::duration::parse_flag, value_name = "DURATION")]
    pub idle_limit: Option<Duration>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "raw")]
    pub output: ReplayFormat,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// Arguments of `cdnctl exec history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most this many sessions (0 = all).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only recorded sessions whose output (stdout or stderr) contains
    /// TEXT, one row per node (searched on the master; admin).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(SessionRow::FORMATS))]
    pub output: Format,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty() || k.contains(char::is_whitespace) {
        return Err(format!("`{k}` is not a variable name"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Runs `cdnctl exec`. Every failure to run the command exits 255 (as
/// ssh does), so it cannot be mistaken for the remote command's exit code.
pub async fn run(ctx: &Context, mut a: ExecArgs) -> Result<ExitCode, CliError> {
    match a.sub.take() {
        Some(ExecSub::History(h)) => return history(ctx, h).await,
        Some(ExecSub::Replay(r)) => return replay(ctx, r).await,
        None => {}
    }
    execute(ctx, a).await.map_err(|e| match e {
        CliError::Usage(_) | CliError::BrokenPipe | CliError::Exec(_) => e,
        other => CliError::Exec(other.to_string()),
    })
}

async fn execute(ctx: &Context, mut a: ExecArgs) -> Result<ExitCode, CliError> {
    let fan_out = a.all || !a.selector.is_empty() || !a.nodes.is_empty();
    if !fan_out {
        if a.command.is_empty() {
            return Err(usage("name a node: cdnctl exec NODE -- CMD [ARGS...]"));
        }
        let node = a.command.remove(0);
        a.nodes.push(node);
    }
    if a.command.first().is_some_and(|c| c == "--") {
        a.command.remove(0);
    }
    if a.command.is_empty() {
        return Err(usage("no command given: cdnctl exec NODE -- CMD [ARGS...]"));
    }
    if a.tty && fan_out && a.nodes.len() != 1 {
        return Err(usage("-t works with one node only"));
    }
    ctx.connect().await?;
    if fan_out && !(a.nodes.len() == 1 && !a.all && a.selector.is_empty()) {
        return fan_out_run(ctx, a).await;
    }
    let forward_stdin = a.tty || a.stdin || !std::io::stdin().is_terminal();
    let mut start = start_of(ctx, &a, &a.nodes[0], forward_stdin);
    // A local terminal goes raw for the session (as ssh -t), and restores
    // itself when the guard drops, whatever happens.
    let _raw = if a.tty && std::io::stdin().is_terminal() {
        if let Ok((cols, rows)) = crossterm::terminal::size() {
            start.size = Some(WindowSize {
                rows: u32::from(rows),
                cols: u32::from(cols),
            });
        }
        Some(RawMode::enable()?)
    } else {
        None
    };
    single(ctx, start, forward_stdin, a.tty).await
}

fn usage(msg: &str) -> CliError {
    CliError::Usage(msg.to_string())
}

fn start_of(ctx: &Context, a: &ExecArgs, node: &str, stdin: bool) -> ExecStart {
    ExecStart {
        node: node.to_string(),
        argv: a.command.clone(),
        env: a.env.iter().cloned().collect(),
        cwd: a.workdir.clone().unwrap_or_default(),
        tty: a.tty,
        size: None,
        timeout_ms: a.timeout.map_or(0, |d| d.as_millis() as u64),
        stdin,
        term: std::env::var("TERM").unwrap_or_default(),
        user: ctx.author(),
        group: String::new(),
    }
}

/// Says once on stderr that the master records the session(s); `raw`:
/// the local terminal is in raw mode (a line ends with \r\n there).
fn recorded_notice(started: &cdn_proto::v1::ExecStarted, fan_out: bool, raw: bool) {
    static SAID: std::sync::Once = std::sync::Once::new();
    if started.recording.is_empty() {
        return;
    }
    SAID.call_once(|| {
        let what = if fan_out {
            "these sessions are"
        } else {
            "this session is"
        };
        let _ = write!(
            std::io::stderr(),
            "cdnctl: {what} recorded ({}) as exec {}{}",
            started.recording,
            started.recording_id,
            if raw { "\r\n" } else { "\n" }
        );
    });
}

/// Starts a session; returns the sender for stdin/signals and the output
/// stream. Only this opening is repeated at the leader when a standby
/// answers; a session under way never is.
async fn open(
    ctx: &Context,
    start: ExecStart,
) -> Result<(mpsc::Sender<ExecRequest>, tonic::Streaming<ExecResponse>), CliError> {
    ctx.call(start, |mut client, start| async move {
        let (tx, rx) = mpsc::channel(SEND_DEPTH);
        let first = ExecRequest {
            body: Some(exec_request::Body::Start(start)),
        };
        tx.try_send(first)
            .map_err(|_| tonic::Status::internal("cannot queue the exec start"))?;
        let stream = client.exec(ReceiverStream::new(rx)).await?;
        Ok(stream.map(|s| (tx, s)))
    })
    .await
    .map_err(|e| match e {
        CliError::Master(m) => CliError::Exec(m),
        other => other,
    })
}

/// What a session's stream ending with `s` means: a lost connection to
/// the master, or the master's own answer.
fn session_error(ctx: &Context, s: &tonic::Status) -> CliError {
    if crate::error::connection_lost(s) {
        return session_lost(&crate::error::status_cause(s));
    }
    match ctx.call_error(s) {
        CliError::Master(m) => CliError::Exec(m),
        other => other,
    }
}

/// Said when the stream of a running session breaks (exit 255): whether
/// the command ran, and how, only the node knows.
pub const SESSION_LOST: &str = "lost the connection to the master during the session (master stopped or failed over); the command's outcome on the node is unknown";

/// [`SESSION_LOST`] with what was seen of it (the transport's error, or a
/// stream that ended without an exit status).
fn session_lost(cause: &str) -> CliError {
    CliError::Exec(format!("{SESSION_LOST}: {cause}"))
}

/// The cause when the master's stream ends with no exit status.
const NO_EXIT_STATUS: &str = "the stream ended without an exit status";

/// The local terminal in raw mode while this lives.
struct RawMode;

impl RawMode {
    fn enable() -> Result<Self, CliError> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| CliError::Local(format!("cannot put the terminal in raw mode: {e}")))?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

async fn single(
    ctx: &Context,
    start: ExecStart,
    forward_stdin: bool,
    tty: bool,
) -> Result<ExitCode, CliError> {
    let timeout = (start.timeout_ms > 0).then(|| Duration::from_millis(start.timeout_ms));
    let raw = tty && std::io::stdin().is_terminal();
    let (tx, mut stream) = open(ctx, start).await?;
    if forward_stdin {
        pump_stdin(tx.clone())?;
    }
    if tty {
        let tx = tx.clone();
        tokio::spawn(async move { forward_resizes(tx).await });
    }
    let mut interrupts = 0u32;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    // Written by threads of their own: a local reader that stops reading
    // must not freeze the whole client (its timers included).
    let mut stdout = Sink::new(Output::Stdout);
    let mut stderr = Sink::new(Output::Stderr);
    // With --timeout the agent kills the command at the deadline; should its
    // exit report be stuck behind output nobody reads, give up locally too.
    let local_deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t + LOCAL_TIMEOUT_GRACE).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(local_deadline);
    loop {
        tokio::select! {
            _ = &mut local_deadline => {
                output::print_diagnostic("cdnctl: timed out (the remote command is killed by the agent)");
                return Ok(exit::timed_out());
            }
            _ = &mut ctrl_c => {
                interrupts += 1;
                let sig = if interrupts == 1 { libc_sigint() } else { libc_sigkill() };
                let _ = tx.send(ExecRequest { body: Some(exec_request::Body::Signal(sig)) }).await;
                ctrl_c = Box::pin(tokio::signal::ctrl_c());
            }
            msg = stream.message() => {
                let msg = msg.map_err(|s| session_error(ctx, &s))?;
                let Some(ExecResponse { body: Some(body) }) = msg else {
                    if msg.is_none() {
                        // Ended without an exit status: as good as lost.
                        return Err(session_lost(NO_EXIT_STATUS));
                    }
                    continue;
                };
                match body {
                    exec_response::Body::Started(s) => recorded_notice(&s, false, raw),
                    exec_response::Body::Stdout(b) => {
                        tokio::select! {
                            w = stdout.write(b) => if w.is_err() {
                                // Local reader went away: the remote side is killed.
                                return Ok(ExitCode::SUCCESS);
                            },
                            _ = &mut local_deadline => {
                                output::print_diagnostic("cdnctl: timed out (the remote command is killed by the agent)");
                                return Ok(exit::timed_out());
                            }
                        }
                    }
                    exec_response::Body::Stderr(b) => {
                        let _ = stderr.write(b).await;
                    }
                    exec_response::Body::Exit(x) => {
                        // All output is written before cdnctl exits.
                        let (_, _, _) = tokio::join!(
                            stdout.finish(),
                            stderr.finish(),
                            read_to_end(&mut stream)
                        );
                        if x.timed_out {
                            output::print_diagnostic(&format!("cdnctl: {}", x.error));
                        }
                        return Ok(exit::remote(x.code));
                    }
                }
            }
        }
    }
}

/// Sends the local window size to the node whenever it changes.
async fn forward_resizes(tx: mpsc::Sender<ExecRequest>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    while winch.recv().await.is_some() {
        let Ok((cols, rows)) = crossterm::terminal::size() else {
            continue;
        };
        let msg = ExecRequest {
            body: Some(exec_request::Body::Resize(WindowSize {
                rows: u32::from(rows),
                cols: u32::from(cols),
            })),
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

fn libc_sigint() -> i32 {
    2
}

fn libc_sigkill() -> i32 {
    9
}

/// Forwards local stdin until EOF, then says so (from a thread of its
/// own, see [`crate::stdio`]; `/dev/null` is the end at once, no thread).
fn pump_stdin(tx: mpsc::Sender<ExecRequest>) -> Result<(), CliError> {
    if crate::stdio::stdin_is_dev_null() {
        tokio::spawn(async move {
            let eof = exec_request::Body::StdinEof(true);
            let _ = tx.send(ExecRequest { body: Some(eof) }).await;
        });
        return Ok(());
    }
    crate::stdio::read_stdin(STDIN_CHUNK_BYTES, move |chunk| {
        let body = match chunk {
            Some(b) => exec_request::Body::Stdin(b),
            None => exec_request::Body::StdinEof(true),
        };
        tx.blocking_send(ExecRequest { body: Some(body) }).is_ok()
    })
    .map_err(|e| CliError::Local(format!("cannot read stdin: {e}")))
}

/// One node's outcome in a fan-out, a row of the summary on stderr.
#[derive(Debug)]
struct FanRow {
    node: String,
    exit_code: Option<i32>,
    duration_ms: f64,
    error: String,
}

impl Row for FanRow {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NODE", "EXIT", "DURATION", "ERROR"]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        vec![
            Cell::new(&self.node),
            Cell::new(self.exit_code.map_or("-".into(), |c| c.to_string())),
            Cell::new(format!("{:.1}ms", self.duration_ms)),
            Cell::or_dash(&self.error),
        ]
    }

    fn name(&self) -> String {
        format!("node/{}", self.node)
    }
}

async fn fan_out_run(ctx: &Context, a: ExecArgs) -> Result<ExitCode, CliError> {
    let mut nodes = a.nodes.clone();
    if a.all || !a.selector.is_empty() {
        let selector = crate::selector::merge(&a.selector);
        let request = ListNodesRequest {
            status: 0,
            selector: selector.legacy,
            label_selector: selector.requirements,
        };
        let listed = ctx
            .call(request, |mut c, r| async move { c.list_nodes(r).await })
            .await?
            .nodes;
        nodes.extend(listed.into_iter().map(|n| n.name));
    }
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return Err(CliError::Exec("no nodes match".into()));
    }
    let width = nodes.iter().map(|n| n.len()).max().unwrap_or(0);
    let parallel = a.parallel.max(1);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = tokio::task::JoinSet::new();
    // One key for all the fan-out's sessions: the master files their
    // recordings under one exec id. Unique per user is enough (the master
    // keys it by user).
    let group = format!(
        "{:x}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    for node in nodes {
        let mut start = start_of(ctx, &a, &node, false);
        start.group = group.clone();
        let sem = std::sync::Arc::clone(&sem);
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let t0 = Instant::now();
            let result = one_of_many(&ctx, start, &node, width).await;
            let (exit_code, error) = match result {
                Ok(x) => (Some(x.code), x.error),
                Err(e) => (None, e.to_string()),
            };
            FanRow {
                node,
                exit_code,
                duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
                error,
            }
        });
    }
    let mut rows = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(row) = r {
            rows.push(row);
        }
    }
    rows.sort_by(|x, y| x.node.cmp(&y.node));
    output::summary(&rows);
    // Each such row says what was seen; the summary names how many.
    let lost = rows
        .iter()
        .filter(|r| r.error.starts_with(SESSION_LOST))
        .count();
    if lost > 0 {
        // Said once, after the table, and exit 255 as for one node.
        return Err(CliError::Exec(format!(
            "{SESSION_LOST} ({lost} of {} sessions)",
            rows.len()
        )));
    }
    Ok(exit::all_ok(rows.iter().all(|r| r.exit_code == Some(0))))
}

/// Runs on one node of a fan-out, printing its lines prefixed with its name.
async fn one_of_many(
    ctx: &Context,
    start: ExecStart,
    node: &str,
    width: usize,
) -> Result<ExecExit, CliError> {
    let (tx, mut stream) = open(ctx, start).await?;
    let mut out_buf = Vec::new();
    let mut err_buf = Vec::new();
    let prefix = format!("{node:<width$} | ");
    loop {
        let msg = stream.message().await.map_err(|s| session_error(ctx, &s))?;
        let Some(ExecResponse { body: Some(body) }) = msg else {
            if msg.is_none() {
                return Err(session_lost(NO_EXIT_STATUS));
            }
            continue;
        };
        match body {
            exec_response::Body::Started(s) => recorded_notice(&s, true, false),
            exec_response::Body::Stdout(b) => {
                out_buf.extend_from_slice(&b);
                flush_lines(&mut out_buf, &prefix, false, false);
            }
            exec_response::Body::Stderr(b) => {
                err_buf.extend_from_slice(&b);
                flush_lines(&mut err_buf, &prefix, true, false);
            }
            exec_response::Body::Exit(x) => {
                flush_lines(&mut out_buf, &prefix, false, true);
                flush_lines(&mut err_buf, &prefix, true, true);
                drop(tx);
                read_to_end(&mut stream).await;
                return Ok(x);
            }
        }
    }
}

/// How long cdnctl waits, after the exit status, for the end of the
/// session's stream (the master ends it right after the exit).
const END_WAIT: Duration = Duration::from_secs(2);

/// Reads a session's stream to its end after the exit status, so that it
/// closes rather than being reset. An HTTP/2 client counts a frame on a
/// stream it reset more than a second before as the peer's error, and
/// drops the connection, with every session on it, at a thousand: one
/// fan-out to 15,000 nodes reached that.
async fn read_to_end(stream: &mut tonic::Streaming<ExecResponse>) {
    let _ = tokio::time::timeout(END_WAIT, async {
        while let Ok(Some(_)) = stream.message().await {}
    })
    .await;
}

/// Prints every complete line of `buf` (all of it when `all`) with `prefix`.
fn flush_lines(buf: &mut Vec<u8>, prefix: &str, to_stderr: bool, all: bool) {
    // A "line" that never ends (binary data, progress bars) is cut so
    // memory stays bounded.
    let all = all || buf.len() > MAX_PARTIAL_LINE_BYTES;
    let end = if all {
        buf.len()
    } else {
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => return,
        }
    };
    if end == 0 {
        return;
    }
    let mut text = Vec::with_capacity(end + prefix.len() * 4);
    for line in buf[..end].split_inclusive(|&b| b == b'\n') {
        text.extend_from_slice(prefix.as_bytes());
        text.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            text.push(b'\n');
        }
    }
    buf.drain(..end);
    if to_stderr {
        let _ = std::io::stderr().lock().write_all(&text);
    } else {
        let _ = std::io::stdout().lock().write_all(&text);
    }
}

async fn history(ctx: &Context, h: HistoryArgs) -> Result<ExitCode, CliError> {
    if let Some(grep) = h.grep {
        return grep_recordings(ctx, grep, h.limit, h.output).await;
    }
    let request = ExecHistoryRequest { limit: h.limit };
    let sessions = ctx
        .call(request, |mut c, r| async move { c.exec_history(r).await })
        .await?
        .sessions;
    let rows: Vec<SessionRow> = sessions
        .into_iter()
        .map(|s| SessionRow {
            exec_id: s.exec_id,
            user: s.user,
            peer: s.peer,
            node: s.node,
            argv: s.argv,
            started: output::rfc3339(s.started_ms),
            duration_ms: s.duration_ms,
            exit_code: s.exit_code,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            error: s.error,
            recording_id: s.recording_id,
            recording_bytes: s.recording_bytes,
            recording_sha256: s.recording_sha256,
            recording_truncated: s.recording_truncated,
            recording_error: s.recording_error,
        })
        .collect();
    output::print(&rows, h.output)?;
    Ok(ExitCode::SUCCESS)
}

/// One audited session in `exec history`.
#[derive(Serialize)]
struct SessionRow {
    exec_id: u64,
    user: String,
    peer: String,
    node: String,
    argv: Vec<String>,
    started: Option<String>,
    duration_ms: u64,
    exit_code: i32,
    bytes_in: u64,
    bytes_out: u64,
    error: String,
    recording_id: u64,
    recording_bytes: u64,
    recording_sha256: String,
    recording_truncated: bool,
    recording_error: String,
}

impl SessionRow {
    /// The REC column: the recording's id when it is not the session's
    /// own (fan-out), its size, and whether it is cut or incomplete.
    fn rec(&self) -> String {
        if self.recording_id == 0 {
            return "-".into();
        }
        let mut s = output::bytes(self.recording_bytes);
        if self.recording_id != self.exec_id {
            s = format!("{s} (in {})", self.recording_id);
        }
        if self.recording_truncated {
            s.push_str(" cut");
        }
        if !self.recording_error.is_empty() {
            s.push_str(" incomplete");
        }
        s
    }
}

impl Row for SessionRow {
    const EMPTY: &'static str = "No exec sessions yet.";

    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "ID", "STARTED", "USER", "NODE", "COMMAND", "EXIT", "DURATION", "IN", "OUT", "REC",
            "ERROR",
        ]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        vec![
            Cell::new(self.exec_id),
            Cell::new(self.started.as_deref().unwrap_or_default()),
            Cell::new(&self.user),
            Cell::new(&self.node),
            Cell::new(self.argv.join(" ")),
            Cell::new(self.exit_code),
            Cell::new(format!("{}ms", self.duration_ms)),
            Cell::new(output::bytes(self.bytes_in)),
            Cell::new(output::bytes(self.bytes_out)),
            Cell::new(self.rec()),
            Cell::or_dash(&self.error),
        ]
    }

    fn name(&self) -> String {
        format!("execsession/{}", self.exec_id)
    }
}

async fn grep_recordings(
    ctx: &Context,
    grep: String,
    limit: u32,
    format: Format,
) -> Result<ExitCode, CliError> {
    if grep.is_empty() {
        return Err(usage("--grep needs a text to look for"));
    }
    let request = cdn_proto::v1::ListRecordingsRequest {
        exec_id: 0,
        grep,
        limit,
    };
    let found = ctx
        .call(
            request,
            |mut c, r| async move { c.list_recordings(r).await },
        )
        .await?
        .recordings;
    let rows: Vec<RecordingRow> = found
        .into_iter()
        .map(|r| RecordingRow {
            exec_id: r.exec_id,
            session_id: r.session_id,
            node: r.node,
            user: r.user,
            argv: r.argv,
            started: output::rfc3339(r.started_ms),
            bytes: r.bytes,
            mode: r.mode,
        })
        .collect();
    output::print(&rows, format)?;
    Ok(ExitCode::SUCCESS)
}

/// One recording whose output matched `exec history --grep`.
#[derive(Serialize)]
struct RecordingRow {
    exec_id: u64,
    session_id: u64,
    node: String,
    user: String,
    argv: Vec<String>,
    started: Option<String>,
    bytes: u64,
    mode: String,
}

impl Row for RecordingRow {
    const EMPTY: &'static str = "No recorded session matches.";

    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "ID", "NODE", "STARTED", "USER", "COMMAND", "SIZE", "SESSION",
        ]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        vec![
            Cell::new(self.exec_id),
            Cell::new(&self.node),
            Cell::new(self.started.as_deref().unwrap_or_default()),
            Cell::new(&self.user),
            Cell::new(self.argv.join(" ")),
            Cell::new(output::bytes(self.bytes)),
            Cell::new(self.session_id),
        ]
    }

    fn name(&self) -> String {
        format!("recording/{}/{}", self.exec_id, self.node)
    }
}

/// `cdnctl exec replay`: fetches the recording, then plays or exports it.
async fn replay(ctx: &Context, r: ReplayArgs) -> Result<ExitCode, CliError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let request = cdn_proto::v1::GetRecordingRequest {
        exec_id: r.id,
        node: r.node.clone().unwrap_or_default(),
    };
    // Several nodes and no --node: the master lists them; a usage error.
    let ambiguous = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&ambiguous);
    let result = ctx
        .call(request, move |mut c, req| {
            let flag = std::sync::Arc::clone(&flag);
            async move {
                let r = c.get_recording(req).await;
                if let Err(s) = &r
                    && s.code() == tonic::Code::FailedPrecondition
                {
                    flag.store(true, Ordering::Relaxed);
                }
                r
            }
        })
        .await;
    let mut stream = match result {
        Ok(s) => s,
        Err(CliError::Master(m)) if ambiguous.load(Ordering::Relaxed) => {
            return Err(CliError::Usage(m));
        }
        Err(e) => return Err(e),
    };
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(|s| ctx.call_error(&s))? {
        data.extend_from_slice(&chunk.data);
    }
    let mut stdout = std::io::stdout().lock();
    let written = match r.output {
        ReplayFormat::Json => stdout.write_all(&data),
        ReplayFormat::Asciicast => {
            let rec = parse_recording(&data)?;
            stdout.write_all(rec.to_asciicast().as_bytes())
        }
        ReplayFormat::Raw => {
            drop(stdout);
            let rec = parse_recording(&data)?;
            let timed = std::io::stdout().is_terminal();
            return play(&rec, timed, r.speed, r.idle_limit).map(|()| ExitCode::SUCCESS);
        }
    };
    match written.and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::BrokenPipe),
        Err(e) => Err(CliError::Local(format!("cannot write: {e}"))),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn parse_recording(data: &[u8]) -> Result<cdn_common::recording::Recording, CliError> {
    cdn_common::recording::parse(data)
        .map_err(|e| CliError::Master(format!("the recording cannot be read: {e}")))
}

/// Writes the recorded output, stdout to stdout and stderr to stderr;
/// with `timed`, waits between events as the session did (divided by
/// `speed`, each pause at most `idle_limit`).
fn play(
    rec: &cdn_common::recording::Recording,
    timed: bool,
    speed: f64,
    idle_limit: Option<Duration>,
) -> Result<(), CliError> {
    use cdn_common::recording::Event;
    let mut last = 0.0f64;
    for (t, e) in &rec.events {
        let (to_err, b) = match e {
            Event::Stdout(b) => (false, b),
            Event::Stderr(b) => (true, b),
            Event::Truncated(n) => {
                output::print_diagnostic(&format!(
                    "cdnctl: the recording stops here (exec.recording.max_bytes, {n} bytes)"
                ));
                continue;
            }
            _ => continue,
        };
        if timed {
            let mut pause = Duration::from_secs_f64(((t - last) / speed).max(0.0));
            if let Some(cap) = idle_limit {
                pause = pause.min(cap);
            }
            std::thread::sleep(pause);
        }
        last = *t;
        let w = if to_err {
            let mut err = std::io::stderr().lock();
            err.write_all(b).and_then(|()| err.flush())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(b).and_then(|()| out.flush())
        };
        match w {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                return Err(CliError::BrokenPipe);
            }
            Err(e) => return Err(CliError::Local(format!("cannot write: {e}"))),
            Ok(()) => {}
        }
    }
    Ok(())
}
