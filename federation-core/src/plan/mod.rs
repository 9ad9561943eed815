//! The plan: what a network should look like, per member, link and service (pure).
//!
//! A plan is computed from the hub's declarations (`FederatedNetwork`, `MemberCluster`s,
//! `FederatedService`s) and the members' health. It does not know any backend; backends
//! render it into their own objects.

mod cidr;
mod network_ref;
mod selector;
mod services;

pub use cidr::Cidr;
pub use network_ref::NetworkRef;
pub use selector::{SelectorError, matches_selector};
pub use services::{PortPlan, RejectedService, ServicePlan, routing_key};

use crate::api::{
    ABANDON_ANNOTATION, BackendSpec, FederatedNetwork, FederatedService, MemberCluster,
    MemberNetwork, TopologyKind,
};
use crate::topology::{self, MemberNode, Strategy, Topology, TopologyError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One member of a planned network.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMember {
    /// `MemberCluster` name.
    pub name: String,
    /// Cluster id (`spec.clusterId`).
    pub cluster_id: String,
    /// Network facts.
    pub network: Option<MemberNetwork>,
    /// Whether the last probe reached it.
    pub healthy: bool,
}

/// The desired state of one network, independent of any backend.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPlan {
    /// The network.
    pub network: NetworkRef,
    /// `metadata.generation` of the network the plan was made from.
    pub generation: Option<i64>,
    /// Backend and settings.
    pub backend: BackendSpec,
    /// The topology strategy used.
    pub topology_kind: TopologyKind,
    /// Namespaces spanned; each (member, namespace) is a site.
    pub namespaces: Vec<String>,
    /// Namespaces the network spanned before and may still hold objects in (from its
    /// inventory, filled in by the controller): read so what is left there is removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_namespaces: Vec<String>,
    /// Members whose last probe failed (see [`plan_with_silent`]). A pass does not wait
    /// for them: their targets count as unreadable at once (frozen, never cleaned), so one
    /// dead member costs the others no timeout. Healthier than `healthy`: one failure is
    /// enough here, while re-planning around a member waits for the failure threshold.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub silent_members: BTreeSet<String>,
    /// Members, sorted by name.
    pub members: Vec<PlannedMember>,
    /// Sites and links.
    pub topology: Topology,
    /// Shared services that can be served.
    pub services: Vec<ServicePlan>,
    /// Shared services that cannot, with why (reported in their status).
    pub rejected_services: Vec<RejectedService>,
    /// Members the network selects that cannot take part, with why: named without a
    /// `MemberCluster`, being deleted, or abandoned. Left out of the plan (so what the
    /// network had there is removed while it can still be reached) and named in status.
    pub missing_members: BTreeMap<String, String>,
}

impl NetworkPlan {
    /// What a pass over this plan reads: the namespaces spanned and the retired ones.
    pub fn observe_scope(&self) -> crate::backend::ObserveScope {
        crate::backend::ObserveScope::new(
            self.network.clone(),
            self.namespaces
                .iter()
                .chain(&self.retired_namespaces)
                .cloned(),
        )
    }

    /// The planned member of this name.
    pub fn member(&self, name: &str) -> Option<&PlannedMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Pairs of members whose pod or service CIDRs overlap, with one overlapping CIDR.
    pub fn overlapping_cidrs(&self) -> Vec<(String, String, String)> {
        let parsed: Vec<(&str, Vec<Cidr>)> = self
            .members
            .iter()
            .map(|m| {
                let cidrs = m
                    .network
                    .iter()
                    .flat_map(|n| n.pod_cidrs.iter().chain(&n.service_cidrs));
                (
                    m.name.as_str(),
                    cidrs.filter_map(|c| c.parse().ok()).collect(),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (i, (a, ca)) in parsed.iter().enumerate() {
            for (b, cb) in &parsed[i + 1..] {
                if let Some(c) = ca.iter().find(|x| cb.iter().any(|y| x.overlaps(y))) {
                    out.push(((*a).to_owned(), (*b).to_owned(), c.to_string()));
                }
            }
        }
        out
    }
}

/// Why a plan cannot be made. Each variant becomes a clear status condition; nothing is
/// applied for a network that cannot be planned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// The member selector is malformed.
    #[error("spec.members.selector: {0}")]
    Selector(#[from] SelectorError),
    /// The selection is empty.
    #[error("no member cluster matches spec.members")]
    NoMembers,
    /// The topology cannot be built from the members.
    #[error("spec.topology: {0}")]
    Topology(#[from] TopologyError),
    /// Two members claim the same cluster id.
    #[error("members {0} and {1} have the same clusterId {2}")]
    DuplicateClusterId(String, String, String),
}

impl PlanError {
    /// Stable CamelCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Selector(_) => "InvalidSelector",
            Self::NoMembers => "NoMembers",
            Self::Topology(_) => "InvalidTopology",
            Self::DuplicateClusterId(..) => "DuplicateClusterId",
        }
    }
}

/// What the planner needs to know.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The network.
    pub network: &'a FederatedNetwork,
    /// Every `MemberCluster` on the hub.
    pub member_clusters: &'a [MemberCluster],
    /// Shared services; those of other networks are ignored.
    pub services: &'a [FederatedService],
    /// Members known to be unhealthy (unreachable at the last probe).
    pub unhealthy: &'a BTreeSet<String>,
}

/// Computes the plan of a network (pure and deterministic).
pub fn plan(input: PlanInput<'_>) -> Result<NetworkPlan, PlanError> {
    plan_with_silent(input, &BTreeSet::new())
}

/// [`plan`], knowing which members' last probe failed (`silent`): spokes of a silent hub
/// also dial a hub that answers, and the plan's [`NetworkPlan::silent_members`] are set, so
/// the engine does not wait for them.
pub fn plan_with_silent(
    input: PlanInput<'_>,
    silent: &BTreeSet<String>,
) -> Result<NetworkPlan, PlanError> {
    let spec = &input.network.spec;
    let network = NetworkRef::of(input.network);
    let by_name: BTreeMap<&str, &MemberCluster> = input
        .member_clusters
        .iter()
        .filter_map(|m| m.metadata.name.as_deref().map(|n| (n, m)))
        .collect();

    let mut selected: BTreeMap<&str, &MemberCluster> = BTreeMap::new();
    let mut missing_members = BTreeMap::new();
    for name in &spec.members.names {
        match by_name.get(name.as_str()) {
            Some(mc) => {
                selected.insert(name, mc);
            }
            None => {
                missing_members.insert(name.clone(), "no MemberCluster on the hub".to_owned());
            }
        }
    }
    if let Some(selector) = &spec.members.selector {
        for (name, mc) in &by_name {
            if matches_selector(selector, mc.metadata.labels.as_ref())? {
                selected.insert(name, mc);
            }
        }
    }
    selected.retain(|name, mc| match unusable(mc) {
        Some(why) => {
            missing_members.insert((*name).to_owned(), why.to_owned());
            false
        }
        None => true,
    });
    if selected.is_empty() {
        return Err(PlanError::NoMembers);
    }
    let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, mc) in &selected {
        if let Some(other) = ids.insert(mc.spec.cluster_id.as_str(), name) {
            return Err(PlanError::DuplicateClusterId(
                other.to_owned(),
                (*name).to_owned(),
                mc.spec.cluster_id.clone(),
            ));
        }
    }

    let members: Vec<PlannedMember> = selected
        .iter()
        .map(|(name, mc)| PlannedMember {
            name: (*name).to_owned(),
            cluster_id: mc.spec.cluster_id.clone(),
            network: mc.spec.network.clone(),
            healthy: !input.unhealthy.contains(*name),
        })
        .collect();
    let nodes: Vec<MemberNode> = members
        .iter()
        .map(|m| MemberNode::new(m.name.clone(), m.healthy).with_silent(silent.contains(&m.name)))
        .collect();
    let strategy = Strategy::from_spec(&spec.topology)?;
    let topology = topology::build(&strategy, &nodes)?;

    let member_names: BTreeSet<&str> = selected.keys().copied().collect();
    let (services, rejected_services) = services::plan_services(
        &network,
        spec,
        &member_names,
        input.member_clusters,
        input.services,
    );

    Ok(NetworkPlan {
        network,
        generation: input.network.metadata.generation,
        backend: spec.backend.clone(),
        topology_kind: spec.topology.kind,
        namespaces: spec.namespaces.clone(),
        retired_namespaces: Vec::new(),
        silent_members: members
            .iter()
            .filter(|m| silent.contains(&m.name))
            .map(|m| m.name.clone())
            .collect(),
        members,
        topology,
        services,
        rejected_services,
        missing_members,
    })
}

/// Why a selected member cannot take part any more, if it cannot.
fn unusable(mc: &MemberCluster) -> Option<&'static str> {
    let abandoned = mc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ABANDON_ANNOTATION))
        .is_some_and(|v| v == "true");
    if abandoned {
        Some("abandoned (fednet.io/abandon)")
    } else if mc.metadata.deletion_timestamp.is_some() {
        Some("its MemberCluster is being deleted")
    } else {
        None
    }
}

/// Whether a member was given up for good: its `MemberCluster` carries
/// [`ABANDON_ANNOTATION`] `"true"`.
pub fn is_abandoned(mc: &MemberCluster) -> bool {
    mc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ABANDON_ANNOTATION))
        .is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests;
