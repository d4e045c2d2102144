//! Active/standby masters on etcd: the life of one master process.
//!
//! The listeners are bound once, and the metrics endpoint (`/metrics`,
//! `/healthz`, `/readyz`) is served for the whole life of the process.
//! While this master does not lead, a standby server answers every call on
//! the gRPC listeners with `UNAVAILABLE` and the leader's address (agents
//! and cdnctl go straight there), and health checks with NOT_SERVING; the
//! store's mirror stays warm. When the election makes it
//! leader, the standby server stops and a [`Master`] is built from the
//! store (from the mirror: no full reload) and serves — one *term*. A term
//! ends when the leadership is lost (the lease could not be renewed in
//! time, or a commit was fenced): the gate refuses every call at once, the
//! term drains (agents' streams are closed, so they reconnect and are sent
//! to the new leader), and the master is a standby again.

use std::sync::Arc;
use std::time::Duration;

use cdn_common::config::HostPort;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::MasterConfig;
use crate::error::MasterError;
use crate::etcd::EtcdClient;
use crate::events::Events;
use crate::health::{Health, Phase};
use crate::leader::{Leadership, MasterRecord, Role};
use crate::metrics::Metrics;
use crate::server::{Census, Foundation, Listeners, Master, Reloader, Security, ServeError};
use crate::store::EtcdStore;

/// How long a stopping standby server may take to let go of its
/// connections before the leader's term starts.
const STANDBY_DRAIN: Duration = Duration::from_millis(500);

/// Waits (bounded) for a stopped standby server to let go of its
/// connections.
async fn drain_standby(standby: tokio::task::JoinHandle<Result<(), ServeError>>) {
    match tokio::time::timeout(STANDBY_DRAIN * 4, standby).await {
        Ok(Ok(Err(e))) => warn!(error = %e, "standby server failed"),
        Err(_) => warn!("standby server did not stop in time"),
        _ => {}
    }
}

/// A master process on etcd, bound and connected, not yet serving.
pub struct HaMaster {
    config: MasterConfig,
    security: Security,
    store: EtcdStore,
    listeners: Listeners,
    leadership: Arc<Leadership>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
    /// Whether this process put the CA into the store (a new store).
    made_ca: bool,
}

/// The address a master on another host dials for a listener on `hp`.
fn advertised(hp: &HostPort, bound: std::io::Result<std::net::SocketAddr>) -> String {
    let port = bound.map(|a| a.port()).unwrap_or(hp.port);
    let unspecified = hp.host.is_empty()
        || hp
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
    if unspecified {
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{port}")
    } else if hp.host.contains(':') && !hp.host.starts_with('[') {
        format!("[{}]:{port}", hp.host)
    } else {
        format!("{}:{port}", hp.host)
    }
}

impl HaMaster {
    /// Connects to etcd, loads the mirror, shares the CA, binds the
    /// listeners.
    pub async fn bind(config: MasterConfig, security: Security) -> Result<Self, ServeError> {
        crate::server::check_security(&config, security)?;
        let etcd = &config.store.etcd;
        let client = Arc::new(EtcdClient::new(etcd).map_err(MasterError::from)?);
        // etcd may start after the masters (a cluster forming, a machine
        // booting): wait for it, saying so, as agents wait for a master.
        let mut pause = Duration::from_millis(250);
        let store = loop {
            match EtcdStore::open(Arc::clone(&client), &etcd.prefix).await {
                Ok(s) => break s,
                Err(e @ crate::store::StoreError::Unavailable(_)) => {
                    warn!(error = %e, retry_in = %cdn_common::duration::short(pause), "waiting for etcd");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(MasterError::from(e).into()),
            }
        };
        let made_ca = if security.insecure {
            false
        } else {
            let pki_dir = crate::pki::dir_in(&config.data_dir);
            let cfg = config.clone();
            store
                .share_ca(&pki_dir, move || {
                    crate::server::tls_setup(&cfg, security)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(MasterError::from)?
        };
        let listeners = Listeners::bind(&config).await?;
        // A standby answers at once (UNAVAILABLE and the leader, health,
        // metrics); the files a client needs come from the leader.
        listeners.listen().map_err(|source| ServeError::Bind {
            addr: config.grpc.addr.to_string(),
            source,
        })?;
        let metrics = Arc::new(Metrics::default());
        let me = MasterRecord {
            id: crate::server::master_id(&config, &listeners),
            agent_addr: advertised(&config.grpc.addr, listeners.grpc_local()),
            admin_addr: match &config.admin.addr {
                Some(a) => advertised(a, listeners.admin_local()),
                None => advertised(&config.grpc.addr, listeners.grpc_local()),
            },
            backend: "etcd".into(),
            started_ms: cdn_common::unix_millis_now(),
            ..Default::default()
        };
        let leadership = Leadership::on_etcd(me, store.clone(), Arc::clone(&metrics));
        Ok(Self {
            config,
            security,
            store,
            listeners,
            health: Health::new(Arc::clone(&leadership), &metrics),
            leadership,
            metrics,
            events: Arc::new(Events::default()),
            made_ca,
        })
    }

    /// The listening sockets.
    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// This master's leadership.
    pub fn leadership(&self) -> Arc<Leadership> {
        Arc::clone(&self.leadership)
    }

    /// Campaigns and serves — as standby or as leader — until `shutdown`.
    /// `on_term` gets each term's reloader (SIGHUP applies to the term in
    /// force) and census (for the service manager's status line).
    pub async fn run(
        self,
        shutdown: CancellationToken,
        on_term: impl Fn(Reloader, Census) + Send + Sync,
    ) -> Result<(), ServeError> {
        let Self {
            config,
            security,
            store,
            listeners,
            leadership,
            health,
            metrics,
            events,
            made_ca,
        } = self;
        let (_, _, tls) = crate::server::tls_setup(&config, security)?;
        let bind_error = |source| ServeError::Bind {
            addr: config.grpc.addr.to_string(),
            source,
        };
        // The metrics endpoint, whatever the role, until the process stops.
        // Stopped on every way out of here, an early error too (dropped).
        let endpoint =
            listeners.share().map_err(bind_error)?.2.map(|l| {
                crate::metrics::Endpoint::start(l, Arc::clone(&metrics), Arc::clone(&health))
            });
        let election_stop = CancellationToken::new();
        let election = tokio::spawn(
            Arc::clone(&leadership).campaign(config.store.etcd.lease_ttl, election_stop.clone()),
        );
        let mut first_term = true;
        let result = loop {
            // Standby until elected. Its health Watch streams outlive its
            // accepting (`standing`) until the term serves (`watching`), so
            // a Watch opened on a standby sees it become SERVING.
            let (standing, watching) = (CancellationToken::new(), CancellationToken::new());
            let (grpc, admin, _) = listeners.share().map_err(bind_error)?;
            let standby = tokio::spawn(crate::standby::serve(
                (grpc, admin),
                tls.clone(),
                config.clone(),
                Arc::clone(&leadership),
                Arc::clone(&health),
                Arc::clone(&metrics),
                (standing.clone(), watching.clone()),
            ));
            let elected = leadership.elected(&shutdown).await;
            if !elected {
                // Health checks hear it before the standby server stops.
                health.set_phase(Phase::Stopping);
            }
            standing.cancel();
            if !elected {
                watching.cancel();
                drain_standby(standby).await;
                break Ok(());
            }
            // A term of leadership.
            let started = std::time::Instant::now();
            let foundation = Foundation {
                backend: Arc::new(store.clone()),
                listeners: listeners.try_clone().map_err(bind_error)?,
                metrics: Arc::clone(&metrics),
                events: Arc::clone(&events),
                leadership: Arc::clone(&leadership),
                health: Arc::clone(&health),
                first_start: Some(made_ca && first_term),
            };
            first_term = false;
            let master = match Master::bind_on(config.clone(), security, foundation).await {
                Ok(m) => m,
                Err(e) => {
                    // Not fit to lead (the store refused, a file is
                    // unreadable): step aside for another master.
                    error!(error = %e, "cannot start as leader; stepping down");
                    watching.cancel();
                    drain_standby(standby).await;
                    store.fence().clear();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for f in master.written_files() {
                info!(file = %f.display(), "written (0600)");
            }
            let id = leadership.me().id;
            info!(
                master = %id,
                nodes = master.known_nodes(),
                took_ms = started.elapsed().as_millis() as u64,
                "leading: serving agents and operators"
            );
            events.publish(
                "master.leader",
                &id,
                "",
                format!("{id} leads ({} nodes known)", master.known_nodes()),
                true,
            );
            on_term(master.reloader(), master.census());
            let term = shutdown.child_token();
            let deposed = {
                let term = term.clone();
                let leadership = Arc::clone(&leadership);
                tokio::spawn(async move {
                    leadership.deposed().await;
                    term.cancel();
                })
            };
            // Once the term serves (or ends first), the standby's Watch
            // streams send their last status and the standby server ends.
            let run = master.run(term);
            tokio::pin!(run);
            let served = tokio::select! {
                r = &mut run => {
                    watching.cancel();
                    drain_standby(standby).await;
                    r
                }
                _ = health.left_start() => {
                    watching.cancel();
                    drain_standby(standby).await;
                    run.await
                }
            };
            deposed.abort();
            if shutdown.is_cancelled() {
                break served;
            }
            if let Err(e) = served {
                warn!(error = %e, "the term ended with an error");
            }
            health.set_phase(Phase::Starting);
            warn!(master = %id, "no longer leading: standby again");
            events.publish(
                "master.standby",
                &id,
                "",
                format!("{id} lost the leadership"),
                false,
            );
            if matches!(leadership.role(), Role::Leader { .. }) {
                // The term ended by itself (the store refused): step down.
                store.fence().clear();
            }
        };
        election_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(3), election).await;
        if let Some(e) = endpoint {
            e.stop().await;
        }
        result
    }
}
