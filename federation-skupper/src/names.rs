//! Names of the objects the Skupper backend creates. Deterministic, valid DNS-1123
//! subdomains of at most 63 characters (so they also fit label-length limits), and unique per
//! network: two networks never produce the same name for different things.

use federation_core::plan::NetworkRef;
use sha2::{Digest, Sha256};

const MAX: usize = 63;

fn hash(input: &str, len: usize) -> String {
    Sha256::digest(input)
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(len)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

/// `parts` joined by `-` when that fits, else a shortened form with a hash of `unique`.
fn name(parts: &[&str], unique: &str) -> String {
    let plain = parts.join("-");
    if plain.len() <= MAX {
        return plain;
    }
    let suffix = hash(unique, 10);
    let keep: String = plain.chars().take(MAX - suffix.len() - 1).collect();
    format!("{}-{suffix}", keep.trim_end_matches(['-', '.']))
}

/// The Site of a network in every (member, namespace). Skupper allows one Site per
/// namespace, so the network's hash keeps two networks from silently sharing one.
pub fn site(network: &NetworkRef) -> String {
    name(
        &[&network.name, &network.short_hash()],
        &network.to_string(),
    )
}

/// The Certificate (in the acceptor), its Secret, the copied Secret and the Link(s) (in the
/// dialer), or the AccessGrant and AccessToken, of one link.
pub fn link(network: &NetworkRef, dialer: &str, acceptor: &str) -> String {
    let unique = format!("{network}/{dialer}/{acceptor}");
    name(
        &["link", dialer, "to", acceptor, &hash(&unique, 6)],
        &unique,
    )
}

/// The n-th Link object of a link when the acceptor has several router groups (HA):
/// Skupper's own token generator names them `<name>-<i>` from 1, and `<name>` when there is
/// one group, so links made by either flow look alike.
pub fn link_object(base: &str, group_index: usize, groups: usize) -> String {
    if groups <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{}", group_index + 1)
    }
}

/// The Connector (in exporters) and Listener (in consumers) of one port of a shared service.
pub fn service_port(service: &str, port: &str) -> String {
    name(&[service, port], &format!("{service}/{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(n: &str) -> bool {
        n.len() <= MAX
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.ends_with(|c: char| c.is_ascii_alphanumeric())
    }

    #[test]
    fn names_are_valid_deterministic_and_distinct() {
        let net = NetworkRef::new("fednet-system", "shop");
        let long = "a".repeat(60);
        let names = [
            site(&net),
            link(&net, "east", "central"),
            link(&net, "central", "east"),
            link(&net, &long, "central"),
            link(&net, &format!("{long}b"), "central"),
            service_port(&long, "http"),
            service_port(&format!("{long}x"), "http"),
        ];
        for n in &names {
            assert!(valid(n), "{n}");
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(link(&net, "east", "central"), link(&net, "east", "central"));
        assert_ne!(
            link(&net, "east", "central"),
            link(&NetworkRef::new("other", "shop"), "east", "central")
        );
        assert_eq!(link_object("l", 0, 1), "l");
        assert_eq!(link_object("l", 1, 2), "l-2");
    }
}
