//! The swarm's figures: how many agents are registered, how long that took,
//! registration and heartbeat round-trip percentiles, reconnects, heartbeat
//! failures and the process's memory per agent. [`Monitor`] logs progress
//! and the moment all agents registered, and writes the `--stats` JSON file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::hollow::Shared;

/// How often a progress line is logged until every agent registered.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The statistics file's content.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Agents this process runs.
    pub count: u64,
    /// Node id of the first agent of this process.
    pub first_node: String,
    /// Node id of the last agent of this process.
    pub last_node: String,
    /// Since the agents were started.
    pub elapsed_ms: u64,
    /// Links started (past the ramp and enrolment).
    pub started: u64,
    /// Agents that enrolled in this run (not those enrolled before).
    pub enrolled: u64,
    /// Enrolment attempts that failed transiently and were retried.
    pub enrol_retries: u64,
    /// Enrolment time of the agents that enrolled (retries included).
    pub enrol_p50_ms: Option<f64>,
    pub enrol_p99_ms: Option<f64>,
    pub enrol_max_ms: Option<f64>,
    /// Links holding a registered session now.
    pub registered: u64,
    /// Highest `registered` seen.
    pub registered_peak: u64,
    /// Links that registered at least once.
    pub ever_registered: u64,
    /// From the agents' start until the last one first registered; null
    /// until all have.
    pub time_to_all_registered_ms: Option<u64>,
    /// From each link's start to its first registration.
    pub registration_p50_ms: Option<f64>,
    pub registration_p99_ms: Option<f64>,
    pub registration_max_ms: Option<f64>,
    /// Heartbeat round trips kept by all links (each keeps its latest 256).
    pub heartbeat_samples: u64,
    pub heartbeat_rtt_p50_us: Option<u64>,
    pub heartbeat_rtt_p99_us: Option<u64>,
    pub heartbeat_rtt_max_us: Option<u64>,
    /// Sessions that replaced an earlier one, all links together.
    pub reconnects: u64,
    /// Heartbeats that failed or went unanswered, all links together.
    pub heartbeat_failures: u64,
    /// Resident memory of this process (VmRSS).
    pub rss_bytes: Option<u64>,
    /// `rss_bytes` divided by `count`.
    pub rss_per_agent_bytes: Option<u64>,
    /// Descriptors this process holds now.
    pub open_fds: Option<u64>,
    /// Its open-file limit (raised to the hard limit at start).
    pub fd_limit: u64,
    /// The swarm has stopped: these are the final figures.
    pub stopped: bool,
}

/// Watches the agents: progress lines, the "all registered" line, the
/// statistics file.
pub struct Monitor {
    started_at: Instant,
    fd_limit: u64,
    stats_file: Option<PathBuf>,
    stats_interval: Duration,
    last_written: Option<Instant>,
    last_progress: Instant,
    registered_peak: u64,
    all_registered_after: Option<Duration>,
}

/// What one cheap pass over the agents finds.
struct Census {
    started: u64,
    registered: u64,
    ever_registered: u64,
    last_first_registration: Option<Instant>,
}

impl Monitor {
    /// A monitor for agents started at `started_at`.
    pub fn new(
        started_at: Instant,
        fd_limit: u64,
        stats_file: Option<PathBuf>,
        stats_interval: Duration,
    ) -> Self {
        Self {
            started_at,
            fd_limit,
            stats_file,
            stats_interval,
            last_written: None,
            last_progress: started_at,
            registered_peak: 0,
            all_registered_after: None,
        }
    }

    /// When every agent had registered, counted from their start.
    pub fn all_registered_after(&self) -> Option<Duration> {
        self.all_registered_after
    }

    /// Looks at the agents; logs, and rewrites the statistics file when due.
    pub fn tick(&mut self, shared: &Shared) {
        let census = census(shared);
        self.registered_peak = self.registered_peak.max(census.registered);
        let count = shared.template.count();
        if self.all_registered_after.is_none() {
            if census.ever_registered == count {
                let last = census.last_first_registration.unwrap_or_else(Instant::now);
                let after = last.saturating_duration_since(self.started_at);
                self.all_registered_after = Some(after);
                info!(
                    "all {count} agents registered in {:.2} s",
                    after.as_secs_f64()
                );
            } else if self.last_progress.elapsed() >= PROGRESS_EVERY {
                self.last_progress = Instant::now();
                let retries = shared.enroller.retries();
                match shared.enroller.last_retry_reason() {
                    Some(why) if retries > 0 => info!(
                        "{} of {count} agents registered, {} started; {retries} enrolment retries, latest: {why}",
                        census.ever_registered, census.started
                    ),
                    _ => info!(
                        "{} of {count} agents registered, {} started",
                        census.ever_registered, census.started
                    ),
                }
            }
        }
        let due = self
            .last_written
            .is_none_or(|t| t.elapsed() >= self.stats_interval);
        if self.stats_file.is_some() && due {
            self.last_written = Some(Instant::now());
            self.write(shared, false);
        }
    }

    /// Writes the final figures (if a statistics file was asked for).
    pub fn finish(&mut self, shared: &Shared) {
        self.write(shared, true);
    }

    fn write(&self, shared: &Shared, stopped: bool) {
        let Some(path) = &self.stats_file else {
            return;
        };
        let stats = self.compute(shared, stopped);
        if let Err(e) = write_atomic(path, &stats) {
            warn!(file = %path.display(), "cannot write statistics: {e}");
        }
    }

    /// Every figure, from one pass over the agents.
    pub fn compute(&self, shared: &Shared, stopped: bool) -> Stats {
        let count = shared.template.count();
        let census = census(shared);
        let mut registration = Vec::new();
        let mut enrolment = Vec::new();
        let mut rtt = Histogram::default();
        let (mut reconnects, mut heartbeat_failures) = (0, 0);
        for slot in shared.slots.iter() {
            if let Some(d) = slot.registration_latency() {
                registration.push(d);
            }
            if let Some(d) = slot.enrolment() {
                enrolment.push(d);
            }
            if let Some(c) = slot.counters() {
                c.for_each_rtt(|d| rtt.record(d.as_micros() as u64));
                reconnects += c.reconnects();
                heartbeat_failures += c.heartbeat_failures();
            }
        }
        let (reg50, reg99, reg_max) = millis_percentiles(&mut registration);
        let (en50, en99, en_max) = millis_percentiles(&mut enrolment);
        let rss = rss_bytes();
        Stats {
            count,
            first_node: shared.template.node_id(0),
            last_node: shared.template.node_id(count.saturating_sub(1)),
            elapsed_ms: self.started_at.elapsed().as_millis() as u64,
            started: census.started,
            enrolled: enrolment.len() as u64,
            enrol_retries: shared.enroller.retries(),
            enrol_p50_ms: en50,
            enrol_p99_ms: en99,
            enrol_max_ms: en_max,
            registered: census.registered,
            registered_peak: self.registered_peak.max(census.registered),
            ever_registered: census.ever_registered,
            time_to_all_registered_ms: self.all_registered_after.map(|d| d.as_millis() as u64),
            registration_p50_ms: reg50,
            registration_p99_ms: reg99,
            registration_max_ms: reg_max,
            heartbeat_samples: rtt.total,
            heartbeat_rtt_p50_us: rtt.percentile(0.50),
            heartbeat_rtt_p99_us: rtt.percentile(0.99),
            heartbeat_rtt_max_us: (rtt.total > 0).then_some(rtt.max),
            reconnects,
            heartbeat_failures,
            rss_bytes: rss,
            rss_per_agent_bytes: rss.map(|r| r / count.max(1)),
            open_fds: open_fds(),
            fd_limit: self.fd_limit,
            stopped,
        }
    }
}

fn census(shared: &Shared) -> Census {
    let mut c = Census {
        started: 0,
        registered: 0,
        ever_registered: 0,
        last_first_registration: None,
    };
    for slot in shared.slots.iter() {
        if slot.started() {
            c.started += 1;
        }
        let Some(counters) = slot.counters() else {
            continue;
        };
        if counters.registered() {
            c.registered += 1;
        }
        if let Some(at) = counters.first_registered() {
            c.ever_registered += 1;
            c.last_first_registration = c.last_first_registration.max(Some(at));
        }
    }
    c
}

/// The index `round((n - 1) * p)`, as the agent's own percentiles pick.
fn rank(n: usize, p: f64) -> usize {
    (((n as f64 - 1.0) * p).round() as usize).min(n.saturating_sub(1))
}

/// p50, p99 and max in milliseconds (three decimals); None when empty.
fn millis_percentiles(v: &mut [Duration]) -> (Option<f64>, Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None, None);
    }
    v.sort_unstable();
    let ms = |d: Duration| Some((d.as_secs_f64() * 1e6).round() / 1e3);
    (
        ms(v[rank(v.len(), 0.50)]),
        ms(v[rank(v.len(), 0.99)]),
        ms(v[v.len() - 1]),
    )
}

/// Sub-buckets per power of two: values are kept within 1/64 (1.6 %).
const SUB_BUCKETS: u64 = 64;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();

/// A log-linear histogram of microseconds: merging every agent's samples
/// costs a few KiB however many agents there are, and values below 64 µs
/// are exact.
#[derive(Debug)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; Self::bucket(u64::MAX) + 1],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn bucket(v: u64) -> usize {
        if v < SUB_BUCKETS {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= SUB_BITS
        let sub = (v >> (exp - SUB_BITS)) & (SUB_BUCKETS - 1);
        ((exp - SUB_BITS + 1) as u64 * SUB_BUCKETS + sub) as usize
    }

    /// The smallest value of bucket `i`.
    fn floor(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB_BUCKETS {
            return i;
        }
        let exp = (i / SUB_BUCKETS) as u32 + SUB_BITS - 1;
        let sub = i % SUB_BUCKETS;
        (SUB_BUCKETS + sub) << (exp - SUB_BITS)
    }

    fn record(&mut self, v: u64) {
        self.counts[Self::bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// The value at quantile `p` (within 1/64), None when empty.
    fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let target = rank(self.total as usize, p) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen > target {
                return Some(Self::floor(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Resident memory of this process, from `/proc/self/status`.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// Writes `stats` to a temporary file beside `path`, then renames it over
/// `path`: a reader never sees half a file.
fn write_atomic(path: &Path, stats: &Stats) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(stats).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stats".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip() {
        for v in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456, u64::MAX / 2] {
            let b = Histogram::bucket(v);
            let floor = Histogram::floor(b);
            assert!(floor <= v, "{v}: floor {floor}");
            assert!(v - floor <= v / 64, "{v}: floor {floor} too far");
            assert_eq!(Histogram::bucket(floor), b, "{v}");
        }
        assert_eq!(
            Histogram::bucket(u64::MAX),
            Histogram::default().counts.len() - 1
        );
    }

    #[test]
    fn histogram_percentiles_match_the_agents_own() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(ms * 1000);
        }
        // LinkCounters gives 51 ms and 99 ms for the same samples.
        let p50 = h.percentile(0.50).unwrap();
        let p99 = h.percentile(0.99).unwrap();
        assert!((51_000 - 51_000 / 64..=51_000).contains(&p50), "{p50}");
        assert!((99_000 - 99_000 / 64..=99_000).contains(&p99), "{p99}");
        assert_eq!(h.max, 100_000);
        assert_eq!(Histogram::default().percentile(0.5), None);
    }

    #[test]
    fn millisecond_percentiles() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        v.reverse();
        assert_eq!(
            millis_percentiles(&mut v),
            (Some(51.0), Some(99.0), Some(100.0))
        );
        assert_eq!(millis_percentiles(&mut []), (None, None, None));
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes().unwrap() > 0);
    }
}
