//! Fault suite (issue 15): a full disk under an agent's managed config
//! file (the master's side is in faults.rs). A tmpfs the test mounts
//! holds the agent's file and data; filled, a push fails on that agent
//! with a clear error while the previous file stays whole and no temporary
//! file is left; with room again, the next push applies.

use cdn_tests::disk::SmallDisk;
use cdn_tests::{CtlOutput, Fleet, agent_yml, edge_file, wait_for};
use serde_json::Value;

fn push(fleet: &Fleet, text: &str) -> CtlOutput {
    let file = fleet.dir.path().join("push.yml");
    std::fs::write(&file, text).unwrap();
    fleet.ctl([
        "config",
        "push",
        file.to_str().unwrap(),
        "--timeout",
        "20s",
        "-o",
        "json",
    ])
}

fn result_of(out: &CtlOutput, node: &str) -> Value {
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["node"] == node))
        .cloned()
        .unwrap_or_else(|| panic!("{node} not in {}", out.stdout))
}

#[test]
fn a_full_disk_on_an_agent_fails_its_apply_clearly_keeps_the_file_and_recovers() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let mut fleet = Fleet::start(1);
    let master = fleet.master_addr();
    // agent-2's file, versions and data on the small disk.
    let yaml = agent_yml(&disk.dir, "agent-2", &master);
    fleet.add_agent_with("agent-2", "agent-2", &yaml);
    fleet.wait_status("agent-2", "online");
    let edge = edge_file(&disk.dir, "agent-2");

    let first = "cache: small\n";
    let out = push(&fleet, first);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(std::fs::read_to_string(&edge).unwrap(), first);

    // Full: a 200 KB version fails on agent-2 (and applies on agent-1).
    let filler = disk.fill();
    let big: String = (0..5000).map(|i| format!("k{i}: {:036}\n", i)).collect();
    let out = push(&fleet, &big);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(result_of(&out, "agent-1")["result"], "applied");
    let two = result_of(&out, "agent-2");
    assert_eq!(two["result"], "failed", "{two}");
    let error = two["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("space") || error.contains("full"),
        "the error says the disk is full: {error}"
    );
    assert_eq!(
        std::fs::read_to_string(&edge).unwrap(),
        first,
        "the previous file stays whole"
    );
    let left = cdn_tests::agent_temp_files(edge.parent().unwrap());
    assert!(left.is_empty(), "temporary files left: {left:?}");
    // The node stays online (a full disk is not a dead agent).
    assert_eq!(fleet.node("agent-2").unwrap()["status"], "online");

    // Room again: the next push applies.
    std::fs::remove_file(&filler).unwrap();
    let third = "cache: room-again\n";
    let out = push(&fleet, third);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    wait_for("agent-2 to hold the new file", || {
        (std::fs::read_to_string(&edge).ok().as_deref() == Some(third)).then_some(())
    });
    drop(fleet);
}
