//! The clients' side of master failover, on real binaries: cdnctl given
//! several master addresses reaches the one that is up, and an `exec` or a
//! push whose master dies in the middle ends with one clear line instead of
//! hanging. (Standbys answering with the leader's address are the master's
//! side; unit tests of cdnctl's context and agentd's dialer cover following
//! them.)

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

use cdn_tests::{Fleet, agent_yml, bin, ctl_command, free_port, lines_of, wait_for};

/// A cdnctl started in the background, killed if the test ends first.
struct Background {
    child: Child,
    stdout: Receiver<String>,
}

impl Background {
    /// Starts `cmd` with stdin closed, stdout read line by line, stderr
    /// kept for [`Background::finish`].
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cdnctl");
        let stdout = lines_of(child.stdout.take().expect("piped stdout"));
        Self { child, stdout }
    }

    /// Waits (bounded) for a line of stdout that contains `text`.
    fn wait_line(&self, text: &str) {
        self.wait_lines(&[text]);
    }

    /// Waits (bounded) until each of `texts` was in a line of stdout, in
    /// any order (the nodes of a fan-out print as they go).
    fn wait_lines(&self, texts: &[&str]) {
        let mut missing: Vec<&str> = texts.to_vec();
        wait_for(&format!("cdnctl to print {texts:?}"), || {
            while let Ok(line) = self.stdout.try_recv() {
                missing.retain(|t| !line.contains(t));
            }
            missing.is_empty().then_some(())
        });
    }

    /// Waits (bounded) for the exit; its code and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = wait_for("cdnctl to exit", || self.child.try_wait().ok().flatten());
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (status.code(), stderr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:PORT` where nothing listens.
/// `cdnctl exec TARGET -- sh -c "echo started; sleep SECONDS"` against the
/// fleet's master, in the background (each node prints `started` first).
fn exec_sleeping(fleet: &Fleet, target: &str, seconds: u32) -> Background {
    let script = format!("echo started; sleep {seconds}");
    Background::start(
        ctl_command(&fleet.master.admin_addr.to_string())
            .args(["exec", target, "--", "sh", "-c", &script]),
    )
}

fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn a_dead_first_master_is_passed_over_for_the_next_one() {
    let fleet = Fleet::start(1);
    let live = fleet.master.admin_addr.to_string();
    let masters = format!("{},{live}", dead_addr());

    let out = ctl_command(&masters)
        .args(["nodes", "list", "-o", "json"])
        .output()
        .expect("run cdnctl");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"agent-1\""));

    // whoami names the master it reached.
    let out = ctl_command(&masters)
        .args(["whoami", "-o", "json"])
        .output()
        .expect("run cdnctl");
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).expect("whoami json");
    assert_eq!(me["master"], live.as_str());

    // A context holds both addresses; a list in the file works as well.
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("config.yml");
    let ctl = |args: &[&str]| {
        Command::new(bin("cdnctl"))
            .args(args)
            .env("CDNCTL_CONFIG", &config)
            .env_remove("CDNCTL_CONTEXT")
            .env_remove("CDNCTL_CREDENTIAL")
            .env_remove("CDNCTL_MASTER")
            .env("NO_COLOR", "1")
            .output()
            .expect("run cdnctl")
    };
    let credential = fleet.master.credential();
    let added = ctl(&[
        "context",
        "add",
        "ha",
        "--credential",
        &credential.to_string_lossy(),
        "--master",
        &masters,
    ]);
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = ctl(&["nodes", "list", "-o", "json"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let text = std::fs::read_to_string(&config).expect("config file");
    let as_list = text.replace(
        &format!("master: {masters}"),
        &format!("master: [{}, {live}]", dead_addr()),
    );
    assert_ne!(as_list, text, "the context holds both addresses:\n{text}");
    std::fs::write(&config, as_list).expect("rewrite config");
    let listed = ctl(&["nodes", "list", "-o", "json"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // No master at all: each address and why, one line.
    let (a, b) = (dead_addr(), dead_addr());
    let out = ctl_command(&format!("{a},{b}"))
        .args(["--insecure", "nodes", "list"])
        .output()
        .expect("run cdnctl");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "cdnctl: cannot reach any master: {a}: connection refused; {b}: connection refused"
        )
    );
}

#[test]
fn an_exec_whose_master_is_killed_ends_255_with_one_clear_line() {
    let mut fleet = Fleet::start(1);
    let run = exec_sleeping(&fleet, "agent-1", 30);
    run.wait_line("started");
    fleet.master.kill();
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(255), "{stderr}");
    // After the recording notice that opens every recorded session.
    let (notice, stderr) = stderr.split_once('\n').unwrap_or_default();
    assert!(notice.contains("this session is recorded"), "{notice}");
    // One line: what happened, then what was seen of it.
    let stderr = stderr.trim_end();
    assert!(
        stderr.starts_with("cdnctl: lost the connection to the master during the session (master stopped or failed over); the command's outcome on the node is unknown: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_fan_out_whose_master_is_killed_says_how_many_sessions_were_lost_and_why() {
    let mut fleet = Fleet::start(2);
    let run = exec_sleeping(&fleet, "--all", 30);
    run.wait_lines(&["agent-1 | started", "agent-2 | started"]);
    fleet.master.kill();
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(255), "{stderr}");
    // Each node's row says what was seen; the last line how many were lost.
    for node in ["agent-1", "agent-2"] {
        let row = stderr
            .lines()
            .find(|l| l.starts_with(node))
            .unwrap_or_else(|| panic!("no row of {node}: {stderr}"));
        assert!(row.contains("lost the connection to the master"), "{row}");
    }
    assert!(
        stderr
            .trim_end()
            .ends_with("the command's outcome on the node is unknown (2 of 2 sessions)"),
        "{stderr}"
    );
}

#[test]
fn an_exec_whose_master_freezes_is_ended_by_keepalive() {
    let fleet = Fleet::start(1);
    let run = exec_sleeping(&fleet, "agent-1", 120);
    run.wait_line("started");
    // The master's process stops: its connections stay open, but nothing
    // answers on them any more, PINGs included.
    fleet.master.signal("STOP");
    let (code, stderr) = run.finish();
    fleet.master.signal("CONT");
    assert_eq!(code, Some(255), "{stderr}");
    assert!(
        stderr.contains("lost the connection to the master during the session"),
        "{stderr}"
    );
}

#[test]
fn a_push_whose_master_is_killed_says_what_to_check() {
    let mut fleet = Fleet::start(0);
    // The agent takes its time to apply: the push is still waiting for its
    // answer when the master dies.
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr()).replace(
        "config:\n",
        "config:\n  reload_command: sleep 20\n  reload_timeout: 25s\n",
    );
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    fleet.wait_status("agent-1", "online");
    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, "cache: 20g\n").expect("write edge.yml");
    let admin = fleet.master.admin_addr.to_string();
    let push = Background::start(ctl_command(&admin).args([
        "config",
        "push",
        &file.to_string_lossy(),
        // cdnctl tries to reach a master again this long.
        "--timeout",
        "8s",
    ]));
    wait_for("the version to be stored", || {
        let out = fleet.ctl(["config", "history", "-o", "json"]);
        (out.code == Some(0) && out.stdout.contains("\"version\": 1")).then_some(())
    });
    fleet.master.kill();
    let (code, stderr) = push.finish();
    assert_eq!(code, Some(1), "{stderr}");
    // No master comes back: cdnctl says so, and that version 1 (the
    // master reported it before it died) was stored.
    assert!(
        stderr.starts_with(
            "cdnctl: lost the connection to the master during the push and could not reach it again within 8s ("
        ) && stderr.contains("version 1 was stored, but not every node's answer was reported"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
