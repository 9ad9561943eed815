//! Effectful helpers for backends whose targets are Kubernetes clusters: server-side apply
//! of desired objects, listing what a network owns, deleting by key. Backend-neutral: a
//! backend passes the kinds it manages.

use crate::api::{FIELD_MANAGER, NETWORK_LABEL};
use crate::backend::{
    BackendError, Deletion, DesiredObject, ObjectKey, ObserveScope, ObservedObject, Target,
};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions};
use kube::core::{ApiResource, GroupVersionKind};

/// A kind a backend manages, with its plural resource name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManagedKind {
    /// `group/version` or `v1`.
    pub api_version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Whether objects of this kind live in a namespace (most) or in the cluster
    /// (`Namespace`, `ClusterRole`, ...): namespaced kinds are read namespace by namespace.
    pub namespaced: bool,
}

impl ManagedKind {
    /// A namespaced kind.
    pub const fn namespaced(
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Self {
        Self {
            api_version,
            kind,
            plural,
            namespaced: true,
        }
    }

    /// A cluster-scoped kind.
    pub const fn cluster_scoped(
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Self {
        Self {
            api_version,
            kind,
            plural,
            namespaced: false,
        }
    }

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
///
/// Ownership is proven first: an existing object of the same name is changed only if it
/// carries the same network label as the desired one, or, for an object the backend marks
/// [`DesiredObject::adopt`], no network label at all. Anything else is refused with
/// [`BackendError::NotOwned`]. The read costs one GET per write (writes happen only on
/// change), and the apply carries the `resourceVersion` read, so an object replaced in
/// between is not overwritten (the 409 is retried with a fresh read). An object created by
/// someone else in the instant between a read that found nothing and the create is the one
/// case not caught.
pub async fn apply_objects(
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    objects: &[DesiredObject],
) -> Result<(), BackendError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let kind = kind_of(kinds, &object.key)?;
        let api = api(client, kind, object.key.namespace.as_deref());
        let existing = api.get_opt(&object.key.name).await.map_err(kube_error(
            "get",
            object.key.to_string(),
            target,
        ))?;
        let mut body = object.body.clone();
        if let Some(existing) = existing {
            check_ownership(target, object, &existing)?;
            if let Some(rv) = existing.metadata.resource_version {
                body["metadata"]["resourceVersion"] = rv.into();
            }
        }
        api.patch(&object.key.name, &params, &Patch::Apply(&body))
            .await
            .map_err(kube_error("apply", object.key.to_string(), target))?;
    }
    Ok(())
}

/// Why fednet may not change an existing object into `desired`, if it may not: the object
/// must carry the same network label as the desired one, or, for an object the backend marks
/// [`DesiredObject::adopt`], no network label at all (see [`apply_objects`]). Shared with
/// tools that preview writes (`fedctl diff`), so they refuse exactly what the operator would.
pub fn ownership_refusal(
    desired: &DesiredObject,
    existing_labels: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    let wanted = desired.body["metadata"]["labels"][NETWORK_LABEL].as_str();
    match (existing_labels.get(NETWORK_LABEL), wanted) {
        (Some(f), Some(w)) if f == w => None,
        (None, _) if desired.adopt => None,
        (Some(f), _) => Some(format!("it belongs to network {f}")),
        (None, _) => Some(format!("it has no {NETWORK_LABEL} label")),
    }
}

fn check_ownership(
    target: &Target,
    desired: &DesiredObject,
    existing: &DynamicObject,
) -> Result<(), BackendError> {
    let none = std::collections::BTreeMap::new();
    let labels = existing.metadata.labels.as_ref().unwrap_or(&none);
    match ownership_refusal(desired, labels) {
        None => Ok(()),
        Some(why) => Err(BackendError::NotOwned {
            target: target.to_string(),
            what: desired.key.to_string(),
            why,
        }),
    }
}

/// Where objects of `kind` are read: each of the scope's namespaces, or the cluster.
fn places<'s>(kind: &ManagedKind, scope: &'s ObserveScope) -> Vec<Option<&'s str>> {
    if kind.namespaced {
        scope
            .namespaces
            .iter()
            .map(|ns| Some(ns.as_str()))
            .collect()
    } else {
        vec![None]
    }
}

/// Every object of `kinds` on the target that carries the network's ownership labels:
/// namespaced kinds in the scope's namespaces (one LIST per kind and namespace, never
/// cluster-wide, so an identity granted Roles only in those namespaces can read everything
/// it needs), cluster-scoped kinds across the cluster.
pub async fn list_owned(
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    scope: &ObserveScope,
) -> Result<Vec<ObservedObject>, BackendError> {
    let params = ListParams::default().labels(&scope.network.selector());
    let mut out = Vec::new();
    for kind in kinds {
        for namespace in places(kind, scope) {
            let list = api(client, kind, namespace)
                .list(&params)
                .await
                .map_err(kube_error(
                    "list",
                    match namespace {
                        Some(ns) => format!("{}/{} in namespace {ns}", kind.api_version, kind.kind),
                        None => format!("{}/{}", kind.api_version, kind.kind),
                    },
                    target,
                ))?;
            for item in list.items {
                out.push(observed(kind, item, true)?);
            }
        }
    }
    Ok(out)
}

/// What [`list_owned`] returns, read from the registry's [`crate::cluster::MemberCache`]
/// when the registry has one (the operator's: no request at all), else listed with `client`.
///
/// # Errors
/// With a cache, a kind and namespace whose watch has not listed yet, or is failing, makes
/// the target unreadable ([`BackendError::Unreachable`]): the engine then freezes it rather
/// than act on part of what is there.
pub async fn read_owned(
    registry: &crate::cluster::MemberRegistry,
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    scope: &ObserveScope,
) -> Result<Vec<ObservedObject>, BackendError> {
    let (Some(cache), Some(member)) = (registry.member_cache(), target.member()) else {
        return list_owned(client, target, kinds, scope).await;
    };
    let value = scope.network.label_value();
    let mut out = Vec::new();
    for kind in kinds {
        for namespace in places(kind, scope) {
            let objects = cache
                .list(member, kind, namespace, (NETWORK_LABEL, &value))
                .map_err(|e| BackendError::Unreachable {
                    target: target.to_string(),
                    reason: e.to_string(),
                })?;
            for object in objects {
                out.push(observed(kind, object.as_ref().clone(), true)?);
            }
        }
    }
    Ok(out)
}

/// What [`get_unowned`] returns, from the registry's [`crate::cluster::MemberCache`] once the
/// member watches watch that object: the first read of a name is a GET that asks them to.
/// Any cache miss is a GET, never an error: these reads inform rendering, and a wrong "not
/// found" would make a pass drop what it should copy.
pub async fn read_unowned(
    registry: &crate::cluster::MemberRegistry,
    client: &Client,
    target: &Target,
    kind: &ManagedKind,
    namespace: &str,
    name: &str,
) -> Result<Option<ObservedObject>, BackendError> {
    if let (Some(cache), Some(member)) = (registry.member_cache(), target.member()) {
        let named = crate::cluster::NamedObject {
            kind: kind.clone(),
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        };
        if let Ok(found) = cache.get_named(member, &named) {
            return found
                .map(|o| observed(kind, o.as_ref().clone(), false))
                .transpose();
        }
    }
    get_unowned(client, target, kind, namespace, name).await
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

/// A client for a member (or broker) target from the registry, with the registry's errors
/// sorted for the engine: a member whose `MemberCluster` is gone is [`BackendError::Gone`],
/// anything else [`BackendError::Unreachable`]. `backend` names the caller in the error for
/// a target that is no cluster.
pub async fn target_client(
    registry: &crate::cluster::MemberRegistry,
    target: &Target,
    backend: &str,
) -> Result<Client, BackendError> {
    let Some(member) = target.member() else {
        return Err(BackendError::Other(format!(
            "the {backend} backend has no {target} targets"
        )));
    };
    registry.client_by_name(member).await.map_err(|e| match e {
        crate::cluster::ClusterError::MemberNotFound(_) => BackendError::Gone {
            target: target.to_string(),
            reason: e.to_string(),
        },
        e => BackendError::Unreachable {
            target: target.to_string(),
            reason: e.to_string(),
        },
    })
}

fn observed(
    kind: &ManagedKind,
    object: DynamicObject,
    owned: bool,
) -> Result<ObservedObject, BackendError> {
    observed_object(kind, object, owned)
}

/// An object read from a cluster as the engine sees it: keyed by kind, namespace and name,
/// with `apiVersion` and `kind` restored in the body, `owned` as the caller decides.
pub fn observed_object(
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

/// Deletes each object, only if it still has the uid it was observed with; one already
/// gone, or replaced by another object of the same name since it was read, counts as
/// deleted (the replacement is not ours to delete: the next read sees it as it is).
pub async fn delete_objects(
    client: &Client,
    target: &Target,
    kinds: &[ManagedKind],
    objects: &[Deletion],
) -> Result<(), BackendError> {
    for d in objects {
        let kind = kind_of(kinds, &d.key)?;
        let mut params = DeleteParams::background();
        if let Some(uid) = &d.uid {
            params.preconditions = Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            });
        }
        match api(client, kind, d.key.namespace.as_deref())
            .delete(&d.key.name, &params)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(kube::Error::Api(status)) if status.code == 409 && d.uid.is_some() => {
                tracing::info!(%target, object = %d.key, "not deleted: replaced since it was read");
            }
            Err(e) => return Err(kube_error("delete", d.key.to_string(), target)(e)),
        }
    }
    Ok(())
}
