//! The fednet.io CRDs on a real kube-apiserver: valid objects are accepted, and the CEL
//! rules reject what the schema alone cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster, crds};
use federation_testkit::{Cluster, ControlPlanes};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

async fn hub() -> ControlPlanes {
    ControlPlanes::builder()
        .clusters(1)
        .crds(crds())
        .start()
        .await
        .expect("control plane starts")
}

fn api(cluster: &Cluster, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("fednet.io", "v1alpha1", kind);
    let resource = ApiResource::from_gvk(&gvk);
    match namespace {
        Some(ns) => Api::namespaced_with(cluster.client(), ns, &resource),
        None => Api::all_with(cluster.client(), &resource),
    }
}

async fn create(api: &Api<DynamicObject>, body: Value) -> Result<DynamicObject, String> {
    let obj: DynamicObject = serde_json::from_value(body).unwrap();
    api.create(&PostParams::default(), &obj)
        .await
        .map_err(|e| e.to_string())
}

fn network(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork", "metadata": {"name": name}, "spec": spec})
}

fn valid_network_spec() -> Value {
    json!({
        "backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct", "ha": false}},
        "members": {"names": ["a", "b", "c"]},
        "namespaces": ["apps"],
        "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["a"], "hubsPerSpoke": 1}}
    })
}

/// `base` with the field at `pointer` set (created when its parent exists).
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, field) = pointer.rsplit_once('/').unwrap();
    base.pointer_mut(parent).unwrap()[field] = value;
    base
}

#[tokio::test]
async fn valid_objects_are_accepted_and_typed_clients_read_them() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    let ns = hub.test_namespace().await.unwrap();

    let member = json!({"apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": "a"},
        "spec": {"clusterId": "a", "kubeconfigSecretRef": {"namespace": "fednet-system", "name": "a-kubeconfig"},
                 "network": {"podCidrs": ["10.0.0.0/16"], "serviceCidrs": ["10.96.0.0/12"]}}});
    create(&api(hub, "MemberCluster", None), member)
        .await
        .unwrap();
    create(
        &api(hub, "FederatedNetwork", Some(&ns)),
        network("net", valid_network_spec()),
    )
    .await
    .unwrap();
    let service = json!({"apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService", "metadata": {"name": "db"},
        "spec": {"network": "net", "namespace": "apps", "serviceName": "db",
                 "exporters": [{"member": "a", "selector": {"app": "db"}}],
                 "ports": [{"name": "pg", "port": 5432}]}});
    create(&api(hub, "FederatedService", Some(&ns)), service)
        .await
        .unwrap();

    // The typed API reads back what was written.
    let mc = Api::<MemberCluster>::all(hub.client())
        .get("a")
        .await
        .unwrap();
    assert_eq!(mc.spec.cluster_id, "a");
    let net = Api::<FederatedNetwork>::namespaced(hub.client(), &ns)
        .get("net")
        .await
        .unwrap();
    assert_eq!(net.spec.topology.hub_spoke.unwrap().hubs, ["a"]);
    let svc = Api::<FederatedService>::namespaced(hub.client(), &ns)
        .get("db")
        .await
        .unwrap();
    assert_eq!(svc.spec.ports[0].port, 5432);
}

#[tokio::test]
async fn cel_rules_reject_what_the_schema_cannot() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    let ns = hub.test_namespace().await.unwrap();
    let nets = api(hub, "FederatedNetwork", Some(&ns));
    let base = valid_network_spec();

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "hub-not-member",
            with(base.clone(), "/topology/hubSpoke/hubs", json!(["z"])),
            "every hub must be one of spec.members.names",
        ),
        (
            "self-link",
            with(
                base.clone(),
                "/topology",
                json!({"type": "Explicit", "explicit": {"links": [{"dialer": "a", "acceptor": "a"}]}}),
            ),
            "a link's ends must differ",
        ),
        (
            "duplicate-link",
            with(
                base.clone(),
                "/topology",
                json!({"type": "Explicit", "explicit": {"links": [
                {"dialer": "a", "acceptor": "b"}, {"dialer": "a", "acceptor": "b", "cost": 3}]}}),
            ),
            "Duplicate value",
        ),
        (
            "wrong-settings",
            with(
                base.clone(),
                "/backend",
                json!({"type": "Skupper", "submariner": {"broker": "a"}}),
            ),
            "submariner settings are only allowed when type is Submariner",
        ),
        (
            "submariner-without-broker",
            with(base.clone(), "/backend", json!({"type": "Submariner"})),
            "a Submariner network needs submariner settings",
        ),
        (
            "too-many-hubs-per-spoke",
            with(base.clone(), "/topology/hubSpoke/hubsPerSpoke", json!(2)),
            "hubsPerSpoke cannot exceed the number of hubs",
        ),
        (
            "no-members",
            with(base.clone(), "/members", json!({"names": []})),
            "select members by names, a selector, or both",
        ),
        (
            "dup-namespaces",
            with(base.clone(), "/namespaces", json!(["apps", "apps"])),
            "Duplicate value",
        ),
        (
            "bad-namespace",
            with(base.clone(), "/namespaces", json!(["Apps"])),
            "should match",
        ),
        (
            "zero-cost",
            with(base.clone(), "/topology/hubSpoke/hubCost", json!(0)),
            "should be greater than or equal to 1",
        ),
    ];
    for (name, spec, expected) in cases {
        let err = create(&nets, network(name, spec)).await.expect_err(name);
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in {err}"
        );
    }

    let services = api(hub, "FederatedService", Some(&ns));
    let service = |ports: Value, exporters: Value| {
        json!({"apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService", "metadata": {"generateName": "s-"},
            "spec": {"network": "net", "namespace": "apps", "serviceName": "db", "exporters": exporters, "ports": ports}})
    };
    let one_exporter = json!([{"member": "a", "host": "db.local"}]);
    let err = create(
        &services,
        service(
            json!([{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
            one_exporter.clone(),
        ),
    )
    .await
    .unwrap_err();
    assert!(err.contains("ports must be unique"), "{err}");
    let err = create(
        &services,
        service(
            json!([{"name": "a", "port": 80}]),
            json!([{"member": "a", "host": "x", "selector": {"app": "x"}}]),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("give exactly one of selector or host"),
        "{err}"
    );
    create(
        &services,
        service(json!([{"name": "a", "port": 80}]), one_exporter),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn cluster_id_is_immutable() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    let members = api(hub, "MemberCluster", None);
    let member = |id: &str| {
        json!({"apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": "m"},
            "spec": {"clusterId": id, "kubeconfigSecretRef": {"namespace": "fednet-system", "name": "m"}}})
    };
    let err = create(
        &members,
        with(member("x"), "/spec/clusterId", json!("Not_A_Label")),
    )
    .await
    .unwrap_err();
    assert!(err.contains("clusterId must be a DNS-1123 label"), "{err}");
    create(&members, member("first")).await.unwrap();
    let err = members
        .patch(
            "m",
            &PatchParams::apply("test").force(),
            &Patch::Apply(member("second")),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("clusterId is immutable"), "{err}");
}

/// Changing a network's backend would leave every object of the old one behind, so the API
/// server refuses it; other spec changes go through.
#[tokio::test]
async fn backend_type_is_immutable() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    let ns = hub.test_namespace().await.unwrap();
    let networks = api(hub, "FederatedNetwork", Some(&ns));
    create(&networks, network("net", valid_network_spec()))
        .await
        .unwrap();
    let to_submariner = json!({"spec": {"backend": {"type": "Submariner", "skupper": null,
                                                     "submariner": {"broker": "a"}}}});
    let err = networks
        .patch(
            "net",
            &PatchParams::default(),
            &Patch::Merge(&to_submariner),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.backend.type is immutable"), "{err}");
    let more_namespaces = json!({"spec": {"namespaces": ["apps", "more"]}});
    networks
        .patch(
            "net",
            &PatchParams::default(),
            &Patch::Merge(&more_namespaces),
        )
        .await
        .unwrap();
}
