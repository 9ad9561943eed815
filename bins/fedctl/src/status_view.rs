//! `fedctl status` as text: one network as sections of tables, or one line per network.

use crate::report::{StatusReport, SummaryRow};
use crate::table::{Cell, Table, Tone};
use federation_core::api::{
    ConditionExt, DEGRADED, LinkPhase, MemberPhase, PROGRESSING, REACHABLE, READY,
};
use std::fmt::Write as _;

/// The tone of a link phase.
pub fn link_tone(phase: LinkPhase) -> Tone {
    match phase {
        LinkPhase::Up => Tone::Good,
        LinkPhase::Pending => Tone::Warn,
        LinkPhase::Down => Tone::Bad,
    }
}

fn member_phase(phase: Option<MemberPhase>, missing: bool) -> Cell {
    match phase {
        Some(MemberPhase::Ready) => Cell::toned("Ready", Tone::Good),
        Some(MemberPhase::Pending) => Cell::toned("Pending", Tone::Warn),
        Some(MemberPhase::TearingDown) => Cell::toned("TearingDown", Tone::Warn),
        Some(MemberPhase::Failed) => Cell::toned("Failed", Tone::Bad),
        Some(MemberPhase::Unreachable) => Cell::toned("Unreachable", Tone::Bad),
        None if missing => Cell::toned("Missing", Tone::Bad),
        None => Cell::toned("-", Tone::Dim),
    }
}

/// The tone of a condition: for `Degraded`, `True` is the bad value.
fn condition_tone(type_: &str, status: &str) -> Tone {
    match (type_, status) {
        (DEGRADED, "True") => Tone::Bad,
        (DEGRADED, "False") => Tone::Good,
        (PROGRESSING, "True") => Tone::Warn,
        (PROGRESSING, "False") => Tone::Dim,
        (_, "True") => Tone::Good,
        (_, "False") => Tone::Bad,
        _ => Tone::Dim,
    }
}

fn bool_cell(ready: bool) -> Cell {
    if ready {
        Cell::toned("True", Tone::Good)
    } else {
        Cell::toned("False", Tone::Bad)
    }
}

/// One network as text: a heading, then conditions, members, links and services.
pub fn network_text(r: &StatusReport, colour: bool) -> String {
    let mut s = String::new();
    let hubs = if r.hubs.is_empty() {
        String::new()
    } else {
        format!(" (hubs: {})", r.hubs.join(", "))
    };
    let _ = writeln!(
        s,
        "network {}/{}: backend {}, topology {:?}{hubs}",
        r.namespace, r.name, r.backend, r.topology
    );
    if r.status.observed_generation.is_none() {
        let _ = writeln!(
            s,
            "no status yet: the operator has not reconciled this network (is it running?)"
        );
    } else if !r.is_current() {
        let _ = writeln!(
            s,
            "status is for generation {}, the spec is at {}: the operator is catching up",
            r.status.observed_generation.unwrap_or_default(),
            r.generation.unwrap_or_default()
        );
    }

    let mut conditions = Table::new(&["TYPE", "STATUS", "REASON", "MESSAGE"]);
    for c in &r.status.conditions {
        conditions.row(vec![
            c.type_.clone().into(),
            Cell::toned(c.status.clone(), condition_tone(&c.type_, &c.status)),
            c.reason.clone().into(),
            c.message.clone().into(),
        ]);
    }
    section(&mut s, "CONDITIONS", &conditions, colour);

    let mut members = Table::new(&[
        "MEMBER",
        "ROLE",
        "PHASE",
        "REACHABLE",
        "VERSION",
        "BACKEND APIS",
        "MESSAGE",
    ]);
    for m in &r.members {
        let missing = r.status.missing_members.contains(&m.name);
        let reachable = m
            .cluster
            .as_ref()
            .and_then(|c| c.conditions.condition(REACHABLE))
            .map_or_else(
                || {
                    Cell::toned(
                        if m.cluster.is_none() {
                            "no MemberCluster"
                        } else {
                            "-"
                        },
                        Tone::Dim,
                    )
                },
                |c| {
                    let text = if c.status == "True" {
                        c.status.clone()
                    } else {
                        format!("{} ({})", c.status, c.reason)
                    };
                    Cell::toned(text, condition_tone(REACHABLE, &c.status))
                },
            );
        let cluster = m.cluster.as_ref();
        let message = r
            .status
            .members
            .iter()
            .find(|s| s.name == m.name)
            .and_then(|s| s.message.clone())
            .unwrap_or_default();
        members.row(vec![
            m.name.clone().into(),
            r.role(&m.name).as_str().into(),
            member_phase(r.member_phase(&m.name), missing),
            reachable,
            cluster
                .and_then(|c| c.server_version.clone())
                .unwrap_or_else(|| "-".into())
                .into(),
            cluster
                .map(|c| c.backend_apis.join(","))
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "-".into())
                .into(),
            message.into(),
        ]);
    }
    section(&mut s, "MEMBERS", &members, colour);

    let up = r
        .status
        .links
        .iter()
        .filter(|l| l.phase == LinkPhase::Up)
        .count();
    let mut links = Table::new(&[
        "DIALER",
        "",
        "ACCEPTOR",
        "NAMESPACE",
        "COST",
        "PHASE",
        "REASON",
    ]);
    for l in &r.status.links {
        links.row(vec![
            l.dialer.clone().into(),
            "->".into(),
            l.acceptor.clone().into(),
            l.namespace.clone().into(),
            l.cost.to_string().into(),
            Cell::toned(format!("{:?}", l.phase), link_tone(l.phase)),
            l.message.clone().unwrap_or_default().into(),
        ]);
    }
    let title = format!("LINKS ({up}/{} up)", r.status.links.len());
    section(&mut s, &title, &links, colour);

    let mut services = Table::new(&["SERVICE", "TARGET", "FROM", "CONSUMER", "READY", "MESSAGE"]);
    for svc in &r.services {
        let target = format!("{}/{}", svc.namespace, svc.service_name);
        let from = svc.exporters.join(",");
        if svc.status.consumers.is_empty() {
            let ready = svc.status.conditions.condition(READY);
            services.row(vec![
                svc.name.clone().into(),
                target.clone().into(),
                from.clone().into(),
                Cell::toned("-", Tone::Dim),
                ready.map_or_else(
                    || Cell::toned("-", Tone::Dim),
                    |c| Cell::toned(c.status.clone(), condition_tone(READY, &c.status)),
                ),
                ready.map(|c| c.message.clone()).unwrap_or_default().into(),
            ]);
        }
        for c in &svc.status.consumers {
            services.row(vec![
                svc.name.clone().into(),
                target.clone().into(),
                from.clone().into(),
                c.member.clone().into(),
                bool_cell(c.ready),
                c.message.clone().unwrap_or_default().into(),
            ]);
        }
    }
    section(&mut s, "SERVICES", &services, colour);
    s
}

fn section(out: &mut String, title: &str, table: &Table, colour: bool) {
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    if table.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table.render(colour));
    }
}

/// One line per network. The namespace column appears when `all_namespaces` is set.
pub fn summary_text(rows: &[SummaryRow], all_namespaces: bool, colour: bool) -> String {
    let mut header = vec![
        "NAME", "BACKEND", "TOPOLOGY", "READY", "REASON", "MEMBERS", "LINKS", "SERVICES",
    ];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut t = Table::new(&header);
    for r in rows {
        let mut cells: Vec<Cell> = vec![
            r.name.clone().into(),
            r.backend.to_string().into(),
            format!("{:?}", r.topology).into(),
            Cell::toned(r.ready.clone(), condition_tone(READY, &r.ready)),
            r.reason.clone().into(),
            ratio(r.members_ready, r.members_total),
            ratio(r.links_up, r.links_total),
            ratio(r.services_ready, r.services_total),
        ];
        if all_namespaces {
            cells.insert(0, r.namespace.clone().into());
        }
        t.row(cells);
    }
    t.render(colour)
}

fn ratio(good: usize, total: usize) -> Cell {
    let tone = if good == total {
        Tone::Good
    } else {
        Tone::Warn
    };
    Cell::toned(format!("{good}/{total}"), tone)
}

#[cfg(test)]
mod tests;
