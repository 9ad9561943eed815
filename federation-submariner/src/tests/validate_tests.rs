use super::fixtures::*;
use crate::validate::validate;
use crate::{SubmarinerBackend, capabilities};
use federation_core::backend::{
    CONSUMERS_UNSUPPORTED, check_capabilities, refuse_unservable_services,
};
use serde_json::json;

fn fields(plan: &federation_core::plan::NetworkPlan) -> Vec<String> {
    let mut issues = check_capabilities(&capabilities(), plan);
    issues.extend(validate(plan));
    issues.into_iter().map(|i| i.field).collect()
}

#[test]
fn a_full_mesh_with_distinct_cidrs_is_served() {
    assert!(fields(&default_plan()).is_empty());
}

#[test]
fn other_topologies_are_refused() {
    let net = network(
        json!({"type": "HubSpoke", "hubSpoke": {"hubs": ["central"]}}),
        json!({"broker": "hub"}),
    );
    let plan = plan_of(&net, &members(), &[]);
    let f = fields(&plan);
    assert!(f.contains(&"spec.topology.type".to_owned()), "{f:?}");
}

#[test]
fn overlapping_cidrs_are_refused_without_globalnet_and_served_with_it() {
    let mut ms = members();
    ms[2] = member("west", 0); // the same CIDRs as central
    let net = network(json!({"type": "FullMesh"}), json!({"broker": "hub"}));
    let issues = validate(&plan_of(&net, &ms, &[]));
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].field, "spec.backend.submariner.globalnet");
    assert!(
        issues[0].message.contains("central and west overlap"),
        "{}",
        issues[0].message
    );
    let net = network(
        json!({"type": "FullMesh"}),
        json!({"broker": "hub", "globalnet": true}),
    );
    assert!(fields(&plan_of(&net, &ms, &[])).is_empty());
}

#[test]
fn cidrs_are_never_guessed() {
    let mut ms = members();
    ms[1].spec.network = None;
    ms[2].spec.network.as_mut().unwrap().service_cidrs.clear();
    let net = network(json!({"type": "FullMesh"}), json!({"broker": "hub"}));
    let f = fields(&plan_of(&net, &ms, &[]));
    assert_eq!(
        f,
        [
            "MemberCluster east spec.network",
            "MemberCluster west spec.network.serviceCidrs"
        ]
    );
}

#[test]
fn bad_settings_are_refused() {
    let plan = mesh_plan(json!({"broker": "hub", "cableDriver": "gre"}));
    assert_eq!(fields(&plan), ["spec.backend.submariner.cableDriver"]);
    let plan = mesh_plan(
        json!({"broker": "hub", "globalnet": true, "globalnetCidrRange": "242.0.0.0/24", "globalnetClusterSize": 128}),
    );
    assert_eq!(
        fields(&plan),
        ["spec.backend.submariner.globalnetCidrRange"]
    );
}

#[test]
fn a_service_for_some_consumers_only_is_refused_with_its_reason() {
    let net = network(json!({"type": "FullMesh"}), json!({"broker": "hub"}));
    let mut plan = plan_of(
        &net,
        &members(),
        &[orders(Some(json!({"names": ["west"]})))],
    );
    refuse_unservable_services(&capabilities(), &mut plan);
    assert!(plan.services.is_empty());
    assert_eq!(plan.rejected_services[0].reason, CONSUMERS_UNSUPPORTED);
    assert!(
        plan.rejected_services[0]
            .message
            .contains("remove spec.consumers")
    );
    // Naming every member is no restriction.
    let mut plan = plan_of(&net, &members(), &[orders(Some(json!({"names": MEMBERS})))]);
    refuse_unservable_services(&capabilities(), &mut plan);
    assert_eq!(plan.services.len(), 1);
    let _ = SubmarinerBackend::new;
}
