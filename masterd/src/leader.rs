//! Who leads: on the embedded store this master always does; on etcd the
//! masters campaign for one election key bound to a lease.
//!
//! The [`Leadership`] is asked on every call (through the gate): a master
//! that does not lead — or whose lease may have run out, because it could
//! not renew it in time (paused, partitioned from etcd) — refuses at once
//! with `UNAVAILABLE` and the leader's address. The election task
//! ([`Leadership::campaign`]) grants a lease, publishes this master under
//! `masters/<id>`, and tries, every [`POLL`], to create the election key
//! (a `Txn` succeeding only while the key does not exist). The winner's
//! fence is the key's create revision: every store commit is conditioned
//! on it (see `store::etcd`). The leader renews its lease every third of
//! its TTL and considers itself deposed as soon as a renewal is overdue by
//! more than [`margin`] before the TTL, before etcd could expire it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cdn_proto::etcd::etcdserverpb::{TxnRequest, response_op};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::etcd::{created_at, get_op, put_op};
use crate::metrics::{ChangeLabel, Metrics};
use crate::store::{EtcdStore, StoreError};

/// How often the leader compacts etcd's history (to the revision it saw
/// one period earlier).
pub const COMPACT_EVERY: Duration = Duration::from_secs(300);

/// Pause between campaign attempts of a standby.
pub const POLL: Duration = Duration::from_millis(200);

/// How long before its lease's TTL a leader stops acting as one.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_millis(200))
}

/// Puts `op` when `compare` holds; for `masters/<id>`, whose loss only
/// makes `cdnctl masters` stale until the next renewal, so errors are
/// let go.
async fn put_if(
    client: &crate::etcd::EtcdClient,
    compare: Vec<cdn_proto::etcd::etcdserverpb::Compare>,
    op: cdn_proto::etcd::etcdserverpb::RequestOp,
) {
    let _ = client
        .txn(TxnRequest {
            compare,
            success: vec![op],
            failure: Vec::new(),
        })
        .await;
}

/// One master, as the election key and `masters/<id>` describe it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterRecord {
    pub id: String,
    pub agent_addr: String,
    pub admin_addr: String,
    pub backend: String,
    pub started_ms: i64,
    /// When it became leader (0: standby).
    #[serde(default)]
    pub leader_since_ms: i64,
    /// When it last renewed its lease.
    #[serde(default)]
    pub renewed_ms: i64,
}

/// The last backup written, as `cdnctl masters` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupNote {
    pub created_ms: i64,
    /// The master that wrote it.
    pub by: String,
    pub file: String,
}

/// Where this master stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Leading since its election key's revision `fence` (0: embedded).
    Leader { fence: i64 },
    /// Following `leader` (None: unknown, an election is under way).
    Standby { leader: Option<MasterRecord> },
}

/// The leadership of this master, shared by the gate, the admin API and
/// the election task.
pub struct Leadership {
    me: RwLock<MasterRecord>,
    role: watch::Sender<Role>,
    /// Milliseconds since `base` until which the lease surely holds.
    deadline_ms: AtomicU64,
    base: Instant,
    store: Option<EtcdStore>,
    metrics: Arc<Metrics>,
    last_backup: std::sync::Mutex<Option<BackupNote>>,
    /// Why no master leads, as far as this one knows (etcd errors).
    why: RwLock<String>,
}

fn now_ms() -> i64 {
    cdn_common::unix_millis_now()
}

impl Leadership {
    /// A master alone on its embedded store: always the leader.
    pub fn single(me: MasterRecord, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.master_is_leader.set(1);
        let me = MasterRecord {
            leader_since_ms: me.started_ms,
            ..me
        };
        Arc::new(Self {
            me: RwLock::new(me),
            role: watch::channel(Role::Leader { fence: 0 }).0,
            deadline_ms: AtomicU64::new(u64::MAX),
            base: Instant::now(),
            store: None,
            metrics,
            last_backup: Default::default(),
            why: Default::default(),
        })
    }

    /// A master on etcd: a standby until [`Leadership::campaign`] wins.
    pub fn on_etcd(me: MasterRecord, store: EtcdStore, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.master_is_leader.set(0);
        Arc::new(Self {
            me: RwLock::new(me),
            role: watch::channel(Role::Standby { leader: None }).0,
            deadline_ms: AtomicU64::new(0),
            base: Instant::now(),
            store: Some(store),
            metrics,
            last_backup: Default::default(),
            why: Default::default(),
        })
    }

    /// This master.
    pub fn me(&self) -> MasterRecord {
        self.me.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Records the addresses this master serves on (known once bound).
    pub fn set_addrs(&self, agent: String, admin: String) {
        if let Ok(mut m) = self.me.write() {
            m.agent_addr = agent;
            m.admin_addr = admin;
        }
    }

    /// Whether this master may serve now.
    pub fn is_leader(&self) -> bool {
        matches!(*self.role.borrow(), Role::Leader { .. })
            && (self.base.elapsed().as_millis() as u64) < self.deadline_ms.load(Ordering::Acquire)
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Follows role changes.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// The leader's address for a caller of the agent API (`agent`) or of
    /// the admin API; empty when unknown.
    pub fn leader_addr(&self, agent: bool) -> String {
        let pick = |m: &MasterRecord| {
            if agent {
                m.agent_addr.clone()
            } else {
                m.admin_addr.clone()
            }
        };
        match &*self.role.borrow() {
            Role::Standby { leader: Some(l) } => pick(l),
            // A standby that has just been elected answers the callers it
            // held with its own address.
            Role::Leader { .. } if self.is_leader() => pick(&self.me()),
            _ => String::new(),
        }
    }

    /// Waits, at most `within`, until the leader a caller of the agent API
    /// (`agent`) or admin API would be sent to is no longer `dead`: a new
    /// leader was elected (maybe this master). False when `within` passed
    /// first.
    pub async fn moved_on_from(&self, agent: bool, dead: &str, within: Duration) -> bool {
        let mut rx = self.role.subscribe();
        let moved = async {
            loop {
                let now = self.leader_addr(agent);
                if !now.is_empty() && now != dead {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(within, moved).await.is_ok()
    }

    /// The refusal of a caller while this master does not lead.
    pub fn refusal(&self, agent: bool) -> tonic::Status {
        let addr = self.leader_addr(agent);
        let why = self.why.read().map(|w| w.clone()).unwrap_or_default();
        if addr.is_empty() && !why.is_empty() {
            cdn_common::leader::no_leader_status(&why)
        } else {
            cdn_common::leader::standby_status(&addr)
        }
    }

    fn set_why(&self, why: String) {
        if let Ok(mut w) = self.why.write() {
            *w = why;
        }
    }

    /// The store's name ("embedded" or "etcd").
    pub fn backend(&self) -> &'static str {
        if self.store.is_some() {
            "etcd"
        } else {
            "embedded"
        }
    }

    /// Resolves once this master leads (at once on the embedded store), or
    /// returns false when `stop` came first.
    pub async fn elected(&self, stop: &CancellationToken) -> bool {
        let mut rx = self.role.subscribe();
        tokio::select! {
            r = rx.wait_for(|r| matches!(r, Role::Leader { .. })) => r.is_ok(),
            _ = stop.cancelled() => false,
        }
    }

    /// Resolves when this master stops leading.
    pub async fn deposed(&self) {
        let mut rx = self.role.subscribe();
        let _ = rx.wait_for(|r| !matches!(r, Role::Leader { .. })).await;
    }

    fn set_role(&self, role: Role) {
        let was_leader = matches!(*self.role.borrow(), Role::Leader { .. });
        let leads = matches!(role, Role::Leader { .. });
        if was_leader != leads {
            let change = if leads { "acquired" } else { "lost" };
            self.metrics
                .leadership_changes
                .get_or_create(&ChangeLabel { change })
                .inc();
            self.metrics.master_is_leader.set(i64::from(leads));
        }
        self.role.send_if_modified(|r| {
            if *r == role {
                false
            } else {
                *r = role;
                true
            }
        });
    }

    /// Records a backup this master wrote (kept in etcd for the other
    /// masters to show).
    pub async fn note_backup(&self, file: &std::path::Path, created_ms: i64) {
        let note = BackupNote {
            created_ms,
            by: self.me().id,
            file: file.display().to_string(),
        };
        if let Some(store) = &self.store {
            let value = serde_json::to_vec(&note).unwrap_or_default();
            if let Err(e) = store.put_fenced("backup", value).await {
                warn!(error = %e, "cannot record the backup in etcd");
            }
        }
        if let Ok(mut b) = self.last_backup.lock() {
            *b = Some(note);
        }
    }

    /// The last backup written by any master on this store.
    pub async fn last_backup(&self) -> Option<BackupNote> {
        if let Some(store) = &self.store
            && let Ok(Some(kv)) = store.get("backup").await
        {
            return serde_json::from_slice(&kv.value).ok();
        }
        self.last_backup.lock().ok().and_then(|b| b.clone())
    }

    /// The masters sharing this store, leader first, and this master's
    /// lease age (ms since its last renewal).
    pub async fn masters(&self) -> Result<Vec<(MasterRecord, bool)>, StoreError> {
        let Some(store) = &self.store else {
            return Ok(vec![(self.me(), true)]);
        };
        let leader = store
            .get("election")
            .await?
            .and_then(|kv| serde_json::from_slice::<MasterRecord>(&kv.value).ok());
        let mut out: Vec<(MasterRecord, bool)> = store
            .list("masters/")
            .await?
            .into_iter()
            .filter_map(|kv| serde_json::from_slice::<MasterRecord>(&kv.value).ok())
            .map(|m| {
                let leads = leader.as_ref().is_some_and(|l| l.id == m.id);
                let m = match &leader {
                    Some(l) if leads => MasterRecord {
                        leader_since_ms: l.leader_since_ms,
                        ..m
                    },
                    _ => MasterRecord {
                        leader_since_ms: 0,
                        ..m
                    },
                };
                (m, leads)
            })
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
        Ok(out)
    }

    /// The election, until `stop`: campaigns, leads while its lease holds,
    /// campaigns again after losing it. On `stop` a leader gives its lease
    /// up, so a standby takes over at once rather than after the TTL.
    pub async fn campaign(self: Arc<Self>, ttl: Duration, stop: CancellationToken) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let client = store.client();
        let election = store.election_key();
        let presence = store.key(&format!("masters/{}", self.me().id));
        'lease: loop {
            if stop.is_cancelled() {
                return;
            }
            let granted_at = Instant::now();
            let lease = match client.grant(ttl).await {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "etcd: cannot get a lease; retrying");
                    self.set_why(format!("cannot reach etcd ({e})"));
                    self.set_role(Role::Standby { leader: None });
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.cancelled() => return,
                    }
                    continue;
                }
            };
            let mut renewed = granted_at;
            let publish = |renewed_ms: i64, leader_since_ms: i64| {
                let rec = MasterRecord {
                    renewed_ms,
                    leader_since_ms,
                    ..self.me()
                };
                put_op(
                    presence.clone(),
                    serde_json::to_vec(&rec).unwrap_or_default(),
                    lease,
                )
            };
            put_if(&client, Vec::new(), publish(now_ms(), 0)).await;
            loop {
                let since = now_ms();
                let me = MasterRecord {
                    leader_since_ms: since,
                    renewed_ms: since,
                    ..self.me()
                };
                let attempt = client
                    .txn(TxnRequest {
                        compare: vec![created_at(election.clone(), 0)],
                        success: vec![
                            put_op(
                                election.clone(),
                                serde_json::to_vec(&me).unwrap_or_default(),
                                lease,
                            ),
                            publish(since, since),
                        ],
                        failure: vec![get_op(election.clone())],
                    })
                    .await;
                match attempt {
                    Ok(r) if r.succeeded => {
                        let fence = r.header.map_or(0, |h| h.revision);
                        let lost = self
                            .lead(&store, lease, fence, renewed, ttl, &stop, &publish)
                            .await;
                        store.fence().clear();
                        if let Some(why) = &lost {
                            self.set_why(format!(
                                "the last leader ({}) stepped down: {why}",
                                self.me().id
                            ));
                        }
                        self.set_role(Role::Standby { leader: None });
                        let _ = tokio::time::timeout(Duration::from_secs(1), client.revoke(lease))
                            .await;
                        match lost {
                            None => return,
                            Some(why) => {
                                warn!(reason = %why, "leadership lost; campaigning again");
                                continue 'lease;
                            }
                        }
                    }
                    Ok(r) => {
                        let leader = r
                            .responses
                            .into_iter()
                            .find_map(|op| match op.response {
                                Some(response_op::Response::ResponseRange(rr)) => {
                                    rr.kvs.into_iter().next()
                                }
                                _ => None,
                            })
                            .and_then(|kv| serde_json::from_slice::<MasterRecord>(&kv.value).ok());
                        self.set_why(String::new());
                        self.set_role(Role::Standby { leader });
                    }
                    Err(e) => {
                        warn!(error = %e, "etcd: campaign attempt failed");
                        self.set_why(format!("cannot reach etcd ({e})"));
                        self.set_role(Role::Standby { leader: None });
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.cancelled() => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), client.revoke(lease)).await;
                        return;
                    }
                }
                if renewed.elapsed() >= ttl / 3 {
                    let sent = Instant::now();
                    match client.keep_alive(lease, ttl / 4).await {
                        Ok(left) if left > 0 => {
                            renewed = sent;
                            put_if(&client, Vec::new(), publish(now_ms(), 0)).await;
                        }
                        Ok(_) => continue 'lease,
                        Err(e) if renewed.elapsed() >= ttl => {
                            warn!(error = %e, "etcd: lease lost while standby");
                            continue 'lease;
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Leads until the lease cannot be renewed in time, a commit is fenced,
    /// or `stop`; returns why it stopped (None: `stop`).
    #[allow(clippy::too_many_arguments)]
    async fn lead(
        &self,
        store: &EtcdStore,
        lease: i64,
        fence: i64,
        mut renewed: Instant,
        ttl: Duration,
        stop: &CancellationToken,
        publish: &(dyn Fn(i64, i64) -> cdn_proto::etcd::etcdserverpb::RequestOp + Sync),
    ) -> Option<String> {
        let client = store.client();
        let since = now_ms();
        let hold = ttl.saturating_sub(margin(ttl));
        let set_deadline = |renewed: Instant| {
            let until = renewed.saturating_duration_since(self.base) + hold;
            self.deadline_ms
                .store(until.as_millis() as u64, Ordering::Release);
        };
        set_deadline(renewed);
        store.fence().set(fence);
        if let Ok(mut m) = self.me.write() {
            m.leader_since_ms = since;
        }
        self.set_role(Role::Leader { fence });
        info!(fence, lease_ttl = %cdn_common::duration::short(ttl), "this master leads");
        let mut fenced = store.fence().subscribe();
        let mut next = renewed + ttl / 3;
        // History older than one COMPACT_EVERY is compacted, as the
        // Kubernetes API server does: etcd keeps every revision otherwise,
        // and registry flushes make many.
        let mut compact_at = Instant::now() + COMPACT_EVERY;
        let mut compact_to = fence;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = fenced.wait_for(|r| *r != fence) => {
                    return Some("a store write was refused: another master holds the election key".into());
                }
            }
            if Instant::now() >= compact_at {
                compact_at = Instant::now() + COMPACT_EVERY;
                if let Err(e) = client.compact(compact_to).await {
                    warn!(error = %e, revision = compact_to, "etcd: compaction failed");
                }
                if let Ok((_, rev)) = client.get(&store.election_key()).await {
                    compact_to = rev;
                }
            }
            // A pause longer than the lease (SIGSTOP, a frozen VM) ends here.
            if renewed.elapsed() >= hold {
                return Some(format!(
                    "the lease was not renewed for {} (process paused or etcd unreachable)",
                    cdn_common::duration::short(Duration::from_millis(
                        renewed.elapsed().as_millis() as u64
                    ))
                ));
            }
            let sent = Instant::now();
            let left = hold.saturating_sub(renewed.elapsed());
            let renewal = match tokio::time::timeout(left, client.keep_alive(lease, ttl / 4)).await
            {
                Ok(r) => r,
                Err(_) => Err(StoreError::Unavailable(format!(
                    "no renewal within {}",
                    cdn_common::duration::short(left)
                ))),
            };
            match renewal {
                Ok(left) if left > 0 => {
                    renewed = sent;
                    next = renewed + ttl / 3;
                    set_deadline(renewed);
                    put_if(
                        &client,
                        vec![created_at(store.election_key(), fence)],
                        publish(now_ms(), since),
                    )
                    .await;
                }
                Ok(_) => return Some("the lease expired".into()),
                Err(e) => {
                    warn!(error = %e, "etcd: lease renewal failed");
                    if renewed.elapsed() >= hold {
                        return Some(format!("cannot renew the lease: {e}"));
                    }
                    // Try again soon rather than a third of the TTL later.
                    next = Instant::now() + Duration::from_millis(250);
                }
            }
        }
    }
}
