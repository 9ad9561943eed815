//! Hub failover on real control planes: a hub-and-spoke network with two hubs, each spoke
//! dialling one (`hubsPerSpoke: 1`). The API server of the hub most spokes dial is paused;
//! those spokes must be Up through the other hub within about one probe interval, long
//! before the failure threshold (3 probes and 60 s here) declares the hub Unreachable, and
//! without anything being taken from the paused hub. Resumed, the spokes go back to one
//! hub each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{
    ConditionExt, FederatedNetwork, LinkPhase, MemberCluster, REACHABLE, READY, RESPONDING,
};
use federation_core::cluster::REASON_PROBE_FAILING;
use federation_tests::operator_env::{
    APP_NAMESPACE, FedEnv, HUB_NAMESPACE, NETWORK, OperatorOptions, OperatorProcess, apply_json,
};
use kube::api::Api;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const HUBS: [&str; 2] = ["central", "east"];
const CONVERGE: Duration = Duration::from_secs(120);
/// The tests' probe interval and timeout (`FAST_FLAGS`).
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == net.metadata.generation
    })
}

/// Per spoke, the hubs it has an Up link to.
fn up_hubs(net: &FederatedNetwork) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in net.status.iter().flat_map(|s| &s.links) {
        if HUBS.contains(&l.acceptor.as_str())
            && !HUBS.contains(&l.dialer.as_str())
            && l.phase == LinkPhase::Up
        {
            out.entry(l.dialer.clone())
                .or_default()
                .insert(l.acceptor.clone());
        }
    }
    out
}

#[tokio::test]
async fn spokes_of_a_paused_hub_are_up_through_the_other_hub_within_a_probe_interval() {
    let mut env = FedEnv::start(6).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let op = OperatorProcess::start(&env, OperatorOptions::fast("failover"), logs.path())
        .await
        .unwrap();
    op.wait_ready(Duration::from_secs(60)).await.unwrap();
    let network = json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": NETWORK, "namespace": HUB_NAMESPACE},
        "spec": {
            "backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct"}},
            "members": {"selector": {"matchLabels": {"env": "prod"}}},
            "namespaces": [APP_NAMESPACE],
            "topology": {"type": "HubSpoke",
                         "hubSpoke": {"hubs": HUBS, "hubsPerSpoke": 1, "spokeCost": 1}}
        }
    });
    apply_json(&env.hub().client(), &network).await.unwrap();
    let net = env
        .wait_network("Ready", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(60)));
    let before = up_hubs(&net);
    assert_eq!(before.len(), 4, "every spoke is Up: {before:?}");
    assert!(before.values().all(|hubs| hubs.len() == 1), "{before:?}");
    // The hub most spokes dial.
    let dialled = |hub: &str| before.values().filter(|h| h.contains(hub)).count();
    let paused = *HUBS.iter().max_by_key(|h| dialled(h)).unwrap();
    let other = HUBS.iter().find(|h| **h != paused).unwrap().to_owned();
    let moved: Vec<String> = before
        .iter()
        .filter(|(_, hubs)| hubs.contains(paused))
        .map(|(spoke, _)| spoke.clone())
        .collect();
    assert!(!moved.is_empty());

    let hub_cluster = env.member(paused).unwrap();
    hub_cluster.pause().unwrap();
    let paused_at = Instant::now();
    let failed_over = |net: &FederatedNetwork| {
        let now = up_hubs(net);
        moved
            .iter()
            .all(|s| now.get(s).is_some_and(|hubs| hubs.contains(other)))
    };
    let result = env
        .wait_network("spokes Up through the other hub", CONVERGE, failed_over)
        .await;
    let took = paused_at.elapsed();
    let members: Api<MemberCluster> = Api::all(env.hub().client());
    let reachable = members.get(paused).await.unwrap();
    hub_cluster.resume().unwrap();
    result.unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(80)));
    println!(
        "{} spokes Up through {other} {took:?} after {paused} was paused",
        moved.len()
    );
    // Not by the failure threshold: the hub is still Reachable (its verdict stands until the
    // threshold), only no longer Responding.
    let condition = |type_: &str| {
        reachable
            .status
            .as_ref()
            .and_then(|s| s.conditions.condition(type_))
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap()
    };
    assert_eq!(condition(REACHABLE), ("True".into(), "Probed".into()));
    assert_eq!(
        condition(RESPONDING),
        ("False".into(), REASON_PROBE_FAILING.into())
    );
    // One probe interval, its timeout, and a few passes on a loaded two-core machine.
    let bound = PROBE_INTERVAL + PROBE_TIMEOUT + Duration::from_secs(12);
    assert!(took < bound, "failover took {took:?} (bound {bound:?})");

    // Back: nothing was taken from the hub while it was paused, and each spoke dials one hub
    // again.
    let back = env
        .wait_network("Ready with one hub per spoke", CONVERGE, |n| {
            ready(n) && up_hubs(n).values().all(|h| h.len() == 1)
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(80)));
    assert_eq!(up_hubs(&back), before);
}
