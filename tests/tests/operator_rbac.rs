//! The Helm chart's hub RBAC is enough, as the chart's ServiceAccount, for the operator to
//! converge a network, publish Events, tear the network down and hand the Lease over; and,
//! rendered with `sharding.shards`, for a sharded replica to do the same through its
//! heartbeat and shard Leases.
//!
//! Needs `helm` to render the chart: `$HELM`, `hack/bin/helm` (which `make tools`, part of
//! `make test`, installs from the Go module proxy), or `helm` on the PATH. Without it the test
//! fails and says how to get it: a skipped RBAC check would hide a gap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{ConditionExt, FederatedNetwork, READY};
use federation_tests::operator_env::{
    FedEnv, HUB_NAMESPACE, NETWORK, OperatorOptions, OperatorProcess, apply_json,
    service_account_kubeconfig,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn helm() -> PathBuf {
    let candidates = [
        std::env::var_os("HELM").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/bin/helm")),
        Some(PathBuf::from("helm")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| {
            std::process::Command::new(p)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("helm not found: run `make tools` (or hack/tools.sh), or set HELM")
}

fn render_chart(helm: &PathBuf, shards: u32) -> Vec<Value> {
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/fednet-operator");
    let out = std::process::Command::new(helm)
        .args(["template", "fednet", chart.to_str().unwrap()])
        .args(["--namespace", HUB_NAMESPACE, "--kube-version", "1.37.0"])
        .args(["--set", &format!("watchNamespace={HUB_NAMESPACE}")])
        .args(["--set", &format!("sharding.shards={shards}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

#[tokio::test]
async fn the_charts_hub_rbac_is_enough_for_the_operator() {
    with_the_charts_rbac(1).await;
}

#[tokio::test]
async fn the_charts_hub_rbac_is_enough_for_a_sharded_replica() {
    with_the_charts_rbac(4).await;
}

/// One at a time: each test starts three control planes and an operator, and two at once
/// on a small shared machine slow convergence past the timeouts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn with_the_charts_rbac(shards: u32) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let docs = render_chart(&helm(), shards);
    let mut env = FedEnv::start(2).await.unwrap();
    env.start_double();
    // Only the RBAC and the ServiceAccount: no kubelet runs the Deployment here.
    let mut service_account = None;
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        if kind == "ServiceAccount" {
            service_account = doc["metadata"]["name"].as_str().map(str::to_owned);
        }
        if kind.contains("Role") || kind == "ServiceAccount" {
            apply_json(&env.hub().client(), doc).await.unwrap();
        }
    }
    let sa = service_account.expect("the chart makes a ServiceAccount");
    let kubeconfig = service_account_kubeconfig(env.hub(), "hub", HUB_NAMESPACE, &sa)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub-kubeconfig.yaml");
    std::fs::write(&path, kubeconfig).unwrap();

    let mut options = OperatorOptions::fast("chart-rbac");
    options.kubeconfig = Some(path);
    options.extra_args = vec![format!("--shards={shards}")];
    let mut op = OperatorProcess::start(&env, options, dir.path())
        .await
        .unwrap();
    op.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.apply_network().await.unwrap();
    env.wait_network("Ready", Duration::from_secs(120), |n| {
        n.status
            .as_ref()
            .is_some_and(|s| s.conditions.is_true(READY))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", op.log_tail(60)));
    env.check_inventory().await.unwrap();

    // Teardown: the finalizer is removed and a TornDown Event recorded.
    Api::<FederatedNetwork>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .delete(NETWORK, &DeleteParams::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while env.network().await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            op.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for m in env.members() {
        assert!(env.owned_objects(m).await.unwrap().is_empty(), "{m}");
    }
    let events = Api::<Event>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("TornDown")),
        "{:?}",
        events.items.iter().map(|e| &e.reason).collect::<Vec<_>>()
    );

    let log = std::fs::read_to_string(op.log()).unwrap();
    assert!(
        !log.contains("forbidden"),
        "RBAC refused something:\n{}",
        op.log_tail(80)
    );
    assert_eq!(
        op.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
    if shards > 1 {
        // On the way out it released its shards and deleted its heartbeat.
        let leases = Api::<Lease>::namespaced(env.hub().client(), HUB_NAMESPACE)
            .list(&ListParams::default().labels("fednet.io/operator-lease=fednet-operator"))
            .await
            .unwrap()
            .items;
        let names: Vec<String> = leases
            .iter()
            .filter_map(|l| l.metadata.name.clone())
            .collect();
        assert_eq!(leases.len(), shards as usize, "{names:?}");
        assert!(
            leases.iter().all(|l| l
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_ref())
                .is_none()),
            "{leases:?}"
        );
    }
}
