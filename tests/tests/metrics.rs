//! The Prometheus endpoint: every seed metric name, valid text a real
//! parser accepts, and counters that move with heartbeats, reconnects,
//! pushes and exec sessions.

use std::collections::HashMap;

use cdn_tests::{Agent, Master, TEST_MASTER_YML, agent_yml, ctl_at, wait_for};

fn scrape(master: &Master) -> (String, prometheus_parse::Scrape) {
    let body = master.metrics_text();
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
    (body, parsed)
}

/// Sum of every sample named `name` (all label sets), counting a
/// histogram's observations.
fn total(scrape: &prometheus_parse::Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(b) => b.last().map_or(0.0, |x| x.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[test]
fn every_seed_metric_is_served_and_moves() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{TEST_MASTER_YML}metrics:\n  addr: 127.0.0.1:0\n");
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    let addr = master.addr.to_string();
    let mut agents: HashMap<&str, Agent> = HashMap::new();
    for n in ["agent-1", "agent-2"] {
        agents.insert(
            n,
            Agent::start(dir.path(), n, n, &agent_yml(dir.path(), n, &addr)),
        );
    }
    let online = |want: usize| {
        wait_for(&format!("{want} nodes online"), || {
            let out = ctl_at(&addr, ["nodes", "list", "--status", "online", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
            (v.as_array()?.len() == want).then_some(())
        })
    };
    online(2);
    // A reconnect: agent-2 dies and comes back.
    agents.get_mut("agent-2").unwrap().kill();
    let out = ctl_at(&addr, ["nodes", "list", "-o", "json"]);
    assert_eq!(out.code, Some(0));
    agents.insert(
        "agent-2",
        Agent::start(
            dir.path(),
            "agent-2",
            "agent-2",
            &agent_yml(dir.path(), "agent-2", &addr),
        ),
    );
    wait_for("agent-2 reconnected", || {
        let (_, s) = scrape(&master);
        (total(&s, "agent_reconnect_total") >= 1.0).then_some(())
    });
    online(2);
    let file = dir.path().join("big.yml");
    let big: String = (0..2000)
        .map(|i| format!("key_{i}: value number {i}\n"))
        .collect();
    std::fs::write(&file, big).unwrap();
    let push = ctl_at(&addr, ["config", "push", file.to_str().unwrap()]);
    assert_eq!(push.code, Some(0), "{}", push.stderr);
    assert_eq!(
        ctl_at(&addr, ["exec", "agent-1", "--", "true"]).code,
        Some(0)
    );

    let (body, s) = wait_for("heartbeat latencies observed", || {
        let (b, s) = scrape(&master);
        (total(&s, "agent_heartbeat_latency_seconds") >= 2.0).then_some((b, s))
    });
    for name in [
        "grpc_connections_active",
        "agent_heartbeat_latency_seconds",
        "agent_heartbeat_failures_total",
        "config_push_latency_seconds",
        "config_push_failures_total",
        "agent_reconnect_total",
        "agent_reconnect_latency_seconds",
        "cdn_nodes",
        "cdn_exec_sessions_active",
        "cdn_config_bytes_total",
        "cdn_refused_requests_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            body.contains(&format!("# TYPE {name} "))
                || body.contains(&format!("# TYPE {} ", name.trim_end_matches("_total"))),
            "{name} missing:\n{body}"
        );
    }
    assert!(total(&s, "grpc_connections_active") >= 2.0, "{body}");
    assert!(
        total(&s, "agent_reconnect_latency_seconds") >= 1.0,
        "{body}"
    );
    assert!(total(&s, "config_push_latency_seconds") >= 1.0, "{body}");
    assert_eq!(total(&s, "cdn_exec_sessions_active"), 0.0, "{body}");
    assert!(total(&s, "process_resident_memory_bytes") > 1e6, "{body}");
    // The seed's compression saving on a large YAML config: at most 30 %.
    let raw = s
        .samples
        .iter()
        .find(|x| x.metric == "cdn_config_bytes_total" && x.labels.get("kind") == Some("raw"));
    let wire = s
        .samples
        .iter()
        .find(|x| x.metric == "cdn_config_bytes_total" && x.labels.get("kind") == Some("wire"));
    let value = |x: Option<&prometheus_parse::Sample>| match x.map(|x| &x.value) {
        Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("{other:?}"),
    };
    let (raw, wire) = (value(raw), value(wire));
    assert!(raw > 0.0 && wire <= 0.3 * raw, "raw {raw} wire {wire}");
}

/// The master's PING policy (gRFC A8): an agent configured to ping every
/// 20 ms against a master allowing one PING a second is sent GOAWAY
/// `too_many_pings`, doubles its keepalive interval until it is within the
/// policy, and the master keeps serving everyone meanwhile.
#[test]
fn an_agent_pinging_too_often_is_told_to_back_off_and_the_master_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{TEST_MASTER_YML}metrics:\n  addr: 127.0.0.1:0\ngrpc:\n  keepalive:\n    min_ping_interval: 1s\n"
    );
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    let addr = master.addr.to_string();
    let calm = Agent::start(
        dir.path(),
        "agent-1",
        "agent-1",
        &agent_yml(dir.path(), "agent-1", &addr),
    );
    let pinger_yml = agent_yml(dir.path(), "agent-2", &addr).replace(
        "  dial_timeout: 1s\n",
        "  dial_timeout: 1s\n  keepalive:\n    time: 20ms\n    timeout: 1s\n",
    );
    assert!(pinger_yml.contains("time: 20ms"));
    let pinger = Agent::start(dir.path(), "agent-2", "agent-2", &pinger_yml);

    let told = wait_for("the master closes the pinging agent's connection", || {
        let (_, s) = scrape(&master);
        let n = s
            .samples
            .iter()
            .filter(|x| {
                x.metric == "cdn_refused_requests_total"
                    && x.labels.get("reason") == Some("too_many_pings")
            })
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum::<f64>();
        (n >= 1.0).then_some(n)
    });
    assert!(told >= 1.0);
    assert!(
        master.log_text().contains("too_many_pings"),
        "{}",
        master.log_text()
    );
    wait_for("the agent doubles its keepalive interval", || {
        pinger
            .log_text()
            .contains("keepalive.time doubled")
            .then_some(())
    });
    let log = pinger.log_text();
    assert!(log.contains("too_many_pings"), "{log}");
    assert!(log.contains("was=20ms now=40ms"), "{log}");
    // The master stays healthy: both agents online, calls answered.
    wait_for("both agents online", || {
        let out = ctl_at(&addr, ["nodes", "list", "--status", "online", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        (v.as_array()?.len() == 2).then_some(())
    });
    let exec = ctl_at(&addr, ["exec", "agent-2", "--", "echo", "calm"]);
    assert_eq!(exec.code, Some(0), "{}", exec.stderr);
    assert_eq!(exec.stdout.trim(), "calm");
    drop((calm, pinger));
}
