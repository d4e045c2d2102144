#!/usr/bin/env python3
"""One agent's connection dropped under it: time to recover (the seed's
500 ms), release build over loopback, TLS on.

The agent's TCP connection to the master is destroyed with `ss -K` (the
kernel aborts the socket, as a reset or a dead NAT entry would); the agent
notices, backs off (master default: 100 ms base, ± 30 % jitter) and
registers again. Recovery = from the kill to the agent's "reconnected to
master" log line (its `down_for_ms` is also reported), N times.

Usage: python3 bench/drop.py [--drops 20] [--out FILE]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecycle import Fleet, TOP, pct, wait, write_report  # noqa: E402


def reconnects(log):
    with open(log) as f:
        return [int(m.group(1)) for m in re.finditer(r"reconnected to master.*down_for_ms=(\d+)", f.read())]


def drop_series(root, drops):
    """One master and agent-1 under root; drops its connection drops times.
    Returns (kill -> reconnected ms, the agent's own down_for_ms), each a list."""
    fleet = Fleet(root, "1s")
    recover, down = [], []
    try:
        fleet.start_master()
        _, log, _ = fleet.start_agent("agent-1")
        wait(lambda: len(fleet.ctl_json("nodes", "list", "--status", "online") or []) == 1, "agent online")
        for _ in range(drops):
            time.sleep(1.5)  # a healthy session first (an answered heartbeat resets the backoff)
            before = len(reconnects(log))
            t0 = time.time()
            r = subprocess.run(
                ["ss", "-K", "dst", f"127.0.0.1:{fleet.port}"], capture_output=True, text=True
            )
            if r.returncode != 0:
                raise SystemExit(f"ss -K failed (needs root): {r.stderr}")
            wait(lambda: len(reconnects(log)) > before, "agent reconnected", timeout=30)
            recover.append((time.time() - t0) * 1000)
            down.append(reconnects(log)[-1])
    finally:
        fleet.stop()
    return recover, down


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drops", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "drop.md"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)
    root = tempfile.mkdtemp(prefix="cdn-drop-")
    try:
        recover, down = drop_series(root, a.drops)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        "# Connection drop: time to recover (release build, loopback, TLS on)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2 cores; command: `python3 bench/drop.py --drops {a.drops}`",
        "(needs root for `ss -K`). The agent's connection is destroyed by the kernel; recovery = kill to the",
        "agent's \"reconnected to master\" log line (polled every 5 ms). Seed target: 500 ms.",
        "",
        "| figure | median (ms) | p90 (ms) | max (ms) | drops |",
        "|---|---|---|---|---|",
        f"| kill → reconnected (log line seen) | {statistics.median(recover):.0f} | {pct(recover, .9):.0f} | {max(recover):.0f} | {len(recover)} |",
        f"| agent's own down_for_ms | {statistics.median(down):.0f} | {pct(down, .9):.0f} | {max(down):.0f} | {len(down)} |",
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
