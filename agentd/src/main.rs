//! `agentd` entry point: parse flags, load config, run the link until SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use agentd::apply::Applier;
use agentd::identity::{self, Identity, IdentityError};
use agentd::{AgentConfig, Link, status};
use cdn_common::logging;
use clap::Parser;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let args = agentd::cli::Args::parse();
    logging::init(args.log_format, "info");
    let mut config = match &args.config {
        Some(path) => match AgentConfig::load(path) {
            Ok(c) => c,
            Err(e) => return config_error(&e.to_string()),
        },
        None => AgentConfig::default(),
    };
    if let Some(id) = args.node_id {
        if let Err(e) = cdn_common::check_node_id(&id) {
            return config_error(&format!("--node-id: {e}"));
        }
        config.node.id = Some(id);
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let node_id = match config.node_id() {
        Ok(id) => id,
        Err(e) => return config_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(
        Arc::new(config),
        node_id,
        args.insecure,
        args.join_token,
    ))
}

#[allow(clippy::print_stderr)]
fn config_error(msg: &str) -> ExitCode {
    eprintln!("agentd: configuration error: {msg}");
    ExitCode::from(cdn_common::EXIT_CONFIG)
}

/// The agent's certificate: loaded, or enrolled for with the join token
/// (retrying while the master is unreachable). None when insecure, or when
/// a signal came first. Err: exit with this code.
async fn identity(
    config: &AgentConfig,
    node_id: &str,
    insecure: bool,
    token_flag: Option<&str>,
) -> Result<Option<Identity>, ExitCode> {
    if insecure {
        warn!(
            "*** --insecure: plaintext to the master, no certificate: only for a master started with --insecure on a trusted network ***"
        );
        return Ok(None);
    }
    let fatal = |msg: &str| {
        error!("{msg}");
        ExitCode::from(cdn_common::EXIT_CONFIG)
    };
    match identity::load(config, node_id) {
        Ok(Some(id)) => return Ok(Some(id)),
        Ok(None) => {}
        Err(e) => return Err(fatal(&e.to_string())),
    }
    let token = match identity::join_token(config, token_flag) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(fatal(&format!(
                "not enrolled yet (no certificate in {}) and no join token: set master.join_token in agent.yml or pass --join-token (`masterd token create` makes one)",
                config.data_dir.display()
            )));
        }
        Err(e) => return Err(fatal(&e.to_string())),
    };
    let addrs = &config.master.addr.0;
    let backoff = agentd::backoff::Backoff::default();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut attempt = 0u32;
    loop {
        let addr = &addrs[attempt as usize % addrs.len()];
        let enrolled = tokio::select! {
            _ = cdn_common::shutdown_signal() => return Ok(None),
            r = identity::enroll(config, node_id, &token, addr) => r,
        };
        match enrolled {
            Ok(id) => {
                info!(node = %node_id, master = %addr, dir = %config.data_dir.display(), "enrolled: certificate issued and kept");
                return Ok(Some(id));
            }
            Err(IdentityError::Fatal(m)) => return Err(fatal(&m)),
            Err(IdentityError::Transient(m)) => warn!(attempt, "{m}; retrying"),
        }
        let delay = backoff.delay(attempt, &mut rng);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = cdn_common::shutdown_signal() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn run(
    config: Arc<AgentConfig>,
    node_id: String,
    insecure: bool,
    token_flag: Option<String>,
) -> ExitCode {
    let identity = match identity(&config, &node_id, insecure, token_flag.as_deref()).await {
        Ok(Some(id)) => Some(Arc::new(id)),
        Ok(None) if insecure => None,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let status = status::spawn_collector(config.status.collect_interval, shutdown.clone(), &tasks);
    let masters: Vec<String> = config.master.addr.0.iter().map(|a| a.to_string()).collect();
    info!(node = %node_id, masters = ?masters, "agentd starting");
    let applier = Applier::start(config.config.clone(), shutdown.clone(), &tasks);
    let executor = agentd::exec::Executor::new(config.exec.clone());
    let link = Link::new(
        Arc::clone(&config),
        node_id,
        status,
        applier,
        executor,
        identity,
    );
    let link_task = tasks.spawn(link.run(shutdown.clone()));
    tasks.close();
    cdn_common::shutdown_signal().await;
    info!("signal received; shutting down");
    shutdown.cancel();
    let _ = link_task.await;
    tasks.wait().await;
    info!("agentd stopped");
    ExitCode::SUCCESS
}
