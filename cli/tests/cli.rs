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
    // Every subcommand appears in the grouped list (but the hidden ones,
    // which cdnctl runs itself).
    for sub in cdnctl::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
    {
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
    let (code, _, err) = cdnctl(&["nodes", "list", "--selector", "role!"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn selectors_outside_kubectls_grammar_are_usage_errors_naming_the_bad_part() {
    // Nothing listens on port 1: the refusal comes before any call.
    for (args, selector, problem, tail) in [
        (
            &["nodes", "list"][..],
            "role!",
            "`role!`: `!` after a key is not an operator; did you mean `role!=VALUE`, or `!role` for nodes without it?",
            &[][..],
        ),
        (
            &["config", "status"],
            "a=b=c",
            "`a=b=`: unexpected `=` (separate requirements with `,`)",
            &[],
        ),
        (
            &["config", "push", "/nonexistent/edge.yml"],
            "pop in (fra,ams",
            "`pop in (fra,ams`: `(` is not closed with `)`",
            &[],
        ),
        (
            &["exec"],
            "pop notin ()",
            "`pop notin ()`: `notin ()` needs at least one value",
            &["--", "true"],
        ),
    ] {
        let mut argv = vec!["--insecure", "--master", "127.0.0.1:1"];
        argv.extend(args);
        argv.extend(["--selector", selector]);
        argv.extend(tail);
        let (code, out, err) = cdnctl(&argv);
        assert_eq!(code, Some(2), "{argv:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(
            err.starts_with(&format!(
                "error: invalid value '{selector}' for '--selector <SELECTOR>': {problem}"
            )),
            "{argv:?}: {err}"
        );
    }
    // The grammar is taken (and then no master is found).
    for selector in ["role!=edge", "pop in (fra, ams),!gpu", "gpu", "tier=="] {
        let (code, _, err) = cdnctl(&[
            "--insecure",
            "--master",
            "127.0.0.1:1",
            "nodes",
            "list",
            "-l",
            selector,
        ]);
        assert_eq!(code, Some(1), "{selector}: {err}");
        assert!(err.contains("cannot reach master"), "{err}");
    }
}

#[test]
fn bad_output_templates_are_usage_errors_naming_the_problem() {
    for (o, message) in [
        (
            "jsonpath={.items[*].name",
            "-o jsonpath: `{` at position 1 is not closed with `}`",
        ),
        (
            "jsonpath={range .items[*]}{.name}",
            "-o jsonpath: `{range …}` without its `{end}`",
        ),
        (
            "custom-columns=NAME:.name,STATUS",
            "-o custom-columns: column `STATUS` is not HEADER:PATH",
        ),
        (
            "jsonpath",
            "-o jsonpath needs a template: -o jsonpath='{.items[*].name}'",
        ),
    ] {
        let (code, out, err) = cdnctl(&[
            "--insecure",
            "--master",
            "127.0.0.1:1",
            "nodes",
            "list",
            "-o",
            o,
        ]);
        assert_eq!(code, Some(2), "{o}: {err}");
        assert!(out.is_empty());
        assert_eq!(err, format!("cdnctl: {message}\n"), "{o}");
    }
    let (code, _, err) = cdnctl(&["nodes", "list", "-o", "go-template={{.name}}"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("[possible values: table, wide, json, yaml, name, jsonpath=TEMPLATE, custom-columns=SPEC]"),
        "{err}"
    );
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
            format!(
                "cdnctl: {listing} does not support -o wide (use table, json, yaml, name, \
                 jsonpath=TEMPLATE or custom-columns=SPEC)\n"
            )
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
        "CURRENT  NAME  MASTER       USER        ROLE\n\
         *        lab   127.0.0.1:9  (insecure)\n"
    );
    assert_eq!(
        run(&["--no-headers", "context", "list"]),
        "*  lab  127.0.0.1:9  (insecure)\n"
    );
    assert_eq!(run(&["context", "list", "-o", "name"]), "lab\n");
    assert_eq!(
        run(&[
            "context",
            "list",
            "-o",
            "custom-columns=NAME:.name,ROLE:.role,X:.nothing"
        ]),
        "NAME  ROLE  X\nlab         <none>\n"
    );
    assert_eq!(
        run(&[
            "context",
            "list",
            "-o",
            r#"jsonpath={range .items[*]}{.name}@{.master}{"\n"}{end}"#
        ]),
        "lab@127.0.0.1:9\n"
    );
    assert_eq!(
        run(&["context", "list", "-o", "yaml"]),
        "- name: lab\n  current: true\n  master: 127.0.0.1:9\n  user: \"\"\n  role: \"\"\n  insecure: true\n"
    );
}

#[test]
fn an_empty_listing_says_so_on_stderr_and_prints_nothing() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cdnctl.yml");
    for args in [
        &["context", "list"][..],
        &["--no-headers", "context", "list"],
        &["context", "list", "-o", "name"],
        &["context", "list", "-o", "custom-columns=N:.name"],
    ] {
        let (code, out, err) = cdnctl_with_config(&cfg, args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}: nothing on stdout, so `| wc -l` says 0");
        assert_eq!(
            err, "No contexts yet; add one with `cdnctl context add NAME --credential FILE`.\n",
            "{args:?}"
        );
    }
    let (_, out, err) = cdnctl_with_config(&cfg, &["context", "list", "-o", "json"]);
    assert_eq!((out.as_str(), err.as_str()), ("[]\n", ""));
}

/// A config file with contexts `prod` (current), `lab` and `local`.
fn three_contexts(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("cdnctl.yml");
    std::fs::write(
        &cfg,
        "current_context: prod\n\
         contexts:\n\
         \x20 prod: {master: m1.example:50051, insecure: true}\n\
         \x20 lab: {master: 10.0.0.5:50051, insecure: true}\n\
         \x20 local: {master: 127.0.0.1:50051, insecure: true}\n",
    )
    .unwrap();
    cfg
}

#[test]
fn context_names_complete_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = three_contexts(dir.path());
    let names = |prefix: &str| -> Vec<(String, String)> {
        cdnctl::context_candidates(&cfg, prefix)
            .into_iter()
            .map(|c| {
                (
                    c.get_value().to_string_lossy().into_owned(),
                    c.get_help().map(|h| h.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(
        names(""),
        [
            ("lab".to_string(), "10.0.0.5:50051".to_string()),
            ("local".into(), "127.0.0.1:50051".into()),
            ("prod".into(), "m1.example:50051 (current)".into()),
        ]
    );
    assert_eq!(names("l").len(), 2);
    assert!(names("x").is_empty());
    // A missing or broken file completes nothing, quietly.
    assert!(cdnctl::context_candidates(&dir.path().join("none.yml"), "").is_empty());
    std::fs::write(dir.path().join("bad.yml"), "contexts: [").unwrap();
    assert!(cdnctl::context_candidates(&dir.path().join("bad.yml"), "").is_empty());
}

/// What cdnctl offers for the word at `index` of `words`, asked as the
/// registered bash completion asks it (`COMPLETE=bash`).
fn dynamic_completion(cfg: &std::path::Path, words: &[&str], index: usize) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_cdnctl"))
        .arg("--")
        .args(words)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", index.to_string())
        .env("_CLAP_IFS", "\n")
        .env("CDNCTL_CONFIG", cfg)
        .env_remove("CDNCTL_CONTEXT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // An empty word is offered the flags too.
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|w| !w.starts_with("--") || w.contains('='))
        .map(str::to_string)
        .collect();
    got.sort();
    got
}

#[test]
fn context_names_complete_through_the_shell_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = three_contexts(dir.path());
    assert_eq!(
        dynamic_completion(&cfg, &["cdnctl", "context", "use", ""], 3),
        ["lab", "local", "prod"]
    );
    assert_eq!(
        dynamic_completion(&cfg, &["cdnctl", "context", "remove", "l"], 3),
        ["lab", "local"]
    );
    assert_eq!(
        dynamic_completion(&cfg, &["cdnctl", "--context", "p"], 2),
        ["prod"]
    );
    assert_eq!(
        dynamic_completion(&cfg, &["cdnctl", "--context=l"], 1),
        ["--context=lab", "--context=local"]
    );
}

#[test]
#[allow(clippy::print_stderr)]
fn the_generated_bash_completion_offers_context_names() {
    let Ok(bash) = which_bash() else {
        eprintln!("SKIPPED: no bash on this machine");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = three_contexts(dir.path());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../completions/cdnctl.bash");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_cdnctl"))
        .parent()
        .unwrap()
        .to_path_buf();
    // What bash does on `cdnctl context use l<TAB>`.
    let program = format!(
        "source {script}\n\
         COMP_WORDS=(cdnctl context use l); COMP_CWORD=3; COMP_TYPE=9\n\
         COMP_LINE='cdnctl context use l'; COMP_POINT=${{#COMP_LINE}}\n\
         _clap_complete_cdnctl cdnctl l use 2>/dev/null\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script.display()
    );
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(bash)
        .args(["--noprofile", "--norc", "-c", &program])
        .env("PATH", path)
        .env("CDNCTL_CONFIG", &cfg)
        .env_remove("CDNCTL_CONTEXT")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut got: Vec<&str> = text.lines().map(str::trim_end).collect();
    got.sort();
    assert_eq!(got, ["lab", "local"], "{out:?}");
}

fn which_bash() -> Result<std::path::PathBuf, ()> {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .ok_or(())
}

#[test]
fn a_file_without_yaml_content_is_not_pushed_without_allow_empty() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.yml");
    std::fs::write(&file, "# nothing here yet\n---\n\n").unwrap();
    let path = file.to_str().unwrap();
    let master = ["--insecure", "--master", "127.0.0.1:9"];
    let (code, _, err) = cdnctl(&[&master[..], &["config", "push", path]].concat());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("has no YAML content") && err.contains("--allow-empty"),
        "{err}"
    );
    // With the flag it goes on, to the (absent) master.
    let (code, _, err) =
        cdnctl(&[&master[..], &["config", "push", path, "--allow-empty"]].concat());
    assert_ne!(code, Some(0), "{err}");
    assert!(!err.contains("has no YAML content"), "{err}");
}

#[test]
fn a_bad_strategy_is_refused_before_the_master_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let edge = dir.path().join("edge.yml");
    std::fs::write(&edge, "cache: {size: 1g}\n").unwrap();
    let strategy = dir.path().join("canary.yml");
    std::fs::write(&strategy, "rollout:\n  canary: 1\n  bake: soon\n").unwrap();
    let edge = edge.to_str().unwrap();
    let strategy_arg = strategy.to_str().unwrap();
    // Nothing listens on port 1: each refusal comes before any call.
    let base = [
        "--insecure",
        "--master",
        "127.0.0.1:1",
        "config",
        "push",
        edge,
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        cdnctl(&args)
    };
    let (code, out, err) = run(&["--strategy", strategy_arg]);
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("canary.yml:3") && err.contains("bake"),
        "the file, line and key: {err}"
    );
    assert!(!err.contains("cannot reach"), "{err}");
    std::fs::write(&strategy, "canary: 1\n").unwrap();
    let (code, _, err) = run(&["--strategy", strategy_arg]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("`rollout:`") || err.contains("canary"),
        "{err}"
    );
    for (flags, says) in [
        (&["--on-failure", "panic"][..], "panic"),
        (&["--bake", "0s"], "--bake"),
        (&["--canary", "some"], "--canary"),
        (&["--waves", "10%,,100%"], "empty size"),
    ] {
        let (code, _, err) = run(flags);
        assert_eq!(code, Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

#[test]
fn rollout_verbs_against_a_dead_master_say_so_in_one_line() {
    for verb in [
        &["rollout", "list"][..],
        &["rollout", "status", "3"],
        &["rollout", "status", "--watch"],
        &["rollout", "pause"],
        &["rollout", "undo", "3", "--reason", "bad cache"],
    ] {
        let mut args = vec!["--insecure", "--master", "127.0.0.1:1"];
        args.extend_from_slice(verb);
        let (code, out, err) = cdnctl(&args);
        assert_eq!(code, Some(1), "{verb:?}: {err}");
        assert!(out.is_empty(), "{verb:?}: {out}");
        assert_eq!(err.trim_end().lines().count(), 1, "{verb:?}: {err}");
        assert!(err.contains("cannot reach master at 127.0.0.1:1"), "{err}");
    }
    let (code, _, err) = cdnctl(&["rollout", "status", "three"]);
    assert_eq!(code, Some(2), "{err}");
}
