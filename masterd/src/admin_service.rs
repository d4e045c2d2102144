//! The AdminService that `cdnctl` calls.

use std::sync::Arc;

use std::pin::Pin;
use std::time::Duration;

use cdn_proto::v1::admin_service_server::AdminService;
use cdn_proto::v1::config_push_event::Event as PushEvent;
use cdn_proto::v1::{
    AddUserRequest, AddUserResponse, AllowNodeRequest, AllowNodeResponse, AuditEntry,
    CreateTokenRequest, CreateTokenResponse, DeleteNodeRequest, DeleteNodeResponse, Event,
    EventsRequest, ListAuditRequest, ListAuditResponse, ListTokensRequest, ListTokensResponse,
    ListUsersRequest, ListUsersResponse, RemoveUserRequest, RemoveUserResponse, RevokeNodeRequest,
    RevokeNodeResponse, RevokeTokenRequest, RevokeTokenResponse, TokenInfo, UserInfo,
    WhoAmIRequest, WhoAmIResponse,
};
use cdn_proto::v1::{BackupChunk, BackupRequest, ListMastersRequest, ListMastersResponse};
use cdn_proto::v1::{
    ConfigHistoryRequest, ConfigHistoryResponse, ConfigPushEvent, ConfigPushRequest,
    ConfigRollbackRequest, ConfigStatusRequest, ConfigStatusResponse, ConfigVersionContent,
    ExecHistoryRequest, ExecHistoryResponse, ExecRequest, ExecResponse, GetConfigVersionRequest,
    GetNodeRequest, ListNodesRequest, ListNodesResponse, NodeInfo, Targets, exec_request,
};
use cdn_proto::v1::{
    ControlRolloutRequest, GetRolloutRequest, ListRolloutsRequest, ListRolloutsResponse,
    RolloutInfo,
};
use cdn_proto::v1::{
    GetRecordingRequest, ListRecordingsRequest, ListRecordingsResponse, RecordingChunk,
    RecordingInfo,
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use crate::audit::Audit;
use crate::auth::{Authenticator, Caller as AuthCaller, Credentials, Role};
use crate::backup;
use crate::configs::{Configs, PushPlan};
use crate::error::MasterError;
use crate::events::Events;
use crate::exec::{Caller, ExecHub};
use crate::registry::{NodeState, NodeView, Offline, Registry};
use crate::selector::Selector;
use crate::store::{AuditQuery, CertKind, CertRecord, TokenRecord};
use cdn_proto::Version;
use cdn_proto::limits::MAX_IDEMPOTENCY_KEY_BYTES;

/// Time cdnctl has to send the start of an exec session.
const EXEC_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Depth of the progress stream of one push.
const PUSH_EVENT_DEPTH: usize = 256;
/// Chunks of a backup queued for a slow reader (each up to
/// [`backup::MAX_CHUNK_BYTES`]).
const BACKUP_CHUNK_DEPTH: usize = 4;
/// Longest a push may ask to wait for acknowledgements.
const MAX_PUSH_WAIT: Duration = Duration::from_secs(3600);

/// The AdminService implementation.
pub struct AdminApi {
    pub registry: Arc<Registry>,
    pub configs: Configs,
    /// Staged rollouts.
    pub rollouts: crate::rollouts::Rollouts,
    pub execs: Arc<ExecHub>,
    pub authn: Arc<Authenticator>,
    pub credentials: Arc<Credentials>,
    pub audit: Arc<Audit>,
    pub events: Arc<Events>,
    pub leadership: Arc<crate::leader::Leadership>,
    /// Push, exec and event-stream tasks.
    pub tasks: TaskTracker,
}

impl AdminApi {
    /// Who backups made through this API say they come from. A serving
    /// master opens the embedded store (server.rs); the etcd backend will
    /// hand its own origin in here.
    fn backup_origin(&self) -> backup::Origin {
        backup::Origin {
            master: self.leadership.me().id,
            backend: if self.leadership.backend() == "etcd" {
                crate::config::BackendKind::Etcd
            } else {
                crate::config::BackendKind::Embedded
            },
        }
    }

    /// The caller's name for records: the credential's user, or what an
    /// unauthenticated client says when the master runs insecure.
    fn author(&self, caller: &AuthCaller, claimed: &str) -> String {
        if self.authn.insecure() && !claimed.is_empty() {
            claimed.to_string()
        } else {
            caller.name.clone()
        }
    }

    /// Who may read recordings, and whose: admins everyone's, operators
    /// their own when `exec.recording.operators_replay_own`, nobody else.
    /// A refusal is counted and audited as `action`.
    async fn recording_reader<T>(
        &self,
        request: &Request<T>,
        action: &str,
        target: &str,
    ) -> Result<(AuthCaller, Option<String>), Status> {
        let who = self.caller(request, Role::Viewer, action).await?;
        let own = self.execs.recordings().policy().operators_replay_own;
        match who.role {
            Role::Admin => Ok((who, None)),
            Role::Operator if own => {
                let name = who.name.clone();
                Ok((who, Some(name)))
            }
            role => {
                let message = format!(
                    "user `{}` has role {}; reading session recordings needs admin{}",
                    who.name,
                    role.as_str(),
                    if role == Role::Operator {
                        " (operators read their own with exec.recording.operators_replay_own)"
                    } else {
                        ""
                    }
                );
                self.authn.count_refusal("permission_denied");
                self.audit_refusal(request, &who.name, role.as_str(), action, target, &message)
                    .await;
                Err(Status::permission_denied(message))
            }
        }
    }

    /// Authenticates an operator call needing `need`; a refusal of a
    /// known caller (a role too low, a node certificate) is audited as
    /// `action`, rate-limited per source.
    async fn caller<T>(
        &self,
        request: &Request<T>,
        need: Role,
        action: &str,
    ) -> Result<AuthCaller, Status> {
        match self.authn.operator(request, need) {
            Ok(c) => Ok(c),
            Err(e @ MasterError::PermissionDenied(_)) => {
                let (name, role) = self.authn.presented_as(request);
                self.audit_refusal(request, &name, role, action, "", &e.to_string())
                    .await;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a refused call to the audit log, unless its source refused
    /// too often lately (then it is only counted); the next entry of that
    /// source says how many were left out.
    async fn audit_refusal<T>(
        &self,
        request: &Request<T>,
        user: &str,
        role: &str,
        action: &str,
        target: &str,
        reason: &str,
    ) {
        let ip = request.remote_addr().map(|a| a.ip());
        let Some(left_out) = self.authn.audit_refusal(ip) else {
            return;
        };
        let peer = crate::auth::peer_of(request);
        let detail = match left_out {
            0 => "refused".to_string(),
            n => format!("refused; {n} earlier refusal(s) from {peer} not recorded (rate limit)"),
        };
        self.audit
            .record(crate::audit::Entry {
                user,
                role,
                peer: &peer,
                action,
                target,
                detail,
                result: Err(reason.to_string()),
            })
            .await;
    }

    fn plan(&self, targets: Option<Targets>, wait_ms: u64) -> Result<PushPlan, MasterError> {
        let t = targets.unwrap_or_default();
        let selector = Selector::from_wire(t.label_selector, t.selector)?;
        let fleet_wide = t.nodes.is_empty() && selector.is_empty();
        let targets = self.registry.resolve_targets(&t.nodes, &selector)?;
        Ok(PushPlan {
            targets,
            fleet_wide,
            wait: (wait_ms > 0).then(|| Duration::from_millis(wait_ms).min(MAX_PUSH_WAIT)),
            staged: false,
        })
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<ConfigPushEvent, Status>> + Send>>;

/// What one push or rollback did, for the audit log.
#[derive(Default)]
struct PushSummary {
    stored: Option<cdn_proto::v1::PushStored>,
    done: Option<cdn_proto::v1::PushDone>,
    /// A staged push: its rollout as last reported.
    rollout: Option<RolloutInfo>,
}

impl PushSummary {
    fn see(&mut self, event: &ConfigPushEvent) {
        use cdn_proto::v1::config_push_event::Event as PushEvent;
        match &event.event {
            Some(PushEvent::Stored(s)) => self.stored = Some(s.clone()),
            Some(PushEvent::Done(d)) => self.done = Some(*d),
            Some(PushEvent::Rollout(r)) => self.rollout = Some(r.clone()),
            _ => {}
        }
    }

    fn detail(&self) -> String {
        let mut out = match &self.stored {
            Some(s) => format!(
                "version {} ({} bytes, sha256 {}) to {} target(s){}{}",
                s.version,
                s.size,
                &s.hash[..12.min(s.hash.len())],
                s.targets.len(),
                if s.unchanged { ", unchanged" } else { "" },
                if s.dry_run { ", dry run" } else { "" }
            ),
            None => String::new(),
        };
        if let Some(r) = &self.rollout {
            out.push_str(&format!(", staged: rollout {}", r.id));
        }
        if let Some(d) = &self.done {
            out.push_str(&format!(
                ": {} applied, {} failed, {} pending",
                d.applied, d.failed, d.pending
            ));
        }
        out
    }

    fn result(&self) -> Result<(), String> {
        if let (Some(r), Some(_)) = (&self.rollout, &self.done) {
            let state = cdn_proto::v1::RolloutState::try_from(r.state)
                .unwrap_or(cdn_proto::v1::RolloutState::Unspecified);
            if state != cdn_proto::v1::RolloutState::Succeeded {
                return Err(format!("rollout {} {}: {}", r.id, state.word(), r.reason));
            }
        }
        match &self.done {
            Some(d) if d.failed > 0 => Err(format!("{} node(s) failed to apply", d.failed)),
            _ => Ok(()),
        }
    }
}

/// Runs `work` in its own task, streaming its events; an error before any
/// event becomes the stream's status. The outcome goes to the audit log as
/// `action` of `caller` on `target`.
fn event_stream<F>(
    tasks: &TaskTracker,
    audit: (Arc<Audit>, AuthCaller, &'static str, String),
    work: impl FnOnce(mpsc::Sender<Result<ConfigPushEvent, Status>>) -> F,
) -> EventStream
where
    F: std::future::Future<Output = Result<(), MasterError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(PUSH_EVENT_DEPTH);
    let (inner_tx, mut inner_rx) = mpsc::channel(PUSH_EVENT_DEPTH);
    let fut = work(inner_tx);
    tasks.spawn(async move {
        let (audit, caller, action, target) = audit;
        let mut summary = PushSummary::default();
        let forward = async {
            while let Some(ev) = inner_rx.recv().await {
                if let Ok(e) = &ev {
                    summary.see(e);
                }
                // cdnctl may stop listening (--no-wait): the push goes on.
                let _ = tx.send(ev).await;
            }
        };
        // join! drops the work future when it finishes, and with it the
        // sender, which ends `forward`.
        let (result, ()) = tokio::join!(fut, forward);
        let outcome = match result {
            Ok(()) => summary.result(),
            Err(e) => {
                warn!(error = %e, "config push failed");
                let msg = e.to_string();
                let _ = tx.send(Err(e.into())).await;
                Err(msg)
            }
        };
        audit
            .record(caller.entry(action, &target, summary.detail(), outcome))
            .await;
    });
    Box::pin(ReceiverStream::new(rx))
}

/// What a stream of a rollout says when the master stops under it.
const STOPPING: &str =
    "the master is shutting down; the rollout resumes from its wave when a master serves again";

async fn send_event(tx: &mpsc::Sender<Result<ConfigPushEvent, Status>>, e: PushEvent) {
    // A client that stopped listening (--detach) is not an error.
    let _ = tx.send(Ok(ConfigPushEvent { event: Some(e) })).await;
}

/// Reports rollout `id` on a push stream: its state now, then (unless
/// `detach`) at every change until it ends, then the `done` counts.
async fn follow(
    rollouts: &crate::rollouts::Rollouts,
    id: u64,
    detach: bool,
    tx: &mpsc::Sender<Result<ConfigPushEvent, Status>>,
) -> Result<(), MasterError> {
    let mut changes = rollouts.watch(id)?;
    loop {
        let now = changes.borrow_and_update().clone();
        send_event(tx, PushEvent::Rollout(crate::rollouts::info(&now))).await;
        if detach {
            return Ok(());
        }
        if now.state.ended() {
            let (applied, failed, pending) = crate::rollouts::counts(&now);
            send_event(
                tx,
                PushEvent::Done(cdn_proto::v1::PushDone {
                    applied,
                    failed,
                    pending,
                }),
            )
            .await;
            return Ok(());
        }
        tokio::select! {
            c = changes.changed() => if c.is_err() {
                return Err(MasterError::Unavailable(STOPPING.into()));
            },
            _ = rollouts.closed() => return Err(MasterError::Unavailable(STOPPING.into())),
        }
    }
}

/// How targets read in the audit log: names, then the selector.
fn describe_targets(t: &Option<Targets>) -> String {
    let Some(t) = t else {
        return "all nodes".into();
    };
    let mut parts: Vec<String> = t.nodes.clone();
    // A bad selector is refused before anything is done; the audit line
    // then shows the names alone.
    if let Ok(s) = Selector::from_wire(t.label_selector.clone(), t.selector.clone())
        && !s.is_empty()
    {
        parts.push(s.to_string());
    }
    if parts.is_empty() {
        "all nodes".into()
    } else {
        parts.join(",")
    }
}

fn node_info(v: NodeView, applied: Option<Version>) -> NodeInfo {
    NodeInfo {
        name: v.record.name,
        status: v.state.wire().into(),
        offline_reason: v.offline.map(|o| o.wire()).unwrap_or_default().into(),
        addresses: v.record.addresses,
        labels: v.record.labels.into_iter().collect(),
        last_seen_ms: v.record.last_seen_ms,
        applied_version: Version::to_u64(applied),
        agent_version: v.record.agent_version,
        system: v.system,
        session_id: v.session_id,
        connected_since_ms: v.record.connected_since_ms,
        first_seen_ms: v.record.first_seen_ms,
        hostname: v.record.hostname,
        status_reason: v.reason,
        stream_open: v.stream_open,
        clock_skew_ms: v.clock_skew_ms,
        link: v.link,
        health: v.health.as_ref().map(|h| h.wire()),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        self.caller(&request, Role::Viewer, "nodes.list").await?;
        let req = request.into_inner();
        let state = match cdn_proto::v1::NodeStatus::try_from(req.status) {
            Ok(cdn_proto::v1::NodeStatus::Unspecified) => None,
            Ok(s) => Some(NodeState::from_wire(s)),
            Err(_) => {
                return Err(MasterError::Invalid(format!(
                    "unknown node status {} (expected online, degraded or offline)",
                    req.status
                ))
                .into());
            }
        };
        let selector = Selector::from_wire(req.label_selector, req.selector)?;
        let nodes = self
            .registry
            .list(|v| state.is_none_or(|s| v.state == s) && selector.matches(&v.record.labels))
            .into_iter()
            .map(|v| {
                let applied = self.configs.applied(&v.record.name);
                node_info(v, applied)
            })
            .collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    type PushConfigStream = EventStream;

    async fn push_config(
        &self,
        request: Request<ConfigPushRequest>,
    ) -> Result<Response<Self::PushConfigStream>, Status> {
        let caller = self.caller(&request, Role::Operator, "push").await?;
        let req = request.into_inner();
        if req.content.len() > cdn_proto::limits::MAX_CONFIG_BYTES {
            return Err(MasterError::Invalid(format!(
                "config is {} bytes, at most {} allowed",
                req.content.len(),
                cdn_proto::limits::MAX_CONFIG_BYTES
            ))
            .into());
        }
        let target = describe_targets(&req.targets);
        let plan = self.plan(req.targets, req.wait_ms)?;
        let configs = self.configs.clone();
        let author = self.author(&caller, &req.author);
        let content = req.content;
        let (message, dry_run) = (req.message, req.dry_run);
        let idempotency_key = req.idempotency_key;
        if idempotency_key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(MasterError::Invalid(format!(
                "idempotency key is {} bytes, at most {MAX_IDEMPOTENCY_KEY_BYTES} allowed",
                idempotency_key.len()
            ))
            .into());
        }
        let action = if dry_run { "push.dry_run" } else { "push" };
        let strategy = req.strategy;
        // A push sent again with its key follows the rollout it started.
        let replay = self.configs.version_of_key(&idempotency_key).is_some();
        match &strategy {
            Some(s) if !replay => self.rollouts.check(s, &plan.targets)?,
            Some(_) => {}
            None if !dry_run => self.rollouts.check_free(&plan.targets)?,
            None => {}
        }
        // The check, hash and compression run while the intent is written.
        let size = content.len();
        let preparing = crate::wire::Preparing::start(content, &configs.compression());
        if !dry_run {
            self.audit
                .intent(caller.entry(
                    "push.request",
                    &target,
                    format!(
                        "{size} bytes{}",
                        if strategy.is_some() { ", staged" } else { "" }
                    ),
                    Ok(()),
                ))
                .await?;
        }
        if let Some(strategy) = strategy {
            let rollouts = self.rollouts.clone();
            let detach = req.wait_ms == 0;
            return Ok(Response::new(event_stream(
                &self.tasks,
                (Arc::clone(&self.audit), caller, action, target),
                move |tx| async move {
                    let prepared = preparing.done().await?;
                    let new = crate::configs::NewVersion {
                        prepared,
                        author: author.clone(),
                        message,
                        idempotency_key,
                        dry_run,
                    };
                    let fleet_wide = plan.fleet_wide;
                    let staged = configs.store_staged(new, plan).await?;
                    let ntargets = staged.targets.len() as u32;
                    let replayed = staged.stored.replayed;
                    send_event(&tx, PushEvent::Stored(staged.stored)).await;
                    if dry_run {
                        send_event(
                            &tx,
                            PushEvent::Done(cdn_proto::v1::PushDone {
                                applied: 0,
                                failed: 0,
                                pending: ntargets,
                            }),
                        )
                        .await;
                        return Ok(());
                    }
                    let existing = replayed
                        .then(|| rollouts.of_version(staged.version))
                        .flatten();
                    let record = match existing {
                        Some(r) => r,
                        None => {
                            rollouts
                                .start(crate::rollouts::Start {
                                    version: staged.version,
                                    targets: staged.targets,
                                    strategy,
                                    author,
                                    fleet_wide,
                                    rollback: false,
                                })
                                .await?
                        }
                    };
                    follow(&rollouts, record.id, detach, &tx).await
                },
            )));
        }
        Ok(Response::new(event_stream(
            &self.tasks,
            (Arc::clone(&self.audit), caller, action, target),
            move |tx| async move {
                let prepared = preparing.done().await?;
                let new = crate::configs::NewVersion {
                    prepared,
                    author,
                    message,
                    idempotency_key,
                    dry_run,
                };
                configs.push(new, plan, tx).await
            },
        )))
    }

    type RollbackConfigStream = EventStream;

    async fn rollback_config(
        &self,
        request: Request<ConfigRollbackRequest>,
    ) -> Result<Response<Self::RollbackConfigStream>, Status> {
        let caller = self.caller(&request, Role::Operator, "rollback").await?;
        let req = request.into_inner();
        let version = Version::new(req.version)
            .filter(|v| self.configs.exists(*v))
            .ok_or(MasterError::VersionNotFound(req.version))?;
        let target = describe_targets(&req.targets);
        let plan = self.plan(req.targets, req.wait_ms)?;
        let configs = self.configs.clone();
        match &req.strategy {
            Some(s) => self.rollouts.check(s, &plan.targets)?,
            None => self.rollouts.check_free(&plan.targets)?,
        }
        self.audit
            .intent(caller.entry(
                "rollback.request",
                &target,
                format!(
                    "to version {version}{}",
                    if req.strategy.is_some() {
                        ", staged"
                    } else {
                        ""
                    }
                ),
                Ok(()),
            ))
            .await?;
        if let Some(strategy) = req.strategy {
            let rollouts = self.rollouts.clone();
            let detach = req.wait_ms == 0;
            let author = self.author(&caller, &req.author);
            return Ok(Response::new(event_stream(
                &self.tasks,
                (Arc::clone(&self.audit), caller, "rollback", target),
                move |tx| async move {
                    send_event(
                        &tx,
                        PushEvent::Stored(configs.stored_event(version, &plan.targets)),
                    )
                    .await;
                    let record = rollouts
                        .start(crate::rollouts::Start {
                            version,
                            targets: plan.targets,
                            strategy,
                            author,
                            fleet_wide: plan.fleet_wide,
                            rollback: true,
                        })
                        .await?;
                    follow(&rollouts, record.id, detach, &tx).await
                },
            )));
        }
        Ok(Response::new(event_stream(
            &self.tasks,
            (Arc::clone(&self.audit), caller, "rollback", target),
            move |tx| async move { configs.rollback(version, plan, tx).await },
        )))
    }

    async fn config_status(
        &self,
        request: Request<ConfigStatusRequest>,
    ) -> Result<Response<ConfigStatusResponse>, Status> {
        self.caller(&request, Role::Viewer, "config.status").await?;
        let t = request.into_inner().targets.unwrap_or_default();
        let selector = Selector::from_wire(t.label_selector, t.selector)?;
        let names = self.registry.resolve_targets(&t.nodes, &selector)?;
        let nodes = self.configs.status(&names);
        Ok(Response::new(ConfigStatusResponse { nodes }))
    }

    async fn config_history(
        &self,
        request: Request<ConfigHistoryRequest>,
    ) -> Result<Response<ConfigHistoryResponse>, Status> {
        self.caller(&request, Role::Viewer, "config.history")
            .await?;
        let limit = request.into_inner().limit as usize;
        Ok(Response::new(ConfigHistoryResponse {
            versions: self.configs.history(limit),
        }))
    }

    async fn get_config_version(
        &self,
        request: Request<GetConfigVersionRequest>,
    ) -> Result<Response<ConfigVersionContent>, Status> {
        self.caller(&request, Role::Viewer, "config.show").await?;
        let v = request.into_inner().version;
        let v = Version::new(v).ok_or(MasterError::VersionNotFound(v))?;
        let (info, content) = self.configs.content(v).await?;
        Ok(Response::new(ConfigVersionContent {
            info: Some(info),
            content,
        }))
    }

    type ExecStream = Pin<Box<dyn Stream<Item = Result<ExecResponse, Status>> + Send>>;

    async fn exec(
        &self,
        request: Request<Streaming<ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let who = self.caller(&request, Role::Operator, "exec").await?;
        let peer = who.peer.clone();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(EXEC_START_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no exec start message in time"))??;
        let Some(ExecRequest {
            body: Some(exec_request::Body::Start(start)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first exec message must say what to start",
            ));
        };
        let caller = Caller {
            user: self.author(&who, &start.user),
            peer,
            revoked: who.revoked.clone(),
        };
        // Durable before the command starts: a session the log cannot
        // name does not run (the audit log fails closed).
        let who = AuthCaller {
            name: caller.user.clone(),
            ..who
        };
        let detail = start.argv.join(" ");
        self.audit
            .intent(who.entry("exec", &start.node, detail.clone(), Ok(())))
            .await?;
        self.events
            .publish("exec", &start.node, &who.name, detail, true);
        let (tx, rx) = mpsc::channel(crate::exec::RELAY_DEPTH);
        let execs = Arc::clone(&self.execs);
        let audit = Arc::clone(&self.audit);
        self.tasks.spawn(async move {
            let ended = execs.run(start, caller, inbound, tx).await;
            // The session's end, with its recording's sha256: what a later
            // replay can be checked against.
            let (detail, result) = exec_end(&ended);
            audit
                .record(who.entry("exec.end", &ended.node, detail, result))
                .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn exec_history(
        &self,
        request: Request<ExecHistoryRequest>,
    ) -> Result<Response<ExecHistoryResponse>, Status> {
        self.caller(&request, Role::Viewer, "exec.history").await?;
        let limit = match request.into_inner().limit {
            0 => usize::MAX,
            n => n as usize,
        };
        Ok(Response::new(ExecHistoryResponse {
            sessions: self.execs.history(limit).await?,
        }))
    }

    async fn list_recordings(
        &self,
        request: Request<ListRecordingsRequest>,
    ) -> Result<Response<ListRecordingsResponse>, Status> {
        let target = match request.get_ref().exec_id {
            0 => String::new(),
            id => id.to_string(),
        };
        let (who, only) = self
            .recording_reader(&request, "recording.list", &target)
            .await?;
        let req = request.into_inner();
        let recordings = Arc::clone(self.execs.recordings());
        let grep = req.grep.clone();
        let found = tokio::task::spawn_blocking(move || {
            recordings.list(req.exec_id, only.as_deref(), &grep, req.limit as usize)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(format!("cannot read the recordings: {e}")))?;
        if !req.grep.is_empty() {
            // A search reads what sessions printed: audited as replays are.
            self.audit
                .record(who.entry(
                    "recording.search",
                    &target,
                    format!("grep {:?}: {} found", req.grep, found.len()),
                    Ok(()),
                ))
                .await;
        }
        Ok(Response::new(ListRecordingsResponse {
            recordings: found
                .into_iter()
                .map(|f| RecordingInfo {
                    exec_id: f.header.exec_id,
                    node: f.header.node,
                    user: f.header.user,
                    argv: f.header.argv,
                    started_ms: f.header.started_ms,
                    bytes: f.bytes,
                    session_id: f.header.session_id,
                    mode: f.header.mode,
                })
                .collect(),
        }))
    }

    type GetRecordingStream = Pin<Box<dyn Stream<Item = Result<RecordingChunk, Status>> + Send>>;

    async fn get_recording(
        &self,
        request: Request<GetRecordingRequest>,
    ) -> Result<Response<Self::GetRecordingStream>, Status> {
        let r = request.get_ref();
        let target = if r.node.is_empty() {
            r.exec_id.to_string()
        } else {
            format!("{}/{}", r.exec_id, r.node)
        };
        let (who, only) = self
            .recording_reader(&request, "recording.replay", &target)
            .await?;
        let req = request.into_inner();
        let recordings = Arc::clone(self.execs.recordings());
        let id = req.exec_id;
        let all = tokio::task::spawn_blocking(move || recordings.list(id, None, "", 0))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("cannot read the recordings: {e}")))?;
        let mut of_node: Vec<_> = all
            .iter()
            .filter(|f| req.node.is_empty() || f.header.node == req.node)
            .cloned()
            .collect();
        let refuse = |status: Status| async {
            self.audit
                .record(who.entry(
                    "recording.replay",
                    &target,
                    String::new(),
                    Err(status.message().to_string()),
                ))
                .await;
            Err(status)
        };
        let found = match of_node.len() {
            0 if all.is_empty() => {
                return refuse(Status::not_found(format!(
                    "exec {id} has no recording on this master"
                )))
                .await;
            }
            0 => {
                return refuse(Status::not_found(format!(
                    "exec {id} has no recording of node {} (it has: {})",
                    req.node,
                    crate::recording::nodes_of(&all).join(", ")
                )))
                .await;
            }
            1 => of_node.remove(0),
            _ => {
                return refuse(Status::failed_precondition(format!(
                    "exec {id} has recordings of {} nodes ({}); pick one with --node",
                    of_node.len(),
                    crate::recording::nodes_of(&of_node).join(", ")
                )))
                .await;
            }
        };
        if let Some(user) = &only
            && *user != found.header.user
        {
            self.authn.count_refusal("permission_denied");
            return refuse(Status::permission_denied(format!(
                "exec {id} was run by `{}`; operators may read only their own sessions' recordings",
                found.header.user
            )))
            .await;
        }
        self.audit
            .record(who.entry(
                "recording.replay",
                &format!("{id}/{}", found.header.node),
                format!("{} bytes", found.bytes),
                Ok(()),
            ))
            .await;
        let (tx, rx) = mpsc::channel(BACKUP_CHUNK_DEPTH);
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = match std::fs::File::open(&found.path) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(Status::internal(format!(
                        "cannot open the recording: {e}"
                    ))));
                    return;
                }
            };
            let mut buf = vec![0u8; crate::recording::CHUNK_BYTES];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        let chunk = RecordingChunk {
                            data: buf[..n].to_vec().into(),
                        };
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!(
                            "cannot read the recording: {e}"
                        ))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_node(
        &self,
        request: Request<GetNodeRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        self.caller(&request, Role::Viewer, "nodes.get").await?;
        let name = request.into_inner().name;
        let view = self
            .registry
            .get(&name)
            .ok_or(MasterError::NodeNotFound(name))?;
        let applied = self.configs.applied(&view.record.name);
        Ok(Response::new(node_info(view, applied)))
    }

    async fn list_masters(
        &self,
        request: Request<ListMastersRequest>,
    ) -> Result<Response<ListMastersResponse>, Status> {
        self.caller(&request, Role::Viewer, "masters.list").await?;
        let masters = self.leadership.masters().await.map_err(MasterError::from)?;
        let now = cdn_common::unix_millis_now();
        let backend = self.leadership.backend().to_string();
        let last = self.leadership.last_backup().await;
        Ok(Response::new(ListMastersResponse {
            masters: masters
                .into_iter()
                .map(|(m, leads)| cdn_proto::v1::MasterInfo {
                    id: m.id,
                    agent_addr: m.agent_addr,
                    admin_addr: m.admin_addr,
                    role: if leads { "leader" } else { "standby" }.into(),
                    backend: backend.clone(),
                    started_ms: m.started_ms,
                    leader_since_ms: if leads { m.leader_since_ms } else { 0 },
                    lease_age_ms: if m.renewed_ms > 0 {
                        (now - m.renewed_ms).max(0)
                    } else {
                        0
                    },
                })
                .collect(),
            last_backup_ms: last.as_ref().map_or(0, |b| b.created_ms),
            last_backup_by: last.as_ref().map(|b| b.by.clone()).unwrap_or_default(),
            last_backup_file: last.map(|b| b.file).unwrap_or_default(),
        }))
    }

    type BackupStream = Pin<Box<dyn Stream<Item = Result<BackupChunk, Status>> + Send>>;

    async fn backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let caller = self.caller(&request, Role::Admin, "backup").await?;
        let (tx, rx) = mpsc::channel(BACKUP_CHUNK_DEPTH);
        let audit = Arc::clone(&self.audit);
        let origin = self.backup_origin();
        let recordings_dir = self.execs.recordings().dir().to_path_buf();
        // Reading and compressing a large store takes a while: the call
        // answers at once and the copy follows on the stream, piece by
        // piece as it is made.
        self.tasks.spawn(async move {
            let pieces = tx.clone();
            let send = move |data: bytes::Bytes| {
                pieces.blocking_send(Ok(BackupChunk { data })).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the caller went away before the end",
                    )
                })
            };
            let made = backup::stream_store(audit.store(), recordings_dir, &origin, send).await;
            let (detail, outcome) = match made {
                Err(e) => {
                    warn!(error = %e, by = %caller.name, "backup failed");
                    let message = e.to_string();
                    let _ = tx.send(Err(MasterError::from(e).into())).await;
                    (String::new(), Err(message))
                }
                Ok((header, recorded, bytes)) => (
                    format!(
                        "{} entries, {} recordings, {bytes} bytes",
                        header.entries(),
                        recorded.files
                    ),
                    Ok(()),
                ),
            };
            audit
                .record(caller.entry("backup", "store", detail, outcome))
                .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_rollouts(
        &self,
        request: Request<ListRolloutsRequest>,
    ) -> Result<Response<ListRolloutsResponse>, Status> {
        self.caller(&request, Role::Viewer, "rollout.list").await?;
        let req = request.into_inner();
        let rollouts = self
            .rollouts
            .list(req.limit as usize, req.active)
            .iter()
            .map(crate::rollouts::info)
            .collect();
        Ok(Response::new(ListRolloutsResponse { rollouts }))
    }

    async fn get_rollout(
        &self,
        request: Request<GetRolloutRequest>,
    ) -> Result<Response<RolloutInfo>, Status> {
        self.caller(&request, Role::Viewer, "rollout.get").await?;
        let r = self.rollouts.get(request.into_inner().id)?;
        Ok(Response::new(crate::rollouts::info(&r)))
    }

    type WatchRolloutStream = Pin<Box<dyn Stream<Item = Result<RolloutInfo, Status>> + Send>>;

    async fn watch_rollout(
        &self,
        request: Request<GetRolloutRequest>,
    ) -> Result<Response<Self::WatchRolloutStream>, Status> {
        let caller = self.caller(&request, Role::Viewer, "rollout.watch").await?;
        let mut changes = self.rollouts.watch(request.into_inner().id)?;
        let rollouts = self.rollouts.clone();
        let (tx, rx) = mpsc::channel(PUSH_EVENT_DEPTH);
        self.tasks.spawn(async move {
            loop {
                let now = changes.borrow_and_update().clone();
                let ended = now.state.ended();
                if tx.send(Ok(crate::rollouts::info(&now))).await.is_err() || ended {
                    return;
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = caller.revoked.cancelled() => return say_revoked(&tx).await,
                    _ = rollouts.closed() => {
                        let _ = tx.send(Err(Status::unavailable(STOPPING))).await;
                        return;
                    }
                    c = changes.changed() => if c.is_err() { return },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn control_rollout(
        &self,
        request: Request<ControlRolloutRequest>,
    ) -> Result<Response<RolloutInfo>, Status> {
        use crate::rollouts::Action;
        use cdn_proto::v1::RolloutAction;
        let req = request.get_ref().clone();
        let action = match RolloutAction::try_from(req.action) {
            Ok(RolloutAction::Pause) => Action::Pause,
            Ok(RolloutAction::Resume) => Action::Resume,
            Ok(RolloutAction::Abort) => Action::Abort,
            Ok(RolloutAction::Undo) => Action::Undo,
            _ => {
                return Err(MasterError::Invalid(format!(
                    "unknown rollout action {} (expected pause, resume, abort or undo)",
                    req.action
                ))
                .into());
            }
        };
        let audit_action = match action {
            Action::Pause => "rollout.pause",
            Action::Resume => "rollout.resume",
            Action::Abort => "rollout.abort",
            Action::Undo => "rollout.undo",
        };
        let caller = self.caller(&request, Role::Operator, audit_action).await?;
        let id = self.rollouts.get(req.id)?.id;
        let target = format!("rollout {id}");
        self.audit
            .intent(caller.entry(
                &format!("{audit_action}.request"),
                &target,
                req.reason.clone(),
                Ok(()),
            ))
            .await?;
        let result = self
            .rollouts
            .control(id, action, &caller.name, &req.reason)
            .await;
        let detail = match (&result, req.reason.is_empty()) {
            (Ok(r), true) => format!("now {}", crate::rollouts::phase_word(r.state)),
            (Ok(r), false) => format!(
                "now {}: {}",
                crate::rollouts::phase_word(r.state),
                req.reason
            ),
            (Err(_), _) => req.reason.clone(),
        };
        self.audit
            .record(caller.entry(audit_action, &target, detail, err_text(&result)))
            .await;
        Ok(Response::new(crate::rollouts::info(&result?)))
    }

    type EventsStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

    async fn events(
        &self,
        request: Request<EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        let caller = self.caller(&request, Role::Viewer, "events").await?;
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_EVENTS,
            n => n as usize,
        };
        let (recent, mut live) = self.events.recent_and_subscribe(limit);
        // Token and user changes are the admin's business, as the audit is.
        let admin = caller.role >= Role::Admin;
        let shown = move |e: &Event| {
            admin || !(e.kind.starts_with("token.") || e.kind.starts_with("user."))
        };
        let (tx, rx) = mpsc::channel(PUSH_EVENT_DEPTH);
        self.tasks.spawn(async move {
            for e in recent.into_iter().filter(|e| shown(e)) {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            if !req.follow {
                return;
            }
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    _ = caller.revoked.cancelled() => return say_revoked(&tx).await,
                    n = live.recv() => n,
                };
                let event = match next {
                    Ok(e) if !shown(&e) => continue,
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Event {
                        kind: "lagged".into(),
                        detail: format!("{n} events missed: this reader was too slow"),
                        time_ms: cdn_common::unix_millis_now(),
                        ..Default::default()
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = self.caller(&request, Role::Viewer, "whoami").await?;
        Ok(Response::new(WhoAmIResponse {
            name: caller.name,
            role: caller.role.as_str().into(),
            insecure: self.authn.insecure(),
        }))
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "token.create").await?;
        let req = request.into_inner();
        if req.description.len() > 256 {
            return Err(MasterError::Invalid("description longer than 256 bytes".into()).into());
        }
        let ttl = (req.ttl_ms > 0).then(|| Duration::from_millis(req.ttl_ms));
        self.audit
            .intent(caller.entry(
                "token.create.request",
                "",
                format!("ttl {}ms, uses {}", req.ttl_ms, req.max_uses),
                Ok(()),
            ))
            .await?;
        let result = self
            .credentials
            .create_token(&caller.name, ttl, req.max_uses, &req.description)
            .await;
        let (target, detail) = match &result {
            Ok((_, rec)) => (rec.id.clone(), token_detail(rec)),
            Err(_) => (String::new(), String::new()),
        };
        self.audit
            .record(caller.entry("token.create", &target, detail, err_text(&result)))
            .await;
        let (token, rec) = result?;
        Ok(Response::new(CreateTokenResponse {
            token,
            info: Some(token_info(rec)),
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensResponse>, Status> {
        self.caller(&request, Role::Admin, "token.list").await?;
        Ok(Response::new(ListTokensResponse {
            tokens: self
                .credentials
                .tokens()
                .into_iter()
                .map(token_info)
                .collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<RevokeTokenResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "token.revoke").await?;
        let id = request.into_inner().id;
        self.audit
            .intent(caller.entry("token.revoke.request", &id, String::new(), Ok(())))
            .await?;
        let result = self.credentials.revoke_token(&id).await;
        self.audit
            .record(caller.entry("token.revoke", &id, String::new(), err_text(&result)))
            .await;
        result?;
        Ok(Response::new(RevokeTokenResponse {}))
    }

    async fn add_user(
        &self,
        request: Request<AddUserRequest>,
    ) -> Result<Response<AddUserResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "user.add").await?;
        let req = request.into_inner();
        self.audit
            .intent(caller.entry(
                "user.add.request",
                &req.name,
                format!("role {}", req.role),
                Ok(()),
            ))
            .await?;
        let result = match Role::parse(&req.role)
            .and_then(|role| Ok((role, self.credentials.reserve_user(&req.name)?)))
        {
            Ok((role, slot)) => self.credentials.add_user(slot, &caller.name, role).await,
            Err(e) => Err(e),
        };
        self.audit
            .record(caller.entry(
                "user.add",
                &req.name,
                format!("role {}", req.role),
                err_text(&result),
            ))
            .await;
        let (rec, cert_pem, key_pem) = result?;
        let ca_pem = self.credentials.server_ca_pem().to_string();
        Ok(Response::new(AddUserResponse {
            user: Some(user_info(rec)),
            cert_pem,
            key_pem,
            ca_pem,
        }))
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        self.caller(&request, Role::Admin, "user.list").await?;
        Ok(Response::new(ListUsersResponse {
            users: self
                .credentials
                .users()
                .into_iter()
                .map(user_info)
                .collect(),
        }))
    }

    async fn remove_user(
        &self,
        request: Request<RemoveUserRequest>,
    ) -> Result<Response<RemoveUserResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "user.remove").await?;
        let name = request.into_inner().name;
        self.audit
            .intent(caller.entry("user.remove.request", &name, String::new(), Ok(())))
            .await?;
        let result = if name == caller.name && !self.authn.insecure() {
            Err(MasterError::Precondition(
                "you cannot remove your own user; ask another admin".into(),
            ))
        } else {
            self.credentials.revoke(CertKind::User, &name).await
        };
        self.audit
            .record(caller.entry("user.remove", &name, String::new(), err_text(&result)))
            .await;
        Ok(Response::new(RemoveUserResponse {
            revoked_certs: result?,
        }))
    }

    async fn revoke_node(
        &self,
        request: Request<RevokeNodeRequest>,
    ) -> Result<Response<RevokeNodeResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "node.revoke").await?;
        let node = request.into_inner().node_id;
        self.audit
            .intent(caller.entry("node.revoke.request", &node, String::new(), Ok(())))
            .await?;
        let result = self.credentials.revoke(CertKind::Node, &node).await;
        let was_connected = result.is_ok() && self.registry.cut(&node, Offline::CertificateRevoked);
        if result.is_ok() {
            warn!(node = %node, by = %caller.name, was_connected, "node certificate revoked");
        }
        self.audit
            .record(caller.entry(
                "node.revoke",
                &node,
                if was_connected {
                    "connection cut".into()
                } else {
                    String::new()
                },
                err_text(&result),
            ))
            .await;
        Ok(Response::new(RevokeNodeResponse {
            revoked_certs: result?,
            was_connected,
        }))
    }

    async fn allow_node(
        &self,
        request: Request<AllowNodeRequest>,
    ) -> Result<Response<AllowNodeResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "node.allow").await?;
        let node = request.into_inner().node_id;
        self.audit
            .intent(caller.entry("node.allow.request", &node, String::new(), Ok(())))
            .await?;
        let result = self.credentials.allow_node(&node).await;
        self.audit
            .record(caller.entry("node.allow", &node, String::new(), err_text(&result)))
            .await;
        result?;
        Ok(Response::new(AllowNodeResponse {}))
    }

    async fn delete_node(
        &self,
        request: Request<DeleteNodeRequest>,
    ) -> Result<Response<DeleteNodeResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "node.delete").await?;
        let req = request.into_inner();
        self.audit
            .intent(caller.entry(
                "node.delete.request",
                &req.name,
                if req.force { "--force" } else { "" }.to_string(),
                Ok(()),
            ))
            .await?;
        let result = self.delete_node_now(&caller, &req.name, req.force).await;
        let detail = match &result {
            Ok(d) => d.to_string(),
            Err(_) => String::new(),
        };
        if let Ok(d) = &result {
            warn!(node = %req.name, by = %caller.name, %d, "node deleted");
        }
        self.audit
            .record(caller.entry("node.delete", &req.name, detail, err_text(&result)))
            .await;
        let d = result?;
        Ok(Response::new(DeleteNodeResponse {
            status: d.state.wire().into(),
            revoked_certs: d.revoked_certs,
            was_connected: d.was_connected,
        }))
    }

    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        self.caller(&request, Role::Admin, "audit.read").await?;
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_AUDIT_LIMIT,
            n => n as usize,
        };
        let entries = self
            .audit
            .log(AuditQuery {
                limit,
                user: req.user,
                action: req.action,
            })
            .await?
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                time_ms: r.time_ms,
                user: r.user,
                role: r.role,
                peer: r.peer,
                action: r.action,
                target: r.target,
                detail: r.detail,
                success: r.success,
                error: r.error,
            })
            .collect();
        Ok(Response::new(ListAuditResponse { entries }))
    }
}

/// What deleting a node did, for the reply and the audit log.
struct Deleted {
    /// Its state when it was judged.
    state: NodeState,
    /// Why it was in that state (empty when online).
    reason: String,
    revoked_certs: u32,
    was_connected: bool,
}

impl std::fmt::Display for Deleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "was {}", self.state.wire().word())?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        if self.was_connected {
            f.write_str("; its agent was disconnected")?;
        }
        write!(f, "; {} certificate(s) revoked", self.revoked_certs)
    }
}

impl AdminApi {
    /// Deletes node `name`: refused while it is online or degraded unless
    /// `force`; then its certificate is revoked (first, so that its agent
    /// cannot register again meanwhile), its session ended and its record
    /// and config state removed.
    async fn delete_node_now(
        &self,
        caller: &AuthCaller,
        name: &str,
        force: bool,
    ) -> Result<Deleted, MasterError> {
        let view = self
            .registry
            .get(name)
            .ok_or_else(|| MasterError::NodeNotFound(name.to_string()))?;
        if view.state != NodeState::Offline && !force {
            let why = if view.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", view.reason)
            };
            return Err(MasterError::Precondition(format!(
                "node {name} is {}{why}: its agent is still connected; stop it first, or delete with --force to disconnect it",
                view.state.wire().word()
            )));
        }
        let revoked_certs = self.credentials.revoke_deleted_node(name).await?;
        let reason = format!("node {name} was deleted by {}", caller.name);
        let was_connected = self
            .registry
            .forget(name, &reason)
            .await?
            .ok_or_else(|| MasterError::NodeNotFound(name.to_string()))?;
        self.configs.forget(name).await?;
        Ok(Deleted {
            state: view.state,
            reason: view.reason,
            revoked_certs,
            was_connected,
        })
    }
}

/// Recent events `cdnctl events` shows unless asked for another number.
const DEFAULT_EVENTS: usize = 20;

/// Entries `cdnctl audit` shows unless asked for another number.
const DEFAULT_AUDIT_LIMIT: usize = 100;

/// The `exec.end` audit entry of a session: exit, and its recording (id,
/// size, sha256) if it has one.
fn exec_end(r: &crate::store::ExecRecord) -> (String, Result<(), String>) {
    let mut detail = format!("exec {}: exit {}", r.exec_id, r.exit_code);
    if r.recording_id != 0 {
        detail.push_str(&format!(
            "; recording {} ({} bytes, sha256 {}){}{}",
            r.recording_id,
            r.recording_bytes,
            if r.recording_sha256.is_empty() {
                "unknown"
            } else {
                &r.recording_sha256
            },
            if r.recording_truncated {
                ", truncated"
            } else {
                ""
            },
            if r.recording_error.is_empty() {
                String::new()
            } else {
                format!(", incomplete: {}", r.recording_error)
            }
        ));
    }
    let result = if r.error.is_empty() {
        Ok(())
    } else {
        Err(r.error.clone())
    };
    (detail, result)
}

fn err_text<T>(r: &Result<T, MasterError>) -> Result<(), String> {
    r.as_ref().map(|_| ()).map_err(|e| e.to_string())
}

fn token_detail(t: &TokenRecord) -> String {
    format!(
        "ttl {}, uses {}",
        if t.expires_ms == 0 {
            "none".to_string()
        } else {
            format!("{}s", (t.expires_ms - t.created_ms) / 1000)
        },
        if t.max_uses == 0 {
            "unlimited".to_string()
        } else {
            t.max_uses.to_string()
        }
    )
}

fn token_info(t: TokenRecord) -> TokenInfo {
    TokenInfo {
        id: t.id,
        description: t.description,
        created_ms: t.created_ms,
        expires_ms: t.expires_ms,
        max_uses: t.max_uses,
        used: t.used,
        created_by: t.created_by,
        revoked: t.revoked,
    }
}

fn user_info(c: CertRecord) -> UserInfo {
    UserInfo {
        name: c.name,
        role: c.role.map(Role::as_str).unwrap_or_default().to_string(),
        created_ms: c.issued_ms,
        created_by: c.issued_by,
        expires_ms: c.not_after_ms,
        fingerprint: c.fingerprint,
    }
}

/// Ends a follower's stream whose caller's credential was revoked, saying
/// so.
async fn say_revoked<T>(tx: &mpsc::Sender<Result<T, Status>>) {
    let _ = tx
        .send(Err(Status::unauthenticated(
            "your credential was revoked; stream closed",
        )))
        .await;
}
