//! The guard: a small process between agentd and every program it runs
//! (reload commands, exec sessions), so that the program and its children
//! die with the agent even when the agent is killed with SIGKILL.
//!
//! agentd starts its own executable again (`/proc/self/exe`, so an
//! upgraded binary on disk changes nothing) with [`GUARD_ARG`]; that
//! process asks the kernel for SIGTERM when its parent dies
//! (`PR_SET_PDEATHSIG`, through nix's safe wrapper: `unsafe` is forbidden
//! here, so no `pre_exec`), starts the program in its own process group
//! (agentd started the guard as the leader of a new group), and passes on
//! its exit status. When the agent is gone it kills the whole group with
//! SIGKILL, itself included. Signals agentd forwards to the group (a
//! remote Ctrl-C) are the program's business: the guard catches them and
//! carries on.
//!
//! A guard costs its own start-up (about a millisecond here: agentd is a
//! large executable) before the program's. So that an exec session does
//! not wait for it, the executor keeps one *warm* guard ready after its
//! first session on pipes ([`warm_command`]): started and set up like any
//! guard, it waits on its stdin for the program ([`Program`]), starts it
//! with the rest of stdin as the program's input, and is replaced once
//! the session's exit is sent. It dies with the agent as any guard does.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getpgrp, getppid};
use signal_hook::consts::signal::{
    SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2,
};

/// agentd's first argument when it runs as a guard (not a flag a person
/// types: it is hidden from the help).
pub const GUARD_ARG: &str = "__cdn-guard";

/// The running executable, however it was started or replaced on disk.
const SELF_EXE: &str = "/proc/self/exe";

/// The argument (after the agent's pid) of a warm guard, see [`warm_command`].
const WARM_ARG: &str = "--from-stdin";

/// Longest [`Program`] a warm guard reads.
const MAX_PROGRAM_BYTES: usize = 4 << 20;

/// Exit code when the program is not found, as a shell.
const EXIT_NOT_FOUND: u8 = 127;
/// Exit code when the program cannot be run, as a shell.
const EXIT_NOT_EXECUTABLE: u8 = 126;

/// Whether this executable runs as a guard when asked: set by
/// [`main_if_asked`], which agentd's and cdn-swarm's `main` call. A
/// program embedding the library without it (unit tests) runs programs
/// unguarded.
static GUARD_AVAILABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A command that runs `program` (add its arguments, environment, working
/// directory and stdio as usual) under a guard of this agent. Put it in
/// its own process group (`process_group(0)`) or session (a terminal):
/// the guard kills that group when the agent dies.
pub fn command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    if !GUARD_AVAILABLE.load(std::sync::atomic::Ordering::Relaxed) {
        return tokio::process::Command::new(program);
    }
    let mut cmd = tokio::process::Command::new(SELF_EXE);
    cmd.arg(GUARD_ARG)
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(program);
    cmd
}

/// Runs the guard when agentd was started as one; None otherwise. Called
/// first thing in `main`, before logging or the runtime.
pub fn main_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(GUARD_ARG)) {
        GUARD_AVAILABLE.store(true, std::sync::atomic::Ordering::Relaxed);
        return None;
    }
    let parent = args
        .next()
        .and_then(|p| p.to_str().and_then(|p| p.parse::<i32>().ok()))
        .map(Pid::from_raw);
    let rest: Vec<OsString> = args.collect();
    match (parent, rest.split_first()) {
        (Some(parent), Some((dashes, argv))) if dashes == "--" && !argv.is_empty() => {
            Some(guard(parent, argv))
        }
        (Some(parent), Some((warm, []))) if warm == WARM_ARG => Some(warm_guard(parent)),
        _ => Some(fail(
            EXIT_NOT_EXECUTABLE,
            &format!(
                "usage: agentd {GUARD_ARG} AGENT_PID -- PROGRAM [ARG...] | agentd {GUARD_ARG} AGENT_PID {WARM_ARG}"
            ),
        )),
    }
}

/// Kills the guarded group, the guard with it.
fn kill_group() -> ! {
    let _ = killpg(getpgrp(), Signal::SIGKILL);
    // Not reached: SIGKILL of our own group includes us.
    std::process::exit(137)
}

fn guard(parent: Pid, argv: &[OsString]) -> ExitCode {
    if let Err(code) = watch_parent(parent) {
        return code;
    }
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    run_program(cmd, &argv[0].to_string_lossy(), "")
}

/// A warm guard: set up like any guard, then waits on its stdin for the
/// program to run ([`Program`]); the rest of stdin is the program's.
fn warm_guard(parent: Pid) -> ExitCode {
    if let Err(code) = watch_parent(parent) {
        return code;
    }
    let program = match read_program() {
        Ok(p) => p,
        // The agent let this guard go unused (it is shutting down).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ExitCode::SUCCESS,
        Err(e) => return fail(EXIT_NOT_EXECUTABLE, &format!("agentd guard: {e}")),
    };
    let mut cmd = std::process::Command::new(&program.argv[0]);
    cmd.args(&program.argv[1..])
        .envs(program.env.iter().map(|(k, v)| (k, v)));
    if !program.cwd.is_empty() {
        cmd.current_dir(&program.cwd);
    }
    if let Some((uid, gid)) = program.user {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid);
    }
    if !program.stdin {
        cmd.stdin(std::process::Stdio::null());
    }
    run_program(cmd, &program.argv[0], &program.cwd)
}

/// Makes this guard kill its group when the agent `parent` dies (also
/// before this call), and catches the signals sent to the group. Err:
/// the exit code of a guard that cannot.
fn watch_parent(parent: Pid) -> Result<(), ExitCode> {
    // Caught, not ignored: a caught signal is back to its default in the
    // program after exec, an ignored one would stay ignored there.
    let mut signals = signal_hook::iterator::Signals::new([
        SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU,
    ])
    .map_err(|e| fail(EXIT_NOT_EXECUTABLE, &format!("agentd guard: {e}")))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
        .map_err(|e| fail(EXIT_NOT_EXECUTABLE, &format!("agentd guard: {e}")))?;
    // The agent may have died before the line above: then nobody would
    // tell us.
    if getppid() != parent {
        kill_group();
    }
    std::thread::spawn(move || {
        for _ in signals.forever() {
            // Any of them may be the parent's death; the others were sent
            // to the whole group and the program has them too.
            if getppid() != parent {
                kill_group();
            }
        }
    });
    Ok(())
}

/// Starts `cmd` (program `name`, in `cwd` when not empty), waits for it
/// and ends as it ended.
fn run_program(mut cmd: std::process::Command, name: &str, cwd: &str) -> ExitCode {
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                std::io::ErrorKind::NotFound if cwd.is_empty() => {
                    fail(EXIT_NOT_FOUND, &format!("{name}: command not found"))
                }
                std::io::ErrorKind::NotFound => fail(
                    EXIT_NOT_FOUND,
                    &format!("{name}: command not found (or no directory {cwd})"),
                ),
                std::io::ErrorKind::PermissionDenied => {
                    fail(EXIT_NOT_EXECUTABLE, &format!("{name}: permission denied"))
                }
                _ => fail(EXIT_NOT_EXECUTABLE, &format!("{name}: cannot run: {e}")),
            };
        }
    };
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => return fail(EXIT_NOT_EXECUTABLE, &format!("agentd guard: {e}")),
    };
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => {
            // The same end as the program's, for the agent to report.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            ExitCode::from(128u8.wrapping_add(sig as u8))
        }
        _ => ExitCode::FAILURE,
    }
}

/// Reads one [`Program`] from stdin, unbuffered: what follows it on stdin
/// is left for the program.
fn read_program() -> std::io::Result<Program> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut len = [0u8; 4];
    stdin.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_PROGRAM_BYTES {
        return Err(std::io::Error::other(format!(
            "a program of {len} bytes (at most {MAX_PROGRAM_BYTES})"
        )));
    }
    let mut body = vec![0u8; len];
    stdin.read_exact(&mut body)?;
    Program::decode(&body).map_err(std::io::Error::other)
}

/// What a warm guard runs and how, as the agent writes it on the guard's
/// stdin: a little-endian u32 length, then flags (1: keep stdin, 2: set
/// user), uid, gid, argv, environment, working directory (counts and
/// lengths as u32, strings UTF-8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    pub argv: Vec<String>,
    /// Set in the program's environment, over the agent's.
    pub env: Vec<(String, String)>,
    /// Empty: the agent's.
    pub cwd: String,
    /// Whether the program reads the rest of stdin; else /dev/null.
    pub stdin: bool,
    /// uid and gid to run as; None: the agent's.
    pub user: Option<(u32, u32)>,
}

impl Program {
    /// The bytes a warm guard reads, length first.
    pub fn encode(&self) -> Vec<u8> {
        fn put(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let mut b = vec![0u8; 4];
        b.push(u8::from(self.stdin) | (u8::from(self.user.is_some()) << 1));
        let (uid, gid) = self.user.unwrap_or_default();
        b.extend_from_slice(&uid.to_le_bytes());
        b.extend_from_slice(&gid.to_le_bytes());
        b.extend_from_slice(&(self.argv.len() as u32).to_le_bytes());
        for a in &self.argv {
            put(&mut b, a);
        }
        b.extend_from_slice(&(self.env.len() as u32).to_le_bytes());
        for (k, v) in &self.env {
            put(&mut b, k);
            put(&mut b, v);
        }
        put(&mut b, &self.cwd);
        let len = (b.len() - 4) as u32;
        b[..4].copy_from_slice(&len.to_le_bytes());
        b
    }

    /// A program from its bytes after the length.
    fn decode(mut b: &[u8]) -> Result<Self, String> {
        fn u32_of(b: &mut &[u8]) -> Result<u32, String> {
            let (head, rest) = b.split_first_chunk::<4>().ok_or("a truncated program")?;
            *b = rest;
            Ok(u32::from_le_bytes(*head))
        }
        fn string(b: &mut &[u8]) -> Result<String, String> {
            let len = u32_of(b)? as usize;
            if len > b.len() {
                return Err("a truncated program".into());
            }
            let (s, rest) = b.split_at(len);
            *b = rest;
            String::from_utf8(s.to_vec()).map_err(|_| "a program that is not UTF-8".into())
        }
        let (&flags, rest) = b.split_first().ok_or("an empty program")?;
        b = rest;
        let (uid, gid) = (u32_of(&mut b)?, u32_of(&mut b)?);
        // Counts are bounded by what is left: every entry takes 4 bytes.
        let count = |b: &mut &[u8]| {
            u32_of(b).and_then(|n| {
                (n as usize <= b.len() / 4)
                    .then_some(n as usize)
                    .ok_or_else(|| "a truncated program".to_string())
            })
        };
        let argc = count(&mut b)?;
        let argv = (0..argc)
            .map(|_| string(&mut b))
            .collect::<Result<Vec<_>, _>>()?;
        let envc = count(&mut b)?;
        let env = (0..envc)
            .map(|_| Ok((string(&mut b)?, string(&mut b)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let cwd = string(&mut b)?;
        if argv.first().is_none_or(String::is_empty) {
            return Err("a program without a name".into());
        }
        if !b.is_empty() {
            return Err("bytes after the program".into());
        }
        Ok(Self {
            argv,
            env,
            cwd,
            stdin: flags & 1 != 0,
            user: (flags & 2 != 0).then_some((uid, gid)),
        })
    }
}

/// A guard started before its program is known: it is set up (its own
/// start-up, signals, the watch on the agent) while it waits, so that a
/// session started through it costs only the program's own start. Write
/// the program ([`Program::encode`]) on its stdin. Stdio piped, leader of
/// its own process group. None where guards are not available.
pub fn warm_command() -> Option<tokio::process::Command> {
    if !GUARD_AVAILABLE.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let mut cmd = tokio::process::Command::new(SELF_EXE);
    cmd.arg(GUARD_ARG)
        .arg(std::process::id().to_string())
        .arg(WARM_ARG)
        .process_group(0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    Some(cmd)
}

/// Says why on stderr (the program's stderr: the operator reads it) and
/// returns `code`.
#[allow(clippy::print_stderr)]
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(code)
}

/// Longest [`stop_leftover`] waits for a leftover group to go.
const LEFTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A file naming the guard of a running program (a reload command), so
/// that an agent started after a crash can make sure it is gone before it
/// runs the program again. Removed on drop.
pub struct Marker(std::path::PathBuf);

impl Marker {
    /// Writes `path` naming guard `pid` (best effort: without the file the
    /// guard still kills its group when the agent dies).
    pub fn write(path: &std::path::Path, pid: Option<u32>) -> Self {
        if let Some(pid) = pid
            && let Err(e) = std::fs::write(path, format!("{pid}\n"))
        {
            tracing::debug!(file = %path.display(), error = %e, "cannot write the reload marker");
        }
        Self(path.to_path_buf())
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// At start: if `path` names a guard that still runs (its agent died
/// before the guard could act), kills its process group and waits, up to
/// a few seconds, until it is gone; then removes the file.
pub fn stop_leftover(path: &std::path::Path) {
    let Some(pid) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        let _ = std::fs::remove_file(path);
        return;
    };
    let is_guard = || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == GUARD_ARG.as_bytes()))
    };
    if is_guard() {
        tracing::warn!(
            pid,
            "a reload command of an earlier run still runs; killing it before applying again"
        );
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let deadline = std::time::Instant::now() + LEFTOVER_WAIT;
        while is_guard() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_reads_back_as_written() {
        let p = Program {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo 'a\nb'".into(),
                String::new(),
            ],
            env: vec![("K".into(), "v=1".into()), ("É".into(), String::new())],
            cwd: "/tmp".into(),
            stdin: true,
            user: Some((1000, 100)),
        };
        let bytes = p.encode();
        assert_eq!(
            u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len() - 4
        );
        assert_eq!(Program::decode(&bytes[4..]), Ok(p));
        let plain = Program {
            argv: vec!["true".into()],
            ..Default::default()
        };
        assert_eq!(Program::decode(&plain.encode()[4..]), Ok(plain));
    }

    #[test]
    fn a_damaged_program_is_refused() {
        let p = Program {
            argv: vec!["true".into()],
            env: vec![("A".into(), "b".into())],
            ..Default::default()
        };
        let body = p.encode()[4..].to_vec();
        for cut in 0..body.len() {
            assert!(Program::decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(Program::decode(&longer).is_err());
        let nameless = Program::default().encode();
        assert!(Program::decode(&nameless[4..]).is_err());
        // A count far beyond the bytes left is refused before any
        // allocation.
        let mut huge = body;
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Program::decode(&huge).is_err());
    }
}
