#!/usr/bin/env bash
# PBX benchmark: calls per second into a PBX trunk, compared with calls to a plain registered phone, on one m1node.
#
#   bash bench/pbx.sh
#
# One node (built dist/), media anchored (media.anchor = always), no RTP. SIPp plays the callee and the caller on
# 127.0.0.1. For each series the callee registers first, then the caller offers RATES calls/s, DURATION_PER_STEP s
# per step, each call held HOLD_MS, until a step fails >= MAX_FAIL_PCT % of its calls or achieves < 80 % of the
# offered rate:
#   login      sip:u00001@node -> the phone u00001 (register-auth.xml): the reference
#   trunk      sip:acme@node -> the PBX trunk acme_pbx, registered with ;line= (pbx-register.xml), main number
#   extension  sip:acme.201@node -> the same trunk, Request-URI user rewritten to 201 (acme in extensions mode)
#   did        sip:+15551234567@node from a DID provider address (pbx.did_providers) -> extension 201
# The caller is foreign (From: caller@bench.example), accepted without authentication (routing.allow_anonymous,
# and as a provider for the DID). Prints a table and writes bench/results/pbx.md.
#
# Environment (defaults): RATES="200 400 600 800 1000 1200", DURATION_PER_STEP=10, HOLD_MS=1000,
# SERIES="login trunk extension did", MAX_FAIL_PCT=0.1.
# Everything listens on and sends to 127.0.0.1 only; every process started here is stopped on exit.
# Needs: sipp 3.6, node 24 with dist/ built (npm run build), curl, ss.
set -euo pipefail
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/all.sh
source "$HERE/lib/all.sh"

RATES=${RATES:-"200 400 600 800 1000 1200"}
DURATION_PER_STEP=${DURATION_PER_STEP:-10}
HOLD_MS=${HOLD_MS:-1000}
SERIES=${SERIES:-"login trunk extension did"}
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.1}
SIPP=${SIPP:-sipp}
SCEN="$ROOT/test/interop/scenarios"
OPTIONS_XML="$SCEN/options.xml"
RESULTS="$HERE/results"
RUN_DIR="$HERE/tmp/pbx-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN_DIR" "$RESULTS"
SIPP_COMMON=(-t u1 -i 127.0.0.1 -nostdin -buff_size 4194304)
TRUNK_PW=bench-trunk-password

if [ ! -f "$ROOT/dist/cli/index.js" ]; then echo "dist/ missing: npm run build" >&2; exit 1; fi
command -v "$SIPP" >/dev/null || { echo "sipp not found" >&2; exit 1; }

PORT=$(port_in 40000 59000)
WEB=$(port_in 40000 59000)
DATA="$RUN_DIR/data"
m1node_env ENVV "$PORT" "$WEB"
ENVV+=(M1NODE_P2P_ENABLED=false M1NODE_MEDIA_HOST=127.0.0.1 M1NODE_MEDIA_ANCHOR=always
  M1NODE_MEDIA_PORT_MIN=10000 M1NODE_MEDIA_PORT_MAX=29999 M1NODE_ROUTING_ALLOW_ANONYMOUS=true
  M1NODE_PBX_DID_PROVIDERS=127.0.0.1)
m1() { env "${ENVV[@]}" node "$ROOT/bin/m1node.js" "$@" --data "$DATA" >>"$RUN_DIR/cli.log" 2>&1; }

log "setting up: u00001, acme with trunk acme_pbx (extensions mode), DID +15551234567 -> acme.201"
sipp_users_csv 1 "$RUN_DIR/users-sipp.csv"
m1node_users_csv 1 "$RUN_DIR/users.csv"
m1 user import "$RUN_DIR/users.csv"
m1 user add acme --password pw-acme-bench
m1 trunk add acme --name pbx --password "$TRUNK_PW"
m1 trunk mode acme extensions
m1 did add +15551234567 acme.201
printf 'SEQUENTIAL\nacme_pbx;%s;[authentication username=acme_pbx password=%s]\n' "$TRUNK_PW" "$TRUNK_PW" > "$RUN_DIR/trunk.csv"

m1node_start "$RUN_DIR" "$WEB" "${ENVV[@]}" || { echo "node not ready: $TARGET_SKIP" >&2; exit 1; }
NODE_PID=$TARGET_PID
wait_sip_ready "$PORT" "$(port_in 40000 59000)" || { echo "node not ready: $(tail -3 "$RUN_DIR/m1node.log")" >&2; exit 1; }

ROWS="$RUN_DIR/rows.tsv"
printf 'series\toffered\tachieved\tfail_pct\tp50_ms\tp99_ms\tcpu_us_per_call\n' > "$ROWS"

# cumulative CPU ticks of the node process tree
# shellcheck disable=SC2046
node_ticks() { proc_ticks $(proc_tree "$NODE_PID"); }
HZ=$(proc_hz)

for series in $SERIES; do
  case $series in
    login) callee=u00001 ;;
    trunk) callee=acme ;;
    extension) callee=acme.201 ;;
    did) callee=+15551234567 ;;
    *) echo "unknown series $series" >&2; exit 2 ;;
  esac
  uas_port=$(port_in 40000 59000)
  if [ "$series" = login ]; then
    "$SIPP" -sf "$SCEN/register-auth.xml" -inf "$RUN_DIR/users-sipp.csv" -m 1 "${SIPP_COMMON[@]}" -p "$uas_port" \
      -set domain 127.0.0.1 -recv_timeout 5000 -timeout 10s -timeout_error "127.0.0.1:$PORT" >"$RUN_DIR/reg-$series.out" 2>&1
  else
    "$SIPP" -sf "$SCEN/pbx-register.xml" -inf "$RUN_DIR/trunk.csv" -m 1 "${SIPP_COMMON[@]}" -p "$uas_port" \
      -set domain 127.0.0.1 -set line bench -recv_timeout 5000 -timeout 10s -timeout_error "127.0.0.1:$PORT" >"$RUN_DIR/reg-$series.out" 2>&1
  fi
  for rate in $RATES; do
    calls=$((rate * DURATION_PER_STEP))
    out="$RUN_DIR/$series-$rate"
    mkdir -p "$out"
    "$SIPP" -sf "$HERE/scenarios/call-uas.xml" "${SIPP_COMMON[@]}" -p "$uas_port" -mp "$(port_in 30000 39000)" \
      -timeout $((DURATION_PER_STEP + 40))s "127.0.0.1:$PORT" >"$out/uas.out" 2>&1 &
    uas=$!
    STARTED_PIDS+=("$uas")
    sleep 0.5
    t0=$(node_ticks)
    timeout -k 5 $((DURATION_PER_STEP + 60)) "$SIPP" -sf "$HERE/scenarios/call-uac.xml" -s "$callee" -d "$HOLD_MS" \
      -r "$rate" -m "$calls" -l $((rate * (HOLD_MS / 1000 + 10) + 100)) "${SIPP_COMMON[@]}" \
      -default_behaviors all,-abortunexp -p "$(port_in 40000 59000)" -mp "$(port_in 30000 39000)" \
      -recv_timeout 10000 -timeout $((DURATION_PER_STEP + 40))s -timeout_error \
      -trace_stat -stf "$out/stat.csv" -fd 1 "127.0.0.1:$PORT" >"$out/uac.out" 2>&1 || true
    t1=$(node_ticks)
    stop_pid "$uas"
    read -r created ok failed _retrans _elapsed p50 p99 < <(sipp_stat_summary "$out/stat.csv" || echo "0 0 0 0 0 - -")
    gen=$(stat_gen_seconds "$out/stat.csv")
    achieved=$(calc "$gen > 0 ? $ok / $gen : 0")
    fail_pct=$(calc "$created > 0 ? 100 * ($created - $ok) / $created : 100")
    cpu=$(calc "$ok > 0 ? ($t1 - $t0) / $HZ * 1000000 / $ok : 0")
    printf '%s\t%s\t%.0f\t%.2f\t%s\t%s\t%.0f\n' "$series" "$rate" "$achieved" "$fail_pct" "$p50" "$p99" "$cpu" >> "$ROWS"
    log "$series $rate/s: $ok of $created ok ($(printf '%.2f' "$fail_pct") % failed), achieved $(printf '%.0f' "$achieved")/s, p50 $p50 ms, p99 $p99 ms, node CPU $(printf '%.0f' "$cpu") µs/call"
    if [ "$(calc "$fail_pct >= $MAX_FAIL_PCT || $achieved < 0.8 * $rate")" = 1 ]; then break; fi
  done
done

# ---------------------------------------------------------------------------
best() { awk -F'\t' -v s="$1" -v m="$MAX_FAIL_PCT" 'NR > 1 && $1 == s && $4 < m && $3 >= 0.8 * $2 { b = $2; c = $7 } END { print (b == "" ? "-" : b) "\t" (c == "" ? "-" : c) }' "$ROWS"; }
{
  echo "# PBX benchmark: calls into a trunk"
  echo
  echo "Generated by \`bash bench/pbx.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))," \
    "shared with other work while it ran. m1node $(node -p "require('$ROOT/package.json').version") (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), Node $(node -v)," \
    "\`media.anchor = always\`, no RTP; SIPp callee and caller on 127.0.0.1; calls held $HOLD_MS ms, $DURATION_PER_STEP s of new calls per step."
  echo
  echo "| series | what is called | best sustained calls/s (< $MAX_FAIL_PCT % failed) | node CPU µs/call there |"
  echo "|---|---|---:|---:|"
  for s in $SERIES; do
    case $s in
      login) w='`u00001`: a registered phone (reference)' ;;
      trunk) w='`acme`: the trunk contact as registered (`;line=`)' ;;
      extension) w='`acme.201`: trunk contact with user 201' ;;
      did) w='`+15551234567` from a provider address -> extension 201' ;;
    esac
    IFS=$'\t' read -r b c < <(best "$s")
    echo "| $s | $w | $b | $c |"
  done
  echo
  echo "Every step:"
  echo
  echo "| series | offered/s | achieved/s | failed % | p50 ms (INVITE->200) | p99 ms | node CPU µs/call |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$ROWS"
  echo
  echo "*achieved* = successful calls / the time SIPp took to place the step's calls (as in bench/calls.sh)."
  echo "The last rate tried in a series is the one that failed (or the end of RATES). The trunk series differ from"
  echo "the login series by the PBX lookups on the INVITE path (trunks of the login, routing settings, DID or"
  echo "extension resolution, contact rewrite); everything else (B2BUA, relay ports, call records) is the same."
} > "$RESULTS/pbx.md"
cat "$RESULTS/pbx.md"
}
