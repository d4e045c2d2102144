//! The AgentService: thin handlers that authenticate, parse what agents
//! send once (version strings into [`Version`]s, acks into
//! [`ApplyOutcome`]s) and hand it to its owner: sessions and liveness to
//! the [`Registry`], config state to [`Configs`], exec streams to the
//! [`ExecHub`], enrolment to [`Enrolment`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cdn_proto::v1::agent_service_server::AgentService;
use cdn_proto::v1::{
    CommandRequest, CommandResponse, EnrollRequest, EnrollResponse, ExecFromAgent, ExecToAgent,
    HeartbeatRequest, HeartbeatResponse, Limits, PushConfigRequest, PushConfigResponse,
    ReconnectPolicy, RegisterRequest, RegisterResponse, StatusRequest, StatusResponse,
    command_request, exec_from_agent,
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::audit::{Audit, Entry};
use crate::auth::{Authenticator, Enrolment};
use crate::config::MasterConfig;
use crate::configs::{Answer, ApplyOutcome, Configs};
use crate::error::MasterError;
use crate::events::Events;
use crate::exec::ExecHub;
use crate::metrics::{Metrics, ReasonLabel};
use crate::registry::{HealthReport, Registration, Registry, Reported};
use crate::validate;
use cdn_proto::Version;
use cdn_proto::limits::{
    CONFIG_CHUNK_BYTES, MAX_CONFIG_BYTES, MAX_MESSAGE_BYTES, MAX_MESSAGE_TO_AGENT_BYTES,
};

/// Queue depth of one agent's command stream; a full queue is backpressure.
pub const COMMAND_QUEUE_DEPTH: usize = 64;

/// The AgentService implementation: the master's shared parts; stream
/// reader tasks go in `tasks` and end on `shutdown`.
pub struct AgentApi {
    pub registry: Arc<Registry>,
    pub configs: Configs,
    pub execs: Arc<ExecHub>,
    pub config: Arc<MasterConfig>,
    /// The config as last (re)loaded: reconnect policy and keepalive
    /// permission handed to agents come from here.
    pub live: Arc<std::sync::RwLock<Arc<MasterConfig>>>,
    pub authn: Arc<Authenticator>,
    pub enrolment: Arc<Enrolment>,
    pub audit: Arc<Audit>,
    pub events: Arc<Events>,
    pub metrics: Arc<Metrics>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

fn peer_ip(remote: Option<SocketAddr>) -> Option<String> {
    remote.map(|a| a.ip().to_string())
}

/// A version string an agent sent, parsed once here.
fn version_of(s: &str) -> Result<Option<Version>, MasterError> {
    Version::parse_wire(s).map_err(|e| MasterError::Invalid(e.to_string()))
}

type CommandStream = Pin<Box<dyn Stream<Item = Result<CommandResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let peer = peer_ip(request.remote_addr());
        if let Err(e) = validate::node_id(&request.get_ref().node_id) {
            self.authn.count_refusal("invalid");
            return Err(e.into());
        }
        // Identity first: strangers cannot use up the registrations of the
        // real agents behind the same address.
        self.authn.node(&request, &request.get_ref().node_id)?;
        self.authn.registration_allowed(&request)?;
        let req = request.into_inner();
        let labels = req.labels.into_iter().collect();
        if let Err(e) = validate::labels(&labels) {
            self.authn.count_refusal("invalid");
            return Err(e.into());
        }
        let applied = version_of(&req.config_version).inspect_err(|_| {
            self.authn.count_refusal("invalid");
        })?;
        let mut addresses: Vec<String> = peer.into_iter().collect();
        for a in req.addresses {
            if !addresses.contains(&a) && addresses.len() < 16 {
                addresses.push(a);
            }
        }
        let heartbeat = &self.config.heartbeat;
        if req.heartbeat_interval_ms > 0
            && Duration::from_millis(req.heartbeat_interval_ms) >= heartbeat.offline_after()
        {
            warn!(
                node = %req.node_id,
                agent_interval_ms = req.heartbeat_interval_ms,
                offline_after_ms = heartbeat.offline_after().as_millis() as u64,
                "agent heartbeat interval is not shorter than the master's offline window; the node will flap"
            );
        }
        let node_id = req.node_id.clone();
        let away_since_ms = self.registry.last_seen_ms(&node_id).filter(|ms| *ms > 0);
        // The same agent process registering again over a live session
        // (its labels changed on SIGHUP) is an update, not a reconnect.
        let update = req.update
            && self
                .registry
                .is_current_instance(&node_id, &req.instance_id);
        let result = self
            .registry
            .register(Registration {
                node_id: req.node_id,
                instance_id: req.instance_id,
                labels,
                addresses: addresses.clone(),
                hostname: req.hostname,
                agent_version: req.agent_version,
                accept_encodings: req.accept_encodings.into_iter().take(8).collect(),
            })
            .await;
        let session_id = match result {
            Ok(id) => id,
            Err(e) => {
                warn!(node = %node_id, peer = ?addresses.first(), error = %e, "registration refused");
                return Err(e.into());
            }
        };
        self.configs.joined(&node_id, applied).await;
        let peer = addresses.first().map_or("?", String::as_str);
        if update {
            info!(node = %node_id, session = session_id, peer, "node registered again (labels or encodings changed)");
            self.events.publish(
                "node.updated",
                &node_id,
                "",
                format!("session {session_id} from {peer}: registered again by the same agent"),
                true,
            );
        } else {
            self.configs.new_session(&node_id);
            info!(node = %node_id, session = session_id, peer, "node registered");
            if let Some(ms) = away_since_ms {
                self.metrics.reconnects.inc();
                let away = (cdn_common::unix_millis_now() - ms).max(0) as f64 / 1000.0;
                self.metrics.reconnect_latency.observe(away);
            }
            self.events.publish(
                "node.online",
                &node_id,
                "",
                format!("session {session_id} from {peer}"),
                true,
            );
        }
        let live = self
            .live
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_else(|_| Arc::clone(&self.config));
        let rc = &live.reconnect;
        Ok(Response::new(RegisterResponse {
            success: true,
            message: String::new(),
            session_id,
            heartbeat_interval_ms: heartbeat.interval.as_millis() as u64,
            offline_after_ms: heartbeat.offline_after().as_millis() as u64,
            reconnect: Some(ReconnectPolicy {
                max_retries: rc.max_retries.get(),
                base_delay_ms: rc.base_delay.as_millis() as u64,
                max_delay_ms: rc.max_delay.as_millis() as u64,
                jitter: rc.jitter.0,
            }),
            keepalive_permit_without_stream: live.grpc.keepalive.permit_without_stream,
            desired_config_version: Version::to_wire(self.configs.desired(&node_id)),
            stream_open_timeout_ms: heartbeat.timeout.as_millis() as u64,
            limits: Some(Limits {
                max_message_to_agent_bytes: MAX_MESSAGE_TO_AGENT_BYTES as u64,
                max_message_from_agent_bytes: MAX_MESSAGE_BYTES as u64,
                max_config_bytes: MAX_CONFIG_BYTES as u64,
                config_chunk_bytes: CONFIG_CHUNK_BYTES as u64,
            }),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.authn.node(&request, &request.get_ref().node_id)?;
        let req = request.into_inner();
        let applied = version_of(&req.config_version)?;
        let reported = match req.status.as_str() {
            "" | "online" => Some(Reported::Online),
            "degraded" => Some(Reported::Degraded(if req.reason.is_empty() {
                "reported degraded by the agent".into()
            } else {
                req.reason.clone()
            })),
            "offline" => None,
            other => {
                return Err(MasterError::Invalid(format!(
                    "unknown status `{}` (expected online, degraded or offline)",
                    other.escape_default()
                ))
                .into());
            }
        };
        let going_offline = reported.is_none();
        self.registry
            .heartbeat(&req.node_id, req.session_id, reported, req.timestamp)
            .inspect_err(|_| {
                self.metrics
                    .heartbeat_failures
                    .get_or_create(&ReasonLabel { reason: "refused" })
                    .inc();
            })?;
        if !going_offline {
            record_health(
                &self.registry,
                &self.events,
                &req.node_id,
                req.session_id,
                req.health.as_ref(),
            );
        }
        self.configs
            .observed(&req.node_id, applied, Some(&req.config_disk_hash))
            .await;
        let (desired, due) = self.configs.heartbeat_offer(&req.node_id, applied);
        if req.last_rtt_us > 0 {
            self.metrics
                .heartbeat_latency
                .observe(req.last_rtt_us as f64 / 1e6);
        }
        if going_offline {
            info!(node = %req.node_id, "node offline: agent shut down");
            self.events.publish(
                "node.offline",
                &req.node_id,
                "",
                "agent shut down".into(),
                true,
            );
        }
        Ok(Response::new(HeartbeatResponse {
            success: true,
            command: String::new(),
            config_updated: due,
            config_version: Version::to_wire(desired),
            server_time_ms: cdn_common::unix_millis_now(),
        }))
    }

    /// An agent fetches a config version (the one its heartbeat said is
    /// desired); it acknowledges on its command stream as for a push.
    async fn push_config(
        &self,
        request: Request<PushConfigRequest>,
    ) -> Result<Response<PushConfigResponse>, Status> {
        self.authn.node(&request, &request.get_ref().node_id)?;
        let req = request.into_inner();
        let version: Version = req
            .version
            .parse()
            .map_err(|e: cdn_proto::version::BadVersion| MasterError::Invalid(e.to_string()))?;
        // Only a live session may fetch, and only its desired version: a
        // node's certificate buys nothing meant for other nodes.
        self.registry.check_session(&req.node_id, req.session_id)?;
        let desired = self.configs.desired(&req.node_id);
        if Some(version) != desired {
            self.authn.count_refusal("permission_denied");
            return Err(MasterError::PermissionDenied(format!(
                "node {} may fetch only its desired config version ({}), not {version}",
                req.node_id,
                Version::to_u64(desired)
            ))
            .into());
        }
        let accepts = self.registry.accept_encodings(&req.node_id);
        let p = self.configs.payload_for(version, &accepts).await?;
        let content = p.chunk_at(req.offset).ok_or_else(|| {
            MasterError::Invalid(format!(
                "offset {} is past the end of version {version} ({} bytes encoded)",
                req.offset,
                p.bytes.len()
            ))
        })?;
        self.configs.fetched(&req.node_id, version);
        if req.offset == 0 {
            self.configs.count_fetch(&p);
        }
        Ok(Response::new(PushConfigResponse {
            success: true,
            message: String::new(),
            version: p.version.to_string(),
            hash: p.hash.clone(),
            content,
            encoding: p.encoding.to_string(),
            wire_size: p.bytes.len() as u64,
            size: p.size,
        }))
    }

    type ExecuteCommandStream = CommandStream;

    async fn execute_command(
        &self,
        request: Request<Streaming<CommandRequest>>,
    ) -> Result<Response<Self::ExecuteCommandStream>, Status> {
        let identity = self.authn.agent_identity(&request)?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(self.config.heartbeat.timeout, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello on the command stream in time"))??
            .ok_or_else(|| Status::invalid_argument("command stream closed before its hello"))?;
        if !matches!(first.body, Some(command_request::Body::Hello(_))) {
            return Err(Status::invalid_argument(
                "the first message on the command stream must be a hello",
            ));
        }
        let (node_id, session_id) = (first.node_id, first.session_id);
        self.authn.check_claim(&identity, &node_id)?;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE_DEPTH);
        // The registry holds the only sender: when the session ends, the stream ends.
        let generation = self.registry.attach_stream(&node_id, session_id, tx)?;
        debug!(node = %node_id, session = session_id, "command stream open");
        if let Some(v) = self.configs.catch_up_due(&node_id) {
            let configs = self.configs.clone();
            let node = node_id.clone();
            self.tasks
                .spawn(async move { configs.catch_up(&node, v).await });
        }
        let registry = Arc::clone(&self.registry);
        let configs = self.configs.clone();
        let events = Arc::clone(&self.events);
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = inbound.next() => match msg {
                        Some(Ok(m)) => handle_agent_message(&registry, &configs, &events, &node_id, session_id, m).await,
                        Some(Err(e)) => {
                            debug!(node = %node_id, error = %e, "command stream failed");
                            break;
                        }
                        None => break,
                    },
                }
            }
            registry.detach_stream(&node_id, session_id, generation);
            debug!(node = %node_id, session = session_id, "command stream closed");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ExecSessionStream = Pin<Box<dyn Stream<Item = Result<ExecToAgent, Status>> + Send>>;

    async fn exec_session(
        &self,
        request: Request<Streaming<ExecFromAgent>>,
    ) -> Result<Response<Self::ExecSessionStream>, Status> {
        let identity = self.authn.agent_identity(&request)?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(self.config.heartbeat.timeout, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no attach on the exec stream in time"))??;
        let Some(ExecFromAgent {
            body: Some(exec_from_agent::Body::Attach(attach)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message of an exec stream must attach it",
            ));
        };
        self.authn.check_claim(&identity, &attach.node_id)?;
        let stream = self
            .execs
            .attach(attach, inbound, identity.revoked.clone())?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.authn.node(&request, &request.get_ref().node_id)?;
        let req = request.into_inner();
        let applied = version_of(&req.config_version)?;
        self.registry.report_status(
            &req.node_id,
            req.session_id,
            req.system,
            req.link,
            &req.agent_version,
        )?;
        self.configs.observed(&req.node_id, applied, None).await;
        Ok(Response::new(StatusResponse { success: true }))
    }

    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        match self.enrolment.enroll(&request).await {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => {
                let (node, peer) = (
                    request.get_ref().node_id.escape_default().to_string(),
                    crate::auth::peer_of(&request),
                );
                warn!(node = %node, peer = %peer, error = %e, "enrolment refused");
                // Refusals are audited too (rate-limited per source, so an
                // attacker cannot flood the log).
                if !matches!(e, MasterError::RateLimited(_)) {
                    self.audit
                        .record(Entry {
                            user: "anonymous",
                            role: "",
                            peer: &peer,
                            action: "node.enroll",
                            target: &node,
                            detail: String::new(),
                            result: Err(e.to_string()),
                        })
                        .await;
                }
                Err(e.into())
            }
        }
    }
}

/// Handles one message an agent sent on its command stream.
async fn handle_agent_message(
    registry: &Registry,
    configs: &Configs,
    events: &Events,
    node_id: &str,
    session_id: u64,
    msg: CommandRequest,
) {
    match msg.body {
        Some(command_request::Body::ConfigAck(ack)) => {
            let Ok(version) = ack.version.parse::<Version>() else {
                debug!(node = %node_id, version = %ack.version, "ack for an unknown version ignored");
                return;
            };
            // An answer counts only from the node's current session.
            if registry.check_session(node_id, session_id).is_err() {
                debug!(node = %node_id, %version, "ack from an ended session ignored");
                return;
            }
            let outcome = if ack.success {
                debug!(node = %node_id, %version, apply_us = ack.apply_micros, "config applied");
                // Before the config owner hears of it: whoever sees the
                // node applied sees the health it had after the reload.
                record_health(registry, events, node_id, session_id, ack.health.as_ref());
                ApplyOutcome::Applied { hash: ack.hash }
            } else {
                warn!(node = %node_id, %version, error = %ack.error, "config apply failed");
                ApplyOutcome::Failed(ack.error)
            };
            configs
                .answered(Answer {
                    node: node_id.to_string(),
                    version,
                    outcome,
                })
                .await;
        }
        Some(command_request::Body::Pong(p)) => {
            debug!(node = %node_id, nonce = p.nonce, "pong");
        }
        Some(command_request::Body::Hello(_)) => {
            debug!(node = %node_id, "repeated hello ignored");
        }
        None => debug!(node = %node_id, "empty command-stream message ignored"),
    }
}

/// Records the health an agent reported (state unspecified: no check
/// configured) and publishes `node.health` when it changed. An absent
/// `health` changes nothing: an agent whose first check has not finished
/// yet, or one that does not report health.
fn record_health(
    registry: &Registry,
    events: &Events,
    node_id: &str,
    session_id: u64,
    health: Option<&cdn_proto::v1::HealthCheck>,
) {
    if health.is_none() {
        return;
    }
    let report = HealthReport::from_wire(health);
    match registry.record_health(node_id, session_id, report) {
        Ok(Some(change)) => {
            let detail = change.describe();
            let failing = change.now.as_ref().is_some_and(|h| !h.ok);
            if failing {
                warn!(node = %node_id, health = %detail, "node health check failing");
            } else {
                info!(node = %node_id, health = %detail, "node health changed");
            }
            events.publish("node.health", node_id, "", detail, !failing);
        }
        Ok(None) => {}
        Err(e) => debug!(node = %node_id, error = %e, "health report of an ended session ignored"),
    }
}
