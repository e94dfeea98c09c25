#!/usr/bin/env bash
# Calls benchmark: m1node (B2BUA, media anchored) against Kamailio 5.6 as a stateful proxy.
#
#   bash bench/calls.sh
#
# SIPp plays both phones on 127.0.0.1: a callee (bench/scenarios/call-uas.xml) registered as
# u00001 (digest auth) before the run, and a caller (bench/scenarios/call-uac.xml) that
# calls sip:u00001@<server>: INVITE with SDP -> 180 -> 200 -> ACK -> hold -> BYE -> 200.
# The caller is a foreign user (From: sip:caller@bench.example), so neither server
# challenges the INVITE (m1node: routing.allow_anonymous = true; see
# bench/kamailio/proxy.cfg). For each target and each call length (SHORT_HOLD_MS, then
# LONG_HOLD_MS) the rate steps up through SHORT_RATES / LONG_RATES, DURATION_PER_STEP
# (short) or LONG_DURATION_PER_STEP (long) seconds of new calls per step, until a step
# fails >= MAX_FAIL_PCT % of its calls or achieves < 80 % of the offered rate (a failing
# step is run once more first). A long step places calls for longer than one call lasts,
# so that the server reaches and holds rate x hold-time concurrent calls.
# Prints a table and writes bench/results/calls.md (+ calls.tsv, raw rows).
#
# m1node anchors media (media.anchor = always): every call gets relay ports (two UDP
# port pairs) from its range, and both SDPs are rewritten. No RTP is sent: the figure is
# the signalling + media-setup rate (bench/media.mjs measures RTP relaying).
#
# Environment (defaults):
#   DURATION_PER_STEP=15       seconds of new calls per short-call step
#   LONG_DURATION_PER_STEP=40  seconds of new calls per long-call step (> LONG_HOLD_MS: a
#                              steady state of rate x hold concurrent calls for ~10 s)
#   SHORT_HOLD_MS=1000         call length of the short-call series
#   LONG_HOLD_MS=30000         call length of the long-call series
#   SHORT_RATES="100 200 ..."  offered calls/s, in order
#   LONG_RATES="25 50 ..."
#   SERIES="short long"
#   TARGETS="m1node kamailio"
#   MAX_FAIL_PCT=0.1
#   STEP_RETRIES=1
#   KAMAILIO_CHILDREN=2
#   SIPP_RETRANS=1             1: SIPp retransmits as phones do (INVITE/BYE from 500 ms, the
#                              callee's 200 until the ACK); 0: -nr, any lost datagram fails a call
#   MEDIA_PORT_MIN=10000 MEDIA_PORT_MAX=29999   m1node's relay range
# Everything listens on and sends to 127.0.0.1 only; every process started here is
# stopped on exit. Needs: sipp 3.6, kamailio 5.6, node 24 (and dist/ built), curl, ss.
set -euo pipefail
# one compound command: bash reads it all before running, so edits during a run are harmless
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/all.sh
source "$HERE/lib/all.sh"

DURATION_PER_STEP=${DURATION_PER_STEP:-15}
LONG_DURATION_PER_STEP=${LONG_DURATION_PER_STEP:-40}
SHORT_HOLD_MS=${SHORT_HOLD_MS:-1000}
LONG_HOLD_MS=${LONG_HOLD_MS:-30000}
SHORT_RATES=${SHORT_RATES:-"200 400 600 800 1000 1200 1500 2000 2500 3000"}
LONG_RATES=${LONG_RATES:-"100 150 200 300 400"}
SERIES=${SERIES:-"short long"}
TARGETS=${TARGETS:-"m1node kamailio"}
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.1}
STEP_RETRIES=${STEP_RETRIES:-1}
KAMAILIO_CHILDREN=${KAMAILIO_CHILDREN:-2}
SIPP_RETRANS=${SIPP_RETRANS:-1}
MEDIA_PORT_MIN=${MEDIA_PORT_MIN:-10000}
MEDIA_PORT_MAX=${MEDIA_PORT_MAX:-29999}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
SIPP=${SIPP:-sipp}
CALLEE=u00001

SCENARIOS="$HERE/scenarios"
REGISTER_XML="$ROOT/test/interop/scenarios/register-auth.xml"
OPTIONS_XML="$ROOT/test/interop/scenarios/options.xml"
KAMAILIO_CFG="$HERE/kamailio/proxy.cfg"
RESULTS="$HERE/results"
# REPORT_FROM=<run dir>: only write the report again from that run's files (same settings)
REPORT_FROM=${REPORT_FROM:-}
RUN_DIR=${REPORT_FROM:-"$HERE/tmp/calls-$(date +%Y%m%d-%H%M%S)-$$"}
HZ=$(proc_hz)
mkdir -p "$RUN_DIR" "$RESULTS"

# SIPp ports stay out of the relay range
sipp_port() { port_in 40000 59000; }

SIPP_USERS="$RUN_DIR/users-sipp.csv"
M1_USERS="$RUN_DIR/users-m1node.csv"
sipp_users_csv 1 "$SIPP_USERS"
m1node_users_csv 1 "$M1_USERS"

SIPP_COMMON=(-t u1 -i 127.0.0.1 -nostdin -buff_size 4194304)
SIPP_STEP_FLAGS=()
[ "$SIPP_RETRANS" = 1 ] || SIPP_STEP_FLAGS=(-nr)

# ---------------------------------------------------------------------------
# targets: start_<target> PORT DIR sets TARGET_PID (TARGET_WEB for m1node); returns 1
# with TARGET_SKIP set when it cannot run

TARGET_PID=""
TARGET_WEB=""
TARGET_SKIP=""
TARGET_CMD=""

start_kamailio() {
  local port=$1 dir=$2
  mkdir -p "$dir"
  if [ "$KAMAILIO_CHILDREN" != 2 ]; then
    sed "s/^children=2$/children=$KAMAILIO_CHILDREN/" "$KAMAILIO_CFG" > "$dir/proxy.cfg"
  else
    cp "$KAMAILIO_CFG" "$dir/proxy.cfg"
  fi
  TARGET_CMD="kamailio -f bench/kamailio/proxy.cfg -DD -E -m 256 -M 32 -l udp:127.0.0.1:$port -Y $dir -P $dir/kamailio.pid -A 'BENCH_CTL=\"unix:$dir/ctl\"'"
  "$KAMAILIO" -f "$dir/proxy.cfg" -DD -E -m 256 -M 32 -l "udp:127.0.0.1:$port" \
    -Y "$dir" -P "$dir/kamailio.pid" -A "BENCH_CTL=\"unix:$dir/ctl\"" >"$dir/kamailio.log" 2>&1 &
  TARGET_PID=$!
  STARTED_PIDS+=("$TARGET_PID")
}

start_m1node() {
  local port=$1 dir=$2 web
  mkdir -p "$dir"
  if [ ! -f "$ROOT/bin/m1node.js" ] || [ ! -f "$ROOT/dist/cli/index.js" ]; then
    TARGET_SKIP="bin/m1node.js or dist/ missing (build with: npm run build)"
    return 1
  fi
  web=$(sipp_port)
  TARGET_WEB=$web
  local -a env
  m1node_env env "$port" "$web"
  env+=(M1NODE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0
    M1NODE_MEDIA_HOST=127.0.0.1 M1NODE_MEDIA_ANCHOR=always
    M1NODE_MEDIA_PORT_MIN="$MEDIA_PORT_MIN" M1NODE_MEDIA_PORT_MAX="$MEDIA_PORT_MAX"
    M1NODE_ROUTING_ALLOW_ANONYMOUS=true)
  if ! env "${env[@]}" node "$ROOT/bin/m1node.js" user import "$M1_USERS" --data "$dir/data" >"$dir/import.log" 2>&1; then
    TARGET_SKIP="user import failed: $(tail -3 "$dir/import.log" | tr '\n' ' ')"
    return 1
  fi
  TARGET_CMD="${env[*]} node bin/m1node.js start --data $dir/data"
  m1node_start "$dir" "$web" "${env[@]}"
}

# Largest value of a -trace_stat column over all rows (e.g. CurrentCall), 0 when absent.
stat_max() {
  awk -F';' -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } k && $k + 0 > m { m = $k + 0 } END { print m + 0 }' "$1" 2>/dev/null || echo 0
}

# ---------------------------------------------------------------------------
# one step: the caller offers RATE calls/s for DURATION_PER_STEP s, each held HOLD_MS

ROWS="$RUN_DIR/rows.tsv"
INFO="$RUN_DIR/info.tsv"  # target key value
[ -z "$REPORT_FROM" ] && printf 'target\tseries\thold_ms\toffered\tachieved\tfail_pct\tconcurrent\tp50_ms\tp99_ms\tcpu_pct\tcpu_us_per_call\trss_mb\tsipp_cpu_pct\tserver_drops\tcalls\tok\tstop\n' > "$ROWS"
[ -z "$REPORT_FROM" ] && : > "$INFO"
info() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$INFO"; }

# run_uac OUT RATE CALLS HOLD_MS TIMEOUT_S PORT
run_uac() {
  local out=$1 rate=$2 calls=$3 hold=$4 tmo=$5 port=$6 job
  mkdir -p "$out"
  local TIMEFORMAT='%3R %3U %3S'
  { time timeout -k 5 $((tmo + 20)) "$SIPP" -sf "$SCENARIOS/call-uac.xml" -s "$CALLEE" -d "$hold" \
      -r "$rate" -m "$calls" -l $((rate * (hold / 1000 + 10) + 100)) "${SIPP_COMMON[@]}" "${SIPP_STEP_FLAGS[@]}" \
      -default_behaviors all,-abortunexp \
      -p "$UAC_PORT" -mp "$UAC_MEDIA" -recv_timeout 10000 -timeout "${tmo}s" -timeout_error \
      -trace_stat -stf "$out/stat.csv" -fd 1 \
      -trace_err -error_file "$out/errors.log" \
      "127.0.0.1:$port" >"$out/sipp.out" 2>&1 || true; } 2>"$out/time" &
  job=$!
  STARTED_PIDS+=("$job")
  wait "$job" || true
  stop_pid "$job"
}

# Samples the server every second while a step runs: RSS (kB) of its process tree.
sampler() {
  local out=$1 tree
  while sleep 1; do
    tree=$(proc_tree "$TARGET_PID")
    echo "$(proc_rss_kb $tree)" >> "$out"
  done
}

bench_series() {
  local target=$1 series=$2 dir=$3 port=$4
  local hold rates dur
  if [ "$series" = short ]; then
    hold=$SHORT_HOLD_MS; rates=$SHORT_RATES; dur=$DURATION_PER_STEP
  else
    hold=$LONG_HOLD_MS; rates=$LONG_RATES; dur=$LONG_DURATION_PER_STEP
  fi
  local rate calls t0 t1 k0 k1 wall created ok failed retrans elapsed p50 p99 achieved failpct cpu cpuus
  local rss sippcpu d0 d1 stop conc step samp su ss_ gen
  local attempt=0 rates_left=" $rates "
  while [ -n "${rates_left// /}" ]; do
    rate=$(echo $rates_left | awk '{ print $1 }')
    calls=$((rate * dur))
    step="$dir/$series-$rate"
    if [ "$attempt" -gt 0 ]; then mv "$step" "$step-try$attempt"; fi
    mkdir -p "$step"
    k0=$(proc_ticks $(proc_tree "$TARGET_PID"))
    d0=$(udp_drops "$port")
    t0=$(date +%s.%N)
    sampler "$step/rss" &
    samp=$!
    STARTED_PIDS+=("$samp")
    run_uac "$step" "$rate" "$calls" "$hold" $((dur + hold / 1000 + 20)) "$port"
    stop_pid "$samp"
    t1=$(date +%s.%N)
    k1=$(proc_ticks $(proc_tree "$TARGET_PID"))
    d1=$(udp_drops "$port")
    rss=$(sort -n "$step/rss" 2>/dev/null | tail -1); rss=${rss:-0}
    if [ ! -s "$step/stat.csv" ]; then
      log "$target $series: step $rate: sipp wrote no statistics (see $step/sipp.out)"
      break
    fi
    read -r created ok failed retrans elapsed p50 p99 < <(sipp_stat_summary "$step/stat.csv")
    conc=$(stat_max "$step/stat.csv" CurrentCall)
    wall=$(calc "$t1 - $t0")
    # calls/s while new calls were being placed: the last call was placed within the last
    # second before the first dump that counts it (dumps come every second), and no sooner
    # than the schedule allows
    gen=$(stat_gen_seconds "$step/stat.csv")
    gen=$(calc "$gen - 1 > $calls / $rate ? $gen - 1 : $calls / $rate")
    achieved=$(calc "$ok / $gen")
    failpct=$(calc "$created > 0 ? ($created - $ok) * 100 / $created : 100")
    cpu=$(calc "($k1 - $k0) * 100 / $HZ / $wall")
    cpuus=$(calc "$ok > 0 ? ($k1 - $k0) * 1000000 / $HZ / $ok : 0")
    read -r _ su ss_ < <(tail -1 "$step/time")
    sippcpu=$(calc "($su + $ss_) * 100 / $wall")
    stop=$(step_verdict "$failpct" "$achieved" "$rate")
    printf '%s\t%s\t%d\t%d\t%.0f\t%.3f\t%d\t%s\t%s\t%.0f\t%.0f\t%.1f\t%.0f\t%d\t%d\t%d\t%s\n' \
      "$target" "$series" "$hold" "$rate" "$achieved" "$failpct" "$conc" "$p50" "$p99" "$cpu" "$cpuus" \
      "$(calc "$rss / 1024")" "$sippcpu" "$((d1 - d0))" "$created" "$ok" "${stop:--}" >> "$ROWS"
    log "$(printf '%s %s: offered %5d/s achieved %7.1f/s failed %.3f%% concurrent %d p99<%sms cpu %s%% (%s us/call) rss %s MB drops %d' \
      "$target" "$series" "$rate" "$achieved" "$failpct" "$conc" "$p99" "$(calc "int($cpu)")" "$(calc "int($cpuus)")" \
      "$(calc "int($rss / 1024)")" "$((d1 - d0))")"
    if ! [ -d "/proc/$TARGET_PID" ]; then
      log "$target: the server process is gone"
      info "$target" "died_$series" "$rate"
      break
    fi
    # let the server forget the step's calls before the next one
    sleep 3
    if [ -n "$stop" ] && [ "$attempt" -lt "$STEP_RETRIES" ]; then
      attempt=$((attempt + 1))
      log "$target $series: step $rate/s failed ($stop): running it again"
      sed -i '$ s/\t[^\t]*$/\tretried/' "$ROWS"
      continue
    fi
    [ -n "$stop" ] && { log "$target $series: $stop at $rate/s: stop"; break; }
    attempt=0
    rates_left=$(echo $rates_left | awk '{ $1 = ""; print }')
  done
}

bench_target() {
  local target=$1 dir="$RUN_DIR/$1"
  local port sport
  port=$(sipp_port); sport=$(sipp_port)
  UAS_PORT=$(sipp_port); UAC_PORT=$(sipp_port)
  UAS_MEDIA=$(sipp_port); UAC_MEDIA=$(sipp_port)
  TARGET_PID=""; TARGET_WEB=""; TARGET_SKIP=""; TARGET_CMD=""
  log "$target: starting on udp 127.0.0.1:$port"
  if ! "start_$target" "$port" "$dir"; then
    log "$target: not run: $TARGET_SKIP"
    info "$target" skipped "$TARGET_SKIP"
    [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
    return 0
  fi
  info "$target" command "$TARGET_CMD"
  if ! wait_sip_ready "$port" "$sport"; then
    info "$target" skipped "no answer to OPTIONS on 127.0.0.1:$port"
    stop_pid "$TARGET_PID"
    return 0
  fi
  # the callee registers from the port it then answers calls on
  if ! timeout -k 2 20 "$SIPP" -sf "$REGISTER_XML" -inf "$SIPP_USERS" -m 1 "${SIPP_COMMON[@]}" -p "$UAS_PORT" \
       -recv_timeout 5000 -timeout 10s -timeout_error -trace_err -error_file "$dir/register-errors.log" \
       "127.0.0.1:$port" >"$dir/register.out" 2>&1; then
    info "$target" skipped "the callee could not register (see $dir/register.out)"
    stop_pid "$TARGET_PID"
    return 0
  fi
  log "$target: callee $CALLEE registered from 127.0.0.1:$UAS_PORT"
  "$SIPP" -sf "$SCENARIOS/call-uas.xml" "${SIPP_COMMON[@]}" "${SIPP_STEP_FLAGS[@]}" -p "$UAS_PORT" -mp "$UAS_MEDIA" \
    -recv_timeout 120000 -trace_err -error_file "$dir/uas-errors.log" \
    "127.0.0.1:$port" >"$dir/uas.out" 2>&1 &
  UAS_PID=$!
  STARTED_PIDS+=("$UAS_PID")
  sleep 1
  # warm-up: 5 s of short calls (parser, transactions, relay ports, JIT)
  run_uac "$dir/warmup" 50 250 200 30 "$port"
  log "$target: warm-up $(sipp_stat_summary "$dir/warmup/stat.csv" | awk '{ print $2 " of " $1 " calls ok" }')"
  sleep 2
  info "$target" rss_kb_idle "$(proc_rss_kb $(proc_tree "$TARGET_PID"))"
  for s in $SERIES; do bench_series "$target" "$s" "$dir" "$port"; done
  if [ "$target" = m1node ] && [ -n "$TARGET_WEB" ]; then
    info "$target" calls_active_end "$(metric "$TARGET_WEB" m1node_calls_active)"
    info "$target" media_ports_end "$(metric "$TARGET_WEB" m1node_media_ports)"
  fi
  stop_pid "$UAS_PID"
  stop_pid "$TARGET_PID"
}

if [ -z "$REPORT_FROM" ]; then
  for t in $TARGETS; do
    case $t in
      m1node|kamailio) bench_target "$t" ;;
      *) log "unknown target $t"; exit 2 ;;
    esac
  done
  cleanup
fi

# ---------------------------------------------------------------------------
# report

infoval() { awk -F'\t' -v t="$1" -v k="$2" '$1 == t && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$INFO"; }
# best achieved calls/s of a series under the failure threshold, and column C of that row
best() { awk -F'\t' -v t="$1" -v s="$2" -v m="$MAX_FAIL_PCT" 'NR > 1 && $1 == t && $2 == s && $6 < m && $17 == "-" && $5 > b { b = $5 } END { print b + 0 }' "$ROWS"; }
bestcol() { awk -F'\t' -v t="$1" -v s="$2" -v m="$MAX_FAIL_PCT" -v c="$3" 'NR > 1 && $1 == t && $2 == s && $6 < m && $17 == "-" && $5 > b { b = $5; v = $c } END { print (v == "" ? "-" : v) }' "$ROWS"; }
# "yes" when no step of the series stopped the run: the target's limit lies beyond the last rate
unreached() { awk -F'\t' -v t="$1" -v s="$2" 'NR > 1 && $1 == t && $2 == s { n++; if ($17 == "failures" || $17 == "behind") hit = 1 } END { print (n > 0 && !hit ? "yes" : "no") }' "$ROWS"; }
# best rate, with "≥" when the series never reached the target's limit
bestshown() { if [ "$(unreached "$1" "$2")" = yes ]; then echo "≥ $(best "$1" "$2")"; else best "$1" "$2"; fi; }
ratio() {
  local a b
  a=$(best m1node "$1"); b=$(best kamailio "$1")
  if [ "$(calc "$a > 0 && $b > 0")" != 1 ]; then echo -; return; fi
  if [ "$(unreached kamailio "$1")" = yes ]; then echo "≤ $(calc "sprintf(\"%.2f\", $a / $b)")"; else calc "sprintf(\"%.2f\", $a / $b)"; fi
}

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
V_NODE=$(node -v 2>/dev/null || echo -)
V_KAM=$({ "$KAMAILIO" -v 2>/dev/null || true; } | awk '/^version:/ { print $2, $3; exit }')
V_SIPP=$({ "$SIPP" -v 2>/dev/null || true; } | awk '/SIPp v/ { sub(/\.$/, "", $2); print $2; exit }')
V_M1=$(node -e "console.log(require('$ROOT/package.json').version)" 2>/dev/null || echo -)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)
FD_LIMIT=$(ulimit -n)

{
  echo "# Calls benchmark: m1node vs Kamailio"
  echo
  echo "Generated by \`bash bench/calls.sh\` on $(date -u +'%Y-%m-%d %H:%M UTC')."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| machine | $NPROC CPUs, $CPU_MODEL, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), open files limit $FD_LIMIT |"
  echo "| m1node | $V_M1 (git $GIT_REV), Node $V_NODE: B2BUA, \`media.anchor = always\` (relay ports $MEDIA_PORT_MIN-$MEDIA_PORT_MAX), \`routing.allow_anonymous = true\`, call records in LevelDB |"
  echo "| Kamailio | $V_KAM, stateful proxy (tm, record_route, usrloc in memory), \`children=$KAMAILIO_CHILDREN\`, [bench/kamailio/proxy.cfg](../kamailio/proxy.cfg) |"
  echo "| SIPp | $V_SIPP: one caller and one callee process, one UDP socket each, retransmissions $([ "$SIPP_RETRANS" = 1 ] && echo "on (500 ms)" || echo "off (\`-nr\`): a lost datagram fails its call") |"
  echo "| calls | caller \`sip:caller@bench.example\` (foreign: no 407 on either server) → \`sip:$CALLEE@<server>\`, one registered binding; SDP offer/answer (PCMA), no RTP |"
  echo "| steps | short calls held $SHORT_HOLD_MS ms, $DURATION_PER_STEP s of new calls per step (rates: $SHORT_RATES); long calls held $LONG_HOLD_MS ms, $LONG_DURATION_PER_STEP s of new calls per step (rates: $LONG_RATES); stop at failures >= $MAX_FAIL_PCT % or achieved < 80 % of offered |"
  echo
  echo "## Best sustained rate"
  echo
  echo "| target | short calls ($SHORT_HOLD_MS ms): calls/s | CPU µs/call | long calls ($LONG_HOLD_MS ms): calls/s | concurrent calls held | CPU µs/call | RSS there |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in $TARGETS; do
    if [ "$(infoval "$t" skipped)" != - ]; then
      echo "| $t | not run: $(infoval "$t" skipped) | | | | | |"
    else
      echo "| $t | $(bestshown "$t" short) | $(bestcol "$t" short 11) | $(bestshown "$t" long) | $(bestcol "$t" long 7) | $(bestcol "$t" long 11) | $(bestcol "$t" long 12) MB |"
    fi
  done
  echo
  echo "**Ratio m1node / Kamailio, best calls/s: short calls $(ratio short), long calls $(ratio long).**"
  echo "(\"≥\": no step failed up to the last rate tried, so the limit was not reached and a ratio against it is"
  echo "an upper bound.)"
  echo
  if grep -qs 'EMFILE\|Too many open files' "$RUN_DIR/m1node/m1node.log"; then
    echo "**m1node ran out of file descriptors** in this run (\"EMFILE\" / \"Too many open files\" in its log):"
    echo "every anchored call holds 4 UDP sockets (an RTP/RTCP pair per side), so with an open files limit of"
    echo "$FD_LIMIT about $((FD_LIMIT / 4)) calls fit, fewer with the store's and the sockets' own descriptors. Past"
    echo "that the relay cannot bind (the caller gets 500) and LevelDB cannot open files (call records are lost)."
    echo "Raise \`ulimit -n\` for long calls at high rates; the long-call limit above is this limit, not CPU."
    echo
  fi
  echo "## What was measured"
  echo
  echo "- One call is 7 SIP messages on the caller's side (INVITE, 100, 180, 200, ACK, BYE, 200) and 6 on the"
  echo "  callee's. Kamailio relays each message once (a transaction for INVITE and BYE; the ACK to the 2xx is"
  echo "  forwarded statelessly). m1node is a back-to-back user agent: it terminates the caller's dialog and"
  echo "  originates its own to the callee (own Call-ID, tags, CSeq, Contact), keeps both as dialogs, and for"
  echo "  every call also allocates two UDP port pairs from its media relay, rewrites both SDPs (offer and answer),"
  echo "  frees the ports at BYE and writes a call record to LevelDB. Kamailio forwards SDP untouched (no rtpengine)."
  echo "  So the m1node figure is **calls/s with media anchored** (relay ports allocated and released per call),"
  echo "  without RTP: the packet-relaying cost is measured by bench/media.mjs (bench/results/media.md)."
  echo "- *achieved* = successful calls / the time SIPp took to place the step's calls (from its statistics,"
  echo "  dumped every second; at least calls / offered rate): SIPp places calls on schedule unless its call limit"
  echo "  stops it, so this is the offered rate minus failures. *failed %* counts every call placed that did not end with the BYE's 200, including calls"
  echo "  cut by the step's time limit; with retransmissions on, a server that falls behind shows first in the"
  echo "  latency (p99) and then in failures."
  echo "- *concurrent* is the largest number of calls SIPp's caller had in progress at once (its \`CurrentCall\`,"
  echo "  sampled every second); for long calls this is the number of calls the server held at once (on m1node each"
  echo "  holds 4 relay sockets: with an open files limit of $FD_LIMIT, roughly $((FD_LIMIT / 4)) anchored calls fit in"
  echo "  one process)."
  echo "- CPU % is the server's user+system time over the step's wall time (100 % = one core of $NPROC), summed over"
  echo "  its processes; *CPU µs/call* is that time per successful call. RSS is the largest VmRSS sum sampled"
  echo "  during the step (Kamailio's shared memory is counted once per process). Latency p50/p99: INVITE to 200"
  echo "  (SIPp rtd, millisecond buckets). *Drops*: datagrams the server's socket discarded (\`ss -m\`)."
  echo "- Everything, SIPp included, shares the same $NPROC cores; near a limit, repeat a run before reading much into"
  echo "  a 10-20 % difference."
  echo
  echo "## Steps"
  echo
  echo "| target | series | offered/s | achieved/s | failed % | concurrent | p50 ms | p99 ms | CPU % | CPU µs/call | RSS MB | SIPp CPU % | drops | stop |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F'\t' 'function lt(v) { return v ~ /^[>-]/ ? v : "< " v }
    NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $4, $5, $6, $7, lt($8), lt($9), $10, $11, $12, $13, $14, ($17 == "-" ? "" : $17) }' "$ROWS"
  echo
  echo "## Commands"
  echo
  echo '```sh'
  for t in $TARGETS; do
    if [ "$(infoval "$t" command)" != - ]; then
      echo "# $t"
      infoval "$t" command | sed "s|$ROOT/||g"
    fi
  done
  echo "# the callee: register from its port, then answer"
  echo "sipp -sf test/interop/scenarios/register-auth.xml -inf users.csv -m 1 ${SIPP_COMMON[*]} -p UAS_PORT 127.0.0.1:PORT"
  echo "sipp -sf bench/scenarios/call-uas.xml ${SIPP_COMMON[*]} ${SIPP_STEP_FLAGS[*]} -p UAS_PORT -mp UAS_MEDIA -recv_timeout 120000 127.0.0.1:PORT"
  echo "# each step (RATE calls/s for STEP s, each held HOLD ms)"
  echo "sipp -sf bench/scenarios/call-uac.xml -s $CALLEE -d HOLD -r RATE -m \$((RATE * STEP)) ${SIPP_COMMON[*]} ${SIPP_STEP_FLAGS[*]} -default_behaviors all,-abortunexp -p UAC_PORT -mp UAC_MEDIA -trace_stat -stf stat.csv -fd 1 127.0.0.1:PORT"
  echo '```'
  echo
  echo "Raw rows: [calls.tsv](calls.tsv)."
} > "$RESULTS/calls.md"
cp "$ROWS" "$RESULTS/calls.tsv"

echo
column -t -s $'\t' "$ROWS"
echo
for t in $TARGETS; do
  if [ "$(infoval "$t" skipped)" != - ]; then
    echo "$t: not run ($(infoval "$t" skipped))"
  else
    echo "$t: best short calls $(bestshown "$t" short)/s; long calls $(bestshown "$t" long)/s, $(bestcol "$t" long 7) concurrent"
  fi
done
echo "ratio m1node/kamailio: short $(ratio short), long $(ratio long)"
echo "report: $RESULTS/calls.md (run files: $RUN_DIR)"
exit 0
}
