#!/usr/bin/env python3
"""TLS versus plaintext, release build over loopback, in one run.

Two fleets side by side on 127.0.0.1, each a masterd with one agent
(`agent-1`): one with TLS (the default: private CA, agents on mutual TLS,
cdnctl with the admin credential), one with everything `--insecure`.

  a. connection establishment: a whole `cdnctl whoami` process (spawn to
     exit) against each master, N runs, interleaved, plus the floor
     `cdnctl --version` (process start only). The difference of the medians
     is the TLS handshake + credential load cost per cdnctl invocation;
  b. `cdnctl exec agent-1 -- true` against each master, N runs, interleaved;
  c. agent start -> node `online` in `cdnctl nodes list -o json`: a fresh
     agentd (new data_dir: with TLS it enrols: key, CSR, certificate) and a
     restart of the enrolled agent (mutual TLS, no enrolment), M runs each,
     TLS and plaintext alternated; also spawn -> the agent's own
     "registered with master" log line, which has no polling granularity;
     and masterd's first start (fresh data dir) -> listening.

Usage: python3 bench/tls.py [--runs 200] [--enrol-runs 10] [--out FILE]
Writes a Markdown report (default bench/results/tls.md) and prints it.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecycle import BIN, Fleet, TOP, log_times, pct, wait, write_report  # noqa: E402

WARMUP = 3


def interleaved(cmds, runs):
    """{label: [ms, ...]}: every command once per round, runs rounds (after
    WARMUP rounds dropped), so drift of the machine hits all alike."""
    out = {k: [] for k in cmds}
    for i in range(runs + WARMUP):
        for label, cmd in cmds.items():
            t0 = time.perf_counter()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            dt = (time.perf_counter() - t0) * 1000
            if r.returncode != 0:
                raise SystemExit(f"{cmd}: exit {r.returncode}: {r.stderr.decode()}")
            if i >= WARMUP:
                out[label].append(dt)
    return out


def node(fleet, name):
    for n in fleet.ctl_json("nodes", "list") or []:
        if n["name"] == name:
            return n
    return None


def start_to_online(fleet, name):
    """Starts agentd `name` (data dir root/<name>.d: a fresh one enrols, an
    existing one is reused) and returns (ms to `online` in `nodes list`,
    ms to the agent's "registered with master" log line); stops it again and
    waits until the master no longer shows it online."""
    before = node(fleet, name)
    old_session = before["session_id"] if before else None
    log_name = f"{name}-{len(fleet.procs)}"
    t0 = time.perf_counter()
    p, log, spawned = fleet.start_agent(name, log_name)

    def up():
        n = node(fleet, name)
        return n if n and n["status"] == "online" and n["session_id"] != old_session else None

    wait(up, f"{name} online")
    polled = (time.perf_counter() - t0) * 1000
    logged = (wait(lambda: log_times(log, "registered with master"), f"{name} log")[0] - spawned) * 1000
    p.terminate()
    p.wait()
    wait(lambda: (node(fleet, name) or {}).get("status") != "online", f"{name} offline")
    return polled, logged


def master_first_start(root, insecure):
    """ms from spawning masterd on a fresh data dir to its `listening` line."""
    f = Fleet(root, "1s", insecure=insecure)
    os.makedirs(root)
    try:
        spawned = f.start_master()
        return (time.time() - spawned) * 1000
    finally:
        f.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200, help="runs of each cdnctl command (a, b)")
    ap.add_argument("--enrol-runs", type=int, default=10, help="agent and master starts per mode (c)")
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "tls.md"))
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)
    version = subprocess.run([os.path.join(BIN, "cdnctl"), "--version"], capture_output=True, text=True).stdout.strip()
    root = tempfile.mkdtemp(prefix="cdn-tls-")
    tls = Fleet(os.path.join(root, "tls"), "1s")
    plain = Fleet(os.path.join(root, "plain"), "1s", insecure=True)
    fleets = {"TLS": tls, "plaintext": plain}
    try:
        for f in fleets.values():
            os.makedirs(f.root)
            f.start_master()
            f.agents["agent-1"], _, _ = f.start_agent("agent-1")
        for f in fleets.values():
            wait(lambda: (node(f, "agent-1") or {}).get("status") == "online", "agent-1 online")
        time.sleep(1)

        # a, b: whole cdnctl processes, interleaved
        conn = interleaved(
            {
                "version": [os.path.join(BIN, "cdnctl"), "--version"],
                "whoami plaintext": plain.ctl() + ["whoami"],
                "whoami TLS": tls.ctl() + ["whoami"],
                "exec plaintext": plain.ctl() + ["exec", "agent-1", "--", "true"],
                "exec TLS": tls.ctl() + ["exec", "agent-1", "--", "true"],
            },
            a.runs,
        )

        # c: agent start -> online; fresh (enrols with TLS) and restart
        starts = {(kind, mode): ([], []) for kind in ("fresh", "restart") for mode in fleets}
        for i in range(a.enrol_runs):
            for mode, f in fleets.items():
                polled, logged = start_to_online(f, f"fresh-{i}")
                starts[("fresh", mode)][0].append(polled)
                starts[("fresh", mode)][1].append(logged)
        for i in range(a.enrol_runs):
            for mode, f in fleets.items():
                polled, logged = start_to_online(f, "fresh-0")
                starts[("restart", mode)][0].append(polled)
                starts[("restart", mode)][1].append(logged)
        enrolled = os.path.exists(os.path.join(tls.root, "fresh-0.d", "node.crt"))

        # masterd first start on a fresh data dir
        mstart = {mode: [] for mode in fleets}
        for i in range(a.enrol_runs):
            for mode in fleets:
                mstart[mode].append(master_first_start(os.path.join(root, f"m-{mode}-{i}"), mode == "plaintext"))
    finally:
        for f in fleets.values():
            f.stop()
        shutil.rmtree(root, ignore_errors=True)
    if not enrolled:
        raise SystemExit("the TLS agent kept no certificate: enrolment did not happen as expected")

    med = statistics.median
    ms = lambda v: f"{v:.2f}"  # noqa: E731
    cmd = f"python3 bench/tls.py --runs {a.runs} --enrol-runs {a.enrol_runs}"
    lines = [
        "# TLS versus plaintext (release build, loopback)",
        "",
        f"Command: `{cmd}` (from the repository root; builds the release binaries first).",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2 cores, loopback, release "
        f"({version}, built from the working tree).",
        "Two fleets side by side on 127.0.0.1, each a masterd and one agent (`agent-1`): TLS (the default:",
        "private CA, agents on mutual TLS, cdnctl with `--credential <data_dir>/admin.credential`) and",
        "everything `--insecure` (plaintext, no authentication). Latency = spawn of the whole process here",
        f"to its exit; the commands run interleaved, {WARMUP} warm-up rounds dropped.",
        "",
        "| what | median (ms) | p90 (ms) | p99 (ms) | min (ms) | runs |",
        "|---|---|---|---|---|---|",
    ]
    rows = [
        ("`cdnctl --version` (process start only; floor)", "version"),
        ("`cdnctl --insecure whoami` (plaintext master)", "whoami plaintext"),
        ("`cdnctl --credential … whoami` (TLS master)", "whoami TLS"),
        ("`cdnctl --insecure exec agent-1 -- true` (plaintext)", "exec plaintext"),
        ("`cdnctl --credential … exec agent-1 -- true` (TLS)", "exec TLS"),
    ]
    for label, key in rows:
        v = conn[key]
        lines.append(f"| {label} | {ms(med(v))} | {ms(pct(v, .9))} | {ms(pct(v, .99))} | {ms(min(v))} | {len(v)} |")
    floor = med(conn["version"])
    w_tls, w_plain = med(conn["whoami TLS"]), med(conn["whoami plaintext"])
    e_tls, e_plain = med(conn["exec TLS"]), med(conn["exec plaintext"])
    lines += [
        "",
        f"**TLS handshake + credential load cost per cdnctl invocation: {w_tls - w_plain:.2f} ms** "
        f"(median `whoami` TLS {ms(w_tls)} − plaintext {ms(w_plain)}); above the process-start floor "
        f"({ms(floor)}), a `whoami` takes {ms(w_tls - floor)} ms with TLS and {ms(w_plain - floor)} ms in plaintext.",
        f"`cdnctl exec agent-1 -- true`: TLS − plaintext medians = {e_tls - e_plain:.2f} ms "
        f"({ms(e_tls)} vs {ms(e_plain)}).",
        "",
        "Agent start → node `online` (polled with `cdnctl nodes list -o json`, whose own run time is the",
        "polling granularity: see `whoami` above) and → the agent's \"registered with master\" log line",
        "(spawn time against the log timestamp: no polling). Fresh = new `node.id` and empty `data_dir`;",
        "with TLS that is enrolment (fetch the CA pinned by the join token, make a key, CSR, certificate)",
        "then mutual TLS. Restart = the same agent again with its `data_dir` (mutual TLS, no enrolment).",
        "",
        "| agent start | mode | → online: median (ms) | p90 (ms) | max (ms) | → registered (log): median (ms) | max (ms) | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("fresh", "fresh agentd (new data_dir)"), ("restart", "restart of an enrolled agent")):
        for mode in fleets:
            polled, logged = starts[(kind, mode)]
            what = {
                ("fresh", "TLS"): "TLS: enrolment + mTLS",
                ("fresh", "plaintext"): "plaintext (`--insecure`)",
                ("restart", "TLS"): "TLS: mTLS, no enrolment",
                ("restart", "plaintext"): "plaintext (`--insecure`)",
            }[(kind, mode)]
            lines.append(
                f"| {label} | {what} | {med(polled):.1f} | {pct(polled, .9):.1f} | {max(polled):.1f} | "
                f"{med(logged):.1f} | {max(logged):.1f} | {len(polled)} |"
            )
    for mode in fleets:
        v = mstart[mode]
        what = "TLS: CA, server cert, credential, join token" if mode == "TLS" else "plaintext (`--insecure`)"
        lines.append(
            f"| masterd first start (fresh data dir) → `listening` line | {what} | {med(v):.1f} | "
            f"{pct(v, .9):.1f} | {max(v):.1f} | | | {len(v)} |"
        )
    fl, fp = med(starts[("fresh", "TLS")][1]), med(starts[("fresh", "plaintext")][1])
    rl, rp = med(starts[("restart", "TLS")][1]), med(starts[("restart", "plaintext")][1])
    lines += [
        "",
        f"From the log medians: enrolment adds {fl - rl:.1f} ms to an agent's first start over a restart "
        f"with its certificate ({fl:.1f} vs {rl:.1f}); an enrolled agent's start costs {rl - rp:.1f} ms more "
        f"with mutual TLS than in plaintext ({rl:.1f} vs {rp:.1f}); a fresh agent {fl - fp:.1f} ms more.",
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
