//! The master's bound on exec sessions of all nodes together
//! (`pool.max_sessions`), beside the per-node `pool.size`.

use std::process::{Command, Stdio};

use cdn_tests::{Fleet, bin, ctl_command, processes, wait_for};

#[test]
fn sessions_past_the_masters_cap_are_refused_whatever_the_node() {
    let fleet = Fleet::start_with("pool:\n  max_sessions: 1\n", 2);
    let argv = ["sleep", "60.4141"];
    let mut first = ctl_command(&fleet.master_addr())
        .args(["exec", "agent-1", "--"])
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first session to run", || {
        (!processes(&argv).is_empty()).then_some(())
    });
    // Another node, its own pool.size far from full: the master's cap.
    let out = fleet.ctl(["exec", "agent-2", "--", "true"]);
    assert_eq!(out.code, Some(255), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("this master already has 1 exec sessions open (pool.max_sessions)"),
        "{}",
        out.stderr
    );

    first.kill().unwrap();
    first.wait().unwrap();
    wait_for("the slot to be free again", || {
        let out = fleet.ctl(["exec", "agent-2", "--", "true"]);
        (out.code == Some(0)).then_some(())
    });
}

#[test]
fn a_zero_cap_is_a_configuration_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("master.yml");
    std::fs::write(
        &config,
        format!(
            "grpc:\n  addr: 127.0.0.1:0\ndata_dir: {}\npool:\n  max_sessions: 0\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin("masterd"))
        .arg("-c")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("master.yml:5") && stderr.contains("pool.max_sessions"),
        "{stderr}"
    );
}
