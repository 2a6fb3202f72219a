//! The `aro` binary.

fn main() -> std::process::ExitCode {
    aro::cli::main()
}
