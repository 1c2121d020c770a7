#!/usr/bin/env bash
# Scale benchmark of BENCHMARKS.md ("EAS-Sim at scale"): wall time and peak RSS of one run of
# each policy on 10k, 100k and 1M-job Helios traces over the 10,000-GPU cluster of
# sim/scenarios/scale-10k-gpus.toml. Usage: sim/benches/scale.sh [WORKDIR] [REPEATS] [POLICIES]
#   WORKDIR   where traces and scenarios go (default /tmp/eas-scale; 1M rows are 115 MB)
#   REPEATS   runs per (size, policy); the table gives the median (default 3)
#   POLICIES  comma-separated (default: all eight)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/eas-scale}
reps=${2:-3}
policies=${3:-fifo,pollux,themis,chronos,zeus,hades,aurachronos,charon}
mkdir -p "$dir"
cargo build --release -q -p eas-sim --manifest-path "$root/Cargo.toml"
sim="$root/target/release/eas-sim"
base="$root/sim/scenarios/scale-10k-gpus.toml"
echo "jobs,hours,policy,median_s,median_max_rss_kb,runs"
for n in 10000 100000 1000000; do
    trace="$dir/t$n.csv"
    [ -s "$trace" ] || "$sim" gen-trace --scenario "$base" -n "$n" --format helios -o "$trace" 2>/dev/null
    # The scenario with the trace as its arrivals (the trace path is relative to the scenario).
    sed "s|^poisson_rate_per_s = 3.125|trace = \"t$n.csv\"\nformat = \"helios\"|" "$base" > "$dir/s$n.toml"
    hours=$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 3.125 / 3600 * 1.0 + 0.01 }')
    for p in ${policies//,/ }; do
        times=() ; rss=()
        for _ in $(seq "$reps"); do
            out=$(/usr/bin/time -f "%e %M" "$sim" run --policy "$p" -s "$dir/s$n.toml" --hours "$hours" 2>&1 >/dev/null | tail -1)
            times+=("${out% *}"); rss+=("${out#* }")
        done
        med() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
        echo "$n,$hours,$p,$(med "${times[@]}"),$(med "${rss[@]}"),$reps"
    done
done
