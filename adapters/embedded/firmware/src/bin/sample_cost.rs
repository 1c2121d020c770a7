//! The cost of one sample, in instructions, under `qemu-system-arm -icount shift=0`.
//!
//! With `-icount shift=0` QEMU advances its virtual clock by exactly 1 ns per executed instruction,
//! and SysTick (clocked from the 25 MHz system clock of the MPS2 AN386) counts that virtual time:
//! one tick is 40 instructions. Each figure is a total over the 1001 samples of `Script::DEMO`,
//! divided by 1001, so the tick quantum adds at most 0.04 instruction per sample. A block of
//! 100 000 instructions (`nop` loop) is timed first to check the scale (expected: 2 500 ticks).
//!
//! Three loops over the same script isolate the parts of one sample:
//! - `clock`: the simulated chip's conversion only (the script's sample time);
//! - `clock + read`: plus the ina219 driver reading the four registers through the simulated
//!   bus (the bus is a function call here; on a board the I2C transfer time adds to it);
//! - `clock + read + feed`: plus the core's accounting of the reading: its session writes the
//!   record and its fold folds it (the firmware's loop).
//!
//! Then it runs the firmware's whole run (`ea2p_firmware::run`, which prints its usual line) and
//! reports the deepest stack use of the program, from the stack painted at reset (feature
//! `stack-usage`: cortex-m-rt fills the stack with 0xCCCCCCCC before `main`).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{DWT, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use panic_semihosting as _;

use ea2p_meter::feed::MeterFeed;
use ea2p_meter::run::SampleClock;
use ea2p_meter::sensor::{Ina219, ShuntConfig, CONVERSION_NS};
use ea2p_meter::sim::{self, Script, Sim};

extern "C" {
    // From cortex-m-rt's link.x: the stack runs down from `_stack_start` (the top of RAM) to
    // `_stack_end` (just above .bss and .uninit, the end of static RAM).
    static _stack_start: u32;
    static _stack_end: u32;
    static __sdata: u32;
}

fn stack_size_bytes() -> usize {
    // Only the addresses of the linker symbols are taken; nothing is read.
    core::ptr::addr_of!(_stack_start) as usize - core::ptr::addr_of!(_stack_end) as usize
}

fn static_ram_bytes() -> usize {
    // Addresses only; RAM begins with .data.
    core::ptr::addr_of!(_stack_end) as usize - core::ptr::addr_of!(__sdata) as usize
}

/// Bytes of the stack whose paint was scrubbed off, scanning up from its lowest address.
fn stack_used_bytes() -> usize {
    // SAFETY: every address read lies between `_stack_end` and `_stack_start`, word-aligned RAM
    // that cortex-m-rt painted at reset and that belongs to this program's stack.
    unsafe {
        let top = core::ptr::addr_of!(_stack_start) as usize;
        let mut p = core::ptr::addr_of!(_stack_end) as usize;
        while p < top && core::ptr::read_volatile(p as *const u32) == cortex_m_rt::STACK_PAINT_VALUE
        {
            p += 4;
        }
        top - p
    }
}

const TICK_MAX: u32 = 0x00FF_FFFF;
/// Instructions per SysTick tick under `-icount shift=0` (25 MHz: 40 ns per tick).
const INSNS_PER_TICK: u32 = 40;

fn ticks<F: FnOnce()>(f: F) -> u32 {
    SYST::get_current(); // settle the pipeline of the read itself
    let start = SYST::get_current();
    f();
    let end = SYST::get_current();
    start.wrapping_sub(end) & TICK_MAX
}

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().expect("first take");
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(TICK_MAX);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();

    let cyc0 = DWT::cycle_count();
    let nop_ticks = ticks(|| unsafe {
        // SAFETY: a counted loop of 1000 x (98 nop + subs + bne) = 100 000 instructions (plus the
        // mov); it only clobbers the counter register and the flags, which the asm declares.
        core::arch::asm!(
            "1:",
            ".rept 98",
            "nop",
            ".endr",
            "subs {n}, {n}, #1",
            "bne 1b",
            n = inout(reg) 1000u32 => _,
            options(nomem, nostack),
        );
    });
    let cyc1 = DWT::cycle_count();
    hprintln!(
        "calibration: a 100000-instruction loop = {} ticks = {} instructions; DWT CYCCNT advanced by {}",
        nop_ticks,
        nop_ticks * INSNS_PER_TICK,
        cyc1.wrapping_sub(cyc0)
    );

    let script = &Script::DEMO;
    let n = script.samples();
    let clock_only = {
        let sim = Sim::new(script);
        let mut clock = sim.clock();
        ticks(|| while black_box(clock.next_sample()).is_some() {})
    };
    let clock_read = {
        let sim = Sim::new(script);
        let mut meter = Ina219::new(sim.bus(), sim::ADDRESS, ShuntConfig::BREAKOUT_0R1).unwrap();
        let mut clock = sim.clock();
        ticks(|| {
            while let Some(t) = clock.next_sample() {
                black_box((t, meter.read()));
            }
        })
    };
    let clock_read_feed = {
        let sim = Sim::new(script);
        let mut meter = Ina219::new(sim.bus(), sim::ADDRESS, ShuntConfig::BREAKOUT_0R1).unwrap();
        let mut clock = sim.clock();
        let mut feed = MeterFeed::new(CONVERSION_NS);
        let t = ticks(|| {
            while let Some(t) = clock.next_sample() {
                feed.record(t, &meter.read());
            }
        });
        black_box(feed.report());
        t
    };
    let per_sample = |t: u32| (t * INSNS_PER_TICK + n / 2) / n;
    hprintln!(
        "samples={} instructions per sample: clock={} clock+read={} clock+read+feed={} => driver read={} core feed={}",
        n,
        per_sample(clock_only),
        per_sample(clock_read),
        per_sample(clock_read_feed),
        per_sample(clock_read) - per_sample(clock_only),
        per_sample(clock_read_feed) - per_sample(clock_read),
    );
    let passed = ea2p_firmware::run(script);
    hprintln!(
        "stack: deepest use {} bytes of {} (static RAM .data + .bss: {} bytes); on it: MeterFeed {} bytes, of which the session's 4-record output queue {} x {}",
        stack_used_bytes(),
        stack_size_bytes(),
        static_ram_bytes(),
        core::mem::size_of::<MeterFeed>(),
        ea2p_meter::feed::OUTPUT_CAPACITY,
        core::mem::size_of::<ea2p_meter::feed::Record>(),
    );
    let scale_ok = nop_ticks.abs_diff(2_500) <= 2 && passed;
    if !scale_ok {
        hprintln!("FAIL: the nop block does not read 2500 ticks: run under -icount shift=0");
    }
    debug::exit(if scale_ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}
