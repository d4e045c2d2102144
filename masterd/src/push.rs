//! Config distribution: immutable versions, desired state per node, and the
//! fan-out of a version over the agents' open command streams.
//!
//! A push validates the YAML, stores a new version together with the new
//! desired version of every target in one store transaction, then sends the
//! version to every online target in parallel (no new connection: each
//! agent's command stream is already open) and reports each acknowledgement
//! as it arrives. Offline targets get it when they come back: on stream
//! attach, and through the heartbeat reply (`config_updated`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cdn_proto::v1::{
    ApplyConfig, CommandResponse, ConfigPushEvent, ConfigVersionInfo, NodeApplyResult, PushDone,
    PushStored, command_response, config_push_event,
};
use tokio::sync::{broadcast, mpsc};
use tonic::Status;
use tracing::{debug, info, warn};

use crate::config::{Algorithm, CompressionConfig};
use crate::error::MasterError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{ConfigVersion, NodeStore};

use cdn_proto::limits::MAX_CONFIG_BYTES;
/// Content smaller than this is sent uncompressed.
pub const COMPRESS_MIN_BYTES: usize = 1024;
/// Time a fan-out may wait for room in one agent's command queue.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a push re-reads node state for answers whose ack was lost.
const STATE_RECHECK: Duration = Duration::from_millis(250);
/// How long a push nobody waits for still collects answers (for metrics).
const UNWATCHED_WAIT: Duration = Duration::from_secs(60);
/// Wire payloads kept ready for re-sending.
const WIRE_CACHE_ENTRIES: usize = 8;

/// Events streamed back to cdnctl.
pub type EventTx = mpsc::Sender<Result<ConfigPushEvent, Status>>;

/// A version ready to send: content as it goes on the wire.
#[derive(Debug, Clone)]
pub struct WirePayload {
    pub version: u64,
    pub hash: String,
    pub size: u64,
    pub encoding: &'static str,
    pub bytes: Bytes,
}

pub use cdn_common::tls::sha256_hex;

/// Checks that `content` is one YAML document; the error names line and column.
pub fn validate_yaml(content: &[u8]) -> Result<(), MasterError> {
    if content.len() > MAX_CONFIG_BYTES {
        return Err(MasterError::Invalid(format!(
            "config is {} bytes, at most {MAX_CONFIG_BYTES} allowed",
            content.len()
        )));
    }
    let text = std::str::from_utf8(content)
        .map_err(|e| MasterError::Invalid(format!("config is not UTF-8: {e}")))?;
    cdn_common::config::check_yaml_syntax(text)
        .map_err(|e| MasterError::Invalid(format!("config is not valid YAML: {e}")))
}

/// Content as it goes on the wire in `algorithm` at `level`, when that is
/// worth it (at least `min_size` bytes, and smaller after); else as it is.
fn compress(content: &[u8], c: &CompressionConfig, algorithm: Algorithm) -> (&'static str, Bytes) {
    if content.len() as u64 >= c.min_size {
        let packed = match algorithm {
            Algorithm::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(c.level));
                enc.write_all(content).and_then(|_| enc.finish()).ok()
            }
            Algorithm::Zstd => zstd::bulk::compress(content, c.level as i32).ok(),
            Algorithm::None => None,
        };
        if let Some(p) = packed
            && p.len() < content.len()
        {
            return (algorithm.wire_name(), Bytes::from(p));
        }
    }
    ("", Bytes::copy_from_slice(content))
}

/// The encoding to send a node that decodes `accepts`: the configured one
/// if it can, else gzip if it can, else none. Agents that say nothing
/// (older ones) decode gzip.
pub fn negotiate(preferred: Algorithm, accepts: &[String]) -> Algorithm {
    let can = |a: Algorithm| {
        a == Algorithm::None
            || (accepts.is_empty() && a == Algorithm::Gzip)
            || accepts.iter().any(|x| x == a.wire_name())
    };
    [preferred, Algorithm::Gzip]
        .into_iter()
        .find(|a| can(*a))
        .unwrap_or(Algorithm::None)
}

fn payload_of(version: &ConfigVersion, (encoding, bytes): (&'static str, Bytes)) -> WirePayload {
    WirePayload {
        version: version.version,
        hash: version.hash.clone(),
        size: version.size,
        encoding,
        bytes,
    }
}

#[cfg(test)]
fn encode(version: &ConfigVersion, content: &[u8]) -> WirePayload {
    let c = CompressionConfig::default();
    payload_of(version, compress(content, &c, c.algorithm))
}

/// Validates, hashes and compresses `content` off the async workers, the
/// YAML check and the hash + gzip in parallel.
async fn prepare(
    content: Vec<u8>,
    c: CompressionConfig,
) -> Result<(Vec<u8>, String, (&'static str, Bytes)), MasterError> {
    let content = Arc::new(content);
    let check = {
        let c = Arc::clone(&content);
        tokio::task::spawn_blocking(move || validate_yaml(&c))
    };
    let digest = {
        let (c, cfg) = (Arc::clone(&content), c);
        tokio::task::spawn_blocking(move || (sha256_hex(&c), compress(&c, &cfg, cfg.algorithm)))
    };
    let joined =
        |e: tokio::task::JoinError| MasterError::Internal(format!("push task failed: {e}"));
    check.await.map_err(joined)??;
    let (hash, wire) = digest.await.map_err(joined)?;
    let content = Arc::try_unwrap(content).unwrap_or_else(|c| c.as_ref().clone());
    Ok((content, hash, wire))
}

/// Stored versions and the fan-out machinery.
pub struct Configs {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    store: Arc<dyn NodeStore>,
    versions: RwLock<BTreeMap<u64, ConfigVersion>>,
    wire: Mutex<HashMap<(u64, Algorithm), WirePayload>>,
    compression: RwLock<CompressionConfig>,
    /// Cancelled when the master shuts down: waiting pushes report at once.
    stopping: tokio_util::sync::CancellationToken,
    /// Serialises pushes so version numbers and desired state stay ordered.
    push_lock: tokio::sync::Mutex<()>,
}

/// What one push or rollback asks for.
#[derive(Debug)]
pub struct PushPlan {
    pub targets: Vec<String>,
    pub fleet_wide: bool,
    pub wait: Option<Duration>,
}

impl Configs {
    /// Loads version metadata from the store.
    pub fn load(
        registry: Arc<Registry>,
        store: Arc<dyn NodeStore>,
        metrics: Arc<Metrics>,
        compression: CompressionConfig,
    ) -> Result<Self, MasterError> {
        let versions = store
            .load_versions()?
            .into_iter()
            .map(|v| (v.version, v))
            .collect();
        Ok(Self {
            registry,
            metrics,
            store,
            versions: RwLock::new(versions),
            wire: Mutex::new(HashMap::new()),
            compression: RwLock::new(compression),
            stopping: tokio_util::sync::CancellationToken::new(),
            push_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn version(&self, v: u64) -> Option<ConfigVersion> {
        self.versions.read().ok()?.get(&v).cloned()
    }

    /// The hash of version `v`, if stored.
    pub fn hash_of(&self, v: u64) -> Option<String> {
        self.versions.read().ok()?.get(&v).map(|x| x.hash.clone())
    }

    /// Metadata of the newest `limit` versions, newest first (0 = all).
    pub fn history(&self, limit: usize) -> Vec<ConfigVersionInfo> {
        let versions = match self.versions.read() {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        let take = if limit == 0 { usize::MAX } else { limit };
        versions.values().rev().take(take).map(info).collect()
    }

    /// Metadata and content of version `v`.
    pub async fn content(&self, v: u64) -> Result<(ConfigVersionInfo, Vec<u8>), MasterError> {
        let meta = self.version(v).ok_or(MasterError::VersionNotFound(v))?;
        let store = Arc::clone(&self.store);
        let content = tokio::task::spawn_blocking(move || store.version_content(v))
            .await
            .map_err(|e| MasterError::Internal(format!("store task failed: {e}")))??
            .ok_or(MasterError::VersionNotFound(v))?;
        Ok((info(&meta), content))
    }

    /// The compression settings in force.
    fn compression(&self) -> CompressionConfig {
        self.compression
            .read()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// New compression settings from a reloaded config (SIGHUP): payloads
    /// encoded under the old ones are dropped from the cache.
    pub fn set_compression(&self, c: CompressionConfig) {
        if let Ok(mut cur) = self.compression.write() {
            *cur = c;
        }
        if let Ok(mut w) = self.wire.lock() {
            w.clear();
        }
    }

    /// The master is shutting down: pushes still waiting for answers report
    /// their pending nodes now (their desired version is already stored).
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Counts a payload an agent fetched itself.
    pub fn count_fetch(&self, payload: &WirePayload) {
        self.metrics
            .config_sent(payload.size, payload.bytes.len() as u64);
    }

    /// The wire form of version `v` in the configured encoding.
    pub async fn payload(&self, v: u64) -> Result<WirePayload, MasterError> {
        self.payload_in(v, self.compression().algorithm).await
    }

    /// The wire form of version `v` for a node that decodes `accepts`.
    pub async fn payload_for(
        &self,
        v: u64,
        accepts: &[String],
    ) -> Result<WirePayload, MasterError> {
        self.payload_in(v, negotiate(self.compression().algorithm, accepts))
            .await
    }

    /// The wire form of version `v` in `algorithm`, from the cache or the
    /// store.
    async fn payload_in(&self, v: u64, algorithm: Algorithm) -> Result<WirePayload, MasterError> {
        if let Some(p) = self
            .wire
            .lock()
            .ok()
            .and_then(|w| w.get(&(v, algorithm)).cloned())
        {
            return Ok(p);
        }
        let meta = self.version(v).ok_or(MasterError::VersionNotFound(v))?;
        let (_, content) = self.content(v).await?;
        let c = self.compression();
        let wire = tokio::task::spawn_blocking(move || compress(&content, &c, algorithm))
            .await
            .map_err(|e| MasterError::Internal(format!("compress task failed: {e}")))?;
        let payload = payload_of(&meta, wire);
        self.remember(algorithm, payload.clone());
        Ok(payload)
    }

    fn remember(&self, algorithm: Algorithm, payload: WirePayload) {
        if let Ok(mut w) = self.wire.lock() {
            if w.len() >= WIRE_CACHE_ENTRIES
                && let Some(oldest) = w.keys().min().copied()
            {
                w.remove(&oldest);
            }
            w.insert((payload.version, algorithm), payload);
        }
    }

    /// Sends version `v` to `node` over its command stream, if it is open.
    /// Returns false when the node has no open stream.
    pub async fn send_to(&self, node: &str, payload: &WirePayload) -> bool {
        let Some(tx) = self.registry.command_tx(node) else {
            return false;
        };
        // A node that cannot decode the fleet's encoding gets its own.
        let accepts = self.registry.accept_encodings(node);
        let fallback;
        let algorithm = self.compression().algorithm;
        let payload = if negotiate(algorithm, &accepts) == algorithm {
            payload
        } else {
            match self.payload_for(payload.version, &accepts).await {
                Ok(p) => {
                    fallback = p;
                    &fallback
                }
                Err(e) => {
                    warn!(node, error = %e, "cannot encode config for this node");
                    return false;
                }
            }
        };
        let msg = CommandResponse {
            command_id: payload.version,
            body: Some(command_response::Body::ApplyConfig(ApplyConfig {
                version: payload.version.to_string(),
                hash: payload.hash.clone(),
                content: payload.bytes.clone(),
                encoding: payload.encoding.to_string(),
                size: payload.size,
            })),
        };
        match tokio::time::timeout(ENQUEUE_TIMEOUT, tx.send(Ok(msg))).await {
            Ok(Ok(())) => {
                self.metrics
                    .config_sent(payload.size, payload.bytes.len() as u64);
                true
            }
            Ok(Err(_)) => false,
            Err(_) => {
                warn!(
                    node,
                    "command queue full; config not sent, the heartbeat will retry"
                );
                false
            }
        }
    }

    /// Brings `node` to its desired version `v` (stream just attached).
    pub async fn catch_up(&self, node: &str, v: u64) {
        match self.payload(v).await {
            Ok(p) => {
                if self.send_to(node, &p).await {
                    debug!(node, version = v, "sent desired config on reconnect");
                }
            }
            Err(e) => warn!(node, version = v, error = %e, "cannot load desired config"),
        }
    }

    /// Stores `content` as a new version desired by `plan.targets`, fans it
    /// out, and streams progress on `events`.
    pub async fn push(
        &self,
        content: Vec<u8>,
        author: String,
        message: String,
        plan: PushPlan,
        dry_run: bool,
        events: EventTx,
    ) -> Result<(), MasterError> {
        let started = Instant::now();
        let (content, hash, wire) = prepare(content, self.compression()).await?;
        let guard = self.push_lock.lock().await;
        let next = self
            .versions
            .read()
            .map_err(|_| MasterError::Internal("version index poisoned".into()))?
            .keys()
            .next_back()
            .map_or(1, |v| v + 1);
        // Unchanged: every target already desires a version with this content.
        let desired = self.registry.desired_versions(&plan.targets);
        let same = desired.first().copied().filter(|d| {
            *d != 0
                && desired.iter().all(|x| x == d)
                && self.hash_of(*d).as_deref() == Some(hash.as_str())
        });
        if let Some(v) = same {
            // Already desired everywhere: store nothing. Nodes that join
            // later get it too when this push was for the whole fleet.
            if plan.fleet_wide && !dry_run && self.registry.fleet_desired() != v {
                self.registry.set_desired(&[], v, None, true).await?;
            }
            drop(guard);
            let all_applied = self
                .registry
                .applied_versions(&plan.targets)
                .iter()
                .all(|a| *a == v);
            if all_applied || dry_run {
                send(
                    &events,
                    stored(v, &hash, content.len(), &plan.targets, true, dry_run, 0),
                )
                .await;
                send(&events, done(0, 0, 0)).await;
                return Ok(());
            }
            // Some targets are not there yet: send it again and report.
            let payload = self.payload(v).await?;
            self.fan_out(payload, plan, started, events).await;
            return Ok(());
        }
        let meta = ConfigVersion {
            version: next,
            hash: hash.clone(),
            size: content.len() as u64,
            author,
            message,
            created_ms: cdn_common::unix_millis_now(),
            targets: plan.targets.clone(),
            fleet_wide: plan.fleet_wide,
        };
        let payload = payload_of(&meta, wire);
        if dry_run {
            drop(guard);
            let wire = payload.bytes.len() as u64;
            send(
                &events,
                stored(next, &hash, content.len(), &plan.targets, false, true, wire),
            )
            .await;
            send(&events, done(0, 0, plan.targets.len() as u32)).await;
            return Ok(());
        }
        self.registry
            .set_desired(
                &plan.targets,
                next,
                Some((meta.clone(), content)),
                plan.fleet_wide,
            )
            .await?;
        if let Ok(mut v) = self.versions.write() {
            v.insert(next, meta);
        }
        drop(guard);
        self.remember(self.compression().algorithm, payload.clone());
        info!(
            version = next,
            targets = plan.targets.len(),
            size = payload.size,
            wire_bytes = payload.bytes.len(),
            "config version stored"
        );
        self.fan_out(payload, plan, started, events).await;
        Ok(())
    }

    /// Makes stored version `v` desired again for `plan.targets`.
    pub async fn rollback(
        &self,
        v: u64,
        plan: PushPlan,
        events: EventTx,
    ) -> Result<(), MasterError> {
        let started = Instant::now();
        let payload = self.payload(v).await?;
        {
            let _guard = self.push_lock.lock().await;
            self.registry
                .set_desired(&plan.targets, v, None, plan.fleet_wide)
                .await?;
        }
        info!(
            version = v,
            targets = plan.targets.len(),
            "config rolled back"
        );
        self.fan_out(payload, plan, started, events).await;
        Ok(())
    }

    /// Outcomes of `version` that node state already shows for `waiting`.
    fn settled(&self, waiting: &HashMap<String, ()>, version: u64) -> Vec<(String, bool, String)> {
        let failed_prefix = format!("version {version}: ");
        waiting
            .keys()
            .filter_map(|n| {
                let v = self.registry.get(n)?;
                if v.record.applied_version == version {
                    Some((n.clone(), true, String::new()))
                } else {
                    v.record
                        .config_error
                        .strip_prefix(&failed_prefix)
                        .map(|e| (n.clone(), false, e.to_string()))
                }
            })
            .collect()
    }

    /// Reports the stored version, sends `payload` to every online target
    /// and reports acknowledgements until all answered or the wait ends.
    async fn fan_out(
        &self,
        payload: WirePayload,
        plan: PushPlan,
        started: Instant,
        events: EventTx,
    ) {
        let mut acks = self.registry.subscribe_acks();
        let version = payload.version;
        let wire = payload.bytes.len() as u64;
        let size = payload.size as usize;
        send(
            &events,
            stored(
                version,
                &payload.hash,
                size,
                &plan.targets,
                false,
                false,
                wire,
            ),
        )
        .await;
        let mut waiting: HashMap<String, ()> = HashMap::new();
        let mut pending = 0u32;
        let sends = plan.targets.iter().map(|node| {
            let payload = &payload;
            async move { (node, self.send_to(node, payload).await) }
        });
        for (node, sent) in futures::future::join_all(sends).await {
            if sent {
                waiting.insert(node.clone(), ());
            } else {
                pending += 1;
                send(
                    &events,
                    node_result(
                        node,
                        cdn_proto::v1::ApplyResult::Pending,
                        version,
                        "node is offline; it gets this version when it reconnects",
                        started,
                    ),
                )
                .await;
            }
        }
        // Nobody may be listening (--no-wait): answers are still collected
        // for the node state and the latency metrics.
        let wait = plan.wait.unwrap_or(UNWATCHED_WAIT);
        let (mut applied, mut failed) = (0u32, 0u32);
        let deadline = tokio::time::Instant::now() + wait;
        let mut recheck = tokio::time::interval(STATE_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut why_late = format!("no answer within {}", cdn_common::duration::short(wait));
        while !waiting.is_empty() {
            // Answers come as acks; node state is re-read too, because an
            // ack can be lost when a node reconnects mid-apply (it then
            // reports its applied version in the heartbeat instead).
            let outcomes: Vec<(String, bool, String)> = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = self.stopping.cancelled() => {
                    why_late = "master shutting down; the node gets this version when it reconnects".into();
                    break;
                }
                _ = recheck.tick() => self.settled(&waiting, version),
                ev = acks.recv() => match ev {
                    Ok(ack) if ack.version == version && waiting.contains_key(&ack.node_id) => {
                        vec![(ack.node_id, ack.success, ack.error)]
                    }
                    Ok(_) => Vec::new(),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.settled(&waiting, version),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            for (node, success, error) in outcomes {
                if waiting.remove(&node).is_none() {
                    continue;
                }
                self.metrics
                    .node_answer(started.elapsed().as_secs_f64(), success);
                let result = if success {
                    applied += 1;
                    cdn_proto::v1::ApplyResult::Applied
                } else {
                    failed += 1;
                    cdn_proto::v1::ApplyResult::Failed
                };
                send(
                    &events,
                    node_result(&node, result, version, &error, started),
                )
                .await;
            }
        }
        self.metrics
            .push_done(started.elapsed().as_secs_f64(), waiting.len() as u64);
        let mut late: Vec<&String> = waiting.keys().collect();
        late.sort();
        for n in late {
            pending += 1;
            send(
                &events,
                node_result(
                    n,
                    cdn_proto::v1::ApplyResult::Pending,
                    version,
                    &why_late,
                    started,
                ),
            )
            .await;
        }
        send(&events, done(applied, failed, pending)).await;
    }
}

fn info(v: &ConfigVersion) -> ConfigVersionInfo {
    ConfigVersionInfo {
        version: v.version,
        hash: v.hash.clone(),
        size: v.size,
        author: v.author.clone(),
        message: v.message.clone(),
        created_ms: v.created_ms,
        targets: v.targets.clone(),
    }
}

async fn send(events: &EventTx, ev: config_push_event::Event) {
    // A client that stopped listening (--no-wait) is not an error.
    let _ = events.send(Ok(ConfigPushEvent { event: Some(ev) })).await;
}

fn stored(
    version: u64,
    hash: &str,
    size: usize,
    targets: &[String],
    unchanged: bool,
    dry_run: bool,
    wire_bytes: u64,
) -> config_push_event::Event {
    config_push_event::Event::Stored(PushStored {
        version,
        hash: hash.to_string(),
        size: size as u64,
        targets: targets.to_vec(),
        unchanged,
        dry_run,
        wire_bytes,
    })
}

fn node_result(
    node: &str,
    result: cdn_proto::v1::ApplyResult,
    version: u64,
    error: &str,
    started: Instant,
) -> config_push_event::Event {
    let us = started.elapsed().as_micros() as u64;
    config_push_event::Event::Node(NodeApplyResult {
        node: node.to_string(),
        result: result.into(),
        version,
        error: error.to_string(),
        duration_ms: us / 1000,
        duration_us: us,
    })
}

fn done(applied: u32, failed: u32, pending: u32) -> config_push_event::Event {
    config_push_event::Event::Done(PushDone {
        applied,
        failed,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_errors_name_line_and_column() {
        let e = validate_yaml(b"a: 1\nb: [2\n").unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
        assert!(validate_yaml(b"a: 1\n").is_ok());
    }

    #[test]
    fn large_content_is_gzipped_and_small_is_not() {
        let meta = ConfigVersion {
            version: 1,
            size: 0,
            ..Default::default()
        };
        let big = "key: value\n".repeat(1000);
        assert_eq!(encode(&meta, big.as_bytes()).encoding, "gzip");
        assert!(encode(&meta, big.as_bytes()).bytes.len() < big.len() / 5);
        assert_eq!(encode(&meta, b"a: 1").encoding, "");
    }

    #[test]
    fn every_level_changes_the_bytes_and_zstd_round_trips() {
        use std::io::Read;
        let text: String = (0..3000)
            .map(|i| format!("k{i}: value {}\n", i * 7919 % 1000))
            .collect();
        let at = |level: u32, a: Algorithm| {
            let c = CompressionConfig {
                algorithm: a,
                level,
                min_size: 1024,
            };
            compress(text.as_bytes(), &c, a).1
        };
        let (one, nine) = (at(1, Algorithm::Gzip), at(9, Algorithm::Gzip));
        assert_ne!(one, nine);
        assert!(nine.len() < one.len(), "{} vs {}", nine.len(), one.len());
        for gz in [one, nine] {
            let mut back = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut back)
                .unwrap();
            assert_eq!(back, text);
        }
        let z = at(3, Algorithm::Zstd);
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), text.as_bytes());
        assert_eq!(at(6, Algorithm::None), Bytes::from(text.clone()));
    }

    #[test]
    fn negotiation_falls_back_to_what_the_agent_decodes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            negotiate(Algorithm::Zstd, &s(&["gzip", "zstd"])),
            Algorithm::Zstd
        );
        assert_eq!(negotiate(Algorithm::Zstd, &s(&["gzip"])), Algorithm::Gzip);
        assert_eq!(negotiate(Algorithm::Gzip, &s(&["zstd"])), Algorithm::None);
        assert_eq!(negotiate(Algorithm::Gzip, &[]), Algorithm::Gzip);
        assert_eq!(negotiate(Algorithm::None, &s(&["gzip"])), Algorithm::None);
    }
}
