//! What happened on the master, as a stream for `cdnctl events`: nodes
//! coming online and going offline, and every audited action (pushes,
//! rollbacks, exec sessions, token, user and certificate changes). The last
//! [`RECENT`] events are kept in memory for `cdnctl events` without
//! `--follow`; nothing here is persisted (the audit log is).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cdn_proto::v1::Event;
use tokio::sync::broadcast;

/// Events kept for a late reader.
pub const RECENT: usize = 1000;
/// Depth of the live stream; a follower that lags this far misses events
/// and is told so.
const LIVE_DEPTH: usize = 4096;

/// The master's event bus.
pub struct Events {
    next: AtomicU64,
    recent: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            next: AtomicU64::new(1),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            live: broadcast::channel(LIVE_DEPTH).0,
        }
    }
}

impl Events {
    /// Records and broadcasts one event.
    pub fn publish(&self, kind: &str, target: &str, user: &str, detail: String, success: bool) {
        let event = Event {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            time_ms: cdn_common::unix_millis_now(),
            kind: kind.to_string(),
            target: target.to_string(),
            user: user.to_string(),
            detail,
            success,
        };
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == RECENT {
                r.pop_front();
            }
            r.push_back(event.clone());
        }
        let _ = self.live.send(event);
    }

    /// The newest `limit` events, oldest first, and a receiver of every
    /// later one (subscribed under the same lock, so none falls between).
    pub fn recent_and_subscribe(&self, limit: usize) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.live.subscribe();
        let skip = r.len().saturating_sub(limit);
        (r.iter().skip(skip).cloned().collect(), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recent_events_then_live_ones() {
        let e = Events::default();
        for i in 0..3 {
            e.publish("node.online", &format!("n{i}"), "", String::new(), true);
        }
        let (recent, mut rx) = e.recent_and_subscribe(2);
        assert_eq!(
            recent.iter().map(|x| x.target.as_str()).collect::<Vec<_>>(),
            ["n1", "n2"]
        );
        e.publish("node.offline", "n1", "", "gone".into(), true);
        assert_eq!(rx.recv().await.unwrap().kind, "node.offline");
    }
}
