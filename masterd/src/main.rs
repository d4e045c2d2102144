//! `masterd` entry point: parse flags, load config, bind, serve until SIGTERM.

use std::process::ExitCode;

use cdn_common::logging;
use clap::Parser;
use masterd::MasterConfig;
use tracing::{error, warn};

/// mimalloc returns freed pages to the system: after an enrolment or
/// reconnect storm of 15,000 agents glibc's malloc kept hundreds of MiB of
/// freed buffers resident.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    let security = masterd::server::Security {
        insecure: args.insecure,
        insecure_non_loopback: args.insecure_non_loopback,
    };
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
    if let Some(cmd) = args.command {
        let result = if cmd.opens_the_store() {
            runtime
                .block_on(masterd::offline::run(cmd, &config))
                .map_err(|e| e.to_string())
        } else {
            let credential = args
                .credential
                .unwrap_or_else(|| config.data_dir.join(masterd::auth::ADMIN_CREDENTIAL));
            runtime
                .block_on(masterd::admin_client::run(cmd, credential, args.master))
                .map_err(|e| e.to_string())
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln_error(&e);
                ExitCode::FAILURE
            }
        };
    }
    // One socket per agent: 15,000 agents need far more than the usual
    // soft limit of 1024.
    match cdn_common::raise_fd_limit() {
        Ok(n) if n < 4096 => warn!(
            limit = n,
            "the open-file limit is low: each agent holds a connection (raise LimitNOFILE)"
        ),
        Ok(_) => {}
        Err(e) => warn!("{e}"),
    }
    let reload_from = args
        .config
        .clone()
        .map(|path| (path, args.data_dir.clone()));
    match runtime.block_on(masterd::daemon::serve(config, security, reload_from)) {
        Ok(()) => ExitCode::SUCCESS,
        // A file master.yml names cannot be used: a person must fix it, a
        // restart loop would not.
        Err(e)
            if matches!(
                e.downcast_ref(),
                Some(masterd::server::ServeError::ConfigFile { .. })
            ) =>
        {
            eprintln_config_error(&e.to_string());
            ExitCode::from(cdn_common::EXIT_CONFIG)
        }
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_error(msg: &str) {
    eprintln!("masterd: {msg}");
}

#[allow(clippy::print_stderr)]
fn eprintln_config_error(msg: &str) {
    eprintln!("masterd: configuration error: {msg}");
}
