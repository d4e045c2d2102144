//! A small client of etcd's v3 gRPC API: the calls the etcd store and the
//! leader election make (range, transactions, leases, watch), over the
//! clients generated from `proto/etcd/` by protox — so the build needs no
//! `protoc`, which the maintained `etcd-client` crate's build script does.
//!
//! Every member in `store.etcd.endpoints` gets a lazily connected channel.
//! A call goes to the member that last answered; when it cannot be reached
//! or has no quorum (`UNAVAILABLE`, a timeout), the next member is tried,
//! each once. Every call is bounded by `request_timeout`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cdn_proto::etcd::etcdserverpb::kv_client::KvClient;
use cdn_proto::etcd::etcdserverpb::lease_client::LeaseClient;
use cdn_proto::etcd::etcdserverpb::watch_client::WatchClient;
use cdn_proto::etcd::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest,
    TxnResponse, WatchRequest, WatchResponse, compare, request_op,
};
use cdn_proto::etcd::mvccpb::KeyValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status, Streaming};

use crate::config::EtcdConfig;
use crate::store::StoreError;

/// Largest message taken from etcd (a config's content comes back whole).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Keys read per page of a long range.
const PAGE: i64 = 512;

/// A connection to an etcd cluster.
pub struct EtcdClient {
    members: Vec<(String, Channel)>,
    current: AtomicUsize,
    request_timeout: Duration,
}

/// The key after every key starting with `prefix`: the `range_end` of a
/// prefix range.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A put operation for a transaction.
pub fn put_op(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            prev_kv: false,
        })),
    }
}

/// A delete operation on one key, for a transaction.
pub fn delete_op(key: impl Into<Vec<u8>>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.into(),
                range_end: Vec::new(),
                prev_kv: false,
            },
        )),
    }
}

/// A range operation on one key, for a transaction.
pub fn get_op(key: impl Into<Vec<u8>>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

/// `create_revision(key) == rev` (0: the key does not exist).
pub fn created_at(key: impl Into<Vec<u8>>, rev: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.into(),
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
        range_end: Vec::new(),
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Whether another member may answer where this one failed.
fn retriable(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

impl EtcdClient {
    /// Channels to every member of `cfg` (connected on first use).
    pub fn new(cfg: &EtcdConfig) -> Result<Self, StoreError> {
        let tls = if cfg.endpoints.iter().any(|e| e.starts_with("https://")) {
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = &cfg.ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read_file(ca)?));
            }
            if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
                tls = tls.identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
            }
            Some(tls)
        } else {
            None
        };
        let mut members = Vec::new();
        for url in &cfg.endpoints {
            let bad = |e: tonic::transport::Error| StoreError::Open {
                path: url.clone(),
                message: e.to_string(),
            };
            let mut ep = Endpoint::from_shared(url.clone())
                .map_err(bad)?
                .connect_timeout(cfg.dial_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(2))
                .keep_alive_timeout(cfg.dial_timeout)
                .keep_alive_while_idle(true);
            if let Some(tls) = &tls {
                ep = ep.tls_config(tls.clone()).map_err(bad)?;
            }
            members.push((url.clone(), ep.connect_lazy()));
        }
        if members.is_empty() {
            return Err(StoreError::Open {
                path: "store.etcd.endpoints".into(),
                message: "no endpoint".into(),
            });
        }
        Ok(Self {
            members,
            current: AtomicUsize::new(0),
            request_timeout: cfg.request_timeout,
        })
    }

    /// Runs `call` against the current member, then each other member once
    /// while the failure is one another member may not have.
    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T, StoreError>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.call_within(what, self.request_timeout, call).await
    }

    /// [`EtcdClient::call`] with `per_member` as each member's time limit.
    async fn call_within<T, F, Fut>(
        &self,
        what: &str,
        per_member: Duration,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let n = self.members.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let (url, channel) = &self.members[idx];
            match tokio::time::timeout(per_member, call(channel.clone())).await {
                Ok(Ok(v)) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(s)) if retriable(&s) => last = format!("{url}: {}", s.message()),
                Ok(Err(s)) => {
                    return Err(StoreError::Io(format!(
                        "etcd {what} at {url}: {}",
                        s.message()
                    )));
                }
                Err(_) => {
                    last = format!(
                        "{url}: no answer within {}",
                        cdn_common::duration::short(per_member)
                    )
                }
            }
        }
        self.current.store((start + 1) % n, Ordering::Relaxed);
        Err(StoreError::Unavailable(format!(
            "etcd {what}: no member answered ({last})"
        )))
    }

    fn kv(ch: Channel) -> KvClient<Channel> {
        KvClient::new(ch).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// One range request.
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.call("range", |ch| {
            let req = req.clone();
            async move { Self::kv(ch).range(req).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// The value and create revision of `key`, and the store's revision.
    pub async fn get(&self, key: &[u8]) -> Result<(Option<KeyValue>, i64), StoreError> {
        let r = self
            .range(RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            })
            .await?;
        let rev = r.header.map_or(0, |h| h.revision);
        Ok((r.kvs.into_iter().next(), rev))
    }

    /// Every key starting with `prefix`, as of one revision (the current
    /// one when `revision` is 0), in key order; and that revision.
    pub async fn list(
        &self,
        prefix: &[u8],
        revision: i64,
    ) -> Result<(Vec<KeyValue>, i64), StoreError> {
        let end = prefix_end(prefix);
        let mut from = prefix.to_vec();
        let mut revision = revision;
        let mut out = Vec::new();
        loop {
            let r = self
                .range(RangeRequest {
                    key: from.clone(),
                    range_end: end.clone(),
                    limit: PAGE,
                    revision,
                    ..Default::default()
                })
                .await?;
            if revision == 0 {
                revision = r.header.as_ref().map_or(0, |h| h.revision);
            }
            let more = r.more;
            if let Some(last) = r.kvs.last() {
                from = last.key.clone();
                from.push(0);
            }
            out.extend(r.kvs);
            if !more {
                return Ok((out, revision));
            }
        }
    }

    /// The last key (in key order) starting with `prefix`.
    pub async fn last_key(
        &self,
        prefix: &[u8],
        revision: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        use cdn_proto::etcd::etcdserverpb::range_request::{SortOrder, SortTarget};
        let r = self
            .range(RangeRequest {
                key: prefix.to_vec(),
                range_end: prefix_end(prefix),
                limit: 1,
                revision,
                sort_order: SortOrder::Descend as i32,
                sort_target: SortTarget::Key as i32,
                keys_only: true,
                ..Default::default()
            })
            .await?;
        Ok(r.kvs.into_iter().next().map(|kv| kv.key))
    }

    /// The newest `limit` keys with values starting with `prefix`, newest
    /// (highest key) first, below `before` when given.
    pub async fn newest(
        &self,
        prefix: &[u8],
        before: Option<Vec<u8>>,
        limit: i64,
    ) -> Result<Vec<KeyValue>, StoreError> {
        use cdn_proto::etcd::etcdserverpb::range_request::{SortOrder, SortTarget};
        let r = self
            .range(RangeRequest {
                key: prefix.to_vec(),
                range_end: before.unwrap_or_else(|| prefix_end(prefix)),
                limit,
                sort_order: SortOrder::Descend as i32,
                sort_target: SortTarget::Key as i32,
                ..Default::default()
            })
            .await?;
        Ok(r.kvs)
    }

    /// One transaction.
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, StoreError> {
        self.call("transaction", |ch| {
            let req = req.clone();
            async move { Self::kv(ch).txn(req).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Drops the history before `revision` (etcd keeps every revision
    /// until compacted).
    pub async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        use cdn_proto::etcd::etcdserverpb::CompactionRequest;
        self.call("compaction", |ch| async move {
            Self::kv(ch)
                .compact(CompactionRequest {
                    revision,
                    physical: false,
                })
                .await
                .map(|_| ())
        })
        .await
    }

    /// A new lease of `ttl` (whole seconds, at least 1).
    pub async fn grant(&self, ttl: Duration) -> Result<i64, StoreError> {
        let ttl = ttl.as_secs().max(1) as i64;
        let r = self
            .call("lease grant", |ch| async move {
                LeaseClient::new(ch)
                    .lease_grant(LeaseGrantRequest { ttl, id: 0 })
                    .await
                    .map(|r| r.into_inner())
            })
            .await?;
        if !r.error.is_empty() {
            return Err(StoreError::Io(format!("etcd lease grant: {}", r.error)));
        }
        Ok(r.id)
    }

    /// Gives lease `id` up (its keys go at once).
    pub async fn revoke(&self, id: i64) -> Result<(), StoreError> {
        self.call("lease revoke", |ch| async move {
            LeaseClient::new(ch)
                .lease_revoke(LeaseRevokeRequest { id })
                .await
                .map(|_| ())
        })
        .await
    }

    /// Renews lease `id` once: its remaining TTL in seconds (0 or less:
    /// the lease is gone). A stream per renewal keeps the failover across
    /// members simple; renewals are seconds apart. Each member gets
    /// `per_member` to answer, so one unreachable member does not cost the
    /// lease.
    pub async fn keep_alive(&self, id: i64, per_member: Duration) -> Result<i64, StoreError> {
        let per_member = per_member.min(self.request_timeout);
        let r: LeaseKeepAliveResponse = self
            .call_within("lease keep-alive", per_member, |ch| async move {
                let mut client = LeaseClient::new(ch);
                let req = tokio_stream::iter([LeaseKeepAliveRequest { id }]);
                let mut stream = client.lease_keep_alive(req).await?.into_inner();
                match stream.message().await? {
                    Some(r) => Ok(r),
                    None => Err(Status::unavailable("keep-alive stream ended")),
                }
            })
            .await?;
        Ok(r.ttl)
    }

    /// Opens a watch of every key starting with `prefix` from `revision`.
    pub async fn watch(
        &self,
        prefix: &[u8],
        revision: i64,
    ) -> Result<
        (
            tokio::sync::mpsc::Sender<WatchRequest>,
            Streaming<WatchResponse>,
        ),
        StoreError,
    > {
        use cdn_proto::etcd::etcdserverpb::{WatchCreateRequest, watch_request};
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: prefix.to_vec(),
                    range_end: prefix_end(prefix),
                    start_revision: revision,
                    progress_notify: true,
                    prev_kv: false,
                },
            )),
        };
        self.call("watch", |ch| {
            let create = create.clone();
            async move {
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                tx.send(create)
                    .await
                    .map_err(|_| Status::internal("watch request not sent"))?;
                let stream = WatchClient::new(ch)
                    .max_decoding_message_size(MAX_RESPONSE_BYTES)
                    .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await?
                    .into_inner();
                Ok((tx, stream))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_cover_the_prefix() {
        assert_eq!(prefix_end(b"/cdn/"), b"/cdn0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
