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
