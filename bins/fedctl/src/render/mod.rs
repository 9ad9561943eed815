//! A [`Graph`] as text a user can paste or open: Mermaid, Graphviz DOT, or a self-contained
//! SVG drawn here (no external program). All three are pure and deterministic, so they are
//! pinned by golden files.

mod dot;
mod layout;
mod mermaid;
mod svg;

pub use dot::dot;
pub use layout::{Layout, Point, layout};
pub use mermaid::mermaid;
pub use svg::svg;

use crate::graph::{Edge, Graph};

/// The picture formats of `fedctl topology`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Mermaid flowchart text (renders in GitHub and GitLab Markdown).
    Mermaid,
    /// Graphviz DOT text (`dot -Tpng`).
    Dot,
    /// A self-contained SVG image.
    Svg,
}

/// `graph` in `format`.
pub fn render(graph: &Graph, format: Format) -> String {
    match format {
        Format::Mermaid => mermaid(graph),
        Format::Dot => dot(graph),
        Format::Svg => svg(graph),
    }
}

/// The label of an edge: its cost, and its phase once one is known.
fn edge_label(e: &Edge) -> String {
    match e.phase {
        crate::graph::EdgePhase::Unknown => format!("cost {}", e.cost),
        p => format!("cost {} ({})", e.cost, p.as_str()),
    }
}

/// Fill and stroke of hubs, so they stand out in every format.
const HUB_FILL: &str = "#dbeafe";
const HUB_STROKE: &str = "#1e3a8a";
/// Fill and stroke of spokes and peers.
const NODE_FILL: &str = "#f8fafc";
const NODE_STROKE: &str = "#475569";
