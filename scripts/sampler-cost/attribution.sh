#!/bin/bash
# The attribution's cost (BENCHMARKS.md, "Attribution on and off"): one build, run with
# `--attribute none` ("old") and with the default `--attribute tree` ("new") alternately, by
# run.sh's method (8 fake zones on /dev/shm, /usr/bin/time around `ea2p run -- sleep S`), then
# PAIRS more pairs at 10 ms. Usage: scripts/sampler-cost/attribution.sh EA2P [SECONDS] [PAIRS]
set -euo pipefail
EA2P=$(realpath "$1") S=${2:-60} PAIRS=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# `ea2p run ARGS...` with --attribute none after the subcommand.
printf '#!/bin/sh\nsub=$1; shift; exec %s "$sub" --attribute none "$@"\n' "$EA2P" > "$W/ea2p-off"
chmod +x "$W/ea2p-off"
"$here/run.sh" "$W/ea2p-off" "$EA2P" "$S"
# More pairs at 10 ms, on run.sh's static tree (rebuilt by a second, short run.sh would cost
# another round; the 10 ms pairs here use the same 8-zone layout).
T=$(mktemp -d /dev/shm/ea2p-cost.XXXXXX)
trap 'rm -rf "$W" "$T"' EXIT
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
echo "# more 10 ms pairs"
for k in $(seq "$PAIRS"); do
  for b in off on; do
    bin=$EA2P; [ $b = off ] && bin=$W/ea2p-off
    EA2P_SYSFS_ROOT=$T /usr/bin/time -o "$T/time.out" -f "%U %S" "$bin" run --allow-root \
      --interval 10ms --devices cpu,ram -- sleep "$S" >/dev/null 2>&1
    echo "$b 10ms $(cat "$T/time.out")"
  done
done
