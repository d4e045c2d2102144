//! Collecting the node's system figures every `status.collect_interval`.
//!
//! The collector owns its `sysinfo` handles and publishes the latest sample on
//! a watch channel; sessions read the newest value when they report.

use std::sync::Arc;
use std::time::Duration;

use cdn_proto::v1::SystemStatus;
use sysinfo::{Disks, Networks, System};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::{AgentConfig, LiveConfig};
use crate::pace::Pace;

/// The sysinfo handles, refreshed in place.
struct Probe {
    system: System,
    disks: Disks,
    networks: Networks,
}

impl Probe {
    fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        system.refresh_memory();
        Self {
            system,
            disks: Disks::new_with_refreshed_list(),
            networks: Networks::new_with_refreshed_list(),
        }
    }

    fn sample(&mut self) -> SystemStatus {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);
        let (mut disk_total, mut disk_used) = (0u64, 0u64);
        let mut seen = std::collections::HashSet::new();
        for d in self.disks.list() {
            // The same device can be mounted several times (bind mounts).
            if !seen.insert(d.name().to_os_string()) {
                continue;
            }
            disk_total += d.total_space();
            disk_used += d.total_space().saturating_sub(d.available_space());
        }
        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in self.networks.iter() {
            if name == "lo" {
                continue;
            }
            rx += data.total_received();
            tx += data.total_transmitted();
        }
        let load = System::load_average();
        SystemStatus {
            cpu_percent: f64::from(self.system.global_cpu_usage()),
            cpu_count: self.system.cpus().len() as u32,
            mem_used_bytes: self.system.used_memory(),
            mem_total_bytes: self.system.total_memory(),
            disk_used_bytes: disk_used,
            disk_total_bytes: disk_total,
            load1: load.one,
            load5: load.five,
            load15: load.fifteen,
            uptime_seconds: System::uptime(),
            net_rx_bytes: rx,
            net_tx_bytes: tx,
            collected_at_ms: cdn_common::unix_millis_now(),
        }
    }

    /// Non-loopback IP addresses of this host.
    fn addresses(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, data) in self.networks.iter() {
            for net in data.ip_networks() {
                if !net.addr.is_loopback() && !net.addr.is_unspecified() {
                    out.push(net.addr.to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Latest figures and the host's addresses.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub system: Option<SystemStatus>,
    pub addresses: Vec<String>,
}

impl Snapshot {
    /// Why the node should report itself degraded, if it should.
    pub fn degraded_reason(&self, cfg: &crate::config::StatusConfig) -> Option<String> {
        let s = self.system.as_ref()?;
        let pct = |used: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                used as f64 * 100.0 / total as f64
            }
        };
        let mem = pct(s.mem_used_bytes, s.mem_total_bytes);
        if mem > cfg.degraded_mem_percent.0 {
            return Some(format!(
                "memory {mem:.0}% used (above status.degraded_mem_percent {})",
                cfg.degraded_mem_percent.0
            ));
        }
        let disk = pct(s.disk_used_bytes, s.disk_total_bytes);
        if disk > cfg.degraded_disk_percent.0 {
            return Some(format!(
                "disk {disk:.0}% used (above status.degraded_disk_percent {})",
                cfg.degraded_disk_percent.0
            ));
        }
        None
    }
}

/// Starts collecting every `interval`; the first sample is taken at once.
pub fn spawn_collector(
    interval: Duration,
    shutdown: CancellationToken,
    tasks: &tokio_util::task::TaskTracker,
) -> watch::Receiver<Snapshot> {
    let config = AgentConfig {
        status: crate::config::StatusConfig {
            collect_interval: interval,
            ..Default::default()
        },
        ..Default::default()
    };
    spawn_collector_following(watch::channel(Arc::new(config)).1, shutdown, tasks)
}

/// Starts collecting every `status.collect_interval` of the configuration
/// in force: a reloaded agent.yml changes the pace at once. The first
/// sample is taken at once.
pub fn spawn_collector_following(
    live: LiveConfig,
    shutdown: CancellationToken,
    tasks: &tokio_util::task::TaskTracker,
) -> watch::Receiver<Snapshot> {
    let (tx, rx) = watch::channel(Snapshot::default());
    tasks.spawn(async move {
        let mut probe = Some(Probe::new());
        let mut pace = Pace::new(live, |c| c.status.collect_interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = pace.tick() => {}
            }
            let Some(mut p) = probe.take() else { return };
            // sysinfo reads /proc synchronously: keep it off the async workers.
            match tokio::task::spawn_blocking(move || {
                let system = p.sample();
                let addresses = p.addresses();
                (p, system, addresses)
            })
            .await
            {
                Ok((p, system, addresses)) => {
                    probe = Some(p);
                    tx.send_replace(Snapshot {
                        system: Some(system),
                        addresses,
                    });
                }
                Err(e) => {
                    warn!(error = %e, "status collection failed; collector restarts");
                    probe = Some(Probe::new());
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_has_real_figures() {
        let mut p = Probe::new();
        std::thread::sleep(Duration::from_millis(200));
        let s = p.sample();
        assert!(s.mem_total_bytes > 0);
        assert!(s.mem_used_bytes <= s.mem_total_bytes);
        assert!(s.cpu_count > 0);
        assert!(s.uptime_seconds > 0);
        assert!(s.disk_total_bytes >= s.disk_used_bytes);
    }

    #[test]
    fn degraded_when_memory_above_threshold() {
        let snap = Snapshot {
            system: Some(SystemStatus {
                mem_used_bytes: 90,
                mem_total_bytes: 100,
                ..Default::default()
            }),
            addresses: vec![],
        };
        let mut cfg = crate::config::StatusConfig::default();
        assert!(snap.degraded_reason(&cfg).is_none());
        cfg.degraded_mem_percent = crate::config::Percent(50.0);
        assert!(snap.degraded_reason(&cfg).unwrap().contains("memory 90%"));
    }
}
