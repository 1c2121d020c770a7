//! The INA219 meter against embedded-hal-mock: the exact I2C transfers the driver makes, and what
//! each register pattern becomes (sample or counted fault).
use ea2p_core::source::ReadErrorKind;
use ea2p_meter::feed::{GapReason, MeterFeed};
use ea2p_meter::sensor::{Fault, Ina219, InitError, Reading, Sample, ShuntConfig, CONVERSION_NS};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

const ADDR: u8 = 0x40;
const CONFIG: u8 = 0;
const SHUNT: u8 = 1;
const BUS: u8 = 2;
const POWER: u8 = 3;
const CURRENT: u8 = 4;
const CALIBRATION: u8 = 5;
/// Bus register flags.
const CNVR: u16 = 0b10;
const OVF: u16 = 0b01;
const NACK: ErrorKind = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);

fn read(reg: u8, value: u16) -> Transaction {
    Transaction::write_read(ADDR, vec![reg], value.to_be_bytes().to_vec())
}

fn write(reg: u8, value: u16) -> Transaction {
    let [hi, lo] = value.to_be_bytes();
    Transaction::write(ADDR, vec![reg, hi, lo])
}

/// Reset, read-back of the reset configuration, the paranoid checks of a fresh chip, then the
/// calibration for 100 uA steps on 0.1 ohm (4096).
fn init() -> Vec<Transaction> {
    vec![
        write(CONFIG, 0x8000 | 0x399F),
        read(CONFIG, 0x399F),
        read(CALIBRATION, 0),
        read(CURRENT, 0),
        read(POWER, 0),
        read(SHUNT, 0),
        read(BUS, 0),
        write(CALIBRATION, 4096),
    ]
}

/// One measurement: the driver reads bus, power, shunt and current, in that order.
fn measurement(bus: u16, power: u16, shunt: u16, current: u16) -> Vec<Transaction> {
    vec![
        read(BUS, bus),
        read(POWER, power),
        read(SHUNT, shunt),
        read(CURRENT, current),
    ]
}

/// 5000 mV on the bus register with the given flags.
fn bus_5v(flags: u16) -> u16 {
    (1_250 << 3) | flags
}

fn meter_reading(after_init: Vec<Transaction>) -> Vec<Reading> {
    let mut expectations = init();
    let reads = after_init.len() / 4 + usize::from(after_init.len() % 4 != 0);
    expectations.extend(after_init);
    let mut mock = Mock::new(&expectations);
    let mut meter = Ina219::new(mock.clone(), ADDR, ShuntConfig::BREAKOUT_0R1).unwrap();
    let readings = (0..reads).map(|_| meter.read()).collect();
    mock.done();
    readings
}

#[test]
fn a_fresh_conversion_is_a_sample_in_the_chips_units() {
    // 500 mA through 0.1 ohm = 50 mV (5000 x 10 uV); 5 V x 0.5 A = 2.5 W = 1250 x 2 mW.
    let r = meter_reading(measurement(bus_5v(CNVR), 1_250, 5_000, 5_000));
    assert_eq!(
        r,
        [Reading::Sample(Sample {
            power_uw: 2_500_000,
            current_ua: 500_000,
            bus_mv: 5_000,
            shunt_10uv: 5_000,
        })]
    );
    let Reading::Sample(s) = r[0] else { panic!() };
    assert_eq!(s.watts(), 2.5);
}

#[test]
fn a_nack_is_a_bus_fault_and_ends_the_read() {
    let r = meter_reading(vec![read(BUS, bus_5v(CNVR)).with_error(NACK)]);
    assert_eq!(r, [Reading::Fault(Fault::Bus(NACK))]);
}

#[test]
fn a_bus_error_in_the_middle_of_a_measurement_is_a_bus_fault() {
    let mut t = measurement(bus_5v(CNVR), 1_250, 5_000, 5_000);
    t[2] = read(SHUNT, 5_000).with_error(ErrorKind::Bus);
    t.truncate(3);
    // Then the next conversion reads fine.
    t.extend(measurement(bus_5v(CNVR), 1_250, 5_000, 5_000));
    let r = meter_reading(t);
    assert_eq!(r[0], Reading::Fault(Fault::Bus(ErrorKind::Bus)));
    assert!(matches!(r[1], Reading::Sample(_)));
}

#[test]
fn the_math_overflow_flag_is_a_fault_not_a_sample() {
    let r = meter_reading(measurement(bus_5v(CNVR | OVF), 0xFFFF, 5_000, 0x7FFF));
    assert_eq!(r, [Reading::Fault(Fault::MathOverflow)]);
}

#[test]
fn a_shunt_at_full_scale_is_clipped_either_way() {
    let mut t = measurement(bus_5v(CNVR), 8_000, 32_000, 32_000);
    t.extend(measurement(
        bus_5v(CNVR),
        8_000,
        (-32_000i16) as u16,
        (-32_000i16) as u16,
    ));
    t.extend(measurement(bus_5v(CNVR), 7_999, 31_999, 31_999));
    let r = meter_reading(t);
    assert_eq!(r[0], Reading::Fault(Fault::Clipped));
    assert_eq!(r[1], Reading::Fault(Fault::Clipped));
    assert!(matches!(r[2], Reading::Sample(_)), "just below full scale");
}

#[test]
fn no_new_conversion_is_not_ready() {
    let r = meter_reading(measurement(bus_5v(0), 1_250, 5_000, 5_000));
    assert_eq!(r, [Reading::Fault(Fault::NotReady)]);
}

#[test]
fn voltages_outside_the_configured_range_are_out_of_range() {
    // 32.764 V on a 32 V range; then 320.01 mV on a 320 mV shunt range.
    let mut t = measurement(0xFFF8 | CNVR, 1, 1, 1);
    t.extend(measurement(bus_5v(CNVR), 1, 32_001, 1));
    let r = meter_reading(t);
    assert_eq!(r[0], Reading::Fault(Fault::OutOfRange));
    assert_eq!(r[1], Reading::Fault(Fault::OutOfRange));
}

#[test]
fn a_power_register_above_i16_reads_negative_and_becomes_a_malformed_gap() {
    // The ina219 crate (0.2.1) reads the unsigned power register as i16: 0x8000 becomes
    // -65.536 W. The core takes no negative power: the feed hands it over as a malformed read,
    // which the session writes as a gap with that reason, and counts its cause.
    let r = meter_reading(measurement(bus_5v(CNVR), 0x8000, 30_000, 30_000));
    let Reading::Sample(s) = r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(s.power_uw, -65_536_000);
    let mut feed = MeterFeed::new(CONVERSION_NS);
    feed.record(0, &r[0]);
    let report = feed.report();
    assert_eq!(report.causes.negative, 1);
    assert_eq!(
        report
            .anomaly(GapReason::ReadError(ReadErrorKind::Malformed))
            .count,
        1
    );
    assert_eq!((report.samples, report.refused()), (0, 1));
}

#[test]
fn set_up_fails_on_a_nack_or_a_chip_that_is_not_reset() {
    let expectations = [Transaction::write(ADDR, vec![CONFIG, 0xB9, 0x9F]).with_error(NACK)];
    let mut mock = Mock::new(&expectations);
    let e = Ina219::new(mock.clone(), ADDR, ShuntConfig::BREAKOUT_0R1).unwrap_err();
    assert_eq!(e, InitError::Bus(NACK));
    mock.done();

    // A device whose configuration never reads back as reset: the driver retries, then gives up.
    let mut expectations = vec![write(CONFIG, 0xB99F)];
    expectations.extend((0..12).map(|_| read(CONFIG, 0x1234)));
    let mut mock = Mock::new(&expectations);
    let e = Ina219::new(mock.clone(), ADDR, ShuntConfig::BREAKOUT_0R1).unwrap_err();
    assert_eq!(e, InitError::NotAnIna219);
    mock.done();
}

#[test]
fn an_impossible_calibration_is_refused_before_any_transfer() {
    let mut mock = Mock::new(&[]);
    let shunt = ShuntConfig {
        shunt_uohm: 1,
        current_lsb_ua: 1,
    };
    assert_eq!(
        Ina219::new(mock.clone(), ADDR, shunt).unwrap_err(),
        InitError::Calibration
    );
    mock.done();
}

#[test]
fn a_power_step_that_is_not_whole_milliwatts_is_refused_before_any_transfer() {
    // 10 uA current steps: 200 uW power steps, which the core's milliwatt readings would round.
    let mut mock = Mock::new(&[]);
    let shunt = ShuntConfig {
        shunt_uohm: 100_000,
        current_lsb_ua: 10,
    };
    assert_eq!(
        Ina219::new(mock.clone(), ADDR, shunt).unwrap_err(),
        InitError::PowerResolution
    );
    mock.done();
}
