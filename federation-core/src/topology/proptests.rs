//! Property tests of the invariants the planner promises (see the module docs):
//! 1. healthy members reach each other (full mesh; hub-and-spoke with a healthy hub);
//! 2. no self links; 3. no duplicate pairs (plus sorted output, ends are sites, costs >= 1);
//! 4. output independent of member (and hub) order;
//! 5. hub redundancy: each spoke dials min(k, hubs) hubs, min(k, healthy hubs) healthy ones;
//! 6. adding or removing a member (not a hub) changes only its own links;
//! 7. a hub leaving or failing moves only the spokes that dialed it (rendezvous stability);
//! 8. explicit topologies are exactly the declared links, and only bad lists are rejected.

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::Index;

use super::{ExplicitEdge, MemberNode, Role, Strategy as Shape, Topology, TopologyError, build};

const MAX_MEMBERS: usize = 24;

/// Unique names from a small alphabet: shrunk cases stay readable, and prefixes (`a`, `ab`)
/// exercise the lexicographic pair rule.
fn names(min: usize) -> impl Strategy<Value = Vec<String>> {
    btree_set("[a-f][a-f0-9]{0,2}", min..MAX_MEMBERS).prop_map(|s| s.into_iter().collect())
}

fn members(min: usize) -> impl Strategy<Value = Vec<MemberNode>> {
    (names(min), vec(any::<bool>(), MAX_MEMBERS)).prop_map(|(names, health)| {
        names
            .into_iter()
            .zip(health)
            .map(|(n, h)| MemberNode::new(n, h))
            .collect()
    })
}

#[derive(Clone, Debug)]
struct HubSpoke {
    members: Vec<MemberNode>,
    hubs: Vec<String>,
    k: Option<usize>,
}

impl HubSpoke {
    fn shape(&self) -> Shape {
        Shape::HubSpoke {
            hubs: self.hubs.clone(),
            hubs_per_spoke: self.k,
            spoke_cost: 2,
            hub_cost: 1,
        }
    }

    fn spokes(&self) -> impl Iterator<Item = &MemberNode> {
        self.members.iter().filter(|m| !self.hubs.contains(&m.name))
    }
}

/// Members, about a quarter of them hubs (at least one), and an optional hubs-per-spoke.
fn hub_spoke(min: usize) -> impl Strategy<Value = HubSpoke> {
    (
        members(min.max(1)),
        vec(prop::bool::weighted(0.25), MAX_MEMBERS),
        proptest::option::of(1usize..5),
    )
        .prop_map(|(members, mask, k)| {
            let mut hubs: Vec<String> = members
                .iter()
                .zip(mask)
                .filter(|(_, is_hub)| *is_hub)
                .map(|(m, _)| m.name.clone())
                .collect();
            if hubs.is_empty() {
                hubs.extend(members.first().map(|m| m.name.clone()));
            }
            HubSpoke { members, hubs, k }
        })
}

fn ok<T>(r: Result<T, TopologyError>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(e.to_string()))
}

fn healthy(members: &[MemberNode]) -> Vec<&str> {
    members
        .iter()
        .filter(|m| m.healthy)
        .map(|m| m.name.as_str())
        .collect()
}

/// The hubs `spoke` dials.
fn dialed<'a>(t: &'a Topology, spoke: &str) -> BTreeSet<&'a str> {
    t.links
        .iter()
        .filter(|l| l.dialer == spoke)
        .map(|l| l.acceptor.as_str())
        .collect()
}

fn without(members: &[MemberNode], name: &str) -> Vec<MemberNode> {
    members.iter().filter(|m| m.name != name).cloned().collect()
}

/// Invariants 2 and 3, plus the shape every consumer relies on.
fn assert_well_formed(t: &Topology, members: &[MemberNode]) -> Result<(), TestCaseError> {
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    let sites: Vec<&str> = t.sites.iter().map(|s| s.member.as_str()).collect();
    prop_assert_eq!(sites, names, "one site per member, sorted");
    prop_assert!(t.links.is_sorted(), "links sorted");
    let mut pairs = BTreeSet::new();
    for l in &t.links {
        prop_assert_ne!(&l.dialer, &l.acceptor, "self link");
        prop_assert!(l.cost >= 1);
        prop_assert!(t.site(&l.dialer).is_some() && t.site(&l.acceptor).is_some());
        let pair = if l.dialer < l.acceptor {
            (&l.dialer, &l.acceptor)
        } else {
            (&l.acceptor, &l.dialer)
        };
        prop_assert!(pairs.insert(pair), "duplicate pair {:?}", pair);
    }
    Ok(())
}

proptest! {
    #[test]
    fn full_mesh_links_every_pair_and_connects_healthy_members(members in members(0)) {
        let t = ok(build(&Shape::FullMesh { cost: 1 }, &members))?;
        assert_well_formed(&t, &members)?;
        let n = members.len();
        prop_assert_eq!(t.links.len(), n * n.saturating_sub(1) / 2);
        prop_assert!(t.is_connected_among(healthy(&members)));
    }

    #[test]
    fn full_mesh_ignores_member_order(
        (members, shuffled) in members(0).prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle()))
    ) {
        let s = Shape::FullMesh { cost: 1 };
        prop_assert_eq!(build(&s, &members), build(&s, &shuffled));
    }

    #[test]
    fn duplicate_members_are_rejected_whatever_the_order(
        (members, shuffled) in vec(("[a-c]", any::<bool>()), 0..8)
            .prop_map(|v| v.into_iter().map(|(n, h)| MemberNode::new(n, h)).collect::<Vec<_>>())
            .prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle()))
    ) {
        let s = Shape::FullMesh { cost: 1 };
        let r = build(&s, &members);
        let unique: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
        prop_assert_eq!(r.is_ok(), unique.len() == members.len());
        prop_assert_eq!(r, build(&s, &shuffled));
    }

    #[test]
    fn hub_spoke_is_well_formed_and_connects_healthy_members(hs in hub_spoke(1)) {
        let t = ok(build(&hs.shape(), &hs.members))?;
        assert_well_formed(&t, &hs.members)?;
        for l in &t.links {
            // Spokes never link to each other; hubs never dial spokes.
            prop_assert!(hs.hubs.contains(&l.acceptor));
        }
        for s in &t.sites {
            let role = if hs.hubs.contains(&s.member) { Role::Hub } else { Role::Spoke };
            prop_assert_eq!(s.role, role);
        }
        let any_healthy_hub = hs.members.iter().any(|m| m.healthy && hs.hubs.contains(&m.name));
        if any_healthy_hub {
            prop_assert!(t.is_connected_among(healthy(&hs.members)));
        }
    }

    #[test]
    fn hub_spoke_ignores_member_and_hub_order(
        (hs, members, hubs) in hub_spoke(1).prop_flat_map(|hs| {
            let (m, h) = (hs.members.clone(), hs.hubs.clone());
            (Just(hs), Just(m).prop_shuffle(), Just(h).prop_shuffle())
        })
    ) {
        let shuffled = HubSpoke { members, hubs, k: hs.k };
        prop_assert_eq!(build(&hs.shape(), &hs.members), build(&shuffled.shape(), &shuffled.members));
    }

    #[test]
    fn every_spoke_dials_k_distinct_hubs_preferring_healthy_ones(hs in hub_spoke(1)) {
        let t = ok(build(&hs.shape(), &hs.members))?;
        let healthy_hubs: BTreeSet<&str> = hs.members.iter()
            .filter(|m| m.healthy && hs.hubs.contains(&m.name))
            .map(|m| m.name.as_str())
            .collect();
        let k = hs.k.unwrap_or(usize::MAX);
        for spoke in hs.spokes() {
            let hubs = dialed(&t, &spoke.name);
            prop_assert_eq!(hubs.len(), k.min(hs.hubs.len()), "spoke {}", spoke.name);
            let healthy = hubs.intersection(&healthy_hubs).count();
            prop_assert_eq!(healthy, k.min(healthy_hubs.len()), "spoke {}", spoke.name);
        }
    }

    #[test]
    fn full_mesh_member_joining_or_leaving_changes_only_its_links(
        (all, pick) in (members(1), any::<Index>())
    ) {
        let x = &all[pick.index(all.len())].name;
        let s = Shape::FullMesh { cost: 1 };
        let with = ok(build(&s, &all))?;
        let rest = ok(build(&s, &without(&all, x)))?;
        let kept: Vec<_> = with.links.iter().filter(|l| !l.involves(x)).cloned().collect();
        prop_assert_eq!(kept, rest.links);
    }

    #[test]
    fn spoke_joining_or_leaving_changes_only_its_links(
        (hs, pick) in (hub_spoke(2), any::<Index>())
    ) {
        let spokes: Vec<&MemberNode> = hs.spokes().collect();
        prop_assume!(!spokes.is_empty());
        let x = &spokes[pick.index(spokes.len())].name;
        let with = ok(build(&hs.shape(), &hs.members))?;
        let rest = ok(build(&hs.shape(), &without(&hs.members, x)))?;
        let kept: Vec<_> = with.links.iter().filter(|l| !l.involves(x)).cloned().collect();
        prop_assert_eq!(kept, rest.links);
    }

    #[test]
    fn hub_leaving_or_failing_moves_only_its_spokes(
        (hs, pick, leaves) in (hub_spoke(2), any::<Index>(), any::<bool>())
    ) {
        prop_assume!(hs.hubs.len() >= 2);
        let h = hs.hubs[pick.index(hs.hubs.len())].clone();
        let after = if leaves {
            HubSpoke {
                members: without(&hs.members, &h),
                hubs: hs.hubs.iter().filter(|x| **x != h).cloned().collect(),
                k: hs.k,
            }
        } else {
            let mut failed = hs.clone();
            failed.members.iter_mut().filter(|m| m.name == h).for_each(|m| m.healthy = false);
            failed
        };
        let t0 = ok(build(&hs.shape(), &hs.members))?;
        let t1 = ok(build(&after.shape(), &after.members))?;
        for spoke in hs.spokes() {
            let (old, new) = (dialed(&t0, &spoke.name), dialed(&t1, &spoke.name));
            if !old.contains(h.as_str()) {
                prop_assert_eq!(&old, &new, "spoke {} did not dial {}", spoke.name, h);
            }
            let kept: BTreeSet<&str> = old.iter().copied().filter(|x| *x != h).collect();
            prop_assert!(new.is_superset(&kept), "spoke {} lost a hub other than {}", spoke.name, h);
        }
    }

    #[test]
    fn explicit_is_exactly_the_declared_links(
        (members, raw) in members(2).prop_flat_map(|m| {
            (Just(m), vec((any::<Index>(), any::<Index>(), 1u32..10), 0..30))
        })
    ) {
        let links: Vec<ExplicitEdge> = raw.iter().map(|(d, a, cost)| ExplicitEdge {
            dialer: members[d.index(members.len())].name.clone(),
            acceptor: members[a.index(members.len())].name.clone(),
            cost: *cost,
        }).collect();
        let mut pairs = BTreeSet::new();
        let valid = links.iter().all(|l| {
            l.dialer != l.acceptor && pairs.insert(BTreeSet::from([&l.dialer, &l.acceptor]))
        });
        let mut shuffled_members = members.clone();
        shuffled_members.reverse();
        let s = Shape::Explicit { links: links.clone() };
        let r = build(&s, &members);
        prop_assert_eq!(r.is_ok(), valid);
        prop_assert_eq!(&r, &build(&s, &shuffled_members));
        if let Ok(t) = r {
            assert_well_formed(&t, &members)?;
            let got: BTreeSet<_> = t.links.iter().map(|l| (&l.dialer, &l.acceptor, l.cost)).collect();
            let want: BTreeSet<_> = links.iter().map(|l| (&l.dialer, &l.acceptor, l.cost)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
