//! The kinds the Skupper backend reads and writes in member clusters.

use federation_core::backend::ObjectKey;
use federation_core::kubernetes::ManagedKind;

/// `skupper.io/v2alpha1`.
pub const API_VERSION: &str = "skupper.io/v2alpha1";

const fn skupper(kind: &'static str, plural: &'static str) -> ManagedKind {
    ManagedKind::namespaced(API_VERSION, kind, plural)
}

/// Site.
pub const SITE: ManagedKind = skupper("Site", "sites");
/// Certificate (direct link flow, in the acceptor).
pub const CERTIFICATE: ManagedKind = skupper("Certificate", "certificates");
/// Link (in the dialer).
pub const LINK: ManagedKind = skupper("Link", "links");
/// AccessGrant (grant link flow, in the acceptor).
pub const ACCESS_GRANT: ManagedKind = skupper("AccessGrant", "accessgrants");
/// AccessToken (grant link flow, in the dialer).
pub const ACCESS_TOKEN: ManagedKind = skupper("AccessToken", "accesstokens");
/// Connector (where a shared service runs).
pub const CONNECTOR: ManagedKind = skupper("Connector", "connectors");
/// Listener (where a shared service is consumed).
pub const LISTENER: ManagedKind = skupper("Listener", "listeners");
/// Secret (link credentials).
pub const SECRET: ManagedKind = ManagedKind::namespaced("v1", "Secret", "secrets");

/// Every kind the backend may own, in the order they are listed.
pub const OWNED: &[ManagedKind] = &[
    SITE,
    CERTIFICATE,
    LINK,
    ACCESS_GRANT,
    ACCESS_TOKEN,
    CONNECTOR,
    LISTENER,
    SECRET,
];

/// The key of an object of `kind`.
pub fn key(kind: &ManagedKind, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced(kind.api_version, kind.kind, namespace, name)
}
