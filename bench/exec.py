#!/usr/bin/env python3
"""Exec figures, release build over loopback.

  * `cdnctl exec agent-1 -- true`: whole cdnctl process, spawn to exit, N runs;
  * fan-out `cdnctl exec --all -- true` to 20 agents;
  * streaming: `seq 1 2000000` and 1 GiB of zeros through cdnctl to a reader
    here, MB/s, checked byte for byte (seq) and by count (zeros);
  * floor: spawning `sh -c true` locally, for scale.

TLS on (the default): agents enrolled with the master's join token, cdnctl
with --credential (see Fleet in lifecycle.py; TLS vs plaintext: tls.py).

Usage: python3 bench/exec.py [--runs 100] [--out FILE]
"""

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecycle import Fleet, TOP, pct, wait, write_report  # noqa: E402


def timed(cmd, runs):
    out = []
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t0) * 1000
        if r.returncode != 0:
            raise SystemExit(f"{cmd}: exit {r.returncode}: {r.stderr.decode()}")
        out.append(dt)
    return out[3:]  # warm-up dropped


def stream(cmd, expect_sha=None, expect_len=None, runs=3):
    rates = []
    for _ in range(runs):
        h = hashlib.sha256()
        n = 0
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        while True:
            b = p.stdout.read(1 << 20)
            if not b:
                break
            n += len(b)
            if expect_sha:
                h.update(b)
        p.wait()
        dt = time.perf_counter() - t0
        assert p.returncode == 0, cmd
        if expect_sha:
            assert h.hexdigest() == expect_sha, "byte-for-byte mismatch"
        if expect_len:
            assert n == expect_len, (n, expect_len)
        rates.append(n / dt / 1e6)
    return statistics.median(rates), n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "exec.md"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)
    root = tempfile.mkdtemp(prefix="cdn-exec-")
    fleet = Fleet(root, "1s")
    rows = []
    try:
        fleet.start_master()
        for i in range(1, 21):
            fleet.agents[f"agent-{i}"], _, _ = fleet.start_agent(f"agent-{i}")
        wait(lambda: len(fleet.ctl_json("nodes", "list", "--status", "online") or []) == 20, "20 agents")
        time.sleep(1)
        ctl = fleet.ctl()  # cdnctl --credential <data>/admin.credential --master 127.0.0.1:PORT

        floor = timed(["sh", "-c", "true"], a.runs)
        one = timed(ctl + ["exec", "agent-1", "--", "true"], a.runs)
        fan = timed(ctl + ["exec", "--all", "--", "true"], max(20, a.runs // 5))
        rows += [
            ("local `sh -c true` (floor)", floor),
            ("`cdnctl exec agent-1 -- true`", one),
            ("`cdnctl exec --all -- true` (20 agents)", fan),
        ]
        seq = subprocess.run(["seq", "1", "2000000"], capture_output=True).stdout
        seq_rate, seq_n = stream(
            ctl + ["exec", "agent-1", "--", "seq", "1", "2000000"],
            expect_sha=hashlib.sha256(seq).hexdigest(),
        )
        zero_rate, zero_n = stream(
            ctl + ["exec", "agent-1", "--", "head", "-c", str(1 << 30), "/dev/zero"],
            expect_len=1 << 30,
        )
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)

    lines = [
        "# Exec figures (release build, loopback)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, 20 agents "
        f"connected; command: `python3 bench/exec.py --runs {a.runs}`.",
        "TLS on (the default): agents on mutual TLS, cdnctl with `--credential` (the admin credential).",
        "Latency = spawn of the command here to its exit (cdnctl process start, connect, run, output, exit).",
        "",
        "| what | median (ms) | p99 (ms) | min (ms) | runs |",
        "|---|---|---|---|---|",
    ]
    for name, v in rows:
        lines.append(f"| {name} | {statistics.median(v):.2f} | {pct(v, .99):.2f} | {min(v):.2f} | {len(v)} |")
    lines += [
        "",
        "| stream through `cdnctl exec` to a local reader | MB/s (median of 3) | bytes |",
        "|---|---|---|",
        f"| `seq 1 2000000` (byte-for-byte checked) | {seq_rate:.0f} | {seq_n} |",
        f"| 1 GiB of zeros (`head -c 1G /dev/zero`) | {zero_rate:.0f} | {zero_n} |",
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
