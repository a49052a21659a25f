#!/usr/bin/env bash
# local-stack.sh: the deploy/compose.yaml stack as local processes, for
# machines without Docker. Everything listens on 127.0.0.1, on free ports:
#
#   nats-server -js (temp store dir)   redis-server (no persistence)
#   vendorsim (the vendor simulator)   worker-1 (with demo traffic), worker-2
#   prometheus (scrapes both workers, loads deploy/prometheus/alerts.yml)
#
# Usage: scripts/local-stack.sh [-t seconds]
#   -t N   stop after N seconds (default: run until Ctrl-C / SIGTERM)
#
# Environment (all optional): NATS_SERVER (default /usr/sbin/nats-server,
# then PATH), REDIS_SERVER, PROMETHEUS, DEMO_RATE (events/s of worker-1's
# demo traffic, default 100), KEEP_DIR=1 (keep the temp dir with the logs).
#
# When everything is up it prints a line for scripts and tests:
#   LOCAL_STACK_READY dir=… prometheus=http://… worker-1=http://… worker-2=http://… vendorsim=http://… nats=nats://… redis=redis://…
# Every process is stopped on exit, error, Ctrl-C or SIGTERM.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=0
while getopts "t:h" opt; do
  case $opt in
    t) DURATION=$OPTARG ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
  esac
done

log() { echo "local-stack: $*" >&2; }
die() { log "$*"; exit 1; }

find_bin() { # name, preferred path
  if [ -n "${2:-}" ] && [ -x "$2" ]; then echo "$2"; return; fi
  command -v "$1" 2>/dev/null || true
}
NATS_SERVER=${NATS_SERVER:-$(find_bin nats-server /usr/sbin/nats-server)}
REDIS_SERVER=${REDIS_SERVER:-$(find_bin redis-server)}
PROMETHEUS=${PROMETHEUS:-$(find_bin prometheus)}
[ -n "$NATS_SERVER" ] || die "nats-server not found; install it: apt-get install -y nats-server"
[ -n "$REDIS_SERVER" ] || die "redis-server not found; install it: apt-get install -y redis-server"
[ -n "$PROMETHEUS" ] || die "prometheus not found; install it: apt-get install -y prometheus"
command -v go >/dev/null || die "go not found"
command -v curl >/dev/null || die "curl not found; install it: apt-get install -y curl"

WORK=$(mktemp -d -t friendsync-stack.XXXXXX)
PIDS=()
NAMES=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  # Stop in reverse order of start: Prometheus, workers (they drain), then
  # the simulator, Redis and NATS.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null
    local n=0
    while kill -0 "${PIDS[i]}" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
    if kill -0 "${PIDS[i]}" 2>/dev/null; then
      log "${NAMES[i]} did not stop in 30s; killing it"
      kill -KILL "${PIDS[i]}" 2>/dev/null
    fi
    wait "${PIDS[i]}" 2>/dev/null
  done
  if [ "${KEEP_DIR:-0}" = 1 ] || { [ $rc -ne 0 ] && [ $rc -ne 130 ] && [ $rc -ne 143 ]; }; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  log "stopped"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a port nothing listens on (and not handed out before).
USED=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    case $USED in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED="$USED$p "
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

start() { # name, command...
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}

wait_until() { # what, seconds, command...
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    local j
    for j in "${!PIDS[@]}"; do
      kill -0 "${PIDS[j]}" 2>/dev/null || { tail -n 20 "$WORK/${NAMES[j]}.log" >&2; die "${NAMES[j]} exited (log above)"; }
    done
    sleep 0.1
  done
  die "$what not ready after ${secs}s (logs in $WORK)"
}

NATS_PORT=$(free_port)
NATS_MON=$(free_port)
REDIS_PORT=$(free_port)
SIM_PORT=$(free_port)
W1_PORT=$(free_port)
W2_PORT=$(free_port)
PROM_PORT=$(free_port)

log "building worker and vendorsim into $WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/worker" ./cmd/worker && go build -o "$WORK/bin/vendorsim" ./cmd/vendorsim) ||
  die "go build failed"

mkdir -p "$WORK/nats" "$WORK/redis" "$WORK/prometheus"
start nats "$NATS_SERVER" -js -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MON" -sd "$WORK/nats" -n friendsync-local
start redis "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save "" --appendonly no
start vendorsim "$WORK/bin/vendorsim" -listen "127.0.0.1:$SIM_PORT"
wait_until "nats-server" 20 curl -fsS "http://127.0.0.1:$NATS_MON/healthz?js-enabled-only=true"
wait_until "redis-server" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG"
wait_until "vendorsim" 20 curl -fsS "http://127.0.0.1:$SIM_PORT/admin/counters"

# The compose profiles, pointed at the local simulator.
sed "s#http://vendorsim:8090#http://127.0.0.1:$SIM_PORT#g" "$ROOT/deploy/profiles.sim.yaml" >"$WORK/profiles.yaml"

worker_env=(
  FRIENDSYNC_NATS_URL="nats://127.0.0.1:$NATS_PORT"
  FRIENDSYNC_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  FRIENDSYNC_PROFILES="$WORK/profiles.yaml"
  FRIENDSYNC_LOG_FORMAT=json
)
start worker-1 env "${worker_env[@]}" FRIENDSYNC_WORKER_ID=worker-1 FRIENDSYNC_HTTP_ADDR="127.0.0.1:$W1_PORT" \
  FRIENDSYNC_DEMO=true FRIENDSYNC_DEMO_RATE="${DEMO_RATE:-100}" "$WORK/bin/worker"
wait_until "worker-1" 60 curl -fsS "http://127.0.0.1:$W1_PORT/readyz"
# The second worker starts once the first has created the stream.
start worker-2 env "${worker_env[@]}" FRIENDSYNC_WORKER_ID=worker-2 FRIENDSYNC_HTTP_ADDR="127.0.0.1:$W2_PORT" \
  FRIENDSYNC_DEMO=false "$WORK/bin/worker"
wait_until "worker-2" 60 curl -fsS "http://127.0.0.1:$W2_PORT/readyz"

cp "$ROOT/deploy/prometheus/alerts.yml" "$WORK/prometheus/alerts.yml"
cat >"$WORK/prometheus/prometheus.yml" <<EOF
# Written by scripts/local-stack.sh (deploy/prometheus/prometheus.yml with local addresses).
global:
  scrape_interval: 2s
  evaluation_interval: 5s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: friendsync-worker
    static_configs:
      - targets: ["127.0.0.1:$W1_PORT", "127.0.0.1:$W2_PORT"]
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROM_PORT"]
EOF
start prometheus "$PROMETHEUS" --config.file="$WORK/prometheus/prometheus.yml" \
  --storage.tsdb.path="$WORK/prometheus/data" --web.listen-address="127.0.0.1:$PROM_PORT"
wait_until "prometheus" 30 curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready"

cat >&2 <<EOF
local-stack: friendsync is up (logs in $WORK/*.log)
  worker-1    http://127.0.0.1:$W1_PORT/ui   (demo traffic ${DEMO_RATE:-100}/s)
  worker-2    http://127.0.0.1:$W2_PORT/ui
  prometheus  http://127.0.0.1:$PROM_PORT   (alerts: /alerts)
  vendorsim   http://127.0.0.1:$SIM_PORT/admin/counters
  nats        nats://127.0.0.1:$NATS_PORT   (go run ./cmd/enqueue -nats-url …)
  redis       redis://127.0.0.1:$REDIS_PORT
Ctrl-C stops everything.
EOF
echo "LOCAL_STACK_READY dir=$WORK prometheus=http://127.0.0.1:$PROM_PORT worker-1=http://127.0.0.1:$W1_PORT worker-2=http://127.0.0.1:$W2_PORT vendorsim=http://127.0.0.1:$SIM_PORT nats=nats://127.0.0.1:$NATS_PORT redis=redis://127.0.0.1:$REDIS_PORT"

# Run until a signal, the duration, or a process exiting on its own.
deadline=0
[ "$DURATION" -gt 0 ] && deadline=$((SECONDS + DURATION))
while :; do
  for j in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[j]}" 2>/dev/null; then
      tail -n 20 "$WORK/${NAMES[j]}.log" >&2
      die "${NAMES[j]} exited (log above)"
    fi
  done
  if [ $deadline -gt 0 ] && [ $SECONDS -ge $deadline ]; then
    log "duration of ${DURATION}s reached"
    exit 0
  fi
  sleep 1 &
  wait $! || true
done
