//! `eas-sim`, the scheduling simulator.
fn main() {
    eprintln!("eas-sim: not built yet");
    std::process::exit(2);
}
