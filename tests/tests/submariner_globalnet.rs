//! What a Submariner network refuses, and Globalnet, on real control planes with the real
//! operator: overlapping CIDRs are refused (nothing written anywhere) until Globalnet is on;
//! then every member gets a distinct global CIDR that it keeps while others leave. A topology
//! other than a full mesh and a service restricted to some consumers are refused too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use federation_core::api::{FederatedNetwork, MemberCluster};
use federation_tests::skupper_env::condition;
use federation_tests::submariner_env::{
    BROKER, BROKER_NS, MEMBERS, OPERATOR_NS, SubmarinerEnv, cidrs, resource,
};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

async fn refused(env: &SubmarinerEnv, name: &str) -> (String, String) {
    env.drive_until(name, "refused", Duration::from_secs(30), async || {
        env.network(name)
            .await
            .and_then(|n: FederatedNetwork| condition(&n, "Ready"))
            .filter(|c| c.0 == "False" && c.1 == "Unsupported")
            .map(|c| (c.1, c.2))
    })
    .await
}

async fn nothing_written(env: &SubmarinerEnv, network: &str) {
    for c in MEMBERS.iter().chain([&BROKER]) {
        assert_eq!(env.labelled(network, c).await, BTreeSet::new(), "{c}");
    }
    for m in MEMBERS {
        assert!(env.submariner(m).await.is_none(), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlaps_need_globalnet_and_get_distinct_stable_global_cidrs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,kube=warn")
        .try_init();
    let env = SubmarinerEnv::start().await;
    let ns = "shop";

    // Only a full mesh.
    env.create_network("spokes", &MEMBERS, ns, json!({})).await;
    env.patch_network(
        "spokes",
        json!({"topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["central"]}}}),
    )
    .await;
    let (_, message) = refused(&env, "spokes").await;
    assert!(message.contains("full mesh"), "{message}");
    nothing_written(&env, "spokes").await;
    env.delete_network("spokes").await;
    env.drive_until(
        "spokes",
        "refused network deleted",
        Duration::from_secs(30),
        async || env.network("spokes").await.is_none().then_some(()),
    )
    .await;

    // west takes central's CIDRs: refused without Globalnet, and nothing is written.
    let (pods, services) = cidrs(0);
    Api::<MemberCluster>::all(env.hub.clone())
        .patch(
            "west",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"network": {"podCidrs": [pods], "serviceCidrs": [services]}}}),
            ),
        )
        .await
        .unwrap();
    env.create_network("mesh", &MEMBERS, ns, json!({})).await;
    let (_, message) = refused(&env, "mesh").await;
    assert!(
        message.contains("central and west overlap in 10.1.0.0/16"),
        "{message}"
    );
    assert!(message.contains("Globalnet"), "{message}");
    nothing_written(&env, "mesh").await;

    // With Globalnet: every member joins with its own block of the range.
    env.patch_network(
        "mesh",
        json!({"backend": {"submariner": {"broker": BROKER, "globalnet": true, "globalnetCidrRange": "242.1.0.0/16", "globalnetClusterSize": 4096}}}),
    )
    .await;
    env.converge("mesh").await;
    let mut blocks = BTreeMap::new();
    for m in MEMBERS {
        let cr = env.submariner(m).await.unwrap();
        let cidr = cr.data["spec"]["globalCIDR"].as_str().unwrap().to_owned();
        assert!(
            cidr.starts_with("242.1.") && cidr.ends_with("/20"),
            "{m}: {cidr}"
        );
        assert_eq!(
            cr.data["status"]["globalCIDR"],
            cidr.as_str(),
            "{m}: the operator took it"
        );
        let daemonsets = env
            .names(
                m,
                &resource("apps", "v1", "DaemonSet", "daemonsets"),
                OPERATOR_NS,
            )
            .await;
        assert!(
            daemonsets.contains("submariner-globalnet"),
            "{m}: {daemonsets:?}"
        );
        blocks.insert(m, cidr);
    }
    assert_eq!(
        blocks.values().collect::<BTreeSet<_>>().len(),
        3,
        "distinct: {blocks:?}"
    );
    // The broker's operator reconciled the Broker's Globalnet settings.
    let configmaps = env
        .names(
            BROKER,
            &resource("", "v1", "ConfigMap", "configmaps"),
            BROKER_NS,
        )
        .await;
    assert!(
        configmaps.contains("submariner-globalnet-info"),
        "{configmaps:?}"
    );

    // central leaves: east and west keep their blocks.
    env.patch_network("mesh", json!({"members": {"names": ["east", "west"]}}))
        .await;
    env.converge("mesh").await;
    for m in ["east", "west"] {
        let cr = env.submariner(m).await.unwrap();
        assert_eq!(
            cr.data["spec"]["globalCIDR"],
            blocks[m].as_str(),
            "{m} kept its block"
        );
    }

    // MCS exports to the whole cluster set: a service for some consumers only is refused.
    env.run_orders("east", ns).await;
    env.share_orders("mesh", ns, "east", Some(json!({"names": ["west"]})))
        .await;
    let reason = env
        .drive_until(
            "mesh",
            "service refused",
            Duration::from_secs(30),
            async || {
                let svc = env.services().get("mesh-orders").await.unwrap();
                let ready = svc
                    .status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == "Ready")?;
                (ready.status == "False").then_some((ready.reason, ready.message))
            },
        )
        .await;
    assert_eq!(reason.0, "ConsumersUnsupported", "{reason:?}");
    let exports = resource(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceExport",
        "serviceexports",
    );
    assert!(env.names("east", &exports, ns).await.is_empty());
}
