//! `masterd` entry point: parse flags, load config, bind, serve until SIGTERM.

use std::process::ExitCode;

use cdn_common::logging;
use clap::Parser;
use masterd::{Master, MasterConfig};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

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
    match runtime.block_on(run(config, security, reload_from)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGHUP: read master.yml again and put in force what can change while
/// running; a file with an error is refused and nothing changes.
async fn reload_on_sighup(
    reloader: ReloadSlot,
    from: Option<(std::path::PathBuf, Option<std::path::PathBuf>)>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let Some((path, data_dir)) = &from else {
            warn!("SIGHUP: started without -c, nothing to reload");
            continue;
        };
        match MasterConfig::load(path) {
            Err(e) => error!("SIGHUP: config not reloaded, the running one stays: {e}"),
            Ok(mut new) => {
                if let Some(d) = data_dir {
                    new.data_dir = d.clone();
                }
                let Some(current) = reloader.lock().ok().and_then(|r| r.clone()) else {
                    warn!("SIGHUP: this master is a standby; the config is read when it leads");
                    continue;
                };
                let r = current.apply(new);
                info!(
                    file = %path.display(),
                    applied = ?r.applied,
                    needs_restart = ?r.needs_restart,
                    "SIGHUP: config reloaded"
                );
            }
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

/// The reloader of the master in force (a standby has none).
type ReloadSlot = std::sync::Arc<std::sync::Mutex<Option<masterd::server::Reloader>>>;

async fn run(
    config: MasterConfig,
    security: masterd::server::Security,
    reload_from: Option<(std::path::PathBuf, Option<std::path::PathBuf>)>,
) -> anyhow::Result<()> {
    match config.store.backend {
        masterd::config::BackendKind::Embedded => run_single(config, security, reload_from).await,
        masterd::config::BackendKind::Etcd => run_ha(config, security, reload_from).await,
    }
}

/// Active/standby on etcd: campaigns, serves as standby or leader.
#[allow(clippy::print_stdout)]
async fn run_ha(
    config: MasterConfig,
    security: masterd::server::Security,
    reload_from: Option<(std::path::PathBuf, Option<std::path::PathBuf>)>,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let endpoints = config.store.etcd.endpoints.join(",");
    let prefix = config.store.etcd.prefix.clone();
    let master = masterd::ha::HaMaster::bind(config, security).await?;
    let l = master.listeners();
    let (grpc, admin) = (l.grpc_local()?, l.admin_local()?);
    let me = master.leadership().me();
    info!(
        agent_api = %grpc,
        admin_api = %admin,
        data_dir = %data_dir.display(),
        etcd = %endpoints,
        prefix = %prefix,
        master = %me.id,
        "masterd listening (standby until elected)"
    );
    match l.metrics_addr() {
        Some(m) => println!("listening grpc={grpc} admin={admin} metrics={m}"),
        None => println!("listening grpc={grpc} admin={admin}"),
    }
    let shutdown = CancellationToken::new();
    let slot: ReloadSlot = Default::default();
    let reloads = tokio::spawn(reload_on_sighup(slot.clone(), reload_from));
    let on_term = move |r: masterd::server::Reloader| {
        if let Ok(mut s) = slot.lock() {
            *s = Some(r);
        }
    };
    let mut runner = tokio::spawn(master.run(shutdown.clone(), on_term));
    let result = tokio::select! {
        _ = cdn_common::shutdown_signal() => {
            info!("signal received; shutting down");
            shutdown.cancel();
            runner.await
        }
        r = &mut runner => r,
    };
    reloads.abort();
    let _ = reloads.await;
    result??;
    info!("masterd stopped");
    Ok(())
}

/// One master on the embedded store.
#[allow(clippy::print_stdout)]
async fn run_single(
    config: MasterConfig,
    security: masterd::server::Security,
    reload_from: Option<(std::path::PathBuf, Option<std::path::PathBuf>)>,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let master = Master::bind(config, security).await?;
    if master.secure() {
        for f in master.written_files() {
            info!(file = %f.display(), "written (0600)");
        }
        if let Some(fp) = master.ca_fingerprint() {
            info!(ca_sha256 = %fp, "TLS on; agents need a join token, cdnctl a credential");
        }
    } else {
        warn!(
            "*** --insecure: plaintext gRPC and NO authentication: anyone who can reach this port can register nodes and run commands on them ***"
        );
    }
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
    // Owned here: aborted and awaited once the master has stopped.
    let slot: ReloadSlot = std::sync::Arc::new(std::sync::Mutex::new(Some(master.reloader())));
    let reloads = tokio::spawn(reload_on_sighup(slot, reload_from));
    let mut runner = tokio::spawn(master.run(shutdown.clone()));
    let result = tokio::select! {
        _ = cdn_common::shutdown_signal() => {
            info!("signal received; shutting down");
            shutdown.cancel();
            runner.await
        }
        r = &mut runner => r,
    };
    reloads.abort();
    let _ = reloads.await;
    result??;
    info!("masterd stopped");
    Ok(())
}
