#!/usr/bin/env bash
# Builds the ea2p Python module as a wheel-installed package in a fresh venv and runs its tests.
# Usage (from anywhere): adapters/python/ci.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/target/python-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The README's install command: maturin is the PEP 517 backend, fetched by pip.
"$venv/bin/python" -m pip install --quiet "$here" pytest
cd "$here/tests"
"$venv/bin/python" -m pytest -q "$@"
