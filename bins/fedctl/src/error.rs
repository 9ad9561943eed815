//! The errors of `fedctl`'s live commands, each saying what to do next.

use std::fmt::Write as _;

/// What can go wrong reading a network from the hub or rendering it.
#[derive(Debug, thiserror::Error)]
pub enum FedctlError {
    /// The hub's client configuration could not be read.
    #[error(
        "reading the hub's client configuration: {message} (check --kubeconfig, --context or $KUBECONFIG)"
    )]
    Config {
        /// What kube said.
        message: String,
    },
    /// A request to the hub failed.
    #[error("{what}: {source}")]
    Kube {
        /// The request, in words.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The network does not exist; lists those that do.
    #[error("{}", not_found_message(.namespace, .name, .here, .elsewhere))]
    NetworkNotFound {
        /// Namespace searched.
        namespace: String,
        /// Name asked for.
        name: String,
        /// Networks in that namespace.
        here: Vec<String>,
        /// Networks in other namespaces (`namespace/name`), when they could be listed.
        elsewhere: Vec<String>,
    },
    /// Offline input (manifests) could not be used.
    #[error("{0}")]
    Manifests(String),
    /// Output could not be encoded.
    #[error("encoding the output as {format}: {message}")]
    Encode {
        /// `json` or `yaml`.
        format: &'static str,
        /// The encoder's error.
        message: String,
    },
}

impl FedctlError {
    /// A failed request, with what it was.
    pub fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            what: what.into(),
            source,
        }
    }
}

fn not_found_message(ns: &str, name: &str, here: &[String], elsewhere: &[String]) -> String {
    let mut s = format!("network {name:?} not found in namespace {ns:?}");
    if !here.is_empty() {
        let _ = write!(s, "; networks there: {}", here.join(", "));
    } else if !elsewhere.is_empty() {
        let _ = write!(
            s,
            "; there are none there, but in other namespaces: {} (use -n NAMESPACE, or -A for a summary of all)",
            elsewhere.join(", ")
        );
    } else {
        let _ = write!(
            s,
            "; no FederatedNetwork exists on this hub (is --context the hub?)"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_the_networks_that_exist() {
        let e = FedctlError::NetworkNotFound {
            namespace: "prod".into(),
            name: "shp".into(),
            here: vec!["shop".into(), "billing".into()],
            elsewhere: vec![],
        };
        assert_eq!(
            e.to_string(),
            "network \"shp\" not found in namespace \"prod\"; networks there: shop, billing"
        );
        let e = FedctlError::NetworkNotFound {
            namespace: "default".into(),
            name: "shop".into(),
            here: vec![],
            elsewhere: vec!["prod/shop".into()],
        };
        assert!(
            e.to_string()
                .contains("in other namespaces: prod/shop (use -n NAMESPACE")
        );
    }
}
