//! `cdnctl exec`: live output, exit codes, stdin, signals, time limits, no
//! orphans, fan-out, flow control and policy, on real binaries.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use cdn_tests::{Fleet, agent_yml, bin, signal, wait_for};

/// Processes whose command line contains `marker`.
/// Processes whose whole command line is `command`: the remote programs
/// only, not cdnctl (whose command line holds the same words) nor the
/// agent's guard around each program.
fn processes_with(command: &str) -> usize {
    let out = Command::new("pgrep")
        .args(["-x", "-f", command])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn exec_cmd(fleet: &Fleet, args: &[&str]) -> Command {
    let mut c = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string());
    c.arg("exec").args(args);
    c
}

/// Starts `cdnctl exec ARGS` with no stdin and its output discarded.
fn spawn_quiet(fleet: &Fleet, args: &[&str]) -> std::process::Child {
    exec_cmd(fleet, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn output_streams_stay_separate_and_exit_codes_propagate() {
    let fleet = Fleet::start(1);
    let out = fleet.ctl([
        "exec",
        "agent-1",
        "--",
        "sh",
        "-c",
        "echo 1; echo a >&2; echo 2; echo b >&2; exit 42",
    ]);
    assert_eq!(out.code, Some(42), "{}", out.stderr);
    assert_eq!(out.stdout, "1\n2\n");
    // The master records sessions by default and cdnctl says so first.
    let (notice, rest) = out.stderr.split_once('\n').unwrap();
    assert!(
        notice.starts_with("cdnctl: this session is recorded (output) as exec "),
        "{notice}"
    );
    assert_eq!(rest, "a\nb\n");

    assert_eq!(fleet.ctl(["exec", "agent-1", "--", "true"]).code, Some(0));
    assert_eq!(fleet.ctl(["exec", "agent-1", "--", "false"]).code, Some(1));
    let killed = fleet.ctl(["exec", "agent-1", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(killed.code, Some(137), "128 + SIGKILL");

    let missing = fleet.ctl(["exec", "agent-1", "--", "no-such-program-x"]);
    assert_eq!(missing.code, Some(127));
    assert!(
        missing.stderr.contains("command not found"),
        "{}",
        missing.stderr
    );
    let not_exec = fleet.ctl(["exec", "agent-1", "--", "/etc/hostname"]);
    assert_eq!(not_exec.code, Some(126), "{}", not_exec.stderr);

    // Environment and working directory.
    let env = fleet.ctl([
        "exec",
        "-e",
        "GREETING=hej",
        "-w",
        "/tmp",
        "agent-1",
        "--",
        "sh",
        "-c",
        "echo $GREETING; pwd",
    ]);
    assert_eq!(env.stdout, "hej\n/tmp\n", "{}", env.stderr);
}

#[test]
fn output_arrives_live_and_stdin_is_forwarded() {
    let fleet = Fleet::start(1);
    let mut child = exec_cmd(
        &fleet,
        &[
            "agent-1",
            "--",
            "sh",
            "-c",
            "echo first; read line; echo got $line",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("no output; cdnctl said: {err} ({:?})", child.wait());
    }
    assert_eq!(
        line, "first\n",
        "the first line arrives while the command still runs"
    );
    assert!(child.try_wait().unwrap().is_none());
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ping\n").unwrap();
    } // EOF
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got ping\n");
    assert!(child.wait().unwrap().success());

    let out = exec_cmd(&fleet, &["agent-1", "--", "wc", "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"a\nb\nc\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");

    // /dev/null ends at once (cdnctl starts no reader for it); a regular
    // file is read through.
    let eof_then = |stdin: Stdio| {
        let out = exec_cmd(&fleet, &["agent-1", "--", "sh", "-c", "wc -c; echo end"])
            .stdin(stdin)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(eof_then(Stdio::null()), "0 end");
    let file = fleet.dir.path().join("input.txt");
    std::fs::write(&file, "x".repeat(300_000)).unwrap();
    assert_eq!(
        eof_then(Stdio::from(std::fs::File::open(&file).unwrap())),
        "300000 end"
    );
}

#[test]
fn timeout_kills_the_whole_session_and_exits_124() {
    let fleet = Fleet::start(1);
    let out = fleet.ctl([
        "exec",
        "--timeout",
        "1s",
        "agent-1",
        "--",
        "sh",
        "-c",
        "sleep 31415 & sleep 31415; wait",
    ]);
    assert_eq!(out.code, Some(124), "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    wait_for("no process of the session left", || {
        (processes_with("sleep 31415") == 0).then_some(())
    });
}

#[test]
fn killing_cdnctl_leaves_no_orphan_on_the_agent() {
    let fleet = Fleet::start(1);
    let mut child = spawn_quiet(
        &fleet,
        &[
            "agent-1",
            "--",
            "sh",
            "-c",
            "sleep 27182 & sleep 27182; wait",
        ],
    );
    wait_for("the remote processes to run", || {
        (processes_with("sleep 27182") >= 2).then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the agent to kill the session's processes", || {
        (processes_with("sleep 27182") == 0).then_some(())
    });
}

#[test]
fn ctrl_c_interrupts_the_remote_process() {
    let fleet = Fleet::start(1);
    let mut child = spawn_quiet(&fleet, &["agent-1", "--", "sleep", "16180"]);
    wait_for("the remote sleep", || {
        (processes_with("sleep 16180") >= 1).then_some(())
    });
    signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "128 + SIGINT");
    wait_for("sleep gone", || {
        (processes_with("sleep 16180") == 0).then_some(())
    });
}

#[test]
fn fan_out_prefixes_lines_and_reports_every_exit_code() {
    let fleet = Fleet::start(3);
    let out = fleet.ctl([
        "exec",
        "--all",
        "--",
        "sh",
        "-c",
        "echo hello; echo oops >&2",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for n in ["agent-1", "agent-2", "agent-3"] {
        assert!(
            out.stdout.contains(&format!("{n} | hello\n")),
            "{}",
            out.stdout
        );
        assert!(
            out.stderr.contains(&format!("{n} | oops\n")),
            "{}",
            out.stderr
        );
        let row = out
            .stderr
            .lines()
            .find(|l| l.starts_with(n) && !l.contains('|'))
            .unwrap_or_else(|| panic!("no summary row for {n}:\n{}", out.stderr));
        assert!(row.split_whitespace().nth(1) == Some("0"), "{row}");
    }
    let failing = fleet.ctl([
        "exec", "-n", "agent-1", "-n", "agent-3", "--", "sh", "-c", "exit 3",
    ]);
    assert_eq!(failing.code, Some(1));
    assert_eq!(
        failing
            .stderr
            .lines()
            .filter(|l| l.contains("  3  "))
            .count(),
        2,
        "{}",
        failing.stderr
    );
    let fra = fleet.ctl(["exec", "--selector", "pop=fra", "--", "echo", "x"]);
    assert_eq!(fra.stdout, "agent-1 | x\n");
}

#[test]
fn a_gigabyte_streams_through_and_a_stalled_reader_does_not_stall_the_node() {
    let fleet = Fleet::start(1);
    // 1 GiB through to a reader that counts it.
    let mut child = exec_cmd(
        &fleet,
        &["agent-1", "--", "head", "-c", "1073741824", "/dev/zero"],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut total = 0u64;
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(total, 1 << 30);

    // A flood nobody reads: flow control holds it, heartbeats go on.
    let rss = || -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", fleet.master.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = rss();
    let mut flood = exec_cmd(&fleet, &["agent-1", "--", "yes", "flood-marker-1414"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the flood to run", || {
        (processes_with("yes flood-marker-1414") >= 1).then_some(())
    });
    // Several offline windows (4 x 300 ms) pass: the node must stay online.
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let n = fleet.node("agent-1").expect("node listed");
        assert_eq!(
            n["status"], "online",
            "heartbeats keep flowing during the flood: {n}"
        );
    }
    // Other sessions and config pushes on the same agent still work.
    assert_eq!(
        fleet.ctl(["exec", "agent-1", "--", "echo", "still"]).stdout,
        "still\n"
    );
    let cfg = fleet.dir.path().join("during-flood.yml");
    std::fs::write(&cfg, "during: flood\n").unwrap();
    let push = fleet.ctl(["config", "push", cfg.to_str().unwrap()]);
    assert_eq!(push.code, Some(0), "push during the flood: {}", push.stderr);
    let after = rss();
    assert!(
        after < before + 64 * 1024,
        "master RSS grew from {before} KiB to {after} KiB during a stalled flood"
    );
    flood.kill().unwrap();
    flood.wait().unwrap();
    wait_for("the flood to stop", || {
        (processes_with("yes flood-marker-1414") == 0).then_some(())
    });
}

/// Resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Pids of processes whose whole command line is `command`.
fn pids_of(command: &str) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-x", "-f", command])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The master's RSS once it holds still: the same within 128 KiB over
/// four readings half a second apart.
fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    let mut same = 0;
    wait_for("the master's memory to settle", || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = rss_kib(pid);
        same = if now.abs_diff(last) <= 128 {
            same + 1
        } else {
            0
        };
        last = now;
        (same >= 4).then_some(now)
    })
}

/// What the README promises per stalled session (an operator whose cdnctl
/// stops reading while the remote program keeps writing): about 2 MiB of
/// the master's memory, at most 2.5 MiB, measured as RSS growth over ten
/// such sessions once flow control has stopped every remote program in its
/// write (a relay queue of 8 messages cost 3.5–4 MiB).
#[test]
fn a_stalled_reader_costs_the_master_at_most_two_and_a_half_mib() {
    const SESSIONS: usize = 10;
    let fleet = Fleet::start(1);
    let master = fleet.master.pid();
    // One stalled session first: the runtime's threads, the recorder and
    // the allocator's first pages are not a session's cost.
    let spawn_stalled = || {
        exec_cmd(&fleet, &["agent-1", "--", "cat", "/dev/zero"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()) // held, never read
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let stalled_writers = |n: usize| {
        wait_for(
            &format!("{n} remote programs stopped in their write"),
            || {
                let pids = pids_of("cat /dev/zero");
                let blocked = pids
                    .iter()
                    .filter(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/wchan"))
                            .is_ok_and(|w| w.contains("pipe"))
                    })
                    .count();
                (pids.len() == n && blocked == n).then_some(())
            },
        )
    };
    let mut readers = vec![spawn_stalled()];
    stalled_writers(1);
    let before = settled_rss(master);
    // One at a time: ten sessions started at once on a loaded machine
    // (debug builds, ten TLS handshakes) can hold up the agent's 1 s
    // heartbeat and end them all with the connection.
    for n in 2..=SESSIONS + 1 {
        readers.push(spawn_stalled());
        stalled_writers(n);
    }
    let after = settled_rss(master);
    let per_session = after.saturating_sub(before) / SESSIONS as u64;
    assert!(
        per_session <= 2560,
        "{SESSIONS} stalled readers took the master from {before} KiB to {after} KiB: \
         {per_session} KiB each, more than 2.5 MiB"
    );
    // The node is not stalled with them.
    assert_eq!(
        fleet.ctl(["exec", "agent-1", "--", "echo", "alive"]).stdout,
        "alive\n"
    );
    for mut r in readers {
        r.kill().unwrap();
        r.wait().unwrap();
    }
    wait_for("the stalled programs to end", || {
        pids_of("cat /dev/zero").is_empty().then_some(())
    });
}

#[test]
fn policy_and_unknown_or_offline_nodes_give_clear_errors() {
    let mut fleet = Fleet::start(1);
    let strict = agent_yml(fleet.dir.path(), "agent-2", &fleet.master_addr())
        + "exec:\n  allow: [\"echo\", \"/usr/bin/true\"]\n";
    fleet.add_agent_with("agent-2", "agent-2", &strict);
    fleet.wait_status("agent-2", "online");

    let refused = fleet.ctl(["exec", "agent-2", "--", "ls", "/"]);
    assert_eq!(refused.code, Some(255));
    assert!(
        refused.stderr.contains("not in exec.allow"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        fleet.ctl(["exec", "agent-2", "--", "echo", "ok"]).stdout,
        "ok\n"
    );
    // The refused session (the first, id 1) leaves no recording; the one
    // that ran (id 2) has its own.
    let recordings = fleet.master.data_dir().join("recordings");
    assert!(recordings.join("2").join("agent-2.rec").exists());
    cdn_tests::wait_for("the refused session's recording to be gone", || {
        (!recordings.join("1").exists()).then_some(())
    });

    let unknown = fleet.ctl(["exec", "agent-9", "--", "true"]);
    assert_eq!(unknown.code, Some(255));
    assert_eq!(unknown.stderr.trim(), "cdnctl: node agent-9 not found");

    fleet.agent("agent-1").kill();
    fleet.wait_status("agent-1", "offline");
    let offline = fleet.ctl(["exec", "agent-1", "--", "true"]);
    assert_eq!(offline.code, Some(255));
    assert!(
        offline.stderr.contains("node agent-1 is offline"),
        "{}",
        offline.stderr
    );

    let usage = fleet.ctl(["exec", "agent-2"]);
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);

    // Every session is in the audit log.
    let h = fleet.ctl(["exec", "history", "-o", "json"]);
    let h: Vec<serde_json::Value> = serde_json::from_str(&h.stdout).unwrap();
    assert!(
        h.iter()
            .any(|s| s["node"] == "agent-2" && s["argv"][0] == "echo" && s["exit_code"] == 0)
    );
    assert!(h.iter().any(|s| {
        s["node"] == "agent-2"
            && s["error"]
                .as_str()
                .unwrap_or("")
                .contains("not in exec.allow")
    }));
}

#[test]
fn tty_sessions_get_a_terminal_under_a_real_pseudo_terminal() {
    let fleet = Fleet::start(1);
    // `script` gives cdnctl a real terminal, as a user's shell would.
    let cmdline = format!(
        "{} --credential {} --master {} exec -t agent-1 -- sh -c 'tty; exit 5'",
        bin("cdnctl").display(),
        fleet.master.credential().display(),
        fleet.master.admin_addr
    );
    let out = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "remote tty: {text:?}");
    assert_eq!(out.status.code(), Some(5), "{text:?}");
}

#[test]
fn session_limit_disabled_exec_and_run_as_user_are_enforced() {
    let mut fleet = Fleet::start(0);
    let limited = agent_yml(fleet.dir.path(), "agent-1", &fleet.master_addr())
        + "exec:\n  max_sessions: 1\n  user: nobody\n";
    fleet.add_agent_with("agent-1", "agent-1", &limited);
    let off =
        agent_yml(fleet.dir.path(), "agent-2", &fleet.master_addr()) + "exec:\n  enabled: false\n";
    fleet.add_agent_with("agent-2", "agent-2", &off);
    for n in ["agent-1", "agent-2"] {
        wait_for(&format!("{n} with its stream"), || {
            fleet
                .node(n)
                .filter(|v| v["status"] == "online" && v["stream_open"] == true)
        });
    }

    // Runs as the configured user (the tests run as root, as agentd would).
    let who = fleet.ctl(["exec", "agent-1", "--", "id", "-un"]);
    assert_eq!(who.stdout.trim(), "nobody", "{}", who.stderr);

    let mut first = spawn_quiet(&fleet, &["agent-1", "--", "sleep", "14142"]);
    wait_for("the first session", || {
        (processes_with("sleep 14142") >= 1).then_some(())
    });
    let second = fleet.ctl(["exec", "agent-1", "--", "true"]);
    assert_eq!(second.code, Some(255));
    assert!(
        second.stderr.contains("exec.max_sessions"),
        "{}",
        second.stderr
    );
    first.kill().unwrap();
    first.wait().unwrap();

    let disabled = fleet.ctl(["exec", "agent-2", "--", "true"]);
    assert_eq!(disabled.code, Some(255));
    assert!(
        disabled.stderr.contains("exec.enabled: false"),
        "{}",
        disabled.stderr
    );
}

#[test]
fn a_full_stdin_pipe_does_not_block_the_timeout() {
    let fleet = Fleet::start(1);
    // `cat` echoes stdin to stdout; nobody reads our stdout, so its output
    // pipe fills, then its stdin pipe: the deadline must still fire.
    let mut child = exec_cmd(
        &fleet,
        &[
            "--timeout",
            "2s",
            "agent-1",
            "--",
            "sh",
            "-c",
            "cat; true marker-9931",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            if stdin.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let status = wait_for("cdnctl to exit at the deadline", || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(124));
    drop(child.stdout.take());
    let _ = writer.join();
}

#[test]
fn pool_size_bounds_sessions_and_idle_sessions_are_recycled() {
    let fleet = Fleet::start_with("pool:\n  size: 1\n  max_idle_time: 1s\n", 1);
    let master = &fleet.master;
    let addr = master.addr.to_string();
    let mut first = cdn_tests::ctl_command(&addr)
        .args(["exec", "agent-1", "--", "sleep", "31415"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first session running", || {
        (processes_with("sleep 31415") >= 1).then_some(())
    });
    let second = cdn_tests::ctl_at(&addr, ["exec", "agent-1", "--", "true"]);
    assert_eq!(second.code, Some(255), "{}", second.stderr);
    assert!(second.stderr.contains("pool.size"), "{}", second.stderr);
    // Silent for a second: recycled, and its process killed.
    let status = first.wait().unwrap();
    let mut err = String::new();
    first
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(255), "{err}");
    assert!(err.contains("pool.max_idle_time"), "{err}");
    wait_for("the idle session's process gone", || {
        (processes_with("sleep 31415") == 0).then_some(())
    });
    // The slot is free again.
    let third = cdn_tests::ctl_at(&addr, ["exec", "agent-1", "--", "true"]);
    assert_eq!(third.code, Some(0), "{}", third.stderr);
}

#[test]
fn sighup_reloads_what_can_change_and_refuses_a_broken_file() {
    let fleet = Fleet::start_with("pool:\n  size: 1\n  max_idle_time: 1m\n", 1);
    let master = &fleet.master;
    let addr = master.addr.to_string();
    let mut held = cdn_tests::ctl_command(&addr)
        .args(["exec", "agent-1", "--", "sleep", "27183"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first session running", || {
        (processes_with("sleep 27183") >= 1).then_some(())
    });
    assert_eq!(
        cdn_tests::ctl_at(&addr, ["exec", "agent-1", "--", "true"]).code,
        Some(255)
    );

    // A broken file changes nothing.
    let good = std::fs::read_to_string(&master.config).unwrap();
    std::fs::write(&master.config, good.replace("size: 1", "size: lots")).unwrap();
    signal(master.pid(), "HUP");
    wait_for("the refusal logged", || {
        master
            .log_text()
            .contains("config not reloaded")
            .then_some(())
    });
    assert_eq!(
        cdn_tests::ctl_at(&addr, ["exec", "agent-1", "--", "true"]).code,
        Some(255)
    );

    // A good one takes effect at once; a heartbeat change waits for a restart.
    let bigger = good
        .replace("size: 1", "size: 2")
        .replace("interval: 300ms", "interval: 400ms");
    std::fs::write(&master.config, bigger).unwrap();
    signal(master.pid(), "HUP");
    let log = wait_for("the reload logged", || {
        let log = master.log_text();
        log.contains("SIGHUP: config reloaded").then_some(log)
    });
    assert!(
        log.contains("\"pool\"") && log.contains("\"heartbeat\""),
        "{log}"
    );
    let second = cdn_tests::ctl_at(&addr, ["exec", "agent-1", "--", "true"]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let _ = held.kill();
    let _ = held.wait();
}
