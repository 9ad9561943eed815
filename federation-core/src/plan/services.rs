//! Planning of shared services.

use super::{NetworkRef, matches_selector};
use crate::api::{FederatedNetworkSpec, FederatedService, MemberCluster, READY, ServiceExporter};
use kube::ResourceExt;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One port of a planned service, with its routing key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortPlan {
    /// Port name.
    pub name: String,
    /// Port consumers connect to.
    pub port: u16,
    /// Port the workload listens on.
    pub target_port: u16,
    /// Key that pairs exporters and consumers of this port (deterministic, unique per
    /// network, service and port).
    pub routing_key: String,
}

/// A shared service as planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    /// `FederatedService` name on the hub.
    pub name: String,
    /// Namespace in the members.
    pub namespace: String,
    /// Service name consumers use.
    pub service_name: String,
    /// Exporting members.
    pub exporters: Vec<ServiceExporter>,
    /// Consuming members, sorted. Shared between services that default to every member,
    /// so 10,000 services over 1,000 members do not hold 10 million name copies.
    pub consumers: Arc<[String]>,
    /// Ports.
    pub ports: Vec<PortPlan>,
    /// SD-WAN application policy (traffic profile, SLA thresholds), as declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdwan: Option<crate::api::ServiceSdwanPolicy>,
    /// References the service makes that cannot be served (an exporter or consumer that is
    /// not a member): left out, served to the rest, and named in the service's status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A shared service that cannot be planned, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedService {
    /// `FederatedService` name on the hub.
    pub name: String,
    /// Stable reason.
    pub reason: String,
    /// What is wrong.
    pub message: String,
}

/// The routing key of one port of one shared service of one network:
/// `<network ns>.<network>.<service>.<port>`. Names are DNS labels, so the dots make the
/// key unambiguous.
pub fn routing_key(network: &NetworkRef, service: &str, port: &str) -> String {
    format!(
        "{}.{}.{}.{}",
        network.namespace, network.name, service, port
    )
}

pub(super) fn plan_services(
    network: &NetworkRef,
    spec: &FederatedNetworkSpec,
    members: &BTreeSet<&str>,
    member_clusters: &[MemberCluster],
    services: &[FederatedService],
) -> (Vec<ServicePlan>, Vec<RejectedService>) {
    let mut planned = Vec::new();
    let mut rejected = Vec::new();
    let mut mine: Vec<&FederatedService> = services
        .iter()
        .filter(|s| {
            s.spec.network == network.name && s.namespace().as_deref() == Some(&network.namespace)
        })
        .collect();
    // The oldest service keeps a contested name: a new service never takes over one that
    // may already be in use. Creation times have a resolution of one second, so within the
    // same second the one already served goes first; then the name, for a stable order.
    mine.sort_by(|a, b| {
        let created = |s: &FederatedService| s.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| already_served(b).cmp(&already_served(a)))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let mut service_names: BTreeSet<(String, String)> = BTreeSet::new();
    let everyone: Arc<[String]> = members.iter().map(|m| (*m).to_owned()).collect();
    for svc in mine {
        let name = svc.name_any();
        match plan_service(network, spec, members, &everyone, member_clusters, svc) {
            Ok(plan) => {
                // Two FederatedServices publishing the same Service name in the same namespace
                // would fight over one Listener; the oldest wins, the other is refused.
                if service_names.insert((plan.namespace.clone(), plan.service_name.clone())) {
                    planned.push(plan);
                } else {
                    rejected.push(RejectedService {
                        name,
                        reason: SERVICE_NAME_CONFLICT.into(),
                        message: format!(
                            "another FederatedService of this network already publishes {}/{}",
                            plan.namespace, plan.service_name
                        ),
                    });
                }
            }
            Err((reason, message)) => rejected.push(RejectedService {
                name,
                reason: reason.into(),
                message,
            }),
        }
    }
    (planned, rejected)
}

/// Whether a service was planned by an earlier pass: its status has a Ready condition for a
/// reason other than losing a name conflict.
fn already_served(svc: &FederatedService) -> bool {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .is_some_and(|c| c.reason != SERVICE_NAME_CONFLICT)
}

/// Reason of a service refused because an older one publishes the same Service name.
pub const SERVICE_NAME_CONFLICT: &str = "ServiceNameConflict";

fn plan_service(
    network: &NetworkRef,
    spec: &FederatedNetworkSpec,
    members: &BTreeSet<&str>,
    everyone: &Arc<[String]>,
    member_clusters: &[MemberCluster],
    svc: &FederatedService,
) -> Result<ServicePlan, (&'static str, String)> {
    let s = &svc.spec;
    if !spec.namespaces.contains(&s.namespace) {
        return Err((
            "NamespaceNotInNetwork",
            format!(
                "namespace {} is not one of the network's namespaces",
                s.namespace
            ),
        ));
    }
    let mut problems = Vec::new();
    let (mut exporters, strays): (Vec<ServiceExporter>, Vec<ServiceExporter>) = s
        .exporters
        .iter()
        .cloned()
        .partition(|e| members.contains(e.member.as_str()));
    for e in &strays {
        problems.push(format!(
            "exporter {} is not a member of the network",
            e.member
        ));
    }
    if exporters.is_empty() {
        return Err(("ExporterNotMember", problems.join("; ")));
    }
    let consumers: Arc<[String]> = match &s.consumers {
        None => everyone.clone(),
        Some(sel) => {
            let mut out = BTreeSet::new();
            for n in &sel.names {
                if members.contains(n.as_str()) {
                    out.insert(n.clone());
                } else {
                    problems.push(format!("consumer {n} is not a member of the network"));
                }
            }
            if let Some(selector) = &sel.selector {
                for mc in member_clusters
                    .iter()
                    .filter(|m| members.contains(m.name_any().as_str()))
                {
                    let hit =
                        matches_selector(selector, mc.metadata.labels.as_ref()).map_err(|e| {
                            ("InvalidSelector", format!("spec.consumers.selector: {e}"))
                        })?;
                    if hit {
                        out.insert(mc.name_any());
                    }
                }
            }
            out.into_iter().collect()
        }
    };
    let name = svc.name_any();
    let ports = s
        .ports
        .iter()
        .map(|p| PortPlan {
            name: p.name.clone(),
            port: p.port,
            target_port: p.target_port.unwrap_or(p.port),
            routing_key: routing_key(network, &name, &p.name),
        })
        .collect();
    exporters.sort_by(|a, b| a.member.cmp(&b.member));
    Ok(ServicePlan {
        name,
        namespace: s.namespace.clone(),
        service_name: s.service_name.clone(),
        exporters,
        consumers,
        ports,
        sdwan: s.sdwan.clone(),
        problems,
    })
}
