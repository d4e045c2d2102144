#!/usr/bin/env python3
"""Lifecycle figures of the foundation, on release builds over loopback.

Measures, in one run on this machine:
  1. agentd start -> registered (agent log timestamp minus spawn time), N runs;
  2. heartbeat round trip with 3 agents (each agent's own p50/p99 over its
     last 256 heartbeats, as reported to the master);
  3. master restart (SIGKILL, start again) -> all 3 agents registered again,
     measured from the moment the new masterd is spawned and from the kill.

TLS is on, as by default: masterd makes its CA, `admin.credential` and
`join-token` in its data dir; every agent gets `master.join_token_file` and its
own `data_dir` (it enrols on its first start, mutual TLS after); cdnctl gets
`--credential`. The `Fleet` helper here (shared by exec.py, config_push.py and
tls.py) can also run everything with `--insecure` (plaintext, no auth).

Usage: python3 bench/lifecycle.py [--runs N] [--hb-interval 100ms] [--out FILE]
Writes a Markdown report (default bench/results/lifecycle.md) and prints it.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(TOP, "target", "release")
# The user's cdnctl config file and variables must not pick the master or the
# credential: every call here names both (or --insecure).
os.environ["CDNCTL_CONFIG"] = "/nonexistent/x.yml"
for _v in ("CDNCTL_MASTER", "CDNCTL_CREDENTIAL", "CDNCTL_CONTEXT", "AGENTD_JOIN_TOKEN"):
    os.environ.pop(_v, None)
TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def log_times(path, needle):
    """Unix times of log lines containing needle."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if needle in line:
                    m = TS.match(line)
                    if m:
                        frac = m.group(1)
                        base, _, sub = frac.partition(".")
                        t = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
                        epoch = (t - datetime(1970, 1, 1)).total_seconds()
                        out.append(epoch + float("0." + sub))
    except FileNotFoundError:
        pass
    return out


def wait(cond, what, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def write_report(path, lines):
    """Writes the Markdown lines to path (creating its directory) and prints them."""
    report = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(report)
    print(report)


def add_binary_args(ap):
    """--no-build and --bin DIR, as the benchmarks that start a fleet take them."""
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", help="take masterd, agentd and cdnctl from this directory (implies --no-build)")


def use_binaries(a):
    """The binaries --bin names, else a release build (unless --no-build)."""
    global BIN
    if a.bin:
        BIN = os.path.abspath(a.bin)
    elif not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)


def machine():
    """(cores, CPU model, kernel release, RAM in GiB) of this machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return os.cpu_count(), model, os.uname().release, mem


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    i = min(len(v) - 1, round((len(v) - 1) * p))
    return v[i]


class Fleet:
    """One masterd and its agents under root, on 127.0.0.1.

    TLS (the default) unless insecure=True: then masterd, agentd and cdnctl
    all run with --insecure. Every process started is remembered in procs and
    killed by stop().
    """

    def __init__(self, root, hb_interval, insecure=False, master_extra=""):
        self.root = root
        self.hb = hb_interval
        self.insecure = insecure
        # appended to master.yml (for example a compression: section)
        self.master_extra = master_extra
        self.master = None
        self.port = None
        self.agents = {}
        self.procs = []
        self.data = os.path.join(root, "data")
        # written by masterd on its first start (TLS only)
        self.credential = os.path.join(self.data, "admin.credential")
        self.join_token_file = os.path.join(self.data, "join-token")

    def _spawn(self, cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def start_master(self, port=0):
        cfg = os.path.join(self.root, "master.yml")
        with open(cfg, "w") as f:
            f.write(
                f"grpc:\n  addr: 127.0.0.1:{port}\n"
                f"heartbeat:\n  interval: {self.hb}\n  timeout: 10s\n  offline_threshold: 3\n"
                f"data_dir: {self.data}\n"
                f"{self.master_extra}"
            )
        self.mlog = os.path.join(self.root, "masterd.log")
        spawned = time.time()
        self.master = self._spawn(
            [os.path.join(BIN, "masterd"), "-c", cfg] + (["--insecure"] if self.insecure else []),
            stdout=subprocess.PIPE,
            stderr=open(self.mlog, "a"),
            env={**os.environ, "RUST_LOG": "info"},
        )
        line = self.master.stdout.readline().decode()
        m = re.search(r"grpc=127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"masterd did not start: {line!r}")
        self.port = int(m.group(1))
        mm = re.search(r"metrics=127\.0\.0\.1:(\d+)", line)
        self.metrics_port = int(mm.group(1)) if mm else None
        if not self.insecure and not os.path.exists(self.join_token_file):
            raise SystemExit(f"masterd wrote no {self.join_token_file}")
        return spawned

    def start_agent(self, name, logname=None, extra="", data_dir=None):
        """Starts agentd for node name; its key and certificate live in
        data_dir (default: root/<name>.d, so a restart reuses them and the
        first start enrols with the master's join-token file)."""
        cfg = os.path.join(self.root, f"{name}.yml")
        data_dir = data_dir or os.path.join(self.root, f"{name}.d")
        token = "" if self.insecure else f"  join_token_file: {self.join_token_file}\n"
        with open(cfg, "w") as f:
            f.write(
                f"master:\n  addr: 127.0.0.1:{self.port}\n  dial_timeout: 2s\n{token}"
                f"heartbeat:\n  interval: {self.hb}\n  timeout: 5s\n"
                f"status:\n  collect_interval: 1s\n  report_interval: 1s\n"
                f"node:\n  id: {name}\n"
                f"data_dir: {data_dir}\n"
                f"{extra}"
            )
        log = os.path.join(self.root, (logname or name) + ".log")
        spawned = time.time()
        p = self._spawn(
            [os.path.join(BIN, "agentd"), "-c", cfg] + (["--insecure"] if self.insecure else []),
            stdout=subprocess.DEVNULL,
            stderr=open(log, "w"),
        )
        return p, log, spawned

    def ctl(self):
        """The cdnctl command line up to the subcommand."""
        auth = ["--insecure"] if self.insecure else ["--credential", self.credential]
        return [os.path.join(BIN, "cdnctl"), *auth, "--master", f"127.0.0.1:{self.port}"]

    def ctl_json(self, *args):
        out = subprocess.run(
            [*self.ctl(), *args, "-o", "json"],
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout) if out.returncode == 0 else None

    def stop(self):
        """Kills every process this fleet started (by its Popen handle)."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--hb-interval", default="100ms")
    ap.add_argument("--hb-seconds", type=float, default=30.0)
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "lifecycle.md"))
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)
    root = tempfile.mkdtemp(prefix="cdn-bench-")
    fleet = Fleet(root, a.hb_interval)
    try:
        fleet.start_master()

        # 1. agentd start -> registered. The first start enrols (key, CSR,
        # certificate); it is reported apart, the N runs are starts of the
        # enrolled agent (mutual TLS), as every later start in production.
        p, log, spawned = fleet.start_agent("probe", "probe-enrol")
        enrol_ms = (wait(lambda: log_times(log, "registered with master"), "probe enrolment")[0] - spawned) * 1000
        p.terminate()
        p.wait()
        reg = []
        for i in range(a.runs):
            p, log, spawned = fleet.start_agent("probe", f"probe-{i}")
            t = wait(lambda: log_times(log, "registered with master"), "probe registration")[0]
            reg.append((t - spawned) * 1000)
            p.terminate()
            p.wait()

        # 2. heartbeat RTT with 3 agents
        for n in ("agent-1", "agent-2", "agent-3"):
            fleet.agents[n], _, _ = fleet.start_agent(n)
        time.sleep(a.hb_seconds)
        nodes = wait(lambda: fleet.ctl_json("nodes", "list", "--status", "online"), "node list")
        hb = {
            n["name"]: (n["heartbeat_rtt_p50_us"], n["heartbeat_rtt_p99_us"])
            for n in nodes
            if n["name"].startswith("agent-") and n.get("heartbeat_rtt_p50_us")
        }

        # 3. master restart -> 3 agents back
        back_from_start, back_from_kill = [], []
        for _ in range(a.restarts):
            before = len(log_times(fleet.mlog, "node registered"))
            killed = time.time()
            fleet.master.kill()
            fleet.master.wait()
            spawned = fleet.start_master(fleet.port)
            times = wait(
                lambda: (lambda t: t if len(t) >= before + 3 else None)(
                    log_times(fleet.mlog, "node registered")
                ),
                "3 agents back",
            )
            last = max(times[before:before + 3])
            back_from_start.append((last - spawned) * 1000)
            back_from_kill.append((last - killed) * 1000)
            time.sleep(0.5)
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)

    cpu = subprocess.run(["sh", "-c", "nproc; uname -r"], capture_output=True, text=True).stdout.split()
    lines = [
        "# Lifecycle figures (release build, loopback)",
        "",
        f"Measured {datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')} on {cpu[0]} cores, kernel {cpu[1]};",
        f"command: `python3 bench/lifecycle.py --runs {a.runs} --restarts {a.restarts} --hb-interval {a.hb_interval}`.",
        "",
        "| figure | median | p99 | max | samples |",
        "|---|---|---|---|---|",
        f"| agentd start → registered (ms) | {statistics.median(reg):.1f} | {pct(reg, .99):.1f} | {max(reg):.1f} | {len(reg)} |",
    ]
    for name in sorted(hb):
        p50, p99 = hb[name]
        lines.append(f"| heartbeat RTT {name} (ms; agent's last 256) | {p50/1000:.3f} | {p99/1000:.3f} | | 256 |")
    lines += [
        f"| master restart: spawn → 3 agents registered (ms) | {statistics.median(back_from_start):.1f} | {pct(back_from_start, .99):.1f} | {max(back_from_start):.1f} | {len(back_from_start)} |",
        f"| master restart: SIGKILL → 3 agents registered (ms) | {statistics.median(back_from_kill):.1f} | {pct(back_from_kill, .99):.1f} | {max(back_from_kill):.1f} | {len(back_from_kill)} |",
        "",
        f"TLS on (the default): the agentd starts are of an enrolled agent (mutual TLS); its first start,",
        f"with enrolment (key, CSR, certificate), took {enrol_ms:.1f} ms. TLS vs plaintext: bench/results/tls.md.",
        "Reconnect policy: master defaults (base 100ms, max 30s, jitter 0.3). Seed targets: heartbeat",
        "latency 5 ms, recovery after a disconnect 500 ms.",
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    sys.exit(main())
