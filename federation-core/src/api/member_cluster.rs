//! `MemberCluster`: one cluster that can take part in federated networks.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// How to reach a member cluster and what it is. Cluster-scoped on the hub.
///
/// Credentials are never inline: `kubeconfigSecretRef` names a Secret on the hub that holds
/// a kubeconfig scoped to what the member's backends need.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fednet.io",
    version = "v1alpha1",
    kind = "MemberCluster",
    status = "MemberClusterStatus",
    shortname = "mc",
    category = "fednet",
    printcolumn = r#"{"name":"Cluster ID","type":"string","jsonPath":".spec.clusterId"}"#,
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.location.region"}"#,
    printcolumn = r#"{"name":"Reachable","type":"string","jsonPath":".status.conditions[?(@.type==\"Reachable\")].status"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.serverVersion"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterSpec {
    /// Identity of the cluster in the cluster set (a DNS-1123 label). Published in the member
    /// as the `cluster.clusterset.k8s.io` ClusterProperty. Immutable.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self) <= 63").message("clusterId must be a DNS-1123 label"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterId is immutable"))]
    pub cluster_id: String,
    /// The Secret on the hub holding the kubeconfig used to reach this member.
    pub kubeconfig_secret_ref: SecretKeyRef,
    /// Where the cluster runs; used by topology selectors and shown to operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Network facts the backends need (never guessed: Submariner, for one, needs them exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<MemberNetwork>,
}

/// A key of a Secret on the hub.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Namespace of the Secret.
    #[x_kube(validation = Rule::new("size(self) > 0").message("namespace must not be empty"))]
    pub namespace: String,
    /// Name of the Secret.
    #[x_kube(validation = Rule::new("size(self) > 0").message("name must not be empty"))]
    pub name: String,
    /// Key within the Secret's data; `kubeconfig` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretKeyRef {
    /// The data key to read, defaulting to `kubeconfig`.
    pub fn key_or_default(&self) -> &str {
        self.key.as_deref().unwrap_or("kubeconfig")
    }
}

/// Where a member cluster runs.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Region, e.g. `eu-west-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Zone, e.g. `eu-west-1a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// Network facts of a member cluster.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemberNetwork {
    /// Pod CIDRs, e.g. `10.244.0.0/16`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
    /// Service CIDRs, e.g. `10.96.0.0/12`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_cidrs: Vec<String>,
    /// Addresses or host names at which this cluster's gateways can be reached from others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_hints: Vec<String>,
    /// This cluster's edge in an SD-WAN controller: the device (flexiManage) or node
    /// (Headscale) behind which its pod and service CIDRs sit. Needed by SD-WAN networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub sdwan_edge: Option<String>,
}

/// Observed state of a member cluster.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterStatus {
    /// `Reachable`: the hub could authenticate to the member's API server at the last probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The member's Kubernetes version (`gitVersion`), from the last successful probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// Backend APIs found in the member (`skupper.io/v2alpha1`, `submariner.io/v1alpha1`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_apis: Vec<String>,
    /// When the token of the member's kubeconfig expires (RFC 3339), when it has an expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_expire_at: Option<String>,
    /// Generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Condition type on `MemberCluster`: the token of the member's kubeconfig expires soon (or
/// has expired); `False` while it is far from expiry. Absent for credentials without expiry.
pub const CREDENTIALS_EXPIRING: &str = "CredentialsExpiring";

/// Condition type on `MemberCluster`: the member answered an authenticated request.
pub const REACHABLE: &str = "Reachable";
/// Condition type on `MemberCluster`: the member answered its *last* probe. Unlike
/// `Reachable`, it turns `False` at the first failure, without waiting for the threshold:
/// passes stop waiting for the member and spokes of such a hub also dial one that answers.
pub const RESPONDING: &str = "Responding";
