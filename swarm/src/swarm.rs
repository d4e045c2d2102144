//! The swarm as a whole: settings from the command line and the template,
//! the agents' start (all at once or spread over `--ramp`), watching them,
//! and the clean stop on SIGTERM or SIGINT (every link says goodbye, so the
//! master shows its node offline at once; final statistics; the temporary
//! directory removed).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd::AgentConfig;
use agentd::identity;
use cdn_common::tls::JoinToken;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::cli::Args;
use crate::enrol::Enroller;
use crate::error::SwarmError;
use crate::hollow::{self, Shared, Slot};
use crate::stats::Monitor;
use crate::template::Template;

/// How often the agents are looked at (progress, "all registered").
const MONITOR_TICK: Duration = Duration::from_millis(200);
/// How long a stop waits for the agents to say goodbye and their applies
/// to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the swarm runs, checked before anything starts.
#[derive(Debug)]
pub struct Settings {
    /// The agent template with `--master` applied.
    pub config: AgentConfig,
    /// Agents to run.
    pub count: u64,
    /// Node id prefix.
    pub prefix: String,
    /// Number of the first agent.
    pub start_index: u64,
    /// Root of the per-agent directories; None: a temporary one.
    pub data_dir: Option<PathBuf>,
    /// None with `--insecure`, or when no token was given.
    pub token: Option<JoinToken>,
    /// Plaintext, no identities.
    pub insecure: bool,
    /// Time over which the starts are spread.
    pub ramp: Duration,
    /// Enrolments in flight at once.
    pub enrol_concurrency: u32,
    /// Statistics file, if asked for.
    pub stats: Option<PathBuf>,
    /// How often the statistics file is rewritten.
    pub stats_interval: Duration,
}

impl Settings {
    /// Loads the template and applies the flags; a bad file, address or
    /// token is a configuration error.
    pub fn from_args(args: Args) -> Result<Self, SwarmError> {
        let mut config = match &args.config {
            Some(path) => AgentConfig::load(path).map_err(|e| SwarmError::Config(e.to_string()))?,
            None => AgentConfig::default(),
        };
        if let Some(addr) = args.master {
            if addr.host.is_empty() {
                return Err(SwarmError::Config(format!(
                    "--master `{addr}` has no host; write for example 127.0.0.1:{}",
                    addr.port
                )));
            }
            config.master.addr.0 = vec![addr];
        }
        let token = if args.insecure {
            None
        } else {
            identity::join_token(&config, args.join_token.as_deref())
                .map_err(|e| SwarmError::Config(e.to_string()))?
        };
        Ok(Self {
            config,
            count: u64::from(args.count),
            prefix: args.prefix,
            start_index: args.start_index,
            data_dir: args.data_dir,
            token,
            insecure: args.insecure,
            ramp: args.ramp,
            enrol_concurrency: args.enrol_concurrency,
            stats: args.stats,
            stats_interval: args.stats_interval,
        })
    }
}

/// The agents' root directory: the one asked for, or a temporary one that
/// is removed when this drops.
enum DataRoot {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl DataRoot {
    fn open(dir: Option<&PathBuf>) -> Result<Self, SwarmError> {
        match dir {
            Some(d) => {
                cdn_common::tls::create_private_dir(d).map_err(|e| SwarmError::DataDir {
                    path: d.display().to_string(),
                    message: cdn_common::describe_io(&e),
                })?;
                Ok(Self::Kept(d.clone()))
            }
            None => tempfile::Builder::new()
                .prefix("cdn-swarm-")
                .tempdir()
                .map(Self::Temporary)
                .map_err(|e| SwarmError::DataDir {
                    path: std::env::temp_dir()
                        .join("cdn-swarm-*")
                        .display()
                        .to_string(),
                    message: cdn_common::describe_io(&e),
                }),
        }
    }

    fn path(&self) -> PathBuf {
        match self {
            Self::Kept(p) => p.clone(),
            Self::Temporary(t) => t.path().to_path_buf(),
        }
    }
}

/// Why the swarm stopped.
enum Stop {
    Signal,
    Fatal(SwarmError),
}

/// Runs the swarm until SIGTERM or SIGINT (Ok) or until an agent hits an
/// error a retry cannot fix (Err). `fd_limit` is reported in the stats.
pub async fn run(settings: Settings, fd_limit: u64) -> Result<(), SwarmError> {
    let root = DataRoot::open(settings.data_dir.as_ref())?;
    let template = Template::new(
        settings.config,
        &settings.prefix,
        settings.start_index,
        settings.count,
        &root.path(),
    )?;
    if settings.insecure {
        warn!(
            "*** --insecure: plaintext to the master, no certificates: only for a master started with --insecure on a trusted network ***"
        );
    }
    let count = template.count();
    let masters: Vec<String> = template
        .base()
        .master
        .addr
        .0
        .iter()
        .map(|a| a.to_string())
        .collect();
    info!(
        first = %template.node_id(0),
        last = %template.node_id(count - 1),
        masters = ?masters,
        dir = %root.path().display(),
        ramp_ms = settings.ramp.as_millis() as u64,
        "starting {count} hollow agents"
    );

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let status = agentd::status::spawn_collector(
        template.base().status.collect_interval,
        shutdown.clone(),
        &tasks,
    );
    let (fatal_tx, mut fatal_rx) = mpsc::channel(1);
    let shared = Arc::new(Shared {
        template,
        enroller: Enroller::new(
            settings.token,
            settings.insecure,
            settings.enrol_concurrency as usize,
        ),
        status,
        slots: (0..count).map(|_| Slot::default()).collect(),
        tasks: tasks.clone(),
        fatal: fatal_tx,
    });

    let started_at = Instant::now();
    let t0 = tokio::time::Instant::now();
    for offset in 0..count {
        let start_at = t0 + settings.ramp.mul_f64(offset as f64 / count as f64);
        tasks.spawn(hollow::run(
            Arc::clone(&shared),
            offset,
            start_at,
            shutdown.clone(),
        ));
    }

    let mut monitor = Monitor::new(
        started_at,
        fd_limit,
        settings.stats,
        settings.stats_interval,
    );
    let signal = cdn_common::shutdown_signal();
    tokio::pin!(signal);
    let mut tick = tokio::time::interval(MONITOR_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = loop {
        tokio::select! {
            _ = &mut signal => break Stop::Signal,
            Some(e) = fatal_rx.recv() => break Stop::Fatal(e),
            _ = tick.tick() => monitor.tick(&shared),
        }
    };
    match &stop {
        Stop::Signal => info!("signal received; stopping {count} agents"),
        Stop::Fatal(e) => warn!("stopping {count} agents: {e}"),
    }
    monitor.tick(&shared);
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        warn!(
            "agents still stopping after {}; exiting anyway",
            cdn_common::duration::short(SHUTDOWN_GRACE)
        );
    }
    monitor.finish(&shared);
    drop(shared);
    if let DataRoot::Temporary(dir) = root {
        let path = dir.path().display().to_string();
        if let Err(e) = dir.close() {
            warn!("cannot remove {path}: {}", cdn_common::describe_io(&e));
        }
    }
    match stop {
        Stop::Signal => {
            info!("cdn-swarm stopped");
            Ok(())
        }
        Stop::Fatal(e) => Err(e),
    }
}
