//! Binding the listeners and running the master until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cdn_common::config::HostPort;
use cdn_proto::v1::admin_service_server::AdminServiceServer;
use cdn_proto::v1::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;
use tracing::{error, info, warn};

use crate::admin_service::AdminApi;
use crate::agent_service::AgentApi;
use crate::audit::Audit;
use crate::auth::{Authenticator, Credentials, Enrolment};
use crate::config::MasterConfig;
use crate::configs::{Configs, RolloutOwner};
use crate::error::MasterError;
use crate::events::Events;
use crate::exec::ExecHub;
use crate::health::{Health, Phase};
use crate::metrics::Metrics;
use crate::registry::{Liveness, Offline, Registry};
use crate::rollouts::Rollouts;
use crate::store::{EmbeddedStore, Store, StoreWriter};
use cdn_proto::limits::{
    CONNECTION_WINDOW_BYTES, MAX_MESSAGE_BYTES, MAX_MESSAGE_TO_AGENT_BYTES, STREAM_WINDOW_BYTES,
};
use tonic::codec::CompressionEncoding;

/// How long shutdown waits for in-flight calls before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Longest a unary call may take to answer (streams are not bounded by it:
/// it covers producing the response head only).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Smallest pause between liveness sweeps.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(50);

/// Why the master could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Master(#[from] MasterError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    /// A file master.yml names cannot be used; a person must fix it.
    #[error("key `{key}`: {path}: {message}")]
    ConfigFile {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error(
        "--insecure would serve plaintext on {addr}, which is not a loopback address; anyone on the network could run commands on every node. Use TLS (the default), or add --insecure-non-loopback if this network is truly private"
    )]
    InsecurePublic { addr: String },
}

/// How the master protects its listeners.
#[derive(Debug, Clone, Copy, Default)]
pub struct Security {
    /// Plaintext, nobody authenticated (`--insecure`).
    pub insecure: bool,
    /// Allow `insecure` on a non-loopback address.
    pub insecure_non_loopback: bool,
}

/// What a master is built on: its store, its listeners, and what outlives
/// one term of leadership (metrics, events, the leadership itself).
pub struct Foundation {
    pub backend: Arc<dyn crate::store::Backend>,
    pub listeners: Listeners,
    pub metrics: Arc<Metrics>,
    pub events: Arc<Events>,
    pub leadership: Arc<crate::leader::Leadership>,
    /// Whether this process serves, for health checks and `/readyz`.
    pub health: Arc<Health>,
    /// Whether the store is new (make the first join token); judged from
    /// the PKI when None.
    pub first_start: Option<bool>,
}

/// The master's sockets, bound once for the life of the process: a
/// standby and each term of leadership serve on clones of them, so a
/// failover never closes the port agents dial. They are bound (their
/// ports are known) but take no connection until [`Listeners::share`]
/// makes them listen: a master writes the files its clients need (join
/// token, credential) first.
pub struct Listeners {
    grpc: socket2::Socket,
    admin: Option<socket2::Socket>,
    metrics: Option<socket2::Socket>,
}

/// The address a bound socket has.
fn local_of(s: &socket2::Socket) -> std::io::Result<SocketAddr> {
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an internet socket"))
}

impl Listeners {
    /// Binds `grpc.addr`, `admin.addr` and `metrics.addr`, without
    /// listening yet.
    pub async fn bind(config: &MasterConfig) -> Result<Self, ServeError> {
        let grpc = bind(&config.grpc.addr).await?;
        let admin = match &config.admin.addr {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let metrics = match &config.metrics.addr {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        Ok(Self {
            grpc,
            admin,
            metrics,
        })
    }

    /// Makes every socket listen now, before [`Listeners::share`].
    pub fn listen(&self) -> std::io::Result<()> {
        for s in [Some(&self.grpc), self.admin.as_ref(), self.metrics.as_ref()]
            .into_iter()
            .flatten()
        {
            s.listen(LISTEN_BACKLOG as i32)?;
        }
        Ok(())
    }

    /// Runtime listeners on clones of the sockets, which listen from now
    /// on (again: listening twice is harmless).
    #[allow(clippy::type_complexity)]
    pub fn share(
        &self,
    ) -> std::io::Result<(TcpListener, Option<TcpListener>, Option<TcpListener>)> {
        let clone = |s: &socket2::Socket| {
            s.listen(LISTEN_BACKLOG as i32)?;
            TcpListener::from_std(s.try_clone()?.into())
        };
        Ok((
            clone(&self.grpc)?,
            self.admin.as_ref().map(clone).transpose()?,
            self.metrics.as_ref().map(clone).transpose()?,
        ))
    }

    /// The address agents dial and the one cdnctl dials, as a local client
    /// would write them.
    pub fn dial_addrs(&self) -> std::io::Result<(String, String)> {
        let grpc = dial_addr(local_of(&self.grpc)?);
        let admin = match &self.admin {
            Some(l) => dial_addr(local_of(l)?),
            None => grpc.clone(),
        };
        Ok((grpc, admin))
    }

    /// Another handle on the same sockets.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            grpc: self.grpc.try_clone()?,
            admin: self.admin.as_ref().map(|l| l.try_clone()).transpose()?,
            metrics: self.metrics.as_ref().map(|l| l.try_clone()).transpose()?,
        })
    }

    /// The agent API's bound address.
    pub fn grpc_local(&self) -> std::io::Result<SocketAddr> {
        local_of(&self.grpc)
    }

    /// The admin API's bound address (the agent API's when shared).
    pub fn admin_local(&self) -> std::io::Result<SocketAddr> {
        match &self.admin {
            Some(l) => local_of(l),
            None => local_of(&self.grpc),
        }
    }

    /// The metrics endpoint's address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| local_of(l).ok())
    }
}

/// The PKI (made on first start) and the TLS acceptor of the listeners;
/// nothing when the master runs insecure. Also says whether the CA was
/// made now.
#[allow(clippy::type_complexity)]
pub fn tls_setup(
    config: &MasterConfig,
    security: Security,
) -> Result<
    (
        Option<Arc<crate::pki::Pki>>,
        bool,
        Option<tokio_rustls::TlsAcceptor>,
    ),
    ServeError,
> {
    if security.insecure {
        return Ok((None, false, None));
    }
    let hosts: Vec<String> = std::iter::once(&config.grpc.addr)
        .chain(config.admin.addr.as_ref())
        .map(|h| h.host.clone())
        .collect();
    let names = crate::pki::server_names(&hosts, &config.tls.names);
    let (pki, created) =
        crate::pki::Pki::load_or_create(&crate::pki::dir_in(&config.data_dir), &names)
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    let tls = server_tls(&pki, &config.tls)?;
    Ok((Some(Arc::new(pki)), created, Some(tls)))
}

/// Refuses `--insecure` on a public address unless explicitly allowed.
pub fn check_security(config: &MasterConfig, security: Security) -> Result<(), ServeError> {
    if security.insecure && !security.insecure_non_loopback {
        for hp in std::iter::once(&config.grpc.addr).chain(config.admin.addr.as_ref()) {
            if !is_loopback(&hp.host) {
                return Err(ServeError::InsecurePublic {
                    addr: hp.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// This master's name among masters: `store.etcd.name`, else the host
/// name and the agent API's port.
pub fn master_id(config: &MasterConfig, listeners: &Listeners) -> String {
    if !config.store.etcd.name.is_empty() {
        return config.store.etcd.name.clone();
    }
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "masterd".into());
    let port = listeners
        .grpc_local()
        .map_or(config.grpc.addr.port, |a| a.port());
    format!("{host}:{port}")
}

/// A master with its listeners bound, ready to serve: every owner of
/// state, built from what the store loaded.
pub struct Master {
    config: Arc<MasterConfig>,
    /// For the backup schedule.
    store: Store,
    leadership: Arc<crate::leader::Leadership>,
    live: Arc<std::sync::RwLock<Arc<MasterConfig>>>,
    /// The store's writer task, closed last.
    writer: StoreWriter,
    registry: Arc<Registry>,
    configs: Configs,
    config_owner: RolloutOwner,
    staged: Rollouts,
    execs: Arc<ExecHub>,
    credentials: Arc<Credentials>,
    authn: Arc<Authenticator>,
    enrolment: Arc<Enrolment>,
    audit: Arc<Audit>,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    grpc: TcpListener,
    admin: Option<TcpListener>,
    /// Taken by whoever serves the metrics endpoint for the process.
    metrics_listener: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    written: Vec<std::path::PathBuf>,
}

/// Applies a reloaded master.yml (SIGHUP) to a running master: what can
/// change safely changes; the rest is named as needing a restart.
#[derive(Clone)]
pub struct Reloader {
    started: Arc<MasterConfig>,
    live: Arc<std::sync::RwLock<Arc<MasterConfig>>>,
    authn: Arc<Authenticator>,
    execs: Arc<ExecHub>,
    configs: Configs,
    staged: Rollouts,
}

/// The nodes of a running master by state, for the status line the
/// service manager shows (`systemctl status masterd`).
#[derive(Clone)]
pub struct Census(Arc<Registry>);

impl Census {
    /// Nodes online, degraded and offline now.
    pub fn count(&self) -> [usize; 3] {
        self.0.count_states()
    }
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Sections now in force.
    pub applied: Vec<&'static str>,
    /// Sections that changed but take effect only after a restart.
    pub needs_restart: Vec<&'static str>,
}

impl Reloader {
    /// Puts `new` in force where that is safe.
    pub fn apply(&self, new: MasterConfig) -> Reloaded {
        let json = |v: &MasterConfig| serde_json::to_value(v).unwrap_or_default();
        let old = self
            .live
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_else(|_| Arc::clone(&self.started));
        let (was, now, first) = (json(&old), json(&new), json(&self.started));
        let mut out = Reloaded::default();
        let changed = |key: &str| was.get(key) != now.get(key);
        if changed("limits") {
            self.authn.set_limits(&new.limits);
            out.applied.push("limits");
        }
        if changed("pool") {
            self.execs.set_pool(new.pool.clone());
            out.applied.push("pool");
        }
        if changed("exec") {
            self.execs
                .recordings()
                .set_policy(new.exec.recording.clone());
            out.applied.push("exec");
        }
        if changed("compression") {
            self.configs.set_compression(new.compression.clone());
            out.applied.push("compression");
        }
        if changed("rollout") {
            self.staged.set_settings(new.rollout.clone());
            out.applied.push("rollout");
        }
        if changed("reconnect") {
            out.applied.push("reconnect");
        }
        if old.grpc.keepalive.permit_without_stream != new.grpc.keepalive.permit_without_stream {
            out.applied.push("grpc.keepalive.permit_without_stream");
        }
        // Everything else is bound at start: listeners, TLS, the store,
        // liveness judged by the registry.
        let mut g = now.get("grpc").cloned().unwrap_or_default();
        let mut g0 = first.get("grpc").cloned().unwrap_or_default();
        for v in [&mut g, &mut g0] {
            if let Some(k) = v.get_mut("keepalive").and_then(|k| k.as_object_mut()) {
                k.remove("permit_without_stream");
            }
        }
        if g != g0 {
            out.needs_restart.push("grpc");
        }
        for key in ["admin", "heartbeat", "metrics", "tls", "data_dir"] {
            if now.get(key) != first.get(key) {
                out.needs_restart.push(match key {
                    "admin" => "admin",
                    "heartbeat" => "heartbeat",
                    "metrics" => "metrics",
                    "tls" => "tls",
                    _ => "data_dir",
                });
            }
        }
        if let Ok(mut live) = self.live.write() {
            *live = Arc::new(new);
        }
        out
    }
}

fn listen_addr(hp: &HostPort) -> String {
    if hp.host.is_empty() {
        format!("0.0.0.0:{}", hp.port)
    } else {
        hp.to_string()
    }
}

/// Pending connections the kernel queues per listener (it caps this at
/// net.core.somaxconn): tokio's default of 1024 overflows when thousands of
/// agents reconnect at once after a master restart, and each overflowed
/// client waits a second or more for its SYN to be retried.
pub const LISTEN_BACKLOG: u32 = 16384;

async fn bind(hp: &HostPort) -> Result<socket2::Socket, ServeError> {
    let addr = listen_addr(hp);
    let fail = |source| ServeError::Bind {
        addr: addr.clone(),
        source,
    };
    let mut last = None;
    for a in tokio::net::lookup_host(&addr).await.map_err(fail)? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(a),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        );
        let bound = socket.and_then(|s| {
            s.set_reuse_address(true)?;
            s.set_nonblocking(true)?;
            s.bind(&a.into())?;
            Ok(s)
        });
        match bound {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(fail(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    })))
}

impl Master {
    /// Opens the store, loads every owner of state from it, sets up TLS
    /// (making the CA, the admin credential and a join token on first
    /// start) and binds every listener; nothing is served yet.
    pub async fn bind(config: MasterConfig, security: Security) -> Result<Self, ServeError> {
        check_security(&config, security)?;
        let backend = EmbeddedStore::open(&config.data_dir).map_err(MasterError::from)?;
        let listeners = Listeners::bind(&config).await?;
        let metrics = Arc::new(Metrics::default());
        let me = crate::leader::MasterRecord {
            id: master_id(&config, &listeners),
            backend: "embedded".into(),
            started_ms: cdn_common::unix_millis_now(),
            ..Default::default()
        };
        let leadership = crate::leader::Leadership::single(me, Arc::clone(&metrics));
        let foundation = Foundation {
            backend: Arc::new(backend),
            listeners,
            health: Health::new(Arc::clone(&leadership), &metrics),
            leadership,
            metrics,
            events: Arc::new(Events::default()),
            first_start: None,
        };
        Self::bind_on(config, security, foundation).await
    }

    /// Builds every owner of state from what `foundation`'s store holds,
    /// on its listeners. On etcd this runs at the start of each term of
    /// leadership.
    pub async fn bind_on(
        config: MasterConfig,
        security: Security,
        foundation: Foundation,
    ) -> Result<Self, ServeError> {
        let Foundation {
            backend,
            listeners,
            metrics,
            events,
            leadership,
            health,
            first_start: first_start_given,
        } = foundation;
        let (store, writer) = Store::start(backend);
        let mut loaded = store.load().await.map_err(MasterError::from)?;
        let registry = Arc::new(Registry::load(
            store.clone(),
            std::mem::take(&mut loaded.nodes),
            Liveness::from_config(&config.heartbeat),
        ));
        let (pki, created, tls) = tls_setup(&config, security)?;
        let first_start = first_start_given.unwrap_or(created);
        let own_ca = match (&tls, &config.tls.cert_file) {
            (Some(_), Some(cert)) => Some(own_chain_anchor(cert)?),
            _ => None,
        };
        let credentials = Arc::new(Credentials::load(
            &mut loaded,
            pki,
            store.clone(),
            config.tls.client_cert_ttl,
            own_ca,
        ));
        let authn = Arc::new(Authenticator::new(
            security.insecure,
            Arc::clone(&credentials),
            &config.limits,
            Arc::clone(&metrics),
        ));
        let audit = Arc::new(Audit::new(
            store.clone(),
            Arc::clone(&events),
            Arc::clone(&metrics),
            loaded.last_audit_id,
        ));
        let enrolment = Arc::new(Enrolment::new(
            Arc::clone(&authn),
            Arc::clone(&credentials),
            Arc::clone(&audit),
        ));
        let (configs, config_owner) = Configs::load(
            &mut loaded,
            Arc::clone(&registry),
            store.clone(),
            Arc::clone(&metrics),
            config.compression.clone(),
        );
        let staged = Rollouts::load(
            &mut loaded,
            configs.clone(),
            Arc::clone(&registry),
            store.clone(),
            Arc::clone(&audit),
            Arc::clone(&metrics),
            config.rollout.clone(),
        );
        let execs = Arc::new(ExecHub::new(
            Arc::clone(&registry),
            store.clone(),
            loaded.last_exec_id,
            Arc::clone(&events),
            metrics.exec_active.clone(),
            config.pool.clone(),
            Arc::new(crate::recording::Recordings::new(
                &config.data_dir,
                config.exec.recording.clone(),
                Arc::clone(&metrics),
            )),
        ));
        if leadership.me().agent_addr.is_empty()
            && let Ok((agent, admin)) = listeners.dial_addrs()
        {
            leadership.set_addrs(agent, admin);
        }
        let admin_addr = dial_addr(listeners.admin_local().map_err(|source| ServeError::Bind {
            addr: listen_addr(&config.grpc.addr),
            source,
        })?);
        // Every file a client needs is written before a port takes a
        // connection: who sees the port open finds the join token.
        let written =
            crate::auth::bootstrap(&credentials, &config.data_dir, &admin_addr, first_start)
                .await?;
        let (grpc, admin, metrics_listener) =
            listeners.share().map_err(|source| ServeError::Bind {
                addr: listen_addr(&config.grpc.addr),
                source,
            })?;
        let config = Arc::new(config);
        Ok(Self {
            store,
            leadership,
            live: Arc::new(std::sync::RwLock::new(Arc::clone(&config))),
            config,
            writer,
            registry,
            configs,
            config_owner,
            staged,
            execs,
            credentials,
            authn,
            enrolment,
            audit,
            events,
            metrics,
            health,
            grpc,
            admin,
            metrics_listener,
            tls,
            written,
        })
    }

    /// A handle that applies a reloaded config to this master once it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            started: Arc::clone(&self.config),
            live: Arc::clone(&self.live),
            authn: Arc::clone(&self.authn),
            execs: Arc::clone(&self.execs),
            configs: self.configs.clone(),
            staged: self.staged.clone(),
        }
    }

    /// A handle that counts this master's nodes by state.
    pub fn census(&self) -> Census {
        Census(Arc::clone(&self.registry))
    }

    /// Whether the master serves TLS.
    pub fn secure(&self) -> bool {
        self.tls.is_some()
    }

    /// Files with secrets written at this start (credential, join token).
    pub fn written_files(&self) -> &[std::path::PathBuf] {
        &self.written
    }

    /// sha256 of the CA certificate, when TLS is on.
    pub fn ca_fingerprint(&self) -> Option<String> {
        self.credentials
            .pki()
            .map(|p| p.ca_fingerprint().to_string())
    }

    /// Address of the metrics endpoint, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The metrics endpoint's listener (once), with what it serves: the
    /// caller runs [`crate::metrics::serve`] for the life of the process,
    /// so `/readyz` answers while the master starts and drains too.
    pub fn take_metrics_endpoint(&mut self) -> Option<(TcpListener, Arc<Metrics>, Arc<Health>)> {
        let l = self.metrics_listener.take()?;
        Some((l, Arc::clone(&self.metrics), Arc::clone(&self.health)))
    }

    /// Address agents dial.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// Address cdnctl dials.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.admin {
            Some(l) => l.local_addr(),
            None => self.grpc.local_addr(),
        }
    }

    /// Number of nodes loaded from the store.
    pub fn known_nodes(&self) -> usize {
        self.registry.len()
    }

    /// Serves until `shutdown` is cancelled, then drains: listeners stop,
    /// waiting pushes report, agents' streams close, tasks end (within
    /// [`SHUTDOWN_GRACE`]), the registry and the rollouts write what they
    /// hold, and the store's writer commits the last batch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let Self {
            config,
            store,
            leadership,
            live,
            writer,
            registry,
            configs,
            config_owner,
            staged,
            execs,
            credentials,
            authn,
            enrolment,
            audit,
            events,
            metrics,
            health,
            grpc,
            admin,
            metrics_listener: _,
            tls,
            written: _,
        } = self;
        // Owned here and closed after everything that sends it commands.
        let rollouts_closing = CancellationToken::new();
        let rollouts_task = tokio::spawn(config_owner.run(rollouts_closing.clone()));
        // Staged rollouts that had not ended go on from their wave.
        staged.resume_all();
        let tasks = TaskTracker::new();
        tasks.spawn(crate::recording::retain(
            Arc::clone(execs.recordings()),
            shutdown.clone(),
        ));
        let agent_api = AgentApi {
            registry: Arc::clone(&registry),
            configs: configs.clone(),
            execs: Arc::clone(&execs),
            config: Arc::clone(&config),
            live,
            authn: Arc::clone(&authn),
            enrolment,
            audit: Arc::clone(&audit),
            events: Arc::clone(&events),
            metrics: Arc::clone(&metrics),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        };
        let admin_api = AdminServiceServer::new(AdminApi {
            registry: Arc::clone(&registry),
            configs: configs.clone(),
            rollouts: staged.clone(),
            execs,
            authn: Arc::clone(&authn),
            credentials,
            audit,
            events: Arc::clone(&events),
            leadership: Arc::clone(&leadership),
            tasks: tasks.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
        // Health checks and reflection on each port, for the services it
        // serves; health Watch streams end when the port stops.
        let watches = crate::health::watch_slots();
        // Cancelled once health checks say the master is stopping.
        let health_closing = CancellationToken::new();
        let agent_port_services: &[&'static str] = match admin {
            None => &[crate::health::AGENT_SERVICE, crate::health::ADMIN_SERVICE],
            Some(_) => &[crate::health::AGENT_SERVICE],
        };
        let mut builder = server_builder(&config, &authn, &leadership);
        let router = builder
            // Agents get nothing larger than gRPC's default client accepts
            // (configs go in chunks); standard message compression is taken.
            .add_service(
                AgentServiceServer::new(agent_api)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_TO_AGENT_BYTES)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd),
            )
            .add_service(health.service(
                agent_port_services,
                Arc::clone(&watches),
                health_closing.clone(),
            ));
        let mut router = crate::reflection::add(router, agent_port_services)?;
        let mut admin_router = None;
        match admin {
            None => router = router.add_service(admin_api),
            Some(l) => {
                let admin_services = &[crate::health::ADMIN_SERVICE];
                let r = server_builder(&config, &authn, &leadership)
                    .add_service(admin_api)
                    .add_service(health.service(
                        admin_services,
                        Arc::clone(&watches),
                        health_closing.clone(),
                    ));
                admin_router = Some((crate::reflection::add(r, admin_services)?, l));
            }
        }

        // Scheduled backups, while this master serves.
        let on_written: crate::backup::OnWritten = {
            let leadership = Arc::clone(&leadership);
            Box::new(move |path: &std::path::Path, created_ms: i64| {
                let (leadership, path) = (Arc::clone(&leadership), path.to_path_buf());
                tokio::spawn(async move { leadership.note_backup(&path, created_ms).await });
            })
        };
        tasks.spawn(crate::backup::schedule(
            store,
            config.backup.clone(),
            config.data_dir.clone(),
            crate::backup::Origin {
                master: leadership.me().id,
                backend: config.store.backend,
            },
            Arc::clone(&metrics),
            on_written,
            shutdown.clone(),
        ));
        let sweeper = tasks.spawn(sweep_loop(
            Arc::clone(&registry),
            events,
            Arc::clone(&metrics),
            shutdown.clone(),
        ));
        {
            let registry = Arc::clone(&registry);
            metrics.count_nodes_with(Some(Box::new(move || registry.count_states())));
        }
        let stop = {
            let registry = Arc::clone(&registry);
            let configs = configs.clone();
            let shutdown = shutdown.clone();
            let health = Arc::clone(&health);
            let staged = staged.clone();
            async move {
                shutdown.cancelled().await;
                // Health checks say so before anything stops.
                health.set_phase(Phase::Stopping);
                health_closing.cancel();
                // Rollouts stop where they are before nodes drop off.
                staged.stopping();
                info!("shutting down: waiting pushes report, agent command streams close");
                configs.stop();
                registry.close_all_streams("master shutting down");
            }
        };
        let accept = accept_policy(&config, &metrics, tasks.clone(), shutdown.clone());
        let agent_server = serve(router, grpc, accept.clone(), tls.clone(), stop);
        // The listeners are bound and accepting: from here calls are served.
        health.set_phase(Phase::Serving);
        let result = match admin_router {
            None => drained(agent_server, &shutdown).await,
            Some((r, l)) => {
                let stop = shutdown.clone().cancelled_owned();
                let admin_server = serve(r, l, accept, tls, stop);
                let (a, b) = tokio::join!(
                    drained(agent_server, &shutdown),
                    drained(admin_server, &shutdown)
                );
                a.and(b)
            }
        };
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            warn!("some connection tasks did not finish within the shutdown grace");
        }
        let _ = sweeper.await;
        metrics.count_nodes_with(None);
        staged.stop().await;
        // Last flush so `last_seen` of every node is on disk.
        if let Err(e) = registry.final_flush().await {
            error!(error = %e, "final flush of the node registry failed");
        }
        rollouts_closing.cancel();
        if let Err(e) = rollouts_task.await {
            error!(error = %e, "config rollouts task failed");
        }
        writer.close().await;
        result
    }
}

/// How connections are accepted: socket buffers, the PING policy, counted
/// in the connection gauge, handshakes owned by `tasks`.
pub fn accept_policy(
    config: &MasterConfig,
    metrics: &Metrics,
    tasks: TaskTracker,
    stop: CancellationToken,
) -> crate::conn::Accept {
    crate::conn::Accept {
        send_buffer: config.grpc.send_buffer_size as usize,
        recv_buffer: config.grpc.recv_buffer_size as usize,
        open: metrics.connections.clone(),
        pings: crate::conn::PingPolicy {
            min_interval: config.grpc.keepalive.min_ping_interval,
            violations: metrics
                .refused
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: "too_many_pings",
                })
                .clone(),
        },
        tasks,
        stop,
    }
}

/// A server with the gate in front of its services, and its services.
type GatedRouter = tonic::transport::server::Router<
    tower::layer::util::Stack<crate::gate::GateLayer, tower::layer::util::Identity>,
>;

/// Serves `router` on `listener` (TLS when `tls` is set) until `stop`.
fn serve(
    router: GatedRouter,
    listener: TcpListener,
    accept: crate::conn::Accept,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> futures::future::BoxFuture<'static, Result<(), tonic::transport::Error>> {
    match tls {
        Some(t) => Box::pin(
            router.serve_with_incoming_shutdown(crate::conn::tls(listener, accept, t), stop),
        ),
        None => Box::pin(
            router.serve_with_incoming_shutdown(crate::conn::plain(listener, accept), stop),
        ),
    }
}

/// Waits for a server future, but no longer than the grace period once the
/// shutdown signal asked it to stop (long-lived streams may hold it open).
async fn drained(
    server: impl std::future::Future<Output = Result<(), tonic::transport::Error>>,
    shutdown: &CancellationToken,
) -> Result<(), ServeError> {
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = server => r.map_err(ServeError::from),
        _ = grace => {
            warn!("connections still open after the shutdown grace; closing them");
            Ok(())
        }
    }
}

/// A server with the gate in front of its services.
type GatedServer =
    Server<tower::layer::util::Stack<crate::gate::GateLayer, tower::layer::util::Identity>>;

/// TLS is not tonic's: [`crate::conn`] does the handshakes, so the PING
/// policy can see the plaintext HTTP/2 frames.
fn server_builder(
    config: &MasterConfig,
    auth: &Arc<Authenticator>,
    leadership: &Arc<crate::leader::Leadership>,
) -> GatedServer {
    let ka = &config.grpc.keepalive;
    Server::builder()
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_concurrent_streams(config.grpc.max_concurrent_streams)
        .http2_keepalive_interval(Some(ka.time))
        .http2_keepalive_timeout(Some(ka.timeout))
        .timeout(CALL_TIMEOUT)
        .layer(crate::gate::GateLayer::new(
            Arc::clone(auth),
            Arc::clone(leadership),
        ))
}

/// TLS of the listeners: the server certificate (the operator's, or the
/// one made from the CA), client certificates checked against the CA but
/// optional at the TLS layer (an enrolling agent has none yet; every call
/// but `Enroll` then requires one).
fn server_tls(
    pki: &crate::pki::Pki,
    cfg: &crate::config::TlsConfig,
) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    let (chain, key) = match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            let read = |key: &'static str, p: &std::path::Path| {
                std::fs::read_to_string(p).map_err(|e| ServeError::ConfigFile {
                    key,
                    path: p.display().to_string(),
                    message: cdn_common::describe_io(&e),
                })
            };
            let (cert_pem, key_pem) = (read("tls.cert_file", cert)?, read("tls.key_file", key)?);
            cdn_common::tls::pem_certs(&cert_pem).map_err(|e| ServeError::ConfigFile {
                key: "tls.cert_file",
                path: cert.display().to_string(),
                message: e.to_string(),
            })?;
            (cert_pem, key_pem)
        }
        _ => {
            let (chain, key) = pki.server_identity();
            (chain.to_string(), key.to_string())
        }
    };
    crate::conn::tls_acceptor(&chain, &key, pki.ca_pem()).map_err(ServeError::Tls)
}

/// The last certificate of the operator's chain file: what credentials
/// carry as the CA to check the master with.
fn own_chain_anchor(cert_file: &std::path::Path) -> Result<String, ServeError> {
    let bad = |message: String| ServeError::ConfigFile {
        key: "tls.cert_file",
        path: cert_file.display().to_string(),
        message,
    };
    let pem = std::fs::read_to_string(cert_file).map_err(|e| bad(cdn_common::describe_io(&e)))?;
    let certs = cdn_common::tls::pem_certs(&pem).map_err(|e| bad(e.to_string()))?;
    Ok(certs
        .last()
        .map(|c| cdn_common::tls::der_to_pem(c))
        .unwrap_or_default())
}

/// Whether `host` (as written in a listen address) is loopback only.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The address a local client dials for a listener bound to `addr`.
fn dial_addr(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => format!("127.0.0.1:{}", addr.port()),
        ip if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
        _ => addr.to_string(),
    }
}

/// Ends silent sessions every half heartbeat interval and says so.
async fn sweep_loop(
    registry: Arc<Registry>,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let period = (registry.liveness().interval / 2).max(MIN_SWEEP_PERIOD);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match registry.sweep().await {
            Ok(went) => {
                for w in went {
                    let reason = w.why.to_string();
                    warn!(node = %w.node_id, reason = %reason, "node offline");
                    if matches!(w.why, Offline::NoHeartbeat { .. }) {
                        metrics
                            .heartbeat_failures
                            .get_or_create(&crate::metrics::ReasonLabel { reason: "missed" })
                            .inc();
                    }
                    events.publish("node.offline", &w.node_id, "", reason, true);
                }
            }
            Err(e) => error!(error = %e, "cannot persist node registry"),
        }
    }
}
