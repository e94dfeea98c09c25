#!/usr/bin/env bash
# The m1node NAT lab: a small internet inside network namespaces, nothing routed out of it.
#
#   m1lab-inet     the public segment 11.22.33.0/24 (a bridge); exists only inside the lab
#   m1lab-relay1   11.22.33.10   a relay node
#   m1lab-relay2   11.22.33.11   a second relay node
#   m1lab-nat1     11.22.33.1 (wan) / 10.1.0.1 (lan)   NAT router of LAN 1
#   m1lab-lan1     10.1.0.10     a node and its phones behind NAT 1
#   m1lab-nat2     11.22.33.2 (wan) / 10.2.0.1 (lan)   NAT router of LAN 2
#   m1lab-lan2     10.2.0.10     a node and its phones behind NAT 2
#
# 11.22.33.0/24 is an ordinary (public-looking) range on purpose: libp2p treats the documentation and RFC 1918
# ranges as private and will not hole punch between them. No namespace has a link to the host's interfaces, and
# there is no default route out of the public segment, so no packet leaves the lab.
#
# usage: lab.sh up [eim|symmetric]   build the lab (NAT type of both routers; default eim)
#        lab.sh nat eim|symmetric    switch the NAT type of both routers (and flush their conntrack tables)
#        lab.sh flush                flush the conntrack tables of both routers
#        lab.sh down                 remove everything named m1lab-* (safe after a crash, and when nothing is up)
#        lab.sh status               namespaces, addresses and NAT rules
set -euo pipefail

P=m1lab
NETNS=("$P-inet" "$P-relay1" "$P-relay2" "$P-nat1" "$P-lan1" "$P-nat2" "$P-lan2")

need() {
  [ "$(id -u)" = 0 ] || { echo "lab.sh: needs root" >&2; exit 3; }
  for b in ip nft; do command -v "$b" >/dev/null 2>&1 || { echo "lab.sh: $b is missing (apt-get install iproute2 nftables conntrack)" >&2; exit 3; }; done
}

x() { ip netns exec "$@"; }

down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
    # end anything still running inside (daemons of a crashed test run)
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  # veth ends left in the host namespace by a half-built lab
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$P-" || true); do ip link del "$l" 2>/dev/null || true; done
}

# veth pair: host-side names are temporary (m1lab-*), renamed inside the namespaces
link() { # link <ns-a> <name-in-a> <ns-b> <name-in-b>
  local ta="$P-t$RANDOM" tb="$P-t$RANDOM"
  ip link add "$ta" type veth peer name "$tb"
  ip link set "$ta" netns "$1"; x "$1" ip link set "$ta" name "$2"
  ip link set "$tb" netns "$3"; x "$3" ip link set "$tb" name "$4"
  x "$1" ip link set "$2" up; x "$3" ip link set "$4" up
}

nat_rules() { # nat_rules <ns> <eim|symmetric>
  local ns=$1 kind=$2 masq
  case "$kind" in
    # endpoint-independent: one mapping per inside address and port, the source port kept when free
    eim) masq="masquerade persistent" ;;
    # symmetric: a new random port for every destination
    symmetric) masq="masquerade fully-random" ;;
    *) echo "lab.sh: NAT type must be eim or symmetric" >&2; exit 2 ;;
  esac
  x "$ns" nft -f - <<NFT
flush ruleset
table inet m1lab {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
  }
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    iifname "lan" accept
  }
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "wan" $masq
  }
}
NFT
  command -v conntrack >/dev/null 2>&1 && x "$ns" conntrack -F >/dev/null 2>&1 || true
}

up() {
  local kind=${1:-eim}
  down
  for ns in "${NETNS[@]}"; do ip netns add "$ns"; x "$ns" ip link set lo up; done
  x "$P-inet" ip link add br0 type bridge
  x "$P-inet" ip link set br0 up
  local i=0
  for pair in relay1:11.22.33.10 relay2:11.22.33.11 nat1:11.22.33.1 nat2:11.22.33.2; do
    local who=${pair%%:*} ip=${pair#*:}
    i=$((i + 1))
    link "$P-inet" "p$i" "$P-$who" wan
    x "$P-inet" ip link set "p$i" master br0
    x "$P-$who" ip addr add "$ip/24" dev wan
  done
  for n in 1 2; do
    link "$P-nat$n" lan "$P-lan$n" eth0
    x "$P-nat$n" ip addr add "10.$n.0.1/24" dev lan
    x "$P-lan$n" ip addr add "10.$n.0.10/24" dev eth0
    x "$P-lan$n" ip route add default via "10.$n.0.1"
    x "$P-nat$n" sysctl -qw net.ipv4.ip_forward=1
    nat_rules "$P-nat$n" "$kind"
  done
  echo "lab up ($kind NAT)"
}

status() {
  local any=0
  for ns in "${NETNS[@]}"; do
    ip netns list | awk '{print $1}' | grep -qx "$ns" || continue
    any=1
    echo "== $ns: $(x "$ns" ip -br -4 addr show | awk '$1 != "lo" {printf "%s %s  ", $1, $3}')"
  done
  [ $any = 1 ] || { echo "lab is down"; return 0; }
  for n in 1 2; do echo "== $P-nat$n: $(x "$P-nat$n" nft list chain inet m1lab postrouting 2>/dev/null | grep -o 'masquerade.*' || echo '?')"; done
}

cmd=${1:-status}
case "$cmd" in
  up) need; up "${2:-eim}" ;;
  down) need; down; echo "lab down" ;;
  nat) need; for n in 1 2; do nat_rules "$P-nat$n" "${2:?eim or symmetric}"; done; echo "NAT: $2" ;;
  flush) need; for n in 1 2; do x "$P-nat$n" conntrack -F >/dev/null 2>&1 || true; done ;;
  status) need; status ;;
  *) echo "usage: lab.sh up [eim|symmetric] | nat eim|symmetric | flush | down | status" >&2; exit 2 ;;
esac
