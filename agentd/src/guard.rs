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
        .and_then(|p| p.to_str().and_then(|p| p.parse::<i32>().ok()));
    let rest: Vec<OsString> = args.collect();
    match (parent, rest.split_first()) {
        (Some(parent), Some((dashes, argv))) if dashes == "--" && !argv.is_empty() => {
            Some(guard(Pid::from_raw(parent), argv))
        }
        _ => Some(fail(
            EXIT_NOT_EXECUTABLE,
            &format!("usage: agentd {GUARD_ARG} AGENT_PID -- PROGRAM [ARG...]"),
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
    // Caught, not ignored: a caught signal is back to its default in the
    // program after exec, an ignored one would stay ignored there.
    let mut signals = match signal_hook::iterator::Signals::new([
        SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU,
    ]) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_NOT_EXECUTABLE, &format!("agentd guard: {e}")),
    };
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        return fail(EXIT_NOT_EXECUTABLE, &format!("agentd guard: {e}"));
    }
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
    let program = &argv[0];
    let mut child = match std::process::Command::new(program).args(&argv[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            let name = program.to_string_lossy();
            return match e.kind() {
                std::io::ErrorKind::NotFound => {
                    fail(EXIT_NOT_FOUND, &format!("{name}: command not found"))
                }
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
