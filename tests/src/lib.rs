//! Test harness: starts the real `masterd`, `agentd`, `cdnctl` and
//! `cdn-swarm` binaries on ephemeral loopback ports, with short intervals,
//! in a temporary directory.
//!
//! `Fleet::start(3)` gives a master and `agent-1..3`, all online;
//! `fleet.ctl(["nodes", "list", "-o", "json"])` runs cdnctl against it;
//! `Swarm::start(dir, &swarm_yml(&addr), &["--count", "200"])` adds hollow
//! agents. Each of them is a [`Proc`]: its stderr goes to a log file, it is
//! killed when its handle drops, and a failing test shows the tail of its log.
//!
//! For the etcd store, `require_etcd!(3)` starts a real three-member etcd
//! cluster ([`EtcdCluster`]) and `Master::start_with_yaml(dir,
//! &cluster.store_yml("m1"))` a master on it. `require_promtool!()` and
//! `require_prometheus!()` give Prometheus' own tools
//! ([`PrometheusServer`] scrapes a master).

pub mod disk;
mod etcd;
pub mod netns;
mod prometheus;
pub mod proxy;

pub use etcd::{
    ETCD_HEALTH_REQUEST_TIMEOUT, ETCD_MISSING, ETCD_READY_TIMEOUT, Etcd, EtcdCluster, EtcdTls,
    etcd_binary, etcd_store_yml, http_get, http_post,
};
pub use prometheus::{
    HttpAnswer, PROMETHEUS_MISSING, PROMTOOL_MISSING, PrometheusServer, TextExporter, ToolOutput,
    deploy_prometheus_dir, http_get_with, prometheus_or_skip, promtool, promtool_or_skip,
    scrape_config,
};

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest any test waits for a state to be reached.
pub const WAIT: Duration = Duration::from_secs(40);

/// Master config used by tests: liveness judged in about a second.
pub const TEST_MASTER_YML: &str = "\
heartbeat:
  interval: 300ms
  timeout: 3s
  offline_threshold: 4
reconnect:
  max_retries: 3
  base_delay: 50ms
  max_delay: 500ms
  jitter: 0.2
";

/// Whether the tests run in CI (`CI` set, and not to `0`/`false`): there a
/// missing etcd or Prometheus is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A system binary a test needs (`name`, from Debian's `package`) is
/// missing: a failure in CI, else a loud skip message `missing` for the
/// calling test. It goes straight to the process's stderr: libtest
/// captures what a passing test prints with `eprintln!`, and a skip must
/// be seen.
pub fn missing_binary(name: &str, package: &str, missing: &str) {
    use std::io::Write as _;
    assert!(
        !in_ci(),
        "{name} not found and CI is set, so this test may not skip: \
         install Debian package {package} (apt-get install {package}); .ci/run does"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!\n!!! {missing}\n!!! ({test} did not run)\n!!!!!!!!\n"
    );
}

/// Path of a workspace binary built next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Polls `check` until it returns `Some`, or panics naming `what`.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a signal by name (`STOP`, `CONT`, `KILL`, `TERM`) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Lines of a child's output as they come, read on their own thread.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Ports [`free_port`] handed out in this process: tests run in parallel
/// threads, and two of them must not be given the same port.
static PORTS_GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A free loopback port (bound, then released), never one this process
/// was given before.
pub fn free_port() -> u16 {
    let mut given = PORTS_GIVEN.lock().expect("ports lock");
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if given.insert(port) {
            return port;
        }
    }
}

/// `extra` merged into `base`, both YAML mappings: a mapping in both
/// merges key by key, anything else in `extra` replaces what `base` has.
/// Lets a test add `store:` or change `heartbeat.interval` on top of
/// [`TEST_MASTER_YML`] without repeating it.
pub fn merge_yaml(base: &str, extra: &str) -> String {
    use serde_json::{Map, Value as Yaml};
    fn merge(base: &mut Yaml, extra: Yaml) {
        match (base, extra) {
            (Yaml::Object(b), Yaml::Object(e)) => {
                for (k, v) in e {
                    match b.get_mut(&k) {
                        Some(old) => merge(old, v),
                        None => {
                            b.insert(k, v);
                        }
                    }
                }
            }
            (b, e) => *b = e,
        }
    }
    let parse = |text: &str| -> Yaml {
        if text.trim().is_empty() {
            return Yaml::Object(Map::new());
        }
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("bad test YAML: {e}\n{text}"))
    };
    let mut merged = parse(base);
    merge(&mut merged, parse(extra));
    serde_saphyr::to_string(&merged).expect("YAML serializes")
}

/// How many of its last log lines a process shows when a test fails.
const LOG_TAIL_LINES: usize = 30;

/// A process the harness started: the one place that spawns, signals,
/// waits for and reaps the binaries under test. Its stdin is closed and its
/// stderr goes to [`Proc::log`]; it is killed and reaped when the handle
/// drops, after showing the tail of its log if the test is failing.
/// [`Master`], [`Agent`] and [`Swarm`] dereference to their `Proc`.
pub struct Proc {
    /// None once the process was reaped.
    child: Option<Child>,
    /// What runs, for messages: `masterd`, `agentd agent-1`, `cdn-swarm`.
    what: String,
    /// The file its stderr goes to.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` as `what` with stdin closed, `stdout` as given and
    /// stderr written to `log` (truncated first).
    pub fn spawn(what: &str, cmd: &mut Command, stdout: Stdio, log: PathBuf) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        Self {
            child: Some(child),
            what: what.to_string(),
            log,
        }
    }

    /// The piped stdout (spawned with [`Stdio::piped`]), taken once.
    fn take_stdout(&mut self) -> ChildStdout {
        self.child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .unwrap_or_else(|| panic!("{} stdout not piped", self.what))
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.what))
            .id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `HUP`…), as [`signal`].
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.what));
        signal(c.id(), "TERM");
        c.wait()
            .unwrap_or_else(|e| panic!("wait {}: {e}", self.what))
    }

    /// Waits (bounded) for the process to exit by itself; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = self
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("{} is not running", self.what));
        let status = wait_for(&format!("{} to exit", self.what), || {
            child.try_wait().ok().flatten()
        });
        self.child = None;
        status.code()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    /// Kills the process; on a failing test, shows the tail of its log
    /// first: the cause is usually there.
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- {} log ({}) ---\n{}",
                self.what,
                self.log.display(),
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            );
        }
        self.kill();
    }
}

/// `Deref`/`DerefMut` to the [`Proc`] in field `proc`, so that
/// `master.pid()`, `agent.kill()` or `swarm.log_text()` reach it.
macro_rules! deref_to_proc {
    ($($t:ty),*) => {$(
        impl Deref for $t {
            type Target = Proc;
            fn deref(&self) -> &Proc {
                &self.proc
            }
        }

        impl DerefMut for $t {
            fn deref_mut(&mut self) -> &mut Proc {
                &mut self.proc
            }
        }
    )*};
}

deref_to_proc!(Master, Agent, Swarm);

/// Masters this test process started, by address: their data directory,
/// or None when they run `--insecure`. Lets [`agent_yml`], [`Agent::start`]
/// and [`ctl_at`] find the join token and the admin credential of the
/// master an address names, as a user would in the data directory.
static MASTERS: Mutex<Option<HashMap<String, Option<PathBuf>>>> = Mutex::new(None);

fn remember_master(addrs: &[SocketAddr], data: Option<PathBuf>) {
    let mut m = MASTERS.lock().expect("masters lock");
    let map = m.get_or_insert_with(HashMap::new);
    for a in addrs {
        map.insert(a.to_string(), data.clone());
    }
}

/// The master among those started whose address appears in `text`:
/// Some(Some(data_dir)) for a TLS master, Some(None) for an insecure one.
fn master_in(text: &str) -> Option<Option<PathBuf>> {
    let m = MASTERS.lock().expect("masters lock");
    m.as_ref()?
        .iter()
        .find(|(addr, _)| text.contains(addr.as_str()))
        .map(|(_, d)| d.clone())
}

/// `--insecure` when `text` names a master started so.
fn insecure_flag(text: &str) -> Option<&'static str> {
    matches!(master_in(text), Some(None)).then_some("--insecure")
}

/// The `master.join_token_file` line of an agent config for `master`: the
/// file the master wrote, when this process started it with TLS.
fn join_token_line(master: &str) -> String {
    match master_in(master) {
        Some(Some(data)) => format!("  join_token_file: {}\n", join_token_file(&data).display()),
        _ => String::new(),
    }
}

/// The admin credential masterd wrote into `data_dir`.
pub fn admin_credential(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.credential")
}

/// The join token file masterd wrote into `data_dir`.
pub fn join_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("join-token")
}

/// A running masterd: its [`Proc`], where it listens and how to restart it.
pub struct Master {
    proc: Proc,
    pub addr: SocketAddr,
    /// Where AdminService listens (same as `addr` unless `admin.addr` is set).
    pub admin_addr: SocketAddr,
    /// The metrics endpoint, when `metrics.addr` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub config: PathBuf,
    dir: PathBuf,
    /// The address it binds (loopback unless [`Master::start_on`] chose one).
    host: std::net::IpAddr,
    /// Config body without `grpc.addr` and `data_dir`.
    yaml: String,
    /// Extra command-line flags (`--insecure`).
    flags: Vec<String>,
}

impl Master {
    /// Starts masterd in `dir` with `yaml` as its master.yml body (grpc.addr
    /// and data_dir are added) on `port` (0 = ephemeral).
    pub fn start(dir: &Path, yaml: &str, port: u16) -> Self {
        Self::start_with_flags(dir, yaml, port, &[])
    }

    /// Starts masterd in `dir` on an ephemeral port with [`TEST_MASTER_YML`]
    /// and `extra` merged into it (see [`merge_yaml`]), for example
    /// [`EtcdCluster::store_yml`]. Masters sharing an etcd each need their
    /// own `dir`.
    pub fn start_with_yaml(dir: &Path, extra: &str) -> Self {
        Self::start(dir, &merge_yaml(TEST_MASTER_YML, extra), 0)
    }

    /// As [`Master::start`], with extra flags such as `--insecure`.
    pub fn start_with_flags(dir: &Path, yaml: &str, port: u16, flags: &[&str]) -> Self {
        Self::start_on(dir, yaml, std::net::Ipv4Addr::LOCALHOST.into(), port, flags)
    }

    /// As [`Master::start_with_flags`], listening on `host` instead of
    /// loopback (the host side of a veth pair, for a partition test).
    pub fn start_on(
        dir: &Path,
        yaml: &str,
        host: std::net::IpAddr,
        port: u16,
        flags: &[&str],
    ) -> Self {
        Self::start_with_env(dir, yaml, host, port, flags, &[])
    }

    /// As [`Master::start_on`], with extra environment variables (test
    /// hooks such as `MASTERD_TEST_KILL_AFTER_VERSION_STORED`).
    pub fn start_with_env(
        dir: &Path,
        yaml: &str,
        host: std::net::IpAddr,
        port: u16,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir");
        let config = dir.join("master.yml");
        // A `grpc:` section of `yaml` joins the one this writes.
        let (mut grpc, mut rest) = (String::new(), String::new());
        let mut in_grpc = false;
        for line in yaml.lines() {
            if line == "grpc:" {
                in_grpc = true;
                continue;
            }
            in_grpc &= line.starts_with(' ');
            let to = if in_grpc { &mut grpc } else { &mut rest };
            to.push_str(line);
            to.push('\n');
        }
        let body = format!(
            "grpc:\n  addr: {}\n{grpc}data_dir: {}\n{rest}",
            SocketAddr::new(host, port),
            dir.join("data").display()
        );
        std::fs::write(&config, body).expect("write master.yml");
        let mut proc = Proc::spawn(
            "masterd",
            Command::new(bin("masterd"))
                .arg("-c")
                .arg(&config)
                .args(flags)
                .envs(env.iter().copied()),
            Stdio::piped(),
            dir.join("masterd.log"),
        );
        let mut line = String::new();
        BufReader::new(proc.take_stdout())
            .read_line(&mut line)
            .expect("read masterd stdout");
        let field = |name: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("masterd did not start: {line:?}\n{}", proc.log_text()))
        };
        let (addr, admin_addr) = (field("grpc="), field("admin="));
        let metrics_addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("metrics="))
            .and_then(|a| a.parse().ok());
        let insecure = flags.contains(&"--insecure");
        let data = dir.join("data");
        remember_master(&[addr, admin_addr], (!insecure).then(|| data.clone()));
        Self {
            proc,
            addr,
            admin_addr,
            metrics_addr,
            config,
            dir: dir.to_path_buf(),
            host,
            yaml: yaml.to_string(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Runs a management command (`masterd token|user|node …`) against
    /// this master with its admin credential.
    pub fn manage<I, S>(&self, args: I) -> CtlOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run(Command::new(bin("masterd"))
            .arg("--credential")
            .arg(self.credential())
            .arg("--master")
            .arg(self.admin_addr.to_string())
            .args(args))
    }

    /// Issues a credential to `name` with `role` through the running
    /// master; returns the credential file (in the master's directory).
    pub fn add_user(&self, name: &str, role: &str) -> PathBuf {
        let out = self.dir.join(format!("{name}.credential"));
        let r = self.manage([
            "user",
            "add",
            name,
            "--role",
            role,
            "--out",
            &out.to_string_lossy(),
        ]);
        assert_eq!(r.code, Some(0), "user add {name}: {}", r.stderr);
        out
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// The data directory (CA, admin credential, join token, store).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The admin credential this master wrote.
    pub fn credential(&self) -> PathBuf {
        admin_credential(&self.data_dir())
    }

    /// The join token this master wrote on its first start.
    pub fn join_token(&self) -> String {
        std::fs::read_to_string(join_token_file(&self.data_dir()))
            .expect("join token file")
            .trim()
            .to_string()
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts masterd again on the same port, config and data directory.
    pub fn restart(&mut self) {
        self.restart_with_env(&[]);
    }

    /// As [`Master::restart`], with extra environment variables for this
    /// run only (test hooks).
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.kill();
        let flags: Vec<String> = self.flags.clone();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        *self = Self::start_with_env(
            &self.dir.clone(),
            &self.yaml.clone(),
            self.host,
            self.addr.port(),
            &flags,
            env,
        );
    }

    /// The body of the master's `/metrics` (text format 0.0.4). Panics when
    /// the master has no metrics endpoint or it does not answer 200.
    pub fn metrics_text(&self) -> String {
        let addr = self
            .metrics_addr
            .expect("metrics address: start the master with metrics.addr");
        let answer = crate::prometheus::http_get_with(addr, "/metrics", &[])
            .expect("the metrics endpoint answers");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    /// Waits (bounded) for masterd to exit by itself; its exit code (None
    /// when a signal ended it).
    pub fn wait_exit(&mut self) -> Option<i32> {
        self.proc.wait_exit()
    }
}

/// The agent addresses of `masters` as a YAML list (`["127.0.0.1:1",
/// "127.0.0.1:2"]`), for the `master` argument of [`agent_yml`] and
/// [`swarm_yml`]: agents try them in turn and follow a standby's hint to
/// the leader.
pub fn master_addrs(masters: &[&Master]) -> String {
    let quoted: Vec<String> = masters.iter().map(|m| format!("\"{}\"", m.addr)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A running agentd: its [`Proc`], node name and config file.
pub struct Agent {
    proc: Proc,
    pub name: String,
    pub config: PathBuf,
}

/// Agent config used by tests, pointed at `master` (never degraded by a
/// nearly full disk of the machine running them); the managed config
/// file is `<dir>/<name>/edge.yml`, the key and certificate live in
/// `<dir>/<name>/agent-data`, and the join token is the file the master
/// wrote (for a master this process started).
pub fn agent_yml(dir: &Path, name: &str, master: &str) -> String {
    let token = join_token_line(master);
    format!(
        "config:
  path: {path}
  min_free_bytes: 0
data_dir: {data}
master:
  addr: {master}
{token}  dial_timeout: 1s
heartbeat:
  interval: 300ms
  timeout: 1s
status:
  collect_interval: 300ms
  report_interval: 300ms
  degraded_disk_percent: 100
node:
  id: {name}
  labels:
    role: edge
    pop: {pop}
",
        pop = if name.ends_with('1') { "fra" } else { "ams" },
        path = edge_file(dir, name).display(),
        data = dir.join(name).join("agent-data").display()
    )
}

/// The managed config file of agent `name` under `dir`.
pub fn edge_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name).join("edge.yml")
}

impl Agent {
    /// Starts agentd with `yaml` as agent.yml, logging to `<dir>/<file>.log`
    /// (with `--insecure` when the master it names runs so).
    pub fn start(dir: &Path, file: &str, name: &str, yaml: &str) -> Self {
        Self::start_wrapped(dir, file, name, yaml, &[])
    }

    /// As [`Agent::start`], run through `wrapper` (a command that execs
    /// its arguments, such as `ip netns exec NAME`), so that the process
    /// id is still agentd's.
    pub fn start_wrapped(dir: &Path, file: &str, name: &str, yaml: &str, wrapper: &[&str]) -> Self {
        let config = dir.join(format!("{file}.yml"));
        std::fs::write(&config, yaml).expect("write agent.yml");
        let mut cmd = match wrapper {
            [] => Command::new(bin("agentd")),
            [first, rest @ ..] => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin("agentd"));
                c
            }
        };
        let proc = Proc::spawn(
            &format!("agentd {name}"),
            cmd.arg("-c")
                .arg(&config)
                .args(insecure_flag(yaml))
                .env_remove("AGENTD_JOIN_TOKEN"),
            Stdio::null(),
            dir.join(format!("{file}.log")),
        );
        Self {
            proc,
            name: name.to_string(),
            config,
        }
    }
}

/// Template agent.yml for the hollow agents of `cdn-swarm` against
/// `master`: one-second heartbeats, the join token file of the master (for
/// a master this process started), never degraded by a nearly full disk.
pub fn swarm_yml(master: &str) -> String {
    let token = join_token_line(master);
    format!(
        "master:
  addr: {master}
{token}  dial_timeout: 5s
heartbeat:
  interval: 1s
  timeout: 5s
status:
  collect_interval: 1s
  report_interval: 2s
  degraded_disk_percent: 100
config:
  min_free_bytes: 0
node:
  labels:
    role: hollow
"
    )
}

/// A running `cdn-swarm`: its [`Proc`]; its template is `<dir>/swarm.yml`,
/// its log `<dir>/swarm.log`, its statistics `<dir>/swarm-stats.json`.
pub struct Swarm {
    proc: Proc,
    pub stats_file: PathBuf,
}

impl Swarm {
    /// A `cdn-swarm -c <dir>/swarm.yml` command with `yaml` as the
    /// template (with `--insecure` when the master it names runs so), the
    /// user's `$AGENTD_JOIN_TOKEN` removed; add the arguments.
    pub fn command(dir: &Path, yaml: &str) -> Command {
        std::fs::create_dir_all(dir).expect("mkdir");
        let config = dir.join("swarm.yml");
        std::fs::write(&config, yaml).expect("write swarm.yml");
        let mut cmd = Command::new(bin("cdn-swarm"));
        cmd.arg("-c")
            .arg(&config)
            .args(insecure_flag(yaml))
            .env_remove("AGENTD_JOIN_TOKEN")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Starts `cdn-swarm` with `yaml` as template and `args`, writing its
    /// statistics every 200 ms.
    pub fn start(dir: &Path, yaml: &str, args: &[&str]) -> Self {
        Self::spawn(dir, Self::command(dir, yaml).args(args))
    }

    /// Starts `cmd` (from [`Swarm::command`]) with statistics and log in `dir`.
    pub fn spawn(dir: &Path, cmd: &mut Command) -> Self {
        let stats_file = dir.join("swarm-stats.json");
        let proc = Proc::spawn(
            "cdn-swarm",
            cmd.arg("--stats")
                .arg(&stats_file)
                .args(["--stats-interval", "200ms"]),
            Stdio::null(),
            dir.join("swarm.log"),
        );
        Self { proc, stats_file }
    }

    /// The statistics file, once written.
    pub fn stats(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.stats_file).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// What one cdnctl (or `masterd` management command) run printed.
#[derive(Debug)]
pub struct CtlOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CtlOutput {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs a short-lived command (cdnctl, `masterd token …`) to its end with
/// stdin closed; what it printed.
pub fn run(cmd: &mut Command) -> CtlOutput {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", cmd.get_program().to_string_lossy()))
        .into()
}

/// A cdnctl command isolated from the user's cdnctl config and
/// environment, without colour; add the arguments.
fn cdnctl() -> Command {
    let mut cmd = Command::new(bin("cdnctl"));
    cmd.env("CDNCTL_CONFIG", "/nonexistent/cdnctl-test-config.yml")
        .env_remove("CDNCTL_CONTEXT")
        .env_remove("CDNCTL_CREDENTIAL")
        .env_remove("CDNCTL_MASTER")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs cdnctl against `master` with `args`, with that master's admin
/// credential (or `--insecure` when it runs so), ignoring the user's
/// cdnctl config.
pub fn ctl_at<I, S>(master: &str, args: I) -> CtlOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(ctl_command(master).args(args))
}

/// Runs cdnctl with `args` only: no master, no credential added, the
/// user's cdnctl config ignored.
pub fn ctl_bare<I, S>(args: I) -> CtlOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(cdnctl().args(args))
}

/// A cdnctl command for `master` with its credential (or `--insecure`),
/// isolated from the user's cdnctl config; add the arguments.
pub fn ctl_command(master: &str) -> Command {
    let mut cmd = cdnctl();
    match master_in(master) {
        Some(Some(data)) => {
            cmd.arg("--credential").arg(admin_credential(&data));
        }
        Some(None) => {
            cmd.arg("--insecure");
        }
        None => {}
    }
    cmd.arg("--master").arg(master);
    cmd
}

/// A master and its agents in one temporary directory.
pub struct Fleet {
    pub master: Master,
    pub agents: Vec<Agent>,
    /// Last, so that it is removed after the processes dropped (and showed
    /// their logs, on a failing test).
    pub dir: tempfile::TempDir,
}

impl Fleet {
    /// A master plus `agent-1..=n`, all online.
    pub fn start(n: usize) -> Self {
        Self::start_with("", n)
    }

    /// As [`Fleet::start`], with `extra` appended to the master's test
    /// config (for example `pool:\n  size: 1\n`).
    pub fn start_with(extra: &str, n: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!("{TEST_MASTER_YML}{extra}");
        let master = Master::start(&dir.path().join("master"), &yaml, 0);
        let mut fleet = Self {
            dir,
            master,
            agents: Vec::new(),
        };
        for i in 1..=n {
            fleet.add_agent(&format!("agent-{i}"));
        }
        for i in 1..=n {
            let name = format!("agent-{i}");
            wait_for(&format!("{name} online with its command stream"), || {
                fleet
                    .node(&name)
                    .filter(|v| v["status"] == "online" && v["stream_open"] == true)
            });
        }
        fleet
    }

    /// Address agents dial, as `host:port`.
    pub fn master_addr(&self) -> String {
        self.master.addr.to_string()
    }

    /// Starts agent `name` with the standard test config.
    pub fn add_agent(&mut self, name: &str) -> &mut Agent {
        let yaml = agent_yml(self.dir.path(), name, &self.master_addr());
        self.add_agent_with(name, name, &yaml)
    }

    /// Starts an agent with its own config; `file` names its config and log.
    pub fn add_agent_with(&mut self, file: &str, name: &str, yaml: &str) -> &mut Agent {
        let agent = Agent::start(self.dir.path(), file, name, yaml);
        self.agents.push(agent);
        self.agents.last_mut().expect("just pushed")
    }

    /// The agent handle named `name` (first match).
    pub fn agent(&mut self, name: &str) -> &mut Agent {
        self.agents
            .iter_mut()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no agent {name}"))
    }

    /// Runs cdnctl against this fleet's master.
    pub fn ctl<I, S>(&self, args: I) -> CtlOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        ctl_at(&self.master.admin_addr.to_string(), args)
    }

    /// `nodes list -o json`, parsed; panics if cdnctl fails.
    pub fn nodes(&self) -> Vec<Value> {
        let out = self.ctl(["nodes", "list", "-o", "json"]);
        assert_eq!(out.code, Some(0), "nodes list failed: {}", out.stderr);
        match serde_json::from_str(&out.stdout) {
            Ok(Value::Array(v)) => v,
            other => panic!(
                "nodes list -o json is not an array: {other:?}\n{}",
                out.stdout
            ),
        }
    }

    /// `nodes list -o json`, or None while the master is unreachable.
    pub fn try_nodes(&self) -> Option<Vec<Value>> {
        let out = self.ctl(["nodes", "list", "-o", "json", "--request-timeout", "2s"]);
        if out.code != Some(0) {
            return None;
        }
        match serde_json::from_str(&out.stdout) {
            Ok(Value::Array(v)) => Some(v),
            _ => None,
        }
    }

    /// One node from `nodes list -o json`.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.try_nodes()?.into_iter().find(|n| n["name"] == name)
    }

    /// Waits until node `name` has `status`; returns its JSON.
    pub fn wait_status(&self, name: &str, status: &str) -> Value {
        wait_for(&format!("{name} to be {status}"), || {
            self.node(name).filter(|n| n["status"] == status)
        })
    }
}

/// Pids of the live processes whose command line is exactly `argv` (not a
/// cdnctl or guard whose command line merely holds the same words; a
/// zombie is dead already and does not count).
pub fn processes(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let zombie = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
    };
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want) && !zombie(pid)
        })
        .collect()
}

/// Names of the files in `dir` that are an agent's temporary files
/// (`.<name>.tmp-<pid>`); none when `dir` cannot be read.
pub fn agent_temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}
