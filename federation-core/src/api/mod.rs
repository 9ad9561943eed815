//! The user-facing API: group `fednet.io`, version `v1alpha1`.
//!
//! Three kinds, all declared on the hub cluster:
//! - [`MemberCluster`] (cluster-scoped): how to reach a member and what it is.
//! - [`FederatedNetwork`]: which members form a network, over which backend, in which shape.
//! - [`FederatedService`]: a service shared from some members of a network to others.
//!
//! Rules the OpenAPI schema cannot express are CEL rules (`x-kubernetes-validations`) so
//! the API server rejects bad input before the operator ever sees it.

mod conditions;
mod federated_network;
mod federated_service;
mod member_cluster;

pub use conditions::{ConditionExt, condition_status, merge_condition};
pub use federated_network::*;
pub use federated_service::*;
pub use member_cluster::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every fednet kind.
pub const GROUP: &str = "fednet.io";
/// The API version of every fednet kind.
pub const VERSION: &str = "v1alpha1";

/// Label on every object the operator creates: the network it belongs to (`<namespace>.<name>`).
pub const NETWORK_LABEL: &str = "fednet.io/network";
/// Label on every object the operator creates: who manages it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "fednet-operator";
/// The one field manager used for every server-side apply.
pub const FIELD_MANAGER: &str = "fednet-operator";
/// Finalizer that guards teardown of a network's objects in member clusters.
pub const NETWORK_FINALIZER: &str = "fednet.io/teardown";
/// Finalizer on a `MemberCluster` that keeps it (and so the credentials to reach it) until
/// no network holds objects in it any more.
pub const MEMBER_FINALIZER: &str = "fednet.io/member-in-use";
/// Annotation the operator puts on a network before it first records an inventory in its
/// status. A network that carries it but whose status has no inventory has lost its status
/// (a wipe, a restore without status): its inventory is rebuilt by a label sweep of every
/// registered member. A new network has neither and is not swept, so objects that merely
/// carry its labels outside what it planned are never touched.
pub const INVENTORY_ANNOTATION: &str = "fednet.io/inventory";
/// Annotation on a `MemberCluster`: `"true"` gives up on the member for good (it will never
/// come back): networks forget what they had there without reaching it, and its deletion
/// completes. Recorded in an Event on every network concerned.
pub const ABANDON_ANNOTATION: &str = "fednet.io/abandon";

/// The CustomResourceDefinitions of every fednet kind, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        MemberCluster::crd(),
        FederatedNetwork::crd(),
        FederatedService::crd(),
    ]
}

/// All CRDs as one multi-document YAML stream, as committed under `deploy/crds/`.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
