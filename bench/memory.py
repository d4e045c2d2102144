#!/usr/bin/env python3
"""What the master keeps resident (release build, loopback, TLS on).

Two figures the README and RELIABILITY.md (D10) promise:
  * stalled exec readers: N sessions of `cat /dev/zero` whose cdnctl nobody
    reads; the master's RSS growth per session once flow control has stopped
    every remote program (RSS steady), and the streaming rate of one session
    that is read (`head -c 200000000 /dev/zero`, median of a few runs);
  * config content read: a fresh master, VERSIONS pushes of 4 MiB, then
    `config show` of each version ROUNDS times; RSS after each phase and
    after some idle seconds.

Usage: python3 bench/memory.py [--bin DIR] [--stalled 20] [--versions 10]
       [--rounds 3] [--only stall|config] [--out FILE]
--bin picks the binaries (default target/release, built first); figures go
to stdout and, with --out, to a Markdown file.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lifecycle  # noqa: E402
from lifecycle import Fleet, TOP, write_report  # noqa: E402

MiB = 1 << 20


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def steady_rss(pid, step=0.5, same=4, limit=60.0):
    """RSS once it has not changed by more than 64 KiB for `same` readings."""
    t_end = time.time() + limit
    last, n = rss_kib(pid), 0
    while time.time() < t_end:
        time.sleep(step)
        now = rss_kib(pid)
        n = n + 1 if abs(now - last) <= 64 else 0
        last = now
        if n >= same:
            break
    return last


def wait(cond, what, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def remote_count(marker):
    out = subprocess.run(["pgrep", "-f", "-x", marker], capture_output=True, text=True).stdout
    return len(out.split())


def stall(fleet, n, lines):
    pid = fleet.master.pid
    # A first session of each kind warms up the allocator and the recorder.
    subprocess.run([*fleet.ctl(), "exec", "agent-1", "--", "true"], check=True, stderr=subprocess.DEVNULL)
    base = steady_rss(pid)
    readers = []
    for _ in range(n):
        readers.append(
            subprocess.Popen(
                [*fleet.ctl(), "exec", "agent-1", "--", "cat", "/dev/zero"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,  # never read
                stderr=subprocess.DEVNULL,
            )
        )
    wait(lambda: remote_count("cat /dev/zero") >= n, f"{n} remote cat running")
    held = steady_rss(pid)
    per = (held - base) / n
    lines.append(
        f"| {n} stalled readers (`cat /dev/zero`, cdnctl unread) | {base / 1024:.1f} MiB | "
        f"{held / 1024:.1f} MiB | {per / 1024:.2f} MiB ({per * 1024 / 1e6:.2f} MB) per session |"
    )
    for r in readers:
        r.kill()
        r.wait()
    wait(lambda: remote_count("cat /dev/zero") == 0, "the remote cat ended")
    after = steady_rss(pid)
    lines.append(f"| readers gone | | {after / 1024:.1f} MiB | |")
    # One session read to the end: the streaming rate.
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        p = subprocess.run(
            [*fleet.ctl(), "exec", "agent-1", "--", "head", "-c", "200000000", "/dev/zero"],
            stdout=subprocess.PIPE,
            check=True,
        )
        dt = time.perf_counter() - t0
        assert len(p.stdout) == 200_000_000
        rates.append(200 / dt)
    lines.append(
        f"| stream out 200 MB, 5 runs | | | median {statistics.median(rates):.0f} MB/s "
        f"(range {min(rates):.0f}–{max(rates):.0f}) |"
    )


def yaml_4mib(k):
    rng = random.Random(k)
    out, size, i = ["vhosts:\n"], 8, 0
    while size < 4 * MiB - 200:
        r = (
            f"  - name: site-{k:03d}-{i:07d}.example.net\n"
            f"    origin: origin-{rng.randrange(400):03d}.backend.example.net\n"
            f"    tag: \"{rng.getrandbits(64):016x}\"\n"
        )
        out.append(r)
        size += len(r)
        i += 1
    return "".join(out)


def config(fleet, root, versions, rounds, lines):
    pid = fleet.master.pid
    fresh = steady_rss(pid)
    lines.append(f"| fresh master | {fresh / 1024:.1f} MiB |")
    for k in range(versions):
        path = os.path.join(root, f"v{k}.yaml")
        with open(path, "w") as f:
            f.write(yaml_4mib(k))
        subprocess.run(
            [*fleet.ctl(), "config", "push", path, "--timeout", "30s"],
            check=True, capture_output=True,
        )
    pushed = steady_rss(pid)
    lines.append(f"| after {versions} pushes of 4 MiB | {pushed / 1024:.1f} MiB |")
    hist = fleet.ctl_json("config", "history")
    nums = [str(v["version"]) for v in hist][:versions]
    for _ in range(rounds):
        for v in nums:
            subprocess.run(
                [*fleet.ctl(), "config", "show", v],
                check=True, stdout=subprocess.DEVNULL,
            )
    shown = steady_rss(pid)
    lines.append(f"| after `config show` of each, {rounds} times | {shown / 1024:.1f} MiB |")
    time.sleep(10)
    idle = steady_rss(pid)
    lines.append(f"| 10 s later | {idle / 1024:.1f} MiB |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("--stalled", type=int, default=20)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["stall", "config"])
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.bin:
        lifecycle.BIN = os.path.abspath(a.bin)
    else:
        subprocess.run(
            ["cargo", "build", "--release", "-p", "masterd", "-p", "agentd", "-p", "cdnctl", "--quiet"],
            cwd=TOP, check=True,
        )
    lines = [
        "# Master memory (release build, loopback, TLS)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: "
        f"`python3 bench/memory.py --stalled {a.stalled} --versions {a.versions} --rounds {a.rounds}`.",
        "RSS is the master's VmRSS once steady (unchanged within 64 KiB for 2 s).",
        "",
    ]
    if a.only in (None, "stall"):
        root = tempfile.mkdtemp(prefix="cdn-mem-")
        fleet = Fleet(root, "1s", master_extra=f"pool:\n  size: {a.stalled + 4}\n")
        try:
            fleet.start_master()
            fleet.start_agent("agent-1")
            wait(lambda: len(fleet.ctl_json("nodes", "list", "--status", "online") or []) == 1,
                 "agent online")
            lines += ["| exec | master RSS before | with them | growth |", "|---|---|---|---|"]
            stall(fleet, a.stalled, lines)
        finally:
            fleet.stop()
            shutil.rmtree(root, ignore_errors=True)
        lines.append("")
    if a.only in (None, "config"):
        root = tempfile.mkdtemp(prefix="cdn-mem-")
        fleet = Fleet(root, "1s")
        try:
            fleet.start_master()
            lines += ["| config content | master RSS |", "|---|---|"]
            config(fleet, root, a.versions, a.rounds, lines)
        finally:
            fleet.stop()
            shutil.rmtree(root, ignore_errors=True)
    if a.out:
        write_report(a.out, lines)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
