//! The `ctl` binary: everything lives in the library; see `ctl::cli`.

fn main() -> std::process::ExitCode {
    ctl::cli::main()
}
