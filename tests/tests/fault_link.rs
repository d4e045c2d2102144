//! Fault suite (issue 15): a slow and lossy link between an agent and the
//! master, through the fault-injecting proxy of `cdn_tests::proxy` (delay,
//! bandwidth cap, stalls, connection resets). The agent reconnects; pushes
//! and exec sessions either work or fail with a clear error within their
//! timeouts, never hang.

use std::process::Stdio;
use std::time::{Duration, Instant};

use cdn_tests::proxy::{Link, Proxy};
use cdn_tests::{CtlOutput, Fleet, agent_yml, ctl_command, edge_file, lines_of, wait_for};
use serde_json::Value;

/// Far above every timeout a command below is given: reaching it means
/// the command hung.
const CEILING: Duration = Duration::from_secs(90);

/// Runs cdnctl against the fleet; panics if it is still running after
/// [`CEILING`] (then it is killed).
fn ctl_bounded(fleet: &Fleet, args: &[&str]) -> CtlOutput {
    let mut child = ctl_command(&fleet.master.admin_addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cdnctl");
    let start = Instant::now();
    while child.try_wait().expect("wait cdnctl").is_none() {
        if start.elapsed() > CEILING {
            let _ = child.kill();
            let out = child.wait_with_output().expect("cdnctl output");
            panic!(
                "cdnctl {args:?} hung for {CEILING:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("cdnctl output").into()
}

/// A fleet of `agent-1` on a direct link and `agent-2` behind a proxy.
/// The agent gives a heartbeat 5 s (the test config's 1 s is shorter than
/// a heartbeat queued behind a push on a slow link: it would drop the
/// connection before any large push arrives; RELIABILITY.md says so).
fn fleet_with_proxy() -> (Fleet, Proxy) {
    let mut fleet = Fleet::start(1);
    let proxy = Proxy::start(fleet.master.addr);
    let master = fleet.master_addr();
    let yaml = agent_yml(fleet.dir.path(), "agent-2", &master)
        .replace(&format!("addr: {master}"), &format!("addr: {}", proxy.addr))
        .replace("  timeout: 1s\n", "  timeout: 5s\n");
    fleet.add_agent_with("agent-2", "agent-2", &yaml);
    fleet.wait_status("agent-2", "online");
    (fleet, proxy)
}

fn write(fleet: &Fleet, text: &str) -> String {
    let p = fleet.dir.path().join("push.yml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn node_result(out: &CtlOutput, node: &str) -> Value {
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("push report: {e}\n{}\n{}", out.stdout, out.stderr));
    report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["node"] == node))
        .cloned()
        .unwrap_or_else(|| panic!("{node} missing from {}", out.stdout))
}

fn converged(fleet: &Fleet, node: &str, text: &str) {
    wait_for(&format!("{node} to hold the pushed file"), || {
        (std::fs::read_to_string(edge_file(fleet.dir.path(), node))
            .ok()
            .as_deref()
            == Some(text))
        .then_some(())
    });
}

#[test]
fn a_slow_narrow_link_still_carries_pushes_and_exec() {
    let (fleet, proxy) = fleet_with_proxy();
    // 100 ms per chunk each way and 128 KiB/s.
    proxy.set(Link {
        delay: Duration::from_millis(100),
        rate: 128 * 1024,
        stalled: false,
    });
    // About 230 KB that gzip shrinks to about 130 KB: a second or two
    // on this link.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let text: String = (0..4000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("k{i}: \"{x:016x}{:016x}{:016x}\"\n", x.rotate_left(21), !x)
        })
        .collect();
    let file = write(&fleet, &text);
    let out = ctl_bounded(
        &fleet,
        &["config", "push", &file, "--timeout", "60s", "-o", "json"],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(node_result(&out, "agent-2")["result"], "applied");
    converged(&fleet, "agent-2", &text);

    let exec = ctl_bounded(&fleet, &["exec", "agent-2", "--", "echo", "across"]);
    assert_eq!(exec.code, Some(0), "{}", exec.stderr);
    assert_eq!(exec.stdout, "across\n");
    // Stdin forwarded over the slow link, byte for byte.
    let mut child = ctl_command(&fleet.master.admin_addr.to_string())
        .args(["exec", "agent-2", "--", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![b'z'; 100_000]).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "100000",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stalled_link_fails_push_and_exec_clearly_and_heals() {
    let (fleet, proxy) = fleet_with_proxy();
    proxy.stall(true);
    // The master sees the silence: offline after its threshold.
    fleet.wait_status("agent-2", "offline");

    let text = "stalled: push\n";
    let file = write(&fleet, text);
    let out = ctl_bounded(
        &fleet,
        &["config", "push", &file, "--timeout", "3s", "-o", "json"],
    );
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(node_result(&out, "agent-1")["result"], "applied");
    assert_eq!(
        node_result(&out, "agent-2")["result"],
        "pending",
        "{}",
        out.stdout
    );

    let exec = ctl_bounded(&fleet, &["exec", "agent-2", "--", "echo", "no"]);
    assert_eq!(exec.code, Some(255), "{}\n{}", exec.stdout, exec.stderr);
    assert!(
        exec.stderr.contains("agent-2"),
        "the error names the node: {}",
        exec.stderr
    );

    // Healed: the agent comes back by itself and converges on the push it
    // missed.
    proxy.stall(false);
    fleet.wait_status("agent-2", "online");
    converged(&fleet, "agent-2", text);
    let exec = ctl_bounded(&fleet, &["exec", "agent-2", "--", "echo", "yes"]);
    assert_eq!(exec.code, Some(0), "{}", exec.stderr);
    assert_eq!(exec.stdout, "yes\n");
}

#[test]
fn connection_resets_during_pushes_and_exec_end_clearly_and_the_agent_returns() {
    let (fleet, proxy) = fleet_with_proxy();
    let before = proxy.accepted();
    // A long exec session cut by a reset ends with a clear line, not a
    // hang; the push around it converges.
    let mut session = ctl_command(&fleet.master.admin_addr.to_string())
        .args([
            "exec",
            "agent-2",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(session.stdout.take().unwrap());
    let first = lines.recv_timeout(cdn_tests::WAIT);
    assert_eq!(first.as_deref(), Ok("started"), "the session did not start");
    proxy.reset_all();
    let start = Instant::now();
    while session.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < CEILING, "exec hung after a reset");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out: CtlOutput = session.wait_with_output().unwrap().into();
    assert_eq!(out.code, Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains("lost") || out.stderr.contains("connection"),
        "a lost session says so: {}",
        out.stderr
    );

    for round in 0..3 {
        let text = format!("reset: {round}\n");
        let file = write(&fleet, &text);
        let push = {
            let addr = fleet.master.admin_addr.to_string();
            std::thread::spawn(move || {
                let mut cmd = ctl_command(&addr);
                cmd.args(["config", "push", &file, "--timeout", "10s", "-o", "json"]);
                let out: CtlOutput = cmd.stdin(Stdio::null()).output().unwrap().into();
                out
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        proxy.reset_all();
        let out = push.join().unwrap();
        // Applied before the reset or after the reconnect, or pending:
        // never anything else, and the version was stored.
        let r = node_result(&out, "agent-2");
        assert!(
            r["result"] == "applied" || r["result"] == "pending",
            "round {round}: {}",
            out.stdout
        );
        converged(&fleet, "agent-2", &text);
    }
    fleet.wait_status("agent-2", "online");
    assert!(
        proxy.accepted() > before,
        "the agent dialled again after the resets"
    );
    let exec = ctl_bounded(&fleet, &["exec", "agent-2", "--", "echo", "back"]);
    assert_eq!(exec.code, Some(0), "{}", exec.stderr);
}
