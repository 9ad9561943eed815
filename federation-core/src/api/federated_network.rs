//! `FederatedNetwork`: the declaration of one inter-cluster service network.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which members form a network, over which backend, in which namespaces and shape.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fednet.io",
    version = "v1alpha1",
    kind = "FederatedNetwork",
    namespaced,
    status = "FederatedNetworkStatus",
    shortname = "fnet",
    category = "fednet",
    printcolumn = r#"{"name":"Backend","type":"string","jsonPath":".spec.backend.type"}"#,
    printcolumn = r#"{"name":"Topology","type":"string","jsonPath":".spec.topology.type"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Links","type":"string","jsonPath":".status.linksSummary"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.topology.type != 'HubSpoke' || has(self.members.selector) || self.topology.hubSpoke.hubs.all(h, h in self.members.names)").message("every hub must be one of spec.members.names"))]
#[serde(rename_all = "camelCase")]
pub struct FederatedNetworkSpec {
    /// The technology that carries the network, and its settings.
    pub backend: BackendSpec,
    /// The member clusters of the network.
    pub members: MemberSelection,
    /// Namespaces the network spans: each (member, namespace) pair becomes one site.
    #[schemars(
        length(min = 1, max = 64),
        inner(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub namespaces: Vec<String>,
    /// The shape of the network.
    pub topology: TopologySpec,
}

/// Backend choice with per-backend settings; only the chosen backend's block may be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.type == 'Skupper' || !has(self.skupper)").message("skupper settings are only allowed when type is Skupper"))]
#[x_kube(validation = Rule::new("self.type == 'Submariner' || !has(self.submariner)").message("submariner settings are only allowed when type is Submariner"))]
#[x_kube(validation = Rule::new("self.type == 'SdWan' || !has(self.sdwan)").message("sdwan settings are only allowed when type is SdWan"))]
#[x_kube(validation = Rule::new("self.type != 'Submariner' || has(self.submariner)").message("a Submariner network needs submariner settings (the broker)"))]
#[x_kube(validation = Rule::new("self.type != 'SdWan' || has(self.sdwan)").message("an SD-WAN network needs sdwan settings (the controller)"))]
#[x_kube(validation = Rule::new("self.type == oldSelf.type").message("spec.backend.type is immutable: the objects of the old backend would be left behind; delete the network (its teardown removes them) and create it again with the new backend"))]
#[serde(rename_all = "camelCase")]
pub struct BackendSpec {
    /// Which backend carries the network.
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// Skupper v2 settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skupper: Option<SkupperSettings>,
    /// Submariner settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submariner: Option<SubmarinerSettings>,
    /// SD-WAN controller settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdwan: Option<SdwanSettings>,
}

/// The backends fednet can drive.
#[derive(
    schemars::JsonSchema,
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
)]
pub enum BackendKind {
    /// Skupper v2 (`skupper.io/v2alpha1`): an L7 application network.
    Skupper,
    /// Submariner: L3 connectivity with a broker.
    Submariner,
    /// An SD-WAN controller reached over its REST API.
    SdWan,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Skupper => "Skupper",
            Self::Submariner => "Submariner",
            Self::SdWan => "SdWan",
        })
    }
}

/// Skupper v2 settings of a network.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SkupperSettings {
    /// How links are made: `Direct` (the operator issues a client Certificate in the
    /// accepting site and copies it to the dialing site) or `Grant` (AccessGrant and
    /// AccessToken; the accepting site's controller must run with grants enabled).
    #[serde(default)]
    pub link_flow: SkupperLinkFlow,
    /// Run two routers per site (`Site.spec.ha`); gives two Links per peer.
    #[serde(default)]
    pub ha: bool,
    /// Make spokes of a hub-and-spoke network edge sites (they only dial; cannot be HA).
    #[serde(default)]
    pub edge_spokes: bool,
    /// `Site.spec.linkAccess` for sites that accept links (`default`, `route`, `loadbalancer`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_access: Option<String>,
    /// Extra `Site.spec.settings` (router sizing and tuning), passed through unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

/// How Skupper links are established.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum SkupperLinkFlow {
    /// Certificate issued in the accepting site, copied to the dialer by the operator.
    #[default]
    Direct,
    /// AccessGrant in the accepting site, AccessToken redeemed by the dialing site.
    Grant,
}

/// Submariner settings of a network.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SubmarinerSettings {
    /// The `MemberCluster` that hosts the broker (it need not be a member of the network).
    #[schemars(length(min = 1, max = 253))]
    pub broker: String,
    /// The broker's API server as the members reach it (`host:port`, no scheme). When
    /// omitted, the server of the broker's kubeconfig on the hub is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^/:]+(:[0-9]+)?$"))]
    pub broker_api_server: Option<String>,
    /// Use Globalnet so members with overlapping CIDRs can connect.
    #[serde(default)]
    pub globalnet: bool,
    /// Globalnet CIDR range to carve per-cluster global CIDRs from (`242.0.0.0/8` when
    /// omitted, Submariner's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globalnet_cidr_range: Option<String>,
    /// Addresses in each member's global CIDR (a power of two; 65536 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 4))]
    pub globalnet_cluster_size: Option<u32>,
    /// Cable driver: `libreswan` (the default), `wireguard` or `vxlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cable_driver: Option<String>,
    /// Gateways are behind NAT.
    #[serde(default)]
    pub nat_enabled: bool,
    /// IPsec NAT traversal port (4500 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub nat_t_port: Option<u16>,
}

/// SD-WAN controller settings of a network. Each member's edge (the device or node that
/// fronts it in the controller) is `MemberCluster.spec.network.sdwanEdge`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SdwanSettings {
    /// Which controller the URL points at (its REST dialect).
    #[serde(default)]
    pub adapter: SdwanAdapter,
    /// Base URL of the controller's REST API (https only).
    #[schemars(regex(pattern = r"^https://"))]
    pub controller_url: String,
    /// Secret on the hub holding the controller's API token.
    pub credentials_secret_ref: super::SecretKeyRef,
    /// PEM bundle of the CAs that sign the controller's serving certificate, for a
    /// controller whose certificate the system's roots do not cover. Verification is never
    /// switched off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub ca_bundle: Option<String>,
    /// Organisation the network's devices belong to (flexiManage `?org=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub organization: Option<String>,
    /// Require encrypted tunnels.
    #[serde(default)]
    pub encryption: bool,
    /// Publish the network's shared services to a CN-WAN service registry in etcd, where
    /// SD-WAN policy tools map their traffic profiles to policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_registry: Option<ServiceRegistrySettings>,
}

/// A CN-WAN service registry in etcd (`<prefix>/namespaces/<ns>/services/<svc>/endpoints/<ep>`).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistrySettings {
    /// etcd client URL. Plain `http://` only on loopback (an etcd beside the operator);
    /// TLS to etcd is not supported yet, so other URLs are refused.
    #[schemars(regex(pattern = r"^https?://"))]
    pub etcd_url: String,
    /// Key prefix of the registry (`/service-registry` when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^\s]*[^/]$"))]
    pub prefix: Option<String>,
}

impl ServiceRegistrySettings {
    /// The key prefix, defaulted.
    pub fn prefix_or_default(&self) -> &str {
        self.prefix.as_deref().unwrap_or("/service-registry")
    }
}

/// The SD-WAN controllers fednet has an adapter for.
#[derive(
    schemars::JsonSchema,
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
)]
pub enum SdwanAdapter {
    /// Headscale (`/api/v1`): nodes, route approval and the ACL policy (database mode).
    #[default]
    Headscale,
    /// flexiManage (`/api`): devices, path labels, tunnels and their jobs.
    FlexiManage,
}

/// Which member clusters belong to a network: by name, by label selector, or both (union).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("size(self.names) > 0 || has(self.selector)").message("select members by names, a selector, or both"))]
#[serde(rename_all = "camelCase")]
pub struct MemberSelection {
    /// Member names (`MemberCluster` names).
    #[serde(default)]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub names: Vec<String>,
    /// Label selector over `MemberCluster`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The shape of a network.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("(self.type == 'HubSpoke') == has(self.hubSpoke)").message("hubSpoke is required for, and only allowed with, type HubSpoke"))]
#[x_kube(validation = Rule::new("(self.type == 'Explicit') == has(self.explicit)").message("explicit is required for, and only allowed with, type Explicit"))]
#[serde(rename_all = "camelCase")]
pub struct TopologySpec {
    /// The strategy.
    #[serde(rename = "type")]
    pub kind: TopologyKind,
    /// Cost of links the strategy makes when no other cost applies (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_cost: Option<u32>,
    /// Hub-and-spoke parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_spoke: Option<HubSpokeSpec>,
    /// Explicit links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit: Option<ExplicitSpec>,
}

/// Topology strategies.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyKind {
    /// Every member links to every other member.
    FullMesh,
    /// Spokes link to hubs; hubs mesh among themselves.
    HubSpoke,
    /// Exactly the links listed.
    Explicit,
}

/// Hub-and-spoke parameters.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.hubsPerSpoke) || self.hubsPerSpoke <= size(self.hubs)").message("hubsPerSpoke cannot exceed the number of hubs"))]
#[serde(rename_all = "camelCase")]
pub struct HubSpokeSpec {
    /// The hub members. More than one gives redundancy.
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub hubs: Vec<String>,
    /// How many hubs each spoke links to (all hubs when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub hubs_per_spoke: Option<u32>,
    /// Cost of spoke-to-hub links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub spoke_cost: Option<u32>,
    /// Cost of hub-to-hub links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub hub_cost: Option<u32>,
}

/// Explicit links.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExplicitSpec {
    /// The links. The API server refuses a repeated (dialer, acceptor) pair; the planner
    /// also refuses the same pair in the other direction (a CEL rule for that would cost
    /// more than the API server's budget allows at this list size).
    #[schemars(length(min = 1, max = 2000))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["dialer".into(), "acceptor".into()]))]
    pub links: Vec<ExplicitLink>,
}

/// One explicit link.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.dialer != self.acceptor").message("a link's ends must differ"))]
#[serde(rename_all = "camelCase")]
pub struct ExplicitLink {
    /// The member that dials.
    #[schemars(length(min = 1, max = 253))]
    pub dialer: String,
    /// The member that accepts.
    #[schemars(length(min = 1, max = 253))]
    pub acceptor: String,
    /// Link cost (lower is preferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cost: Option<u32>,
}

/// Observed state of a network.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FederatedNetworkStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Per-member state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberState>,
    /// Per-link state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkState>,
    /// `up/total` links, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links_summary: Option<String>,
    /// Everywhere the network may have written, recorded before the first write there.
    /// Absent (a new network, or a status that was lost), it is rebuilt by a label sweep of
    /// every registered member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// Members the spec names that have no usable `MemberCluster` (missing, being deleted
    /// or abandoned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_members: Vec<String>,
}

/// Where a network has written, and with which backend. Cleanup, teardown and re-plans
/// read it, so objects are found after restarts, member removal and spec changes.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The backend that wrote there.
    pub backend: BackendKind,
    /// Targets written to (or about to be), sorted.
    #[serde(default)]
    pub targets: Vec<InventoryTarget>,
    /// Per-cluster singletons this network holds (`Site in namespace apps on member/east`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    /// Member namespaces written in (or about to be), sorted. Members are read namespace
    /// by namespace, so a namespace the spec drops stays here until a pass proves nothing of
    /// the network is left in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

/// One recorded target.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct InventoryTarget {
    /// `Member`, `Broker` or `Controller`.
    #[serde(rename = "type")]
    pub kind: TargetKind,
    /// Member name, or the controller's name.
    pub name: String,
}

/// Kinds of targets.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum TargetKind {
    /// A member cluster.
    Member,
    /// A broker cluster.
    Broker,
    /// A REST controller.
    Controller,
}

/// The state of one member within a network.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberState {
    /// Member name.
    pub name: String,
    /// Phase of the member's part of the network.
    pub phase: MemberPhase,
    /// What is wrong, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phase of a member's part of a network.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberPhase {
    /// Everything desired is applied and healthy.
    Ready,
    /// Applied; waiting for the backend to report healthy.
    Pending,
    /// Applying failed; retried with backoff.
    Failed,
    /// The member did not answer in time.
    Unreachable,
    /// The member left the network; its objects are being removed.
    TearingDown,
}

/// The state of one link.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LinkState {
    /// The member that dials.
    pub dialer: String,
    /// The member that accepts.
    pub acceptor: String,
    /// Namespace (site) of the link.
    pub namespace: String,
    /// Planned cost.
    pub cost: u32,
    /// Whether the backend reports the link up.
    pub phase: LinkPhase,
    /// Why the link is not up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phase of a link.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPhase {
    /// The backend reports the link operational.
    Up,
    /// The link's objects exist but the backend does not report it operational.
    Pending,
    /// The backend reports the link failed, or an end is unreachable.
    Down,
}

/// Condition type: everything in the network is converged and healthy.
pub const READY: &str = "Ready";
/// Condition type: the operator is still applying or waiting for the backend.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: part of the network is failing (names the members in the message).
pub const DEGRADED: &str = "Degraded";
