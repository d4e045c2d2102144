//! cdnctl as a kubectl user expects it, against a real master and agents:
//! a table on an 80-column terminal keeps each row on one line without
//! trailing spaces; empty results say so on stderr only; label selectors
//! in kubectl's grammar pick the nodes they should (and a master still
//! understands an older client's); `-o name`, `-o jsonpath=` and
//! `-o custom-columns=` print what kubectl would.

use std::io::Read;

use cdn_common::credential::Credential;
use cdn_common::tls::{client_tls, connect};
use cdn_proto::v1::ListNodesRequest;
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use cdn_tests::{CtlOutput, Fleet, agent_yml};
use serde_json::Value;

/// Starts agent `name` on `fleet` with exactly `labels`.
fn agent_with_labels(fleet: &mut Fleet, name: &str, labels: &[(&str, &str)]) {
    let yaml = agent_yml(fleet.dir.path(), name, &fleet.master_addr());
    let (head, _) = yaml.split_once("  labels:\n").expect("labels in agent.yml");
    let mut yaml = format!("{head}  labels:\n");
    if labels.is_empty() {
        yaml = format!("{head}  labels: {{}}\n");
    }
    for (k, v) in labels {
        yaml.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    fleet.add_agent_with(name, name, &yaml);
}

/// Waits until every one of `names` is online.
fn wait_online(fleet: &Fleet, names: &[&str]) {
    for name in names {
        fleet.wait_status(name, "online");
    }
}

/// Lines of `out`'s stdout (cdnctl must have succeeded).
fn stdout_lines(out: &CtlOutput) -> Vec<String> {
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stdout.lines().map(str::to_string).collect()
}

/// `text` without terminal colour codes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs cdnctl against `fleet` on a real pseudo-terminal `cols` columns
/// wide (colour on unless `NO_COLOR`); the lines it wrote there, as the
/// terminal received them (without the `\r` of each line end).
fn on_terminal(fleet: &Fleet, cols: u16, no_color: bool, args: &[&str]) -> Vec<String> {
    let (mut pty, pts) = pty_process::blocking::open().expect("open a pty");
    pty.resize(pty_process::Size::new(24, cols))
        .expect("size the pty");
    let mut cmd = pty_process::blocking::Command::new(cdn_tests::bin("cdnctl"))
        .arg("--credential")
        .arg(fleet.master.credential())
        .arg("--master")
        .arg(fleet.master.admin_addr.to_string())
        .args(args)
        .env("CDNCTL_CONFIG", "/nonexistent/cdnctl-test-config.yml")
        .env("TERM", "xterm")
        .env_remove("CDNCTL_CONTEXT");
    cmd = if no_color {
        cmd.env("NO_COLOR", "1")
    } else {
        cmd.env_remove("NO_COLOR")
    };
    let mut child = cmd.spawn(pts).expect("start cdnctl on the pty");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    // Reading fails (EIO) once cdnctl exited and closed the terminal.
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().expect("wait for cdnctl");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(status.success(), "{status}: {text}");
    text.split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn a_table_on_an_80_column_terminal_keeps_each_row_on_one_line() {
    let mut fleet = Fleet::start(0);
    let long = "frankfurt-main-datacenter-rack-17-behind-the-second-loadbalancer";
    let names = [
        "edge-fra-rack17-node-001-serving-static-assets",
        "edge-ams-rack03-node-002-serving-video-segments",
    ];
    for name in names {
        agent_with_labels(
            &mut fleet,
            name,
            &[("role", "edge"), ("location", long), ("tier", "premium")],
        );
    }
    wait_online(&fleet, &names);
    for (args, no_color) in [
        (&["nodes", "list"][..], true),
        (&["nodes", "list"], false),
        (&["nodes", "list", "-o", "wide"], false),
        (
            &[
                "nodes",
                "list",
                "-o",
                "custom-columns=NAME:.name,LABELS:.labels,ADDRESSES:.addresses",
            ],
            true,
        ),
    ] {
        let lines = on_terminal(&fleet, 80, no_color, args);
        let shown: Vec<String> = lines.iter().map(|l| strip_ansi(l)).collect();
        assert_eq!(shown.len(), 1 + names.len(), "{args:?}: {shown:#?}");
        assert!(shown[0].starts_with("NAME "), "{args:?}: {shown:#?}");
        for (raw, line) in lines.iter().zip(&shown) {
            assert!(
                !raw.ends_with(' ') && !line.ends_with(' '),
                "{args:?}: trailing space in {raw:?}"
            );
            assert!(
                line.chars().count() > 80,
                "{args:?}: wider than the terminal, or the test proves nothing: {line:?}"
            );
        }
        // Every value whole, each row on its own line.
        for name in names {
            let rows: Vec<&String> = shown.iter().filter(|l| l.contains(name)).collect();
            assert_eq!(rows.len(), 1, "{args:?}: {shown:#?}");
            assert!(rows[0].starts_with(name), "{args:?}: {}", rows[0]);
            assert!(rows[0].contains(long), "{args:?}: value cut: {}", rows[0]);
            assert!(rows[0].contains("127.0.0.1"), "{args:?}: {}", rows[0]);
        }
    }
}

#[test]
fn empty_results_say_so_on_stderr_and_nothing_on_stdout() {
    let fleet = Fleet::start(1);
    let cases: [(&[&str], &str); 7] = [
        (&["nodes", "list", "-l", "role=origin"], "No nodes found."),
        (&["nodes", "list", "--status", "offline"], "No nodes found."),
        (&["config", "status", "-l", "gpu"], "No nodes found."),
        (&["config", "history"], "No config versions yet."),
        (&["exec", "history"], "No exec sessions yet."),
        (
            &["audit", "--action", "node.delete"],
            "No audit entries found.",
        ),
        (
            &["nodes", "list", "-l", "role=origin", "-o", "name"],
            "No nodes found.",
        ),
    ];
    for (args, message) in cases {
        for no_headers in [false, true] {
            let mut argv: Vec<&str> = Vec::new();
            if no_headers {
                argv.push("--no-headers");
            }
            argv.extend(args);
            let out = fleet.ctl(&argv);
            assert_eq!(out.code, Some(0), "{argv:?}: {}", out.stderr);
            assert_eq!(out.stdout, "", "{argv:?}: `| wc -l` must count 0");
            assert_eq!(out.stderr, format!("{message}\n"), "{argv:?}");
        }
    }
    // Scripts get an empty document, and no message.
    for (format, empty) in [("json", "[]\n"), ("yaml", "[]\n")] {
        let out = fleet.ctl(["nodes", "list", "-l", "role=origin", "-o", format]);
        assert_eq!((out.stdout.as_str(), out.stderr.as_str()), (empty, ""));
    }
    // A master nothing happened on yet: no nodes, no events.
    let quiet = Fleet::start(0);
    for (args, message) in [
        (&["nodes", "list"][..], "No nodes found."),
        (&["events"], "No events yet."),
        (&["--no-headers", "events"], "No events yet."),
    ] {
        let out = quiet.ctl(args);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(out.stderr, format!("{message}\n"), "{args:?}");
    }
    let out = quiet.ctl(["events", "-o", "json"]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

#[test]
fn label_selectors_follow_kubectls_grammar_on_every_command() {
    let mut fleet = Fleet::start(0);
    agent_with_labels(&mut fleet, "edge-fra", &[("role", "edge"), ("pop", "fra")]);
    agent_with_labels(&mut fleet, "edge-ams", &[("role", "edge"), ("pop", "ams")]);
    agent_with_labels(
        &mut fleet,
        "origin-fra",
        &[("role", "origin"), ("pop", "fra"), ("gpu", "yes")],
    );
    agent_with_labels(&mut fleet, "bare", &[]);
    wait_online(&fleet, &["edge-fra", "edge-ams", "origin-fra", "bare"]);
    let select = |selectors: &[&str]| -> Vec<String> {
        let mut argv = vec!["nodes", "list", "-o", "name"];
        for s in selectors {
            argv.extend(["-l", s]);
        }
        let out = fleet.ctl(&argv);
        if out.stdout.is_empty() {
            assert_eq!(out.stderr, "No nodes found.\n", "{selectors:?}");
        }
        stdout_lines(&out)
            .into_iter()
            .map(|n| n.trim_start_matches("node/").to_string())
            .collect()
    };
    assert_eq!(select(&["role=edge"]), ["edge-ams", "edge-fra"]);
    assert_eq!(select(&["role==edge,pop=fra"]), ["edge-fra"]);
    // != and notin pick the nodes without the label too, as kubectl does.
    assert_eq!(select(&["role!=edge"]), ["bare", "origin-fra"]);
    assert_eq!(select(&["pop notin (fra)"]), ["bare", "edge-ams"]);
    assert_eq!(
        select(&["pop in (fra, ams),role!=origin"]),
        ["edge-ams", "edge-fra"]
    );
    assert_eq!(select(&["gpu"]), ["origin-fra"]);
    assert_eq!(select(&["!gpu"]), ["bare", "edge-ams", "edge-fra"]);
    assert_eq!(select(&["!role"]), ["bare"]);
    // Repeated flags: all must match.
    assert_eq!(select(&["role=edge", "pop=ams"]), ["edge-ams"]);
    assert!(select(&["role=edge", "gpu"]).is_empty());

    // A push's targets and config status read the same selector.
    let file = fleet.dir.path().join("edge.yml");
    std::fs::write(&file, "cache: 20g\n").unwrap();
    let out = fleet.ctl([
        "config",
        "push",
        file.to_str().unwrap(),
        "-l",
        "role!=edge",
        "--dry-run",
        "-o",
        "json",
    ]);
    let report: Value = serde_json::from_str(&stdout_lines(&out).join("\n")).unwrap();
    assert_eq!(report["targets"], serde_json::json!(["bare", "origin-fra"]));
    let out = fleet.ctl([
        "config",
        "push",
        file.to_str().unwrap(),
        "-l",
        "!gpu,pop notin (ams)",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let status = fleet.ctl([
        "config",
        "status",
        "-l",
        "pop notin (ams)",
        "-o",
        "custom-columns=NODE:.node,DESIRED:.desired_version",
    ]);
    assert_eq!(
        stdout_lines(&status),
        [
            "NODE        DESIRED",
            "bare        1",
            "edge-fra    1",
            "origin-fra  0"
        ]
    );
    // An exec fan-out runs on the selected nodes only.
    let out = fleet.ctl(["exec", "-l", "role notin (edge)", "--", "echo", "hi"]);
    let mut ran = stdout_lines(&out);
    ran.sort();
    assert_eq!(ran, ["bare       | hi", "origin-fra | hi"]);
    // The audit names the selector.
    let audit = fleet.ctl([
        "audit",
        "--action",
        "push",
        "-o",
        "jsonpath={.items[0].target}",
    ]);
    assert_eq!(audit.stdout, "!gpu,pop notin (ams)");

    // A client that predates structured selectors sends key=value pairs
    // only, and is still understood.
    let credential = Credential::load(&fleet.master.credential()).unwrap().0;
    let legacy: Vec<String> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let channel = connect(
                &fleet.master.admin_addr.to_string(),
                Some(client_tls(
                    &credential.ca,
                    Some((&credential.cert, &credential.key)),
                    "127.0.0.1",
                )),
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap();
            let request = ListNodesRequest {
                selector: [("pop".to_string(), "fra".to_string())].into(),
                ..Default::default()
            };
            let reply = AdminServiceClient::new(channel)
                .list_nodes(request)
                .await
                .unwrap();
            reply
                .into_inner()
                .nodes
                .into_iter()
                .map(|n| n.name)
                .collect()
        });
    assert_eq!(legacy, ["edge-fra", "origin-fra"]);
}

#[test]
fn names_templates_and_custom_columns_print_as_kubectl_does() {
    let fleet = Fleet::start(2);
    let ctl = |args: &[&str]| {
        let out = fleet.ctl(args);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        out.stdout
    };
    assert_eq!(
        ctl(&["nodes", "list", "-o", "name"]),
        "node/agent-1\nnode/agent-2\n"
    );
    assert_eq!(
        ctl(&["nodes", "list", "-o", "jsonpath={.items[*].name}"]),
        "agent-1 agent-2"
    );
    assert_eq!(
        ctl(&[
            "nodes",
            "list",
            "-o",
            r#"jsonpath={range .items[*]}{.name}{"\t"}{.status}{"\t"}{.labels.pop}{"\n"}{end}"#
        ]),
        "agent-1\tonline\tfra\nagent-2\tonline\tams\n"
    );
    assert_eq!(
        ctl(&[
            "nodes",
            "list",
            "-o",
            "custom-columns=NAME:.name,POP:.labels.pop,GPU:.labels.gpu"
        ]),
        "NAME     POP  GPU\nagent-1  fra  <none>\nagent-2  ams  <none>\n"
    );
    assert_eq!(
        ctl(&[
            "--no-headers",
            "nodes",
            "list",
            "-o",
            "custom-columns=NAME:.name"
        ]),
        "agent-1\nagent-2\n"
    );
    assert_eq!(
        ctl(&[
            "nodes",
            "show",
            "agent-2",
            "-o",
            "jsonpath={.name} is {.status}"
        ]),
        "agent-2 is online"
    );
    assert_eq!(
        ctl(&["nodes", "show", "node/agent-2", "-o", "name"]),
        "node/agent-2\n"
    );
    let file = fleet.dir.path().join("e.yml");
    std::fs::write(&file, "x: 1\n").unwrap();
    assert_eq!(
        ctl(&["config", "push", file.to_str().unwrap(), "-o", "name"]),
        "configversion/1\n"
    );
    assert_eq!(
        ctl(&["config", "history", "-o", "name"]),
        "configversion/1\n"
    );
    assert_eq!(
        ctl(&["masters", "-o", "jsonpath={.masters[0].role}"]),
        "leader"
    );
    // A template that finds nothing prints nothing, as kubectl's default.
    assert_eq!(
        ctl(&["nodes", "list", "-o", "jsonpath={.items[*].nope}"]),
        ""
    );
}
