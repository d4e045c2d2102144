//! `cdnctl --persist`: later invocations reuse one connection to the
//! master through a private local holder (as ssh's ControlPersist), which
//! goes away when idle; a holder that cannot be trusted is not used.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cdn_tests::{CtlOutput, Fleet, run, wait_for};

/// cdnctl for `fleet` with its sockets under `runtime` ($XDG_RUNTIME_DIR).
fn ctl(fleet: &Fleet, runtime: &Path, args: &[&str]) -> CtlOutput {
    let mut cmd: Command = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string());
    cmd.env("XDG_RUNTIME_DIR", runtime).args(args);
    run(&mut cmd)
}

/// The holder sockets in `runtime`.
fn sockets(runtime: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(runtime.join("cdnctl"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether something answers on the Unix socket at `path`.
fn answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// `grpc_connections_active` of the fleet's master: its open connections.
fn connections(fleet: &Fleet) -> u64 {
    let text = fleet.master.metrics_text();
    text.lines()
        .find_map(|l| l.strip_prefix("grpc_connections_active "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no grpc_connections_active in {text}"))
}

/// Runs `cat` on agent-1 through cdnctl with `flags`, checks that the
/// session is live, and returns the master's open connections while it
/// runs.
fn connections_during_a_session(fleet: &Fleet, runtime: &Path, flags: &[&str]) -> u64 {
    use std::io::{BufRead, BufReader, Write};
    let mut cmd = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string());
    cmd.env("XDG_RUNTIME_DIR", runtime)
        .args(flags)
        .args(["exec", "-i", "agent-1", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin.write_all(b"ping\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "ping");
    let open = connections(fleet);
    drop(stdin);
    assert!(child.wait().unwrap().success());
    open
}

#[test]
fn later_invocations_share_one_connection_through_a_private_socket() {
    let fleet = Fleet::start_with("metrics:\n  addr: 127.0.0.1:0\n", 1);
    let runtime = tempfile::tempdir().unwrap();
    let exec = ["--persist", "30s", "exec", "agent-1", "--", "echo", "hi"];

    // The first connects by itself and leaves a holder behind.
    let first = ctl(&fleet, runtime.path(), &exec);
    assert_eq!(
        (first.code, first.stdout.as_str()),
        (Some(0), "hi\n"),
        "{}",
        first.stderr
    );
    let socket = wait_for("the holder's socket", || {
        sockets(runtime.path()).into_iter().find(|s| answers(s))
    });
    let dir = std::fs::metadata(runtime.path().join("cdnctl")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), dir.uid());

    // One agent and the holder: the first invocation's own connection is gone.
    wait_for("the first invocation's connection to close", || {
        (connections(&fleet) == 2).then_some(())
    });
    // The next invocations go through the holder: no connection of their own.
    for _ in 0..2 {
        let out = ctl(&fleet, runtime.path(), &exec);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "hi\n"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    }
    assert_eq!(
        connections_during_a_session(&fleet, runtime.path(), &["--persist", "30s"]),
        2
    );
    // Without --persist, an invocation has a connection of its own.
    assert_eq!(connections_during_a_session(&fleet, runtime.path(), &[]), 3);

    // Other calls, and a stream in, through the holder.
    let nodes = ctl(
        &fleet,
        runtime.path(),
        &["--persist", "30s", "nodes", "list", "-o", "name"],
    );
    assert_eq!(nodes.stdout, "node/agent-1\n", "{}", nodes.stderr);
    let mut cmd = cdn_tests::ctl_command(&fleet.master.admin_addr.to_string());
    cmd.env("XDG_RUNTIME_DIR", runtime.path())
        .args([
            "--persist",
            "30s",
            "exec",
            "-i",
            "agent-1",
            "--",
            "wc",
            "-c",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![b'x'; 3_000_000]).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3000000");
}

#[test]
fn an_idle_holder_exits_and_a_dead_one_is_replaced() {
    let fleet = Fleet::start(1);
    let runtime = tempfile::tempdir().unwrap();
    let out = ctl(
        &fleet,
        runtime.path(),
        &["--persist", "1s", "exec", "agent-1", "--", "true"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let socket = wait_for("the holder's socket", || {
        sockets(runtime.path()).into_iter().find(|s| answers(s))
    });
    // Idle for its second: it exits and removes its socket.
    wait_for("the idle holder to go", || (!socket.exists()).then_some(()));

    // A socket left by a holder that died is not in the way: the
    // invocation connects by itself and a new holder takes the path.
    let stale = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(stale);
    assert!(socket.exists() && !answers(&socket));
    let out = ctl(
        &fleet,
        runtime.path(),
        &["--persist", "30s", "exec", "agent-1", "--", "echo", "ok"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        out.stderr
    );
    wait_for("a new holder", || answers(&socket).then_some(()));
    let out = ctl(
        &fleet,
        runtime.path(),
        &["--persist", "30s", "exec", "agent-1", "--", "echo", "again"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "again\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_socket_directory_others_can_enter_is_not_used() {
    let fleet = Fleet::start(1);
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("cdnctl");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ctl(
        &fleet,
        runtime.path(),
        &["--persist", "30s", "exec", "agent-1", "--", "echo", "hi"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "hi\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("mode 755, must be 0700")
            && out.stderr.contains("not using a connection holder"),
        "{}",
        out.stderr
    );
    assert!(sockets(runtime.path()).is_empty());
}

#[test]
fn a_bad_persist_value_is_a_usage_error() {
    let out = cdn_tests::ctl_bare(["--persist", "soon", "nodes", "list"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--persist"), "{}", out.stderr);
}
