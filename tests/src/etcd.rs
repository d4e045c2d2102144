//! Real etcd for the tests of the etcd store and of active/standby masters:
//! [`EtcdCluster::start`] runs members of Debian's `etcd-server` (etcd 3.4)
//! on free loopback ports, each in its own temporary directory, and waits
//! until every one answers `GET /health` with `{"health":"true"}`. Members
//! can be killed, stopped and started again on the same data directory; all
//! are killed and their directories removed when the handle drops.
//!
//! Without an etcd binary a test is skipped with a loud message
//! ([`require_etcd!`](crate::require_etcd)), except when the `CI`
//! environment variable is set: then it fails, so CI cannot skip silently.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Proc, free_port};

/// Longest wait for a member (or a whole cluster) to become healthy.
pub const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest wait for one `/health` answer; etcd's own check of a range
/// request gives up after a second.
pub const ETCD_HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Raft heartbeat of test members, milliseconds: ten times etcd's default
/// rate, so an election after a kill takes half a second, not seconds.
const HEARTBEAT_INTERVAL_MS: u32 = 50;

/// Raft election timeout of test members, milliseconds.
const ELECTION_TIMEOUT_MS: u32 = 500;

/// Fresh port sets tried when a member cannot bind its ports (another
/// process took one between [`free_port`] and etcd's bind).
const START_ATTEMPTS: u32 = 3;

/// Where Debian's `etcd-server` puts the binary, tried after `PATH`.
const DEBIAN_ETCD: &str = "/usr/bin/etcd";

/// What a test prints when it skips for want of etcd.
pub const ETCD_MISSING: &str =
    "SKIPPED: etcd not found; install Debian package etcd-server (apt-get install etcd-server)";

/// Tells apart the clusters this process starts (token, key prefix).
static CLUSTERS_STARTED: AtomicU32 = AtomicU32::new(0);

/// The etcd binary: `etcd` on `PATH`, else Debian's `/usr/bin/etcd`.
pub fn etcd_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"));
    on_path
        .chain([PathBuf::from(DEBIAN_ETCD)])
        .find(|p| p.is_file())
}

/// The etcd binary, or None after a loud skip message; panics in CI.
fn etcd_or_skip() -> Option<PathBuf> {
    etcd_binary().or_else(|| {
        crate::missing_binary("etcd", "etcd-server", ETCD_MISSING);
        None
    })
}

/// The etcd cluster of a test, or `return` from the test (after a loud skip
/// message) when no etcd is installed; in CI a missing etcd fails instead.
/// `require_etcd!()` gives one member ([`Etcd`]), `require_etcd!(3)` a
/// three-member [`EtcdCluster`].
#[macro_export]
macro_rules! require_etcd {
    () => {
        match $crate::Etcd::single() {
            Some(etcd) => etcd,
            None => return,
        }
    };
    ($members:expr) => {
        match $crate::EtcdCluster::start($members) {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

/// The `store:` section of a master.yml keeping state under `prefix` in
/// the etcd at `endpoints`, as master `name`, with a 2 s lease (the
/// shortest masterd accepts) so that failover tests are quick.
pub fn etcd_store_yml(endpoints: &[String], prefix: &str, name: &str) -> String {
    let list = endpoints
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "store:
  backend: etcd
  etcd:
    endpoints: [{list}]
    prefix: {prefix}
    lease_ttl: 2s
    name: {name}
"
    )
}

/// TLS of the members' client URLs: their certificate (for 127.0.0.1) and
/// the CA clients' certificates must come from (`--client-cert-auth`).
#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl EtcdTls {
    /// The client certificate masters present: `client.pem` beside the
    /// CA file.
    pub fn client_cert(&self) -> PathBuf {
        self.ca_file.with_file_name("client.pem")
    }

    /// Its key: `client-key.pem` beside the CA file.
    pub fn client_key(&self) -> PathBuf {
        self.ca_file.with_file_name("client-key.pem")
    }
}

/// One member: its ports, directory and process (None while down).
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain HTTP `/health` (and `/metrics`) when the client URL is TLS.
    metrics_port: u16,
    tls: bool,
    /// Holds `data/` and the logs of each start.
    dir: PathBuf,
    proc: Option<Proc>,
    /// Starts so far, to name each start's log.
    starts: u32,
}

impl Member {
    fn client_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Where `/health` answers over plain HTTP.
    fn health_url(&self) -> String {
        if self.tls {
            format!("http://127.0.0.1:{}", self.metrics_port)
        } else {
            self.client_url()
        }
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// etcd members on loopback forming one cluster; see the module docs.
pub struct EtcdCluster {
    bin: PathBuf,
    members: Vec<Member>,
    /// `--initial-cluster`: every member's name and peer URL.
    initial_cluster: String,
    /// `--initial-cluster-token`, unique to this cluster.
    token: String,
    /// TLS of the client URLs, if on.
    tls: Option<EtcdTls>,
    /// A key prefix unique to this cluster, for [`EtcdCluster::store_yml`].
    pub prefix: String,
    /// Last, so that it is removed after the members were killed.
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `members` members and waits until all are healthy; None
    /// (after a loud message) when etcd is not installed, a panic instead
    /// when `CI` is set.
    pub fn start(members: usize) -> Option<Self> {
        Self::start_with(members, None)
    }

    /// As [`EtcdCluster::start`], with TLS on the client URLs (and client
    /// certificates required) when `tls` is given.
    pub fn start_with(members: usize, tls: Option<EtcdTls>) -> Option<Self> {
        assert!(members >= 1, "an etcd cluster needs a member");
        let bin = etcd_or_skip()?;
        let mut taken = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut cluster = Self::create(&bin, members, tls.clone());
            for i in 0..members {
                cluster.spawn(i);
            }
            match cluster.wait_ready() {
                Ok(()) => return Some(cluster),
                Err(member) => taken = member,
            }
        }
        panic!("etcd could not bind its ports in {START_ATTEMPTS} attempts, last {taken}")
    }

    /// A cluster description with fresh ports and directories, nothing
    /// started.
    fn create(bin: &Path, members: usize, tls: Option<EtcdTls>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("etcd-")
            .tempdir()
            .expect("tempdir for etcd");
        let n = CLUSTERS_STARTED.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let token = format!("cdn-test-{}-{n}-{nanos:x}", std::process::id());
        let members: Vec<Member> = (0..members)
            .map(|i| {
                let name = format!("m{i}");
                let dir = dir.path().join(&name);
                std::fs::create_dir_all(&dir).expect("mkdir etcd member");
                Member {
                    name,
                    client_port: free_port(),
                    peer_port: free_port(),
                    metrics_port: free_port(),
                    tls: tls.is_some(),
                    dir,
                    proc: None,
                    starts: 0,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            bin: bin.to_path_buf(),
            members,
            initial_cluster,
            prefix: format!("/{token}/"),
            token,
            tls,
            dir,
        }
    }

    /// Spawns member `i` with its flags; the same flags serve a restart
    /// (etcd ignores the `--initial-*` ones once its data directory holds
    /// a member).
    fn spawn(&mut self, i: usize) {
        let initial_cluster = self.initial_cluster.clone();
        let token = self.token.clone();
        let bin = self.bin.clone();
        let tls = self.tls.clone();
        let m = &mut self.members[i];
        assert!(m.proc.is_none(), "etcd {} is already running", m.name);
        m.starts += 1;
        let log = match m.starts {
            1 => m.dir.join("etcd.log"),
            n => m.dir.join(format!("etcd-start-{n}.log")),
        };
        let (client, peer) = (m.client_url(), m.peer_url());
        let mut cmd = Command::new(bin);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(m.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            .args(["--heartbeat-interval", &HEARTBEAT_INTERVAL_MS.to_string()])
            .args(["--election-timeout", &ELECTION_TIMEOUT_MS.to_string()])
            .args(["--logger", "zap", "--log-outputs", "stderr"]);
        if let Some(t) = &tls {
            cmd.arg("--cert-file")
                .arg(&t.cert_file)
                .arg("--key-file")
                .arg(&t.key_file)
                .arg("--trusted-ca-file")
                .arg(&t.ca_file)
                .arg("--client-cert-auth")
                .arg("--listen-metrics-urls")
                .arg(m.health_url());
        }
        // etcd reads every flag from ETCD_<FLAG> too: the user's settings
        // must not reach the test members.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("ETCD_") && key != "ETCD_UNSUPPORTED_ARCH" {
                cmd.env_remove(key.as_ref());
            }
        }
        m.proc = Some(Proc::spawn(
            &format!("etcd {}", m.name),
            &mut cmd,
            Stdio::null(),
            log,
        ));
    }

    /// Waits until every member is healthy. Err(what) when a member exited
    /// because one of its ports was taken (the caller retries on fresh
    /// ports); panics, with the log's tail shown, on any other failure.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + ETCD_READY_TIMEOUT;
        for i in 0..self.members.len() {
            loop {
                if self.health(i) == Some(true) {
                    break;
                }
                if !self.is_up(i) {
                    let log = self.log_text(i);
                    if log.contains("address already in use") {
                        return Err(format!("{} (member {i})", self.members[i].name));
                    }
                    panic!("etcd member {i} exited while starting:\n{}", tail(&log));
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {i} not healthy within {ETCD_READY_TIMEOUT:?}:\n{}",
                    tail(&self.log_text(i))
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Whether member `i`'s process is running.
    pub fn is_up(&mut self, i: usize) -> bool {
        self.members[i]
            .proc
            .as_mut()
            .is_some_and(|p| p.is_running())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no member (never: [`EtcdCluster::start`]
    /// refuses zero).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Client URLs of every member (`http://127.0.0.1:port`), up or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// The `store:` section of a master.yml on this cluster under its
    /// [`prefix`](EtcdCluster::prefix), as master `name`: masters given
    /// the same cluster share one state and elect one leader.
    pub fn store_yml(&self, name: &str) -> String {
        let yml = etcd_store_yml(&self.endpoints(), &self.prefix, name);
        match &self.tls {
            None => yml,
            // The members' CA signed the masters' client certificates too.
            Some(t) => format!(
                "{yml}    ca_file: {}\n    cert_file: {}\n    key_file: {}\n",
                t.ca_file.display(),
                t.client_cert().display(),
                t.client_key().display()
            ),
        }
    }

    /// Process id of member `i`; panics while it is down.
    pub fn pid(&self, i: usize) -> u32 {
        self.members[i]
            .proc
            .as_ref()
            .unwrap_or_else(|| panic!("etcd member {i} is down"))
            .pid()
    }

    /// SIGKILLs member `i` and reaps it; its data directory stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].proc.take() {
            p.kill();
        }
    }

    /// SIGTERMs member `i` (a clean stop) and waits for it to exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].proc.take() {
            p.terminate();
        }
    }

    /// Starts member `i` again on its ports and data directory, and waits
    /// (bounded) until it answers `/health`, healthy or not: alone, a
    /// member of a cluster without quorum answers but is not healthy. Use
    /// [`EtcdCluster::wait_healthy`] to wait for quorum.
    pub fn start_member(&mut self, i: usize) {
        self.spawn(i);
        let deadline = Instant::now() + ETCD_READY_TIMEOUT;
        while self.health(i).is_none() {
            assert!(
                self.is_up(i),
                "etcd member {i} exited on restart:\n{}",
                tail(&self.log_text(i))
            );
            assert!(
                Instant::now() < deadline,
                "etcd member {i} did not answer /health within {ETCD_READY_TIMEOUT:?} after a restart:\n{}",
                tail(&self.log_text(i))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Member `i`'s own `GET /health`: Some(true) when it is healthy (a
    /// leader, and a read goes through), Some(false) when it answers
    /// otherwise (no leader: no quorum), None when it does not answer
    /// within [`ETCD_HEALTH_REQUEST_TIMEOUT`].
    pub fn health(&self, i: usize) -> Option<bool> {
        let (status, body) = http_get(
            &self.members[i].health_url(),
            "/health",
            ETCD_HEALTH_REQUEST_TIMEOUT,
        )?;
        Some(status == 200 && body.contains(r#""health":"true""#))
    }

    /// Waits (bounded) until member `i` is healthy; panics with its log's
    /// tail otherwise.
    pub fn wait_healthy(&self, i: usize) {
        let deadline = Instant::now() + ETCD_READY_TIMEOUT;
        while self.health(i) != Some(true) {
            assert!(
                Instant::now() < deadline,
                "etcd member {i} not healthy within {ETCD_READY_TIMEOUT:?}:\n{}",
                tail(&self.log_text(i))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log of member `i`'s latest start.
    pub fn log_text(&self, i: usize) -> String {
        let m = &self.members[i];
        let log = match m.starts {
            0 | 1 => m.dir.join("etcd.log"),
            n => m.dir.join(format!("etcd-start-{n}.log")),
        };
        std::fs::read_to_string(log).unwrap_or_default()
    }

    /// The directory holding every member's data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// One etcd member: an [`EtcdCluster`] of one, with shorthands.
pub struct Etcd(EtcdCluster);

impl Etcd {
    /// Starts one member and waits until it is healthy; None (after a loud
    /// message) when etcd is not installed, a panic instead when `CI` is set.
    pub fn single() -> Option<Self> {
        EtcdCluster::start(1).map(Self)
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        self.0.endpoint(0)
    }
}

impl Deref for Etcd {
    type Target = EtcdCluster;
    fn deref(&self) -> &EtcdCluster {
        &self.0
    }
}

impl DerefMut for Etcd {
    fn deref_mut(&mut self) -> &mut EtcdCluster {
        &mut self.0
    }
}

/// The last lines of a log, for a panic message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A plain HTTP/1.0 GET of `path` on `base` (`http://host:port`): status
/// code and body, or None when nothing answers within `timeout`.
pub fn http_get(base: &str, path: &str, timeout: Duration) -> Option<(u16, String)> {
    http_request("GET", base, path, "", timeout)
}

/// A plain HTTP/1.0 POST of a JSON `body` (etcd's JSON gateway to its v3
/// API: `/v3/kv/put`, `/v3/kv/range`, keys and values in base64), as
/// [`http_get`].
pub fn http_post(base: &str, path: &str, body: &str, timeout: Duration) -> Option<(u16, String)> {
    http_request("POST", base, path, body, timeout)
}

/// One HTTP/1.0 request; the server closes the connection after its answer.
fn http_request(
    method: &str,
    base: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let host = base.strip_prefix("http://")?.trim_end_matches('/');
    let addr: SocketAddr = host.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
