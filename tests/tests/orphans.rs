//! Programs agentd runs die with it: after `kill -9` of the agent, an exec
//! session's process and a slow reload command are gone (the guard of each
//! kills its process group), and the restarted agent works and does not
//! run a reload beside a live earlier one.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use cdn_tests::{Fleet, agent_yml, ctl_command, processes, wait_for};

/// The command line of agent `pid`'s warm guard, the one it keeps ready
/// for its next session.
fn warm_guard(pid: u32) -> Vec<u32> {
    processes(&[
        "/proc/self/exe",
        "__cdn-guard",
        &pid.to_string(),
        "--from-stdin",
    ])
}

#[test]
fn an_exec_session_dies_with_a_killed_agent() {
    let mut fleet = Fleet::start(1);
    // After a first session the agent keeps a guard ready; the session
    // below runs through it.
    let first = fleet.ctl(["exec", "agent-1", "--", "true"]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let agent_pid = fleet.agent("agent-1").pid();
    wait_for("a warm guard ready", || {
        Some(warm_guard(agent_pid)).filter(|p| p.len() == 1)
    });
    // A duration no other test uses, to find exactly this process.
    let argv = ["sleep", "300.7311"];
    let mut cdnctl = ctl_command(&fleet.master_addr())
        .args(["exec", "agent-1", "--"])
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pids = wait_for("the remote sleep to run", || {
        Some(processes(&argv)).filter(|p| !p.is_empty())
    });
    assert_eq!(pids.len(), 1, "{pids:?}");

    fleet.agent("agent-1").kill();
    wait_for("the session's process to die with the agent", || {
        processes(&argv).is_empty().then_some(())
    });
    // cdnctl hears that the session is lost.
    let status = cdnctl.wait().unwrap();
    assert!(!status.success(), "{status:?}");

    // A new agent on the same identity works.
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    fleet.add_agent_with("agent-1-again", "agent-1", &yaml);
    wait_for("agent-1 back with its stream", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && n["stream_open"] == true)
    });
    let out = fleet.ctl(["exec", "agent-1", "--", "echo", "back"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("back"), "{}", out.stdout);
}

#[test]
fn a_warm_guard_runs_sessions_like_a_cold_one_and_dies_with_a_killed_agent() {
    let mut fleet = Fleet::start(1);
    let agent_pid = fleet.agent("agent-1").pid();
    assert!(
        warm_guard(agent_pid).is_empty(),
        "no guard before a session"
    );
    let first = fleet.ctl(["exec", "agent-1", "--", "true"]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let ready = wait_for("a warm guard ready", || {
        Some(warm_guard(agent_pid)).filter(|p| p.len() == 1)
    });
    // Through the warm guard: arguments, environment, directory, input,
    // exit code and a missing program as a cold guard gives them.
    let out = ctl_command(&fleet.master_addr())
        .args([
            "exec",
            "-w",
            "/",
            "-e",
            "GREETING=hé llo",
            "agent-1",
            "--",
            "sh",
            "-c",
            "printf '%s|%s|' \"$GREETING\" \"$(pwd)\"; wc -c; exit 7",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"twelve bytes")?;
            c.wait_with_output()
        })
        .unwrap();
    let (code, stdout, stderr) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(code, Some(7), "{stderr}");
    assert_eq!(stdout.trim(), "hé llo|/|12", "{stderr}");
    // The session took the ready guard, and a new one replaced it.
    let next = wait_for("a warm guard ready again", || {
        Some(warm_guard(agent_pid)).filter(|p| p.len() == 1 && p != &ready)
    });
    assert!(
        !processes_alive(ready[0]),
        "the used guard ended with its program"
    );
    assert_ne!(next, ready);
    let missing = fleet.ctl(["exec", "agent-1", "--", "no-such-program-5521"]);
    assert_eq!(missing.code, Some(127), "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("no-such-program-5521: command not found"),
        "{}",
        missing.stderr
    );
    // An idle guard goes with its agent.
    let idle = wait_for("a warm guard ready", || {
        Some(warm_guard(agent_pid)).filter(|p| p.len() == 1)
    });
    fleet.agent("agent-1").kill();
    wait_for("the idle guard to die with the agent", || {
        warm_guard(agent_pid).is_empty().then_some(())
    });
    assert!(!processes_alive(idle[0]));
}

/// Whether process `pid` is alive (a zombie is not).
fn processes_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

#[test]
fn a_slow_reload_dies_with_a_killed_agent_and_is_not_run_twice() {
    let mut fleet = Fleet::start(0);
    let argv = ["sleep", "300.7312"];
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr()).replace(
        "  min_free_bytes: 0\n",
        &format!(
            "  min_free_bytes: 0\n  reload_command: exec {}\n",
            argv.join(" ")
        ),
    );
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    wait_for("agent-1 online with its stream", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && n["stream_open"] == true)
    });
    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, "cache: 1\n").unwrap();
    let out = fleet.ctl(["config", "push", file.to_str().unwrap(), "--no-wait"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = wait_for("the reload command to run", || {
        Some(processes(&argv)).filter(|p| !p.is_empty())
    });
    assert_eq!(first.len(), 1, "{first:?}");

    fleet.agent("agent-1").kill();
    wait_for("the reload command to die with the agent", || {
        processes(&argv).is_empty().then_some(())
    });

    // The restarted agent applies the version again (its reload never
    // finished): one reload, not one beside an orphan.
    fleet.add_agent_with("agent-1-again", "agent-1", &yaml);
    let second = wait_for("the reload command to run again", || {
        Some(processes(&argv)).filter(|p| !p.is_empty())
    });
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);
    drop(fleet);
    // Stopping the agent (the harness kills it) ends its reload too.
    wait_for("the reload command to end with its agent", || {
        processes(&argv).is_empty().then_some(())
    });
}

#[test]
fn a_restarted_agent_stops_a_reload_an_earlier_run_left_running() {
    let mut fleet = Fleet::start(0);
    let argv = ["sleep", "300.7313"];
    // What an agent that died while its reload's guard could not act
    // leaves: a live guard with its command, named in the marker file.
    // (A real one cannot be made to stay: the kernel wakes a stopped
    // guard when its agent dies, and it then kills its group.)
    let mut guard = std::process::Command::new(cdn_tests::bin("agentd"))
        .arg("__cdn-guard")
        .arg(std::process::id().to_string())
        .arg("--")
        .args(argv)
        .process_group(0)
        .spawn()
        .unwrap();
    let left = wait_for("the leftover command to run", || {
        Some(processes(&argv)).filter(|p| p.len() == 1)
    })[0];
    let edge = cdn_tests::edge_file(fleet.dir.path(), "agent-1");
    std::fs::create_dir_all(edge.parent().unwrap()).unwrap();
    std::fs::write(
        edge.parent().unwrap().join(".edge.yml.reload"),
        format!("{}\n", guard.id()),
    )
    .unwrap();

    fleet.add_agent("agent-1");
    let status = guard.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    wait_for("the leftover command to be gone", || {
        (!processes(&argv).contains(&left)).then_some(())
    });
    let marker = edge.parent().unwrap().join(".edge.yml.reload");
    wait_for("the marker file to be removed", || {
        (!marker.exists()).then_some(())
    });
    let log = fleet.agent("agent-1").log_text();
    assert!(
        log.contains("a reload command of an earlier run still runs"),
        "{log}"
    );
}
