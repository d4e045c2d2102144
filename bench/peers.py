#!/usr/bin/env python3
"""Side by side with OpenSSH: ours and ssh/scp interleaved in one run.

Release binaries, a local fleet of 20 agents on mutual TLS (as a new user
gets it, see Fleet in lifecycle.py), and OpenSSH's private sshd from
../shared/peers/ssh (its setup.sh/start.sh/stop.sh; ssh with a warm
ControlMaster, scp through it). For every round, every job runs ours and
the peer alternately, so both see the same machine load:

  * `exec agent-1 -- true` vs `ssh agent-1 true` (median of the round);
  * push 10 KiB / 1 MiB to 1, 3, 20 nodes (`config push`, every node having
    written, fsynced and acknowledged) vs scp to one host, or scp to each
    host in parallel (xargs -P);
  * stream out: `head -c 200000000 /dev/zero` on the node, read here;
  * stream in: 200 MB of zeros from here into `wc -c` on the node;
  * fan-out `true` to 20 nodes vs `xargs -P20 ssh agent-i true`.

Ratio = our time / the peer's time (below 1: we are faster); the range is
the lowest and highest per-round ratio. The streams also report CPU seconds
per run: the client process (cdnctl or ssh) and the serving side (masterd +
agentd, or the ssh ControlMaster + sshd's processes), each including the
remote `head`/`wc`.

Usage: python3 bench/peers.py [--rounds 4] [--no-build | --bin DIR] [--out FILE]
Environment: SSHPEER_DIR and SSHPEER_PORT as the peer scripts take them.
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
from lifecycle import Fleet, TOP, machine, wait, write_report  # noqa: E402

PEER = os.path.normpath(os.path.join(TOP, "..", "shared", "peers", "ssh"))
# the peer scripts' own default: sshpeer under the temporary directory
SP = os.environ.get("SSHPEER_DIR") or os.path.join(tempfile.gettempdir(), "sshpeer")
CFG = os.path.join(SP, "ssh_config")
MUX = ["-o", "ControlMaster=auto", "-o", "ControlPersist=600", "-o", f"ControlPath={SP}/cm/%n"]
NODES = 20
STREAM_BYTES = 200_000_000
TICK = os.sysconf("SC_CLK_TCK")

# job name, target ratio (our time / peer time)
TARGETS = {
    "exec": 0.40,
    "push 10 KiB → 1": 0.60,
    "push 10 KiB → 3": None,
    "push 10 KiB → 20": None,
    "push 1 MiB → 1": 1.0,
    "push 1 MiB → 3": 1.0,
    "push 1 MiB → 20": 0.7,
    "stream out": 0.9,
    "stream in": 0.9,
    "fan-out 20": 0.20,
}


def ssh(*args):
    return ["ssh", "-F", CFG, *MUX, *args]


def scp_to(path, k):
    """scp path to agent-1..k (one host: plain scp; more: all at once)."""
    dest = os.path.join(SP, "dest")
    opts = " ".join(["-q", "-F", CFG, *MUX])
    if k == 1:
        return ["scp", *opts.split(), path, f"agent-1:{dest}/agent-1/"]
    return ["bash", "-c", f"seq 1 {k} | xargs -P {k} -I{{}} scp {opts} {path} agent-{{}}:{dest}/agent-{{}}/"]


def proc_cpu(pids):
    """CPU seconds (user + system, with waited-for children) of pids now."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError):
            pass
    return total / TICK


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, queue = [], [root]
    while queue:
        for c in kids.get(queue.pop(), []):
            out.append(c)
            queue.append(c)
    return out


def run(cmd, stdin=None, want=None):
    """Runs cmd to its end; returns (seconds, None, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}: {err.decode(errors='replace')}")
    if want is not None and not want(out):
        raise SystemExit(f"{' '.join(cmd)}: unexpected output {out[:200]!r}")
    return dt, None, out


def run_rusage(cmd):
    """Runs cmd, reading its stdout here; returns (seconds, CPU seconds of
    cmd and its children, bytes read)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    n = 0
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        n += len(b)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}")
    return dt, ru.ru_utime + ru.ru_stime, n


class Peer:
    """The private sshd of ../shared/peers/ssh, started and stopped here."""

    def __init__(self):
        self.env = {**os.environ, "SSHPEER_DIR": SP}
        if not os.path.exists(CFG):
            subprocess.run(["bash", os.path.join(PEER, "setup.sh")], env=self.env, check=True)
        subprocess.run(["bash", os.path.join(PEER, "start.sh")], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(os.path.join(SP, "run", "pids")) as f:
            self.sshd = int(next(ln.split()[1] for ln in f if ln.split()[0] == "sshd"))
        for i in range(1, NODES + 1):
            os.makedirs(os.path.join(SP, "dest", f"agent-{i}"), exist_ok=True)

    def warm(self):
        """Opens (or keeps) the ControlMaster of agent-1..20."""
        subprocess.run(["bash", "-c", f"seq 1 {NODES} | xargs -P {NODES} -I{{}} ssh -F {CFG} "
                        + " ".join(MUX) + " agent-{} true"], check=True)

    def serving_pids(self):
        """The ControlMaster of agent-1 and every process under sshd."""
        out = subprocess.run(["ssh", "-F", CFG, *MUX, "-O", "check", "agent-1"],
                             capture_output=True, text=True).stderr
        pids = [int(w.split("=")[1].rstrip(")")) for w in out.split() if w.startswith("(pid=")]
        return pids + descendants(self.sshd)

    def stop(self):
        subprocess.run(["bash", os.path.join(PEER, "stop.sh")], env=self.env,
                       stdout=subprocess.DEVNULL)


def holders(root):
    """PIDs of the connection holders this run started (their command line
    names the run's credential, under root)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"hold-connection" in cmd and any(root.encode() in c for c in cmd):
            out.append(int(d))
    return out


def stop_holders(root):
    """Stops the connection holders this run started."""
    for p in holders(root):
        try:
            os.kill(p, 15)
        except OSError:
            pass


def payload(src, k):
    """src's text as valid YAML of the same size that is a new version (k):
    the peer scripts' payloads end mid-record, so the last, cut record is
    replaced by a comment of the same length."""
    with open(src) as f:
        text = f.read()
    body = text[: text.rindex("\n  - name:") + 1]
    tag = f"# push {k:08d}\n"
    pad = len(text) - len(body) - len(tag)
    if pad >= 2:
        body += "#" + "x" * (pad - 2) + "\n"
    return body + tag


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--exec-runs", type=int, default=20, help="exec true runs per round and side")
    ap.add_argument("--push-runs", type=int, default=5)
    ap.add_argument("--stream-runs", type=int, default=2)
    ap.add_argument("--fan-runs", type=int, default=5)
    lifecycle.add_binary_args(ap)
    ap.add_argument("--out", default=None)
    ap.add_argument("--persist", metavar="DURATION",
                    help="run cdnctl with --persist DURATION (a local connection holder, as ssh's ControlPersist)")
    a = ap.parse_args()
    lifecycle.use_binaries(a)
    root = tempfile.mkdtemp(prefix="cdn-peers-")
    fleet = Fleet(root, "1s")
    peer = None
    # job -> list per round of (our samples, peer samples); samples in seconds
    res = {j: [] for j in TARGETS}
    cpu = {"stream out": ([], [], [], []), "stream in": ([], [], [], [])}
    try:
        peer = Peer()
        fleet.start_master()
        for i in range(1, NODES + 1):
            name = f"agent-{i}"
            extra = f"config:\n  path: {root}/{name}/edge.yml\n  min_free_bytes: 0\n"
            fleet.agents[name], _, _ = fleet.start_agent(name, extra=extra)
        wait(lambda: len(fleet.ctl_json("nodes", "list", "--status", "online") or []) == NODES,
             f"{NODES} agents online", timeout=300)
        ctl = fleet.ctl()
        if a.persist:
            # The holder's socket under this run's directory, not the user's.
            os.environ["XDG_RUNTIME_DIR"] = os.path.join(root, "run")
            os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
            ctl = [*ctl, "--persist", a.persist]
        servers = [fleet.master.pid, fleet.agents["agent-1"].pid]
        pay = {"10 KiB": os.path.join(SP, "payload", "cfg-10k.yaml"),
               "1 MiB": os.path.join(SP, "payload", "cfg-1m.yaml")}
        push_file = os.path.join(root, "push.yaml")
        version = [0]

        def ours_push(src, k):
            version[0] += 1
            with open(push_file, "w") as f:
                f.write(payload(src, version[0]))
            nodes = [] if k == NODES else [x for i in range(1, k + 1) for x in ("--node", f"agent-{i}")]

            def applied(out):
                return json.loads(out)["applied"] == k
            return run([*ctl, "config", "push", push_file, *nodes, "-o", "json"], want=applied)[0]

        zeros = ["head", "-c", str(STREAM_BYTES), "/dev/zero"]

        for r in range(a.rounds):
            print(f"round {r + 1}/{a.rounds}", flush=True)
            peer.warm()
            # warm-up of both sides, not counted
            run([*ctl, "exec", "agent-1", "--", "true"])
            run(ssh("agent-1", "true"))
            o, p = [], []
            for _ in range(a.exec_runs):
                o.append(run([*ctl, "exec", "agent-1", "--", "true"])[0])
                p.append(run(ssh("agent-1", "true"))[0])
            res["exec"].append((o, p))
            for size, src in pay.items():
                for k in (1, 3, NODES):
                    o, p = [], []
                    for _ in range(a.push_runs):
                        o.append(ours_push(src, k))
                        p.append(run(scp_to(src, k))[0])
                    res[f"push {size} → {k}"].append((o, p))
            for job, ours_cmd, peer_cmd in (
                ("stream out", [*ctl, "exec", "agent-1", "--", *zeros], ssh("agent-1", " ".join(zeros))),
                ("stream in", [*ctl, "exec", "agent-1", "--", "wc", "-c"], ssh("agent-1", "wc -c")),
            ):
                o, p = [], []
                oc, pc, osv, psv = cpu[job]
                for _ in range(a.stream_runs):
                    for side, cmd, times, client_cpu, server_cpu, pids in (
                        ("ours", ours_cmd, o, oc, osv, servers),
                        ("peer", peer_cmd, p, pc, psv, None),
                    ):
                        pids = (pids + holders(root)) if pids else peer.serving_pids()
                        before = proc_cpu(pids)
                        if job == "stream out":
                            dt, c, n = run_rusage(cmd)
                            assert n == STREAM_BYTES, (side, n)
                        else:
                            feeder = subprocess.Popen(zeros, stdout=subprocess.PIPE)
                            t0 = time.perf_counter()
                            pr = subprocess.Popen(cmd, stdin=feeder.stdout, stdout=subprocess.PIPE)
                            feeder.stdout.close()
                            out = pr.stdout.read()
                            _, status, ru = os.wait4(pr.pid, 0)
                            dt = time.perf_counter() - t0
                            feeder.wait()
                            assert os.waitstatus_to_exitcode(status) == 0, side
                            assert out.split() == [str(STREAM_BYTES).encode()], (side, out)
                            c = ru.ru_utime + ru.ru_stime
                        times.append(dt)
                        client_cpu.append(c)
                        server_cpu.append(proc_cpu(pids) - before)
                res[job].append((o, p))
            o, p = [], []
            for _ in range(a.fan_runs):
                o.append(run([*ctl, "exec", "--all", "--", "true"])[0])
                p.append(run(["bash", "-c", f"seq 1 {NODES} | xargs -P {NODES} -I{{}} ssh -F {CFG} "
                              + " ".join(MUX) + " agent-{} true"])[0])
            res["fan-out 20"].append((o, p))
    finally:
        fleet.stop()
        stop_holders(root)
        if peer:
            peer.stop()
        shutil.rmtree(root, ignore_errors=True)

    cores, model, kernel, mem = machine()
    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    cmdline = "python3 bench/peers.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k not in ("out", "no_build", "bin") and v not in (None, False))
    names = {
        "exec": ("`exec agent-1 -- true` (median)", "ssh+CM"),
        "stream out": (f"stream out, {STREAM_BYTES // 1_000_000} MB zeros", "ssh+CM"),
        "stream in": (f"stream in, {STREAM_BYTES // 1_000_000} MB into remote `wc -c`", "ssh+CM"),
        "fan-out 20": ("fan-out `true` → 20 nodes", "ssh xargs -P20"),
    }
    lines = [
        "# Side by side with OpenSSH (bench/peers.py)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cores} cores ({model}), kernel {kernel}; "
        f"{ssh_v}, warm ControlMaster, private sshd from the peer scripts (`../shared/peers/ssh`).",
        f"Ours: release build, masterd + {NODES} agents on mutual TLS over loopback, cdnctl with the admin credential.",
        f"Command: `{cmdline}`"
        + (f" (cdnctl with `--persist {a.persist}`: a local connection holder, its CPU counted as serving)"
           if a.persist else " (cdnctl without `--persist`: a TLS handshake per invocation)")
        + f". Ours and the peer alternate run by run within each of {a.rounds} rounds.",
        "Ratio = our time / the peer's time (below 1: ours is faster), from the medians over all rounds; "
        "range = lowest and highest per-round ratio of medians.",
        "",
        "| job | ours | peer | ratio | range | target |",
        "|---|---|---|---|---|---|",
    ]
    for job, rounds in res.items():
        if not rounds:
            continue
        ours = [x for o, _ in rounds for x in o]
        theirs = [x for _, p in rounds for x in p]
        mo, mp = statistics.median(ours), statistics.median(theirs)
        per = [statistics.median(o) / statistics.median(p) for o, p in rounds]
        label, pname = names.get(job, (job + (" node" if job.endswith(" 1") else " nodes"),
                                       "scp" if job.endswith(" 1") else f"scp ‖{job.split()[-1]}"))
        if job.startswith("stream"):
            vo, vp = f"{STREAM_BYTES / mo / 1e6:.0f} MB/s", f"{pname} {STREAM_BYTES / mp / 1e6:.0f} MB/s"
        else:
            vo, vp = f"{mo * 1000:.1f} ms", f"{pname} {mp * 1000:.1f} ms"
        t = TARGETS[job]
        target = "-" if t is None else (f"≤ {t:.2f}" + (" ✓" if mo / mp <= t else " ✗"))
        lines.append(f"| {label} | {vo} | {vp} | {mo / mp:.2f} | {min(per):.2f}–{max(per):.2f} | {target} |")
    lines += [
        "",
        "CPU seconds per stream run (median): the client process, and the serving side "
        "(masterd + agentd for ours; the ssh ControlMaster + sshd's processes for the peer), "
        "both including the remote command.",
        "",
        "| stream | ours client | ours serving | ours total | ssh client | ssh serving | ssh total |",
        "|---|---|---|---|---|---|---|",
    ]
    for job, (oc, pc, osv, psv) in cpu.items():
        if not oc:
            continue
        m = statistics.median
        lines.append(f"| {job} | {m(oc):.3f} | {m(osv):.3f} | {m(oc) + m(osv):.3f} | "
                     f"{m(pc):.3f} | {m(psv):.3f} | {m(pc) + m(psv):.3f} |")
    out = a.out or os.path.join(TOP, "bench", "results", f"peers-{time.strftime('%Y-%m-%d-%H%M', time.gmtime())}.md")
    write_report(out, lines)


if __name__ == "__main__":
    main()
