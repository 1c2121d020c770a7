#!/usr/bin/env bash
# Peak and current RSS of `ea2p run` every 10 s over a long run (BENCHMARKS.md, "Memory over a
# long run"). Usage: rss_over_time.sh SYSFS_TREE SECONDS [EA2P_BINARY]
set -euo pipefail
tree=${1:?a fake or real sysfs root}
secs=${2:-600}
bin=${3:-target/release/ea2p}
out=$(mktemp -d)
EA2P_SYSFS_ROOT=$tree "$bin" run --allow-root --interval 1ms --devices cpu,ram \
    -o "$out/run.ea2p" -- sleep "$secs" > "$out/summary.txt" 2>&1 &
sleep 1
pid=$(pgrep -n -f "run --allow-root --interval 1ms --devices cpu,ram -o $out/run.ea2p")
echo "t_s rss_kb hwm_kb profile_bytes"
for ((t = 0; t + 5 < secs; t += 10)); do
    echo "$t $(awk '/VmRSS/ {print $2}' /proc/$pid/status) $(awk '/VmHWM/ {print $2}' /proc/$pid/status) $(stat -c %s "$out/run.ea2p")"
    sleep 10
done
wait
rm -rf "$out"
