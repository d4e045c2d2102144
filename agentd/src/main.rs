//! `agentd` entry point: parse flags, load config, run the link until SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use agentd::apply::Applier;
use agentd::{AgentConfig, Link, status};
use cdn_common::logging;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

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
    runtime.block_on(run(Arc::new(config), node_id));
    ExitCode::SUCCESS
}

#[allow(clippy::print_stderr)]
fn config_error(msg: &str) -> ExitCode {
    eprintln!("agentd: configuration error: {msg}");
    ExitCode::from(cdn_common::EXIT_CONFIG)
}

async fn run(config: Arc<AgentConfig>, node_id: String) {
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let status = status::spawn_collector(config.status.collect_interval, shutdown.clone(), &tasks);
    let masters: Vec<String> = config.master.addr.0.iter().map(|a| a.to_string()).collect();
    info!(node = %node_id, masters = ?masters, "agentd starting");
    let applier = Applier::start(config.config.clone(), shutdown.clone(), &tasks);
    let executor = agentd::exec::Executor::new(config.exec.clone());
    let link = Link::new(Arc::clone(&config), node_id, status, applier, executor);
    let link_task = tasks.spawn(link.run(shutdown.clone()));
    tasks.close();
    cdn_common::shutdown_signal().await;
    info!("signal received; shutting down");
    shutdown.cancel();
    let _ = link_task.await;
    tasks.wait().await;
    info!("agentd stopped");
}
