//! Names and annotations of the objects the Submariner backend creates. The per-cluster names
//! on the broker follow upstream (`names.ForClusterSA` in submariner-operator), so `subctl`
//! and the gateways recognise them.

use federation_core::plan::NetworkRef;
use sha2::{Digest, Sha256};

/// Annotation on a desired broker token Secret asking `apply` to mint a token for the
/// ServiceAccount it names. Never written to the cluster.
pub const MINT_TOKEN_ANNOTATION: &str = "fednet.io/mint-token-for";
/// Annotation on a broker token Secret: when its token expires (Unix seconds).
pub const TOKEN_EXPIRES_ANNOTATION: &str = "fednet.io/token-expires-at";
/// Annotation on a broker token Secret: the broker API server (`host:port`) the token is for.
pub const API_SERVER_ANNOTATION: &str = "fednet.io/broker-api-server";
/// Annotation on a per-cluster ServiceAccount on the broker: the member's Globalnet CIDR,
/// kept there so the allocation survives restarts and stays stable while the member stays.
pub const GLOBAL_CIDR_ANNOTATION: &str = "fednet.io/global-cidr";

/// The per-cluster ServiceAccount (and RoleBinding) on the broker: `cluster-<clusterId>`.
pub fn cluster_account(cluster_id: &str) -> String {
    format!("cluster-{cluster_id}")
}

/// The Secret on the broker holding the token minted for a cluster's ServiceAccount. The
/// token is bound to this Secret, so deleting the Secret revokes it.
pub fn cluster_token(cluster_id: &str) -> String {
    format!("cluster-{cluster_id}-token")
}

/// The cluster id a per-cluster ServiceAccount name stands for.
pub fn cluster_of_account(name: &str) -> Option<&str> {
    name.strip_prefix("cluster-")
        .filter(|id| !id.ends_with("-token"))
}

/// The hub Secret (in the network's namespace) holding the network's IPsec PSK.
pub fn hub_psk(network: &NetworkRef) -> String {
    let plain = format!("{}-submariner-psk", network.name);
    if plain.len() <= 253 {
        return plain;
    }
    let digest = Sha256::digest(network.to_string());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let keep: String = network.name.chars().take(200).collect();
    format!("{keep}-submariner-psk-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cluster_names_follow_upstream_and_round_trip() {
        assert_eq!(cluster_account("east"), "cluster-east");
        assert_eq!(cluster_of_account("cluster-east"), Some("east"));
        assert_eq!(cluster_of_account(&cluster_token("east")), None);
        assert_eq!(cluster_of_account("submariner-k8s-broker-client"), None);
        let net = NetworkRef::new("fednet", "mesh");
        assert_eq!(hub_psk(&net), "mesh-submariner-psk");
        assert!(hub_psk(&NetworkRef::new("fednet", "m".repeat(253))).len() <= 253);
    }
}
