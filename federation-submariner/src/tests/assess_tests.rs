use super::fixtures::*;
use crate::assess::{SERVICE_NAME_LABEL, SOURCE_CLUSTER_LABEL, assess};
use crate::kinds::{self, OPERATOR_NAMESPACE};
use federation_core::api::LinkPhase;
use federation_core::backend::{Health, ObservedObject};
use serde_json::json;

fn link(h: &Health, a: &str, b: &str) -> (LinkPhase, Option<String>) {
    let l = h
        .links
        .iter()
        .find(|l| (l.dialer == a && l.acceptor == b) || (l.dialer == b && l.acceptor == a))
        .unwrap();
    (l.phase, l.message.clone())
}

fn full_mesh_gateways(m: &'static str) -> Vec<ObservedObject> {
    let peers: Vec<(&str, &str)> = MEMBERS
        .iter()
        .filter(|p| **p != m)
        .map(|p| (*p, "connected"))
        .collect();
    vec![joined(m), gateway(m, &peers)]
}

#[test]
fn links_are_up_only_when_both_gateways_report_the_other_connected() {
    let plan = default_plan();
    let observed = observed_all(
        broker_observed(NOW),
        MEMBERS.map(|m| (m, full_mesh_gateways(m))),
    );
    let h = assess(&plan, &observed);
    assert_eq!(h.links.len(), 3);
    assert!(
        h.links.iter().all(|l| l.phase == LinkPhase::Up),
        "{:?}",
        h.links
    );
    assert!(h.members_not_ready.is_empty(), "{:?}", h.members_not_ready);

    // west reports central connecting, east an error.
    let west = vec![
        joined("west"),
        gateway("west", &[("central", "connecting"), ("east", "error")]),
    ];
    let observed = observed_all(
        broker_observed(NOW),
        [
            ("central", full_mesh_gateways("central")),
            ("east", full_mesh_gateways("east")),
            ("west", west),
        ],
    );
    let h = assess(&plan, &observed);
    assert_eq!(link(&h, "central", "west").0, LinkPhase::Pending);
    assert_eq!(link(&h, "east", "west").0, LinkPhase::Down);
    assert_eq!(link(&h, "central", "east").0, LinkPhase::Up);
}

#[test]
fn stale_or_missing_gateway_data_is_never_up() {
    let plan = default_plan();
    // An unread member: Down.
    let observed = observed_all(
        broker_observed(NOW),
        [
            ("central", full_mesh_gateways("central")),
            ("east", full_mesh_gateways("east")),
        ],
    );
    let h = assess(&plan, &observed);
    assert_eq!(link(&h, "central", "west").0, LinkPhase::Down);
    assert_eq!(h.members_not_ready["west"], "member could not be read");
    // No gateway: Pending. A connection to an endpoint the peer no longer has: Pending.
    let mut stale = gateway("central", &[("east", "connected"), ("west", "connected")]);
    stale.body["status"]["connections"][0]["endpoint"]["cable_name"] =
        "submariner-cable-east-old".into();
    let observed = observed_all(
        broker_observed(NOW),
        [
            ("central", vec![joined("central"), stale]),
            ("east", full_mesh_gateways("east")),
            ("west", vec![joined("west")]),
        ],
    );
    let h = assess(&plan, &observed);
    let (phase, message) = link(&h, "central", "east");
    assert_eq!(phase, LinkPhase::Pending);
    assert!(message.unwrap().contains("stale"));
    let (phase, message) = link(&h, "central", "west");
    assert_eq!(phase, LinkPhase::Pending);
    assert!(message.unwrap().contains("no active gateway in west"));
    // A passive gateway does not count.
    let mut passive = gateway("west", &[("central", "connected"), ("east", "connected")]);
    passive.body["status"]["haStatus"] = "passive".into();
    let observed = observed_all(
        broker_observed(NOW),
        [
            ("central", full_mesh_gateways("central")),
            ("east", full_mesh_gateways("east")),
            ("west", vec![joined("west"), passive]),
        ],
    );
    assert_eq!(
        link(&assess(&plan, &observed), "east", "west").0,
        LinkPhase::Pending
    );
}

#[test]
fn a_member_is_ready_once_the_operator_reconciled_its_join() {
    let plan = default_plan();
    let mut unreconciled = joined("east");
    unreconciled.body["status"] = json!({});
    let observed = observed_all(
        broker_observed(NOW),
        [
            ("central", vec![]),
            ("east", vec![unreconciled]),
            ("west", full_mesh_gateways("west")),
        ],
    );
    let h = assess(&plan, &observed);
    assert!(h.members_not_ready["central"].contains("not joined yet"));
    assert!(h.members_not_ready["east"].contains("has not reconciled"));
    assert!(!h.members_not_ready.contains_key("west"));
}

fn import() -> ObservedObject {
    object(
        &kinds::SERVICE_IMPORT,
        Some(NS),
        "orders",
        json!({"metadata": {"name": "orders", "namespace": NS}, "status": {"clusters": [{"cluster": "id-east"}]}}),
        false,
    )
}

fn slice(from: &str) -> ObservedObject {
    object(
        &kinds::ENDPOINT_SLICE,
        Some(NS),
        &format!("orders-{from}"),
        json!({"metadata": {"name": format!("orders-{from}"), "namespace": NS,
               "labels": {SERVICE_NAME_LABEL: "orders", SOURCE_CLUSTER_LABEL: format!("id-{from}")}}}),
        false,
    )
}

#[test]
fn consumers_are_judged_by_imports_and_slices_and_explained_by_export_conditions() {
    let plan = default_plan();
    let export = object(
        &kinds::SERVICE_EXPORT,
        Some(NS),
        "orders",
        json!({"metadata": {"name": "orders", "namespace": NS}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "AwaitingExport", "message": "Awaiting export"},
            {"type": "Valid", "status": "True", "reason": "", "message": ""}]}}),
        true,
    );
    let observed = observed_all(
        broker_observed(NOW),
        [
            ("central", vec![import(), slice("east")]),
            ("east", vec![export, import(), slice("east")]),
            // west has the import but only a slice from a cluster that is no exporter.
            ("west", vec![import(), slice("central")]),
        ],
    );
    let h = assess(&plan, &observed);
    let state = |c: &str| h.services.iter().find(|s| s.consumer == c).unwrap().clone();
    assert!(state("central").ready, "{:?}", state("central"));
    assert!(
        state("east").ready,
        "the Ready=False of the export does not matter once imported"
    );
    let west = state("west");
    assert!(!west.ready);
    let message = west.message.unwrap();
    assert!(
        message.contains("no EndpointSlice from an exporter"),
        "{message}"
    );
    assert!(
        message.contains("east: Valid=True, Ready=False (Awaiting export)"),
        "{message}"
    );
    assert!(message.contains("Lighthouse v0.20"), "{message}");
}

#[test]
fn the_operator_namespace_is_where_gateways_are_read() {
    let g = gateway("east", &[]);
    assert_eq!(g.key.namespace.as_deref(), Some(OPERATOR_NAMESPACE));
}
