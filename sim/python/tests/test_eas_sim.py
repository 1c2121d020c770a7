"""The eas_sim module against the eas-sim program: same figures (from the same JSON text), same
scenario messages; Python policies run by the engine, their bad decisions refused by the core."""

import json
import os
import subprocess

import pytest

import eas_sim

BIN = os.environ.get("EAS_SIM_BIN", "eas-sim")
SWEEP = ["--seeds", "2", "--hours", "2", "--policies", "fifo,zeus,charon"]


def program(*args):
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    return out


def test_compare_is_the_programs_json_byte_for_byte(tmp_path):
    f, r = tmp_path / "c.json", tmp_path / "runs.jsonl"
    out = program("compare", *SWEEP, "--gpu-mtbf-h", "40", "--json", str(f), "--runs-json", str(r))
    assert out.returncode == 0, out.stderr
    sc = eas_sim.Scenario.seed_protocol()
    # The faults flag as a scenario dict: the same resolved scenario.
    d = {"faults": {"gpu_mtbf_h": 40.0}}
    text, lines = eas_sim._eas_sim.compare_json(d, ["fifo", "zeus", "charon"], 2, 2.0, True, None)
    assert text == f.read_text()
    assert lines == r.read_text()
    got = eas_sim.compare(d, policies=["fifo", "zeus", "charon"], seeds=2, hours=2, runs=True)
    assert got["runs"] == [json.loads(x) for x in r.read_text().splitlines()]
    del got["runs"]
    assert got == json.loads(f.read_text())
    assert got["policies"][0]["faults"]["gpu_failures"]["mean"] is not None
    assert sc.name == "seed" and sc.gpu_types == ["A100", "H100"]


def test_run_is_the_programs_json(tmp_path):
    f = tmp_path / "r.json"
    out = program("run", "--policy", "hades", "--run", "1", "--hours", "3", "--json", str(f))
    assert out.returncode == 0, out.stderr
    assert eas_sim.run(None, "hades", run=1, hours=3) == json.loads(f.read_text())


def test_scenario_from_path_text_and_dict_are_one_scenario(tmp_path):
    toml = 'name = "small"\nhours = 2.0\nseeds = 2\n\n[arrivals]\npoisson_rate_per_s = 0.01\n'
    p = tmp_path / "small.toml"
    p.write_text(toml)
    d = {"name": "small", "hours": 2.0, "seeds": 2, "arrivals": {"poisson_rate_per_s": 0.01}}
    a = eas_sim.compare(str(p), policies=["pollux"])
    assert a == eas_sim.compare(p, policies=["pollux"])
    assert a == eas_sim.compare(toml, policies=["pollux"])
    assert a == eas_sim.compare(d, policies=["pollux"])
    assert a == eas_sim.compare(eas_sim.Scenario.from_dict(d), policies=["pollux"])
    assert a["scenario"] == "small" and a["policies"][0]["runs"] == 2


def test_scenario_errors_are_the_programs_messages(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('name = "bad"\nhours = -1.0\n')
    out = program("compare", "--scenario", str(p), "--seeds", "1")
    assert out.returncode != 0
    with pytest.raises(eas_sim.ScenarioError) as e:
        eas_sim.compare(str(p))
    assert out.stderr.strip() == "eas-sim: error: " + str(e.value)
    assert f"{p}:2:" in str(e.value)
    with pytest.raises(eas_sim.ScenarioError) as e:
        eas_sim.Scenario.from_toml('hours = "ten"\n')
    assert str(e.value).startswith("<string>:1:")
    with pytest.raises(eas_sim.ScenarioError) as e:
        eas_sim.compare({"workload": {"users": 4, "nonsense": 1}})
    assert "<dict>" in str(e.value) and "nonsense" in str(e.value)
    with pytest.raises(eas_sim.ScenarioError, match="cannot read"):
        eas_sim.compare(str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="unknown policy \"nope\": expected one of fifo"):
        eas_sim.compare(None, policies=["nope"], seeds=1, hours=1)
    with pytest.raises(ValueError, match="hours: expected a positive number"):
        eas_sim.compare(None, policies=["fifo"], hours=float("nan"))


class Sjf:
    """Least remaining work first, on the requested GPU count of any type with room."""

    name = "sjf-py"

    def __init__(self):
        self.rounds = 0
        self.seen_running = 0

    def schedule(self, state):
        self.rounds += 1
        self.seen_running = max(self.seen_running, len(state.running))
        free = list(state.free)
        out = []
        for job in sorted(state.pending, key=lambda j: (j.remaining_work, j.id)):
            for t, name in enumerate(state.gpu_types):
                if job.requested_gpu_type not in (None, name):
                    continue
                if free[t] >= job.requested_gpus and state.predict(job, name) is not None:
                    free[t] -= job.requested_gpus
                    out.append(eas_sim.Start(job, name, job.requested_gpus))
                    break
        return out


def test_a_python_policy_runs_deterministically_with_the_same_views():
    p = Sjf()
    a = eas_sim.run(None, p, run=0, hours=3, jobs=True)
    assert p.rounds == a["rounds"] > 10
    assert p.seen_running > 0  # running jobs are in the views every round
    assert a["policy"] == "sjf-py" and a["jobs_completed"] > 0
    assert len(a["jobs"]) == a["jobs_arrived"]
    done = [j for j in a["jobs"] if j["completed_at_s"] is not None]
    assert len(done) == a["jobs_completed"]
    assert all(j["jct_s"] == pytest.approx(j["completed_at_s"] - j["arrival_s"]) for j in done)
    b = eas_sim.run(None, Sjf(), run=0, hours=3, jobs=True)
    assert a == b
    builtin = eas_sim.run(None, "fifo", run=0, hours=3)
    assert set(builtin) | {"rounds", "jobs"} == set(a)
    cmp = eas_sim.compare(None, policies=["fifo", Sjf()], seeds=2, hours=2)
    assert [x["policy"] for x in cmp["policies"]] == ["fifo", "sjf-py"]


class Once:
    """Returns what `make(state)` gives in the first round with a job of the right kind."""

    def __init__(self, make, need_running=False):
        self.make = make
        self.need_running = need_running

    def schedule(self, state):
        if self.need_running and not state.running:
            # Start something first so that there are running jobs.
            j = state.pending[0] if state.pending else None
            if j is not None and state.free[0] >= j.requested_gpus:
                return [eas_sim.Start(j, 0, j.requested_gpus)]
            return []
        if not state.pending and not self.need_running:
            return []
        return self.make(state)


def refused(make, need_running=False):
    with pytest.raises(eas_sim.DecisionError) as e:
        eas_sim.run(None, Once(make, need_running), hours=2)
    return str(e.value)


def test_bad_decisions_raise_naming_the_job_and_the_reason():
    def start_running(s):
        j = s.running[0]
        return [eas_sim.Start(j, 0, 1)]

    e = refused(start_running, need_running=True)
    assert "impossible decision" in e and "start of a running job" in e

    def too_many(s):
        j = s.pending[0]
        return [eas_sim.Start(j, 0, s.free[0] + 1, batch=256)]

    e = refused(too_many)
    assert "job 0: needs 9 more GPUs of type 0, 8 free" in e

    def preempt_pending(s):
        return [eas_sim.Preempt(s.pending[0])]

    e = refused(preempt_pending)
    assert "job 0: resize or preemption of a job that is not running" in e

    def bad_limit(s):
        return [eas_sim.Start(s.pending[0], 0, 1, limit_w=1.0)]

    assert "power limit 1 W is outside" in refused(bad_limit)

    def unknown_type(s):
        return [eas_sim.Start(s.pending[0], "V100", 1)]

    assert "unknown GPU type 'V100': expected one of A100, H100" in refused(unknown_type)

    def unknown_job(s):
        return [eas_sim.Preempt(10**9)]

    assert "job 1000000000 is not in this round" in refused(unknown_job)


def test_a_policys_own_errors_come_back_as_they_are():
    class Raises:
        def schedule(self, state):
            return 1 / 0

    with pytest.raises(ZeroDivisionError):
        eas_sim.run(None, Raises(), hours=1)

    class NotDecisions:
        def schedule(self, state):
            return ["start everything"]

    with pytest.raises(TypeError, match="must return eas_sim.Start, Resize or Preempt"):
        eas_sim.run(None, NotDecisions(), hours=1)

    with pytest.raises(TypeError, match="schedule\\(state\\) method"):
        eas_sim.run(None, object(), hours=1)


def test_dataframe_when_pandas_is_installed():
    cmp = eas_sim.compare(None, policies=["fifo", "zeus"], seeds=2, hours=1, runs=True)
    if os.environ.get("EAS_SIM_EXPECT_PANDAS") == "1":
        df = eas_sim.to_dataframe(cmp)
        assert list(df["policy"]) == ["fifo", "zeus"]
        assert df.loc[1, "energy_kwh_mean"] == cmp["policies"][1]["energy_kwh"]["mean"]
        runs = eas_sim.to_dataframe(cmp["runs"])
        assert len(runs) == 4 and "jobs_per_hour" in runs.columns
    else:
        with pytest.raises(ImportError, match="needs pandas"):
            eas_sim.to_dataframe(cmp)
