//! Running commands for `cdnctl exec`.
//!
//! The master asks over the command stream (`StartExec`); the agent opens a
//! dedicated `ExecSession` stream for the session, checks its policy, runs
//! the program (argv, no shell) in its own process group and relays stdin,
//! stdout, stderr, signals and the exit status. Output is read in chunks and
//! sent through a bounded queue, so a slow reader stops the program at its
//! next write rather than growing memory. When the stream goes away
//! (cdnctl or the connection died) or the deadline passes, the whole process
//! group is killed.

use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use cdn_proto::v1::agent_service_client::AgentServiceClient;
use cdn_proto::v1::{
    ExecAttach, ExecExit, ExecFromAgent, ExecToAgent, StartExec, exec_from_agent, exec_to_agent,
};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tracing::{debug, info, warn};

use crate::config::ExecPolicy;

/// Bytes read from a pipe per message.
pub const CHUNK_BYTES: usize = cdn_proto::limits::EXEC_CHUNK_BYTES;
/// Pipe capacity asked for the program's stdout and stderr, so one read can
/// fill a whole chunk (the default pipe holds 64 KiB).
const PIPE_BYTES: i32 = 1024 * 1024;
/// Messages queued towards the master per session.
const OUT_DEPTH: usize = 8;
/// After the program exits, how long its pipes may stay open (held by
/// children) before the group is killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Terminal size when the client gave none.
const DEFAULT_ROWS: u16 = 24;
const DEFAULT_COLS: u16 = 80;
/// How long the agent waits for the master to close a finished session.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Exit code on timeout, as timeout(1).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code when the program is not executable, as a shell.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the program is not found, as a shell.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Whether `program` is allowed by `allow` (empty allows all). Patterns
/// may use `*`.
pub fn allowed(allow: &[String], program: &str) -> Result<(), String> {
    if allow.is_empty() {
        return Ok(());
    }
    // A bare name (found through PATH) matches bare patterns; a path
    // matches path patterns: `uptime` does not allow `/tmp/uptime`.
    let is_path = program.contains('/');
    let hit = allow
        .iter()
        .any(|pat| pat.contains('/') == is_path && glob_match(pat, program));
    if hit {
        Ok(())
    } else {
        Err(format!(
            "`{program}` is not in exec.allow ({})",
            allow.join(", ")
        ))
    }
}

/// `*` matches any run of characters; everything else is literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A taken session slot, given back on drop (also when the session's task
/// is aborted because the connection went away).
struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs exec sessions for one agent; cheap to clone.
#[derive(Clone)]
pub struct Executor {
    /// The policy in force; replaced whole by [`Executor::set_policy`].
    policy: Arc<RwLock<Arc<ExecPolicy>>>,
    running: Arc<AtomicUsize>,
    /// The guard kept ready for the next session on pipes; None: every
    /// session starts its own.
    warm: Option<Arc<Warm>>,
}

impl Executor {
    /// An executor applying `policy`; after its first session on pipes it
    /// keeps one guard ready for the next (one idle process).
    pub fn new(policy: ExecPolicy) -> Self {
        Self {
            policy: Arc::new(RwLock::new(Arc::new(policy))),
            running: Arc::new(AtomicUsize::new(0)),
            warm: Some(Arc::default()),
        }
    }

    /// The same without a guard kept ready: for thousands of agents in one
    /// process (the hollow swarm), where a ready guard each would be
    /// thousands of idle processes.
    pub fn without_warm_guard(mut self) -> Self {
        self.warm = None;
        self
    }

    /// The policy in force.
    fn policy(&self) -> Arc<ExecPolicy> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `policy` in force for the sessions that start from now on (a
    /// reloaded agent.yml); running sessions keep the policy they were
    /// admitted under.
    pub fn set_policy(&self, policy: ExecPolicy) {
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
    }

    /// Sessions running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Checks the policy and takes a session slot; the slot is given back
    /// when the returned guard drops, however the session ends.
    fn admit(&self, policy: &ExecPolicy, start: &StartExec) -> Result<SlotGuard, String> {
        if !policy.enabled {
            return Err("exec is disabled on this node (exec.enabled: false)".into());
        }
        let program = start.argv.first().map(String::as_str).unwrap_or("");
        allowed(&policy.allow, program)?;
        if let Some(name) = &policy.user
            && nix::unistd::geteuid().is_root()
            && !matches!(nix::unistd::User::from_name(name), Ok(Some(_)))
        {
            return Err(format!("exec.user `{name}` does not exist on this node"));
        }
        let limit = policy.max_sessions.get() as usize;
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| format!("{limit} sessions already running (exec.max_sessions)"))?;
        Ok(SlotGuard(Arc::clone(&self.running)))
    }

    /// Serves session `start.exec_id` on a new stream of `client`. The
    /// program starts while that stream opens: its output queues behind the
    /// attach and leaves with it, without waiting for the master's answer
    /// (which only input needs).
    pub async fn serve(
        &self,
        mut client: AgentServiceClient<Channel>,
        node_id: String,
        session_id: u64,
        start: StartExec,
    ) {
        let policy = self.policy();
        let admitted = self.admit(&policy, &start);
        let refused = admitted.as_ref().err().cloned().unwrap_or_default();
        let (out_tx, out_rx) = mpsc::channel::<ExecFromAgent>(OUT_DEPTH);
        let attach = ExecFromAgent {
            body: Some(exec_from_agent::Body::Attach(ExecAttach {
                node_id,
                session_id,
                exec_id: start.exec_id,
                refused: refused.clone(),
            })),
        };
        if out_tx.try_send(attach).is_err() {
            return;
        }
        let exec_id = start.exec_id;
        let opening = Box::pin(async move {
            client
                .exec_session(ReceiverStream::new(out_rx))
                .await
                .map(tonic::Response::into_inner)
        });
        let mut inbound = Inbound::open(exec_id, opening).await;
        if !refused.is_empty() {
            info!(exec = exec_id, reason = %refused, "exec refused");
            // The refusal travels with the attach; wait until it is taken.
            drop(out_tx);
            inbound.drain().await;
            return;
        }
        let exit = run(&policy, self.warm.as_ref(), start, &mut inbound, &out_tx).await;
        drop(admitted);
        info!(exec = exec_id, code = exit.code, "exec finished");
        let _ = out_tx
            .send(ExecFromAgent {
                body: Some(exec_from_agent::Body::Exit(exit)),
            })
            .await;
        if let Some(w) = &self.warm {
            // The next session's guard starts once this one's exit is on
            // its way, not while its program starts.
            let w = Arc::clone(w);
            tokio::task::spawn_blocking(move || w.refill());
        }
        // Dropping the response stream would reset the HTTP/2 stream and
        // could discard the exit report: end our side, then wait for the
        // master to end its side.
        drop(out_tx);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, inbound.drain()).await;
    }
}

/// The opening of a session's stream: the call under way until the
/// master answers.
type Opening = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<tonic::Streaming<ExecToAgent>, tonic::Status>>
            + Send,
    >,
>;

/// What comes from the master on a session's stream: first the opening of
/// the stream (under way while the program starts), then its messages.
enum Inbound {
    Opening(u64, Opening),
    Open(Box<tonic::Streaming<ExecToAgent>>),
    Gone,
}

impl Inbound {
    /// Sets the call for session `exec_id` on its way (polled once, so the
    /// request leaves before the program is started) and returns it.
    async fn open(exec_id: u64, mut opening: Opening) -> Self {
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(opening.as_mut().poll(cx)));
        match first.await {
            std::task::Poll::Pending => Self::Opening(exec_id, opening),
            std::task::Poll::Ready(r) => Self::opened(exec_id, r),
        }
    }

    fn opened(exec_id: u64, r: Result<tonic::Streaming<ExecToAgent>, tonic::Status>) -> Self {
        match r {
            Ok(s) => Self::Open(Box::new(s)),
            Err(s) => {
                warn!(exec = exec_id, error = %s.message(), "cannot open the exec stream");
                Self::Gone
            }
        }
    }

    /// The next message; None once the stream is gone (cdnctl or the
    /// connection went away, or it never opened).
    async fn message(&mut self) -> Option<ExecToAgent> {
        loop {
            match self {
                Self::Opening(exec_id, opening) => {
                    let r = opening.as_mut().await;
                    *self = Self::opened(*exec_id, r);
                }
                Self::Open(s) => match s.message().await {
                    Ok(Some(m)) => return Some(m),
                    Ok(None) | Err(_) => *self = Self::Gone,
                },
                Self::Gone => return None,
            }
        }
    }

    /// Reads until the master ends the stream.
    async fn drain(&mut self) {
        while self.message().await.is_some() {}
    }
}

fn exit_with(code: i32, error: String) -> ExecExit {
    ExecExit {
        code,
        signal: 0,
        timed_out: false,
        error,
    }
}

/// A started program and its I/O ends.
struct Spawned {
    child: tokio::process::Child,
    stdin: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    stdout: Option<Box<dyn AsyncRead + Unpin + Send>>,
    stderr: Option<Box<dyn AsyncRead + Unpin + Send>>,
    /// The terminal's write end, for `-t` sessions (input and resizes).
    pty: Option<pty_process::OwnedWritePty>,
}

/// The program as the policy and the request shape it.
fn program(policy: &ExecPolicy, start: &StartExec) -> Result<crate::guard::Program, String> {
    let mut p = crate::guard::Program {
        argv: start.argv.clone(),
        env: start
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cwd: start.cwd.clone(),
        stdin: start.stdin,
        user: None,
    };
    if let Some(name) = &policy.user
        && nix::unistd::geteuid().is_root()
    {
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => {
                p.user = Some((u.uid.as_raw(), u.gid.as_raw()));
                let dir = u.dir.to_string_lossy().into_owned();
                p.env.extend([
                    ("HOME".into(), dir),
                    ("USER".into(), name.clone()),
                    ("LOGNAME".into(), name.clone()),
                ]);
            }
            _ => return Err(format!("exec.user `{name}` does not exist on this node")),
        }
    }
    Ok(p)
}

/// `program` under a guard of its own (the program dies with the agent,
/// even a killed one), not yet started.
fn command(program: &crate::guard::Program) -> tokio::process::Command {
    let mut cmd = crate::guard::command(&program.argv[0]);
    cmd.args(&program.argv[1..])
        // systemd's socket is agentd's: a remote command must not speak
        // for the agent's unit (unless the operator passes it on purpose).
        .env_remove("NOTIFY_SOCKET")
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    if !program.cwd.is_empty() {
        cmd.current_dir(&program.cwd);
    }
    if let Some((uid, gid)) = program.user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// One warm guard kept ready for the next session on pipes (see
/// [`crate::guard::warm_command`]): a session that finds it skips the
/// guard's start-up, about a millisecond of the exec's start.
#[derive(Default)]
struct Warm(std::sync::Mutex<Option<tokio::process::Child>>);

impl Warm {
    /// The ready guard, if it is still alive.
    fn take(&self) -> Option<tokio::process::Child> {
        let mut child = self.0.lock().ok()?.take()?;
        matches!(child.try_wait(), Ok(None)).then_some(child)
    }

    /// Starts a guard for the next session unless one is ready.
    fn refill(&self) {
        let Ok(mut slot) = self.0.lock() else { return };
        if slot.is_some() {
            return;
        }
        let Some(mut cmd) = crate::guard::warm_command() else {
            return;
        };
        match cmd.env_remove("NOTIFY_SOCKET").spawn() {
            Ok(child) => {
                set_pipe_sizes(&child);
                *slot = Some(child);
            }
            Err(e) => debug!(error = %e, "cannot start a warm guard"),
        }
    }
}

/// Starts `program` through the warm guard `child`: the program goes on
/// the guard's stdin.
async fn spawn_warm(
    mut child: tokio::process::Child,
    program: &crate::guard::Program,
) -> std::io::Result<Spawned> {
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the warm guard has no stdin"))?;
    stdin.write_all(&program.encode()).await?;
    Ok(Spawned {
        stdin: program.stdin.then(|| Box::new(stdin) as _),
        stdout: child.stdout.take().map(|r| Box::new(r) as _),
        stderr: child.stderr.take().map(|r| Box::new(r) as _),
        child,
        pty: None,
    })
}

/// Larger pipes for the program's output: fewer, larger chunks.
fn set_pipe_sizes(child: &tokio::process::Child) {
    for fd in [
        child.stdout.as_ref().map(|p| p.as_raw_fd()),
        child.stderr.as_ref().map(|p| p.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        // Best effort: a smaller pipe only means smaller chunks.
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
    }
}

/// Starts the program on pipes, in its own process group.
fn spawn_pipes(mut cmd: tokio::process::Command, stdin: bool) -> std::io::Result<Spawned> {
    cmd.process_group(0)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    set_pipe_sizes(&child);
    Ok(Spawned {
        stdin: child.stdin.take().map(|w| Box::new(w) as _),
        stdout: child.stdout.take().map(|r| Box::new(r) as _),
        stderr: child.stderr.take().map(|r| Box::new(r) as _),
        child,
        pty: None,
    })
}

/// Starts the program on a new pseudo-terminal, as the leader of a new
/// session (so its pid is also its process group).
fn spawn_pty(mut cmd: tokio::process::Command, start: &StartExec) -> std::io::Result<Spawned> {
    let to_io = |e: pty_process::Error| match e {
        pty_process::Error::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    let (pty, pts) = pty_process::open().map_err(to_io)?;
    let (rows, cols) = start.size.map_or((DEFAULT_ROWS, DEFAULT_COLS), |s| {
        (s.rows as u16, s.cols as u16)
    });
    pty.resize(pty_process::Size::new(rows.max(1), cols.max(1)))
        .map_err(to_io)?;
    cmd.env(
        "TERM",
        if start.term.is_empty() {
            "xterm"
        } else {
            start.term.as_str()
        },
    );
    let child = pty_process::Command::from(cmd).spawn(pts).map_err(to_io)?;
    let (reader, writer) = pty.into_split();
    Ok(Spawned {
        child,
        stdin: None,
        stdout: Some(Box::new(reader)),
        stderr: None,
        pty: Some(writer),
    })
}

/// Starts the session's program: on a terminal, or on pipes through the
/// warm guard when one is ready (else under a guard of its own).
async fn spawn(
    start: &StartExec,
    program: &crate::guard::Program,
    warm: Option<&Arc<Warm>>,
) -> std::io::Result<Spawned> {
    if start.tty {
        return spawn_pty(command(program), start);
    }
    if let Some(guard) = warm.and_then(|w| w.take())
        && let Ok(s) = spawn_warm(guard, program).await
    {
        return Ok(s);
    }
    spawn_pipes(command(program), start.stdin)
}

/// Spawns and supervises one program; returns its exit report.
async fn run(
    policy: &ExecPolicy,
    warm: Option<&Arc<Warm>>,
    start: StartExec,
    inbound: &mut Inbound,
    out: &mpsc::Sender<ExecFromAgent>,
) -> ExecExit {
    let shaped = match program(policy, &start) {
        Ok(p) => p,
        Err(e) => return exit_with(EXIT_NOT_EXECUTABLE, e),
    };
    let spawned = spawn(&start, &shaped, warm).await;
    let program = &start.argv[0];
    let Spawned {
        mut child,
        mut stdin,
        stdout,
        stderr,
        mut pty,
    } = match spawned {
        Ok(s) => s,
        Err(e) => {
            let (code, what) = match e.kind() {
                std::io::ErrorKind::NotFound => (EXIT_NOT_FOUND, "command not found"),
                std::io::ErrorKind::PermissionDenied => (EXIT_NOT_EXECUTABLE, "permission denied"),
                _ => (EXIT_NOT_EXECUTABLE, "cannot run"),
            };
            let msg = if start.cwd.is_empty() || e.kind() != std::io::ErrorKind::NotFound {
                format!("{program}: {what}")
            } else {
                format!("{program}: {what} (or no directory {})", start.cwd)
            };
            let _ = out
                .send(ExecFromAgent {
                    body: Some(exec_from_agent::Body::Stderr(Bytes::from(format!(
                        "{msg}\n"
                    )))),
                })
                .await;
            return exit_with(code, msg);
        }
    };
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    // If this task is dropped (agent shutting down, connection gone), the
    // whole group goes with it.
    let _guard = GroupGuard(pgid);
    let kill_group = |sig: Signal| {
        if let Some(p) = pgid {
            let _ = killpg(p, sig);
        }
    };
    let pumps = async {
        tokio::join!(
            pump(stdout, out, exec_from_agent::Body::Stdout),
            pump(stderr, out, exec_from_agent::Body::Stderr)
        )
    };
    tokio::pin!(pumps);
    // Input runs as its own future: a write blocked on a full stdin pipe
    // must not stop the output pumps, the deadline or the disconnect check.
    let input = async {
        loop {
            // None: cdnctl or the connection went away.
            let Some(msg) = inbound.message().await else {
                return;
            };
            match msg.body {
                Some(exec_to_agent::Body::Stdin(b)) => {
                    if let Some(w) = pty.as_mut() {
                        let _ = w.write_all(&b).await;
                    } else if let Some(w) = stdin.as_mut()
                        && w.write_all(&b).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Some(exec_to_agent::Body::StdinEof(_)) => stdin = None,
                Some(exec_to_agent::Body::Signal(n)) => {
                    if let Ok(sig) = Signal::try_from(n) {
                        debug!(signal = %sig, "forwarding signal");
                        kill_group(sig);
                    }
                }
                Some(exec_to_agent::Body::Resize(sz)) => {
                    if let Some(w) = pty.as_ref() {
                        let rows = sz.rows.clamp(1, u32::from(u16::MAX)) as u16;
                        let cols = sz.cols.clamp(1, u32::from(u16::MAX)) as u16;
                        let _ = w.resize(pty_process::Size::new(rows, cols));
                    }
                }
                None => {}
            }
        }
    };
    tokio::pin!(input);
    let deadline = (start.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(start.timeout_ms));
    let mut timed_out = false;
    let mut status = None;
    let mut pumps_done = false;
    let mut input_open = true;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        if status.is_some() && pumps_done {
            break;
        }
        tokio::select! {
            s = child.wait(), if status.is_none() => {
                status = Some(s);
                drain_deadline = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            _ = &mut pumps, if !pumps_done => pumps_done = true,
            _ = sleep_until(drain_deadline), if drain_deadline.is_some() && !pumps_done => {
                // Children still hold the pipes after the program exited.
                kill_group(Signal::SIGKILL);
                break;
            }
            _ = sleep_until(deadline), if deadline.is_some() && !timed_out && status.is_none() => {
                timed_out = true;
                kill_group(Signal::SIGKILL);
            }
            _ = &mut input, if input_open => {
                // The session's stream is gone: no orphans.
                input_open = false;
                kill_group(Signal::SIGKILL);
                let _ = child.start_kill();
            }
        }
    }
    // Whatever is left of the group goes with the session.
    kill_group(Signal::SIGKILL);
    let status = match status {
        Some(s) => s,
        None => child.wait().await,
    };
    match status {
        _ if timed_out => ExecExit {
            code: EXIT_TIMEOUT,
            signal: Signal::SIGKILL as i32,
            timed_out: true,
            error: format!(
                "timed out after {}",
                cdn_common::duration::short(Duration::from_millis(start.timeout_ms))
            ),
        },
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(c), _) => exit_with(c, String::new()),
                (None, Some(sig)) => ExecExit {
                    code: 128 + sig,
                    signal: sig,
                    timed_out: false,
                    error: String::new(),
                },
                _ => exit_with(-1, "unknown exit status".into()),
            }
        }
        Err(e) => exit_with(-1, format!("cannot wait for the program: {e}")),
    }
}

/// Kills a process group when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = killpg(p, Signal::SIGKILL);
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Copies a pipe to the master in chunks until EOF or the master is gone.
/// Each chunk is read straight into the buffer it is sent in.
async fn pump<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    out: &mpsc::Sender<ExecFromAgent>,
    wrap: fn(Bytes) -> exec_from_agent::Body,
) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = bytes::BytesMut::new();
    loop {
        buf.reserve(CHUNK_BYTES);
        let room = buf.capacity() - buf.len();
        let mut limited = (&mut pipe).take(room.min(CHUNK_BYTES) as u64);
        match limited.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let msg = ExecFromAgent {
                    body: Some(wrap(buf.split().freeze())),
                };
                if out.send(msg).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_names_paths_and_patterns() {
        let allow = vec![
            "uptime".to_string(),
            "/opt/cdn/bin/*".to_string(),
            "nginx*".to_string(),
        ];
        assert!(allowed(&allow, "uptime").is_ok());
        assert!(allowed(&allow, "/opt/cdn/bin/purge").is_ok());
        assert!(allowed(&allow, "nginx-reload").is_ok());
        let e = allowed(&allow, "rm").unwrap_err();
        assert!(e.contains("not in exec.allow"), "{e}");
        assert!(
            allowed(&allow, "/tmp/uptime").is_err(),
            "a name does not allow any path"
        );
        assert!(allowed(&[], "anything").is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("a*c", "abd"));
        assert!(glob_match("/opt/*/bin", "/opt/x/bin"));
    }
}
