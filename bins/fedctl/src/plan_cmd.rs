//! `fedctl plan`.

use crate::Output;
use crate::manifests::Manifests;
use anyhow::{Result, bail};
use federation_core::plan::{NetworkPlan, PlanInput, plan};
use federation_core::topology::Role;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

pub fn run(files: &[PathBuf], unhealthy: &[String], output: Output) -> Result<()> {
    let manifests = Manifests::load(files)?;
    if manifests.networks.is_empty() {
        bail!("no FederatedNetwork found in the given files");
    }
    let unhealthy: BTreeSet<String> = unhealthy.iter().cloned().collect();
    let mut plans = Vec::new();
    let mut failed = false;
    for net in &manifests.networks {
        let input = PlanInput {
            network: net,
            member_clusters: &manifests.members,
            services: &manifests.services,
            unhealthy: &unhealthy,
        };
        match plan(input) {
            Ok(p) => plans.push(p),
            Err(e) => {
                failed = true;
                eprintln!(
                    "network {}/{}: {} ({})",
                    net.metadata.namespace.as_deref().unwrap_or_default(),
                    net.metadata.name.as_deref().unwrap_or_default(),
                    e,
                    e.reason()
                );
            }
        }
    }
    match output {
        Output::Text => plans.iter().for_each(|p| print!("{}", text(p))),
        Output::Yaml => print!("{}", serde_yaml::to_string(&plans)?),
        Output::Json => println!("{}", serde_json::to_string_pretty(&plans)?),
    }
    if failed {
        bail!("some networks could not be planned");
    }
    Ok(())
}

fn text(p: &NetworkPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "network {} (backend {}, topology {:?})", p.network, p.backend.kind, p.topology_kind);
    let _ = writeln!(s, "  namespaces: {}", p.namespaces.join(", "));
    let _ = writeln!(s, "  sites ({}):", p.topology.sites.len() * p.namespaces.len());
    for site in &p.topology.sites {
        let role = match site.role {
            Role::Hub => "hub",
            Role::Spoke => "spoke",
            Role::Peer => "peer",
        };
        let health = if p.member(&site.member).is_some_and(|m| m.healthy) { "" } else { " (unhealthy)" };
        let _ = writeln!(s, "    {:<24} {role}{health}", site.member);
    }
    let _ = writeln!(s, "  links ({}), dialer -> acceptor:", p.topology.links.len());
    for l in &p.topology.links {
        let _ = writeln!(s, "    {:<24} -> {:<24} cost {}", l.dialer, l.acceptor, l.cost);
    }
    let _ = writeln!(s, "  services ({}):", p.services.len());
    for svc in &p.services {
        let exporters: Vec<&str> = svc.exporters.iter().map(|e| e.member.as_str()).collect();
        let _ = writeln!(
            s,
            "    {}/{} from [{}] to [{}]",
            svc.namespace,
            svc.service_name,
            exporters.join(", "),
            svc.consumers.join(", ")
        );
        for port in &svc.ports {
            let _ = writeln!(s, "      port {} -> {} key {}", port.port, port.target_port, port.routing_key);
        }
    }
    for r in &p.rejected_services {
        let _ = writeln!(s, "    REJECTED {}: {} ({})", r.name, r.message, r.reason);
    }
    s
}
