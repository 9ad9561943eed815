//! Rendering a plan into Skupper objects (pure).

use crate::kinds::{
    self, ACCESS_GRANT, ACCESS_TOKEN, CERTIFICATE, CONNECTOR, LINK, LISTENER, SECRET, SITE,
};
use crate::names;
use crate::status_read::{condition_true, dialable_endpoint_groups, find};
use federation_core::api::{SkupperLinkFlow, SkupperSettings};
use federation_core::backend::{DesiredObject, DesiredState, Observed, ObservedObject, Target};
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::{NetworkPlan, ServicePlan};
use federation_core::topology::{Link, Role};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Link access given to sites that accept links when the network does not say.
pub const DEFAULT_LINK_ACCESS: &str = "default";
/// How long an AccessGrant stays redeemable.
pub const GRANT_EXPIRATION: &str = "30m";

struct Ctx<'a> {
    plan: &'a NetworkPlan,
    observed: &'a BTreeMap<Target, Observed>,
    settings: SkupperSettings,
    labels: Value,
}

impl Ctx<'_> {
    fn object(
        &self,
        kind: &ManagedKind,
        namespace: &str,
        name: &str,
        fields: Value,
    ) -> DesiredObject {
        let mut body = json!({
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name, "namespace": namespace, "labels": self.labels},
        });
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        DesiredObject::new(kinds::key(kind, namespace, name), body)
    }

    fn observed_site(&self, member: &str, namespace: &str) -> Option<&Value> {
        let site = names::site(&self.plan.network);
        self.observed
            .get(&Target::Member(member.to_owned()))
            .and_then(|o| find(o, SITE.kind, namespace, &site))
            .map(|o| &o.body)
    }

    fn is_edge(&self, member: &str) -> bool {
        self.settings.edge_spokes
            && self
                .plan
                .topology
                .site(member)
                .is_some_and(|s| s.role == Role::Spoke)
    }
}

/// The desired Skupper objects of a plan, given what was observed this pass.
pub fn render(plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> DesiredState {
    let ctx = Ctx {
        plan,
        observed,
        settings: plan.backend.skupper.clone().unwrap_or_default(),
        labels: json!(plan.network.ownership_labels()),
    };
    let mut desired = DesiredState::default();
    let acceptors: BTreeSet<&str> = plan
        .topology
        .links
        .iter()
        .map(|l| l.acceptor.as_str())
        .collect();
    for ns in &plan.namespaces {
        let dialed = still_dialed(&ctx, ns);
        for site in &plan.topology.sites {
            let member = site.member.as_str();
            let accepts = acceptors.contains(member) || dialed.contains(member);
            desired.push(
                Target::Member(site.member.clone()),
                site_object(&ctx, member, ns, accepts),
            );
        }
        for link in &plan.topology.links {
            match ctx.settings.link_flow {
                SkupperLinkFlow::Direct => direct_link(&ctx, link, ns, &mut desired),
                SkupperLinkFlow::Grant => granted_link(&ctx, link, ns, &mut desired),
            }
        }
        for svc in plan.services.iter().filter(|s| &s.namespace == ns) {
            service_objects(&ctx, svc, &mut desired);
        }
    }
    desired
}

/// Members whose site in `ns` must keep accepting links although the plan may no longer
/// make them acceptors: an observed Link of the network still dials them, because the Links of
/// a link that left the plan are removed only once the new ones are up (make before break),
/// and taking link access away first would cut them. While some planned member could not be
/// observed its Links are unknown, so a site observed with link access keeps it.
fn still_dialed(ctx: &Ctx<'_>, ns: &str) -> BTreeSet<String> {
    let mut dialed: BTreeSet<String> = ctx
        .observed
        .values()
        .flat_map(|o| &o.objects)
        .filter(|o| o.key.kind == LINK.kind && o.key.namespace.as_deref() == Some(ns))
        .filter_map(|o| o.body["metadata"]["annotations"][ACCEPTOR_ANNOTATION].as_str())
        .map(str::to_owned)
        .collect();
    let unobserved = ctx
        .plan
        .members
        .iter()
        .any(|m| !ctx.observed.contains_key(&Target::Member(m.name.clone())));
    if unobserved {
        let observed_members = ctx.observed.keys().filter_map(Target::member);
        let planned = ctx.plan.members.iter().map(|m| m.name.as_str());
        for m in planned.chain(observed_members) {
            let has_access = ctx
                .observed_site(m, ns)
                .is_some_and(|s| s["spec"]["linkAccess"].is_string());
            if has_access {
                dialed.insert(m.to_owned());
            }
        }
    }
    dialed
}

fn site_object(ctx: &Ctx<'_>, member: &str, ns: &str, accepts: bool) -> DesiredObject {
    // A site that still accepts links is not made an edge site yet (edge sites cannot accept).
    let edge = ctx.is_edge(member) && !accepts;
    let mut spec = Map::new();
    if accepts {
        let access = ctx
            .settings
            .link_access
            .as_deref()
            .unwrap_or(DEFAULT_LINK_ACCESS);
        spec.insert("linkAccess".into(), access.into());
    }
    spec.insert("edge".into(), edge.into());
    spec.insert("ha".into(), (ctx.settings.ha && !edge).into());
    if !ctx.settings.settings.is_empty() {
        spec.insert("settings".into(), json!(ctx.settings.settings));
    }
    ctx.object(
        &SITE,
        ns,
        &names::site(&ctx.plan.network),
        json!({"spec": spec}),
    )
}

/// Direct flow: a client Certificate in the acceptor, issued by its site CA; once the
/// acceptor's controller has written the Certificate's Secret and resolved the site's
/// endpoints, a copy of the credentials and one Link per router group in the dialer.
///
/// What the dialer holds for the link is derived from the acceptor's state. When that state
/// cannot be read this pass (the acceptor is unreachable, its Site lost its endpoints or
/// issuer for a while, the Secret is briefly missing), the dialer's objects and the
/// acceptor's Certificate are retained as they are instead of being left out: left out, they
/// would be orphans, and a hub outage would cut every spoke.
fn direct_link(ctx: &Ctx<'_>, link: &Link, ns: &str, desired: &mut DesiredState) {
    let name = names::link(&ctx.plan.network, &link.dialer, &link.acceptor);
    let acceptor = Target::Member(link.acceptor.clone());
    let dialer = Target::Member(link.dialer.clone());
    let certificate = kinds::key(&CERTIFICATE, ns, &name);
    let freeze = |desired: &mut DesiredState| {
        desired.retain(acceptor.clone(), certificate.clone());
        retain_link_objects(ctx, &dialer, ns, &name, desired);
    };
    let Some(site) = ctx.observed_site(&link.acceptor, ns) else {
        freeze(desired);
        return;
    };
    let Some(issuer) = site["status"]["defaultIssuer"].as_str() else {
        freeze(desired);
        return;
    };
    let subject = ctx
        .plan
        .member(&link.dialer)
        .map_or(link.dialer.as_str(), |m| m.cluster_id.as_str());
    desired.push(
        acceptor.clone(),
        ctx.object(
            &CERTIFICATE,
            ns,
            &name,
            json!({"spec": {"ca": issuer, "subject": subject, "client": true}}),
        ),
    );

    let credentials = ctx
        .observed
        .get(&acceptor)
        .and_then(|o| find(o, SECRET.kind, ns, &name))
        .map(|s| &s.body["data"])
        .filter(|data| {
            ["tls.crt", "tls.key", "ca.crt"]
                .iter()
                .all(|k| data[k].is_string())
        });
    let groups = dialable_endpoint_groups(site);
    let (Some(data), false) = (credentials, groups.is_empty()) else {
        retain_link_objects(ctx, &dialer, ns, &name, desired);
        return;
    };
    let data =
        json!({"tls.crt": data["tls.crt"], "tls.key": data["tls.key"], "ca.crt": data["ca.crt"]});
    desired.push(
        dialer.clone(),
        ctx.object(
            &SECRET,
            ns,
            &name,
            json!({"type": "kubernetes.io/tls", "data": data}),
        ),
    );
    for (i, endpoints) in groups.iter().enumerate() {
        let spec = json!({"endpoints": endpoints, "tlsCredentials": name, "cost": link.cost});
        let object = ctx.object(
            &LINK,
            ns,
            &names::link_object(&name, i, groups.len()),
            json!({"spec": spec}),
        );
        desired.push(dialer.clone(), with_acceptor(object, &link.acceptor));
    }
}

/// Retains, as they are, the objects the dialer holds for one link: its credentials Secret,
/// its Links (`<name>` and `<name>-<i>`) and, in the grant flow, its AccessToken.
fn retain_link_objects(
    ctx: &Ctx<'_>,
    dialer: &Target,
    ns: &str,
    name: &str,
    desired: &mut DesiredState,
) {
    let Some(observed) = ctx.observed.get(dialer) else {
        return;
    };
    for o in observed.objects.iter().filter(|o| of_link(o, ns, name)) {
        desired.retain(dialer.clone(), o.key.clone());
    }
}

/// Annotation on every Link naming the member it dials, so that which sites are still dialed
/// is read off the Links in one pass (member names can exceed a label value's 63 characters).
pub const ACCEPTOR_ANNOTATION: &str = "fednet.io/acceptor";

fn with_acceptor(mut object: DesiredObject, acceptor: &str) -> DesiredObject {
    object.body["metadata"]["annotations"] = json!({ ACCEPTOR_ANNOTATION: acceptor });
    object
}

/// Grant flow: an AccessGrant in the acceptor; once it and the acceptor's site are Ready, an
/// AccessToken in the dialer, which the dialer's controller redeems into a Secret and Links
/// named after the token. Those are adopted (labelled) so that orphan cleanup finds them.
///
/// Recovery: a token refused because its grant expired or was used up replaces the grant
/// (the token then follows the new grant's code); a redeemed link whose credentials no longer
/// match the acceptor's CA (the CA rotated), or that has fewer Links than the acceptor has
/// router groups (it turned HA), is redeemed again from a new grant. Those links are broken
/// or incomplete already, so their objects are replaced without waiting for other links.
fn granted_link(ctx: &Ctx<'_>, link: &Link, ns: &str, desired: &mut DesiredState) {
    let name = names::link(&ctx.plan.network, &link.dialer, &link.acceptor);
    let acceptor = Target::Member(link.acceptor.clone());
    let dialer = Target::Member(link.dialer.clone());
    let grant_key = kinds::key(&ACCESS_GRANT, ns, &name);
    let observed_dialer = ctx.observed.get(&dialer);
    let token = observed_dialer.and_then(|o| find(o, ACCESS_TOKEN.kind, ns, &name));
    let grant = ctx
        .observed
        .get(&acceptor)
        .and_then(|o| find(o, ACCESS_GRANT.kind, ns, &name));
    let site = ctx.observed_site(&link.acceptor, ns);

    if let Some(token) = token.filter(|t| t.body["status"]["redeemed"] == true) {
        if let Some(dialer_objects) = observed_dialer
            && redemption_is_stale(dialer_objects, grant.map(|g| &g.body), site, ns, &name)
        {
            desired.replace(acceptor, grant_key);
            for o in dialer_objects
                .objects
                .iter()
                .filter(|o| of_link(o, ns, &name))
            {
                desired.replace(dialer.clone(), o.key.clone());
            }
            return;
        }
        // A token once redeemed must be kept as it was: its grant is used up, so re-rendering
        // it from a newer grant status would make it unredeemable.
        push_grant(ctx, &acceptor, ns, &name, desired);
        let spec = token.body["spec"].clone();
        desired.push(
            dialer.clone(),
            ctx.object(&ACCESS_TOKEN, ns, &name, json!({"spec": spec})),
        );
        adopt_redeemed(ctx, observed_dialer, link, ns, &name, desired);
        return;
    }
    if let (Some(token), Some(grant)) = (token, grant)
        && refused_for_good(&token.body)
        && token.body["spec"]["code"] == grant.body["status"]["code"]
    {
        // The grant this token names can never be redeemed: a new grant (a new code) is made
        // next pass, and the token follows it.
        desired.replace(acceptor, grant_key);
        retain_link_objects(ctx, &dialer, ns, &name, desired);
        return;
    }
    push_grant(ctx, &acceptor, ns, &name, desired);
    let site_ready = site.is_some_and(|s| condition_true(s, "Ready"));
    let Some(grant) = grant.filter(|g| site_ready && condition_true(&g.body, "Ready")) else {
        // The grant cannot be read as ready this pass: whatever the dialer already holds
        // for the link stays as it is.
        retain_link_objects(ctx, &dialer, ns, &name, desired);
        return;
    };
    let status = &grant.body["status"];
    if let (Some(url), Some(code), Some(ca)) = (
        status["url"].as_str(),
        status["code"].as_str(),
        status["ca"].as_str(),
    ) {
        let spec = json!({"url": url, "code": code, "ca": ca, "linkCost": link.cost});
        desired.push(
            dialer,
            ctx.object(&ACCESS_TOKEN, ns, &name, json!({"spec": spec})),
        );
    }
}

fn push_grant(ctx: &Ctx<'_>, acceptor: &Target, ns: &str, name: &str, desired: &mut DesiredState) {
    let spec = json!({"spec": {"redemptionsAllowed": 1, "expirationWindow": GRANT_EXPIRATION}});
    desired.push(acceptor.clone(), ctx.object(&ACCESS_GRANT, ns, name, spec));
}

/// Whether the grant server refused the token for a reason a retry cannot fix: the grant is
/// gone or expired (`No such claim`) or its redemptions are used up (`No such access
/// granted`), as Skupper's grant server answers (`internal/kube/grants/grants.go`).
fn refused_for_good(token: &Value) -> bool {
    token["status"]["redeemed"] != true
        && token["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("No such claim") || m.contains("No such access granted"))
}

/// Whether a redeemed link must be redeemed again: its credentials were issued by a CA the
/// acceptor no longer uses (the grant reports the current one), or the acceptor now has more
/// router groups than the link has Links. Undecided (false) while either end is unread.
fn redemption_is_stale(
    dialer: &Observed,
    grant: Option<&Value>,
    site: Option<&Value>,
    ns: &str,
    name: &str,
) -> bool {
    let (Some(grant), Some(site)) = (grant, site) else {
        return false;
    };
    let issued_by = find(dialer, SECRET.kind, ns, name)
        .and_then(|s| s.body["data"]["ca.crt"].as_str())
        .and_then(decode_base64);
    let current = grant["status"]["ca"].as_str();
    let rotated = matches!((issued_by, current), (Some(a), Some(b)) if a.trim() != b.trim());
    let links = dialer
        .objects
        .iter()
        .filter(|o| o.key.kind == LINK.kind && of_link(o, ns, name))
        .count();
    let groups = dialable_endpoint_groups(site).len();
    rotated || (links > 0 && groups > links)
}

/// Whether an object of the dialer belongs to the link `name`: its Secret or AccessToken,
/// or one of its Links.
fn of_link(o: &ObservedObject, ns: &str, name: &str) -> bool {
    if o.key.namespace.as_deref() != Some(ns) {
        return false;
    }
    match o.key.kind.as_str() {
        k if k == SECRET.kind || k == ACCESS_TOKEN.kind => o.key.name == name,
        k if k == LINK.kind => {
            o.key.name == name
                || o.key
                    .name
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-'))
        }
        _ => false,
    }
}

/// Standard base64 (Secret data), without a dependency for one comparison.
fn decode_base64(text: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET.iter().position(|a| *a == c)?;
        bits = (bits << 6) | u32::try_from(v).ok()?;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).ok()?);
        }
    }
    String::from_utf8(out).ok()
}

/// Adopts (labels) the Secret and Links the dialer's controller made from a redeemed token,
/// and keeps the Links' cost at the planned one: the token is kept as it was, so a cost change
/// reaches those Links only this way.
fn adopt_redeemed(
    ctx: &Ctx<'_>,
    observed: Option<&Observed>,
    link: &Link,
    ns: &str,
    name: &str,
    desired: &mut DesiredState,
) {
    let dialer = Target::Member(link.dialer.clone());
    let Some(observed) = observed else { return };
    for o in &observed.objects {
        let same_ns = o.key.namespace.as_deref() == Some(ns);
        let is_link = o.key.kind == LINK.kind
            && (o.key.name == name || o.key.name.starts_with(&format!("{name}-")));
        let is_secret = o.key.kind == SECRET.kind && o.key.name == name;
        if same_ns && (is_link || is_secret) {
            let mut object = if is_link {
                let fields = json!({"spec": {"cost": link.cost}});
                with_acceptor(ctx.object(&LINK, ns, &o.key.name, fields), &link.acceptor)
            } else {
                ctx.object(&SECRET, ns, &o.key.name, json!({}))
            };
            // Skupper's controller made these from fednet's own AccessToken: they may be
            // taken over (labelled), which nothing else found in the way may.
            object.adopt = true;
            desired.push(dialer.clone(), object);
        }
    }
}

fn service_objects(ctx: &Ctx<'_>, svc: &ServicePlan, desired: &mut DesiredState) {
    let exporters: BTreeSet<&str> = svc.exporters.iter().map(|e| e.member.as_str()).collect();
    for port in &svc.ports {
        let name = names::service_port(&svc.name, &port.name);
        for e in &svc.exporters {
            let mut spec = json!({"routingKey": port.routing_key, "port": port.target_port});
            if let Some(selector) = &e.selector {
                let selector: Vec<String> =
                    selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                spec["selector"] = selector.join(",").into();
            }
            if let Some(host) = &e.host {
                spec["host"] = host.clone().into();
            }
            desired.push(
                Target::Member(e.member.clone()),
                ctx.object(&CONNECTOR, &svc.namespace, &name, json!({"spec": spec})),
            );
        }
        // An exporting member serves the service locally; a Listener there would take over
        // the Service name its own workload may already use.
        for consumer in svc
            .consumers
            .iter()
            .filter(|c| !exporters.contains(c.as_str()))
        {
            let spec = json!({"routingKey": port.routing_key, "host": svc.service_name, "port": port.port});
            desired.push(
                Target::Member(consumer.clone()),
                ctx.object(&LISTENER, &svc.namespace, &name, json!({"spec": spec})),
            );
        }
    }
}
