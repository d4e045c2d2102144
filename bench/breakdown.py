#!/usr/bin/env python3
"""Where one exec, one 1 MiB push and 200 MB streamed out and in spend
their time: wall time and the CPU each process spends per operation (cdnctl, its connection holder, the
master, the agent with its guard and the remote program), one agent on
mutual TLS over loopback, release binaries. With --perf, also a
`perf record` of the master and the agent over the runs (reports in the
run's directory, printed at the end).

Usage: python3 bench/breakdown.py [--runs 100] [--stream-runs 3] [--persist 60s] [--perf] [--no-build | --bin DIR]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lifecycle  # noqa: E402
from lifecycle import Fleet, wait  # noqa: E402
from peers import PEER, SP, holders, payload, proc_cpu  # noqa: E402


def cpu_of(pids):
    return proc_cpu(pids)


def measure(label, cmds, servers, root, runs, stdin=None):
    """Runs each command of cmds (a function of the run index) runs times,
    its stdin the file stdin (else /dev/null); prints wall median and CPU
    per run of the client (with children) and of each serving process."""
    walls, client = [], []
    hold = holders(root)
    names = {**servers, **{f"holder {p}": p for p in hold}}
    before = {n: cpu_of([p]) for n, p in names.items()}
    for i in range(runs):
        cmd = cmds(i)
        t0 = time.perf_counter()
        r0 = os.times()
        with open(stdin or os.devnull, "rb") as given:
            p = subprocess.run(cmd, stdin=given, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        r1 = os.times()
        walls.append(time.perf_counter() - t0)
        client.append((r1.children_user - r0.children_user) + (r1.children_system - r0.children_system))
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    after = {n: cpu_of([p]) for n, p in names.items()}
    print(f"\n{label}: {runs} runs, wall median {statistics.median(walls) * 1e3:.2f} ms "
          f"(p10 {sorted(walls)[runs // 10] * 1e3:.2f}, p90 {sorted(walls)[runs * 9 // 10] * 1e3:.2f})")
    print(f"  cdnctl (with children): {sum(client) / runs * 1e3:.2f} ms CPU per run")
    for n in names:
        print(f"  {n}: {(after[n] - before[n]) / runs * 1e3:.2f} ms CPU per run")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--push-runs", type=int, default=30)
    ap.add_argument("--payload", default="cfg-1m.yaml", help="the peer scripts' payload to push (cfg-10k.yaml, cfg-1m.yaml)")
    ap.add_argument("--stream-runs", type=int, default=3, help="runs of 200 MB out of the node, and of 200 MB into it")
    ap.add_argument("--persist", default="60s", help="cdnctl --persist DURATION; 0 for none")
    ap.add_argument("--perf", action="store_true", help="perf record the master and the agent")
    lifecycle.add_binary_args(ap)
    a = ap.parse_args()
    lifecycle.use_binaries(a)
    root = tempfile.mkdtemp(prefix="cdn-breakdown-")
    fleet = Fleet(root, "1s")
    perfs = []
    try:
        fleet.start_master()
        extra = f"config:\n  path: {root}/agent-1/edge.yml\n  min_free_bytes: 0\n"
        fleet.agents["agent-1"], _, _ = fleet.start_agent("agent-1", extra=extra)
        wait(lambda: len(fleet.ctl_json("nodes", "list", "--status", "online") or []) == 1,
             "agent online", timeout=60)
        ctl = fleet.ctl()
        if a.persist != "0":
            os.environ["XDG_RUNTIME_DIR"] = os.path.join(root, "run")
            os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
            ctl = [*ctl, "--persist", a.persist]
        subprocess.run([*ctl, "exec", "agent-1", "--", "true"], check=True)
        servers = {"masterd": fleet.master.pid, "agentd (with guard and program)": fleet.agents["agent-1"].pid}
        if a.perf:
            for name, pid in (("masterd", fleet.master.pid), ("agentd", fleet.agents["agent-1"].pid)):
                out = os.path.join(root, f"perf-{name}.data")
                perfs.append((out, subprocess.Popen(
                    ["perf", "record", "-g", "-o", out, "-p", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            time.sleep(0.5)
        measure("exec agent-1 -- true", lambda i: [*ctl, "exec", "agent-1", "--", "true"],
                servers, root, a.runs)
        src = os.path.join(SP, "payload", a.payload)
        if not os.path.exists(src):
            print(f"\n(no payload at {src}: run {PEER}/setup.sh for it)")
        else:
            push_file = os.path.join(root, "push.yaml")

            def push(i):
                with open(push_file, "w") as f:
                    f.write(payload(src, i + 1))
                return [*ctl, "config", "push", push_file, "-o", "json"]
            measure(f"config push {a.payload} -> 1 node", push, servers, root, a.push_runs)
        if a.stream_runs:
            measure("stream out: exec agent-1 -- head -c 200000000 /dev/zero",
                    lambda i: [*ctl, "exec", "agent-1", "--", "head", "-c", "200000000", "/dev/zero"],
                    servers, root, a.stream_runs)
            zeros = os.path.join(root, "zeros-200m")
            with open(zeros, "wb") as f:
                f.truncate(200_000_000)
            measure("stream in: 200 MB file | exec agent-1 -- wc -c",
                    lambda i: [*ctl, "exec", "agent-1", "--", "wc", "-c"],
                    servers, root, a.stream_runs, stdin=zeros)
    finally:
        for _, p in perfs:
            p.send_signal(2)
            p.wait()
        fleet.stop()
    for out, _ in perfs:
        print(f"\nperf report -i {out} --no-children --sort symbol")


if __name__ == "__main__":
    main()
