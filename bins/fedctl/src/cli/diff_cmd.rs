//! `fedctl diff`.

use super::Output;
use crate::diff::{self, DiffReport};
use crate::hub::{self, HubOptions};
use crate::manifests::Manifests;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the diff and prints it. Exit code 0 when nothing would change, 1 when something
/// would, 2 when the diff could not be made in full (like `kubectl diff`).
pub fn run(hub: &HubOptions, files: &[PathBuf], output: Output) -> ExitCode {
    match report(hub, files).and_then(|r| print(&r, output).map(|()| r)) {
        Ok(r) if r.has_errors() => {
            eprintln!("error: some members or objects could not be diffed (see the output)");
            ExitCode::from(2)
        }
        Ok(r) if r.has_changes() => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn report(hub: &HubOptions, files: &[PathBuf]) -> Result<DiffReport> {
    let manifests = Manifests::load(files)?;
    if manifests.networks.is_empty() {
        bail!("no FederatedNetwork found in the given files");
    }
    super::runtime()?.block_on(async {
        let (client, _) = hub::connect(hub).await?;
        Ok(diff::diff(&client, &manifests).await?)
    })
}

fn print(report: &DiffReport, output: Output) -> Result<()> {
    let text = match output {
        Output::Text => diff::text(report),
        Output::Yaml => serde_yaml::to_string(report)?,
        Output::Json => format!("{}\n", serde_json::to_string_pretty(report)?),
    };
    super::emit(&text).map(drop)
}
