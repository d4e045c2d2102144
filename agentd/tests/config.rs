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
