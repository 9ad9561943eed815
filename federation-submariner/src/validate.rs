//! What Submariner cannot serve, refused before anything is written (pure).

use crate::globalnet::{self, GlobalnetError};
use federation_core::api::{SubmarinerSettings, TopologyKind};
use federation_core::backend::ValidationIssue;
use federation_core::plan::{Cidr, NetworkPlan};

/// Cable drivers the Submariner gateway implements.
pub const CABLE_DRIVERS: &[&str] = &["libreswan", "wireguard", "vxlan"];

/// Issues that make a plan unservable by Submariner.
pub fn validate(plan: &NetworkPlan) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    let issue = |field: &str, message: String| ValidationIssue {
        field: field.into(),
        message,
    };
    let Some(settings) = plan.backend.submariner.as_ref() else {
        return vec![issue(
            "spec.backend.submariner",
            "a Submariner network needs submariner settings (the broker)".into(),
        )];
    };
    if plan.topology_kind != TopologyKind::FullMesh {
        issues.push(issue(
            "spec.topology.type",
            format!(
                "Submariner connects every gateway to every other (a full mesh); a {:?} topology cannot be realised: use FullMesh",
                plan.topology_kind
            ),
        ));
    }
    if settings.broker.is_empty() {
        issues.push(issue(
            "spec.backend.submariner.broker",
            "name the MemberCluster that hosts the broker".into(),
        ));
    }
    if let Some(driver) = settings.cable_driver.as_deref()
        && !CABLE_DRIVERS.contains(&driver)
    {
        issues.push(issue(
            "spec.backend.submariner.cableDriver",
            format!("{driver:?} is not a Submariner cable driver (one of {CABLE_DRIVERS:?})"),
        ));
    }
    for m in &plan.members {
        let field = format!("MemberCluster {} spec.network", m.name);
        let Some(net) = m.network.as_ref() else {
            issues.push(issue(
                &field,
                "Submariner needs the member's pod and service CIDRs; fednet never guesses them: set spec.network.podCidrs and serviceCidrs".into(),
            ));
            continue;
        };
        for (what, cidrs) in [
            ("podCidrs", &net.pod_cidrs),
            ("serviceCidrs", &net.service_cidrs),
        ] {
            if cidrs.is_empty() {
                issues.push(issue(
                    &format!("{field}.{what}"),
                    format!("Submariner needs {what}; fednet never guesses them"),
                ));
            }
            for c in cidrs.iter().filter(|c| c.parse::<Cidr>().is_err()) {
                issues.push(issue(
                    &format!("{field}.{what}"),
                    format!("{c:?} is not a CIDR"),
                ));
            }
        }
    }
    if settings.globalnet {
        if let Err(e) = globalnet::Pool::of(settings) {
            issues.push(issue("spec.backend.submariner", e.to_string()));
        } else if let Err(GlobalnetError::Exhausted { slots }) =
            globalnet::Pool::of(settings).and_then(|p| p.check_capacity(plan.members.len()))
        {
            issues.push(issue(
                "spec.backend.submariner.globalnetCidrRange",
                format!(
                    "the range holds {slots} global CIDRs of the cluster size but the network has {} members",
                    plan.members.len()
                ),
            ));
        }
    } else if let Some((a, b, cidr)) = plan.overlapping_cidrs().into_iter().next() {
        issues.push(issue(
            "spec.backend.submariner.globalnet",
            format!(
                "members {a} and {b} overlap in {cidr}; Submariner silently skips overlapping remote networks unless Globalnet is on: set globalnet: true or give the members distinct CIDRs"
            ),
        ));
    }
    issues
}

/// The settings with every default filled in (what render writes).
pub fn settings(plan: &NetworkPlan) -> SubmarinerSettings {
    plan.backend.submariner.clone().unwrap_or_default()
}
