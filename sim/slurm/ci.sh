#!/usr/bin/env bash
# Runs sim/slurm/sweep.sbatch (the README's example) under a one-node Slurm started here, and
# checks that the merged result is byte-identical to the unsharded `eas-sim compare --json`.
#
# Needs root (slurmd runs jobs as their user and must be root for that) and Debian's slurm-wlm
# and munge packages: scripts/test.sh installs them. It starts its own munged (own socket and
# key), slurmctld and slurmd, on ports 16817/16818, with every file in a temp dir, and stops
# exactly those processes on exit. The whole run takes a few seconds; it gives up after 120.
# Usage: sim/slurm/ci.sh [path to a built eas-sim binary]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-"${CARGO_TARGET_DIR:-$root/target}/debug/eas-sim"}
for p in munged slurmctld slurmd sbatch sinfo; do
    command -v "$p" >/dev/null || { echo "sim/slurm/ci.sh: $p not found: apt-get install slurm-wlm munge" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "sim/slurm/ci.sh: must run as root (slurmd runs the jobs)" >&2; exit 2; }
[ -x "$bin" ] || { echo "sim/slurm/ci.sh: no eas-sim binary at $bin (cargo build -p eas-sim)" >&2; exit 2; }

# The README shows the script: every line it shows must be the script's (no drift).
python3 - "$root/sim/README.md" "$here/sweep.sbatch" <<'PY'
import sys
readme, script = (open(p).read() for p in sys.argv[1:])
block = readme.split("### As a Slurm job array", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
lines = set(script.splitlines())
bad = [l for l in block.splitlines() if l not in lines]
if bad or len(block.splitlines()) < 8:
    sys.exit("sim/README.md's Slurm script differs from sim/slurm/sweep.sbatch: %r" % bad)
PY

work=$(mktemp -d /tmp/eas-slurm.XXXXXX)
chmod 755 "$work"
stop() {
    for d in slurmd slurmctld munged; do
        [ -s "$work/$d.pid" ] && kill "$(cat "$work/$d.pid")" 2>/dev/null || true
    done
    sleep 1
    rm -rf "$work"
}
trap stop EXIT
deadline=$((SECONDS + 120))

# munge: a fresh key, our own socket, so a system munged (if any) is left alone.
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$work/munge"
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
    --pid-file="$work/munged.pid" --log-file="$work/munge/munged.log" \
    --seed-file="$work/munge/munged.seed"

node=$(hostname -s)
mkdir -p "$work/state" "$work/spool" "$work/sweep"
export SLURM_CONF="$work/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=eas-ci
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=$node CPUs=$(nproc) State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -c
slurmd -c
until [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; do
    [ $SECONDS -lt $deadline ] || { echo "Slurm node not idle after 120 s:"; tail "$work"/*.log; exit 1; }
    sleep 0.2
done
echo "one-node Slurm up in ${SECONDS} s"

# The sweep: a small scenario, 7 shards (the script's --array overridden on the command line,
# as a user sizing the array would), then the merge as a dependent job, as the README shows.
cat > "$work/sweep/scenario.toml" <<TOML
name = "slurm-ci"
hours = 2.0
seeds = 3
TOML
mkdir -p "$work/bin"
ln -s "$bin" "$work/bin/eas-sim"
export PATH="$work/bin:$PATH"
cd "$work/sweep"
mkdir -p shards
jid=$(sbatch --parsable --array=0-6 "$here/sweep.sbatch")
# A failed shard leaves the merge's dependency unsatisfiable: the wait is bounded.
timeout $((deadline - SECONDS)) sbatch --wait --kill-on-invalid-dep=yes --dependency=afterok:"$jid" --output=merge.log --wrap \
    'eas-sim merge-results shards/shard-*.json --json results.json --csv results.csv' || {
    echo "the sweep or its merge failed:"; tail -n 5 merge.log shards/*.log "$work"/slurm*.log; exit 1; }
eas-sim compare --scenario scenario.toml --quiet --json whole.json > /dev/null
ls shards/shard-*.json | wc -l | grep -qx 7 || { echo "expected 7 shard results"; ls shards; exit 1; }
if cmp results.json whole.json; then
    echo "Slurm array of 7 shards, merged: byte-identical to the unsharded result (${SECONDS} s)"
else
    echo "merged result differs from the unsharded one"; cat merge.log shards/*.log; exit 1
fi
