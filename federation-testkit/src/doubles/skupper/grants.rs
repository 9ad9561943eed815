//! The grant flow's rules (pure): AccessGrant status as the grant server sets it, and the
//! grant server's answer to an AccessToken (`internal/kube/grants/grants.go`, `redeem.go`,
//! `tokens.go` upstream).

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::model::{
    DEFAULT_GRANT_WINDOW, EDGE, INTER_ROUTER, Kind, Redemption, Snapshot, State, StatusBuilder,
    World, condition_true, grant_url, name, namespace, parse_go_duration, parse_grant_url,
    timestamp, uid,
};

/// AccessGrant status: URL, code and expiry are set once and kept; the CA is the cluster's.
pub(crate) fn grant_status(
    grant: &Value,
    cluster: &str,
    ca_pem: &str,
    now: Timestamp,
    fresh_code: &mut dyn FnMut() -> String,
) -> Value {
    let (status, spec) = (&grant["status"], &grant["spec"]);
    let non_empty = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let code = non_empty(&status["code"])
        .or_else(|| non_empty(&spec["code"]))
        .unwrap_or_else(fresh_code);
    let mut b = StatusBuilder::new(grant)
        .field("url", grant_url(cluster, namespace(grant), name(grant)))
        .field("code", code)
        .field("ca", ca_pem);
    if let Some(n) = status["redemptions"].as_i64() {
        b = b.field("redemptions", n);
    }
    let window = non_empty(&spec["expirationWindow"]);
    let expiration = match (non_empty(&status["expirationTime"]), window) {
        (Some(existing), _) => Ok(existing),
        (None, None) => Ok(timestamp(now + DEFAULT_GRANT_WINDOW)),
        (None, Some(w)) => parse_go_duration(&w)
            .map(|d| timestamp(now + d))
            .ok_or_else(|| format!("Invalid duration {w:?}")),
    };
    let processed = match expiration {
        Ok(t) => {
            b = b.field("expirationTime", t);
            State::Ready
        }
        Err(e) => State::Error(e),
    };
    let resolved = if ca_pem.is_empty() {
        State::Pending("Pending".into())
    } else {
        State::Ready
    };
    b.condition("Processed", processed)
        .condition("Resolved", resolved)
        .ready(&["Processed", "Resolved"])
        .build()
}

/// What to do for an AccessToken.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenStep {
    /// Already redeemed, or no Site to redeem it for yet.
    Skip,
    /// The redemption failed; the message goes into the token's status.
    Fail(String),
    /// The grant server accepted it.
    Redeem(Box<Redemption>),
}

/// Whether and how an AccessToken is redeemed, as the grant server would answer.
pub(crate) fn token_step(
    token: &Value,
    own: &Snapshot,
    world: &World,
    now: Timestamp,
) -> TokenStep {
    let ns = namespace(token);
    let Some(site) = own.site(ns) else {
        return TokenStep::Skip;
    };
    if condition_true(token, "Redeemed") {
        return TokenStep::Skip;
    }
    let url = token["spec"]["url"].as_str().unwrap_or_default();
    let failed = |code: u16, text: &str, body: &str| {
        TokenStep::Fail(format!(
            "Controller got failed response: {code} ({text}) {body}"
        ))
    };
    let Some((cluster, grant_ns, grant_name)) = parse_grant_url(url) else {
        return TokenStep::Fail(format!(
            "Controller got error: no simulated grant server at {url:?}"
        ));
    };
    let Some(remote) = world.answering(cluster) else {
        return TokenStep::Fail(format!(
            "Controller got error: grant server of {cluster} does not answer"
        ));
    };
    let Some(grant) = remote.find(Kind::AccessGrant, grant_ns, grant_name) else {
        return failed(404, "Not Found", "No such claim");
    };
    let expires = grant["status"]["expirationTime"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok());
    match expires {
        None => return failed(500, "Internal Server Error", "Corrupted claim"),
        Some(t) if t < now => return failed(404, "Not Found", "No such claim"),
        Some(_) => {}
    }
    let allowed = grant["spec"]["redemptionsAllowed"]
        .as_i64()
        .unwrap_or(0)
        .max(1);
    let used = grant["status"]["redemptions"].as_i64().unwrap_or(0);
    if used >= allowed {
        return failed(404, "Not Found", "No such access granted");
    }
    if grant["status"]["code"].as_str() != token["spec"]["code"].as_str() {
        return failed(403, "Forbidden", "Redemption of access token refused");
    }
    let links = match remote.site(grant_ns) {
        None => Err(format!("Site not yet defined for {grant_ns}")),
        Some(s) if s["spec"]["edge"] == true => {
            Err("Edge sites cannot accept incoming links from remote sites".into())
        }
        Some(s) => link_groups(name(token), s),
    };
    let links = match links {
        Ok(l) => l,
        Err(e) => return failed(500, "Internal Server Error", &e),
    };
    TokenStep::Redeem(Box::new(Redemption {
        token: token.clone(),
        site_name: name(site).to_owned(),
        site_uid: uid(site).to_owned(),
        granting_cluster: cluster.to_owned(),
        grant_namespace: grant_ns.to_owned(),
        grant_name: grant_name.to_owned(),
        grant_resource_version: grant["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        redemptions: used + 1,
        links,
        cost: token["spec"]["linkCost"].as_i64().filter(|c| *c > 0),
    }))
}

/// One Link per router group of the granting site, named `<token>` or `<token>-<i>` from 1.
fn link_groups(token: &str, site: &Value) -> Result<Vec<(String, Vec<Value>)>, String> {
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in site["status"]["endpoints"].as_array().into_iter().flatten() {
        if e["name"] == INTER_ROUTER.0 || e["name"] == EDGE.0 {
            let group = e["group"].as_str().unwrap_or_default().to_owned();
            groups.entry(group).or_default().push(e.clone());
        }
    }
    if groups.is_empty() {
        return Err("No valid endpoints found for site".into());
    }
    let count = groups.len();
    Ok(groups
        .into_values()
        .enumerate()
        .map(|(i, endpoints)| {
            let name = if count > 1 {
                format!("{token}-{}", i + 1)
            } else {
                token.to_owned()
            };
            (name, endpoints)
        })
        .collect())
}

/// AccessToken status after a redemption attempt (upstream `AccessToken.SetRedeemed`).
pub(crate) fn token_status(token: &Value, result: Result<(), &str>) -> Value {
    let state = match result {
        Ok(()) => State::Ready,
        Err(e) => State::Error(e.to_owned()),
    };
    let (_, reason, message) = state.parts();
    let mut b = StatusBuilder::new(token)
        .field("status", reason)
        .field("message", message.to_owned());
    if state == State::Ready {
        b = b.field("redeemed", true);
    }
    b.condition("Redeemed", state).build()
}
