//! Unit tests of the backend's pure half: model, refusals, rules, health.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::access::ControllerAccess;
use crate::fixtures::{self, full_mesh, hub_spoke, members, network, service, settings};
use crate::headscale::{ACL_POLICY, EDGE_NODE, RTT_UNKNOWN};
use federation_core::api::{
    ExplicitLink, ExplicitSpec, LinkPhase, ServiceSdwanPolicy, TopologySpec,
};
use federation_core::backend::ObservedObject;
use serde_json::json;

const URL: &str = "https://controller.example:8443";

struct NoAccess;

#[async_trait]
impl AccessResolver for NoAccess {
    async fn access(&self, _: &NetworkRef) -> Result<ControllerAccess, BackendError> {
        Err(BackendError::Other("unit tests make no calls".into()))
    }
}

fn backend() -> SdwanBackend {
    SdwanBackend::new(Arc::new(NoAccess))
}

fn headscale_net(topology: TopologySpec) -> federation_core::api::FederatedNetwork {
    network(
        "edge",
        &["a", "b", "c"],
        topology,
        settings(SdwanAdapter::Headscale, URL, "hs-token"),
    )
}

fn rule_dst(model: &SdwanModel, id: &str) -> Vec<String> {
    headscale::rules(model)
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| r.dst)
        .unwrap_or_default()
}

#[test]
fn full_mesh_lets_every_site_reach_every_other_on_all_ports() {
    let plan = fixtures::plan(&headscale_net(full_mesh()), &members(&["a", "b", "c"]), &[]);
    assert!(backend().validate(&plan).is_empty());
    let model = SdwanModel::from_plan(&plan).unwrap();
    assert_eq!(model.sites["a"].prefixes, ["10.1.0.0/16", "10.101.0.0/16"]);
    assert_eq!(model.sites["b"].edge, "edge-b");
    assert_eq!(
        rule_dst(&model, "site/a"),
        [
            "10.102.0.0/16:*",
            "10.2.0.0/16:*",
            "10.103.0.0/16:*",
            "10.3.0.0/16:*"
        ]
    );
    assert_eq!(rule_dst(&model, "site/c").len(), 4);
    assert_eq!(
        backend().targets(&plan),
        BTreeSet::from([Target::Controller(URL.into())])
    );
}

#[test]
fn hub_and_spoke_lets_spokes_reach_only_the_hub() {
    let plan = fixtures::plan(
        &headscale_net(hub_spoke(&["a"])),
        &members(&["a", "b", "c"]),
        &[],
    );
    let model = SdwanModel::from_plan(&plan).unwrap();
    assert!(model.sites["a"].hub && !model.sites["b"].hub);
    assert_eq!(
        rule_dst(&model, "site/b"),
        ["10.1.0.0/16:*", "10.101.0.0/16:*"]
    );
    assert_eq!(rule_dst(&model, "site/a").len(), 4);
}

#[test]
fn a_service_opens_its_ports_from_consumers_to_the_exporter_only() {
    let net = headscale_net(hub_spoke(&["a"]));
    let svc = service("web", "edge", "b", 8080);
    let plan = fixtures::plan(&net, &members(&["a", "b", "c"]), &[svc]);
    let model = SdwanModel::from_plan(&plan).unwrap();
    let rule = headscale::rules(&model)
        .into_iter()
        .find(|r| r.id == "service/web/b")
        .unwrap();
    assert_eq!(
        rule.src,
        [
            "10.1.0.0/16",
            "10.101.0.0/16",
            "10.103.0.0/16",
            "10.3.0.0/16"
        ]
    );
    assert_eq!(
        rule.dst,
        ["10.102.0.0/16:8080,8081", "10.2.0.0/16:8080,8081"]
    );
}

#[test]
fn what_headscale_cannot_honour_is_refused_before_anything_is_written() {
    let costly = TopologySpec {
        kind: federation_core::api::TopologyKind::Explicit,
        default_cost: None,
        hub_spoke: None,
        explicit: Some(ExplicitSpec {
            links: vec![ExplicitLink {
                dialer: "a".into(),
                acceptor: "b".into(),
                cost: Some(5),
            }],
        }),
    };
    let plan = fixtures::plan(&headscale_net(costly), &members(&["a", "b", "c"]), &[]);
    let issues = backend().validate(&plan);
    assert!(
        issues.iter().any(|i| i.message.contains("link costs")),
        "{issues:?}"
    );

    let mut svc = service("web", "edge", "b", 8080);
    svc.spec.sdwan = Some(ServiceSdwanPolicy {
        traffic_profile: Some("video".into()),
        max_delay_ms: Some(50),
        ..Default::default()
    });
    let plan = fixtures::plan(
        &headscale_net(full_mesh()),
        &members(&["a", "b", "c"]),
        &[svc],
    );
    let issues = backend().validate(&plan);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].field, "FederatedService web: spec.sdwan");
    assert!(issues[0].message.contains("SLA"));

    // A traffic profile alone is metadata for the service registry, not a refusal.
    let mut svc = service("web", "edge", "b", 8080);
    svc.spec.sdwan = Some(ServiceSdwanPolicy {
        traffic_profile: Some("video".into()),
        ..Default::default()
    });
    let plan = fixtures::plan(
        &headscale_net(full_mesh()),
        &members(&["a", "b", "c"]),
        &[svc],
    );
    assert!(backend().validate(&plan).is_empty());
}

#[test]
fn members_without_an_edge_sharing_an_edge_or_with_bad_cidrs_are_named() {
    let mut mcs = members(&["a", "b", "c"]);
    if let Some(n) = mcs[0].spec.network.as_mut() {
        n.sdwan_edge = None;
    }
    if let Some(n) = mcs[2].spec.network.as_mut() {
        n.sdwan_edge = Some("edge-b".into());
        n.pod_cidrs = vec!["10.3.0.1/16".into()];
    }
    let plan = fixtures::plan(&headscale_net(full_mesh()), &mcs, &[]);
    let issues = backend().validate(&plan);
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(issues.len(), 3, "{text:?}");
    assert!(text[0].contains("MemberCluster a") && text[0].contains("sdwanEdge"));
    assert!(
        text.iter()
            .any(|t| t.contains("already the edge of member b"))
    );
    assert!(text.iter().any(|t| t.contains("host bits")));
}

#[test]
fn no_settings_or_an_adapter_the_operator_lacks_are_refused() {
    let mut net = headscale_net(full_mesh());
    net.spec.backend.sdwan = None;
    let plan = fixtures::plan(&net, &members(&["a", "b", "c"]), &[]);
    assert_eq!(backend().validate(&plan)[0].field, "spec.backend.sdwan");
    let mut only_headscale = backend();
    only_headscale.adapters.clear();
    let plan = fixtures::plan(&headscale_net(full_mesh()), &members(&["a", "b", "c"]), &[]);
    assert!(
        only_headscale.validate(&plan)[0]
            .message
            .contains("no Headscale adapter")
    );
}

fn node(name: &str, online: bool, prefixes: &[&str], serving: bool) -> ObservedObject {
    let net = NetworkRef::new(fixtures::HUB_NAMESPACE, "edge");
    ObservedObject {
        key: keys::key(&net, EDGE_NODE, name),
        body: json!({"id": "1", "online": online, "lastSeen": "2026-01-01T00:00:00Z",
                     "approvedRoutes": prefixes, "availableRoutes": if serving { prefixes } else { &[][..] },
                     "subnetRoutes": if serving { prefixes } else { &[][..] }}),
        owned: false,
    }
}

#[test]
fn health_says_what_headscale_knows_and_that_rtt_and_loss_are_unknown() {
    let plan = fixtures::plan(&headscale_net(full_mesh()), &members(&["a", "b", "c"]), &[]);
    let model = SdwanModel::from_plan(&plan).unwrap();
    let target = Target::Controller(URL.into());
    let desired = backend().render(&plan, &BTreeMap::new()).unwrap();
    let policy = desired.targets[&target]
        .iter()
        .find(|o| o.key.kind == ACL_POLICY)
        .unwrap();
    let written = ObservedObject {
        key: policy.key.clone(),
        body: policy.body.clone(),
        owned: true,
    };
    let all_up = Observed::of(vec![
        written.clone(),
        node("edge-a", true, &["10.1.0.0/16", "10.101.0.0/16"], true),
        node("edge-b", true, &["10.102.0.0/16", "10.2.0.0/16"], true),
        node("edge-c", true, &["10.103.0.0/16", "10.3.0.0/16"], true),
    ]);
    let health = headscale::assess(&model, Some(&all_up));
    assert_eq!(health.links.len(), 3);
    assert!(
        health.links.iter().all(|l| l.phase == LinkPhase::Up),
        "{health:?}"
    );
    assert!(
        health
            .links
            .iter()
            .all(|l| l.message.as_deref() == Some(RTT_UNKNOWN))
    );
    assert!(health.members_not_ready.is_empty());

    // Offline edges (no client connected) are pending, never up; a missing one is down.
    let offline = Observed::of(vec![
        written,
        node("edge-a", false, &["10.1.0.0/16", "10.101.0.0/16"], false),
        node("edge-b", true, &["10.102.0.0/16", "10.2.0.0/16"], true),
    ]);
    let health = headscale::assess(&model, Some(&offline));
    let ab = health
        .links
        .iter()
        .find(|l| l.dialer == "a" || l.acceptor == "a" && l.dialer == "b")
        .unwrap();
    assert_eq!(ab.phase, LinkPhase::Pending, "{ab:?}");
    assert!(
        ab.message
            .as_deref()
            .unwrap()
            .contains("edge node edge-a is offline")
    );
    assert!(
        health
            .links
            .iter()
            .filter(|l| l.dialer == "c" || l.acceptor == "c")
            .all(|l| l.phase == LinkPhase::Down)
    );
    assert!(health.members_not_ready["c"].contains("not registered"));

    // Nothing read: nobody is ready, no link is reported up.
    let health = headscale::assess(&model, None);
    assert_eq!(health.members_not_ready.len(), 3);
    assert!(health.links.is_empty());
}

fn flexi_net(topology: TopologySpec) -> federation_core::api::FederatedNetwork {
    network(
        "edge",
        &["a", "b", "c"],
        topology,
        settings(SdwanAdapter::FlexiManage, URL, "key"),
    )
}

fn tunnel_observed(net: &NetworkRef, a: &str, b: &str) -> ObservedObject {
    ObservedObject {
        key: keys::key(net, fleximanage::TUNNEL, &format!("{a}~{b}")),
        body: json!({"a": a, "b": b, "cost": 1}),
        owned: true,
    }
}

fn creates(objects: &[federation_core::backend::DesiredObject]) -> Vec<serde_json::Value> {
    objects
        .iter()
        .filter(|o| o.key.kind == fleximanage::CREATE_TUNNELS)
        .map(|o| o.body.clone())
        .collect()
}

#[test]
fn flexi_a_fresh_mesh_is_one_request_and_a_gap_is_a_two_device_one() {
    let plan = fixtures::plan(&flexi_net(full_mesh()), &members(&["a", "b", "c"]), &[]);
    assert!(backend().validate(&plan).is_empty());
    let model = SdwanModel::from_plan(&plan).unwrap();
    let fresh = fleximanage::render(&plan.network, &model, None);
    assert_eq!(
        creates(&fresh),
        [
            json!({"topology": "fullMesh", "hub": null, "devices": ["edge-a", "edge-b", "edge-c"], "cost": 1})
        ]
    );
    let observed = Observed::of(vec![
        tunnel_observed(&plan.network, "edge-a", "edge-b"),
        tunnel_observed(&plan.network, "edge-a", "edge-c"),
    ]);
    let partial = fleximanage::render(&plan.network, &model, Some(&observed));
    assert_eq!(
        creates(&partial),
        [json!({"topology": "fullMesh", "hub": null, "devices": ["edge-b", "edge-c"], "cost": 1})]
    );
    let kept = partial
        .iter()
        .filter(|o| o.key.kind == fleximanage::TUNNEL)
        .count();
    assert_eq!(kept, 2, "existing tunnels are desired, so they are kept");
}

#[test]
fn flexi_missing_spokes_of_a_hub_are_one_hub_and_spoke_request() {
    let plan = fixtures::plan(
        &flexi_net(hub_spoke(&["a"])),
        &members(&["a", "b", "c"]),
        &[],
    );
    let model = SdwanModel::from_plan(&plan).unwrap();
    let fresh = fleximanage::render(&plan.network, &model, None);
    assert_eq!(
        creates(&fresh),
        [
            json!({"topology": "hubAndSpoke", "hub": "edge-a", "devices": ["edge-a", "edge-b", "edge-c"], "cost": 1})
        ]
    );
}

#[test]
fn flexi_refuses_encryption_it_cannot_promise_and_honours_costs() {
    let mut net = flexi_net(full_mesh());
    if let Some(s) = net.spec.backend.sdwan.as_mut() {
        s.encryption = true;
    }
    let plan = fixtures::plan(&net, &members(&["a", "b", "c"]), &[]);
    let issues = backend().validate(&plan);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].field, "spec.backend.sdwan.encryption");
    let costly = TopologySpec {
        kind: federation_core::api::TopologyKind::Explicit,
        default_cost: None,
        hub_spoke: None,
        explicit: Some(ExplicitSpec {
            links: vec![ExplicitLink {
                dialer: "a".into(),
                acceptor: "b".into(),
                cost: Some(5),
            }],
        }),
    };
    let plan = fixtures::plan(&flexi_net(costly), &members(&["a", "b", "c"]), &[]);
    assert!(backend().validate(&plan).is_empty());
    let model = SdwanModel::from_plan(&plan).unwrap();
    assert_eq!(
        creates(&fleximanage::render(&plan.network, &model, None)),
        [json!({"topology": "fullMesh", "hub": null, "devices": ["edge-a", "edge-b"], "cost": 5})]
    );
}
