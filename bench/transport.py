#!/usr/bin/env python3
"""The seed's five transport figures beside ours, measured in one run
(release build, loopback, TLS on unless said otherwise) -- issue 7.

Reuses the other bench scripts' helpers (nothing in them is changed); where
the logic lives in one of their main() functions, the few lines needed are
repeated here:
  1. connection establishment (seed: 10 ms): a whole `cdnctl whoami` process
     against a TLS master and against a plaintext (`--insecure`) one, plus
     the `cdnctl --version` floor, interleaved (tls.interleaved); TLS minus
     plaintext medians = handshake + credential load per cdnctl invocation;
  2. heartbeat round trip (seed: 5 ms): 3 agents heartbeating every 100 ms
     for a while, each agent's own p50/p99 over its last 256 heartbeats
     (as lifecycle.py);
  3. config push of 1 MiB to 1 agent (seed: 50 ms): wall time of
     `cdnctl config push` from spawn to exit, the agent having written,
     fsynced and acknowledged (config_push.start_fleet / push_series);
  4. bytes on the wire for the 1 MiB YAML as % of raw (seed: 30 %) for
     none, gzip 1/6/9 and zstd (default level 6), one fresh master and agent
     each, from the push report, cross-checked against the master's
     `cdn_config_bytes_total{kind="wire"|"raw"}` metrics;
  5. reconnect after a dropped connection (seed: 500 ms): the agent's TCP
     connection killed with `ss -K` (needs root), kill -> the agent's
     "reconnected to master" log line (as drop.py).

Usage: python3 bench/transport.py [--runs 200] [--hb-seconds 30] [--pushes 20]
                                  [--zip-pushes 3] [--drops 20] [--out FILE]
Writes a Markdown report (default bench/results/transport.md) and prints it.
"""

import argparse
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from config_push import PEER_GEN, payloads, push_series, start_fleet  # noqa: E402
from drop import drop_series  # noqa: E402
from lifecycle import BIN, Fleet, TOP, machine, pct, wait, write_report  # noqa: E402
from tls import WARMUP, interleaved  # noqa: E402

# (label, master.yml compression section); zstd without a level takes the
# master's default level (6), as a user who only sets the algorithm gets.
WIRE_SETTINGS = [
    ("none", "compression:\n  algorithm: none\n"),
    ("gzip 1", "compression:\n  algorithm: gzip\n  level: 1\n"),
    ("gzip 6 (default)", "compression:\n  algorithm: gzip\n  level: 6\n"),
    ("gzip 9", "compression:\n  algorithm: gzip\n  level: 9\n"),
    ("zstd (level 6, default)", "compression:\n  algorithm: zstd\n"),
]
SEED = {"conn": 10.0, "hb": 5.0, "push": 50.0, "wire": 30.0, "reconnect": 500.0}


def free_port():
    """A TCP port free on 127.0.0.1 right now (for the metrics listener)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_bytes(metrics_port):
    """{kind: bytes} of cdn_config_bytes_total from the master's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^cdn_config_bytes_total\{kind="(\w+)"\} (\S+)', text, re.M)
    }


def connection(root, runs):
    """1. {label: [ms]} of whole cdnctl processes, interleaved (tls.py's a.)."""
    tls = Fleet(os.path.join(root, "tls"), "1s")
    plain = Fleet(os.path.join(root, "plain"), "1s", insecure=True)
    try:
        for f in (tls, plain):
            os.makedirs(f.root)
            f.start_master()
        return interleaved(
            {
                "version": [os.path.join(BIN, "cdnctl"), "--version"],
                "whoami plaintext": plain.ctl() + ["whoami"],
                "whoami TLS": tls.ctl() + ["whoami"],
            },
            runs,
        )
    finally:
        tls.stop()
        plain.stop()


def heartbeat(root, hb_interval, seconds):
    """2. {agent: (p50 ms, p99 ms)}, each agent's last 256 heartbeats (lifecycle.py's 2.)."""
    os.makedirs(root)
    fleet = Fleet(root, hb_interval)
    try:
        fleet.start_master()
        for n in ("agent-1", "agent-2", "agent-3"):
            fleet.agents[n], _, _ = fleet.start_agent(n)
        time.sleep(seconds)
        nodes = wait(lambda: fleet.ctl_json("nodes", "list", "--status", "online"), "node list")
        return {
            n["name"]: (n["heartbeat_rtt_p50_us"] / 1000, n["heartbeat_rtt_p99_us"] / 1000)
            for n in nodes
            if n["name"].startswith("agent-") and n.get("heartbeat_rtt_p50_us")
        }
    finally:
        fleet.stop()


def push(root, text, pushes):
    """3. (wall ms list, master ms list) of pushes of text to 1 agent (default compression)."""
    os.makedirs(root)
    fleet = start_fleet(root, 1)
    try:
        wall, master, _, _, _ = push_series(fleet, root, text, pushes, 1)
        return wall, master
    finally:
        fleet.stop()


def wire(root, text, pushes):
    """4. [(label, file bytes, wire bytes per push, metrics wire/raw %, wall median ms)]."""
    rows = []
    for label, section in WIRE_SETTINGS:
        sub = os.path.join(root, re.sub(r"\W+", "-", label))
        os.makedirs(sub)
        port = free_port()
        fleet = start_fleet(sub, 1, master_extra=section + f"metrics:\n  addr: 127.0.0.1:{port}\n")
        try:
            wall, _, wire_bytes, size, _ = push_series(fleet, sub, text, pushes, 1)
            m = config_bytes(port)
            rows.append((label, size, wire_bytes, 100 * m["wire"] / m["raw"], statistics.median(wall)))
        finally:
            fleet.stop()
    return rows


def reconnect(root, drops):
    """5. (kill -> reconnected ms list, agent's down_for_ms list)."""
    os.makedirs(root)
    return drop_series(root, drops)


def command_line(argv):
    """The command as run, from the repository root; absolute paths made relative."""
    args = [os.path.relpath(x, TOP) if os.path.isabs(x) else x for x in argv]
    return " ".join(["python3", "bench/transport.py", *map(shlex.quote, args)])


def met(ours, target):
    return "yes" if ours <= target else "**no**"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="runs of each cdnctl command (1)")
    ap.add_argument("--hb-interval", default="100ms", help="heartbeat interval of the 3 agents (2)")
    ap.add_argument("--hb-seconds", type=float, default=30.0, help="heartbeating before reading (2); 256 beats need 25.6 s at 100ms")
    ap.add_argument("--pushes", type=int, default=20, help="timed pushes of 1 MiB (3)")
    ap.add_argument("--zip-pushes", type=int, default=3, help="pushes per compression setting (4)")
    ap.add_argument("--drops", type=int, default=20, help="connection drops (5)")
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "transport.md"))
    a = ap.parse_args()

    started = time.time()
    load = open("/proc/loadavg").read().split()[0]
    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)
    built = time.time()
    version = subprocess.run([os.path.join(BIN, "cdnctl"), "--version"], capture_output=True, text=True).stdout.strip()

    root = tempfile.mkdtemp(prefix="cdn-transport-")
    try:
        text = payloads(root)["1 MiB"]
        print("1/5 connection establishment", file=sys.stderr)
        conn = connection(os.path.join(root, "conn"), a.runs)
        print("2/5 heartbeat round trip", file=sys.stderr)
        hb = heartbeat(os.path.join(root, "hb"), a.hb_interval, a.hb_seconds)
        if len(hb) != 3:
            raise SystemExit(f"heartbeat figures from {len(hb)} agents, expected 3: {hb}")
        print("3/5 config push 1 MiB", file=sys.stderr)
        wall, master = push(os.path.join(root, "push"), text, a.pushes)
        print("4/5 bytes on the wire", file=sys.stderr)
        zips = wire(os.path.join(root, "wire"), text, a.zip_pushes)
        print("5/5 reconnect after a drop", file=sys.stderr)
        recover, down = reconnect(os.path.join(root, "drop"), a.drops)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    finished = time.time()

    med = statistics.median
    cores, model, kernel, _ = machine()
    w_tls, w_plain, floor = med(conn["whoami TLS"]), med(conn["whoami plaintext"]), med(conn["version"])
    handshake = w_tls - w_plain
    hb_p50 = med(v[0] for v in hb.values())
    hb_p99 = max(v[1] for v in hb.values())
    per_agent = ", ".join(f"{n} {p50:.3f}/{p99:.3f}" for n, (p50, p99) in sorted(hb.items()))
    payload = "the peers' gen_payload.py `cfg-1m.yaml`" if os.path.exists(PEER_GEN) else "config_push.py's generated YAML"
    size = zips[0][1]

    lines = [
        "# Transport figures against the seed (release build, loopback)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on {cores} cores ({model}), "
        f"kernel {kernel}; load average (1 min) {load} at the start.",
        f"Command: `{command_line(sys.argv[1:])}` from the repository root "
        f"(options in effect: `--runs {a.runs} --hb-interval {a.hb_interval} --hb-seconds {a.hb_seconds:g} "
        f"--pushes {a.pushes} --zip-pushes {a.zip_pushes} --drops {a.drops}`); it builds the release "
        f"binaries first ({version}, built from the working tree). Run time {finished - started:.0f} s "
        f"({finished - built:.0f} s of measuring after the build). All five figures come from this one run.",
        "",
        "TLS on (the default: private CA, agents on mutual TLS, cdnctl with the admin credential) except",
        "the plaintext reference of row 1. \"met?\" compares our median with the seed's figure (the seed gives",
        "one number per figure, no percentile); p99 of fewer than 100 samples is their maximum.",
        "",
        "| figure | seed target | ours (median) | p99 (where it applies) | met? |",
        "|---|---|---|---|---|",
        f"| connection establishment, TLS: handshake + credential load per cdnctl invocation | 10 ms | "
        f"{handshake:.2f} ms | — | {met(handshake, SEED['conn'])} |",
        f"| connection establishment, TLS: whole `cdnctl whoami` process | 10 ms | {w_tls:.2f} ms | "
        f"{pct(conn['whoami TLS'], .99):.2f} ms | {met(w_tls, SEED['conn'])} |",
        f"| heartbeat round trip | 5 ms | {hb_p50:.3f} ms | {hb_p99:.3f} ms | "
        f"{met(hb_p50, SEED['hb'])} |",
        f"| config push of 1 MiB to 1 agent (spawn of cdnctl → agent acked) | 50 ms | {med(wall):.1f} ms | "
        f"{pct(wall, .99):.1f} ms | {met(med(wall), SEED['push'])} |",
    ]
    for label, _, wire_bytes, _, _ in zips:
        share = 100 * wire_bytes / size
        if label == "none":
            lines.append(f"| bytes on the wire, 1 MiB YAML: none | 100 % (seed's \"before\") | {share:.1f} % | — | baseline |")
        else:
            lines.append(
                f"| bytes on the wire, 1 MiB YAML: {label} | 30 % | {share:.1f} % ({100 - share:.1f} % saved) | — | "
                f"{met(share, SEED['wire'])} |"
            )
    lines += [
        f"| reconnect after a dropped connection (kill → agent reconnected) | 500 ms | {med(recover):.0f} ms | "
        f"{pct(recover, .99):.0f} ms | {met(med(recover), SEED['reconnect'])} |",
        "",
        "How measured:",
        "",
        f"- **Connection establishment**: a TLS master and a plaintext (`--insecure`) master side by side;"
        f" `cdnctl whoami` against each and `cdnctl --version` (process start only), spawn to exit,"
        f" {a.runs} runs each, interleaved, {WARMUP} warm-up rounds dropped (`tls.interleaved`)."
        f" Handshake + credential = median `whoami` TLS {w_tls:.2f} − plaintext {w_plain:.2f} ms"
        f" (a difference of medians: no p99). The whole process includes the"
        f" {floor:.2f} ms process-start floor; plaintext `whoami` p99 {pct(conn['whoami plaintext'], .99):.2f} ms.",
        f"- **Heartbeat round trip**: 3 agents heartbeating every {a.hb_interval} for {a.hb_seconds:g} s;"
        f" each agent's own p50/p99 over its last 256 heartbeats (`cdnctl nodes list -o json`)."
        f" Median = median of the 3 agents' p50, p99 = the largest agent p99 (ms p50/p99: {per_agent}).",
        f"- **Config push 1 MiB**: {payload} ({size} bytes with the push counter line), default compression"
        f" (gzip 6); {a.pushes} pushes of a fresh version after 2 warm-ups (`config_push.push_series`)."
        f" Wall = spawn of `cdnctl config push` to its exit, the agent having written, fsynced and acknowledged;"
        f" the master's own time (stored → acked) median {med(master):.1f} ms, p99 {pct(master, .99):.1f} ms.",
        f"- **Bytes on the wire**: the same 1 MiB file, a fresh master and agent per setting,"
        f" {a.zip_pushes} timed push(es) each after 2 warm-ups; wire bytes from the push report, as % of the file bytes. Cross-check, the master's"
        f" `cdn_config_bytes_total` wire/raw over all its pushes (warm-ups included): "
        + ", ".join(f"{label} {m:.1f} %" for label, _, _, m, _ in zips)
        + ". Push wall medians (ms): "
        + ", ".join(f"{label} {w:.1f}" for label, _, _, _, w in zips)
        + ".",
        f"- **Reconnect**: one agent (heartbeat 1s), {a.drops} drops, each after 1.5 s of healthy session;"
        f" its TCP connection destroyed with `ss -K` (as a reset would); recovery = kill → the agent's"
        f" \"reconnected to master\" log line (polled every 5 ms); master's default backoff (100 ms base,"
        f" ± 30 % jitter). The agent's own `down_for_ms`: median {med(down):.0f}, max {max(down):.0f}.",
        "",
        "Older per-script results: bench/results/tls.md, lifecycle.md, config_push.md, compression.md, drop.md.",
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
