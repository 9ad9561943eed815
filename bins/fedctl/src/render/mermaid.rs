//! Mermaid flowchart text.

use super::{HUB_FILL, HUB_STROKE, NODE_FILL, NODE_STROKE, edge_label};
use crate::graph::Graph;
use crate::report::MemberRole;
use std::fmt::Write as _;

/// The graph as a Mermaid flowchart: hubs as hexagons, spokes and peers as rounded boxes,
/// links as arrows dialer --> acceptor labelled with their cost and coloured by phase.
pub fn mermaid(g: &Graph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "---\ntitle: {}\n---", escape(&g.title));
    let _ = writeln!(s, "flowchart LR");
    // Ids are positions, not names: member names may hold characters Mermaid reads as syntax.
    for (i, n) in g.nodes.iter().enumerate() {
        let name = escape(&n.name);
        let shape = match n.role {
            MemberRole::Hub => format!("{{{{\"{name}\"}}}}"),
            MemberRole::Spoke | MemberRole::Peer => format!("(\"{name}\")"),
        };
        let _ = writeln!(s, "  n{i}{shape}:::{}", n.role.as_str());
    }
    for e in &g.edges {
        let (Some(d), Some(a)) = (g.index(&e.dialer), g.index(&e.acceptor)) else {
            continue;
        };
        let _ = writeln!(s, "  n{d} -->|\"{}\"| n{a}", escape(&edge_label(e)));
    }
    let _ = writeln!(
        s,
        "  classDef hub fill:{HUB_FILL},stroke:{HUB_STROKE},stroke-width:3px"
    );
    let _ = writeln!(s, "  classDef spoke fill:{NODE_FILL},stroke:{NODE_STROKE}");
    let _ = writeln!(s, "  classDef peer fill:{NODE_FILL},stroke:{NODE_STROKE}");
    // linkStyle numbers edges in the order they were declared above.
    let drawn = g
        .edges
        .iter()
        .filter(|e| g.index(&e.dialer).is_some() && g.index(&e.acceptor).is_some());
    for (i, e) in drawn.enumerate() {
        let c = e.phase.colour();
        let _ = writeln!(s, "  linkStyle {i} stroke:{c},stroke-width:2px,color:{c}");
    }
    s
}

/// Mermaid has no backslash escapes inside quoted labels; it takes HTML entity codes.
fn escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', " ")
}
