#!/usr/bin/env python3
"""Config push figures, release build over loopback.

For 1, 3 and 20 agents and a 10 KiB and a 1 MiB YAML file (the same payloads
as ../shared/peers/ssh/gen_payload.py when it is there), pushes a fresh
version N times and records:
  * wall time of the whole `cdnctl config push` process (spawn to exit:
    connect, send, store, fan-out, every agent's fsynced apply and ack);
  * the master's own time from storing the version to the last ack;
  * bytes of the file and bytes sent per agent on the wire (gzip);
  * the master's CPU time (user + system, /proc/<pid>/stat) per push,
    over the timed pushes (heartbeats of the agents included).

TLS on (the default): agents enrolled with the master's join token, cdnctl
with --credential (see Fleet in lifecycle.py).

Usage: python3 bench/config_push.py [--pushes 20] [--agents 1,3,20] [--out FILE]
       [--bin DIR]   (binaries to run instead of building target/release)
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lifecycle  # noqa: E402
from lifecycle import Fleet, TOP, pct, wait, write_report  # noqa: E402

PEER_GEN = os.path.join(TOP, "..", "shared", "peers", "ssh", "gen_payload.py")


def whole_records(text):
    """text cut after its last whole `  - name:` record and padded with a
    comment to the same size: the master refuses YAML that ends mid-record,
    and the peer's payloads (like a plain cut) do."""
    body = text[: text.rindex("\n  - name:") + 1]
    pad = len(text) - len(body)
    return body + ("#" + "x" * (pad - 2) + "\n" if pad >= 2 else "")


def payloads(root):
    if os.path.exists(PEER_GEN):
        subprocess.run([sys.executable, PEER_GEN, root], check=True, capture_output=True)
        return {
            "10 KiB": whole_records(open(os.path.join(root, "cfg-10k.yaml")).read()),
            "1 MiB": whole_records(open(os.path.join(root, "cfg-1m.yaml")).read()),
        }
    rec = "".join(f"  - name: site-{i:06d}.example.net\n    ttl: {i % 7 * 60}\n" for i in range(40000))
    return {
        "10 KiB": whole_records("sites:\n" + rec[:10200]),
        "1 MiB": whole_records("sites:\n" + rec[: 1 << 20]),
    }


def start_fleet(root, n, master_extra=""):
    """A master (master_extra appended to its config) and agent-1..n, each
    managing root/<name>/edge.yml, all online."""
    fleet = Fleet(root, "1s", master_extra=master_extra)
    fleet.start_master()
    for i in range(1, n + 1):
        name = f"agent-{i}"
        extra = f"config:\n  path: {root}/{name}/edge.yml\n  min_free_bytes: 0\n"
        fleet.agents[name], _, _ = fleet.start_agent(name, extra=extra)
    wait(
        lambda: len(fleet.ctl_json("nodes", "list", "--status", "online") or []) == n,
        f"{n} agents online",
    )
    return fleet


def cpu_ms(pid):
    """User + system CPU time of process pid so far, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def push_series(fleet, root, text, pushes, n):
    """Pushes a fresh version of text pushes times (after 2 warm-up pushes),
    each applied by all n agents; returns the wall times and the master's
    times (ms), the bytes on the wire, the file size of the last push and
    the master's CPU ms per timed push."""
    wall, master, wire, size = [], [], 0, 0
    cpu0 = None
    for k in range(pushes + 2):
        if k == 2:
            cpu0 = cpu_ms(fleet.master.pid)
        path = os.path.join(root, "push.yaml")
        with open(path, "w") as f:
            f.write(text.rstrip("\n")[: len(text) - 16] + f"\n# push {k:08d}\n")
        t0 = time.perf_counter()
        out = subprocess.run(
            [*fleet.ctl(), "config", "push", path, "-o", "json"],
            capture_output=True, text=True,
        )
        dt = (time.perf_counter() - t0) * 1000
        if out.returncode != 0:
            raise SystemExit(f"push failed: {out.stderr}\n{out.stdout}")
        rep = json.loads(out.stdout)
        assert rep["applied"] == n, rep
        if k < 2:
            continue  # warm-up
        wall.append(dt)
        master.append(max(r["duration_ms"] for r in rep["results"]))
        wire, size = rep["wire_bytes"], rep["size"]
    return wall, master, wire, size, (cpu_ms(fleet.master.pid) - cpu0) / pushes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=20)
    ap.add_argument("--agents", default="1,3,20")
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "config_push.md"))
    ap.add_argument("--bin", default=None)
    a = ap.parse_args()
    if a.bin:
        lifecycle.BIN = os.path.abspath(a.bin)
    else:
        subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)

    rows = []
    for n in [int(x) for x in a.agents.split(",")]:
        root = tempfile.mkdtemp(prefix="cdn-push-")
        fleet = start_fleet(root, n)
        try:
            for label, text in payloads(root).items():
                wall, master, wire, size, cpu = push_series(fleet, root, text, a.pushes, n)
                rows.append((n, label, wall, master, size, wire, cpu))
        finally:
            fleet.stop()
            shutil.rmtree(root, ignore_errors=True)

    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Config push figures (release build, loopback)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu} cores; each figure over "
        f"{a.pushes} pushes of a fresh version (2 warm-up pushes dropped);",
        f"command: `python3 bench/config_push.py --pushes {a.pushes} --agents {a.agents}`.",
        "TLS on (the default): agents on mutual TLS, cdnctl with `--credential` (the admin credential).",
        "Wall = spawn of `cdnctl config push` to its exit, every agent having written, fsynced and acknowledged.",
        "Master = the master's time from storing the version to the last acknowledgement.",
        "Master CPU = the master's user + system time over the timed pushes, per push (heartbeats included).",
        "",
        "| agents | file | wall median (ms) | wall p99 | master median (ms) | master CPU per push (ms) | file bytes | bytes on the wire per agent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, label, wall, master, size, wire, cpu in rows:
        lines.append(
            f"| {n} | {label} | {statistics.median(wall):.1f} | {pct(wall, .99):.1f} | "
            f"{statistics.median(master):.1f} | {cpu:.1f} | {size} | {wire} ({100 * (1 - wire / size):.0f}% less) |"
        )
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
