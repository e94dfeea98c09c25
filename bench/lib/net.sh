# Local port helpers for the benchmarks (sourced, not run).

# A port in 20000-59999 with no UDP or TCP socket bound to it on this host.
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if [ -z "$(ss -Hanu "sport = :$p" 2>/dev/null)" ] && [ -z "$(ss -Hant "sport = :$p" 2>/dev/null)" ]; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Datagrams dropped so far by the UDP socket(s) bound to a local port (the `d`
# of `ss -m`: receive buffer overflows), summed; 0 when none is bound.
udp_drops() {
  ss -Huanm "sport = :$1" 2>/dev/null |
    awk '{ if (match($0, /,d[0-9]+\)/)) { s += substr($0, RSTART + 2, RLENGTH - 3) } } END { print s + 0 }'
}
