//! Desired and observed objects, backend-neutral.

use super::Target;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

// `Debug` and `Serialize` of the object and state types below are written out in
// `redact.rs`: they
// redact key material.

/// Identity of one object on a target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    /// `group/version` (or `v1` for the core group).
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A namespaced key.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} {}/{}", self.api_version, self.kind, ns, self.name),
            None => write!(f, "{}/{} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// One object a backend wants on a target: the full body it applies (including
/// `apiVersion`, `kind`, `metadata` with ownership labels, and `spec` or `data`).
#[derive(Clone, PartialEq)]
pub struct DesiredObject {
    /// Identity.
    pub key: ObjectKey,
    /// Body to apply.
    pub body: Value,
    /// Whether an existing object of this key that lacks the network's ownership labels may
    /// be taken over. Only for objects an upstream controller made *from an object of this
    /// network* (Skupper's Secret and Links redeemed from fednet's AccessToken): anything
    /// else found in the way is refused, never adopted.
    pub adopt: bool,
}

impl DesiredObject {
    /// An object that must not exist unless fednet made it.
    pub fn new(key: ObjectKey, body: Value) -> Self {
        Self {
            key,
            body,
            adopt: false,
        }
    }

    /// An object that may take over one an upstream controller made from fednet's own.
    pub fn adopting(key: ObjectKey, body: Value) -> Self {
        Self {
            key,
            body,
            adopt: true,
        }
    }
}

/// Desired objects per target.
#[derive(Clone, PartialEq, Default)]
pub struct DesiredState {
    /// Objects keyed by target. A target with an empty list owns nothing.
    pub targets: BTreeMap<Target, Vec<DesiredObject>>,
    /// Owned objects to keep exactly as they are this pass: still desired, but what they
    /// should hold depends on a target (or an observation) that could not be read, so they
    /// can be neither rendered nor removed. The engine neither applies nor deletes them.
    pub retained: BTreeMap<Target, BTreeSet<ObjectKey>>,
    /// Owned objects to delete this pass even where make-before-break would keep them: they
    /// are broken for good (issued by a CA that rotated, say) and their replacement needs
    /// their names. They must not also be desired.
    pub replaced: BTreeMap<Target, BTreeSet<ObjectKey>>,
}

impl DesiredState {
    /// Adds an object for a target.
    pub fn push(&mut self, target: Target, object: DesiredObject) {
        self.targets.entry(target).or_default().push(object);
    }

    /// Keeps an owned object of a target as it is this pass (see [`Self::retained`]).
    pub fn retain(&mut self, target: Target, key: ObjectKey) {
        self.retained.entry(target).or_default().insert(key);
    }

    /// Deletes an owned object of a target this pass, without waiting for links (see
    /// [`Self::replaced`]).
    pub fn replace(&mut self, target: Target, key: ObjectKey) {
        self.replaced.entry(target).or_default().insert(key);
    }

    /// Whether an object is deleted this pass to make room for its replacement.
    pub fn is_replaced(&self, target: &Target, key: &ObjectKey) -> bool {
        self.replaced.get(target).is_some_and(|r| r.contains(key))
    }

    /// Whether an object is kept as it is this pass.
    pub fn is_retained(&self, target: &Target, key: &ObjectKey) -> bool {
        self.retained.get(target).is_some_and(|r| r.contains(key))
    }

    /// Number of objects over all targets.
    pub fn object_count(&self) -> usize {
        self.targets.values().map(Vec::len).sum()
    }
}

/// One object read from a target, as the server returned it (including status).
#[derive(Clone, PartialEq)]
pub struct ObservedObject {
    /// Identity.
    pub key: ObjectKey,
    /// Full body.
    pub body: Value,
    /// Whether the network owns it (carries its ownership label). Objects read only to
    /// inform rendering (a Secret a backend controller wrote, say) are not owned and are
    /// never deleted by orphan cleanup.
    pub owned: bool,
}

impl ObservedObject {
    /// The server's uid of the object, when it has one (a Kubernetes object always does).
    pub fn uid(&self) -> Option<&str> {
        self.body["metadata"]["uid"].as_str()
    }

    /// The object as a deletion with its uid as precondition, so that only this very
    /// object is deleted, never one re-created under the same name since it was read.
    pub fn deletion(&self) -> Deletion {
        Deletion {
            key: self.key.clone(),
            uid: self.uid().map(str::to_owned),
        }
    }
}

/// An object to delete, with the uid it was observed with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Deletion {
    /// Identity.
    pub key: ObjectKey,
    /// Precondition: delete only the object with this uid (`None`: whatever has the key,
    /// for targets without uids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// An asynchronous operation a target is still carrying out (an SD-WAN controller's job,
/// say). While one runs, the engine writes nothing more to that target and never reports it
/// converged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// The target's identifier of the operation.
    pub id: String,
    /// What it does, for status.
    pub description: String,
}

/// Everything read from one target.
#[derive(Clone, PartialEq, Default)]
pub struct Observed {
    /// The objects.
    pub objects: Vec<ObservedObject>,
    /// Operations still in flight on the target.
    pub operations: Vec<Operation>,
}

impl Observed {
    /// What a target holds, with no operation in flight.
    pub fn of(objects: Vec<ObservedObject>) -> Self {
        Self {
            objects,
            operations: Vec::new(),
        }
    }

    /// The object with this key, if it was read.
    pub fn get(&self, key: &ObjectKey) -> Option<&ObservedObject> {
        self.objects.iter().find(|o| &o.key == key)
    }

    /// Objects of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a ObservedObject> + 'a {
        self.objects.iter().filter(move |o| o.key.kind == kind)
    }
}

/// Whether every field set in `desired` has the same value in `observed`. Fields the server
/// added (defaults, status, metadata it manages) do not count, so a converged object
/// compares equal and an edited one (drift) does not.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d
            .iter()
            .all(|(k, dv)| o.get(k).is_some_and(|ov| is_subset(dv, ov))),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(dv, ov)| is_subset(dv, ov))
        }
        (Value::Number(d), Value::Number(o)) => d.as_f64() == o.as_f64(),
        (d, o) => d == o,
    }
}

/// Whether `observed` still carries a field that `manager` set by server-side apply and
/// `desired` no longer sets. [`is_subset`] cannot tell such a field from one the server or
/// another writer added, so it would stay forever; applying `desired` removes it, because the
/// manager no longer sets it. Read from `metadata.managedFields` (`fieldsV1`); an object
/// without them (not from a Kubernetes API) never reports one.
pub fn drops_applied_fields(desired: &Value, observed: &Value, manager: &str) -> bool {
    observed["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["manager"] == manager && m["operation"] == "Apply")
        .any(|m| !fields_set_in(&m["fieldsV1"], desired))
}

/// Whether every field of a `fieldsV1` set is present in `desired`. List items (`k:`, `v:`,
/// `i:` entries) are not followed: [`is_subset`] compares lists whole.
fn fields_set_in(fields: &Value, desired: &Value) -> bool {
    fields.as_object().into_iter().flatten().all(|(k, sub)| {
        k.strip_prefix("f:")
            .is_none_or(|name| desired.get(name).is_some_and(|d| fields_set_in(sub, d)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_server_added_fields_but_sees_drift() {
        let desired = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"cost": 2, "items": [1, 2]}});
        let observed = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "y": "2"}},
                               "spec": {"cost": 2, "items": [1, 2], "extra": true}, "status": {}});
        assert!(is_subset(&desired, &observed));
        let drifted = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"cost": 5, "items": [1, 2]}});
        assert!(!is_subset(&desired, &drifted));
        let shorter = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"cost": 2, "items": [1]}});
        assert!(!is_subset(&desired, &shorter));
        assert!(!is_subset(&desired, &json!({"metadata": {"name": "a"}})));
    }

    #[test]
    fn fields_the_manager_applied_and_dropped_are_seen() {
        let observed = |manager: &str, operation: &str| {
            json!({"metadata": {"name": "s", "labels": {"x": "1"}, "managedFields": [
                {"manager": manager, "operation": operation, "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:x": {}}},
                    "f:spec": {"f:linkAccess": {}, "f:edge": {}, "f:items": {"k:{\"n\":\"a\"}": {".": {}}}}}}]},
                   "spec": {"linkAccess": "default", "edge": false, "items": [{"n": "a"}], "serverSide": 1}})
        };
        let still = json!({"metadata": {"name": "s", "labels": {"x": "1"}},
                           "spec": {"linkAccess": "default", "edge": false, "items": [{"n": "a"}]}});
        let dropped = json!({"metadata": {"name": "s", "labels": {"x": "1"}},
                             "spec": {"edge": false, "items": [{"n": "a"}]}});
        let ours = observed("fednet-operator", "Apply");
        assert!(
            is_subset(&dropped, &ours),
            "the subset check alone misses it"
        );
        assert!(drops_applied_fields(&dropped, &ours, "fednet-operator"));
        assert!(!drops_applied_fields(&still, &ours, "fednet-operator"));
        assert!(!drops_applied_fields(
            &dropped,
            &observed("someone-else", "Apply"),
            "fednet-operator"
        ));
        assert!(!drops_applied_fields(
            &dropped,
            &observed("fednet-operator", "Update"),
            "fednet-operator"
        ));
        assert!(!drops_applied_fields(
            &dropped,
            &json!({"spec": {"linkAccess": "x"}}),
            "fednet-operator"
        ));
    }
}
