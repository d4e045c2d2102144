//! Serving until a signal: one master on the embedded store, or a master
//! on etcd that campaigns and serves as standby or leader; SIGHUP reloads
//! master.yml into the master in force. `main.rs` parses flags and calls
//! [`serve`].
//!
//! The service manager is told (`sd_notify`, see [`cdn_common::notify`];
//! nothing without `$NOTIFY_SOCKET`): `READY=1` once the listeners are
//! bound and the store is open — for a master on etcd, once it can answer
//! as a standby (every call refused with the leader's address, `/metrics`
//! served), since leading may wait for an election or for etcd itself;
//! `RELOADING=1` and `READY=1` around each SIGHUP; `STOPPING=1` when a
//! signal stops it; and a `STATUS=` line with its role and its nodes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdn_common::notify;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::BackendKind;
use crate::leader::{Leadership, Role};
use crate::metrics::Endpoint;
use crate::server::{Census, Reloader, Security, ServeError};
use crate::{Master, MasterConfig};

/// How often the status line's node counts are refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Where master.yml came from (and the `--data-dir` that overrides it), to
/// read it again on SIGHUP.
pub type ReloadFrom = Option<(PathBuf, Option<PathBuf>)>;

/// The reloader of the master in force (a standby has none).
type ReloadSlot = Arc<Mutex<Option<Reloader>>>;

/// The census of the term in force (a standby has none).
type CensusSlot = Arc<Mutex<Option<Census>>>;

/// Serves `config` until SIGTERM or SIGINT.
pub async fn serve(
    config: MasterConfig,
    security: Security,
    reload_from: ReloadFrom,
) -> anyhow::Result<()> {
    // First: from here on a SIGHUP never kills the master; one that comes
    // while it starts is acted on once it serves.
    let hangups = signal(SignalKind::hangup()).ok();
    match config.store.backend {
        BackendKind::Embedded => serve_single(config, security, reload_from, hangups).await,
        BackendKind::Etcd => serve_ha(config, security, reload_from, hangups).await,
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
            notify::stopping("stopping: closing agent streams, flushing the store");
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
    hangups: Option<Signal>,
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
    let leadership = master.leadership();
    notify::ready(&status_line(Some(&leadership), None));
    let shutdown = CancellationToken::new();
    let slot: ReloadSlot = Default::default();
    let census: CensusSlot = Default::default();
    let reloads = tokio::spawn(reload_on_sighup(hangups, slot.clone(), reload_from));
    let statuses = tokio::spawn(keep_status(
        Some(leadership),
        census.clone(),
        shutdown.clone(),
    ));
    let on_term = move |r: Reloader, c: Census| {
        if let Ok(mut s) = slot.lock() {
            *s = Some(r);
        }
        if let Ok(mut s) = census.lock() {
            *s = Some(c);
        }
    };
    let runner = tokio::spawn(master.run(shutdown.clone(), on_term));
    let result = until_signal(runner, shutdown, reloads).await;
    statuses.abort();
    result
}

/// One master on the embedded store.
async fn serve_single(
    config: MasterConfig,
    security: Security,
    reload_from: ReloadFrom,
    hangups: Option<Signal>,
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
    let census: CensusSlot = Arc::new(Mutex::new(Some(master.census())));
    notify::ready(&status_line(None, Some(&master.census())));
    let shutdown = CancellationToken::new();
    // The metrics endpoint outlives the master's drain, so `/readyz` says
    // 503 until the end; stopped once the master has stopped.
    let endpoint = master
        .take_metrics_endpoint()
        .map(|(listener, metrics, health)| Endpoint::start(listener, metrics, health));
    // Owned here: aborted and awaited once the master has stopped.
    let slot: ReloadSlot = Arc::new(Mutex::new(Some(master.reloader())));
    let reloads = tokio::spawn(reload_on_sighup(hangups, slot, reload_from));
    let statuses = tokio::spawn(keep_status(None, census, shutdown.clone()));
    let runner = tokio::spawn(master.run(shutdown.clone()));
    let result = until_signal(runner, shutdown, reloads).await;
    statuses.abort();
    if let Some(e) = endpoint {
        e.stop().await;
    }
    result
}

/// SIGHUP: read master.yml again and put in force what can change while
/// running; a file with an error is refused and nothing changes. The
/// service manager hears `RELOADING=1` before and `READY=1` after.
async fn reload_on_sighup(hangups: Option<Signal>, reloader: ReloadSlot, from: ReloadFrom) {
    let Some(mut hup) = hangups else {
        error!("cannot handle SIGHUP; master.yml cannot be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        notify::reloading();
        reload(&reloader, &from);
        notify::reloaded();
    }
}

fn reload(reloader: &ReloadSlot, from: &ReloadFrom) {
    let Some((path, data_dir)) = from else {
        warn!("SIGHUP: started without -c, nothing to reload");
        return;
    };
    match MasterConfig::load(path) {
        Err(e) => error!("SIGHUP: config not reloaded, the running one stays: {e}"),
        Ok(mut new) => {
            if let Some(d) = data_dir {
                new.data_dir = d.clone();
            }
            let Some(current) = reloader.lock().ok().and_then(|r| r.clone()) else {
                warn!("SIGHUP: this master is a standby; the config is read when it leads");
                return;
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

/// What `systemctl status` shows: the role and, while serving, the nodes
/// by state ("leading, 1234 nodes online, 2 degraded, 5 offline";
/// "standby, leader m1 at 10.0.0.1:50051"). `leadership` is None for the
/// one master of an embedded store, which always serves.
fn status_line(leadership: Option<&Leadership>, census: Option<&Census>) -> String {
    let role = leadership.map(Leadership::role);
    let serving = match &role {
        None => "serving",
        Some(Role::Leader { .. }) => "leading",
        Some(Role::Standby { leader: Some(l) }) => {
            return format!("standby, leader {} at {}", l.id, l.agent_addr);
        }
        Some(Role::Standby { leader: None }) => {
            return "standby, no master leads yet (election under way or etcd unreachable)".into();
        }
    };
    match census {
        Some(c) => {
            let [online, degraded, offline] = c.count();
            format!("{serving}, {online} nodes online, {degraded} degraded, {offline} offline")
        }
        None => format!("{serving}, starting its term"),
    }
}

/// Keeps the status line current until `stop`: at each change of role and
/// every [`STATUS_EVERY`] for the node counts.
async fn keep_status(
    leadership: Option<Arc<Leadership>>,
    census: CensusSlot,
    stop: CancellationToken,
) {
    let mut roles = leadership.as_ref().map(|l| l.subscribe());
    loop {
        let standby = leadership
            .as_ref()
            .is_some_and(|l| matches!(l.role(), Role::Standby { .. }));
        let current = census.lock().ok().and_then(|mut c| {
            if standby {
                // The term is over; the next one brings its own census.
                *c = None;
            }
            c.clone()
        });
        notify::status(&status_line(leadership.as_deref(), current.as_ref()));
        let role_changed = async {
            match roles.as_mut() {
                Some(r) => {
                    if r.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = role_changed => {}
            _ = tokio::time::sleep(STATUS_EVERY) => {}
        }
    }
}
