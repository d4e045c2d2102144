//! Security, end to end: TLS by default, enrolment with join tokens, node
//! certificates bound to their node, revocation, operator roles, audit,
//! input limits and rate limits. Real binaries; the hostile clients are raw
//! gRPC clients built from the project's own protocol, as an attacker would.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_common::tls::{client_tls, connect};
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use cdn_proto::v1::agent_service_client::AgentServiceClient;
use cdn_proto::v1::{ConfigPushRequest, EnrollRequest, RegisterRequest};
use cdn_tests::{Fleet, Master, TEST_MASTER_YML, agent_yml, wait_for};
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn credential(master: &Master) -> Credential {
    Credential::load(&master.credential()).unwrap().0
}

/// A channel to `master` that trusts its CA, presenting `identity` if any.
async fn channel(master: &Master, identity: Option<(&str, &str)>) -> Channel {
    let c = credential(master);
    connect(
        &master.addr.to_string(),
        Some(client_tls(&c.ca, identity, "127.0.0.1")),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

/// agent.yml for `name` at `master` without the join token line.
fn yml_without_token(dir: &Path, name: &str, master: &str) -> String {
    agent_yml(dir, name, master)
        .lines()
        .filter(|l| !l.contains("join_token_file"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn json(out: &cdn_tests::CtlOutput) -> Value {
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn a_default_start_is_tls_and_the_generated_credential_works() {
    let fleet = Fleet::start(1);
    let data = fleet.master.data_dir();
    for f in [
        "admin.credential",
        "join-token",
        "pki/ca.key",
        "pki/server.key",
        "masterd.redb",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&data), 0o700);
    let agent_key = fleet.dir.path().join("agent-1/agent-data/node.key");
    assert_eq!(mode(&agent_key), 0o600);
    assert!(fleet.master.log_text().contains("written (0600)"));

    // A plaintext client gets nowhere, and is told why.
    let plain = cdn_tests::ctl_bare([
        "--insecure",
        "--master",
        &fleet.master.admin_addr.to_string(),
        "nodes",
        "list",
    ]);
    assert_eq!(plain.code, Some(1), "{}", plain.stdout);
    assert!(
        plain.stderr.contains("TLS") && plain.stderr.lines().count() == 1,
        "{}",
        plain.stderr
    );

    let me = json(&fleet.ctl(["whoami", "-o", "json"]));
    assert_eq!(me["name"], "admin");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["insecure"], false);
    assert_eq!(fleet.nodes().len(), 1);
}

#[test]
fn agents_without_a_valid_token_are_refused_and_exit_78() {
    let mut fleet = Fleet::start(0);
    let dir = fleet.dir.path().to_path_buf();
    let addr = fleet.master_addr();

    let none = yml_without_token(&dir, "no-token", &addr);
    let a = fleet.add_agent_with("no-token", "no-token", &none);
    assert_eq!(a.wait_exit(), Some(78));
    assert!(a.log_text().contains("no join token"), "{}", a.log_text());

    let real = fleet.master.join_token();
    let (head, _) = real.rsplit_once('.').unwrap();
    let wrong = format!("{head}.{}", "x".repeat(32));
    let yaml = yml_without_token(&dir, "wrong", &addr).replace(
        "  dial_timeout",
        &format!("  join_token: {wrong}\n  dial_timeout"),
    );
    let a = fleet.add_agent_with("wrong", "wrong", &yaml);
    assert_eq!(a.wait_exit(), Some(78));
    assert!(
        a.log_text().contains("join token not valid"),
        "{}",
        a.log_text()
    );

    // Expired, and used up.
    let short = fleet.master.manage(["token", "create", "--ttl", "1s"]);
    assert_eq!(short.code, Some(0), "{}", short.stderr);
    let once = fleet.master.manage(["token", "create", "--uses", "1"]);
    assert_eq!(once.code, Some(0), "{}", once.stderr);
    std::thread::sleep(Duration::from_millis(1500));
    let with = |name: &str, token: &str| {
        yml_without_token(&dir, name, &addr).replace(
            "  dial_timeout",
            &format!("  join_token: {}\n  dial_timeout", token.trim()),
        )
    };
    let a = fleet.add_agent_with("late", "late", &with("late", &short.stdout));
    assert_eq!(a.wait_exit(), Some(78));
    assert!(a.log_text().contains("expired"), "{}", a.log_text());
    fleet.add_agent_with("first", "first", &with("first", &once.stdout));
    fleet.wait_status("first", "online");
    let a = fleet.add_agent_with("second", "second", &with("second", &once.stdout));
    assert_eq!(a.wait_exit(), Some(78));
    assert!(a.log_text().contains("used up"), "{}", a.log_text());

    // A token naming another master's CA: the agent will not talk to this one.
    let other = Master::start(&dir.join("other"), TEST_MASTER_YML, 0);
    let foreign = with("foreign", &other.join_token());
    let a = fleet.add_agent_with("foreign", "foreign", &foreign);
    assert_eq!(a.wait_exit(), Some(78));
    assert!(
        a.log_text().contains("not the one the join token names"),
        "{}",
        a.log_text()
    );

    let names: Vec<Value> = fleet.nodes().iter().map(|n| n["name"].clone()).collect();
    assert_eq!(names, vec![Value::from("first")]);
    // Each refused enrolment is in the audit log.
    let audit = fleet.ctl(["audit", "--action", "node", "-o", "json"]);
    let failed = serde_json::from_str::<Value>(&audit.stdout).unwrap();
    let refused = failed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "node.enroll" && e["result"] == "failed")
        .count();
    // wrong, expired, used up (the others never reached the master).
    assert_eq!(refused, 3, "{failed}");
    let tokens = fleet.master.manage(["token", "list"]);
    assert!(
        tokens.stdout.contains("expired") && tokens.stdout.contains("used-up"),
        "{}",
        tokens.stdout
    );
}

#[test]
fn a_certificate_of_another_ca_is_refused_both_ways() {
    let fleet = Fleet::start(1);
    let other = Master::start(&fleet.dir.path().join("other"), TEST_MASTER_YML, 0);
    let data = fleet.dir.path().join("agent-1/agent-data");
    let cert = std::fs::read_to_string(data.join("node.crt")).unwrap();
    let key = std::fs::read_to_string(data.join("node.key")).unwrap();
    let rt = runtime();
    rt.block_on(async {
        // The other master does not accept a certificate of our CA…
        let ch = channel(&other, Some((&cert, &key))).await;
        let err = AgentServiceClient::new(ch)
            .register(RegisterRequest {
                node_id: "agent-1".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_ne!(err.code(), Code::Ok);
        // …and our agent does not trust the other master's certificate.
        let mine = credential(&fleet.master);
        let r = connect(
            &other.addr.to_string(),
            Some(client_tls(&mine.ca, Some((&cert, &key)), "127.0.0.1")),
            Duration::from_secs(5),
        )
        .await;
        let e = r.map(|_| ()).unwrap_err();
        assert!(e.contains("not signed by the CA"), "{e}");
    });
    let out = cdn_tests::ctl_at(
        &other.admin_addr.to_string(),
        ["nodes", "list", "-o", "json"],
    );
    assert_eq!(json(&out), Value::Array(vec![]));
}

#[test]
fn a_revoked_node_is_cut_off_and_cannot_reconnect() {
    let mut fleet = Fleet::start(2);
    let out = fleet.master.manage(["node", "revoke", "agent-1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("connection was cut"), "{}", out.stdout);
    let gone = fleet.wait_status("agent-1", "offline");
    assert!(
        gone["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("revoked")),
        "{gone}"
    );
    // Refused, it stops with exit 78 (the unit does not restart it)
    // instead of retrying forever against its address's login budget.
    assert_eq!(fleet.agents[0].wait_exit(), Some(78));
    let log = fleet.agents[0].log_text();
    assert_eq!(
        log.matches("certificate revoked or unknown").count(),
        1,
        "{log}"
    );
    assert!(log.contains("To enrol again"), "{log}");
    assert_eq!(fleet.node("agent-1").unwrap()["status"], "offline");
    assert_eq!(fleet.node("agent-2").unwrap()["status"], "online");
    let again = fleet.master.manage(["node", "revoke", "agent-1"]);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("no valid certificate"),
        "{}",
        again.stderr
    );

    // A fresh enrolment under the revoked name is refused, even with a
    // valid token, until an admin allows the name again.
    let (dir, addr) = (fleet.dir.path().to_path_buf(), fleet.master_addr());
    let fresh =
        |file: &str| agent_yml(&dir, file, &addr).replace(&format!("id: {file}"), "id: agent-1");
    let yaml = fresh("again");
    let a = fleet.add_agent_with("again", "agent-1", &yaml);
    assert_eq!(a.wait_exit(), Some(78));
    assert!(a.log_text().contains("was revoked"), "{}", a.log_text());
    let allow = fleet.master.manage(["node", "allow", "agent-1"]);
    assert_eq!(allow.code, Some(0), "{}", allow.stderr);
    let yaml = fresh("again2");
    fleet.add_agent_with("again2", "agent-1", &yaml);
    fleet.wait_status("agent-1", "online");
}

#[test]
fn a_node_certificate_cannot_speak_for_another_node() {
    let mut fleet = Fleet::start(1);
    // An attacker copies agent-1's key and certificate and claims agent-9.
    let stolen = fleet.dir.path().join("agent-9/agent-data");
    std::fs::create_dir_all(&stolen).unwrap();
    for f in ["node.key", "node.crt", "ca.crt"] {
        std::fs::copy(
            fleet.dir.path().join("agent-1/agent-data").join(f),
            stolen.join(f),
        )
        .unwrap();
    }
    std::fs::write(stolen.join("node.id"), "agent-9\n").unwrap();
    let yaml = agent_yml(fleet.dir.path(), "agent-9", &fleet.master_addr());
    fleet.add_agent_with("agent-9", "agent-9", &yaml);
    wait_for("the master to refuse agent-9", || {
        fleet.agents[1]
            .log_text()
            .contains("this certificate is for node `agent-1`, not `agent-9`")
            .then_some(())
    });
    assert!(fleet.node("agent-9").is_none());
    assert_eq!(fleet.node("agent-1").unwrap()["status"], "online");

    // A second machine cannot enrol under a live node's name either.
    let dup = agent_yml(fleet.dir.path(), "twin", &fleet.master_addr())
        .replace("id: twin", "id: agent-1");
    let a = fleet.add_agent_with("twin", "agent-1", &dup);
    assert_eq!(a.wait_exit(), Some(78));
    assert!(
        a.log_text().contains("already enrolled"),
        "{}",
        a.log_text()
    );
}

#[test]
fn a_viewer_can_list_but_cannot_push_exec_or_read_the_audit() {
    let fleet = Fleet::start(1);
    let bob = fleet.master.add_user("bob", "viewer");
    assert_eq!(mode(&bob), 0o600);
    let as_bob = |args: &[&str]| {
        cdn_tests::ctl_bare({
            let mut v = vec![
                "--credential",
                bob.to_str().unwrap(),
                "--master",
                &fleet.master.admin_addr.to_string(),
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            v.extend(args.iter().map(|s| s.to_string()));
            v
        })
    };
    let list = json(&as_bob(&["nodes", "list", "-o", "json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(json(&as_bob(&["whoami", "-o", "json"]))["role"], "viewer");

    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, "a: 1\n").unwrap();
    let push = as_bob(&["config", "push", file.to_str().unwrap()]);
    assert_eq!(push.code, Some(1));
    assert_eq!(
        push.stderr.trim(),
        "cdnctl: permission denied: user `bob` has role viewer; this needs operator"
    );
    let marker = fleet.dir.path().join("bob-was-here");
    let exec = as_bob(&["exec", "agent-1", "--", "touch", marker.to_str().unwrap()]);
    assert_ne!(exec.code, Some(0));
    assert!(exec.stderr.contains("permission denied"), "{}", exec.stderr);
    // Events show a viewer nodes and pushes, not credential changes.
    let theirs = as_bob(&["events", "-o", "json"]);
    assert_eq!(theirs.code, Some(0), "{}", theirs.stderr);
    assert!(theirs.stdout.contains("node.online"), "{}", theirs.stdout);
    assert!(!theirs.stdout.contains("user.add"), "{}", theirs.stdout);
    let admins = fleet.ctl(["events", "-o", "json"]);
    assert!(admins.stdout.contains("user.add"), "{}", admins.stdout);
    let audit = as_bob(&["audit"]);
    assert!(
        audit.stderr.contains("this needs admin"),
        "{}",
        audit.stderr
    );

    // Nothing changed.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists());
    let history = json(&fleet.ctl(["config", "history", "-o", "json"]));
    assert_eq!(history, Value::Array(vec![]));
}

#[test]
fn every_mutating_call_is_audited_with_who_and_result() {
    let fleet = Fleet::start(1);
    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, "a: 1\n").unwrap();
    assert_eq!(
        fleet.ctl(["config", "push", file.to_str().unwrap()]).code,
        Some(0)
    );
    assert_eq!(fleet.ctl(["exec", "agent-1", "--", "true"]).code, Some(0));
    assert_eq!(fleet.master.manage(["token", "create"]).code, Some(0));
    let cred = fleet.master.add_user("ops", "operator");
    assert_eq!(fleet.master.manage(["user", "remove", "ops"]).code, Some(0));
    assert_eq!(
        fleet.master.manage(["node", "revoke", "agent-1"]).code,
        Some(0)
    );
    // A removed user is refused at once.
    let out = cdn_tests::ctl_bare([
        "--credential",
        cred.to_str().unwrap(),
        "--master",
        &fleet.master.admin_addr.to_string(),
        "nodes",
        "list",
    ]);
    assert!(out.stderr.contains("revoked or unknown"), "{}", out.stderr);

    let entries = json(&fleet.ctl(["audit", "-o", "json"]));
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "node.enroll",
        "push",
        "exec",
        "token.create",
        "user.add",
        "user.remove",
        "node.revoke",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let push = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "push")
        .unwrap();
    assert_eq!(push["user"], "admin");
    assert_eq!(push["result"], "ok");
    assert!(
        push["detail"].as_str().unwrap().contains("1 applied"),
        "{push}"
    );
    assert!(push["time"].is_string() && push["peer"] == "127.0.0.1");
    // Each change is written first as its request, then with its result.
    let only = json(&fleet.ctl(["audit", "--action", "user", "-o", "json"]));
    let actions: Vec<&str> = only
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.remove",
            "user.remove.request",
            "user.add",
            "user.add.request"
        ],
        "{only}"
    );
}

#[test]
fn hostile_input_is_refused_clearly_and_the_master_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{TEST_MASTER_YML}metrics:\n  addr: 127.0.0.1:0\n");
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    let token = master.join_token();
    let rt = runtime();
    rt.block_on(async {
        // No client certificate: only Enroll is open.
        let mut anon = AgentServiceClient::new(channel(&master, None).await);
        let e = anon
            .register(RegisterRequest {
                node_id: "agent-1".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        assert!(e.message().contains("no client certificate"), "{e}");

        // Malformed node ids and requests.
        for bad in ["../etc/passwd", "", "a b", &"x".repeat(300)] {
            let e = anon
                .enroll(EnrollRequest {
                    token: token.clone(),
                    node_id: bad.to_string(),
                    csr_pem: String::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}: {e}");
            assert!(e.message().contains("node id"), "{e}");
        }
        let e = anon
            .enroll(EnrollRequest {
                token: token.clone(),
                node_id: "edge-1".into(),
                csr_pem:
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                        .into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("CSR"), "{e}");

        // Strangers are turned away before their message is read.
        let mut stranger = AdminServiceClient::new(channel(&master, None).await)
            .max_encoding_message_size(64 << 20);
        let e = stranger
            .push_config(ConfigPushRequest {
                content: vec![b'a'; 10 << 20].into(),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
        let e = anon
            .enroll(EnrollRequest {
                token: token.clone(),
                node_id: "edge-1".into(),
                csr_pem: "x".repeat(200 * 1024),
            })
            .await
            .unwrap_err();
        assert_ne!(e.code(), Code::Ok, "an oversized enrolment is refused");

        // An oversized message.
        let c = credential(&master);
        let mut admin = AdminServiceClient::new(channel(&master, Some((&c.cert, &c.key))).await)
            .max_encoding_message_size(64 << 20);
        let e = admin
            .push_config(ConfigPushRequest {
                content: vec![b'a'; 20 << 20].into(),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(
                e.code(),
                Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
            ),
            "{e}"
        );
        assert!(e.message().contains("large"), "{e}");
    });
    // Still serving, and the refusals were counted.
    let out = cdn_tests::ctl_at(&master.admin_addr.to_string(), ["whoami"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let metrics = master.metrics_addr.expect("metrics address");
    let body = http_get(metrics, "/metrics");
    assert!(
        body.contains("cdn_refused_requests_total{reason=\"invalid\"} 5"),
        "{body}"
    );
    assert!(
        body.contains("cdn_refused_requests_total{reason=\"unauthenticated\"} 2"),
        "{body}"
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn failed_authentications_are_rate_limited_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{TEST_MASTER_YML}limits:\n  auth_failure_burst: 3\n  auth_failures_per_minute: 1\n"
    );
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    let real = master.join_token();
    let (head, _) = real.rsplit_once('.').unwrap();
    let guess = format!("{head}.{}", "g".repeat(32));
    let rt = runtime();
    let codes: Vec<Code> = rt.block_on(async {
        let mut anon = AgentServiceClient::new(channel(&master, None).await);
        let mut codes = Vec::new();
        for _ in 0..6 {
            let e = anon
                .enroll(EnrollRequest {
                    token: guess.clone(),
                    node_id: "edge-1".into(),
                    csr_pem: String::new(),
                })
                .await
                .unwrap_err();
            codes.push(e.code());
        }
        codes
    });
    assert_eq!(&codes[..3], &[Code::Unauthenticated; 3]);
    assert!(
        codes[3..].iter().all(|c| *c == Code::ResourceExhausted),
        "{codes:?}"
    );
    // An authenticated operator from the same address is not locked out.
    let out = cdn_tests::ctl_at(&master.admin_addr.to_string(), ["whoami"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn insecure_mode_needs_the_flag_and_stays_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // Refused on every interface without the extra flag.
    let cfg = dir.path().join("public.yml");
    std::fs::write(
        &cfg,
        format!(
            "grpc:\n  addr: 0.0.0.0:0\ndata_dir: {}\n",
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(cdn_tests::bin("masterd"))
        .args(["--insecure", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-non-loopback"), "{err}");

    // On loopback, every binary needs --insecure and it works.
    let master =
        Master::start_with_flags(&dir.path().join("m"), TEST_MASTER_YML, 0, &["--insecure"]);
    assert!(master.log_text().contains("NO authentication"));
    assert!(!master.data_dir().join("admin.credential").exists());
    let addr = master.addr.to_string();
    let _agent = cdn_tests::Agent::start(
        dir.path(),
        "agent-1",
        "agent-1",
        &agent_yml(dir.path(), "agent-1", &addr),
    );
    wait_for("insecure agent online", || {
        let out = cdn_tests::ctl_at(&addr, ["nodes", "list", "-o", "json"]);
        (out.code == Some(0) && out.stdout.contains("\"online\"")).then_some(())
    });
    let me = json(&cdn_tests::ctl_at(&addr, ["whoami", "-o", "json"]));
    assert_eq!(me["insecure"], true);
}

#[test]
fn contexts_select_the_right_master() {
    let one = Fleet::start(1);
    let mut two = Fleet::start(0);
    two.add_agent("edge-b");
    two.wait_status("edge-b", "online");
    let cfg = one.dir.path().join("cdnctl.yml");
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(cdn_tests::bin("cdnctl"))
            .args(args)
            .env("CDNCTL_CONFIG", &cfg)
            .env_remove("CDNCTL_CONTEXT")
            .env_remove("CDNCTL_CREDENTIAL")
            .env_remove("CDNCTL_MASTER")
            .output()
            .unwrap();
        cdn_tests::CtlOutput::from(out)
    };
    let c1 = one.master.credential();
    let c2 = two.master.credential();
    assert_eq!(
        ctl(&[
            "context",
            "add",
            "one",
            "--credential",
            c1.to_str().unwrap()
        ])
        .code,
        Some(0)
    );
    assert_eq!(
        ctl(&[
            "context",
            "add",
            "two",
            "--credential",
            c2.to_str().unwrap()
        ])
        .code,
        Some(0)
    );
    assert_eq!(mode(&cfg), 0o600);
    let names = |out: cdn_tests::CtlOutput| -> Vec<String> {
        json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The first context added is current.
    assert_eq!(
        names(ctl(&["nodes", "list", "-o", "json"])),
        vec!["agent-1"]
    );
    assert_eq!(ctl(&["context", "use", "two"]).code, Some(0));
    assert_eq!(names(ctl(&["nodes", "list", "-o", "json"])), vec!["edge-b"]);
    assert_eq!(
        names(ctl(&["--context", "one", "nodes", "list", "-o", "json"])),
        vec!["agent-1"]
    );
    let list = json(&ctl(&["context", "list", "-o", "json"]));
    assert_eq!(list[1]["name"], "two");
    assert_eq!(list[1]["current"], true);
    assert_eq!(list[0]["user"], "admin");
    // Others may read the file: a warning, still working.
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ctl(&["nodes", "list"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stderr.contains("readable by others"), "{}", out.stderr);
}

#[test]
fn the_operator_can_serve_a_certificate_of_their_own_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (chain, key_file, ca_file) = (
        dir.path().join("chain.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca_cert.pem())).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let yaml = format!(
        "{TEST_MASTER_YML}tls:\n  cert_file: {}\n  key_file: {}\n",
        chain.display(),
        key_file.display()
    );
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    let addr = master.addr.to_string();
    // The credential carries the operator's CA, so cdnctl trusts the master.
    assert_eq!(credential(&master).ca.trim(), ca_cert.pem().trim());
    let yml = agent_yml(dir.path(), "agent-1", &addr).replace(
        "  dial_timeout",
        &format!("  ca_file: {}\n  dial_timeout", ca_file.display()),
    );
    let _agent = cdn_tests::Agent::start(dir.path(), "agent-1", "agent-1", &yml);
    wait_for("agent-1 enrolled and online", || {
        let out = cdn_tests::ctl_at(&addr, ["nodes", "list", "-o", "json"]);
        (out.code == Some(0) && out.stdout.contains("\"online\"")).then_some(())
    });
}

#[test]
fn removing_a_user_ends_the_sessions_it_has_open() {
    use std::io::Read;
    let fleet = Fleet::start(1);
    let cred = fleet.master.add_user("ops", "operator");
    let mut session = std::process::Command::new(cdn_tests::bin("cdnctl"))
        .args(["--credential", cred.to_str().unwrap()])
        .args(["--master", &fleet.master.admin_addr.to_string()])
        .args([
            "exec",
            "-i",
            "agent-1",
            "--",
            "sh",
            "-c",
            "sleep 14142; cat",
        ])
        .env("CDNCTL_CONFIG", "/nonexistent/cdnctl.yml")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", "^sleep 14142"])
            .output()
            .unwrap();
        !out.stdout.is_empty()
    };
    wait_for("the remote sleep", || running().then_some(()));
    assert_eq!(fleet.master.manage(["user", "remove", "ops"]).code, Some(0));
    let status = session.wait().unwrap();
    let mut err = String::new();
    session
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_ne!(status.code(), Some(0));
    assert!(err.contains("revoked"), "{err}");
    wait_for("the remote process killed", || (!running()).then_some(()));
}

#[test]
fn a_node_cannot_fetch_a_config_meant_for_other_nodes() {
    let fleet = Fleet::start(2);
    let file = fleet.dir.path().join("only2.yml");
    std::fs::write(&file, "secret_for_agent_2: 1\n").unwrap();
    let out = fleet.ctl(["config", "push", file.to_str().unwrap(), "-n", "agent-2"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let session = fleet.node("agent-1").unwrap()["session_id"]
        .as_u64()
        .unwrap();
    let data = fleet.dir.path().join("agent-1/agent-data");
    let cert = std::fs::read_to_string(data.join("node.crt")).unwrap();
    let key = std::fs::read_to_string(data.join("node.key")).unwrap();
    let rt = runtime();
    let e = rt.block_on(async {
        let mut agent1 = AgentServiceClient::new(channel(&fleet.master, Some((&cert, &key))).await);
        agent1
            .push_config(cdn_proto::v1::PushConfigRequest {
                node_id: "agent-1".into(),
                session_id: session,
                version: "1".into(),
                offset: 0,
            })
            .await
            .unwrap_err()
    });
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("only its desired config"), "{e}");
}
