//! Active/standby masters on a real etcd: failover, pushes across it,
//! fencing of a paused leader, etcd members lost and back. Each test
//! starts its own etcd (Debian's `etcd-server`; skipped loudly without
//! it, failed in CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cdn_tests::{
    Agent, CtlOutput, EtcdCluster, Master, agent_yml, bin, require_etcd, signal, wait_for,
};
use serde_json::Value;

/// Two masters on one etcd prefix and the agents that know both.
struct HaFleet {
    /// m1 and m2; `up[i]` says whether master i runs.
    masters: Vec<Master>,
    up: Vec<bool>,
    agents: Vec<Agent>,
    /// The first master's admin credential (the store's users are shared,
    /// so it works on whichever master leads).
    credential: PathBuf,
    dir: tempfile::TempDir,
}

/// Runs cdnctl with `credential` against `masters` (comma-separated).
fn ctl(credential: &Path, masters: &str, args: &[&str]) -> CtlOutput {
    cdn_tests::run(
        Command::new(bin("cdnctl"))
            .env_remove("CDNCTL_CONTEXT")
            .env_remove("CDNCTL_MASTER")
            .env_remove("CDNCTL_CREDENTIAL")
            .env("CDNCTL_CONFIG", "/nonexistent/cdnctl-test-config")
            .env("NO_COLOR", "1")
            .arg("--credential")
            .arg(credential)
            .arg("--master")
            .arg(masters)
            .args(args),
    )
}

impl HaFleet {
    /// `m1` (which wins the election), then `m2`, then `agents` agents that
    /// know both, all online.
    fn start(cluster: &EtcdCluster, agents: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = format!("/cdn-test-{}/", std::process::id());
        let store_yml: Vec<String> = ["m1", "m2"]
            .iter()
            .map(|name| cdn_tests::etcd_store_yml(&cluster.endpoints(), &prefix, name))
            .collect();
        let m1 = Master::start_with_yaml(&dir.path().join("m1"), &store_yml[0]);
        // The first master makes the CA, the admin credential and the join
        // token once it leads.
        let credential = m1.credential();
        wait_for("m1 to lead and write its admin credential", || {
            credential.exists().then_some(())
        });
        let m2 = Master::start_with_yaml(&dir.path().join("m2"), &store_yml[1]);
        let mut fleet = Self {
            masters: vec![m1, m2],
            up: vec![true, true],
            agents: Vec::new(),
            credential,
            dir,
        };
        let addrs = cdn_tests::master_addrs(&[fleet.master(0), fleet.master(1)]);
        for i in 1..=agents {
            let name = format!("agent-{i}");
            // The token m1 wrote (the one that made the store).
            let token = cdn_tests::join_token_file(&fleet.master(0).data_dir());
            let yaml: String = agent_yml(fleet.dir.path(), &name, &addrs)
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("join_token_file:") {
                        format!("  join_token_file: {}\n", token.display())
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            fleet
                .agents
                .push(Agent::start(fleet.dir.path(), &name, &name, &yaml));
        }
        fleet.wait_online(agents);
        fleet
    }

    fn master(&self, i: usize) -> &Master {
        &self.masters[i]
    }

    /// Both masters' admin addresses, for cdnctl.
    fn addrs(&self) -> String {
        self.masters
            .iter()
            .map(|m| m.admin_addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn ctl(&self, args: &[&str]) -> CtlOutput {
        ctl(&self.credential, &self.addrs(), args)
    }

    /// cdnctl against master `i` only.
    fn ctl_on(&self, i: usize, args: &[&str]) -> CtlOutput {
        ctl(
            &self.credential,
            &self.master(i).admin_addr.to_string(),
            args,
        )
    }

    fn nodes(&self) -> Option<Vec<Value>> {
        let out = self.ctl(&["nodes", "list", "-o", "json"]);
        if out.code != Some(0) {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    /// Waits until `n` nodes are online with their command stream open.
    fn wait_online(&self, n: usize) {
        wait_for(&format!("{n} nodes online"), || {
            let nodes = self.nodes()?;
            let up = nodes
                .iter()
                .filter(|v| v["status"] == "online" && v["stream_open"] == true)
                .count();
            (up == n).then_some(())
        });
    }

    /// Which master leads, per `cdnctl masters`.
    fn leader(&self) -> Option<String> {
        let out = self.ctl(&["masters", "-o", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v["masters"].as_array().cloned())?;
        list.iter()
            .find(|m| m["role"] == "leader")
            .and_then(|m| m["id"].as_str().map(str::to_string))
    }

    fn kill(&mut self, i: usize) {
        self.masters[i].kill();
        self.up[i] = false;
    }

    /// Starts master `i` again on its port and directory (as a standby).
    fn restart(&mut self, i: usize) {
        self.masters[i].restart();
        self.up[i] = true;
    }

    fn push(&self, file: &Path) -> CtlOutput {
        self.ctl(&[
            "config",
            "push",
            &file.to_string_lossy(),
            "--timeout",
            "20s",
        ])
    }
}

/// The versions in `config history -o json`, newest first.
fn history(f: &HaFleet) -> Vec<Value> {
    let out = f.ctl(&["config", "history", "-o", "json"]);
    assert_eq!(out.code, Some(0), "config history: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("history json")
}

#[test]
fn killing_the_leader_moves_agents_and_operators_to_the_standby() {
    let etcd = require_etcd!();
    let mut f = HaFleet::start(&etcd, 3);
    assert_eq!(f.leader().as_deref(), Some("m1"));
    let edge = f.dir.path().join("edge.yml");
    std::fs::write(&edge, "cache:\n  size: 1\n").unwrap();
    let out = f.push(&edge);
    assert_eq!(out.code, Some(0), "push: {}", out.stderr);
    let alice = f.master(0).add_user("alice", "viewer");
    assert!(alice.exists());

    let killed = Instant::now();
    f.kill(0);
    // The standby takes over once the dead leader's lease ran out.
    wait_for("m2 serving", || {
        (f.ctl_on(1, &["whoami"]).code == Some(0)).then_some(())
    });
    let serving = killed.elapsed();
    f.wait_online(3);
    let agents_back = killed.elapsed();
    // Shown with --nocapture; the bench (bench/failover.py) measures it
    // on release binaries.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "FIGURE failover (3 agents, lease 2s): standby serving after {} ms, all agents back after {} ms",
            serving.as_millis(),
            agents_back.as_millis()
        );
    }
    assert_eq!(f.leader().as_deref(), Some("m2"));
    // Everything the old leader stored is there.
    let h = history(&f);
    assert_eq!(h.len(), 1, "{h:?}");
    let shown = f.ctl(&["config", "show", "1"]);
    assert_eq!(shown.stdout, "cache:\n  size: 1\n");
    let users = f.ctl(&["--help"]);
    assert_eq!(users.code, Some(0));
    let audit = f.ctl(&["audit", "-o", "json"]);
    assert!(audit.stdout.contains("push"), "{}", audit.stdout);
    assert!(audit.stdout.contains("user.add"), "{}", audit.stdout);
    // alice's credential, issued by the dead leader, works on the new one.
    let who = ctl(&alice, &f.addrs(), &["whoami"]);
    assert_eq!(who.code, Some(0), "{}", who.stderr);
    assert!(who.stdout.contains("alice"));
    // The new leader pushes; every agent applies.
    std::fs::write(&edge, "cache:\n  size: 2\n").unwrap();
    let out = f.push(&edge);
    assert_eq!(out.code, Some(0), "push on the new leader: {}", out.stderr);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("3 applied"),
        "{out:?}"
    );
    // The leadership change is an event on the new leader.
    let ev = f.ctl(&["events", "-o", "json"]);
    assert!(ev.stdout.contains("master.leader"), "{}", ev.stdout);
    // The old leader comes back as a standby and sends callers on: cdnctl
    // given only its address reaches the leader through its hint.
    // (Until its first campaign attempt it knows no leader to name.)
    f.restart(0);
    let via_standby = wait_for("cdnctl through the standby", || {
        let out = f.ctl_on(0, &["nodes", "list"]);
        (out.code == Some(0)).then_some(out)
    });
    assert!(via_standby.stdout.contains("agent-1"));
    wait_for("m1 listed as a standby", || {
        let out = f.ctl(&["masters", "-o", "json"]).stdout;
        let v: Value = serde_json::from_str(&out).ok()?;
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v["masters"].as_array().cloned())?;
        list.iter()
            .any(|m| m["id"] == "m1" && m["role"] == "standby")
            .then_some(())
    });
}

/// `cdnctl rollout status [ID] -o json` through any master, once one
/// answers.
fn rollout_status(f: &HaFleet, id: Option<&str>) -> Option<Value> {
    let mut args = vec!["rollout", "status"];
    args.extend(id);
    args.extend(["-o", "json"]);
    let out = f.ctl(&args);
    (out.code == Some(0))
        .then(|| serde_json::from_str(&out.stdout).ok())
        .flatten()
}

#[test]
fn a_staged_rollout_goes_on_on_the_standby_that_takes_over() {
    let etcd = require_etcd!();
    let mut f = HaFleet::start(&etcd, 4);
    let edge = f.dir.path().join("edge.yml");
    std::fs::write(&edge, "v: 1\n").unwrap();
    assert_eq!(f.push(&edge).code, Some(0));
    std::fs::write(&edge, "v: 2\n").unwrap();
    let out = f.ctl(&[
        "config",
        "push",
        &edge.to_string_lossy(),
        "--canary",
        "1",
        "--waves",
        "2,3,4",
        "--bake",
        "2s",
        "--detach",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The leader dies once the canary passed.
    let before = wait_for("the canary passed", || {
        rollout_status(&f, None).filter(|r| r["waves"][0]["state"] == "passed")
    });
    let id = before["id"].as_u64().unwrap().to_string();
    f.kill(0);
    let after = wait_for("the rollout to succeed on m2", || {
        rollout_status(&f, Some(&id)).filter(|r| r["state"] == "succeeded")
    });
    assert_eq!(f.leader().as_deref(), Some("m2"));
    for w in after["waves"].as_array().unwrap() {
        assert_eq!(w["state"], "passed", "{after:#}");
    }
    for i in 1..=4 {
        let file = cdn_tests::edge_file(f.dir.path(), &format!("agent-{i}"));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "v: 2\n",
            "agent-{i}"
        );
    }
}

#[test]
fn pushes_during_failover_never_reuse_a_version() {
    let etcd = require_etcd!();
    let mut f = HaFleet::start(&etcd, 2);
    let mut acknowledged = Vec::new();
    // Kill the leader at different moments of a push.
    for (round, delay_ms) in [0u64, 15, 60].into_iter().enumerate() {
        let file = f.dir.path().join(format!("round-{round}.yml"));
        std::fs::write(&file, format!("round: {round}\n")).unwrap();
        let leader = if f.leader().as_deref() == Some("m1") {
            0
        } else {
            1
        };
        let push = Command::new(bin("cdnctl"))
            .env("CDNCTL_CONFIG", "/nonexistent/cdnctl-test-config")
            .arg("--credential")
            .arg(&f.credential)
            .arg("--master")
            .arg(f.addrs())
            .args([
                "config",
                "push",
                &file.to_string_lossy(),
                "--timeout",
                "20s",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cdnctl");
        std::thread::sleep(Duration::from_millis(delay_ms));
        f.kill(leader);
        let out = push.wait_with_output().expect("push finished");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => acknowledged.push(round),
            // A clear, retriable failure, never a hang.
            _ => assert!(
                stderr.contains("master") && !stderr.is_empty(),
                "round {round}: unclear failure: {stderr}"
            ),
        }
        f.restart(leader);
        f.wait_online(2);
    }
    // After the failovers a push goes through (and the kills above may
    // all have come before anything was stored: each push writes its
    // audit entry first).
    let last = f.dir.path().join("round-last.yml");
    std::fs::write(&last, "round: last\n").unwrap();
    let out = f.push(&last);
    assert_eq!(
        out.code,
        Some(0),
        "push after the failovers: {}",
        out.stderr
    );
    // Every version holds the content its push sent, numbers unique.
    let h = history(&f);
    let mut seen = std::collections::BTreeMap::new();
    for v in &h {
        let n = v["version"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v["version"].to_string());
        let content = f.ctl(&["config", "show", &n]).stdout;
        assert!(content.starts_with("round: "), "version {n}: {content}");
        assert!(
            seen.insert(n.clone(), content).is_none(),
            "version {n} twice"
        );
    }
    for round in &acknowledged {
        assert!(
            seen.values().any(|c| c == &format!("round: {round}\n")),
            "acknowledged push of round {round} lost: {seen:?}"
        );
    }
    // Every agent converges on the newest stored version.
    let newest = h[0]["version"].to_string().trim_matches('"').to_string();
    let want = seen[&newest].clone();
    for i in 1..=2 {
        let file = cdn_tests::edge_file(f.dir.path(), &format!("agent-{i}"));
        wait_for(&format!("agent-{i} on version {newest}"), || {
            (std::fs::read_to_string(&file).ok()? == want).then_some(())
        });
    }
}

#[test]
fn a_paused_leader_is_fenced_and_steps_down() {
    let etcd = require_etcd!();
    let f = HaFleet::start(&etcd, 2);
    let m1 = f.master(0).pid();
    signal(m1, "STOP");
    // The lease (2 s) runs out; m2 takes over and pushes.
    wait_for("m2 serving while m1 is paused", || {
        (f.ctl_on(1, &["whoami"]).code == Some(0)).then_some(())
    });
    let edge = f.dir.path().join("edge.yml");
    std::fs::write(&edge, "fenced: no\n").unwrap();
    let out = ctl(
        &f.credential,
        &f.master(1).admin_addr.to_string(),
        &[
            "config",
            "push",
            &edge.to_string_lossy(),
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(out.code, Some(0), "push on m2: {}", out.stderr);
    signal(m1, "CONT");
    // m1 wakes up, finds its lease gone, writes nothing and steps down.
    wait_for("m1 to step down", || {
        f.master(0)
            .log_text()
            .contains("no longer leading: standby again")
            .then_some(())
    });
    let log = f.master(0).log_text();
    assert!(log.contains("leadership lost"), "{log}");
    // What it still held in memory was refused by the fence.
    assert!(log.contains("refused (fenced)"), "{log}");
    // Asked directly, m1 sends cdnctl on to m2.
    let via_m1 = f.ctl_on(0, &["config", "history", "-o", "json"]);
    assert_eq!(via_m1.code, Some(0), "{}", via_m1.stderr);
    // Nothing m1 held in memory overwrote what m2 wrote.
    let h = history(&f);
    assert_eq!(h.len(), 1);
    f.wait_online(2);
    for i in 1..=2 {
        let file = cdn_tests::edge_file(f.dir.path(), &format!("agent-{i}"));
        wait_for("agents on m2's version", || {
            (std::fs::read_to_string(&file).ok()? == "fenced: no\n").then_some(())
        });
    }
    assert_eq!(f.leader().as_deref(), Some("m2"));
}

#[test]
fn masters_ride_out_a_lost_etcd_member_and_recover_from_lost_quorum() {
    let mut etcd = require_etcd!(3);
    let f = HaFleet::start(&etcd, 2);
    let edge = f.dir.path().join("edge.yml");
    // One member down: still a quorum, masters keep serving.
    etcd.kill(0);
    std::fs::write(&edge, "members: 2\n").unwrap();
    let out = f.push(&edge);
    assert_eq!(
        out.code,
        Some(0),
        "push with one member down: {}",
        out.stderr
    );
    // Two down: no quorum. The leader stops writing and says why.
    etcd.kill(1);
    wait_for("the masters to stop serving without quorum", || {
        let out = f.ctl(&["nodes", "list"]);
        (out.code != Some(0)).then_some(out.stderr)
    });
    let out = f.ctl(&["nodes", "list"]);
    assert!(
        out.stderr.contains("etcd") || out.stderr.contains("no master leads"),
        "why is not said: {}",
        out.stderr
    );
    // Members back: a leader again, without restarting any master.
    etcd.start_member(0);
    etcd.start_member(1);
    wait_for("a leader again", || {
        (f.ctl(&["whoami"]).code == Some(0)).then_some(())
    });
    f.wait_online(2);
    std::fs::write(&edge, "members: 3\n").unwrap();
    let out = f.push(&edge);
    assert_eq!(out.code, Some(0), "push after recovery: {}", out.stderr);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("2 applied"),
        "{out:?}"
    );
}

#[test]
fn an_embedded_store_restored_into_etcd_serves_two_masters_and_the_same_agents() {
    let etcd = require_etcd!();
    let mut fleet = cdn_tests::Fleet::start(2);
    let dir = fleet.dir.path().to_path_buf();
    let old = fleet.master.credential();
    let at = |addrs: &str, args: &[&str]| ctl(&old, addrs, args);
    let first = fleet.master.admin_addr.to_string();
    // Over 1 MiB, so that etcd holds it in several chunks.
    let text = format!("blob: {}\n", "0123456789abcdef".repeat(100_000));
    let cfg = dir.join("edge.yml");
    std::fs::write(&cfg, &text).unwrap();
    let out = at(&first, &["config", "push", &cfg.to_string_lossy()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let alice = fleet.master.add_user("alice", "operator");
    let made = fleet
        .master
        .manage(["token", "create", "--description", "spare"]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let tokens = fleet.master.manage(["token", "list"]).stdout;
    let users = fleet.master.manage(["user", "list"]).stdout;
    let history = at(&first, &["config", "history", "-o", "json"]).stdout;

    let file = dir.join("fleet.cdnbak");
    let out = fleet.master.manage(["backup", &file.to_string_lossy()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let port = fleet.master.addr.port();
    fleet.master.terminate();

    // Into etcd, then two masters on it: m1 on the old port, which the
    // agents know.
    let store = |name: &str| cdn_tests::etcd_store_yml(&etcd.endpoints(), "/restored/", name);
    let m1_dir = dir.join("m1");
    std::fs::create_dir_all(&m1_dir).unwrap();
    let m1_yml = m1_dir.join("restore.yml");
    std::fs::write(
        &m1_yml,
        format!(
            "data_dir: {}\n{}",
            m1_dir.join("data").display(),
            store("m1")
        ),
    )
    .unwrap();
    let restored = cdn_tests::run(
        Command::new(bin("masterd"))
            .args(["restore", &file.to_string_lossy(), "-c"])
            .arg(&m1_yml),
    );
    assert_eq!(restored.code, Some(0), "{}", restored.stderr);
    assert!(restored.stdout.contains("into etcd"), "{}", restored.stdout);
    // A second restore into the same prefix is refused.
    let again = cdn_tests::run(
        Command::new(bin("masterd"))
            .args(["restore", &file.to_string_lossy(), "-c"])
            .arg(&m1_yml),
    );
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);

    let m1 = Master::start(
        &m1_dir,
        &cdn_tests::merge_yaml(cdn_tests::TEST_MASTER_YML, &store("m1")),
        port,
    );
    let m2 = Master::start_with_yaml(&dir.join("m2"), &store("m2"));
    let both = format!("{},{}", m1.admin_addr, m2.admin_addr);
    // The agents enrolled before reconnect with their certificates.
    wait_for("both agents back, on the restored store", || {
        let out = at(&both, &["nodes", "list", "-o", "json"]);
        let nodes: Vec<Value> = serde_json::from_str(&out.stdout).ok()?;
        (nodes.len() == 2
            && nodes
                .iter()
                .all(|n| n["status"] == "online" && n["stream_open"] == true))
        .then_some(())
    });
    assert_eq!(
        at(&both, &["config", "history", "-o", "json"]).stdout,
        history
    );
    assert_eq!(at(&both, &["config", "show", "1"]).stdout, text);
    let manage = |args: &[&str]| {
        cdn_tests::run(
            Command::new(bin("masterd"))
                .arg("--credential")
                .arg(&old)
                .arg("--master")
                .arg(m1.admin_addr.to_string())
                .args(args),
        )
    };
    assert_eq!(manage(&["token", "list"]).stdout, tokens);
    let users_now = manage(&["user", "list"]).stdout;
    for line in users.lines() {
        assert!(
            users_now.contains(line),
            "{line:?} missing from\n{users_now}"
        );
    }
    let who = ctl(&alice, &both, &["whoami"]);
    assert!(who.stdout.contains("alice"), "{}", who.stderr);
    // The standby knows it is one.
    let masters = at(&both, &["masters", "-o", "json"]).stdout;
    assert!(
        masters.contains("standby") && masters.contains("leader"),
        "{masters}"
    );
    drop(fleet.agents);
}

#[test]
fn a_master_on_its_embedded_store_lists_itself_as_the_leader() {
    let fleet = cdn_tests::Fleet::start_with("backup:\n  interval: 1s\n  keep: 2\n", 0);
    let out = fleet.ctl(["masters", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["masters"].as_array().cloned())
        .expect("a list of masters");
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["role"], "leader");
    assert_eq!(list[0]["backend"], "embedded");
    assert_eq!(
        list[0]["admin_addr"].as_str(),
        Some(fleet.master.admin_addr.to_string().as_str()),
        "{v}"
    );
    // Leadership never changes on one machine.
    let text = fleet.ctl(["masters"]).stdout;
    assert!(
        text.contains("leader") && text.contains("embedded"),
        "{text}"
    );
    // The scheduled backup runs, is shown, and keeps the newest two files.
    let dir = fleet.master.data_dir().join("backups");
    let mut seen = std::collections::BTreeSet::new();
    wait_for("three scheduled backups, two kept", || {
        let v: Value = serde_json::from_str(&fleet.ctl(["masters", "-o", "json"]).stdout).ok()?;
        let file = v["last_backup"]["file"].as_str()?.to_string();
        assert!(Path::new(&file).starts_with(&dir), "{file}");
        assert!(file.ends_with(".cdnbak"), "{file}");
        seen.insert(file);
        let kept = std::fs::read_dir(&dir).ok()?.count();
        (seen.len() >= 3 && kept == 2).then_some(())
    });
}

/// A CA, a certificate for 127.0.0.1 (the members) and a client
/// certificate (the masters) in `dir`, as [`cdn_tests::EtcdTls`] names them.
fn etcd_tls(dir: &Path) -> cdn_tests::EtcdTls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        (params.signed_by(&key, &issuer).unwrap(), key)
    };
    let (server, server_key) = leaf(vec!["localhost".into()]);
    let (client, client_key) = leaf(vec!["masterd".into()]);
    let tls = cdn_tests::EtcdTls {
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server-key.pem"),
    };
    std::fs::write(&tls.ca_file, ca_cert.pem()).unwrap();
    std::fs::write(&tls.cert_file, server.pem()).unwrap();
    std::fs::write(&tls.key_file, server_key.serialize_pem()).unwrap();
    std::fs::write(tls.client_cert(), client.pem()).unwrap();
    std::fs::write(tls.client_key(), client_key.serialize_pem()).unwrap();
    tls
}

#[test]
fn masters_use_an_etcd_that_requires_client_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let tls = etcd_tls(certs.path());
    let Some(etcd) = EtcdCluster::start_with(1, Some(tls.clone())) else {
        return;
    };
    assert!(etcd.endpoint(0).starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    // Without a client certificate etcd refuses the master, which waits
    // and says why rather than start on nothing.
    let plain = cdn_tests::etcd_store_yml(&etcd.endpoints(), &etcd.prefix, "m0")
        + &format!("    ca_file: {}\n", tls.ca_file.display());
    let mut refused = cdn_tests::Proc::spawn(
        "masterd without a client certificate",
        Command::new(bin("masterd")).arg("-c").arg({
            let f = dir.path().join("m0.yml");
            std::fs::write(
                &f,
                format!(
                    "{}data_dir: {}\ngrpc:\n  addr: 127.0.0.1:0\n",
                    plain,
                    dir.path().join("m0").display()
                ),
            )
            .unwrap();
            f
        }),
        std::process::Stdio::null(),
        dir.path().join("m0.log"),
    );
    wait_for("the refused master to say it waits for etcd", || {
        refused
            .log_text()
            .contains("waiting for etcd")
            .then_some(())
    });
    refused.kill();

    let m1 = Master::start_with_yaml(
        &dir.path().join("m1"),
        &(etcd.store_yml("m1") + "backup:\n  interval: 1s\n"),
    );
    wait_for("m1 to lead", || m1.credential().exists().then_some(()));
    let m2 = Master::start_with_yaml(&dir.path().join("m2"), &etcd.store_yml("m2"));
    let both = format!("{},{}", m1.admin_addr, m2.admin_addr);
    let cfg = dir.path().join("edge.yml");
    std::fs::write(&cfg, "tls: etcd\n").unwrap();
    let out = ctl(
        &m1.credential(),
        &both,
        &["config", "push", &cfg.to_string_lossy()],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let masters = wait_for("both masters listed", || {
        let out = ctl(&m1.credential(), &both, &["masters", "-o", "json"]).stdout;
        (out.contains("\"m1\"") && out.contains("\"m2\"")).then_some(out)
    });
    assert!(masters.contains("standby"), "{masters}");
    assert_eq!(
        ctl(&m1.credential(), &both, &["config", "show", "1"]).stdout,
        "tls: etcd\n"
    );
    // The leader's scheduled backup is recorded in etcd, where
    // `cdnctl masters` reads it.
    wait_for("the last backup, as etcd keeps it", || {
        let out = ctl(&m1.credential(), &both, &["masters", "-o", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        (v["last_backup"]["by"] == "m1").then_some(())
    });
}
