#!/usr/bin/env python3
"""Scale: one masterd against a hollow-agent swarm (cdn-swarm), release
build, loopback, TLS on (agents enrol with the join token, mutual TLS).

For each fleet size in --sizes (default 100,1000,5000,15000), with a fresh
master and data directory:

  1. first start: every agent enrols (key, CSR, certificate) and registers;
  2. connect storm: the swarm stopped (agents deregister) and started again,
     all at once: time until all registered, registration latency p50/p99;
  3. steady heartbeats at the seed's 10 s: heartbeat round trip p50/p99 (the
     agents' own measurements, from the master's histogram over the window),
     master CPU % of one core and RSS, RSS per agent;
  4. config push of 10 KiB to every agent (and 1 MiB up to --mib-max agents):
     time until the last ack (cdnctl spawn to exit), per-node ack p50/p99,
     bytes on the wire;
  5. exec: `cdnctl exec <node> -- true` --exec-runs times, whole cdnctl
     process; fan-out `cdnctl exec --all -- true`, time to the last exit code;
  6. one agent's connection dropped (ss -K): time until it is registered again;
  7. master restart (SIGKILL + start): time until every agent is registered
     again, registrations refused on the way, nodes lost;
  8. steady heartbeats at 1 s (the swarm restarted with a 1 s interval).

Side by side (--ssh, on by default when ../shared/peers/ssh exists): the same
single-node exec and push with OpenSSH and a warm ControlMaster to
127.0.0.1 in the same run, as ratios.

Writes bench/results/scale.json, bench/REPORT.md and bench/results/plots/*.svg.
Swarm data (keys, applied configs) lives on tmpfs (/dev/shm) when present.

Usage: python3 bench/scale.py [--sizes 100,1000,5000,15000] [--quick]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecycle import BIN, TOP, Fleet, machine, pct, wait, write_report  # noqa: E402
from config_push import payloads  # noqa: E402
import svgplot  # noqa: E402

RESULTS = os.path.join(TOP, "bench", "results")
PEERS_SSH = os.path.join(TOP, "..", "shared", "peers", "ssh")
# Agents per swarm process: each holds one socket per agent and a few files
# while applying, under the 20,000 open files a process may have.
PER_SWARM = 8000
# Limits a single loopback source would hit: every hollow agent comes from
# 127.0.0.1, where real agents come from their own addresses.
MASTER_EXTRA = (
    "metrics:\n  addr: 127.0.0.1:0\n"
    "limits:\n  register_rate: 0\n  auth_failures_per_minute: 100000\n  auth_failure_burst: 100000\n"
)


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the master's metrics and process ------------------------------------


def scrape(fleet):
    with urllib.request.urlopen(f"http://127.0.0.1:{fleet.metrics_port}/metrics", timeout=10) as r:
        return r.read().decode()


def samples(text, name):
    """(labels, value) of every sample of metric name."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        labels = {}
        if rest.startswith("{"):
            body, rest = rest[1:].split("}", 1)
            for part in body.split(","):
                if "=" in part:
                    k, v = part.split("=", 1)
                    labels[k] = v.strip('"')
        elif not rest.startswith(" "):
            continue
        try:
            out.append((labels, float(rest.split()[0])))
        except (ValueError, IndexError):
            pass
    return out


def value(text, name, **want):
    return sum(v for lab, v in samples(text, name) if all(lab.get(k) == x for k, x in want.items()))


def wait_master(cond, what, timeout):
    """As lifecycle.wait, but polling every 20 ms instead of 5: each poll is
    a scrape of the master's metrics, which counts every node, and polling
    faster would load the master being measured."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def online(fleet):
    try:
        return int(value(scrape(fleet), "cdn_nodes", state="online"))
    except OSError:
        return -1


def buckets(text, name):
    """Cumulative histogram buckets {le: count}."""
    out = {}
    for lab, v in samples(text, name + "_bucket"):
        le = float("inf") if lab["le"] == "+Inf" else float(lab["le"])
        out[le] = out.get(le, 0) + v
    return out


def quantile(b0, b1, q):
    """q-quantile of the observations between two scrapes (linear inside a
    bucket, as Prometheus' histogram_quantile)."""
    les = sorted(b1)
    delta = [(le, b1[le] - b0.get(le, 0)) for le in les]
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return None
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in delta:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / max(c - prev_c, 1e-9))
        prev_le, prev_c = le, c
    return prev_le


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid):
    """CPU seconds of pid's children it has waited for (a hollow node's
    guard and program)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# --- the swarm -------------------------------------------------------------


class Swarm:
    """cdn-swarm processes running count hollow agents hollow-00001...
    against the masters at addrs (tried in turn), their data under
    data_root, files and logs in root; enrolled with the token in
    token_file."""

    def __init__(self, root, addrs, token_file, data_root, count, hb):
        self.root, self.count = root, count
        self.procs, self.stats_files = [], []
        template = os.path.join(root, f"swarm-{hb}.yml")
        listed = ", ".join(f'"{a}"' for a in addrs)
        with open(template, "w") as f:
            f.write(
                f"master:\n  addr: [{listed}]\n  dial_timeout: 10s\n"
                f"heartbeat:\n  interval: {hb}\n  timeout: 10s\n"
                "status:\n  collect_interval: 10s\n  report_interval: 10s\n  degraded_disk_percent: 100\n"
                # The master checked the YAML before storing the version and
                # each agent checks the sha256; the agents' own second parse
                # (20 ms of CPU per MiB) would be 1,000 times the work of one
                # edge node on these 2 shared cores.
                "config:\n  min_free_bytes: 0\n  check_yaml: false\n"
                "node:\n  labels:\n    role: hollow\n"
            )
        token = open(token_file).read().strip()
        self.started = time.time()
        for k, start in enumerate(range(1, count + 1, PER_SWARM)):
            n = min(PER_SWARM, count - start + 1)
            stats = os.path.join(root, f"swarm-stats-{k}.json")
            if os.path.exists(stats):
                os.remove(stats)
            self.stats_files.append(stats)
            p = subprocess.Popen(
                [os.path.join(BIN, "cdn-swarm"), "-c", template, "--count", str(n),
                 "--start-index", str(start), "--data-dir", data_root,
                 "--stats", stats, "--stats-interval", "1s"],
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(root, f"swarm-{k}.log"), "a"),
                env={**os.environ, "AGENTD_JOIN_TOKEN": token},
            )
            self.procs.append(p)

    def stats(self):
        out = []
        for path in self.stats_files:
            try:
                with open(path) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                out.append(None)
        return out

    def registered(self):
        return sum((s or {}).get("registered", 0) for s in self.stats())

    def wait_all(self, timeout):
        """Waits until every agent registered; returns the swarms' stats."""
        def done():
            for p in self.procs:
                if p.poll() is not None:
                    raise SystemExit(f"cdn-swarm exited with {p.returncode}; see {self.root}")
            st = self.stats()
            ok = all(s and s.get("time_to_all_registered_ms") is not None for s in st)
            return st if ok else None
        return wait(done, f"{self.count} agents registered", timeout)

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return self.stats()


def merged(stats, key):
    """Worst (max) of a per-swarm figure: each swarm's percentiles cover its
    own agents; with one swarm it is exact."""
    vals = [s.get(key) for s in stats if s and s.get(key) is not None]
    return max(vals) if vals else None


# --- scenarios -------------------------------------------------------------


def steady(fleet, swarm, window):
    """Heartbeat round trips and the master's CPU and memory over window s."""
    pid = fleet.master.pid
    t0, c0, b0 = time.time(), cpu_seconds(pid), buckets(scrape(fleet), "agent_heartbeat_latency_seconds")
    time.sleep(window)
    t1, c1, text = time.time(), cpu_seconds(pid), scrape(fleet)
    b1 = buckets(text, "agent_heartbeat_latency_seconds")
    rss = rss_bytes(pid)
    n = swarm.count
    ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    st = swarm.stats()
    return {
        "window_s": round(t1 - t0, 1),
        "heartbeats": int(b1.get(float("inf"), 0) - b0.get(float("inf"), 0)),
        "hb_p50_ms": ms(quantile(b0, b1, 0.50)),
        "hb_p99_ms": ms(quantile(b0, b1, 0.99)),
        "hb_max_ms_swarm": round((merged(st, "heartbeat_rtt_max_us") or 0) / 1000, 3),
        "master_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
        "master_rss_mib": round(rss / 2**20, 1),
        "rss_per_agent_kib": round(rss / n / 1024, 1),
        "connections": int(value(text, "grpc_connections_active")),
        "online": int(value(text, "cdn_nodes", state="online")),
    }


def push(fleet, root, text, n, label, targets=("--all",), swarm=None):
    """Pushes a fresh version of text; with swarm, also the CPU seconds the
    master and the swarm spent meanwhile (who the bottleneck is)."""
    path = os.path.join(root, "push.yaml")
    cpu = lambda pids: sum(cpu_seconds(p) for p in pids)  # noqa: E731
    swarm_pids = swarm.pids() if swarm else []
    m0, s0 = cpu([fleet.master.pid]), cpu(swarm_pids)
    with open(path, "w") as f:
        f.write(text.rstrip("\n")[: len(text) - 24] + f"\n# {label} {time.time():.6f}\n")
    t0 = time.perf_counter()
    out = subprocess.run([*fleet.ctl(), "config", "push", path, *targets, "--timeout", "120s",
                          "-o", "json"], capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1000
    m1, s1 = cpu([fleet.master.pid]), cpu(swarm_pids)
    try:
        rep = json.loads(out.stdout)
    except ValueError:
        raise SystemExit(f"push failed ({out.returncode}): {out.stderr}")
    acks = [r["duration_ms"] for r in rep["results"] if r.get("result") == "applied"]
    return {
        "wall_ms": round(wall, 1),
        "applied": rep.get("applied"),
        "failed": rep.get("failed"),
        "pending": rep.get("pending"),
        "ack_p50_ms": round(pct(acks, 0.50), 1) if acks else None,
        "ack_p99_ms": round(pct(acks, 0.99), 1) if acks else None,
        "last_ack_ms": round(max(acks), 1) if acks else None,
        "size": rep.get("size"),
        "wire_bytes_per_agent": rep.get("wire_bytes"),
        "exit": out.returncode,
        "master_cpu_s": round(m1 - m0, 2),
        "swarm_cpu_s": round(s1 - s0, 2) if swarm else None,
    }


def exec_single(fleet, node, runs):
    times, bad = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run([*fleet.ctl(), "exec", node, "--", "true"], capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
        bad += r.returncode != 0
    return {"runs": runs, "p50_ms": round(pct(times, 0.5), 2), "p99_ms": round(pct(times, 0.99), 2),
            "failed": bad, "samples_ms": [round(t, 3) for t in times]}


def exec_fanout(fleet, n, swarm):
    """`exec --all -- true`: time to the last exit code, and the CPU the
    master, the swarm and the swarm's children (each node's guard and
    `true`) spent on it."""
    m0 = cpu_seconds(fleet.master.pid)
    s0 = sum(cpu_seconds(p) for p in swarm.pids())
    c0 = sum(children_cpu_seconds(p) for p in swarm.pids())
    t0 = time.perf_counter()
    r = subprocess.run([*fleet.ctl(), "exec", "--all", "--parallel", "256", "--", "true"],
                       capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1000
    return {"wall_ms": round(wall, 1), "exit": r.returncode, "nodes": n,
            "master_cpu_s": round(cpu_seconds(fleet.master.pid) - m0, 2),
            "swarm_cpu_s": round(sum(cpu_seconds(p) for p in swarm.pids()) - s0, 2),
            "swarm_children_cpu_s": round(sum(children_cpu_seconds(p) for p in swarm.pids()) - c0, 2),
            "stderr_tail": r.stderr.strip().splitlines()[-3:]}


def drop_one(fleet, swarm):
    """Kills one agent's TCP connection with ss -K; ms until the master
    counts it online again on a new connection."""
    if shutil.which("ss") is None:
        return None
    before = scrape(fleet)
    reconnects0 = value(before, "agent_reconnect_total")
    # The swarm's sockets to the master: kill the newest one.
    pid = swarm.pids()[0]
    t0 = time.time()
    r = subprocess.run(["ss", "-K", "-t", "dst", f"127.0.0.1:{fleet.port}",
                        "sport", "=", ":" + first_sport(pid, fleet.port)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    wait_master(lambda: value(scrape(fleet), "agent_reconnect_total") > reconnects0, "reconnect", 30)
    return {"recovery_ms": round((time.time() - t0) * 1000, 1)}


def first_sport(pid, port):
    """Local port of one of process pid's connections to the master."""
    out = subprocess.run(["ss", "-tnp", "dst", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[3]
            return local.rsplit(":", 1)[1]
    raise SystemExit("no swarm connection found for ss -K")


def restart(fleet, n, timeout):
    text = scrape(fleet)
    refused0 = value(text, "cdn_refused_requests_total")
    fleet.master.kill()
    fleet.master.wait()
    t0 = time.time()
    fleet.start_master(port=fleet.port)
    wait_master(lambda: online(fleet) >= n, f"{n} agents back after the restart", timeout)
    dt = time.time() - t0
    text = scrape(fleet)
    return {"all_back_ms": round(dt * 1000, 1), "online": int(value(text, "cdn_nodes", state="online")),
            "known": int(sum(v for _, v in samples(text, "cdn_nodes"))),
            "refused_after_restart": int(value(text, "cdn_refused_requests_total")),
            "refused_before": int(refused0)}


def run_size(n, args, texts):
    root = tempfile.mkdtemp(prefix=f"cdn-scale-{n}-")
    shm_parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    data = tempfile.mkdtemp(prefix=f"cdn-swarm-{n}-", dir=shm_parent)
    fleet = Fleet(root, "10s", master_extra=MASTER_EXTRA)
    res = {"agents": n}
    swarm = None
    try:
        fleet.start_master()
        storm_timeout = max(60, n / 50)
        log(f"{n}: first start (enrolment + registration)")
        swarm = Swarm(fleet.root, [f"127.0.0.1:{fleet.port}"], fleet.join_token_file, data, n, "10s")
        st = swarm.wait_all(storm_timeout * 4)
        res["first_start"] = {"all_registered_ms": merged(st, "time_to_all_registered_ms"),
                              "reg_p50_ms": merged(st, "registration_p50_ms"),
                              "reg_p99_ms": merged(st, "registration_p99_ms"),
                              "enrol_p50_ms": merged(st, "enrol_p50_ms"),
                              "enrol_p99_ms": merged(st, "enrol_p99_ms")}
        swarm.stop()
        wait_master(lambda: online(fleet) == 0, "every agent offline after the swarm stopped", 60)

        log(f"{n}: connect storm")
        m0 = cpu_seconds(fleet.master.pid)
        swarm = Swarm(fleet.root, [f"127.0.0.1:{fleet.port}"], fleet.join_token_file, data, n, "10s")
        st = swarm.wait_all(storm_timeout)
        storm_cpu = (round(cpu_seconds(fleet.master.pid) - m0, 2),
                     round(sum(cpu_seconds(p) for p in swarm.pids()), 2))
        wait_master(lambda: online(fleet) == n, f"{n} online on the master", 60)
        res["storm"] = {"all_registered_ms": merged(st, "time_to_all_registered_ms"),
                        "reg_p50_ms": merged(st, "registration_p50_ms"),
                        "reg_p99_ms": merged(st, "registration_p99_ms"),
                        "reg_max_ms": merged(st, "registration_max_ms"),
                        "swarm_rss_per_agent_kib": round((merged(st, "rss_per_agent_bytes") or 0) / 1024, 1),
                        "master_cpu_s": storm_cpu[0], "swarm_cpu_s": storm_cpu[1]}
        log(f"{n}: steady heartbeats at 10 s ({args.window}s window)")
        time.sleep(11)  # every agent past its first heartbeat after the storm
        res["steady_10s"] = steady(fleet, swarm, args.window)

        log(f"{n}: pushes")
        res["push_10k"] = push(fleet, root, texts["10 KiB"], n, "10k", swarm=swarm)
        if n <= args.mib_max:
            res["push_1m"] = push(fleet, root, texts["1 MiB"], n, "1m", swarm=swarm)
        # One node under the fleet's load, as ssh/scp pushes to one host.
        for key, label in (("push_one_10k", "10 KiB"), ("push_one_1m", "1 MiB")):
            runs = [push(fleet, root, texts[label], 1, key, ("-n", "hollow-00001")) for _ in range(5)]
            res[key] = {"wall_ms": round(pct([r["wall_ms"] for r in runs], 0.5), 1),
                        "runs_ms": [r["wall_ms"] for r in runs],
                        "applied": sum(r["applied"] or 0 for r in runs)}

        log(f"{n}: exec")
        res["exec_single"] = exec_single(fleet, "hollow-00001", args.exec_runs)
        res["exec_fanout"] = exec_fanout(fleet, n, swarm)

        log(f"{n}: connection drop")
        res["drop"] = drop_one(fleet, swarm)

        log(f"{n}: master restart")
        res["restart"] = restart(fleet, n, storm_timeout)
        st = swarm.stats()
        res["restart"]["swarm_reconnects"] = sum((s or {}).get("reconnects", 0) for s in st)

        log(f"{n}: steady heartbeats at 1 s")
        swarm.stop()
        wait_master(lambda: online(fleet) == 0, "every agent offline", 60)
        swarm = Swarm(fleet.root, [f"127.0.0.1:{fleet.port}"], fleet.join_token_file, data, n, "1s")
        swarm.wait_all(storm_timeout)
        time.sleep(3)
        res["steady_1s"] = steady(fleet, swarm, max(10, args.window // 3))
    finally:
        if swarm:
            swarm.stop()
        fleet.stop()
        shutil.rmtree(data, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            res["dir"] = root
    return res


# --- ssh side by side ------------------------------------------------------


def ssh_baseline(texts, runs):
    """OpenSSH with a warm ControlMaster to 127.0.0.1 (../shared/peers/ssh):
    `ssh agent-1 true` and scp of the two payloads to one host."""
    if not os.path.isdir(PEERS_SSH):
        return None
    sh = lambda *a: subprocess.run(["bash", *a], cwd=PEERS_SSH, capture_output=True, text=True)  # noqa: E731
    if sh("setup.sh").returncode != 0 or sh("start.sh").returncode != 0:
        return {"error": "peer set-up failed"}
    try:
        sp = os.environ.get("SSHPEER_DIR", "/tmp/sshpeer")  # the peer scripts' default
        cfg = os.path.join(sp, "ssh_config")
        if not os.path.exists(cfg):
            return {"error": "no ssh_config from the peer set-up"}
        # As the peers' act.sh: a warm ControlMaster per alias.
        mux = ["-o", "ControlMaster=auto", "-o", "ControlPersist=60",
               "-o", f"ControlPath={sp}/cm/%n"]
        ssh = ["ssh", "-F", cfg, *mux]
        subprocess.run([*ssh, "agent-1", "true"], capture_output=True)  # warms the master
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([*ssh, "agent-1", "true"], capture_output=True)
            times.append((time.perf_counter() - t0) * 1000)
        out = {"exec_p50_ms": round(pct(times, 0.5), 2), "exec_p99_ms": round(pct(times, 0.99), 2)}
        for label, key in (("10 KiB", "push_10k_ms"), ("1 MiB", "push_1m_ms")):
            src = os.path.join(tempfile.gettempdir(), f"cdn-scale-{key}.yaml")
            with open(src, "w") as f:
                f.write(texts[label])
            ts = []
            for _ in range(10):
                t0 = time.perf_counter()
                subprocess.run(["scp", "-F", cfg, *mux, "-q", src,
                                f"agent-1:{sp}/dest/agent-1/cdn-scale.yaml"], capture_output=True)
                ts.append((time.perf_counter() - t0) * 1000)
            out[key] = round(pct(ts, 0.5), 2)
            os.remove(src)
        return out
    finally:
        sh("stop.sh")


# --- report ----------------------------------------------------------------


def describe_machine():
    cores, model, kernel, mem = machine()
    return f"{cores} cores ({model}), {mem:.1f} GiB RAM, Linux {kernel}"


def fmt(v, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def report(results, ssh, args, started):
    sizes = [r["agents"] for r in results]
    g = lambda r, *path: _get(r, path)  # noqa: E731
    lines = [
        "# Scale benchmark: one masterd, hollow agents on loopback",
        "",
        f"Measured {started} on {describe_machine()}; release build, TLS on (mutual TLS after enrolment).",
        f"Command: `python3 bench/scale.py --sizes {args.sizes}` ({args.window}s steady windows, "
        f"{args.exec_runs} single execs). Raw figures: `bench/results/scale.json`; plots in `bench/results/plots/`.",
        "",
        "Master and swarm share the 2 cores: every figure includes the load of the hollow agents"
        " themselves (their TLS, heartbeats, applies, exec processes). Hollow agents are the real"
        " agentd link, applier and executor (one connection, session, command stream each), with"
        " their files on tmpfs and `config.check_yaml: false`: the master checked the YAML before"
        " storing the version and each agent still checks the sha256, but a thousand agents"
        " parsing 1 MiB again on these two cores would measure the swarm, not the master."
        " Every hollow agent connects from 127.0.0.1, so the per-source registration limit is off"
        " (`limits.register_rate: 0`).",
        "",
        "## Connect storm and restart",
        "",
        "| agents | first start (enrol + register), all in | storm: all registered | registration p50 / p99 | "
        "storm CPU: master / swarm | master restart: all back | registrations refused | nodes lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lost = None if not r.get("restart") else r["agents"] - r["restart"]["known"] if r["restart"]["known"] < r["agents"] else 0
        lines.append(
            f"| {r['agents']:,} | {fmt(g(r, 'first_start', 'all_registered_ms'), ' ms')} "
            f"| {fmt(g(r, 'storm', 'all_registered_ms'), ' ms')} "
            f"| {fmt(g(r, 'storm', 'reg_p50_ms'))} / {fmt(g(r, 'storm', 'reg_p99_ms'), ' ms')} "
            f"| {fmt(g(r, 'storm', 'master_cpu_s'), ' s')} / {fmt(g(r, 'storm', 'swarm_cpu_s'), ' s')} "
            f"| {fmt(g(r, 'restart', 'all_back_ms'), ' ms')} "
            f"| {fmt(g(r, 'restart', 'refused_after_restart'))} | {fmt(lost)} |"
        )
    lines += [
        "",
        "## Steady heartbeats",
        "",
        "| agents | interval | heartbeats in window | round trip p50 / p99 | max (swarm) | master CPU (% of one core) | master RSS | RSS per agent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for key, iv in (("steady_10s", "10 s"), ("steady_1s", "1 s")):
            s = r.get(key)
            if not s:
                continue
            lines.append(
                f"| {r['agents']:,} | {iv} | {s['heartbeats']:,} | {fmt(s['hb_p50_ms'])} / {fmt(s['hb_p99_ms'], ' ms')} "
                f"| {fmt(s['hb_max_ms_swarm'], ' ms')} | {fmt(s['master_cpu_pct'], ' %')} "
                f"| {fmt(s['master_rss_mib'], ' MiB')} | {fmt(s['rss_per_agent_kib'], ' KiB')} |"
            )
    lines += [
        "",
        "## Config push (to every agent)",
        "",
        "| agents | size | last ack (cdnctl spawn to exit) | per-node ack p50 / p99 | applied / failed / pending | bytes on the wire per agent | CPU during the push: master / swarm |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for key, label in (("push_10k", "10 KiB"), ("push_1m", "1 MiB")):
            p = r.get(key)
            if not p:
                continue
            lines.append(
                f"| {r['agents']:,} | {label} | {fmt(p['wall_ms'], ' ms')} | {fmt(p['ack_p50_ms'])} / {fmt(p['ack_p99_ms'], ' ms')} "
                f"| {p['applied']} / {p['failed']} / {p['pending']} | {fmt(p['wire_bytes_per_agent'])} of {fmt(p['size'])} "
                f"| {fmt(p.get('master_cpu_s'), ' s')} / {fmt(p.get('swarm_cpu_s'), ' s')} |"
            )
    lines += [
        "",
        "## Exec under load and connection drop",
        "",
        "| agents | `exec hollow-00001 -- true` p50 / p99 (whole cdnctl process) | fan-out `true` to all, last exit | one connection dropped: back in |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['agents']:,} | {fmt(g(r, 'exec_single', 'p50_ms'))} / {fmt(g(r, 'exec_single', 'p99_ms'), ' ms')} "
            f"| {fmt(g(r, 'exec_fanout', 'wall_ms'), ' ms')} (exit {g(r, 'exec_fanout', 'exit')}) "
            f"| {fmt(g(r, 'drop', 'recovery_ms'), ' ms')} |"
        )
    if ssh and "exec_p50_ms" in ssh:
        big = results[-1]
        ours_exec = g(big, "exec_single", "p50_ms")
        lines += [
            "",
            f"## Side by side with OpenSSH (warm ControlMaster to 127.0.0.1, same run; ours at {big['agents']:,} agents)",
            "",
            "ssh is measured after the fleets stopped (an idle machine); ours with the whole fleet connected.",
            "",
            "| task | ssh | cdnctl | ratio |",
            "|---|---|---|---|",
            f"| one command `true` (p50) | {ssh['exec_p50_ms']} ms | {fmt(ours_exec, ' ms')} | "
            f"{ratio(ssh['exec_p50_ms'], ours_exec)} |",
        ]
        light = results[0]
        if light is not big:
            e = g(light, "exec_single", "p50_ms")
            lines.append(
                f"| one command `true` (p50), ours with {light['agents']:,} agents | {ssh['exec_p50_ms']} ms "
                f"| {fmt(e, ' ms')} | {ratio(ssh['exec_p50_ms'], e)} |"
            )
        for key, label, pk in (("push_10k_ms", "10 KiB", "push_one_10k"), ("push_1m_ms", "1 MiB", "push_one_1m")):
            ours = g(big, pk, "wall_ms")
            lines.append(
                f"| push {label} to one host (median of 5; scp of the file vs `cdnctl config push -n`, "
                f"stored, sent, written, fsynced, acked) | {ssh[key]} ms | {fmt(ours, ' ms')} | {ratio(ssh[key], ours)} |"
            )
    lines += targets(results, ssh)
    lines += ["", "## Plots", ""]
    for name, title in PLOTS:
        lines.append(f"![{title}](results/plots/{name}.svg)")
    return lines, sizes


def targets(results, ssh):
    """The issue's targets beside the figures reached (largest fleet measured,
    1 MiB at the largest fleet it went to)."""
    big = results[-1]
    mib = next((r for r in reversed(results) if r.get("push_1m")), None)
    g = lambda r, *path: _get(r, path) if r else None  # noqa: E731
    n = f"{big['agents']:,}"

    def row(target, got, ok):
        mark = "–" if ok is None else ("met" if ok else "**missed**")
        return f"| {target} | {got} | {mark} |"

    def le(v, limit):
        return None if v is None else v <= limit

    rss = g(big, "steady_10s", "master_rss_mib")
    rss_agent = g(big, "steady_10s", "rss_per_agent_kib")
    cpu = g(big, "steady_10s", "master_cpu_pct")
    p99 = g(big, "steady_10s", "hb_p99_ms")
    push = g(big, "push_10k", "wall_ms")
    push1m = g(mib, "push_1m", "wall_ms")
    storm = g(big, "storm", "all_registered_ms")
    back = g(big, "restart", "all_back_ms")
    lost = None
    if big.get("restart"):
        lost = big["agents"] - min(big["restart"]["known"], big["restart"]["online"])
    ex = g(big, "exec_single", "p50_ms")
    ssh_ex = (ssh or {}).get("exec_p50_ms")
    notes = []
    st = big.get("storm") or {}
    if st.get("master_cpu_s") is not None and st.get("all_registered_ms"):
        wall = st["all_registered_ms"] / 1000
        notes.append(
            f"During the {n}-agent storm the master used {st['master_cpu_s']} s of CPU and the swarm "
            f"{st['swarm_cpu_s']} s in {wall:.1f} s of wall time: {(st['master_cpu_s'] + st['swarm_cpu_s']) / wall:.2f}"
            " of the 2 cores, the machine saturated, the swarm's share the larger (its side of every TLS"
            " handshake, link set-up)."
        )
    pu = big.get("push_10k") or {}
    if pu.get("master_cpu_s") is not None:
        notes.append(
            f"The 10 KiB push to {n} agents cost the master {pu['master_cpu_s']} s of CPU and the swarm "
            f"{pu['swarm_cpu_s']} s (every hollow agent's real apply: decode, hash, temporary file, rename,"
            " state file, ack) in {:.1f} s.".format(pu["wall_ms"] / 1000)
        )
    notes.extend(per_unit(big))
    return [
        "",
        *(["## Where the time goes", "", *[f"- {x}" for x in notes]] if notes else []),
        "",
        f"## Targets (at {n} agents unless stated)",
        "",
        "| target | reached | |",
        "|---|---|---|",
        row("master RSS under 1.5 GiB, ≤ 100 KiB per agent (10 s heartbeats)",
            f"{fmt(rss, ' MiB')}, {fmt(rss_agent, ' KiB')} per agent", le(rss, 1536) and le(rss_agent, 100)),
        row("master CPU under 25 % of one core (10 s heartbeats)", fmt(cpu, " %"), le(cpu, 25)),
        row("heartbeat p99 under 10 ms (10 s heartbeats)", fmt(p99, " ms"), le(p99, 10)),
        row("10 KiB pushed to every agent, last ack within 2 s", fmt(push, " ms"), le(push, 2000)),
        row(f"1 MiB pushed to {mib['agents']:,} agents within 5 s" if mib else "1 MiB to 1,000 agents within 5 s",
            fmt(push1m, " ms"), le(push1m, 5000)),
        row("connect storm: all registered within 10 s", fmt(storm, " ms"), le(storm, 10000)),
        row("master restart: all registered again within 10 s", fmt(back, " ms"), le(back, 10000)),
        row("no agent lost (storm and restart)", f"{fmt(lost)} lost", None if lost is None else lost == 0),
        row("exec `true` on one node under load: p50 under 5 ms", fmt(ex, " ms"), le(ex, 5)),
        row("exec at least 2× faster than ssh with ControlMaster",
            ratio(ssh_ex, ex) if ssh_ex else "–", None if not ssh_ex or not ex else ssh_ex / ex >= 2),
    ]


def per_unit(r):
    """The master's own CPU per registration, per heartbeat, per pushed node
    and per node of a fan-out exec, from fleet result r: what separates the
    master from the swarm sharing its cores."""
    n = r["agents"]
    out = []
    st, hb = r.get("storm") or {}, r.get("steady_10s") or {}
    pu, fo = r.get("push_10k") or {}, r.get("exec_fanout") or {}
    if st.get("master_cpu_s") is not None:
        out.append(f"master CPU per registration (storm, TLS handshake included): "
                   f"{st['master_cpu_s'] / n * 1e3:.3f} ms")
    if hb.get("master_cpu_pct") is not None and hb.get("heartbeats") and hb.get("window_s"):
        per_hb = hb["master_cpu_pct"] / 100 * hb["window_s"] / hb["heartbeats"]
        out.append(f"master CPU per heartbeat (10 s interval, idle work of the window included): "
                   f"{per_hb * 1e6:.0f} µs")
    if pu.get("master_cpu_s") is not None:
        out.append(f"master CPU per pushed node (10 KiB): {pu['master_cpu_s'] / n * 1e6:.0f} µs")
    if fo.get("master_cpu_s") is not None:
        children = (f", the nodes' guards and `true` {fo['swarm_children_cpu_s'] / n * 1e3:.2f} ms"
                    if fo.get("swarm_children_cpu_s") is not None
                    else " (the nodes' guards and `true` not counted: about 2 ms more each)")
        out.append(f"fan-out `true` to {n:,}: master CPU {fo['master_cpu_s'] / n * 1e6:.0f} µs per node "
                   "(the fleet's heartbeats during the fan-out included), "
                   f"swarm {fo['swarm_cpu_s'] / n * 1e3:.2f} ms per node{children}, "
                   f"{fo['wall_ms'] / n * 1e3:.0f} µs of wall time per node")
    return [f"At {n:,} agents, {x}." for x in out]


def ratio(theirs, ours):
    if not theirs or not ours:
        return "–"
    r = theirs / ours
    return f"{r:.2f}× faster" if r >= 1 else f"{1 / r:.2f}× slower"


def _get(r, path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


PLOTS = [
    ("registration", "Connect storm: time until all registered and registration p99"),
    ("heartbeat", "Heartbeat round trip at 10 s and 1 s intervals"),
    ("master_resources", "Master CPU and RSS per agent"),
    ("push", "Config push: time to last ack"),
    ("exec", "Exec under load"),
]


def plots(results):
    d = os.path.join(RESULTS, "plots")
    os.makedirs(d, exist_ok=True)
    pts = lambda *path: [(r["agents"], _get(r, path)) for r in results]  # noqa: E731
    svgplot.line_chart(os.path.join(d, "registration.svg"), PLOTS[0][1], "agents", "ms",
                       {"storm: all registered": pts("storm", "all_registered_ms"),
                        "storm: registration p99": pts("storm", "reg_p99_ms"),
                        "restart: all back": pts("restart", "all_back_ms")}, logy=True)
    svgplot.line_chart(os.path.join(d, "heartbeat.svg"), PLOTS[1][1], "agents", "ms",
                       {"10 s p50": pts("steady_10s", "hb_p50_ms"), "10 s p99": pts("steady_10s", "hb_p99_ms"),
                        "1 s p50": pts("steady_1s", "hb_p50_ms"), "1 s p99": pts("steady_1s", "hb_p99_ms")},
                       logy=True)
    svgplot.line_chart(os.path.join(d, "master_resources.svg"), PLOTS[2][1], "agents", "% of a core / KiB",
                       {"CPU % (10 s)": pts("steady_10s", "master_cpu_pct"),
                        "CPU % (1 s)": pts("steady_1s", "master_cpu_pct"),
                        "RSS KiB per agent": pts("steady_10s", "rss_per_agent_kib")})
    svgplot.line_chart(os.path.join(d, "push.svg"), PLOTS[3][1], "agents", "ms",
                       {"10 KiB last ack": pts("push_10k", "wall_ms"), "10 KiB ack p99": pts("push_10k", "ack_p99_ms"),
                        "1 MiB last ack": pts("push_1m", "wall_ms")}, logy=True)
    svgplot.line_chart(os.path.join(d, "exec.svg"), PLOTS[4][1], "agents", "ms",
                       {"single p50": pts("exec_single", "p50_ms"), "single p99": pts("exec_single", "p99_ms"),
                        "fan-out to all": pts("exec_fanout", "wall_ms")}, logy=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000,15000")
    ap.add_argument("--window", type=int, default=30, help="seconds of each steady 10 s window")
    ap.add_argument("--exec-runs", type=int, default=50)
    ap.add_argument("--mib-max", type=int, default=1000, help="largest fleet the 1 MiB push goes to")
    ap.add_argument("--ssh-runs", type=int, default=50)
    ap.add_argument("--no-ssh", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep each size's directory (logs)")
    ap.add_argument("--quick", action="store_true", help="sizes 100,1000, short windows (a smoke run)")
    ap.add_argument("--report", default=os.path.join(TOP, "bench", "REPORT.md"))
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report and plots from bench/results/scale.json")
    args = ap.parse_args()
    if args.report_only:
        with open(os.path.join(RESULTS, "scale.json")) as f:
            saved = json.load(f)
        for k, v in saved["args"].items():
            if k not in ("report", "report_only"):
                setattr(args, k, v)
        plots(saved["results"])
        lines, _ = report(saved["results"], saved["ssh"], args, saved["started"])
        write_report(args.report, lines)
        return
    if args.quick:
        args.sizes, args.window, args.exec_runs, args.ssh_runs = "100,1000", 12, 20, 20
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet"], cwd=TOP, check=True)
    work = tempfile.mkdtemp(prefix="cdn-scale-payloads-")
    texts = payloads(work)
    shutil.rmtree(work, ignore_errors=True)
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        results.append(run_size(n, args, texts))
        log(json.dumps({k: v for k, v in results[-1].items() if k != "exec_single"}))
    ssh = None if args.no_ssh else ssh_baseline(texts, args.ssh_runs)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "scale.json"), "w") as f:
        json.dump({"started": started, "machine": describe_machine(), "args": vars(args), "results": results,
                   "ssh": ssh}, f, indent=1)
    plots(results)
    lines, _ = report(results, ssh, args, started)
    write_report(args.report, lines)


if __name__ == "__main__":
    main()
