//! The AdminService that `cdnctl` calls.

use std::sync::Arc;

use cdn_proto::v1::admin_service_server::AdminService;
use cdn_proto::v1::{GetNodeRequest, ListNodesRequest, ListNodesResponse, NodeInfo};
use tonic::{Request, Response, Status};

use crate::error::MasterError;
use crate::registry::{NodeState, NodeView, Registry};

/// The AdminService implementation.
pub struct AdminApi {
    registry: Arc<Registry>,
}

impl AdminApi {
    /// Serves views of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
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
