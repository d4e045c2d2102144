//! The etcd backend: master state under `store.etcd.prefix` in an etcd
//! cluster that several masters share; one of them leads and writes.
//!
//! Keys (`P` is the prefix):
//! - `P election`: the leader's key, bound to its lease (see `leader`);
//! - `P masters/<id>`: each running master, bound to its lease;
//! - `P backup`: the last backup written;
//! - `P s/<table>/<key>`: the records, one key each (numbered keys as 20
//!   digits); config content as `s/config_content/<v>` (a header: chunk
//!   count and length) and `s/config_content/<v>/<i>` chunks of at most
//!   [`CHUNK`] bytes, so a 16 MiB config fits etcd's default 1.5 MiB
//!   request limit; `s/pki/ca.crt` and `s/pki/ca.key`: the shared CA.
//!
//! **Fencing**: every commit is a `Txn` whose only comparison is that the
//! election key still has the create revision this master's election gave
//! it ([`Fence`]). A master that lost its lease (paused, partitioned) cannot
//! write once another master's key exists, or once its own has expired.
//! A batch larger than one request ([`MAX_TXN_OPS`], [`MAX_TXN_BYTES`]) goes
//! out as several fenced transactions in order (content chunks before the
//! header and the version record that make them visible); the writer
//! acknowledges the batch only when all of them committed.
//!
//! **Warm standby**: a [`Mirror`] of the tables the owners load is kept by
//! a watch of the whole prefix, on every master, leading or not; taking
//! over waits until the mirror has seen the new election key's revision
//! (so it holds everything written before) and loads from memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cdn_proto::Version;
use cdn_proto::etcd::etcdserverpb::{RangeRequest, RequestOp, TxnRequest};
use cdn_proto::etcd::mvccpb::{KeyValue, event::EventType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{
    AuditQuery, AuditRecord, Backend, CertRecord, Entry, ExecRecord, Loaded, NodeConfigRecord,
    NodeRecord, RolloutRecord, StoreError, Table, TokenRecord, VersionRecord, Write, decode,
    number_key,
};
use crate::etcd::{EtcdClient, created_at, delete_op, prefix_end, put_op};

/// Largest piece of config content in one key.
pub const CHUNK: usize = 512 * 1024;
/// Operations per transaction (etcd's `--max-txn-ops` defaults to 128).
pub const MAX_TXN_OPS: usize = 120;
/// Bytes of keys and values per transaction (etcd's `--max-request-bytes`
/// defaults to 1.5 MiB).
pub const MAX_TXN_BYTES: usize = 1024 * 1024;
/// Meta key of the version new nodes get.
const FLEET_DESIRED: &str = "fleet_desired_version";
/// Longest a new leader waits for its mirror before reading everything.
const CATCH_UP: Duration = Duration::from_secs(3);

/// The create revision of this master's election key while it leads
/// (0 while it does not); every commit is conditioned on it.
#[derive(Debug)]
pub struct Fence {
    rev: AtomicI64,
    changed: watch::Sender<i64>,
}

impl Default for Fence {
    fn default() -> Self {
        Self {
            rev: AtomicI64::new(0),
            changed: watch::channel(0).0,
        }
    }
}

impl Fence {
    /// The fence revision, while leading.
    pub fn current(&self) -> Option<i64> {
        Some(self.rev.load(Ordering::SeqCst)).filter(|r| *r > 0)
    }
    /// This master leads from election key revision `rev`.
    pub fn set(&self, rev: i64) {
        self.rev.store(rev, Ordering::SeqCst);
        self.changed.send_replace(rev);
    }
    /// This master no longer leads.
    pub fn clear(&self) {
        self.rev.store(0, Ordering::SeqCst);
        self.changed.send_replace(0);
    }
    /// Follows changes (0 = not leading).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }
}

/// Header of a config version's content.
#[derive(Debug, Serialize, Deserialize)]
struct ContentHeader {
    chunks: usize,
    len: usize,
}

/// What the owners load, as the watch keeps it.
#[derive(Default)]
struct MirrorState {
    rows: BTreeMap<(Table, String), Bytes>,
    last_exec: u64,
    last_audit: u64,
    /// Every change up to this revision is in `rows`.
    revision: i64,
}

/// The warm copy of the loaded tables.
#[derive(Default)]
struct Mirror {
    state: std::sync::Mutex<MirrorState>,
    seen: watch::Sender<i64>,
}

/// Tables kept in the mirror (the others are read on demand).
fn mirrored(t: Table) -> bool {
    matches!(
        t,
        Table::Nodes
            | Table::NodeConfig
            | Table::Versions
            | Table::Meta
            | Table::Certs
            | Table::Tokens
            | Table::Pki
            | Table::Rollouts
    )
}

/// Master state in etcd.
#[derive(Clone)]
pub struct EtcdStore {
    client: Arc<EtcdClient>,
    prefix: String,
    fence: Arc<Fence>,
    mirror: Arc<Mirror>,
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, StoreError> {
    super::encode(value).map(Bytes::from)
}

/// The entries one write puts (a version: its record and its content).
pub fn entries_of(w: Write) -> Result<Vec<Entry>, StoreError> {
    let one = |table, key: String, value| Ok(vec![Entry { table, key, value }]);
    match w {
        Write::Node(r) => one(Table::Nodes, r.name.clone(), encode(&r)?),
        Write::NodeConfig(r) => one(Table::NodeConfig, r.name.clone(), encode(&r)?),
        Write::Token(r) => one(Table::Tokens, r.id.clone(), encode(&r)?),
        Write::Cert(r) => one(Table::Certs, r.fingerprint.clone(), encode(&r)?),
        Write::Audit(r) => one(Table::Audit, number_key(r.id), encode(&r)?),
        Write::Exec(r) => one(Table::Execs, number_key(r.exec_id), encode(&r)?),
        Write::Rollout(r) => one(Table::Rollouts, number_key(r.id), encode(&r)?),
        Write::FleetDesired(v) => one(
            Table::Meta,
            FLEET_DESIRED.into(),
            Bytes::from(Version::to_u64(v).to_string()),
        ),
        Write::ForgetNode(_) | Write::ForgetNodeConfig(_) => Err(StoreError::Io(
            "a deletion has no entry to put (EtcdStore::commit deletes it)".into(),
        )),
        Write::Version(r, content) => {
            let key = number_key(r.version.get());
            Ok(vec![
                Entry {
                    table: Table::Content,
                    key: key.clone(),
                    value: content,
                },
                Entry {
                    table: Table::Versions,
                    key,
                    value: encode(&r)?,
                },
            ])
        }
    }
}

impl EtcdStore {
    /// Connects, reads the loaded tables and starts the watch that keeps
    /// them warm.
    pub async fn open(client: Arc<EtcdClient>, prefix: &str) -> Result<Self, StoreError> {
        let store = Self {
            client,
            prefix: prefix.to_string(),
            fence: Arc::new(Fence::default()),
            mirror: Arc::new(Mirror::default()),
        };
        store.resync().await?;
        let watcher = store.clone();
        tokio::spawn(async move { watcher.watch_loop().await });
        Ok(store)
    }

    /// The fence this store's commits are conditioned on.
    pub fn fence(&self) -> Arc<Fence> {
        Arc::clone(&self.fence)
    }

    /// The client (for the election).
    pub fn client(&self) -> Arc<EtcdClient> {
        Arc::clone(&self.client)
    }

    /// `prefix + rest`.
    pub fn key(&self, rest: &str) -> Vec<u8> {
        format!("{}{rest}", self.prefix).into_bytes()
    }

    /// The election key.
    pub fn election_key(&self) -> Vec<u8> {
        self.key("election")
    }

    fn row_key(&self, table: Table, key: &str) -> Vec<u8> {
        self.key(&format!("s/{}/{key}", table.as_str()))
    }

    fn table_prefix(&self, table: Table) -> Vec<u8> {
        self.key(&format!("s/{}/", table.as_str()))
    }

    /// Splits a key under `P s/` into table and record key.
    fn parse_key(&self, key: &[u8]) -> Option<(Table, String)> {
        let rest = std::str::from_utf8(key).ok()?.strip_prefix(&self.prefix)?;
        let rest = rest.strip_prefix("s/")?;
        let (table, key) = rest.split_once('/')?;
        Some((Table::parse(table)?, key.to_string()))
    }

    /// Reads every mirrored table anew, as of one revision.
    async fn resync(&self) -> Result<(), StoreError> {
        let (_, rev) = self.client.get(&self.election_key()).await?;
        let mut rows = BTreeMap::new();
        for t in Table::ALL.into_iter().filter(|t| mirrored(*t)) {
            let (kvs, _) = self.client.list(&self.table_prefix(t), rev).await?;
            for kv in kvs {
                if let Some(k) = self.parse_key(&kv.key) {
                    rows.insert(k, Bytes::from(kv.value));
                }
            }
        }
        let last = |t: Table| async move {
            let key = self.client.last_key(&self.table_prefix(t), rev).await?;
            Ok::<u64, StoreError>(
                key.and_then(|k| self.parse_key(&k))
                    .and_then(|(_, k)| k.parse().ok())
                    .unwrap_or(0),
            )
        };
        let (last_exec, last_audit) = (last(Table::Execs).await?, last(Table::Audit).await?);
        let mut s = self.mirror.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = MirrorState {
            rows,
            last_exec,
            last_audit,
            revision: rev,
        };
        drop(s);
        self.mirror.seen.send_replace(rev);
        Ok(())
    }

    /// Applies watched changes to the mirror, forever; re-reads everything
    /// when the watch cannot resume (history compacted).
    async fn watch_loop(self) {
        let prefix = self.key("");
        loop {
            let from = self.mirror.state.lock().map(|s| s.revision).unwrap_or(0) + 1;
            let (_tx, mut stream) = match self.client.watch(&prefix, from).await {
                Ok(w) => w,
                Err(e) => {
                    warn!(error = %e, "etcd watch: cannot open; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(r)) => {
                        if r.canceled || r.compact_revision > 0 {
                            warn!(
                                compacted = r.compact_revision,
                                reason = %r.cancel_reason,
                                "etcd watch cancelled; reading the tables anew"
                            );
                            while let Err(e) = self.resync().await {
                                warn!(error = %e, "etcd resync failed; retrying");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                            break;
                        }
                        self.apply_events(&r);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "etcd watch broke; resuming");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    }

    fn apply_events(&self, r: &cdn_proto::etcd::etcdserverpb::WatchResponse) {
        let mut s = self.mirror.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut rev = s.revision;
        for ev in &r.events {
            let Some(kv) = &ev.kv else { continue };
            rev = rev.max(kv.mod_revision);
            let Some((table, key)) = self.parse_key(&kv.key) else {
                continue;
            };
            let put = ev.r#type == EventType::Put as i32;
            match table {
                Table::Execs | Table::Audit if put => {
                    let id = key.parse().unwrap_or(0);
                    let last = if table == Table::Execs {
                        &mut s.last_exec
                    } else {
                        &mut s.last_audit
                    };
                    *last = (*last).max(id);
                }
                t if mirrored(t) => {
                    if put {
                        s.rows.insert((t, key), Bytes::from(kv.value.clone()));
                    } else {
                        s.rows.remove(&(t, key));
                    }
                }
                _ => {}
            }
        }
        if r.events.is_empty() && !r.created {
            // A progress notification: everything up to it was sent.
            rev = rev.max(r.header.as_ref().map_or(0, |h| h.revision));
        }
        s.revision = rev;
        drop(s);
        self.mirror.seen.send_replace(rev);
    }

    /// Waits until the mirror holds every change up to `rev`.
    async fn caught_up(&self, rev: i64) -> bool {
        let mut seen = self.mirror.seen.subscribe();
        tokio::time::timeout(CATCH_UP, seen.wait_for(|r| *r >= rev))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Loaded from the mirror.
    fn loaded_from_mirror(&self) -> Result<Loaded, StoreError> {
        let s = self.mirror.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Loaded {
            last_exec_id: s.last_exec,
            last_audit_id: s.last_audit,
            ..Default::default()
        };
        for ((table, key), value) in &s.rows {
            let what = table.as_str();
            match table {
                Table::Nodes => out.nodes.push(decode::<NodeRecord>(what, key, value)?),
                Table::NodeConfig => out
                    .node_configs
                    .push(decode::<NodeConfigRecord>(what, key, value)?),
                Table::Versions => out
                    .versions
                    .push(decode::<VersionRecord>(what, key, value)?),
                Table::Certs => out.certs.push(decode::<CertRecord>(what, key, value)?),
                Table::Tokens => out.tokens.push(decode::<TokenRecord>(what, key, value)?),
                Table::Rollouts => out
                    .rollouts
                    .push(decode::<RolloutRecord>(what, key, value)?),
                Table::Meta if key == FLEET_DESIRED => {
                    let n: u64 = std::str::from_utf8(value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| corrupt(&format!("{what} {key}"), "not a number"))?;
                    out.fleet_desired = Version::new(n);
                }
                _ => {}
            }
        }
        // Keys are 20-digit numbers: key order is version order.
        Ok(out)
    }

    /// The puts of `entries` (content split into chunks and a header).
    fn ops_of(&self, entries: Vec<Entry>, lease: i64) -> Vec<(RequestOp, usize)> {
        let mut ops = Vec::new();
        for e in entries {
            if e.table == Table::Content {
                let chunks: Vec<&[u8]> = if e.value.is_empty() {
                    Vec::new()
                } else {
                    e.value.chunks(CHUNK).collect()
                };
                for (i, c) in chunks.iter().enumerate() {
                    let key = self.row_key(Table::Content, &format!("{}/{i:04}", e.key));
                    ops.push((put_op(key, c.to_vec(), lease), c.len() + 64));
                }
                let header = serde_json::to_vec(&ContentHeader {
                    chunks: chunks.len(),
                    len: e.value.len(),
                })
                .unwrap_or_default();
                ops.push((
                    put_op(self.row_key(Table::Content, &e.key), header, lease),
                    128,
                ));
            } else {
                let size = e.key.len() + e.value.len() + 64;
                ops.push((
                    put_op(self.row_key(e.table, &e.key), e.value.to_vec(), lease),
                    size,
                ));
            }
        }
        ops
    }

    /// Sends `ops` as transactions of bounded size, each with `compare`.
    async fn send(
        &self,
        ops: Vec<(RequestOp, usize)>,
        compare: Vec<cdn_proto::etcd::etcdserverpb::Compare>,
    ) -> Result<bool, StoreError> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut groups = Vec::new();
        for (op, size) in ops {
            if !batch.is_empty() && (batch.len() >= MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES) {
                groups.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += size;
            batch.push(op);
        }
        if !batch.is_empty() {
            groups.push(batch);
        }
        for success in groups {
            let r = self
                .client
                .txn(TxnRequest {
                    compare: compare.clone(),
                    success,
                    failure: Vec::new(),
                })
                .await?;
            if !r.succeeded {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The CA shared by every master on this store: when the store has one,
    /// it is written into `pki_dir` (so the usual PKI code loads it);
    /// otherwise the one in `pki_dir` (made there first if none) is offered
    /// to the store, create-only, and the store's wins a race. Returns
    /// whether this call put the CA in the store (a first start).
    pub async fn share_ca(
        &self,
        pki_dir: &std::path::Path,
        make_local: impl Fn() -> Result<(), String>,
    ) -> Result<bool, StoreError> {
        let (crt_key, key_key) = (
            self.row_key(Table::Pki, "ca.crt"),
            self.row_key(Table::Pki, "ca.key"),
        );
        let write_local = |crt: &[u8], key: &[u8]| -> Result<(), StoreError> {
            let dir_err = |e: cdn_common::tls::TlsError| StoreError::Open {
                path: pki_dir.display().to_string(),
                message: e.to_string(),
            };
            cdn_common::tls::ensure_private_dir(pki_dir).map_err(|e| StoreError::Open {
                path: pki_dir.display().to_string(),
                message: e.to_string(),
            })?;
            cdn_common::tls::write_private(&pki_dir.join("ca.key"), key).map_err(dir_err)?;
            cdn_common::tls::write_private(&pki_dir.join("ca.crt"), crt).map_err(dir_err)
        };
        let fetch = || async {
            let (crt, _) = self.client.get(&crt_key).await?;
            let (key, _) = self.client.get(&key_key).await?;
            Ok::<_, StoreError>(crt.zip(key))
        };
        if let Some((crt, key)) = fetch().await? {
            write_local(&crt.value, &key.value)?;
            return Ok(false);
        }
        make_local().map_err(|message| StoreError::Open {
            path: pki_dir.display().to_string(),
            message,
        })?;
        let read = |name: &str| {
            std::fs::read(pki_dir.join(name)).map_err(|e| StoreError::Open {
                path: pki_dir.join(name).display().to_string(),
                message: e.to_string(),
            })
        };
        let (crt, key) = (read("ca.crt")?, read("ca.key")?);
        let r = self
            .client
            .txn(TxnRequest {
                compare: vec![created_at(crt_key.clone(), 0)],
                success: vec![
                    put_op(crt_key.clone(), crt, 0),
                    put_op(key_key.clone(), key, 0),
                ],
                failure: Vec::new(),
            })
            .await?;
        if r.succeeded {
            info!("the CA is now in etcd, shared by every master on this prefix");
            return Ok(true);
        }
        // Another master stored its CA first: use that one.
        match fetch().await? {
            Some((crt, key)) => write_local(&crt.value, &key.value).map(|_| false),
            None => Err(StoreError::Io("the CA in etcd vanished".into())),
        }
    }

    /// A put of `value` at `rest` (under the prefix) conditioned on the
    /// fence: for the leader's own bookkeeping keys (last backup).
    pub async fn put_fenced(&self, rest: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let fence = self.fence.current().ok_or(StoreError::Fenced)?;
        let ok = self
            .send(
                vec![(put_op(self.key(rest), value, 0), 0)],
                vec![created_at(self.election_key(), fence)],
            )
            .await?;
        if ok { Ok(()) } else { Err(StoreError::Fenced) }
    }

    /// The value at `rest` under the prefix.
    pub async fn get(&self, rest: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.client.get(&self.key(rest)).await?.0)
    }

    /// Every key under `rest`.
    pub async fn list(&self, rest: &str) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.client.list(&self.key(rest), 0).await?.0)
    }

    async fn content_at(&self, v: &str, revision: i64) -> Result<Option<Bytes>, StoreError> {
        let head_key = self.row_key(Table::Content, v);
        let r = self
            .client
            .range(RangeRequest {
                key: head_key.clone(),
                revision,
                ..Default::default()
            })
            .await?;
        let Some(head) = r.kvs.into_iter().next() else {
            return Ok(None);
        };
        let name = format!("config content {v}");
        let header: ContentHeader = decode("config content", v, &head.value)?;
        let mut prefix = head_key;
        prefix.push(b'/');
        let (chunks, _) = self
            .client
            .list(&prefix, head.mod_revision.max(revision))
            .await?;
        let mut out = Vec::with_capacity(header.len);
        for (i, c) in chunks.iter().take(header.chunks).enumerate() {
            let want = format!("{i:04}");
            if !c.key.ends_with(want.as_bytes()) {
                return Err(corrupt(&name, format!("chunk {i} missing")));
            }
            out.extend_from_slice(&c.value);
        }
        if out.len() != header.len {
            return Err(corrupt(
                &name,
                format!("{} bytes in chunks, header says {}", out.len(), header.len),
            ));
        }
        Ok(Some(Bytes::from(out)))
    }

    /// Records of a numbered table, newest first, that `keep` accepts.
    async fn newest<T: DeserializeOwned>(
        &self,
        table: Table,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let prefix = self.table_prefix(table);
        let mut out = Vec::new();
        let mut before = None;
        while out.len() < limit {
            let page = self.client.newest(&prefix, before.clone(), 256).await?;
            let Some(last) = page.last() else { break };
            before = Some(last.key.clone());
            for kv in &page {
                let rec: T = decode(table.as_str(), &String::from_utf8_lossy(&kv.key), &kv.value)?;
                if keep(&rec) && out.len() < limit {
                    out.push(rec);
                }
            }
            if page.len() < 256 {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Backend for EtcdStore {
    async fn load(&self) -> Result<Loaded, StoreError> {
        let rev = match self.fence.current() {
            Some(r) => r,
            None => self.client.get(&self.election_key()).await?.1,
        };
        if !self.caught_up(rev).await {
            warn!(
                revision = rev,
                "the etcd mirror is behind; reading the tables anew"
            );
            self.resync().await?;
        }
        self.loaded_from_mirror()
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let fence = self.fence.current().ok_or(StoreError::Fenced)?;
        let mut entries = Vec::new();
        let mut deletions = Vec::new();
        for w in writes {
            match w {
                Write::ForgetNode(name) => deletions.push(self.row_key(Table::Nodes, &name)),
                Write::ForgetNodeConfig(name) => {
                    deletions.push(self.row_key(Table::NodeConfig, &name))
                }
                w => entries.extend(entries_of(w)?),
            }
        }
        // The writer names each key once per batch: puts and deletions
        // never touch the same key, so their order does not matter.
        let mut ops = self.ops_of(entries, 0);
        ops.extend(deletions.into_iter().map(|key| {
            let size = key.len() + 64;
            (delete_op(key), size)
        }));
        if self
            .send(ops, vec![created_at(self.election_key(), fence)])
            .await?
        {
            Ok(())
        } else {
            warn!("a commit was refused: the election key is not this master's any more");
            self.fence.clear();
            Err(StoreError::Fenced)
        }
    }

    async fn version_content(&self, v: Version) -> Result<Option<Bytes>, StoreError> {
        self.content_at(&number_key(v.get()), 0).await
    }

    async fn execs(&self, limit: usize) -> Result<Vec<ExecRecord>, StoreError> {
        self.newest(Table::Execs, limit, |_: &ExecRecord| true)
            .await
    }

    async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.newest(Table::Audit, query.limit, |r: &AuditRecord| {
            query.matches(r)
        })
        .await
    }

    async fn export(&self) -> Result<Vec<Entry>, StoreError> {
        let (_, rev) = self.client.get(&self.election_key()).await?;
        let mut out = Vec::new();
        for t in Table::ALL {
            let (kvs, _) = self.client.list(&self.table_prefix(t), rev).await?;
            for kv in kvs {
                let Some((table, key)) = self.parse_key(&kv.key) else {
                    continue;
                };
                if table == Table::Content {
                    if key.contains('/') {
                        continue;
                    }
                    if let Some(content) = self.content_at(&key, rev).await? {
                        out.push(Entry {
                            table,
                            key,
                            value: content,
                        });
                    }
                } else {
                    out.push(Entry {
                        table,
                        key,
                        value: Bytes::from(kv.value),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn import(&self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let state = self.key("s/");
        let r = self
            .client
            .range(RangeRequest {
                key: state.clone(),
                range_end: prefix_end(&state),
                count_only: true,
                ..Default::default()
            })
            .await?;
        if r.count > 0 {
            return Err(StoreError::NotEmpty(format!(
                "{} keys under {}s/ in etcd",
                r.count, self.prefix
            )));
        }
        // Content before the records that name it; nothing while a master
        // leads on this prefix.
        let mut entries = entries;
        entries.sort_by_key(|e| e.table != Table::Content);
        let ops = self.ops_of(entries, 0);
        let ok = self
            .send(ops, vec![created_at(self.election_key(), 0)])
            .await?;
        if ok {
            Ok(())
        } else {
            Err(StoreError::NotEmpty(format!(
                "a master is running on {} (stop every master before a restore)",
                self.prefix
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_its_content_then_its_record() {
        let rec = VersionRecord {
            version: Version::new(3).unwrap(),
            hash: "h".into(),
            size: 4,
            author: "a".into(),
            message: String::new(),
            created_ms: 1,
            targets: Vec::new(),
            fleet_wide: true,
            idempotency_key: String::new(),
        };
        let e = entries_of(Write::Version(rec, Bytes::from_static(b"a: 1"))).unwrap();
        assert_eq!(e[0].table, Table::Content);
        assert_eq!(e[1].table, Table::Versions);
        assert_eq!(e[0].key, "00000000000000000003");
    }
}
