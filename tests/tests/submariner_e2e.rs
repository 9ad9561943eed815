//! A Submariner network on real control planes with the real Submariner operator (v0.21.1) in
//! every cluster and the real Lighthouse agent (v0.20.0) in every member: the join is
//! reconciled by the operator, a shared service reaches every member through the agents and
//! the broker, unexporting removes it, and teardown leaves nothing. Nodes are stood in for
//! (see `federation_tests::submariner_env::node_stand_in`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use federation_tests::submariner_env::{
    BROKER, BROKER_NS, CONVERGE_WITHIN, MEMBERS, OPERATOR_NS, SubmarinerEnv, cidrs, resource,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_joins_shares_a_service_through_lighthouse_and_tears_down() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,kube=warn")
        .try_init();
    let started = Instant::now();
    let env = SubmarinerEnv::start().await;
    let ns = "shop";
    env.create_network("mesh", &MEMBERS, ns, json!({})).await;
    let net = env.converge("mesh").await;
    let joined_after = started.elapsed();

    // Every member's join was accepted and reconciled by the real operator.
    for (i, m) in MEMBERS.iter().enumerate() {
        let cr = env.submariner(m).await.expect("a Submariner");
        let status = &cr.data["status"];
        assert_eq!(status["clusterID"], *m, "{m}: {status}");
        assert_eq!(status["clusterCIDR"], cidrs(i).0, "{m}");
        assert_eq!(status["serviceCIDR"], cidrs(i).1, "{m}");
        let daemonsets = env
            .names(
                m,
                &resource("apps", "v1", "DaemonSet", "daemonsets"),
                OPERATOR_NS,
            )
            .await;
        assert!(
            daemonsets.contains("submariner-gateway")
                && daemonsets.contains("submariner-routeagent"),
            "{m}: {daemonsets:?}"
        );
        let deployments = env
            .names(
                m,
                &resource("apps", "v1", "Deployment", "deployments"),
                OPERATOR_NS,
            )
            .await;
        assert!(
            deployments.contains("submariner-lighthouse-agent"),
            "{m}: {deployments:?}"
        );
        assert!(
            cr.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "controllers.submariner.io/cleanup"),
            "{m}: the operator's cleanup finalizer: {:?}",
            cr.metadata.finalizers
        );
    }
    let status = net.status.unwrap();
    assert_eq!(status.links_summary.as_deref(), Some("3/3"));
    // The broker is the real operator's too: it installed the broker CRDs for the Broker.
    let clusters = env
        .names(
            BROKER,
            &resource("submariner.io", "v1", "Cluster", "clusters"),
            BROKER_NS,
        )
        .await;
    assert_eq!(
        clusters,
        MEMBERS
            .iter()
            .map(|m| (*m).to_owned())
            .collect::<BTreeSet<_>>(),
        "each gateway stand-in reached the broker with its own token"
    );
    println!("joined 3 members in {joined_after:?}");

    // Export from east: the agents carry it through the broker to every member.
    env.run_orders("east", ns).await;
    for m in ["central", "west"] {
        env.cluster(m).create_namespace(ns).await.ok();
    }
    env.share_orders("mesh", ns, "east", None).await;
    let export_started = Instant::now();
    let imports = resource(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceImport",
        "serviceimports",
    );
    env.drive_until(
        "mesh",
        "orders imported everywhere and Ready",
        CONVERGE_WITHIN,
        async || {
            let svc = env.services().get("mesh-orders").await.unwrap();
            let ready = svc
                .status
                .as_ref()
                .and_then(|s| s.consumers_summary.clone())
                == Some("3/3".into());
            let mut everywhere = true;
            for m in MEMBERS {
                everywhere &= env.names(m, &imports, ns).await.contains("orders");
            }
            (ready && everywhere).then_some(())
        },
    )
    .await;
    println!("exported to 3 consumers in {:?}", export_started.elapsed());

    // Unexport: the ServiceExport goes, and the agents remove the imports everywhere.
    env.services()
        .delete("mesh-orders", &Default::default())
        .await
        .unwrap();
    let exports = resource(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceExport",
        "serviceexports",
    );
    env.drive_until(
        "mesh",
        "orders unexported everywhere",
        CONVERGE_WITHIN,
        async || {
            let mut gone = env.names("east", &exports, ns).await.is_empty();
            for m in MEMBERS {
                gone &= !env.names(m, &imports, ns).await.contains("orders");
            }
            gone.then_some(())
        },
    )
    .await;

    // Teardown: exports, joins (after the operator's cleanup), the broker's per-cluster
    // credentials and the gateways' leftovers, then the broker.
    env.delete_network("mesh").await;
    env.drive_until("mesh", "network deleted", CONVERGE_WITHIN, async || {
        env.network("mesh").await.is_none().then_some(())
    })
    .await;
    for m in MEMBERS {
        assert!(
            env.submariner(m).await.is_none(),
            "{m}: the operator released its Submariner"
        );
        assert_eq!(env.labelled("mesh", m).await, BTreeSet::new(), "{m}");
    }
    // The broker namespace is left Terminating: no namespace controller (kube-controller-
    // manager) runs here to empty and remove it; everything fednet put in it is gone.
    assert_eq!(
        env.labelled("mesh", BROKER).await,
        BTreeSet::from([format!("Namespace /{BROKER_NS}")])
    );
    let namespace = env.cluster(BROKER).client();
    let namespace = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(namespace)
        .get(BROKER_NS)
        .await
        .unwrap();
    assert!(
        namespace.metadata.deletion_timestamp.is_some(),
        "the broker namespace is being deleted"
    );
    let left = env
        .names(
            BROKER,
            &resource("submariner.io", "v1", "Cluster", "clusters"),
            BROKER_NS,
        )
        .await;
    assert!(
        left.is_empty(),
        "the gateways' leftovers are removed: {left:?}"
    );
    println!("total {:?}", started.elapsed());
}
