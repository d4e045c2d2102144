//! The agent lifecycle end to end: register, list, die, return, master
//! restarts and hangs, duplicate identities.

use cdn_tests::{Fleet, agent_yml, free_port, signal, wait_for};
use serde_json::Value;

fn session(n: &Value) -> u64 {
    n["session_id"].as_u64().expect("session_id")
}

#[test]
fn three_agents_register_and_are_listed_with_their_figures() {
    let fleet = Fleet::start(3);

    let table = fleet.ctl(["nodes", "list"]);
    assert_eq!(table.code, Some(0), "{}", table.stderr);
    let header = table.stdout.lines().next().expect("a header line");
    for col in [
        "NAME",
        "STATUS",
        "ADDRESS",
        "LABELS",
        "LAST SEEN",
        "CPU",
        "MEMORY",
        "CONFIG",
        "AGENT",
    ] {
        assert!(header.contains(col), "missing column {col} in {header:?}");
    }
    for name in ["agent-1", "agent-2", "agent-3"] {
        let line = table
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in table:\n{}", table.stdout));
        assert!(line.contains("online"), "{line}");
        assert!(line.contains("role=edge"), "{line}");
    }

    // Wait for a status report so the figures are there.
    let nodes = wait_for("status figures of all agents", || {
        let nodes = fleet.try_nodes()?;
        (nodes.len() == 3
            && nodes
                .iter()
                .all(|n| n["mem_total_bytes"].as_u64() > Some(0)))
        .then_some(nodes)
    });
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["agent-1", "agent-2", "agent-3"]);
    for n in &nodes {
        assert_eq!(n["status"], "online");
        assert_eq!(n["address"], "127.0.0.1");
        assert_eq!(n["labels"]["role"], "edge");
        assert_eq!(n["agent_version"], env!("CARGO_PKG_VERSION"));
        assert!(n["config_version"].is_string());
        let seen = n["last_seen"].as_str().expect("last_seen");
        humantime::parse_rfc3339(seen).unwrap_or_else(|e| panic!("last_seen {seen:?}: {e}"));
        let cpu = n["cpu_percent"].as_f64().expect("cpu_percent");
        assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
        let used = n["mem_used_bytes"].as_u64().expect("mem_used_bytes");
        let total = n["mem_total_bytes"].as_u64().expect("mem_total_bytes");
        assert!(used > 0 && used <= total, "memory {used}/{total}");
        assert!(n["uptime_seconds"].as_u64() > Some(0));
        assert_eq!(n["stream_open"], true, "master holds the command stream");
    }
    assert_eq!(nodes[0]["labels"]["pop"], "fra");

    // YAML carries the same nodes.
    let yaml = fleet.ctl(["nodes", "list", "-o", "yaml"]);
    assert_eq!(yaml.code, Some(0));
    assert_eq!(
        yaml.stdout.matches("name: agent-").count(),
        3,
        "{}",
        yaml.stdout
    );

    // Filters run on the master.
    let fra = fleet.ctl(["nodes", "list", "-o", "json", "--selector", "pop=fra"]);
    let fra: Vec<Value> = serde_json::from_str(&fra.stdout).unwrap();
    assert_eq!(fra.len(), 1);
    assert_eq!(fra[0]["name"], "agent-1");
    let offline = fleet.ctl(["nodes", "list", "-o", "json", "--status", "offline"]);
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&offline.stdout)
            .unwrap()
            .len(),
        0
    );

    // Show one node.
    let show = fleet.ctl(["nodes", "show", "agent-2"]);
    assert_eq!(show.code, Some(0), "{}", show.stderr);
    assert!(show.stdout.contains("Name:") && show.stdout.contains("agent-2"));
    assert!(
        show.stdout.contains("Command stream:  open"),
        "{}",
        show.stdout
    );
    let missing = fleet.ctl(["nodes", "show", "agent-9"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr.trim(), "cdnctl: node agent-9 not found");
}

#[test]
fn killed_agent_goes_offline_and_comes_back_when_restarted() {
    let mut fleet = Fleet::start(3);
    let before = fleet.wait_status("agent-2", "online");

    let pid = fleet.agent("agent-2").pid();
    signal(pid, "KILL");
    let gone = fleet.wait_status("agent-2", "offline");
    assert!(
        gone["last_seen"].is_string(),
        "offline node keeps its last_seen"
    );
    assert_eq!(fleet.wait_status("agent-1", "online")["name"], "agent-1");

    fleet.agent("agent-2").kill();
    fleet.add_agent("agent-2");
    let back = fleet.wait_status("agent-2", "online");
    assert!(
        session(&back) > session(&before),
        "a new session replaced the dead one"
    );
}

#[test]
fn master_restart_brings_agents_back_and_keeps_known_nodes() {
    let mut fleet = Fleet::start(3);
    let old: Vec<u64> = ["agent-1", "agent-2"]
        .iter()
        .map(|n| session(&fleet.wait_status(n, "online")))
        .collect();
    // agent-3 stops for good before the restart: the master must still know it.
    fleet.agent("agent-3").kill();

    fleet.master.restart();
    for (name, old) in ["agent-1", "agent-2"].iter().zip(old) {
        let n = fleet.wait_status(name, "online");
        assert!(session(&n) > old, "{name} registered a new session");
    }
    let three = fleet.wait_status("agent-3", "offline");
    assert_eq!(
        three["labels"]["role"], "edge",
        "known node kept its labels"
    );
    assert_eq!(fleet.nodes().len(), 3);
}

#[test]
fn hung_master_makes_agents_time_out_and_reconnect() {
    let fleet = Fleet::start(2);
    let old = session(&fleet.wait_status("agent-1", "online"));

    signal(fleet.master.pid(), "STOP");
    wait_for("agents to notice the heartbeat timeout", || {
        fleet
            .agents
            .iter()
            .all(|a| a.log_text().contains("heartbeat unanswered"))
            .then_some(())
    });
    signal(fleet.master.pid(), "CONT");

    wait_for("agent-1 back on a new session with its stream", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && session(n) > old && n["stream_open"] == true)
    });
    // The reconnect counter reaches the master with the next status report.
    wait_for("reconnect counted", || {
        fleet
            .node("agent-1")
            .filter(|n| n["reconnects"].as_u64() >= Some(1))
    });
    fleet.wait_status("agent-2", "online");
}

#[test]
fn duplicate_node_id_is_refused_while_the_first_is_live() {
    let mut fleet = Fleet::start(1);
    let original = session(&fleet.wait_status("agent-1", "online"));

    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    fleet.add_agent_with("impostor", "agent-1", &yaml);
    let impostor_log = wait_for("the impostor to be refused", || {
        let log = fleet.agents[1].log_text();
        log.contains("already held by a live agent").then_some(log)
    });
    assert!(impostor_log.contains("agent-1"), "{impostor_log}");
    wait_for("the master to log the refusal", || {
        fleet
            .master
            .log_text()
            .contains("registration refused")
            .then_some(())
    });
    assert!(
        fleet.agents[1].is_running(),
        "a refused agent keeps trying, never exits"
    );
    let n = fleet.wait_status("agent-1", "online");
    assert_eq!(session(&n), original, "the live holder kept its session");
}

#[test]
fn agent_waits_for_a_master_that_is_not_there_yet_and_fails_over_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead = free_port();
    // The master's first start makes the join token; then it goes away, so
    // the agent's enrolment meets a master that is not there.
    let mut master =
        cdn_tests::Master::start(&dir.path().join("m"), cdn_tests::TEST_MASTER_YML, port);
    master.kill();
    // First address is dead; after max_retries the agent tries the second.
    let yaml = agent_yml(
        dir.path(),
        "agent-1",
        &format!("[\"127.0.0.1:{dead}\", \"127.0.0.1:{port}\"]"),
    )
    .replace(
        "  dial_timeout: 1s\n",
        "  dial_timeout: 1s\n  max_retries: 2\n",
    );
    let mut agent = cdn_tests::Agent::start(dir.path(), "agent-1", "agent-1", &yaml);
    wait_for("agent to report the unreachable master", || {
        agent
            .log_text()
            .contains("cannot reach master")
            .then_some(())
    });
    assert!(
        agent.is_running(),
        "agentd must not exit while the master is down"
    );

    master.restart();
    let addr = master.addr.to_string();
    wait_for("agent-1 online on the second address", || {
        let out = cdn_tests::ctl_at(&addr, ["nodes", "list", "-o", "json"]);
        (out.code == Some(0) && out.stdout.contains("\"online\"")).then_some(())
    });
    let log = agent.log_text();
    assert!(log.contains("enrolled"), "{log}");
    assert!(log.contains("moving to the next master address"), "{log}");
}

#[test]
fn agent_reports_degraded_and_a_clean_stop_is_offline_at_once() {
    let mut fleet = Fleet::start(0);
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr()) + "  # (labels end)\n";
    let yaml = yaml.replace(
        "  report_interval: 300ms\n",
        "  report_interval: 300ms\n  degraded_mem_percent: 0.001\n",
    );
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    let n = fleet.wait_status("agent-1", "degraded");
    assert!(
        n["status_reason"].as_str().unwrap_or("").contains("memory"),
        "{n}"
    );

    let status = fleet.agent("agent-1").terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
    let n = fleet.wait_status("agent-1", "offline");
    assert_eq!(n["status_reason"], "agent shut down");
}

#[test]
fn stopped_agent_goes_offline_and_rejoins_on_a_new_session_when_resumed() {
    let fleet = Fleet::start(1);
    let old = session(&fleet.wait_status("agent-1", "online"));
    let pid = fleet.agents[0].pid();
    signal(pid, "STOP");
    fleet.wait_status("agent-1", "offline");
    signal(pid, "CONT");
    // Its next heartbeat names a session the master dropped: it registers again.
    // It comes back on a new session with its command stream held again.
    wait_for("agent-1 back on a new session with its stream", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && session(n) > old && n["stream_open"] == true)
    });
}

#[test]
fn admin_service_can_listen_on_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let admin_port = free_port();
    let yaml = format!(
        "{}admin:\n  addr: 127.0.0.1:{admin_port}\n",
        cdn_tests::TEST_MASTER_YML
    );
    let master = cdn_tests::Master::start(dir.path(), &yaml, 0);
    assert_eq!(master.admin_addr.port(), admin_port);
    assert_ne!(master.addr, master.admin_addr);
    let _agent = cdn_tests::Agent::start(
        dir.path(),
        "agent-1",
        "agent-1",
        &agent_yml(dir.path(), "agent-1", &master.addr.to_string()),
    );
    let admin = master.admin_addr.to_string();
    wait_for("agent-1 listed through the admin address", || {
        let out = cdn_tests::ctl_at(&admin, ["nodes", "list", "-o", "json"]);
        out.stdout.contains("\"agent-1\"").then_some(())
    });
}

#[test]
fn closed_stdout_is_a_quiet_success() {
    let fleet = Fleet::start(1);
    let mut child = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string())
        .args(["nodes", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before cdnctl writes
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn watch_prints_a_row_when_a_node_goes_offline() {
    let mut fleet = Fleet::start(2);
    let mut child = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string())
        .args(["nodes", "list", "--watch", "--interval", "200ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rx = cdn_tests::lines_of(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    wait_for("the initial table", || {
        lines.extend(rx.try_iter());
        (lines.iter().filter(|l| l.contains("online")).count() >= 2).then_some(())
    });
    fleet.agent("agent-2").kill();
    wait_for("a watch row saying agent-2 is offline", || {
        lines.extend(rx.try_iter());
        lines
            .iter()
            .any(|l| l.starts_with("agent-2") && l.contains("offline"))
            .then_some(())
    });
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "no escape codes when stdout is not a terminal"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn no_headers_prints_rows_only() {
    let fleet = Fleet::start(1);
    let out = fleet.ctl(["nodes", "list", "--no-headers"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.starts_with("agent-1"), "{}", out.stdout);
    assert!(!out.stdout.contains("NAME"));
}

#[test]
fn events_show_what_happened_and_follow_prints_new_ones() {
    let mut fleet = Fleet::start(2);
    let recent = fleet.ctl(["events"]);
    assert_eq!(recent.code, Some(0), "{}", recent.stderr);
    assert!(
        recent.stdout.contains("node.enroll") && recent.stdout.contains("node.online"),
        "{}",
        recent.stdout
    );
    let mut child = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string())
        .args(["events", "--follow", "--limit", "1", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rx = cdn_tests::lines_of(child.stdout.take().unwrap());
    let mut events: Vec<Value> = Vec::new();
    wait_for("the one recent event", || {
        events.extend(rx.try_iter().map(|l| serde_json::from_str(&l).unwrap()));
        (!events.is_empty()).then_some(())
    });
    fleet.agent("agent-2").kill();
    let file = fleet.dir.path().join("e.yml");
    std::fs::write(&file, "x: 1\n").unwrap();
    assert_eq!(
        fleet
            .ctl(["config", "push", file.to_str().unwrap(), "-n", "agent-1"])
            .code,
        Some(0)
    );
    wait_for("node.offline of agent-2 and the push", || {
        events.extend(rx.try_iter().map(|l| serde_json::from_str(&l).unwrap()));
        let offline = events
            .iter()
            .any(|e| e["kind"] == "node.offline" && e["target"] == "agent-2");
        let push = events
            .iter()
            .any(|e| e["kind"] == "push" && e["user"] == "admin" && e["success"] == true);
        (offline && push).then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn node_names_complete_from_the_master() {
    let fleet = Fleet::start(2);
    let out = std::process::Command::new(cdn_tests::bin("cdnctl"))
        .args(["--", "cdnctl", "nodes", "show", "agent"])
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "3")
        .env("_CLAP_IFS", "\n")
        .env("CDNCTL_CREDENTIAL", fleet.master.credential())
        .env("CDNCTL_MASTER", fleet.master.admin_addr.to_string())
        .env("CDNCTL_CONFIG", "/nonexistent/cdnctl.yml")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<&str> = text.lines().collect();
    names.sort();
    assert_eq!(names, ["agent-1", "agent-2"], "{text}");
}

#[test]
fn every_listing_parses_as_json_and_yaml_with_its_documented_fields() {
    let fleet = Fleet::start(1);
    let file = fleet.dir.path().join("e.yml");
    std::fs::write(&file, "x: 1\n").unwrap();
    assert_eq!(
        fleet.ctl(["config", "push", file.to_str().unwrap()]).code,
        Some(0)
    );
    assert_eq!(fleet.ctl(["exec", "agent-1", "--", "true"]).code, Some(0));
    let listings: [(&[&str], &[&str]); 5] = [
        (
            &["nodes", "list"],
            &[
                "name",
                "status",
                "address",
                "labels",
                "last_seen",
                "config_version",
            ],
        ),
        (
            &["config", "history"],
            &[
                "version", "hash", "size", "author", "created", "message", "targets",
            ],
        ),
        (
            &["config", "status"],
            &[
                "node",
                "node_status",
                "desired_version",
                "applied_version",
                "in_sync",
                "drift",
                "last_error",
            ],
        ),
        (
            &["exec", "history"],
            &[
                "exec_id",
                "user",
                "peer",
                "node",
                "argv",
                "started",
                "duration_ms",
                "exit_code",
            ],
        ),
        (
            &["audit"],
            &[
                "id", "time", "user", "role", "peer", "action", "target", "detail", "result",
                "error",
            ],
        ),
    ];
    for (cmd, fields) in listings {
        let json = fleet.ctl(cmd.iter().copied().chain(["-o", "json"]));
        assert_eq!(json.code, Some(0), "{cmd:?}: {}", json.stderr);
        let j: Value = serde_json::from_str(&json.stdout).unwrap();
        let yaml = fleet.ctl(cmd.iter().copied().chain(["-o", "yaml"]));
        assert_eq!(yaml.code, Some(0), "{cmd:?}: {}", yaml.stderr);
        let y: Value = serde_saphyr::from_str(&yaml.stdout).unwrap();
        // Same records and fields (values such as last_seen move between calls).
        let keys = |v: &Value| -> Vec<Vec<String>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_object().unwrap().keys().cloned().collect())
                .collect()
        };
        assert_eq!(keys(&j), keys(&y), "{cmd:?}: json and yaml differ");
        let first = &j.as_array().unwrap_or_else(|| panic!("{cmd:?}: {j}"))[0];
        for f in fields {
            assert!(first.get(f).is_some(), "{cmd:?} lacks `{f}`: {first}");
        }
    }
}
