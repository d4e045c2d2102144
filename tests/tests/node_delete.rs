//! `cdnctl nodes delete`: a decommissioned node can be forgotten, and the
//! offline alert clears with it; a live one only with --force, which
//! disconnects its agent for good; only admins may do it, and each
//! deletion is audited. On the embedded store and on etcd, across a
//! restart of the master. Real binaries throughout.

use cdn_tests::{CtlOutput, Fleet, Master, agent_yml, ctl_bare, require_etcd, wait_for};
use serde_json::Value;

/// Master config with a metrics endpoint.
const WITH_METRICS: &str = "metrics:\n  addr: 127.0.0.1:0\n";

/// The value of the sample `series` (name and labels as exposed, e.g.
/// `cdn_nodes{state="offline"}`) on the master's metrics endpoint; 0 when
/// it is not exposed.
fn sample(master: &Master, series: &str) -> f64 {
    master
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn json(out: &CtlOutput) -> Value {
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn names(fleet: &Fleet) -> Vec<String> {
    fleet
        .nodes()
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The newest `node.delete` audit entry about `node`.
fn delete_entry(fleet: &Fleet, node: &str) -> Value {
    let entries = json(&fleet.ctl(["audit", "--action", "node.delete", "-o", "json"]));
    entries
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["target"] == node)
        .cloned()
        .unwrap_or_else(|| panic!("no node.delete entry for {node}: {entries}"))
}

#[test]
fn an_offline_node_is_forgotten_for_good_and_the_offline_alert_clears() {
    let mut fleet = Fleet::start_with(WITH_METRICS, 2);
    fleet.agent("agent-2").kill();
    fleet.wait_status("agent-2", "offline");
    // The alert's condition: cdn_nodes{state="offline"} > 0.
    assert_eq!(sample(&fleet.master, "cdn_nodes{state=\"offline\"}"), 1.0);

    let out = fleet.ctl(["nodes", "delete", "agent-2"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "node \"agent-2\" deleted\n");
    assert_eq!(out.stderr, "");
    assert_eq!(names(&fleet), ["agent-1"]);
    assert_eq!(sample(&fleet.master, "cdn_nodes{state=\"offline\"}"), 0.0);
    assert_eq!(sample(&fleet.master, "cdn_nodes{state=\"online\"}"), 1.0);
    let show = fleet.ctl(["nodes", "show", "agent-2"]);
    assert_eq!(show.code, Some(1));
    assert_eq!(show.stderr, "cdnctl: node agent-2 not found\n");
    let status = json(&fleet.ctl(["config", "status", "-o", "json"]));
    assert_eq!(status.as_array().map(Vec::len), Some(1), "{status}");

    let entry = delete_entry(&fleet, "agent-2");
    assert_eq!(entry["user"], "admin");
    assert_eq!(entry["result"], "ok");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("was offline") && detail.ends_with("1 certificate(s) revoked"),
        "{detail}"
    );

    // Gone from the store too, and deleting it again says so.
    fleet.master.restart();
    fleet.wait_status("agent-1", "online");
    assert_eq!(names(&fleet), ["agent-1"]);
    let again = fleet.ctl(["nodes", "delete", "node/agent-2"]);
    assert_eq!(again.code, Some(1));
    assert_eq!(again.stderr, "cdnctl: node agent-2 not found\n");

    // Its agent cannot come back with its old certificate...
    let addr = fleet.master_addr();
    let yaml = agent_yml(fleet.dir.path(), "agent-2", &addr);
    let old = fleet.add_agent_with("agent-2-again", "agent-2", &yaml);
    assert_eq!(old.wait_exit(), Some(78), "{}", old.log_text());
    assert!(
        old.log_text().contains("certificate revoked or unknown"),
        "{}",
        old.log_text()
    );
    assert_eq!(names(&fleet), ["agent-1"]);
    // ...but a machine enrolled anew with a join token may take the name.
    let fresh_dir = fleet.dir.path().join("replacement");
    let yaml = agent_yml(&fresh_dir, "agent-2", &addr);
    fleet.add_agent_with("replacement", "agent-2", &yaml);
    fleet.wait_status("agent-2", "online");
}

#[test]
fn an_online_node_is_refused_without_force_and_disconnected_with_it() {
    let fleet = Fleet::start_with(WITH_METRICS, 2);
    let refused = fleet.ctl(["nodes", "delete", "agent-1", "nope"]);
    assert_eq!(refused.code, Some(1));
    assert_eq!(refused.stdout, "");
    assert_eq!(
        refused.stderr,
        "cdnctl: node agent-1 is online: its agent is still connected; stop it first, or delete with --force to disconnect it\n\
         cdnctl: node nope not found\n"
    );
    assert_eq!(names(&fleet), ["agent-1", "agent-2"]);
    assert_eq!(fleet.node("agent-1").unwrap()["status"], "online");

    let out = fleet.ctl(["nodes", "delete", "--force", "agent-1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "node \"agent-1\" deleted\n");
    assert_eq!(
        out.stderr,
        "cdnctl: agent-1 was online; its agent was disconnected\n"
    );
    assert_eq!(names(&fleet), ["agent-2"]);
    // The agent is told why, and cannot register again.
    let agent = &fleet.agents[0];
    wait_for("agent-1 to be refused after its session was closed", || {
        let log = agent.log_text();
        (log.contains("master closed it: node agent-1 was deleted by admin")
            && log.contains("certificate revoked or unknown"))
        .then_some(())
    });
    assert_eq!(names(&fleet), ["agent-2"]);
    assert_eq!(sample(&fleet.master, "cdn_nodes{state=\"online\"}"), 1.0);
    let entry = delete_entry(&fleet, "agent-1");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("was online; its agent was disconnected"),
        "{detail}"
    );
    // The refusal was audited as a failure.
    let all = json(&fleet.ctl(["audit", "--action", "node.delete", "-o", "json"]));
    assert!(
        all.as_array()
            .into_iter()
            .flatten()
            .any(|e| e["target"] == "agent-1"
                && e["result"] == "failed"
                && e["error"].as_str().is_some_and(|m| m.contains("--force"))),
        "{all}"
    );
}

#[test]
fn only_admins_may_delete_and_a_refusal_is_seen() {
    let mut fleet = Fleet::start_with(WITH_METRICS, 1);
    fleet.agent("agent-1").kill();
    fleet.wait_status("agent-1", "offline");
    let admin_addr = fleet.master.admin_addr.to_string();
    let refused_before = sample(
        &fleet.master,
        "cdn_refused_requests_total{reason=\"permission_denied\"}",
    );
    for (user, role) in [("vera", "viewer"), ("otto", "operator")] {
        let credential = fleet.master.add_user(user, role);
        let out = ctl_bare([
            "--credential",
            credential.to_str().unwrap(),
            "--master",
            &admin_addr,
            "nodes",
            "delete",
            "agent-1",
        ]);
        assert_eq!(out.code, Some(1), "{role}: {}", out.stderr);
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            format!("cdnctl: permission denied: user `{user}` has role {role}; this needs admin\n")
        );
    }
    assert_eq!(names(&fleet), ["agent-1"]);
    let refused_after = sample(
        &fleet.master,
        "cdn_refused_requests_total{reason=\"permission_denied\"}",
    );
    assert_eq!(refused_after - refused_before, 2.0);
    // An admin may.
    assert_eq!(fleet.ctl(["nodes", "delete", "agent-1"]).code, Some(0));
    assert!(names(&fleet).is_empty());
}

#[test]
fn a_deletion_reaches_etcd_and_survives_a_restart() {
    let etcd = require_etcd!();
    let dir = tempfile::tempdir().unwrap();
    let mut master = Master::start_with_yaml(&dir.path().join("m1"), &etcd.store_yml("m1"));
    // It makes the CA, the admin credential and the join token once it leads.
    let (credential, token) = (
        master.credential(),
        cdn_tests::join_token_file(&master.data_dir()),
    );
    wait_for("m1 to lead and write its credential and join token", || {
        (credential.exists() && token.exists()).then_some(())
    });
    let addr = master.addr.to_string();
    let admin = master.admin_addr.to_string();
    let nodes = |admin: &str| -> Vec<String> {
        let out = cdn_tests::ctl_at(admin, ["nodes", "list", "-o", "name"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        out.stdout.lines().map(str::to_string).collect()
    };
    let mut agents = Vec::new();
    for name in ["agent-1", "agent-2"] {
        let yaml = agent_yml(dir.path(), name, &addr);
        agents.push(cdn_tests::Agent::start(dir.path(), name, name, &yaml));
    }
    wait_for("both agents registered", || {
        (nodes(&admin).len() == 2).then_some(())
    });
    let out = cdn_tests::ctl_at(&admin, ["nodes", "delete", "--force", "agent-2"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(nodes(&admin), ["node/agent-1"]);
    master.restart();
    let admin = master.admin_addr.to_string();
    wait_for("the master to serve again", || {
        (cdn_tests::ctl_at(&admin, ["nodes", "list", "-o", "name"]).code == Some(0)).then_some(())
    });
    assert_eq!(nodes(&admin), ["node/agent-1"]);
}
