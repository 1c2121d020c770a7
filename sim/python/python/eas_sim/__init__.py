"""EAS-Sim for Python: the deterministic GPU-cluster simulator of the ``eas-sim`` program, its
eight built-in scheduling policies, and policies written in Python, run by the same Rust engine.

>>> import eas_sim
>>> cmp = eas_sim.compare("scenario.toml", policies=["fifo", "zeus"], seeds=3)  # doctest: +SKIP
>>> cmp["policies"][1]["energy_kwh"]["mean"]                                    # doctest: +SKIP

``compare`` returns what ``eas-sim compare --json`` writes and ``run`` what ``eas-sim run --json``
writes, parsed from the very text the program writes. A scenario is a path, TOML text, a dict
shaped like the TOML file, an ``eas_sim.Scenario``, or None for the built-in seed protocol; it is
loaded and checked by the program's own loader, with its messages.

A policy written in Python is any object with a ``schedule(state)`` method (see ``State``)
returning ``Start``, ``Resize`` and ``Preempt`` decisions; the core checks every decision before
the engine applies it, and a bad one raises ``DecisionError`` naming the job and the reason.
"""

import json

from ._eas_sim import (  # noqa: F401  (re-exported)
    Config,
    DecisionError,
    EasSimError,
    Job,
    Prediction,
    Preempt,
    Resize,
    Scenario,
    ScenarioError,
    Start,
    State,
    __version__,
    builtin_policies,
)
from ._eas_sim import compare_json as _compare_json
from ._eas_sim import run_json as _run_json

__all__ = [
    "compare",
    "run",
    "to_dataframe",
    "builtin_policies",
    "Scenario",
    "State",
    "Job",
    "Config",
    "Prediction",
    "Start",
    "Resize",
    "Preempt",
    "ScenarioError",
    "DecisionError",
    "EasSimError",
]


def compare(scenario=None, policies=None, seeds=None, hours=None, runs=False, threads=None):
    """Runs every policy on every seed and returns the comparison: the dict that
    ``eas-sim compare --json`` writes (``{"scenario": ..., "policies": [...]}``, one entry per
    policy with each metric's mean and 95% interval over seeds).

    ``policies``: names of built-in policies (``builtin_policies()``) and Python policy objects,
    in the order wanted (default: the eight built-ins). ``seeds``, ``hours``: the program's
    ``--seeds`` and ``--hours``. ``runs=True`` adds the key ``"runs"``: every run's results, in
    (policy, seed) order, as ``--runs-json`` writes them. ``threads``: worker threads for the
    built-in policies (results do not depend on it); Python policies run on the calling thread.
    """
    text, lines = _compare_json(scenario, policies, seeds, hours, runs, threads)
    out = json.loads(text)
    if runs:
        out["runs"] = [json.loads(line) for line in lines.splitlines()]
    return out


def run(scenario=None, policy="fifo", run=0, hours=None, jobs=False):
    """Runs one policy (a built-in name or a Python policy object) on run index ``run`` and
    returns its results: the dict that ``eas-sim run --json`` writes. ``jobs=True`` adds the key
    ``"jobs"``: every job that arrived, in arrival order (id, user, arrival, deadline, first
    start, completion and completion time in seconds, None for what did not happen; energy in
    J; work done). For a Python policy, the key ``"rounds"`` says how many rounds it ran."""
    text, job_text, rounds = _run_json(scenario, policy, run, hours, jobs)
    out = json.loads(text)
    if jobs:
        out["jobs"] = json.loads(job_text)
    if rounds is not None:
        out["rounds"] = rounds
    return out


def to_dataframe(result):
    """A pandas DataFrame of a result (pandas is optional: ImportError without it).

    - ``compare(...)``: one row per policy, columns ``METRIC_mean`` and ``METRIC_ci95`` (the
      columns of ``eas-sim compare --csv`` for the JSON's metrics);
    - ``compare(..., runs=True)["runs"]``: one row per run;
    - ``run(..., jobs=True)["jobs"]``: one row per job.
    """
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "eas_sim.to_dataframe needs pandas (pip install pandas); the results themselves "
            "are plain dicts and lists"
        ) from e
    if isinstance(result, dict) and "policies" in result:
        rows = []
        for p in result["policies"]:
            row = {"policy": p["policy"], "runs": p["runs"]}
            for key, value in p.items():
                if isinstance(value, dict) and "mean" in value:
                    row[key + "_mean"] = value["mean"]
                    row[key + "_ci95"] = value["ci95"]
                elif isinstance(value, dict):  # the fault metrics
                    for k, v in value.items():
                        row[k + "_mean"] = v["mean"]
                        row[k + "_ci95"] = v["ci95"]
            rows.append(row)
        return pandas.DataFrame(rows)
    if isinstance(result, list):
        return pandas.json_normalize(result)
    raise TypeError(
        "to_dataframe: expected the dict of compare() or a list (its runs, or run()'s jobs)"
    )
