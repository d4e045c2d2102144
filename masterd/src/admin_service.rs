//! The AdminService that `cdnctl` calls.

use std::sync::Arc;

use std::pin::Pin;
use std::time::Duration;

use cdn_proto::v1::admin_service_server::AdminService;
use cdn_proto::v1::{
    ConfigHistoryRequest, ConfigHistoryResponse, ConfigPushEvent, ConfigPushRequest,
    ConfigRollbackRequest, ConfigStatusRequest, ConfigStatusResponse, ConfigVersionContent,
    ExecHistoryRequest, ExecHistoryResponse, ExecRequest, ExecResponse, GetConfigVersionRequest,
    GetNodeRequest, ListNodesRequest, ListNodesResponse, NodeConfigStatus, NodeInfo, Targets,
    exec_request,
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use crate::error::MasterError;
use crate::exec::{Caller, ExecHub};
use crate::push::{Configs, PushPlan};
use crate::registry::{NodeState, NodeView, Registry};

/// Time cdnctl has to send the start of an exec session.
const EXEC_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Depth of the progress stream of one push.
const PUSH_EVENT_DEPTH: usize = 256;
/// Longest a push may ask to wait for acknowledgements.
const MAX_PUSH_WAIT: Duration = Duration::from_secs(3600);

/// The AdminService implementation.
pub struct AdminApi {
    registry: Arc<Registry>,
    configs: Arc<Configs>,
    execs: Arc<ExecHub>,
    tasks: TaskTracker,
}

impl AdminApi {
    /// Serves views of `registry` and config operations on `configs`;
    /// push tasks go in `tasks`.
    pub fn new(
        registry: Arc<Registry>,
        configs: Arc<Configs>,
        execs: Arc<ExecHub>,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            registry,
            configs,
            execs,
            tasks,
        }
    }

    fn plan(&self, targets: Option<Targets>, wait_ms: u64) -> Result<PushPlan, MasterError> {
        let t = targets.unwrap_or_default();
        let selector: std::collections::BTreeMap<_, _> = t.selector.into_iter().collect();
        let fleet_wide = t.nodes.is_empty() && selector.is_empty();
        let targets = self.registry.resolve_targets(&t.nodes, &selector)?;
        Ok(PushPlan {
            targets,
            fleet_wide,
            wait: (wait_ms > 0).then(|| Duration::from_millis(wait_ms).min(MAX_PUSH_WAIT)),
        })
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<ConfigPushEvent, Status>> + Send>>;

/// Runs `work` in its own task, streaming its events; an error before any
/// event becomes the stream's status.
fn event_stream<F>(
    tasks: &TaskTracker,
    work: impl FnOnce(mpsc::Sender<Result<ConfigPushEvent, Status>>) -> F,
) -> EventStream
where
    F: std::future::Future<Output = Result<(), MasterError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(PUSH_EVENT_DEPTH);
    let fut = work(tx.clone());
    tasks.spawn(async move {
        if let Err(e) = fut.await {
            warn!(error = %e, "config push failed");
            let _ = tx.send(Err(e.into())).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

fn node_info(v: NodeView) -> NodeInfo {
    NodeInfo {
        name: v.record.name,
        status: v.state.as_str().to_string(),
        addresses: v.record.addresses,
        labels: v.record.labels.into_iter().collect(),
        last_seen_ms: v.record.last_seen_ms,
        config_version: v.record.config_version,
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
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let req = request.into_inner();
        let state = match req.status.as_str() {
            "" => None,
            s => Some(NodeState::parse(s).ok_or_else(|| {
                MasterError::Invalid(format!(
                    "unknown status `{}` (expected online, degraded or offline)",
                    s.escape_default()
                ))
            })?),
        };
        let selector = req.selector;
        let nodes = self
            .registry
            .list(|v| {
                state.is_none_or(|s| v.state == s)
                    && selector
                        .iter()
                        .all(|(k, want)| v.record.labels.get(k) == Some(want))
            })
            .into_iter()
            .map(node_info)
            .collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    type PushConfigStream = EventStream;

    async fn push_config(
        &self,
        request: Request<ConfigPushRequest>,
    ) -> Result<Response<Self::PushConfigStream>, Status> {
        let req = request.into_inner();
        if req.content.len() > crate::push::MAX_CONFIG_BYTES {
            return Err(MasterError::Invalid(format!(
                "config is {} bytes, at most {} allowed",
                req.content.len(),
                crate::push::MAX_CONFIG_BYTES
            ))
            .into());
        }
        let plan = self.plan(req.targets, req.wait_ms)?;
        let configs = Arc::clone(&self.configs);
        let author = if req.author.is_empty() {
            "unknown".to_string()
        } else {
            req.author
        };
        let content = req.content.to_vec();
        let (message, dry_run) = (req.message, req.dry_run);
        Ok(Response::new(event_stream(
            &self.tasks,
            move |tx| async move {
                configs
                    .push(content, author, message, plan, dry_run, tx)
                    .await
            },
        )))
    }

    type RollbackConfigStream = EventStream;

    async fn rollback_config(
        &self,
        request: Request<ConfigRollbackRequest>,
    ) -> Result<Response<Self::RollbackConfigStream>, Status> {
        let req = request.into_inner();
        if self.configs.hash_of(req.version).is_none() {
            return Err(MasterError::VersionNotFound(req.version).into());
        }
        let plan = self.plan(req.targets, req.wait_ms)?;
        let configs = Arc::clone(&self.configs);
        let version = req.version;
        Ok(Response::new(event_stream(
            &self.tasks,
            move |tx| async move { configs.rollback(version, plan, tx).await },
        )))
    }

    async fn config_status(
        &self,
        request: Request<ConfigStatusRequest>,
    ) -> Result<Response<ConfigStatusResponse>, Status> {
        let t = request.into_inner().targets.unwrap_or_default();
        let selector = t.selector.into_iter().collect();
        let names = self.registry.resolve_targets(&t.nodes, &selector)?;
        let nodes = names
            .iter()
            .filter_map(|n| self.registry.get(n))
            .map(|v| {
                let r = &v.record;
                let applied_hash = self.configs.hash_of(r.applied_version);
                let drift = !r.disk_hash.is_empty()
                    && applied_hash.as_deref().is_some_and(|h| h != r.disk_hash);
                NodeConfigStatus {
                    node: r.name.clone(),
                    node_status: v.state.as_str().to_string(),
                    desired_version: r.desired_version,
                    applied_version: r.applied_version,
                    in_sync: r.desired_version == r.applied_version && !drift,
                    drift,
                    last_error: r.config_error.clone(),
                }
            })
            .collect();
        Ok(Response::new(ConfigStatusResponse { nodes }))
    }

    async fn config_history(
        &self,
        request: Request<ConfigHistoryRequest>,
    ) -> Result<Response<ConfigHistoryResponse>, Status> {
        let limit = request.into_inner().limit as usize;
        Ok(Response::new(ConfigHistoryResponse {
            versions: self.configs.history(limit),
        }))
    }

    async fn get_config_version(
        &self,
        request: Request<GetConfigVersionRequest>,
    ) -> Result<Response<ConfigVersionContent>, Status> {
        let v = request.into_inner().version;
        let (info, content) = self.configs.content(v).await?;
        Ok(Response::new(ConfigVersionContent {
            info: Some(info),
            content: content.into(),
        }))
    }

    type ExecStream = Pin<Box<dyn Stream<Item = Result<ExecResponse, Status>> + Send>>;

    async fn exec(
        &self,
        request: Request<Streaming<ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
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
            user: if start.user.is_empty() {
                "unknown".into()
            } else {
                start.user.clone()
            },
            peer,
        };
        let (tx, rx) = mpsc::channel(crate::exec::RELAY_DEPTH);
        let execs = Arc::clone(&self.execs);
        self.tasks
            .spawn(async move { execs.run(start, caller, inbound, tx).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn exec_history(
        &self,
        request: Request<ExecHistoryRequest>,
    ) -> Result<Response<ExecHistoryResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => usize::MAX,
            n => n as usize,
        };
        Ok(Response::new(ExecHistoryResponse {
            sessions: self.execs.history(limit).await?,
        }))
    }

    async fn get_node(
        &self,
        request: Request<GetNodeRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        let name = request.into_inner().name;
        let view = self
            .registry
            .get(&name)
            .ok_or(MasterError::NodeNotFound(name))?;
        Ok(Response::new(node_info(view)))
    }
}
