//! The embedded backend: one redb file (`masterd.redb`) in the data directory.
//! redb commits are atomic and durable (fsync'd), so a crash never leaves a
//! half-written registry.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use serde::de::DeserializeOwned;

use super::{
    AuditRecord, CertRecord, ConfigChange, ConfigVersion, ExecRecord, NodeRecord, NodeStore,
    StoreError, TokenRecord,
};

const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("config_versions");
const CONTENT: TableDefinition<u64, &[u8]> = TableDefinition::new("config_content");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EXECS: TableDefinition<u64, &[u8]> = TableDefinition::new("exec_sessions");
const CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("join_tokens");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const FLEET_DESIRED: &str = "fleet_desired_version";

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "masterd.redb";

/// Node registry in a redb file.
pub struct EmbeddedStore {
    db: Database,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        cdn_common::tls::ensure_private_dir(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.display().to_string(),
            message: format!("cannot create data directory: {e}"),
        })?;
        let path: PathBuf = data_dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                dir: data_dir.display().to_string(),
            },
            other => StoreError::Open {
                path: path.display().to_string(),
                message: other.to_string(),
            },
        })?;
        // Audit entries, configs and command lines: the owner's only.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        // Make sure the table exists so reads on a fresh store succeed.
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(NODES).map_err(io)?;
        txn.open_table(VERSIONS).map_err(io)?;
        txn.open_table(CONTENT).map_err(io)?;
        txn.open_table(META).map_err(io)?;
        txn.open_table(EXECS).map_err(io)?;
        txn.open_table(CERTS).map_err(io)?;
        txn.open_table(TOKENS).map_err(io)?;
        txn.open_table(AUDIT).map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(Self { db })
    }
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn decode<T: DeserializeOwned>(what: &str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("{what} {key}"),
        message: e.to_string(),
    })
}

impl EmbeddedStore {
    fn load_all<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(table).map_err(io)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            out.push(decode(what, k.value(), v.value())?);
        }
        Ok(out)
    }
}

impl NodeStore for EmbeddedStore {
    fn load_certs(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.load_all(CERTS, "certificate")
    }

    fn load_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.load_all(TOKENS, "join token")
    }

    fn put_security(&self, tokens: &[TokenRecord], certs: &[CertRecord]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut t = txn.open_table(TOKENS).map_err(io)?;
            for r in tokens {
                let bytes = serde_json::to_vec(r).map_err(io)?;
                t.insert(r.id.as_str(), bytes.as_slice()).map_err(io)?;
            }
            let mut c = txn.open_table(CERTS).map_err(io)?;
            for r in certs {
                let bytes = serde_json::to_vec(r).map_err(io)?;
                c.insert(r.fingerprint.as_str(), bytes.as_slice())
                    .map_err(io)?;
            }
        }
        txn.commit().map_err(io)
    }

    fn append_audit(&self, entry: &mut AuditRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut t = txn.open_table(AUDIT).map_err(io)?;
            entry.id = t.last().map_err(io)?.map_or(0, |(k, _)| k.value()) + 1;
            let bytes = serde_json::to_vec(entry).map_err(io)?;
            t.insert(entry.id, bytes.as_slice()).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    fn load_audit(
        &self,
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> bool,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(AUDIT).map_err(io)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(io)?.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(io)?;
            let rec: AuditRecord = decode("audit entry", &k.value().to_string(), v.value())?;
            if keep(&rec) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn load_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(NODES).map_err(io)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let rec: NodeRecord =
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    key: k.value().to_string(),
                    message: e.to_string(),
                })?;
            out.push(rec);
        }
        Ok(out)
    }

    fn put_nodes(&self, nodes: &[NodeRecord]) -> Result<(), StoreError> {
        if nodes.is_empty() {
            return Ok(());
        }
        self.put_config(&ConfigChange {
            nodes: nodes.to_vec(),
            ..Default::default()
        })
    }

    fn put_exec(&self, record: &ExecRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut t = txn.open_table(EXECS).map_err(io)?;
            let bytes = serde_json::to_vec(record).map_err(io)?;
            t.insert(record.exec_id, bytes.as_slice()).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    fn load_execs(&self, limit: usize) -> Result<Vec<ExecRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(EXECS).map_err(io)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(io)?.rev() {
            let (k, v) = row.map_err(io)?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    key: format!("exec session {}", k.value()),
                    message: e.to_string(),
                })?,
            );
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn last_exec_id(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(EXECS).map_err(io)?;
        Ok(t.last().map_err(io)?.map_or(0, |(k, _)| k.value()))
    }

    fn fleet_desired(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(META).map_err(io)?;
        Ok(table
            .get(FLEET_DESIRED)
            .map_err(io)?
            .map_or(0, |v| v.value()))
    }

    fn load_versions(&self) -> Result<Vec<ConfigVersion>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(VERSIONS).map_err(io)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let rec: ConfigVersion =
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    key: format!("config version {}", k.value()),
                    message: e.to_string(),
                })?;
            out.push(rec);
        }
        Ok(out)
    }

    fn version_content(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(CONTENT).map_err(io)?;
        Ok(table.get(version).map_err(io)?.map(|v| v.value().to_vec()))
    }

    fn put_config(&self, change: &ConfigChange) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            if let Some((meta, content)) = &change.version {
                let mut versions = txn.open_table(VERSIONS).map_err(io)?;
                let bytes = serde_json::to_vec(meta).map_err(io)?;
                versions
                    .insert(meta.version, bytes.as_slice())
                    .map_err(io)?;
                let mut contents = txn.open_table(CONTENT).map_err(io)?;
                contents
                    .insert(meta.version, content.as_slice())
                    .map_err(io)?;
            }
            if let Some(v) = change.fleet_desired {
                let mut meta = txn.open_table(META).map_err(io)?;
                meta.insert(FLEET_DESIRED, v).map_err(io)?;
            }
            let mut table = txn.open_table(NODES).map_err(io)?;
            for n in &change.nodes {
                let bytes = serde_json::to_vec(n).map_err(io)?;
                table
                    .insert(n.name.as_str(), bytes.as_slice())
                    .map_err(io)?;
            }
        }
        txn.commit().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let rec = NodeRecord {
            name: "agent-1".into(),
            last_session_id: 7,
            ..Default::default()
        };
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.put_nodes(std::slice::from_ref(&rec)).unwrap();
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.load_nodes().unwrap(), vec![rec]);
    }

    #[test]
    fn a_version_and_its_targets_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let meta = ConfigVersion {
            version: 1,
            hash: "h".into(),
            size: 3,
            ..Default::default()
        };
        let node = NodeRecord {
            name: "n".into(),
            desired_version: 1,
            ..Default::default()
        };
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.put_config(&ConfigChange {
                version: Some((meta.clone(), b"a: 1".to_vec())),
                nodes: vec![node],
                fleet_desired: Some(1),
            })
            .unwrap();
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.load_versions().unwrap(), vec![meta]);
        assert_eq!(s.version_content(1).unwrap().as_deref(), Some(&b"a: 1"[..]));
        assert_eq!(s.load_nodes().unwrap()[0].desired_version, 1);
        assert_eq!(s.version_content(2).unwrap(), None);
        assert_eq!(s.fleet_desired().unwrap(), 1);
    }

    #[test]
    fn second_open_is_refused_while_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(dir.path()).unwrap();
        let second = EmbeddedStore::open(dir.path());
        assert!(matches!(second, Err(StoreError::InUse { .. })));
    }
}
