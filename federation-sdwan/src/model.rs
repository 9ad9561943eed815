//! The vendor-neutral SD-WAN model of a network (after MEF W70.2 / W100), computed from a
//! [`NetworkPlan`] (pure).
//!
//! - a [`Site`] per member: its edge in the controller and the prefixes behind it;
//! - an [`Overlay`] of the planned topology: full mesh (multipoint-to-multipoint),
//!   hub-and-spoke (rooted multipoint, hubs as roots) or explicit links with costs;
//! - an [`AppPolicy`] per (shared service, exporter): which consumers may reach it, on which
//!   ports, with which SLA thresholds and traffic profile.
//!
//! Adapters map this model onto one controller; nothing here knows a controller.

use federation_core::api::{ServiceSdwanPolicy, TopologyKind};
use federation_core::backend::ValidationIssue;
use federation_core::plan::NetworkPlan;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One member's end of the SD-WAN (an SD-WAN UNI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// `MemberCluster` name.
    pub member: String,
    /// The member's edge device or node in the controller.
    pub edge: String,
    /// Pod and service CIDRs behind the edge, sorted and deduplicated.
    pub prefixes: Vec<String>,
    /// Whether the site is a root (hub) of a rooted-multipoint overlay.
    pub hub: bool,
    /// Where the member's gateway is reached from outside (its first gateway hint), the
    /// address its services are published at in a service registry.
    pub address: Option<String>,
}

/// One connection of the overlay between two sites.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OverlayLink {
    /// The dialing member (the planned link's dialer).
    pub a: String,
    /// The accepting member.
    pub b: String,
    /// Cost (1 when the plan sets none).
    pub cost: u32,
}

/// The virtual topology of the network's overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    /// The strategy the links come from.
    pub topology: TopologyKind,
    /// The links, sorted.
    pub links: Vec<OverlayLink>,
    /// Whether the overlay must be encrypted.
    pub encrypted: bool,
}

impl Overlay {
    /// The members a member is directly connected to, sorted.
    pub fn neighbours(&self, member: &str) -> BTreeSet<&str> {
        self.links
            .iter()
            .filter_map(|l| {
                if l.a == member {
                    Some(l.b.as_str())
                } else if l.b == member {
                    Some(l.a.as_str())
                } else {
                    None
                }
            })
            .collect()
    }
}

/// One port an application policy opens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyPort {
    /// Port name.
    pub name: String,
    /// Port consumers connect to (the Service port).
    pub port: u16,
    /// Port the workload listens on.
    pub target_port: u16,
}

/// Permission for a shared service's consumers to reach one exporter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPolicy {
    /// `FederatedService` name.
    pub service: String,
    /// Namespace of the service in the members.
    pub namespace: String,
    /// Service name consumers use.
    pub service_name: String,
    /// The exporting member.
    pub exporter: String,
    /// Consuming members (never the exporter itself), sorted.
    pub consumers: Vec<String>,
    /// Whether the exporter is a consumer too (it serves the service locally, no policy
    /// needed).
    pub exporter_consumes: bool,
    /// Ports, sorted by port.
    pub ports: Vec<PolicyPort>,
    /// Traffic profile and SLA thresholds, as declared.
    pub sla: ServiceSdwanPolicy,
}

/// The whole network as an SD-WAN sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdwanModel {
    /// Sites, by member name.
    pub sites: BTreeMap<String, Site>,
    /// The overlay.
    pub overlay: Overlay,
    /// Application policies, sorted by (service, exporter).
    pub policies: Vec<AppPolicy>,
    /// The network's namespaces (status reports each link once per namespace).
    pub namespaces: Vec<String>,
}

impl SdwanModel {
    /// The model of a plan, or the reasons it cannot be made (a member without an edge or
    /// without prefixes, two members on one edge, a malformed CIDR). Pure.
    pub fn from_plan(plan: &NetworkPlan) -> Result<Self, Vec<ValidationIssue>> {
        let mut issues = Vec::new();
        let hubs: BTreeSet<&str> = plan
            .topology
            .sites
            .iter()
            .filter(|s| s.role == federation_core::topology::Role::Hub)
            .map(|s| s.member.as_str())
            .collect();
        let mut sites = BTreeMap::new();
        let mut edges: BTreeMap<&str, &str> = BTreeMap::new();
        for m in &plan.members {
            let field = format!("MemberCluster {}: spec.network", m.name);
            let network = m.network.as_ref();
            let Some(edge) = network.and_then(|n| n.sdwan_edge.as_deref()) else {
                issues.push(issue(
                    &format!("{field}.sdwanEdge"),
                    "an SD-WAN network needs each member's edge (device or node) in the controller",
                ));
                continue;
            };
            if let Some(other) = edges.insert(edge, &m.name) {
                issues.push(issue(
                    &format!("{field}.sdwanEdge"),
                    &format!("edge {edge} is already the edge of member {other}"),
                ));
            }
            let mut prefixes = BTreeSet::new();
            for cidr in network
                .iter()
                .flat_map(|n| n.pod_cidrs.iter().chain(&n.service_cidrs))
            {
                match canonical_prefix(cidr) {
                    Ok(c) => {
                        prefixes.insert(c);
                    }
                    Err(e) => issues.push(issue(&field, &e)),
                }
            }
            if prefixes.is_empty() {
                issues.push(issue(
                    &format!("{field}.podCIDRs"),
                    "an SD-WAN site needs the member's pod or service CIDRs (the prefixes behind its edge)",
                ));
            }
            sites.insert(
                m.name.clone(),
                Site {
                    member: m.name.clone(),
                    edge: edge.to_owned(),
                    prefixes: prefixes.into_iter().collect(),
                    hub: hubs.contains(m.name.as_str()),
                    address: network.and_then(|n| n.gateway_hints.first().cloned()),
                },
            );
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        let mut links: Vec<OverlayLink> = plan
            .topology
            .links
            .iter()
            .map(|l| OverlayLink {
                a: l.dialer.clone(),
                b: l.acceptor.clone(),
                cost: l.cost.max(1),
            })
            .collect();
        links.sort();
        let encrypted = plan.backend.sdwan.as_ref().is_some_and(|s| s.encryption);
        let mut policies = Vec::new();
        for svc in &plan.services {
            for exporter in &svc.exporters {
                let consumers: Vec<String> = svc
                    .consumers
                    .iter()
                    .filter(|c| **c != exporter.member && sites.contains_key(*c))
                    .cloned()
                    .collect();
                let mut ports: Vec<PolicyPort> = svc
                    .ports
                    .iter()
                    .map(|p| PolicyPort {
                        name: p.name.clone(),
                        port: p.port,
                        target_port: p.target_port,
                    })
                    .collect();
                ports.sort();
                policies.push(AppPolicy {
                    service: svc.name.clone(),
                    namespace: svc.namespace.clone(),
                    service_name: svc.service_name.clone(),
                    exporter: exporter.member.clone(),
                    consumers,
                    exporter_consumes: svc.consumers.contains(&exporter.member),
                    ports,
                    sla: svc.sdwan.clone().unwrap_or_default(),
                });
            }
        }
        policies.sort_by(|a, b| (&a.service, &a.exporter).cmp(&(&b.service, &b.exporter)));
        Ok(Self {
            sites,
            overlay: Overlay {
                topology: plan.topology_kind,
                links,
                encrypted,
            },
            policies,
            namespaces: plan.namespaces.clone(),
        })
    }

    /// The site of the member whose edge this is.
    pub fn site_of_edge(&self, edge: &str) -> Option<&Site> {
        self.sites.values().find(|s| s.edge == edge)
    }
}

fn issue(field: &str, message: &str) -> ValidationIssue {
    ValidationIssue {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// The prefix in its canonical spelling, or why it is not one. Host bits must be zero:
/// controllers store prefixes as given, and `10.1.2.3/16` would never compare equal to the
/// `10.1.0.0/16` a controller reports back.
pub fn canonical_prefix(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not a CIDR such as 10.0.0.0/16");
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    let (bits, width) = match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    if len > width {
        return Err(bad());
    }
    let host_mask = if len == width {
        0
    } else {
        (1u128 << (width - len)) - 1
    };
    if bits & host_mask != 0 {
        return Err(format!(
            "{text:?} has host bits set; write the network address"
        ));
    }
    Ok(format!("{addr}/{len}"))
}
