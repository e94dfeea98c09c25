#!/usr/bin/env bash
# REGISTER benchmark: m1node against Kamailio 5.6 as the reference registrar.
#
#   bash bench/register.sh
#
# Each target runs alone on 127.0.0.1 with the same USERS accounts (login
# u00001.., password pw-<login>). SIPp drives test/interop/scenarios/register-auth.xml:
# one "call" = REGISTER -> 401 -> REGISTER with MD5 digest -> 200, so successful
# calls/s = authenticated registrations/s. For each target:
#   0. warm-up: 5 s of OPTIONS;
#   1. memory: RSS/PSS before and after registering every user once (USERS bindings);
#   2. steps: for each rate in RATES, DURATION_PER_STEP seconds of calls; stop after
#      the first step with failures >= MAX_FAIL_PCT %, or that the pair could not
#      keep up with (achieved < 80 % of offered).
# Prints a table and writes bench/results/register.md (+ register.tsv, raw rows).
#
# Environment (defaults):
#   DURATION_PER_STEP=15   seconds per step
#   USERS=10000            accounts, and bindings for the memory figure
#   RATES="500 1000 ..."   offered calls/s, in order
#   TARGETS="m1node kamailio"
#   MEM_RATE=1000          calls/s for the memory phase
#   MAX_FAIL_PCT=0.1
#   STEP_RETRIES=1         a failing step is run again this many times before the run
#                          stops (the host is shared: one hiccup should not end it)
#   KAMAILIO_CHILDREN=2    UDP receiver processes (see bench/kamailio/kamailio.cfg)
#   SIPP_RETRANS=0         1: SIPp retransmits unanswered requests (Timer E, 500 ms);
#                          0: it does not (-nr), every lost datagram fails a call.
# Everything listens on and sends to 127.0.0.1 only. Every process started here is
# stopped on exit. Needs: sipp (3.6.x), kamailio (5.6), node 24, curl, ss; m1node runs
# from dist/ (npm run build first).
set -euo pipefail
# The whole script is one compound command: bash reads it entirely before running it,
# so editing this file during a run cannot derail that run.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/all.sh
source "$HERE/lib/all.sh"

DURATION_PER_STEP=${DURATION_PER_STEP:-15}
USERS=${USERS:-10000}
RATES=${RATES:-"500 1000 2000 3000 4000 5000 6000 8000 10000 12000 15000 20000"}
TARGETS=${TARGETS:-"m1node kamailio"}
MEM_RATE=${MEM_RATE:-1000}
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.1}
STEP_RETRIES=${STEP_RETRIES:-1}
KAMAILIO_CHILDREN=${KAMAILIO_CHILDREN:-2}
SIPP_RETRANS=${SIPP_RETRANS:-0}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
SIPP=${SIPP:-sipp}

SCENARIOS="$ROOT/test/interop/scenarios"
OPTIONS_XML="$SCENARIOS/options.xml"
KAMAILIO_CFG="$HERE/kamailio/kamailio.cfg"
RESULTS="$HERE/results"
RUN_DIR="$HERE/tmp/register-$(date +%Y%m%d-%H%M%S)-$$"
HZ=$(proc_hz)
mkdir -p "$RUN_DIR" "$RESULTS"


# ---------------------------------------------------------------------------
# users

SIPP_USERS="$RUN_DIR/users-sipp.csv"
M1_USERS="$RUN_DIR/users-m1node.csv"
sipp_users_csv "$USERS" "$SIPP_USERS"
m1node_users_csv "$USERS" "$M1_USERS"

# ---------------------------------------------------------------------------
# SIPp

# -default_behaviors -bye: a failed call is only counted, no BYE is sent for it.
SIPP_COMMON=(-t u1 -i 127.0.0.1 -nostdin -buff_size 4194304 -recv_timeout 5000 -default_behaviors -bye)

# Without retransmissions by default: on one shared 2-core box SIPp itself is the
# first to fall behind, and its own late reads would turn into retransmission storms
# that measure SIPp rather than the server (see bench/results/register.md).
SIPP_STEP_FLAGS=()
[ "$SIPP_RETRANS" = 1 ] || SIPP_STEP_FLAGS=(-nr)

# run_sipp OUTDIR RATE CALLS TIMEOUT_S PORT SPORT: register-auth calls; leaves
# OUTDIR/stat.csv (trace_stat), OUTDIR/time (real user sys of sipp), OUTDIR/sipp.out,
# OUTDIR/drops (max datagrams dropped by SIPp's socket, sampled every 0.5 s)
run_sipp() {
  local out=$1 rate=$2 calls=$3 tmo=$4 port=$5 sport=$6 sampler
  mkdir -p "$out"
  echo 0 > "$out/drops"
  # SIPp's socket dies with it: sample its drop counter while it runs
  ( while sleep 0.5; do d=$(udp_drops "$sport"); [ "$d" -gt 0 ] && echo "$d" > "$out/drops"; done ) &
  sampler=$!
  STARTED_PIDS+=("$sampler")
  local TIMEFORMAT='%3R %3U %3S' job
  # in the background, so that an interrupt stops it at once (trap -> cleanup)
  { time timeout -k 5 $((tmo + 20)) "$SIPP" -sf "$SCENARIOS/register-auth.xml" -inf "$SIPP_USERS" \
      -r "$rate" -m "$calls" "${SIPP_COMMON[@]}" "${SIPP_STEP_FLAGS[@]}" -p "$sport" \
      -timeout "${tmo}s" -timeout_error \
      -trace_stat -stf "$out/stat.csv" -fd 1 \
      -trace_err -error_file "$out/errors.log" \
      "127.0.0.1:$port" >"$out/sipp.out" 2>&1 || true; } 2>"$out/time" &
  job=$!
  STARTED_PIDS+=("$job")
  wait "$job" || true
  stop_pid "$job"
  stop_pid "$sampler"
}

# ---------------------------------------------------------------------------
# targets: start_<target> sets TARGET_PID (and TARGET_WEB for m1node), returns 1
# with TARGET_SKIP set when it cannot run

TARGET_PID=""
TARGET_WEB=""
TARGET_SKIP=""
TARGET_CMD=""

start_kamailio() {
  local port=$1 dir=$2
  mkdir -p "$dir"
  TARGET_CMD="kamailio -f bench/kamailio/kamailio.cfg -DD -E -m 256 -M 32 -l udp:127.0.0.1:$port -Y $dir -P $dir/kamailio.pid -A 'BENCH_CTL=\"unix:$dir/ctl\"'"
  if [ "$KAMAILIO_CHILDREN" != 2 ]; then
    sed "s/^children=2$/children=$KAMAILIO_CHILDREN/" "$KAMAILIO_CFG" > "$dir/kamailio.cfg"
  else
    cp "$KAMAILIO_CFG" "$dir/kamailio.cfg"
  fi
  "$KAMAILIO" -f "$dir/kamailio.cfg" -DD -E -m 256 -M 32 -l "udp:127.0.0.1:$port" \
    -Y "$dir" -P "$dir/kamailio.pid" -A "BENCH_CTL=\"unix:$dir/ctl\"" >"$dir/kamailio.log" 2>&1 &
  TARGET_PID=$!
  STARTED_PIDS+=("$TARGET_PID")
}

kam_rpc() { kamcmd -s "unix:$1/ctl" "${@:2}" 2>/dev/null; }

start_m1node() {
  local port=$1 dir=$2 web
  mkdir -p "$dir"
  if [ ! -f "$ROOT/bin/m1node.js" ] || [ ! -f "$ROOT/dist/cli/index.js" ]; then
    TARGET_SKIP="bin/m1node.js or dist/ missing (build with: npm run build)"
    return 1
  fi
  web=$(free_port)
  TARGET_WEB=$web
  # The same settings for the import (the digest realm = the SIP domain enters the
  # stored HA1s) and the daemon. WebSocket on any free port: all transports run.
  local -a env
  m1node_env env "$port" "$web"
  # the registrar alone, as Kamailio is: no DHT (publishing 10,000 login records is the directory's workload)
  env+=(M1NODE_P2P_ENABLED=false)
  log "m1node: importing $USERS users"
  local t0 t1
  t0=$(date +%s.%N)
  if ! env "${env[@]}" node "$ROOT/bin/m1node.js" user import "$M1_USERS" --data "$dir/data" >"$dir/import.log" 2>&1; then
    TARGET_SKIP="user import failed: $(tail -3 "$dir/import.log" | tr '\n' ' ')"
    return 1
  fi
  t1=$(date +%s.%N)
  echo "$(calc "$t1 - $t0")" > "$dir/import.seconds"
  TARGET_CMD="${env[*]} node bin/m1node.js start --data $dir/data"
  m1node_start "$dir" "$web" "${env[@]}"
}

# V8 heap in use (prom-client default metrics, with or without m1node's prefix), or "-".
node_heap() {
  local v
  v=$(metric "$1" m1node_process_nodejs_heap_size_used_bytes)
  [ "$v" = - ] && v=$(metric "$1" nodejs_heap_size_used_bytes)
  echo "$v"
}

# ---------------------------------------------------------------------------
# one target

ROWS="$RUN_DIR/rows.tsv"
MEMS="$RUN_DIR/mem.tsv"      # target key value
printf 'target\toffered\tachieved\tfail_pct\tretrans\tp50_ms\tp99_ms\tcpu_pct\tcpu_us_per_reg\trss_mb\tpss_mb\tsipp_cpu_pct\tserver_drops\tsipp_drops\tcalls\tok\tstop\n' > "$ROWS"
: > "$MEMS"
mem() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$MEMS"; }

bench_target() {
  local target=$1 dir="$RUN_DIR/$1"
  local port sport
  port=$(free_port); sport=$(free_port)
  while [ "$sport" = "$port" ]; do sport=$(free_port); done
  TARGET_PID=""; TARGET_WEB=""; TARGET_SKIP=""; TARGET_CMD=""
  log "$target: starting on udp 127.0.0.1:$port"
  if ! "start_$target" "$port" "$dir"; then
    log "$target: not run: $TARGET_SKIP"
    mem "$target" skipped "$TARGET_SKIP"
    [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
    return 0
  fi
  mem "$target" command "$TARGET_CMD"
  if ! wait_sip_ready "$port" "$sport"; then
    log "$target: no answer to OPTIONS"
    mem "$target" skipped "no answer to OPTIONS on 127.0.0.1:$port"
    stop_pid "$TARGET_PID"
    return 0
  fi
  [ -f "$dir/import.seconds" ] && mem "$target" import_seconds "$(cat "$dir/import.seconds")"

  # -- warm-up without bindings: OPTIONS for 5 s (parser, transport, JIT), so that
  # the memory figure below is the registrations', not the first traffic's
  timeout -k 5 60 "$SIPP" -sf "$SCENARIOS/options.xml" -r "$MEM_RATE" -m $((MEM_RATE * 5)) "${SIPP_COMMON[@]}" \
    -p "$sport" -timeout 30s -timeout_error "127.0.0.1:$port" >"$dir/warmup.out" 2>&1 || true

  # -- memory per registration
  sleep 2
  local tree rss0 pss0 rss1 pss1 extra0="" extra1=""
  tree=$(proc_tree "$TARGET_PID")
  rss0=$(proc_rss_kb $tree); pss0=$(proc_pss_kb $tree)
  if [ "$target" = kamailio ]; then
    extra0=$(kam_rpc "$dir" core.shmmem | awk '$1 == "real_used:" { print $2 }')
  elif [ -n "$TARGET_WEB" ]; then
    extra0=$(node_heap "$TARGET_WEB")
  fi
  log "$target: registering $USERS users at $MEM_RATE/s (memory phase)"
  run_sipp "$dir/mem" "$MEM_RATE" "$USERS" $((USERS / MEM_RATE + 30)) "$port" "$sport"
  sleep 3
  tree=$(proc_tree "$TARGET_PID")
  rss1=$(proc_rss_kb $tree); pss1=$(proc_pss_kb $tree)
  local msum bindings="-"
  msum=$(sipp_stat_summary "$dir/mem/stat.csv")
  if [ "$target" = kamailio ]; then
    extra1=$(kam_rpc "$dir" core.shmmem | awk '$1 == "real_used:" { print $2 }')
    bindings=$(kam_rpc "$dir" stats.get_statistics location_contacts | awk '{ print $NF }')
    mem "$target" shm_bytes_per_binding "$(calc "($extra1 - $extra0) / $USERS")"
  elif [ -n "$TARGET_WEB" ]; then
    extra1=$(node_heap "$TARGET_WEB")
    bindings=$(metric "$TARGET_WEB" m1node_registrar_bindings)
    if [ "$extra0" != - ] && [ "$extra1" != - ]; then
      mem "$target" heap_bytes_per_binding "$(calc "($extra1 - $extra0) / $USERS")"
    fi
  fi
  mem "$target" mem_phase_calls "$msum"
  mem "$target" bindings "$bindings"
  mem "$target" rss_kb_before "$rss0"
  mem "$target" rss_kb_after "$rss1"
  mem "$target" pss_kb_before "$pss0"
  mem "$target" pss_kb_after "$pss1"
  mem "$target" rss_bytes_per_binding "$(calc "($rss1 - $rss0) * 1024 / $USERS")"
  mem "$target" pss_bytes_per_binding "$(calc "($pss1 - $pss0) * 1024 / $USERS")"
  log "$target: memory: RSS ${rss0} -> ${rss1} kB, PSS ${pss0} -> ${pss1} kB, bindings=$bindings (calls: $msum)"

  # -- rate steps
  local rate calls t0 t1 k0 k1 wall s created ok failed retrans elapsed p50 p99
  local achieved failpct cpu rss pss sippcpu cpuus d0 d1 sdrops stop
  local attempt=0 rates_left=" $RATES "
  while [ -n "${rates_left// /}" ]; do
    rate=$(echo $rates_left | awk '{ print $1 }')
    calls=$((rate * DURATION_PER_STEP))
    tree=$(proc_tree "$TARGET_PID")
    k0=$(proc_ticks $tree)
    d0=$(udp_drops "$port")
    t0=$(date +%s.%N)
    # keep the files of the attempt being retried
    if [ "$attempt" -gt 0 ]; then mv "$dir/step-$rate" "$dir/step-$rate-try$attempt"; fi
    run_sipp "$dir/step-$rate" "$rate" "$calls" $((DURATION_PER_STEP + 10)) "$port" "$sport"
    t1=$(date +%s.%N)
    tree=$(proc_tree "$TARGET_PID")
    k1=$(proc_ticks $tree)
    d1=$(udp_drops "$port")
    sdrops=$(cat "$dir/step-$rate/drops")
    rss=$(proc_rss_kb $tree); pss=$(proc_pss_kb $tree)
    if [ ! -s "$dir/step-$rate/stat.csv" ]; then
      log "$target: step $rate: sipp wrote no statistics (see $dir/step-$rate/sipp.out)"
      break
    fi
    read -r created ok failed retrans elapsed p50 p99 < <(sipp_stat_summary "$dir/step-$rate/stat.csv")
    wall=$(calc "$t1 - $t0")
    achieved=$(calc "$elapsed > 0 ? $ok / $elapsed : 0")
    # calls sent but never completed (global timeout) count as failed
    failpct=$(calc "$created > 0 ? ($created - $ok) * 100 / $created : 100")
    cpu=$(calc "($k1 - $k0) * 100 / $HZ / $wall")
    # server CPU time per successful registration (the 401 round included)
    cpuus=$(calc "$ok > 0 ? ($k1 - $k0) * 1000000 / $HZ / $ok : 0")
    read -r _ su ss < <(tail -1 "$dir/step-$rate/time")
    sippcpu=$(calc "($su + $ss) * 100 / $wall")
    stop=$(step_verdict "$failpct" "$achieved" "$rate")
    printf '%s\t%d\t%.0f\t%.3f\t%d\t%s\t%s\t%.0f\t%.0f\t%.1f\t%.1f\t%.0f\t%d\t%d\t%d\t%d\t%s\n' \
      "$target" "$rate" "$achieved" "$failpct" "$retrans" "$p50" "$p99" "$cpu" "$cpuus" \
      "$(calc "$rss / 1024")" "$(calc "$pss / 1024")" "$sippcpu" "$((d1 - d0))" "$sdrops" "$created" "$ok" "${stop:--}" >> "$ROWS"
    log "$(printf '%s: offered %6d/s  achieved %8.1f/s  failed %.3f%%  p99<%sms  cpu %s%% (%s us/reg)  rss %s MB  sipp cpu %s%%  drops server %d sipp %d' \
      "$target" "$rate" "$achieved" "$failpct" "$p99" "$(calc "int($cpu)")" "$(calc "int($cpuus)")" "$(calc "int($rss / 1024)")" \
      "$(calc "int($sippcpu)")" "$((d1 - d0))" "$sdrops")"
    if [ -n "$stop" ] && [ "$attempt" -lt "$STEP_RETRIES" ]; then
      attempt=$((attempt + 1))
      log "$target: step $rate/s failed ($stop): running it again"
      # the retried row is kept in the table, marked
      sed -i '$ s/\t[^\t]*$/\tretried/' "$ROWS"
      continue
    fi
    case $stop in
      failures) log "$target: failures >= $MAX_FAIL_PCT % at $rate/s: stop"; break ;;
      behind) log "$target: achieved < 80 % of offered at $rate/s: stop"; break ;;
    esac
    attempt=0
    rates_left=$(echo $rates_left | awk '{ $1 = ""; print }')
  done
  if [ "$target" = m1node ] && [ -n "$TARGET_WEB" ]; then
    mem "$target" bindings_end "$(metric "$TARGET_WEB" m1node_registrar_bindings)"
  fi
  stop_pid "$TARGET_PID"
}

for t in $TARGETS; do
  case $t in
    m1node|kamailio) bench_target "$t" ;;
    *) log "unknown target $t"; exit 2 ;;
  esac
done
cleanup

# ---------------------------------------------------------------------------
# report

# per-binding process memory: PSS for a multi-process server, RSS for a single process
mem_per_binding() {
  if [ "$1" = kamailio ]; then memval "$1" pss_bytes_per_binding; else memval "$1" rss_bytes_per_binding; fi
}
memval() { awk -F'\t' -v t="$1" -v k="$2" '$1 == t && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$MEMS"; }
# column N of the best step
bestcol() { awk -F'\t' -v t="$1" -v m="$MAX_FAIL_PCT" -v c="$2" 'NR > 1 && $1 == t && $4 < m && $3 > b { b = $3; v = $c } END { print v + 0 }' "$ROWS"; }
# who gave out in the step that stopped the run: SIPp when its socket dropped more
# than the server's, else the server; none when no step stopped the run
limit() {
  awk -F'\t' -v t="$1" 'NR > 1 && $1 == t { stop = $17; sd = $13; cd = $14 }
    END {
      if (stop == "" || stop == "-") print "none"
      else if (cd > sd) print "SIPp (" cd " drops vs " sd ")"
      else print "server (" sd " drops vs " cd ")"
    }' "$ROWS"
}
# best = highest achieved rate of a step under the failure threshold
best() { awk -F'\t' -v t="$1" -v m="$MAX_FAIL_PCT" 'NR > 1 && $1 == t && $4 < m && $3 > b { b = $3 } END { print b + 0 }' "$ROWS"; }

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
V_NODE=$(node -v 2>/dev/null || echo -)
V_KAM=$({ "$KAMAILIO" -v 2>/dev/null || true; } | awk '/^version:/ { print $2, $3; exit }')
V_SIPP=$({ "$SIPP" -v 2>/dev/null || true; } | awk '/SIPp v/ { sub(/\.$/, "", $2); print $2; exit }')
V_M1=$(node -e "console.log(require('$ROOT/package.json').version)" 2>/dev/null || echo -)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)

{
  echo "# REGISTER benchmark: m1node vs Kamailio"
  echo
  echo "Generated by \`bash bench/register.sh\` on $(date -u +'%Y-%m-%d %H:%M UTC')."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| machine | $NPROC CPUs, $CPU_MODEL, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr) |"
  echo "| m1node | $V_M1 (git $GIT_REV), Node $V_NODE, \`p2p.enabled = false\` (the registrar alone, as Kamailio is) |"
  echo "| Kamailio | $V_KAM, \`children=$KAMAILIO_CHILDREN\`, \`-m 256 -M 32\`, usrloc in memory, [bench/kamailio/kamailio.cfg](../kamailio/kamailio.cfg) |"
  echo "| SIPp | $V_SIPP, one instance, one UDP socket (\`-t u1\`), retransmissions $([ "$SIPP_RETRANS" = 1 ] && echo "on (500 ms)" || echo "off (\`-nr\`): a lost datagram fails its call") |"
  echo "| users | $USERS (u00001.., password \`pw-<login>\`), MD5 digest, qop=auth as offered |"
  echo "| steps | $DURATION_PER_STEP s each, rates: $RATES; stop at failures >= $MAX_FAIL_PCT % or achieved < 80 % of offered |"
  echo
  echo "Everything runs on the same $NPROC cores: the server under test **and** SIPp. One call is"
  echo "REGISTER -> 401 -> REGISTER with credentials -> 200 (4 messages), so *REGISTER/s* below counts"
  echo "authenticated registrations per second. Each call re-registers the same Contact for one"
  echo "of the $USERS users in turn, so the location table stays at $USERS bindings."
  echo
  echo "## Best sustained rate"
  echo
  echo "| target | best REGISTER/s (failures < $MAX_FAIL_PCT %) | CPU % there | CPU µs/reg there | limit reached by | memory / binding |"
  echo "|---|---:|---:|---:|---|---:|"
  for t in $TARGETS; do
    if [ "$(memval "$t" skipped)" != - ]; then
      echo "| $t | not run: $(memval "$t" skipped) | | | | |"
    else
      echo "| $t | $(best "$t") | $(bestcol "$t" 8) | $(bestcol "$t" 9) | $(limit "$t") | $(calc "int($(mem_per_binding "$t"))") B |"
    fi
  done
  bm=$(best m1node); bk=$(best kamailio)
  if [ "$(calc "$bm > 0 && $bk > 0")" = 1 ]; then
    echo
    echo "**Ratio m1node / Kamailio, best rates: $(calc "sprintf(\"%.2f\", $bm / $bk)")**"
    echo "(CPU per registration: $(calc "sprintf(\"%.1f\", $(bestcol m1node 9) / $(bestcol kamailio 9))")x Kamailio's;"
    echo "memory per binding: $(calc "sprintf(\"%.1f\", $(mem_per_binding m1node) / $(mem_per_binding kamailio))")x.)"
  fi
  echo
  echo "*limit reached by* tells who gave out in the step after the best one: \"server\" when the"
  echo "server's socket overflowed or it ran out of CPU, \"SIPp\" when the load generator's socket"
  echo "overflowed first (the server's own limit is then higher than the best rate shown), \"none\""
  echo "when the last rate in RATES still passed."
  echo
  echo "## Steps"
  echo
  echo "CPU % is the server's user+system time over the step's wall time (200 % = both cores),"
  echo "summed over all its processes (Kamailio: main + children). RSS sums VmRSS of those processes"
  echo "(Kamailio's shared memory is counted once per process that touched it); PSS shares it out, so"
  echo "PSS is the fair figure for a multi-process server. Latency: first REGISTER to 200 (SIPp rtd,"
  echo "millisecond buckets: \"p99 < 5\" means 99 % of calls took under 5 ms)."
  echo
  echo "*CPU µs/reg* is the server's CPU time per successful registration (both requests): the"
  echo "efficiency figure, independent of where the pair saturates. *Drops* are datagrams discarded"
  echo "because a receive buffer was full (\`ss -m\`), on the server's socket and on SIPp's: drops on"
  echo "SIPp's side mean the load generator, not the server, was the limit of that step."
  echo
  echo "| target | offered/s | REGISTER/s | failed % | p50 ms | p99 ms | CPU % | CPU µs/reg | RSS MB | PSS MB | SIPp CPU % | drops server | drops SIPp | stop |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F'\t' 'function lt(v) { return v ~ /^[>-]/ ? v : "< " v }
    NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, lt($6), lt($7), $8, $9, $10, $11, $12, $13, $14, ($17 == "-" ? "" : $17) }' "$ROWS"
  echo
  echo "## Memory per registration"
  echo
  echo "Measured on a fresh server, after 5 s of OPTIONS traffic as warm-up: before, and 3 s after,"
  echo "registering each of the $USERS users once (at $MEM_RATE/s); the difference divided by $USERS."
  echo "The process figure to read is RSS for m1node (one process; its PSS moves with other Node"
  echo "processes on the host sharing the binary's pages) and PSS for Kamailio (its RSS counts the"
  echo "shared memory once per process)."
  echo
  echo "| target | bindings | RSS before → after (MB) | RSS bytes / binding | PSS before → after (MB) | PSS bytes / binding | allocator view |"
  echo "|---|---:|---|---:|---|---:|---|"
  for t in $TARGETS; do
    [ "$(memval "$t" skipped)" != - ] && continue
    extra="-"
    [ "$(memval "$t" shm_bytes_per_binding)" != - ] && extra="shm real_used: $(calc "int($(memval "$t" shm_bytes_per_binding))") B/binding"
    [ "$(memval "$t" heap_bytes_per_binding)" != - ] && extra="V8 heap used: $(calc "int($(memval "$t" heap_bytes_per_binding))") B/binding"
    echo "| $t | $(memval "$t" bindings) | $(calc "sprintf(\"%.1f → %.1f\", $(memval "$t" rss_kb_before) / 1024, $(memval "$t" rss_kb_after) / 1024)") | $(calc "int($(memval "$t" rss_bytes_per_binding))") | $(calc "sprintf(\"%.1f → %.1f\", $(memval "$t" pss_kb_before) / 1024, $(memval "$t" pss_kb_after) / 1024)") | $(calc "int($(memval "$t" pss_bytes_per_binding))") | $extra |"
  done
  echo
  echo "## What differs between the two servers"
  echo
  echo "- Kamailio answers REGISTER statelessly (\`sl\`, as its default configuration does): it keeps no"
  echo "  transaction, and a retransmitted request is processed again. m1node keeps RFC 3261 server"
  echo "  transactions (held for Timer J, 32 s on UDP, to absorb retransmissions) and writes each binding"
  echo "  to its LevelDB store (\`store.sync = false\`); Kamailio's usrloc is memory only (\`db_mode 0\`)."
  echo "- Kamailio computes HA1 from the plain password on each request (\`pv_auth_check\`, flag 0);"
  echo "  m1node reads stored HA1s. Both check one MD5 digest response per authenticated REGISTER;"
  echo "  both challenge with MD5 (m1node's default \`auth.algorithms\`)."
  echo "- Both ask for a 4 MB UDP receive buffer (Kamailio: \`maxbuffer\`; m1node: its UDP transport)."
  echo "- Kamailio runs $KAMAILIO_CHILDREN receiver processes; m1node one Node.js process (its main"
  echo "  thread does the SIP work). SIPp, single-threaded, shares the same cores: past roughly 10,000"
  echo "  calls/s (40,000 datagrams/s) it falls behind reading its own socket."
  echo "- A step that fails is run once more (STEP_RETRIES=$STEP_RETRIES) before the run stops; both rows"
  echo "  are shown, the first marked \"retried\". The host is shared, so repeat a run before reading"
  echo "  much into differences of 10-20 % near the limit."
  echo
  echo "## Commands"
  echo
  echo '```sh'
  for t in $TARGETS; do
    if [ "$(memval "$t" command)" != - ]; then
      echo "# $t"
      memval "$t" command | sed "s|$ROOT/||g"
    fi
  done
  echo "# each step (RATE calls/s for $DURATION_PER_STEP s)"
  echo "sipp -sf test/interop/scenarios/register-auth.xml -inf users.csv -r RATE -m \$((RATE * $DURATION_PER_STEP)) ${SIPP_COMMON[*]} ${SIPP_STEP_FLAGS[*]} -p SIPP_PORT -timeout $((DURATION_PER_STEP + 10))s -timeout_error -trace_stat -stf stat.csv -fd 1 127.0.0.1:PORT"
  echo '```'
  if [ "$(memval m1node import_seconds)" != - ]; then
    echo
    echo "\`m1node user import\` of the $USERS users took $(calc "sprintf(\"%.1f\", $(memval m1node import_seconds))") s."
  fi
  echo
  echo "Raw rows: [register.tsv](register.tsv)."
} > "$RESULTS/register.md"
cp "$ROWS" "$RESULTS/register.tsv"

echo
column -t -s $'\t' "$ROWS"
echo
for t in $TARGETS; do
  if [ "$(memval "$t" skipped)" != - ]; then
    echo "$t: not run ($(memval "$t" skipped))"
  else
    echo "$t: best $(best "$t") REGISTER/s; memory $(calc "int($(mem_per_binding "$t"))") B/binding ($([ "$t" = kamailio ] && echo PSS || echo RSS))"
  fi
done
bm=$(best m1node); bk=$(best kamailio)
[ "$(calc "$bm > 0 && $bk > 0")" = 1 ] && echo "ratio m1node/kamailio: $(calc "sprintf(\"%.2f\", $bm / $bk)")"
echo "report: $RESULTS/register.md (run files: $RUN_DIR)"
exit 0
}
