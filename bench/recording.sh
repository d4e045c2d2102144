#!/usr/bin/env bash
# Two local fleets side by side for measuring what session recording costs:
# masterd "on" (exec.recording.mode: output, the default) on port $PORT_ON
# and masterd "off" (mode: off) on $PORT_OFF, each with one agent, agent-1.
# Both run at once, so a benchmark can alternate between them in one run.
#
#   bench/recording.sh start     build (release) and start both, print the cdnctl commands
#   bench/recording.sh stop      stop every process it started
#
# State and logs in .bench-recording/ at the top of the checkout.
# Environment: PORT_ON (default 50061), PORT_OFF (default 50062),
# PROFILE (release|debug, default release).
#
# Then, for example (median of alternating runs, with any timer):
#   on=".bench-recording/ctl-on"; off=".bench-recording/ctl-off"
#   $on exec agent-1 -- true                                   # latency
#   $on exec agent-1 -- head -c 200000000 /dev/zero | wc -c    # throughput
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.bench-recording"
profile=${PROFILE:-release}
bin="$top/target/$profile"

stop() {
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

if [ "$profile" = release ]; then
  cargo build --release --quiet -p masterd -p agentd -p cdnctl
else
  cargo build --quiet -p masterd -p agentd -p cdnctl
fi
stop
rm -rf "$dir"
mkdir -p "$dir"

fleet() { # name port mode
  local name=$1 port=$2 mode=$3 d="$dir/$1"
  mkdir -p "$d"
  cat >"$d/master.yml" <<YAML
grpc:
  addr: 127.0.0.1:$port
heartbeat:
  interval: 2s
  timeout: 10s
exec:
  recording:
    mode: $mode
    max_bytes: 1073741824
data_dir: $d/master-data
YAML
  "$bin/masterd" -c "$d/master.yml" </dev/null >"$d/masterd.out" 2>"$d/masterd.log" &
  echo $! >"$dir/masterd-$name.pid"
  for _ in $(seq 100); do
    grep -q '^listening' "$d/masterd.out" 2>/dev/null && break
    sleep 0.1
  done
  cat >"$d/agent.yml" <<YAML
master:
  addr: 127.0.0.1:$port
  join_token_file: $d/master-data/join-token
heartbeat:
  interval: 2s
  timeout: 6s
config:
  path: $d/edge.yml
  reload_command: "true"
node:
  id: agent-1
data_dir: $d/agent-data
YAML
  "$bin/agentd" -c "$d/agent.yml" </dev/null >/dev/null 2>"$d/agent.log" &
  echo $! >"$dir/agentd-$name.pid"
  printf '#!/bin/sh\nexec %s --credential %s --master 127.0.0.1:%s "$@"\n' \
    "$bin/cdnctl" "$d/master-data/admin.credential" "$port" >"$dir/ctl-$name"
  chmod +x "$dir/ctl-$name"
  for _ in $(seq 100); do
    "$dir/ctl-$name" nodes list --status online -o name 2>/dev/null | grep -q agent-1 && break
    sleep 0.1
  done
}

fleet on "${PORT_ON:-50061}" output
fleet off "${PORT_OFF:-50062}" off
echo "recording on:  $dir/ctl-on exec agent-1 -- true"
echo "recording off: $dir/ctl-off exec agent-1 -- true"
