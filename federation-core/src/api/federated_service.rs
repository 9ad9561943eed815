//! `FederatedService`: a service shared from some members of a network to others.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A service exported from one or more members of a network to its consumers.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fednet.io",
    version = "v1alpha1",
    kind = "FederatedService",
    namespaced,
    status = "FederatedServiceStatus",
    shortname = "fsvc",
    category = "fednet",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.network"}"#,
    printcolumn = r#"{"name":"Service","type":"string","jsonPath":".spec.serviceName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Consumers","type":"string","jsonPath":".status.consumersSummary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FederatedServiceSpec {
    /// The `FederatedNetwork` (same namespace) that carries the service.
    #[schemars(length(min = 1, max = 253))]
    pub network: String,
    /// Namespace in the members where the service lives; one of the network's namespaces.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("namespace must be a DNS-1123 label"))]
    pub namespace: String,
    /// The Service name consumers use (a DNS-1035 label).
    #[x_kube(validation = Rule::new("self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self) <= 63").message("serviceName must be a DNS-1035 label"))]
    pub service_name: String,
    /// Where the service runs.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["member".into()]))]
    pub exporters: Vec<ServiceExporter>,
    /// Who consumes the service: all members of the network when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<ConsumerSelection>,
    /// The ports.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.port == p.port))").message("ports must be unique"))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("port names must be unique"))]
    pub ports: Vec<ServicePort>,
    /// Application policy for SD-WAN networks: traffic profile and SLA thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdwan: Option<ServiceSdwanPolicy>,
}

/// How an SD-WAN should carry a shared service (after MEF W70.2 application flows).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSdwanPolicy {
    /// Traffic profile SD-WAN policy tools map to a path policy (`standard`, `video`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub traffic_profile: Option<String>,
    /// Largest one-way delay the service tolerates, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u32>,
    /// Largest jitter the service tolerates, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jitter_ms: Option<u32>,
    /// Largest packet loss the service tolerates, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_loss_percent: Option<u8>,
}

impl ServiceSdwanPolicy {
    /// Whether any SLA threshold is set.
    pub fn has_sla(&self) -> bool {
        self.max_delay_ms.is_some()
            || self.max_jitter_ms.is_some()
            || self.max_loss_percent.is_some()
    }
}

/// One member that runs the service's workload.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.selector) != has(self.host)").message("give exactly one of selector or host"))]
#[serde(rename_all = "camelCase")]
pub struct ServiceExporter {
    /// The member.
    #[schemars(length(min = 1, max = 253))]
    pub member: String,
    /// Pod labels of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    /// Host (a local Service name or address) that serves the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Consumers of a service: by name, by label selector over `MemberCluster`s, or both.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerSelection {
    /// Member names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Label selector over `MemberCluster`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// One port of a shared service.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name (a DNS-1123 label), part of the routing key.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Port consumers connect to.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Port the workload listens on (same as `port` when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<u16>,
}

/// Observed state of a shared service.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FederatedServiceStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Per-consumer state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerState>,
    /// `ready/total` consumers, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers_summary: Option<String>,
}

/// State of a service in one consuming member.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerState {
    /// Consuming member.
    pub member: String,
    /// Whether consumers in that member can reach the service.
    pub ready: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
