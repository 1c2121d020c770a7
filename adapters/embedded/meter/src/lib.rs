//! An INA219 power meter on embedded-hal 1.0 I2C, accounted by ea2p-core with no allocation.
//!
//! - [`sensor`]: the crates.io `ina219` driver behind one call that returns either a power sample
//!   or the fault that replaced it (bus error, math overflow, clipped shunt, no new conversion,
//!   out-of-range value), so that nothing is dropped silently.
//! - [`feed`]: the only place that hands readings to the core's measuring API.
//! - [`sim`]: a simulated INA219 (register file, datasheet arithmetic, reset, conversion-ready
//!   flag) behind an `I2c` implementation, playing a scripted load with injected faults, and the
//!   script's exact energy computed from its intended power profile.
//! - [`run`]: the sampling loop the firmware runs, generic over the bus and the clock.
//! - [`fixed`]: fixed-point printing of the results (core's float formatting does not fit the
//!   flash budget).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod feed;
pub mod fixed;
pub mod run;
pub mod sensor;
pub mod sim;
