//! `fedctl plan`.

use super::Output;
use crate::manifests::Manifests;
use anyhow::{Result, bail};
use federation_core::api::BackendKind;
use federation_core::backend::DesiredState;
use federation_core::plan::{NetworkPlan, PlanInput, plan};
use federation_core::topology::Role;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

pub fn run(files: &[PathBuf], unhealthy: &[String], output: Output) -> Result<()> {
    let manifests = Manifests::load(files)?;
    if manifests.networks.is_empty() {
        bail!("no FederatedNetwork found in the given files");
    }
    let unhealthy: BTreeSet<String> = unhealthy.iter().cloned().collect();
    let mut plans: Vec<PlanOutput> = Vec::new();
    let mut failed = false;
    for net in &manifests.networks {
        let input = PlanInput {
            network: net,
            member_clusters: &manifests.members,
            services: &manifests.services,
            unhealthy: &unhealthy,
        };
        match plan(input) {
            Ok(p) => plans.push(PlanOutput {
                objects: first_pass_objects(&p),
                plan: p,
            }),
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
        Output::Text => plans
            .iter()
            .map(|p| format!("{}{}", text(&p.plan), objects_text(p.objects.as_ref())))
            .try_for_each(|t| super::emit(&t).map(|_| ()))?,
        Output::Yaml => {
            super::emit(&serde_yaml::to_string(&plans)?)?;
        }
        Output::Json => {
            super::emit(&format!("{}\n", serde_json::to_string_pretty(&plans)?))?;
        }
    }
    if failed {
        bail!("some networks could not be planned");
    }
    Ok(())
}

/// A plan and the objects its backend would write on a first pass.
#[derive(Serialize)]
struct PlanOutput {
    plan: NetworkPlan,
    /// `None` when this build has no renderer for the network's backend.
    objects: Option<DesiredState>,
}

/// What the backend writes before anything has been observed: sites and services. Link
/// credentials and Links depend on what the accepting sites report, so they appear only
/// once the operator has observed the members.
fn first_pass_objects(plan: &NetworkPlan) -> Option<DesiredState> {
    match plan.backend.kind {
        BackendKind::Skupper => Some(federation_skupper::render::render(
            plan,
            &Default::default(),
        )),
        // An SD-WAN network's objects live in its controller and depend on nothing observed
        // but which tunnels exist already (none before a first pass).
        BackendKind::SdWan => federation_sdwan::render(plan, &Default::default()).ok(),
        BackendKind::Submariner => None,
    }
}

fn objects_text(objects: Option<&DesiredState>) -> String {
    let mut s = String::new();
    let Some(objects) = objects else {
        let _ = writeln!(s, "  objects: no renderer for this backend in this build");
        return s;
    };
    let _ = writeln!(
        s,
        "  objects before any member is observed ({}; links follow once accepting sites report endpoints):",
        objects.object_count()
    );
    for (target, list) in &objects.targets {
        let _ = writeln!(s, "    {target}:");
        for o in list {
            let ns = o.key.namespace.as_deref().unwrap_or("-");
            let _ = writeln!(s, "      {:<12} {ns}/{}", o.key.kind, o.key.name);
        }
    }
    s
}

fn text(p: &NetworkPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "network {} (backend {}, topology {:?})",
        p.network, p.backend.kind, p.topology_kind
    );
    let _ = writeln!(s, "  namespaces: {}", p.namespaces.join(", "));
    let _ = writeln!(
        s,
        "  sites ({}):",
        p.topology.sites.len() * p.namespaces.len()
    );
    for site in &p.topology.sites {
        let role = match site.role {
            Role::Hub => "hub",
            Role::Spoke => "spoke",
            Role::Peer => "peer",
        };
        let health = if p.member(&site.member).is_some_and(|m| m.healthy) {
            ""
        } else {
            " (unhealthy)"
        };
        let _ = writeln!(s, "    {:<24} {role}{health}", site.member);
    }
    let _ = writeln!(
        s,
        "  links ({}), dialer -> acceptor:",
        p.topology.links.len()
    );
    for l in &p.topology.links {
        let _ = writeln!(
            s,
            "    {:<24} -> {:<24} cost {}",
            l.dialer, l.acceptor, l.cost
        );
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
            let _ = writeln!(
                s,
                "      port {} -> {} key {}",
                port.port, port.target_port, port.routing_key
            );
        }
    }
    for r in &p.rejected_services {
        let _ = writeln!(s, "    REJECTED {}: {} ({})", r.name, r.message, r.reason);
    }
    s
}
