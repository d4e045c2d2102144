//! Durable master state behind one trait, so an etcd backend can sit beside
//! the embedded one: nodes, config versions, exec sessions, issued
//! certificates, join tokens and the audit log.

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
    /// Config version this node should run; 0 = none pushed to it yet.
    #[serde(default)]
    pub desired_version: u64,
    /// Config version the agent last acknowledged (or reported) as applied.
    #[serde(default)]
    pub applied_version: u64,
    /// sha256 of the config file on the node's disk, as last reported.
    #[serde(default)]
    pub disk_hash: String,
    /// Why the last apply failed; empty after a success.
    #[serde(default)]
    pub config_error: String,
}

/// One immutable pushed config version (metadata; content stored beside it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    pub version: u64,
    /// sha256 of the content, lowercase hex.
    pub hash: String,
    pub size: u64,
    pub author: String,
    pub message: String,
    pub created_ms: i64,
    /// Nodes it was made desired for when pushed.
    pub targets: Vec<String>,
    /// Pushed to the whole fleet: nodes that register later get it too.
    #[serde(default)]
    pub fleet_wide: bool,
}

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// Every stored config version's metadata, oldest first.
    fn load_versions(&self) -> Result<Vec<ConfigVersion>, StoreError>;
    /// The content of one version.
    fn version_content(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The version nodes that register for the first time should get.
    fn fleet_desired(&self) -> Result<u64, StoreError>;
    /// Appends one finished exec session to the audit log.
    fn put_exec(&self, record: &ExecRecord) -> Result<(), StoreError>;
    /// The newest `limit` exec sessions, newest first.
    fn load_execs(&self, limit: usize) -> Result<Vec<ExecRecord>, StoreError>;
    /// Highest exec id recorded (0 if none).
    fn last_exec_id(&self) -> Result<u64, StoreError>;
    /// Records a push or rollback in one transaction, so it is either wholly
    /// recorded or not at all.
    fn put_config(&self, change: &ConfigChange) -> Result<(), StoreError>;
    /// Every certificate the master issued.
    fn load_certs(&self) -> Result<Vec<CertRecord>, StoreError>;
    /// Every join token.
    fn load_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Writes tokens and certificates in one transaction (an enrolment uses
    /// a token and issues a certificate: both or neither).
    fn put_security(&self, tokens: &[TokenRecord], certs: &[CertRecord]) -> Result<(), StoreError>;
    /// Appends an audit entry, giving it the next id.
    fn append_audit(&self, entry: &mut AuditRecord) -> Result<(), StoreError>;
    /// The newest `limit` audit entries that `keep` accepts, newest first.
    fn load_audit(
        &self,
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> bool,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// A client certificate the master issued, known by its fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertRecord {
    /// sha256 of the certificate, lowercase hex.
    pub fingerprint: String,
    /// `node` or `user`.
    pub kind: String,
    /// Node id or user name.
    pub name: String,
    /// Role of a user certificate; empty for nodes.
    #[serde(default)]
    pub role: String,
    pub issued_ms: i64,
    pub not_after_ms: i64,
    /// Who asked for it: a user name, or `token:<id>` for an enrolment.
    pub issued_by: String,
    /// When it was revoked; 0 while valid.
    #[serde(default)]
    pub revoked_ms: i64,
    /// A revoked node certificate whose name an admin let enrol again.
    #[serde(default)]
    pub readmitted: bool,
}

/// A join token; the secret itself is never stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    /// sha256 of the secret, lowercase hex.
    pub secret_hash: String,
    #[serde(default)]
    pub description: String,
    pub created_ms: i64,
    pub created_by: String,
    /// 0 = never expires.
    pub expires_ms: i64,
    /// 0 = unlimited.
    pub max_uses: u32,
    pub used: u32,
    #[serde(default)]
    pub revoked: bool,
}

/// One audited call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: u64,
    pub time_ms: i64,
    pub user: String,
    pub role: String,
    pub peer: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub success: bool,
    pub error: String,
}

/// One exec session, as audited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub exec_id: u64,
    pub user: String,
    /// Address cdnctl connected from.
    pub peer: String,
    pub node: String,
    pub argv: Vec<String>,
    pub started_ms: i64,
    pub duration_ms: u64,
    /// Exit code as cdnctl reports it; -1 when the command never ran.
    pub exit_code: i32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: String,
}

/// Everything one push or rollback writes.
#[derive(Debug, Default)]
pub struct ConfigChange {
    /// A new version and its content.
    pub version: Option<(ConfigVersion, Vec<u8>)>,
    /// Node records with their new desired version.
    pub nodes: Vec<NodeRecord>,
    /// New fleet-wide desired version, when the change targets every node.
    pub fleet_desired: Option<u64>,
}
