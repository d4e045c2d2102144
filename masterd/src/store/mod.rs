//! Durable master state: the records, the [`Backend`] trait every store
//! implements, and the [`Store`] handle through which the owners of state
//! write.
//!
//! One task, the [`writer`], owns the backend's write side. Owners (the
//! registry, the config rollouts, credentials, audit, exec sessions) send it
//! typed [`Write`]s over a bounded channel and await the reply; it commits
//! what is queued in one transaction (group commit: a registration storm
//! costs a few fsyncs, not one each). Every write is a put of one key with
//! its whole value — ids and version numbers are handed out by the owners —
//! or, for a deleted node, the deletion of one key, so a networked backend
//! can apply a batch as one compare-and-swap transaction (etcd's `Txn`)
//! conditioned on its leadership. The embedded
//! backend ([`embedded`], one redb file) is the default.
//!
//! Reads on hot paths come from the owners' memory, loaded once at start
//! ([`Loaded`]); the store is read directly only for what is too large or
//! too cold to keep (config content, exec history, the audit log).

mod embedded;
pub mod etcd;
mod records;
mod writer;

pub use embedded::{DB_FILE, EmbeddedStore};
pub use etcd::{EtcdStore, Fence};
pub use records::{
    AuditRecord, CertKind, CertRecord, ExecRecord, FailedApply, GateRecord, NodeConfigRecord,
    NodePhase, NodeRecord, RolloutNodeRecord, RolloutPhase, RolloutRecord, RolloutWaveRecord,
    StrategyRecord, TokenRecord, VersionRecord, WavePhase,
};
pub use writer::{Pending, Reserved, Store, StoreWriter, WRITE_QUEUE_DEPTH};

use cdn_proto::Version;

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
    /// The writer has stopped (the master is shutting down).
    #[error("the store is closed (master shutting down)")]
    Closed,
    /// This master no longer leads: another master's election key is in
    /// place (etcd). Nothing of the refused batch was written.
    #[error("this master lost its leadership; the write was refused (fenced)")]
    Fenced,
    /// The store cannot be reached (etcd members down, no quorum).
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
    /// `restore` into a store that already holds state.
    #[error("the target store is not empty ({0}); restore only into an empty store")]
    NotEmpty(String),
}

/// A stored record, or [`StoreError::Corrupt`] naming it as `what key`
/// (formatted only when it is corrupt).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("{what} {key}"),
        message: e.to_string(),
    })
}

/// A record as stored (JSON, as every backend keeps it).
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(e.to_string()))
}

/// The tables of the store, as both backends and backup files name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Nodes,
    NodeConfig,
    Versions,
    Content,
    Meta,
    Execs,
    Certs,
    Tokens,
    Audit,
    /// The CA certificate and key (`ca.crt`, `ca.key`): in `<data_dir>/pki`
    /// on the embedded store, in the store itself on etcd.
    Pki,
    /// Staged rollouts, by id (the rollouts' owner).
    Rollouts,
}

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Nodes,
        Table::NodeConfig,
        Table::Versions,
        Table::Content,
        Table::Meta,
        Table::Execs,
        Table::Certs,
        Table::Tokens,
        Table::Audit,
        Table::Pki,
        Table::Rollouts,
    ];

    /// The table's name (redb table, etcd key segment, backup field).
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Nodes => "nodes",
            Table::NodeConfig => "node_config",
            Table::Versions => "config_versions",
            Table::Content => "config_content",
            Table::Meta => "meta",
            Table::Execs => "exec_sessions",
            Table::Certs => "certificates",
            Table::Tokens => "join_tokens",
            Table::Audit => "audit",
            Table::Pki => "pki",
            Table::Rollouts => "rollouts",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether keys are numbers (versions, exec and audit ids).
    pub fn numbered(self) -> bool {
        matches!(
            self,
            Table::Versions | Table::Content | Table::Execs | Table::Audit | Table::Rollouts
        )
    }
}

/// A numbered key as stored outside redb: 20 digits, so text order is
/// number order.
pub fn number_key(n: u64) -> String {
    format!("{n:020}")
}

/// One record of the store as backups carry it: its table, its key
/// (numbers as [`number_key`]), its stored bytes (records are JSON; config
/// content is the pushed bytes; `meta` values are decimal numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub table: Table,
    pub key: String,
    pub value: bytes::Bytes,
}

/// One put (or, for a deleted node, one deletion), as the owners of state
/// send it to the writer.
#[derive(Debug, Clone)]
pub enum Write {
    /// A node's identity and liveness facts (the registry's).
    Node(NodeRecord),
    /// A node's desired and applied config (the rollouts').
    NodeConfig(NodeConfigRecord),
    /// A deleted node's record goes (the registry's; `cdnctl nodes delete`).
    ForgetNode(String),
    /// A deleted node's config state goes (the rollouts').
    ForgetNodeConfig(String),
    /// A new immutable config version and its content.
    Version(VersionRecord, bytes::Bytes),
    /// The version nodes that register for the first time are given.
    FleetDesired(Option<Version>),
    /// A join token.
    Token(TokenRecord),
    /// An issued certificate (new, revoked or readmitted).
    Cert(CertRecord),
    /// One audit entry (its id given by the audit log's owner).
    Audit(AuditRecord),
    /// One finished exec session.
    Exec(ExecRecord),
    /// A staged rollout as it is now (written at each change of state).
    Rollout(Box<RolloutRecord>),
}

/// Everything the owners of state load when the master starts.
#[derive(Debug, Default)]
pub struct Loaded {
    pub nodes: Vec<NodeRecord>,
    pub node_configs: Vec<NodeConfigRecord>,
    /// Version metadata, oldest first (content stays in the store).
    pub versions: Vec<VersionRecord>,
    pub fleet_desired: Option<Version>,
    pub certs: Vec<CertRecord>,
    pub tokens: Vec<TokenRecord>,
    /// Highest exec id recorded (0 if none).
    pub last_exec_id: u64,
    /// Highest audit id recorded (0 if none).
    pub last_audit_id: u64,
    /// Every staged rollout, oldest first.
    pub rollouts: Vec<RolloutRecord>,
}

/// Which audit entries a reader wants, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub limit: usize,
    /// Only this user's entries, when not empty.
    pub user: String,
    /// Only this action (or its sub-actions, `exec` matches `exec.end`),
    /// when not empty.
    pub action: String,
}

impl AuditQuery {
    /// Whether `r` is wanted.
    pub fn matches(&self, r: &AuditRecord) -> bool {
        (self.user.is_empty() || r.user == self.user)
            && (self.action.is_empty()
                || r.action == self.action
                || r.action
                    .strip_prefix(self.action.as_str())
                    .is_some_and(|rest| rest.starts_with('.')))
    }
}

/// A durable store of master state. Implementations commit a batch of
/// writes atomically (all or none) and durably before returning; only the
/// writer task calls [`Backend::commit`], so an implementation never sees
/// two commits at once.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Everything the owners keep in memory.
    async fn load(&self) -> Result<Loaded, StoreError>;
    /// Applies `writes` in one transaction.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// The content of config version `v`.
    async fn version_content(&self, v: Version) -> Result<Option<bytes::Bytes>, StoreError>;
    /// The newest `limit` exec sessions, newest first.
    async fn execs(&self, limit: usize) -> Result<Vec<ExecRecord>, StoreError>;
    /// The newest audit entries `query` wants, newest first.
    async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// Every record, as of one consistent point in time (backups).
    async fn export(&self) -> Result<Vec<Entry>, StoreError>;
    /// Writes `entries` into this store, which must hold no state yet
    /// ([`StoreError::NotEmpty`] otherwise): restores and migrations.
    async fn import(&self, entries: Vec<Entry>) -> Result<(), StoreError>;
}
