//! Durable master state behind one trait, so an etcd backend can sit beside
//! the embedded one. Only the node registry lives here for now.

mod embedded;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedStore;

/// What the master remembers about a node across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub config_version: String,
    /// Unix milliseconds.
    pub first_seen_ms: i64,
    /// Unix milliseconds of the last sign of life.
    pub last_seen_ms: i64,
    /// Unix milliseconds when the last session started.
    pub connected_since_ms: i64,
    pub last_session_id: u64,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {dir} is in use by another masterd")]
    InUse { dir: String },
    #[error("cannot open store {path}: {message}")]
    Open { path: String, message: String },
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("stored record for {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
}

/// Durable node registry.
pub trait NodeStore: Send + Sync + 'static {
    /// Every known node.
    fn load_nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Writes these records in one crash-safe transaction.
    fn put_nodes(&self, nodes: &[NodeRecord]) -> Result<(), StoreError>;
}
