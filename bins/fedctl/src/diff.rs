//! `fedctl diff`: what applying manifests would change in every member, computed with
//! server-side dry-run against the live clusters. Nothing is ever written: every apply is a
//! `dryRun=All` apply, and objects that would be deleted are only listed.
//!
//! The flow mirrors one operator pass: read the hub (MemberClusters, the network's inventory,
//! its FederatedServices), plan the manifests' network, observe each target through the
//! backend, render, then ask each member's API server what the operator's apply would make of
//! each desired object, and compare that with the live object.

use crate::manifests::Manifests;
use federation_core::api::{
    BackendKind, FIELD_MANAGER, FederatedNetwork, FederatedService, MemberCluster,
};
use federation_core::backend::{DesiredObject, NetworkBackend, ObjectKey, Observed, Target};
use federation_core::cluster::{MemberRegistry, member_unhealthy};
use federation_core::plan::{NetworkRef, PlanInput, plan};
use federation_skupper::SkupperBackend;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What replaces a Secret's value in a diff.
pub const REDACTED: &str = "<redacted>";

/// Fields the API server maintains on every write; a difference in them is not a change the
/// manifests make.
const VOLATILE_METADATA: [&str; 3] = ["managedFields", "resourceVersion", "generation"];

/// What `fedctl diff` could not do for a whole network.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A read of the hub failed.
    #[error("{what}: {source}")]
    Hub {
        /// The request, in words.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The manifests' network cannot be planned or served.
    #[error("network {network}: {message}")]
    Plan {
        /// `namespace/name`.
        network: String,
        /// Why.
        message: String,
    },
}

/// What applying would do to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// It does not exist and would be created.
    Create,
    /// It exists and some of its fields would change.
    Update,
    /// It exists and would stay as it is.
    Unchanged,
    /// It is owned by the network, no longer desired, and would be deleted.
    Delete,
    /// It exists but belongs to someone else: the operator would refuse to change it.
    Refused,
}

impl Action {
    /// The word printed in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::Delete => "delete",
            Self::Refused => "refused",
        }
    }
}

/// One field that would change: its path, and its value before and after (`None` when
/// absent). Secret values are shown as [`REDACTED`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// Path such as `spec.cost` or `metadata.labels["fednet.io/network"]`.
    pub path: String,
    /// The live value.
    pub old: Option<Value>,
    /// The value after the apply.
    pub new: Option<Value>,
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(none)".to_owned(),
            Some(v) => shorten(&v.to_string(), 60),
        };
        write!(
            f,
            "{}: {} -> {}",
            self.path,
            show(&self.old),
            show(&self.new)
        )
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One object of a member and what would happen to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDiff {
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What would happen.
    pub action: Action,
    /// For updates, the fields that would change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// Why, for refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ObjectDiff {
    fn new(key: &ObjectKey, action: Action) -> Self {
        Self {
            api_version: key.api_version.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            action,
            changes: Vec::new(),
            reason: None,
        }
    }
}

/// The objects of one target (member) of a network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetDiff {
    /// The member, as `member/<name>`.
    pub target: String,
    /// Every desired object, then the ones that would be deleted.
    pub objects: Vec<ObjectDiff>,
    /// Why this target could not be diffed (it was not read, or a dry-run failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One network of the manifests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkDiff {
    /// Hub namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Whether the network exists on the hub already.
    pub exists: bool,
    /// One entry per planned or recorded target.
    pub targets: Vec<TargetDiff>,
}

/// Everything `fedctl diff` found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DiffReport {
    /// One entry per network of the manifests.
    pub networks: Vec<NetworkDiff>,
}

impl DiffReport {
    /// Whether applying would change anything (an object created, updated or deleted).
    pub fn has_changes(&self) -> bool {
        self.objects()
            .any(|o| matches!(o.action, Action::Create | Action::Update | Action::Delete))
    }

    /// Whether part of the answer is missing: a target not diffed, or an object refused.
    pub fn has_errors(&self) -> bool {
        self.networks
            .iter()
            .flat_map(|n| &n.targets)
            .any(|t| t.error.is_some())
            || self.objects().any(|o| o.action == Action::Refused)
    }

    fn objects(&self) -> impl Iterator<Item = &ObjectDiff> {
        self.networks
            .iter()
            .flat_map(|n| &n.targets)
            .flat_map(|t| &t.objects)
    }
}

/// A body without what the server maintains by itself (status, managedFields,
/// resourceVersion, generation), for comparison.
pub fn comparable(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in VOLATILE_METADATA {
                meta.remove(field);
            }
        }
    }
    body
}

/// The fields that differ between `old` and `new` (both as [`comparable`] makes them),
/// sorted by path. Arrays of equal length are compared item by item, others as a whole.
/// For a Secret, values under `data` and `stringData` are shown as [`REDACTED`]: the diff
/// says that a key changes, never what it holds.
pub fn field_changes(kind: &str, old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(&mut Vec::new(), Some(old), Some(new), &mut out);
    if kind == "Secret" {
        for change in &mut out {
            if change.path.starts_with("data") || change.path.starts_with("stringData") {
                change.old = change.old.take().map(redact);
                change.new = change.new.take().map(redact);
            }
        }
    }
    out
}

/// A Secret value, or a map of them, with every value replaced (keys kept).
fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, _)| (k, Value::String(REDACTED.to_owned())))
                .collect(),
        ),
        _ => Value::String(REDACTED.to_owned()),
    }
}

fn walk(
    path: &mut Vec<String>,
    old: Option<&Value>,
    new: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n))) => {
            let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for k in keys {
                path.push(segment(k));
                walk(path, o.get(k), n.get(k), out);
                path.pop();
            }
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) if o.len() == n.len() => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                path.push(format!("[{i}]"));
                walk(path, Some(ov), Some(nv), out);
                path.pop();
            }
        }
        (o, n) if o != n => out.push(FieldChange {
            path: join(path),
            old: o.cloned(),
            new: n.cloned(),
        }),
        _ => {}
    }
}

/// A path segment: `.name` for plain names, `["a.b/c"]` for keys that would be ambiguous.
fn segment(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!(".{key}")
    } else {
        format!("[{key:?}]")
    }
}

fn join(path: &[String]) -> String {
    let s: String = path.concat();
    s.strip_prefix('.').map(str::to_owned).unwrap_or(s)
}

/// Classifies one object from its live body (if any) and the body the dry-run apply returned.
pub fn classify(key: &ObjectKey, live: Option<&Value>, applied: &Value) -> ObjectDiff {
    let Some(live) = live else {
        return ObjectDiff::new(key, Action::Create);
    };
    let changes = field_changes(&key.kind, &comparable(live), &comparable(applied));
    let mut diff = ObjectDiff::new(
        key,
        if changes.is_empty() {
            Action::Unchanged
        } else {
            Action::Update
        },
    );
    diff.changes = changes;
    diff
}

/// Whether the operator may change `live` into `desired`; `Some(why)` when it would refuse
/// (the operator's own rule).
fn refusal(desired: &DesiredObject, live: &DynamicObject) -> Option<String> {
    federation_core::kubernetes::ownership_refusal(desired, live.labels())
}

/// Computes what applying `manifests` would change, reading the hub through `hub` and the
/// members through the kubeconfig Secrets registered on it. Never writes.
pub async fn diff(hub: &Client, manifests: &Manifests) -> Result<DiffReport, DiffError> {
    let members = Api::<MemberCluster>::all(hub.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| DiffError::Hub {
            what: "listing MemberClusters".into(),
            source,
        })?
        .items;
    let registry = Arc::new(MemberRegistry::new(hub.clone()));
    let mut report = DiffReport::default();
    for network in &manifests.networks {
        report
            .networks
            .push(diff_network(hub, &registry, network, &manifests.services, &members).await?);
    }
    Ok(report)
}

async fn diff_network(
    hub: &Client,
    registry: &Arc<MemberRegistry>,
    network: &FederatedNetwork,
    manifest_services: &[FederatedService],
    members: &[MemberCluster],
) -> Result<NetworkDiff, DiffError> {
    let net = NetworkRef::of(network);
    let hub_error = |what: String| move |source| DiffError::Hub { what, source };
    let live = Api::<FederatedNetwork>::namespaced(hub.clone(), &net.namespace)
        .get_opt(&net.name)
        .await
        .map_err(hub_error(format!("reading network {net}")))?;
    // Applying the manifests adds or replaces FederatedServices; it does not remove the ones
    // already on the hub, so the network keeps serving those.
    let mut services: BTreeMap<(String, String), FederatedService> =
        Api::<FederatedService>::namespaced(hub.clone(), &net.namespace)
            .list(&ListParams::default())
            .await
            .map_err(hub_error(format!(
                "listing FederatedServices in {}",
                net.namespace
            )))?
            .items
            .into_iter()
            .map(|s| ((s.namespace().unwrap_or_default(), s.name_any()), s))
            .collect();
    for s in manifest_services {
        services.insert((s.namespace().unwrap_or_default(), s.name_any()), s.clone());
    }
    let services: Vec<FederatedService> = services.into_values().collect();
    let unhealthy: BTreeSet<String> = members
        .iter()
        .filter(|m| member_unhealthy(m))
        .map(ResourceExt::name_any)
        .collect();
    let plan_error = |message: String| DiffError::Plan {
        network: net.to_string(),
        message,
    };
    let plan = plan(PlanInput {
        network,
        member_clusters: members,
        services: &services,
        unhealthy: &unhealthy,
    })
    .map_err(|e| plan_error(format!("{e} ({})", e.reason())))?;
    let backend = match plan.backend.kind {
        BackendKind::Skupper => SkupperBackend::new(registry.clone()),
        other => {
            return Err(plan_error(format!(
                "fedctl diff has no {other} backend yet"
            )));
        }
    };
    let issues = backend.validate(&plan);
    if !issues.is_empty() {
        let issues: Vec<String> = issues.iter().map(ToString::to_string).collect();
        return Err(plan_error(issues.join("; ")));
    }

    // The operator also cleans up targets recorded in the inventory that left the plan.
    let mut targets = backend.targets(&plan);
    let mut plan = plan;
    if let Some(inventory) = live
        .as_ref()
        .and_then(|n| n.status.as_ref()?.inventory.as_ref())
    {
        targets.extend(inventory.targets.iter().map(Target::from));
        plan.retired_namespaces = inventory
            .namespaces
            .iter()
            .filter(|ns| !plan.namespaces.contains(ns))
            .cloned()
            .collect();
    }
    let scope = plan.observe_scope();
    let reads = futures::future::join_all(
        targets
            .iter()
            .map(|t| async { (t.clone(), backend.observe(t, &scope).await) }),
    )
    .await;
    let mut observed = BTreeMap::new();
    let mut out = Vec::new();
    for (target, read) in reads {
        match read {
            Ok(o) => {
                observed.insert(target, o);
            }
            Err(e) => out.push(TargetDiff {
                target: target.to_string(),
                objects: Vec::new(),
                error: Some(format!("not read: {e}")),
            }),
        }
    }
    let desired = backend
        .render(&plan, &observed)
        .map_err(|e| plan_error(format!("rendering: {e}")))?;
    for (target, obs) in &observed {
        let wanted = desired.targets.get(target).map_or(&[][..], Vec::as_slice);
        let retained = |k: &ObjectKey| desired.is_retained(target, k);
        let mut diff = TargetDiff {
            target: target.to_string(),
            objects: Vec::new(),
            error: None,
        };
        match target_diff(registry, target, wanted, &retained).await {
            Ok(objects) => diff.objects = objects,
            Err(e) => diff.error = Some(e),
        }
        diff.objects.extend(deletions(wanted, obs, &retained));
        out.push(diff);
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(NetworkDiff {
        namespace: net.namespace.clone(),
        name: net.name.clone(),
        exists: live.is_some(),
        targets: out,
    })
}

/// Owned objects that are observed, not desired and not retained: the operator deletes them
/// (possibly a few passes later, once the planned links are up).
fn deletions(
    wanted: &[DesiredObject],
    observed: &Observed,
    retained: &dyn Fn(&ObjectKey) -> bool,
) -> Vec<ObjectDiff> {
    let wanted: BTreeSet<&ObjectKey> = wanted.iter().map(|d| &d.key).collect();
    observed
        .objects
        .iter()
        .filter(|o| o.owned && !wanted.contains(&o.key) && !retained(&o.key))
        .map(|o| ObjectDiff::new(&o.key, Action::Delete))
        .collect()
}

/// Dry-run applies each desired object of a target, as the operator would apply it.
async fn target_diff(
    registry: &MemberRegistry,
    target: &Target,
    wanted: &[DesiredObject],
    retained: &dyn Fn(&ObjectKey) -> bool,
) -> Result<Vec<ObjectDiff>, String> {
    let member = target
        .member()
        .ok_or_else(|| format!("{target} is not a member cluster"))?;
    let client = registry
        .client_by_name(member)
        .await
        .map_err(|e| format!("no client: {e}"))?;
    // `dry_run` makes the server run admission and defaulting and return the result
    // without persisting it; `force` takes fields over as the operator's apply does.
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let mut out = Vec::new();
    // A retained object is kept exactly as it is by the operator: nothing to apply.
    for object in wanted.iter().filter(|o| !retained(&o.key)) {
        let key = &object.key;
        let kind = federation_skupper::kinds::OWNED
            .iter()
            .find(|k| k.api_version == key.api_version && k.kind == key.kind)
            .ok_or_else(|| format!("{key}: kind not managed by the backend"))?;
        let resource = kind.resource();
        let api: Api<DynamicObject> = match &key.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let live = api
            .get_opt(&key.name)
            .await
            .map_err(|e| format!("reading {key}: {e}"))?;
        if let Some(why) = live.as_ref().and_then(|l| refusal(object, l)) {
            let mut diff = ObjectDiff::new(key, Action::Refused);
            diff.reason = Some(why);
            out.push(diff);
            continue;
        }
        let applied = api
            .patch(&key.name, &params, &Patch::Apply(&object.body))
            .await
            .map_err(|e| format!("dry-run apply of {key}: {e}"))?;
        let as_value =
            |o: &DynamicObject| serde_json::to_value(o).map_err(|e| format!("encoding {key}: {e}"));
        let live = live.as_ref().map(as_value).transpose()?;
        out.push(classify(key, live.as_ref(), &as_value(&applied)?));
    }
    Ok(out)
}

/// The report as text: per target, one row per object that would change (with its changed
/// fields), and a count of those that would not.
pub fn text(report: &DiffReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for net in &report.networks {
        let state = if net.exists { "" } else { " (new)" };
        let _ = writeln!(s, "network {}/{}{state}", net.namespace, net.name);
        for t in &net.targets {
            if let Some(e) = &t.error {
                let _ = writeln!(s, "  {}: error: {e}", t.target);
                if t.objects.is_empty() {
                    continue;
                }
            }
            let unchanged = t
                .objects
                .iter()
                .filter(|o| o.action == Action::Unchanged)
                .count();
            let changed: Vec<&ObjectDiff> = t
                .objects
                .iter()
                .filter(|o| o.action != Action::Unchanged)
                .collect();
            let _ = writeln!(
                s,
                "  {}: {} to change, {unchanged} unchanged",
                t.target,
                changed.len()
            );
            if changed.is_empty() {
                continue;
            }
            let mut table =
                crate::table::Table::new(&["KIND", "NAMESPACE/NAME", "ACTION", "CHANGES"]);
            for o in changed {
                let detail = match &o.reason {
                    Some(r) => r.clone(),
                    None => o
                        .changes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                table.row(vec![
                    o.kind.clone().into(),
                    format!("{}/{}", o.namespace.as_deref().unwrap_or("-"), o.name).into(),
                    o.action.as_str().into(),
                    detail.into(),
                ]);
            }
            for line in table.render(false).lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(kind: &str) -> ObjectKey {
        ObjectKey::namespaced("skupper.io/v2alpha1", kind, "apps", "x")
    }

    #[test]
    fn volatile_fields_and_status_are_not_changes() {
        let live = json!({"metadata": {"name": "x", "resourceVersion": "1", "generation": 1,
                          "managedFields": [{"manager": "a"}], "uid": "u"},
                          "spec": {"cost": 2}, "status": {"status": "Ready"}});
        let applied = json!({"metadata": {"name": "x", "resourceVersion": "2", "generation": 2,
                             "managedFields": [{"manager": "b"}], "uid": "u"},
                             "spec": {"cost": 2}, "status": {"status": "Pending"}});
        let d = classify(&key("Link"), Some(&live), &applied);
        assert_eq!(d.action, Action::Unchanged);
        assert!(d.changes.is_empty());
    }

    #[test]
    fn changed_added_and_removed_fields_are_listed_by_path() {
        let live = json!({"metadata": {"labels": {"fednet.io/network": "a.b"}},
                          "spec": {"cost": 2, "endpoints": [{"host": "h1", "port": "1"}],
                                   "old": true, "list": [1]}});
        let applied = json!({"metadata": {"labels": {"fednet.io/network": "a.c"}},
                             "spec": {"cost": 5, "endpoints": [{"host": "h2", "port": "1"}],
                                      "new": "x", "list": [1, 2]}});
        let d = classify(&key("Link"), Some(&live), &applied);
        assert_eq!(d.action, Action::Update);
        let shown: Vec<String> = d.changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"metadata.labels["fednet.io/network"]: "a.b" -> "a.c""#,
                "spec.cost: 2 -> 5",
                r#"spec.endpoints[0].host: "h1" -> "h2""#,
                "spec.list: [1] -> [1,2]",
                r#"spec.new: (none) -> "x""#,
                "spec.old: true -> (none)",
            ]
        );
    }

    #[test]
    fn secret_values_are_redacted_but_their_changes_shown() {
        let live = json!({"kind": "Secret", "metadata": {"name": "x"},
                          "data": {"tls.key": "b2xk", "ca.crt": "c2FtZQ=="}, "type": "kubernetes.io/tls"});
        let applied = json!({"kind": "Secret", "metadata": {"name": "x"},
                             "data": {"tls.key": "bmV3", "ca.crt": "c2FtZQ==", "tls.crt": "Y3J0"},
                             "type": "kubernetes.io/tls"});
        let d = classify(&key("Secret"), Some(&live), &applied);
        let shown: Vec<String> = d.changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"data["tls.crt"]: (none) -> "<redacted>""#,
                r#"data["tls.key"]: "<redacted>" -> "<redacted>""#,
            ]
        );
        // A whole data map appearing keeps its keys, never its values.
        let d = classify(
            &key("Secret"),
            Some(&json!({"metadata": {"name": "x"}})),
            &json!({"metadata": {"name": "x"}, "stringData": {"token": "s3cr3t"}}),
        );
        assert_eq!(
            d.changes,
            [FieldChange {
                path: "stringData".into(),
                old: None,
                new: Some(json!({"token": REDACTED})),
            }]
        );
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert!(!json.contains("s3cr3t") && !json.contains("bmV3"), "{json}");
        // Other kinds show their values.
        let d = classify(
            &key("Connector"),
            Some(&json!({"data": {"a": "1"}})),
            &json!({"data": {"a": "2"}}),
        );
        assert_eq!(d.changes[0].to_string(), r#"data.a: "1" -> "2""#);
    }

    #[test]
    fn an_object_not_live_is_a_create_and_exit_status_follows_the_actions() {
        let d = classify(&key("Listener"), None, &json!({"metadata": {"name": "x"}}));
        assert_eq!(d.action, Action::Create);
        let report = |action| DiffReport {
            networks: vec![NetworkDiff {
                namespace: "n".into(),
                name: "s".into(),
                exists: true,
                targets: vec![TargetDiff {
                    target: "member/east".into(),
                    objects: vec![ObjectDiff::new(&key("Link"), action)],
                    error: None,
                }],
            }],
        };
        assert!(!report(Action::Unchanged).has_changes());
        for a in [Action::Create, Action::Update, Action::Delete] {
            assert!(report(a).has_changes() && !report(a).has_errors());
        }
        assert!(report(Action::Refused).has_errors());
        let text = text(&report(Action::Delete));
        assert!(
            text.contains("member/east: 1 to change, 0 unchanged"),
            "{text}"
        );
        assert!(text.contains("Link  apps/x          delete"), "{text}");
    }
}
