//! `cdn-swarm`, hollow agents: a few hundred real agent links in one
//! process register with a real master over mutual TLS, take a config push,
//! run a command, and leave cleanly on SIGTERM; and the refusals: a count
//! the file limit cannot hold, an enrolment the master refuses.

use std::process::Command;

use cdn_tests::{Fleet, Master, Swarm, bin, swarm_yml, wait_for};
use serde_json::Value;

/// Master config for hollow agents: one-second heartbeats (a few hundred
/// agents at the harness's 300 ms would keep a debug master busy on a
/// small machine), offline after five missed ones.
const SWARM_MASTER_YML: &str = "\
heartbeat:
  interval: 1s
  timeout: 5s
  offline_threshold: 5
reconnect:
  max_retries: 3
  base_delay: 50ms
  max_delay: 500ms
  jitter: 0.2
";

/// A master (TLS, with its join token) and no agentd.
fn fleet() -> Fleet {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(&dir.path().join("master"), SWARM_MASTER_YML, 0);
    Fleet {
        dir,
        master,
        agents: Vec::new(),
    }
}

fn u64_of(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number: {stats}"))
}

fn f64_of(stats: &Value, key: &str) -> f64 {
    stats[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {stats}"))
}

#[test]
fn two_hundred_hollow_agents_register_apply_a_config_run_a_command_and_leave_cleanly() {
    let fleet = fleet();
    let dir = fleet.dir.path().join("swarm");
    let data = dir.join("agents");
    let data_arg = data.display().to_string();
    let mut swarm = Swarm::start(
        &dir,
        &swarm_yml(&fleet.master_addr()),
        &["--count", "200", "--data-dir", &data_arg],
    );
    let names: Vec<String> = (1..=200).map(|i| format!("hollow-{i:05}")).collect();

    wait_for(
        "200 hollow agents online with their command streams",
        || {
            let nodes = fleet.try_nodes()?;
            let ready = nodes
                .iter()
                .filter(|n| n["status"] == "online" && n["stream_open"] == true)
                .count();
            (ready == 200).then_some(())
        },
    );
    let nodes = fleet.nodes();
    let listed: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(listed, names, "one node per hollow agent, ids sorting");
    for n in &nodes {
        assert_eq!(n["labels"]["role"], "hollow", "template labels: {n}");
        assert_eq!(n["address"], "127.0.0.1");
    }
    let stats = wait_for("the swarm to count 200 registered", || {
        swarm
            .stats()
            .filter(|s| s["registered"] == 200 && !s["time_to_all_registered_ms"].is_null())
    });
    assert_eq!(u64_of(&stats, "count"), 200);
    assert_eq!(u64_of(&stats, "ever_registered"), 200);
    assert_eq!(
        u64_of(&stats, "enrolled"),
        200,
        "a fresh data dir: all enrol"
    );
    assert_eq!(stats["first_node"], "hollow-00001");
    assert_eq!(stats["last_node"], "hollow-00200");
    assert!(
        swarm.log_text().contains("all 200 agents registered in"),
        "{}",
        swarm.log_text()
    );
    for name in ["hollow-00001", "hollow-00200"] {
        for file in ["node.key", "node.crt", "ca.crt", "node.id"] {
            assert!(data.join(name).join(file).exists(), "{name}/{file}");
        }
    }

    // A push reaches every hollow agent, each applying into its own directory.
    let text = "cache:\n  size: 10g\nhollow: true\n";
    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let out = fleet.ctl([
        "config",
        "push",
        &file,
        "-m",
        "to the swarm",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    for name in &names {
        let applied = std::fs::read_to_string(data.join(name).join("edge.yml"));
        assert_eq!(applied.ok().as_deref(), Some(text), "{name}");
    }
    let status = fleet.ctl(["config", "status", "-o", "json"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let status: Vec<Value> = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status.len(), 200);
    assert!(
        status
            .iter()
            .all(|n| n["applied_version"] == 1 && n["in_sync"] == true),
        "{status:?}"
    );

    // A command runs on one hollow agent as on a real one.
    let out = fleet.ctl(["exec", "hollow-00007", "--", "echo", "hi"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "hi\n");

    // SIGTERM: every link ends its session itself, so the master shows all
    // offline from the stop, not from missed heartbeats.
    let exit = swarm.terminate();
    assert!(exit.success(), "SIGTERM is a clean exit: {exit:?}");
    let nodes = wait_for("all 200 hollow agents offline", || {
        let nodes = fleet.try_nodes()?;
        (nodes.len() == 200 && nodes.iter().all(|n| n["status"] == "offline")).then_some(nodes)
    });
    for n in &nodes {
        let reason = n["status_reason"].as_str().unwrap_or_default();
        assert_eq!(
            reason, "agent shut down",
            "{} went offline for another reason than its stop",
            n["name"]
        );
    }

    let stats = swarm.stats().expect("final statistics");
    assert_eq!(stats["stopped"], true, "{stats}");
    assert_eq!(u64_of(&stats, "registered"), 0, "{stats}");
    assert_eq!(u64_of(&stats, "registered_peak"), 200, "{stats}");
    assert_eq!(u64_of(&stats, "ever_registered"), 200, "{stats}");
    let (p50, p99, max) = (
        u64_of(&stats, "heartbeat_rtt_p50_us"),
        u64_of(&stats, "heartbeat_rtt_p99_us"),
        u64_of(&stats, "heartbeat_rtt_max_us"),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{stats}");
    assert!(u64_of(&stats, "heartbeat_samples") >= 200, "{stats}");
    let (r50, r99, rmax) = (
        f64_of(&stats, "registration_p50_ms"),
        f64_of(&stats, "registration_p99_ms"),
        f64_of(&stats, "registration_max_ms"),
    );
    assert!(0.0 < r50 && r50 <= r99 && r99 <= rmax, "{stats}");
    let all = u64_of(&stats, "time_to_all_registered_ms") as f64;
    assert!(
        all + 1.0 >= rmax,
        "all registered after the slowest: {stats}"
    );
    assert!(u64_of(&stats, "rss_per_agent_bytes") > 0, "{stats}");
    u64_of(&stats, "reconnects");
    u64_of(&stats, "heartbeat_failures");
    assert!(
        data.join("hollow-00001").join("node.crt").exists(),
        "--data-dir is kept"
    );
}

#[test]
fn the_default_data_dir_is_temporary_and_removed_at_exit() {
    let fleet = fleet();
    let dir = fleet.dir.path().join("swarm");
    let tmp = fleet.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let yaml = swarm_yml(&fleet.master_addr());
    let mut swarm = Swarm::spawn(
        &dir,
        Swarm::command(&dir, &yaml)
            .args(["--count", "3", "--prefix", "temp-"])
            .env("TMPDIR", &tmp),
    );
    let root = wait_for("a temporary directory holding 3 enrolled agents", || {
        let root = std::fs::read_dir(&tmp)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains("cdn-swarm-"))?;
        (1..=3)
            .all(|i| root.join(format!("temp-{i:05}")).join("node.crt").exists())
            .then_some(root)
    });
    wait_for("3 agents online", || {
        let nodes = fleet.try_nodes()?;
        (nodes.iter().filter(|n| n["status"] == "online").count() == 3).then_some(())
    });
    assert!(swarm.terminate().success());
    assert!(!root.exists(), "{} left behind", root.display());
}

#[test]
fn a_count_above_the_file_limit_is_refused_with_the_split_to_use() {
    // A hard limit of 1000 files for this one process, whatever the machine's.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1000 && exec \"$0\" \"$@\"")
        .arg(bin("cdn-swarm"))
        .args(["--count", "5000", "--insecure", "--master", "127.0.0.1:9"])
        .env_remove("AGENTD_JOIN_TOKEN")
        .output()
        .expect("run cdn-swarm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for part in [
        "cdn-swarm: --count 5000 needs about",
        "at most 1000",
        "processes of at most",
        "--start-index",
    ] {
        assert!(stderr.contains(part), "{part:?} missing: {stderr}");
    }

    // What fits is not refused: the swarm starts (and stops on SIGTERM).
    let dir = tempfile::tempdir().unwrap();
    let yaml = "master:\n  addr: 127.0.0.1:9\n";
    let mut swarm = Swarm::spawn(
        dir.path(),
        Swarm::command(dir.path(), yaml).args(["--count", "10", "--insecure"]),
    );
    wait_for("the swarm to start its agents", || {
        swarm.stats().filter(|s| s["started"] == 10)
    });
    assert!(swarm.terminate().success());
}

#[test]
fn an_enrolment_the_master_refuses_stops_the_swarm_with_exit_78() {
    let fleet = fleet();
    let yaml: String = swarm_yml(&fleet.master_addr())
        .lines()
        .filter(|l| !l.contains("join_token_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let real = fleet.master.join_token();
    let (head, _) = real.rsplit_once('.').unwrap();
    let wrong = format!("{head}.{}", "x".repeat(32));

    let dir = fleet.dir.path().join("wrong");
    let mut swarm = Swarm::spawn(
        &dir,
        Swarm::command(&dir, &yaml)
            .args(["--count", "20"])
            .env("AGENTD_JOIN_TOKEN", &wrong),
    );
    assert_eq!(swarm.wait_exit(), Some(78), "{}", swarm.log_text());
    let log = swarm.log_text();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("cdn-swarm: hollow-000") && last.contains("join token not valid"),
        "{log}"
    );
    assert!(fleet.nodes().is_empty(), "no hollow agent got in");

    let dir = fleet.dir.path().join("none");
    let mut swarm = Swarm::spawn(&dir, Swarm::command(&dir, &yaml).args(["--count", "2"]));
    assert_eq!(swarm.wait_exit(), Some(78), "{}", swarm.log_text());
    assert!(
        swarm.log_text().contains("no join token"),
        "{}",
        swarm.log_text()
    );
}

/// The statistics file is valid JSON with every documented key, also
/// before any agent registered.
#[test]
fn statistics_name_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "master:\n  addr: 127.0.0.1:9\n";
    let mut swarm = Swarm::spawn(
        dir.path(),
        Swarm::command(dir.path(), yaml).args(["--count", "2", "--insecure"]),
    );
    let stats = wait_for("statistics", || swarm.stats());
    for key in [
        "count",
        "registered",
        "time_to_all_registered_ms",
        "registration_p50_ms",
        "registration_p99_ms",
        "registration_max_ms",
        "heartbeat_rtt_p50_us",
        "heartbeat_rtt_p99_us",
        "heartbeat_rtt_max_us",
        "reconnects",
        "heartbeat_failures",
        "rss_bytes",
        "rss_per_agent_bytes",
    ] {
        assert!(stats.get(key).is_some(), "{key} missing: {stats}");
    }
    assert_eq!(stats["registered"], 0);
    assert!(stats["time_to_all_registered_ms"].is_null(), "{stats}");
    assert!(swarm.terminate().success());
}
