//! The kinds the Submariner backend reads and writes, and the fixed names Submariner uses.

use federation_core::backend::ObjectKey;
use federation_core::kubernetes::ManagedKind;

/// The namespace the operator watches in a member (and where it renders its workloads).
pub const OPERATOR_NAMESPACE: &str = "submariner-operator";
/// The broker namespace on the broker cluster (`brokerK8sRemoteNamespace`).
pub const BROKER_NAMESPACE: &str = "submariner-k8s-broker";
/// The `Submariner` resource of a member: the operator reconciles one per cluster.
pub const SUBMARINER_NAME: &str = "submariner";
/// The `Broker` resource in the broker namespace.
pub const BROKER_NAME: &str = "submariner-broker";
/// The broker client Role (`config/broker/broker-client-role.yaml` upstream).
pub const BROKER_CLIENT_ROLE: &str = "submariner-k8s-broker-cluster";
/// The member Secret with the broker connection (`brokerK8sSecret`): `token`, `ca.crt`.
pub const BROKER_SECRET: &str = "fednet-submariner-broker";
/// The member Secret with the network's IPsec pre-shared key (`ceIPSecPSKSecret`): `psk`.
pub const PSK_SECRET: &str = "fednet-submariner-ipsec-psk";

const fn kind(api_version: &'static str, kind: &'static str, plural: &'static str) -> ManagedKind {
    ManagedKind::namespaced(api_version, kind, plural)
}

/// Namespace (cluster-scoped).
pub const NAMESPACE: ManagedKind = ManagedKind::cluster_scoped("v1", "Namespace", "namespaces");
/// Secret.
pub const SECRET: ManagedKind = kind("v1", "Secret", "secrets");
/// ServiceAccount (per member, on the broker).
pub const SERVICE_ACCOUNT: ManagedKind = kind("v1", "ServiceAccount", "serviceaccounts");
/// Role (the broker client role).
pub const ROLE: ManagedKind = kind("rbac.authorization.k8s.io/v1", "Role", "roles");
/// RoleBinding (per member, on the broker).
pub const ROLE_BINDING: ManagedKind = kind(
    "rbac.authorization.k8s.io/v1",
    "RoleBinding",
    "rolebindings",
);
/// The operator's `Broker` resource.
pub const BROKER: ManagedKind = kind("submariner.io/v1alpha1", "Broker", "brokers");
/// The operator's `Submariner` resource (one per member).
pub const SUBMARINER: ManagedKind = kind("submariner.io/v1alpha1", "Submariner", "submariners");
/// MCS `ServiceExport`, in the v1alpha1 version the Submariner operator installs.
pub const SERVICE_EXPORT: ManagedKind = kind(
    "multicluster.x-k8s.io/v1alpha1",
    "ServiceExport",
    "serviceexports",
);
/// MCS `ServiceImport` (read in consumers).
pub const SERVICE_IMPORT: ManagedKind = kind(
    "multicluster.x-k8s.io/v1alpha1",
    "ServiceImport",
    "serviceimports",
);
/// EndpointSlice (read in consumers: Lighthouse copies the exporters' slices there).
pub const ENDPOINT_SLICE: ManagedKind =
    kind("discovery.k8s.io/v1", "EndpointSlice", "endpointslices");
/// The gateways' `Gateway` objects (read in members, for link health).
pub const GATEWAY: ManagedKind = kind("submariner.io/v1", "Gateway", "gateways");
/// The gateways' `Cluster` objects on the broker.
pub const CLUSTER: ManagedKind = kind("submariner.io/v1", "Cluster", "clusters");
/// The gateways' `Endpoint` objects on the broker.
pub const ENDPOINT: ManagedKind = kind("submariner.io/v1", "Endpoint", "endpoints");

/// Kinds fednet writes in a member, listed by ownership label.
pub const MEMBER_OWNED: &[ManagedKind] = &[SUBMARINER, SERVICE_EXPORT, SECRET, NAMESPACE];
/// Kinds fednet writes on the broker, listed by ownership label.
pub const BROKER_OWNED: &[ManagedKind] = &[
    BROKER,
    ROLE_BINDING,
    SERVICE_ACCOUNT,
    SECRET,
    ROLE,
    NAMESPACE,
];
/// Every kind the backend may write or delete (the gateways' leftovers on the broker too).
pub const ALL: &[ManagedKind] = &[
    NAMESPACE,
    SECRET,
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    BROKER,
    SUBMARINER,
    SERVICE_EXPORT,
    CLUSTER,
    ENDPOINT,
];

/// The key of a namespaced object of `kind`.
pub fn key(kind: &ManagedKind, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced(kind.api_version, kind.kind, namespace, name)
}

/// The key of a cluster-scoped object of `kind`.
pub fn cluster_key(kind: &ManagedKind, name: &str) -> ObjectKey {
    ObjectKey {
        api_version: kind.api_version.to_owned(),
        kind: kind.kind.to_owned(),
        namespace: None,
        name: name.to_owned(),
    }
}
