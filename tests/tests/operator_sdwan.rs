//! The operator binary with an SD-WAN network: a hub and members on real control planes, a
//! real Headscale with a real Tailscale edge per member, the operator run as a child process.
//! Proves the operator's wiring of the SD-WAN backend (its engine, the credentials read from
//! the hub under the chart's RBAC namespace, the inventory of a controller target) end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{ConditionExt, FederatedNetwork, LinkPhase, READY};
use federation_tests::operator_env::sdwan::{self, ADMIN_POLICY};
use federation_tests::operator_env::{
    FedEnv, HUB_NAMESPACE, NETWORK, OperatorOptions, OperatorProcess,
};
use kube::api::{Api, DeleteParams};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(120);

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == net.metadata.generation
    })
}

#[tokio::test]
async fn the_operator_connects_the_edges_through_headscale_and_removes_its_part_on_delete() {
    let env = FedEnv::start(2).await.unwrap();
    let headscale = sdwan::prepare(&env).await.unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut op = OperatorProcess::start(&env, OperatorOptions::fast("sdwan"), logs.path())
        .await
        .unwrap();
    op.wait_ready(Duration::from_secs(60)).await.unwrap();
    sdwan::apply_network(&env, &headscale).await.unwrap();

    let net = env
        .wait_network("Ready", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(60)));
    let status = net.status.unwrap();
    assert_eq!(status.links.len(), 1, "{status:?}");
    assert!(status.links.iter().all(|l| l.phase == LinkPhase::Up));
    let inventory = status.inventory.unwrap();
    assert!(
        inventory.targets.iter().any(|t| t.name == headscale.url()),
        "{inventory:?}"
    );
    let policy = headscale.cli(&["policy", "get"]).await.unwrap();
    assert!(
        policy.contains(&format!("// fednet:begin {HUB_NAMESPACE}/{NETWORK} ")),
        "{policy}"
    );
    assert!(
        policy.contains("192.168.60.10/32:22"),
        "the administrators' rule stays"
    );

    // Deleting the network removes fednet's part, then the finalizer goes.
    let nets: Api<FederatedNetwork> = Api::namespaced(env.hub().client(), HUB_NAMESPACE);
    nets.delete(NETWORK, &DeleteParams::default())
        .await
        .unwrap();
    let started = Instant::now();
    while nets.get_opt(NETWORK).await.unwrap().is_some() {
        assert!(
            started.elapsed() < CONVERGE,
            "not deleted:\n{}",
            op.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let policy = headscale.cli(&["policy", "get"]).await.unwrap();
    assert_eq!(policy.strip_suffix('\n').unwrap_or(&policy), ADMIN_POLICY);
    op.terminate(Duration::from_secs(30)).await.unwrap();
}
