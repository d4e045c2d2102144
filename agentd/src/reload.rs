//! SIGHUP: agent.yml read again and put in force while the agent runs,
//! as `masterd` does with master.yml.
//!
//! What changes at once: `heartbeat.*` and `status.*` (intervals, timeout,
//! degraded thresholds; a new interval starts its ticker afresh),
//! `config.*` but `config.path` (for the next apply), `exec.*` (for the
//! next session; sessions under way keep the policy they started with),
//! and `node.labels` and `compression.accept`, which the agent tells the
//! master by registering again on its connection (exec sessions under way
//! carry on).
//!
//! What needs a restart, because it is bound at start: `master.*` (the
//! addresses and how to dial them, TLS trust, the join token), `node.id`,
//! `data_dir` and `config.path`. A reload that changes one of them logs
//! the keys and keeps running on their old values. A file with an error
//! is refused with its file, line and key, and nothing changes. The
//! service manager is told `RELOADING=1` then `READY=1` around each
//! reload (see [`cdn_common::notify`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use cdn_common::notify;
use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::apply::Applier;
use crate::config::AgentConfig;
use crate::daemon::Source;
use crate::exec::Executor;

/// Free-form mappings of agent.yml: one key each, however many entries.
pub const MAP_KEYS: &[&str] = &["node.labels"];

/// Keys read once at start: a change waits for a restart. A key is
/// matched whole, or as the prefix of its section (`master.`).
const RESTART_KEYS: &[&str] = &["master.", "node.id", "data_dir", "config.path"];

/// Every key of `config` as a dotted path, with its value.
pub fn keys(config: &AgentConfig) -> BTreeMap<String, Value> {
    cdn_common::keys::dotted(config, MAP_KEYS)
}

/// Whether a change of `key` waits for a restart.
pub fn needs_restart(key: &str) -> bool {
    RESTART_KEYS
        .iter()
        .any(|r| key == *r || (r.ends_with('.') && key.starts_with(r)))
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Keys now in force.
    pub applied: Vec<String>,
    /// Keys that changed in the file but keep their old value until a
    /// restart.
    pub needs_restart: Vec<String>,
}

/// `new` as it can be put in force over `running`: the keys read only at
/// start keep their running values. Returns that configuration and what
/// changed.
pub fn merge(running: &AgentConfig, mut new: AgentConfig) -> (AgentConfig, Changes) {
    let (before, after) = (keys(running), keys(&new));
    let (needs_restart, applied) = cdn_common::keys::changed(&before, &after)
        .into_iter()
        .partition(|k| needs_restart(k));
    new.master = running.master.clone();
    new.node.id = running.node.id.clone();
    new.data_dir = running.data_dir.clone();
    new.config.path = running.config.path.clone();
    (
        new,
        Changes {
            applied,
            needs_restart,
        },
    )
}

/// The hang-up signals of the process. Installed first thing, so that a
/// SIGHUP never kills the agent (the default action): until
/// [`on_hangups`] takes them they wait, and one of them is acted on.
pub struct Hangups(Option<Signal>);

impl Hangups {
    /// Takes over SIGHUP; if the handler cannot be installed, says so and
    /// never yields.
    pub fn install() -> Self {
        match signal(SignalKind::hangup()) {
            Ok(s) => Self(Some(s)),
            Err(e) => {
                error!(error = %e, "cannot handle SIGHUP; agent.yml cannot be reloaded");
                Self(None)
            }
        }
    }

    /// None: no hang-ups will come (for a process that does not reload).
    pub fn none() -> Self {
        Self(None)
    }

    async fn next(&mut self) -> Option<()> {
        match &mut self.0 {
            Some(s) => s.recv().await,
            None => std::future::pending().await,
        }
    }
}

/// Puts a reloaded agent.yml in force: the live configuration the link
/// and the collector follow, the applier's and the executor's settings.
pub struct Reloader {
    source: Source,
    live: watch::Sender<Arc<AgentConfig>>,
    applier: Applier,
    executor: Executor,
}

impl Reloader {
    /// A reloader reading `source` into `live`, `applier` and `executor`.
    pub fn new(
        source: Source,
        live: watch::Sender<Arc<AgentConfig>>,
        applier: Applier,
        executor: Executor,
    ) -> Self {
        Self {
            source,
            live,
            applier,
            executor,
        }
    }

    /// Reads the configuration again and puts in force what can change;
    /// an unusable file changes nothing and is logged.
    pub fn reload(&self) {
        let Some(file) = &self.source.file else {
            warn!("SIGHUP: started without -c, nothing to reload");
            return;
        };
        let new = match self.source.load() {
            Ok((config, _)) => config,
            Err(e) => {
                error!("SIGHUP: agent.yml not reloaded, the running configuration stays: {e}");
                return;
            }
        };
        let running = Arc::clone(&self.live.borrow());
        let (config, changes) = merge(&running, new);
        if changes.applied.is_empty() && changes.needs_restart.is_empty() {
            info!(file = %file.display(), "SIGHUP: agent.yml reloaded; nothing changed");
            return;
        }
        if !changes.applied.is_empty() {
            self.applier.reconfigure(config.config.clone());
            self.executor.set_policy(config.exec.clone());
            self.live.send_replace(Arc::new(config));
        }
        info!(
            file = %file.display(),
            applied = ?changes.applied,
            needs_restart = ?changes.needs_restart,
            "SIGHUP: agent.yml reloaded"
        );
        if !changes.needs_restart.is_empty() {
            warn!(
                "SIGHUP: changed keys that take effect only after a restart: {}; running on their old values",
                changes.needs_restart.join(", ")
            );
        }
    }
}

/// Reloads on each hang-up until `stop`, telling the service manager
/// around each reload.
pub async fn on_hangups(mut hangups: Hangups, reloader: Reloader, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            got = hangups.next() => if got.is_none() { return },
        }
        notify::reloading();
        reloader.reload();
        notify::reloaded();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    fn parse(text: &str) -> AgentConfig {
        cdn_common::config::parse_and_validate(Path::new("agent.yml"), text).unwrap()
    }

    #[test]
    fn run_time_keys_change_and_start_keys_wait_for_a_restart() {
        let running = parse(
            "master:\n  addr: a:1\nnode:\n  id: n1\n  labels:\n    pop: fra\nheartbeat:\n  interval: 10s\n",
        );
        let new = parse(
            "master:\n  addr: b:2\nnode:\n  id: n2\n  labels:\n    pop: ams\nheartbeat:\n  interval: 2s\nexec:\n  enabled: false\n",
        );
        let (merged, changes) = merge(&running, new);
        assert_eq!(
            changes.applied,
            ["exec.enabled", "heartbeat.interval", "node.labels"]
        );
        assert_eq!(changes.needs_restart, ["master.addr", "node.id"]);
        assert_eq!(merged.master.addr.0[0].to_string(), "a:1");
        assert_eq!(merged.node.id.as_deref(), Some("n1"));
        assert_eq!(merged.node.labels["pop"], "ams");
        assert_eq!(merged.heartbeat.interval, Duration::from_secs(2));
        assert!(!merged.exec.enabled);
    }

    #[test]
    fn an_unchanged_file_changes_nothing() {
        let text = "node:\n  labels:\n    role: edge\nconfig:\n  reload_command: nginx -s reload\n";
        let (_, changes) = merge(&parse(text), parse(text));
        assert_eq!(changes, Changes::default());
    }

    #[test]
    fn restart_keys_are_matched_whole_or_by_section() {
        assert!(needs_restart("master.keepalive.time"));
        assert!(needs_restart("config.path"));
        assert!(!needs_restart("config.path_extra"));
        assert!(!needs_restart("config.reload_command"));
        assert!(!needs_restart("node.labels"));
    }
}
