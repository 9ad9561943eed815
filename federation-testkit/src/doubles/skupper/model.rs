//! What the double's rules work on: the kinds, what a poll of a cluster read, the world of
//! all clusters, the actions the rules ask for, and building and diffing statuses the way
//! upstream's `pkg/apis/skupper/v2alpha1/types.go` does. Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

/// `Site.status.defaultIssuer` when the spec names none (upstream `Site.DefaultIssuer()`).
pub(crate) const DEFAULT_ISSUER: &str = "skupper-site-ca";
/// Router groups: the first one always, the second one for HA sites.
pub(crate) const ROUTER_GROUPS: [&str; 2] = ["skupper-router", "skupper-router-2"];
/// Top-level domain of every simulated host name.
pub(crate) const HOST_DOMAIN: &str = "sim";
pub(crate) const INTER_ROUTER: (&str, &str) = ("inter-router", "55671");
pub(crate) const EDGE: (&str, &str) = ("edge", "45671");
/// Upstream grants expire after ten minutes when the spec gives no window.
pub(crate) const DEFAULT_GRANT_WINDOW: SignedDuration = SignedDuration::from_secs(600);
/// Annotation upstream's certificate manager puts on the Secrets it controls.
pub(crate) const CONTROLLED_ANNOTATION: &str = "internal.skupper.io/controlled";
/// Annotation marking a Secret written for a Certificate.
pub(crate) const CERTIFICATE_ANNOTATION: &str = "internal.skupper.io/certificate";

/// The Skupper kinds the double acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Site,
    Certificate,
    Link,
    Connector,
    Listener,
    AccessGrant,
    AccessToken,
}

impl Kind {
    pub(crate) const ALL: [Self; 7] = [
        Self::Site,
        Self::Certificate,
        Self::Link,
        Self::Connector,
        Self::Listener,
        Self::AccessGrant,
        Self::AccessToken,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Site => "Site",
            Self::Certificate => "Certificate",
            Self::Link => "Link",
            Self::Connector => "Connector",
            Self::Listener => "Listener",
            Self::AccessGrant => "AccessGrant",
            Self::AccessToken => "AccessToken",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Self::Site => "sites",
            Self::Certificate => "certificates",
            Self::Link => "links",
            Self::Connector => "connectors",
            Self::Listener => "listeners",
            Self::AccessGrant => "accessgrants",
            Self::AccessToken => "accesstokens",
        }
    }
}

/// What the double needs to know of a Secret (never its keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SecretInfo {
    pub namespace: String,
    pub name: String,
    /// `ca.crt`, when present: tells which CA issued link credentials.
    pub ca_crt: Option<String>,
    /// Carries [`CONTROLLED_ANNOTATION`].
    pub controlled: bool,
    /// The Certificate it was written for (an owner reference of kind Certificate).
    pub certificate_owner: Option<String>,
}

/// Everything read from one cluster in one poll.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub objects: BTreeMap<Kind, Vec<Value>>,
    pub secrets: Vec<SecretInfo>,
}

impl Snapshot {
    pub(crate) fn of(&self, kind: Kind) -> &[Value] {
        self.objects.get(&kind).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn find(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.of(kind)
            .iter()
            .find(|o| namespace(o) == ns && self::name(o) == name)
    }

    /// The Site of a namespace (Skupper allows one active Site per namespace).
    pub(crate) fn site(&self, ns: &str) -> Option<&Value> {
        self.of(Kind::Site).iter().find(|o| namespace(o) == ns)
    }

    pub(crate) fn secret(&self, ns: &str, name: &str) -> Option<&SecretInfo> {
        self.secrets
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    }
}

/// What every simulated cluster showed: its latest snapshot if it answered recently.
#[derive(Clone, Debug, Default)]
pub(crate) struct World {
    pub clusters: BTreeMap<String, Option<Arc<Snapshot>>>,
    /// PEM of each cluster's site CA.
    pub cas: BTreeMap<String, String>,
    /// Clusters whose router access has lost its addresses (a fault a test injects).
    pub unresolved: std::collections::BTreeSet<String>,
}

impl World {
    /// The snapshot of a cluster that answered recently.
    pub(crate) fn answering(&self, cluster: &str) -> Option<&Snapshot> {
        self.clusters.get(cluster).and_then(|s| s.as_deref())
    }

    pub(crate) fn any_with_routing_key(&self, kind: Kind, key: &str) -> bool {
        self.clusters.values().flatten().any(|s| {
            s.of(kind)
                .iter()
                .any(|o| o["spec"]["routingKey"].as_str() == Some(key))
        })
    }
}

/// One thing to do in the cluster being handled (or, for a redemption, also at the grant's).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    /// Merge-patch the status subresource with `patch` (changed keys; `null` removes one).
    PatchStatus {
        kind: Kind,
        namespace: String,
        name: String,
        patch: Value,
    },
    /// Write the Secret of a Certificate: a certificate for `subject` issued by the cluster's CA.
    IssueCertificateSecret {
        namespace: String,
        name: String,
        subject: String,
        certificate_uid: String,
    },
    /// Delete a Secret whose Certificate is gone.
    DeleteSecret { namespace: String, name: String },
    /// Redeem an AccessToken.
    Redeem(Box<Redemption>),
}

/// An AccessToken the grant server accepted: what to write for it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Redemption {
    /// The token as read (its status is patched from this).
    pub token: Value,
    pub site_name: String,
    pub site_uid: String,
    pub granting_cluster: String,
    pub grant_namespace: String,
    pub grant_name: String,
    /// Precondition of the redemption count update.
    pub grant_resource_version: String,
    /// The grant's redemption count after this one.
    pub redemptions: i64,
    /// Link names and their endpoints, one per router group of the granting site.
    pub links: Vec<(String, Vec<Value>)>,
    pub cost: Option<i64>,
}

/// The state of one condition, as upstream's `ReadyCondition`/`PendingCondition`/`ErrorCondition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Ready,
    Pending(String),
    Error(String),
}

impl State {
    pub(crate) fn parts(&self) -> (&'static str, &'static str, &str) {
        match self {
            Self::Ready => ("True", "Ready", "OK"),
            Self::Pending(m) => ("False", "Pending", m),
            Self::Error(m) => ("False", "Error", m),
        }
    }
}

/// Builds a status the way upstream's `Status.SetCondition` and `setReady` do.
pub(crate) struct StatusBuilder {
    generation: Option<i64>,
    conditions: Vec<(&'static str, State)>,
    fields: Map<String, Value>,
}

impl StatusBuilder {
    pub(crate) fn new(object: &Value) -> Self {
        Self {
            generation: object["metadata"]["generation"].as_i64(),
            conditions: Vec::new(),
            fields: Map::new(),
        }
    }

    pub(crate) fn condition(mut self, type_: &'static str, state: State) -> Self {
        self.conditions.push((type_, state));
        self
    }

    pub(crate) fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Ready is the first required condition that is not true, else ready; `status` and
    /// `message` mirror it.
    pub(crate) fn ready(self, required: &[&str]) -> Self {
        let state = required
            .iter()
            .find_map(|r| match self.conditions.iter().find(|(t, _)| t == r) {
                None => Some(State::Pending(format!("Not {r}"))),
                Some((_, State::Ready)) => None,
                Some((_, s)) => Some(s.clone()),
            })
            .unwrap_or(State::Ready);
        let (_, reason, message) = state.parts();
        let (reason, message) = (reason.to_owned(), message.to_owned());
        self.field("status", reason)
            .field("message", message)
            .condition("Ready", state)
    }

    pub(crate) fn build(self) -> Value {
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|(type_, state)| {
                let (status, reason, message) = state.parts();
                let mut c =
                    json!({"type": type_, "status": status, "reason": reason, "message": message});
                if let Some(g) = self.generation {
                    c["observedGeneration"] = g.into();
                }
                c
            })
            .collect();
        let mut fields = self.fields;
        fields.insert("conditions".into(), conditions.into());
        Value::Object(fields)
    }
}

pub(crate) fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub(crate) fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

pub(crate) fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or_default()
}

pub(crate) fn condition_true(o: &Value, type_: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

pub(crate) fn link_access_on(site: &Value) -> bool {
    site["spec"]["linkAccess"]
        .as_str()
        .is_some_and(|a| !a.is_empty() && a != "none")
}

pub(crate) fn default_issuer(site: &Value) -> &str {
    site["spec"]["defaultIssuer"]
        .as_str()
        .filter(|i| !i.is_empty())
        .unwrap_or(DEFAULT_ISSUER)
}

/// `<group>.<namespace>.<cluster>.sim`: the cluster in the name tells which cluster a Link dials.
pub(crate) fn endpoint_host(group: &str, ns: &str, cluster: &str) -> String {
    format!("{group}.{ns}.{cluster}.{HOST_DOMAIN}")
}

/// The (group, namespace, cluster) an endpoint host names, if it is a simulated one.
pub(crate) fn parse_endpoint_host(host: &str) -> Option<(&str, &str, &str)> {
    let rest = host.strip_suffix(HOST_DOMAIN)?.strip_suffix('.')?;
    let (group, rest) = rest.split_once('.')?;
    let (ns, cluster) = rest.split_once('.')?;
    [group, ns, cluster]
        .iter()
        .all(|p| !p.is_empty())
        .then_some((group, ns, cluster))
}

/// `https://grants.<cluster>.sim/<namespace>/<name>`.
pub(crate) fn grant_url(cluster: &str, ns: &str, name: &str) -> String {
    format!("https://grants.{cluster}.{HOST_DOMAIN}/{ns}/{name}")
}

/// The (cluster, namespace, name) a grant URL names, if it is a simulated one.
pub(crate) fn parse_grant_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url.strip_prefix("https://grants.")?;
    let (host, path) = rest.split_once('/')?;
    let cluster = host.strip_suffix(HOST_DOMAIN)?.strip_suffix('.')?;
    let (ns, name) = path.split_once('/')?;
    [cluster, ns, name]
        .iter()
        .all(|p| !p.is_empty() && !p.contains('/'))
        .then_some((cluster, ns, name))
}

/// A Go `time.ParseDuration` string with units h, m, s, ms (e.g. `30m`, `1h30m`, `90s`).
pub(crate) fn parse_go_duration(text: &str) -> Option<SignedDuration> {
    let mut rest = text;
    let mut total = SignedDuration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(SignedDuration::try_from_secs_f64(value * seconds).ok()?)?;
    }
    Some(total)
}

/// RFC 3339 with whole seconds, as the API server's `metav1.Time` writes it.
pub(crate) fn timestamp(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// The merge patch turning `old` into `desired`, or `None` when nothing changes. A condition
/// keeps its `lastTransitionTime` unless its status changes (upstream `setStatusCondition`);
/// keys of `old` missing from `desired` are removed.
pub(crate) fn status_patch(old: &Value, mut desired: Value, now: Timestamp) -> Option<Value> {
    let old_conditions = old["conditions"].as_array().cloned().unwrap_or_default();
    if let Some(conditions) = desired["conditions"].as_array_mut() {
        for c in conditions {
            let previous = old_conditions.iter().find(|o| o["type"] == c["type"]);
            c["lastTransitionTime"] = match previous {
                Some(p) if p["status"] == c["status"] && p["lastTransitionTime"].is_string() => {
                    p["lastTransitionTime"].clone()
                }
                _ => timestamp(now).into(),
            };
        }
    }
    let desired = desired.as_object().cloned().unwrap_or_default();
    let mut patch = Map::new();
    for (k, v) in &desired {
        if old.get(k) != Some(v) {
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in old.as_object().into_iter().flat_map(Map::keys) {
        if !desired.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}
