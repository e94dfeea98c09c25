# Shared by the benchmarks (sourced, not run): logging, arithmetic, and the bookkeeping that stops every
# long-lived process a benchmark started when it exits. Needs proc.sh (proc_tree).

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
calc() { awk "BEGIN { OFMT = \"%.6f\"; CONVFMT = \"%.6f\"; print ($*) }"; }

# Why a rate ladder stops after a step: "failures" (failed % at or over MAX_FAIL_PCT), "behind" (under 80 % of
# the offered rate), or nothing. Args: failed %, achieved/s, offered/s.
step_verdict() {
  if [ "$(calc "$1 >= $MAX_FAIL_PCT")" = 1 ]; then echo failures
  elif [ "$(calc "$2 < 0.8 * $3")" = 1 ]; then echo behind
  fi
}

STARTED_PIDS=()

# Stops a process started here and its descendants (TERM, then KILL after 5 s), and forgets it.
stop_pid() {
  local pid=$1 i tree p keep=()
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
  [ -d "/proc/$pid" ] || return 0
  tree=$(proc_tree "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  for p in $tree; do
    [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  while [ "${#STARTED_PIDS[@]}" -gt 0 ]; do stop_pid "${STARTED_PIDS[0]}"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# OPTIONS (scenario file OPTIONS_XML) to 127.0.0.1:PORT from SPORT until a 200 comes back (or give up after
# ~20 s). Uses SIPP and SIPP_COMMON of the benchmark.
wait_sip_ready() {
  local port=$1 sport=$2 i
  for i in $(seq 1 40); do
    if timeout -k 2 5 "$SIPP" -sf "$OPTIONS_XML" -m 1 "${SIPP_COMMON[@]}" -p "$sport" \
         -recv_timeout 400 -timeout 3s -timeout_error "127.0.0.1:$port" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}
