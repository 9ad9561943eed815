//! `fedctl topology`.

use crate::graph::Graph;
use crate::hub::{self, HubOptions};
use crate::manifests::Manifests;
use crate::render::{Format, render};
use anyhow::{Result, bail};
use federation_core::plan::{PlanInput, plan};
use kube::ResourceExt;
use std::collections::BTreeSet;
use std::path::PathBuf;

pub fn run(
    hub: &HubOptions,
    network: Option<String>,
    namespace: Option<String>,
    format: Format,
    files: &[PathBuf],
) -> Result<()> {
    let graph = if files.is_empty() {
        let Some(name) = network else {
            bail!(
                "name the network to draw (`fedctl status` lists them), or give manifests with -f"
            );
        };
        super::runtime()?.block_on(async {
            let (client, default_ns) = hub::connect(hub).await?;
            let ns = namespace.unwrap_or(default_ns);
            let report = hub::network_report(&client, &ns, &name).await?;
            anyhow::Ok(Graph::from_report(&report))
        })?
    } else {
        offline(files, network.as_deref(), namespace.as_deref())?
    };
    super::emit(&render(&graph, format)).map(drop)
}

/// The graph of a network planned from manifests: every member healthy, phases unknown.
fn offline(files: &[PathBuf], name: Option<&str>, namespace: Option<&str>) -> Result<Graph> {
    let manifests = Manifests::load(files)?;
    let candidates: Vec<_> = manifests
        .networks
        .iter()
        .filter(|n| name.is_none_or(|name| n.name_any() == name))
        .filter(|n| namespace.is_none_or(|ns| n.namespace().as_deref() == Some(ns)))
        .collect();
    let listed = || {
        manifests
            .networks
            .iter()
            .map(|n| format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let network = match candidates.as_slice() {
        [one] => *one,
        [] if manifests.networks.is_empty() => {
            bail!("no FederatedNetwork found in the given files")
        }
        [] => bail!(
            "no such network in the given files; they hold: {}",
            listed()
        ),
        _ => bail!("the files hold several networks ({}): name one", listed()),
    };
    let input = PlanInput {
        network,
        member_clusters: &manifests.members,
        services: &manifests.services,
        unhealthy: &BTreeSet::new(),
    };
    match plan(input) {
        Ok(p) => Ok(Graph::from_plan(&p)),
        Err(e) => bail!("the network cannot be planned: {e} ({})", e.reason()),
    }
}
