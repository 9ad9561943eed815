//! The fednet operator binary serves a Submariner network: with the real Submariner operator
//! and Lighthouse agents in the clusters, it joins three members to the hub's broker and
//! shares a service to all of them, with nothing driven by the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use federation_tests::skupper_env::is_ready;
use federation_tests::submariner_env::{CONVERGE_WITHIN, MEMBERS, SubmarinerEnv, resource};
use serde_json::json;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_binary_converges_a_submariner_network_and_its_service() {
    let env = SubmarinerEnv::start().await;
    let operator = env.start_fednet_operator().await.unwrap();
    let ns = "shop";
    env.run_orders("east", ns).await;
    for m in ["central", "west"] {
        env.cluster(m).create_namespace(ns).await.unwrap();
    }
    let started = Instant::now();
    env.create_network("mesh", &MEMBERS, ns, json!({})).await;
    env.share_orders("mesh", ns, "east", None).await;
    let imports = resource(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceImport",
        "serviceimports",
    );
    let waited = env
        .wait_for("Ready with 3/3 consumers", CONVERGE_WITHIN, async || {
            let ready = env.network("mesh").await.filter(is_ready).is_some();
            let svc = env.services().get("mesh-orders").await.unwrap();
            let consumers = svc.status.and_then(|s| s.consumers_summary);
            let mut imported = true;
            for m in MEMBERS {
                imported &= env.names(m, &imports, ns).await.contains("orders");
            }
            (ready && consumers.as_deref() == Some("3/3") && imported).then_some(())
        })
        .await;
    if let Err(e) = waited {
        let svc = env.services().get("mesh-orders").await.unwrap().status;
        let mut found = Vec::new();
        for m in MEMBERS {
            found.push((m, env.names(m, &imports, ns).await));
        }
        panic!(
            "{e}\nservice: {svc:#?}\nimports: {found:?}\noperator log:\n{}",
            operator.log_tail(5)
        );
    }
    println!(
        "the operator converged the network and its service in {:?}",
        started.elapsed()
    );
}
