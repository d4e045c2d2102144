//! `agentd` entry point: parse flags, load config, run the agent until
//! SIGTERM or SIGINT; SIGHUP reloads the config.

use std::process::ExitCode;

use agentd::daemon::{self, AgentError, Settings};
use agentd::reload::Hangups;
use cdn_common::{logging, notify};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

fn main() -> ExitCode {
    // A guard of a program this agent runs, not the agent (see guard.rs).
    if let Some(code) = agentd::guard::main_if_asked() {
        return code;
    }
    let args = agentd::cli::Args::parse();
    logging::init(args.log_format, "info");
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => return fail(&e),
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
    match runtime.block_on(run_until_signal(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Runs the agent; SIGHUP reloads agent.yml, the first SIGTERM or SIGINT
/// stops it cleanly.
async fn run_until_signal(settings: Settings) -> Result<(), AgentError> {
    // First: from here on a SIGHUP never kills the agent.
    let hangups = Hangups::install();
    let shutdown = CancellationToken::new();
    let agent = daemon::run(settings, hangups, shutdown.clone());
    tokio::pin!(agent);
    tokio::select! {
        r = &mut agent => r,
        _ = cdn_common::shutdown_signal() => {
            info!("signal received; shutting down");
            notify::stopping("stopping: telling the master this node goes offline");
            shutdown.cancel();
            agent.await
        }
    }
}

/// Reports `e` (a configuration error as one line on stderr, a refused
/// enrolment as a log line) and returns its exit code.
#[allow(clippy::print_stderr)]
fn fail(e: &AgentError) -> ExitCode {
    match e {
        AgentError::Config(_) => eprintln!("agentd: {e}"),
        AgentError::Identity(_) => error!("{e}"),
    }
    ExitCode::from(e.exit_code())
}
