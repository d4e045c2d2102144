//! Exec session recording and replay (issue 18), on real binaries: what
//! the master records of each session, per node, and what `cdnctl exec
//! history` and `cdnctl exec replay` show of it; the asciicast export is
//! checked with the real `asciinema`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdn_common::recording::{Event, Recording};
use cdn_tests::{CtlOutput, Fleet, bin, wait_for};
use serde_json::Value;

/// `exec history -o json`, parsed.
fn history(fleet: &Fleet) -> Vec<Value> {
    let out = fleet.ctl(["exec", "history", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str::<Value>(&out.stdout).unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap())
}

/// The stored recording (`exec replay -o json`), parsed.
fn recording(fleet: &Fleet, id: u64, node: &str) -> (String, Recording) {
    let out = fleet.ctl([
        "exec",
        "replay",
        &id.to_string(),
        "--node",
        node,
        "-o",
        "json",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rec = cdn_common::recording::parse(out.stdout.as_bytes()).expect("a recording");
    (out.stdout, rec)
}

/// The exec id cdnctl announced: "cdnctl: ... recorded (MODE) as exec N".
fn announced_id(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(" recorded ("))
        .unwrap_or_else(|| panic!("no recording notice in {stderr:?}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn recording_file(fleet: &Fleet, id: u64, node: &str) -> PathBuf {
    fleet
        .master
        .data_dir()
        .join("recordings")
        .join(id.to_string())
        .join(format!("{node}.rec"))
}

#[test]
fn both_streams_are_recorded_in_order_and_asciinema_plays_the_export() {
    let fleet = Fleet::start(1);
    // The pause keeps the two writes in one order on the node: they go
    // through two pipes the agent reads side by side.
    let out = fleet.ctl([
        "exec",
        "agent-1",
        "--",
        "sh",
        "-c",
        "echo out; sleep 0.1; echo err >&2; exit 3",
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "out\n");
    let id = announced_id(&out.stderr);
    assert!(out.stderr.starts_with(&format!(
        "cdnctl: this session is recorded (output) as exec {id}\n"
    )));

    let (stored, rec) = recording(&fleet, id, "agent-1");
    assert_eq!(rec.header.node, "agent-1");
    assert_eq!(rec.header.argv[0], "sh");
    assert_eq!(rec.header.mode, "output");
    assert!(!rec.header.user.is_empty() && !rec.header.peer.is_empty());
    let kinds: Vec<&Event> = rec.events.iter().map(|(_, e)| e).collect();
    assert_eq!(
        kinds,
        [
            &Event::Stdout(b"out\n".to_vec()),
            &Event::Stderr(b"err\n".to_vec()),
            &Event::Exit(3)
        ]
    );
    let times: Vec<f64> = rec.events.iter().map(|(t, _)| *t).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        times[1] > times[0],
        "the pause shows in the timings: {times:?}"
    );

    // The session's audit record has the recording's size and sha256.
    let h = history(&fleet);
    let me = h.iter().find(|s| s["exec_id"] == id).expect("in history");
    assert_eq!(me["recording_id"], id);
    assert_eq!(me["recording_bytes"], stored.len() as u64);
    assert_eq!(me["recording_sha256"], sha256_hex(stored.as_bytes()));
    let table = fleet.ctl(["exec", "history"]);
    assert!(table.stdout.lines().next().unwrap().contains("REC"));
    // And the audit log's entry for the session's end carries it too.
    let sha = sha256_hex(stored.as_bytes());
    let ended = wait_for("the exec.end audit entry", || {
        let audit = fleet.ctl(["audit", "--action", "exec.end", "-o", "json"]);
        audit.stdout.contains(&sha).then_some(audit.stdout)
    });
    assert!(
        ended.contains(&format!(
            "exec {id}: exit 3; recording {id} ({} bytes, sha256 {sha})",
            stored.len()
        )),
        "{ended}"
    );

    // Raw replay: the same bytes on the same streams.
    let raw = fleet.ctl(["exec", "replay", &id.to_string()]);
    assert_eq!(raw.code, Some(0), "{}", raw.stderr);
    assert_eq!(
        (raw.stdout.as_str(), raw.stderr.as_str()),
        ("out\n", "err\n")
    );

    // asciicast v2, played by the real asciinema.
    let cast = fleet.ctl(["exec", "replay", &id.to_string(), "-o", "asciicast"]);
    assert_eq!(cast.code, Some(0), "{}", cast.stderr);
    let first: Value = serde_json::from_str(cast.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["version"], 2);
    let file = fleet.dir.path().join("s.cast");
    std::fs::write(&file, &cast.stdout).unwrap();
    if Command::new("asciinema").arg("--version").output().is_err() {
        cdn_tests::missing_binary(
            "asciinema",
            "asciinema",
            "SKIPPED: asciinema not found (Debian package asciinema)",
        );
        return;
    }
    // asciinema cat wants a terminal (it opens /dev/tty): `script` gives
    // it one, whose line discipline writes each \n as \r\n.
    let played = Command::new("script")
        .arg("-qec")
        .arg(format!("asciinema cat {}", file.display()))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(played.status.success(), "{played:?}");
    assert_eq!(
        String::from_utf8_lossy(&played.stdout).replace("\r\n", "\n"),
        "out\nerr\n"
    );
}

/// Types into `cat` under `exec -t` on a real pseudo-terminal, resizes the
/// terminal, ends with ^D; the session's recording.
fn typed_session(fleet: &Fleet) -> (String, Recording) {
    let (pty, pts) = pty_process::blocking::open().expect("open a pty");
    pty.resize(pty_process::Size::new(24, 80)).unwrap();
    let mut child = pty_process::blocking::Command::new(bin("cdnctl"))
        .arg("--credential")
        .arg(fleet.master.credential())
        .arg("--master")
        .arg(fleet.master.admin_addr.to_string())
        .args(["exec", "-t", "agent-1", "--", "cat"])
        .env("CDNCTL_CONFIG", "/nonexistent/cdnctl-test-config.yml")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env_remove("CDNCTL_CONTEXT")
        .spawn(pts)
        .expect("start cdnctl on the pty");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let pty = std::sync::Arc::new(pty);
    let reader = std::sync::Arc::clone(&pty);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = (&*reader).read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    wait_for("the recording notice", || {
        while let Ok(b) = rx.try_recv() {
            seen.extend(b);
        }
        String::from_utf8_lossy(&seen)
            .contains(" as exec ")
            .then_some(())
    });
    // The notice's line ends once the id is all there.
    wait_for("the notice's line end", || {
        while let Ok(b) = rx.try_recv() {
            seen.extend(b);
        }
        let t = String::from_utf8_lossy(&seen).into_owned();
        let after = t.split(" as exec ").nth(1)?.to_string();
        after.contains('\n').then_some(())
    });
    let text = String::from_utf8_lossy(&seen).into_owned();
    let id = announced_id(&text.replace('\r', ""));
    (&*pty).write_all(b"secret-typed\r").unwrap();
    // The echo of the remote terminal, then cat's copy.
    wait_for("cat to echo the line", || {
        while let Ok(b) = rx.try_recv() {
            seen.extend(b);
        }
        (String::from_utf8_lossy(&seen)
            .matches("secret-typed")
            .count()
            >= 2)
            .then_some(())
    });
    pty.resize(pty_process::Size::new(30, 100)).unwrap();
    let file = recording_file(fleet, id, "agent-1");
    wait_for("the resize in the recording", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.contains("\"100x30\""))
    });
    (&*pty).write_all(&[4]).unwrap(); // ^D: cat ends
    let status = child.wait().expect("wait for cdnctl");
    assert!(status.success(), "{status}");
    let (stored, rec) = recording(fleet, id, "agent-1");
    assert!(rec.header.tty);
    assert_eq!((rec.header.cols, rec.header.rows), (80, 24));
    assert!(
        rec.events.iter().any(|(_, e)| *e
            == Event::Resize {
                cols: 100,
                rows: 30
            }),
        "{stored}"
    );
    assert!(
        String::from_utf8_lossy(&rec.output()).contains("secret-typed"),
        "{stored}"
    );
    assert_eq!(rec.exit_code(), Some(0));
    (stored, rec)
}

fn typed(rec: &Recording) -> Vec<u8> {
    rec.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Stdin(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn tty_sessions_record_resizes_and_stdin_only_when_the_policy_says_all() {
    let output = Fleet::start(1);
    let (stored, rec) = typed_session(&output);
    assert_eq!(rec.header.mode, "output");
    assert!(
        typed(&rec).is_empty(),
        "stdin recorded in output mode: {stored}"
    );
    drop(output);

    let all = Fleet::start_with("exec:\n  recording:\n    mode: all\n", 1);
    let (stored, rec) = typed_session(&all);
    assert_eq!(rec.header.mode, "all");
    let keys = typed(&rec);
    assert!(
        String::from_utf8_lossy(&keys).contains("secret-typed\r"),
        "{stored}"
    );
    assert!(keys.ends_with(&[4]), "the ^D is recorded too: {stored}");

    // asciicast keeps the typing and the resize.
    let cast = all.ctl([
        "exec",
        "replay",
        &rec.header.exec_id.to_string(),
        "-o",
        "asciicast",
    ]);
    assert!(
        cast.stdout.contains(r#""i","secret-typed\r""#),
        "{}",
        cast.stdout
    );
    assert!(cast.stdout.contains(r#""r","100x30""#), "{}", cast.stdout);

    // Off records nothing and says nothing.
    let off = Fleet::start_with("exec:\n  recording:\n    mode: off\n", 1);
    let out = off.ctl(["exec", "agent-1", "--", "echo", "hi"]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("hi\n", ""));
    assert!(history(&off).iter().all(|s| s["recording_id"] == 0));
    assert!(!off.master.data_dir().join("recordings").exists());
}

#[test]
fn a_fan_out_files_one_recording_per_node_under_one_id_and_grep_finds_the_odd_one() {
    let fleet = Fleet::start(5);
    // A session's parent is its guard, whose parent is the agent, whose
    // command line names its config.
    let script = "agent=$(cut -d' ' -f4 /proc/$PPID/stat); \
                  if tr '\\0' ' ' < /proc/$agent/cmdline | grep -q agent-3.yml; \
                  then echo needle-in-agent-3; else echo plain; fi";
    let out = fleet.ctl(["exec", "--all", "--", "sh", "-c", script]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("agent-3 | needle-in-agent-3"),
        "{}",
        out.stdout
    );
    let id = announced_id(&out.stderr);
    assert!(out.stderr.contains("these sessions are recorded (output)"));

    let h = history(&fleet);
    let ours: Vec<&Value> = h.iter().filter(|s| s["recording_id"] == id).collect();
    assert_eq!(ours.len(), 5, "{h:?}");
    let mut nodes: Vec<&str> = ours.iter().map(|s| s["node"].as_str().unwrap()).collect();
    nodes.sort();
    assert_eq!(
        nodes,
        ["agent-1", "agent-2", "agent-3", "agent-4", "agent-5"]
    );
    let files = std::fs::read_dir(
        fleet
            .master
            .data_dir()
            .join("recordings")
            .join(id.to_string()),
    )
    .unwrap()
    .count();
    assert_eq!(files, 5);

    let found = fleet.ctl(["exec", "history", "--grep", "needle-in", "-o", "json"]);
    assert_eq!(found.code, Some(0), "{}", found.stderr);
    let v: Value = serde_json::from_str(&found.stdout).unwrap();
    let rows = v["items"].as_array().or(v.as_array()).unwrap().clone();
    assert_eq!(rows.len(), 1, "{}", found.stdout);
    assert_eq!(rows[0]["node"], "agent-3");
    assert_eq!(rows[0]["exec_id"], id);
    let none = fleet.ctl(["exec", "history", "--grep", "no-such-text"]);
    assert_eq!((none.code, none.stdout.as_str()), (Some(0), ""));
    assert!(
        none.stderr.contains("No recorded session matches"),
        "{}",
        none.stderr
    );

    // Several nodes and no --node: a usage error naming them.
    let which = fleet.ctl(["exec", "replay", &id.to_string()]);
    assert_eq!(which.code, Some(2), "{}", which.stderr);
    assert!(
        which
            .stderr
            .contains("agent-1, agent-2, agent-3, agent-4, agent-5")
            && which.stderr.contains("--node"),
        "{}",
        which.stderr
    );
    let three = fleet.ctl(["exec", "replay", &id.to_string(), "--node", "agent-3"]);
    assert_eq!(three.stdout, "needle-in-agent-3\n", "{}", three.stderr);
    let missing = fleet.ctl(["exec", "replay", &id.to_string(), "--node", "agent-9"]);
    assert_eq!(missing.code, Some(1), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no recording of node agent-9"),
        "{}",
        missing.stderr
    );
    let unknown = fleet.ctl(["exec", "replay", "999999"]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no recording"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn past_max_bytes_the_operator_gets_everything_and_the_recording_says_it_stops() {
    let fleet = Fleet::start_with(
        "metrics:\n  addr: 127.0.0.1:0\nexec:\n  recording:\n    max_bytes: 4096\n",
        1,
    );
    let out = fleet.ctl([
        "exec",
        "agent-1",
        "--",
        "sh",
        "-c",
        "head -c 200000 /dev/zero | tr '\\0' x; exit 7",
    ]);
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    assert_eq!(out.stdout.len(), 200_000);
    assert!(out.stdout.bytes().all(|b| b == b'x'));
    let id = announced_id(&out.stderr);
    let (stored, rec) = recording(&fleet, id, "agent-1");
    assert!(stored.len() <= 4096 + 64, "{} bytes", stored.len());
    assert!(rec.truncated(), "{stored}");
    assert_eq!(rec.exit_code(), Some(7), "the exit code is kept");
    let h = history(&fleet);
    let me = h.iter().find(|s| s["exec_id"] == id).unwrap();
    assert_eq!(me["recording_truncated"], true);
    let table = fleet.ctl(["exec", "history"]);
    assert!(table.stdout.contains(" cut"), "{}", table.stdout);
    // Replay says where it stops.
    let raw = fleet.ctl(["exec", "replay", &id.to_string()]);
    assert!(raw.stdout.len() < 4096 && raw.stdout.bytes().all(|b| b == b'x'));
    assert!(
        raw.stderr.contains("the recording stops here"),
        "{}",
        raw.stderr
    );

    // Counted: one recording, cut, its bytes.
    let metrics = fleet.master.metrics_text();
    for (name, at_least) in [
        ("cdn_exec_recordings_total", 1.0),
        ("cdn_exec_recordings_truncated_total", 1.0),
        ("cdn_exec_recording_bytes_total", stored.len() as f64),
    ] {
        let v: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(v >= at_least, "{name} = {v}");
    }
    assert!(metrics.contains("# HELP cdn_exec_recording_errors_total"));

    // A bad limit is a config error naming the key and line.
    let bad = fleet.dir.path().join("bad.yml");
    std::fs::write(&bad, "exec:\n  recording:\n    max_bytes: 10\n").unwrap();
    // (`timeout`: a master that took it would serve.)
    let check = cdn_tests::run(
        Command::new("timeout")
            .arg("30")
            .arg(bin("masterd"))
            .arg("-c")
            .arg(&bad),
    );
    assert_eq!(check.code, Some(78), "{}", check.stderr);
    assert!(
        check.stderr.contains("exec.recording.max_bytes") && check.stderr.contains(":3"),
        "{}",
        check.stderr
    );
}

/// Lines `line N` of `text` from 0 on, without a gap.
fn counted_lines(text: &str) -> usize {
    let mut n = 0;
    for l in text.lines() {
        assert_eq!(l, format!("line {n}"), "lines in order from 0: {text}");
        n += 1;
    }
    n
}

#[test]
fn a_master_killed_mid_session_leaves_a_readable_recording() {
    let mut fleet = Fleet::start(1);
    let mut session = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string())
        .args([
            "exec",
            "agent-1",
            "--",
            "sh",
            "-c",
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut notice = String::new();
    {
        use std::io::BufRead;
        std::io::BufReader::new(session.stderr.as_mut().unwrap())
            .read_line(&mut notice)
            .unwrap();
    }
    let id = announced_id(&notice);
    let file = recording_file(&fleet, id, "agent-1");
    // Flushed while the session runs, not only at its end.
    wait_for("line 20 in the recording", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.contains("line 20\\n"))
    });
    fleet.master.kill();
    let on_disk = std::fs::read(&file).unwrap();
    let rec = cdn_common::recording::parse(&on_disk).expect("readable after SIGKILL");
    let lines = counted_lines(&String::from_utf8_lossy(&rec.output()));
    assert!(lines >= 21, "{lines} lines");
    assert_eq!(rec.exit_code(), None, "the session never ended");
    assert_eq!(session.wait().unwrap().code(), Some(255));

    // The restarted master replays it.
    fleet.master.restart();
    let raw = fleet.ctl(["exec", "replay", &id.to_string()]);
    assert_eq!(raw.code, Some(0), "{}", raw.stderr);
    assert_eq!(counted_lines(&raw.stdout), lines);
}

fn as_user(fleet: &Fleet, cred: &Path, args: &[&str]) -> CtlOutput {
    let master = fleet.master.admin_addr.to_string();
    let mut all = vec!["--credential", cred.to_str().unwrap(), "--master", &master];
    all.extend_from_slice(args);
    cdn_tests::ctl_bare(all)
}

#[test]
fn replays_are_admin_only_unless_operators_may_see_their_own_and_all_are_audited() {
    let fleet = Fleet::start(1);
    let viewer = fleet.master.add_user("vera", "viewer");
    let operator = fleet.master.add_user("otto", "operator");
    let admins = fleet.ctl(["exec", "agent-1", "--", "echo", "admin-output"]);
    let admins = announced_id(&admins.stderr).to_string();
    let ottos = as_user(
        &fleet,
        &operator,
        &["exec", "agent-1", "--", "echo", "otto-output"],
    );
    assert_eq!(ottos.code, Some(0), "{}", ottos.stderr);
    let ottos = announced_id(&ottos.stderr).to_string();

    for (who, cred) in [("vera", &viewer), ("otto", &operator)] {
        for id in [&admins, &ottos] {
            let out = as_user(&fleet, cred, &["exec", "replay", id]);
            assert_eq!(out.code, Some(1), "{who} replays {id}: {}", out.stderr);
            assert!(out.stderr.contains("needs admin"), "{}", out.stderr);
            assert!(out.stdout.is_empty());
        }
        let grep = as_user(&fleet, cred, &["exec", "history", "--grep", "output"]);
        assert_eq!(grep.code, Some(1), "{}", grep.stderr);
    }
    // History (sizes, no content) stays a viewer's right.
    assert_eq!(as_user(&fleet, &viewer, &["exec", "history"]).code, Some(0));

    // The role option, by SIGHUP.
    let yml = std::fs::read_to_string(&fleet.master.config).unwrap();
    std::fs::write(
        &fleet.master.config,
        format!("{yml}exec:\n  recording:\n    operators_replay_own: true\n"),
    )
    .unwrap();
    cdn_tests::signal(fleet.master.pid(), "HUP");
    let own = wait_for("operators_replay_own in force", || {
        let out = as_user(&fleet, &operator, &["exec", "replay", &ottos]);
        (out.code == Some(0)).then_some(out)
    });
    assert_eq!(own.stdout, "otto-output\n");
    let other = as_user(&fleet, &operator, &["exec", "replay", &admins]);
    assert_eq!(other.code, Some(1));
    assert!(other.stderr.contains("only their own"), "{}", other.stderr);
    let found = as_user(
        &fleet,
        &operator,
        &["exec", "history", "--grep", "output", "-o", "json"],
    );
    assert_eq!(found.code, Some(0), "{}", found.stderr);
    assert!(found.stdout.contains("otto") && !found.stdout.contains("admin-output"));
    let vera = as_user(&fleet, &viewer, &["exec", "replay", &ottos]);
    assert_eq!(vera.code, Some(1), "viewers never");
    let admin = fleet.ctl(["exec", "replay", &ottos]);
    assert_eq!(admin.stdout, "otto-output\n");

    // Every replay is in the audit log, refused ones too.
    let audit = fleet.ctl([
        "audit",
        "--action",
        "recording.replay",
        "-o",
        "json",
        "--limit",
        "100",
    ]);
    assert_eq!(audit.code, Some(0), "{}", audit.stderr);
    let v: Value = serde_json::from_str(&audit.stdout).unwrap();
    let entries = v["items"].as_array().or(v.as_array()).unwrap().clone();
    let count = |user: &str, ok: bool| {
        let result = if ok { "ok" } else { "failed" };
        entries
            .iter()
            .filter(|e| e["user"] == user && e["result"] == result)
            .count()
    };
    assert_eq!(count("vera", false), 3, "{entries:?}");
    assert_eq!(count("otto", false), 3, "{entries:?}");
    assert!(count("otto", true) >= 1, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| e["target"] == format!("{ottos}/agent-1") && e["result"] == "ok")
    );
}
