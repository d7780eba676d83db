#!/bin/sh
# Runs a command in the network namespace joinbench's Janus comparison needs: `lo` and an empty
# bridge carrying 127.0.0.2/32 (Janus's ICE, libnice, does not gather on a loopback interface).
# Needs root. Usage: tools/netns.sh node tools/joinbench.mjs --janus 10
set -e
NS=sportello-bench
if ! ip netns list | grep -qw "$NS"; then
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" ip link add b0 type bridge
  ip netns exec "$NS" ip addr add 127.0.0.2/32 dev b0
  ip netns exec "$NS" ip link set b0 up
fi
exec ip netns exec "$NS" "$@"
