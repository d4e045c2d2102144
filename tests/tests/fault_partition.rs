//! Fault suite (issue 15): a real network partition. The agent runs in a
//! network namespace and dials the master through a veth pair the test
//! makes; the test cuts and heals the link. The master judges the node
//! offline within `offline_threshold × interval` (plus one interval of its
//! own check), sees it back within about a second of healing, and a cut
//! shorter than the timeouts (by more than TCP's retransmission backoff)
//! changes nothing (no flap).
//!
//! Needs root or CAP_NET_ADMIN: elsewhere it skips loudly; in CI (which
//! runs as root) it must run.

use std::time::{Duration, SystemTime};

use cdn_tests::netns::Netns;
use cdn_tests::{Agent, Fleet, Master, TEST_MASTER_YML, agent_yml, in_ci, merge_yaml, wait_for};

/// The master's liveness here: [`TEST_MASTER_YML`] with 10 missed
/// intervals instead of 4, so that the offline window (3 s) is longer than
/// a short cut plus TCP's retransmission backoff (200 ms at least, and
/// about a second on a young connection): 1.2 s is not.
const MASTER_YML_EXTRA: &str = "heartbeat:\n  offline_threshold: 10\n";
/// `heartbeat.interval × offline_threshold` of that config.
const OFFLINE_AFTER: Duration = Duration::from_millis(300 * 10);
/// Its `heartbeat.interval`.
const INTERVAL: Duration = Duration::from_millis(300);
/// What the scheduling of a shared 2-core machine may add to a promised
/// time, measured from the master's own log (not from polling).
const SLACK: Duration = Duration::from_millis(1500);

/// The time stamps of the master's log lines that contain all of `words`.
fn logged_at(log: &str, words: &[&str]) -> Vec<SystemTime> {
    log.lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| humantime::parse_rfc3339(t).ok())
        .collect()
}

/// The first such line at or after `since`, waiting for it.
fn first_after(master: &Master, words: &[&str], since: SystemTime) -> SystemTime {
    wait_for(&format!("the master to log {words:?}"), || {
        logged_at(&master.log_text(), words)
            .into_iter()
            .find(|t| *t >= since)
    })
}

#[test]
fn a_partition_is_detected_in_time_heals_in_a_second_and_a_short_one_does_not_flap() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            assert!(
                !in_ci(),
                "CI is set, so the partition test may not skip: {e} (run as root or with CAP_NET_ADMIN)"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!!\n!!! SKIPPED: cannot make a network namespace here ({e}); needs root or CAP_NET_ADMIN\n!!!!!!!!\n"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start_on(
        &dir.path().join("master"),
        &merge_yaml(TEST_MASTER_YML, MASTER_YML_EXTRA),
        ns.host_ip.into(),
        0,
        &[],
    );
    // The agent waits 3 s for a heartbeat's answer (the tests' usual 1 s
    // is shorter than a cut of 500 ms plus the retransmission backoff).
    let yaml = agent_yml(dir.path(), "agent-1", &master.addr.to_string())
        .replace("  timeout: 1s\n", "  timeout: 3s\n");
    let agent = Agent::start_wrapped(dir.path(), "agent-1", "agent-1", &yaml, &ns.exec_prefix());
    let fleet = Fleet {
        master,
        agents: vec![agent],
        dir,
    };
    fleet.wait_status("agent-1", "online");
    let node = fleet.node("agent-1").unwrap();
    assert_eq!(
        node["address"]
            .as_str()
            .map(|a| a.starts_with(&ns.inner_ip.to_string())),
        Some(true),
        "the agent dials from inside the namespace: {node}"
    );

    // A few seconds of heartbeats first: TCP's retransmission timeout of
    // a fresh connection is about a second, it shrinks with round trips.
    std::thread::sleep(Duration::from_secs(2));
    // A cut shorter than every timeout: nothing happens.
    let offline_before = logged_at(&fleet.master.log_text(), &["node offline", "agent-1"]).len();
    let agent_log = || fleet.agents[0].log_text();
    let drops_before = agent_log().matches("session ended").count();
    ns.cut();
    std::thread::sleep(Duration::from_millis(500));
    ns.heal();
    // Two offline windows later, still the same session.
    std::thread::sleep(OFFLINE_AFTER * 2);
    assert_eq!(
        fleet.node("agent-1").unwrap()["status"],
        "online",
        "a 500 ms cut made the node flap"
    );
    assert_eq!(
        logged_at(&fleet.master.log_text(), &["node offline", "agent-1"]).len(),
        offline_before,
        "a 500 ms cut made the master judge the node offline:\n{}",
        fleet.master.log_text()
    );
    assert_eq!(
        agent_log().matches("session ended").count(),
        drops_before,
        "a 500 ms cut made the agent drop its session:\n{}",
        agent_log()
    );

    // A long cut: offline within the threshold (plus one check interval).
    ns.cut();
    let cut_at = SystemTime::now();
    let offline_at = first_after(&fleet.master, &["node offline", "agent-1"], cut_at);
    fleet.wait_status("agent-1", "offline");
    let detect = offline_at.duration_since(cut_at).unwrap_or_default();
    // Partitioned long enough for the agent to give up its session too
    // (its heartbeat timeout is 3 s).
    std::thread::sleep(Duration::from_secs(3));

    ns.heal();
    let healed_at = SystemTime::now();
    let back_at = first_after(&fleet.master, &["node registered", "agent-1"], healed_at);
    fleet.wait_status("agent-1", "online");
    let back = back_at.duration_since(healed_at).unwrap_or_default();
    #[allow(clippy::print_stderr)]
    {
        eprintln!("partition: offline after {detect:?}, back {back:?} after healing");
    }
    assert!(
        detect <= OFFLINE_AFTER + INTERVAL + SLACK,
        "offline only {detect:?} after the cut (promised {OFFLINE_AFTER:?} + one interval)"
    );
    // The agent's next dial (its backoff is at most 500 ms, a dial that
    // went into the cut gives up after dial_timeout 1 s).
    assert!(
        back <= Duration::from_millis(1500) + SLACK,
        "back only {back:?} after healing"
    );
}
