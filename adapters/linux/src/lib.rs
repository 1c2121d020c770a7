#![doc = include_str!("../README.md")]

pub mod bounded;
pub mod cgroup;
pub mod hwmon;
pub mod perf;
pub mod procfs;
pub mod rapl;
