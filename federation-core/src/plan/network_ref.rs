//! The identity of a network as it appears on the objects it owns.

use crate::api::{FederatedNetwork, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NETWORK_LABEL};
use kube::ResourceExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A `FederatedNetwork` by namespace and name on the hub.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NetworkRef {
    /// Hub namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl NetworkRef {
    /// A reference from parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The reference of a network object.
    pub fn of(network: &FederatedNetwork) -> Self {
        Self::new(network.namespace().unwrap_or_default(), network.name_any())
    }

    /// Value of the `fednet.io/network` label: `<namespace>.<name>` when that is a valid
    /// label value (63 characters at most), else a truncated form with a hash so two
    /// networks never share a value.
    pub fn label_value(&self) -> String {
        let plain = format!("{}.{}", self.namespace, self.name);
        if plain.len() <= 63 {
            return plain;
        }
        let hash = self.short_hash();
        let keep: String = plain.chars().take(63 - hash.len() - 1).collect();
        format!("{}-{hash}", keep.trim_end_matches(['-', '.']))
    }

    /// Ten hex characters that identify the network; used in object names so that two
    /// networks with the same name in different hub namespaces never collide in a member.
    pub fn short_hash(&self) -> String {
        let digest = Sha256::digest(format!("{}/{}", self.namespace, self.name));
        digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
    }

    /// The label selector that finds every object this network owns.
    pub fn selector(&self) -> String {
        format!(
            "{NETWORK_LABEL}={},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
            self.label_value()
        )
    }

    /// The ownership labels every created object carries.
    pub fn ownership_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NETWORK_LABEL.to_owned(), self.label_value()),
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        ])
    }
}

impl std::fmt::Display for NetworkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_value_is_always_valid_and_distinct() {
        let short = NetworkRef::new("fednet", "prod");
        assert_eq!(short.label_value(), "fednet.prod");
        let a = NetworkRef::new("n".repeat(40), "x".repeat(40));
        let b = NetworkRef::new("n".repeat(40), format!("{}y", "x".repeat(39)));
        for v in [a.label_value(), b.label_value()] {
            assert!(v.len() <= 63, "{v}");
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            );
        }
        assert_ne!(a.label_value(), b.label_value());
    }
}
