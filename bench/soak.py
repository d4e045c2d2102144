#!/usr/bin/env python3
"""Soak: a few hundred hollow agents (cdn-swarm) and a few real agentd
against one masterd (release build, loopback, TLS on), with heartbeats,
exec sessions and config pushes for a bounded time while agents, the swarm
and the master are SIGKILLed and started again on a schedule.

At the end (after the last fault, everything running again) it checks:
  - every node registered, online and in sync on the newest version; the
    real agents' files are that version byte for byte;
  - every version cdnctl acknowledged is in the history, byte for byte, and
    no version number was acknowledged for two contents;
  - every exec ended with an exit code (the command's own, 124 for the
    sessions that outlive their --timeout, or 255 with a clear error on
    stderr), none hung past its ceiling;
  - no leaked process (no command of an exec session still running) and no
    leaked temporary file (`*.tmp-<pid>` of a dead process) in any agent's
    directory;
  - master RSS back near its baseline (measured after the fleet first
    registered, and again after the run quiesced).

Prints a summary and writes bench/results/soak.md and soak.json.

Usage: python3 bench/soak.py [--duration 600] [--hollow 300] [--real 3]
           [--master-kill-every 120] [--agent-kill-every 30]
           [--swarm-kill-every 200] [--push-every 8] [--exec-every 1]
           [--seed N]
Build first: cargo build --release (the script does not build).
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lifecycle  # noqa: E402
from lifecycle import TOP, Fleet, machine, pct, wait, write_report  # noqa: E402

RESULTS = os.path.join(TOP, "bench", "results")
BIN = lifecycle.BIN
# Every hollow agent comes from 127.0.0.1: lift the per-address limits.
MASTER_EXTRA = (
    "limits:\n  register_rate: 0\n  auth_failures_per_minute: 100000\n  auth_failure_burst: 100000\n"
)
# Longest any cdnctl call may take before it counts as hung (every call
# below has its own, much shorter, timeout).
CEILING = 120
# A marker in every exec session's command line, to find leaked ones.
MARK = "cdn-soak-mark"


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def ctl(fleet, *args, timeout=CEILING):
    """Runs cdnctl; (exit code or None when it hung, stdout, stderr, seconds)."""
    start = time.time()
    try:
        p = subprocess.run([*fleet.ctl(), *args], capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.time() - start
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out, err, time.time() - start


class Swarm:
    """One cdn-swarm process of count hollow agents."""

    def __init__(self, fleet, root, count):
        self.fleet, self.root, self.count = fleet, root, count
        self.data = os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else root, f"soak-swarm-{os.getpid()}")
        self.template = os.path.join(root, "swarm.yml")
        with open(self.template, "w") as f:
            f.write(
                f"master:\n  addr: 127.0.0.1:{fleet.port}\n  dial_timeout: 5s\n"
                f"  join_token_file: {fleet.join_token_file}\n"
                "heartbeat:\n  interval: 1s\n  timeout: 5s\n"
                "status:\n  collect_interval: 5s\n  report_interval: 5s\n  degraded_disk_percent: 100\n"
                "config:\n  min_free_bytes: 0\n"
                "node:\n  labels:\n    role: hollow\n"
            )
        self.stats_file = os.path.join(root, "swarm-stats.json")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "cdn-swarm"), "-c", self.template, "--count", str(self.count),
             "--data-dir", self.data, "--ramp", "5s",
             "--stats", self.stats_file, "--stats-interval", "1s"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.root, "swarm.log"), "a"),
        )

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


def ctl_json(fleet, *args):
    """cdnctl ARGS -o json, parsed; None when it fails or prints no JSON."""
    code, out, _, _ = ctl(fleet, *args, "-o", "json", "--request-timeout", "10s", timeout=60)
    if code != 0:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def nodes(fleet):
    return ctl_json(fleet, "nodes", "list")


def status(fleet):
    return ctl_json(fleet, "config", "status")


def stored_version(out, err):
    try:
        r = json.loads(out)
        if not r.get("unchanged") and not r.get("dry_run") and r.get("version"):
            return r["version"]
    except ValueError:
        pass
    m = re.search(r"version (\d+) was stored", err)
    return int(m.group(1)) if m else None


def temp_leaks(dirs):
    """`*.tmp-<pid>` files under dirs whose process is gone."""
    leaks = []
    for d in dirs:
        for base, _, files in os.walk(d):
            for name in files:
                m = re.search(r"\.tmp-(\d+)$", name)
                if m and not os.path.exists(f"/proc/{m.group(1)}"):
                    leaks.append(os.path.join(base, name))
    return leaks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of load and faults")
    ap.add_argument("--hollow", type=int, default=300)
    ap.add_argument("--real", type=int, default=3)
    ap.add_argument("--master-kill-every", type=float, default=120)
    ap.add_argument("--agent-kill-every", type=float, default=30)
    ap.add_argument("--swarm-kill-every", type=float, default=200)
    ap.add_argument("--push-every", type=float, default=8)
    ap.add_argument("--exec-every", type=float, default=1)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(RESULTS, "soak.md"))
    ap.add_argument("--bin", default=lifecycle.BIN, help="directory of the binaries (default target/release)")
    a = ap.parse_args()
    global BIN
    BIN = lifecycle.BIN = os.path.abspath(a.bin)
    # SIGTERM stops the run through the cleanup below (every process it
    # started is killed, its directories removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seed = a.seed if a.seed is not None else int(time.time())
    rng = random.Random(seed)
    for b in ("masterd", "agentd", "cdnctl", "cdn-swarm"):
        if not os.path.exists(os.path.join(BIN, b)):
            raise SystemExit(f"{BIN}/{b} missing: run `cargo build --release` first")

    root = tempfile.mkdtemp(prefix="cdn-soak-")
    fleet = Fleet(root, "1s", master_extra=MASTER_EXTRA)
    swarm = None
    real = {}
    pushes, acked, execs, faults = [], {}, [], []
    reused = []
    try:
        fleet.start_master()
        log(f"master on 127.0.0.1:{fleet.port}; seed {seed}; root {root}")

        def start_real(name):
            edge = os.path.join(root, name, "edge.yml")
            os.makedirs(os.path.dirname(edge), exist_ok=True)
            p, _, _ = fleet.start_agent(name, logname=name, extra=f"config:\n  path: {edge}\n  min_free_bytes: 0\n")
            real[name] = p

        for i in range(1, a.real + 1):
            start_real(f"real-{i}")
        swarm = Swarm(fleet, root, a.hollow)
        total = a.hollow + a.real
        # Connected: online, or degraded (a busy machine's full disk or late
        # heartbeats); not offline.
        wait(lambda: (lambda n: n and sum(1 for x in n if x["status"] != "offline") >= total)(nodes(fleet)),
             f"{total} nodes connected", timeout=300)
        time.sleep(10)
        baseline = rss_kib(fleet.master.pid)
        log(f"{total} nodes connected; master RSS {baseline / 1024:.1f} MiB")

        names = [f"real-{i}" for i in range(1, a.real + 1)] + [f"hollow-{i:05d}" for i in range(1, a.hollow + 1)]
        start = time.time()
        end = start + a.duration
        next_push = start
        next_exec = start
        next_agent_kill = start + a.agent_kill_every
        next_swarm_kill = start + a.swarm_kill_every
        next_master_kill = start + a.master_kill_every
        seq = 0
        push_file = os.path.join(root, "push.yml")
        while time.time() < end:
            now = time.time()
            if now >= next_master_kill:
                fleet.master.kill()
                fleet.master.wait()
                time.sleep(rng.uniform(0, 2))
                fleet.start_master(fleet.port)
                faults.append(("master SIGKILL + restart", now - start))
                log("master killed and restarted")
                next_master_kill += a.master_kill_every
            elif now >= next_swarm_kill:
                swarm.kill()
                time.sleep(rng.uniform(0, 3))
                swarm.start()
                faults.append((f"swarm SIGKILL ({a.hollow} hollow agents) + restart", now - start))
                log("swarm killed and restarted")
                next_swarm_kill += a.swarm_kill_every
            elif now >= next_agent_kill:
                name = rng.choice(sorted(real))
                real[name].kill()
                real[name].wait()
                time.sleep(rng.uniform(0, 3))
                start_real(name)
                faults.append((f"{name} SIGKILL + restart", now - start))
                next_agent_kill += a.agent_kill_every
            elif now >= next_push:
                seq += 1
                text = f"soak: {seed}\nseq: {seq}\n" + "".join(f"k{i}: {seq}-{i}\n" for i in range(200))
                with open(push_file, "w") as f:
                    f.write(text)
                code, out, err, secs = ctl(fleet, "config", "push", push_file, "--timeout", "20s",
                                           "--request-timeout", "10s", "-o", "json")
                v = stored_version(out, err)
                if v is not None:
                    if v in acked and acked[v] != text:
                        reused.append(v)
                    acked[v] = text
                pushes.append({"seq": seq, "code": code, "version": v, "seconds": secs,
                               "error": "" if code == 0 else err.strip().splitlines()[-1:] })
                next_push += a.push_every
            elif now >= next_exec:
                node = rng.choice(names)
                word = f"{MARK}-{len(execs)}"
                # Every fifth session outlives its --timeout: the agent must
                # kill it (exit 124), and a kill of the agent meanwhile must
                # not leave it running (it would show as a leaked process).
                long = len(execs) % 5 == 4
                code, out, err, secs = ctl(fleet, "exec", "--request-timeout", "10s",
                                           *(["--timeout", "3s"] if long else []), node, "--",
                                           "sh", "-c", f"echo {word}; sleep {600 if long else 0.2} # {MARK}")
                if code is None:
                    kind = "hung"
                elif code == (124 if long else 0) and out.strip() == word:
                    kind = "ok"
                elif code != 0 and err.strip():
                    kind = "clear error"
                else:
                    kind = "bad"
                execs.append({"node": node, "code": code, "kind": kind, "seconds": secs,
                              "error": err.strip().splitlines()[-1] if err.strip() else ""})
                next_exec += a.exec_every
            else:
                time.sleep(0.05)
        elapsed = time.time() - start
        log(f"load done after {elapsed:.0f}s: {len(pushes)} pushes, {len(execs)} execs, {len(faults)} faults")

        # --- the end state ---------------------------------------------
        hist_code, hist_out, _, _ = ctl(fleet, "config", "history", "--limit", "0", "-o", "json")
        history = {h["version"]: h for h in json.loads(hist_out)} if hist_code == 0 else {}
        newest = max(history) if history else 0
        newest_text = ctl(fleet, "config", "show", str(newest))[1] if newest else ""
        lost, differs = [], []
        for v, text in sorted(acked.items()):
            if v not in history:
                lost.append(v)
                continue
            if ctl(fleet, "config", "show", str(v))[1] != text:
                differs.append(v)

        def in_sync():
            st = status(fleet)
            if not st:
                return None
            ok = [r for r in st if r["in_sync"] and r["applied_version"] == newest and r["node_status"] != "offline"]
            return st if len(ok) >= total else None

        sync_start = time.time()
        try:
            st = wait(in_sync, "every node in sync", timeout=300)
            sync_secs = time.time() - sync_start
        except SystemExit:
            st = status(fleet) or []
            sync_secs = None
        not_synced = [r["node"] for r in st if not (r["in_sync"] and r["applied_version"] == newest)]
        files_off = [n for n in real if open(os.path.join(root, n, "edge.yml")).read() != newest_text]

        # Quiet for a while, then the master's memory.
        time.sleep(30)
        final_rss = rss_kib(fleet.master.pid)
        procs = subprocess.run(["pgrep", "-f", MARK], capture_output=True, text=True).stdout.split()
        leaks = temp_leaks([root, swarm.data])

        kinds = {}
        for e in execs:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        errors = {}
        for e in execs:
            if e["kind"] == "clear error":
                key = re.sub(r"\d+", "N", e["error"])[:120]
                errors[key] = errors.get(key, 0) + 1
        push_codes = {}
        for p in pushes:
            push_codes[str(p["code"])] = push_codes.get(str(p["code"]), 0) + 1
        ok = (not lost and not differs and not reused and not not_synced and not files_off
              and not kinds.get("hung") and not kinds.get("bad") and not procs and not leaks)
        result = {
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seed": seed, "duration_s": round(elapsed), "hollow": a.hollow, "real": a.real,
            "faults": len(faults), "fault_kinds": sorted({f[0].split(" ")[0] if f[0].startswith("real-") else f[0] for f in faults}),
            "master_kills": sum(1 for f in faults if f[0].startswith("master")),
            "swarm_kills": sum(1 for f in faults if f[0].startswith("swarm")),
            "agent_kills": sum(1 for f in faults if f[0].startswith("real-")),
            "pushes": len(pushes), "push_exit_codes": push_codes, "acknowledged": len(acked),
            "lost": lost, "differs": differs, "reused": reused, "history_versions": len(history),
            "newest": newest, "not_in_sync": not_synced, "real_files_off": files_off,
            "sync_after_s": None if sync_secs is None else round(sync_secs, 1),
            "execs": len(execs), "exec_kinds": kinds, "exec_errors": errors,
            "exec_p50_s": round(pct([e["seconds"] for e in execs if e["kind"] == "ok"], .5), 3),
            "exec_p99_s": round(pct([e["seconds"] for e in execs if e["kind"] == "ok"], .99), 3),
            "leaked_processes": procs, "leaked_temp_files": leaks,
            "master_rss_baseline_mib": round(baseline / 1024, 1),
            "master_rss_end_mib": round(final_rss / 1024, 1) if final_rss else None,
            "ok": ok,
        }
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "soak.json"), "w") as f:
            json.dump(result, f, indent=2)
        cores, model, kernel, mem = machine()
        lines = [
            f"# Soak ({os.path.basename(BIN)} build, loopback, TLS on)",
            "",
            f"Run {result['when']} on {cores} cores ({model}), kernel {kernel}, {mem:.0f} GiB;",
            f"command: `python3 bench/soak.py --duration {a.duration:g} --hollow {a.hollow} --real {a.real} "
            f"--master-kill-every {a.master_kill_every:g} --agent-kill-every {a.agent_kill_every:g} "
            f"--swarm-kill-every {a.swarm_kill_every:g} --push-every {a.push_every:g} --exec-every {a.exec_every:g} --seed {seed}`.",
            "",
            f"**Result: {'PASS' if ok else 'FAIL'}**",
            "",
            "| what | figure |",
            "|---|---|",
            f"| nodes | {a.hollow} hollow (one cdn-swarm) + {a.real} agentd, heartbeats every 1 s |",
            f"| load time | {elapsed:.0f} s |",
            f"| faults | {result['master_kills']} master SIGKILL, {result['swarm_kills']} swarm SIGKILL ({a.hollow} agents at once), {result['agent_kills']} agentd SIGKILL; each started again |",
            f"| pushes | {len(pushes)} (exit codes {push_codes}), {len(acked)} acknowledged |",
            f"| acknowledged versions lost / differing / number reused | {len(lost)} / {len(differs)} / {len(reused)} |",
            f"| nodes not in sync on version {newest} at the end | {len(not_synced)} of {total} (in sync {result['sync_after_s']} s after the load ended) |",
            f"| real agents' files not the newest version | {len(files_off)} |",
            f"| exec sessions | {len(execs)}: {kinds}; ok p50 {result['exec_p50_s']} s, p99 {result['exec_p99_s']} s |",
            f"| leaked processes / temp files | {len(procs)} / {len(leaks)} |",
            f"| master RSS: baseline → end (30 s after the load) | {result['master_rss_baseline_mib']} → {result['master_rss_end_mib']} MiB |",
            "",
        ]
        if errors:
            lines += ["Clear errors the failed exec sessions printed (digits as N):", ""]
            lines += [f"- {n} × `{k}`" for k, n in sorted(errors.items(), key=lambda x: -x[1])]
            lines.append("")
        write_report(a.out, lines)
        return 0 if ok else 1
    finally:
        if swarm:
            swarm.stop()
        fleet.stop()
        for p in real.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
