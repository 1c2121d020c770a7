//! `ea2p`, the energy profiler.
fn main() {
    eprintln!("ea2p: not built yet");
    std::process::exit(2);
}
