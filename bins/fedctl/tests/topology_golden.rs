//! The pictures of a fixed topology, pinned by golden files in `tests/golden/`.
//!
//! After an intended change to a renderer, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p fedctl --test topology_golden` and review the diff (open the
//! SVG in a browser). Without `UPDATE_GOLDEN`, any drift fails the test.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use fedctl::graph::{Edge, EdgePhase, Graph, Node};
use fedctl::render::{Format, render};
use fedctl::report::MemberRole;
use std::path::PathBuf;

/// Two hubs and three spokes, with a link in every phase: what a user sees of a network with
/// redundant hubs while one spoke's link is down and another is still coming up.
fn fixed() -> Graph {
    let node = |name: &str, role| Node {
        name: name.into(),
        role,
    };
    let edge = |dialer: &str, acceptor: &str, cost, phase| Edge {
        dialer: dialer.into(),
        acceptor: acceptor.into(),
        cost,
        phase,
    };
    Graph::new(
        "fednet/shop".into(),
        vec![
            node("hub-a", MemberRole::Hub),
            node("hub-b", MemberRole::Hub),
            node("east", MemberRole::Spoke),
            node("north", MemberRole::Spoke),
            node("west", MemberRole::Spoke),
        ],
        vec![
            edge("hub-b", "hub-a", 1, EdgePhase::Up),
            edge("east", "hub-a", 5, EdgePhase::Up),
            edge("east", "hub-b", 5, EdgePhase::Pending),
            edge("north", "hub-a", 5, EdgePhase::Up),
            edge("west", "hub-b", 5, EdgePhase::Down),
            edge("west", "hub-a", 10, EdgePhase::Unknown),
        ],
    )
}

fn check(format: Format, file: &str) {
    let got = render(&fixed(), format);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_GOLDEN=1", path.display()));
    assert!(
        got == want,
        "{file} drifted from its golden file; if intended, regenerate with UPDATE_GOLDEN=1 and review.\n--- got\n{got}"
    );
}

#[test]
fn svg_matches_its_golden_file() {
    check(Format::Svg, "shop.svg");
}

#[test]
fn dot_matches_its_golden_file() {
    check(Format::Dot, "shop.dot");
}

#[test]
fn mermaid_matches_its_golden_file() {
    check(Format::Mermaid, "shop.mmd");
}

/// What the golden files pin, said directly, so a regenerated file cannot silently lose it.
#[test]
fn every_format_shows_roles_directions_costs_and_phase_colours() {
    let g = fixed();
    let svg = render(&g, Format::Svg);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        !svg.contains("href") && !svg.contains("<script"),
        "self-contained"
    );
    assert_eq!(svg.matches("<g class=\"member hub\">").count(), 2);
    assert_eq!(svg.matches("<g class=\"member spoke\">").count(), 3);
    assert_eq!(svg.matches("<g class=\"link ").count(), 6);
    for (phase, colour) in [
        ("up", "#2e7d32"),
        ("pending", "#f59e0b"),
        ("down", "#d32f2f"),
        ("unknown", "#9e9e9e"),
    ] {
        let start = svg.find(&format!("<g class=\"link {phase}\">")).unwrap();
        let group = &svg[start..start + svg[start..].find("</g>").unwrap()];
        assert!(
            group.contains(&format!("stroke=\"{colour}\"")),
            "{phase}: {group}"
        );
    }
    assert!(svg.contains("<title>west -&gt; hub-b: cost 5 (Down)</title>"));

    let dot = render(&g, Format::Dot);
    assert!(dot.contains("\"hub-a\" [shape=doubleoctagon"));
    assert!(dot.contains("\"east\" [shape=ellipse"));
    assert!(dot.contains(
        "\"west\" -> \"hub-b\" [label=\"cost 5 (Down)\", color=\"#d32f2f\", fontcolor=\"#d32f2f\"];"
    ));
    assert!(dot.contains("\"west\" -> \"hub-a\" [label=\"cost 10\", color=\"#9e9e9e\""));

    let mermaid = render(&g, Format::Mermaid);
    assert!(mermaid.contains("flowchart LR"));
    assert!(mermaid.contains("{{\"hub-a\"}}:::hub"));
    assert!(mermaid.contains("(\"east\"):::spoke"));
    assert_eq!(mermaid.matches(" -->|").count(), 6);
    assert_eq!(mermaid.matches("linkStyle ").count(), 6);
}

/// A full mesh is drawn on one circle and its nodes are peers.
#[test]
fn a_full_mesh_has_no_hubs_in_any_format() {
    let nodes = ["a", "b", "c"]
        .iter()
        .map(|n| Node {
            name: (*n).into(),
            role: MemberRole::Peer,
        })
        .collect();
    let g = Graph::new("ns/mesh".into(), nodes, Vec::new());
    assert!(!render(&g, Format::Svg).contains("class=\"member hub\""));
    assert!(!render(&g, Format::Dot).contains("doubleoctagon"));
    assert!(!render(&g, Format::Mermaid).contains(":::hub"));
}
