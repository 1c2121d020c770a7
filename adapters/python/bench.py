"""Overhead of the ea2p module (BENCHMARKS.md, "Python module").

1. `with monitor.region(...)` enter + exit, and begin()+end(), from Python: timeit, median of 7
   repeats of 20 000 calls, against an empty `with` of a trivial Python context manager.
2. The sampler's CPU share at 1 kHz while Python runs a busy loop: the CPU time of the ea2p
   threads (/proc/self/task/TID/stat, utime + stime) over the loop's wall time.

Usage: EA2P_SYSFS_ROOT=/path/to/fake/tree python bench.py [seconds]
"""

import os
import statistics
import sys
import time
import timeit

import ea2p

N = 20_000


class Empty:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def per_call_us(stmt, setup_globals):
    runs = timeit.repeat(stmt, globals=setup_globals, number=N, repeat=7)
    return statistics.median(runs) / N * 1e6


def thread_cpu_s(names):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
            if comm not in names:
                continue
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            continue
    return total / tick


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    m = ea2p.Monitor(devices="cpu,ram", interval_ms=1)
    print("sources:", [c["name"] for c in m.current()["components"]])
    g = {"m": m, "Empty": Empty, "e": Empty()}
    empty = per_call_us("with e: pass", g)
    region = per_call_us("with m.region('r'): pass", g)
    begin_end = per_call_us("m.begin('r'); m.end('r')", g)
    print(f"empty with-block: {empty:.2f} us")
    print(f"with monitor.region(): {region:.2f} us per enter+exit")
    print(f"monitor.begin() + monitor.end(): {begin_end:.2f} us")

    names = {"ea2p-sampler", "ea2p-gpu"}
    c0, t0 = thread_cpu_s(names), time.perf_counter()
    x = 0
    while time.perf_counter() - t0 < seconds:
        x += 1
    wall = time.perf_counter() - t0
    c1 = thread_cpu_s(names)
    print(f"busy loop {wall:.1f} s ({x} iterations): sampler threads used {c1 - c0:.2f} s CPU "
          f"= {100 * (c1 - c0) / wall:.2f} % of one core")
    m.stop()


if __name__ == "__main__":
    main()
