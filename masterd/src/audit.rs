//! The audit log: who did what, when, from where, with what result. Each
//! entry is also published on the event bus ([`Events`]); entries are
//! numbered here and written through the store's writer.
//!
//! The log fails closed: an action that changes or runs something writes
//! its entry ([`Audit::intent`]) and waits for it to be durable before it
//! takes effect, and is refused when it cannot. The result entry written
//! after the fact ([`Audit::record`]) can only be logged and counted when
//! it fails: the action already happened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use crate::error::MasterError;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::store::{AuditQuery, AuditRecord, Store, StoreError, Write};

/// The owner of the audit log.
pub struct Audit {
    store: Store,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
    next_id: AtomicU64,
}

/// One audited action, as the caller describes it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub user: &'a str,
    /// The caller's role, empty for agents and anonymous callers.
    pub role: &'a str,
    pub peer: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: String,
    pub result: Result<(), String>,
}

impl Audit {
    /// The log whose newest entry is `last_id`, writing through `store`.
    pub fn new(store: Store, events: Arc<Events>, metrics: Arc<Metrics>, last_id: u64) -> Self {
        Self {
            store,
            events,
            metrics,
            next_id: AtomicU64::new(last_id + 1),
        }
    }

    /// The store the log is written to: the backup call reads the whole
    /// store through it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The event bus audited actions are published on.
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// Publishes `e` and appends it to the log. A failure to write is
    /// logged and counted, not returned: the action itself already
    /// happened.
    pub async fn record(&self, e: Entry<'_>) {
        self.events.publish(
            e.action,
            e.target,
            e.user,
            e.detail.clone(),
            e.result.is_ok(),
        );
        let _ = self.write(e).await;
    }

    /// Appends `e` and waits until it is durable, before the action it
    /// announces takes effect; nothing is published (the result entry
    /// is). An error means the action must not run: it says so to the
    /// operator ([`MasterError::AuditUnwritable`], UNAVAILABLE) and counts
    /// the refusal.
    pub async fn intent(&self, e: Entry<'_>) -> Result<(), MasterError> {
        self.write(e).await.map_err(|err| {
            self.metrics
                .refused
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: "audit_unwritable",
                })
                .inc();
            MasterError::AuditUnwritable(err.to_string())
        })
    }

    /// Appends `e`; a failure is logged and counted in
    /// `cdn_audit_write_failures_total`.
    async fn write(&self, e: Entry<'_>) -> Result<(), StoreError> {
        let entry = AuditRecord {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time_ms: cdn_common::unix_millis_now(),
            user: e.user.to_string(),
            role: e.role.to_string(),
            peer: e.peer.to_string(),
            action: e.action.to_string(),
            target: e.target.to_string(),
            success: e.result.is_ok(),
            error: e.result.err().unwrap_or_default(),
            detail: e.detail,
        };
        let (action, user) = (entry.action.clone(), entry.user.clone());
        let written = self.store.write(vec![Write::Audit(entry)]).await;
        if let Err(err) = &written {
            self.metrics.audit_write_failures.inc();
            warn!(error = %err, action = %action, user = %user, "cannot write the audit log");
        }
        written
    }

    /// The newest entries `query` wants, newest first.
    pub async fn log(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, MasterError> {
        Ok(self.store.audit(query).await?)
    }
}
