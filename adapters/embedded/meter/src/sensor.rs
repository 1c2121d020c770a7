//! One INA219 read: a power sample, or the fault that replaced it.
//!
//! The `ina219` crate does the register work (reset, paranoid checks, calibration, reading bus,
//! power, shunt and current registers). This module decides what a reading means for energy:
//! only a fresh, in-range, unsaturated conversion is a sample; everything else is a [`Fault`] that
//! the caller counts.
use embedded_hal::i2c::{Error as _, ErrorKind, I2c};
use ina219::address::Address;
use ina219::calibration::{IntCalibration, MicroAmpere};
use ina219::errors::{InitializationErrorReason, MeasurementError};
use ina219::SyncIna219;

/// Full scale of the shunt ADC in the driver's configuration (PGA /8: +-320 mV), in 10 uV
/// steps. A conversion at full scale is clipped: the real current may be higher.
pub const SHUNT_FULL_SCALE_10UV: u16 = 32_000;

/// How often the chip has a new conversion in the configuration the driver leaves it in (the
/// reset value: continuous shunt and bus conversions at 12 bits, 532 us each, datasheet table 5),
/// in nanoseconds: the session's update period of the meter.
pub const CONVERSION_NS: u64 = 2 * 532_000;

/// The shunt and the current resolution of a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShuntConfig {
    /// Shunt resistance in micro-ohms (100 000 for the common 0.1 ohm breakout boards).
    pub shunt_uohm: u32,
    /// Current register resolution in micro-amperes; power resolution is 20 times this, and
    /// must be whole milliwatts (a multiple of 50 uA): the core takes power in milliwatts.
    pub current_lsb_ua: i64,
}

impl ShuntConfig {
    /// A 0.1 ohm shunt read in steps of 100 uA (calibration register 4096, power in 2 mW steps,
    /// up to 3.2 A).
    pub const BREAKOUT_0R1: Self = Self {
        shunt_uohm: 100_000,
        current_lsb_ua: 100,
    };
}

/// A fresh conversion, in the chip's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Power register x power resolution, in micro-watts.
    pub power_uw: i64,
    /// Current register x current resolution, in micro-amperes.
    pub current_ua: i64,
    /// Bus voltage in milli-volts.
    pub bus_mv: u16,
    /// Shunt voltage in 10 uV steps.
    pub shunt_10uv: i16,
}

impl Sample {
    /// The sample's power in watts: the one conversion from the chip's micro-watts.
    pub fn watts(&self) -> f64 {
        self.power_uw as f64 * 1e-6
    }
}

/// Why a read gave no sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The I2C transfer failed (no acknowledge, bus error, arbitration loss...).
    Bus(ErrorKind),
    /// The chip set its math overflow flag: current and power registers are not valid.
    MathOverflow,
    /// The shunt voltage is at the ADC's full scale: the current may be higher than read.
    Clipped,
    /// No conversion finished since the last read (conversion-ready flag clear).
    NotReady,
    /// The bus or shunt voltage is outside the range the chip was configured for.
    OutOfRange,
}

/// What one read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A usable conversion.
    Sample(Sample),
    /// A read that must be counted, not used.
    Fault(Fault),
}

/// Why the chip could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// The calibration (shunt, current resolution) is outside what the chip can represent.
    Calibration,
    /// The power resolution (20 x the current resolution) is not whole milliwatts, the unit the
    /// core takes: samples would be rounded.
    PowerResolution,
    /// An I2C transfer failed during the reset or the calibration.
    Bus(ErrorKind),
    /// The chip did not read back as an INA219 after its reset.
    NotAnIna219,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Calibration => f.write_str("INA219 calibration out of range"),
            InitError::PowerResolution => {
                f.write_str("INA219 power step is not whole milliwatts (current LSB: 50 uA steps)")
            }
            InitError::Bus(kind) => write!(f, "INA219 set-up: I2C error: {kind}"),
            InitError::NotAnIna219 => f.write_str("INA219 set-up: registers not as after a reset"),
        }
    }
}

/// An INA219 on an I2C bus, reset and calibrated.
pub struct Ina219<I2C> {
    dev: SyncIna219<I2C, IntCalibration>,
}

impl<I2C> core::fmt::Debug for Ina219<I2C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ina219")
    }
}

impl<I2C: I2c> Ina219<I2C> {
    /// Resets the chip at `address` (7-bit, 0x40 with A0 = A1 = GND), checks that it reads back
    /// as a freshly reset INA219 and writes the calibration for `shunt`. A current resolution
    /// that is not a multiple of 50 uA is refused ([`InitError::PowerResolution`]).
    pub fn new(i2c: I2C, address: u8, shunt: ShuntConfig) -> Result<Self, InitError> {
        let address = Address::from_byte(address).map_err(|_| InitError::NotAnIna219)?;
        let calib = IntCalibration::new(MicroAmpere(shunt.current_lsb_ua), shunt.shunt_uohm)
            .ok_or(InitError::Calibration)?;
        if shunt.current_lsb_ua % 50 != 0 {
            return Err(InitError::PowerResolution);
        }
        let dev = SyncIna219::new_calibrated(i2c, address, calib).map_err(|e| match e.reason {
            InitializationErrorReason::I2cError(err) => InitError::Bus(err.kind()),
            _ => InitError::NotAnIna219,
        })?;
        Ok(Self { dev })
    }

    /// Reads the latest conversion.
    pub fn read(&mut self) -> Reading {
        match self.dev.next_measurement() {
            Ok(Some(m)) => {
                let shunt = m.shunt_voltage.shunt_voltage_10uv();
                if shunt.unsigned_abs() >= SHUNT_FULL_SCALE_10UV {
                    return Reading::Fault(Fault::Clipped);
                }
                Reading::Sample(Sample {
                    power_uw: m.power.0,
                    current_ua: m.current.0,
                    bus_mv: m.bus_voltage.voltage_mv(),
                    shunt_10uv: shunt,
                })
            }
            Ok(None) => Reading::Fault(Fault::NotReady),
            Err(MeasurementError::I2cError(err)) => Reading::Fault(Fault::Bus(err.kind())),
            Err(MeasurementError::MathOverflow(_)) => Reading::Fault(Fault::MathOverflow),
            Err(MeasurementError::ShuntVoltageReadError(_))
            | Err(MeasurementError::BusVoltageReadError(_)) => Reading::Fault(Fault::OutOfRange),
        }
    }
}
