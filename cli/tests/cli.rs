//! cdnctl's interface and its failures when the master is not there.

use std::process::Command;

use clap::CommandFactory;

fn cdnctl(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .args(args)
        .env_remove("CDNCTL_MASTER")
        .env_remove("CDNCTL_CONTEXT")
        .env_remove("CDNCTL_CREDENTIAL")
        .env("CDNCTL_CONFIG", "/nonexistent/cdnctl.yml")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// cdnctl with the config file `cfg` and no other context from the
/// environment.
fn cdnctl_with_config(cfg: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .args(args)
        .env("CDNCTL_CONFIG", cfg)
        .env_remove("CDNCTL_CONTEXT")
        .env_remove("CDNCTL_CREDENTIAL")
        .env_remove("CDNCTL_MASTER")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clap_definition_is_consistent() {
    cdnctl::Cli::command().debug_assert();
}

#[test]
fn help_groups_every_command() {
    let (code, out, _) = cdnctl(&["--help"]);
    assert_eq!(code, Some(0));
    for group in ["Fleet:", "Configuration:", "Access:", "Shell:"] {
        assert!(out.contains(group), "{out}");
    }
    // Every subcommand appears in the grouped list.
    for sub in cdnctl::Cli::command().get_subcommands() {
        assert!(
            out.contains(&format!("\n  {} ", sub.get_name())),
            "{} missing from --help:\n{out}",
            sub.get_name()
        );
    }
}

#[test]
fn dead_master_fails_with_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (code, out, err) = cdnctl(&["--insecure", "--master", &addr, "nodes", "list"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert_eq!(
        err.trim_end(),
        format!("cdnctl: cannot reach master at {addr}: connection refused")
    );
}

#[test]
fn master_from_environment_is_used() {
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .args(["--insecure", "nodes", "list"])
        .env("CDNCTL_MASTER", "127.0.0.1:1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at 127.0.0.1:1:"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = cdnctl(&["nodes", "list", "--status", "sleepy"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = cdnctl(&["frobnicate"]);
    assert_eq!(code, Some(2));
    let (code, _, err) = cdnctl(&["nodes", "list", "--selector", "novalue"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn bad_master_address_is_a_clear_error() {
    let (code, _, err) = cdnctl(&["--master", "nohostport", "nodes", "list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("must be host:port"), "{err}");
}

#[test]
fn master_from_the_user_config_file_is_used() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("cdnctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yml"), "master: 127.0.0.1:2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .args(["--insecure", "nodes", "list"])
        .env_remove("CDNCTL_MASTER")
        .env_remove("CDNCTL_CONFIG")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("at 127.0.0.1:2:"), "{err}");

    // A flag beats the file.
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .args(["--insecure", "--master", "127.0.0.1:3", "nodes", "list"])
        .env_remove("CDNCTL_CONFIG")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("at 127.0.0.1:3:"));

    // A broken file is named.
    std::fs::write(dir.join("config.yml"), "mastr: x\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .args(["--insecure", "nodes", "list"])
        .env_remove("CDNCTL_MASTER")
        .env_remove("CDNCTL_CONFIG")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("config.yml") && err.contains("mastr"), "{err}");
}

#[test]
fn without_a_credential_the_error_says_how_to_get_one() {
    let (code, out, err) = cdnctl(&["--master", "127.0.0.1:1", "nodes", "list"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(
        err.contains("no credential") && err.contains("cdnctl context add"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn contexts_are_kept_0600_and_a_missing_one_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cdnctl.yml");
    let run = |args: &[&str]| cdnctl_with_config(&cfg, args);
    let (code, _, err) = run(&[
        "context",
        "add",
        "lab",
        "--insecure",
        "--master",
        "127.0.0.1:9",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (code, out, _) = run(&["context", "list", "-o", "json"]);
    assert_eq!(code, Some(0));
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["name"], "lab");
    assert_eq!(rows[0]["current"], true);
    assert_eq!(rows[0]["insecure"], true);
    let (code, _, err) = run(&["--context", "nope", "nodes", "list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no context `nope`"), "{err}");
    // The current (plaintext) context is used: its master is dead.
    let (_, _, err) = run(&["nodes", "list"]);
    assert!(err.contains("cannot reach master at 127.0.0.1:9"), "{err}");
    let (code, _, _) = run(&["context", "remove", "lab"]);
    assert_eq!(code, Some(0));
    let (_, out, _) = run(&["context", "list", "-o", "json"]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn completion_prints_the_checked_in_script_and_version_names_the_commit() {
    let (code, out, _) = cdnctl(&["completion", "bash"]);
    assert_eq!(code, Some(0));
    let file = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../completions/cdnctl.bash"),
    )
    .unwrap();
    assert_eq!(out, file);
    let (code, out, _) = cdnctl(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("cdnctl ") && out.contains("commit"),
        "{out}"
    );
    let (code, _, err) = cdnctl(&["nodse"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("similar") || err.contains("tip"),
        "a suggestion: {err}"
    );
}

#[test]
fn duration_flags_keep_their_wording() {
    let (code, _, err) = cdnctl(&["--request-timeout", "0", "nodes", "list"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(
            "invalid value '0' for '--request-timeout <DURATION>': must be greater than zero"
        ),
        "{err}"
    );
    let (code, _, err) = cdnctl(&["exec", "--timeout", "10", "agent-1", "--", "true"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("time unit needed, for example 10sec or 10ms (write e.g. 10s, 500ms)"),
        "{err}"
    );
}

#[test]
fn an_output_format_a_listing_cannot_print_is_refused_before_the_master_is_asked() {
    // Nothing listens on port 1: a refusal must come before any call.
    for (args, listing) in [
        (&["config", "history"][..], "config history"),
        (&["config", "status"], "config status"),
        (&["config", "push", "/nonexistent/edge.yml"], "config push"),
        (&["exec", "history"], "exec history"),
        (&["events"], "events"),
        (&["whoami"], "whoami"),
        (&["context", "list"], "context list"),
    ] {
        let mut argv = vec!["--insecure", "--master", "127.0.0.1:1"];
        argv.extend(args);
        argv.extend(["-o", "wide"]);
        let (code, out, err) = cdnctl(&argv);
        assert_eq!(code, Some(2), "{argv:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(
            err,
            format!("cdnctl: {listing} does not support -o wide (use table, json or yaml)\n")
        );
    }
    // Listings with a wide form take it (and then find no master).
    for args in [
        &["nodes", "list"][..],
        &["nodes", "show", "agent-1"],
        &["audit"],
    ] {
        let mut argv = vec!["--insecure", "--master", "127.0.0.1:1"];
        argv.extend(args);
        argv.extend(["-o", "wide"]);
        let (code, _, err) = cdnctl(&argv);
        assert_eq!(code, Some(1), "{argv:?}: {err}");
        assert!(err.contains("cannot reach master"), "{err}");
    }
}

#[test]
fn context_list_prints_a_table_without_headers_on_request() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cdnctl.yml");
    let run = |args: &[&str]| {
        let (code, out, err) = cdnctl_with_config(&cfg, args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        out
    };
    run(&[
        "context",
        "add",
        "lab",
        "--insecure",
        "--master",
        "127.0.0.1:9",
    ]);
    assert_eq!(
        run(&["context", "list"]),
        "CURRENT  NAME  MASTER       USER        ROLE  \n\
         *        lab   127.0.0.1:9  (insecure)        \n"
    );
    assert_eq!(
        run(&["--no-headers", "context", "list"]),
        "*  lab  127.0.0.1:9  (insecure)     \n"
    );
    assert_eq!(
        run(&["context", "list", "-o", "yaml"]),
        "- name: lab\n  current: true\n  master: 127.0.0.1:9\n  user: \"\"\n  role: \"\"\n  insecure: true\n"
    );
}
