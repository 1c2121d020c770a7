#![doc = include_str!("../README.md")]

pub mod cgroup;
pub mod perf;
pub mod procfs;
pub mod rapl;
