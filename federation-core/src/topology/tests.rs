//! Unit tests: one or more per strategy, per error and per lookup.

use super::*;
use crate::api::{ExplicitLink, ExplicitSpec, HubSpokeSpec, TopologyKind, TopologySpec};

fn healthy(names: &[&str]) -> Vec<MemberNode> {
    names.iter().map(|n| MemberNode::new(*n, true)).collect()
}

fn link(dialer: &str, acceptor: &str, cost: u32) -> Link {
    Link {
        dialer: dialer.into(),
        acceptor: acceptor.into(),
        cost,
    }
}

fn edge(dialer: &str, acceptor: &str, cost: u32) -> ExplicitEdge {
    ExplicitEdge {
        dialer: dialer.into(),
        acceptor: acceptor.into(),
        cost,
    }
}

fn hub_spoke(hubs: &[&str], k: Option<usize>) -> Strategy {
    Strategy::HubSpoke {
        hubs: hubs.iter().map(|h| (*h).to_owned()).collect(),
        hubs_per_spoke: k,
        spoke_cost: 5,
        hub_cost: 2,
    }
}

fn spec(kind: TopologyKind) -> TopologySpec {
    TopologySpec {
        kind,
        default_cost: None,
        hub_spoke: None,
        explicit: None,
    }
}

fn hubs_of<'a>(t: &'a Topology, spoke: &'a str) -> Vec<&'a str> {
    t.links
        .iter()
        .filter(|l| l.dialer == spoke)
        .map(|l| l.acceptor.as_str())
        .collect()
}

#[test]
fn full_mesh_links_every_pair_greater_name_dialing() {
    let mut members = healthy(&["c", "a", "d", "b"]);
    members[0].healthy = false; // health never removes a member from a mesh
    let t = build(&Strategy::FullMesh { cost: 3 }, &members).unwrap();
    let expected = [
        ("b", "a"),
        ("c", "a"),
        ("c", "b"),
        ("d", "a"),
        ("d", "b"),
        ("d", "c"),
    ];
    let expected: Vec<Link> = expected.iter().map(|(d, a)| link(d, a, 3)).collect();
    assert_eq!(t.links, expected);
    let sites: Vec<_> = t
        .sites
        .iter()
        .map(|s| (s.member.as_str(), s.role))
        .collect();
    assert_eq!(
        sites,
        [
            ("a", Role::Peer),
            ("b", Role::Peer),
            ("c", Role::Peer),
            ("d", Role::Peer)
        ]
    );
}

#[test]
fn full_mesh_of_zero_or_one_member_has_no_links() {
    let s = Strategy::FullMesh { cost: 1 };
    assert_eq!(build(&s, &[]).unwrap(), Topology::default());
    let one = build(&s, &healthy(&["a"])).unwrap();
    assert_eq!(one.sites.len(), 1);
    assert!(one.links.is_empty());
}

#[test]
fn hub_spoke_without_limit_links_every_spoke_to_every_hub() {
    let t = build(
        &hub_spoke(&["h2", "h1"], None),
        &healthy(&["s1", "h1", "s2", "h2"]),
    )
    .unwrap();
    assert_eq!(
        t.links,
        [
            link("h2", "h1", 2),
            link("s1", "h1", 5),
            link("s1", "h2", 5),
            link("s2", "h1", 5),
            link("s2", "h2", 5),
        ]
    );
    assert_eq!(t.site("h1").map(|s| s.role), Some(Role::Hub));
    assert_eq!(t.site("s2").map(|s| s.role), Some(Role::Spoke));
}

#[test]
fn hub_spoke_limit_picks_exactly_k_hubs_and_clamps_to_hub_count() {
    let members = healthy(&["h1", "h2", "h3", "s1", "s2", "s3", "s4"]);
    let t = build(&hub_spoke(&["h1", "h2", "h3"], Some(2)), &members).unwrap();
    for s in ["s1", "s2", "s3", "s4"] {
        assert_eq!(hubs_of(&t, s).len(), 2, "spoke {s}");
    }
    let clamped = build(&hub_spoke(&["h1", "h2", "h3"], Some(9)), &members).unwrap();
    let all = build(&hub_spoke(&["h1", "h2", "h3"], None), &members).unwrap();
    assert_eq!(clamped, all);
}

#[test]
fn hub_spoke_prefers_healthy_hubs_then_fills_with_unhealthy_ones() {
    let mut members = healthy(&["h1", "h2", "h3", "s1", "s2", "s3", "s4", "s5"]);
    members[0].healthy = false;
    members[1].healthy = false;
    let one = build(&hub_spoke(&["h1", "h2", "h3"], Some(1)), &members).unwrap();
    let two = build(&hub_spoke(&["h1", "h2", "h3"], Some(2)), &members).unwrap();
    for s in ["s1", "s2", "s3", "s4", "s5"] {
        assert_eq!(hubs_of(&one, s), ["h3"], "spoke {s}");
        let chosen = hubs_of(&two, s);
        assert_eq!(chosen.len(), 2);
        assert!(
            chosen.contains(&"h3"),
            "spoke {s} must keep its healthy hub"
        );
    }
    // Unhealthy hubs keep their mesh links: a flapping hub does not churn the backbone.
    assert!(one.link_between("h1", "h2").is_some());
}

#[test]
fn spokes_of_a_silent_hub_also_dial_one_that_answers_and_keep_the_first() {
    let names = ["h1", "h2", "s1", "s2", "s3", "s4", "s5", "s6"];
    let all_well = build(&hub_spoke(&["h1", "h2"], Some(1)), &healthy(&names)).unwrap();
    let mut members = healthy(&names);
    members[0].silent = true;
    let silent = build(&hub_spoke(&["h1", "h2"], Some(1)), &members).unwrap();
    let mut moved = 0;
    for s in &names[2..] {
        let before = hubs_of(&all_well, s);
        let now = hubs_of(&silent, s);
        if before == ["h1"] {
            // Make before break: the link to the silent hub stays, the other hub is added.
            let mut both = now.clone();
            both.sort_unstable();
            assert_eq!(both, ["h1", "h2"], "spoke {s}");
            moved += 1;
        } else {
            assert_eq!(now, before, "spoke {s}: its hub answers, nothing changes");
        }
    }
    assert!(moved > 0, "no spoke dialled h1: the case is not exercised");
    // Once the threshold declares the hub unhealthy, the spokes leave it.
    members[0].healthy = false;
    let failed = build(&hub_spoke(&["h1", "h2"], Some(1)), &members).unwrap();
    for s in &names[2..] {
        assert_eq!(hubs_of(&failed, s), ["h2"], "spoke {s}");
    }
}

#[test]
fn hub_spoke_spreads_spokes_evenly_over_hubs() {
    let mut members = healthy(&["hub-1", "hub-2", "hub-3"]);
    members.extend((0..3000).map(|i| MemberNode::new(format!("spoke-{i}"), true)));
    let t = build(&hub_spoke(&["hub-1", "hub-2", "hub-3"], Some(1)), &members).unwrap();
    for hub in ["hub-1", "hub-2", "hub-3"] {
        let spokes = t
            .links
            .iter()
            .filter(|l| l.acceptor == hub && l.dialer.starts_with("spoke-"))
            .count();
        assert!((850..=1150).contains(&spokes), "{hub} has {spokes} spokes");
    }
}

#[test]
fn hub_choice_is_pinned_across_releases() {
    // Golden values: if the hash or the ranking changes, every spoke of every running network
    // would move on upgrade. Change these only together with a migration note.
    let members = healthy(&[
        "east", "west", "north", "south", "edge-1", "edge-2", "edge-3",
    ]);
    let t = build(
        &hub_spoke(&["east", "west", "north", "south"], Some(2)),
        &members,
    )
    .unwrap();
    let chosen: Vec<_> = ["edge-1", "edge-2", "edge-3"]
        .iter()
        .map(|s| hubs_of(&t, s))
        .collect();
    assert_eq!(chosen, GOLDEN_HUB_CHOICE);
}

const GOLDEN_HUB_CHOICE: [[&str; 2]; 3] = [["east", "north"], ["north", "south"], ["east", "west"]];

#[test]
fn explicit_gives_exactly_the_listed_links() {
    let s = Strategy::Explicit {
        links: vec![edge("a", "c", 4), edge("b", "a", 1)],
    };
    let t = build(&s, &healthy(&["c", "b", "a", "d"])).unwrap();
    assert_eq!(t.links, [link("a", "c", 4), link("b", "a", 1)]);
    assert_eq!(t.sites.len(), 4);
    assert!(t.sites.iter().all(|s| s.role == Role::Peer));
}

#[test]
fn lookups_find_links_in_either_direction() {
    let s = Strategy::Explicit {
        links: vec![edge("a", "c", 4), edge("b", "a", 1)],
    };
    let t = build(&s, &healthy(&["a", "b", "c", "d"])).unwrap();
    assert_eq!(t.link_between("c", "a"), Some(&link("a", "c", 4)));
    assert_eq!(t.link_between("a", "b"), Some(&link("b", "a", 1)));
    assert_eq!(t.link_between("b", "c"), None);
    assert_eq!(t.links_of("a").count(), 2);
    assert_eq!(t.links_of("d").count(), 0);
    assert_eq!(t.site("zz"), None);
}

#[test]
fn connectivity_counts_only_paths_inside_the_set() {
    let s = Strategy::Explicit {
        links: vec![edge("a", "b", 1), edge("b", "c", 1)],
    };
    let t = build(&s, &healthy(&["a", "b", "c", "d"])).unwrap();
    assert!(t.is_connected_among(["a", "b", "c"]));
    assert!(!t.is_connected_among(["a", "c"]), "the path runs through b");
    assert!(!t.is_connected_among(["a", "b", "c", "d"]));
    assert!(!t.is_connected_among(["a", "nope"]));
    assert!(t.is_connected_among(["d"]));
    assert!(t.is_connected_among(Vec::<String>::new()));
}

#[test]
fn serializes_for_the_cli() {
    let t = build(&Strategy::FullMesh { cost: 1 }, &healthy(&["a", "b"])).unwrap();
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "sites": [{"member": "a", "role": "Peer"}, {"member": "b", "role": "Peer"}],
            "links": [{"dialer": "b", "acceptor": "a", "cost": 1}],
        })
    );
}

#[test]
fn from_spec_defaults_costs_to_one() {
    assert_eq!(
        Strategy::from_spec(&spec(TopologyKind::FullMesh)),
        Ok(Strategy::FullMesh { cost: 1 })
    );
    let mut hs = spec(TopologyKind::HubSpoke);
    hs.hub_spoke = Some(HubSpokeSpec {
        hubs: vec!["h".into()],
        hubs_per_spoke: Some(1),
        spoke_cost: None,
        hub_cost: Some(7),
    });
    assert_eq!(
        Strategy::from_spec(&hs),
        Ok(Strategy::HubSpoke {
            hubs: vec!["h".into()],
            hubs_per_spoke: Some(1),
            spoke_cost: 1,
            hub_cost: 7
        })
    );
}

#[test]
fn from_spec_applies_default_cost_where_no_cost_is_set() {
    let mut ex = spec(TopologyKind::Explicit);
    ex.default_cost = Some(9);
    ex.explicit = Some(ExplicitSpec {
        links: vec![
            ExplicitLink {
                dialer: "a".into(),
                acceptor: "b".into(),
                cost: None,
            },
            ExplicitLink {
                dialer: "a".into(),
                acceptor: "c".into(),
                cost: Some(2),
            },
        ],
    });
    assert_eq!(
        Strategy::from_spec(&ex),
        Ok(Strategy::Explicit {
            links: vec![edge("a", "b", 9), edge("a", "c", 2)]
        })
    );
}

#[test]
fn from_spec_rejects_missing_and_foreign_parameter_blocks() {
    assert!(matches!(
        Strategy::from_spec(&spec(TopologyKind::HubSpoke)),
        Err(TopologyError::MissingParameters {
            field: "hubSpoke",
            ..
        })
    ));
    assert!(matches!(
        Strategy::from_spec(&spec(TopologyKind::Explicit)),
        Err(TopologyError::MissingParameters {
            field: "explicit",
            ..
        })
    ));
    let mut mesh = spec(TopologyKind::FullMesh);
    mesh.explicit = Some(ExplicitSpec { links: vec![] });
    assert!(matches!(
        Strategy::from_spec(&mesh),
        Err(TopologyError::UnexpectedParameters {
            field: "explicit",
            ..
        })
    ));
}

#[test]
fn zero_costs_are_rejected_everywhere() {
    let mut zero_default = spec(TopologyKind::FullMesh);
    zero_default.default_cost = Some(0);
    let cases = [
        Strategy::from_spec(&zero_default).map(|_| ()),
        build(&Strategy::FullMesh { cost: 0 }, &[]).map(|_| ()),
        Strategy::HubSpoke {
            hubs: vec!["h".into()],
            hubs_per_spoke: None,
            spoke_cost: 0,
            hub_cost: 1,
        }
        .validate(),
        Strategy::HubSpoke {
            hubs: vec!["h".into()],
            hubs_per_spoke: None,
            spoke_cost: 1,
            hub_cost: 0,
        }
        .validate(),
        Strategy::Explicit {
            links: vec![edge("a", "b", 0)],
        }
        .validate(),
    ];
    for case in cases {
        assert!(
            matches!(case, Err(TopologyError::InvalidCost { .. })),
            "{case:?}"
        );
    }
}

#[test]
fn duplicate_members_are_rejected() {
    let members = healthy(&["b", "a", "b"]);
    assert_eq!(
        build(&Strategy::FullMesh { cost: 1 }, &members),
        Err(TopologyError::DuplicateMember { name: "b".into() })
    );
}

#[test]
fn hub_errors() {
    let members = healthy(&["h", "s"]);
    assert_eq!(
        build(&hub_spoke(&["h", "x"], None), &members),
        Err(TopologyError::UnknownHub { hub: "x".into() })
    );
    assert_eq!(
        build(&hub_spoke(&["h", "h"], None), &members),
        Err(TopologyError::DuplicateHub { hub: "h".into() })
    );
    assert_eq!(
        build(&hub_spoke(&[], None), &members),
        Err(TopologyError::NoHubs)
    );
    assert_eq!(
        build(&hub_spoke(&["h"], Some(0)), &members),
        Err(TopologyError::InvalidHubsPerSpoke)
    );
}

#[test]
fn explicit_link_errors() {
    let members = healthy(&["a", "b"]);
    let explicit = |links| build(&Strategy::Explicit { links }, &members);
    assert_eq!(
        explicit(vec![edge("a", "z", 1)]),
        Err(TopologyError::UnknownMember {
            member: "z".into(),
            dialer: "a".into(),
            acceptor: "z".into()
        })
    );
    assert_eq!(
        explicit(vec![edge("a", "a", 1)]),
        Err(TopologyError::SelfLink { member: "a".into() })
    );
    for second in [edge("a", "b", 2), edge("b", "a", 1)] {
        assert_eq!(
            explicit(vec![edge("a", "b", 1), second]),
            Err(TopologyError::DuplicateLink {
                a: "a".into(),
                b: "b".into()
            })
        );
    }
}

#[test]
fn errors_explain_themselves() {
    let err = TopologyError::UnknownMember {
        member: "z".into(),
        dialer: "a".into(),
        acceptor: "z".into(),
    };
    assert_eq!(
        err.to_string(),
        r#"link "a" -> "z" names "z", which is not a member of the network"#
    );
}
