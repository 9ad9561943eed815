//! The double's rules as pure functions: from what the simulated clusters showed, the status
//! each Skupper object should have and what to create or delete. No I/O, no clock and no
//! randomness: the caller passes the time and a source of grant codes, so every rule is
//! unit-tested (see `tests.rs`). The upstream behaviour each rule imitates is cited in the
//! parent module's documentation. Grants and tokens are in `grants.rs`.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::grants::{TokenStep, grant_status, token_status, token_step};
use super::model::{
    Action, EDGE, INTER_ROUTER, Kind, ROUTER_GROUPS, SecretInfo, Snapshot, State, StatusBuilder,
    World, condition_true, default_issuer, endpoint_host, link_access_on, name, namespace,
    parse_endpoint_host, status_patch, uid,
};

/// Site status: see the module docs of the double.
#[cfg(test)]
pub(crate) fn site_status(site: &Value, cluster: &str) -> Value {
    site_status_resolved(site, cluster, true)
}

/// Site status when the router access may have lost its addresses (`resolved` false): no
/// endpoints, and Resolved pending, as upstream reports while a Service has no address.
pub(crate) fn site_status_resolved(site: &Value, cluster: &str, resolved: bool) -> Value {
    let ns = namespace(site);
    let mut b = StatusBuilder::new(site)
        .field("defaultIssuer", default_issuer(site))
        .condition("Configured", State::Ready)
        .condition("Running", State::Ready);
    if !link_access_on(site) {
        return b.ready(&["Configured", "Running"]).build();
    }
    if !resolved {
        return b
            .field("endpoints", Value::Array(Vec::new()))
            .condition(
                "Resolved",
                State::Pending("waiting for router access addresses".into()),
            )
            .ready(&["Configured", "Running", "Resolved"])
            .build();
    }
    let groups = if site["spec"]["ha"] == true {
        &ROUTER_GROUPS[..]
    } else {
        &ROUTER_GROUPS[..1]
    };
    let endpoints: Vec<Value> = groups
        .iter()
        .flat_map(|g| {
            let host = endpoint_host(g, ns, cluster);
            [INTER_ROUTER, EDGE]
                .map(|(name, port)| json!({"name": name, "host": host, "port": port, "group": g}))
        })
        .collect();
    b = b
        .field("endpoints", endpoints)
        .condition("Resolved", State::Ready);
    b.ready(&["Configured", "Running", "Resolved"]).build()
}

/// Link status: Configured when the local Site and the TLS Secret exist; Operational when the
/// acceptor answers, has a ready Site accepting at the dialed endpoint, and issued the
/// credentials.
pub(crate) fn link_status(link: &Value, own: &Snapshot, world: &World) -> Value {
    let ns = namespace(link);
    let site = own.site(ns);
    let secret_name = link["spec"]["tlsCredentials"].as_str().unwrap_or_default();
    let secret = own.secret(ns, secret_name);
    let configured = match (site, secret) {
        (None, _) => State::Error("No active site in namespace".into()),
        (Some(_), None) if !secret_name.is_empty() => {
            State::Error(format!("TLS credentials secret {secret_name:?} not found"))
        }
        _ => State::Ready,
    };
    let mut remote = None;
    let operational = if configured == State::Ready {
        let role = if site.is_some_and(|s| s["spec"]["edge"] == true) {
            EDGE.0
        } else {
            INTER_ROUTER.0
        };
        let endpoints = link["spec"]["endpoints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let dialed = endpoints
            .iter()
            .find(|e| e["name"] == role)
            .or(endpoints.first());
        match operational(dialed, secret, world) {
            Ok(site) => {
                remote = Some(site);
                State::Ready
            }
            Err(why) => State::Pending(why),
        }
    } else {
        State::Pending("Not operational".into())
    };
    let mut b = StatusBuilder::new(link)
        .condition("Configured", configured)
        .condition("Operational", operational);
    if let Some(site) = remote {
        b = b
            .field("remoteSiteName", name(site))
            .field("remoteSiteId", uid(site));
    }
    b.ready(&["Configured", "Operational"]).build()
}

fn operational<'w>(
    dialed: Option<&Value>,
    secret: Option<&SecretInfo>,
    world: &'w World,
) -> Result<&'w Value, String> {
    let host = dialed.and_then(|e| e["host"].as_str()).unwrap_or_default();
    let port = dialed.and_then(|e| e["port"].as_str()).unwrap_or_default();
    let (_, ns, remote) = parse_endpoint_host(host)
        .ok_or_else(|| format!("endpoint host {host:?} is not a simulated site"))?;
    if !world.clusters.contains_key(remote) {
        return Err(format!("cluster {remote} is not simulated"));
    }
    let snapshot = world
        .answering(remote)
        .ok_or_else(|| format!("remote cluster {remote} does not answer"))?;
    // A router whose access lost its advertised addresses still listens, and links already
    // connected stay connected: only the Site's status (endpoints, Resolved, Ready) says so.
    let unresolved = world.unresolved.contains(remote);
    let site = snapshot
        .site(ns)
        .filter(|s| condition_true(s, "Ready") || (unresolved && link_access_on(s)))
        .ok_or_else(|| format!("no ready Site in {remote}/{ns}"))?;
    let accepting = unresolved
        || site["status"]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["host"] == host && e["port"] == port);
    if !accepting {
        return Err(format!(
            "Site {remote}/{ns} does not accept links at {host}:{port}"
        ));
    }
    let ca = world.cas.get(remote);
    if ca.is_none() || secret.and_then(|s| s.ca_crt.as_ref()) != ca {
        return Err(format!(
            "TLS handshake with {remote} fails: the credentials were not issued by its site CA"
        ));
    }
    Ok(site)
}

/// Connector or Listener status: Configured when a Site exists in the namespace; Matched when
/// a peer (Listener for a Connector, Connector for a Listener) with the same routing key
/// exists in any simulated cluster that answers.
pub(crate) fn binding_status(kind: Kind, object: &Value, own: &Snapshot, world: &World) -> Value {
    let configured = if own.site(namespace(object)).is_some() {
        State::Ready
    } else {
        State::Error("No active site".into())
    };
    let key = object["spec"]["routingKey"].as_str().unwrap_or_default();
    let (peer, field, missing) = match kind {
        Kind::Connector => (
            Kind::Listener,
            "hasMatchingListener",
            "No matching listeners",
        ),
        _ => (
            Kind::Connector,
            "hasMatchingConnector",
            "No matching connectors",
        ),
    };
    let matched = world.any_with_routing_key(peer, key);
    let mut b = StatusBuilder::new(object).condition("Configured", configured);
    b = if matched {
        b.field(field, true).condition("Matched", State::Ready)
    } else {
        b.condition("Matched", State::Pending(missing.into()))
    };
    b.ready(&["Configured", "Matched"]).build()
}

/// What to do for a Certificate: its status, once its Secret exists, or the Secret to write.
pub(crate) fn certificate_step(cert: &Value, own: &Snapshot) -> (Option<Value>, Option<Action>) {
    let (ns, cert_name) = (namespace(cert), name(cert));
    let ca = cert["spec"]["ca"].as_str().unwrap_or_default();
    let issuer_ok = own.site(ns).is_some_and(|s| default_issuer(s) == ca);
    let ready = |state| StatusBuilder::new(cert).condition("Ready", state).build();
    if !issuer_ok {
        return (
            Some(ready(State::Error(format!("CA \"{ns}/{ca}\" not found")))),
            None,
        );
    }
    match own.secret(ns, cert_name) {
        Some(s) if !s.controlled => (
            Some(ready(State::Error(
                "Secret exists but is not controlled by skupper".into(),
            ))),
            None,
        ),
        Some(_) => (Some(ready(State::Ready)), None),
        None => (
            None,
            Some(Action::IssueCertificateSecret {
                namespace: ns.to_owned(),
                name: cert_name.to_owned(),
                subject: cert["spec"]["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                certificate_uid: uid(cert).to_owned(),
            }),
        ),
    }
}

/// Everything to do in `cluster` this round, given what every cluster showed.
pub(crate) fn plan(
    cluster: &str,
    world: &World,
    now: Timestamp,
    fresh_code: &mut dyn FnMut() -> String,
) -> Vec<Action> {
    let Some(own) = world.answering(cluster) else {
        return Vec::new();
    };
    let mut actions = Vec::new();
    let mut patch = |kind: Kind, object: &Value, desired: Value| {
        if let Some(patch) = status_patch(&object["status"], desired, now) {
            actions.push(Action::PatchStatus {
                kind,
                namespace: namespace(object).to_owned(),
                name: name(object).to_owned(),
                patch,
            });
        }
    };
    for site in own.of(Kind::Site) {
        let resolved = !world.unresolved.contains(cluster);
        patch(
            Kind::Site,
            site,
            site_status_resolved(site, cluster, resolved),
        );
    }
    for link in own.of(Kind::Link) {
        patch(Kind::Link, link, link_status(link, own, world));
    }
    for kind in [Kind::Connector, Kind::Listener] {
        for object in own.of(kind) {
            patch(kind, object, binding_status(kind, object, own, world));
        }
    }
    let ca = world.cas.get(cluster).cloned().unwrap_or_default();
    for grant in own.of(Kind::AccessGrant) {
        patch(
            Kind::AccessGrant,
            grant,
            grant_status(grant, cluster, &ca, now, fresh_code),
        );
    }
    let mut writes = Vec::new();
    for cert in own.of(Kind::Certificate) {
        let (status, write) = certificate_step(cert, own);
        if let Some(status) = status {
            patch(Kind::Certificate, cert, status);
        }
        writes.extend(write);
    }
    for token in own.of(Kind::AccessToken) {
        match token_step(token, own, world, now) {
            TokenStep::Skip => {}
            TokenStep::Fail(why) => patch(Kind::AccessToken, token, token_status(token, Err(&why))),
            TokenStep::Redeem(r) => writes.push(Action::Redeem(r)),
        }
    }
    actions.extend(writes);
    for s in &own.secrets {
        let gone = s
            .certificate_owner
            .as_deref()
            .is_some_and(|c| own.find(Kind::Certificate, &s.namespace, c).is_none());
        if s.controlled && gone {
            actions.push(Action::DeleteSecret {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
            });
        }
    }
    actions
}
