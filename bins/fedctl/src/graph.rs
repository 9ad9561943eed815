//! A network as a graph: members as nodes with their role, links as directed edges
//! (dialer -> acceptor) with cost and phase. Built from live status or from an offline plan;
//! the renderers in [`crate::render`] only read this.

use crate::report::{MemberRole, StatusReport};
use federation_core::api::LinkPhase;
use federation_core::plan::NetworkPlan;
use federation_core::topology::Role;
use std::collections::BTreeMap;

/// The phase an edge is drawn in. `Unknown` is for plans, which have no phase yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgePhase {
    /// Up in every namespace.
    Up,
    /// Not up yet somewhere, down nowhere.
    Pending,
    /// Down in at least one namespace.
    Down,
    /// Not observed (an offline plan).
    Unknown,
}

impl EdgePhase {
    /// The name printed in labels and legends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "Up",
            Self::Pending => "Pending",
            Self::Down => "Down",
            Self::Unknown => "Unknown",
        }
    }

    /// The colour of the phase: Up green, Pending amber, Down red, Unknown grey.
    pub fn colour(self) -> &'static str {
        match self {
            Self::Up => "#2e7d32",
            Self::Pending => "#f59e0b",
            Self::Down => "#d32f2f",
            Self::Unknown => "#9e9e9e",
        }
    }

    /// Every phase, in legend order.
    pub const ALL: [Self; 4] = [Self::Up, Self::Pending, Self::Down, Self::Unknown];
}

impl From<LinkPhase> for EdgePhase {
    fn from(p: LinkPhase) -> Self {
        match p {
            LinkPhase::Up => Self::Up,
            LinkPhase::Pending => Self::Pending,
            LinkPhase::Down => Self::Down,
        }
    }
}

/// A member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Member name.
    pub name: String,
    /// Hub, spoke or peer.
    pub role: MemberRole,
}

/// A link between two members, over all the network's namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The member that dials.
    pub dialer: String,
    /// The member that accepts.
    pub acceptor: String,
    /// Planned cost.
    pub cost: u32,
    /// The worst phase over the link's namespaces.
    pub phase: EdgePhase,
}

/// A network's picture: nodes sorted by name, edges by (dialer, acceptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    /// `namespace/name` of the network.
    pub title: String,
    /// Members.
    pub nodes: Vec<Node>,
    /// Links.
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The graph of a live network: members and links from its status, roles from its spec.
    /// A link that spans several namespaces is one edge in its worst phase (Down over
    /// Pending over Up), so a picture never hides a broken site.
    pub fn from_report(r: &StatusReport) -> Self {
        let nodes = r
            .members
            .iter()
            .map(|m| Node {
                name: m.name.clone(),
                role: r.role(&m.name),
            })
            .collect();
        let mut edges: BTreeMap<(String, String), Edge> = BTreeMap::new();
        for l in &r.status.links {
            let phase = EdgePhase::from(l.phase);
            edges
                .entry((l.dialer.clone(), l.acceptor.clone()))
                .and_modify(|e| {
                    e.phase = e.phase.max(phase);
                    e.cost = e.cost.max(l.cost);
                })
                .or_insert_with(|| Edge {
                    dialer: l.dialer.clone(),
                    acceptor: l.acceptor.clone(),
                    cost: l.cost,
                    phase,
                });
        }
        Self::new(
            format!("{}/{}", r.namespace, r.name),
            nodes,
            edges.into_values().collect(),
        )
    }

    /// The graph of a plan (offline): every link in phase `Unknown`.
    pub fn from_plan(p: &NetworkPlan) -> Self {
        let nodes = p
            .topology
            .sites
            .iter()
            .map(|s| Node {
                name: s.member.clone(),
                role: match s.role {
                    Role::Hub => MemberRole::Hub,
                    Role::Spoke => MemberRole::Spoke,
                    Role::Peer => MemberRole::Peer,
                },
            })
            .collect();
        let edges = p
            .topology
            .links
            .iter()
            .map(|l| Edge {
                dialer: l.dialer.clone(),
                acceptor: l.acceptor.clone(),
                cost: l.cost,
                phase: EdgePhase::Unknown,
            })
            .collect();
        Self::new(
            format!("{}/{}", p.network.namespace, p.network.name),
            nodes,
            edges,
        )
    }

    /// A graph from parts, sorted; nodes named only by an edge are added as peers so that no
    /// edge points nowhere.
    pub fn new(title: String, mut nodes: Vec<Node>, mut edges: Vec<Edge>) -> Self {
        for e in &edges {
            for end in [&e.dialer, &e.acceptor] {
                if !nodes.iter().any(|n| &n.name == end) {
                    nodes.push(Node {
                        name: end.clone(),
                        role: MemberRole::Peer,
                    });
                }
            }
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        edges.sort_by(|a, b| (&a.dialer, &a.acceptor).cmp(&(&b.dialer, &b.acceptor)));
        Self {
            title,
            nodes,
            edges,
        }
    }

    /// Index of a node by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Whether any node is a hub (so the layout uses two circles).
    pub fn has_hubs(&self) -> bool {
        self.nodes.iter().any(|n| n.role == MemberRole::Hub)
    }
}
