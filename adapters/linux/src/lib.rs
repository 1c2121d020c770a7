//! Linux energy sources for EA2P: powercap RAPL, the perf power PMU, procfs.
