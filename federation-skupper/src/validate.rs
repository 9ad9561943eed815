//! What Skupper cannot serve, refused before anything is written (pure).

use federation_core::api::TopologyKind;
use federation_core::backend::ValidationIssue;
use federation_core::plan::NetworkPlan;
use federation_core::topology::Role;

/// Link access values that mean "accept no links".
const NO_ACCESS: &[&str] = &["none", ""];

/// Issues that make a plan unservable by Skupper.
pub fn validate(plan: &NetworkPlan) -> Vec<ValidationIssue> {
    let settings = plan.backend.skupper.clone().unwrap_or_default();
    let mut issues = Vec::new();
    let issue = |field: &str, message: String| ValidationIssue {
        field: field.into(),
        message,
    };
    if settings.edge_spokes && plan.topology_kind != TopologyKind::HubSpoke {
        issues.push(issue(
            "spec.backend.skupper.edgeSpokes",
            "edge spokes need a HubSpoke topology".into(),
        ));
    }
    let has_spokes = plan.topology.sites.iter().any(|s| s.role == Role::Spoke);
    if settings.edge_spokes && settings.ha && has_spokes {
        issues.push(issue(
            "spec.backend.skupper.ha",
            "edge sites cannot be HA: set ha to false or edgeSpokes to false".into(),
        ));
    }
    if let Some(access) = settings
        .link_access
        .as_deref()
        .filter(|a| NO_ACCESS.contains(a))
        && let Some(acceptor) = plan.topology.links.first().map(|l| &l.acceptor)
    {
        let role = if plan.topology_kind == TopologyKind::HubSpoke {
            "hub"
        } else {
            "site"
        };
        issues.push(issue(
            "spec.backend.skupper.linkAccess",
            format!("linkAccess {access:?} leaves {role} {acceptor} unable to accept links"),
        ));
    }
    issues
}
