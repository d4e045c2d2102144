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
# FLEET_NO_CONTEXT=1 (do not add the `local-fleet` context to the cdnctl config).
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
    exec "$bin/cdnctl" --credential "$dir/master-data/admin.credential" --master "127.0.0.1:$port" nodes list
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
# Agents enrolled with a CA that is gone would be refused: start them afresh.
if [ ! -e "$dir/master-data/pki/ca.crt" ]; then
  rm -rf "$dir"/agent-*-data
fi

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
  join_token_file: $dir/master-data/join-token
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
data_dir: $dir/$name-data
YAML
  "$bin/agentd" -c "$dir/$name.yml" </dev/null >/dev/null 2>"$dir/$name.log" &
  echo $! >"$dir/$name.pid"
done

cred="$dir/master-data/admin.credential"
ctl() { "$bin/cdnctl" --credential "$cred" --master "127.0.0.1:$port" "$@"; }
for _ in $(seq 100); do
  online=$(ctl nodes list --status online -o json 2>/dev/null | grep -c '"name"' || true)
  [ "$online" -ge "$agents" ] && break
  sleep 0.1
done
sleep 2.2 # one status report, so CPU and memory are filled in
ctl nodes list
# So that plain `cdnctl` works: a context for this fleet, made current
# (FLEET_NO_CONTEXT=1 leaves the cdnctl config alone).
if [ -z "${FLEET_NO_CONTEXT:-}" ]; then
  "$bin/cdnctl" --credential "$cred" --master "127.0.0.1:$port" \
    context add local-fleet --force --use >/dev/null
  note="context local-fleet added to your cdnctl config and made current"
else
  note="no cdnctl context added (FLEET_NO_CONTEXT)"
fi
cat <<MSG

Local fleet running over mutual TLS: masterd on 127.0.0.1:$port, $agents agents; logs in $dir/.
Admin credential: $cred ($note).
Join token for more agents: $dir/master-data/join-token
  $bin/cdnctl nodes list
  $0 stop        # stop it
MSG
