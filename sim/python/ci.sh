#!/usr/bin/env bash
# Builds the eas_sim Python module as a wheel-installed package in a fresh venv and runs its
# tests, first without pandas (the DataFrame helper must say it needs it), then with it.
# Usage (from anywhere): sim/python/ci.sh [pytest arguments]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/target/eas-sim-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The README's install command: maturin is the PEP 517 backend, fetched by pip.
"$venv/bin/python" -m pip install --quiet "$here" pytest
"$venv/bin/python" -m pip uninstall --quiet --yes pandas 2>/dev/null || true
# The tests call the program too (`eas-sim compare --json`) to compare its bytes with the module.
cargo build --quiet -p eas-sim --manifest-path "$root/Cargo.toml"
export EAS_SIM_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/eas-sim"
cd "$here/tests"
EAS_SIM_EXPECT_PANDAS=0 "$venv/bin/python" -m pytest -q "$@"
"$venv/bin/python" -m pip install --quiet pandas
EAS_SIM_EXPECT_PANDAS=1 "$venv/bin/python" -m pytest -q -k dataframe "$@"
# The worked example runs as the README shows it.
"$venv/bin/python" "$here/examples/sjf_energy.py" --hours 2 --seeds 2 > /dev/null
