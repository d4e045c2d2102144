//! When each node was last offered its desired config version, and when it
//! may be offered again. The master sends a version once — down the
//! command stream, or as the answer to the agent's own fetch — and says
//! "fetch it" in a heartbeat reply only when that did not reach the node.
//! A version that failed on a node is offered again after a backoff (30 s,
//! doubling up to 10 min) instead of on every heartbeat, so an agent that
//! does not throttle itself cannot be driven to re-fetch and re-apply a
//! broken version hundreds of times. A push or rollback by an operator
//! and a new registration start afresh.

use std::time::{Duration, Instant};

use cdn_proto::Version;
use dashmap::DashMap;

/// A version sent (stream or fetch) and not answered is not offered again
/// in heartbeat replies for this long: the agent is receiving or applying
/// it (a reload may take `config.reload_timeout`, 30 s by default).
pub const IN_FLIGHT: Duration = Duration::from_secs(60);
/// First wait before a version that failed on a node is offered again.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Longest wait between offers of a version that keeps failing.
pub const MAX_RETRY: Duration = Duration::from_secs(600);

/// Delivery state of one node's desired version.
#[derive(Debug, Clone, Copy)]
struct Offer {
    version: Version,
    /// When it was last sent and not answered since.
    sent_at: Option<Instant>,
    /// Failed answers for this version in a row.
    failures: u32,
    /// Not offered again before this, after a failure.
    retry_at: Option<Instant>,
}

impl Offer {
    fn new(version: Version) -> Self {
        Self {
            version,
            sent_at: None,
            failures: 0,
            retry_at: None,
        }
    }
}

/// The wait before offering a version again after `failures` failures.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Offers per node; see the module documentation.
#[derive(Default)]
pub struct Offers {
    nodes: DashMap<String, Offer>,
}

impl Offers {
    /// The entry of `node` for `version`; an entry for another version is
    /// replaced (a new desired version starts afresh).
    fn with<T>(&self, node: &str, version: Version, f: impl FnOnce(&mut Offer) -> T) -> T {
        let mut entry = self
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| Offer::new(version));
        if entry.version != version {
            *entry = Offer::new(version);
        }
        f(&mut entry)
    }

    /// An operator pushed or rolled back to `version`: it is sent now,
    /// whatever failed before.
    pub fn pushed(&self, node: &str, version: Version, now: Instant) {
        self.with(node, version, |o| {
            *o = Offer::new(version);
            o.sent_at = Some(now);
        });
    }

    /// Whether `version` may be sent to `node` on its own initiative (its
    /// stream opened, or a heartbeat reply): not sent and unanswered within
    /// [`IN_FLIGHT`], not failed within its backoff. When it may, it is
    /// noted as sent.
    pub fn claim(&self, node: &str, version: Version, now: Instant) -> bool {
        self.with(node, version, |o| {
            let in_flight = o
                .sent_at
                .is_some_and(|at| now.saturating_duration_since(at) < IN_FLIGHT);
            let waiting = o.retry_at.is_some_and(|at| now < at);
            if in_flight || waiting {
                return false;
            }
            o.sent_at = Some(now);
            true
        })
    }

    /// The agent fetched `version` itself.
    pub fn fetched(&self, node: &str, version: Version, now: Instant) {
        self.with(node, version, |o| o.sent_at = Some(now));
    }

    /// Sending `version` did not work (queue full, stream gone): the next
    /// heartbeat may offer it.
    pub fn unsent(&self, node: &str, version: Version) {
        self.with(node, version, |o| o.sent_at = None);
    }

    /// `node` failed to apply `version`: offered again after [`backoff`].
    /// Returns the wait.
    pub fn failed(&self, node: &str, version: Version, now: Instant) -> Duration {
        self.with(node, version, |o| {
            o.failures = o.failures.saturating_add(1);
            let wait = backoff(o.failures);
            o.sent_at = None;
            o.retry_at = Some(now + wait);
            wait
        })
    }

    /// `node` applied `version`, or registered afresh, or is gone: nothing
    /// to remember.
    pub fn forget(&self, node: &str) {
        self.nodes.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    #[test]
    fn a_version_is_offered_once_while_in_flight() {
        let offers = Offers::default();
        let t0 = Instant::now();
        assert!(offers.claim("a", v(1), t0));
        assert!(!offers.claim("a", v(1), t0 + Duration::from_secs(10)));
        // Unanswered past the in-flight window: offered again.
        assert!(offers.claim("a", v(1), t0 + IN_FLIGHT + Duration::from_secs(1)));
        // Another node is independent; a new version starts afresh.
        assert!(offers.claim("b", v(1), t0));
        assert!(offers.claim("a", v(2), t0 + Duration::from_secs(61)));
    }

    #[test]
    fn a_failed_version_waits_for_a_growing_backoff() {
        let offers = Offers::default();
        let t0 = Instant::now();
        offers.pushed("a", v(3), t0);
        assert_eq!(offers.failed("a", v(3), t0), FIRST_RETRY);
        assert!(!offers.claim("a", v(3), t0 + Duration::from_secs(29)));
        assert!(offers.claim("a", v(3), t0 + Duration::from_secs(30)));
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(offers.failed("a", v(3), t1), 2 * FIRST_RETRY);
        assert!(!offers.claim("a", v(3), t1 + Duration::from_secs(59)));
        for _ in 0..10 {
            offers.failed("a", v(3), t1);
        }
        assert_eq!(offers.failed("a", v(3), t1), MAX_RETRY);
        // An operator's push sends it at once.
        offers.pushed("a", v(3), t1);
        assert!(!offers.claim("a", v(3), t1), "just sent: in flight");
        offers.unsent("a", v(3));
        assert!(offers.claim("a", v(3), t1));
        // A registration forgets.
        offers.failed("a", v(3), t1);
        offers.forget("a");
        assert!(offers.claim("a", v(3), t1));
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(1), FIRST_RETRY);
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }
}
