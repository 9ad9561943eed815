//! What the operator costs the API servers at rest, on real control planes: passes keep
//! running (every second here, to make the point), but they read the watch-fed caches, so
//! the hub and the members see no LIST and no GET of any kind fednet reads; only the member
//! probes (`/version`, `/apis`), the watches themselves and the Lease remain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{ConditionExt, FederatedNetwork, READY};
use federation_testkit::Cluster;
use federation_tests::operator_env::metrics::{apiserver_metrics, parse, sum};
use federation_tests::operator_env::{FedEnv, OperatorOptions, OperatorProcess};
use std::collections::BTreeMap;
use std::time::Duration;

/// What fednet reads on the hub: its kinds and the members' kubeconfig Secrets.
const HUB_RESOURCES: &[&str] = &[
    "memberclusters",
    "federatednetworks",
    "federatedservices",
    "secrets",
];
/// What the Skupper backend reads in members.
const MEMBER_RESOURCES: &[&str] = &[
    "sites",
    "links",
    "accessgrants",
    "accesstokens",
    "certificates",
    "connectors",
    "listeners",
    "secrets",
    "namespaces",
];

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == net.metadata.generation
    })
}

/// LIST and GET requests an API server answered so far, per resource among `resources`.
async fn reads(cluster: &Cluster, resources: &[&str]) -> BTreeMap<String, f64> {
    let samples = apiserver_metrics(cluster).await.unwrap();
    resources
        .iter()
        .map(|r| {
            let n: f64 = ["LIST", "GET"]
                .iter()
                .map(|verb| {
                    sum(
                        &samples,
                        "apiserver_request_total",
                        &[("verb", verb), ("resource", r)],
                    )
                })
                .sum();
            ((*r).to_owned(), n)
        })
        .collect()
}

fn network_passes(text: &str) -> f64 {
    sum(
        &parse(text),
        "fednet_reconciles_total",
        &[("kind", "FederatedNetwork")],
    )
}

#[tokio::test]
async fn passes_at_rest_send_no_list_or_get_beyond_probes_watches_and_the_lease() {
    let mut env = FedEnv::start(3).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let mut options = OperatorOptions::fast("at-rest");
    options.extra_args = vec!["--requeue-converged=1s".into()];
    let op = OperatorProcess::start(&env, options, logs.path())
        .await
        .unwrap();
    op.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.apply_network().await.unwrap();
    env.wait_network("Ready", Duration::from_secs(120), ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(60)));
    // Only the operator talks to the clusters from here on (the Skupper stand-in is stopped,
    // its Sites stay Ready) and the test itself reads nothing but /metrics.
    env.stop_double();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let passes_before = network_passes(&op.metrics().await.unwrap());
    let hub_before = reads(env.hub(), HUB_RESOURCES).await;
    let mut members_before = Vec::new();
    for m in env.member_clusters() {
        members_before.push(reads(m, MEMBER_RESOURCES).await);
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let passes = network_passes(&op.metrics().await.unwrap()) - passes_before;
    let hub_after = reads(env.hub(), HUB_RESOURCES).await;

    assert!(
        passes >= 4.0,
        "only {passes} passes at rest: nothing was measured"
    );
    assert_eq!(
        hub_before, hub_after,
        "hub reads at rest over {passes} passes"
    );
    for (m, before) in env.member_clusters().iter().zip(&members_before) {
        let after = reads(m, MEMBER_RESOURCES).await;
        assert_eq!(
            before,
            &after,
            "reads of member {} at rest over {passes} passes",
            m.name()
        );
    }
    let text = op.metrics().await.unwrap();
    // The network is still Ready: the passes read a true picture from the caches.
    let net = env.network().await.unwrap();
    assert!(ready(&net), "{:?}", net.status);
    assert!(
        sum(&parse(&text), "fednet_member_reachable", &[]) >= 3.0,
        "{text}"
    );
}
