//! Per-cluster singletons (Skupper's one Site per namespace, Submariner's one `Submariner`
//! resource per cluster): which network may hold one (pure).
//!
//! A network records the singletons it needs in its inventory (`claims`) before writing
//! them. A claim already recorded by another network wins, so a network created or changed
//! later never takes over what another one runs. Two networks that recorded the same claim
//! in the same instant (neither saw the other) are decided by age: the older keeps it and
//! the newer yields on its next pass.

use crate::api::FederatedNetwork;
use kube::ResourceExt;
use std::collections::BTreeSet;

/// Why `net` may not hold one of `wanted`: the first singleton another network holds, with
/// that network. `recorded` are the claims `net` has recorded itself.
pub fn conflicting_claim(
    net: &FederatedNetwork,
    wanted: &BTreeSet<String>,
    recorded: &BTreeSet<String>,
    others: &[FederatedNetwork],
) -> Option<(String, String)> {
    let age = |n: &FederatedNetwork| {
        (
            n.metadata.creation_timestamp.as_ref().map(|t| t.0),
            n.namespace().unwrap_or_default(),
            n.name_any(),
        )
    };
    let mine = age(net);
    for other in others {
        if other.uid() == net.uid() && other.uid().is_some() {
            continue;
        }
        if (other.namespace(), other.name_any()) == (net.namespace(), net.name_any()) {
            continue;
        }
        let Some(claims) = other
            .status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map(|i| &i.claims)
        else {
            continue;
        };
        for claim in claims.iter().filter(|c| wanted.contains(*c)) {
            let they_win = !recorded.contains(claim) || age(other) < mine;
            if they_win {
                let holder = format!(
                    "{}/{}",
                    other.namespace().unwrap_or_default(),
                    other.name_any()
                );
                return Some((claim.clone(), holder));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BackendKind, FederatedNetworkStatus, Inventory};
    use crate::fixtures::{full_mesh, network};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn net(name: &str, created: i64, claims: &[&str]) -> FederatedNetwork {
        let mut n = network(name, &["a"], full_mesh());
        n.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        n.metadata.uid = Some(format!("uid-{name}"));
        n.status = Some(FederatedNetworkStatus {
            inventory: Some(Inventory {
                backend: BackendKind::Skupper,
                targets: vec![],
                claims: claims.iter().map(|c| (*c).to_owned()).collect(),
                namespaces: vec![],
            }),
            ..Default::default()
        });
        n
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn a_recorded_claim_is_never_taken_over_even_by_an_older_network() {
        let holder = net("young", 200, &["site x on a"]);
        let old = net("old", 100, &[]);
        let conflict = conflicting_claim(&old, &set(&["site x on a"]), &set(&[]), &[holder]);
        assert_eq!(
            conflict,
            Some(("site x on a".into(), "fednet-system/young".into()))
        );
    }

    #[test]
    fn when_both_recorded_the_older_keeps_it() {
        let a = net("a", 100, &["s"]);
        let b = net("b", 200, &["s"]);
        assert_eq!(
            conflicting_claim(&a, &set(&["s"]), &set(&["s"]), std::slice::from_ref(&b)),
            None
        );
        assert!(conflicting_claim(&b, &set(&["s"]), &set(&["s"]), &[a]).is_some());
    }

    #[test]
    fn itself_and_unrelated_claims_do_not_conflict() {
        let a = net("a", 100, &["s"]);
        let c = net("c", 50, &["other"]);
        assert_eq!(
            conflicting_claim(&a, &set(&["s"]), &set(&["s"]), &[a.clone(), c]),
            None
        );
    }
}
