//! The embedded backend: one redb file (`masterd.redb`) in the data
//! directory. redb commits are atomic and durable (fsync'd), so a crash
//! never leaves half a batch. redb is synchronous: every call runs on
//! tokio's blocking pool, never on a runtime worker. Its [`Table::Pki`] is
//! the CA's two files in `<data_dir>/pki`, beside the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cdn_proto::Version;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;

use super::{
    AuditQuery, AuditRecord, Backend, CertRecord, Entry, ExecRecord, Loaded, NodeConfigRecord,
    NodeRecord, RolloutRecord, StoreError, Table, TokenRecord, VersionRecord, Write, decode,
    encode, number_key,
};

const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const NODE_CONFIG: TableDefinition<&str, &[u8]> = TableDefinition::new("node_config");
const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("config_versions");
const CONTENT: TableDefinition<u64, &[u8]> = TableDefinition::new("config_content");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EXECS: TableDefinition<u64, &[u8]> = TableDefinition::new("exec_sessions");
const CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("join_tokens");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const ROLLOUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("rollouts");
const FLEET_DESIRED: &str = "fleet_desired_version";

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "masterd.redb";

/// The files of [`Table::Pki`] (in `<data_dir>/pki`), the key first: it is
/// written first, so a crash never leaves a CA certificate without its key.
const PKI_FILES: [&str; 2] = ["ca.key", "ca.crt"];

/// Master state in a redb file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Handle>,
    /// `<data_dir>/pki`: the CA files, exported and imported with the rest.
    pki_dir: PathBuf,
}

/// The open database, and what it takes to open it again. After an I/O
/// error (a full disk) redb refuses every later call until the file is
/// opened again ("Previous I/O error occurred"): the next call reopens it,
/// so the store works again as soon as the disk does, without a restart.
struct Handle {
    path: PathBuf,
    db: std::sync::Mutex<Option<Arc<Database>>>,
    /// An operation failed with an I/O error: reopen before the next.
    failed: std::sync::atomic::AtomicBool,
    /// One reopen at a time.
    reopening: tokio::sync::Mutex<()>,
}

/// The store's page cache in the master's memory.
const STORE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Longest wait for operations in flight to let go of a failed database.
const REOPEN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Where an embedded table lives.
enum Layout {
    /// Keys are names.
    Named(TableDefinition<'static, &'static str, &'static [u8]>),
    /// Keys are numbers ([`number_key`] outside redb).
    Numbered(TableDefinition<'static, u64, &'static [u8]>),
    /// `meta`: values are numbers (decimal text outside redb).
    Meta,
    /// Files in the PKI directory.
    Files,
}

fn layout(table: Table) -> Layout {
    match table {
        Table::Nodes => Layout::Named(NODES),
        Table::NodeConfig => Layout::Named(NODE_CONFIG),
        Table::Certs => Layout::Named(CERTS),
        Table::Tokens => Layout::Named(TOKENS),
        Table::Versions => Layout::Numbered(VERSIONS),
        Table::Content => Layout::Numbered(CONTENT),
        Table::Execs => Layout::Numbered(EXECS),
        Table::Audit => Layout::Numbered(AUDIT),
        Table::Rollouts => Layout::Numbered(ROLLOUTS),
        Table::Meta => Layout::Meta,
        Table::Pki => Layout::Files,
    }
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        cdn_common::tls::ensure_private_dir(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.display().to_string(),
            message: format!("cannot create data directory: {e}"),
        })?;
        let path: PathBuf = data_dir.join(DB_FILE);
        let db = Self::open_db(&path).map_err(|e| match e {
            StoreError::InUse { .. } => StoreError::InUse {
                dir: data_dir.display().to_string(),
            },
            other => other,
        })?;
        Ok(Self {
            db: Arc::new(Handle {
                path,
                db: std::sync::Mutex::new(Some(Arc::new(db))),
                failed: std::sync::atomic::AtomicBool::new(false),
                reopening: tokio::sync::Mutex::new(()),
            }),
            pki_dir: crate::pki::dir_in(data_dir),
        })
    }

    /// Opens (creating if needed) the redb file at `path` with every table.
    fn open_db(path: &Path) -> Result<Database, StoreError> {
        // redb caches up to 1 GiB by default, and the cache only grows:
        // reading config history (a viewer may) would take the master's
        // memory with it. Reads past the cache go to the page cache.
        let db = redb::Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                    dir: path.display().to_string(),
                },
                other => StoreError::Open {
                    path: path.display().to_string(),
                    message: other.to_string(),
                },
            })?;
        // Audit entries, configs and command lines: the owner's only.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        // Every table exists, so reads on a fresh store succeed. Only a
        // store missing one is written to: a master must start on a full
        // disk when it has nothing new to write.
        let complete = db.begin_read().is_ok_and(|r| {
            r.open_table(NODES).is_ok()
                && r.open_table(NODE_CONFIG).is_ok()
                && r.open_table(VERSIONS).is_ok()
                && r.open_table(CONTENT).is_ok()
                && r.open_table(META).is_ok()
                && r.open_table(EXECS).is_ok()
                && r.open_table(CERTS).is_ok()
                && r.open_table(TOKENS).is_ok()
                && r.open_table(AUDIT).is_ok()
                && r.open_table(ROLLOUTS).is_ok()
        });
        if complete {
            return Ok(db);
        }
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(NODES).map_err(io)?;
        txn.open_table(NODE_CONFIG).map_err(io)?;
        txn.open_table(VERSIONS).map_err(io)?;
        txn.open_table(CONTENT).map_err(io)?;
        txn.open_table(META).map_err(io)?;
        txn.open_table(EXECS).map_err(io)?;
        txn.open_table(CERTS).map_err(io)?;
        txn.open_table(TOKENS).map_err(io)?;
        txn.open_table(AUDIT).map_err(io)?;
        txn.open_table(ROLLOUTS).map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(db)
    }

    /// Runs `f` on the blocking pool. An I/O error marks the database for
    /// reopening before the next call.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.database().await?;
        let result = tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?;
        if matches!(result, Err(StoreError::Io(_))) {
            self.db
                .failed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        result
    }

    /// The database to use, opened again first if an operation failed.
    async fn database(&self) -> Result<Arc<Database>, StoreError> {
        use std::sync::atomic::Ordering;
        let h = &self.db;
        let current = || h.db.lock().ok().and_then(|d| d.clone());
        if !h.failed.load(Ordering::SeqCst)
            && let Some(db) = current()
        {
            return Ok(db);
        }
        let _one = h.reopening.lock().await;
        if !h.failed.load(Ordering::SeqCst)
            && let Some(db) = current()
        {
            return Ok(db);
        }
        let unavailable = |why: String| {
            StoreError::Io(format!(
                "the store is unavailable after an I/O error ({why}); it is opened again at the next operation"
            ))
        };
        // redb keeps the file locked while any handle lives: wait for the
        // operations in flight, then close it.
        let old = h.db.lock().ok().and_then(|mut d| d.take());
        if let Some(old) = old {
            let deadline = std::time::Instant::now() + REOPEN_DRAIN;
            while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            if Arc::strong_count(&old) > 1 {
                if let Ok(mut d) = h.db.lock() {
                    *d = Some(old);
                }
                return Err(unavailable("operations still in flight".into()));
            }
            drop(old);
        }
        let path = h.path.clone();
        let opened = tokio::task::spawn_blocking(move || Self::open_db(&path))
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        match opened {
            Ok(db) => {
                let db = Arc::new(db);
                if let Ok(mut d) = h.db.lock() {
                    *d = Some(Arc::clone(&db));
                }
                h.failed.store(false, Ordering::SeqCst);
                tracing::info!(file = %h.path.display(), "store opened again after an I/O error");
                Ok(db)
            }
            Err(e) => Err(unavailable(e.to_string())),
        }
    }

    /// Every record in one read transaction, table by table in
    /// [`Table::ALL`] order, and the CA files read while it is open.
    fn export_now(db: &Database, pki_dir: &Path) -> Result<Vec<Entry>, StoreError> {
        let txn = db.begin_read().map_err(io)?;
        let mut out = Vec::new();
        for table in Table::ALL {
            let entry = |key: String, value: &[u8]| Entry {
                table,
                key,
                value: Bytes::copy_from_slice(value),
            };
            match layout(table) {
                Layout::Named(def) => {
                    for row in txn.open_table(def).map_err(io)?.iter().map_err(io)? {
                        let (k, v) = row.map_err(io)?;
                        out.push(entry(k.value().to_string(), v.value()));
                    }
                }
                Layout::Numbered(def) => {
                    for row in txn.open_table(def).map_err(io)?.iter().map_err(io)? {
                        let (k, v) = row.map_err(io)?;
                        out.push(entry(number_key(k.value()), v.value()));
                    }
                }
                Layout::Meta => {
                    for row in txn.open_table(META).map_err(io)?.iter().map_err(io)? {
                        let (k, v) = row.map_err(io)?;
                        out.push(entry(
                            k.value().to_string(),
                            v.value().to_string().as_bytes(),
                        ));
                    }
                }
                Layout::Files => {
                    for name in PKI_FILES {
                        let path = pki_dir.join(name);
                        match std::fs::read(&path) {
                            Ok(bytes) => out.push(entry(name.to_string(), &bytes)),
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(io(format!("{}: {e}", path.display()))),
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// What this store holds, as `nodes: 3, pki: ca.key ca.crt`; empty
    /// when it holds nothing.
    fn contents(txn: &redb::WriteTransaction, pki_dir: &Path) -> Result<Vec<String>, StoreError> {
        let mut held = Vec::new();
        for table in Table::ALL {
            let rows = match layout(table) {
                Layout::Named(def) => txn.open_table(def).map_err(io)?.len().map_err(io)?,
                Layout::Numbered(def) => txn.open_table(def).map_err(io)?.len().map_err(io)?,
                Layout::Meta => txn.open_table(META).map_err(io)?.len().map_err(io)?,
                Layout::Files => {
                    let files: Vec<&str> = PKI_FILES
                        .into_iter()
                        .filter(|f| pki_dir.join(f).exists())
                        .collect();
                    if !files.is_empty() {
                        held.push(format!("{}: {}", table.as_str(), files.join(" ")));
                    }
                    continue;
                }
            };
            if rows > 0 {
                held.push(format!("{}: {rows}", table.as_str()));
            }
        }
        Ok(held)
    }

    /// Writes `entries` into an empty store: every table in one write
    /// transaction, the CA files (0600) just before it commits.
    fn import_now(db: &Database, pki_dir: &Path, entries: Vec<Entry>) -> Result<(), StoreError> {
        let bad = |e: &Entry, message: String| StoreError::Corrupt {
            key: format!("{} {}", e.table.as_str(), e.key),
            message,
        };
        let number = |e: &Entry, text: &str| {
            text.parse::<u64>()
                .map_err(|_| bad(e, format!("{text:?} is not a number")))
        };
        let txn = db.begin_write().map_err(io)?;
        let held = Self::contents(&txn, pki_dir)?;
        if !held.is_empty() {
            return Err(StoreError::NotEmpty(held.join(", ")));
        }
        let mut files = Vec::new();
        for e in &entries {
            match layout(e.table) {
                Layout::Named(def) => {
                    txn.open_table(def)
                        .map_err(io)?
                        .insert(e.key.as_str(), e.value.as_ref())
                        .map_err(io)?;
                }
                Layout::Numbered(def) => {
                    txn.open_table(def)
                        .map_err(io)?
                        .insert(number(e, &e.key)?, e.value.as_ref())
                        .map_err(io)?;
                }
                Layout::Meta => {
                    let text = std::str::from_utf8(&e.value)
                        .map_err(|_| bad(e, "the value is not text".into()))?;
                    txn.open_table(META)
                        .map_err(io)?
                        .insert(e.key.as_str(), number(e, text)?)
                        .map_err(io)?;
                }
                Layout::Files => {
                    let Some(name) = PKI_FILES.into_iter().find(|f| *f == e.key) else {
                        return Err(bad(e, format!("expected one of {PKI_FILES:?}")));
                    };
                    files.push((name, e.value.clone()));
                }
            }
        }
        // Key first (see PKI_FILES); removed again if the commit fails, so
        // a refused import leaves the store as empty as it found it.
        files.sort_by_key(|(name, _)| PKI_FILES.iter().position(|f| f == name));
        if !files.is_empty() {
            cdn_common::tls::ensure_private_dir(pki_dir)
                .map_err(|e| io(format!("{}: {e}", pki_dir.display())))?;
        }
        let remove_files = || {
            for (name, _) in &files {
                let _ = std::fs::remove_file(pki_dir.join(name));
            }
        };
        for (name, bytes) in &files {
            if let Err(e) = cdn_common::tls::write_private(&pki_dir.join(name), bytes) {
                remove_files();
                return Err(io(e));
            }
        }
        txn.commit().map_err(|e| {
            remove_files();
            io(e)
        })
    }

    fn load_now(db: &Database) -> Result<Loaded, StoreError> {
        let txn = db.begin_read().map_err(io)?;
        fn all<T: DeserializeOwned>(
            txn: &redb::ReadTransaction,
            table: TableDefinition<&str, &[u8]>,
            what: &str,
        ) -> Result<Vec<T>, StoreError> {
            let t = txn.open_table(table).map_err(io)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(io)? {
                let (k, v) = row.map_err(io)?;
                out.push(decode(what, k.value(), v.value())?);
            }
            Ok(out)
        }
        let nodes: Vec<NodeRecord> = all(&txn, NODES, "node")?;
        let mut node_configs: Vec<NodeConfigRecord> = all(&txn, NODE_CONFIG, "node config")?;
        // Stores written before the split kept config state in the node
        // record: carry it over for nodes that have no config record yet.
        let known: std::collections::HashSet<String> =
            node_configs.iter().map(|c| c.name.clone()).collect();
        for n in &nodes {
            if !known.contains(&n.name) && n.legacy_config != Default::default() {
                node_configs.push(n.legacy_config.clone().into_record(&n.name));
            }
        }
        let certs: Vec<CertRecord> = all(&txn, CERTS, "certificate")?;
        let tokens: Vec<TokenRecord> = all(&txn, TOKENS, "join token")?;
        let mut versions = Vec::new();
        {
            let t = txn.open_table(VERSIONS).map_err(io)?;
            for row in t.iter().map_err(io)? {
                let (k, v) = row.map_err(io)?;
                versions.push(decode::<VersionRecord>(
                    "config version",
                    &k.value().to_string(),
                    v.value(),
                )?);
            }
        }
        let mut rollouts = Vec::new();
        {
            let t = txn.open_table(ROLLOUTS).map_err(io)?;
            for row in t.iter().map_err(io)? {
                let (k, v) = row.map_err(io)?;
                rollouts.push(decode::<RolloutRecord>(
                    "rollout",
                    &k.value().to_string(),
                    v.value(),
                )?);
            }
        }
        let fleet_desired = txn
            .open_table(META)
            .map_err(io)?
            .get(FLEET_DESIRED)
            .map_err(io)?
            .and_then(|v| Version::new(v.value()));
        let last_key = |table: TableDefinition<u64, &[u8]>| -> Result<u64, StoreError> {
            let t = txn.open_table(table).map_err(io)?;
            Ok(t.last().map_err(io)?.map_or(0, |(k, _)| k.value()))
        };
        Ok(Loaded {
            nodes,
            node_configs,
            versions,
            fleet_desired,
            certs,
            tokens,
            last_exec_id: last_key(EXECS)?,
            last_audit_id: last_key(AUDIT)?,
            rollouts,
        })
    }

    fn commit_now(db: &Database, writes: Vec<Write>) -> Result<(), StoreError> {
        // Tables are opened only when the batch writes to them: a batch of
        // registrations touches one table, not nine.
        let mut by_table: [Vec<Write>; 9] = Default::default();
        for w in writes {
            let slot = match &w {
                Write::Node(_) | Write::ForgetNode(_) => 0,
                Write::NodeConfig(_) | Write::ForgetNodeConfig(_) => 1,
                Write::Version(..) => 2,
                Write::FleetDesired(_) => 3,
                Write::Token(_) => 4,
                Write::Cert(_) => 5,
                Write::Audit(_) => 6,
                Write::Exec(_) => 7,
                Write::Rollout(_) => 8,
            };
            by_table[slot].push(w);
        }
        let txn = db.begin_write().map_err(io)?;
        for writes in by_table.into_iter().filter(|w| !w.is_empty()) {
            Self::put_all(&txn, writes)?;
        }
        txn.commit().map_err(io)
    }

    /// Puts (or deletes) `writes`, all of one table, in their table(s).
    fn put_all(txn: &redb::WriteTransaction, writes: Vec<Write>) -> Result<(), StoreError> {
        let named = |table| txn.open_table(table).map_err(io);
        let numbered = |table| txn.open_table(table).map_err(io);
        match writes.first() {
            Some(Write::Node(_))
            | Some(Write::ForgetNode(_))
            | Some(Write::NodeConfig(_))
            | Some(Write::ForgetNodeConfig(_))
            | Some(Write::Token(_))
            | Some(Write::Cert(_)) => {
                let table = match writes[0] {
                    Write::Node(_) | Write::ForgetNode(_) => NODES,
                    Write::NodeConfig(_) | Write::ForgetNodeConfig(_) => NODE_CONFIG,
                    Write::Token(_) => TOKENS,
                    _ => CERTS,
                };
                let mut t = named(table)?;
                for w in writes {
                    let (key, value) = match &w {
                        Write::Node(r) => (r.name.as_str(), encode(r)?),
                        Write::NodeConfig(r) => (r.name.as_str(), encode(r)?),
                        Write::Token(r) => (r.id.as_str(), encode(r)?),
                        Write::Cert(r) => (r.fingerprint.as_str(), encode(r)?),
                        Write::ForgetNode(name) | Write::ForgetNodeConfig(name) => {
                            t.remove(name.as_str()).map_err(io)?;
                            continue;
                        }
                        _ => continue,
                    };
                    t.insert(key, value.as_slice()).map_err(io)?;
                }
            }
            Some(Write::Audit(_)) | Some(Write::Exec(_)) | Some(Write::Rollout(_)) => {
                let mut t = numbered(match writes[0] {
                    Write::Audit(_) => AUDIT,
                    Write::Exec(_) => EXECS,
                    _ => ROLLOUTS,
                })?;
                for w in writes {
                    let (key, value) = match &w {
                        Write::Audit(r) => (r.id, encode(r)?),
                        Write::Exec(r) => (r.exec_id, encode(r)?),
                        Write::Rollout(r) => (r.id, encode(r)?),
                        _ => continue,
                    };
                    t.insert(key, value.as_slice()).map_err(io)?;
                }
            }
            Some(Write::Version(..)) => {
                let mut versions = numbered(VERSIONS)?;
                let mut content = numbered(CONTENT)?;
                for w in writes {
                    if let Write::Version(r, bytes) = w {
                        versions
                            .insert(r.version.get(), encode(&r)?.as_slice())
                            .map_err(io)?;
                        content
                            .insert(r.version.get(), bytes.as_ref())
                            .map_err(io)?;
                    }
                }
            }
            Some(Write::FleetDesired(_)) => {
                let mut meta = txn.open_table(META).map_err(io)?;
                for w in writes {
                    if let Write::FleetDesired(v) = w {
                        meta.insert(FLEET_DESIRED, Version::to_u64(v)).map_err(io)?;
                    }
                }
            }
            None => {}
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for EmbeddedStore {
    async fn export(&self) -> Result<Vec<Entry>, StoreError> {
        let pki_dir = self.pki_dir.clone();
        self.blocking(move |db| Self::export_now(db, &pki_dir))
            .await
    }

    async fn import(&self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let pki_dir = self.pki_dir.clone();
        self.blocking(move |db| Self::import_now(db, &pki_dir, entries))
            .await
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        self.blocking(Self::load_now).await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.blocking(move |db| Self::commit_now(db, writes)).await
    }

    async fn version_content(&self, v: Version) -> Result<Option<Bytes>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(io)?;
            let t = txn.open_table(CONTENT).map_err(io)?;
            Ok(t.get(v.get())
                .map_err(io)?
                .map(|x| Bytes::copy_from_slice(x.value())))
        })
        .await
    }

    async fn execs(&self, limit: usize) -> Result<Vec<ExecRecord>, StoreError> {
        self.blocking(move |db| newest_first(db, EXECS, "exec session", limit, |_| true))
            .await
    }

    async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.blocking(move |db| {
            newest_first(db, AUDIT, "audit entry", query.limit, |r| query.matches(r))
        })
        .await
    }
}

/// The newest `limit` records of a table numbered by id that `keep`
/// accepts, newest first.
fn newest_first<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<u64, &[u8]>,
    what: &str,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<Vec<T>, StoreError> {
    let txn = db.begin_read().map_err(io)?;
    let t = txn.open_table(table).map_err(io)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(io)?.rev() {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(io)?;
        let rec: T = decode(what, &k.value().to_string(), v.value())?;
        if keep(&rec) {
            out.push(rec);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u64) -> VersionRecord {
        VersionRecord {
            version: Version::new(n).unwrap(),
            hash: "h".into(),
            size: 4,
            author: "a".into(),
            message: String::new(),
            created_ms: 1,
            targets: vec!["n".into()],
            fleet_wide: true,
            idempotency_key: String::new(),
        }
    }

    #[tokio::test]
    async fn a_batch_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeRecord {
            name: "agent-1".into(),
            last_session_id: 7,
            ..Default::default()
        };
        let cfg = NodeConfigRecord {
            name: "agent-1".into(),
            desired: Version::new(1),
            ..Default::default()
        };
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.commit(vec![
                Write::Node(node.clone()),
                Write::NodeConfig(cfg.clone()),
                Write::Version(version(1), Bytes::from_static(b"a: 1")),
                Write::FleetDesired(Version::new(1)),
                Write::Audit(AuditRecord {
                    id: 3,
                    action: "push".into(),
                    ..Default::default()
                }),
                Write::Exec(ExecRecord {
                    exec_id: 9,
                    ..Default::default()
                }),
            ])
            .await
            .unwrap();
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        let l = s.load().await.unwrap();
        assert_eq!(l.nodes, vec![node]);
        assert_eq!(l.node_configs, vec![cfg]);
        assert_eq!(l.versions, vec![version(1)]);
        assert_eq!(l.fleet_desired, Version::new(1));
        assert_eq!((l.last_audit_id, l.last_exec_id), (3, 9));
        assert_eq!(
            s.version_content(Version::FIRST).await.unwrap().as_deref(),
            Some(&b"a: 1"[..])
        );
        assert_eq!(
            s.version_content(Version::new(2).unwrap()).await.unwrap(),
            None
        );
        let q = AuditQuery {
            limit: 10,
            action: "push".into(),
            ..Default::default()
        };
        assert_eq!(s.audit(q).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_deleted_node_leaves_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        let node = |name: &str| NodeRecord {
            name: name.into(),
            ..Default::default()
        };
        let cfg = |name: &str| NodeConfigRecord {
            name: name.into(),
            ..Default::default()
        };
        s.commit(vec![
            Write::Node(node("gone")),
            Write::Node(node("kept")),
            Write::NodeConfig(cfg("gone")),
            Write::NodeConfig(cfg("kept")),
        ])
        .await
        .unwrap();
        s.commit(vec![
            Write::ForgetNode("gone".into()),
            Write::ForgetNodeConfig("gone".into()),
            // Deleting what is not there is no error.
            Write::ForgetNode("never".into()),
        ])
        .await
        .unwrap();
        let l = s.load().await.unwrap();
        assert_eq!(l.nodes, vec![node("kept")]);
        assert_eq!(l.node_configs, vec![cfg("kept")]);
    }

    #[tokio::test]
    async fn config_state_of_an_old_store_is_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            let db = s.database().await.unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(NODES)
                .unwrap()
                .insert(
                    "old",
                    br#"{"name":"old","first_seen_ms":1,"last_seen_ms":1,"connected_since_ms":1,"last_session_id":1,"desired_version":2,"applied_version":2}"#.as_slice(),
                )
                .unwrap();
            txn.commit().unwrap();
        }
        let l = EmbeddedStore::open(dir.path())
            .unwrap()
            .load()
            .await
            .unwrap();
        assert_eq!(l.node_configs.len(), 1);
        assert_eq!(l.node_configs[0].desired, Version::new(2));
        assert_eq!(l.node_configs[0].applied, Version::new(2));
    }

    #[test]
    fn second_open_is_refused_while_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(dir.path()).unwrap();
        let second = EmbeddedStore::open(dir.path());
        assert!(matches!(second, Err(StoreError::InUse { .. })));
    }

    #[tokio::test]
    async fn an_export_imports_into_an_empty_store_as_it_was() {
        let from = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(from.path()).unwrap();
        s.commit(vec![
            Write::Node(NodeRecord {
                name: "agent-1".into(),
                ..Default::default()
            }),
            Write::Version(version(1), Bytes::from_static(b"a: 1")),
            Write::FleetDesired(Version::new(1)),
            Write::Audit(AuditRecord {
                id: 12,
                ..Default::default()
            }),
        ])
        .await
        .unwrap();
        let pki = crate::pki::dir_in(from.path());
        std::fs::create_dir_all(&pki).unwrap();
        std::fs::write(pki.join("ca.crt"), "CERT").unwrap();
        std::fs::write(pki.join("ca.key"), "KEY").unwrap();
        let exported = s.export().await.unwrap();
        let find = |t: Table| -> Vec<(String, Bytes)> {
            exported
                .iter()
                .filter(|e| e.table == t)
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect()
        };
        assert_eq!(find(Table::Meta), [(FLEET_DESIRED.into(), "1".into())]);
        assert_eq!(find(Table::Audit)[0].0, "00000000000000000012");
        assert_eq!(find(Table::Content), [(number_key(1), "a: 1".into())]);
        assert_eq!(find(Table::Pki).len(), 2);

        let to = tempfile::tempdir().unwrap();
        let t = EmbeddedStore::open(to.path()).unwrap();
        t.import(exported.clone()).await.unwrap();
        assert_eq!(t.export().await.unwrap(), exported);
        let l = t.load().await.unwrap();
        assert_eq!(l.fleet_desired, Version::new(1));
        assert_eq!(l.last_audit_id, 12);
        use std::os::unix::fs::PermissionsExt;
        let key = crate::pki::dir_in(to.path()).join("ca.key");
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Once is all: the store now holds state.
        let again = t.import(exported).await.unwrap_err().to_string();
        assert!(again.contains("not empty"), "{again}");
        assert!(
            again.contains("nodes: 1") && again.contains("pki: ca.key ca.crt"),
            "{again}"
        );
    }

    #[tokio::test]
    async fn a_ca_alone_makes_a_store_not_empty_and_a_bad_key_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        let bad = vec![
            Entry {
                table: Table::Pki,
                key: "ca.key".into(),
                value: "KEY".into(),
            },
            Entry {
                table: Table::Versions,
                key: "seven".into(),
                value: "{}".into(),
            },
        ];
        let e = s.import(bad).await.unwrap_err().to_string();
        assert!(e.contains("config_versions seven"), "{e}");
        assert!(s.export().await.unwrap().is_empty());

        let pki = crate::pki::dir_in(dir.path());
        std::fs::create_dir_all(&pki).unwrap();
        std::fs::write(pki.join("ca.crt"), "CERT").unwrap();
        let e = s.import(Vec::new()).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::NotEmpty(what) if what == "pki: ca.crt"),
            "{e}"
        );
    }
}
