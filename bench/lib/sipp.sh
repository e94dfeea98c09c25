# SIPp helpers for the benchmarks (sourced, not run).

# Users for register-auth.xml: SEQUENTIAL, then `login;password;[authentication ...]`
# for u00001.. with password pw-<login> (the Kamailio reference derives the same).
# SIPp 3.6.1 cannot nest [fieldN] inside [authentication], so field2 carries the
# whole keyword.
sipp_users_csv() {
  local n=$1 out=$2
  awk -v n="$n" 'BEGIN {
    print "SEQUENTIAL"
    for (i = 1; i <= n; i++) {
      l = sprintf("u%05d", i)
      printf "%s;pw-%s;[authentication username=%s password=pw-%s]\n", l, l, l, l
    }
  }' > "$out"
}

# The same users for `m1node user import`.
m1node_users_csv() {
  local n=$1 out=$2
  awk -v n="$n" 'BEGIN {
    print "login,password,display_name"
    for (i = 1; i <= n; i++) {
      l = sprintf("u%05d", i)
      printf "%s,pw-%s,Bench User %d\n", l, l, i
    }
  }' > "$out"
}

# Summary of the last line of a `-trace_stat` file, as
#   created successful failed retransmissions elapsed_s rtd_p50_ms rtd_p99_ms
# elapsed_s runs from the first call to the final dump (the last answer).
# rtd_pNN_ms is the upper bound of the ResponseTimeRepartition bucket that
# holds the percentile (">1000" beyond the last bucket, "-" when no call ended).
sipp_stat_summary() {
  awk -F';' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { last = $0 }
    END {
      n = split(last, v, ";")
      split(v[col["StartTime"]], s, "\t"); split(v[col["CurrentTime"]], c, "\t")
      elapsed = c[3] - s[3]
      created = v[col["OutgoingCall(C)"]] + 0
      ok = v[col["SuccessfulCall(C)"]] + 0
      failed = v[col["FailedCall(C)"]] + 0
      retrans = v[col["Retransmissions(C)"]] + 0
      # ResponseTimeRepartition1_<X columns, in order, then _>=LAST
      total = 0; nb = 0
      for (i = 1; i <= n; i++) {
        name = ""
        for (k in col) if (col[k] == i) name = k
        if (name ~ /^ResponseTimeRepartition1_/) {
          nb++; bound[nb] = substr(name, length("ResponseTimeRepartition1_") + 1)
          cnt[nb] = v[i] + 0; total += cnt[nb]
        }
      }
      p50 = "-"; p99 = "-"; acc = 0
      for (b = 1; b <= nb; b++) {
        acc += cnt[b]
        lab = bound[b]; sub(/^</, "", lab); sub(/^>=/, ">", lab)
        if (p50 == "-" && total > 0 && acc >= 0.50 * total) p50 = lab
        if (p99 == "-" && total > 0 && acc >= 0.99 * total) p99 = lab
      }
      printf "%d %d %d %d %.3f %s %s\n", created, ok, failed, retrans, elapsed, p50, p99
    }' "$1"
}

# Seconds from the start of a -trace_stat run to the first dump with every call placed
# (OutgoingCall(C) at its final value): how long SIPp took to place the step's calls.
stat_gen_seconds() {
  awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { split($col["StartTime"], s, "\t"); split($col["CurrentTime"], c, "\t"); n = $col["OutgoingCall(C)"] + 0
      if (n > last) { last = n; t = c[3] - s[3] } }
    END { printf "%.3f\n", (t > 0 ? t : 0) }' "$1" 2>/dev/null || echo 0
}
