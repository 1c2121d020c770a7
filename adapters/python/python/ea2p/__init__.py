"""EA2P, the energy profiler, for Python: the same Rust sampler as the ``ea2p`` program.

>>> import ea2p
>>> with ea2p.Monitor(output="train.ea2p") as monitor:      # doctest: +SKIP
...     for epoch in range(3):
...         with monitor.region(f"epoch-{epoch}") as r:
...             train_one_epoch()
...         print(r.measurement.total_j, "J")
>>> summary = monitor.stop()                                # the same dict as `ea2p run --json`

The sampler runs on native threads without the GIL; ``begin``/``end`` and ``region`` take a
snapshot of the latest readings (microseconds) and never wait for the hardware.
"""

import functools

from ._ea2p import (  # noqa: F401  (re-exported)
    Ea2pError,
    Measurement,
    Region,
    RegionError,
    __version__,
    sources,
)
from ._ea2p import Monitor as _NativeMonitor

__all__ = [
    "Monitor",
    "Measurement",
    "Region",
    "Ea2pError",
    "RegionError",
    "sources",
    "__version__",
]


class Monitor(_NativeMonitor):
    """Measures every energy source of this machine until ``stop()``.

    ``Monitor(devices=None, interval_ms=1, output=None, sysfs_root=None, procfs_root=None,
    cpu_tdp=None, carbon_intensity=None)``: ``devices`` like ``"cpu,ram,gpu:0,2"`` (default:
    CPU, RAM and the GPUs ``CUDA_VISIBLE_DEVICES`` names); ``output`` a profile file that
    ``ea2p report`` reads.
    """

    def measure(self, name=None):
        """Decorator: every call of the function is a region (named after it by default);
        the last call's Measurement is on ``fn.last_measurement``."""

        def wrap(fn):
            region_name = name or fn.__qualname__

            @functools.wraps(fn)
            def measured(*args, **kwargs):
                self.begin(region_name)
                try:
                    return fn(*args, **kwargs)
                finally:
                    measured.last_measurement = self.end(region_name)

            measured.last_measurement = None
            return measured

        if callable(name):  # used as @monitor.measure without parentheses
            fn, name = name, None
            return wrap(fn)
        return wrap
