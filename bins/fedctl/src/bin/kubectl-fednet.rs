//! `kubectl-fednet`: `fedctl` under the name kubectl finds plugins by, so that
//! `kubectl fednet status` works once this binary is on the PATH.

fn main() -> std::process::ExitCode {
    fedctl::cli::main()
}
