//! `fedctl join` and `fedctl unjoin`: argument handling and printing around
//! [`crate::join`].

use super::Output;
use crate::hub::HubOptions;
use crate::join::{ClusterAccess, JoinError, JoinOptions, UnjoinOptions};
use anyhow::Result;
use std::io::IsTerminal as _;
use std::time::Instant;

/// Prints each step on stderr with the time since the start, so a slow step shows where
/// the time goes; steps are plain lines, readable in CI logs as well as on a terminal.
fn progress(colour: bool) -> impl FnMut(&str) {
    let start = Instant::now();
    let on_terminal = std::io::stderr().is_terminal();
    move |step: &str| {
        let elapsed = start.elapsed().as_secs_f32();
        if colour && on_terminal {
            eprintln!("\x1b[2m[{elapsed:5.1}s]\x1b[0m {step}");
        } else {
            eprintln!("[{elapsed:5.1}s] {step}");
        }
    }
}

fn member_access(
    hub: &HubOptions,
    member_context: Option<String>,
    member_kubeconfig: Option<std::path::PathBuf>,
) -> ClusterAccess {
    ClusterAccess {
        kubeconfig: member_kubeconfig.or_else(|| hub.kubeconfig.clone()),
        context: member_context,
    }
}

/// `fedctl join`.
pub fn run_join(
    hub: &HubOptions,
    member_context: Option<String>,
    member_kubeconfig: Option<std::path::PathBuf>,
    options: JoinOptions,
    output: Output,
    colour: bool,
) -> Result<()> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let (hub_client, _) = crate::hub::connect(hub).await?;
        let member = crate::join::connect_member(&member_access(hub, member_context, member_kubeconfig)).await?;
        let mut step = progress(colour);
        match crate::join::join(&hub_client, &member, &options, &mut step).await {
            Ok(report) => {
                let text = match output {
                    Output::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
                    Output::Yaml => serde_yaml::to_string(&report)?,
                    Output::Text => {
                        let mut t = crate::access::table(&report.access).render(colour);
                        t.push_str(&format!(
                            "\njoined {} (cluster id {}): pod CIDRs {}, service CIDRs {} ({})\n\
                             kubeconfig in hub Secret {}; its token expires {} (run join again to renew it)\n",
                            report.member,
                            report.cluster_id,
                            report.pod_cidrs.join(","),
                            report.service_cidrs.join(","),
                            report.cidr_sources.join("; "),
                            report.secret,
                            report.token_expires,
                        ));
                        t
                    }
                };
                super::emit(&text)?;
                Ok(())
            }
            Err(JoinError::AccessMismatch { wrong, results }) => {
                eprint!("{}", crate::access::table(&results).render(colour));
                Err(JoinError::AccessMismatch { wrong, results }.into())
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// `fedctl unjoin`.
pub fn run_unjoin(
    hub: &HubOptions,
    member_context: Option<String>,
    member_kubeconfig: Option<std::path::PathBuf>,
    options: UnjoinOptions,
    hub_only: bool,
    colour: bool,
) -> Result<()> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let (hub_client, _) = crate::hub::connect(hub).await?;
        let member = if hub_only {
            None
        } else {
            Some(crate::join::connect_member(&member_access(hub, member_context, member_kubeconfig)).await?)
        };
        let mut step = progress(colour);
        let report = crate::join::unjoin(
            &hub_client,
            member.as_ref().map(|m| &m.client),
            &options,
            &mut step,
        )
        .await?;
        let mut text: String = report.removed.iter().map(|r| format!("removed {r}\n")).collect();
        if report.removed.is_empty() {
            text.push_str(&format!("nothing of member {} was left\n", options.member));
        }
        if hub_only {
            text.push_str("the member itself was not touched (--hub-only): its fednet-system ServiceAccount and Roles are still there\n");
        }
        super::emit(&text)?;
        Ok(())
    })
}
