//! `masterd` entry point: parse flags, load config, bind, serve until SIGTERM.

use std::process::ExitCode;

use cdn_common::logging;
use clap::Parser;
use masterd::{Master, MasterConfig};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

fn main() -> ExitCode {
    let args = masterd::cli::Args::parse();
    logging::init(args.log_format, "info");
    let mut config = match &args.config {
        Some(path) => match MasterConfig::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln_config_error(&e.to_string());
                return ExitCode::from(cdn_common::EXIT_CONFIG);
            }
        },
        None => MasterConfig::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_config_error(msg: &str) {
    eprintln!("masterd: configuration error: {msg}");
}

#[allow(clippy::print_stdout)]
async fn run(config: MasterConfig) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let master = Master::bind(config).await?;
    let grpc = master.grpc_addr()?;
    let admin = master.admin_addr()?;
    info!(
        agent_api = %grpc,
        admin_api = %admin,
        data_dir = %data_dir.display(),
        known_nodes = master.known_nodes(),
        "masterd listening"
    );
    // One machine-readable line on stdout for scripts and tests.
    match master.metrics_addr() {
        Some(m) => println!("listening grpc={grpc} admin={admin} metrics={m}"),
        None => println!("listening grpc={grpc} admin={admin}"),
    }
    let shutdown = CancellationToken::new();
    let mut runner = tokio::spawn(master.run(shutdown.clone()));
    tokio::select! {
        _ = cdn_common::shutdown_signal() => {
            info!("signal received; shutting down");
            shutdown.cancel();
            runner.await??;
        }
        r = &mut runner => r??,
    }
    info!("masterd stopped");
    Ok(())
}
