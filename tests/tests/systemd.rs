//! systemd integration as a unit sees it: `Type=notify` readiness, reloads
//! and shutdown told over `$NOTIFY_SOCKET` (a unix datagram socket the
//! test binds, as systemd does), and the units in `deploy/systemd/`
//! checked by `systemd-analyze` (security score as the README states it,
//! `verify` clean) when it is installed.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdn_tests::{Fleet, Proc, WAIT, agent_yml, bin, free_port};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The socket a service manager listens on, and every message received
/// so far (one per datagram, in order).
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    received: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(WAIT)).expect("socket timeout");
        Self {
            socket,
            path,
            received: Vec::new(),
        }
    }

    /// Receives messages until one has every line of `lines` (`READY=1`,
    /// `STATUS=…` prefixes allowed as `STATUS=`); that message.
    fn until(&mut self, lines: &[&str]) -> String {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "no message with {lines:?} within {WAIT:?} ({e}); received so far: {:?}",
                    self.received
                )
            });
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.received.push(msg.clone());
            if lines
                .iter()
                .all(|want| msg.lines().any(|l| l.starts_with(want)))
            {
                return msg;
            }
        }
    }
}

/// The value of `KEY=` in a message.
fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| l.strip_prefix(key))
}

/// `RELOADING=1` comes with the monotonic time systemd 253+ requires.
fn monotonic_usec(msg: &str) -> u64 {
    field(msg, "MONOTONIC_USEC=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {msg:?}"))
}

/// Starts `masterd --insecure` on an ephemeral port in `dir` with
/// `NOTIFY_SOCKET` and `extra` in its master.yml; its stdout goes to
/// `<dir>/stdout`.
fn masterd_notifying(dir: &Path, socket: &Path, extra: &str) -> (Proc, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let config = dir.join("master.yml");
    std::fs::write(
        &config,
        format!(
            "grpc:\n  addr: 127.0.0.1:0\ndata_dir: {}\n{extra}",
            dir.join("data").display()
        ),
    )
    .expect("write master.yml");
    let stdout = dir.join("stdout");
    let proc = Proc::spawn(
        "masterd",
        Command::new(bin("masterd"))
            .arg("-c")
            .arg(&config)
            .arg("--insecure")
            .env("NOTIFY_SOCKET", socket),
        Stdio::from(std::fs::File::create(&stdout).expect("stdout file")),
        dir.join("masterd.log"),
    );
    (proc, config, stdout)
}

#[test]
fn masterd_tells_systemd_it_is_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut notify = NotifySocket::bind(dir.path());
    let (mut master, config, stdout) = masterd_notifying(dir.path(), &notify.path, "");

    let ready = notify.until(&["READY=1", "STATUS="]);
    let printed = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(
        printed.starts_with("listening grpc="),
        "READY=1 came before the listening line: {printed:?}"
    );
    assert_eq!(
        field(&ready, "STATUS="),
        Some("serving, 0 nodes online, 0 degraded, 0 offline"),
        "{ready:?}"
    );

    master.signal("HUP");
    let reloading = notify.until(&["RELOADING=1"]);
    let first = monotonic_usec(&reloading);
    let after = notify.until(&["READY=1"]);
    assert!(
        field(&after, "STATUS=").is_some_and(|s| s.starts_with("serving")),
        "the status line is back after the reload: {after:?}"
    );

    // A reload that fails is still a finished reload for systemd.
    std::fs::write(&config, "grpc:\n  addr: 127.0.0.1:0\nbogus: 1\n").expect("break master.yml");
    master.signal("HUP");
    let second = monotonic_usec(&notify.until(&["RELOADING=1"]));
    assert!(
        second > first,
        "MONOTONIC_USEC goes forward: {first} then {second}"
    );
    notify.until(&["READY=1"]);
    assert!(master.is_running(), "a broken master.yml stopped masterd");
    assert!(
        master.log_text().contains("config not reloaded"),
        "{}",
        master.log_text()
    );

    master.signal("TERM");
    let stopping = notify.until(&["STOPPING=1"]);
    assert!(field(&stopping, "STATUS=").is_some(), "{stopping:?}");
    assert_eq!(master.wait_exit(), Some(0));
    let kinds: Vec<&str> = notify
        .received
        .iter()
        .filter_map(|m| {
            ["READY=1", "RELOADING=1", "STOPPING=1"]
                .into_iter()
                .find(|k| m.lines().any(|l| l == *k))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "STOPPING=1"
        ],
        "{:?}",
        notify.received
    );
}

#[test]
fn masters_on_etcd_are_ready_as_standbys_and_say_who_leads() {
    let cluster = cdn_tests::require_etcd!(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = NotifySocket::bind(dir.path());
    let (_m1, _, _) = masterd_notifying(
        &dir.path().join("m1"),
        &first.path,
        &cluster.store_yml("m1"),
    );
    // Ready as soon as it can answer, before the election.
    let ready = first.until(&["READY=1"]);
    assert!(
        field(&ready, "STATUS=").is_some_and(|s| s.starts_with("standby")),
        "{ready:?}"
    );
    first.until(&["STATUS=leading, 0 nodes online"]);

    let second_dir = dir.path().join("m2");
    std::fs::create_dir_all(&second_dir).expect("mkdir");
    let mut second = NotifySocket::bind(&second_dir);
    let (_m2, _, _) = masterd_notifying(&second_dir, &second.path, &cluster.store_yml("m2"));
    second.until(&["READY=1"]);
    second.until(&["STATUS=standby, leader m1 at 127.0.0.1:"]);
}

#[test]
fn agentd_is_ready_with_its_identity_and_tells_its_connection_state() {
    let fleet = Fleet::start(0);
    let dir = fleet.dir.path();
    let mut notify = NotifySocket::bind(dir);
    let config = dir.join("agent-1.yml");
    std::fs::write(&config, agent_yml(dir, "agent-1", &fleet.master_addr())).expect("agent.yml");
    let mut agent = Proc::spawn(
        "agentd agent-1",
        Command::new(bin("agentd"))
            .arg("-c")
            .arg(&config)
            .env_remove("AGENTD_JOIN_TOKEN")
            .env("NOTIFY_SOCKET", &notify.path),
        Stdio::null(),
        dir.join("agent-1.log"),
    );
    // Enrolled with the join token, then ready; registered after that.
    let ready = notify.until(&["READY=1"]);
    assert!(
        field(&ready, "STATUS=").is_some_and(|s| s.contains("connecting to master")),
        "{ready:?}"
    );
    let registered = notify.until(&["STATUS=registered with master"]);
    assert!(
        registered.contains(&format!("{} as agent-1 (session", fleet.master_addr())),
        "{registered:?}"
    );
    fleet.wait_status("agent-1", "online");

    // Remote commands do not get the agent's socket.
    let out = fleet.ctl([
        "exec",
        "agent-1",
        "--",
        "sh",
        "-c",
        "echo ${NOTIFY_SOCKET:-unset}",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "unset\n");

    agent.signal("HUP");
    monotonic_usec(&notify.until(&["RELOADING=1"]));
    let reloaded = notify.until(&["READY=1"]);
    assert!(
        field(&reloaded, "STATUS=").is_some_and(|s| s.starts_with("registered with master")),
        "the connection state is back after the reload: {reloaded:?}"
    );

    agent.signal("TERM");
    notify.until(&["STOPPING=1"]);
    assert_eq!(agent.wait_exit(), Some(0));
}

#[test]
fn agentd_is_ready_while_its_master_is_down_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut notify = NotifySocket::bind(dir.path());
    let port = free_port();
    let config = dir.path().join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "master:\n  addr: 127.0.0.1:{port}\ndata_dir: {}\nnode:\n  id: lonely\nconfig:\n  path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("edge.yml").display()
        ),
    )
    .expect("agent.yml");
    let mut agent = Proc::spawn(
        "agentd lonely",
        Command::new(bin("agentd"))
            .arg("-c")
            .arg(&config)
            .arg("--insecure")
            .env("NOTIFY_SOCKET", &notify.path),
        Stdio::null(),
        dir.path().join("agent.log"),
    );
    notify.until(&["READY=1"]);
    let refused = notify.until(&["STATUS=not registered"]);
    assert!(
        refused.contains(&format!("cannot reach master at 127.0.0.1:{port}")),
        "{refused:?}"
    );
    assert!(agent.is_running());
}

/// `systemd-analyze`, or None (with a loud line) when it is not installed.
fn systemd_analyze() -> Option<PathBuf> {
    let found = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED: systemd-analyze not found (Debian: apt-get install systemd)");
        }
    }
    found
}

/// The exposure the README states for `unit` ("rates `masterd.service`
/// **1.2 OK**").
fn readme_exposure(unit: &str) -> f64 {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    // Paragraphs are wrapped: compare words.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let marker = format!("rates `{unit}` **");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README states no exposure for {unit} ({marker}…)"));
    readme[at + marker.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("README's exposure figure for {unit} is not a number"))
}

/// `systemd-analyze security --offline=true`'s overall exposure of `unit`.
fn exposure(analyze: &Path, unit: &str) -> f64 {
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(root().join("deploy/systemd").join(unit))
        .output()
        .expect("run systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure in systemd-analyze's output:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    line.rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure in {line:?}"))
}

#[test]
fn masterd_unit_is_as_hardened_as_the_readme_says() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let stated = readme_exposure("masterd.service");
    assert!(
        stated < 5.0,
        "the README states an exposure above OK: {stated}"
    );
    let measured = exposure(&analyze, "masterd.service");
    assert!(
        measured <= stated,
        "masterd.service exposure {measured} is above the README's {stated}"
    );
    // agentd is left open on purpose; the README says how open.
    let agentd = exposure(&analyze, "agentd.service");
    assert!(
        agentd <= readme_exposure("agentd.service"),
        "agentd.service exposure {agentd} is above the README's figure"
    );
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    // `verify` wants ExecStart's program to exist: check a copy of each
    // unit that starts the binary just built instead of /usr/local/bin's.
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["masterd", "agentd"] {
        let text = std::fs::read_to_string(root().join(format!("deploy/systemd/{name}.service")))
            .expect("unit file");
        let installed = format!("/usr/local/bin/{name}");
        assert!(
            text.contains(&installed),
            "{name}.service starts {installed}"
        );
        let copy = dir.path().join(format!("{name}.service"));
        std::fs::write(
            &copy,
            text.replace(&installed, &bin(name).display().to_string()),
        )
        .expect("write unit copy");
        let out = Command::new(&analyze)
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .expect("run systemd-analyze verify");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {name}.service: {said}"
        );
    }
}

#[test]
fn units_are_notify_units_with_reload_and_the_seeds_file_limit() {
    for name in ["masterd", "agentd"] {
        let text = std::fs::read_to_string(root().join(format!("deploy/systemd/{name}.service")))
            .expect("unit file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for want in [
            "Type=notify",
            "NotifyAccess=main",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "RestartPreventExitStatus=78",
        ] {
            assert!(lines.contains(&want), "{name}.service lacks {want}");
        }
    }
    let master = std::fs::read_to_string(root().join("deploy/systemd/masterd.service"))
        .expect("masterd.service");
    assert!(
        master.lines().any(|l| l == "LimitNOFILE=1048576"),
        "the seed asks for a million descriptors on the master"
    );
    // The figure in the unit's own comment is the README's.
    assert!(
        master.contains(&format!(
            "rates it {} OK",
            readme_exposure("masterd.service")
        )),
        "masterd.service's header states another exposure than the README"
    );
}
