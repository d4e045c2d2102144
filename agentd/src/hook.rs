//! Running one of the operator's shell commands from agent.yml (the
//! reload command, the health command): `sh -c` under a guard, in its own
//! process group, with a time limit, keeping the tail of what it wrote.
//!
//! Its exit decides, not the closing of its pipes (a daemon it restarts
//! may keep them open); past the time limit the whole group is killed.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How long the output of a failed command is still read after it exits.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// Bytes of a command's output kept for the report.
pub const OUTPUT_TAIL_BYTES: usize = 512;

/// One command to run.
pub struct Hook<'a> {
    /// Run with `sh -c`.
    pub command: &'a str,
    /// Added to agentd's environment (`NOTIFY_SOCKET` is always removed:
    /// systemd's socket is agentd's, not the edge software's).
    pub env: Vec<(&'static str, OsString)>,
    /// The whole process group is killed past this.
    pub timeout: Duration,
    /// Keep the tail of stdout too (else stdout goes to /dev/null).
    pub capture_stdout: bool,
    /// A file naming the guard while the command runs (see
    /// [`crate::guard::Marker`]).
    pub marker: Option<&'a Path>,
}

/// How a command failed; `output` is the tail of what it wrote (stderr,
/// or stdout when stderr was empty), at most [`OUTPUT_TAIL_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// Exited with a non-zero code.
    Failed { code: i32, output: String },
    /// Killed by a signal.
    Killed { signal: i32, output: String },
    /// Still running after the time limit; its group was killed.
    Timeout { after: Duration },
    /// Could not be started.
    Spawn(String),
}

impl HookError {
    /// What the command wrote, if anything was kept.
    pub fn output(&self) -> &str {
        match self {
            Self::Failed { output, .. } | Self::Killed { output, .. } => output,
            Self::Timeout { .. } | Self::Spawn(_) => "",
        }
    }
}

/// The last bytes of a stream, at most [`OUTPUT_TAIL_BYTES`].
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        let excess = self.0.len().saturating_sub(OUTPUT_TAIL_BYTES);
        self.0.drain(..excess);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// Runs `hook` to its end (or its time limit).
pub async fn run(hook: Hook<'_>) -> Result<(), HookError> {
    // Under a guard: the command dies with the agent, even a killed one.
    let mut cmd = crate::guard::command("sh");
    cmd.arg("-c").arg(hook.command);
    for (k, v) in &hook.env {
        cmd.env(k, v);
    }
    let stdout = if hook.capture_stdout {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    };
    let mut child = cmd
        .env_remove("NOTIFY_SOCKET")
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HookError::Spawn(e.to_string()))?;
    let group = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    // Dropped before the command exits (the caller gave up: the agent
    // stops): its whole group goes, not only the guard.
    let mut running = GroupKill(group);
    let _marker = hook
        .marker
        .map(|m| crate::guard::Marker::write(m, child.id()));
    let mut err_pipe = child.stderr.take();
    let mut out_pipe = child.stdout.take();
    let (mut err, mut out) = (Tail::default(), Tail::default());
    let mut buf = [0u8; 4096];
    let mut buf2 = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + hook.timeout;
    let status = loop {
        tokio::select! {
            s = child.wait() => {
                // Exited: what it left running (a daemon it started) stays.
                running.0 = None;
                break s.map_err(|e| HookError::Spawn(e.to_string()))?;
            }
            n = read_some(&mut err_pipe, &mut buf) => match n {
                Some(n) => err.push(&buf[..n]),
                None => err_pipe = None,
            },
            n = read_some(&mut out_pipe, &mut buf2) => match n {
                Some(n) => out.push(&buf2[..n]),
                None => out_pipe = None,
            },
            _ = tokio::time::sleep_until(deadline) => {
                running.0 = None;
                if let Some(g) = group {
                    let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGKILL);
                }
                return Err(HookError::Timeout { after: hook.timeout });
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    // What the command wrote just before exiting may still be in the pipes.
    let grace = tokio::time::sleep(OUTPUT_GRACE);
    tokio::pin!(grace);
    while err_pipe.is_some() || out_pipe.is_some() {
        tokio::select! {
            _ = &mut grace => break,
            n = read_some(&mut err_pipe, &mut buf) => match n {
                Some(n) => err.push(&buf[..n]),
                None => err_pipe = None,
            },
            n = read_some(&mut out_pipe, &mut buf2) => match n {
                Some(n) => out.push(&buf2[..n]),
                None => out_pipe = None,
            },
        }
    }
    let output = match err.text() {
        e if e.trim().is_empty() => out.text(),
        e => e,
    };
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Err(HookError::Failed { code, output }),
        (None, Some(signal)) => Err(HookError::Killed { signal, output }),
        _ => Err(HookError::Failed { code: -1, output }),
    }
}

/// Kills a process group when dropped, unless disarmed (`None`).
struct GroupKill(Option<nix::unistd::Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// One read from `pipe`; None at EOF or on error; never resolves when
/// there is no pipe.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(p) => match p.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(command: &str) -> Hook<'_> {
        Hook {
            command,
            env: vec![("HOOK_TEST", "here".into())],
            timeout: Duration::from_secs(20),
            capture_stdout: true,
            marker: None,
        }
    }

    #[tokio::test]
    async fn exit_codes_signals_and_output_tails() {
        assert_eq!(run(hook("test \"$HOOK_TEST\" = here")).await, Ok(()));
        assert_eq!(
            run(hook("echo out; echo err >&2; exit 3")).await,
            Err(HookError::Failed {
                code: 3,
                output: "err\n".into()
            })
        );
        // Nothing on stderr: stdout says why.
        assert_eq!(
            run(hook("echo only out; exit 1")).await,
            Err(HookError::Failed {
                code: 1,
                output: "only out\n".into()
            })
        );
        assert!(matches!(
            run(hook("kill -9 $$")).await,
            Err(HookError::Killed { signal: 9, .. })
        ));
        // A long output keeps its end.
        let Err(HookError::Failed { output, .. }) =
            run(hook("seq 1 10000 >&2; echo LAST >&2; exit 1")).await
        else {
            panic!("expected a failure");
        };
        assert!(output.len() <= OUTPUT_TAIL_BYTES && output.ends_with("LAST\n"));
    }

    #[tokio::test]
    async fn a_command_past_its_time_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child");
        let command = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let mut h = hook(&command);
        h.timeout = Duration::from_millis(300);
        assert_eq!(
            run(h).await,
            Err(HookError::Timeout {
                after: Duration::from_millis(300)
            })
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The group was sent SIGKILL; the orphan is reaped by init, so
        // wait until it is gone (bounded).
        let gone = (0..200).any(|_| {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie_or_gone = state.is_empty() || state.contains(") Z ");
            if !zombie_or_gone {
                std::thread::sleep(Duration::from_millis(25));
            }
            zombie_or_gone
        });
        assert!(gone, "the timed-out command's child still runs");
    }
}
