//! The Headscale adapter: a real overlay coordination server reached over `/api/v1`.
//!
//! # Mapping
//! - **Site** -> the member's edge node (matched by its given name): fednet approves the
//!   member's pod and service CIDRs as the node's routes (`POST /node/{id}/approve_routes`),
//!   keeping whatever else is approved there. A route is served once the node's client also
//!   announces it; fednet cannot announce routes for a node, only approve them.
//! - **Overlay** -> ACL rules in the policy (`PUT /policy`, database mode): one rule per site
//!   from its prefixes to its neighbours' prefixes (all ports). Full mesh lets every site
//!   reach every other; hub-and-spoke lets spokes reach hubs and hubs reach everyone.
//!   Headscale does not route through a hub: a spoke-to-spoke flow is not allowed by the
//!   overlay rules (only by a service policy), it is not relayed via a hub.
//! - **Application policy** -> one rule from the consumers' prefixes to the exporter's
//!   prefixes on the service's ports (port and target port: fednet does not read the
//!   Service's cluster IP, so the rule opens those ports on the exporter's whole CIDRs).
//!
//! Everything fednet writes sits in one block of the policy per network ([`policy`]), which
//! also records the routes fednet approved, so nothing an administrator wrote is changed or
//! removed.
//!
//! # Objects (for the engine)
//! `AclPolicy <network>:policy` (the rules), `RouteApproval <network>:<edge>` per site
//! (owned), and `EdgeNode <network>:<node>` per node (read only, for health).
//!
//! # What it cannot do
//! Link costs, SLA thresholds and traffic steering (the overlay is WireGuard peer to peer,
//! always encrypted); RTT and loss are not reported by the API, so status says they are
//! unknown. Headscale has no compare-and-swap on the policy: an administrator's edit landing
//! between fednet's read and write of the policy is lost (fednet rereads before every write).

mod api;
pub mod policy;

use crate::access::Connection;
use crate::adapter::{Adapter, AdapterCapabilities, HealthFigures};
use crate::keys;
use crate::model::SdwanModel;
use api::Node;
use async_trait::async_trait;
use federation_core::api::{LinkPhase, SdwanAdapter, TopologyKind};
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, Health, LinkHealth, Observed, ObservedObject,
    ServiceHealth,
};
use federation_core::plan::NetworkRef;
use policy::{AclRule, Block};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Kind of the object holding a network's ACL rules.
pub const ACL_POLICY: &str = "AclPolicy";
/// Kind of the object holding the routes fednet approves on one edge node.
pub const ROUTE_APPROVAL: &str = "RouteApproval";
/// Kind of the read-only object describing one node.
pub const EDGE_NODE: &str = "EdgeNode";
/// Said in every link's status: the API reports neither.
pub const RTT_UNKNOWN: &str = "RTT and loss unknown: Headscale does not report them";

/// The Headscale adapter.
#[derive(Debug, Default)]
pub struct HeadscaleAdapter;

/// The ACL rules of a model (pure).
pub fn rules(model: &SdwanModel) -> Vec<AclRule> {
    let mut out = Vec::new();
    for site in model.sites.values() {
        let dst: Vec<String> = model
            .overlay
            .neighbours(&site.member)
            .into_iter()
            .filter_map(|n| model.sites.get(n))
            .flat_map(|n| n.prefixes.iter().map(|p| format!("{p}:*")))
            .collect();
        if !dst.is_empty() {
            out.push(AclRule {
                id: format!("site/{}", site.member),
                src: site.prefixes.clone(),
                dst,
            });
        }
    }
    for p in &model.policies {
        let Some(exporter) = model.sites.get(&p.exporter) else {
            continue;
        };
        let src: BTreeSet<&String> = p
            .consumers
            .iter()
            .filter_map(|c| model.sites.get(c))
            .flat_map(|s| &s.prefixes)
            .collect();
        if src.is_empty() {
            continue;
        }
        let ports: BTreeSet<u16> = p
            .ports
            .iter()
            .flat_map(|x| [x.port, x.target_port])
            .collect();
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        out.push(AclRule {
            id: format!("service/{}/{}", p.service, p.exporter),
            src: src.into_iter().cloned().collect(),
            dst: exporter
                .prefixes
                .iter()
                .map(|x| format!("{x}:{}", ports.join(",")))
                .collect(),
        });
    }
    out
}

fn rules_body(rules: &[AclRule]) -> Value {
    json!({ "rules": rules })
}

fn ledger_prefix(entry: &str) -> &str {
    entry.strip_prefix('=').unwrap_or(entry)
}

#[async_trait]
impl Adapter for HeadscaleAdapter {
    fn kind(&self) -> SdwanAdapter {
        SdwanAdapter::Headscale
    }

    fn capabilities(&self) -> AdapterCapabilities {
        AdapterCapabilities {
            topologies: vec![
                TopologyKind::FullMesh,
                TopologyKind::HubSpoke,
                TopologyKind::Explicit,
            ],
            link_costs: false,
            sla_policies: false,
            encryption: true,
            health: HealthFigures {
                edge_online: true,
                last_seen: true,
                tunnel_status: false,
                rtt: false,
                loss: false,
            },
        }
    }

    fn render(
        &self,
        network: &NetworkRef,
        model: &SdwanModel,
        _observed: Option<&Observed>,
    ) -> Vec<DesiredObject> {
        let mut out = vec![DesiredObject::new(
            keys::key(network, ACL_POLICY, "policy"),
            rules_body(&rules(model)),
        )];
        for site in model.sites.values() {
            out.push(DesiredObject::new(
                keys::key(network, ROUTE_APPROVAL, &site.edge),
                json!({"edge": site.edge, "routes": site.prefixes}),
            ));
        }
        out
    }

    fn assess(&self, model: &SdwanModel, observed: Option<&Observed>) -> Health {
        assess(model, observed)
    }

    async fn observe(
        &self,
        conn: &Connection,
        network: &NetworkRef,
    ) -> Result<Observed, BackendError> {
        let nodes = api::list_nodes(conn).await?;
        let policy = api::get_policy(conn).await?;
        let block = match &policy {
            Some(p) => policy::read_block(p, network)
                .map_err(|e| BackendError::Other(format!("{}: {e}", conn.target)))?,
            None => None,
        }
        .unwrap_or_default();
        let mut objects = Vec::new();
        if !block.rules.is_empty() {
            objects.push(ObservedObject {
                key: keys::key(network, ACL_POLICY, "policy"),
                body: rules_body(&block.rules),
                owned: true,
            });
        }
        for (edge, recorded) in &block.routes {
            let node = nodes.iter().find(|n| n.is(edge));
            let approved: BTreeSet<&str> = node
                .map(|n| n.approved_routes.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let mut routes: Vec<&str> = recorded
                .iter()
                .map(|r| ledger_prefix(r))
                .filter(|r| approved.contains(r))
                .collect();
            routes.sort_unstable();
            objects.push(ObservedObject {
                key: keys::key(network, ROUTE_APPROVAL, edge),
                body: json!({"edge": edge, "routes": routes, "nodeFound": node.is_some()}),
                owned: true,
            });
        }
        for n in &nodes {
            let name = if n.given_name.is_empty() {
                &n.name
            } else {
                &n.given_name
            };
            objects.push(ObservedObject {
                key: keys::key(network, EDGE_NODE, name),
                body: json!({
                    "id": n.id, "online": n.online, "lastSeen": n.last_seen,
                    "approvedRoutes": n.approved_routes, "availableRoutes": n.available_routes,
                    "subnetRoutes": n.subnet_routes,
                }),
                owned: false,
            });
        }
        Ok(Observed::of(objects))
    }

    async fn apply(&self, conn: &Connection, object: &DesiredObject) -> Result<(), BackendError> {
        let (network, part) = keys::parse(&object.key).ok_or_else(|| foreign(&object.key))?;
        match object.key.kind.as_str() {
            ACL_POLICY => {
                let rules: Vec<AclRule> = serde_json::from_value(object.body["rules"].clone())
                    .map_err(|e| BackendError::Render(format!("{}: {e}", object.key)))?;
                edit_block(conn, &network, |b| b.rules = rules).await
            }
            ROUTE_APPROVAL => {
                let routes: Vec<String> = serde_json::from_value(object.body["routes"].clone())
                    .map_err(|e| BackendError::Render(format!("{}: {e}", object.key)))?;
                approve(conn, &network, part, &routes).await
            }
            _ => Err(foreign(&object.key)),
        }
    }

    async fn delete(&self, conn: &Connection, deletion: &Deletion) -> Result<(), BackendError> {
        let (network, part) = keys::parse(&deletion.key).ok_or_else(|| foreign(&deletion.key))?;
        match deletion.key.kind.as_str() {
            ACL_POLICY => edit_block(conn, &network, |b| b.rules.clear()).await,
            ROUTE_APPROVAL => withdraw(conn, &network, part).await,
            _ => Err(foreign(&deletion.key)),
        }
    }
}

fn foreign(key: &federation_core::backend::ObjectKey) -> BackendError {
    BackendError::Other(format!("{key} is not an object of the Headscale adapter"))
}

/// Rereads the policy, changes the network's block, and writes it back if it changed.
async fn edit_block(
    conn: &Connection,
    network: &NetworkRef,
    change: impl FnOnce(&mut Block),
) -> Result<(), BackendError> {
    let policy_error =
        |e: policy::PolicyError| BackendError::Other(format!("{}: {e}", conn.target));
    let current = api::get_policy(conn)
        .await?
        .ok_or_else(|| policy_error(policy::PolicyError::NoPolicy))?;
    let mut block = policy::read_block(&current, network)
        .map_err(policy_error)?
        .unwrap_or_default();
    change(&mut block);
    let next = policy::write_block(&current, network, &block).map_err(policy_error)?;
    if next != current {
        api::set_policy(conn, &next).await?;
    }
    Ok(())
}

fn find_node<'a>(
    conn: &Connection,
    nodes: &'a [Node],
    edge: &str,
) -> Result<&'a Node, BackendError> {
    nodes.iter().find(|n| n.is(edge)).ok_or_else(|| {
        BackendError::Other(format!(
            "{}: edge node {edge} is not registered on the controller; register the member's edge (or fix MemberCluster spec.network.sdwanEdge)",
            conn.target
        ))
    })
}

/// Approves `routes` on `edge`: records them first (so a crash between the two steps leaves
/// a record, never an approval nobody knows about), then sets the node's approved routes to
/// what it had, minus fednet's routes that are no longer wanted, plus `routes`.
async fn approve(
    conn: &Connection,
    network: &NetworkRef,
    edge: &str,
    routes: &[String],
) -> Result<(), BackendError> {
    let nodes = api::list_nodes(conn).await?;
    let node = find_node(conn, &nodes, edge)?;
    let approved: BTreeSet<String> = node.approved_routes.iter().cloned().collect();
    let mut recorded: Vec<String> = Vec::new();
    edit_block(conn, network, |b| {
        recorded = b.routes.get(edge).cloned().unwrap_or_default();
        let known: BTreeSet<&str> = recorded.iter().map(|r| ledger_prefix(r)).collect();
        let mut entries: BTreeSet<String> = recorded.iter().cloned().collect();
        for r in routes {
            if !known.contains(r.as_str()) {
                // Approved before fednet came: someone else's, never withdrawn by fednet.
                entries.insert(if approved.contains(r) {
                    format!("={r}")
                } else {
                    r.clone()
                });
            }
        }
        b.routes
            .insert(edge.to_owned(), entries.into_iter().collect());
    })
    .await?;
    let wanted: BTreeSet<&str> = routes.iter().map(String::as_str).collect();
    let stale: BTreeSet<&str> = recorded
        .iter()
        .filter(|r| !r.starts_with('='))
        .map(String::as_str)
        .filter(|r| !wanted.contains(r))
        .collect();
    let next: BTreeSet<String> = approved
        .iter()
        .filter(|r| !stale.contains(r.as_str()))
        .cloned()
        .chain(routes.iter().cloned())
        .collect();
    if next != approved {
        let next: Vec<String> = next.into_iter().collect();
        api::approve_routes(conn, &node.id, &next).await?;
    }
    edit_block(conn, network, |b| {
        let keep: Vec<String> = b
            .routes
            .get(edge)
            .into_iter()
            .flatten()
            .filter(|r| wanted.contains(ledger_prefix(r)))
            .cloned()
            .collect();
        b.routes.insert(edge.to_owned(), keep);
    })
    .await
}

/// Withdraws fednet's approvals on `edge` (not those it found there), then forgets them.
async fn withdraw(conn: &Connection, network: &NetworkRef, edge: &str) -> Result<(), BackendError> {
    let current = api::get_policy(conn).await?;
    let block = match &current {
        Some(p) => policy::read_block(p, network)
            .map_err(|e| BackendError::Other(format!("{}: {e}", conn.target)))?,
        None => None,
    };
    let Some(recorded) = block.as_ref().and_then(|b| b.routes.get(edge)) else {
        return Ok(());
    };
    let ours: BTreeSet<&str> = recorded
        .iter()
        .filter(|r| !r.starts_with('='))
        .map(String::as_str)
        .collect();
    let nodes = api::list_nodes(conn).await?;
    // A node that is gone holds no approvals any more: only the record is left to remove.
    if let Some(node) = nodes.iter().find(|n| n.is(edge)) {
        let next: Vec<String> = node
            .approved_routes
            .iter()
            .filter(|r| !ours.contains(r.as_str()))
            .cloned()
            .collect();
        if next.len() != node.approved_routes.len() {
            api::approve_routes(conn, &node.id, &next).await?;
        }
    }
    edit_block(conn, network, |b| {
        b.routes.remove(edge);
    })
    .await
}

/// What the controller says about one site's edge.
enum EdgeState {
    Missing,
    Unapproved,
    Offline(String),
    NotServing(Vec<String>),
    Serving,
}

fn edge_state(site: &crate::model::Site, nodes: &BTreeMap<&str, &Value>) -> EdgeState {
    let Some(node) = nodes.get(site.edge.as_str()) else {
        return EdgeState::Missing;
    };
    let has_all = |field: &str| {
        let have: BTreeSet<&str> = node[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        site.prefixes.iter().all(|p| have.contains(p.as_str()))
    };
    if !has_all("approvedRoutes") {
        return EdgeState::Unapproved;
    }
    if node["online"] != Value::Bool(true) {
        let seen = node["lastSeen"].as_str().unwrap_or("never").to_owned();
        return EdgeState::Offline(seen);
    }
    if !has_all("subnetRoutes") {
        let announced = node["availableRoutes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        return EdgeState::NotServing(announced);
    }
    EdgeState::Serving
}

fn describe(edge: &str, state: &EdgeState) -> Option<String> {
    match state {
        EdgeState::Missing => Some(format!(
            "edge node {edge} is not registered on the controller"
        )),
        EdgeState::Unapproved => Some(format!("routes of edge node {edge} are not approved yet")),
        EdgeState::Offline(seen) => Some(format!(
            "edge node {edge} is offline (last seen {seen}); its routes are approved, a connected client must announce them"
        )),
        EdgeState::NotServing(announced) => Some(format!(
            "edge node {edge} is online but does not serve all its routes (it announces [{}])",
            announced.join(", ")
        )),
        EdgeState::Serving => None,
    }
}

/// The exporter consumes its own service locally: nothing crosses the overlay.
pub(crate) fn local_service(p: &crate::model::AppPolicy) -> ServiceHealth {
    ServiceHealth {
        service: p.service.clone(),
        consumer: p.exporter.clone(),
        ready: true,
        message: Some("served locally by the exporter".into()),
    }
}

/// Health read off an observation (pure): edges online, last seen, routes approved and
/// served, rules present. RTT and loss are unknown.
pub fn assess(model: &SdwanModel, observed: Option<&Observed>) -> Health {
    let mut health = Health::default();
    let Some(obs) = observed else {
        for site in model.sites.values() {
            health.members_not_ready.insert(
                site.member.clone(),
                "the controller could not be read".into(),
            );
        }
        return health;
    };
    let nodes: BTreeMap<&str, &Value> = obs
        .of_kind(EDGE_NODE)
        .filter_map(|o| Some((o.key.name.split_once(':')?.1, &o.body)))
        .collect();
    let written: BTreeMap<String, Vec<String>> = obs
        .of_kind(ACL_POLICY)
        .filter(|o| o.owned)
        .flat_map(|o| o.body["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| serde_json::from_value::<AclRule>(r).ok())
        .map(|r| (r.id, r.dst))
        .collect();
    let wanted: BTreeMap<String, Vec<String>> =
        rules(model).into_iter().map(|r| (r.id, r.dst)).collect();
    let rule_ok = |id: &str| wanted.get(id).is_some_and(|w| written.get(id) == Some(w));
    let states: BTreeMap<&str, EdgeState> = model
        .sites
        .values()
        .map(|s| (s.member.as_str(), edge_state(s, &nodes)))
        .collect();
    for site in model.sites.values() {
        if let Some(why) = states
            .get(site.member.as_str())
            .and_then(|s| describe(&site.edge, s))
        {
            health.members_not_ready.insert(site.member.clone(), why);
        }
    }
    for link in &model.overlay.links {
        let mut problems = Vec::new();
        let mut down = false;
        for m in [&link.a, &link.b] {
            let state = states.get(m.as_str());
            down |= matches!(state, Some(EdgeState::Missing) | None);
            let edge = model.sites.get(m).map_or(m.as_str(), |s| s.edge.as_str());
            if let Some(why) = state.and_then(|s| describe(edge, s)) {
                problems.push(why);
            }
            if !rule_ok(&format!("site/{m}")) {
                problems.push(format!("the ACL rule of {m} is not in the policy yet"));
            }
        }
        let phase = if down {
            LinkPhase::Down
        } else if problems.is_empty() {
            LinkPhase::Up
        } else {
            LinkPhase::Pending
        };
        problems.push(RTT_UNKNOWN.to_owned());
        for ns in &model.namespaces {
            health.links.push(LinkHealth {
                dialer: link.a.clone(),
                acceptor: link.b.clone(),
                namespace: ns.clone(),
                phase,
                message: Some(problems.join("; ")),
            });
        }
    }
    for p in &model.policies {
        if p.exporter_consumes {
            health.services.push(local_service(p));
        }
        let id = format!("service/{}/{}", p.service, p.exporter);
        for c in &p.consumers {
            let mut problems = Vec::new();
            for m in [&p.exporter, c] {
                let edge = model.sites.get(m).map_or(m.as_str(), |s| s.edge.as_str());
                if let Some(why) = states.get(m.as_str()).and_then(|s| describe(edge, s)) {
                    problems.push(why);
                }
            }
            if !rule_ok(&id) {
                problems.push(format!("the ACL rule {id} is not in the policy yet"));
            }
            health.services.push(ServiceHealth {
                service: p.service.clone(),
                consumer: c.clone(),
                ready: problems.is_empty(),
                message: (!problems.is_empty()).then(|| problems.join("; ")),
            });
        }
    }
    health
}
