//! The etcd harness itself, over etcd's HTTP API only: one member starts
//! and keeps its data across a kill; three members survive losing one,
//! lose quorum with two gone and recover when they come back; masters
//! accept the `store:` section the harness writes for them. Skipped with a
//! loud message when etcd is not installed, failed in CI.

use std::time::{Duration, Instant};

use cdn_tests::{
    EtcdCluster, Master, TEST_MASTER_YML, ctl_at, http_get, http_post, master_addrs, merge_yaml,
    require_etcd,
};

/// How long a member may take to notice it lost quorum: a few election
/// timeouts of the harness's 500 ms.
const QUORUM_LOSS_NOTICED_WITHIN: Duration = Duration::from_secs(5);

/// Per-request timeout of the key-value calls below.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// `harness-key` and `kept` in base64, as etcd's JSON gateway wants them.
const KEY_B64: &str = "aGFybmVzcy1rZXk=";
const VALUE_B64: &str = "a2VwdA==";

/// Writes the test key through member `i`; whether etcd took it.
fn put(cluster: &EtcdCluster, i: usize) -> bool {
    let body = format!(r#"{{"key":"{KEY_B64}","value":"{VALUE_B64}"}}"#);
    matches!(
        http_post(&cluster.endpoint(i), "/v3/kv/put", &body, REQUEST_TIMEOUT),
        Some((200, _))
    )
}

/// Whether a (linearizable) read through member `i` finds the test key.
fn has_key(cluster: &EtcdCluster, i: usize) -> bool {
    let body = format!(r#"{{"key":"{KEY_B64}"}}"#);
    match http_post(&cluster.endpoint(i), "/v3/kv/range", &body, REQUEST_TIMEOUT) {
        Some((200, text)) => text.contains(VALUE_B64),
        other => panic!("range through member {i} failed: {other:?}"),
    }
}

#[test]
fn a_single_member_answers_health_and_keeps_its_data_across_a_kill() {
    let mut etcd = require_etcd!();
    assert_eq!(etcd.health(0), Some(true));
    let (status, version) =
        http_get(&etcd.url(), "/version", REQUEST_TIMEOUT).expect("GET /version");
    assert_eq!(status, 200, "{version}");
    assert!(version.contains("etcdserver"), "{version}");

    assert!(put(&etcd, 0), "put refused");
    let pid = etcd.pid(0);
    etcd.kill(0);
    assert_eq!(etcd.health(0), None, "a killed member still answers");
    etcd.start_member(0);
    assert_ne!(etcd.pid(0), pid);
    etcd.wait_healthy(0);
    assert!(has_key(&etcd, 0), "the key did not survive the restart");
}

#[test]
fn three_members_survive_one_loss_lose_quorum_with_two_and_recover() {
    let mut cluster = require_etcd!(3);
    assert_eq!(cluster.len(), 3);
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    assert!(endpoints.iter().all(|e| e.starts_with("http://127.0.0.1:")));
    for i in 0..3 {
        assert_eq!(cluster.health(i), Some(true), "member {i}");
    }

    // One of three down: the other two still have a majority (a new
    // election when the leader was the one killed).
    cluster.kill(0);
    cluster.wait_healthy(1);
    cluster.wait_healthy(2);
    assert!(
        put(&cluster, 2),
        "a put with two of three members up failed"
    );

    // Two of three down: the last one has no leader and says so.
    cluster.kill(1);
    let started = Instant::now();
    while cluster.health(2) == Some(true) {
        assert!(
            started.elapsed() < QUORUM_LOSS_NOTICED_WITHIN,
            "member 2 still healthy {QUORUM_LOSS_NOTICED_WITHIN:?} after losing quorum"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Both back on their data directories: quorum again, and the write
    // made with one member down reaches the member that missed it.
    cluster.start_member(0);
    cluster.start_member(1);
    for i in 0..3 {
        cluster.wait_healthy(i);
    }
    assert!(has_key(&cluster, 0), "member 0 did not catch up");
}

#[test]
fn two_masters_start_with_the_etcd_store_section_of_a_three_member_cluster() {
    let cluster = require_etcd!(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let m1 = Master::start_with_yaml(&dir.path().join("m1"), &cluster.store_yml("m1"));
    let m2 = Master::start_with_yaml(&dir.path().join("m2"), &cluster.store_yml("m2"));
    assert_ne!(m1.data_dir(), m2.data_dir());
    assert_eq!(
        master_addrs(&[&m1, &m2]),
        format!("[\"{}\", \"{}\"]", m1.addr, m2.addr)
    );
    let config = std::fs::read_to_string(&m1.config).expect("read master.yml");
    assert!(config.contains("backend: etcd"), "{config}");
    assert!(config.contains(&cluster.prefix), "{config}");
    // Once one of them is elected (both start as standbys: "standby until
    // elected"), the leader serves and a standby sends cdnctl on to it.
    cdn_tests::wait_for("one master to answer `nodes list`", || {
        [&m1, &m2]
            .iter()
            .any(|m| {
                ctl_at(&m.admin_addr.to_string(), ["nodes", "list", "-o", "json"]).code == Some(0)
            })
            .then_some(())
    });
}

#[test]
fn extra_yaml_merges_into_the_test_master_config() {
    let merged = merge_yaml(
        TEST_MASTER_YML,
        "heartbeat:\n  interval: 1s\nstore:\n  backend: etcd\n",
    );
    let v: serde_json::Value = serde_saphyr::from_str(&merged).expect("merged YAML parses");
    assert_eq!(v["heartbeat"]["interval"].as_str(), Some("1s"));
    assert_eq!(v["heartbeat"]["timeout"].as_str(), Some("3s"));
    assert_eq!(v["reconnect"]["base_delay"].as_str(), Some("50ms"));
    assert_eq!(v["store"]["backend"].as_str(), Some("etcd"));
}
