//! The store's writer: the one task that commits to the [`Backend`], and
//! the [`Store`] handle the owners of state write through.
//!
//! A write is reserved first ([`Store::reserve`], which waits while the
//! queue is full: backpressure), then sent synchronously
//! ([`Reserved::send`]) — typically while the sender still holds its own
//! lock on the state the write copies, so two writes of one record reach
//! the queue in the order they were made — and then awaited ([`Pending`]):
//! it resolves once the batch it went out in is durable. The writer takes
//! everything queued when it is free and commits it as one transaction.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{AuditQuery, AuditRecord, Backend, ExecRecord, Loaded, StoreError, Write};
use cdn_proto::Version;

/// Requests that may wait for the writer; more wait in [`Store::reserve`].
pub const WRITE_QUEUE_DEPTH: usize = 1024;

/// Most requests committed in one transaction.
const MAX_BATCH_REQUESTS: usize = 4096;

struct Request {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle through which the owners of state write and read the store.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Request>,
    backend: Arc<dyn Backend>,
}

/// The running writer; [`StoreWriter::close`] drains it and waits for it.
pub struct StoreWriter {
    handle: JoinHandle<()>,
    closing: CancellationToken,
}

/// Room for one request in the writer's queue.
pub struct Reserved<'a> {
    permit: mpsc::Permit<'a, Request>,
}

/// A sent write; resolves when it is durable (or failed).
pub struct Pending {
    rx: Option<oneshot::Receiver<Result<(), StoreError>>>,
}

impl Store {
    /// Starts the writer of `backend`.
    pub fn start(backend: Arc<dyn Backend>) -> (Self, StoreWriter) {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_DEPTH);
        let closing = CancellationToken::new();
        let handle = tokio::spawn(run(Arc::clone(&backend), rx, closing.clone()));
        (Self { tx, backend }, StoreWriter { handle, closing })
    }

    /// Everything the owners keep in memory.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        self.backend.load().await
    }

    /// Waits for room in the queue.
    pub async fn reserve(&self) -> Result<Reserved<'_>, StoreError> {
        let permit = self.tx.reserve().await.map_err(|_| StoreError::Closed)?;
        Ok(Reserved { permit })
    }

    /// Writes `writes` and waits until they are durable. For writes whose
    /// order against other writes of the same record matters, use
    /// [`Store::reserve`] and send under the record's lock.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.reserve().await?.send(writes).await
    }

    /// The content of config version `v`.
    pub async fn version_content(&self, v: Version) -> Result<Option<bytes::Bytes>, StoreError> {
        self.backend.version_content(v).await
    }

    /// The newest `limit` exec sessions, newest first.
    pub async fn execs(&self, limit: usize) -> Result<Vec<ExecRecord>, StoreError> {
        self.backend.execs(limit).await
    }

    /// The newest audit entries `query` wants, newest first.
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.backend.audit(query).await
    }

    /// Every record as of one consistent point (backups); reads beside the
    /// writer, never through its queue.
    pub async fn export(&self) -> Result<Vec<super::Entry>, StoreError> {
        self.backend.export().await
    }
}

impl Reserved<'_> {
    /// Queues `writes` now (no waiting); await the result for durability.
    /// Nothing is queued for an empty list.
    pub fn send(self, writes: Vec<Write>) -> Pending {
        if writes.is_empty() {
            return Pending { rx: None };
        }
        let (done, rx) = oneshot::channel();
        self.permit.send(Request { writes, done });
        Pending { rx: Some(rx) }
    }
}

impl Future for Pending {
    type Output = Result<(), StoreError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.rx.as_mut() {
            None => Poll::Ready(Ok(())),
            Some(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(StoreError::Closed))),
        }
    }
}

impl StoreWriter {
    /// Commits what is queued, refuses later writes ([`StoreError::Closed`])
    /// and waits for the writer to end.
    pub async fn close(self) {
        self.closing.cancel();
        if let Err(e) = self.handle.await {
            warn!(error = %e, "store writer failed");
        }
    }
}

/// Test-only: when this environment variable names a path, every write
/// fails as a full disk would for as long as that path exists. The
/// integration tests use it to check what the master does when its store
/// cannot write (`tests/tests/faults.rs`: nothing runs unrecorded) at a
/// moment of their choosing, which a real full disk does not give: a
/// copy-on-write store reuses the pages its last transactions freed, so a
/// small write may still fit on a full disk. Never set it in production.
pub const TEST_FAIL_WRITES_WHILE: &str = "MASTERD_TEST_FAIL_WRITES_WHILE";

/// The writer: takes everything queued, commits it as one transaction,
/// answers every request with the outcome.
async fn run(
    backend: Arc<dyn Backend>,
    mut rx: mpsc::Receiver<Request>,
    closing: CancellationToken,
) {
    let fail_while = std::env::var_os(TEST_FAIL_WRITES_WHILE).map(std::path::PathBuf::from);
    loop {
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = closing.cancelled() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_REQUESTS {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let writes = last_of_each_key(batch.iter_mut().flat_map(|r| r.writes.drain(..)));
        let injected = fail_while.as_ref().is_some_and(|p| p.exists());
        let result = if injected {
            Err(StoreError::Io(format!(
                "No space left on device (os error 28) [injected: {TEST_FAIL_WRITES_WHILE}]"
            )))
        } else {
            backend.commit(writes).await
        };
        if let Err(e) = &result {
            warn!(error = %e, requests = batch.len(), "store write failed");
        }
        for r in batch {
            let _ = r.done.send(result.clone());
        }
    }
}

/// The writes in their order, keeping only the last write of each key: a
/// transaction names every key once (etcd refuses duplicates in one `Txn`),
/// and the last write of a record is its newest state.
fn last_of_each_key(writes: impl Iterator<Item = Write>) -> Vec<Write> {
    let all: Vec<Write> = writes.collect();
    let mut seen = HashSet::with_capacity(all.len());
    let mut out: Vec<Write> = all
        .into_iter()
        .rev()
        .filter(|w| seen.insert(key_of(w)))
        .collect();
    out.reverse();
    out
}

/// The key a write puts.
fn key_of(w: &Write) -> (u8, String) {
    match w {
        // A deletion has the key of the record it deletes: the newest of
        // the two in a batch wins.
        Write::Node(r) => (0, r.name.clone()),
        Write::ForgetNode(name) => (0, name.clone()),
        Write::NodeConfig(r) => (1, r.name.clone()),
        Write::ForgetNodeConfig(name) => (1, name.clone()),
        Write::Version(r, _) => (2, r.version.to_string()),
        Write::FleetDesired(_) => (3, String::new()),
        Write::Token(r) => (4, r.id.clone()),
        Write::Cert(r) => (5, r.fingerprint.clone()),
        Write::Audit(r) => (6, r.id.to_string()),
        Write::Exec(r) => (7, r.exec_id.to_string()),
        Write::Rollout(r) => (8, r.id.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EmbeddedStore, NodeRecord};

    fn node(name: &str, session: u64) -> Write {
        Write::Node(NodeRecord {
            name: name.into(),
            last_session_id: session,
            ..Default::default()
        })
    }

    #[test]
    fn a_batch_keeps_the_newest_write_of_each_record() {
        let w = last_of_each_key(vec![node("a", 1), node("b", 1), node("a", 2)].into_iter());
        let got: Vec<(String, u64)> = w
            .iter()
            .map(|w| match w {
                Write::Node(r) => (r.name.clone(), r.last_session_id),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, [("b".to_string(), 1), ("a".to_string(), 2)]);
        // A deletion and a put of one record: the later one stays.
        let w = last_of_each_key(
            vec![node("a", 1), Write::ForgetNode("a".into()), node("b", 1)].into_iter(),
        );
        assert!(
            matches!(&w[..], [Write::ForgetNode(a), Write::Node(b)] if a == "a" && b.name == "b")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_durable_and_closing_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let (store, writer) = Store::start(backend);
        let writes: Vec<_> = (0..300)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.write(vec![node(&format!("n-{i:03}"), i)]).await })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
        assert_eq!(store.load().await.unwrap().nodes.len(), 300);
        writer.close().await;
        assert!(matches!(
            store.write(vec![node("late", 1)]).await,
            Err(StoreError::Closed)
        ));
    }
}
