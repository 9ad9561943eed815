use super::fixtures::*;
use crate::assess::assess;
use crate::names;
use crate::validate::validate;
use federation_core::api::{LinkPhase, SkupperSettings};
use federation_core::backend::ObservedObject;
use serde_json::json;

fn operational() -> serde_json::Value {
    json!([{"type": "Configured", "status": "True"}, {"type": "Operational", "status": "True"}])
}

#[test]
fn a_link_is_up_only_when_operational() {
    let plan = hub_spoke_plan();
    let name = names::link(&plan.network, "east", "central");
    let phase = |east: Vec<ObservedObject>| {
        let obs = observed(vec![
            ("central", vec![ready_site(&plan, &["g1"])]),
            ("east", east),
        ]);
        let h = assess(&plan, &obs);
        let l = h.links.iter().find(|l| l.dialer == "east").unwrap().clone();
        (l.phase, l.message)
    };
    let (p, m) = phase(vec![]);
    assert_eq!(p, LinkPhase::Pending);
    assert!(m.unwrap().contains("certificate"));
    let pending = json!([{"type": "Configured", "status": "True"}, {"type": "Operational", "status": "False", "message": "connecting"}]);
    let (p, m) = phase(vec![link_object(&name, pending, "Pending")]);
    assert_eq!(p, LinkPhase::Pending);
    assert!(m.unwrap().contains("connecting"));
    assert_eq!(
        phase(vec![link_object(&name, operational(), "Ready")]).0,
        LinkPhase::Up
    );
    let failed = json!([{"type": "Configured", "status": "False", "message": "bad certificate"}]);
    let (p, m) = phase(vec![link_object(&name, failed, "Error")]);
    assert_eq!(p, LinkPhase::Down);
    assert!(m.unwrap().contains("bad certificate"));

    // An unreadable dialer is not reported up from stale knowledge.
    let h = assess(
        &plan,
        &observed(vec![("central", vec![ready_site(&plan, &["g1"])])]),
    );
    assert!(h.links.iter().all(|l| l.phase != LinkPhase::Up));
    assert_eq!(
        h.links.iter().find(|l| l.dialer == "east").unwrap().phase,
        LinkPhase::Down
    );
}

#[test]
fn an_ha_link_needs_every_router_link() {
    let plan = plan_with(
        hub_spoke(),
        SkupperSettings {
            ha: true,
            ..Default::default()
        },
    );
    let name = names::link(&plan.network, "east", "central");
    let one = link_object(&format!("{name}-1"), operational(), "Ready");
    let obs = observed(vec![
        ("central", vec![ready_site(&plan, &["g1", "g2"])]),
        ("east", vec![one.clone()]),
    ]);
    let east = assess(&plan, &obs)
        .links
        .into_iter()
        .find(|l| l.dialer == "east")
        .unwrap();
    assert_eq!(east.phase, LinkPhase::Pending);
    let two = link_object(&format!("{name}-2"), operational(), "Ready");
    let obs = observed(vec![
        ("central", vec![ready_site(&plan, &["g1", "g2"])]),
        ("east", vec![one, two]),
    ]);
    let east = assess(&plan, &obs)
        .links
        .into_iter()
        .find(|l| l.dialer == "east")
        .unwrap();
    assert_eq!(east.phase, LinkPhase::Up);
}

#[test]
fn consumers_are_ready_when_their_listener_is_matched() {
    let plan = hub_spoke_plan();
    let name = names::service_port("orders", "http");
    let listener = |matched: bool| ObservedObject {
        key: crate::kinds::key(&crate::kinds::LISTENER, NS, &name),
        body: json!({"status": {"conditions": [{"type": "Configured", "status": "True"},
            {"type": "Matched", "status": if matched { "True" } else { "False" }, "message": "no matching connector"}]}}),
        owned: true,
    };
    let connector = ObservedObject {
        key: crate::kinds::key(&crate::kinds::CONNECTOR, NS, &name),
        body: json!({"status": {"conditions": [{"type": "Configured", "status": "True"}]}}),
        owned: true,
    };
    let obs = observed(vec![
        ("central", vec![listener(true)]),
        ("west", vec![listener(false)]),
        ("east", vec![connector]),
    ]);
    let h = assess(&plan, &obs);
    let ready = |m: &str| h.services.iter().find(|s| s.consumer == m).unwrap().clone();
    assert!(ready("central").ready);
    assert!(ready("east").ready, "the exporter consumes locally");
    let west = ready("west");
    assert!(!west.ready);
    assert!(west.message.unwrap().contains("no matching connector"));
    assert!(
        h.members_not_ready.contains_key("west"),
        "no Site observed there"
    );
}

#[test]
fn validation_refuses_what_skupper_cannot_do() {
    let edge_ha = plan_with(
        hub_spoke(),
        SkupperSettings {
            edge_spokes: true,
            ha: true,
            ..Default::default()
        },
    );
    assert!(
        validate(&edge_ha)
            .iter()
            .any(|i| i.field == "spec.backend.skupper.ha")
    );
    let edge_mesh = plan_with(
        json!({"type": "FullMesh"}),
        SkupperSettings {
            edge_spokes: true,
            ..Default::default()
        },
    );
    assert!(
        validate(&edge_mesh)
            .iter()
            .any(|i| i.field == "spec.backend.skupper.edgeSpokes")
    );
    let closed = plan_with(
        hub_spoke(),
        SkupperSettings {
            link_access: Some("none".into()),
            ..Default::default()
        },
    );
    let issues = validate(&closed);
    assert!(
        issues
            .iter()
            .any(|i| i.message.contains("hub central unable to accept links")),
        "{issues:?}"
    );
    assert!(validate(&hub_spoke_plan()).is_empty());
}
