//! Reading link and service health off observed Skupper objects (pure). A link is up only
//! when every one of its `Link` objects is Operational; a consumer is ready only when its
//! `Listener` is Matched. Missing or stale objects are never reported healthy.

use crate::kinds::{ACCESS_TOKEN, CERTIFICATE, CONNECTOR, LINK, LISTENER, SITE};
use crate::names;
use crate::status_read::{condition_true, dialable_endpoint_groups, find, is_error, problem};
use federation_core::api::{LinkPhase, SkupperLinkFlow};
use federation_core::backend::{Health, LinkHealth, Observed, ServiceHealth, Target};
use federation_core::plan::NetworkPlan;
use std::collections::BTreeMap;

/// Health of every planned link, service consumer and site.
pub fn assess(plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
    let mut health = Health::default();
    let site_name = names::site(&plan.network);
    let get = |member: &str| observed.get(&Target::Member(member.to_owned()));
    let flow = plan
        .backend
        .skupper
        .as_ref()
        .map(|s| s.link_flow)
        .unwrap_or_default();

    for ns in &plan.namespaces {
        for m in &plan.members {
            let why = match get(&m.name).map(|o| find(o, SITE.kind, ns, &site_name)) {
                None => Some("member could not be read".to_owned()),
                Some(None) => Some(format!("Site {ns}/{site_name} not created yet")),
                Some(Some(site)) if !condition_true(&site.body, "Ready") => Some(format!(
                    "Site {ns}/{site_name} not ready: {}",
                    problem(&site.body).unwrap_or_else(|| "no status yet".into())
                )),
                Some(Some(_)) => None,
            };
            if let Some(why) = why {
                health
                    .members_not_ready
                    .entry(m.name.clone())
                    .or_insert(why);
            }
        }
        for link in &plan.topology.links {
            let name = names::link(&plan.network, &link.dialer, &link.acceptor);
            let (phase, message) = match get(&link.dialer) {
                None => (
                    LinkPhase::Down,
                    Some(format!("dialer {} could not be read", link.dialer)),
                ),
                Some(dialer) => {
                    link_phase(dialer, get(&link.acceptor), ns, &name, &site_name, flow)
                }
            };
            health.links.push(LinkHealth {
                dialer: link.dialer.clone(),
                acceptor: link.acceptor.clone(),
                namespace: ns.clone(),
                phase,
                message,
            });
        }
    }

    for svc in &plan.services {
        for consumer in svc.consumers.iter() {
            let local = svc.exporters.iter().any(|e| &e.member == consumer);
            let (kind, matched) = if local {
                (CONNECTOR.kind, "Configured")
            } else {
                (LISTENER.kind, "Matched")
            };
            let mut ready = true;
            let mut message = None;
            for port in &svc.ports {
                let name = names::service_port(&svc.name, &port.name);
                let object = get(consumer).and_then(|o| find(o, kind, &svc.namespace, &name));
                let ok = object.is_some_and(|o| {
                    condition_true(&o.body, "Configured") && condition_true(&o.body, matched)
                });
                if !ok {
                    ready = false;
                    message.get_or_insert_with(|| match object {
                        None => format!("{kind} {}/{name} not found", svc.namespace),
                        Some(o) => format!(
                            "{kind} {}/{name}: {}",
                            svc.namespace,
                            problem(&o.body).unwrap_or_else(|| "no status yet".into())
                        ),
                    });
                }
            }
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

fn link_phase(
    dialer: &Observed,
    acceptor: Option<&Observed>,
    ns: &str,
    name: &str,
    site_name: &str,
    flow: SkupperLinkFlow,
) -> (LinkPhase, Option<String>) {
    let links: Vec<_> = dialer
        .objects
        .iter()
        .filter(|o| {
            o.key.kind == LINK.kind
                && o.key.namespace.as_deref() == Some(ns)
                && (o.key.name == name
                    || o.key
                        .name
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('-')))
        })
        .collect();
    if links.is_empty() {
        return (
            LinkPhase::Pending,
            Some(waiting_for(acceptor, ns, name, site_name, flow, dialer)),
        );
    }
    // With HA the acceptor has several router groups and the link one Link per group.
    let expected = acceptor
        .and_then(|o| find(o, SITE.kind, ns, site_name))
        .map_or(1, |s| dialable_endpoint_groups(&s.body).len().max(1));
    if let Some(failed) = links.iter().find(|l| is_error(&l.body)) {
        return (
            LinkPhase::Down,
            problem(&failed.body).or_else(|| Some("link failed".into())),
        );
    }
    if let Some(pending) = links.iter().find(|l| {
        !(condition_true(&l.body, "Configured") && condition_true(&l.body, "Operational"))
    }) {
        let why = problem(&pending.body).unwrap_or_else(|| "no status yet".into());
        return (
            LinkPhase::Pending,
            Some(format!("Link {}: {why}", pending.key.name)),
        );
    }
    if links.len() < expected {
        return (
            LinkPhase::Pending,
            Some(format!(
                "{} of {expected} router links present",
                links.len()
            )),
        );
    }
    (LinkPhase::Up, None)
}

fn waiting_for(
    acceptor: Option<&Observed>,
    ns: &str,
    name: &str,
    site_name: &str,
    flow: SkupperLinkFlow,
    dialer: &Observed,
) -> String {
    let Some(acceptor) = acceptor else {
        return "acceptor could not be read".into();
    };
    let Some(site) = find(acceptor, SITE.kind, ns, site_name) else {
        return "acceptor Site not created yet".into();
    };
    if dialable_endpoint_groups(&site.body).is_empty() {
        return "acceptor Site has no resolved endpoints yet".into();
    }
    match flow {
        SkupperLinkFlow::Direct if find(acceptor, CERTIFICATE.kind, ns, name).is_none() => {
            "certificate not requested yet".into()
        }
        SkupperLinkFlow::Direct => "waiting for the acceptor to issue the link certificate".into(),
        SkupperLinkFlow::Grant => match find(dialer, ACCESS_TOKEN.kind, ns, name) {
            None => "waiting for the AccessGrant to be ready".into(),
            Some(t) => problem(&t.body)
                .unwrap_or_else(|| "waiting for the AccessToken to be redeemed".into()),
        },
    }
}
