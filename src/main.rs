//! The `rpytest` executable: everything is in the library (`lib.rs`).

fn main() {
    rpytest_runner::trace::init();
    let code = match rpytest_runner::utf8_args(std::env::args_os().skip(1)) {
        Ok(args) => rpytest_runner::run(args),
        Err(e) => rpytest_runner::commands::usage_error(e),
    };
    std::process::exit(code.code());
}
