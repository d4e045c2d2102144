//! Reconnect delays: capped exponential backoff with ± jitter.

use std::time::Duration;

use rand::Rng;

/// The policy, as handed out by the master (`master.yml: reconnect.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Fraction in `0..=1`: each delay is scaled by a factor in `1 ± jitter`.
    pub jitter: f64,
    /// Failed tries against one address before moving to the next.
    pub max_retries: u32,
}

impl Default for Backoff {
    /// The seed's policy: 100 ms doubling to 30 s, ±30 %, 3 tries per address.
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            jitter: 0.3,
            max_retries: 3,
        }
    }
}

impl Backoff {
    /// The un-jittered delay before try number `attempt` (0-based):
    /// `min(max_delay, base_delay * 2^attempt)`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The delay to sleep before try `attempt`, jittered and still capped.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal(attempt).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 {
            rng.random_range((1.0 - jitter)..=(1.0 + jitter))
        } else {
            1.0
        };
        Duration::from_secs_f64(nominal * factor).min(self.max_delay)
    }

    /// Builds the policy from the master's RegisterResponse.
    pub fn from_proto(p: &cdn_proto::v1::ReconnectPolicy) -> Option<Self> {
        let b = Self {
            base_delay: Duration::from_millis(p.base_delay_ms),
            max_delay: Duration::from_millis(p.max_delay_ms),
            jitter: p.jitter,
            max_retries: p.max_retries,
        };
        let sane = !b.base_delay.is_zero()
            && b.base_delay <= b.max_delay
            && (0.0..=1.0).contains(&b.jitter)
            && b.max_retries > 0;
        sane.then_some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.nominal(0), Duration::from_millis(100));
        assert_eq!(b.nominal(1), Duration::from_millis(200));
        assert_eq!(b.nominal(3), Duration::from_millis(800));
        assert_eq!(b.nominal(20), Duration::from_secs(30));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_bounds_and_cap() {
        let b = Backoff::default();
        let mut rng = rand::rng();
        for attempt in 0..40 {
            for _ in 0..50 {
                let d = b.delay(attempt, &mut rng);
                let n = b.nominal(attempt).as_secs_f64();
                assert!(d.as_secs_f64() >= n * 0.7 - 1e-9, "{d:?} < 0.7 x {n}");
                assert!(d <= b.max_delay, "{d:?} above the cap");
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let b = Backoff::default();
        let mut rng = rand::rng();
        let v: std::collections::BTreeSet<_> = (0..20).map(|_| b.delay(2, &mut rng)).collect();
        assert!(v.len() > 5, "jitter produced too few distinct delays");
    }

    #[test]
    fn insane_policy_from_master_is_ignored() {
        let p = cdn_proto::v1::ReconnectPolicy {
            max_retries: 3,
            base_delay_ms: 0,
            max_delay_ms: 10,
            jitter: 0.3,
        };
        assert!(Backoff::from_proto(&p).is_none());
    }
}
