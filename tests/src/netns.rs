//! A network namespace joined to this one by a veth pair, for partition
//! tests: an agent runs inside (`ip netns exec NAME agentd …`) and dials
//! the master on the host end's address; setting the host end down cuts
//! the link, setting it up heals it. Needs root or CAP_NET_ADMIN; names
//! are unique per test process, and everything is removed on drop (also
//! when the test panics).

use std::net::Ipv4Addr;
use std::process::Command;

/// The namespace and the pair; removed on drop.
pub struct Netns {
    /// Namespace name, for `ip netns exec`.
    pub name: String,
    /// The host end of the pair (in this namespace).
    pub host_link: String,
    /// Address of the host end (the master listens here).
    pub host_ip: Ipv4Addr,
    /// Address of the end inside the namespace.
    pub inner_ip: Ipv4Addr,
}

/// Runs `ip` with `args`; the error is its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Makes namespace `cdnf<pid>` with a veth pair on the /30 of
    /// 10.0.0.0/8 numbered by the process id. Err when this process may not (no root, no
    /// CAP_NET_ADMIN, no `ip`): the caller skips loudly, or fails in CI.
    pub fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let name = format!("cdnf{pid}");
        ip(&["netns", "add", &name])?;
        // From here on, drop removes what exists.
        // One /30 of 10.0.0.0/8 per process id (ids fit in 22 bits).
        let block = (10u32 << 24) | ((pid & 0x3f_ffff) << 2);
        let ns = Self {
            host_link: format!("vf{pid}h"),
            host_ip: Ipv4Addr::from(block | 1),
            inner_ip: Ipv4Addr::from(block | 2),
            name,
        };
        let inner_link = format!("vf{pid}a");
        let host_cidr = format!("{}/30", ns.host_ip);
        let inner_cidr = format!("{}/30", ns.inner_ip);
        ip(&[
            "link",
            "add",
            &ns.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &inner_link,
        ])?;
        ip(&["link", "set", &inner_link, "netns", &ns.name])?;
        ip(&["addr", "add", &host_cidr, "dev", &ns.host_link])?;
        ip(&["link", "set", &ns.host_link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &inner_cidr, "dev", &inner_link])?;
        inside(&["link", "set", &inner_link, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Cuts the link (the host end goes down: packets are dropped both
    /// ways, connections are not told).
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_link, "down"]).expect("cut the link");
    }

    /// Heals the link.
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_link, "up"]).expect("heal the link");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the inner end, and with it the
        // pair; the host end is deleted too in case the move failed.
        let _ = ip(&["link", "del", &self.host_link]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
