//! `fedctl doctor`: exit 0 when nothing failed, 1 when something did, 2 when doctor could not
//! run.

use super::Output;
use crate::doctor::{self, DoctorOptions, Finding};
use crate::hub::{self, HubOptions};
use std::process::ExitCode;

/// Exit code when doctor found problems.
const PROBLEMS: u8 = 1;
/// Exit code when doctor itself could not run.
const COULD_NOT_RUN: u8 = 2;

pub fn run(hub: &HubOptions, options: DoctorOptions, output: Output, colour: bool) -> ExitCode {
    let findings = match find(hub, &options) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: doctor could not run: {e:#}");
            return ExitCode::from(COULD_NOT_RUN);
        }
    };
    let text = match output {
        Output::Text => Ok(doctor::findings_text(&findings, colour)),
        Output::Json => serde_json::to_string_pretty(&findings)
            .map(|s| format!("{s}\n"))
            .map_err(anyhow::Error::from),
        Output::Yaml => serde_yaml::to_string(&findings).map_err(anyhow::Error::from),
    };
    match text.and_then(|t| super::emit(&t)) {
        Ok(_) if doctor::has_failures(&findings) => ExitCode::from(PROBLEMS),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

fn find(hub: &HubOptions, options: &DoctorOptions) -> anyhow::Result<Vec<Finding>> {
    super::runtime()?.block_on(async {
        let (client, _) = hub::connect(hub).await?;
        Ok(doctor::run(&client, options).await?)
    })
}
