#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 10) from its seeds and the
# corpus it grew so far; stops at the first crash or hang (its input is
# kept in fuzz/artifacts/<target>/). Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`). Not in CI's critical path: run
# it by hand, or longer, as RELIABILITY.md lists.
#   fuzz/smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
. ./prelude.sh
fuzz_prelude 10 "$@"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== $t ($secs s)"
  nice -n 19 "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "corpus/$t" "seeds/$t" 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|Test unit written)' || true
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "!! $t: a crash or hang was written to fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
