//! An SD-WAN network through fednet's network controller (finalizer, inventory, status,
//! teardown) against a real Headscale with real Tailscale clients as edges, and a real hub:
//! what a user sees in the `FederatedNetwork`'s conditions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_POLICY, Env, rules_of};
use federation_core::api::{
    BackendKind, ConditionExt, FederatedNetwork, FederatedService, MemberCluster, READY,
    ServiceSdwanPolicy,
};
use federation_core::cluster::MemberRegistry;
use federation_core::controller::{Context, reconcile_network};
use federation_sdwan::fixtures::{full_mesh, service};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn register_members(env: &Env) {
    let api: Api<MemberCluster> = Api::all(env.hub());
    for m in &env.members {
        let mut m = m.clone();
        m.spec.kubeconfig_secret_ref.namespace = env.namespace.clone();
        api.create(&PostParams::default(), &m).await.unwrap();
    }
}

fn context(env: &Env) -> Arc<Context> {
    Arc::new(Context::new(
        env.hub(),
        Arc::new(MemberRegistry::new(env.hub())),
        BTreeMap::from([(BackendKind::SdWan, env.engine.clone())]),
    ))
}

async fn reconcile(env: &Env, ctx: &Arc<Context>, name: &str) -> FederatedNetwork {
    let nets: Api<FederatedNetwork> = Api::namespaced(env.hub(), &env.namespace);
    reconcile_network(Arc::new(nets.get(name).await.unwrap()), ctx.clone())
        .await
        .unwrap();
    nets.get(name).await.unwrap()
}

fn ready(net: &FederatedNetwork) -> (String, String, String) {
    let c = net
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(READY))
        .unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[tokio::test]
async fn the_network_status_says_what_headscale_knows_and_deletion_removes_fednets_part() {
    // Every edge runs a real Tailscale client announcing its member's prefixes.
    let env = Env::start_online(&["a", "b", "c"]).await;
    register_members(&env).await;
    let ctx = context(&env);
    env.network("edge", &["a", "b", "c"], full_mesh()).await;

    let mut net = reconcile(&env, &ctx, "edge").await;
    for _ in 0..4 {
        net = reconcile(&env, &ctx, "edge").await;
    }
    let status = net.status.clone().unwrap();
    assert!(
        status
            .inventory
            .iter()
            .flat_map(|i| &i.targets)
            .any(|t| t.name == env.headscale.url()),
        "the controller is in the inventory: {status:?}"
    );
    assert_eq!(rules_of(&env.policy().await, "edge").len(), 3);
    let (ready_status, reason, message) = ready(&net);
    assert_eq!(
        (ready_status.as_str(), reason.as_str(), message.as_str()),
        ("True", "Converged", "3 links up")
    );
    for link in &status.links {
        assert_eq!(
            link.message.as_deref(),
            Some(federation_sdwan::headscale::RTT_UNKNOWN)
        );
    }
    assert!(
        status
            .members
            .iter()
            .all(|m| m.phase == federation_core::api::MemberPhase::Ready),
        "{:?}",
        status.members
    );

    // A wrong key: the condition names it; nothing is written.
    let secrets: Api<Secret> = Api::namespaced(env.hub(), &env.namespace);
    let patch = json!({"stringData": {"token": "hskey-api-wrong-000000000000000000000000000000"}});
    secrets
        .patch(
            common::TOKEN_SECRET,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let before = env.policy().await;
    let net = reconcile(&env, &ctx, "edge").await;
    let conditions = serde_json::to_string(&net.status.as_ref().unwrap().conditions).unwrap();
    assert!(conditions.contains("refused the API key"), "{conditions}");
    assert!(!conditions.contains("wrong-0000"), "no secret in status");
    assert_eq!(env.policy().await, before);

    // Deleting the network (with the right key back) removes fednet's part of the policy.
    let key = env.headscale.create_api_key().await.unwrap();
    let patch = json!({"stringData": {"token": key}});
    secrets
        .patch(
            common::TOKEN_SECRET,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let nets: Api<FederatedNetwork> = Api::namespaced(env.hub(), &env.namespace);
    nets.delete("edge", &DeleteParams::default()).await.unwrap();
    for _ in 0..4 {
        match nets.get_opt("edge").await.unwrap() {
            Some(n) => reconcile_network(Arc::new(n), ctx.clone()).await.unwrap(),
            None => break,
        };
    }
    assert!(
        nets.get_opt("edge").await.unwrap().is_none(),
        "finalizer released"
    );
    assert_eq!(env.policy().await, ADMIN_POLICY);
}

#[tokio::test]
async fn sla_thresholds_headscale_cannot_enforce_make_the_network_unsupported() {
    let env = Env::start(&["a", "b"]).await;
    register_members(&env).await;
    let ctx = context(&env);
    env.network("sla", &["a", "b"], full_mesh()).await;
    let mut svc: FederatedService = service("video", "sla", "b", 8080);
    svc.metadata.namespace = Some(env.namespace.clone());
    svc.spec.sdwan = Some(ServiceSdwanPolicy {
        max_delay_ms: Some(30),
        ..Default::default()
    });
    Api::<FederatedService>::namespaced(env.hub(), &env.namespace)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let before = env.policy().await;
    let mut net = reconcile(&env, &ctx, "sla").await;
    for _ in 0..2 {
        net = reconcile(&env, &ctx, "sla").await;
    }
    let (status, reason, message) = ready(&net);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "Unsupported"),
        "{message}"
    );
    assert!(message.contains("SLA"), "{message}");
    assert_eq!(env.policy().await, before, "nothing written");
    let inventory = net.status.clone().unwrap().inventory;
    assert!(
        inventory.is_none_or(|i| i.targets.is_empty()),
        "{}: nothing recorded",
        net.name_any()
    );
}
