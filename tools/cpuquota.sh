#!/bin/sh
# Runs the server (RELAY_BIN, default target/release/sportello) in a CPU cgroup of its own that
# gets RELAY_QUOTA % of one core (default 50) from RELAY_QUOTA_AFTER seconds after start (default
# 6: the joins of mediaload's 70 rooms go unthrottled), without the real-time priority its media
# reactors would otherwise take (a quota holds only ordinary threads). For mediaload's
# `--server`: a relay held to part of a core is saturated by a load this machine's other core
# can generate, so its CPU per forwarded packet is what it costs when busy, batches full.
#   taskset -c 0 target/release/mediaload --rooms 70 --seconds 15 --media-udp 127.0.0.1:47000 \
#     --server-cpus 1 --server tools/cpuquota.sh
# Needs root and the cgroup `cpu` controller (v1 or v2).
set -e
BIN=${RELAY_BIN:-target/release/sportello}
PCT=${RELAY_QUOTA:-50}
AFTER=${RELAY_QUOTA_AFTER:-6}
PERIOD=10000
QUOTA=$((PERIOD * PCT / 100))
if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
  G=/sys/fs/cgroup/cpu/sportello-quota
  mkdir -p "$G"
  echo "$PERIOD" > "$G/cpu.cfs_period_us"
  echo -1 > "$G/cpu.cfs_quota_us"
  LIMIT="echo $QUOTA > $G/cpu.cfs_quota_us"
else
  ROOT=/sys/fs/cgroup
  [ -f "$ROOT/cgroup.controllers" ] || ROOT=/sys/fs/cgroup/unified
  grep -qw cpu "$ROOT/cgroup.controllers" || { echo "cpuquota.sh: no cgroup cpu controller" >&2; exit 1; }
  echo +cpu > "$ROOT/cgroup.subtree_control" 2>/dev/null || true
  G=$ROOT/sportello-quota
  mkdir -p "$G"
  echo "max $PERIOD" > "$G/cpu.max"
  LIMIT="echo '$QUOTA $PERIOD' > $G/cpu.max"
fi
echo $$ > "$G/cgroup.procs"
(sleep "$AFTER"; sh -c "$LIMIT") &
exec setpriv --bounding-set=-sys_nice "$BIN" "$@"
