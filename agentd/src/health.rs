//! The health command (agent.yml `config.health_command`): one owner task
//! runs it after every successful apply and reload, before the master is
//! told (the result travels in the ConfigAck), and every
//! `config.health_interval` besides. The latest result is published on a
//! watch channel: the link puts it in every heartbeat, sends one at once
//! when the state changes, and reports the node `degraded` while it fails.
//!
//! A SIGHUP that changes the command (or its interval or timeout) takes
//! effect at once: the new command runs right away; a command removed
//! leaves the node with no check.

use std::path::PathBuf;
use std::time::Duration;

use cdn_proto::Version;
use cdn_proto::v1::{HealthCheck, HealthState};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{LiveConfig, ManagedConfig};
use crate::hook::{Hook, HookError};

/// How the reason of an agent degraded by its health command starts.
pub const DEGRADED_PREFIX: &str = "health check failed: ";

/// Depth of the queue of checks asked for after applies.
const REQUEST_QUEUE_DEPTH: usize = 4;

/// What the last check said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No health command configured.
    NoCheck,
    /// A command is configured and has not finished its first run (the
    /// agent just started): nothing is reported, so the master keeps what
    /// it knew rather than hearing "no check".
    Pending,
    /// It exited 0.
    Ok,
    /// It failed; why ("exit 1: ...", "timed out after 10s").
    Failing(String),
}

/// One run of the health command (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthResult {
    /// What the command said.
    pub verdict: Verdict,
    /// The config version applied when it ran.
    pub version: Option<Version>,
    /// Wall clock, unix milliseconds, when it finished; 0 for no check.
    pub checked_ms: i64,
}

impl HealthResult {
    /// No check configured.
    pub fn none() -> Self {
        Self {
            verdict: Verdict::NoCheck,
            version: None,
            checked_ms: 0,
        }
    }

    /// The wire form for heartbeats and acks; None while pending.
    pub fn wire(&self) -> Option<HealthCheck> {
        let (state, detail) = match &self.verdict {
            Verdict::NoCheck => (HealthState::Unspecified, String::new()),
            Verdict::Pending => return None,
            Verdict::Ok => (HealthState::Ok, String::new()),
            Verdict::Failing(d) => (HealthState::Failing, d.clone()),
        };
        Some(HealthCheck {
            state: state.into(),
            detail,
            config_version: Version::to_u64(self.version),
            checked_ms: self.checked_ms,
        })
    }

    /// Why the node is degraded by its health command, if it is.
    pub fn degraded_reason(&self) -> Option<String> {
        match &self.verdict {
            Verdict::Failing(d) => Some(format!("{DEGRADED_PREFIX}{d}")),
            _ => None,
        }
    }

    /// Whether `other` says the same thing (ok, failing, no check),
    /// whatever its detail, version or time.
    pub fn same_state(&self, other: &Self) -> bool {
        std::mem::discriminant(&self.verdict) == std::mem::discriminant(&other.verdict)
    }
}

/// How a failed run reads in the report: "exit 3: <its last lines>",
/// "killed by signal 9", "timed out after 10s".
pub fn describe(e: &HookError) -> String {
    let tail = |out: &str| {
        let t = out.trim();
        if t.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            format!(": {}", lines.join(" | "))
        }
    };
    match e {
        HookError::Failed { code, output } => format!("exit {code}{}", tail(output)),
        HookError::Killed { signal, output } => {
            format!("killed by signal {signal}{}", tail(output))
        }
        HookError::Timeout { after } => {
            format!("timed out after {}", cdn_common::duration::short(*after))
        }
        HookError::Spawn(e) => format!("cannot run the health command: {e}"),
    }
}

/// What the applier asks of the owner task.
enum Request {
    /// An apply starts: no periodic check until it is over (a check
    /// running now finishes first, then the reply goes), so no check sees
    /// a file half reloaded.
    Hold(oneshot::Sender<()>),
    /// The apply failed (the previous file is back): periodic checks go on.
    Release,
    /// The apply of this version succeeded: check now, then go on.
    Check(Version, oneshot::Sender<HealthResult>),
}

/// Asks the owner task for checks; cheap to clone.
#[derive(Clone)]
pub struct HealthChecker {
    requests: mpsc::Sender<Request>,
    latest: watch::Receiver<HealthResult>,
}

impl HealthChecker {
    /// Starts the owner task: it follows `live` for the command, its
    /// interval and timeout, runs it with `CDN_CONFIG_PATH` = `config_path`
    /// and `CDN_CONFIG_VERSION` = the applied version (`applied` at first),
    /// and stops on `stop`.
    pub fn start(
        live: LiveConfig,
        config_path: PathBuf,
        applied: Option<Version>,
        stop: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (requests, rx) = mpsc::channel(REQUEST_QUEUE_DEPTH);
        let first = if live.borrow().config.health_command().is_some() {
            HealthResult {
                verdict: Verdict::Pending,
                version: applied,
                checked_ms: 0,
            }
        } else {
            HealthResult::none()
        };
        let (publish, latest) = watch::channel(first);
        let owner = Owner {
            live,
            config_path,
            version: applied,
            publish,
        };
        tasks.spawn(owner.run(rx, stop));
        Self { requests, latest }
    }

    /// An apply starts: returns once no check runs, and none starts until
    /// [`HealthChecker::check_after_apply`] or [`HealthChecker::release`].
    pub async fn hold(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Hold(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The apply failed: periodic checks go on.
    pub async fn release(&self) {
        let _ = self.requests.send(Request::Release).await;
    }

    /// Runs the check now for `version`, just applied, and returns its
    /// result (also published); periodic checks go on after it. A stopped
    /// checker says there is no check.
    pub async fn check_after_apply(&self, version: Version) -> HealthResult {
        let (tx, rx) = oneshot::channel();
        if self
            .requests
            .send(Request::Check(version, tx))
            .await
            .is_err()
        {
            return HealthResult::none();
        }
        rx.await.unwrap_or_else(|_| HealthResult::none())
    }

    /// The latest result, updated after every run.
    pub fn watch(&self) -> watch::Receiver<HealthResult> {
        self.latest.clone()
    }
}

/// The task that runs the checks.
struct Owner {
    live: LiveConfig,
    config_path: PathBuf,
    version: Option<Version>,
    publish: watch::Sender<HealthResult>,
}

/// The settings of the health command in force.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    command: Option<String>,
    interval: Duration,
    timeout: Duration,
}

impl Settings {
    fn of(c: &ManagedConfig) -> Self {
        Self {
            command: c.health_command().map(str::to_string),
            interval: c.health_interval,
            timeout: c.health_timeout,
        }
    }
}

impl Owner {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>, stop: CancellationToken) {
        let mut settings = Settings::of(&self.live.borrow_and_update().config);
        let mut live_open = true;
        // An apply is under way: no periodic check.
        let mut held = false;
        // The first check at once.
        let mut next = Instant::now();
        loop {
            let periodic = settings.command.is_some() && !held;
            tokio::select! {
                _ = stop.cancelled() => return,
                req = requests.recv() => match req {
                    None => return,
                    Some(Request::Hold(reply)) => {
                        held = true;
                        let _ = reply.send(());
                    }
                    Some(Request::Release) => held = false,
                    Some(Request::Check(version, reply)) => {
                        held = false;
                        self.version = Some(version);
                        let Some(result) = self.check(&settings, &stop).await else { return };
                        let _ = reply.send(result);
                        next = Instant::now() + settings.interval;
                    }
                },
                _ = tokio::time::sleep_until(next), if periodic => {
                    if self.check(&settings, &stop).await.is_none() {
                        return;
                    }
                    next = Instant::now() + settings.interval;
                }
                changed = self.live.changed(), if live_open => {
                    if changed.is_err() {
                        live_open = false;
                        continue;
                    }
                    let now = Settings::of(&self.live.borrow_and_update().config);
                    if now == settings {
                        continue;
                    }
                    info!(
                        command = now.command.as_deref().unwrap_or(""),
                        interval = %cdn_common::duration::short(now.interval),
                        timeout = %cdn_common::duration::short(now.timeout),
                        "health command settings changed"
                    );
                    settings = now;
                    next = Instant::now();
                    if settings.command.is_none() {
                        self.publish.send_replace(HealthResult::none());
                    }
                }
            }
        }
    }

    /// Runs the check, publishes and returns its result; None when `stop`
    /// came first (the command is killed).
    async fn check(&self, settings: &Settings, stop: &CancellationToken) -> Option<HealthResult> {
        let Some(command) = settings.command.as_deref() else {
            let none = HealthResult::none();
            self.publish.send_replace(none.clone());
            return Some(none);
        };
        let hook = Hook {
            command,
            env: vec![
                ("CDN_CONFIG_PATH", self.config_path.clone().into_os_string()),
                ("CDN_CONFIG_VERSION", Version::to_wire(self.version).into()),
            ],
            timeout: settings.timeout,
            capture_stdout: true,
            marker: None,
        };
        let outcome = tokio::select! {
            _ = stop.cancelled() => return None,
            r = crate::hook::run(hook) => r,
        };
        let verdict = match outcome {
            Ok(()) => Verdict::Ok,
            Err(e) => Verdict::Failing(describe(&e)),
        };
        let result = HealthResult {
            verdict,
            version: self.version,
            checked_ms: cdn_common::unix_millis_now(),
        };
        let before = self.publish.send_replace(result.clone());
        if !before.same_state(&result) {
            match &result.verdict {
                Verdict::Failing(why) => {
                    warn!(version = ?self.version, "health check failing: {why}")
                }
                _ => info!(version = ?self.version, "health check passes"),
            }
        }
        Some(result)
    }
}

/// A receiver that never changes from "no check", for links without a
/// health checker (the hollow agents of the swarm).
pub fn no_checker() -> watch::Receiver<HealthResult> {
    static NONE: std::sync::OnceLock<watch::Sender<HealthResult>> = std::sync::OnceLock::new();
    NONE.get_or_init(|| watch::channel(HealthResult::none()).0)
        .subscribe()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn failures_read_as_the_operator_expects() {
        assert_eq!(
            describe(&HookError::Failed {
                code: 2,
                output: "partial line\nbad upstream\n\n  cache full  \n".into()
            }),
            "exit 2: partial line | bad upstream | cache full"
        );
        assert_eq!(
            describe(&HookError::Failed {
                code: 1,
                output: String::new()
            }),
            "exit 1"
        );
        assert_eq!(
            describe(&HookError::Killed {
                signal: 9,
                output: String::new()
            }),
            "killed by signal 9"
        );
        assert_eq!(
            describe(&HookError::Timeout {
                after: Duration::from_secs(10)
            }),
            "timed out after 10s"
        );
    }

    #[tokio::test]
    async fn checks_after_an_apply_and_follows_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("edge.yml");
        let mut cfg = crate::config::AgentConfig::default();
        cfg.config.health_command = Some("grep -q good \"$CDN_CONFIG_PATH\"".into());
        cfg.config.health_interval = Duration::from_secs(3600);
        let (tx, live) = watch::channel(Arc::new(cfg.clone()));
        let tasks = tokio_util::task::TaskTracker::new();
        let stop = CancellationToken::new();
        let checker = HealthChecker::start(live, marker.clone(), None, stop.clone(), &tasks);
        assert_eq!(checker.watch().borrow().wire(), None, "pending at first");
        std::fs::write(&marker, "good\n").unwrap();
        let v1 = Version::new(1).unwrap();
        let r = checker.check_after_apply(v1).await;
        assert_eq!(r.verdict, Verdict::Ok);
        assert_eq!(r.version, Some(v1));
        std::fs::write(&marker, "bad\n").unwrap();
        let r = checker.check_after_apply(Version::new(2).unwrap()).await;
        assert_eq!(r.verdict, Verdict::Failing("exit 1".into()));
        assert_eq!(*checker.watch().borrow(), r);
        assert_eq!(r.degraded_reason().unwrap(), "health check failed: exit 1");
        // A reload removing the command: no check.
        let mut watch = checker.watch();
        cfg.config.health_command = None;
        tx.send_replace(Arc::new(cfg));
        let none = watch
            .wait_for(|r| r.verdict == Verdict::NoCheck)
            .await
            .unwrap()
            .clone();
        assert_eq!(none.wire().unwrap().state, HealthState::Unspecified as i32);
        assert_eq!(
            checker.check_after_apply(Version::new(3).unwrap()).await,
            HealthResult::none()
        );
        stop.cancel();
    }
}
