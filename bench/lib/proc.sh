# Process accounting from /proc, for the benchmarks (sourced, not run).
# All functions take pids as arguments and ignore the ones that have exited.

# The pid and all its descendants, one per line.
proc_tree() {
  local pid=$1 child
  [ -d "/proc/$pid" ] || return 0
  echo "$pid"
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
    proc_tree "$child"
  done
}

# utime + stime (clock ticks) summed over the pids; the whole thread group of each.
proc_ticks() {
  local pid total=0 stat rest
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # comm may contain spaces: fields are counted after the last ')'.
    rest=${stat##*) }
    set -- $rest
    # $1 is field 3 (state): utime is field 14 -> ${12}, stime field 15 -> ${13}
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# Sum of a /proc/<pid>/status or smaps_rollup field (kB) over the pids.
_proc_sum_kb() {
  local file=$1 key=$2 pid total=0 v
  shift 2
  for pid in "$@"; do
    v=$(awk -v k="$key:" '$1 == k { print $2; exit }' "/proc/$pid/$file" 2>/dev/null) || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# Resident set size (kB) summed over the pids. Pages of shared memory are
# counted once per process that touched them (Kamailio's shm!): see proc_pss_kb.
proc_rss_kb() { _proc_sum_kb status VmRSS "$@"; }

# Proportional set size (kB): shared pages divided among their users, so the
# sum over a process tree is the memory the tree really holds.
proc_pss_kb() { _proc_sum_kb smaps_rollup Pss "$@"; }

# Ticks per second for proc_ticks.
proc_hz() { getconf CLK_TCK; }
