//! ea2p-core on a Cortex-M4F: an INA219 read over I2C, its power accounted by the core with no
//! allocation, under QEMU against a simulated INA219 that plays `Script::DEMO`.
//!
//! Prints `energy_j=<measured> expected_j=<exact>` with every anomaly count, and exits through
//! semihosting with a failing status when the energy differs by more than 0.1 % or any reading is
//! not accounted as the script says.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use panic_semihosting as _;

use ea2p_meter::sim::Script;

#[entry]
fn main() -> ! {
    let passed = ea2p_firmware::run(&Script::DEMO);
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a debugger or semihosting host.
    loop {
        cortex_m::asm::wfi();
    }
}
