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
