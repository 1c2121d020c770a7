"""Cost of a policy written in Python per scheduling round (BENCHMARKS.md, "EAS-Sim from Python").

Runs the README's worked example (examples/sjf_energy.py, shortest job first by predicted energy)
on the seed protocol's run 0 (10 simulated hours), 15 times: median wall time, rounds, time per
round; then the built-in FIFO on the same run through the module (the engine's own cost). The
same policy in Rust: `cargo bench -p eas-sim --bench external_policy`; give its results file
(EAS_BENCH_OUT) as the argument and this checks that both ran the same policy (same results).

Usage: python bench.py [rust-results.json]
"""

import json
import os
import statistics
import sys
import time

import eas_sim

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples"))
from sjf_energy import SjfEnergy  # noqa: E402


def timed(policy):
    times, out = [], None
    for _ in range(15):
        t0 = time.perf_counter()
        out = eas_sim.run(None, policy, run=0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


t, out = timed(SjfEnergy())
rounds = out.pop("rounds")
print(
    f"sjf-energy in Python, seed protocol run 0: median {t * 1e3:.1f} ms over 15 runs, "
    f"{rounds} rounds, {t * 1e6 / rounds:.1f} µs/round, {out['jobs_completed']} jobs completed"
)
tf, _ = timed("fifo")
print(f"built-in fifo through the module, same run: median {tf * 1e3:.3f} ms over 15 runs")
if len(sys.argv) > 1:
    with open(sys.argv[1]) as f:
        rust = json.load(f)
    assert rust == out, "the Rust and Python policies gave different results"
    print("same results as the Rust policy (all metrics equal)")
