# Local port helpers for the benchmarks (sourced, not run).

# A port in [min, max] with no UDP or TCP socket bound to it on this host.
port_in() {
  local min=$1 max=$2 p i
  for i in $(seq 1 200); do
    p=$((min + (RANDOM * 32768 + RANDOM) % (max - min + 1)))
    if [ -z "$(ss -Hanu "sport = :$p" 2>/dev/null)" ] && [ -z "$(ss -Hant "sport = :$p" 2>/dev/null)" ]; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port in $min-$max" >&2
  return 1
}

# A port in 20000-59999 with no UDP or TCP socket bound to it on this host.
free_port() { port_in 20000 59999; }

# The value of a Prometheus sample at 127.0.0.1:WEB (first match of a metric name), or "-".
metric() {
  local web=$1 name=$2
  curl -fsS --max-time 2 "http://127.0.0.1:$web/metrics" 2>/dev/null |
    awk -v n="$name" '$1 == n || index($1, n "{") == 1 { print $2; found = 1; exit } END { if (!found) print "-" }'
}

# Datagrams dropped so far by the UDP socket(s) bound to a local port (the `d`
# of `ss -m`: receive buffer overflows), summed; 0 when none is bound.
udp_drops() {
  ss -Huanm "sport = :$1" 2>/dev/null |
    awk '{ if (match($0, /,d[0-9]+\)/)) { s += substr($0, RSTART + 2, RLENGTH - 3) } } END { print s + 0 }'
}
