//! The environment's network over the SD-WAN backend (`tests/tests/operator_sdwan.rs` and
//! `fednet-demo --sdwan headscale`). A real Headscale runs on loopback with one real
//! Tailscale client (userspace networking) per member as its edge, announcing the member's
//! pod and service CIDRs; the operator approves those routes and writes the hub-and-spoke
//! overlay and the shared service as ACL rules.

use super::{
    APP_NAMESPACE, EXPORTER, FedEnv, HUB_NAMESPACE, NETWORK, SERVICE, TOPOLOGY_HUB, apply_json,
};
use anyhow::Context as _;
use federation_core::api::MemberCluster;
use federation_testkit::Headscale;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const USER: &str = "edges";
/// The Secret on the hub (in the operator's kubeconfig namespace) holding the API key.
pub const TOKEN_SECRET: &str = "headscale-token";
/// A rule of the tailnet's administrators, which fednet must leave alone.
pub const ADMIN_POLICY: &str = r#"// The tailnet administrators' policy.
{
  "acls": [
    {"action": "accept", "src": ["192.168.50.0/24"], "dst": ["192.168.60.10/32:22"]},
  ],
}
"#;

/// The edge node of a member.
pub fn edge(member: &str) -> String {
    format!("edge-{member}")
}

/// Starts Headscale and the members' edges, gives each `MemberCluster` its edge and CIDRs,
/// and puts the API key in a Secret on the hub.
pub async fn prepare(env: &FedEnv) -> anyhow::Result<Headscale> {
    let headscale = Headscale::start().await.context("starting Headscale")?;
    headscale.create_user(USER).await?;
    let dir = tempfile::tempdir()?;
    let policy = dir.path().join("policy.hujson");
    std::fs::write(&policy, ADMIN_POLICY)?;
    headscale
        .cli(&["policy", "set", "-f", &policy.display().to_string()])
        .await?;
    let members: Api<MemberCluster> = Api::all(env.hub().client());
    for (member, n) in env.members().iter().zip(1u16..) {
        let (pods, services) = (format!("10.{n}.0.0/16"), format!("10.{}.0.0/16", 100 + n));
        headscale
            .join(USER, &edge(member), &[pods.clone(), services.clone()])
            .await
            .with_context(|| format!("starting the edge of {member}"))?;
        let patch = json!({"spec": {"network": {
            "podCidrs": [pods], "serviceCidrs": [services], "sdwanEdge": edge(member)}}});
        members
            .patch(member, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let key = headscale.create_api_key().await?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(TOKEN_SECRET.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_owned(),
            ByteString(key.into_bytes()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(headscale)
}

/// The SD-WAN network and its service.
fn manifests(headscale: &Headscale) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
            "metadata": {"name": NETWORK, "namespace": HUB_NAMESPACE},
            "spec": {
                "backend": {"type": "SdWan", "sdwan": {
                    "adapter": "Headscale", "controllerUrl": headscale.url(),
                    "credentialsSecretRef": {"namespace": HUB_NAMESPACE, "name": TOKEN_SECRET, "key": "token"},
                    "caBundle": headscale.ca_pem()}},
                "members": {"selector": {"matchLabels": {"env": "prod"}}},
                "namespaces": [APP_NAMESPACE],
                "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": [TOPOLOGY_HUB]}}
            }
        }),
        json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
            "metadata": {"name": SERVICE, "namespace": HUB_NAMESPACE},
            "spec": {
                "network": NETWORK, "namespace": APP_NAMESPACE, "serviceName": SERVICE,
                "exporters": [{"member": EXPORTER, "selector": {"app": SERVICE}}],
                "ports": [{"name": "http", "port": 8080}],
                "sdwan": {"trafficProfile": "standard"}
            }
        }),
    ]
}

/// Applies the network and its service on the hub.
pub async fn apply_network(env: &FedEnv, headscale: &Headscale) -> anyhow::Result<()> {
    for manifest in manifests(headscale) {
        apply_json(&env.hub().client(), &manifest).await?;
    }
    Ok(())
}

/// Prints the controller's side: the policy (fednet's block among the administrators'
/// lines) and each edge's approved and served routes.
pub async fn print_controller(headscale: &Headscale) -> anyhow::Result<()> {
    println!("\n== Headscale ACL policy (fednet's block between its markers) ==");
    print!("{}", headscale.cli(&["policy", "get"]).await?);
    println!("\n== Headscale edges ==");
    let nodes: Vec<Value> =
        serde_json::from_str(&headscale.cli(&["nodes", "list", "-o", "json"]).await?)?;
    for n in &nodes {
        let list = |field: &str| {
            n[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  {:<14} online={:<5} approved=[{}] served=[{}]",
            n["given_name"].as_str().unwrap_or_default(),
            n["online"].as_bool().unwrap_or(false),
            list("approved_routes"),
            list("subnet_routes"),
        );
    }
    Ok(())
}
