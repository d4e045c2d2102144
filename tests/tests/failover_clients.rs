//! The clients' side of master failover, on real binaries: cdnctl given
//! several master addresses reaches the one that is up. (Standbys answering
//! with the leader's address are the master's side; unit tests of cdnctl's
//! context and agentd's dialer cover following them.)

use std::process::Command;

use cdn_tests::{Fleet, bin, ctl_command, free_port};

/// `127.0.0.1:PORT` where nothing listens.
fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn a_dead_first_master_is_passed_over_for_the_next_one() {
    let fleet = Fleet::start(1);
    let live = fleet.master.admin_addr.to_string();
    let masters = format!("{},{live}", dead_addr());

    let out = ctl_command(&masters)
        .args(["nodes", "list", "-o", "json"])
        .output()
        .expect("run cdnctl");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"agent-1\""));

    // whoami names the master it reached.
    let out = ctl_command(&masters)
        .args(["whoami", "-o", "json"])
        .output()
        .expect("run cdnctl");
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).expect("whoami json");
    assert_eq!(me["master"], live.as_str());

    // A context holds both addresses; a list in the file works as well.
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("config.yml");
    let ctl = |args: &[&str]| {
        Command::new(bin("cdnctl"))
            .args(args)
            .env("CDNCTL_CONFIG", &config)
            .env_remove("CDNCTL_CONTEXT")
            .env_remove("CDNCTL_CREDENTIAL")
            .env_remove("CDNCTL_MASTER")
            .env("NO_COLOR", "1")
            .output()
            .expect("run cdnctl")
    };
    let credential = fleet.master.credential();
    let added = ctl(&[
        "context",
        "add",
        "ha",
        "--credential",
        &credential.to_string_lossy(),
        "--master",
        &masters,
    ]);
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = ctl(&["nodes", "list", "-o", "json"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let text = std::fs::read_to_string(&config).expect("config file");
    let as_list = text.replace(
        &format!("master: {masters}"),
        &format!("master: [{}, {live}]", dead_addr()),
    );
    assert_ne!(as_list, text, "the context holds both addresses:\n{text}");
    std::fs::write(&config, as_list).expect("rewrite config");
    let listed = ctl(&["nodes", "list", "-o", "json"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // No master at all: each address and why, one line.
    let (a, b) = (dead_addr(), dead_addr());
    let out = ctl_command(&format!("{a},{b}"))
        .args(["--insecure", "nodes", "list"])
        .output()
        .expect("run cdnctl");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "cdnctl: cannot reach any master: {a}: connection refused; {b}: connection refused"
        )
    );
}
