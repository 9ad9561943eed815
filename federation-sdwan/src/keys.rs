//! Object keys of SD-WAN objects. The engine hands `apply` and `delete` only keys and
//! bodies, so a key names its network: namespace = the network's namespace, name =
//! `<network>:<part>` (network names are DNS subdomains and never hold `:`).

use federation_core::backend::ObjectKey;
use federation_core::plan::NetworkRef;

/// `apiVersion` of every SD-WAN object (not a Kubernetes group: these live in a controller).
pub const API_VERSION: &str = "sdwan.fednet.io/v1";

/// The key of an object of `kind` with `part` (an edge, a link, `policy`) in `network`.
pub fn key(network: &NetworkRef, kind: &str, part: &str) -> ObjectKey {
    ObjectKey::namespaced(
        API_VERSION,
        kind,
        &network.namespace,
        &format!("{}:{part}", network.name),
    )
}

/// The network and part a key names, if it is an SD-WAN key.
pub fn parse(key: &ObjectKey) -> Option<(NetworkRef, &str)> {
    if key.api_version != API_VERSION {
        return None;
    }
    let namespace = key.namespace.as_deref()?;
    let (name, part) = key.name.split_once(':')?;
    Some((NetworkRef::new(namespace, name), part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_network_and_part() {
        let net = NetworkRef::new("fednet-system", "edge.net");
        let k = key(&net, "RouteApproval", "node-a");
        assert_eq!(k.name, "edge.net:node-a");
        let (n, part) = parse(&k).unwrap();
        assert_eq!((n, part), (net, "node-a"));
        let foreign = ObjectKey::namespaced("v1", "Secret", "x", "a:b");
        assert!(parse(&foreign).is_none());
    }
}
