//! Per-source rate limits: a token bucket per client address, for failed
//! authentications and for registrations.
//!
//! Not the `governor` crate, although it is the maintained choice for plain
//! rate limiting: our failure budget needs two things it does not offer.
//! An enrolment pays its cost *before* the token is checked (so many
//! guesses sent at once cannot all pass) and gets it back when it succeeds
//! (so a fleet enrolling from one NAT address is not limited by its own
//! successes) — governor has no way to return a cell. And a request is
//! refused outright when its source has no budget left, without charging
//! callers that then authenticate fine — governor cannot look at a budget
//! without consuming it (boinkor-net/governor#152, an open request). The
//! rates also change on SIGHUP, where governor's quotas are fixed when the
//! limiter is built.

use std::net::IpAddr;
use std::time::Instant;

use dashmap::DashMap;

/// A token bucket per source address; its rate can change at run time
/// (SIGHUP).
pub struct Limiter {
    /// Tokens per second and bucket size.
    params: std::sync::RwLock<(f64, f64)>,
    buckets: DashMap<IpAddr, (f64, Instant)>,
}

/// Above this many tracked addresses, full buckets are forgotten.
const MAX_TRACKED_SOURCES: usize = 100_000;

impl Limiter {
    /// `per_second` tokens a second, at most `burst` saved up; a rate of 0
    /// turns the limit off.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            params: std::sync::RwLock::new((per_second, f64::from(burst.max(1)))),
            buckets: DashMap::new(),
        }
    }

    /// New rate and burst (SIGHUP); saved-up tokens stay.
    pub fn set(&self, per_second: f64, burst: u32) {
        if let Ok(mut p) = self.params.write() {
            *p = (per_second, f64::from(burst.max(1)));
        }
    }

    fn params(&self) -> (f64, f64) {
        self.params.read().map(|p| *p).unwrap_or((0.0, 1.0))
    }

    /// Tokens in a bucket last seen at `at` with `tokens`, now.
    fn refill((tokens, at): (f64, Instant), now: Instant, (rate, burst): (f64, f64)) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() * rate).min(burst)
    }

    /// Tokens left for `ip` now.
    fn level(&self, ip: IpAddr, now: Instant) -> f64 {
        let p = self.params();
        self.buckets
            .get(&ip)
            .map_or(p.1, |b| Self::refill(*b, now, p))
    }

    /// Whether `ip` has a token left, without taking it.
    pub fn has(&self, ip: IpAddr) -> bool {
        self.params().0 <= 0.0 || self.level(ip, Instant::now()) >= 1.0
    }

    /// Takes a token; false when there is none. Atomic per source.
    pub fn take(&self, ip: IpAddr) -> bool {
        let p = self.params();
        if p.0 <= 0.0 {
            return true;
        }
        let now = Instant::now();
        if self.buckets.len() > MAX_TRACKED_SOURCES {
            self.buckets.retain(|_, b| Self::refill(*b, now, p) < p.1);
        }
        let mut bucket = self.buckets.entry(ip).or_insert((p.1, now));
        let level = Self::refill(*bucket, now, p);
        let ok = level >= 1.0;
        *bucket = (if ok { level - 1.0 } else { level }, now);
        ok
    }

    /// Returns a token taken by [`Limiter::take`] (the attempt succeeded).
    pub fn give_back(&self, ip: IpAddr) {
        let (_, burst) = self.params();
        if let Some(mut b) = self.buckets.get_mut(&ip) {
            b.0 = (b.0 + 1.0).min(burst);
        }
    }

    /// Seconds until `ip` has a token again.
    pub fn wait_secs(&self, ip: IpAddr) -> u64 {
        let rate = self.params().0;
        let missing = 1.0 - self.level(ip, Instant::now());
        if missing <= 0.0 || rate <= 0.0 {
            0
        } else {
            (missing / rate).ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_limiter_refills_over_time() {
        let l = Limiter::new(1000.0, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.take(ip) && l.take(ip));
        assert!(!l.take(ip));
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.has(ip));
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.take(other));
    }
}
