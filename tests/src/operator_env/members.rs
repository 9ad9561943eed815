//! Registering members on the hub the way a user who manages RBAC by hand would: on each
//! member, the ServiceAccount of `deploy/member-rbac/identity.yaml`, the Role and binding of
//! `deploy/member-rbac/skupper-namespace.yaml` in the application namespace only, and a
//! token for it; on the hub, a Secret with a self-contained kubeconfig for that token and a
//! `MemberCluster` referencing it. (`fedctl join` does the same; its own tests use it.)

use super::{APP_NAMESPACE, FedEnv, HUB_NAMESPACE, apply_json};
use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use federation_testkit::Cluster;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Names of `n` members: a fixed, readable list, then `member-<i>`.
pub fn member_names(n: usize) -> Vec<String> {
    const NAMES: [&str; 10] = [
        "central", "east", "west", "north", "south", "alpha", "beta", "gamma", "delta", "omega",
    ];
    (0..n)
        .map(|i| {
            NAMES
                .get(i)
                .map_or_else(|| format!("member-{i}"), |s| (*s).to_owned())
        })
        .collect()
}

/// A member RBAC manifest shipped in `deploy/member-rbac/` (`identity.yaml`,
/// `skupper-namespace.yaml`).
pub fn member_rbac_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/member-rbac")
        .join(file)
}

/// Parses the documents of a member RBAC manifest.
pub fn member_rbac_documents(file: &str) -> anyhow::Result<Vec<Value>> {
    let path = member_rbac_path(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Registers every member of the environment on its hub.
pub async fn register_members(env: &FedEnv) -> anyhow::Result<()> {
    let identity = member_rbac_documents("identity.yaml")?;
    let mut namespaced = member_rbac_documents("skupper-namespace.yaml")?;
    for doc in &mut namespaced {
        doc["metadata"]["namespace"] = APP_NAMESPACE.into();
    }
    let rbac: Vec<Value> = identity.into_iter().chain(namespaced).collect();
    let hub = env.hub().client();
    for (name, cluster) in env.members().iter().zip(env.member_clusters()) {
        let kubeconfig = operator_kubeconfig(name, cluster, &rbac)
            .await
            .with_context(|| format!("preparing member {name}"))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(kubeconfig);
        apply_json(
            &hub,
            &json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{name}-kubeconfig"), "namespace": HUB_NAMESPACE},
                "data": {"kubeconfig": encoded}
            }),
        )
        .await?;
        apply_json(
            &hub,
            &json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
                "metadata": {"name": name, "labels": {"env": "prod"}},
                "spec": {
                    "clusterId": name,
                    "kubeconfigSecretRef": {"namespace": HUB_NAMESPACE, "name": format!("{name}-kubeconfig")}
                }
            }),
        )
        .await?;
    }
    Ok(())
}

/// Applies the member RBAC in a member and returns a kubeconfig for its ServiceAccount.
async fn operator_kubeconfig(
    name: &str,
    cluster: &Cluster,
    rbac: &[Value],
) -> anyhow::Result<String> {
    let client = cluster.client();
    ensure_namespace(&client, HUB_NAMESPACE).await?;
    for doc in rbac {
        apply_json(&client, doc).await?;
    }
    let sa = rbac
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .ok_or_else(|| anyhow!("no ServiceAccount in the member RBAC manifest"))?;
    let sa_name = sa["metadata"]["name"].as_str().unwrap_or("fednet-operator");
    let sa_ns = sa["metadata"]["namespace"]
        .as_str()
        .unwrap_or(HUB_NAMESPACE);
    service_account_kubeconfig(cluster, name, sa_ns, sa_name).await
}

/// A self-contained kubeconfig (inline CA, token) for a ServiceAccount of a cluster, with a
/// token valid for six hours.
pub async fn service_account_kubeconfig(
    cluster: &Cluster,
    context: &str,
    namespace: &str,
    service_account: &str,
) -> anyhow::Result<String> {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            // Outlives any test or demo; a real deployment rotates the Secret.
            expiration_seconds: Some(6 * 3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(cluster.client(), namespace)
        .create_token_request(service_account, &PostParams::default(), &request)
        .await
        .context("requesting a ServiceAccount token")?
        .status
        .map(|s| s.token)
        .ok_or_else(|| anyhow!("token request without a token"))?;
    let ca = base64::engine::general_purpose::STANDARD.encode(cluster.ca_certificate_pem());
    let user = format!("{service_account}@{context}");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": cluster.server_url(), "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context
    });
    Ok(serde_yaml::to_string(&kubeconfig)?)
}

async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(name).await?.is_none() {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}
