"""The ea2p module against a fake powercap tree whose power the test sets."""

import json
import os
import time

import pytest

import ea2p


def close(measured, truth, tol):
    return abs(measured - truth) <= tol * abs(truth)


def test_training_like_loop_with_regions(rapl, tmp_path):
    out = tmp_path / "train.ea2p"
    truths = {}
    with ea2p.Monitor(devices="cpu", sysfs_root=rapl.root, output=str(out)) as monitor:
        assert monitor.running
        time.sleep(0.05)

        @monitor.measure("step")
        def step(watts):
            rapl.set_watts("intel-rapl:0", watts)
            t0 = rapl.joules("intel-rapl:0")
            time.sleep(0.15)
            truths.setdefault("step", []).append(rapl.joules("intel-rapl:0") - t0)

        results = []
        e_all = rapl.joules("intel-rapl:0")
        monitor.begin("all")
        for epoch, watts in enumerate([10.0, 30.0]):
            e0 = rapl.joules("intel-rapl:0")
            with monitor.region(f"epoch-{epoch}") as r:
                step(watts)
                step(watts)
            truths[f"epoch-{epoch}"] = rapl.joules("intel-rapl:0") - e0
            results.append(r.measurement)
            assert step.last_measurement.name == "step"
        m_all = monitor.end("all")
        truth_all = rapl.joules("intel-rapl:0") - e_all
        summary = monitor.stop()

    for i, m in enumerate(results):
        truth = truths[f"epoch-{i}"]
        assert close(m.total_j, truth, 0.10), (m, truth)
        assert m.duration_s > 0.29
        assert m.edp_js == pytest.approx(m.total_j * m.duration_s)
        comp = m.components[0]
        assert comp["name"] == "package-0" and comp["kind"] == "measured"
        d = m.to_dict()
        assert d["name"] == f"epoch-{i}" and d["total_j"] == m.total_j
        assert json.loads(m.to_json())["components"][0]["energy_j"] == comp["energy_j"]
    assert results[1].total_j > 2.0 * results[0].total_j
    assert close(m_all.total_j, truth_all, 0.08)

    assert summary["regions_left_open"] == []
    names = [r["name"] for r in summary["regions"]]
    assert names.count("step") == 4 and "epoch-0" in names and names[-1] == "all"
    assert close(summary["total_j"], rapl.joules("intel-rapl:0"), 0.10)
    assert summary["components"][0]["name"] == "package-0"
    assert summary["profile"] == str(out) and summary["profile_error"] is None
    assert os.path.getsize(out) > 0
    assert monitor.stop() == summary  # stop() again: the same summary
    assert not monitor.running


def test_region_errors_raise_with_the_message(rapl):
    monitor = ea2p.Monitor(devices="cpu", sysfs_root=rapl.root)
    with pytest.raises(ea2p.RegionError, match='"nope" is not open'):
        monitor.end("nope")
    monitor.begin("a")
    with pytest.raises(ea2p.RegionError, match="already open"):
        monitor.begin("a")
    assert issubclass(ea2p.RegionError, ea2p.Ea2pError)
    assert issubclass(ea2p.Ea2pError, RuntimeError)
    summary = monitor.stop()
    assert summary["regions_left_open"] == ["a"]


def test_bad_options_are_clear():
    with pytest.raises(ea2p.Ea2pError, match="unknown device \"tpu\""):
        ea2p.Monitor(devices="cpu,tpu")
    with pytest.raises(ea2p.Ea2pError, match="interval_ms must be a positive"):
        ea2p.Monitor(interval_ms=0)
    with pytest.raises(ea2p.Ea2pError, match="cannot create the profile"):
        ea2p.Monitor(devices="cpu", output="/nonexistent-dir/x.ea2p")


def test_sources_as_data(rapl):
    s = ea2p.sources(sysfs_root=rapl.root)
    names = [x["name"] for x in s["sources"]]
    assert "package-0" in names
    pkg = s["sources"][names.index("package-0")]
    assert pkg["kind"] == "measured" and pkg["reads"] == "energy counter"
    assert isinstance(s["not_available"], list)


def test_estimates_without_rapl(tmp_path):
    with ea2p.Monitor(devices="cpu,ram", sysfs_root=str(tmp_path)) as monitor:
        with monitor.region("idle") as r:
            time.sleep(0.25)
        assert any("RAPL: not available" in n for n in monitor.notes)
        live = monitor.current()
        assert {c["name"] for c in live["components"]} == {"cpu", "ram"}
    kinds = {c["kind"] for c in r.measurement.components}
    assert kinds == {"estimated"}
    assert r.measurement.total_j > 0
