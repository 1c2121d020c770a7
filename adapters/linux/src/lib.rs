#![doc = include_str!("../README.md")]

pub mod procfs;
pub mod rapl;
