//! The agent process from its settings to its stop: the settings (the
//! config file with the flags applied), the identity (kept, or enrolled for
//! with the join token), then the link with its status collector, applier
//! and executor until shutdown. `main.rs` only wires this to the command
//! line, logging, the runtime and the signals.

use std::path::PathBuf;
use std::sync::Arc;

use cdn_common::notify;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::apply::Applier;
use crate::cli::Args;
use crate::config::AgentConfig;
use crate::exec::Executor;
use crate::identity::{self, Identity, IdentityError};
use crate::link::Link;
use crate::reload::{self, Hangups, Reloader};
use crate::status;

/// Why the agent cannot start; each is one line for the user, and every
/// one needs a person to act (exit code 78, `EX_CONFIG`).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The config file, a flag or the node id is unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// The agent has no identity and retrying cannot get it one: no token,
    /// a refused enrolment, or an unreadable or foreign identity on disk.
    #[error("{0}")]
    Identity(String),
}

impl AgentError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Identity(_) => cdn_common::EXIT_CONFIG,
        }
    }
}

/// What the agent runs with, checked before anything starts.
#[derive(Debug)]
pub struct Settings {
    /// `agent.yml` (or the defaults) with `--node-id` and `--data-dir`
    /// applied.
    pub config: AgentConfig,
    /// The node id in force.
    pub node_id: String,
    /// Plaintext to a master started with `--insecure`, no identity.
    pub insecure: bool,
    /// `--join-token` / `$AGENTD_JOIN_TOKEN`, which wins over the config.
    pub join_token: Option<String>,
    /// Where `config` came from and the flags that override it, to read
    /// it again on SIGHUP.
    pub source: Source,
}

/// Where the configuration comes from: `-c FILE` (None: the built-in
/// defaults) and the flags that win over it.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `-c FILE`.
    pub file: Option<PathBuf>,
    /// `--node-id`.
    pub node_id: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

impl Source {
    /// Reads the file (or takes the defaults) and applies the flags; a bad
    /// file, flag or node id is a configuration error naming file, line
    /// and key.
    pub fn load(&self) -> Result<(AgentConfig, String), AgentError> {
        let mut config = match &self.file {
            Some(path) => AgentConfig::load(path).map_err(|e| AgentError::Config(e.to_string()))?,
            None => AgentConfig::default(),
        };
        if let Some(id) = &self.node_id {
            cdn_common::check_node_id(id)
                .map_err(|e| AgentError::Config(format!("--node-id: {e}")))?;
            config.node.id = Some(id.clone());
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        let node_id = config.node_id().map_err(AgentError::Config)?;
        Ok((config, node_id))
    }
}

impl Settings {
    /// Loads the config file and applies the flags; a bad file, flag or
    /// node id is a configuration error.
    pub fn from_args(args: Args) -> Result<Self, AgentError> {
        let source = Source {
            file: args.config,
            node_id: args.node_id,
            data_dir: args.data_dir,
        };
        let (config, node_id) = source.load()?;
        Ok(Self {
            config,
            node_id,
            insecure: args.insecure,
            join_token: args.join_token,
            source,
        })
    }
}

/// Runs the agent until `shutdown`: gets its identity (enrolling, and
/// retrying while the master is unreachable, if it has none), tells the
/// service manager it is ready, then serves the link until `shutdown`,
/// reloading agent.yml on each of `hangups` (SIGHUP; see
/// [`crate::reload`]), and stops its tasks. Ok also when `shutdown` came
/// during the enrolment. A hang-up during the enrolment is acted on once
/// the agent has its identity.
pub async fn run(
    settings: Settings,
    hangups: Hangups,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let Settings {
        config,
        node_id,
        insecure,
        join_token,
        source,
    } = settings;
    let identity = if insecure {
        warn!(
            "*** --insecure: plaintext to the master, no certificate: only for a master started with --insecure on a trusted network ***"
        );
        None
    } else {
        match identity(&config, &node_id, join_token.as_deref(), &shutdown).await? {
            Some(id) => Some(Arc::new(id)),
            None => return Ok(()),
        }
    };
    let config = Arc::new(config);
    let (live_tx, live) = watch::channel(Arc::clone(&config));
    // The link stops on `shutdown`; its helpers stop with it.
    let stop = shutdown.child_token();
    let tasks = TaskTracker::new();
    let status = status::spawn_collector_following(live.clone(), stop.clone(), &tasks);
    let masters: Vec<String> = config.master.addr.0.iter().map(|a| a.to_string()).collect();
    info!(node = %node_id, masters = ?masters, "agentd starting");
    let applier = Applier::start_with_health(live.clone(), stop.clone(), &tasks);
    let executor = Executor::new(config.exec.clone());
    let reloader = Reloader::new(source, live_tx, applier.clone(), executor.clone());
    let link = Link::new(
        Arc::clone(&config),
        node_id.clone(),
        status,
        applier,
        executor,
        identity,
    )
    .following(live)
    .reporting_status();
    notify::ready(&format!(
        "{node_id}: connecting to master {}",
        masters.join(", ")
    ));
    // On a worker thread, not the thread that blocks on the whole agent:
    // its heartbeats' wake-ups would cross threads (0.1 to 0.3 ms a round
    // trip here).
    let link_task = tasks.spawn(link.run(shutdown));
    tasks.spawn(reload::on_hangups(hangups, reloader, stop.clone()));
    tasks.close();
    let refused = link_task.await.ok().flatten();
    stop.cancel();
    tasks.wait().await;
    if let Some(why) = refused {
        // Exit 78: the unit does not restart it; a person enrols it again.
        return Err(AgentError::Identity(format!(
            "the master refused this node's certificate ({why}); agentd stops instead of retrying (each try counts against this address's login budget). To enrol again, remove the certificate from {} and start with a new join token",
            config.data_dir.display()
        )));
    }
    info!("agentd stopped");
    Ok(())
}

/// The agent's certificate: the one kept in `data_dir`, or a new one from
/// enrolling with the join token. None when `shutdown` came first.
async fn identity(
    config: &AgentConfig,
    node_id: &str,
    token_flag: Option<&str>,
    shutdown: &CancellationToken,
) -> Result<Option<Identity>, AgentError> {
    let refused = |e: IdentityError| AgentError::Identity(e.to_string());
    if let Some(id) = identity::load(config, node_id).map_err(refused)? {
        return Ok(Some(id));
    }
    let Some(token) = identity::join_token(config, token_flag).map_err(refused)? else {
        return Err(AgentError::Identity(format!(
            "not enrolled yet (no certificate in {}) and no join token: set master.join_token in agent.yml or pass --join-token (`masterd token create` makes one)",
            config.data_dir.display()
        )));
    };
    identity::enroll_retrying(config, node_id, &token, None, shutdown, |attempt, m| {
        warn!(attempt, "{m}; retrying")
    })
    .await
    .map_err(refused)
}
