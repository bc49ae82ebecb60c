#!/usr/bin/env bash
# Local observability stack for end-to-end tests: OTel Collector (bin/otelcol-bulwark),
# Jaeger v2 (bin/jaeger, in-memory) and Prometheus (Debian package), as plain processes on
# free ports of 127.0.0.1. No Docker needed.
#
#   otel-collector/e2e-stack.sh start        build what is missing, start, wait until ready,
#                                            write $E2E_DIR/ports.env, return
#   otel-collector/e2e-stack.sh stop         stop everything started by `start`
#   otel-collector/e2e-stack.sh status       show pids and ports
#   otel-collector/e2e-stack.sh run CMD...   start, run CMD with ports.env exported, stop
#   otel-collector/e2e-stack.sh build        only build/install the binaries
#   otel-collector/e2e-stack.sh prometheus   only install Prometheus and promtool (Debian) if missing
#
# Environment:
#   E2E_DIR          state, logs, rendered configs (default <repo>/tmp/e2e-stack; gitignored)
#   E2E_WATCH_PID    `start` leaves a watchdog that stops the stack when this process exits
#                    (default: the caller, i.e. this script's parent process)
#   E2E_MAX_SECONDS  the watchdog also stops the stack after this many seconds (default 3600)
#   E2E_READY_TIMEOUT seconds to wait for readiness (default 60)
#
# ports.env (sourceable, KEY=value) has OTLP_GRPC_PORT, OTLP_HTTP_PORT, PROM_EXPORTER_PORT,
# COLLECTOR_HEALTH_PORT, JAEGER_OTLP_GRPC_PORT, JAEGER_QUERY_PORT, JAEGER_QUERY_GRPC_PORT,
# JAEGER_HEALTH_PORT, PROMETHEUS_PORT and the ready-made URLS OTEL_EXPORTER_OTLP_ENDPOINT
# (for the service; the gRPC port, hence OTEL_EXPORTER_OTLP_PROTOCOL=grpc next to it — the
# service's default protocol is http/protobuf, which wants OTLP_HTTP_PORT), PROMETHEUS_URL,
# JAEGER_QUERY_URL, COLLECTOR_METRICS_URL.
#
# First run builds the collector (~2-4 min) and Jaeger (~5 min) on 2 cores; later runs reuse bin/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
export E2E_DIR="${E2E_DIR:-$root/tmp/e2e-stack}"
READY_TIMEOUT="${E2E_READY_TIMEOUT:-60}"
COLLECTOR_BIN="$root/bin/otelcol-bulwark"
JAEGER_BIN="$root/bin/jaeger"
SERVICES=(collector jaeger prometheus)

log() { echo "e2e-stack: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

build() {
  "$here/build-collector.sh" >&2
  if [[ ! -x "$JAEGER_BIN" ]]; then
    log "building Jaeger into $JAEGER_BIN (takes ~5 min on 2 cores)"
    local t0=$SECONDS
    (cd "$here/tools" && GOFLAGS=-buildvcs=false go build -trimpath -ldflags="-s -w" \
      -o "$JAEGER_BIN" github.com/jaegertracing/jaeger/cmd/jaeger) >&2
    log "built Jaeger in $((SECONDS - t0))s"
  fi
  install_prometheus
  command -v curl >/dev/null 2>&1 || die "curl is required"
}

# Prometheus and promtool from Debian (also what `make slo-test` uses).
install_prometheus() {
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    log "installing Prometheus from Debian"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus) >&2
    # The Debian package may start a system service on :9090; we run our own process instead.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  fi
}

# A port is taken as free when nothing accepts a connection on it and we have not picked it.
picked=" "
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    [[ "$picked" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      picked+="$p "
      echo "$p"; return 0
    fi
  done
  die "no free port found"
}

is_running() { local f="$E2E_DIR/$1.pid"; [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; }

# spawn NAME CMD... : start in its own session (so the whole group can be signalled), stdio to
# files only (a caller reading our stdout must not be kept waiting by a child holding it).
spawn() {
  local name=$1; shift
  setsid "$@" >"$E2E_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$E2E_DIR/$name.pid"
}

wait_http() { # NAME URL [grep-pattern]
  local name=$1 url=$2 pat=${3:-} deadline=$((SECONDS + READY_TIMEOUT)) body
  while (( SECONDS < deadline )); do
    is_running "$name" || { tail -20 "$E2E_DIR/$name.log" >&2; die "$name exited during start-up (log: $E2E_DIR/$name.log)"; }
    if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null) && [[ -z "$pat" || "$body" == *$pat* ]]; then
      return 0
    fi
    sleep 0.3
  done
  tail -20 "$E2E_DIR/$name.log" >&2
  die "$name not ready after ${READY_TIMEOUT}s ($url)"
}

stop_stack() {
  local name pid i any=0
  for name in "${SERVICES[@]}"; do
    [[ -f "$E2E_DIR/$name.pid" ]] || continue
    pid=$(cat "$E2E_DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; any=1; fi
  done
  for i in $(seq 1 50); do # up to 10 s for a clean shutdown
    local alive=0
    for name in "${SERVICES[@]}"; do is_running "$name" && alive=1; done
    (( alive )) || break
    sleep 0.2
  done
  for name in "${SERVICES[@]}"; do
    if is_running "$name"; then pid=$(cat "$E2E_DIR/$name.pid"); log "killing $name ($pid)"; kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$E2E_DIR/$name.pid"
  done
  if [[ -f "$E2E_DIR/watchdog.pid" ]]; then
    pid=$(cat "$E2E_DIR/watchdog.pid")
    if [[ "$pid" != "${E2E_IS_WATCHDOG:-}" ]]; then kill "$pid" 2>/dev/null || true; fi
    rm -f "$E2E_DIR/watchdog.pid"
  fi
  (( any )) && log "stopped" || true
}

start_stack() {
  build
  mkdir -p "$E2E_DIR"
  stop_stack
  rm -rf "$E2E_DIR/prometheus-data"
  # Whatever was started is stopped again if start-up fails half-way.
  trap '[[ "${stack_ready:-}" == 1 ]] || stop_stack' EXIT

  local OTLP_GRPC_PORT OTLP_HTTP_PORT PROM_EXPORTER_PORT COLLECTOR_HEALTH_PORT JAEGER_OTLP_GRPC_PORT \
    JAEGER_QUERY_PORT JAEGER_QUERY_GRPC_PORT JAEGER_HEALTH_PORT PROMETHEUS_PORT
  OTLP_GRPC_PORT=$(free_port); OTLP_HTTP_PORT=$(free_port); PROM_EXPORTER_PORT=$(free_port)
  COLLECTOR_HEALTH_PORT=$(free_port); JAEGER_OTLP_GRPC_PORT=$(free_port); JAEGER_QUERY_PORT=$(free_port)
  JAEGER_QUERY_GRPC_PORT=$(free_port); JAEGER_HEALTH_PORT=$(free_port); PROMETHEUS_PORT=$(free_port)
  # free_port runs in a subshell, so re-check the picks are distinct.
  local all="$OTLP_GRPC_PORT $OTLP_HTTP_PORT $PROM_EXPORTER_PORT $COLLECTOR_HEALTH_PORT $JAEGER_OTLP_GRPC_PORT $JAEGER_QUERY_PORT $JAEGER_QUERY_GRPC_PORT $JAEGER_HEALTH_PORT $PROMETHEUS_PORT"
  [[ $(tr ' ' '\n' <<<"$all" | sort -u | wc -l) == 9 ]] || { log "port clash, retrying"; start_stack; return; }

  cat >"$E2E_DIR/ports.env" <<EOF
E2E_DIR=$E2E_DIR
OTLP_GRPC_PORT=$OTLP_GRPC_PORT
OTLP_HTTP_PORT=$OTLP_HTTP_PORT
PROM_EXPORTER_PORT=$PROM_EXPORTER_PORT
COLLECTOR_HEALTH_PORT=$COLLECTOR_HEALTH_PORT
JAEGER_OTLP_GRPC_PORT=$JAEGER_OTLP_GRPC_PORT
JAEGER_QUERY_PORT=$JAEGER_QUERY_PORT
JAEGER_QUERY_GRPC_PORT=$JAEGER_QUERY_GRPC_PORT
JAEGER_HEALTH_PORT=$JAEGER_HEALTH_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_GRPC_PORT
OTEL_EXPORTER_OTLP_PROTOCOL=grpc
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT
COLLECTOR_METRICS_URL=http://127.0.0.1:$PROM_EXPORTER_PORT/metrics
EOF
  set -a; . "$E2E_DIR/ports.env"; set +a

  sed -e "s/__COLLECTOR_METRICS_TARGET__/127.0.0.1:$PROM_EXPORTER_PORT/" \
    -e "s|__RULES_DIR__|$root/grafana/prometheus/rules|" "$here/prometheus.local.yml" >"$E2E_DIR/prometheus.yml"

  # Jaeger first, so the collector's exporter finds it listening.
  spawn jaeger "$JAEGER_BIN" --config "$here/jaeger.local.yaml"
  wait_http jaeger "http://127.0.0.1:$JAEGER_HEALTH_PORT/status" '"healthy":true'
  # Base rate 100 %: TestPipeline looks up ordinary traces (a cache hit, a 429, exemplars) in
  # Jaeger. TestTailSampling starts its own collector at 1 % (otel-collector/e2e).
  TAIL_SAMPLING_PERCENTAGE=100 spawn collector "$COLLECTOR_BIN" --config "$here/config.local.yaml"
  spawn prometheus prometheus --config.file="$E2E_DIR/prometheus.yml" \
    --storage.tsdb.path="$E2E_DIR/prometheus-data" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --enable-feature=exemplar-storage

  # Watchdog: stops the stack when the watched process exits or the time limit passes, so
  # nothing outlives a harness that forgets (or does not get) to call stop.
  local watch="${E2E_WATCH_PID:-$PPID}" max="${E2E_MAX_SECONDS:-3600}"
  setsid bash -c '
    watch=$1 max=$2 self=$3
    end=$(( SECONDS + max ))
    while kill -0 "$watch" 2>/dev/null && (( SECONDS < end )); do sleep 1; done
    E2E_IS_WATCHDOG=$$ exec "$self" stop' watchdog "$watch" "$max" "$self" \
    >"$E2E_DIR/watchdog.log" 2>&1 </dev/null &
  echo $! >"$E2E_DIR/watchdog.pid"

  wait_http collector "http://127.0.0.1:$COLLECTOR_HEALTH_PORT/"
  wait_http prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
  # The first scrape of the collector has happened (up == 1).
  wait_http prometheus "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query?query=up%7Bjob%3D%22otel-collector%22%7D" '"value":[' 
  stack_ready=1
  log "ready; ports in $E2E_DIR/ports.env (watchdog on pid $watch, max ${max}s)"
  cat "$E2E_DIR/ports.env"
}

status() {
  local name
  for name in "${SERVICES[@]}" watchdog; do
    if [[ -f "$E2E_DIR/$name.pid" ]] && kill -0 "$(cat "$E2E_DIR/$name.pid")" 2>/dev/null; then
      echo "$name running pid $(cat "$E2E_DIR/$name.pid")"
    else
      echo "$name stopped"
    fi
  done
  if [[ -f "$E2E_DIR/ports.env" ]]; then cat "$E2E_DIR/ports.env"; fi
}

cmd="${1:-start}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  build) build ;;
  prometheus) install_prometheus ;;
  start) start_stack ;;
  stop) stop_stack ;;
  status) status ;;
  run)
    [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARGS...]"
    E2E_WATCH_PID=$$ start_stack >/dev/null
    trap stop_stack EXIT INT TERM
    set -a; . "$E2E_DIR/ports.env"; set +a
    "$@"
    ;;
  *) die "usage: $0 start|stop|status|run CMD...|build|prometheus" ;;
esac
