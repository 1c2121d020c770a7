#!/usr/bin/env bash
# The README's test command: every test of the workspace, on a fresh Debian or Ubuntu machine with
# only a Rust toolchain.
#
# Some end-to-end tests drive real programs: a Prometheus server (scrapes `ea2p serve`), Open MPI's
# `mpirun` (`ea2p run` under MPI, then `ea2p merge`), gcc (a C program against the C API), Python's
# venv (the Python modules built by pip, then pytest), qemu-system-arm (the firmware of
# adapters/embedded runs under it) and a one-node Slurm (slurmctld, slurmd and munged, for the
# README's job-array sweep, sim/slurm/ci.sh). As root, this script installs what is missing with
# apt-get; otherwise it names the packages to install and stops with exit code 2, so no test is
# ever skipped silently.
#
# Every test binary runs (`--no-fail-fast`): a failure in one does not hide the others.
# Usage: scripts/test.sh [extra arguments for cargo test]
set -euo pipefail
cd "$(dirname "$0")/.."

# program -> Debian package that provides it
declare -A needs=(
    [prometheus]=prometheus
    [mpirun]=openmpi-bin
    [gcc]=gcc
    [python3]=python3
    [qemu-system-arm]=qemu-system-arm
    [slurmctld]=slurm-wlm
    [munged]=munge
)
missing=()
for program in "${!needs[@]}"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("${needs[$program]}")
done
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    # Sorted so the message is the same on every run.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: installing what the end-to-end tests drive: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "scripts/test.sh: the end-to-end tests need programs this machine lacks." >&2
        echo "Install them, then run this script again:" >&2
        echo "    sudo apt-get install -y ${missing[*]}" >&2
        echo "(Debian/Ubuntu package names; run as root and this script installs them itself.)" >&2
        exit 2
    fi
fi

echo "=== cargo test --workspace --no-fail-fast"
cargo test --workspace --locked --no-fail-fast "$@"

echo "=== Python module (pip install ./adapters/python in a venv, then pytest)"
adapters/python/ci.sh

echo "=== eas_sim Python module (pip install ./sim/python in a venv, then pytest)"
sim/python/ci.sh

echo "=== Slurm job-array sweep (sim/slurm/sweep.sbatch under a one-node Slurm, merged, compared)"
if [ "$(id -u)" -eq 0 ]; then
    sim/slurm/ci.sh
else
    echo "scripts/test.sh: the Slurm sweep test starts slurmd, which must run as root: run this script as root." >&2
    exit 2
fi

echo "=== Firmware (adapters/embedded: the INA219 meter's host tests, then the firmware under QEMU)"
adapters/embedded/ci.sh
