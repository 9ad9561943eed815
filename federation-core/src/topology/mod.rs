//! The topology planner: which member dials which, at what cost.
//!
//! Pure by design (no I/O, no async, no clients): the engine calls it on every reconcile, so
//! the same inputs must always give the same [`Topology`], whatever the order members were
//! listed or observed in. Three rules keep reconciles quiet:
//! - output is sorted and independent of input order;
//! - every link decision is local to its pair (or, for hub choice, to its spoke), so a member
//!   joining or leaving changes only links that involve it;
//! - health only steers which hubs a spoke dials; it never removes a member, so a flapping
//!   cluster does not churn the rest of the network.
//!
//! ```
//! use federation_core::topology::{build, MemberNode, Strategy};
//!
//! let members = ["a", "b", "c"].map(|n| MemberNode::new(n, true));
//! let topology = build(&Strategy::FullMesh { cost: 1 }, &members)?;
//! assert_eq!(topology.links.len(), 3);
//! assert!(topology.link_between("a", "c").is_some());
//! # Ok::<(), federation_core::topology::TopologyError>(())
//! ```

mod error;
mod hashing;
mod strategies;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::Serialize;

pub use error::TopologyError;
pub use strategies::{ExplicitEdge, Strategy};

/// One member as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct MemberNode {
    /// The `MemberCluster` name.
    pub name: String,
    /// Whether the member is healthy (its probes have not failed past the threshold); only
    /// steers which hubs spokes prefer.
    pub healthy: bool,
    /// Whether the member's last probe failed (it may be back at the next one): a spoke whose
    /// hub is silent also dials the next hub that answers, keeping the first (make before
    /// break), so it is served again within one probe interval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
}

impl MemberNode {
    /// A member with the given name and health, not silent.
    pub fn new(name: impl Into<String>, healthy: bool) -> Self {
        Self {
            name: name.into(),
            healthy,
            silent: false,
        }
    }

    /// The same member, silent or not.
    #[must_use]
    pub fn with_silent(mut self, silent: bool) -> Self {
        self.silent = silent;
        self
    }
}

/// The part a member plays in a topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Role {
    /// A member of a full-mesh or explicit topology.
    Peer,
    /// A hub of a hub-and-spoke topology.
    Hub,
    /// A non-hub member of a hub-and-spoke topology.
    Spoke,
}

/// One member's place in a topology.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Site {
    /// The member name.
    pub member: String,
    /// Its role.
    pub role: Role,
}

/// A link between two members. Links carry traffic both ways; the direction only says who
/// opens the connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Link {
    /// The member that dials (the client side).
    pub dialer: String,
    /// The member that accepts (so it needs link access: an ingress the dialer can reach).
    pub acceptor: String,
    /// Cost, at least 1 (lower is preferred).
    pub cost: u32,
}

impl Link {
    /// Whether `member` is an end of this link.
    pub fn involves(&self, member: &str) -> bool {
        self.dialer == member || self.acceptor == member
    }
}

/// Sites and links of a network.
///
/// [`build`] returns `sites` sorted by member and `links` sorted by (dialer, acceptor), with
/// no self links and at most one link per pair of members. The lookups rely on that order:
/// keep it when changing the fields by hand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Topology {
    /// One site per member.
    pub sites: Vec<Site>,
    /// The links.
    pub links: Vec<Link>,
}

impl Topology {
    /// The site of `member`, if it is one.
    pub fn site(&self, member: &str) -> Option<&Site> {
        self.sites
            .binary_search_by(|s| s.member.as_str().cmp(member))
            .ok()
            .and_then(|i| self.sites.get(i))
    }

    /// The links `member` dials or accepts.
    pub fn links_of<'a>(&'a self, member: &'a str) -> impl Iterator<Item = &'a Link> {
        self.links.iter().filter(move |l| l.involves(member))
    }

    /// The link between `a` and `b`, in either direction.
    pub fn link_between(&self, a: &str, b: &str) -> Option<&Link> {
        self.directed_link(a, b)
            .or_else(|| self.directed_link(b, a))
    }

    fn directed_link(&self, dialer: &str, acceptor: &str) -> Option<&Link> {
        self.links
            .binary_search_by(|l| (l.dialer.as_str(), l.acceptor.as_str()).cmp(&(dialer, acceptor)))
            .ok()
            .and_then(|i| self.links.get(i))
    }

    /// Whether the given members can all reach each other over links among themselves alone
    /// (direction ignored; paths through members outside the set do not count), i.e. whether
    /// they stay connected if every other member fails. False if one of them is not a site;
    /// true for fewer than two members.
    pub fn is_connected_among<I, S>(&self, members: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for m in members {
            let Some(site) = self.site(m.as_ref()) else {
                return false;
            };
            let next = index.len();
            index.entry(site.member.as_str()).or_insert(next);
        }
        // Union-find over the induced subgraph: same answer as a BFS ignoring direction,
        // without building adjacency lists for a possibly quadratic link set.
        let mut parent: Vec<usize> = (0..index.len()).collect();
        let mut components = index.len();
        for l in &self.links {
            if let (Some(&x), Some(&y)) =
                (index.get(l.dialer.as_str()), index.get(l.acceptor.as_str()))
            {
                let (rx, ry) = (find_root(&mut parent, x), find_root(&mut parent, y));
                if rx != ry {
                    parent[rx] = ry;
                    components -= 1;
                }
            }
        }
        components <= 1
    }
}

/// Root of `x` with path halving. Indices come from `index`, so they are in range.
fn find_root(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// The topology `strategy` gives over `members` (in any order; names must be unique).
pub fn build(strategy: &Strategy, members: &[MemberNode]) -> Result<Topology, TopologyError> {
    strategy.validate()?;
    let mut sorted: Vec<&MemberNode> = members.iter().collect();
    // Ties are broken by health too so that the error below does not depend on input order.
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(TopologyError::DuplicateMember {
            name: w[0].name.clone(),
        });
    }
    let (mut sites, mut links) = strategy.apply(&sorted)?;
    // Stable sort: linear on the already-sorted output of the mesh builders.
    sites.sort();
    links.sort();
    Ok(Topology { sites, links })
}
