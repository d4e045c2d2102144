//! The audit log names every refusal: a viewer's push, rollback, exec and
//! audit read, an operator's token and user creation, a node certificate
//! on the operator API — each once per call, rate-limited per source.

use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_common::tls::{client_tls, connect};
use cdn_proto::v1::ListNodesRequest;
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use cdn_tests::{CtlOutput, Fleet};
use serde_json::Value;
use tonic::Code;

fn json(out: &CtlOutput) -> Value {
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// cdnctl as the holder of `credential`.
fn as_user(fleet: &Fleet, credential: &std::path::Path, args: &[&str]) -> CtlOutput {
    let mut v = vec![
        "--credential".to_string(),
        credential.to_string_lossy().into_owned(),
        "--master".to_string(),
        fleet.master.admin_addr.to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    cdn_tests::ctl_bare(v)
}

/// The refused entries of the audit log, newest first, as (user, action).
fn refusals(fleet: &Fleet) -> Vec<(String, String, String)> {
    json(&fleet.ctl(["audit", "--limit", "1000", "-o", "json"]))
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["result"] == "failed" && e["detail"].as_str().unwrap().starts_with("refused"))
        .map(|e| {
            (
                e["user"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn permission_denied_calls_are_audited_with_their_reason() {
    let fleet = Fleet::start(1);
    let bob = fleet.master.add_user("bob", "viewer");
    let olga = fleet.master.add_user("olga", "operator");
    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, "a: 1\n").unwrap();

    let refused: [(&std::path::Path, &[&str]); 6] = [
        (&bob, &["config", "push", file.to_str().unwrap()]),
        (&bob, &["config", "rollback", "1"]),
        (&bob, &["exec", "agent-1", "--", "true"]),
        (&bob, &["audit"]),
        (&olga, &["token", "create"]),
        (&olga, &["user", "add", "mallory", "--role", "admin"]),
    ];
    for (who, args) in refused {
        // Tokens and users are managed with masterd's client commands.
        let out = if args[0] == "token" || args[0] == "user" {
            cdn_tests::run(
                std::process::Command::new(cdn_tests::bin("masterd"))
                    .arg("--credential")
                    .arg(who)
                    .arg("--master")
                    .arg(fleet.master.admin_addr.to_string())
                    .args(args),
            )
        } else {
            as_user(&fleet, who, args)
        };
        assert_ne!(out.code, Some(0), "{args:?} was allowed: {}", out.stdout);
        assert!(
            out.stderr.contains("permission denied"),
            "{args:?}: {}",
            out.stderr
        );
    }

    // A node's certificate on the operator API.
    let agent_data = fleet.dir.path().join("agent-1/agent-data");
    let read = |f: &str| std::fs::read_to_string(agent_data.join(f)).unwrap();
    let ca = Credential::load(&fleet.master.credential()).unwrap().0.ca;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (cert, key) = (read("node.crt"), read("node.key"));
        let channel = connect(
            &fleet.master.admin_addr.to_string(),
            Some(client_tls(&ca, Some((&cert, &key)), "127.0.0.1")),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let e = AdminServiceClient::new(channel)
            .list_nodes(ListNodesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    });

    let got = refusals(&fleet);
    let want = [
        ("bob", "push", "this needs operator"),
        ("bob", "rollback", "this needs operator"),
        ("bob", "exec", "this needs operator"),
        ("bob", "audit.read", "this needs admin"),
        ("olga", "token.create", "this needs admin"),
        ("olga", "user.add", "this needs admin"),
        ("agent-1", "nodes.list", "node certificate"),
    ];
    for (user, action, reason) in want {
        assert!(
            got.iter()
                .any(|(u, a, e)| u == user && a == action && e.contains(reason)),
            "no refusal of {user}'s {action} ({reason}) in {got:?}"
        );
    }
    assert_eq!(got.len(), want.len(), "one entry per refusal: {got:?}");
    // Nothing the refused calls asked for happened.
    let users = fleet.master.manage(["user", "list"]);
    assert!(!users.stdout.contains("mallory"), "{}", users.stdout);
    assert!(
        json(&fleet.ctl(["config", "history", "-o", "json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_flood_of_refusals_is_audited_at_the_failure_rate_and_the_rest_counted() {
    // Two refusals a source may have audited at once, then one a minute.
    let fleet = Fleet::start_with(
        "limits:\n  auth_failures_per_minute: 1\n  auth_failure_burst: 2\nmetrics:\n  addr: 127.0.0.1:0\n",
        0,
    );
    let bob = fleet.master.add_user("bob", "viewer");
    for _ in 0..5 {
        let out = as_user(&fleet, &bob, &["audit"]);
        assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    }
    let got = refusals(&fleet);
    assert_eq!(got.len(), 2, "the first two are recorded: {got:?}");
    let metrics = fleet.master.metrics_text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "cdn_audit_refusals_unrecorded_total 3"),
        "{metrics}"
    );
}
