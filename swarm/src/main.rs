//! `cdn-swarm` entry point: parse flags, load the agent template, raise the
//! file limit and check the count fits, then run the agents until SIGTERM.

use std::process::ExitCode;

use cdn_common::logging;
use cdn_swarm::swarm::{self, Settings};
use cdn_swarm::{SwarmError, fdlimit};
use clap::Parser;

fn main() -> ExitCode {
    // A guard of a program this agent runs, not the agent (see guard.rs).
    if let Some(code) = agentd::guard::main_if_asked() {
        return code;
    }
    let args = cdn_swarm::cli::Args::parse();
    logging::init(args.log_format, cdn_swarm::DEFAULT_LOG_FILTER);
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let fd_limit = match fdlimit::raise().and_then(|limit| {
        fdlimit::check(
            settings.count,
            settings.start_index,
            u64::from(settings.enrol_concurrency),
            limit,
        )
        .map(|()| limit)
    }) {
        Ok(limit) => limit,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cdn_swarm::WORKER_THREADS)
        .max_blocking_threads(fdlimit::MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&SwarmError::Runtime(e.to_string())),
    };
    match runtime.block_on(swarm::run(settings, fd_limit)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

#[allow(clippy::print_stderr)]
fn fail(e: &SwarmError) -> ExitCode {
    eprintln!("cdn-swarm: {e}");
    ExitCode::from(e.exit_code())
}
