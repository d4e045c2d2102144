#!/usr/bin/env bash
# Builds the binaries and starts a local fleet on loopback: one masterd and
# agents agent-1, agent-2, agent-3 (the seed's pre-connect list), then shows
# `cdnctl nodes list`.
#
#   deploy/local-fleet.sh            start (or restart) the fleet
#   deploy/local-fleet.sh status     show the nodes
#   deploy/local-fleet.sh stop       stop every process it started
#
# State, logs and pid files live in .fleet/ at the top of the checkout.
# Environment: FLEET_PORT (default 50051), FLEET_AGENTS (default 3),
# FLEET_PROFILE (release|debug, default release).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.fleet"
port=${FLEET_PORT:-50051}
agents=${FLEET_AGENTS:-3}
profile=${FLEET_PROFILE:-release}
bin="$top/target/$profile"

stop() {
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

case "${1:-start}" in
  stop)
    stop
    echo "local fleet stopped (state kept in $dir; remove it to forget the nodes)"
    exit 0
    ;;
  status)
    exec "$bin/cdnctl" --master "127.0.0.1:$port" nodes list
    ;;
  start) ;;
  *)
    echo "usage: $0 [start|status|stop]" >&2
    exit 2
    ;;
esac

if [ "$profile" = release ]; then
  cargo build --release --bins --quiet
else
  cargo build --bins --quiet
fi
stop
mkdir -p "$dir"

cat > "$dir/master.yml" <<YAML
grpc:
  addr: 127.0.0.1:$port
heartbeat:
  interval: 2s
  timeout: 10s
  offline_threshold: 3
reconnect:
  base_delay: 100ms
  max_delay: 5s
data_dir: $dir/master-data
YAML

"$bin/masterd" -c "$dir/master.yml" </dev/null >"$dir/masterd.out" 2>"$dir/masterd.log" &
echo $! >"$dir/masterd.pid"
for _ in $(seq 100); do
  grep -q '^listening' "$dir/masterd.out" 2>/dev/null && break
  if ! kill -0 "$(cat "$dir/masterd.pid")" 2>/dev/null; then
    echo "masterd failed to start:" >&2
    tail -n 20 "$dir/masterd.log" >&2
    exit 1
  fi
  sleep 0.1
done

for i in $(seq 1 "$agents"); do
  name="agent-$i"
  cat > "$dir/$name.yml" <<YAML
master:
  addr: 127.0.0.1:$port
  dial_timeout: 5s
heartbeat:
  interval: 2s
  timeout: 6s
status:
  collect_interval: 2s
  report_interval: 2s
config:
  path: $dir/$name/edge.yml
  reload_command: "true"
node:
  id: $name
  labels:
    pop: local
    role: edge
YAML
  "$bin/agentd" -c "$dir/$name.yml" </dev/null >/dev/null 2>"$dir/$name.log" &
  echo $! >"$dir/$name.pid"
done

ctl() { "$bin/cdnctl" --master "127.0.0.1:$port" "$@"; }
for _ in $(seq 100); do
  online=$(ctl nodes list --status online -o json 2>/dev/null | grep -c '"name"' || true)
  [ "$online" -ge "$agents" ] && break
  sleep 0.1
done
sleep 2.2 # one status report, so CPU and memory are filled in
ctl nodes list
cat <<MSG

Local fleet running: masterd on 127.0.0.1:$port, $agents agents; logs in $dir/.
  $bin/cdnctl --master 127.0.0.1:$port nodes list
  $0 stop        # stop it
MSG
