//! Planner benchmarks: how long the pure planning steps take for large networks.
//!
//! One function per case so that cases can be added (and run alone with a filter, e.g.
//! `cargo bench -p federation-core --bench planner -- topology/full_mesh`) independently.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use federation_core::topology::{MemberNode, Strategy, build};

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

criterion_group!(benches, topology_full_mesh, topology_hub_spoke);
criterion_main!(benches);
