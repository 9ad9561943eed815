//! Plans and observed objects for the pure tests.

use crate::kinds::{self, LINK, SECRET, SITE};
use crate::names;
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster, SkupperSettings};
use federation_core::backend::{Observed, ObservedObject, Target};
use federation_core::plan::{NetworkPlan, PlanInput, plan};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const NS: &str = "shop";

pub fn member(name: &str) -> MemberCluster {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
        "spec": {"clusterId": format!("id-{name}"), "kubeconfigSecretRef": {"namespace": "fednet-system", "name": name}}
    }))
    .unwrap()
}

pub fn network(topology: Value, skupper: SkupperSettings) -> FederatedNetwork {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": "net", "namespace": "fednet-system", "generation": 1},
        "spec": {"backend": {"type": "Skupper", "skupper": skupper}, "members": {"names": ["central", "east", "west"]},
                 "namespaces": [NS], "topology": topology}
    }))
    .unwrap()
}

pub fn hub_spoke() -> Value {
    json!({"type": "HubSpoke", "hubSpoke": {"hubs": ["central"], "spokeCost": 5}})
}

pub fn orders() -> FederatedService {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
        "metadata": {"name": "orders", "namespace": "fednet-system"},
        "spec": {"network": "net", "namespace": NS, "serviceName": "orders",
                 "exporters": [{"member": "east", "selector": {"app": "orders", "tier": "api"}}],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap()
}

pub fn plan_with(topology: Value, settings: SkupperSettings) -> NetworkPlan {
    let net = network(topology, settings);
    let members = [member("central"), member("east"), member("west")];
    let services = [orders()];
    plan(PlanInput {
        network: &net,
        member_clusters: &members,
        services: &services,
        unhealthy: &Default::default(),
    })
    .unwrap()
}

pub fn hub_spoke_plan() -> NetworkPlan {
    plan_with(hub_spoke(), SkupperSettings::default())
}

pub fn target(member: &str) -> Target {
    Target::Member(member.into())
}

fn object(
    kind: &federation_core::kubernetes::ManagedKind,
    name: &str,
    body: Value,
    owned: bool,
) -> ObservedObject {
    ObservedObject {
        key: kinds::key(kind, NS, name),
        body,
        owned,
    }
}

/// A Site as Skupper's controller leaves it once ready, with one router group per entry
/// of `groups`.
pub fn ready_site(plan: &NetworkPlan, groups: &[&str]) -> ObservedObject {
    let endpoints: Vec<Value> = groups
        .iter()
        .flat_map(|g| {
            [
                json!({"name": "inter-router", "host": format!("{g}.example"), "port": "55671", "group": g}),
                json!({"name": "edge", "host": format!("{g}.example"), "port": "45671", "group": g}),
                json!({"name": "claims", "host": format!("{g}.example"), "port": "8081", "group": g}),
            ]
        })
        .collect();
    let status = json!({"defaultIssuer": "skupper-site-ca", "endpoints": endpoints,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "OK"}]});
    object(
        &SITE,
        &names::site(&plan.network),
        json!({"spec": {}, "status": status}),
        true,
    )
}

pub fn cert_secret(name: &str, serial: &str) -> ObservedObject {
    let data = json!({"tls.crt": format!("crt-{serial}"), "tls.key": format!("key-{serial}"), "ca.crt": "ca"});
    object(&SECRET, name, json!({"data": data}), false)
}

pub fn link_object(name: &str, conditions: Value, status: &str) -> ObservedObject {
    object(
        &LINK,
        name,
        json!({"spec": {}, "status": {"status": status, "conditions": conditions}}),
        true,
    )
}

pub fn observed(entries: Vec<(&str, Vec<ObservedObject>)>) -> BTreeMap<Target, Observed> {
    entries
        .into_iter()
        .map(|(m, objects)| (target(m), Observed::of(objects)))
        .collect()
}

/// A Link of the network, as rendered, that dials `acceptor`.
pub fn link_dialing(name: &str, acceptor: &str) -> ObservedObject {
    let mut link = link_object(name, json!([]), "Ready");
    link.body["metadata"]["annotations"] = json!({ crate::render::ACCEPTOR_ANNOTATION: acceptor });
    link
}
