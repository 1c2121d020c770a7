#!/usr/bin/env bash
# CI of the embedded workspace: the INA219 meter's host tests, then the firmware under QEMU
# (Cortex-M4F, MPS2 AN386), which must print energy_j=... expected_j=... and exit 0.
#
# Installs what is missing when it can (qemu-system-arm through apt as root, the
# thumbv7em-none-eabihf target through rustup); otherwise names it and exits 2. A missing tool is a
# failure, never a skip. Usage: adapters/embedded/ci.sh (from anywhere).
set -euo pipefail
cd "$(dirname "$0")"
# This workspace's own target dir, whatever the caller's CARGO_TARGET_DIR says.
export CARGO_TARGET_DIR="$PWD/target"

TARGET=thumbv7em-none-eabihf
QEMU_TIMEOUT_S="${QEMU_TIMEOUT_S:-60}"
step() { printf '\n--- embedded: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
missing() {
    printf 'adapters/embedded/ci.sh: missing %s\n' "$1" >&2
    exit 2
}

step "tools"
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends qemu-system-arm \
            || { apt-get update && apt-get install -y --no-install-recommends qemu-system-arm; }
    fi
    command -v qemu-system-arm >/dev/null 2>&1 \
        || missing "qemu-system-arm (Debian/Ubuntu: apt-get install qemu-system-arm, as root)"
fi
installed_targets() { rustup target list --installed 2>/dev/null || true; }
if ! installed_targets | grep -qx "$TARGET"; then
    if command -v rustup >/dev/null 2>&1; then
        rustup target add "$TARGET" || true
    fi
    installed_targets | grep -qx "$TARGET" \
        || missing "the Rust target $TARGET (rustup target add $TARGET)"
fi
command -v timeout >/dev/null 2>&1 || missing "timeout (coreutils)"
qemu-system-arm --version | head -n 1
HOST="$(rustc -vV | sed -n 's/^host: //p')"
[ -n "$HOST" ] || missing "rustc (to name the host target)"

step "rustfmt"
cargo fmt --all --check

step "clippy (meter on the host with its tests, meter and firmware on $TARGET)"
cargo clippy --locked --target "$HOST" -p ea2p-meter --all-targets -- -D warnings
cargo clippy --locked -p ea2p-meter -p ea2p-firmware --features ea2p-firmware/stack-usage --bins --lib -- -D warnings

step "host tests of the meter (embedded-hal-mock, the simulated chip, the scripted run)"
cargo test --locked --target "$HOST" -p ea2p-meter

step "firmware build (memory.x caps flash at 32 KiB: the link fails above it)"
cargo build --locked --release --bins
# The instruction-count measurement of BENCHMARKS.md: built so that it keeps compiling, not run.
cargo build --locked --release --features stack-usage --bin sample-cost

step "firmware under QEMU (cargo run --release, ${QEMU_TIMEOUT_S} s at most)"
log="$CARGO_TARGET_DIR/qemu-run.log"
status=0
timeout "$QEMU_TIMEOUT_S" cargo run --locked --release >"$log" 2>&1 || status=$?
cat "$log"
if [ "$status" -eq 124 ]; then
    echo "adapters/embedded/ci.sh: the firmware did not exit within ${QEMU_TIMEOUT_S} s" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "adapters/embedded/ci.sh: the firmware exited with status $status" >&2
    exit 1
fi
grep -Eq '^energy_j=[0-9.]+ expected_j=[0-9.]+ ' "$log" \
    || { echo "adapters/embedded/ci.sh: no energy_j=... expected_j=... line" >&2; exit 1; }
echo "adapters/embedded/ci.sh: ok"
