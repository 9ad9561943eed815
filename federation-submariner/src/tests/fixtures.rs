//! Plans and observations for the pure tests.

use crate::kinds::{self, BROKER_NAMESPACE, OPERATOR_NAMESPACE};
use crate::names::{self, API_SERVER_ANNOTATION, TOKEN_EXPIRES_ANNOTATION};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use federation_core::backend::{Observed, ObservedObject, Target};
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::{NetworkPlan, PlanInput, plan};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const NS: &str = "shop";
pub const HUB_NS: &str = "fednet-system";
pub const NOW: u64 = 1_900_000_000;
pub const MEMBERS: [&str; 3] = ["central", "east", "west"];

/// A member whose pod CIDR is 10.<i>.0.0/16 and service CIDR 10.10<i>.0.0/16.
pub fn member(name: &str, i: u8) -> MemberCluster {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
        "spec": {"clusterId": format!("id-{name}"), "kubeconfigSecretRef": {"namespace": HUB_NS, "name": name},
                 "network": {"podCidrs": [format!("10.{i}.0.0/16")], "serviceCidrs": [format!("10.10{i}.0.0/16")]}}
    }))
    .unwrap()
}

pub fn members() -> Vec<MemberCluster> {
    MEMBERS
        .iter()
        .enumerate()
        .map(|(i, m)| member(m, i as u8))
        .collect()
}

pub fn network(topology: Value, submariner: Value) -> FederatedNetwork {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": "mesh", "namespace": HUB_NS, "generation": 1},
        "spec": {"backend": {"type": "Submariner", "submariner": submariner}, "members": {"names": MEMBERS},
                 "namespaces": [NS], "topology": topology}
    }))
    .unwrap()
}

pub fn orders(consumers: Option<Value>) -> FederatedService {
    let mut spec = json!({"network": "mesh", "namespace": NS, "serviceName": "orders",
                          "exporters": [{"member": "east", "selector": {"app": "orders"}}],
                          "ports": [{"name": "http", "port": 80}]});
    if let Some(c) = consumers {
        spec["consumers"] = c;
    }
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
        "metadata": {"name": "orders", "namespace": HUB_NS}, "spec": spec
    }))
    .unwrap()
}

pub fn plan_of(
    net: &FederatedNetwork,
    members: &[MemberCluster],
    services: &[FederatedService],
) -> NetworkPlan {
    plan(PlanInput {
        network: net,
        member_clusters: members,
        services,
        unhealthy: &Default::default(),
    })
    .unwrap()
}

pub fn mesh_plan(submariner: Value) -> NetworkPlan {
    plan_of(
        &network(json!({"type": "FullMesh"}), submariner),
        &members(),
        &[orders(None)],
    )
}

pub fn default_plan() -> NetworkPlan {
    mesh_plan(json!({"broker": "hub"}))
}

pub fn broker() -> Target {
    Target::Broker("hub".into())
}

pub fn member_target(m: &str) -> Target {
    Target::Member(m.into())
}

pub fn labels() -> Value {
    json!({"fednet.io/network": "fednet-system.mesh", "app.kubernetes.io/managed-by": "fednet-operator"})
}

pub fn object(
    kind: &ManagedKind,
    ns: Option<&str>,
    name: &str,
    body: Value,
    owned: bool,
) -> ObservedObject {
    let key = match ns {
        Some(ns) => kinds::key(kind, ns, name),
        None => kinds::cluster_key(kind, name),
    };
    ObservedObject { key, body, owned }
}

/// A broker token Secret as `apply` leaves it, expiring at `expires`.
pub fn token_secret(cluster_id: &str, expires: u64) -> ObservedObject {
    let name = names::cluster_token(cluster_id);
    object(
        &kinds::SECRET,
        Some(BROKER_NAMESPACE),
        &name,
        json!({"metadata": {"name": name, "namespace": BROKER_NAMESPACE, "uid": format!("uid-{name}"), "labels": labels(),
                "annotations": {TOKEN_EXPIRES_ANNOTATION: expires.to_string(), API_SERVER_ANNOTATION: "127.0.0.1:6443"}},
               "type": "Opaque", "data": {"token": format!("dG9rZW4t{cluster_id}"), "ca.crt": "Q0E="}}),
        true,
    )
}

pub fn hub_psk() -> ObservedObject {
    object(
        &kinds::SECRET,
        Some(HUB_NS),
        "mesh-submariner-psk",
        json!({"metadata": {"name": "mesh-submariner-psk", "namespace": HUB_NS}, "data": {"psk": "cHNr"}}),
        false,
    )
}

pub fn account(cluster_id: &str, global_cidr: Option<&str>) -> ObservedObject {
    let name = names::cluster_account(cluster_id);
    let mut meta = json!({"name": name, "namespace": BROKER_NAMESPACE, "labels": labels()});
    if let Some(c) = global_cidr {
        meta["annotations"] = json!({names::GLOBAL_CIDR_ANNOTATION: c});
    }
    object(
        &kinds::SERVICE_ACCOUNT,
        Some(BROKER_NAMESPACE),
        &name,
        json!({"metadata": meta}),
        true,
    )
}

/// The broker after a pass that minted every member's token.
pub fn broker_observed(expires: u64) -> Observed {
    let mut objects = vec![hub_psk()];
    for m in MEMBERS {
        objects.push(token_secret(&format!("id-{m}"), expires));
        objects.push(account(&format!("id-{m}"), None));
    }
    Observed::of(objects)
}

/// A member whose Submariner the operator reconciled.
pub fn joined(m: &str) -> ObservedObject {
    object(
        &kinds::SUBMARINER,
        Some(OPERATOR_NAMESPACE),
        "submariner",
        json!({"metadata": {"name": "submariner", "namespace": OPERATOR_NAMESPACE, "labels": labels()},
               "status": {"clusterID": format!("id-{m}"), "clusterCIDR": "10.0.0.0/16"}}),
        true,
    )
}

/// The active gateway of member `m` connected to `peers` with `status`.
pub fn gateway(m: &str, peers: &[(&str, &str)]) -> ObservedObject {
    let connections: Vec<Value> = peers
        .iter()
        .map(|(p, status)| json!({"status": status, "statusMessage": "", "endpoint": {"cluster_id": format!("id-{p}"), "cable_name": format!("submariner-cable-{p}")},
                                  "latencyRTT": {"last": "1ms"}}))
        .collect();
    object(
        &kinds::GATEWAY,
        Some(OPERATOR_NAMESPACE),
        &format!("{m}-node"),
        json!({"metadata": {"name": format!("{m}-node")},
               "status": {"haStatus": "active", "localEndpoint": {"cluster_id": format!("id-{m}"), "cable_name": format!("submariner-cable-{m}")},
                          "connections": connections}}),
        false,
    )
}

pub fn observed_all(
    broker: Observed,
    members: impl IntoIterator<Item = (&'static str, Vec<ObservedObject>)>,
) -> BTreeMap<Target, Observed> {
    let mut out = BTreeMap::from([(self::broker(), broker)]);
    for (m, objects) in members {
        out.insert(member_target(m), Observed::of(objects));
    }
    out
}
