//! Rendering a plan into Submariner objects (pure).
//!
//! On the broker: the broker namespace, the broker client Role, the `Broker` resource, and per
//! member a ServiceAccount `cluster-<clusterId>` bound to the Role with a token Secret. In each
//! member: the broker connection Secret, the IPsec PSK Secret, the `Submariner` resource and
//! one `ServiceExport` per service it exports. Everything a member's join needs from the
//! broker (token, CA, API server, Globalnet block) is read off the broker's observation; when
//! the broker could not be read, the member's join objects are kept as they are.

use crate::globalnet::{self, Pool};
use crate::kinds::{
    self, BROKER, BROKER_CLIENT_ROLE, BROKER_NAME, BROKER_NAMESPACE, BROKER_SECRET, NAMESPACE,
    OPERATOR_NAMESPACE, PSK_SECRET, ROLE, ROLE_BINDING, SECRET, SERVICE_ACCOUNT, SERVICE_EXPORT,
    SUBMARINER, SUBMARINER_NAME,
};
use crate::names::{
    self, API_SERVER_ANNOTATION, GLOBAL_CIDR_ANNOTATION, MINT_TOKEN_ANNOTATION,
    TOKEN_EXPIRES_ANNOTATION,
};
use federation_core::api::SubmarinerSettings;
use federation_core::backend::{DesiredObject, DesiredState, Observed, ObservedObject, Target};
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::{NetworkPlan, PlannedMember};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// How long a minted broker token lives.
pub const TOKEN_LIFETIME_SECS: u64 = 24 * 3600;
/// A token is renewed once less than this is left, so the new one reaches every member
/// long before the old one expires.
pub const RENEW_BEFORE_SECS: u64 = TOKEN_LIFETIME_SECS / 3;
/// The cable driver when the network does not name one.
pub const DEFAULT_CABLE_DRIVER: &str = "libreswan";
/// The IPsec NAT-T port when the network does not name one (the gateway DaemonSet the
/// operator renders is invalid without it).
pub const DEFAULT_NAT_T_PORT: u16 = 4500;
/// The IPsec IKE port.
pub const IKE_PORT: u16 = 500;
/// The components the broker serves.
pub const BROKER_COMPONENTS: [&str; 2] = ["service-discovery", "connectivity"];

/// The target of the network's broker.
pub fn broker_target(plan: &NetworkPlan) -> Option<Target> {
    plan.backend
        .submariner
        .as_ref()
        .map(|s| Target::Broker(s.broker.clone()))
}

struct Ctx<'a> {
    plan: &'a NetworkPlan,
    observed: &'a BTreeMap<Target, Observed>,
    settings: SubmarinerSettings,
    labels: Value,
    now: u64,
}

impl Ctx<'_> {
    fn object(
        &self,
        kind: &ManagedKind,
        namespace: Option<&str>,
        name: &str,
        fields: Value,
    ) -> DesiredObject {
        let mut metadata = json!({"name": name, "labels": self.labels});
        let key = match namespace {
            Some(ns) => {
                metadata["namespace"] = ns.into();
                kinds::key(kind, ns, name)
            }
            None => kinds::cluster_key(kind, name),
        };
        let mut body =
            json!({"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata});
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            for (k, v) in fields {
                if k == "metadata" {
                    if let (Some(m), Value::Object(extra)) = (body["metadata"].as_object_mut(), v) {
                        m.extend(extra);
                    }
                } else {
                    body.insert(k, v);
                }
            }
        }
        DesiredObject::new(key, body)
    }

    fn broker(&self) -> Option<&Observed> {
        broker_target(self.plan).and_then(|t| self.observed.get(&t))
    }
}

/// Finds an observed object by kind, namespace and name.
pub fn find<'a>(
    observed: &'a Observed,
    kind: &ManagedKind,
    namespace: Option<&str>,
    name: &str,
) -> Option<&'a ObservedObject> {
    observed.objects.iter().find(|o| {
        o.key.kind == kind.kind
            && o.key.api_version == kind.api_version
            && o.key.namespace.as_deref() == namespace
            && o.key.name == name
    })
}

/// The desired objects of a plan at time `now` (Unix seconds), given what was observed.
pub fn render(plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>, now: u64) -> DesiredState {
    let ctx = Ctx {
        plan,
        observed,
        settings: plan.backend.submariner.clone().unwrap_or_default(),
        labels: json!(plan.network.ownership_labels()),
        now,
    };
    let mut desired = DesiredState::default();
    let global = global_cidrs(&ctx);
    if let (Some(target), Some(_)) = (broker_target(plan), ctx.broker()) {
        for o in broker_objects(&ctx, global.as_ref()) {
            desired.push(target.clone(), o);
        }
    }
    for m in &plan.members {
        member_objects(&ctx, m, global.as_ref(), &mut desired);
    }
    for svc in &plan.services {
        for e in &svc.exporters {
            let export = ctx.object(
                &SERVICE_EXPORT,
                Some(&svc.namespace),
                &svc.service_name,
                json!({}),
            );
            desired.push(Target::Member(e.member.clone()), export);
        }
    }
    desired
}

/// The Globalnet block of every member, when Globalnet is on and the broker (where blocks
/// are recorded) was read. `None` otherwise: nothing that depends on a block is rendered.
fn global_cidrs(ctx: &Ctx<'_>) -> Option<BTreeMap<String, String>> {
    if !ctx.settings.globalnet {
        return None;
    }
    let broker = ctx.broker()?;
    let pool = Pool::of(&ctx.settings).ok()?;
    let recorded: BTreeMap<String, String> = broker
        .objects
        .iter()
        .filter(|o| o.owned && o.key.kind == SERVICE_ACCOUNT.kind)
        .filter_map(|o| {
            let id = names::cluster_of_account(&o.key.name)?;
            let cidr = o.body["metadata"]["annotations"][GLOBAL_CIDR_ANNOTATION].as_str()?;
            Some((id.to_owned(), cidr.to_owned()))
        })
        .collect();
    let clusters: BTreeSet<String> = ctx
        .plan
        .members
        .iter()
        .map(|m| m.cluster_id.clone())
        .collect();
    Some(pool.allocate(&clusters, &recorded))
}

fn broker_objects(ctx: &Ctx<'_>, global: Option<&BTreeMap<String, String>>) -> Vec<DesiredObject> {
    let ns = BROKER_NAMESPACE;
    let mut out = vec![
        ctx.object(&NAMESPACE, None, ns, json!({})),
        ctx.object(
            &ROLE,
            Some(ns),
            BROKER_CLIENT_ROLE,
            json!({"rules": broker_client_rules()}),
        ),
    ];
    let mut broker_spec =
        json!({"components": BROKER_COMPONENTS, "globalnetEnabled": ctx.settings.globalnet});
    if ctx.settings.globalnet {
        broker_spec["globalnetCIDRRange"] = ctx
            .settings
            .globalnet_cidr_range
            .as_deref()
            .unwrap_or(globalnet::DEFAULT_RANGE)
            .into();
        broker_spec["defaultGlobalnetClusterSize"] = ctx
            .settings
            .globalnet_cluster_size
            .unwrap_or(globalnet::DEFAULT_CLUSTER_SIZE)
            .into();
    }
    out.push(ctx.object(&BROKER, Some(ns), BROKER_NAME, json!({"spec": broker_spec})));
    for m in &ctx.plan.members {
        let account = names::cluster_account(&m.cluster_id);
        let mut sa = json!({});
        if let Some(cidr) = global.and_then(|g| g.get(&m.cluster_id)) {
            sa["metadata"] = json!({"annotations": {GLOBAL_CIDR_ANNOTATION: cidr}});
        }
        out.push(ctx.object(&SERVICE_ACCOUNT, Some(ns), &account, sa));
        out.push(ctx.object(
            &ROLE_BINDING,
            Some(ns),
            &account,
            json!({
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BROKER_CLIENT_ROLE},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
            }),
        ));
        out.push(token_secret(ctx, m, &account));
    }
    out
}

/// The broker token Secret of a member: the observed one while its token is fresh, else a
/// request to mint one (see [`MINT_TOKEN_ANNOTATION`]).
fn token_secret(ctx: &Ctx<'_>, m: &PlannedMember, account: &str) -> DesiredObject {
    let name = names::cluster_token(&m.cluster_id);
    let observed = ctx
        .broker()
        .and_then(|b| find(b, &SECRET, Some(BROKER_NAMESPACE), &name))
        .filter(|o| o.owned);
    if let Some(o) = observed
        .filter(|o| token_is_fresh(&o.body, ctx.now, ctx.settings.broker_api_server.as_deref()))
    {
        let annotations = &o.body["metadata"]["annotations"];
        return ctx.object(
            &SECRET,
            Some(BROKER_NAMESPACE),
            &name,
            json!({
                "metadata": {"annotations": {
                    TOKEN_EXPIRES_ANNOTATION: annotations[TOKEN_EXPIRES_ANNOTATION],
                    API_SERVER_ANNOTATION: annotations[API_SERVER_ANNOTATION],
                }},
                "type": "Opaque",
                "data": {"token": o.body["data"]["token"], "ca.crt": o.body["data"]["ca.crt"]},
            }),
        );
    }
    let mut annotations = json!({MINT_TOKEN_ANNOTATION: account});
    if let Some(server) = ctx.settings.broker_api_server.as_deref() {
        annotations[API_SERVER_ANNOTATION] = server.into();
    }
    ctx.object(
        &SECRET,
        Some(BROKER_NAMESPACE),
        &name,
        json!({"metadata": {"annotations": annotations}, "type": "Opaque"}),
    )
}

/// Whether a broker token Secret holds a token that is not due for renewal, for the API
/// server the network names (any, when it names none).
pub fn token_is_fresh(body: &Value, now: u64, api_server: Option<&str>) -> bool {
    let annotations = &body["metadata"]["annotations"];
    let expires = annotations[TOKEN_EXPIRES_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok());
    let server_ok = api_server.is_none_or(|s| annotations[API_SERVER_ANNOTATION] == s);
    body["data"]["token"].is_string()
        && body["data"]["ca.crt"].is_string()
        && annotations[API_SERVER_ANNOTATION].is_string()
        && server_ok
        && expires.is_some_and(|e| e > now.saturating_add(RENEW_BEFORE_SECS))
}

fn member_objects(
    ctx: &Ctx<'_>,
    m: &PlannedMember,
    global: Option<&BTreeMap<String, String>>,
    desired: &mut DesiredState,
) {
    let target = Target::Member(m.name.clone());
    let observed = ctx.observed.get(&target);
    // The operator's namespace is used as it is when someone else made it (the operator's
    // own installation usually did); fednet makes it only where it is missing.
    let foreign_namespace = observed
        .and_then(|o| find(o, &NAMESPACE, None, OPERATOR_NAMESPACE))
        .is_some_and(|o| !o.owned);
    if !foreign_namespace {
        desired.push(
            target.clone(),
            ctx.object(&NAMESPACE, None, OPERATOR_NAMESPACE, json!({})),
        );
    }
    let ns = Some(OPERATOR_NAMESPACE);
    let broker = ctx.broker();
    let psk = broker.and_then(|b| {
        find(
            b,
            &SECRET,
            Some(&ctx.plan.network.namespace),
            &names::hub_psk(&ctx.plan.network),
        )
        .filter(|o| !o.owned)
        .and_then(|o| o.body["data"]["psk"].as_str())
    });
    match psk {
        Some(psk) => desired.push(
            target.clone(),
            ctx.object(
                &SECRET,
                ns,
                PSK_SECRET,
                json!({"type": "Opaque", "data": {"psk": psk}}),
            ),
        ),
        None => desired.retain(
            target.clone(),
            kinds::key(&SECRET, OPERATOR_NAMESPACE, PSK_SECRET),
        ),
    }
    let token = broker
        .and_then(|b| {
            find(
                b,
                &SECRET,
                Some(BROKER_NAMESPACE),
                &names::cluster_token(&m.cluster_id),
            )
        })
        .filter(|o| {
            o.owned && o.body["data"]["token"].is_string() && o.body["data"]["ca.crt"].is_string()
        });
    let global_cidr = global.and_then(|g| g.get(&m.cluster_id));
    let join = token.filter(|_| !ctx.settings.globalnet || global_cidr.is_some());
    let Some(token) = join else {
        // What joins the member depends on the broker, which could not be read (or has not
        // minted the member's token yet): keep what is there.
        desired.retain(
            target.clone(),
            kinds::key(&SECRET, OPERATOR_NAMESPACE, BROKER_SECRET),
        );
        desired.retain(
            target,
            kinds::key(&SUBMARINER, OPERATOR_NAMESPACE, SUBMARINER_NAME),
        );
        return;
    };
    let ca = &token.body["data"]["ca.crt"];
    desired.push(
        target.clone(),
        ctx.object(
            &SECRET,
            ns,
            BROKER_SECRET,
            json!({"type": "Opaque", "data": {"token": token.body["data"]["token"], "ca.crt": ca}}),
        ),
    );
    let api_server = token.body["metadata"]["annotations"][API_SERVER_ANNOTATION].clone();
    let cidrs = |pick: fn(&federation_core::api::MemberNetwork) -> &Vec<String>| {
        m.network
            .as_ref()
            .map(|n| pick(n).join(","))
            .unwrap_or_default()
    };
    let mut spec = json!({
        "broker": "k8s",
        "brokerK8sApiServer": api_server,
        "brokerK8sRemoteNamespace": BROKER_NAMESPACE,
        "brokerK8sSecret": BROKER_SECRET,
        // Public: the broker's CA certificate, base64 as the operator expects it. The token
        // itself stays in the Secret.
        "brokerK8sCA": ca,
        "brokerK8sInsecure": false,
        "ceIPSecDebug": false,
        "ceIPSecPSKSecret": PSK_SECRET,
        "ceIPSecIKEPort": IKE_PORT,
        "ceIPSecNATTPort": ctx.settings.nat_t_port.unwrap_or(DEFAULT_NAT_T_PORT),
        "cableDriver": ctx.settings.cable_driver.as_deref().unwrap_or(DEFAULT_CABLE_DRIVER),
        "clusterCIDR": cidrs(|n| &n.pod_cidrs),
        "serviceCIDR": cidrs(|n| &n.service_cidrs),
        "clusterID": m.cluster_id,
        "connectionHealthCheck": {"enabled": true, "intervalSeconds": 1, "maxPacketLossCount": 5},
        "debug": false,
        "namespace": OPERATOR_NAMESPACE,
        "natEnabled": ctx.settings.nat_enabled,
        "serviceDiscoveryEnabled": true,
    });
    if let Some(cidr) = global_cidr {
        spec["globalCIDR"] = cidr.as_str().into();
    }
    desired.push(
        target,
        ctx.object(&SUBMARINER, ns, SUBMARINER_NAME, json!({"spec": spec})),
    );
}

/// The broker client Role's rules, as upstream's `config/broker/broker-client-role.yaml`.
fn broker_client_rules() -> Value {
    let rw = [
        "create", "get", "list", "watch", "patch", "update", "delete",
    ];
    json!([
        {"apiGroups": ["submariner.io"], "resources": ["clusters", "endpoints"], "verbs": rw},
        {"apiGroups": ["submariner.io"], "resources": ["brokers"], "verbs": ["get", "list"]},
        {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports", "serviceimports/status"], "verbs": rw},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices", "endpointslices/restricted"], "verbs": rw},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list"]},
    ])
}
