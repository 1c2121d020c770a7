"""A fake powercap tree advanced at known watts by a thread, like the Rust FakeRapl fixture
(tests/src/lib.rs): class/powercap/intel-rapl:N/{name, max_energy_range_uj, energy_uj}."""

import os
import threading
import time

import pytest


class FakeRapl:
    def __init__(self, root, zones):
        self.root = str(root)
        self._lock = threading.Lock()
        self._zones = {}
        for d, name, watts in zones:
            z = os.path.join(self.root, "class/powercap", d)
            os.makedirs(z)
            with open(os.path.join(z, "name"), "w") as f:
                f.write(name + "\n")
            with open(os.path.join(z, "max_energy_range_uj"), "w") as f:
                f.write("262143328850\n")
            path = os.path.join(z, "energy_uj")
            with open(path, "w") as f:
                f.write("%20d\n" % 0)
            fd = os.open(path, os.O_WRONLY)
            self._zones[d] = {"fd": fd, "watts": watts, "joules": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            dt, last = now - last, now
            with self._lock:
                for z in self._zones.values():
                    z["joules"] += z["watts"] * dt
                    uj = int(z["joules"] * 1e6) % 262143328851
                    os.pwrite(z["fd"], b"%20d\n" % uj, 0)

    def set_watts(self, d, watts):
        with self._lock:
            self._zones[d]["watts"] = watts

    def joules(self, d):
        with self._lock:
            return self._zones[d]["joules"]

    def stop(self):
        self._stop.set()
        self._thread.join()
        for z in self._zones.values():
            os.close(z["fd"])


@pytest.fixture
def rapl(tmp_path):
    fake = FakeRapl(tmp_path / "sys", [("intel-rapl:0", "package-0", 10.0)])
    yield fake
    fake.stop()
