//! `cdnctl config`: versioned pushes, atomic apply on agents, convergence
//! of nodes that were away, rollback, and the failure paths.

use std::path::Path;

use cdn_tests::{Fleet, agent_yml, edge_file, signal, wait_for};
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn status(fleet: &Fleet) -> Vec<Value> {
    let out = fleet.ctl(["config", "status", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn file_of(fleet: &Fleet, node: &str) -> Option<String> {
    std::fs::read_to_string(edge_file(fleet.dir.path(), node)).ok()
}

/// An agent config with extra `config:` keys for agent `name`.
fn agent_with(fleet: &Fleet, name: &str, extra: &str) -> String {
    agent_yml(fleet.dir.path(), name, &fleet.master_addr()).replace("  min_free_bytes: 0\n", extra)
}

#[test]
fn push_reaches_every_agent_and_status_shows_them_in_sync() {
    let fleet = Fleet::start(3);
    let text = "cache:\n  size: 10g\n  ttl: 300\n";
    let file = write(fleet.dir.path(), "edge.yml", text);

    let out = fleet.ctl(["config", "push", &file, "-m", "first"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    for node in ["agent-1", "agent-2", "agent-3"] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(node))
            .unwrap_or_else(|| panic!("{node} missing:\n{}", out.stdout));
        assert!(line.contains("applied"), "{line}");
        assert_eq!(file_of(&fleet, node).as_deref(), Some(text), "{node} file");
    }
    for n in status(&fleet) {
        assert_eq!(n["desired_version"], 1);
        assert_eq!(n["applied_version"], 1);
        assert_eq!(n["in_sync"], true, "{n}");
    }

    // The same content again is a no-op that says so.
    let again = fleet.ctl(["config", "push", &file]);
    assert_eq!(again.code, Some(0));
    assert!(again.stderr.contains("unchanged"), "{}", again.stderr);
    let history = fleet.ctl(["config", "history", "-o", "json"]);
    let history: Vec<Value> = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["message"], "first");
    assert_eq!(history[0]["size"], text.len());

    // A hand edit on a node shows as drift.
    std::fs::write(edge_file(fleet.dir.path(), "agent-2"), "edited: by hand\n").unwrap();
    wait_for("drift on agent-2", || {
        status(&fleet)
            .into_iter()
            .find(|n| n["node"] == "agent-2" && n["drift"] == true)
    });
}

#[test]
fn small_files_go_up_as_they_are_and_large_ones_compressed_and_both_arrive_whole() {
    let fleet = Fleet::start(1);
    // cdnctl compresses uploads from 64 KiB on: one file each side of it.
    for lines in [10, 20_000] {
        let text: String = (0..lines)
            .map(|i| {
                format!(
                    "route_{i}: {{ upstream: \"10.0.{}.{}:8080\", ttl: {i} }}\n",
                    i % 250,
                    i % 200
                )
            })
            .collect();
        let file = write(fleet.dir.path(), "edge.yml", &text);
        let out = fleet.ctl(["config", "push", &file]);
        assert_eq!(out.code, Some(0), "{} bytes: {}", text.len(), out.stderr);
        assert_eq!(
            file_of(&fleet, "agent-1").as_deref(),
            Some(text.as_str()),
            "{} bytes",
            text.len()
        );
    }
}

#[test]
fn offline_target_is_pending_then_converges_when_it_returns() {
    let mut fleet = Fleet::start(3);
    fleet.agent("agent-3").kill();
    fleet.wait_status("agent-3", "offline");
    let text = "origin: eu\n";
    let file = write(fleet.dir.path(), "edge.yml", text);

    let out = fleet.ctl(["config", "push", &file, "--timeout", "3s", "-o", "json"]);
    assert_eq!(
        out.code,
        Some(1),
        "a pending target fails the push: {}",
        out.stderr
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["applied"], 2);
    assert_eq!(report["pending"], 1);
    let three = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "agent-3")
        .unwrap()
        .clone();
    assert_eq!(three["result"], "pending");
    assert!(file_of(&fleet, "agent-3").is_none());

    fleet.add_agent("agent-3");
    wait_for("agent-3 to converge without another push", || {
        (file_of(&fleet, "agent-3").as_deref() == Some(text)).then_some(())
    });
    wait_for("status in sync", || {
        status(&fleet)
            .iter()
            .all(|n| n["in_sync"] == true)
            .then_some(())
    });
}

#[test]
fn invalid_yaml_is_refused_by_the_master_with_line_and_column_and_nothing_is_stored() {
    let fleet = Fleet::start(1);
    let file = write(fleet.dir.path(), "bad.yml", "a: 1\nb: [2, 3\n");
    // cdnctl sends without parsing: the verdict, with its line and column,
    // is the master's (only the master words it "config is not valid").
    let out = fleet.ctl(["config", "push", &file]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("bad.yml: refused by the master: config is not valid YAML"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("at line 3 column 1"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // Nesting past the bound is the master's refusal too.
    let deep = write(
        fleet.dir.path(),
        "deep.yml",
        &format!("{}1{}\n", "[".repeat(200), "]".repeat(200)),
    );
    let out = fleet.ctl(["config", "push", &deep]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("deep.yml: refused by the master: config is not valid YAML")
            && out.stderr.contains("nested deeper than 128 levels"),
        "{}",
        out.stderr
    );
    // A dry run checks here as well, before anything is sent.
    let dry = fleet.ctl(["config", "push", &file, "--dry-run"]);
    assert_eq!(dry.code, Some(1));
    assert!(
        dry.stderr.contains("bad.yml:3:1: invalid YAML"),
        "{}",
        dry.stderr
    );
    let h = fleet.ctl(["config", "history", "-o", "json"]);
    assert_eq!(h.stdout.trim(), "[]");
    let missing = fleet.ctl(["config", "push", "/nonexistent/x.yml"]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("cannot read"), "{}", missing.stderr);
}

/// The test hook of masterd (see `masterd::configs`): SIGKILL right after
/// a pushed version is durable, before anything is answered.
const KILL_AFTER_STORE: (&str, &str) = ("MASTERD_TEST_KILL_AFTER_VERSION_STORED", "1");

/// `cdnctl config push FILE ARGS…` against `fleet`'s master, started in
/// the background with its output piped.
fn push_in_background(fleet: &Fleet, file: &str, args: &[&str]) -> std::process::Child {
    cdn_tests::ctl_command(&fleet.master.admin_addr.to_string())
        .args(["config", "push", file])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cdnctl")
}

fn history_len(fleet: &Fleet) -> usize {
    let h = fleet.ctl(["config", "history", "-o", "json"]);
    assert_eq!(h.code, Some(0), "{}", h.stderr);
    serde_json::from_str::<Vec<Value>>(&h.stdout).unwrap().len()
}

#[test]
fn a_push_cut_off_after_the_store_gets_its_version_after_a_reconnect() {
    let mut fleet = Fleet::start(1);
    fleet.master.restart_with_env(&[KILL_AFTER_STORE]);
    fleet.wait_status("agent-1", "online");
    let text = "after: reconnect\n";
    let file = write(fleet.dir.path(), "edge.yml", text);
    let push = push_in_background(&fleet, &file, &[]);
    // The master dies with the version durable and nothing answered.
    fleet.master.wait_exit();
    fleet.master.restart();
    let out = push.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("version 1 ("), "{stderr}");
    assert!(stderr.contains("1 applied"), "{stderr}");
    assert!(
        stderr.contains("this answer came after a reconnect")
            && stderr.contains("nothing was stored twice"),
        "{stderr}"
    );
    assert!(!stderr.contains("h2 protocol error"), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("agent-1") && l.contains("applied")),
        "{stdout}"
    );
    assert_eq!(history_len(&fleet), 1, "one version, not two");
    assert_eq!(file_of(&fleet, "agent-1").as_deref(), Some(text));

    // The same in JSON: the report says it was resent and replayed.
    fleet.master.restart_with_env(&[KILL_AFTER_STORE]);
    fleet.wait_status("agent-1", "online");
    let file = write(fleet.dir.path(), "edge.yml", "after: second\n");
    let push = push_in_background(&fleet, &file, &["-o", "json"]);
    fleet.master.wait_exit();
    fleet.master.restart();
    let out = push.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], 2, "{report}");
    assert_eq!(report["resent"], true, "{report}");
    assert_eq!(report["replayed"], true, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(history_len(&fleet), 2);
}

#[test]
fn a_push_cut_off_with_no_master_to_come_back_says_it_may_have_been_stored() {
    let mut fleet = Fleet::start(1);
    fleet.master.restart_with_env(&[KILL_AFTER_STORE]);
    fleet.wait_status("agent-1", "online");
    let file = write(fleet.dir.path(), "edge.yml", "lost: answer\n");
    let push = push_in_background(&fleet, &file, &["--timeout", "2s"]);
    fleet.master.wait_exit();
    // No master comes back within cdnctl's --timeout.
    let out = push.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not reach it again within 2s")
            && stderr.contains("the push may have been stored: `cdnctl config history` shows it"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // It was: the history shows it once the master is back.
    fleet.master.restart();
    assert_eq!(history_len(&fleet), 1);
}

#[test]
fn agent_below_its_free_space_threshold_refuses_and_keeps_its_file() {
    let mut fleet = Fleet::start(0);
    let edge = edge_file(fleet.dir.path(), "agent-1");
    std::fs::create_dir_all(edge.parent().unwrap()).unwrap();
    std::fs::write(&edge, "old: true\n").unwrap();
    let yaml = agent_with(&fleet, "agent-1", "  min_free_bytes: 1000000000000000000\n");
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    fleet.wait_status("agent-1", "online");

    let file = write(fleet.dir.path(), "edge.yml", "new: true\n");
    let out = fleet.ctl(["config", "push", &file]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains("failed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("not enough disk space"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(&edge).unwrap(), "old: true\n");
    let st = status(&fleet);
    assert!(
        st[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not enough disk space"),
        "{st:?}"
    );
}

#[test]
fn failed_reload_restores_the_previous_file_and_reports_the_exit_code() {
    let mut fleet = Fleet::start(0);
    let edge = edge_file(fleet.dir.path(), "agent-1");
    std::fs::create_dir_all(edge.parent().unwrap()).unwrap();
    std::fs::write(&edge, "old: true\n").unwrap();
    let yaml = agent_with(
        &fleet,
        "agent-1",
        "  min_free_bytes: 0\n  reload_command: \"echo nginx: bad directive >&2; exit 7\"\n",
    );
    fleet.add_agent_with("agent-1", "agent-1", &yaml);
    fleet.wait_status("agent-1", "online");

    let file = write(fleet.dir.path(), "edge.yml", "new: true\n");
    let out = fleet.ctl(["config", "push", &file, "-o", "json"]);
    assert_eq!(out.code, Some(1));
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let err = report["results"][0]["error"].as_str().unwrap();
    assert!(err.contains("exit code 7"), "{err}");
    assert!(err.contains("bad directive"), "{err}");
    assert!(err.contains("previous config restored"), "{err}");
    assert_eq!(std::fs::read_to_string(&edge).unwrap(), "old: true\n");
}

#[test]
fn rollback_converges_every_agent_to_the_earlier_content() {
    let fleet = Fleet::start(3);
    let v1 = "tier: gold\n";
    let v2 = "tier: silver\n";
    let f1 = write(fleet.dir.path(), "v1.yml", v1);
    let f2 = write(fleet.dir.path(), "v2.yml", v2);
    assert_eq!(fleet.ctl(["config", "push", &f1]).code, Some(0));
    assert_eq!(fleet.ctl(["config", "push", &f2]).code, Some(0));
    assert_eq!(file_of(&fleet, "agent-2").as_deref(), Some(v2));

    let diff = fleet.ctl(["config", "diff", "1", "2"]);
    assert!(
        diff.stdout.contains("-tier: gold") && diff.stdout.contains("+tier: silver"),
        "{}",
        diff.stdout
    );
    let show = fleet.ctl(["config", "show", "1"]);
    assert_eq!(show.stdout, v1);

    let out = fleet.ctl(["config", "rollback", "1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for node in ["agent-1", "agent-2", "agent-3"] {
        assert_eq!(file_of(&fleet, node).as_deref(), Some(v1), "{node}");
    }
    assert!(status(&fleet).iter().all(|n| n["applied_version"] == 1));

    let missing = fleet.ctl(["config", "rollback", "42"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr.trim(), "cdnctl: config version 42 not found");
}

#[test]
fn pushes_target_named_nodes_and_selectors() {
    let fleet = Fleet::start(3);
    let f = write(fleet.dir.path(), "fra.yml", "pop: fra\n");
    let out = fleet.ctl(["config", "push", &f, "--selector", "pop=fra"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(file_of(&fleet, "agent-1").as_deref(), Some("pop: fra\n"));
    assert!(file_of(&fleet, "agent-2").is_none());

    let g = write(fleet.dir.path(), "two.yml", "only: two\n");
    assert_eq!(
        fleet.ctl(["config", "push", &g, "-n", "agent-2"]).code,
        Some(0)
    );
    assert_eq!(file_of(&fleet, "agent-2").as_deref(), Some("only: two\n"));
    assert!(file_of(&fleet, "agent-3").is_none());

    let unknown = fleet.ctl(["config", "push", &g, "-n", "agent-9"]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("node agent-9 not found"),
        "{}",
        unknown.stderr
    );

    let dry = fleet.ctl(["config", "push", &g, "--dry-run"]);
    assert_eq!(dry.code, Some(0));
    assert!(dry.stderr.contains("dry run"), "{}", dry.stderr);
    assert!(
        file_of(&fleet, "agent-3").is_none(),
        "dry run applies nothing"
    );
}

#[test]
fn desired_version_survives_a_master_crash_right_after_the_push() {
    let mut fleet = Fleet::start(2);
    // Agents frozen: the push is stored but cannot be applied yet.
    let pids: Vec<u32> = fleet.agents.iter().map(|a| a.pid()).collect();
    for p in &pids {
        signal(*p, "STOP");
    }
    let text = "after: crash\n";
    let file = write(fleet.dir.path(), "edge.yml", text);
    let out = fleet.ctl(["config", "push", &file, "--no-wait"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    signal(fleet.master.pid(), "KILL");
    fleet.master.restart();
    for p in &pids {
        signal(*p, "CONT");
    }
    for node in ["agent-1", "agent-2"] {
        wait_for(
            &format!("{node} to converge after the master restart"),
            || (file_of(&fleet, node).as_deref() == Some(text)).then_some(()),
        );
    }
}

#[test]
fn an_agent_killed_during_apply_leaves_the_old_or_the_new_file_never_a_mix() {
    let mut fleet = Fleet::start(1);
    // Two large, different versions (about 6 MiB each).
    let big = |tag: &str| -> String {
        (0..150_000)
            .map(|i| format!("key{i}: {tag}-value-{i}\n"))
            .collect()
    };
    let a = big("aaaa");
    let b = big("bbbb");
    let fa = write(fleet.dir.path(), "a.yml", &a);
    let fb = write(fleet.dir.path(), "b.yml", &b);
    assert_eq!(
        fleet.ctl(["config", "push", &fa, "--timeout", "30s"]).code,
        Some(0)
    );
    let edge = edge_file(fleet.dir.path(), "agent-1");
    let mut seed = std::process::id() as u64;
    for round in 0..6 {
        let (old, new, f) = if round % 2 == 0 {
            (&a, &b, &fb)
        } else {
            (&b, &a, &fa)
        };
        let current = std::fs::read_to_string(&edge).unwrap();
        assert!(
            current == *old || current == *new,
            "round {round}: torn file before push"
        );
        let out = fleet.ctl(["config", "push", f, "--no-wait"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        // Kill at a pseudo-random moment in the first ~60 ms of the apply.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(std::time::Duration::from_millis((seed >> 33) % 60));
        fleet.agent("agent-1").kill();
        let after = std::fs::read_to_string(&edge).unwrap();
        assert!(
            after == *old || after == *new,
            "round {round}: file is neither version ({} bytes)",
            after.len()
        );
        fleet.agent("agent-1").kill();
        fleet.agents.clear();
        fleet.add_agent("agent-1");
        // It converges to the desired version whatever the kill interrupted.
        wait_for("agent-1 to converge after the kill", || {
            (std::fs::read_to_string(&edge).ok().as_deref() == Some(new.as_str())).then_some(())
        });
    }
}

/// Fetches `/metrics` over plain HTTP/1.1.
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

#[test]
fn push_latency_and_failures_are_exported_as_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{}metrics:\n  addr: 127.0.0.1:0\n",
        cdn_tests::TEST_MASTER_YML
    );
    let master = cdn_tests::Master::start(&dir.path().join("m"), &yaml, 0);
    let metrics = master.metrics_addr.expect("metrics address printed");
    let addr = master.addr.to_string();
    let _a1 = cdn_tests::Agent::start(
        dir.path(),
        "agent-1",
        "agent-1",
        &agent_yml(dir.path(), "agent-1", &addr),
    );
    let bad = agent_yml(dir.path(), "agent-2", &addr).replace(
        "  min_free_bytes: 0\n",
        "  min_free_bytes: 1000000000000000000\n",
    );
    let _a2 = cdn_tests::Agent::start(dir.path(), "agent-2", "agent-2", &bad);
    wait_for("two nodes online", || {
        let out = cdn_tests::ctl_at(&addr, ["nodes", "list", "--status", "online", "-o", "json"]);
        (out.stdout.matches("\"name\"").count() == 2).then_some(())
    });
    let file = write(dir.path(), "edge.yml", "m: 1\n");
    let out = cdn_tests::ctl_at(&addr, ["config", "push", &file]);
    assert_eq!(out.code, Some(1), "agent-2 refuses: {}", out.stdout);

    let text = scrape(metrics);
    assert!(
        text.contains("config_push_latency_seconds_count{scope=\"node\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("config_push_latency_seconds_count{scope=\"push\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("le=\"0.0002\""),
        "sub-millisecond buckets: {text}"
    );
    assert!(
        text.contains("config_push_failures_total{reason=\"failed\"} 1"),
        "{text}"
    );
    assert!(text.contains("cdn_nodes{state=\"online\"} 2"), "{text}");
}

#[test]
fn agents_of_other_encodings_interoperate_with_the_master() {
    for (master_algo, agents) in [
        // A zstd master: agent-1 takes zstd, agent-2 only gzip gets gzip.
        (
            "zstd",
            [
                ("agent-1", "[gzip, zstd]", "zstd"),
                ("agent-2", "[gzip]", "gzip"),
            ],
        ),
        // A gzip master: an agent that only takes zstd gets it as it is.
        (
            "gzip",
            [
                ("agent-1", "[zstd]", "identity"),
                ("agent-2", "[gzip]", "gzip"),
            ],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "{}compression:\n  algorithm: {master_algo}\n  level: 9\n",
            cdn_tests::TEST_MASTER_YML
        );
        let master = cdn_tests::Master::start(&dir.path().join("m"), &yaml, 0);
        let addr = master.addr.to_string();
        let mut started = Vec::new();
        for (name, accept, _) in agents {
            let y =
                agent_yml(dir.path(), name, &addr) + &format!("compression:\n  accept: {accept}\n");
            started.push(cdn_tests::Agent::start(dir.path(), name, name, &y));
        }
        wait_for("two nodes online", || {
            let out =
                cdn_tests::ctl_at(&addr, ["nodes", "list", "--status", "online", "-o", "json"]);
            (out.stdout.matches("\"name\"").count() == 2).then_some(())
        });
        let big: String = (0..4000)
            .map(|i| format!("key_{i}: {}\n", i % 97))
            .collect();
        let file = write(dir.path(), "edge.yml", &big);
        let out = cdn_tests::ctl_at(&addr, ["config", "push", &file]);
        assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
        for ((name, _, encoding), agent) in agents.iter().zip(&started) {
            assert_eq!(
                std::fs::read_to_string(edge_file(dir.path(), name)).unwrap(),
                big
            );
            let log = agent.log_text();
            assert!(
                log.contains(&format!("encoding={encoding}")),
                "{master_algo} master, {name}: {log}"
            );
        }
    }
}

#[test]
fn sigterm_on_the_master_during_a_push_reports_cleanly() {
    let mut fleet = Fleet::start(1);
    let agent = fleet.agent("agent-1").pid();
    signal(agent, "STOP");
    let file = write(fleet.dir.path(), "edge.yml", "a: 1\n");
    let push = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string())
        .args(["config", "push", &file, "--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the version stored", || {
        fleet
            .master
            .log_text()
            .contains("config version stored")
            .then_some(())
    });
    signal(fleet.master.pid(), "TERM");
    let out = push.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("master shutting down"), "{stdout}");
    signal(agent, "CONT");
    // The master stops by itself, cleanly, and the version is kept: the
    // agent gets it from the restarted master.
    assert_eq!(fleet.master.wait_exit(), Some(0));
    fleet.master.restart();
    wait_for("agent-1 applied version 1", || {
        file_of(&fleet, "agent-1").filter(|c| c == "a: 1\n")
    });
}
