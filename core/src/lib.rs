//! # ea2p-core
//!
//! The sans-IO core shared by the `ea2p` energy profiler and the `eas-sim` scheduling simulator.
//!
//! Nothing in this crate reads a clock, a file or a random source: every function takes the time
//! (integer nanoseconds) and the readings as arguments and returns results, in the manner of
//! smoltcp and quinn-proto. It needs no allocator: containers are fixed-capacity (`heapless`) or
//! slices owned by the caller. Floating-point functions go through `libm`, so results are
//! bit-identical on every target.
//!
//! | module | what it holds |
//! |---|---|
//! | [`units`] | time and energy units, one place for every conversion |
//! | [`counter`] | wrapping hardware energy counters turned into a monotonic total |
//! | [`integrate`] | power samples at irregular times turned into energy, with windows |
//! | [`estimate`] | RAM and CPU power models for hardware without sensors |
//! | [`cpu_power`] | CPU package power against load, fitted per family on public measurements |
//! | [`attribution`] | the measured command's share of a shared component (CPU time, allocation, memory) |
//! | [`metrics`] | EDP, ED2P, CO2, fairness and deadline metrics |
//! | [`source`] | the small interface every measurement source implements |
//! | [`format`] | the on-disk profile records and their damage-tolerant framing |
//! | [`session`] | the measuring session: readings, read errors and region markers in, profile records out |
//! | [`fold`] | the one fold from profile records to the summary (live and replay alike) |
//! | [`jobmodel`] | throughput, goodput and power of a training job on k GPUs of a type |
//! | [`policy`] | the eight scheduling policies, as pure functions |
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attribution;
pub mod counter;
pub mod cpu_power;
pub mod estimate;
pub mod fold;
pub mod format;
pub mod integrate;
pub mod jobmodel;
pub mod metrics;
pub mod policy;
pub mod session;
pub mod source;
pub mod units;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
