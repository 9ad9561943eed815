//! What `fedctl status` shows, built from hub objects without I/O.
//!
//! The report embeds the API's own status types unchanged, so `-o json` and `-o yaml` parse
//! back into them; the tables are derived from the same report.

use federation_core::api::{
    BackendKind, ConditionExt, FederatedNetwork, FederatedNetworkStatus, FederatedService,
    FederatedServiceStatus, LinkPhase, MemberCluster, MemberClusterStatus, MemberPhase, READY,
    TopologyKind,
};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One network as `fedctl status <network>` shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Hub namespace of the network.
    pub namespace: String,
    /// Network name.
    pub name: String,
    /// Backend of the network.
    pub backend: BackendKind,
    /// Topology strategy.
    pub topology: TopologyKind,
    /// Hubs of a hub-and-spoke network (from the spec: status does not carry roles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hubs: Vec<String>,
    /// `metadata.generation`, to compare with `status.observedGeneration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The network's status as the operator wrote it (empty before its first pass).
    pub status: FederatedNetworkStatus,
    /// Every member the network names or reports, with its `MemberCluster` status.
    pub members: Vec<MemberReport>,
    /// The network's shared services.
    pub services: Vec<ServiceReport>,
}

/// A member of a network and what its `MemberCluster` says.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberReport {
    /// Member name.
    pub name: String,
    /// The `MemberCluster`'s status; `None` when there is no such `MemberCluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<MemberClusterStatus>,
}

/// A shared service of a network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    /// `FederatedService` name.
    pub name: String,
    /// Namespace in the members.
    pub namespace: String,
    /// The Service name consumers use.
    pub service_name: String,
    /// Exporting members.
    pub exporters: Vec<String>,
    /// Its status as the operator wrote it.
    pub status: FederatedServiceStatus,
}

/// The role a member plays, derived from the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// A hub of a hub-and-spoke network.
    Hub,
    /// A spoke of a hub-and-spoke network.
    Spoke,
    /// A member of a full mesh or explicit network.
    Peer,
}

impl MemberRole {
    /// Lower-case name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hub => "hub",
            Self::Spoke => "spoke",
            Self::Peer => "peer",
        }
    }
}

impl StatusReport {
    /// The report of `network`, with its services among `services` and its members' status
    /// from `members` (both may hold other networks' objects: they are filtered here).
    pub fn build(
        network: &FederatedNetwork,
        services: &[FederatedService],
        members: &[MemberCluster],
    ) -> Self {
        let namespace = network.namespace().unwrap_or_default();
        let name = network.name_any();
        let status = network.status.clone().unwrap_or_default();
        let spec = &network.spec;
        // Selector-chosen members appear only in status; named ones also before the
        // operator's first pass, and missing ones only in the spec.
        let names: BTreeSet<String> = spec
            .members
            .names
            .iter()
            .chain(status.members.iter().map(|m| &m.name))
            .chain(&status.missing_members)
            .cloned()
            .collect();
        let members = names
            .into_iter()
            .map(|n| MemberReport {
                cluster: members
                    .iter()
                    .find(|m| m.name_any() == n)
                    .map(|m| m.status.clone().unwrap_or_default()),
                name: n,
            })
            .collect();
        let mut services: Vec<ServiceReport> = services
            .iter()
            .filter(|s| s.spec.network == name && s.namespace().as_deref() == Some(&namespace))
            .map(|s| ServiceReport {
                name: s.name_any(),
                namespace: s.spec.namespace.clone(),
                service_name: s.spec.service_name.clone(),
                exporters: s.spec.exporters.iter().map(|e| e.member.clone()).collect(),
                status: s.status.clone().unwrap_or_default(),
            })
            .collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            backend: spec.backend.kind,
            topology: spec.topology.kind,
            hubs: spec
                .topology
                .hub_spoke
                .as_ref()
                .map(|h| h.hubs.clone())
                .unwrap_or_default(),
            generation: network.metadata.generation,
            namespace,
            name,
            status,
            members,
            services,
        }
    }

    /// The role of `member` in this network.
    pub fn role(&self, member: &str) -> MemberRole {
        match self.topology {
            TopologyKind::HubSpoke if self.hubs.iter().any(|h| h == member) => MemberRole::Hub,
            TopologyKind::HubSpoke => MemberRole::Spoke,
            TopologyKind::FullMesh | TopologyKind::Explicit => MemberRole::Peer,
        }
    }

    /// The member's phase in this network, if the operator reported one.
    pub fn member_phase(&self, member: &str) -> Option<MemberPhase> {
        self.status
            .members
            .iter()
            .find(|m| m.name == member)
            .map(|m| m.phase)
    }

    /// Whether status describes the current spec (false while the operator catches up).
    pub fn is_current(&self) -> bool {
        self.status.observed_generation.is_some()
            && self.status.observed_generation == self.generation
    }
}

/// One line of `fedctl status` without a network name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRow {
    /// Hub namespace.
    pub namespace: String,
    /// Network name.
    pub name: String,
    /// Backend.
    pub backend: BackendKind,
    /// Topology strategy.
    pub topology: TopologyKind,
    /// Status of the Ready condition (`True`, `False`, `Unknown`), `-` before the first pass.
    pub ready: String,
    /// Reason of the Ready condition.
    pub reason: String,
    /// Members whose phase is Ready, of all reported.
    pub members_ready: usize,
    /// Members reported.
    pub members_total: usize,
    /// Links Up.
    pub links_up: usize,
    /// Links reported.
    pub links_total: usize,
    /// Shared services Ready.
    pub services_ready: usize,
    /// Shared services of the network.
    pub services_total: usize,
}

impl SummaryRow {
    /// The summary of one network (services filtered to it).
    pub fn build(network: &FederatedNetwork, services: &[FederatedService]) -> Self {
        let report = StatusReport::build(network, services, &[]);
        let ready = report.status.conditions.condition(READY);
        let st = &report.status;
        Self {
            ready: ready.map_or_else(|| "-".to_owned(), |c| c.status.clone()),
            reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
            members_ready: st
                .members
                .iter()
                .filter(|m| m.phase == MemberPhase::Ready)
                .count(),
            members_total: st.members.len() + st.missing_members.len(),
            links_up: st.links.iter().filter(|l| l.phase == LinkPhase::Up).count(),
            links_total: st.links.len(),
            services_ready: report
                .services
                .iter()
                .filter(|s| s.status.conditions.is_true(READY))
                .count(),
            services_total: report.services.len(),
            namespace: report.namespace,
            name: report.name,
            backend: report.backend,
            topology: report.topology,
        }
    }

    /// Summaries of `networks`, sorted by namespace and name.
    pub fn build_all(networks: &[FederatedNetwork], services: &[FederatedService]) -> Vec<Self> {
        let mut rows: Vec<Self> = networks.iter().map(|n| Self::build(n, services)).collect();
        rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        rows
    }
}
