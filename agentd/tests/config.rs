//! agentd refuses bad configuration at start, naming file, line and key.

use std::process::Command;

fn run_with(yaml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_key_is_refused_with_line_and_key() {
    let (code, err) = run_with("master:\n  addr: 127.0.0.1:1\nheartbeat:\n  intervall: 10s\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("agent.yml:4"), "{err}");
    assert!(err.contains("heartbeat.intervall"), "{err}");
}

#[test]
fn bad_duration_is_refused_with_line_and_key() {
    let (code, err) = run_with("master:\n  dial_timeout: fast\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("agent.yml:2"), "{err}");
    assert!(err.contains("master.dial_timeout"), "{err}");
}

#[test]
fn bad_yaml_is_refused_with_line() {
    let (code, err) = run_with("node:\n  labels: {a: b\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("agent.yml:"), "{err}");
}

#[test]
fn address_without_port_is_refused() {
    let (code, err) = run_with("master:\n  addr: master.example\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("master.addr") && err.contains("no port"),
        "{err}"
    );
}

#[test]
fn bad_node_id_is_refused() {
    let (code, err) = run_with("node:\n  id: \"edge 1\"\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("node.id"), "{err}");
}

#[test]
fn durations_out_of_bounds_are_refused_with_line_and_key() {
    for (yaml, key, line, why) in [
        // Once a backtrace (exit 101) from clock arithmetic.
        (
            "heartbeat:\n  interval: 18446744073709551615s\n",
            "heartbeat.interval",
            2,
            "at most 3650d",
        ),
        (
            "heartbeat:\n  interval: 1ms\n",
            "heartbeat.interval",
            2,
            "shorter than the 100ms",
        ),
        (
            "master:\n  keepalive:\n    time: 30d\n",
            "master.keepalive.time",
            3,
            "longer than the 1h",
        ),
        (
            "config:\n  reload_timeout: 2h\n",
            "config.reload_timeout",
            2,
            "longer than the 1h",
        ),
    ] {
        let (code, err) = run_with(yaml);
        assert_eq!(code, Some(78), "{yaml}: {err}");
        assert!(err.contains(&format!("agent.yml:{line}")), "{yaml}: {err}");
        assert!(err.contains(key) && err.contains(why), "{yaml}: {err}");
    }
}

#[test]
fn a_directory_as_config_path_and_an_overlong_label_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_with(&format!("config:\n  path: {}\n", dir.path().display()));
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("config.path") && err.contains("is a directory"),
        "{err}"
    );
    // Once accepted here and then refused by the master at every try.
    let (code, err) = run_with(&format!("node:\n  labels:\n    pop: {}\n", "x".repeat(254)));
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("node.labels") && err.contains("254 bytes, at most 253"),
        "{err}"
    );
}
