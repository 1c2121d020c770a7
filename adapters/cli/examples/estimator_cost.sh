#!/usr/bin/env bash
# CPU time of `ea2p run --interval 10ms --devices cpu,ram -- sleep SECS` with the estimators
# against RAPL only, for two builds side by side in one session (BENCHMARKS.md, "The estimators'
# cost"). Each round runs the six cases one after the other, so that a slow minute of the VM
# hits them all; the median over the rounds is what BENCHMARKS.md reports.
#
# Usage: estimator_cost.sh OLD_EA2P NEW_EA2P [SECS] [ROUNDS]
#   rapl:      a fake powercap tree on /dev/shm with package-0 and its dram zone: no model runs;
#   pkg+model: the tree without the dram zone (as on CPUs with no DRAM domain): package-0 every
#              10 ms and the RAM model;
#   models:    an empty sysfs root (no RAPL, no perf): the CPU and RAM models only, on the real
#              /proc.
set -euo pipefail
old=${1:?the previous build of ea2p}
new=${2:?this build of ea2p}
secs=${3:-30}
rounds=${4:-3}
root=$(mktemp -d /dev/shm/ea2p-cost.XXXXXX)
trap 'rm -rf "$root"' EXIT
rapl=$root/rapl/class/powercap
mkdir -p "$rapl/intel-rapl:0/intel-rapl:0:0" "$root/none" "$root/pkg/class/powercap"
for z in "intel-rapl:0" "intel-rapl:0/intel-rapl:0:0"; do
    echo 262143328850 > "$rapl/$z/max_energy_range_uj"
    echo 1000000 > "$rapl/$z/energy_uj"
done
echo package-0 > "$rapl/intel-rapl:0/name"
echo dram > "$rapl/intel-rapl:0/intel-rapl:0:0/name"
# powercap lists subzones next to their parent too.
ln -s "intel-rapl:0/intel-rapl:0:0" "$rapl/intel-rapl:0:0"
mkdir -p "$root/pkg/class/powercap/intel-rapl:0"
for f in name energy_uj max_energy_range_uj; do
    cp "$rapl/intel-rapl:0/$f" "$root/pkg/class/powercap/intel-rapl:0/$f"
done

measure() { # BIN SYSFS -> CPU seconds (user + sys)
    /usr/bin/time -f "%U %S" -o "$root/t" env EA2P_SYSFS_ROOT="$2" "$1" run --allow-root \
        --interval 10ms --devices cpu,ram -- sleep "$secs" > "$root/out" 2>&1
    awk '{printf "%.3f", $1 + $2}' "$root/t"
}

echo "round old:rapl old:pkg+model old:models new:rapl new:pkg+model new:models (CPU s over ${secs} s)"
for ((r = 1; r <= rounds; r++)); do
    line=$r
    for bin in "$old" "$new"; do
        for tree in rapl pkg none; do
            line="$line $(measure "$bin" "$root/$tree")"
        done
    done
    echo "$line"
done
echo "last run's summary (new build, estimators):"
cat "$root/out"
