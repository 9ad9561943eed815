//! Where nodes go in the SVG: hubs on an inner circle (one hub at the centre), spokes on an
//! outer circle; without hubs, everyone on one circle. Deterministic: nodes keep the graph's
//! name order, and the first of each ring sits at the top.

use crate::graph::Graph;
use crate::report::MemberRole;
use std::f64::consts::{FRAC_PI_2, TAU};

/// A position in SVG user units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Horizontal, growing right.
    pub x: f64,
    /// Vertical, growing down.
    pub y: f64,
}

/// Node positions (in graph order) and the size of the drawing around them.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// One position per node of the graph, same order.
    pub positions: Vec<Point>,
    /// Width of the area the nodes and their labels need.
    pub width: f64,
    /// Height of that area.
    pub height: f64,
}

/// Room around the outer circle for node labels.
const MARGIN: f64 = 90.0;
/// The arc each node gets on its circle, so neighbours do not overlap.
const ARC_PER_NODE: f64 = 110.0;
/// Smallest radius of a circle with several nodes.
const MIN_RADIUS: f64 = 110.0;
/// Gap between the hubs' circle and the spokes'.
const RING_GAP: f64 = 150.0;

/// The layout of `g`.
pub fn layout(g: &Graph) -> Layout {
    let (inner, outer): (Vec<usize>, Vec<usize>) = if g.has_hubs() {
        (0..g.nodes.len()).partition(|&i| g.nodes[i].role == MemberRole::Hub)
    } else {
        (Vec::new(), (0..g.nodes.len()).collect())
    };
    let r_inner = ring_radius(inner.len());
    let r_outer = if inner.is_empty() {
        ring_radius(outer.len())
    } else {
        ring_radius(outer.len()).max(r_inner + RING_GAP)
    };
    let extent = r_outer.max(r_inner) + MARGIN;
    let centre = Point {
        x: extent,
        y: extent,
    };
    let mut positions = vec![centre; g.nodes.len()];
    place(&mut positions, &inner, r_inner, centre, 0.0);
    let offset = spoke_offset(inner.len(), outer.len());
    place(&mut positions, &outer, r_outer, centre, offset);
    Layout {
        positions,
        width: 2.0 * extent,
        height: 2.0 * extent,
    }
}

/// Where the spokes' ring starts, in spoke steps: the first of eight candidates that keeps
/// every spoke furthest (in angle) from every hub, so that no spoke sits behind a hub and
/// its links do not run through that hub.
fn spoke_offset(hubs: usize, spokes: usize) -> f64 {
    if hubs < 2 || spokes == 0 {
        return 0.0;
    }
    let angle = |k: usize, count: usize, offset: f64| (k as f64 + offset) / count as f64;
    let clearance = |offset: f64| {
        let mut min = f64::MAX;
        for s in 0..spokes {
            for h in 0..hubs {
                // Angles as fractions of a turn; the distance wraps around.
                let d = (angle(s, spokes, offset) - angle(h, hubs, 0.0)).rem_euclid(1.0);
                min = min.min(d.min(1.0 - d));
            }
        }
        min
    };
    let mut best = (0.0, clearance(0.0));
    for i in 1..8 {
        let offset = f64::from(i) / 8.0;
        let c = clearance(offset);
        // Strictly better only, so that ties keep the earlier (smaller) offset.
        if c > best.1 + 1e-12 {
            best = (offset, c);
        }
    }
    best.0
}

fn ring_radius(count: usize) -> f64 {
    match count {
        0 | 1 => 0.0,
        n => (n as f64 * ARC_PER_NODE / TAU).max(MIN_RADIUS),
    }
}

fn place(positions: &mut [Point], ring: &[usize], radius: f64, centre: Point, offset: f64) {
    let n = ring.len() as f64;
    for (k, &i) in ring.iter().enumerate() {
        let angle = -FRAC_PI_2 + TAU * (k as f64 + offset) / n;
        if let Some(p) = positions.get_mut(i) {
            *p = Point {
                x: centre.x + radius * angle.cos(),
                y: centre.y + radius * angle.sin(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Graph, Node};

    fn graph(nodes: &[(&str, MemberRole)]) -> Graph {
        let nodes = nodes
            .iter()
            .map(|(n, r)| Node {
                name: (*n).to_owned(),
                role: *r,
            })
            .collect();
        Graph::new("ns/net".into(), nodes, Vec::new())
    }

    fn dist(a: Point, b: Point) -> f64 {
        (a.x - b.x).hypot(a.y - b.y)
    }

    #[test]
    fn one_hub_sits_at_the_centre_and_spokes_around_it_at_one_distance() {
        let g = graph(&[
            ("central", MemberRole::Hub),
            ("east", MemberRole::Spoke),
            ("north", MemberRole::Spoke),
            ("west", MemberRole::Spoke),
        ]);
        let l = layout(&g);
        let c = l.positions[0];
        assert_eq!(
            c,
            Point {
                x: l.width / 2.0,
                y: l.height / 2.0
            }
        );
        let r: Vec<f64> = l.positions[1..].iter().map(|p| dist(*p, c)).collect();
        assert!(
            r.iter().all(|d| (d - r[0]).abs() < 1e-9 && *d >= RING_GAP),
            "{r:?}"
        );
    }

    #[test]
    fn hubs_are_on_a_smaller_circle_than_spokes() {
        let g = graph(&[
            ("a", MemberRole::Hub),
            ("b", MemberRole::Hub),
            ("c", MemberRole::Spoke),
            ("d", MemberRole::Spoke),
            ("e", MemberRole::Spoke),
        ]);
        let l = layout(&g);
        let centre = Point {
            x: l.width / 2.0,
            y: l.height / 2.0,
        };
        let hub = dist(l.positions[0], centre);
        assert!(hub > 0.0);
        assert!(
            l.positions[2..]
                .iter()
                .all(|p| dist(*p, centre) > hub + 100.0)
        );
    }

    #[test]
    fn no_spoke_sits_at_a_hub_angle() {
        for hubs in 2..5 {
            for spokes in 1..10 {
                let offset = spoke_offset(hubs, spokes);
                for s in 0..spokes {
                    for h in 0..hubs {
                        let d = ((s as f64 + offset) / spokes as f64 - h as f64 / hubs as f64)
                            .rem_euclid(1.0);
                        assert!(d.min(1.0 - d) > 0.01, "{hubs} hubs, {spokes} spokes");
                    }
                }
            }
        }
    }

    #[test]
    fn a_full_mesh_is_one_circle_and_nodes_never_overlap() {
        let names: Vec<String> = (0..12).map(|i| format!("m{i:02}")).collect();
        let nodes: Vec<(&str, MemberRole)> = names
            .iter()
            .map(|n| (n.as_str(), MemberRole::Peer))
            .collect();
        let l = layout(&graph(&nodes));
        let centre = Point {
            x: l.width / 2.0,
            y: l.height / 2.0,
        };
        let r0 = dist(l.positions[0], centre);
        for (i, p) in l.positions.iter().enumerate() {
            assert!((dist(*p, centre) - r0).abs() < 1e-9);
            for q in &l.positions[i + 1..] {
                assert!(dist(*p, *q) > 80.0, "nodes too close");
            }
        }
        // The first node is at the top.
        assert!((l.positions[0].x - centre.x).abs() < 1e-9 && l.positions[0].y < centre.y);
    }
}
