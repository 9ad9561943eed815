//! Effectful helpers for backends whose targets are Kubernetes clusters: server-side apply
//! of desired objects, listing what a network owns, deleting by key. Backend-neutral: a
//! backend passes the kinds it manages.

use crate::api::FIELD_MANAGER;
use crate::backend::{BackendError, DesiredObject, ObjectKey, ObservedObject, Target};
use crate::plan::NetworkRef;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

/// A kind a backend manages, with its plural resource name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedKind {
    /// `group/version` or `v1`.
    pub api_version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
}

impl ManagedKind {
    /// The `kube` resource of this kind.
    pub fn resource(&self) -> ApiResource {
        let (group, version) = self
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", self.api_version));
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, self.kind),
            self.plural,
        )
    }
}

fn kind_of<'a>(kinds: &'a [ManagedKind], key: &ObjectKey) -> Result<&'a ManagedKind, BackendError> {
    kinds
        .iter()
        .find(|k| k.api_version == key.api_version && k.kind == key.kind)
        .ok_or_else(|| BackendError::Render(format!("{key}: kind not managed by this backend")))
}

fn api(client: &Client, kind: &ManagedKind, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = kind.resource();
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

fn kube_error(
    verb: &'static str,
    what: String,
    target: &Target,
) -> impl FnOnce(kube::Error) -> BackendError {
    let target = target.to_string();
    move |source| BackendError::Kube {
        verb,
        what,
        target,
        source: Box::new(source),
    }
}

/// Server-side applies each object with the one fednet field manager (forcing ownership of
/// the fields it sets: fednet is the source of truth for them).
pub async fn apply_objects(
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    objects: &[DesiredObject],
) -> Result<(), BackendError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let kind = kind_of(kinds, &object.key)?;
        api(client, kind, object.key.namespace.as_deref())
            .patch(&object.key.name, &params, &Patch::Apply(&object.body))
            .await
            .map_err(kube_error("apply", object.key.to_string(), target))?;
    }
    Ok(())
}

/// Every object of `kinds` on the target that carries the network's ownership labels.
pub async fn list_owned(
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    network: &NetworkRef,
) -> Result<Vec<ObservedObject>, BackendError> {
    let params = ListParams::default().labels(&network.selector());
    let mut out = Vec::new();
    for kind in kinds {
        let list = api(client, kind, None)
            .list(&params)
            .await
            .map_err(kube_error(
                "list",
                format!("{}/{}", kind.api_version, kind.kind),
                target,
            ))?;
        for item in list.items {
            out.push(observed(kind, item, true)?);
        }
    }
    Ok(out)
}

/// One object by key, if it exists; marked not owned (read only to inform rendering).
pub async fn get_unowned(
    client: &Client,
    target: &Target,
    kind: &ManagedKind,
    namespace: &str,
    name: &str,
) -> Result<Option<ObservedObject>, BackendError> {
    let found = api(client, kind, Some(namespace))
        .get_opt(name)
        .await
        .map_err(kube_error(
            "get",
            format!("{}/{} {namespace}/{name}", kind.api_version, kind.kind),
            target,
        ))?;
    found.map(|o| observed(kind, o, false)).transpose()
}

fn observed(
    kind: &ManagedKind,
    object: DynamicObject,
    owned: bool,
) -> Result<ObservedObject, BackendError> {
    let key = ObjectKey {
        api_version: kind.api_version.to_owned(),
        kind: kind.kind.to_owned(),
        namespace: object.metadata.namespace.clone(),
        name: object.metadata.name.clone().unwrap_or_default(),
    };
    let mut body =
        serde_json::to_value(&object).map_err(|e| BackendError::Other(format!("{key}: {e}")))?;
    // DynamicObject drops apiVersion/kind on list items; restore them so diffs compare like
    // with like.
    body["apiVersion"] = kind.api_version.into();
    body["kind"] = kind.kind.into();
    Ok(ObservedObject { key, body, owned })
}

/// Deletes each key; one already gone counts as deleted.
pub async fn delete_keys(
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    keys: &[ObjectKey],
) -> Result<(), BackendError> {
    for key in keys {
        let kind = kind_of(kinds, key)?;
        match api(client, kind, key.namespace.as_deref())
            .delete(&key.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(kube_error("delete", key.to_string(), target)(e)),
        }
    }
    Ok(())
}
