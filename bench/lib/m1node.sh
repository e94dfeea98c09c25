# Starting m1node for the benchmarks (sourced, not run). Needs run.sh (STARTED_PIDS) and ROOT (the repository).

# Sets the array named $1 to the settings every benchmark node shares: SIP on 127.0.0.1:$2 (UDP and TCP; WebSocket on
# any free port), SIP domain 127.0.0.1, egress to loopback only, web (health, metrics) on 127.0.0.1:$3, warn logs.
# The benchmark appends its own M1NODE_* settings.
m1node_env() {
  local -n _env=$1
  local port=$2 web=$3
  _env=(M1NODE_SIP_UDP_PORT="$port" M1NODE_SIP_TCP_PORT="$port" M1NODE_SIP_WS_PORT=0
    M1NODE_SIP_HOST=127.0.0.1 M1NODE_SIP_DOMAIN=127.0.0.1 M1NODE_SIP_EGRESS_ALLOW=127.0.0.0/8
    M1NODE_WEB_HOST=127.0.0.1 M1NODE_WEB_PORT="$web" M1NODE_LOG_LEVEL=warn)
}

# m1node_start DIR WEB ENV...: runs `m1node start` on DIR/data with the ENV settings (log: DIR/m1node.log), in the
# background, and waits up to 30 s for http://127.0.0.1:WEB/health. Sets TARGET_PID (also in STARTED_PIDS); returns 1
# with TARGET_SKIP set when the node exits or never answers.
m1node_start() {
  local dir=$1 web=$2 i
  shift 2
  env "$@" node "$ROOT/bin/m1node.js" start --data "$dir/data" >"$dir/m1node.log" 2>&1 &
  TARGET_PID=$!
  STARTED_PIDS+=("$TARGET_PID")
  for i in $(seq 1 60); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$web/health" 2>/dev/null; then return 0; fi
    if [ ! -d "/proc/$TARGET_PID" ]; then
      TARGET_SKIP="m1node exited: $(tail -3 "$dir/m1node.log" | tr '\n' ' ')"
      return 1
    fi
    sleep 0.5
  done
  TARGET_SKIP="/health not ready after 30 s"
  return 1
}
