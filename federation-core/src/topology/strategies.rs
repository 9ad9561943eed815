//! The strategies: how a shape declared in a `FederatedNetwork` becomes links.
//!
//! Every strategy is a function of the sorted member list only, and every link decision is
//! local to the pair (or, for hub selection, to the spoke), so that a member joining or
//! leaving changes only its own links and a converged network is not churned.

use std::collections::HashSet;

use serde::Serialize;

use super::hashing::rendezvous_weight;
use super::{Link, MemberNode, Role, Site, TopologyError};
use crate::api::{TopologyKind, TopologySpec};

/// Link cost when the spec sets none.
const DEFAULT_COST: u32 = 1;

/// One link of an explicit topology, as declared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplicitEdge {
    /// The member that dials.
    pub dialer: String,
    /// The member that accepts.
    pub acceptor: String,
    /// Link cost, at least 1.
    pub cost: u32,
}

/// How members are linked: the validated, defaulted form of a [`TopologySpec`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Strategy {
    /// One link per pair of members.
    FullMesh {
        /// Cost of every link, at least 1.
        cost: u32,
    },
    /// Hubs mesh among themselves; every other member (spoke) dials hubs.
    HubSpoke {
        /// The hub members (order does not matter).
        hubs: Vec<String>,
        /// How many hubs each spoke dials; all hubs when `None`.
        hubs_per_spoke: Option<usize>,
        /// Cost of spoke-to-hub links, at least 1.
        spoke_cost: u32,
        /// Cost of hub-to-hub links, at least 1.
        hub_cost: u32,
    },
    /// Exactly the links listed.
    Explicit {
        /// The links (order does not matter).
        links: Vec<ExplicitEdge>,
    },
}

impl Strategy {
    /// The strategy a spec declares, with costs defaulted (a block's own cost, else
    /// `defaultCost`, else 1) and every member-independent rule checked.
    pub fn from_spec(spec: &TopologySpec) -> Result<Self, TopologyError> {
        let default_cost = spec.default_cost.unwrap_or(DEFAULT_COST);
        // The CRD's CEL rules reject these too; checking again keeps specs that bypassed
        // the API server (fedctl reading files, older CRDs) from being silently reinterpreted.
        if spec.kind != TopologyKind::HubSpoke && spec.hub_spoke.is_some() {
            return Err(TopologyError::UnexpectedParameters {
                field: "hubSpoke",
                allowed_with: TopologyKind::HubSpoke,
            });
        }
        if spec.kind != TopologyKind::Explicit && spec.explicit.is_some() {
            return Err(TopologyError::UnexpectedParameters {
                field: "explicit",
                allowed_with: TopologyKind::Explicit,
            });
        }
        let strategy = match spec.kind {
            TopologyKind::FullMesh => Self::FullMesh { cost: default_cost },
            TopologyKind::HubSpoke => {
                let hs = spec
                    .hub_spoke
                    .as_ref()
                    .ok_or(TopologyError::MissingParameters {
                        kind: spec.kind,
                        field: "hubSpoke",
                    })?;
                Self::HubSpoke {
                    hubs: hs.hubs.clone(),
                    // A count beyond usize cannot exceed the hubs either way: saturate.
                    hubs_per_spoke: hs
                        .hubs_per_spoke
                        .map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
                    spoke_cost: hs.spoke_cost.unwrap_or(default_cost),
                    hub_cost: hs.hub_cost.unwrap_or(default_cost),
                }
            }
            TopologyKind::Explicit => {
                let ex = spec
                    .explicit
                    .as_ref()
                    .ok_or(TopologyError::MissingParameters {
                        kind: spec.kind,
                        field: "explicit",
                    })?;
                let links = ex
                    .links
                    .iter()
                    .map(|l| ExplicitEdge {
                        dialer: l.dialer.clone(),
                        acceptor: l.acceptor.clone(),
                        cost: l.cost.unwrap_or(default_cost),
                    })
                    .collect();
                Self::Explicit { links }
            }
        };
        strategy.validate()?;
        Ok(strategy)
    }

    /// Checks the rules that do not depend on the members: costs, hub list, link list.
    /// [`build`](super::build) calls it too, since a `Strategy` can be built by hand.
    pub fn validate(&self) -> Result<(), TopologyError> {
        match self {
            Self::FullMesh { cost } => check_cost(*cost, || "full-mesh links".to_owned()),
            Self::HubSpoke {
                hubs,
                hubs_per_spoke,
                spoke_cost,
                hub_cost,
            } => {
                check_cost(*spoke_cost, || "spoke links".to_owned())?;
                check_cost(*hub_cost, || "hub links".to_owned())?;
                if hubs.is_empty() {
                    return Err(TopologyError::NoHubs);
                }
                if *hubs_per_spoke == Some(0) {
                    return Err(TopologyError::InvalidHubsPerSpoke);
                }
                let mut sorted: Vec<&str> = hubs.iter().map(String::as_str).collect();
                sorted.sort_unstable();
                match sorted.windows(2).find(|w| w[0] == w[1]) {
                    Some(w) => Err(TopologyError::DuplicateHub {
                        hub: w[0].to_owned(),
                    }),
                    None => Ok(()),
                }
            }
            Self::Explicit { links } => {
                let mut seen = HashSet::with_capacity(links.len());
                for l in links {
                    check_cost(l.cost, || {
                        format!("link {:?} -> {:?}", l.dialer, l.acceptor)
                    })?;
                    if l.dialer == l.acceptor {
                        return Err(TopologyError::SelfLink {
                            member: l.dialer.clone(),
                        });
                    }
                    let (a, b) = unordered(&l.dialer, &l.acceptor);
                    if !seen.insert((a, b)) {
                        return Err(TopologyError::DuplicateLink {
                            a: a.to_owned(),
                            b: b.to_owned(),
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Sites and links over `members`, which are sorted by name and unique; the strategy is
    /// valid. The caller sorts the result.
    pub(super) fn apply(
        &self,
        members: &[&MemberNode],
    ) -> Result<(Vec<Site>, Vec<Link>), TopologyError> {
        match self {
            Self::FullMesh { cost } => {
                let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                Ok((sites(members, |_| Role::Peer), mesh(&names, *cost)))
            }
            Self::HubSpoke {
                hubs,
                hubs_per_spoke,
                spoke_cost,
                hub_cost,
            } => hub_spoke(members, hubs, *hubs_per_spoke, *spoke_cost, *hub_cost),
            Self::Explicit { links } => {
                let is_member = |name: &str| {
                    members
                        .binary_search_by(|m| m.name.as_str().cmp(name))
                        .is_ok()
                };
                for l in links {
                    for end in [&l.dialer, &l.acceptor] {
                        if !is_member(end) {
                            return Err(TopologyError::UnknownMember {
                                member: end.clone(),
                                dialer: l.dialer.clone(),
                                acceptor: l.acceptor.clone(),
                            });
                        }
                    }
                }
                let links = links
                    .iter()
                    .map(|l| Link {
                        dialer: l.dialer.clone(),
                        acceptor: l.acceptor.clone(),
                        cost: l.cost,
                    })
                    .collect();
                Ok((sites(members, |_| Role::Peer), links))
            }
        }
    }
}

fn check_cost(cost: u32, what: impl FnOnce() -> String) -> Result<(), TopologyError> {
    if cost == 0 {
        return Err(TopologyError::InvalidCost { what: what() });
    }
    Ok(())
}

/// The pair as (smaller, greater) name.
fn unordered<'a>(x: &'a str, y: &'a str) -> (&'a str, &'a str) {
    if x <= y { (x, y) } else { (y, x) }
}

/// The link between two distinct peers. The rule looks at the pair only (the greater name
/// dials the smaller), so a member joining or leaving never flips another pair's direction.
pub(super) fn pair_link(x: &str, y: &str, cost: u32) -> Link {
    let (acceptor, dialer) = unordered(x, y);
    Link {
        dialer: dialer.to_owned(),
        acceptor: acceptor.to_owned(),
        cost,
    }
}

fn sites(members: &[&MemberNode], role: impl Fn(&str) -> Role) -> Vec<Site> {
    members
        .iter()
        .map(|m| Site {
            member: m.name.clone(),
            role: role(&m.name),
        })
        .collect()
}

/// One link per pair of `names` (sorted, unique), emitted already in (dialer, acceptor) order
/// so that the final sort only has to confirm it: full meshes are quadratic in size.
fn mesh(names: &[&str], cost: u32) -> Vec<Link> {
    let n = names.len();
    let mut links = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for (i, dialer) in names.iter().enumerate() {
        for acceptor in &names[..i] {
            links.push(pair_link(dialer, acceptor, cost));
        }
    }
    links
}

fn hub_spoke(
    members: &[&MemberNode],
    hubs: &[String],
    hubs_per_spoke: Option<usize>,
    spoke_cost: u32,
    hub_cost: u32,
) -> Result<(Vec<Site>, Vec<Link>), TopologyError> {
    let find = |name: &str| {
        members
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .and_then(|i| members.get(i).copied())
    };
    let mut hub_nodes = Vec::with_capacity(hubs.len());
    for hub in hubs {
        let node = find(hub).ok_or_else(|| TopologyError::UnknownHub { hub: hub.clone() })?;
        hub_nodes.push(node);
    }
    // Sorting makes the output independent of the order hubs are listed in.
    hub_nodes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let is_hub = |name: &str| {
        hub_nodes
            .binary_search_by(|h| h.name.as_str().cmp(name))
            .is_ok()
    };

    let hub_names: Vec<&str> = hub_nodes.iter().map(|h| h.name.as_str()).collect();
    // Hubs mesh among themselves regardless of health, like a full mesh, so that a flapping
    // hub does not churn the hub backbone.
    let mut links = mesh(&hub_names, hub_cost);
    let k = hubs_per_spoke.map_or(hub_nodes.len(), |k| k.min(hub_nodes.len()));
    links.reserve(members.len().saturating_sub(hub_nodes.len()) * k);
    for spoke in members.iter().filter(|m| !is_hub(&m.name)) {
        for hub in choose_hubs(&spoke.name, &hub_nodes, k) {
            links.push(Link {
                dialer: spoke.name.clone(),
                acceptor: hub.name.clone(),
                cost: spoke_cost,
            });
        }
    }
    let sites = sites(
        members,
        |name| {
            if is_hub(name) { Role::Hub } else { Role::Spoke }
        },
    );
    Ok((sites, links))
}

/// The hubs `spoke` dials: the `k` best by health (healthy hubs first), then by rendezvous
/// weight (highest first), ties by name. Preferring healthy hubs moves a spoke off a failed
/// hub; the weight keeps every other choice stable and spreads spokes evenly over the hubs.
/// When one of those hubs is silent (its last probe failed, short of the failure threshold),
/// the spoke also dials the best hubs that answer: it is served again at once, and keeps the
/// link it had in case the hub is back at the next probe (make before break).
fn choose_hubs<'m>(spoke: &str, hubs: &[&'m MemberNode], k: usize) -> Vec<&'m MemberNode> {
    if k >= hubs.len() {
        return hubs.to_vec();
    }
    let best = |answering_first: bool| {
        let mut ranked: Vec<(bool, u64, &MemberNode)> = hubs
            .iter()
            .map(|h| {
                let preferred = h.healthy && !(answering_first && h.silent);
                (preferred, rendezvous_weight(spoke, &h.name), *h)
            })
            .collect();
        ranked.sort_unstable_by(|x, y| {
            y.0.cmp(&x.0)
                .then(y.1.cmp(&x.1))
                .then_with(|| x.2.name.cmp(&y.2.name))
        });
        ranked
            .into_iter()
            .take(k)
            .map(|(_, _, h)| h)
            .collect::<Vec<_>>()
    };
    let mut chosen = best(false);
    if chosen.iter().any(|h| h.silent) {
        for h in best(true) {
            if !chosen.iter().any(|c| c.name == h.name) {
                chosen.push(h);
            }
        }
    }
    chosen
}
