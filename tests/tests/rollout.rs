//! Staged config rollouts, end to end against the real binaries: a canary
//! and cumulative waves, halts and rollbacks, a master killed mid-rollout,
//! operators' pause/resume/abort/undo, and the refusals (bad strategies,
//! a second rollout on the same nodes, a viewer's controls).
//!
//! Timings are short (bakes of a second or two) and nothing is asserted on
//! time: every wait is for a state to be reached.

use std::path::Path;
use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_common::tls::{client_tls, connect};
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use cdn_proto::v1::{
    ConfigPushEvent, ConfigPushRequest, ControlRolloutRequest, GetRolloutRequest, RolloutAction,
    RolloutInfo, RolloutNodeState, RolloutState, RolloutStrategy, RolloutWaveState, Targets,
    config_push_event,
};
use cdn_tests::{Fleet, Master, edge_file, wait_for};
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;

/// master.yml addition: the metrics endpoint on.
const METRICS: &str = "metrics:\n  addr: 127.0.0.1:0\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An admin client of `master` with its admin credential (or `cred`).
async fn admin_as(master: &Master, cred: &Path) -> AdminServiceClient<Channel> {
    let c = Credential::load(cred).unwrap().0;
    let ch = connect(
        &master.admin_addr.to_string(),
        Some(client_tls(&c.ca, Some((&c.cert, &c.key)), "127.0.0.1")),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    AdminServiceClient::new(ch)
}

async fn admin(master: &Master) -> AdminServiceClient<Channel> {
    admin_as(master, &master.credential()).await
}

fn strategy(canary: u32, waves: &[&str], pause_ms: u64, bake_ms: u64) -> RolloutStrategy {
    RolloutStrategy {
        canary,
        waves: waves.iter().map(|w| w.to_string()).collect(),
        pause_ms,
        bake_ms,
        apply_timeout_ms: 20_000,
        ..Default::default()
    }
}

/// Pushes `content` with `strategy` to `nodes` (empty: the fleet) and
/// follows it to the end (or, with `detach`, returns after the first
/// rollout event): every event, or the refusal.
async fn push(
    c: &mut AdminServiceClient<Channel>,
    content: &str,
    nodes: &[&str],
    strategy: RolloutStrategy,
    detach: bool,
) -> Result<Vec<config_push_event::Event>, tonic::Status> {
    let mut stream = c
        .push_config(ConfigPushRequest {
            content: content.as_bytes().to_vec().into(),
            targets: Some(Targets {
                nodes: nodes.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            }),
            wait_ms: if detach { 0 } else { 1 },
            strategy: Some(strategy),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(ev) = stream.message().await? {
        if let ConfigPushEvent { event: Some(e) } = ev {
            out.push(e);
        }
    }
    Ok(out)
}

fn rollouts(events: &[config_push_event::Event]) -> Vec<&RolloutInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            config_push_event::Event::Rollout(r) => Some(r),
            _ => None,
        })
        .collect()
}

async fn get(c: &mut AdminServiceClient<Channel>, id: u64) -> RolloutInfo {
    c.get_rollout(GetRolloutRequest { id })
        .await
        .unwrap()
        .into_inner()
}

fn state(r: &RolloutInfo) -> RolloutState {
    RolloutState::try_from(r.state).unwrap()
}

fn names(fleet_size: usize) -> Vec<String> {
    (1..=fleet_size).map(|i| format!("agent-{i}")).collect()
}

fn file_of(fleet: &Fleet, node: &str) -> Option<String> {
    std::fs::read_to_string(edge_file(fleet.dir.path(), node)).ok()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Pushes `text` to every node at once with cdnctl (the previous version
/// a rollout goes back to).
fn plain_push(fleet: &Fleet, text: &str) {
    let file = write(fleet.dir.path(), "plain.yml", text);
    let out = fleet.ctl(["config", "push", &file]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
}

fn config_status(fleet: &Fleet) -> Vec<Value> {
    let out = fleet.ctl(["config", "status", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn events_json(fleet: &Fleet) -> Vec<Value> {
    let out = fleet.ctl(["events", "-o", "json", "--limit", "1000"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // One JSON document per line.
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ten_agents_canary_then_half_then_all() {
    let fleet = Fleet::start_with(METRICS, 10);
    plain_push(&fleet, "cache: 1g\n");
    runtime().block_on(async {
        let mut c = admin(&fleet.master).await;
        let events = push(
            &mut c,
            "cache: 2g\n",
            &[],
            strategy(1, &["50%", "100%"], 500, 500),
            false,
        )
        .await
        .unwrap();
        // Stored first, then the rollout at each change, then done.
        let stored = match &events[0] {
            config_push_event::Event::Stored(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(stored.version, 2);
        assert_eq!(stored.targets.len(), 10);
        let seen = rollouts(&events);
        let last = seen.last().unwrap();
        assert_eq!(state(last), RolloutState::Succeeded, "{last:#?}");
        match events.last() {
            Some(config_push_event::Event::Done(d)) => {
                assert_eq!((d.applied, d.failed, d.pending), (10, 0, 0))
            }
            other => panic!("{other:?}"),
        }
        // Waves: agent-1 alone, then agent-10 and agent-2..4 (by name),
        // then the rest; each started after the one before finished, with
        // the pause between them visible while it lasted.
        let r = get(&mut c, last.id).await;
        let waves: Vec<Vec<&str>> = r
            .waves
            .iter()
            .map(|w| w.nodes.iter().map(|n| n.node.as_str()).collect())
            .collect();
        assert_eq!(
            waves,
            [
                vec!["agent-1"],
                vec!["agent-10", "agent-2", "agent-3", "agent-4"],
                vec!["agent-5", "agent-6", "agent-7", "agent-8", "agent-9"],
            ]
        );
        for w in &r.waves {
            assert_eq!(w.state, RolloutWaveState::Passed as i32);
            assert!(w.started_ms > 0 && w.finished_ms >= w.started_ms);
            for n in &w.nodes {
                assert_eq!(n.state, RolloutNodeState::Applied as i32, "{n:?}");
                assert_eq!(n.previous_version, 1);
            }
        }
        for pair in r.waves.windows(2) {
            assert!(pair[1].started_ms >= pair[0].finished_ms, "{pair:?}");
        }
        assert!(
            seen.iter()
                .any(|s| s.next_wave_ms > 0 && s.current_wave == 0),
            "the pause before wave 2 was never shown"
        );
        // While wave 1 ran, nodes of later waves were still waiting.
        assert!(seen.iter().any(|s| {
            s.current_wave == 0
                && s.waves[1]
                    .nodes
                    .iter()
                    .all(|n| n.state == RolloutNodeState::Waiting as i32)
        }));
    });
    for n in names(10) {
        assert_eq!(file_of(&fleet, &n).as_deref(), Some("cache: 2g\n"), "{n}");
    }
    for n in config_status(&fleet) {
        assert_eq!(n["applied_version"], 2, "{n}");
        assert_eq!(n["in_sync"], true, "{n}");
    }
    // The decisions are events, in order.
    let kinds: Vec<String> = events_json(&fleet)
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .filter(|k| k.starts_with("rollout."))
        .collect();
    let waves_started = kinds.iter().filter(|k| *k == "rollout.wave").count();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("rollout.start"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("rollout.done"),
        "{kinds:?}"
    );
    assert_eq!(waves_started, 6, "3 started + 3 passed: {kinds:?}");
    // No rollout runs now; none halted.
    let metrics = fleet.master.metrics_text();
    assert!(metrics.contains("\ncdn_rollout_wave -1\n"), "{metrics}");
    assert!(
        metrics.contains("cdn_rollout_halts_total{reason=\"apply\"} 0"),
        "{metrics}"
    );
}

#[test]
fn bad_strategies_and_overlapping_rollouts_are_refused() {
    let fleet = Fleet::start(3);
    runtime().block_on(async {
        let mut c = admin(&fleet.master).await;
        for (s, want) in [
            (strategy(0, &["0%"], 0, 0), "\"0%\" is out of range"),
            (strategy(0, &["150%"], 0, 0), "\"150%\" is out of range"),
            (strategy(0, &["50%", "20%"], 0, 0), "waves must grow"),
            (
                RolloutStrategy {
                    by: "rack".into(),
                    ..Default::default()
                },
                "no target node has the label `rack`",
            ),
            (
                RolloutStrategy {
                    gates: vec!["up < 1".into()],
                    ..Default::default()
                },
                "rollout.prometheus.url",
            ),
        ] {
            let e = push(&mut c, "x: 1\n", &[], s, false).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
            assert!(e.message().contains(want), "{want}: {e}");
        }
        // Nothing was stored by a refused push.
        let out = fleet.ctl(["config", "history", "-o", "json"]);
        assert_eq!(out.stdout.trim(), "[]", "{}", out.stdout);

        // A rollout that waits, paused, on agent-1 and agent-2.
        let mut held = strategy(0, &[], 0, 0);
        held.start_paused = true;
        let ev = push(&mut c, "x: 2\n", &["agent-1", "agent-2"], held, true)
            .await
            .unwrap();
        let id = rollouts(&ev)[0].id;
        assert_eq!(state(rollouts(&ev)[0]), RolloutState::Paused);
        // A second staged push, a plain push and a rollback on any of
        // those nodes are refused with its id; other nodes are free.
        let e = push(
            &mut c,
            "x: 3\n",
            &["agent-2", "agent-3"],
            strategy(0, &[], 0, 0),
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        assert!(
            e.message()
                .contains(&format!("rollout {id} is paused on these nodes (agent-2)"))
                && e.message().contains(&format!("cdnctl rollout abort {id}")),
            "{e}"
        );
        let file = write(fleet.dir.path(), "plain.yml", "x: 4\n");
        let out = fleet.ctl(["config", "push", &file]);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("rollout {id} is paused")),
            "{}",
            out.stderr
        );
        let out = fleet.ctl(["config", "push", &file, "--node", "agent-3"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        // The paused rollout's version reached nobody.
        for n in ["agent-1", "agent-2"] {
            assert_eq!(file_of(&fleet, n), None, "{n}");
        }
        // Aborted, it frees its nodes.
        let r = c
            .control_rollout(ControlRolloutRequest {
                id,
                action: RolloutAction::Abort as i32,
                reason: "wrong file".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(state(&r), RolloutState::Aborted);
        assert!(r.reason.contains("wrong file"), "{}", r.reason);
        let out = fleet.ctl(["config", "push", &file]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        // Controls of an ended rollout say so.
        let e = c
            .control_rollout(ControlRolloutRequest {
                id,
                action: RolloutAction::Resume as i32,
                reason: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        assert!(e.message().contains("has ended (aborted)"), "{e}");
        let e = c
            .get_rollout(GetRolloutRequest { id: 99 })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e}");
    });
}

#[test]
fn pause_resume_abort_and_undo_from_a_second_cdnctl_and_not_by_a_viewer() {
    let fleet = Fleet::start(4);
    plain_push(&fleet, "v: 1\n");
    let viewer = fleet.master.add_user("vera", "viewer");
    let as_viewer = |args: &[&str]| {
        let mut all = vec![
            "--master".to_string(),
            fleet.master.admin_addr.to_string(),
            "--credential".to_string(),
            viewer.display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        cdn_tests::ctl_bare(all)
    };
    // One node per wave, a long pause between waves; the push is left
    // running in the background as an operator would.
    let file = write(fleet.dir.path(), "v2.yml", "v: 2\n");
    let out = fleet.ctl([
        "config", "push", &file, "--canary", "1", "--waves", "2,3,4", "--pause", "60s", "--detach",
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let r = wait_for("the pause before wave 2", || {
        let r = status_json(&fleet, None);
        (r["next_wave_ms"].as_i64().unwrap_or(0) > 0 && r["waves"][0]["state"] == "passed")
            .then_some(r)
    });
    let id = r["id"].as_u64().unwrap().to_string();
    assert_eq!(r["current_wave"], 0);
    // A viewer may look but not act.
    for verb in ["pause", "resume", "abort", "undo"] {
        let out = as_viewer(&["rollout", verb, &id]);
        assert_eq!(out.code, Some(1), "{verb}: {}", out.stderr);
        assert!(
            out.stderr.contains("permission denied"),
            "{verb}: {}",
            out.stderr
        );
    }
    let out = as_viewer(&["rollout", "status", &id, "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // A second cdnctl pauses it, resumes it, then undoes it.
    let out = fleet.ctl(["rollout", "pause", &id, "--reason", "looking at graphs"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = status_json(&fleet, Some(id.parse().unwrap()));
    assert_eq!(r["state"], "paused", "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("by admin: looking at graphs"),
        "{r:#}"
    );
    // Pausing twice is no error; resuming goes on with the strategy.
    assert_eq!(fleet.ctl(["rollout", "pause", &id]).code, Some(0));
    let out = fleet.ctl(["rollout", "resume", &id]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(status_json(&fleet, None)["state"], "running");
    let out = fleet.ctl(["rollout", "undo", &id, "--reason", "not today"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = wait_for("the rollout undone", || {
        let r = status_json(&fleet, None);
        (r["state"] == "undone").then_some(r)
    });
    assert_eq!(r["waves"][0]["state"], "rolled_back", "{r:#}");
    assert_eq!(r["waves"][0]["nodes"][0]["state"], "rolled_back", "{r:#}");
    assert_eq!(r["waves"][1]["state"], "pending", "{r:#}");
    wait_for("agent-1 back on version 1", || {
        (file_of(&fleet, "agent-1").as_deref() == Some("v: 1\n")).then_some(())
    });
    for n in ["agent-2", "agent-3", "agent-4"] {
        assert_eq!(file_of(&fleet, n).as_deref(), Some("v: 1\n"), "{n}");
    }
    // An ended rollout has nothing left to abort.
    let out = fleet.ctl(["rollout", "abort", &id]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("has ended (undone)"), "{}", out.stderr);

    // A succeeded rollout can be undone too: every node goes back.
    let out = fleet.ctl(["config", "push", &file, "--canary", "1", "--waves", "100%"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let done = status_json(&fleet, None);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let out = fleet.ctl(["rollout", "undo"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    wait_for("the succeeded rollout undone", || {
        (status_json(&fleet, None)["state"] == "undone").then_some(())
    });
    for n in names(4) {
        wait_for(&format!("{n} back on version 1"), || {
            (file_of(&fleet, &n).as_deref() == Some("v: 1\n")).then_some(())
        });
    }

    // Every control is in the audit log with who and why.
    let out = fleet.ctl(["audit", "-o", "json", "--limit", "500"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let audit: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let find = |action: &str, user: &str, words: &str| {
        audit
            .iter()
            .find(|e| {
                e["action"] == action
                    && e["user"] == user
                    && e["detail"].as_str().unwrap_or_default().contains(words)
            })
            .unwrap_or_else(|| panic!("no {action} by {user} with {words:?}: {audit:#?}"))
            .clone()
    };
    find("rollout.pause", "admin", "looking at graphs");
    find("rollout.undo", "admin", "not today");
    find("rollout.resume", "admin", "now running");
    assert_eq!(find("rollout.abort", "vera", "")["result"], "failed");
}

/// `cdnctl rollout status [ID] -o json`, parsed.
fn status_json(fleet: &Fleet, id: Option<u64>) -> Value {
    let id = id.map(|i| i.to_string());
    let mut args = vec!["rollout", "status"];
    if let Some(i) = &id {
        args.push(i);
    }
    args.extend(["-o", "json"]);
    let out = fleet.ctl(&args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The standard test agent.yml of `name` with `extra` lines in its
/// `config:` section.
fn agent_with(fleet: &Fleet, name: &str, extra: &str) -> String {
    cdn_tests::agent_yml(fleet.dir.path(), name, &fleet.master_addr()).replace(
        "  min_free_bytes: 0\n",
        &format!("  min_free_bytes: 0\n{extra}"),
    )
}

#[test]
fn a_health_check_failing_on_the_canary_halts_and_puts_it_back() {
    let mut fleet = Fleet::start_with(METRICS, 0);
    // Healthy while there is no file yet, or when the file says so.
    let check = r#"test ! -e "$CDN_CONFIG_PATH" || grep -q healthy "$CDN_CONFIG_PATH" || { echo "no healthy marker in v$CDN_CONFIG_VERSION" >&2; exit 3; }"#;
    for n in names(5) {
        let yaml = agent_with(
            &fleet,
            &n,
            &format!(
                "  health_command: '{}'\n  health_interval: 1s\n",
                check.replace('\'', "''")
            ),
        );
        fleet.add_agent_with(&n, &n, &yaml);
    }
    for n in names(5) {
        fleet.wait_status(&n, "online");
    }
    plain_push(&fleet, "healthy: 1\n");
    let bad = write(fleet.dir.path(), "bad.yml", "broken: 1\n");
    let out = fleet.ctl([
        "config", "push", &bad, "--canary", "1", "--waves", "100%", "--bake", "2s",
    ]);
    // The push follows the rollout to its end and fails with its reason.
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("health check failed") && out.stderr.contains("agent-1"),
        "{}",
        out.stderr
    );
    let r = status_json(&fleet, None);
    assert_eq!(r["state"], "rolled_back", "{r:#}");
    assert_eq!(r["version"], 2);
    assert_eq!(r["waves"][0]["state"], "rolled_back", "{r:#}");
    assert_eq!(r["waves"][0]["nodes"][0]["node"], "agent-1");
    assert_eq!(r["waves"][0]["nodes"][0]["state"], "rolled_back", "{r:#}");
    assert_eq!(r["waves"][0]["nodes"][0]["previous_version"], 1);
    assert_eq!(r["waves"][1]["state"], "pending", "{r:#}");
    for n in r["waves"][1]["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "waiting", "{n}");
    }
    let health = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "health")
        .unwrap_or_else(|| panic!("no health reading: {r:#}"));
    assert_eq!(health["passed"], false);
    assert!(
        health["detail"]
            .as_str()
            .unwrap()
            .contains("no healthy marker in v2"),
        "{health}"
    );
    // The canary is back on version 1, file and all; no other node ever
    // had version 2 desired or on disk.
    wait_for("agent-1 back on version 1", || {
        (file_of(&fleet, "agent-1").as_deref() == Some("healthy: 1\n")).then_some(())
    });
    wait_for("every node in sync on version 1", || {
        let s = config_status(&fleet);
        s.iter()
            .all(|n| n["desired_version"] == 1 && n["applied_version"] == 1)
            .then_some(())
    });
    for n in names(5).iter().skip(1) {
        assert_eq!(file_of(&fleet, n).as_deref(), Some("healthy: 1\n"), "{n}");
        let log = std::fs::read_to_string(fleet.dir.path().join(format!("{n}.log"))).unwrap();
        assert!(!log.contains("version=2"), "{n} saw version 2:\n{log}");
    }
    let metrics = fleet.master.metrics_text();
    assert!(
        metrics.contains("cdn_rollout_halts_total{reason=\"health\"} 1"),
        "{metrics}"
    );
    let halts: Vec<Value> = events_json(&fleet)
        .into_iter()
        .filter(|e| e["kind"] == "rollout.halt")
        .collect();
    assert_eq!(halts.len(), 1, "{halts:#?}");
    assert!(
        halts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("agent-1: health check failed"),
        "{halts:#?}"
    );

    // The push itself is audited as failed, with the rollout's reason.
    let out = fleet.ctl(["audit", "-o", "json", "--action", "push"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let audit: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let push = audit
        .iter()
        .find(|e| e["action"] == "push" && e["result"] == "failed")
        .unwrap_or_else(|| panic!("no failed push: {audit:#?}"));
    assert!(
        push["error"]
            .as_str()
            .unwrap()
            .contains("rolled_back: wave 1 failed"),
        "{push:#}"
    );

    // With --on-failure halt the canary is left on the bad version for a
    // human, who undoes it.
    let out = fleet.ctl([
        "config",
        "push",
        &bad,
        "--canary",
        "1",
        "--bake",
        "1s",
        "--on-failure",
        "halt",
    ]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let r = status_json(&fleet, None);
    assert_eq!(r["state"], "halted", "{r:#}");
    assert_eq!(r["waves"][0]["state"], "failed", "{r:#}");
    assert_eq!(r["waves"][0]["nodes"][0]["state"], "failed", "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("nodes left as they are"),
        "{r:#}"
    );
    assert_eq!(file_of(&fleet, "agent-1").as_deref(), Some("broken: 1\n"));
    let out = fleet.ctl(["rollout", "undo", "--reason", "bad canary"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    wait_for("agent-1 back on version 1 after the undo", || {
        (file_of(&fleet, "agent-1").as_deref() == Some("healthy: 1\n")).then_some(())
    });
    // The file is back when the node applied; the rollout says `undone`
    // once the master heard the answer.
    wait_for("the rollout undone", || {
        (status_json(&fleet, None)["state"] == "undone").then_some(())
    });
    for n in names(5).iter().skip(1) {
        assert_eq!(file_of(&fleet, n).as_deref(), Some("healthy: 1\n"), "{n}");
    }
}

#[test]
fn a_master_killed_mid_rollout_resumes_it_from_its_wave() {
    let mut fleet = Fleet::start(6);
    plain_push(&fleet, "v: 1\n");
    let file = write(fleet.dir.path(), "v2.yml", "v: 2\n");
    let out = fleet.ctl([
        "config", "push", &file, "--canary", "1", "--waves", "50%,100%", "--bake", "2s", "--detach",
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    // Killed while the second wave bakes: the canary has passed.
    let before = wait_for("wave 2 baking", || {
        let r = status_json(&fleet, None);
        (r["waves"][1]["state"] == "baking").then_some(r)
    });
    assert_eq!(before["waves"][0]["state"], "passed");
    let id = before["id"].as_u64().unwrap();
    // A node that registers meanwhile is outside the rollout's waves: it
    // gets the fleet's version, and this one once the rollout succeeded.
    fleet.add_agent("agent-7");
    fleet.wait_status("agent-7", "online");
    fleet.master.kill();
    fleet.master.restart();
    let after = wait_for("the rollout to succeed after the restart", || {
        let r = status_json(&fleet, Some(id));
        (r["state"] == "succeeded").then_some(r)
    });
    for w in after["waves"].as_array().unwrap() {
        assert_eq!(w["state"], "passed", "{after:#}");
        for n in w["nodes"].as_array().unwrap() {
            assert_eq!(n["state"], "applied", "{n}");
        }
    }
    for n in names(6) {
        assert_eq!(file_of(&fleet, &n).as_deref(), Some("v: 2\n"), "{n}");
    }
    // Nodes of the waves that had applied before the kill were not sent
    // the version again.
    for w in &before["waves"].as_array().unwrap()[..2] {
        for n in w["nodes"].as_array().unwrap() {
            let name = n["node"].as_str().unwrap();
            let log =
                std::fs::read_to_string(fleet.dir.path().join(format!("{name}.log"))).unwrap();
            assert_eq!(
                log.matches("config applied version=2").count(),
                1,
                "{name}:\n{log}"
            );
        }
    }
    // The fleet's version moved at the end: the node that joined during
    // the rollout and a node that joins now get version 2.
    fleet.add_agent("agent-8");
    for n in ["agent-7", "agent-8"] {
        wait_for(&format!("{n} on version 2"), || {
            (file_of(&fleet, n).as_deref() == Some("v: 2\n")).then_some(())
        });
    }
    assert!(
        !status_json(&fleet, Some(id))["waves"]
            .to_string()
            .contains("agent-7"),
        "agent-7 is not in the rollout's waves"
    );
}

#[test]
fn a_prometheus_gate_failing_in_wave_two_rolls_back_waves_one_and_two_only() {
    let prometheus = cdn_tests::require_prometheus!();
    let exporter = cdn_tests::TextExporter::start();
    // agent-2 (in wave 2) serves errors; everyone else none.
    let mut text = String::from("# HELP edge_errors Errors.\n# TYPE edge_errors gauge\n");
    for n in names(6) {
        let v = if n == "agent-2" { 5 } else { 0 };
        text.push_str(&format!("edge_errors{{node=\"{n}\"}} {v}\n"));
    }
    exporter.set(&text);
    let server = cdn_tests::PrometheusServer::start(
        &prometheus,
        &cdn_tests::scrape_config(&[exporter.addr()], "1s"),
    );
    wait_for("Prometheus to have scraped the exporter", || {
        server
            .query("edge_errors")
            .filter(|r| r.len() == 6)
            .map(|_| ())
    });
    let fleet = Fleet::start_with(
        &format!(
            "{METRICS}rollout:\n  prometheus:\n    url: http://{}\n  gate_interval: 200ms\n",
            server.addr
        ),
        6,
    );
    plain_push(&fleet, "v: 1\n");
    let file = write(fleet.dir.path(), "v2.yml", "v: 2\n");
    let gate = r#"edge_errors{node=~"{{nodes}}"} < 1"#;
    let out = fleet.ctl([
        "config", "push", &file, "--canary", "1", "--waves", "50%,100%", "--bake", "1s", "--gate",
        gate,
    ]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("edge_errors"), "{}", out.stderr);
    let r = status_json(&fleet, None);
    assert_eq!(r["state"], "rolled_back", "{r:#}");
    let wave_nodes = |i: usize| -> Vec<String> {
        r["waves"][i]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(wave_nodes(0), ["agent-1"]);
    assert_eq!(wave_nodes(1), ["agent-2", "agent-3"]);
    assert_eq!(wave_nodes(2), ["agent-4", "agent-5", "agent-6"]);
    assert_eq!(r["waves"][0]["state"], "rolled_back", "{r:#}");
    assert_eq!(r["waves"][1]["state"], "rolled_back", "{r:#}");
    assert_eq!(r["waves"][2]["state"], "pending", "{r:#}");
    // The gate passed for the canary and failed with agent-2's value.
    let readings: Vec<&Value> = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["gate"] == gate)
        .collect();
    let of_wave = |w: u64| {
        readings
            .iter()
            .find(|g| g["wave"] == w)
            .unwrap_or_else(|| panic!("no reading of wave {w}: {r:#}"))
    };
    assert_eq!(of_wave(0)["passed"], true, "{r:#}");
    assert_eq!(of_wave(1)["passed"], false, "{r:#}");
    assert_eq!(of_wave(1)["value"], 5.0, "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("wave 2 failed"),
        "{r:#}"
    );
    for n in ["agent-1", "agent-2", "agent-3"] {
        wait_for(&format!("{n} back on version 1"), || {
            (file_of(&fleet, n).as_deref() == Some("v: 1\n")).then_some(())
        });
    }
    for n in ["agent-4", "agent-5", "agent-6"] {
        assert_eq!(file_of(&fleet, n).as_deref(), Some("v: 1\n"), "{n}");
        let log = std::fs::read_to_string(fleet.dir.path().join(format!("{n}.log"))).unwrap();
        assert!(!log.contains("version=2"), "{n} saw version 2:\n{log}");
    }
    let metrics = fleet.master.metrics_text();
    assert!(
        metrics.contains("cdn_rollout_halts_total{reason=\"prometheus\"} 1"),
        "{metrics}"
    );
}
