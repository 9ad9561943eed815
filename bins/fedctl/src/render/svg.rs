//! A self-contained SVG: no scripts, fonts or external references.

use super::layout::{Point, layout};
use super::{HUB_FILL, HUB_STROKE, NODE_FILL, NODE_STROKE, edge_label};
use crate::graph::{EdgePhase, Graph};
use crate::report::MemberRole;
use std::fmt::Write as _;

/// Radius of a spoke or peer; half the side of a hub's square.
const NODE_R: f64 = 24.0;
/// Height of the title band above the drawing.
const TITLE_H: f64 = 40.0;
/// Height of the legend band below it.
const LEGEND_H: f64 = 40.0;

/// The graph as an SVG document: hubs as bold rounded boxes holding their name, spokes and
/// peers as circles named on their outer side, links as arrows dialer -> acceptor coloured
/// by phase with the cost at their middle, and a legend of the phases drawn.
pub fn svg(g: &Graph) -> String {
    let l = layout(g);
    let width = l.width.max(360.0);
    let height = l.height + TITLE_H + LEGEND_H;
    // Centre the drawing when the legend makes the picture wider than the rings.
    let dx = (width - l.width) / 2.0;
    let at = |p: Point| Point {
        x: p.x + dx,
        y: p.y + TITLE_H,
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="13">"#,
        n(width),
        n(height),
        n(width),
        n(height)
    );
    let _ = writeln!(s, "<title>{}</title>", xml(&g.title));
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, "<defs>");
    for p in phases(g) {
        let _ = writeln!(
            s,
            r#"<marker id="arrow-{}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            p.as_str(),
            p.colour()
        );
    }
    let _ = writeln!(s, "</defs>");
    let _ = writeln!(
        s,
        r#"<text x="{}" y="26" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        n(width / 2.0),
        xml(&g.title)
    );
    for e in &g.edges {
        let (Some(d), Some(a)) = (g.index(&e.dialer), g.index(&e.acceptor)) else {
            continue;
        };
        let (from, to) = (at(l.positions[d]), at(l.positions[a]));
        let (len, ux, uy) = {
            let (vx, vy) = (to.x - from.x, to.y - from.y);
            let len = vx.hypot(vy).max(f64::EPSILON);
            (len, vx / len, vy / len)
        };
        // Stop short of both nodes' outlines so the arrowhead stays visible.
        let (gap_from, gap_to) = (
            reach(&g.nodes[d], ux, uy) + 4.0,
            reach(&g.nodes[a], ux, uy) + 4.0,
        );
        if len <= gap_from + gap_to {
            continue;
        }
        let (x1, y1) = (from.x + ux * gap_from, from.y + uy * gap_from);
        let (x2, y2) = (to.x - ux * gap_to, to.y - uy * gap_to);
        let c = e.phase.colour();
        let _ = writeln!(
            s,
            r#"<g class="link {}"><title>{} -&gt; {}: {}</title><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{c}" stroke-width="2" marker-end="url(#arrow-{})"/><text x="{}" y="{}" text-anchor="middle" fill="{c}" stroke="white" stroke-width="4" paint-order="stroke">{}</text></g>"#,
            e.phase.as_str().to_lowercase(),
            xml(&e.dialer),
            xml(&e.acceptor),
            xml(&edge_label(e)),
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            e.phase.as_str(),
            n((x1 + x2) / 2.0),
            n((y1 + y2) / 2.0 - 4.0),
            xml(&format!("cost {}", e.cost))
        );
    }
    let centre = Point {
        x: width / 2.0,
        y: TITLE_H + l.height / 2.0,
    };
    for (i, node) in g.nodes.iter().enumerate() {
        let p = at(l.positions[i]);
        let name = xml(&node.name);
        let body = match node.role {
            // A hub's name is written inside its box, which grows with the name: nothing is
            // ever drawn over it.
            MemberRole::Hub => {
                let half = hub_half_width(&node.name);
                format!(
                    r#"<rect x="{}" y="{}" width="{}" height="{}" rx="8" fill="{HUB_FILL}" stroke="{HUB_STROKE}" stroke-width="3"/><text x="{}" y="{}" text-anchor="middle" font-weight="bold">{name}</text>"#,
                    n(p.x - half),
                    n(p.y - NODE_R),
                    n(2.0 * half),
                    n(2.0 * NODE_R),
                    n(p.x),
                    n(p.y + 5.0)
                )
            }
            // A spoke's name goes outside its circle, away from the centre, where its links
            // (which run inwards) are not.
            MemberRole::Spoke | MemberRole::Peer => {
                let (vx, vy) = (p.x - centre.x, p.y - centre.y);
                let len = vx.hypot(vy);
                let (ux, uy) = if len < 1.0 {
                    (0.0, 1.0)
                } else {
                    (vx / len, vy / len)
                };
                let anchor = match ux {
                    x if x > 0.3 => "start",
                    x if x < -0.3 => "end",
                    _ => "middle",
                };
                format!(
                    r#"<circle cx="{}" cy="{}" r="{}" fill="{NODE_FILL}" stroke="{NODE_STROKE}" stroke-width="1.5"/><text x="{}" y="{}" text-anchor="{anchor}" stroke="white" stroke-width="4" paint-order="stroke">{name}</text>"#,
                    n(p.x),
                    n(p.y),
                    n(NODE_R),
                    n(p.x + ux * (NODE_R + 6.0)),
                    n(p.y + uy * (NODE_R + 6.0) + 5.0 + 6.0 * uy)
                )
            }
        };
        let _ = writeln!(
            s,
            r#"<g class="member {}"><title>{name} ({})</title>{body}</g>"#,
            node.role.as_str(),
            node.role.as_str(),
        );
    }
    legend(&mut s, g, height - LEGEND_H / 2.0);
    s.push_str("</svg>\n");
    s
}

/// Half the width of a hub's box: room for its name (about 8 units a character in bold).
fn hub_half_width(name: &str) -> f64 {
    (name.chars().count() as f64 * 4.5 + 10.0).max(NODE_R)
}

/// How far from a node's centre its outline is, going in direction (ux, uy).
fn reach(node: &crate::graph::Node, ux: f64, uy: f64) -> f64 {
    match node.role {
        MemberRole::Hub => {
            let half_w = hub_half_width(&node.name);
            let tx = if ux.abs() < 1e-9 {
                f64::MAX
            } else {
                half_w / ux.abs()
            };
            let ty = if uy.abs() < 1e-9 {
                f64::MAX
            } else {
                NODE_R / uy.abs()
            };
            tx.min(ty)
        }
        MemberRole::Spoke | MemberRole::Peer => NODE_R,
    }
}

/// The phases the graph's edges are in, in legend order.
fn phases(g: &Graph) -> Vec<EdgePhase> {
    EdgePhase::ALL
        .into_iter()
        .filter(|p| g.edges.iter().any(|e| e.phase == *p))
        .collect()
}

fn legend(s: &mut String, g: &Graph, y: f64) {
    let mut x = 16.0;
    if g.has_hubs() {
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="14" height="14" rx="3" fill="{HUB_FILL}" stroke="{HUB_STROKE}" stroke-width="2"/><text x="{}" y="{}">hub</text>"#,
            n(x),
            n(y - 7.0),
            n(x + 20.0),
            n(y + 5.0)
        );
        x += 56.0;
        let _ = writeln!(
            s,
            r#"<circle cx="{}" cy="{}" r="7" fill="{NODE_FILL}" stroke="{NODE_STROKE}"/><text x="{}" y="{}">spoke</text>"#,
            n(x + 7.0),
            n(y),
            n(x + 20.0),
            n(y + 5.0)
        );
        x += 66.0;
    }
    for p in phases(g) {
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            n(x),
            n(y),
            n(x + 22.0),
            n(y),
            p.colour(),
            n(x + 28.0),
            n(y + 5.0),
            p.as_str()
        );
        x += 44.0 + 8.0 * p.as_str().len() as f64;
    }
}

/// A coordinate with one decimal: enough for a picture, and stable across platforms' maths.
fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    // -0.0 would print as "-0".
    if r == 0.0 {
        "0".to_owned()
    } else {
        format!("{r}")
    }
}

/// Text escaped for XML content and attribute values.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_at_most_one_decimal_and_no_negative_zero() {
        assert_eq!(n(12.0), "12");
        assert_eq!(n(12.345), "12.3");
        assert_eq!(n(-0.01), "0");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(xml(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
