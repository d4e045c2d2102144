//! The agent's health command (agent.yml `config.health_command`): run
//! after every apply and reload and every `config.health_interval`; its
//! result reaches the master with the ack and in heartbeats, a failing
//! check shows the node degraded with the check's output, `nodes get`
//! and the wide listing show it, and every change is a `node.health`
//! event.

use std::process::Command;

use cdn_tests::{Fleet, agent_yml, bin, wait_for};
use serde_json::Value;

/// The standard test agent.yml of `name` with `extra` lines in its
/// `config:` section.
fn agent_with(fleet: &Fleet, name: &str, extra: &str) -> String {
    agent_yml(fleet.dir.path(), name, &fleet.master_addr()).replace(
        "  min_free_bytes: 0\n",
        &format!("  min_free_bytes: 0\n{extra}"),
    )
}

/// `health_command: COMMAND` as a YAML single-quoted line.
fn health_line(command: &str) -> String {
    format!("  health_command: '{}'\n", command.replace('\'', "''"))
}

fn write(fleet: &Fleet, file: &str, text: &str) -> String {
    let path = fleet.dir.path().join(file);
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

/// `nodes get NAME` as the operator reads it.
fn get(fleet: &Fleet, name: &str) -> String {
    let out = fleet.ctl(["nodes", "get", name]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stdout
}

/// The `Health:` line of `nodes get NAME`.
fn health_line_of(fleet: &Fleet, name: &str) -> String {
    let page = get(fleet, name);
    page.lines()
        .find(|l| l.starts_with("Health:"))
        .unwrap_or_else(|| panic!("no Health line:\n{page}"))
        .to_string()
}

/// Kinds and details of `node`'s events, oldest first.
fn events_of(fleet: &Fleet, node: &str) -> Vec<(String, String)> {
    let out = fleet.ctl(["events", "-o", "json", "--limit", "1000"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // One object per line, oldest first.
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("an event per line"))
        .filter(|e| e["target"] == node)
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_check_that_fails_after_a_push_degrades_the_node_until_a_good_version_fixes_it() {
    let mut fleet = Fleet::start(0);
    // Healthy while there is no file yet, or when the file has the marker.
    let check = r#"test ! -e "$CDN_CONFIG_PATH" || grep -q healthy "$CDN_CONFIG_PATH" || { echo "checking v$CDN_CONFIG_VERSION" >&2; echo "marker missing" >&2; exit 3; }"#;
    let yaml = agent_with(
        &fleet,
        "agent-1",
        &format!("{}  health_interval: 1s\n", health_line(check)),
    );
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    let node = wait_for("agent-1 online with a passing check", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && n["health"]["state"] == "ok")
    });
    assert_eq!(node["health"]["detail"], "");
    assert!(
        health_line_of(&fleet, "agent-1").starts_with("Health:          ok"),
        "{}",
        get(&fleet, "agent-1")
    );

    // A good version: applied, still healthy, the check ran on it.
    let good = write(&fleet, "good.yml", "status: healthy\n");
    let out = fleet.ctl(["config", "push", &good]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let node = fleet.node("agent-1").expect("agent-1 listed");
    assert_eq!(node["health"]["state"], "ok", "{node}");
    assert_eq!(node["health"]["config_version"], "1", "{node}");

    // A version the check does not like: it applies (the file is
    // written and reloaded), and the ack already carries the failure, so
    // the node is degraded as soon as the push says applied.
    let bad = write(&fleet, "bad.yml", "status: broken\n");
    let out = fleet.ctl(["config", "push", &bad]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let node = fleet.node("agent-1").expect("agent-1 listed");
    assert_eq!(node["status"], "degraded", "{node}");
    assert_eq!(
        node["status_reason"], "health check failed: exit 3: checking v2 | marker missing",
        "{node}"
    );
    assert_eq!(node["health"]["state"], "failing");
    assert_eq!(node["health"]["config_version"], "2");
    let line = health_line_of(&fleet, "agent-1");
    assert!(
        line.contains("failing: exit 3: checking v2 | marker missing"),
        "{line}"
    );
    let wide = fleet.ctl(["nodes", "list", "-o", "wide"]);
    assert_eq!(wide.code, Some(0), "{}", wide.stderr);
    let header = wide.stdout.lines().next().unwrap_or_default().to_string();
    assert!(header.contains("HEALTH"), "{header}");
    let row = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("agent-1"))
        .unwrap_or_else(|| panic!("agent-1 not listed:\n{}", wide.stdout));
    assert!(row.contains("failing"), "{row}");
    // It stays so at the next periodic check.
    let checked = node["health"]["checked"].clone();
    let node = wait_for("a periodic check after the push", || {
        fleet
            .node("agent-1")
            .filter(|n| n["health"]["checked"] != checked)
    });
    assert_eq!(node["status"], "degraded", "{node}");
    assert_eq!(node["health"]["state"], "failing", "{node}");
    let events = events_of(&fleet, "agent-1");
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "node.health" && d.contains("failing: exit 3")),
        "{events:?}"
    );

    // Fixed by a good version: online again, and said so.
    let fixed = write(&fleet, "fixed.yml", "status: healthy again\n");
    let out = fleet.ctl(["config", "push", &fixed]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let node = fleet.node("agent-1").expect("listed");
    assert_eq!(node["status"], "online", "{node}");
    assert_eq!(node["status_reason"], "", "{node}");
    assert_eq!(node["health"]["state"], "ok");
    assert_eq!(node["health"]["config_version"], "3");
    let events = events_of(&fleet, "agent-1");
    let health: Vec<&str> = events
        .iter()
        .filter(|(k, _)| k == "node.health")
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(health.first(), Some(&"ok"), "{events:?}");
    assert_eq!(health.last(), Some(&"ok"), "{events:?}");
    assert_eq!(health.len(), 3, "ok, failing, ok: {events:?}");
}

#[test]
fn a_hanging_check_fails_as_timed_out_and_a_node_without_a_check_shows_none() {
    let mut fleet = Fleet::start(1);
    let yaml = agent_with(
        &fleet,
        "agent-2",
        &format!(
            "{}  health_interval: 1s\n  health_timeout: 1s\n",
            health_line("sleep 30")
        ),
    );
    fleet.add_agent_with("agent-2", "agent-2", &yaml);
    let node = wait_for("agent-2 degraded by its hanging check", || {
        fleet
            .node("agent-2")
            .filter(|n| n["status"] == "degraded" && n["health"]["state"] == "failing")
    });
    assert_eq!(
        node["status_reason"], "health check failed: timed out after 1s",
        "{node}"
    );
    let line = health_line_of(&fleet, "agent-2");
    assert!(line.contains("failing: timed out after 1s"), "{line}");
    // The agent without a check: no health, online.
    let plain = fleet.node("agent-1").expect("agent-1 listed");
    assert_eq!(plain["status"], "online");
    assert_eq!(plain["health"], Value::Null, "{plain}");
    assert!(
        health_line_of(&fleet, "agent-1").contains("none"),
        "{}",
        get(&fleet, "agent-1")
    );
    let wide = fleet.ctl(["nodes", "list", "-o", "wide"]);
    let row = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("agent-2"))
        .unwrap_or_else(|| panic!("agent-2 not listed:\n{}", wide.stdout));
    assert!(row.contains("failing"), "{row}");
}

#[test]
fn sighup_puts_a_new_health_command_in_force() {
    let mut fleet = Fleet::start(0);
    let failing = agent_with(
        &fleet,
        "agent-1",
        &format!(
            "{}  health_interval: 1h\n",
            health_line("echo upstream down; exit 1")
        ),
    );
    fleet.add_agent_with("agent-1", "agent-1", &failing);
    let node = wait_for("agent-1 degraded by its check", || {
        fleet.node("agent-1").filter(|n| n["status"] == "degraded")
    });
    assert_eq!(
        node["status_reason"], "health check failed: exit 1: upstream down",
        "{node}"
    );
    // A passing command: the check runs again at once (not an hour later).
    let passing = agent_with(
        &fleet,
        "agent-1",
        &format!("{}  health_interval: 1h\n", health_line("true")),
    );
    let agent = fleet.agent("agent-1");
    std::fs::write(&agent.config, passing).expect("rewrite agent.yml");
    agent.signal("HUP");
    let node = wait_for("agent-1 online after the reload", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && n["health"]["state"] == "ok")
    });
    assert_eq!(node["status_reason"], "");
    // No command at all: no health.
    let none = agent_with(&fleet, "agent-1", "");
    let agent = fleet.agent("agent-1");
    std::fs::write(&agent.config, none).expect("rewrite agent.yml");
    agent.signal("HUP");
    wait_for("agent-1 without a health check", || {
        fleet
            .node("agent-1")
            .filter(|n| n["status"] == "online" && n["health"].is_null())
    });
    let kinds: Vec<String> = events_of(&fleet, "agent-1")
        .into_iter()
        .filter(|(k, _)| k == "node.health")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        kinds,
        ["failing: exit 1: upstream down", "ok", "no health check"],
        "oldest first"
    );
}

#[test]
fn a_restarted_agent_keeps_its_failing_health_without_a_flap() {
    let mut fleet = Fleet::start(0);
    let yaml = agent_with(
        &fleet,
        "agent-1",
        &format!(
            "{}  health_interval: 1s\n",
            health_line("echo cache cold >&2; exit 4")
        ),
    );
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    wait_for("agent-1 degraded by its check", || {
        fleet.node("agent-1").filter(|n| n["status"] == "degraded")
    });
    // Stopped cleanly and started again: while its first check runs, the
    // master keeps what it knew, so no "no health check" event comes.
    let status = fleet.agents.remove(0).terminate();
    assert!(status.success(), "{status:?}");
    fleet.wait_status("agent-1", "offline");
    let session = fleet.node("agent-1").expect("listed")["session_id"].clone();
    fleet.add_agent_with("agent-1-again", "agent-1", &yaml);
    let back = wait_for("agent-1 back, with a fresh check", || {
        fleet
            .node("agent-1")
            .filter(|n| n["session_id"] != session && n["status"] == "degraded")
    });
    assert_eq!(
        back["status_reason"], "health check failed: exit 4: cache cold",
        "{back}"
    );
    let health: Vec<String> = events_of(&fleet, "agent-1")
        .into_iter()
        .filter(|(k, _)| k == "node.health")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(health, ["failing: exit 4: cache cold"]);
}

#[test]
fn bad_health_settings_are_refused_at_start_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (extra, key, says) in [
        ("  health_interval: 0s\n", "config.health_interval", "0s"),
        (
            "  health_interval: 30d\n",
            "config.health_interval",
            "longer",
        ),
        (
            "  health_timeout: 10ms\n",
            "config.health_timeout",
            "shorter",
        ),
        ("  health_timeout: soon\n", "config.health_timeout", "soon"),
    ] {
        let yaml = agent_yml(dir.path(), "agent-1", "127.0.0.1:1").replace(
            "  min_free_bytes: 0\n",
            &format!("  min_free_bytes: 0\n{extra}"),
        );
        let file = dir.path().join("agent.yml");
        std::fs::write(&file, &yaml).expect("write agent.yml");
        let out = Command::new(bin("agentd"))
            .arg("-c")
            .arg(&file)
            .arg("--insecure")
            .output()
            .expect("run agentd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{extra}: {stderr}");
        let line = yaml
            .lines()
            .position(|l| l == extra.trim_end())
            .expect("the line is in the file")
            + 1;
        assert!(
            stderr.contains(&format!("agent.yml:{line}:"))
                && stderr.contains(&format!("`{key}`"))
                && stderr.contains(says),
            "{extra}: {stderr}"
        );
    }
}

/// The Prometheus gate client against a real Prometheus scraping an
/// exporter the test controls.
mod prometheus_gate {
    use std::time::Duration;

    use cdn_tests::{PrometheusServer, TextExporter, require_prometheus, scrape_config, wait_for};
    use masterd::promgate::{GateContext, GateOutcome, PromClient, PromGate};

    const GATE: &str = r#"edge_error_ratio{job="edge", node=~"{{nodes}}"} < 0.5"#;

    fn read(
        rt: &tokio::runtime::Runtime,
        client: &PromClient,
        gate: &PromGate,
        nodes: &[&str],
    ) -> GateOutcome {
        let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        rt.block_on(client.read(
            gate,
            &GateContext {
                nodes: &nodes,
                wave: 1,
                version: 7,
            },
        ))
    }

    #[test]
    fn a_gate_passes_fails_with_the_value_and_fails_closed_when_prometheus_is_gone() {
        let bin = require_prometheus!();
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let exporter = TextExporter::start();
        exporter.set(
            "# TYPE edge_error_ratio gauge\n\
             edge_error_ratio{node=\"agent-1\"} 0.01\n\
             edge_error_ratio{node=\"agent-2\"} 0.02\n\
             edge_error_ratio{node=\"agent-3\"} 0.9\n",
        );
        let mut prometheus =
            PrometheusServer::start(&bin, &scrape_config(&[exporter.addr()], "1s"));
        let client = PromClient::new(
            &format!("http://{}", prometheus.addr),
            Duration::from_secs(5),
        )
        .expect("client");
        let gate: PromGate = GATE.parse().expect("gate");

        // The first two nodes are fine; {{nodes}} leaves agent-3 out.
        let first = wait_for("the first scrape", || {
            let o = read(&rt, &client, &gate, &["agent-1", "agent-2"]);
            (!o.detail.starts_with("no data")).then_some(o)
        });
        assert!(first.passed, "{first:?}\n{}", prometheus.log_text());
        assert_eq!(first.value, Some(0.02));
        assert!(
            first.detail.contains("node=\"agent-2\""),
            "{}",
            first.detail
        );
        assert!(
            first.detail.contains("worst of 2 series"),
            "{}",
            first.detail
        );

        // With agent-3 in the wave its series fails the gate.
        let all = read(&rt, &client, &gate, &["agent-1", "agent-2", "agent-3"]);
        assert!(!all.passed, "{all:?}");
        assert_eq!(all.value, Some(0.9));
        assert!(
            all.detail.contains("0.9") && all.detail.contains("agent-3"),
            "{}",
            all.detail
        );

        // The exporter's value goes up: the gate fails, with the value.
        exporter.set(
            "edge_error_ratio{node=\"agent-1\"} 0.01\n\
             edge_error_ratio{node=\"agent-2\"} 0.75\n\
             edge_error_ratio{node=\"agent-3\"} 0.9\n",
        );
        let failed = wait_for("the new value scraped", || {
            let o = read(&rt, &client, &gate, &["agent-1", "agent-2"]);
            (!o.passed).then_some(o)
        });
        assert_eq!(failed.value, Some(0.75), "{failed:?}");
        assert!(
            failed.detail.starts_with("0.75 on {") && failed.detail.contains("is not < 0.5"),
            "{}",
            failed.detail
        );

        // A node with no series: no data fails the gate.
        let none = read(&rt, &client, &gate, &["agent-9"]);
        assert!(!none.passed && none.value.is_none(), "{none:?}");
        assert!(
            none.detail.starts_with("no data for `edge_error_ratio{"),
            "{}",
            none.detail
        );

        // A query Prometheus refuses fails with its reason.
        let bad: PromGate = "no_such_function(edge_error_ratio) < 1"
            .parse()
            .expect("gate");
        let refused = read(&rt, &client, &bad, &[]);
        assert!(!refused.passed, "{refused:?}");
        assert!(
            refused.detail.contains("refused the query") && refused.detail.contains("bad_data"),
            "{}",
            refused.detail
        );

        // Prometheus gone: the gate fails closed, saying so.
        prometheus.kill();
        let gone = read(&rt, &client, &gate, &["agent-1"]);
        assert!(!gone.passed && gone.value.is_none(), "{gone:?}");
        assert!(
            gone.detail.contains("unreachable") && gone.detail.contains("refused"),
            "{}",
            gone.detail
        );
    }

    #[test]
    fn a_prometheus_that_never_answers_fails_the_gate_at_the_timeout() {
        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let held = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for c in listener.incoming().take(1) {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_secs(10));
            drop(conns);
        });
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let client =
            PromClient::new(&format!("http://{addr}"), Duration::from_millis(500)).expect("client");
        let gate: PromGate = GATE.parse().expect("gate");
        let o = read(&rt, &client, &gate, &["agent-1"]);
        assert!(!o.passed && o.value.is_none(), "{o:?}");
        assert_eq!(
            o.detail,
            format!("Prometheus at http://{addr} did not answer within 500ms")
        );
        drop(held);
    }
}
