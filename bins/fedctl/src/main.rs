//! `fedctl`: the fednet command-line tool.

fn main() -> std::process::ExitCode {
    fedctl::cli::main()
}
