//! Reading member, link and service health off observed Submariner objects (pure).
//!
//! - A member is ready once the operator reconciled its `Submariner` resource (its status
//!   carries the member's clusterID).
//! - A link (a pair of members; Submariner meshes every gateway) is up only when both
//!   members were read, each has an active `Gateway` of its own cluster, and each gateway
//!   reports the other's current endpoint `connected`. A connection to an endpoint the peer
//!   no longer has is stale and not counted; an `error` is Down; anything else Pending.
//! - A consumer is ready when Lighthouse imported the service there: a `ServiceImport` and an
//!   EndpointSlice from an exporting cluster. The export's own conditions (keyed on type)
//!   only explain a consumer that is not ready: Lighthouse v0.20 writes them with an empty
//!   reason, which the v0.21.1 operator's ServiceExport CRD rejects, so they can lag.

use crate::kinds::{
    ENDPOINT_SLICE, GATEWAY, OPERATOR_NAMESPACE, SERVICE_EXPORT, SERVICE_IMPORT, SUBMARINER,
    SUBMARINER_NAME,
};
use crate::render::find;
use federation_core::api::LinkPhase;
use federation_core::backend::{Health, LinkHealth, Observed, ServiceHealth, Target};
use federation_core::plan::{NetworkPlan, PlannedMember, ServicePlan};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Label Lighthouse puts on the EndpointSlices it imports: the exporting cluster.
pub const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";
/// Label Lighthouse puts on the EndpointSlices it imports: the service.
pub const SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";

/// Health of every member, link and service consumer.
pub fn assess(plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
    let mut health = Health::default();
    let get = |m: &str| observed.get(&Target::Member(m.to_owned()));
    for m in &plan.members {
        if let Some(why) = member_problem(m, get(&m.name)) {
            health.members_not_ready.insert(m.name.clone(), why);
        }
    }
    let by_name: BTreeMap<&str, &PlannedMember> =
        plan.members.iter().map(|m| (m.name.as_str(), m)).collect();
    for link in &plan.topology.links {
        let (phase, message) = match (
            by_name.get(link.dialer.as_str()),
            by_name.get(link.acceptor.as_str()),
        ) {
            (Some(a), Some(b)) => link_phase((a, get(&a.name)), (b, get(&b.name))),
            _ => (
                LinkPhase::Down,
                Some("an end is not a planned member".into()),
            ),
        };
        for ns in &plan.namespaces {
            health.links.push(LinkHealth {
                dialer: link.dialer.clone(),
                acceptor: link.acceptor.clone(),
                namespace: ns.clone(),
                phase,
                message: message.clone(),
            });
        }
    }
    for svc in &plan.services {
        let exporters: BTreeSet<&str> = svc
            .exporters
            .iter()
            .filter_map(|e| {
                by_name
                    .get(e.member.as_str())
                    .map(|m| m.cluster_id.as_str())
            })
            .collect();
        for consumer in svc.consumers.iter() {
            let (ready, message) = match get(consumer) {
                None => (false, Some(format!("member {consumer} could not be read"))),
                Some(o) => consumer_state(svc, o, &exporters, |m| get(m)),
            };
            health.services.push(ServiceHealth {
                service: svc.name.clone(),
                consumer: consumer.clone(),
                ready,
                message,
            });
        }
    }
    health
}

fn member_problem(m: &PlannedMember, observed: Option<&Observed>) -> Option<String> {
    let Some(observed) = observed else {
        return Some("member could not be read".into());
    };
    let Some(cr) = find(
        observed,
        &SUBMARINER,
        Some(OPERATOR_NAMESPACE),
        SUBMARINER_NAME,
    )
    .filter(|o| o.owned) else {
        return Some("not joined yet: no Submariner resource".into());
    };
    if !cr.body["metadata"]["deletionTimestamp"].is_null() {
        return Some("leaving: the Submariner operator is cleaning up".into());
    }
    if cr.body["status"]["clusterID"] != m.cluster_id.as_str() {
        return Some("the Submariner operator has not reconciled the join yet".into());
    }
    None
}

/// The active gateway of a member: a `Gateway` reporting `haStatus: active` for the member's
/// own cluster.
fn active_gateway<'a>(m: &PlannedMember, observed: &'a Observed) -> Option<&'a Value> {
    observed
        .objects
        .iter()
        .filter(|o| {
            o.key.kind == GATEWAY.kind && o.key.namespace.as_deref() == Some(OPERATOR_NAMESPACE)
        })
        .map(|o| &o.body)
        .find(|g| {
            g["status"]["haStatus"] == "active"
                && g["status"]["localEndpoint"]["cluster_id"] == m.cluster_id.as_str()
        })
}

type End<'a> = (&'a PlannedMember, Option<&'a Observed>);

fn link_phase(a: End<'_>, b: End<'_>) -> (LinkPhase, Option<String>) {
    let mut pending = Vec::new();
    let mut gateways = Vec::new();
    for (m, observed) in [a, b] {
        let Some(observed) = observed else {
            return (
                LinkPhase::Down,
                Some(format!("member {} could not be read", m.name)),
            );
        };
        match active_gateway(m, observed) {
            Some(g) => gateways.push((m, g)),
            None => pending.push(format!(
                "no active gateway in {} (a node labelled submariner.io/gateway=true runs it)",
                m.name
            )),
        }
    }
    if let [(ma, ga), (mb, gb)] = gateways[..] {
        for ((from, g), (to, peer)) in [((ma, ga), (mb, gb)), ((mb, gb), (ma, ga))] {
            if let Some(failure) = g["status"]["statusFailure"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                return (
                    LinkPhase::Down,
                    Some(format!("gateway of {} failed: {failure}", from.name)),
                );
            }
            let cable = &peer["status"]["localEndpoint"]["cable_name"];
            let connection = g["status"]["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["endpoint"]["cluster_id"] == to.cluster_id.as_str());
            match connection {
                None => pending.push(format!("{} has no connection to {}", from.name, to.name)),
                Some(c) if c["endpoint"]["cable_name"] != *cable => pending.push(format!(
                    "{}'s connection to {} is to an endpoint {} no longer has (stale)",
                    from.name, to.name, to.name
                )),
                Some(c) => match c["status"].as_str().unwrap_or_default() {
                    "connected" => {}
                    "error" => {
                        return (
                            LinkPhase::Down,
                            Some(format!(
                                "{} -> {}: error: {}",
                                from.name,
                                to.name,
                                c["statusMessage"].as_str().unwrap_or_default()
                            )),
                        );
                    }
                    other => pending.push(format!(
                        "{} -> {}: {}",
                        from.name,
                        to.name,
                        if other.is_empty() { "no status" } else { other }
                    )),
                },
            }
        }
    }
    if pending.is_empty() {
        (LinkPhase::Up, None)
    } else {
        (LinkPhase::Pending, Some(pending.join("; ")))
    }
}

fn consumer_state<'a>(
    svc: &ServicePlan,
    consumer: &Observed,
    exporters: &BTreeSet<&str>,
    get: impl Fn(&str) -> Option<&'a Observed>,
) -> (bool, Option<String>) {
    let import = find(
        consumer,
        &SERVICE_IMPORT,
        Some(&svc.namespace),
        &svc.service_name,
    );
    let slice_from_exporter = consumer.objects.iter().any(|o| {
        o.key.kind == ENDPOINT_SLICE.kind
            && o.key.namespace.as_deref() == Some(svc.namespace.as_str())
            && o.body["metadata"]["labels"][SERVICE_NAME_LABEL] == svc.service_name.as_str()
            && o.body["metadata"]["labels"][SOURCE_CLUSTER_LABEL]
                .as_str()
                .is_some_and(|c| exporters.contains(c))
    });
    if import.is_some() && slice_from_exporter {
        return (true, None);
    }
    let missing = match (import.is_some(), slice_from_exporter) {
        (false, _) => format!(
            "no ServiceImport {}/{} yet",
            svc.namespace, svc.service_name
        ),
        _ => format!(
            "ServiceImport {}/{} has no EndpointSlice from an exporter yet",
            svc.namespace, svc.service_name
        ),
    };
    let exports: Vec<String> = svc
        .exporters
        .iter()
        .filter_map(|e| {
            let o = get(&e.member)?;
            let export = find(o, &SERVICE_EXPORT, Some(&svc.namespace), &svc.service_name)?;
            Some(format!("{}: {}", e.member, export_conditions(&export.body)))
        })
        .collect();
    let exports = if exports.is_empty() {
        "no ServiceExport read".to_owned()
    } else {
        exports.join("; ")
    };
    (
        false,
        Some(format!(
            "{missing} (judged by Lighthouse's imports and EndpointSlices; the export's own conditions may lag, since Lighthouse v0.20 writes reasons the v0.21.1 CRD rejects: {exports})"
        )),
    )
}

/// The export's Valid, Ready and Conflict conditions, keyed on type.
fn export_conditions(export: &Value) -> String {
    let conditions: Vec<&Value> = export["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let shown: Vec<String> = ["Valid", "Ready", "Conflict"]
        .iter()
        .filter_map(|t| conditions.iter().find(|c| c["type"] == *t))
        .map(|c| {
            let message = c["message"].as_str().filter(|m| !m.is_empty());
            match message {
                Some(m) => format!(
                    "{}={} ({m})",
                    c["type"].as_str().unwrap_or("?"),
                    c["status"].as_str().unwrap_or("?")
                ),
                None => format!(
                    "{}={}",
                    c["type"].as_str().unwrap_or("?"),
                    c["status"].as_str().unwrap_or("?")
                ),
            }
        })
        .collect();
    if shown.is_empty() {
        "export has no conditions yet".into()
    } else {
        shown.join(", ")
    }
}
