//! The audit log: who did what, when, from where, with what result. Each
//! entry is also published on the event bus ([`Events`]); entries are
//! numbered here and written through the store's writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use crate::error::MasterError;
use crate::events::Events;
use crate::store::{AuditQuery, AuditRecord, Store, Write};

/// The owner of the audit log.
pub struct Audit {
    store: Store,
    events: Arc<Events>,
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
    pub fn new(store: Store, events: Arc<Events>, last_id: u64) -> Self {
        Self {
            store,
            events,
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
    /// logged, not returned: the action itself already happened.
    pub async fn record(&self, e: Entry<'_>) {
        self.events.publish(
            e.action,
            e.target,
            e.user,
            e.detail.clone(),
            e.result.is_ok(),
        );
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
        if let Err(err) = self.store.write(vec![Write::Audit(entry)]).await {
            warn!(error = %err, action = %action, user = %user, "cannot write the audit log");
        }
    }

    /// The newest entries `query` wants, newest first.
    pub async fn log(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, MasterError> {
        Ok(self.store.audit(query).await?)
    }
}
