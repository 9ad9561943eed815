//! `federation-operator`: parses flags, builds the hub client and runs the operator.

use clap::Parser;
use federation_operator::{Config, Metrics, hub_config, run, telemetry};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = telemetry::init(config.log_format) {
        eprintln!("federation-operator: {e:#}");
        return ExitCode::FAILURE;
    }
    let metrics = Metrics::new();
    let result = match hub_config(&config).await {
        Ok(hub) => run(config, hub, metrics).await,
        Err(e) => Err(e.context("reading the hub's client configuration")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "federation-operator failed");
            ExitCode::FAILURE
        }
    }
}
