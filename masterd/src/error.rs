//! Errors of the master, and their one mapping to gRPC status codes.

use tonic::{Code, Status};

use crate::store::StoreError;

/// What can go wrong while serving agents and operators.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(
        "node id {node_id} is already held by a live agent at {holder} (connected since {}); stop that agent or give this one another node.id",
        fmt_ms(*since_ms)
    )]
    DuplicateNode {
        node_id: String,
        holder: String,
        since_ms: i64,
    },
    #[error("session {session_id} of node {node_id} is not current ({why}); register again")]
    UnknownSession {
        node_id: String,
        session_id: u64,
        /// Why it is over, as far as the master knows.
        why: String,
    },
    #[error("node {0} not found")]
    NodeNotFound(String),
    #[error("config version {0} not found")]
    VersionNotFound(u64),
    #[error("node {node} is offline (last seen {last_seen_secs}s ago)")]
    NodeOffline { node: String, last_seen_secs: i64 },
    #[error("node {node} refused the command: {reason}")]
    ExecRefused { node: String, reason: String },
    /// The node is connected but did not do what was asked in time.
    #[error("{0}")]
    NodeUnresponsive(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No credential, or one this master does not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known caller asking for more than its role allows.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Precondition(String),
    /// The master cannot serve this now (it is shutting down).
    #[error("{0}")]
    Unavailable(String),
    #[error("master store: {0}")]
    Store(#[from] StoreError),
    /// An action refused because its audit entry could not be written
    /// first: the audit log fails closed.
    #[error("{prefix}: {0}; nothing was run", prefix = cdn_proto::words::AUDIT_UNWRITABLE)]
    AuditUnwritable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A unix-milliseconds time as RFC 3339 (seconds).
pub fn fmt_ms(ms: i64) -> String {
    if ms <= 0 {
        return "an unknown time".into();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

impl From<MasterError> for Status {
    fn from(e: MasterError) -> Self {
        let code = match &e {
            MasterError::DuplicateNode { .. } => Code::AlreadyExists,
            MasterError::UnknownSession { .. } | MasterError::NodeOffline { .. } => {
                Code::FailedPrecondition
            }
            MasterError::ExecRefused { .. } => Code::PermissionDenied,
            MasterError::NodeNotFound(_) | MasterError::VersionNotFound(_) => Code::NotFound,
            MasterError::Invalid(_) => Code::InvalidArgument,
            MasterError::Unauthenticated(_) => Code::Unauthenticated,
            MasterError::PermissionDenied(_) => Code::PermissionDenied,
            MasterError::RateLimited(_) => Code::ResourceExhausted,
            MasterError::AlreadyExists(_) => Code::AlreadyExists,
            MasterError::NotFound(_) => Code::NotFound,
            MasterError::Precondition(_) => Code::FailedPrecondition,
            // The master answered: not "unavailable", which clients read
            // as "cannot reach the master".
            MasterError::Store(_) => Code::Internal,
            MasterError::NodeUnresponsive(_) => Code::Aborted,
            MasterError::Internal(_) => Code::Internal,
            MasterError::Unavailable(_) | MasterError::AuditUnwritable(_) => Code::Unavailable,
        };
        Status::new(code, e.to_string())
    }
}
