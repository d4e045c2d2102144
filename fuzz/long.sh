#!/usr/bin/env bash
# Runs every fuzz target at the same time for SECONDS of wall time each
# (default 3600), `nice -n 19`, from its seeds and grown corpus; each
# target's libFuzzer log and its CPU time go to
# fuzz/logs/<start time>/<target>.log.
# Unlike smoke.sh it does not stop at a crash: every target runs its time,
# and a crash or hang ends only that target (its input in
# fuzz/artifacts/<target>/). Do not pause the targets (SIGSTOP) while
# something is measured: libFuzzer's -timeout counts wall time, so a pause
# longer than it ends the target with a false `timeout-*` (and keeps
# `slow-unit-*` inputs that are not slow). Stop them with SIGINT (each
# prints its figures) and start again: the corpus carries over.
#   fuzz/long.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
. ./prelude.sh
fuzz_prelude 3600 "$@"
logs="logs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$logs"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  nice -n 19 /usr/bin/time -f "cpu_user_s=%U cpu_sys_s=%S wall_s=%e max_rss_kb=%M" \
    "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "corpus/$t" "seeds/$t" \
    >"$logs/$t.log" 2>&1 &
done
wait
for t in "${targets[@]}"; do
  echo "== $t"
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|cpu_user_s|#[0-9]+.*DONE)' "$logs/$t.log" || true
  if compgen -G "artifacts/$t/[!s]*" >/dev/null; then
    echo "!! $t: a crash, hang or leak is in fuzz/artifacts/$t/"
  fi
  if compgen -G "artifacts/$t/slow-unit-*" >/dev/null; then
    echo "   $t: slow units kept in fuzz/artifacts/$t/ (after a pause? run each again)"
  fi
done
