//! Graphviz DOT text.

use super::{HUB_FILL, HUB_STROKE, NODE_FILL, NODE_STROKE, edge_label};
use crate::graph::Graph;
use crate::report::MemberRole;
use std::fmt::Write as _;

/// The graph in DOT: hubs as bold double octagons, spokes and peers as ellipses, links as
/// edges dialer -> acceptor labelled with their cost and coloured by phase.
pub fn dot(g: &Graph) -> String {
    let mut s = String::new();
    let title = quote(&g.title);
    let _ = writeln!(s, "digraph {title} {{");
    let _ = writeln!(s, "  label={title};\n  labelloc=t;");
    let _ = writeln!(s, "  node [fontname=\"Helvetica\", style=filled];");
    let _ = writeln!(s, "  edge [fontname=\"Helvetica\", penwidth=2];");
    for n in &g.nodes {
        let attrs = match n.role {
            MemberRole::Hub => format!(
                "shape=doubleoctagon, style=\"filled,bold\", fillcolor=\"{HUB_FILL}\", color=\"{HUB_STROKE}\""
            ),
            MemberRole::Spoke | MemberRole::Peer => {
                format!("shape=ellipse, fillcolor=\"{NODE_FILL}\", color=\"{NODE_STROKE}\"")
            }
        };
        let _ = writeln!(
            s,
            "  {} [{attrs}, tooltip=\"{}\"];",
            quote(&n.name),
            n.role.as_str()
        );
    }
    for e in &g.edges {
        let c = e.phase.colour();
        let _ = writeln!(
            s,
            "  {} -> {} [label={}, color=\"{c}\", fontcolor=\"{c}\"];",
            quote(&e.dialer),
            quote(&e.acceptor),
            quote(&edge_label(e))
        );
    }
    s.push_str("}\n");
    s
}

/// A DOT double-quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
