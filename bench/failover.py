#!/usr/bin/env python3
"""Failover: two masterd on one etcd (active/standby), release build,
loopback, TLS on.

  1. failover (--runs times): etcd (--members 1 or 3 members, own ports and
     directories), masters m1 and m2 on it (`store.backend: etcd`,
     `lease_ttl` --lease-ttl, default 5s), --agents agents dialling both
     (`master.addr: [m1, m2]`): real agentd (1 s heartbeats) for a handful,
     hollow agents of cdn-swarm (10 s heartbeats, the masters' heartbeat
     section and limits as in scale.py; its template carries the address
     list, `--master` would replace it with one) for more. Once every agent
     is online on the leader and has settled (2 × the lease TTL), the
     leader is killed with SIGKILL, then
       a. standby serves: time until `cdnctl --master <standby> nodes list`
          succeeds (no UNAVAILABLE), polled every 50 ms;
       b. agents back: time until `nodes list -o json` on the new leader
          counts every agent online, command stream open, on a session that
          started after the kill (polled every 50 ms, each poll a cdnctl
          call); also, from the same listing, when the median and the last
          of those sessions started (`connected_since`, the new leader's
          clock, no polling delay);
     the killed master is started again (now the standby) and the next run
     kills the new leader.
  2. cost of etcd against the embedded store, one master each:
       a. `cdnctl config push` of 10 KiB to 3 real agents, median of --push-runs;
       b. registration storm of --storm hollow agents (default 1000,5000) as
          in scale.py: first start (enrolment), then --storm-runs times all
          stopped (every agent offline) and all started at once; time until
          all registered, registration p50/p99, median over the storms.

Before measuring anything on etcd the script checks that masterd really
keeps its state there (keys under the prefix) and stops with a message
otherwise.

The masters share the CA and credentials through etcd: agents enrol with
m1's join token, cdnctl uses m1's admin credential against either.

Figures go to bench/results/failover.json and bench/results/failover.md,
merged with those of earlier runs: each failover set-up (etcd members,
agents, lease) and each backend's push and storm size keeps its own entry,
with the date and command it was measured with; measuring the same entry
again replaces it (and says so). What was measured is written even when a
later step stops the run (a failover that times out keeps its earlier runs).

Usage: python3 bench/failover.py [--members 1|3] [--agents 3|1000] [--runs 5]
       [--lease-ttl 5s] [--storm 1000,5000] [--storm-runs 3] [--push-runs 7]
       [--only failover,push,storm] [--backends embedded,etcd] [--no-build] [--keep]
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecycle import BIN, TOP, machine, pct, wait, write_report  # noqa: E402
from config_push import payloads  # noqa: E402
from scale import MASTER_EXTRA, Swarm, merged, online  # noqa: E402

RESULTS = os.path.join(TOP, "bench", "results")
ETCD_READY_S = 20
# Raft timings of etcd's defaults: the bench measures a production-like
# etcd, not the tests' fast one.
ETCD_FLAGS = ["--heartbeat-interval", "100", "--election-timeout", "1000"]
POLL_S = 0.05
# The master's heartbeat section, matching its agents' interval: real agentd
# here beat every second; hollow agents every 10 s, as in scale.py (with a
# 1 s master they would be degraded, then offline, between two beats).
MASTER_HB_REAL = "heartbeat:\n  interval: 1s\n  timeout: 5s\n  offline_threshold: 3\n"
MASTER_HB_HOLLOW = "heartbeat:\n  interval: 10s\n  timeout: 10s\n  offline_threshold: 3\n"


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def free_ports(n):
    """n distinct free loopback ports (all bound at once, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def poll(cond, what, timeout):
    """As lifecycle.wait, but polling every POLL_S: each poll here spawns
    cdnctl, and polling faster would load the masters being measured."""
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(POLL_S)
    raise SystemExit(f"timed out waiting for {what}")


def http(url, body=None, timeout=2.0):
    """(status, text) of a GET (or a JSON POST with body), None when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None


# --- etcd -------------------------------------------------------------------


class Etcd:
    """members etcd members on loopback under root, each with its own data
    directory and log; the binary is `etcd` on PATH or Debian's."""

    def __init__(self, root, members):
        self.bin = shutil.which("etcd") or "/usr/bin/etcd"
        if not os.path.exists(self.bin):
            raise SystemExit("etcd not found; install Debian package etcd-server (apt-get install etcd-server)")
        self.root, self.n = root, members
        ports = free_ports(2 * members)
        self.client = ports[:members]
        self.peer = ports[members:]
        self.token = f"cdn-bench-{os.getpid()}-{int(time.time())}"
        self.cluster = ",".join(f"m{i}=http://127.0.0.1:{self.peer[i]}" for i in range(members))
        self.procs = [None] * members
        for i in range(members):
            self.start(i)
        self.wait_healthy()

    def endpoints(self):
        return [f"http://127.0.0.1:{p}" for p in self.client]

    def start(self, i):
        d = os.path.join(self.root, f"etcd-m{i}")
        os.makedirs(d, exist_ok=True)
        client, peer = f"http://127.0.0.1:{self.client[i]}", f"http://127.0.0.1:{self.peer[i]}"
        self.procs[i] = subprocess.Popen(
            [self.bin, "--name", f"m{i}", "--data-dir", os.path.join(d, "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", self.token, *ETCD_FLAGS,
             "--logger", "zap", "--log-outputs", "stderr"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "etcd.log"), "a"),
        )

    def healthy(self, i):
        r = http(f"{self.endpoints()[i]}/health")
        return bool(r and r[0] == 200 and '"health":"true"' in r[1])

    def wait_healthy(self):
        wait(lambda: all(self.healthy(i) for i in range(self.n)), f"{self.n} etcd members healthy", ETCD_READY_S)

    def key_count(self, prefix):
        """Keys under prefix (etcd's JSON gateway; range_end = prefix + 1)."""
        b = prefix.encode()
        end = b[:-1] + bytes([b[-1] + 1])
        r = http(f"{self.endpoints()[0]}/v3/kv/range",
                 {"key": base64.b64encode(b).decode(), "range_end": base64.b64encode(end).decode(),
                  "count_only": True})
        if not r or r[0] != 200:
            raise SystemExit(f"etcd range failed: {r}")
        return int(json.loads(r[1]).get("count", 0))

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
            if p:
                p.wait()


def store_yml(endpoints, prefix, name, lease_ttl):
    eps = ", ".join(f'"{e}"' for e in endpoints)
    return (f"store:\n  backend: etcd\n  etcd:\n    endpoints: [{eps}]\n    prefix: {prefix}\n"
            f"    lease_ttl: {lease_ttl}\n    name: {name}\n")


# --- masters and agents -------------------------------------------------------


class Master:
    """One masterd under root/<name> (own data directory); extra is appended
    to its master.yml (store section, limits, metrics); hb is its heartbeat
    section."""

    def __init__(self, root, name, extra, hb=MASTER_HB_REAL):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name, self.extra, self.hb = name, extra, hb
        self.data = os.path.join(self.dir, "data")
        self.credential = os.path.join(self.data, "admin.credential")
        self.join_token_file = os.path.join(self.data, "join-token")
        self.port = 0
        self.master = None

    def start(self):
        cfg = os.path.join(self.dir, "master.yml")
        with open(cfg, "w") as f:
            f.write(f"grpc:\n  addr: 127.0.0.1:{self.port}\n"
                    f"{self.hb}data_dir: {self.data}\n{self.extra}")
        self.master = subprocess.Popen(
            [os.path.join(BIN, "masterd"), "-c", cfg], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.dir, "masterd.log"), "a"), env={**os.environ, "RUST_LOG": "info"})
        line = self.master.stdout.readline().decode()
        fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
        if "grpc" not in fields:
            raise SystemExit(f"masterd {self.name} did not start: {line!r}; see {self.dir}/masterd.log")
        self.port = int(fields["grpc"].rsplit(":", 1)[1])
        self.admin = fields.get("admin", fields["grpc"])
        self.metrics_port = int(fields["metrics"].rsplit(":", 1)[1]) if "metrics" in fields else None
        return self

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def kill(self):
        if self.master and self.master.poll() is None:
            self.master.send_signal(signal.SIGKILL)
        if self.master:
            self.master.wait()


def ctl(master, credential, *args, timeout="2s"):
    return subprocess.run(
        [os.path.join(BIN, "cdnctl"), "--credential", credential, "--master", master.admin,
         "--request-timeout", timeout, *args], capture_output=True, text=True)


def serves(master, credential):
    return ctl(master, credential, "nodes", "list").returncode == 0


def unix_time(rfc3339):
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() if rfc3339 else 0.0


def sessions_on(master, credential, since):
    """Unix start times of the sessions of agents online on master with their
    stream open, on a session that started at or after unix time since
    (cdnctl prints milliseconds); [] when master does not answer."""
    out = ctl(master, credential, "nodes", "list", "-o", "json", timeout="5s")
    if out.returncode != 0:
        return []
    return [t for t in (unix_time(n.get("connected_since")) for n in json.loads(out.stdout)
                        if n.get("status") == "online" and n.get("stream_open"))
            if t >= since - 0.001]


def agents_on(master, credential, since):
    return len(sessions_on(master, credential, since))


def start_agents(root, masters, token_file, n):
    """n real agentd dialling every master in turn."""
    addrs = ", ".join(f'"{m.addr()}"' for m in masters)
    procs = []
    for i in range(1, n + 1):
        name = f"agent-{i}"
        cfg = os.path.join(root, f"{name}.yml")
        with open(cfg, "w") as f:
            f.write(f"master:\n  addr: [{addrs}]\n  dial_timeout: 2s\n  join_token_file: {token_file}\n"
                    "heartbeat:\n  interval: 1s\n  timeout: 5s\n"
                    # never degraded by a nearly full disk of the machine running it
                    "status:\n  degraded_disk_percent: 100\n"
                    f"node:\n  id: {name}\ndata_dir: {root}/{name}.d\n"
                    f"config:\n  path: {root}/{name}/edge.yml\n  min_free_bytes: 0\n")
        procs.append(subprocess.Popen([os.path.join(BIN, "agentd"), "-c", cfg], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, f"{name}.log"), "a")))
    return procs


def make_swarm(root, masters, token_file, data_root, count):
    """Hollow agents dialling every master in turn (scale.py's Swarm with
    the masters' address list), heartbeating every 10 s."""
    return Swarm(root, [m.addr() for m in masters], token_file, data_root, count, "10s")


def require_etcd_backend(etcd, prefix):
    """Stops the run unless masterd keeps its state in etcd (until the
    backend lands, every master runs on its own embedded store)."""
    if etcd.key_count(prefix) == 0:
        raise SystemExit(f"masterd does not run store.backend: etcd yet (no key under {prefix}): "
                         "nothing to measure on etcd")


# --- scenarios ------------------------------------------------------------------


def failover(args, root, runs):
    """Appends each run's figures to runs as it is measured."""
    etcd = Etcd(root, args.members)
    prefix = f"/cdn-bench-{os.getpid()}/"
    hollow = args.agents > 20
    extra = MASTER_EXTRA if hollow else ""
    hb = MASTER_HB_HOLLOW if hollow else MASTER_HB_REAL
    ms = [Master(root, name, store_yml(etcd.endpoints(), prefix, name, args.lease_ttl) + extra, hb)
          for name in ("m1", "m2")]
    swarm, agents, data = None, [], None
    try:
        ms[0].start()
        cred = ms[0].credential
        poll(lambda: serves(ms[0], cred), "m1 serving", 30)
        ms[1].start()
        time.sleep(1)
        require_etcd_backend(etcd, prefix)
        if hollow:
            data = tempfile.mkdtemp(prefix="cdn-failover-swarm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
            swarm = make_swarm(root, ms, ms[0].join_token_file, data, args.agents)
            swarm.wait_all(max(60, args.agents / 50) * 4)
        else:
            agents = start_agents(root, ms, ms[0].join_token_file, args.agents)
        leader, standby = ms
        poll(lambda: agents_on(leader, cred, 0) >= args.agents, f"{args.agents} agents on the leader", 120)
        settle = 2 * parse_s(args.lease_ttl)
        for run in range(args.runs):
            # Every agent settled on the leader (past its registration), the
            # standby's lease renewed and its mirror caught up.
            time.sleep(settle)
            log(f"failover run {run + 1}: killing {leader.name}")
            t0 = time.time()
            leader.kill()
            poll(lambda: serves(standby, cred), f"{standby.name} serving", 120)
            serve_ms = (time.time() - t0) * 1000
            starts = poll(lambda: (lambda s: s if len(s) >= args.agents else None)(sessions_on(standby, cred, t0)),
                          "every agent on the new leader", 300)
            back_ms = (time.time() - t0) * 1000
            rel = sorted((t - t0) * 1000 for t in starts)
            runs.append({"standby_serves_ms": round(serve_ms, 1), "agents_back_ms": round(back_ms, 1),
                         # the new leader's own session start times (ms after the kill)
                         "session_p50_ms": round(pct(rel, 0.5), 1), "last_session_ms": round(rel[-1], 1)})
            log(json.dumps(runs[-1]))
            leader.start()  # same port: now the standby
            leader, standby = standby, leader
    finally:
        if swarm:
            swarm.stop()
        for p in agents:
            p.kill()
            p.wait()
        for m in ms:
            m.kill()
        etcd.stop()
        if data:
            shutil.rmtree(data, ignore_errors=True)


def backend_master(root, backend, args, etcd, extra="", hb=MASTER_HB_REAL):
    if backend == "embedded":
        m = Master(root, f"m-{backend}", extra, hb).start()
        poll(lambda: serves(m, m.credential), "master serving", 30)
        return m
    prefix = f"/cdn-bench-{os.getpid()}-{int(time.time() * 1000)}/"
    m = Master(root, f"m-{backend}", store_yml(etcd.endpoints(), prefix, "m1", args.lease_ttl) + extra, hb).start()
    poll(lambda: serves(m, m.credential), "master serving", 30)
    require_etcd_backend(etcd, prefix)
    return m


def push_cost(args, root, backend, etcd, text):
    m = backend_master(root, backend, args, etcd)
    agents = start_agents(root, [m], m.join_token_file, 3)
    try:
        poll(lambda: agents_on(m, m.credential, 0) >= 3, "3 agents online", 60)
        path = os.path.join(root, "push.yaml")
        times = []
        for i in range(args.push_runs):
            with open(path, "w") as f:
                f.write(text.rstrip("\n")[: len(text) - 24] + f"\n# {backend} {i} {time.time():.6f}\n")
            t0 = time.perf_counter()
            out = ctl(m, m.credential, "config", "push", path, "--all", "--timeout", "60s", "-o", "json",
                      timeout="60s")
            dt = (time.perf_counter() - t0) * 1000
            if out.returncode != 0 or json.loads(out.stdout).get("applied") != 3:
                raise SystemExit(f"push on {backend} failed: {out.stderr}{out.stdout}")
            times.append(dt)
        return {"median_ms": round(statistics.median(times), 1), "p99_ms": round(pct(times, 0.99), 1),
                "samples_ms": [round(t, 1) for t in times]}
    finally:
        for p in agents:
            p.kill()
            p.wait()
        m.kill()


def storm_cost(args, root, backend, etcd, n):
    m = backend_master(root, backend, args, etcd, MASTER_EXTRA, MASTER_HB_HOLLOW)
    data = tempfile.mkdtemp(prefix=f"cdn-failover-storm-{n}-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    swarm = None
    try:
        timeout = max(60, n / 50)
        swarm = make_swarm(root, [m], m.join_token_file, data, n)
        swarm.wait_all(timeout * 4)
        storms = []
        for _ in range(args.storm_runs):
            swarm.stop()
            poll(lambda: online(m) == 0, "every hollow agent offline", 60)
            swarm = make_swarm(root, [m], m.join_token_file, data, n)
            st = swarm.wait_all(timeout)
            storms.append({k: merged(st, k) for k in
                           ("time_to_all_registered_ms", "registration_p50_ms", "registration_p99_ms")})
        med = lambda k: round(statistics.median(x[k] for x in storms), 1)  # noqa: E731
        return {"agents": n, "all_registered_ms": med("time_to_all_registered_ms"),
                "reg_p50_ms": med("registration_p50_ms"), "reg_p99_ms": med("registration_p99_ms"),
                "storms": storms}
    finally:
        if swarm:
            swarm.stop()
        m.kill()
        shutil.rmtree(data, ignore_errors=True)


def parse_s(d):
    for unit, mul in (("ms", 0.001), ("s", 1), ("m", 60)):
        if d.endswith(unit):
            return float(d[: -len(unit)]) * mul
    return float(d)


# --- report -----------------------------------------------------------------------


def command(argv):
    """The command line of this run, without the options that name paths of
    the machine or only keep logs (they say nothing about the figures)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--out", "--keep", "--no-build") or a.startswith("--out="):
            skip = a == "--out"
        else:
            out.append(a)
    return "python3 bench/failover.py" + "".join(f" {a}" for a in out)


def failover_key(fo):
    return f"{fo['members']}-member etcd, {fo['agents']} agents, lease {fo['lease_ttl']}"


def load_results(path):
    """Figures of earlier runs (each mode, size and backend keeps its own
    entry), or an empty set."""
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError):
        return {"failover": {}, "cost": {}}
    if not isinstance(res.get("failover"), dict) or "runs" in res["failover"]:
        raise SystemExit(f"{path} is not in this script's layout; move it away first")
    res.setdefault("cost", {})
    return res


def merge(saved, res):
    """Puts this run's figures into saved: an entry measured again (same mode,
    etcd size, agents and lease, or same backend and figure) is replaced, and
    said so; every other entry stays."""
    for key, fo in res["failover"].items():
        if key in saved["failover"]:
            log(f"replacing the failover figures of {key} measured {saved['failover'][key]['started']}")
        saved["failover"][key] = fo
    for backend, figures in res["cost"].items():
        for name, fig in figures.items():
            old = saved["cost"].setdefault(backend, {}).get(name)
            if old:
                log(f"replacing the {backend} {name} figures measured {old['started']}")
            saved["cost"][backend][name] = fig
    return saved


def report(res):
    cores, model, kernel, mem = machine()
    lines = [
        "# Failover and etcd cost (release build, loopback)",
        "",
        f"Machine: {cores} cores ({model}), {mem:.1f} GiB RAM, Linux {kernel}; TLS on. Each section names the"
        " run it comes from. Raw figures: `bench/results/failover.json`.",
    ]
    for key, fo in sorted(res["failover"].items(), key=lambda kv: (kv[1]["members"], kv[1]["agents"])):
        if not fo["runs"]:
            continue
        col = lambda k: [r[k] for r in fo["runs"] if r.get(k) is not None]  # noqa: E731
        ttl_ms = parse_s(fo["lease_ttl"]) * 1000
        back = col("agents_back_ms")
        lines += [
            "", f"## Leader killed (SIGKILL): {key}",
            "", f"Measured {fo['started']}: `{fo['command']}`.",
            "", "| figure | median | max | runs |", "|---|---|---|---|",
        ]
        for k, label in (("standby_serves_ms", "kill → standby serves `nodes list` (polled every 50 ms)"),
                         ("agents_back_ms", "kill → every agent online on the new leader (polled)"),
                         ("last_session_ms", "kill → last agent's session started (new leader's clock)"),
                         ("session_p50_ms", "kill → median agent's session started")):
            v = col(k)
            if v:
                lines.append(f"| {label} | {statistics.median(v):,.0f} ms | {max(v):,.0f} ms | {len(v)} |")
        ok = max(back) <= ttl_ms + 2000
        lines += ["", f"Target, every agent back within lease TTL + 2 s ({ttl_ms + 2000:,.0f} ms): "
                      f"{'met' if ok else '**missed**'} (worst run {max(back):,.0f} ms)."]
    cost = res.get("cost") or {}
    if any(cost.values()):
        names = sorted({n for b in cost.values() for n in b},
                       key=lambda n: (n != "push", int(n.split("_")[1]) if n.startswith("storm_") else 0))
        g = lambda b, n, k: (lambda v: "–" if v is None else f"{v:,.1f} ms" if v < 100  # noqa: E731
                             else f"{v:,.0f} ms")(_get(cost.get(b), (n, k)))
        lines += ["", "## etcd against the embedded store (one master)", "",
                  "| figure | embedded | etcd |", "|---|---|---|"]
        for n in names:
            if n == "push":
                runs = {len(_get(cost.get(b), ("push", "samples_ms")) or []) for b in cost} - {0}
                lines.append(f"| config push 10 KiB to 3 agents, median of {'/'.join(map(str, sorted(runs)))} | "
                             f"{g('embedded', n, 'median_ms')} | {g('etcd', n, 'median_ms')} |")
            else:
                k = int(n.split("_")[1])
                runs = {len(_get(cost.get(b), (n, "storms")) or []) for b in cost} - {0}
                for key, label in (("all_registered_ms", "all registered"), ("reg_p50_ms", "registration p50"),
                                   ("reg_p99_ms", "registration p99")):
                    lines.append(f"| storm of {k:,}: {label}, median of {'/'.join(map(str, sorted(runs)))} | "
                                 f"{g('embedded', n, key)} | {g('etcd', n, key)} |")
        runs = sorted({(f["started"], f["command"]) for b in cost.values() for f in b.values()})
        lines += ["", "Measured " + "; ".join(f"{t}: `{c}`" for t, c in runs) + "."]
    return lines


def _get(r, path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


def storm_sizes(args):
    return [int(x) for x in args.storm.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, choices=(1, 3), default=1)
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lease-ttl", default="5s")
    ap.add_argument("--storm", default="1000,5000")
    ap.add_argument("--storm-runs", type=int, default=3)
    ap.add_argument("--push-runs", type=int, default=7)
    ap.add_argument("--only", default="failover,push,storm")
    ap.add_argument("--backends", default="embedded,etcd")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "failover.md"))
    args = ap.parse_args()
    only, backends = set(args.only.split(",")), args.backends.split(",")
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = command(sys.argv[1:])
    stamp = lambda fig: {**fig, "started": started, "command": cmd}  # noqa: E731
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet"], cwd=TOP, check=True)
    json_path = os.path.join(RESULTS, "failover.json")
    saved = load_results(json_path)  # before measuring: a file in another layout stops the run here
    root = tempfile.mkdtemp(prefix="cdn-failover-")
    res = {"failover": {}, "cost": {}}
    try:
        work = os.path.join(root, "payloads")
        os.makedirs(work)
        text = payloads(work)["10 KiB"]
        for backend in backends:
            if not only & {"push", "storm"}:
                break
            etcd = Etcd(os.path.join(root, f"etcd-{backend}"), args.members) if backend == "etcd" else None
            try:
                c = res["cost"].setdefault(backend, {})
                if "push" in only:
                    log(f"{backend}: config push 10 KiB to 3 agents")
                    c["push"] = stamp(push_cost(args, os.path.join(root, f"push-{backend}"), backend, etcd, text))
                if "storm" in only:
                    for n in storm_sizes(args):
                        log(f"{backend}: registration storm of {n}")
                        c[f"storm_{n}"] = stamp(storm_cost(args, os.path.join(root, f"storm-{backend}-{n}"),
                                                           backend, etcd, n))
            finally:
                if etcd:
                    etcd.stop()
        if "failover" in only:
            fo = stamp({"members": args.members, "agents": args.agents, "lease_ttl": args.lease_ttl, "runs": []})
            res["failover"][failover_key(fo)] = fo
            failover(args, os.path.join(root, "failover"), fo["runs"])
    finally:
        # What was measured is kept even when a later step stops the run,
        # merged with the figures of earlier runs.
        if any(res["cost"].values()) or any(fo["runs"] for fo in res["failover"].values()):
            saved = merge(saved, res)
            os.makedirs(RESULTS, exist_ok=True)
            with open(json_path, "w") as f:
                json.dump(saved, f, indent=1)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"work directory kept: {root}")
    write_report(args.out, report(saved))


if __name__ == "__main__":
    main()
