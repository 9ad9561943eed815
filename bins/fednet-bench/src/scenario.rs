//! The networks the benchmark applies: hub-and-spoke over Skupper with two hubs (each spoke
//! dials one of them, chosen by the planner), and `n` FederatedServices exported from members
//! in turn and consumed by every member.

use federation_tests::operator_env::{FedEnv, HUB_NAMESPACE, apply_json, member_rbac_documents};
use serde_json::{Value, json};

/// The two hubs: the first two members (`central`, `east`).
pub fn hubs(members: &[String]) -> Vec<String> {
    members.iter().take(2).cloned().collect()
}

/// Name of the `i`-th service.
pub fn service_name(i: usize) -> String {
    format!("svc-{i:04}")
}

/// A two-hub network `name` spanning member namespace `namespace`, over the members labelled
/// `env=prod`.
pub fn network_manifest(name: &str, namespace: &str, members: &[String]) -> Value {
    json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": name, "namespace": HUB_NAMESPACE},
        "spec": {
            "backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct"}},
            "members": {"selector": {"matchLabels": {"env": "prod"}}},
            "namespaces": [namespace],
            "topology": {"type": "HubSpoke", "hubSpoke": {
                "hubs": hubs(members), "hubsPerSpoke": 1, "spokeCost": 1, "hubCost": 1
            }}
        }
    })
}

/// `count` services of network `network` in `namespace`, the `i`-th exported from member
/// `i mod members` and consumed by every member.
pub fn service_manifests(
    network: &str,
    namespace: &str,
    members: &[String],
    count: usize,
) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let name = service_name(i);
            let exporter = &members[i % members.len().max(1)];
            json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
                "metadata": {"name": format!("{network}-{name}"), "namespace": HUB_NAMESPACE},
                "spec": {
                    "network": network, "namespace": namespace, "serviceName": name,
                    "exporters": [{"member": exporter, "selector": {"app": name}}],
                    "ports": [{"name": "http", "port": 8080}]
                }
            })
        })
        .collect()
}

/// Applies manifests on the hub, a few at once.
pub async fn apply_on_hub(env: &FedEnv, manifests: &[Value]) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    let hub = env.hub().client();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(manifests)
        .map(|m| {
            let hub = hub.clone();
            async move { apply_json(&hub, m).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Makes member namespace `namespace` usable by a network: the namespace in every member and
/// the operator's namespaced Role of `deploy/member-rbac/skupper-namespace.yaml` in it.
pub async fn prepare_member_namespace(env: &FedEnv, namespace: &str) -> anyhow::Result<()> {
    let mut docs = member_rbac_documents("skupper-namespace.yaml")?;
    for doc in &mut docs {
        doc["metadata"]["namespace"] = namespace.into();
    }
    for cluster in env.member_clusters() {
        cluster.create_namespace(namespace).await?;
        for doc in &docs {
            apply_json(&cluster.client(), doc).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hubs_one_per_spoke_and_services_exported_in_turn() {
        let members: Vec<String> = ["central", "east", "west"].map(String::from).to_vec();
        let net = network_manifest("shop", "shop", &members);
        assert_eq!(
            net["spec"]["topology"]["hubSpoke"]["hubs"],
            json!(["central", "east"])
        );
        assert_eq!(net["spec"]["topology"]["hubSpoke"]["hubsPerSpoke"], 1);
        let services = service_manifests("shop", "shop", &members, 4);
        assert_eq!(services.len(), 4);
        let exporters: Vec<&str> = services
            .iter()
            .map(|s| s["spec"]["exporters"][0]["member"].as_str().unwrap())
            .collect();
        assert_eq!(exporters, ["central", "east", "west", "central"]);
        assert_eq!(services[3]["metadata"]["name"], "shop-svc-0003");
        assert_eq!(services[3]["spec"]["serviceName"], "svc-0003");
    }
}
