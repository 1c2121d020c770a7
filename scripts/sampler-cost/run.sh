#!/bin/bash
# The sampler's CPU cost, two builds side by side (BENCHMARKS.md, "After the move to the core's
# session and fold"). Usage: scripts/sampler-cost/run.sh OLD_EA2P NEW_EA2P [SECONDS]
# Builds a fake powercap tree of 8 zones on /dev/shm, then runs old and new alternately:
# static counters at 1, 10 and 100 ms, then counters advancing every 1 ms (writer.py) at 1 ms.
# Prints "build interval user_s sys_s" per run.
set -euo pipefail
OLD=$1 NEW=$2 S=${3:-60}
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /dev/shm/ea2p-cost.XXXXXX)
trap 'rm -rf "$T"' EXIT
for p in 0 1; do
  for z in "intel-rapl:$p package-$p" "intel-rapl:$p:0 core" "intel-rapl:$p:1 uncore" "intel-rapl:$p:2 dram"; do
    set -- $z
    d=$T/class/powercap/$1
    mkdir -p "$d"
    echo "$2" > "$d/name"
    echo 262143328850 > "$d/max_energy_range_uj"
    echo 200000000 > "$d/constraint_0_power_limit_uw"
    echo 123456789 > "$d/energy_uj"
  done
done
run() { # label binary interval
  EA2P_SYSFS_ROOT=$T /usr/bin/time -o "$T/time.out" -f "%U %S" "$2" run --allow-root \
    --interval "$3" --devices cpu,ram -- sleep "$S" >/dev/null 2>&1
  echo "$1 $3 $(cat "$T/time.out")"
}
echo "# static tree"
for i in 1ms 10ms 100ms; do run old "$OLD" $i; run new "$NEW" $i; done
echo "# counters advancing every 1 ms"
python3 "$here/writer.py" "$T" & W=$!
for k in 1 2 3 4; do run old "$OLD" 1ms; run new "$NEW" 1ms; done
kill $W
