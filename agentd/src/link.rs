//! The agent's link to the master: connect and register, serve the session
//! (heartbeats, status reports, the command stream, config fetches), and
//! when it ends do it again, as long as agentd runs. Which address to try
//! and how long to wait first is the [`Dialer`]'s to say.
//!
//! One HTTP/2 connection carries every RPC of a session. A session ends when
//! a heartbeat goes unanswered for `heartbeat.timeout`, the command stream
//! closes, or the master no longer knows the session; the agent then backs
//! off (capped exponential delay with jitter) and registers again.
//!
//! A standby master answers every call UNAVAILABLE, naming the leader when
//! it knows it: such an answer, to the registration or to any call of a
//! session, is a [`LinkError::Standby`], and the dialer dials the leader
//! next (see [`Failure`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use cdn_common::config::HostPort;
use cdn_proto::Version;
use cdn_proto::v1::agent_service_client::AgentServiceClient;
use cdn_proto::v1::{
    CommandRequest, ConfigAck, HeartbeatRequest, LinkStats, Pong, RegisterRequest, StatusRequest,
    StreamHello, command_request, command_response,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, error, info, warn};

use crate::apply::{self, Applier, Outcome};
use crate::backoff::Backoff;
use crate::chunks::Piece;
use crate::config::{AgentConfig, LiveConfig};
use crate::dialer::{Dialer, Failure};
use crate::exec::Executor;
use crate::health::HealthResult;
use crate::pace::Pace;
use crate::status::Snapshot;
use cdn_proto::limits::{CONNECTION_WINDOW_BYTES, MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES};

/// Agent version sent to the master.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Heartbeat round trips kept for the percentiles reported to the master.
const RTT_SAMPLES: usize = 256;

/// Depth of the queue of replies on the command stream.
const REPLY_QUEUE_DEPTH: usize = 64;

/// How long a clean shutdown waits for the master to take note.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a connection attempt or a session ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach master at {addr}: {message}")]
    Dial { addr: String, message: String },
    /// Nothing listens at the address: the master is stopped (or killed).
    #[error("cannot reach master at {addr}: connection refused")]
    ConnectionRefused { addr: String },
    /// The master is a standby; `leader` is the address it named, None
    /// while no master leads (an election is under way).
    #[error("{message}")]
    Standby {
        message: String,
        leader: Option<HostPort>,
    },
    #[error("master at {addr} did not answer within {}", cdn_common::duration::short(*after))]
    Timeout { addr: String, after: Duration },
    #[error("master refused registration: {0}")]
    Refused(String),
    /// UNAUTHENTICATED at registration: the certificate is revoked or not
    /// this master's.
    #[error("master refused this node's certificate: {0}")]
    CertificateRefused(String),
    #[error("heartbeat unanswered for {}; dropping the connection", cdn_common::duration::short(*.0))]
    HeartbeatTimeout(Duration),
    #[error("master no longer knows this session: {0}")]
    SessionLost(String),
    #[error("command stream closed: {0}")]
    StreamClosed(String),
    #[error("master call failed: {0}")]
    Rpc(String),
    /// A reloaded agent.yml changed what the registration told the master
    /// (`node.labels`, `compression.accept`): the session ends so that the
    /// agent registers again on the same connection.
    #[error("{0} changed; registering again")]
    Reregister(&'static str),
}

/// Counters and recent heartbeat round trips, shared with status reports.
#[derive(Debug, Default)]
pub struct LinkCounters {
    rtts: Mutex<VecDeque<Duration>>,
    reconnects: AtomicU64,
    heartbeat_failures: AtomicU64,
    /// A registered session is being served now.
    session_live: std::sync::atomic::AtomicBool,
    /// When the first registration succeeded.
    first_registered: std::sync::OnceLock<Instant>,
}

impl LinkCounters {
    /// The newest round trip, microseconds (0 if none).
    fn last_rtt_us(&self) -> u64 {
        self.rtts
            .lock()
            .ok()
            .and_then(|q| q.back().map(|d| d.as_micros() as u64))
            .unwrap_or(0)
    }

    fn record_rtt(&self, d: Duration) {
        if let Ok(mut q) = self.rtts.lock() {
            if q.len() == RTT_SAMPLES {
                q.pop_front();
            }
            q.push_back(d);
        }
    }

    /// Percentiles of the kept round trips.
    pub fn snapshot(&self) -> LinkStats {
        let mut v: Vec<Duration> = self
            .rtts
            .lock()
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default();
        v.sort();
        let pick = |p: f64| {
            if v.is_empty() {
                0
            } else {
                let i = ((v.len() as f64 - 1.0) * p).round() as usize;
                v[i.min(v.len() - 1)].as_micros() as u64
            }
        };
        LinkStats {
            heartbeat_rtt_p50_us: pick(0.50),
            heartbeat_rtt_p99_us: pick(0.99),
            heartbeat_rtt_max_us: v.last().map_or(0, |d| d.as_micros() as u64),
            heartbeat_samples: v.len() as u32,
            reconnects: self.reconnects.load(Ordering::Relaxed),
            heartbeat_failures: self.heartbeat_failures.load(Ordering::Relaxed),
        }
    }
}

/// Read-outs for a process that runs many links (the hollow-agent swarm).
impl LinkCounters {
    /// Whether the link holds a registered session now.
    pub fn registered(&self) -> bool {
        self.session_live.load(Ordering::Relaxed)
    }

    /// When the link first registered; None until it has.
    pub fn first_registered(&self) -> Option<Instant> {
        self.first_registered.get().copied()
    }

    /// Calls `f` with each kept heartbeat round trip, oldest first.
    pub fn for_each_rtt(&self, mut f: impl FnMut(Duration)) {
        if let Ok(q) = self.rtts.lock() {
            q.iter().copied().for_each(&mut f);
        }
    }

    /// Sessions that replaced an earlier one.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Heartbeats that failed or went unanswered.
    pub fn heartbeat_failures(&self) -> u64 {
        self.heartbeat_failures.load(Ordering::Relaxed)
    }

    fn set_session_live(&self, live: bool) {
        if live {
            let _ = self.first_registered.set(Instant::now());
        }
        self.session_live.store(live, Ordering::Relaxed);
    }
}

/// Settings the master handed over at registration, and what the agent
/// told it.
#[derive(Debug, Clone)]
struct Granted {
    session_id: u64,
    stream_open_timeout: Duration,
    /// The master's reconnect policy, if it sent a sane one.
    reconnect: Option<Backoff>,
    /// The labels registered with.
    labels: BTreeMap<String, String>,
    /// The encodings registered with.
    accept: Vec<String>,
}

/// The agent's link to the master.
pub struct Link {
    /// The configuration in force: the one it was made with, or what
    /// SIGHUP reloads put in force (see [`Link::following`]).
    live: LiveConfig,
    /// Tell the service manager where the link is (`STATUS=`).
    notify: bool,
    node_id: String,
    instance_id: String,
    hostname: String,
    status: watch::Receiver<Snapshot>,
    counters: Arc<LinkCounters>,
    permit_without_stream: bool,
    applier: Applier,
    executor: Executor,
    /// Certificate and CA for mutual TLS; None with `--insecure`.
    identity: Option<Arc<crate::identity::Identity>>,
    /// The current session had a heartbeat answered.
    healthy: std::sync::atomic::AtomicBool,
    /// Version last fetched because a heartbeat said we are behind, and when.
    fetched: Mutex<Option<(Version, Instant)>>,
    /// Interval between HTTP/2 PINGs: `master.keepalive.time`, doubled each
    /// time the master says we ping too often (gRFC A8).
    keepalive_time: Duration,
}

/// A version fetched after a heartbeat is not fetched again for this long
/// (unless it was applied meanwhile): a failing apply retries at this pace.
const REFETCH_AFTER: Duration = Duration::from_secs(30);

impl Link {
    /// A link for `node_id`, reporting figures from `status`.
    pub fn new(
        config: Arc<AgentConfig>,
        node_id: String,
        status: watch::Receiver<Snapshot>,
        applier: Applier,
        executor: Executor,
        identity: Option<Arc<crate::identity::Identity>>,
    ) -> Self {
        let instance_id = format!("{:032x}", rand::random::<u128>());
        let keepalive_time = config.master.keepalive.time;
        Self {
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            live: watch::channel(config).1,
            notify: false,
            node_id,
            instance_id,
            status,
            counters: Arc::new(LinkCounters::default()),
            permit_without_stream: true,
            applier,
            executor,
            identity,
            healthy: std::sync::atomic::AtomicBool::new(false),
            fetched: Mutex::new(None),
            keepalive_time,
        }
    }

    /// Follows `live` (the configuration SIGHUP reloads put in force)
    /// instead of the configuration the link was made with: heartbeat and
    /// report intervals and timeouts change at once, and a change of
    /// `node.labels` or `compression.accept` makes the agent register
    /// again on its connection so the master learns it (exec sessions
    /// under way carry on). `master.*` keys are read once, at start.
    pub fn following(mut self, live: LiveConfig) -> Self {
        self.live = live;
        self
    }

    /// Tells the service manager (`STATUS=`, see
    /// [`cdn_common::notify`]) where the link is: connecting, registered,
    /// reconnecting. For the one link of an agentd process.
    pub fn reporting_status(mut self) -> Self {
        self.notify = true;
        self
    }

    /// The configuration in force.
    fn config(&self) -> Arc<AgentConfig> {
        Arc::clone(&self.live.borrow())
    }

    /// Says `status` to the service manager, if this link reports.
    fn say(&self, status: impl FnOnce() -> String) {
        if self.notify {
            cdn_common::notify::status(&status());
        }
    }

    /// The applied version as the agent messages spell it.
    fn applied_version(&self) -> String {
        Version::to_wire(self.applier.applied().version)
    }

    /// Counters of this link (for tests and status).
    pub fn counters(&self) -> Arc<LinkCounters> {
        Arc::clone(&self.counters)
    }

    /// Runs until `shutdown`: connect, register, serve the session, back off,
    /// and again, as the [`Dialer`] says. Never returns because the master
    /// is away.
    /// Serves sessions until `shutdown`; returns why the agent cannot go
    /// on by itself (its certificate was refused: revoked, or the master
    /// does not know it), None after a shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) -> Option<String> {
        let mut dialer = match Dialer::for_master(&self.config().master) {
            Ok(d) => d,
            Err(e) => {
                error!("{e}");
                return Some(e.to_string());
            }
        };
        let mut ever_connected = false;
        while let Some(addr) = dialer.next(&shutdown).await {
            self.say(|| match dialer.attempt() {
                0 => format!("connecting to master {addr}"),
                n => format!("connecting to master {addr} (try {})", n + 1),
            });
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = self.connect_and_register(&addr, dialer.unreachable_leader().cloned()) => r,
            };
            let (mut client, mut granted) = match outcome {
                Ok(registered) => registered,
                Err(e) => {
                    self.say(|| format!("not registered: {e}"));
                    self.ping_less_if_told(&e);
                    match &e {
                        // Retrying cannot help, and every try counts
                        // against this address's failed-login budget at
                        // the master (other agents behind it share it).
                        LinkError::CertificateRefused(why) => return Some(why.clone()),
                        LinkError::Refused(_) => error!(master = %addr, "{e}"),
                        // The dialer says which leader it dials next.
                        LinkError::Standby {
                            leader: Some(_), ..
                        } => debug!(master = %addr, "{e}"),
                        _ => warn!(master = %addr, attempt = dialer.attempt(), "{e}"),
                    }
                    dialer.failed_because(e.failure());
                    continue;
                }
            };
            if let Some(policy) = granted.reconnect {
                dialer.adopt(policy);
            }
            match dialer.connected() {
                Some(down_for) => info!(
                    master = %addr,
                    session = granted.session_id,
                    down_for_ms = down_for.as_millis() as u64,
                    "reconnected to master"
                ),
                None => {
                    info!(master = %addr, session = granted.session_id, node = %self.node_id, "registered with master")
                }
            }
            if ever_connected {
                self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            ever_connected = true;
            self.healthy.store(false, Ordering::Relaxed);
            // Exec sessions belong to the connection: they carry on when
            // the agent registers again on it, and end with it.
            let mut execs = JoinSet::new();
            let end = loop {
                self.say(|| {
                    format!(
                        "registered with master {addr} as {} (session {})",
                        self.node_id, granted.session_id
                    )
                });
                self.counters.set_session_live(true);
                let end = self
                    .serve_session(client.clone(), &granted, &mut execs, &shutdown)
                    .await;
                self.counters.set_session_live(false);
                let Some(LinkError::Reregister(what)) = end else {
                    break end;
                };
                info!(master = %addr, "{what} changed (agent.yml reloaded); registering again");
                let again = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    r = self.register(&mut client, &addr, None, true) => r,
                };
                match again {
                    Ok(g) => {
                        info!(
                            master = %addr,
                            session = g.session_id,
                            labels = ?g.labels,
                            "registered again"
                        );
                        granted = g;
                    }
                    Err(e) => break Some(e),
                }
            };
            drop(execs);
            dialer.session_ended(self.healthy.load(Ordering::Relaxed));
            match end {
                None => return None,
                Some(e) => {
                    self.say(|| format!("disconnected from master {addr} ({e}); reconnecting"));
                    warn!(master = %addr, error = %e, "session ended; reconnecting");
                    self.ping_less_if_told(&e);
                    // The master stepped down: go where it says.
                    if let failure @ Failure::Standby(_) = e.failure() {
                        dialer.failed_because(failure);
                    }
                }
            }
        }
        None
    }

    /// The master closed the connection with GOAWAY `too_many_pings`
    /// (gRFC A8): double the PING interval for the next connections.
    fn ping_less_if_told(&mut self, e: &LinkError) {
        if !told_to_ping_less(e) {
            return;
        }
        let was = self.keepalive_time;
        self.keepalive_time = (was * 2).min(MAX_KEEPALIVE_TIME);
        warn!(
            was = %cdn_common::duration::short(was),
            now = %cdn_common::duration::short(self.keepalive_time),
            "the master says we ping too often (GOAWAY too_many_pings); keepalive.time doubled; raise master.keepalive.time in agent.yml to at least the master's grpc.keepalive.min_ping_interval"
        );
    }

    fn endpoint(&self, addr: &HostPort) -> Result<Endpoint, LinkError> {
        let config = self.config();
        let ka = &config.master.keepalive;
        let scheme = if self.identity.is_some() {
            "https"
        } else {
            "http"
        };
        let mut endpoint =
            Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|e| LinkError::Dial {
                addr: addr.to_string(),
                message: e.to_string(),
            })?;
        if let Some(id) = &self.identity {
            let tls = cdn_common::tls::client_tls(
                &id.ca_pem,
                Some((&id.cert_pem, &id.key_pem)),
                &crate::identity::server_name(&config, addr),
            );
            endpoint = endpoint.tls_config(tls).map_err(|e| LinkError::Dial {
                addr: addr.to_string(),
                message: cdn_common::tls::root_cause(&e),
            })?;
        }
        Ok(endpoint
            .max_frame_size(cdn_proto::limits::CLIENT_FRAME_BYTES)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .connect_timeout(config.master.dial_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive_time)
            .keep_alive_timeout(ka.timeout)
            .keep_alive_while_idle(self.permit_without_stream))
    }

    async fn connect_and_register(
        &mut self,
        addr: &HostPort,
        unreachable_leader: Option<HostPort>,
    ) -> Result<(AgentServiceClient<Channel>, Granted), LinkError> {
        let mut client = self.connect(addr).await?;
        let granted = self
            .register(&mut client, addr, unreachable_leader, false)
            .await?;
        Ok((client, granted))
    }

    /// Opens the connection to `addr` (TCP, TLS, HTTP/2).
    async fn connect(&self, addr: &HostPort) -> Result<AgentServiceClient<Channel>, LinkError> {
        let dial = self.config().master.dial_timeout;
        let endpoint = self.endpoint(addr)?;
        let channel = tokio::time::timeout(dial, endpoint.connect())
            .await
            .map_err(|_| LinkError::Timeout {
                addr: addr.to_string(),
                after: dial,
            })?
            .map_err(|e| {
                if connection_refused(&e) {
                    LinkError::ConnectionRefused {
                        addr: addr.to_string(),
                    }
                } else {
                    LinkError::Dial {
                        addr: addr.to_string(),
                        message: cdn_common::tls::root_cause(&e),
                    }
                }
            })?;
        Ok(AgentServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Registers on `client`'s connection with the configuration in force:
    /// a new session (one of this agent process replaces its older one).
    /// `update`: registering again because agent.yml changed, not after a
    /// lost connection.
    async fn register(
        &mut self,
        client: &mut AgentServiceClient<Channel>,
        addr: &HostPort,
        unreachable_leader: Option<HostPort>,
        update: bool,
    ) -> Result<Granted, LinkError> {
        let config = self.config();
        let snapshot = self.status.borrow().clone();
        let request = RegisterRequest {
            node_id: self.node_id.clone(),
            labels: config.node.labels.clone().into_iter().collect(),
            addresses: snapshot.addresses,
            agent_version: AGENT_VERSION.to_string(),
            config_version: self.applied_version(),
            instance_id: self.instance_id.clone(),
            hostname: self.hostname.clone(),
            heartbeat_interval_ms: config.heartbeat.interval.as_millis() as u64,
            accept_encodings: config.compression.accept.clone(),
            update,
        };
        let timeout = config.heartbeat.timeout;
        let mut request = tonic::Request::new(request);
        // A standby may hold its answer this long (see below).
        request.set_timeout(timeout);
        if let Some(dead) = unreachable_leader
            && let Ok(v) = dead.to_string().parse()
        {
            // The leader it named did not answer: let it answer once the
            // election has moved on rather than name that one again.
            request
                .metadata_mut()
                .insert(cdn_common::leader::UNREACHABLE_LEADER_METADATA, v);
        }
        let reply = tokio::time::timeout(timeout, client.register(request))
            .await
            .map_err(|_| LinkError::Timeout {
                addr: addr.to_string(),
                after: timeout,
            })?
            .map_err(|s| match s.code() {
                Code::AlreadyExists | Code::InvalidArgument | Code::PermissionDenied => {
                    LinkError::Refused(s.message().to_string())
                }
                Code::Unauthenticated => LinkError::CertificateRefused(s.message().to_string()),
                _ => standby(&s).unwrap_or_else(|| LinkError::Rpc(status_line(&s))),
            })?
            .into_inner();
        self.permit_without_stream = reply.keepalive_permit_without_stream;
        let offline_after = Duration::from_millis(reply.offline_after_ms);
        if !offline_after.is_zero() && config.heartbeat.interval >= offline_after {
            warn!(
                "heartbeat.interval ({}) is not shorter than the master's offline window ({}); this node will flap",
                cdn_common::duration::short(config.heartbeat.interval),
                cdn_common::duration::short(offline_after)
            );
        }
        Ok(Granted {
            session_id: reply.session_id,
            stream_open_timeout: Duration::from_millis(reply.stream_open_timeout_ms.max(1000)),
            reconnect: reply.reconnect.as_ref().and_then(Backoff::from_proto),
            labels: config.node.labels.clone(),
            accept: config.compression.accept.clone(),
        })
    }

    /// Serves one session; `None` means a clean shutdown.
    async fn serve_session(
        &self,
        client: AgentServiceClient<Channel>,
        granted: &Granted,
        execs: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> Option<LinkError> {
        let (reply_tx, reply_rx) = mpsc::channel(REPLY_QUEUE_DEPTH);
        let hello = CommandRequest {
            node_id: self.node_id.clone(),
            session_id: granted.session_id,
            command_id: 0,
            body: Some(command_request::Body::Hello(StreamHello {})),
        };
        if reply_tx.try_send(hello).is_err() {
            return Some(LinkError::StreamClosed("cannot queue hello".into()));
        }
        let mut stream_client = client.clone();
        let opened = tokio::time::timeout(
            granted.stream_open_timeout,
            stream_client.execute_command(ReceiverStream::new(reply_rx)),
        )
        .await;
        let inbound = match opened {
            Err(_) => {
                return Some(LinkError::StreamClosed(
                    "master did not accept the command stream in time".into(),
                ));
            }
            Ok(Err(s)) => return Some(classify(&s)),
            Ok(Ok(r)) => r.into_inner(),
        };
        debug!(session = granted.session_id, "command stream open");
        let (outcome_tx, outcome_rx) = mpsc::channel(REPLY_QUEUE_DEPTH);
        let (behind_tx, behind_rx) = watch::channel(None);
        let ended = tokio::select! {
            _ = shutdown.cancelled() => None,
            e = self.heartbeat_loop(client.clone(), granted.session_id, &behind_tx) => Some(e),
            e = self.fetch_loop(client.clone(), granted.session_id, behind_rx, &outcome_tx) => Some(e),
            e = self.report_loop(client.clone(), granted.session_id) => Some(e),
            e = self.command_loop(client.clone(), inbound, reply_tx.clone(), granted.session_id, &outcome_tx, execs) => Some(e),
            e = self.ack_loop(outcome_rx, reply_tx, granted.session_id) => Some(e),
            e = self.registration_outdated(granted) => Some(e),
        };
        if ended.is_none() {
            self.say_goodbye(client, granted.session_id).await;
        }
        ended
    }

    /// Resolves once the configuration in force has other labels or
    /// encodings than this session registered with (a reloaded agent.yml).
    async fn registration_outdated(&self, granted: &Granted) -> LinkError {
        let mut live = self.live.clone();
        loop {
            {
                let config = live.borrow_and_update();
                if config.node.labels != granted.labels {
                    return LinkError::Reregister("node.labels");
                }
                if config.compression.accept != granted.accept {
                    return LinkError::Reregister("compression.accept");
                }
            }
            if live.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    async fn heartbeat_loop(
        &self,
        mut client: AgentServiceClient<Channel>,
        session_id: u64,
        behind: &watch::Sender<Option<Version>>,
    ) -> LinkError {
        let mut pace = Pace::new(self.live.clone(), |c| c.heartbeat.interval);
        let mut health = self.applier.health();
        let mut sent = health.borrow_and_update().clone();
        loop {
            // A health result that changes state is told at once.
            tokio::select! {
                _ = pace.tick() => {}
                _ = health_turned(&mut health, &sent) => {}
            }
            sent = health.borrow_and_update().clone();
            let config = self.config();
            let hb = &config.heartbeat;
            let degraded = sent
                .degraded_reason()
                .or_else(|| self.status.borrow().degraded_reason(&config.status));
            let (status, reason) = match degraded {
                Some(why) => ("degraded", why),
                None => ("online", String::new()),
            };
            let request = HeartbeatRequest {
                node_id: self.node_id.clone(),
                timestamp: cdn_common::unix_millis_now(),
                status: status.to_string(),
                session_id,
                config_version: self.applied_version(),
                reason,
                config_disk_hash: self.applier.disk_hash(),
                last_rtt_us: self.counters.last_rtt_us(),
                health: sent.wire(),
            };
            let started = Instant::now();
            match tokio::time::timeout(hb.timeout, client.heartbeat(request)).await {
                Err(_) => {
                    self.counters
                        .heartbeat_failures
                        .fetch_add(1, Ordering::Relaxed);
                    return LinkError::HeartbeatTimeout(hb.timeout);
                }
                Ok(Err(s)) => {
                    self.counters
                        .heartbeat_failures
                        .fetch_add(1, Ordering::Relaxed);
                    return classify(&s);
                }
                Ok(Ok(reply)) => {
                    self.counters.record_rtt(started.elapsed());
                    self.healthy.store(true, Ordering::Relaxed);
                    let reply = reply.into_inner();
                    if reply.config_updated {
                        match Version::parse_wire(&reply.config_version) {
                            // Fetched beside the heartbeats, never in their way.
                            Ok(Some(v)) => {
                                behind.send_replace(Some(v));
                            }
                            Ok(None) => {}
                            Err(e) => debug!("heartbeat reply ignored: {e}"),
                        }
                    }
                }
            }
        }
    }

    /// Fetches the desired version whenever a heartbeat reply says ours is
    /// behind.
    async fn fetch_loop(
        &self,
        mut client: AgentServiceClient<Channel>,
        session_id: u64,
        mut behind: watch::Receiver<Option<Version>>,
        outcomes: &mpsc::Sender<Outcome>,
    ) -> LinkError {
        loop {
            if behind.changed().await.is_err() {
                return LinkError::StreamClosed("heartbeats stopped".into());
            }
            let version = *behind.borrow_and_update();
            if let Some(v) = version {
                self.fetch_if_behind(&mut client, session_id, v, outcomes)
                    .await;
            }
        }
    }

    /// The master says our config is behind: fetch the desired version and
    /// queue it, unless it is already being applied or just failed.
    async fn fetch_if_behind(
        &self,
        client: &mut AgentServiceClient<Channel>,
        session_id: u64,
        v: Version,
        outcomes: &mpsc::Sender<Outcome>,
    ) {
        if self.applier.applied().version == Some(v) {
            return;
        }
        if let Ok(mut f) = self.fetched.lock() {
            if matches!(*f, Some((fv, at)) if fv == v && at.elapsed() < REFETCH_AFTER) {
                return;
            }
            *f = Some((v, Instant::now()));
        }
        info!(
            version = %v,
            "fetching desired config the master says we lack"
        );
        match self.fetch(client, session_id, v).await {
            Ok(req) => {
                let _ = self.applier.submit(req, outcomes.clone()).await;
            }
            Err(e) => warn!(version = %v, error = %e, "cannot fetch desired config"),
        }
    }

    /// Fetches version `v` chunk by chunk (each call bounded by the
    /// heartbeat timeout).
    async fn fetch(
        &self,
        client: &mut AgentServiceClient<Channel>,
        session_id: u64,
        v: Version,
    ) -> Result<apply::Request, String> {
        let timeout = self.config().heartbeat.timeout;
        let mut chunks = crate::chunks::Fetch::default();
        loop {
            let request = cdn_proto::v1::PushConfigRequest {
                node_id: self.node_id.clone(),
                session_id,
                version: v.to_string(),
                offset: chunks.offset(),
            };
            let r = tokio::time::timeout(timeout, client.push_config(request))
                .await
                .map_err(|_| format!("no answer within {}", cdn_common::duration::short(timeout)))?
                .map_err(|s| status_line(&s))?
                .into_inner();
            if let Some(content) = chunks.add(r.content, r.wire_size)? {
                return Ok(apply::Request {
                    version: v,
                    hash: r.hash,
                    content,
                    encoding: r.encoding,
                });
            }
        }
    }

    /// Handles what the master sends on the command stream.
    async fn command_loop(
        &self,
        client: AgentServiceClient<Channel>,
        mut inbound: tonic::Streaming<cdn_proto::v1::CommandResponse>,
        replies: mpsc::Sender<CommandRequest>,
        session_id: u64,
        outcomes: &mpsc::Sender<Outcome>,
        sessions: &mut JoinSet<()>,
    ) -> LinkError {
        let mut assembly = crate::chunks::Assembly::default();
        loop {
            let cmd = tokio::select! {
                m = inbound.message() => match m {
                    Ok(Some(cmd)) => cmd,
                    Ok(None) => return LinkError::StreamClosed("master ended the stream".into()),
                    Err(s) => {
                        return standby(&s)
                            .unwrap_or_else(|| LinkError::StreamClosed(status_line(&s)));
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            };
            match cmd.body {
                Some(command_response::Body::Ping(p)) => {
                    let pong = CommandRequest {
                        node_id: self.node_id.clone(),
                        session_id,
                        command_id: cmd.command_id,
                        body: Some(command_request::Body::Pong(Pong { nonce: p.nonce })),
                    };
                    if replies.send(pong).await.is_err() {
                        return LinkError::StreamClosed("reply queue closed".into());
                    }
                }
                Some(command_response::Body::ApplyConfig(a)) => {
                    let Ok(Some(version)) = Version::parse_wire(&a.version) else {
                        warn!(version = %a.version, "config version is not a number; ignored");
                        continue;
                    };
                    let req = match assembly.add(version, a) {
                        Piece::Complete(req) => req,
                        Piece::Incomplete => continue,
                        Piece::Dropped(why) => {
                            warn!(%version, "config dropped ({why}); it will be fetched again");
                            continue;
                        }
                    };
                    // Never wait here: pings and exec starts must keep flowing.
                    // A version that finds the queue full arrives again
                    // through the heartbeat reply.
                    if !self.applier.try_submit(req, outcomes.clone()) {
                        warn!(
                            %version,
                            "config queue full; the version will be fetched again"
                        );
                    }
                }
                Some(command_response::Body::StartExec(start)) => {
                    if start.argv.is_empty() {
                        warn!(exec = start.exec_id, "exec without a command ignored");
                        continue;
                    }
                    let executor = self.executor.clone();
                    let (client, node) = (client.clone(), self.node_id.clone());
                    sessions.spawn(async move {
                        executor.serve(client, node, session_id, start).await;
                    });
                }
                Some(command_response::Body::Close(c)) => {
                    return LinkError::StreamClosed(format!("master closed it: {}", c.reason));
                }
                None => debug!("empty command ignored"),
            }
        }
    }

    /// Turns apply outcomes into acknowledgements on the command stream.
    async fn ack_loop(
        &self,
        mut outcomes: mpsc::Receiver<Outcome>,
        replies: mpsc::Sender<CommandRequest>,
        session_id: u64,
    ) -> LinkError {
        while let Some(o) = outcomes.recv().await {
            let ack = CommandRequest {
                node_id: self.node_id.clone(),
                session_id,
                command_id: o.version.get(),
                body: Some(command_request::Body::ConfigAck(ConfigAck {
                    version: o.version.to_string(),
                    hash: o.hash,
                    success: o.result.is_ok(),
                    error: o.result.err().map(|e| e.to_string()).unwrap_or_default(),
                    apply_micros: o.elapsed.as_micros() as u64,
                    health: o.health.as_ref().and_then(HealthResult::wire),
                })),
            };
            if replies.send(ack).await.is_err() {
                return LinkError::StreamClosed("reply queue closed".into());
            }
        }
        LinkError::StreamClosed("apply outcomes closed".into())
    }

    async fn report_loop(
        &self,
        mut client: AgentServiceClient<Channel>,
        session_id: u64,
    ) -> LinkError {
        let mut pace = Pace::new(self.live.clone(), |c| c.status.report_interval);
        loop {
            pace.tick().await;
            let system = self.status.borrow().system;
            let request = StatusRequest {
                node_id: self.node_id.clone(),
                session_id,
                timestamp: cdn_common::unix_millis_now(),
                system,
                config_version: self.applied_version(),
                agent_version: AGENT_VERSION.to_string(),
                link: Some(self.counters.snapshot()),
            };
            let timeout = self.config().heartbeat.timeout;
            match tokio::time::timeout(timeout, client.report_status(request)).await {
                Err(_) => warn!("status report unanswered within {timeout:?}"),
                Ok(Err(s)) => {
                    let e = classify(&s);
                    if matches!(e, LinkError::SessionLost(_) | LinkError::Standby { .. }) {
                        return e;
                    }
                    warn!(error = %e, "status report failed");
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Tells the master this node is going away, so it shows offline at once.
    async fn say_goodbye(&self, mut client: AgentServiceClient<Channel>, session_id: u64) {
        let request = HeartbeatRequest {
            node_id: self.node_id.clone(),
            timestamp: cdn_common::unix_millis_now(),
            status: "offline".into(),
            session_id,
            config_version: self.applied_version(),
            reason: "agent shut down".into(),
            config_disk_hash: self.applier.disk_hash(),
            last_rtt_us: 0,
            health: None,
        };
        match tokio::time::timeout(GOODBYE_TIMEOUT, client.heartbeat(request)).await {
            Ok(Ok(_)) => info!("told the master this node is going offline"),
            _ => debug!("master not told of the shutdown"),
        }
    }
}

/// Resolves when the latest health result on `health` is in another state
/// than `sent` (ok, failing, no check); never if the checker is gone.
async fn health_turned(health: &mut watch::Receiver<HealthResult>, sent: &HealthResult) {
    if health.wait_for(|now| !now.same_state(sent)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Longest PING interval doubling leads to.
const MAX_KEEPALIVE_TIME: Duration = Duration::from_secs(3600);

/// Whether `e` is the master closing the connection for too many PINGs:
/// HTTP/2 GOAWAY `ENHANCE_YOUR_CALM`, which tonic reports as
/// RESOURCE_EXHAUSTED with h2's wording of that reason.
fn told_to_ping_less(e: &LinkError) -> bool {
    let text = e.to_string();
    text.contains("too_many_pings") || text.contains("excessive load generating behavior")
}

fn classify(s: &tonic::Status) -> LinkError {
    match s.code() {
        Code::FailedPrecondition | Code::NotFound => LinkError::SessionLost(s.message().into()),
        _ => standby(s).unwrap_or_else(|| LinkError::Rpc(status_line(s))),
    }
}

impl LinkError {
    /// What this error says about where to dial next.
    fn failure(&self) -> Failure {
        match self {
            Self::ConnectionRefused { .. } => Failure::Refused,
            Self::Standby { leader, .. } => Failure::Standby(leader.clone()),
            _ => Failure::Other,
        }
    }
}

/// A standby's refusal: UNAVAILABLE answered by a master (not made up by
/// the transport for a connection that failed), with the leader it named.
fn standby(s: &tonic::Status) -> Option<LinkError> {
    let hint = cdn_common::leader::leader_hint(s);
    let answered = s.code() == Code::Unavailable && std::error::Error::source(s).is_none();
    if hint.is_none() && !answered {
        return None;
    }
    let leader = hint.and_then(|h| match HostPort::parse(&h) {
        Ok(a) => Some(a),
        Err(e) => {
            warn!("the standby's leader hint is unusable: {e}");
            None
        }
    });
    Some(LinkError::Standby {
        message: status_line(s),
        leader,
    })
}

/// Whether `e` (or what caused it) is a refused TCP connection.
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The status in one line, with the transport's root cause when tonic's
/// message alone is vague ("error reading a body from connection").
fn status_line(s: &tonic::Status) -> String {
    let msg = s.message();
    let cause = std::error::Error::source(s)
        .map(cdn_common::tls::root_cause)
        .filter(|c| !msg.contains(c.as_str()));
    match (msg.is_empty(), cause) {
        (true, None) => format!("{:?}", s.code()),
        (true, Some(c)) => format!("{c} ({:?})", s.code()),
        (false, None) => format!("{msg} ({:?})", s.code()),
        (false, Some(c)) => format!("{msg}: {c} ({:?})", s.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_round_trips() {
        let c = LinkCounters::default();
        for ms in 1..=100 {
            c.record_rtt(Duration::from_millis(ms));
        }
        let s = c.snapshot();
        assert_eq!(s.heartbeat_samples, 100);
        assert_eq!(s.heartbeat_rtt_p50_us, 51_000);
        assert_eq!(s.heartbeat_rtt_p99_us, 99_000);
        assert_eq!(s.heartbeat_rtt_max_us, 100_000);
    }

    #[test]
    fn first_registration_is_kept_across_sessions() {
        let c = LinkCounters::default();
        assert!(!c.registered() && c.first_registered().is_none());
        c.set_session_live(true);
        let first = c.first_registered().unwrap();
        c.set_session_live(false);
        c.set_session_live(true);
        assert!(c.registered());
        assert_eq!(c.first_registered(), Some(first));
        c.record_rtt(Duration::from_millis(2));
        let mut seen = Vec::new();
        c.for_each_rtt(|d| seen.push(d));
        assert_eq!(seen, [Duration::from_millis(2)]);
    }

    #[test]
    fn a_standbys_refusal_says_where_to_dial_next() {
        use cdn_common::leader::standby_status;
        let leader = HostPort::parse("10.0.0.2:50051").unwrap();
        let e = classify(&standby_status("10.0.0.2:50051"));
        assert_eq!(e.failure(), Failure::Standby(Some(leader)));
        assert!(
            e.to_string().contains("the leader is at 10.0.0.2:50051"),
            "{e}"
        );
        // No master leads: an election.
        assert_eq!(
            classify(&standby_status("")).failure(),
            Failure::Standby(None)
        );
        // A hint that is no address is ignored, the refusal is kept.
        let mut odd = tonic::Status::unavailable("standby");
        odd.metadata_mut().insert(
            cdn_common::leader::LEADER_METADATA,
            "nowhere".parse().unwrap(),
        );
        assert_eq!(classify(&odd).failure(), Failure::Standby(None));
        // Other answers say nothing about where to go.
        assert_eq!(
            classify(&tonic::Status::internal("store failed")).failure(),
            Failure::Other
        );
        assert!(matches!(
            classify(&tonic::Status::failed_precondition("unknown session")),
            LinkError::SessionLost(_)
        ));
    }

    #[tokio::test]
    async fn a_closed_port_is_told_apart_from_other_dial_failures() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        assert!(connection_refused(&e), "{e:?}");
        let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(!connection_refused(&io));
    }

    #[test]
    fn keeps_only_recent_samples() {
        let c = LinkCounters::default();
        for _ in 0..(RTT_SAMPLES + 10) {
            c.record_rtt(Duration::from_millis(1));
        }
        assert_eq!(c.snapshot().heartbeat_samples as usize, RTT_SAMPLES);
    }
}
