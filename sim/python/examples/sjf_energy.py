"""Shortest job first by predicted energy, written in Python, run by EAS-Sim's Rust engine and
compared with the eight built-in policies on the seed protocol.

    python examples/sjf_energy.py [--hours H] [--seeds N]

Every round, the pending jobs are ordered by the energy the job model predicts for their
remaining work (their requested GPU count and batch, no power limit, on the GPU type where that
energy is least), and started in that order while GPUs of a type they can use are free
(backfilling: a job that does not fit is passed over, as in the built-in Pollux).
"""

import argparse

import eas_sim


class SjfEnergy:
    """Least predicted energy first."""

    name = "sjf-energy"

    def schedule(self, state):
        free = list(state.free)
        ranked = []
        for job in state.pending:
            # The job's requested type, or every type when it asked for any.
            types = [job.requested_gpu_type] if job.requested_gpu_type else state.gpu_types
            best = None
            for t in types:
                p = state.predict(job, gpu_type=t)
                if p is not None and (best is None or p.energy_j < best[0]):
                    best = (p.energy_j, t)
            if best is not None:
                ranked.append((best[0], job.id, job, best[1]))
        ranked.sort(key=lambda r: (r[0], r[1]))
        decisions = []
        for _, _, job, gpu_type in ranked:
            if not any(free):
                break
            t = state.gpu_types.index(gpu_type)
            if free[t] >= job.requested_gpus:
                free[t] -= job.requested_gpus
                decisions.append(eas_sim.Start(job, gpu_type, job.requested_gpus))
        return decisions


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    a = ap.parse_args()
    policies = eas_sim.builtin_policies() + [SjfEnergy()]
    cmp = eas_sim.compare(None, policies=policies, seeds=a.seeds, hours=a.hours)
    print(f"scenario {cmp['scenario']}: mean ± 95% CI over {cmp['policies'][0]['runs']} seeds")
    cols = [
        ("jobs/h", "jobs_per_hour", 1.0),
        ("energy kWh", "energy_kwh", 1.0),
        ("mean JCT h", "mean_jct_s", 1 / 3600),
        ("EDP GJ·s", "edp", 1e-9),
        ("miss %", "deadline_miss_rate", 100.0),
    ]
    print(f"{'policy':<12}" + "".join(f"{c[0]:>18}" for c in cols))
    for p in cmp["policies"]:
        cells = []
        for _, key, scale in cols:
            s = p[key]
            if s["mean"] is None:
                cells.append("-")
            elif s["ci95"] is None:
                cells.append(f"{s['mean'] * scale:.2f}")
            else:
                cells.append(f"{s['mean'] * scale:.2f} ± {s['ci95'] * scale:.2f}")
        print(f"{p['policy']:<12}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
