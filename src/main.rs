//! The `rpytest` executable: everything is in the library (`lib.rs`).

fn main() {
    rpytest_runner::trace::init();
    std::process::exit(rpytest_runner::run(std::env::args().skip(1).collect()));
}
