//! `kill -HUP agentd` (systemd's `ExecReload`): the agent never dies of
//! it, puts what can change at run time in force (a label change reaches
//! the master), keeps the keys read at start and says they need a
//! restart, and refuses a broken file with its line and key while it
//! keeps running on the old configuration.

use cdn_tests::{Fleet, agent_yml, wait_for};
use serde_json::Value;

/// Whether `log` holds a line with every one of `parts`.
fn logged(log: &str, parts: &[&str]) -> bool {
    log.lines().any(|l| parts.iter().all(|p| l.contains(p)))
}

fn session(n: &Value) -> u64 {
    n["session_id"].as_u64().expect("session_id")
}

#[test]
fn sighup_puts_new_labels_in_force_without_a_restart() {
    let mut fleet = Fleet::start(1);
    let before = fleet.wait_status("agent-1", "online");
    assert_eq!(before["labels"]["pop"], "fra");
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    let relabelled = yaml.replace("    pop: fra\n", "    pop: ams\n    tier: gold\n");
    assert_ne!(relabelled, yaml, "the test config has a pop label");
    let agent = fleet.agent("agent-1");
    let pid = agent.pid();
    std::fs::write(&agent.config, relabelled).expect("rewrite agent.yml");
    agent.signal("HUP");

    let after = wait_for("the new labels at the master", || {
        fleet
            .node("agent-1")
            .filter(|n| n["labels"]["tier"] == "gold")
    });
    assert_eq!(after["labels"]["pop"], "ams");
    assert_eq!(after["labels"]["role"], "edge");
    assert_eq!(after["status"], "online");
    assert!(
        session(&after) > session(&before),
        "registered again: {after}"
    );
    let agent = fleet.agent("agent-1");
    assert!(agent.is_running(), "agentd died of SIGHUP");
    assert_eq!(agent.pid(), pid);
    let log = agent.log_text();
    assert!(
        logged(&log, &["SIGHUP: agent.yml reloaded", "node.labels"]),
        "{log}"
    );
    assert!(
        logged(&log, &["node.labels changed", "registering again"]),
        "{log}"
    );

    // What operators see: the wide table, one node's page, a selector.
    let wide = fleet.ctl(["nodes", "list", "-o", "wide"]);
    assert_eq!(wide.code, Some(0), "{}", wide.stderr);
    let row = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("agent-1"))
        .unwrap_or_else(|| panic!("agent-1 not listed:\n{}", wide.stdout));
    assert!(
        row.contains("tier=gold") && row.contains("pop=ams"),
        "{row}"
    );
    let show = fleet.ctl(["nodes", "show", "agent-1"]);
    assert_eq!(show.code, Some(0), "{}", show.stderr);
    assert!(show.stdout.contains("tier=gold"), "{}", show.stdout);
    let picked = fleet.ctl(["nodes", "list", "--selector", "tier=gold", "-o", "json"]);
    assert_eq!(picked.code, Some(0), "{}", picked.stderr);
    let picked: Vec<Value> = serde_json::from_str(&picked.stdout).expect("json");
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0]["name"], "agent-1");
    // The master sees an update of a live agent, not a reconnect: no second
    // `node.online` (which feeds the reconnect-storm alert).
    let events = fleet.ctl(["events"]);
    assert_eq!(events.code, Some(0), "{}", events.stderr);
    assert!(events.stdout.contains("node.updated"), "{}", events.stdout);
    assert_eq!(
        events.stdout.matches("node.online").count(),
        1,
        "{}",
        events.stdout
    );
}

#[test]
fn a_label_change_leaves_a_running_exec_session_alone() {
    let mut fleet = Fleet::start(1);
    let marker = fleet.dir.path().join("exec-started");
    let master = fleet.master.admin_addr.to_string();
    // A session that runs until the test lets it finish.
    let gate = fleet.dir.path().join("exec-may-finish");
    let script = format!(
        "touch {m}; while [ ! -e {g} ]; do sleep 0.05; done; echo finished",
        m = marker.display(),
        g = gate.display()
    );
    let exec = cdn_tests::ctl_command(&master)
        .args(["exec", "agent-1", "--", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cdnctl exec");
    wait_for("the exec session to start", || {
        marker.exists().then_some(())
    });

    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    let agent = fleet.agent("agent-1");
    std::fs::write(&agent.config, yaml.replace("role: edge", "role: cache")).expect("rewrite");
    agent.signal("HUP");
    wait_for("the new label at the master", || {
        fleet
            .node("agent-1")
            .filter(|n| n["labels"]["role"] == "cache")
    });

    std::fs::write(&gate, "").expect("open the gate");
    let out = exec.wait_with_output().expect("cdnctl exec ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "finished\n");
}

#[test]
fn keys_read_at_start_wait_for_a_restart_and_the_agent_runs_on() {
    let mut fleet = Fleet::start(1);
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    let moved = yaml
        .replace("  id: agent-1\n", "  id: agent-renamed\n")
        .replace(
            &format!("  addr: {}\n", fleet.master_addr()),
            "  addr: 127.0.0.1:1\n",
        );
    assert_ne!(moved, yaml);
    let agent = fleet.agent("agent-1");
    std::fs::write(&agent.config, moved).expect("rewrite agent.yml");
    agent.signal("HUP");
    let log = wait_for("the reload to be logged", || {
        let log = fleet.agent("agent-1").log_text();
        logged(&log, &["only after a restart"]).then_some(log)
    });
    assert!(
        logged(
            &log,
            &[
                "only after a restart",
                "master.addr",
                "node.id",
                "old values"
            ]
        ),
        "{log}"
    );
    // Still the same node on the same master.
    let agent = fleet.agent("agent-1");
    assert!(agent.is_running());
    let nodes = fleet.nodes();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["name"], "agent-1");
    assert_eq!(nodes[0]["status"], "online");
}

#[test]
fn a_broken_agent_yml_on_sighup_is_refused_with_its_line_and_the_agent_runs_on() {
    let mut fleet = Fleet::start(1);
    let before = fleet.wait_status("agent-1", "online");
    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    // A typo in a key, on a line of its own, and a label change that must
    // not be put in force with it.
    let broken = yaml
        .replace("  interval: 300ms\n", "  intervall: 300ms\n")
        .replace("pop: fra", "pop: nowhere");
    let line = broken
        .lines()
        .position(|l| l.contains("intervall"))
        .expect("typo line")
        + 1;
    let agent = fleet.agent("agent-1");
    let config = agent.config.clone();
    std::fs::write(&config, &broken).expect("rewrite agent.yml");
    agent.signal("HUP");
    let log = wait_for("the refusal to be logged", || {
        let log = fleet.agent("agent-1").log_text();
        logged(&log, &["not reloaded"]).then_some(log)
    });
    let at = format!("{}:{line}:", config.display());
    assert!(
        logged(
            &log,
            &[
                "SIGHUP: agent.yml not reloaded, the running configuration stays",
                &at,
                "heartbeat.intervall"
            ]
        ),
        "no line naming {at} and the key:\n{log}"
    );
    // A second hang-up of the same broken file: still alive, same answer.
    fleet.agent("agent-1").signal("HUP");
    wait_for("the second refusal", || {
        let log = fleet.agent("agent-1").log_text();
        (log.matches("not reloaded").count() >= 2).then_some(())
    });
    assert!(fleet.agent("agent-1").is_running(), "agentd died");
    let now = fleet.wait_status("agent-1", "online");
    assert_eq!(now["labels"]["pop"], "fra", "nothing of the broken file");
    assert_eq!(session(&now), session(&before), "not registered again");

    // Fixed: the next hang-up puts it in force.
    std::fs::write(&config, yaml.replace("pop: fra", "pop: ams")).expect("fix agent.yml");
    fleet.agent("agent-1").signal("HUP");
    wait_for("the fixed file in force", || {
        fleet
            .node("agent-1")
            .filter(|n| n["labels"]["pop"] == "ams")
    });
}

#[test]
fn a_config_file_removed_before_sighup_is_named_and_the_agent_runs_on() {
    let mut fleet = Fleet::start(1);
    let agent = fleet.agent("agent-1");
    std::fs::remove_file(&agent.config).expect("remove agent.yml");
    agent.signal("HUP");
    let log = wait_for("the refusal to be logged", || {
        let log = fleet.agent("agent-1").log_text();
        logged(&log, &["not reloaded"]).then_some(log)
    });
    assert!(
        logged(&log, &["agent-1.yml", "cannot read"]),
        "the missing file is named:\n{log}"
    );
    assert!(fleet.agent("agent-1").is_running());
    fleet.wait_status("agent-1", "online");
}

#[test]
fn the_exec_policy_and_the_reload_command_change_with_sighup() {
    let mut fleet = Fleet::start(1);
    let ran = fleet.dir.path().join("reload-command-ran");
    let ok = fleet.ctl(["exec", "agent-1", "--", "true"]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);

    let yaml = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr());
    let changed = yaml.replace(
        "  min_free_bytes: 0\n",
        &format!(
            "  min_free_bytes: 0\n  reload_command: touch {}\nexec:\n  enabled: false\n",
            ran.display()
        ),
    );
    assert_ne!(changed, yaml);
    let agent = fleet.agent("agent-1");
    std::fs::write(&agent.config, changed).expect("rewrite agent.yml");
    agent.signal("HUP");
    wait_for("the reload to be logged", || {
        let log = fleet.agent("agent-1").log_text();
        logged(&log, &["SIGHUP: agent.yml reloaded", "exec.enabled"]).then_some(())
    });

    let refused = fleet.ctl(["exec", "agent-1", "--", "true"]);
    assert_eq!(refused.code, Some(255), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("exec.enabled: false"),
        "{}",
        refused.stderr
    );

    let edge = fleet.dir.path().join("edge.yml");
    std::fs::write(&edge, "cache: 20g\n").expect("write edge.yml");
    let pushed = fleet.ctl(["config", "push", &edge.to_string_lossy()]);
    assert_eq!(pushed.code, Some(0), "{}\n{}", pushed.stdout, pushed.stderr);
    assert!(
        ran.exists(),
        "the reloaded config.reload_command did not run"
    );
}
