//! A simulated INA219 on a simulated I2C bus, playing a scripted load with injected faults.
//!
//! QEMU's boards have no power sensor, so the firmware talks to this chip model instead. It is a
//! register file with the datasheet's behaviour (SBOS448G): a register pointer set by the first
//! written byte, big-endian 16-bit registers, the reset bit of the configuration register, the
//! calibration register's bit 0 forced to 0, the conversion-ready flag cleared by reading the
//! power register, and the chip's own integer arithmetic (section 8.5:
//! `current = shunt x calibration / 4096`, `power = current x bus / 5000`). The real `ina219`
//! driver runs against it unchanged.
//!
//! A [`Script`] says what the load draws (a piecewise-linear current at a fixed bus voltage) and
//! which samples go wrong. Its [`Script::expected_energy_j`] is the exact integral of that
//! profile, computed from the breakpoints alone: it never sees a register, the driver or the core.
use core::cell::Cell;

use ea2p_core::format::GapReason;
use ea2p_core::source::ReadErrorKind;
use ea2p_core::units::Nanos;
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use crate::run::SampleClock;

/// The chip's 7-bit address with A0 = A1 = GND.
pub const ADDRESS: u8 = 0x40;

/// Register addresses (datasheet table 2).
pub mod reg {
    /// Configuration.
    pub const CONFIG: u8 = 0;
    /// Shunt voltage, 10 uV steps, signed.
    pub const SHUNT: u8 = 1;
    /// Bus voltage: bits 15..3 in 4 mV steps, bit 1 conversion ready, bit 0 math overflow.
    pub const BUS: u8 = 2;
    /// Power, in 20 x current LSB.
    pub const POWER: u8 = 3;
    /// Current, in current LSB, signed.
    pub const CURRENT: u8 = 4;
    /// Calibration.
    pub const CALIBRATION: u8 = 5;
}

/// Configuration register after reset: 32 V bus range, PGA /8 (320 mV), 12-bit, continuous.
pub const CONFIG_RESET: u16 = 0x399F;
/// Bus register: a conversion finished since the power register was last read.
pub const CNVR: u16 = 1 << 1;
/// Bus register: the current or power calculation overflowed.
pub const OVF: u16 = 1 << 0;

/// The INA219's registers and bus state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chip {
    regs: [u16; 6],
    pointer: u8,
    fail_next: Option<ErrorKind>,
}

impl Default for Chip {
    fn default() -> Self {
        Self::new()
    }
}

impl Chip {
    /// A chip as after power-on.
    pub const fn new() -> Self {
        Self {
            regs: [CONFIG_RESET, 0, 0, 0, 0, 0],
            pointer: 0,
            fail_next: None,
        }
    }

    /// The value of register `r` as the chip holds it (no side effect).
    pub fn register(&self, r: u8) -> u16 {
        self.regs[usize::from(r)]
    }

    /// Makes the next I2C transfer fail with `kind`.
    pub fn fail_next_transfer(&mut self, kind: ErrorKind) {
        self.fail_next = Some(kind);
    }

    fn write_register(&mut self, r: u8, value: u16) {
        match r {
            reg::CONFIG if value & 0x8000 != 0 => *self = Self::new(),
            reg::CONFIG => {
                self.regs[0] = value;
                // Writing the mode bits clears the conversion-ready flag.
                self.regs[usize::from(reg::BUS)] &= !CNVR;
            }
            reg::CALIBRATION => self.regs[usize::from(r)] = value & !1,
            // Shunt, bus, power and current are read-only.
            _ => {}
        }
    }

    fn read_register(&mut self, r: u8) -> u16 {
        let value = self.regs[usize::from(r)];
        if r == reg::POWER {
            self.regs[usize::from(reg::BUS)] &= !CNVR;
        }
        value
    }

    /// Full scale of the shunt ADC for the configured PGA gain, in 10 uV steps.
    fn shunt_full_scale_10uv(&self) -> i32 {
        4_000 << ((self.regs[0] >> 11) & 0b11)
    }

    /// One conversion of a load drawing `current_ua` through `shunt_uohm` at `bus_mv`, with the
    /// chip's rounding, clipping and overflow flag.
    pub fn convert(&mut self, bus_mv: u32, current_ua: i64, shunt_uohm: u32) {
        let fs = self.shunt_full_scale_10uv();
        // V = I R: uA x uOhm = 1e-12 V; one shunt step is 1e-5 V.
        let shunt = div_round(current_ua * i64::from(shunt_uohm), 10_000_000);
        let shunt = shunt.clamp(-i64::from(fs), i64::from(fs)) as i32;
        self.load(bus_mv, shunt);
    }

    /// One conversion whose shunt reading is at the ADC's full scale (a transient on the shunt
    /// inputs).
    pub fn convert_clipped(&mut self, bus_mv: u32) {
        let fs = self.shunt_full_scale_10uv();
        self.load(bus_mv, fs);
    }

    fn load(&mut self, bus_mv: u32, shunt: i32) {
        let bus_4mv = (bus_mv / 4).min(0x1FFF);
        let cal = i64::from(self.regs[usize::from(reg::CALIBRATION)]);
        let current = i64::from(shunt) * cal / 4096;
        let power = current.abs() * i64::from(bus_4mv) / 5000;
        let overflow = i16::try_from(current).is_err() || u16::try_from(power).is_err();
        self.regs[usize::from(reg::SHUNT)] = shunt as i16 as u16;
        self.regs[usize::from(reg::CURRENT)] = current as i16 as u16;
        self.regs[usize::from(reg::POWER)] = power as u16;
        self.regs[usize::from(reg::BUS)] =
            ((bus_4mv as u16) << 3) | CNVR | if overflow { OVF } else { 0 };
    }

    /// Sets the math overflow flag on the latest conversion, with current and power registers
    /// holding what an overflowed calculation leaves (all ones).
    pub fn set_overflow(&mut self) {
        self.regs[usize::from(reg::BUS)] |= OVF;
        self.regs[usize::from(reg::CURRENT)] = 0x7FFF;
        self.regs[usize::from(reg::POWER)] = 0xFFFF;
    }

    fn transfer(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        if address != ADDRESS {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        if let Some(kind) = self.fail_next.take() {
            return Err(kind);
        }
        for op in operations {
            match op {
                Operation::Write(bytes) => {
                    let Some((&r, data)) = bytes.split_first() else {
                        continue;
                    };
                    if usize::from(r) >= self.regs.len() {
                        // The chip does not acknowledge a pointer to a register it lacks.
                        return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data));
                    }
                    self.pointer = r;
                    if let [hi, lo, ..] = *data {
                        self.write_register(r, u16::from_be_bytes([hi, lo]));
                    }
                }
                Operation::Read(buf) => {
                    let value = self.read_register(self.pointer).to_be_bytes();
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = value[i % 2];
                    }
                }
            }
        }
        Ok(())
    }
}

fn div_round(n: i64, d: i64) -> i64 {
    let half = d / 2;
    if n >= 0 {
        (n + half) / d
    } else {
        (n - half) / d
    }
}

/// The bus the driver owns: a handle on the shared chip.
#[derive(Debug, Clone, Copy)]
pub struct SimBus<'a> {
    chip: &'a Cell<Chip>,
}

impl ErrorType for SimBus<'_> {
    type Error = ErrorKind;
}

impl I2c for SimBus<'_> {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let mut chip = self.chip.get();
        let result = chip.transfer(address, operations);
        self.chip.set(chip);
        result
    }
}

/// A fault injected at one sample of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// The chip converts, but the next transfer is not acknowledged (a dropped reading).
    Nack,
    /// The conversion comes with the math overflow flag set.
    Overflow,
    /// The shunt reading is at full scale (a saturated value).
    Clipped,
    /// No conversion finishes before the read.
    NoConversion,
}

impl Injected {
    /// The reason the core's profile must give the gap this fault leaves: the script's own
    /// statement of it, written apart from the feed's mapping so that the two check each other.
    pub const fn expected_reason(self) -> GapReason {
        match self {
            // A failed transfer and a read with nothing new: no value at all.
            Injected::Nack | Injected::NoConversion => GapReason::ReadError(ReadErrorKind::Other),
            // Registers read, but their value is not the load's.
            Injected::Overflow | Injected::Clipped => {
                GapReason::ReadError(ReadErrorKind::Malformed)
            }
        }
    }
}

/// A point of a load's current profile; the current is linear between points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breakpoint {
    /// When, from the first sample.
    pub t_ns: Nanos,
    /// The current drawn then, in micro-amperes.
    pub current_ua: i64,
}

/// A load, the sensor it is read through and the faults of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    /// Time between samples; the first sample is at 0.
    pub period_ns: Nanos,
    /// The bus voltage, constant.
    pub bus_mv: u32,
    /// The shunt the load current flows through.
    pub shunt_uohm: u32,
    /// The load current: the first point at 0, the last at the last sample (a multiple of the
    /// period), times increasing.
    pub profile: &'static [Breakpoint],
    /// Faults by sample index, increasing.
    pub faults: &'static [(u32, Injected)],
}

/// Seconds from integer nanoseconds, written out here so that the expected value shares no code
/// with the path under test.
fn seconds(ns: Nanos) -> f64 {
    ns as f64 / 1e9
}

impl Script {
    /// A 10 s run sampled every 10 ms at 5 V: 2.5 W idle, a ramp to 10 W, 3 s at 10 W, a ramp
    /// down to 4 W and 2 s there; one reading not acknowledged, one overflowed, one clipped and
    /// one not converted, each inside a linear stretch of the profile.
    pub const DEMO: Script = Script {
        period_ns: 10_000_000,
        bus_mv: 5_000,
        shunt_uohm: 100_000,
        profile: &[
            Breakpoint {
                t_ns: 0,
                current_ua: 500_000,
            },
            Breakpoint {
                t_ns: 2_000_000_000,
                current_ua: 500_000,
            },
            Breakpoint {
                t_ns: 3_000_000_000,
                current_ua: 2_000_000,
            },
            Breakpoint {
                t_ns: 6_000_000_000,
                current_ua: 2_000_000,
            },
            Breakpoint {
                t_ns: 8_000_000_000,
                current_ua: 800_000,
            },
            Breakpoint {
                t_ns: 10_000_000_000,
                current_ua: 800_000,
            },
        ],
        faults: &[
            (250, Injected::Overflow),
            (400, Injected::Nack),
            (700, Injected::Clipped),
            (900, Injected::NoConversion),
        ],
    };

    /// Number of samples: one at each period from 0 to the profile's last point.
    pub fn samples(&self) -> u32 {
        let end = self.profile.last().map_or(0, |p| p.t_ns);
        (end / self.period_ns) as u32 + 1
    }

    /// The load current at `t`, interpolated between breakpoints (rounded towards zero).
    pub fn current_ua(&self, t: Nanos) -> i64 {
        let i = self.profile.partition_point(|p| p.t_ns <= t);
        match (
            i.checked_sub(1).map(|j| self.profile[j]),
            self.profile.get(i),
        ) {
            (Some(a), Some(b)) => {
                let num = (b.current_ua - a.current_ua) as i128 * (t - a.t_ns) as i128;
                a.current_ua + (num / (b.t_ns - a.t_ns) as i128) as i64
            }
            (Some(a), None) => a.current_ua,
            (None, Some(b)) => b.current_ua,
            (None, None) => 0,
        }
    }

    /// The fault injected at sample `index`, if any.
    pub fn fault_at(&self, index: u32) -> Option<Injected> {
        self.faults
            .binary_search_by_key(&index, |&(i, _)| i)
            .ok()
            .map(|k| self.faults[k].1)
    }

    /// How many gaps of `reason` the script's faults must leave.
    pub fn expected_gaps(&self, reason: GapReason) -> u64 {
        self.faults
            .iter()
            .filter(|&&(_, k)| k.expected_reason() == reason)
            .count() as u64
    }

    /// How many samples get `kind`.
    pub fn injected(&self, kind: Injected) -> u64 {
        self.faults.iter().filter(|&&(_, k)| k == kind).count() as u64
    }

    /// The exact energy the load draws from the first to the last sample: bus voltage x the
    /// integral of the piecewise-linear current, segment by segment.
    pub fn expected_energy_j(&self) -> f64 {
        let volts = self.bus_mv as f64 / 1e3;
        self.profile
            .windows(2)
            .map(|w| {
                let mean_a = (w[0].current_ua + w[1].current_ua) as f64 / 2.0 / 1e6;
                volts * mean_a * seconds(w[1].t_ns - w[0].t_ns)
            })
            .sum()
    }
}

/// A script played on a chip: the bus for the driver and the clock for the sampling loop.
#[derive(Debug)]
pub struct Sim<'s> {
    chip: Cell<Chip>,
    script: &'s Script,
}

impl<'s> Sim<'s> {
    /// A powered-on chip that will play `script`.
    pub fn new(script: &'s Script) -> Self {
        Self {
            chip: Cell::new(Chip::new()),
            script,
        }
    }

    /// The I2C bus the chip sits on.
    pub fn bus(&self) -> SimBus<'_> {
        SimBus { chip: &self.chip }
    }

    /// The clock of the run: each tick is one sample period, and lets the chip convert the
    /// script's next value first.
    pub fn clock(&self) -> ScriptClock<'_> {
        ScriptClock {
            chip: &self.chip,
            script: self.script,
            next: 0,
        }
    }
}

/// Sample times of a script, at which the chip converts the script's values.
///
/// The firmware's only time source under QEMU: the script's time, not the emulator's, so that a
/// run is the same on every machine and its expected energy is known exactly. On a board this is
/// a hardware timer (see the crate README).
#[derive(Debug)]
pub struct ScriptClock<'a> {
    chip: &'a Cell<Chip>,
    script: &'a Script,
    next: u32,
}

impl SampleClock for ScriptClock<'_> {
    fn next_sample(&mut self) -> Option<Nanos> {
        let s = self.script;
        if self.next >= s.samples() {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let t = u64::from(index) * s.period_ns;
        let mut chip = self.chip.get();
        match s.fault_at(index) {
            None => chip.convert(s.bus_mv, s.current_ua(t), s.shunt_uohm),
            Some(Injected::Nack) => {
                chip.convert(s.bus_mv, s.current_ua(t), s.shunt_uohm);
                chip.fail_next_transfer(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
            }
            Some(Injected::Overflow) => {
                chip.convert(s.bus_mv, s.current_ua(t), s.shunt_uohm);
                chip.set_overflow();
            }
            Some(Injected::Clipped) => chip.convert_clipped(s.bus_mv),
            Some(Injected::NoConversion) => {}
        }
        self.chip.set(chip);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_expected_energy_by_hand() {
        // 2.5 W x 2 s + 6.25 W x 1 s + 10 W x 3 s + 7 W x 2 s + 4 W x 2 s.
        let e = Script::DEMO.expected_energy_j();
        assert!((e - 63.25).abs() < 1e-12, "{e}");
        assert_eq!(Script::DEMO.samples(), 1001);
    }

    #[test]
    fn profile_interpolates_between_breakpoints() {
        let s = Script::DEMO;
        assert_eq!(s.current_ua(0), 500_000);
        assert_eq!(s.current_ua(2_500_000_000), 1_250_000);
        assert_eq!(s.current_ua(7_000_000_000), 1_400_000);
        assert_eq!(s.current_ua(10_000_000_000), 800_000);
        assert_eq!(s.fault_at(400), Some(Injected::Nack));
        assert_eq!(s.fault_at(401), None);
    }

    #[test]
    fn chip_arithmetic_follows_the_datasheet() {
        let mut chip = Chip::new();
        let mut bus = [0u8; 2];
        // Calibration 4096 for 100 uA steps on 0.1 ohm.
        chip.transfer(
            ADDRESS,
            &mut [Operation::Write(&[reg::CALIBRATION, 0x10, 0x01])],
        )
        .unwrap();
        assert_eq!(chip.register(reg::CALIBRATION), 4096, "bit 0 reads 0");
        chip.convert(5_000, 1_234_567, 100_000);
        assert_eq!(chip.register(reg::SHUNT), 12_346); // 123.46 mV
        assert_eq!(chip.register(reg::CURRENT), 12_346);
        assert_eq!(chip.register(reg::POWER), 3_086); // 12346 x 1250 / 5000, truncated
        assert_eq!(chip.register(reg::BUS), (1_250 << 3) | CNVR);
        // Reading power clears the ready flag.
        chip.transfer(
            ADDRESS,
            &mut [Operation::Write(&[reg::POWER]), Operation::Read(&mut bus)],
        )
        .unwrap();
        assert_eq!(chip.register(reg::BUS), 1_250 << 3);
        // Above 320 mV the shunt clips; a reset restores the defaults.
        chip.convert(5_000, 4_000_000, 100_000);
        assert_eq!(chip.register(reg::SHUNT), 32_000);
        chip.transfer(ADDRESS, &mut [Operation::Write(&[reg::CONFIG, 0x80, 0x00])])
            .unwrap();
        assert_eq!(chip, Chip::new());
    }

    #[test]
    fn wrong_address_and_injected_failures_are_not_acknowledged() {
        let mut chip = Chip::new();
        let nack = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);
        assert_eq!(chip.transfer(0x41, &mut []), Err(nack));
        chip.fail_next_transfer(nack);
        assert_eq!(chip.transfer(ADDRESS, &mut []), Err(nack));
        assert_eq!(chip.transfer(ADDRESS, &mut []), Ok(()), "one transfer only");
    }
}
