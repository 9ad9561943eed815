//! Reading objects that inform rendering and health without being owned (effectful).

use federation_core::backend::{BackendError, ObservedObject, Target};
use federation_core::kubernetes::{ManagedKind, observed_object};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};

/// One cluster-scoped object by name, if it exists; not owned.
pub async fn get_cluster_scoped(
    client: &Client,
    target: &Target,
    kind: &ManagedKind,
    name: &str,
) -> Result<Option<ObservedObject>, BackendError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource());
    let found = api
        .get_opt(name)
        .await
        .map_err(|source| BackendError::Kube {
            verb: "get",
            what: format!("{} {name}", kind.kind),
            target: target.to_string(),
            source: Box::new(source),
        })?;
    found.map(|o| observed_object(kind, o, false)).transpose()
}

/// Objects of `kind` read for information (not owned). A kind whose API is not installed
/// (the operator installs some of them itself) reads as none.
pub async fn list_unowned(
    client: &Client,
    target: &Target,
    kind: &ManagedKind,
    namespace: Option<&str>,
    params: &ListParams,
) -> Result<Vec<ObservedObject>, BackendError> {
    let resource = kind.resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list(params).await {
        Ok(list) => list
            .items
            .into_iter()
            .map(|o| observed_object(kind, o, false))
            .collect(),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(source) => Err(BackendError::Kube {
            verb: "list",
            what: format!("{}/{}", kind.api_version, kind.kind),
            target: target.to_string(),
            source: Box::new(source),
        }),
    }
}
