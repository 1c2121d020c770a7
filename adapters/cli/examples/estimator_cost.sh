#!/usr/bin/env bash
# CPU time of `ea2p run --interval 10ms --devices cpu,ram -- sleep SECS` with the estimators
# against RAPL only, for two builds side by side in one session (BENCHMARKS.md, "The estimators'
# cost"). Each round runs the four cases one after the other, so that a slow minute of the VM
# hits them all; the median over the rounds is what BENCHMARKS.md reports.
#
# Usage: estimator_cost.sh OLD_EA2P NEW_EA2P [SECS] [ROUNDS]
#   RAPL only: a fake powercap tree on /dev/shm with package-0 and its dram zone, so neither
#              model runs;
#   estimators: an empty sysfs root (no RAPL, no perf), so the CPU and RAM models run on the
#              real /proc.
set -euo pipefail
old=${1:?the previous build's ea2p}
new=${2:?this build's ea2p}
secs=${3:-30}
rounds=${4:-3}
root=$(mktemp -d /dev/shm/ea2p-cost.XXXXXX)
trap 'rm -rf "$root"' EXIT
rapl=$root/rapl/class/powercap
mkdir -p "$rapl/intel-rapl:0/intel-rapl:0:0" "$root/none"
for z in "intel-rapl:0" "intel-rapl:0/intel-rapl:0:0"; do
    echo 262143328850 > "$rapl/$z/max_energy_range_uj"
    echo 1000000 > "$rapl/$z/energy_uj"
done
echo package-0 > "$rapl/intel-rapl:0/name"
echo dram > "$rapl/intel-rapl:0/intel-rapl:0:0/name"
# powercap lists subzones next to their parent too.
ln -s "intel-rapl:0/intel-rapl:0:0" "$rapl/intel-rapl:0:0"

measure() { # BIN SYSFS -> CPU seconds (user + sys)
    /usr/bin/time -f "%U %S" -o "$root/t" env EA2P_SYSFS_ROOT="$2" "$1" run --allow-root \
        --interval 10ms --devices cpu,ram -- sleep "$secs" > "$root/out" 2>&1
    awk '{printf "%.3f", $1 + $2}' "$root/t"
}

echo "round old_rapl old_estimators new_rapl new_estimators (CPU s over ${secs} s)"
for ((r = 1; r <= rounds; r++)); do
    echo "$r $(measure "$old" "$root/rapl") $(measure "$old" "$root/none") \
$(measure "$new" "$root/rapl") $(measure "$new" "$root/none")"
done
echo "last run's summary (new build, estimators):"
cat "$root/out"
