//! The master's metrics as Prometheus' own tools see them (Debian package
//! `prometheus`): the exposition in both text formats checked by `promtool
//! check metrics`, the shipped scrape config and rules checked and
//! unit-tested by promtool, and a real Prometheus server scraping a real
//! masterd, ingesting its series, loading the shipped rules and raising
//! CdnMasterDown once the master is killed. Without the binaries these
//! tests skip loudly, and fail when `CI` is set.

use cdn_tests::{
    Agent, HttpAnswer, Master, PrometheusServer, TEST_MASTER_YML, agent_yml, ctl_at,
    deploy_prometheus_dir, http_get_with, promtool, require_prometheus, require_promtool, wait_for,
};

/// What Prometheus 2.42 sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn scrape(master: &Master, headers: &[&str]) -> HttpAnswer {
    let a = http_get_with(
        master.metrics_addr.expect("metrics address"),
        "/metrics",
        headers,
    )
    .expect("the metrics endpoint answers");
    assert_eq!(a.status, 200, "{a:?}");
    a
}

/// A master with metrics and one agent online, so that counters and
/// histograms hold samples.
fn busy_master(dir: &std::path::Path) -> (Master, Agent) {
    let yaml = format!("{TEST_MASTER_YML}metrics:\n  addr: 127.0.0.1:0\n");
    let master = Master::start(&dir.join("m"), &yaml, 0);
    let addr = master.addr.to_string();
    let agent = Agent::start(dir, "agent-1", "agent-1", &agent_yml(dir, "agent-1", &addr));
    wait_for("agent-1 online with its command stream", || {
        let out = ctl_at(&addr, ["nodes", "list", "--status", "online", "-o", "json"]);
        let nodes: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        nodes
            .as_array()?
            .iter()
            .any(|n| n["name"] == "agent-1" && n["stream_open"] == true)
            .then_some(())
    });
    let file = dir.join("edge.yml");
    std::fs::write(&file, "cache: 20g\n").unwrap();
    let out = ctl_at(&addr, ["config", "push", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    (master, agent)
}

#[test]
fn promtool_accepts_the_exposition_in_both_formats() {
    let promtool_bin = require_promtool!();
    let dir = tempfile::tempdir().unwrap();
    let (master, _agent) = busy_master(dir.path());

    // No Accept header (curl, promtool, older scrapers): the text format
    // 0.0.4, clean for promtool.
    let text = scrape(&master, &[]);
    assert_eq!(
        text.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(!text.body.contains("# EOF"), "{}", text.body);
    let lint = promtool(&promtool_bin, &["check", "metrics"], &text.body);
    assert_eq!(lint.code, Some(0), "{}\n{}", lint.text, text.body);
    assert!(lint.text.trim().is_empty(), "{}", lint.text);
    for counter in [
        "agent_heartbeat_failures_total",
        "cdn_refused_requests_total",
        "config_push_failures_total",
        "process_cpu_seconds_total",
    ] {
        assert!(
            text.body.contains(&format!("# TYPE {counter} counter\n"))
                && text.body.contains(&format!("# HELP {counter} ")),
            "{counter}:\n{}",
            text.body
        );
    }
    for gauge in [
        "process_start_time_seconds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
    ] {
        assert!(
            text.body.contains(&format!("# TYPE {gauge} gauge\n")),
            "{gauge}:\n{}",
            text.body
        );
    }

    // Prometheus asks for OpenMetrics and gets it. promtool 2.42 lints
    // with the 0.0.4 parser, which knows a counter only by its `_total`
    // sample name, while OpenMetrics names the family without it: its
    // only findings must be exactly that, for counters whose HELP is
    // there under the family name.
    let om = scrape(&master, &[PROMETHEUS_ACCEPT]);
    assert_eq!(
        om.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(
        om.body.contains("# TYPE process_cpu_seconds counter\n"),
        "{}",
        om.body
    );
    let lint = promtool(&promtool_bin, &["check", "metrics"], &om.body);
    let findings: Vec<&str> = lint.text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!findings.is_empty(), "promtool read the counters");
    for f in &findings {
        let family = f
            .strip_suffix("_total no help text")
            .unwrap_or_else(|| panic!("unexpected promtool finding {f:?}:\n{}", om.body));
        assert!(
            om.body.contains(&format!("# HELP {family} "))
                && om.body.contains(&format!("# TYPE {family} counter\n")),
            "{f}:\n{}",
            om.body
        );
    }

    // Anything else asked for gets the classic format.
    for accept in [
        "Accept: text/html",
        "Accept: application/openmetrics-text;q=0",
        "Accept: text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5",
        "Accept: ;;;,",
    ] {
        let a = scrape(&master, &[accept]);
        assert_eq!(
            a.content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept}"
        );
    }
}

#[test]
fn promtool_passes_the_shipped_config_rules_and_rule_tests() {
    let promtool_bin = require_promtool!();
    let deploy = deploy_prometheus_dir();
    let path = |f: &str| deploy.join(f).to_string_lossy().into_owned();
    for args in [
        ["check", "config", &path("prometheus.yml")],
        ["check", "rules", &path("alerts.yml")],
        ["test", "rules", &path("alerts_test.yml")],
    ] {
        let out = promtool(&promtool_bin, &args, "");
        assert_eq!(out.code, Some(0), "promtool {args:?}:\n{}", out.text);
        assert!(out.text.contains("SUCCESS"), "{}", out.text);
    }
    // A rule file with a broken expression is refused: the check is real.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    let text = std::fs::read_to_string(deploy.join("alerts.yml"))
        .unwrap()
        .replace("up{job=\"masterd\"} == 0", "up{job=\"masterd\" == 0");
    std::fs::write(&broken, text).unwrap();
    let out = promtool(
        &promtool_bin,
        &["check", "rules", &broken.to_string_lossy()],
        "",
    );
    assert_ne!(out.code, Some(0), "{}", out.text);
}

#[test]
fn a_real_prometheus_scrapes_the_master_and_alerts_when_it_is_down() {
    let prometheus_bin = require_prometheus!();
    let dir = tempfile::tempdir().unwrap();
    let (mut master, agent) = busy_master(dir.path());
    let target = master.metrics_addr.unwrap();
    let alerts = deploy_prometheus_dir().join("alerts.yml");
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {}
scrape_configs:
  - job_name: masterd
    static_configs:
      - targets: [\"{target}\"]
",
        alerts.display()
    );
    let prom = PrometheusServer::start(&prometheus_bin, &config);

    // The series arrive, with the master's values.
    let value = |query: &str| -> Option<f64> {
        let r = prom.query(query)?;
        r.first()?["value"][1].as_str()?.parse().ok()
    };
    wait_for("cdn_master_is_leader ingested", || {
        (value("cdn_master_is_leader{job=\"masterd\"}") == Some(1.0)).then_some(())
    });
    wait_for("a connection seen", || {
        value("max_over_time(grpc_connections_active[1m])").filter(|v| *v >= 1.0)
    });
    for q in [
        "process_cpu_seconds_total{job=\"masterd\"}",
        "process_start_time_seconds{job=\"masterd\"}",
        "config_push_latency_seconds_count{scope=\"push\"}",
        "agent_heartbeat_failures_total{reason=\"missed\"}",
    ] {
        assert!(value(q).is_some(), "{q} missing:\n{}", prom.log_text());
    }
    assert_eq!(value("up{job=\"masterd\"}"), Some(1.0));

    // The shipped rules loaded and evaluate without error.
    let groups = wait_for("rules evaluated", || {
        let v = prom.api("/api/v1/rules")?;
        let groups = v["data"]["groups"].as_array()?.clone();
        let rules: Vec<&serde_json::Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        (!rules.is_empty() && rules.iter().all(|r| r["health"] == "ok")).then_some(groups)
    });
    let names: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["name"].as_str())
        .collect();
    for alert in [
        "CdnMasterDown",
        "CdnMasterAbsent",
        "CdnNoMasterLeads",
        "CdnNodesOffline",
    ] {
        assert!(names.contains(&alert), "{alert} not loaded: {names:?}");
    }

    // The master dies: up goes to 0 and CdnMasterDown is raised for it
    // (pending for its minute).
    drop(agent);
    master.kill();
    let alert = wait_for("CdnMasterDown raised", || {
        let v = prom.api("/api/v1/alerts")?;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "CdnMasterDown")
            .cloned()
    });
    assert_eq!(alert["labels"]["instance"], target.to_string());
    assert!(
        alert["state"] == "pending" || alert["state"] == "firing",
        "{alert}"
    );
    assert_eq!(value("up{job=\"masterd\"}"), Some(0.0));
}
