#!/usr/bin/env bash
# Cost of region markers through EA2P_REGIONS: a command that writes N sequential begin/end
# pairs, or N nested begins then their ends, run under `ea2p run` (no hardware: the CPU model,
# --devices cpu, 1 ms interval) against the same command alone. Prints the median wall time of
# RUNS runs of each. Usage: scripts/bench_regions.sh EA2P_BINARY [N] [RUNS]
set -euo pipefail
bin=${1:?usage: $0 EA2P_BINARY [N] [RUNS]}
n=${2:-100000}
runs=${3:-5}
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
seq_cmd="awk 'BEGIN { for (i = 0; i < $n; i++) printf \"begin r%d\\nend r%d\\n\", i, i }' > \"\$EA2P_REGIONS\""
nest_cmd="awk 'BEGIN { for (i = 0; i < $n; i++) printf \"begin r%d\\n\", i; for (i = $n - 1; i >= 0; i--) printf \"end r%d\\n\", i }' > \"\$EA2P_REGIONS\""
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
time_one() {
    local s e
    s=$(date +%s.%N)
    "$@" > /dev/null 2>&1 || true
    e=$(date +%s.%N)
    echo "$e - $s" | bc
}
for kind in seq nest; do
    cmd=$seq_cmd
    [ "$kind" = nest ] && cmd=$nest_cmd
    t=$(for _ in $(seq "$runs"); do
        time_one timeout 600 "$bin" --sysfs-root "$empty" run --allow-root --devices cpu -- sh -c "$cmd"
    done | median)
    alone=$(for _ in $(seq "$runs"); do
        time_one sh -c "EA2P_REGIONS=/dev/null; $cmd"
    done | median)
    echo "$kind n=$n: under ea2p ${t}s, alone ${alone}s"
done
