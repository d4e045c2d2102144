#!/usr/bin/env python3
"""Compression settings against each other, release build over loopback.

For every setting of master.yml `compression` (none; gzip at levels 1, 6
and 9; zstd at levels 1, 3 and 9), a fresh master and one agent on mutual
TLS; pushes the 10 KiB and 1 MiB YAML payloads (the peers' gen_payload.py
files when present) N times each and records the bytes on the wire, the
wall time of `cdnctl config push` (spawn to exit, the agent having written,
fsynced and acknowledged) and the master's time from storing the version to
the acknowledgement.

Usage: python3 bench/compression.py [--pushes 10] [--out FILE]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from config_push import payloads, push_series, start_fleet  # noqa: E402
from lifecycle import TOP, write_report  # noqa: E402

SETTINGS = [
    ("none", "none", 6),
    ("gzip 1", "gzip", 1),
    ("gzip 6 (default)", "gzip", 6),
    ("gzip 9", "gzip", 9),
    ("zstd 1", "zstd", 1),
    ("zstd 3", "zstd", 3),
    ("zstd 9", "zstd", 9),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results", "compression.md"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=TOP, check=True)

    rows = []
    for label, algorithm, level in SETTINGS:
        root = tempfile.mkdtemp(prefix="cdn-zip-")
        extra = f"compression:\n  algorithm: {algorithm}\n  level: {level}\n"
        fleet = start_fleet(root, 1, master_extra=extra)
        try:
            for name, text in payloads(root).items():
                wall, master, wire, size, _ = push_series(fleet, root, text, a.pushes, 1)
                rows.append((label, name, size, wire, statistics.median(wall), statistics.median(master)))
        finally:
            fleet.stop()
            shutil.rmtree(root, ignore_errors=True)

    lines = [
        "# Compression settings (release build, loopback)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2 cores; one agent on mutual TLS per setting;",
        f"medians over {a.pushes} pushes of a fresh version each; command: `python3 bench/compression.py --pushes {a.pushes}`.",
        "Wire = the payload sent to the agent (`cdn_config_bytes_total{kind=\"wire\"}` counts the same);",
        "the seed's target is a 70 % saving on large data.",
        "",
        "| setting | file | file bytes | bytes on the wire | saving | push wall median (ms) | master median (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, name, size, wire, wall, master in rows:
        lines.append(
            f"| {label} | {name} | {size} | {wire} | {100 * (1 - wire / size):.1f} % | {wall:.1f} | {master:.1f} |"
        )
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
