//! Planner benchmarks: how long the pure planning steps take for large networks.
//!
//! One function per case so that cases can be added (and run alone with a filter, e.g.
//! `cargo bench -p federation-core --bench planner -- topology/full_mesh`) independently.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use federation_core::plan::{PlanInput, plan};
use federation_core::topology::{MemberNode, Strategy, build};
use serde_json::json;
use std::collections::BTreeSet;

/// Members of the large-network cases: `spec.members.names` allows at most 1,000.
const MEMBERS: usize = 1_000;

/// `n` healthy members named `member-0000` ..., listed in reverse so that the benchmark
/// includes putting them in order.
fn members(n: usize) -> Vec<MemberNode> {
    let mut members: Vec<MemberNode> = (0..n)
        .map(|i| MemberNode::new(format!("member-{i:04}"), true))
        .collect();
    members.reverse();
    members
}

/// Full mesh of 1,000 members: 499,500 links, the worst case the API allows.
fn topology_full_mesh(c: &mut Criterion) {
    let members = members(MEMBERS);
    let strategy = Strategy::FullMesh { cost: 1 };
    let mut group = c.benchmark_group("topology");
    // Each iteration takes tens of milliseconds: fewer samples keep the run short.
    group.sample_size(20);
    group.bench_function("full_mesh_1000", |b| {
        b.iter(|| build(black_box(&strategy), black_box(&members)))
    });
    group.finish();
}

/// Hub-and-spoke of 1,000 members, 3 hubs, each spoke dialing 2 of them: 1,997 links.
fn topology_hub_spoke(c: &mut Criterion) {
    let members = members(MEMBERS);
    let strategy = Strategy::HubSpoke {
        hubs: vec![
            "member-0000".into(),
            "member-0001".into(),
            "member-0002".into(),
        ],
        hubs_per_spoke: Some(2),
        spoke_cost: 1,
        hub_cost: 1,
    };
    c.bench_function("topology/hub_spoke_1000_3hubs_k2", |b| {
        b.iter(|| build(black_box(&strategy), black_box(&members)))
    });
}

fn member_clusters(n: usize) -> Vec<MemberCluster> {
    (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
                "metadata": {"name": format!("member-{i:04}"), "labels": {"env": "prod"}},
                "spec": {"clusterId": format!("member-{i:04}"),
                         "kubeconfigSecretRef": {"namespace": "fednet-system", "name": format!("member-{i:04}")}}
            }))
            .unwrap_or_else(|e| unreachable!("fixture is valid: {e}"))
        })
        .collect()
}

fn network(topology: serde_json::Value) -> FederatedNetwork {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": "net", "namespace": "fednet-system"},
        "spec": {"backend": {"type": "Skupper"}, "members": {"selector": {"matchLabels": {"env": "prod"}}},
                 "namespaces": ["apps"], "topology": topology}
    }))
    .unwrap_or_else(|e| unreachable!("fixture is valid: {e}"))
}

/// `n` services, each exported from one member and consumed by every member, two ports.
fn services(n: usize, members: usize) -> Vec<FederatedService> {
    (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
                "metadata": {"name": format!("svc-{i:05}"), "namespace": "fednet-system"},
                "spec": {"network": "net", "namespace": "apps", "serviceName": format!("svc-{i:05}"),
                         "exporters": [{"member": format!("member-{:04}", i % members), "selector": {"app": format!("svc-{i:05}")}}],
                         "ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}]}
            }))
            .unwrap_or_else(|e| unreachable!("fixture is valid: {e}"))
        })
        .collect()
}

/// The whole plan (member selection by label, topology, 10,000 services with consumers and
/// routing keys) of a 1,000-member hub-and-spoke network.
fn plan_hub_spoke_with_services(c: &mut Criterion) {
    let members = member_clusters(MEMBERS);
    let net = network(json!({"type": "HubSpoke", "hubSpoke": {
        "hubs": ["member-0000", "member-0001", "member-0002"], "hubsPerSpoke": 2}}));
    let services = services(10_000, MEMBERS);
    let unhealthy = BTreeSet::new();
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("hub_spoke_1000_members_10000_services", |b| {
        b.iter(|| {
            plan(black_box(PlanInput {
                network: &net,
                member_clusters: &members,
                services: &services,
                unhealthy: &unhealthy,
            }))
        })
    });
    group.finish();
}

/// The whole plan of a 1,000-member full mesh (no services).
fn plan_full_mesh(c: &mut Criterion) {
    let members = member_clusters(MEMBERS);
    let net = network(json!({"type": "FullMesh"}));
    let unhealthy = BTreeSet::new();
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("full_mesh_1000_members", |b| {
        b.iter(|| {
            plan(black_box(PlanInput {
                network: &net,
                member_clusters: &members,
                services: &[],
                unhealthy: &unhealthy,
            }))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    topology_full_mesh,
    topology_hub_spoke,
    plan_hub_spoke_with_services,
    plan_full_mesh
);
criterion_main!(benches);
