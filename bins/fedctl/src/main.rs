//! `fedctl`: the fednet command-line tool.

mod manifests;
mod plan_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// fednet command-line tool.
#[derive(Parser)]
#[command(name = "fedctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of the fednet.io API as YAML.
    Crd,
    /// Plan networks from YAML manifests, offline: members, sites, links and services.
    Plan {
        /// Files or folders with FederatedNetwork, MemberCluster and FederatedService
        /// manifests (multi-document YAML; other kinds are ignored).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Members to plan as unhealthy (as if their last probe failed).
        #[arg(long = "unhealthy", value_delimiter = ',')]
        unhealthy: Vec<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// How `fedctl plan` prints.
#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// A readable summary.
    Text,
    /// The full plan as YAML.
    Yaml,
    /// The full plan as JSON.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => federation_core::api::crds_yaml()
            .map(|y| print!("{y}"))
            .map_err(anyhow::Error::from),
        Command::Plan {
            files,
            unhealthy,
            output,
        } => plan_cmd::run(&files, &unhealthy, output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
