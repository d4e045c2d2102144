//! Exec sessions: the master relays between cdnctl's `Exec` call and the
//! agent's own `ExecSession` stream.
//!
//! The master asks the agent over its command stream to start a session;
//! the agent answers by opening a new `ExecSession` stream on the same
//! connection, so every session has its own HTTP/2 flow control and a slow
//! or huge session never blocks heartbeats, pushes or other sessions. The
//! relay uses bounded channels both ways: a reader that stops reading stops
//! the remote process at its next write, and memory stays bounded. When
//! cdnctl goes away the master drops the agent's stream, and the agent kills
//! the session's process group. Every session is audited in the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cdn_proto::v1::{
    CommandResponse, ExecAttach, ExecFromAgent, ExecRecordInfo, ExecRequest, ExecResponse,
    ExecStart, ExecStarted, ExecToAgent, StartExec, command_response, exec_from_agent,
    exec_request, exec_response, exec_to_agent,
};
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::{info, warn};

use crate::error::MasterError;
use crate::recording::{Recorder, Recordings};
use crate::registry::{NodeState, Registry};
use crate::store::{ExecRecord, Store, Write};
use cdn_common::recording::Header;
use cdn_proto::limits::MAX_ARGV_BYTES;

/// Time an agent has to open the session's stream after being asked.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an exec waits for a just-registered node's command stream.
const STREAM_WAIT: Duration = Duration::from_secs(3);
/// Messages buffered per direction of one session (each at most one chunk,
/// 128 KiB). With the HTTP/2 window of the agent's stream (1 MiB) this is
/// most of what a session whose reader stopped reading holds in the master:
/// 8 made it 3.5–4 MiB per stalled session, 2 (and `relay` reading the
/// agent only when there is room) 2.0–2.35 MiB, streaming no slower on
/// loopback (bench/memory.py).
pub const RELAY_DEPTH: usize = 2;

/// Output of one session to cdnctl.
pub type ExecOut = mpsc::Sender<Result<ExecResponse, Status>>;
type ToAgent = mpsc::Sender<Result<ExecToAgent, Status>>;

/// The agent's end of a session, handed over when its stream arrives.
struct AgentEnd {
    inbound: Streaming<ExecFromAgent>,
    outbound: ToAgent,
    refused: String,
    /// Cancelled when the node's certificate is revoked.
    revoked: CancellationToken,
}

/// Who asked for a session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub peer: String,
    /// Cancelled when the user's credential is revoked.
    pub revoked: CancellationToken,
}

/// Counts a session in `cdn_exec_sessions_active` while it lives.
struct Running<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> Running<'a> {
    fn new(g: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Pending and running exec sessions.
pub struct ExecHub {
    registry: Arc<Registry>,
    store: Store,
    next_id: AtomicU64,
    pending: DashMap<u64, (String, oneshot::Sender<AgentEnd>)>,
    events: Arc<crate::events::Events>,
    active: prometheus_client::metrics::gauge::Gauge,
    pool: std::sync::RwLock<crate::config::PoolConfig>,
    /// Open sessions per node, bounded by `pool.size`.
    per_node: DashMap<String, u32>,
    /// Open sessions of every node together, bounded by
    /// `pool.max_sessions`.
    open: std::sync::atomic::AtomicU32,
    recordings: Arc<Recordings>,
}

impl ExecHub {
    /// A hub whose exec ids continue after `last_exec_id`, the last one
    /// audited.
    pub fn new(
        registry: Arc<Registry>,
        store: Store,
        last_exec_id: u64,
        events: Arc<crate::events::Events>,
        active: prometheus_client::metrics::gauge::Gauge,
        pool: crate::config::PoolConfig,
        recordings: Arc<Recordings>,
    ) -> Self {
        Self {
            registry,
            store,
            next_id: AtomicU64::new(last_exec_id + 1),
            pending: DashMap::new(),
            events,
            active,
            pool: std::sync::RwLock::new(pool),
            per_node: DashMap::new(),
            open: std::sync::atomic::AtomicU32::new(0),
            recordings,
        }
    }

    /// The session recordings of this master.
    pub fn recordings(&self) -> &Arc<Recordings> {
        &self.recordings
    }

    /// The newest `limit` audited sessions.
    pub async fn history(&self, limit: usize) -> Result<Vec<ExecRecordInfo>, MasterError> {
        let records = self.store.execs(limit).await?;
        Ok(records
            .into_iter()
            .map(|r| ExecRecordInfo {
                exec_id: r.exec_id,
                user: r.user,
                node: r.node,
                argv: r.argv,
                started_ms: r.started_ms,
                duration_ms: r.duration_ms,
                exit_code: r.exit_code,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
                error: r.error,
                peer: r.peer,
                recording_id: r.recording_id,
                recording_bytes: r.recording_bytes,
                recording_sha256: r.recording_sha256,
                recording_truncated: r.recording_truncated,
                recording_error: r.recording_error,
            })
            .collect())
    }

    /// The agent opened the stream of session `attach.exec_id`.
    pub fn attach(
        &self,
        attach: ExecAttach,
        inbound: Streaming<ExecFromAgent>,
        revoked: CancellationToken,
    ) -> Result<ReceiverStream<Result<ExecToAgent, Status>>, MasterError> {
        self.registry
            .check_session(&attach.node_id, attach.session_id)?;
        // Only the node the session was started on may take it.
        let (_, (_, tx)) = self
            .pending
            .remove_if(&attach.exec_id, |_, (node, _)| *node == attach.node_id)
            .ok_or_else(|| {
                MasterError::Invalid(format!(
                    "no exec session {} is waiting for node {}",
                    attach.exec_id, attach.node_id
                ))
            })?;
        let (outbound, rx) = mpsc::channel(RELAY_DEPTH);
        let _ = tx.send(AgentEnd {
            inbound,
            outbound,
            refused: attach.refused,
            revoked,
        });
        Ok(ReceiverStream::new(rx))
    }

    /// Runs one session for cdnctl: start it on the node, relay both ways,
    /// audit it. Errors before the start are returned; later ones end the
    /// stream with their status.
    pub async fn run(
        &self,
        start: ExecStart,
        caller: Caller,
        admin_in: Streaming<ExecRequest>,
        out: ExecOut,
    ) -> ExecRecord {
        let started_ms = cdn_common::unix_millis_now();
        let t0 = Instant::now();
        // Every attempt gets its own id and audit entry, refused ones too.
        let exec_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let revoked = caller.revoked;
        let mut record = ExecRecord {
            exec_id,
            user: caller.user,
            peer: caller.peer,
            node: start.node.clone(),
            argv: start.argv.clone(),
            started_ms,
            exit_code: -1,
            ..Default::default()
        };
        let result = {
            let _running = Running::new(&self.active);
            tokio::select! {
                r = self.run_inner(start, admin_in, &out, &mut record) => r,
                // Dropping the session ends the agent's stream, which kills
                // the processes.
                _ = revoked.cancelled() => Err(MasterError::Unauthenticated(
                    "your credential was revoked; session closed".into(),
                )),
            }
        };
        if let Err(e) = result {
            record.error = e.to_string();
            let _ = out.send(Err(e.into())).await;
        }
        // The stream ends now, with the exit status, not after the record
        // below is durable: a client that stops reading at the exit resets
        // the stream, and an HTTP/2 client that gets the end of a stream it
        // reset more than a second before counts a protocol error; a
        // thousand of those (a fan-out to 15,000 nodes under load) and it
        // drops the connection with every session on it.
        drop(out);
        record.duration_ms = t0.elapsed().as_millis() as u64;
        info!(
            exec = record.exec_id,
            node = %record.node,
            user = %record.user,
            exit = record.exit_code,
            ms = record.duration_ms,
            "exec session ended"
        );
        self.events.publish(
            "exec.end",
            &record.node,
            &record.user,
            if record.error.is_empty() {
                format!(
                    "exec {}: exit {} after {} ms",
                    record.exec_id, record.exit_code, record.duration_ms
                )
            } else {
                format!("exec {}: {}", record.exec_id, record.error)
            },
            record.error.is_empty() && record.exit_code == 0,
        );
        let ended = record.clone();
        if let Err(e) = self.store.write(vec![Write::Exec(record)]).await {
            warn!(error = %e, "cannot record an exec session in the audit log");
        }
        ended
    }

    async fn run_inner(
        &self,
        start: ExecStart,
        mut admin_in: Streaming<ExecRequest>,
        out: &ExecOut,
        record: &mut ExecRecord,
    ) -> Result<(), MasterError> {
        if start.argv.is_empty() || start.argv[0].is_empty() {
            return Err(MasterError::Invalid("no command given".into()));
        }
        if start.argv.iter().map(|a| a.len()).sum::<usize>() > MAX_ARGV_BYTES {
            return Err(MasterError::Invalid(format!(
                "command line longer than {MAX_ARGV_BYTES} bytes"
            )));
        }
        let node = start.node.clone();
        let state = self
            .registry
            .state(&node)
            .ok_or_else(|| MasterError::NodeNotFound(node.clone()))?;
        let _slot = self.take_slot(&node)?;
        let tx = match (
            state,
            self.registry.command_tx_soon(&node, STREAM_WAIT).await,
        ) {
            (NodeState::Online | NodeState::Degraded, Some(tx)) => tx,
            _ => {
                let last_seen = self.registry.last_seen_ms(&node).unwrap_or(0);
                let ago = (cdn_common::unix_millis_now() - last_seen).max(0) / 1000;
                return Err(MasterError::NodeOffline {
                    node,
                    last_seen_secs: ago,
                });
            }
        };
        let exec_id = record.exec_id;
        let size = start.size.unwrap_or_default();
        let header = Header {
            exec_id: self
                .recordings
                .group_id(&record.user, &start.group, exec_id),
            session_id: exec_id,
            user: record.user.clone(),
            peer: record.peer.clone(),
            node: node.clone(),
            argv: start.argv.clone(),
            tty: start.tty,
            cols: size.cols,
            rows: size.rows,
            term: start.term.clone(),
            started_ms: record.started_ms,
            ..Default::default()
        };
        let (handoff, arrived) = oneshot::channel();
        self.pending.insert(exec_id, (node.clone(), handoff));
        let order = CommandResponse {
            command_id: exec_id,
            body: Some(command_response::Body::StartExec(StartExec {
                exec_id,
                argv: start.argv,
                env: start.env,
                cwd: start.cwd,
                tty: start.tty,
                size: start.size,
                timeout_ms: start.timeout_ms,
                stdin: start.stdin,
                term: start.term,
            })),
        };
        let sent = tokio::time::timeout(ATTACH_TIMEOUT, tx.send(Ok(order))).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.pending.remove(&exec_id);
            return Err(MasterError::NodeUnresponsive(format!(
                "node {node} is not taking commands (its command stream is full or closing); try again"
            )));
        }
        let agent = match tokio::time::timeout(ATTACH_TIMEOUT, arrived).await {
            Ok(Ok(a)) => a,
            _ => {
                self.pending.remove(&exec_id);
                return Err(MasterError::NodeUnresponsive(format!(
                    "node {node} did not start the session within {}s",
                    ATTACH_TIMEOUT.as_secs()
                )));
            }
        };
        if !agent.refused.is_empty() {
            return Err(MasterError::ExecRefused {
                node,
                reason: agent.refused,
            });
        }
        let mut recorder = self.recordings.start(header);
        let (recording, recording_id) = match &recorder {
            Some(r) => (r.mode().to_string(), r.id()),
            None => (String::new(), 0),
        };
        record.recording_id = recording_id;
        let started = ExecResponse {
            body: Some(exec_response::Body::Started(ExecStarted {
                exec_id,
                recording,
                recording_id,
            })),
        };
        let result = if out.send(Ok(started)).await.is_err() {
            Ok(()) // cdnctl already gone; dropping the agent stream kills it
        } else {
            let max_idle = self.pool().max_idle_time;
            relay(agent, &mut admin_in, out, record, max_idle, &mut recorder).await
        };
        if let Some(r) = recorder {
            let s = r.finish();
            record.recording_bytes = s.bytes;
            record.recording_sha256 = s.sha256;
            record.recording_truncated = s.truncated;
            record.recording_error = s.error;
        }
        result
    }

    /// The pool settings in force.
    fn pool(&self) -> crate::config::PoolConfig {
        self.pool.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// New pool settings from a reloaded config (SIGHUP); sessions already
    /// running keep their idle limit.
    pub fn set_pool(&self, pool: crate::config::PoolConfig) {
        if let Ok(mut p) = self.pool.write() {
            *p = pool;
        }
    }

    /// One of the node's `pool.size` session slots, given back on drop.
    fn take_slot(&self, node: &str) -> Result<Slot<'_>, MasterError> {
        let pool = self.pool();
        let (limit, total) = (pool.size.get(), pool.max_sessions.get());
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < total).then_some(n + 1)
            })
            .is_err()
        {
            return Err(MasterError::RateLimited(format!(
                "this master already has {total} exec sessions open (pool.max_sessions); wait for one to end"
            )));
        }
        let mut n = self.per_node.entry(node.to_string()).or_insert(0);
        if *n >= limit {
            drop(n);
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(MasterError::RateLimited(format!(
                "node {node} already has {limit} exec sessions open (pool.size); wait for one to end"
            )));
        }
        *n += 1;
        Ok(Slot {
            hub: self,
            node: node.to_string(),
        })
    }
}

/// A taken session slot of one node.
struct Slot<'a> {
    hub: &'a ExecHub,
    node: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
        self.hub.per_node.remove_if_mut(&self.node, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// Relays until the process exits or either side goes away.
async fn relay(
    agent: AgentEnd,
    admin_in: &mut Streaming<ExecRequest>,
    out: &ExecOut,
    record: &mut ExecRecord,
    max_idle: Duration,
    rec: &mut Option<Recorder>,
) -> Result<(), MasterError> {
    let AgentEnd {
        mut inbound,
        outbound,
        revoked,
        ..
    } = agent;
    let mut outbound = Some(outbound);
    // Room in cdnctl's queue for one message: the agent's stream is read
    // only when there is, so a reader that stops reading leaves the
    // output in the agent's stream window (bounded by flow control) and
    // nothing in the master's hands.
    let mut room = None;
    let idle = tokio::time::sleep(max_idle);
    tokio::pin!(idle);
    // Buffered recording reaches the file at least this often, traffic or not.
    let mut flush = tokio::time::interval(crate::recording::FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick(), if rec.is_some() => {
                if let Some(r) = rec.as_mut() {
                    r.flush();
                }
            }
            _ = revoked.cancelled() => {
                return Err(MasterError::NodeUnresponsive(
                    "the node's certificate was revoked; session closed".into(),
                ));
            }
            // A reader that is slow or stopped is not an idle session.
            _ = &mut idle, if room.is_some() => {
                // Dropping the agent's stream kills the session's processes.
                return Err(MasterError::NodeUnresponsive(format!(
                    "session idle for {} (pool.max_idle_time); closed",
                    cdn_common::duration::short(max_idle)
                )));
            }
            msg = admin_in.message(), if outbound.is_some() => {
                idle.as_mut().reset(tokio::time::Instant::now() + max_idle);
                let body = match msg {
                    Ok(Some(ExecRequest { body: Some(b) })) => b,
                    Ok(Some(_)) => continue,
                    // cdnctl went away: dropping our sender ends the agent's
                    // stream and the agent kills the process group.
                    Ok(None) | Err(_) => {
                        outbound = None;
                        record.error = "client disconnected".into();
                        continue;
                    }
                };
                let to_agent = match body {
                    exec_request::Body::Stdin(b) => {
                        record.bytes_in += b.len() as u64;
                        if let Some(r) = rec.as_mut() {
                            r.stdin(&b);
                        }
                        exec_to_agent::Body::Stdin(b)
                    }
                    exec_request::Body::StdinEof(e) => exec_to_agent::Body::StdinEof(e),
                    exec_request::Body::Signal(s) => {
                        if let Some(r) = rec.as_mut() {
                            r.signal(s);
                        }
                        exec_to_agent::Body::Signal(s)
                    }
                    exec_request::Body::Resize(size) => {
                        if let Some(r) = rec.as_mut() {
                            r.resize(size.cols, size.rows);
                        }
                        exec_to_agent::Body::Resize(size)
                    }
                    exec_request::Body::Start(_) => continue,
                };
                if let Some(o) = &outbound
                    && o.send(Ok(ExecToAgent { body: Some(to_agent) })).await.is_err()
                {
                    outbound = None;
                }
            }
            permit = out.reserve(), if room.is_none() => {
                match permit {
                    Ok(p) => room = Some(p),
                    Err(_) => {
                        record.error = "client disconnected".into();
                        return Ok(());
                    }
                }
                idle.as_mut().reset(tokio::time::Instant::now() + max_idle);
            }
            msg = inbound.message(), if room.is_some() => {
                idle.as_mut().reset(tokio::time::Instant::now() + max_idle);
                let body = match msg {
                    Ok(Some(ExecFromAgent { body: Some(b) })) => b,
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => {
                        return Err(MasterError::NodeUnresponsive(
                            "the node lost the session before it ended (agent restarted or connection dropped)".into(),
                        ));
                    }
                };
                let resp = match body {
                    exec_from_agent::Body::Stdout(b) => {
                        record.bytes_out += b.len() as u64;
                        if let Some(r) = rec.as_mut() {
                            r.stdout(&b);
                        }
                        exec_response::Body::Stdout(b)
                    }
                    exec_from_agent::Body::Stderr(b) => {
                        record.bytes_out += b.len() as u64;
                        if let Some(r) = rec.as_mut() {
                            r.stderr(&b);
                        }
                        exec_response::Body::Stderr(b)
                    }
                    exec_from_agent::Body::Exit(x) => {
                        record.exit_code = x.code;
                        if let Some(r) = rec.as_mut() {
                            r.exit(x.code);
                        }
                        if !x.error.is_empty() {
                            record.error = x.error.clone();
                        }
                        if let Some(p) = room.take() {
                            p.send(Ok(ExecResponse { body: Some(exec_response::Body::Exit(x)) }));
                        }
                        return Ok(());
                    }
                    exec_from_agent::Body::Attach(_) => continue,
                };
                // The next read waits for room: while cdnctl's window is
                // full, backpressure to the agent.
                if let Some(p) = room.take() {
                    p.send(Ok(ExecResponse { body: Some(resp) }));
                }
            }
        }
    }
}
