//! cdn-swarm refuses bad input before starting any agent: a broken
//! template names its file and key (exit 78), bad flags are usage errors
//! (exit 2). (It also makes `cargo test --workspace` build the binary the
//! end-to-end swarm tests in tests/ start.)

use std::process::Command;

fn swarm(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdn-swarm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_in_the_template_is_refused_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yml");
    std::fs::write(&path, "heartbeat:\n  intervall: 1s\n").unwrap();
    let (code, err) = swarm(&["-c", path.to_str().unwrap(), "--count", "1", "--insecure"]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("agent.yml:2"), "{err}");
    assert!(err.contains("intervall"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_missing_template_is_refused() {
    let (code, err) = swarm(&["-c", "/nonexistent/agent.yml", "--count", "1"]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("/nonexistent/agent.yml"), "{err}");
}

#[test]
fn a_count_of_zero_or_no_count_is_a_usage_error() {
    for args in [&["--count", "0"][..], &[][..]] {
        let (code, err) = swarm(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("--count"), "{args:?}: {err}");
    }
}
