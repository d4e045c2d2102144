//! Serving until a signal: one master on the embedded store, or a master
//! on etcd that campaigns and serves as standby or leader; SIGHUP reloads
//! master.yml into the master in force. `main.rs` parses flags and calls
//! [`serve`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::BackendKind;
use crate::server::{Reloader, Security, ServeError};
use crate::{Master, MasterConfig};

/// Where master.yml came from (and the `--data-dir` that overrides it), to
/// read it again on SIGHUP.
pub type ReloadFrom = Option<(PathBuf, Option<PathBuf>)>;

/// The reloader of the master in force (a standby has none).
type ReloadSlot = Arc<Mutex<Option<Reloader>>>;

/// Serves `config` until SIGTERM or SIGINT.
pub async fn serve(
    config: MasterConfig,
    security: Security,
    reload_from: ReloadFrom,
) -> anyhow::Result<()> {
    match config.store.backend {
        BackendKind::Embedded => serve_single(config, security, reload_from).await,
        BackendKind::Etcd => serve_ha(config, security, reload_from).await,
    }
}

/// One machine-readable line on stdout for scripts and tests.
#[allow(clippy::print_stdout)]
fn announce(
    grpc: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    metrics: Option<std::net::SocketAddr>,
) {
    match metrics {
        Some(m) => println!("listening grpc={grpc} admin={admin} metrics={m}"),
        None => println!("listening grpc={grpc} admin={admin}"),
    }
}

/// Waits for `runner` or a signal (then cancels `shutdown` and waits for
/// it); stops the SIGHUP task.
async fn until_signal(
    mut runner: JoinHandle<Result<(), ServeError>>,
    shutdown: CancellationToken,
    reloads: JoinHandle<()>,
) -> anyhow::Result<()> {
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

/// Active/standby on etcd: campaigns, serves as standby or leader.
async fn serve_ha(
    config: MasterConfig,
    security: Security,
    reload_from: ReloadFrom,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let endpoints = config.store.etcd.endpoints.join(",");
    let prefix = config.store.etcd.prefix.clone();
    let master = crate::ha::HaMaster::bind(config, security).await?;
    let l = master.listeners();
    let (grpc, admin) = (l.grpc_local()?, l.admin_local()?);
    info!(
        agent_api = %grpc,
        admin_api = %admin,
        data_dir = %data_dir.display(),
        etcd = %endpoints,
        prefix = %prefix,
        master = %master.leadership().me().id,
        "masterd listening (standby until elected)"
    );
    announce(grpc, admin, l.metrics_addr());
    let shutdown = CancellationToken::new();
    let slot: ReloadSlot = Default::default();
    let reloads = tokio::spawn(reload_on_sighup(slot.clone(), reload_from));
    let on_term = move |r: Reloader| {
        if let Ok(mut s) = slot.lock() {
            *s = Some(r);
        }
    };
    let runner = tokio::spawn(master.run(shutdown.clone(), on_term));
    until_signal(runner, shutdown, reloads).await
}

/// One master on the embedded store.
async fn serve_single(
    config: MasterConfig,
    security: Security,
    reload_from: ReloadFrom,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let mut master = Master::bind(config, security).await?;
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
    announce(grpc, admin, master.metrics_addr());
    let shutdown = CancellationToken::new();
    // The metrics endpoint outlives the master's drain, so `/readyz` says
    // 503 until the end; stopped once the master has stopped.
    let endpoint_stop = CancellationToken::new();
    let endpoint = master
        .take_metrics_endpoint()
        .map(|(listener, metrics, health)| {
            tokio::spawn(crate::metrics::serve(
                listener,
                metrics,
                health,
                endpoint_stop.clone(),
            ))
        });
    // Owned here: aborted and awaited once the master has stopped.
    let slot: ReloadSlot = Arc::new(Mutex::new(Some(master.reloader())));
    let reloads = tokio::spawn(reload_on_sighup(slot, reload_from));
    let runner = tokio::spawn(master.run(shutdown.clone()));
    let result = until_signal(runner, shutdown, reloads).await;
    endpoint_stop.cancel();
    if let Some(e) = endpoint {
        match e.await {
            Ok(Err(e)) => error!(error = %e, "metrics endpoint failed"),
            Err(e) => error!(error = %e, "metrics endpoint task failed"),
            Ok(Ok(())) => {}
        }
    }
    result
}

/// SIGHUP: read master.yml again and put in force what can change while
/// running; a file with an error is refused and nothing changes.
async fn reload_on_sighup(reloader: ReloadSlot, from: ReloadFrom) {
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
