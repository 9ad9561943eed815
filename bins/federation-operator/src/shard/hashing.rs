//! Which shard an object falls in, and which live replica should own a shard.
//!
//! Both use a hash fixed by this file (FNV-1a, then a SplitMix64 finaliser), not
//! `DefaultHasher`, whose algorithm Rust may change between releases: during a rolling
//! upgrade two replicas built by different compilers must still agree.
//!
//! Owners are chosen by rendezvous (highest-random-weight) hashing: each replica gets a
//! weight per shard, and the live replica with the highest weight owns it. Adding a replica
//! therefore moves exactly the shards it now outweighs everyone on, and removing one moves
//! exactly its own shards: every other shard keeps its owner.

/// A 64-bit hash of `bytes` that does not depend on the Rust release.
fn stable_hash(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let fnv = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    mix(fnv)
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bucket(key: &str, shards: u32) -> u32 {
    let shards = u64::from(shards.max(1));
    // The remainder is below `shards`, which came from a u32.
    u32::try_from(stable_hash(key.as_bytes()) % shards).unwrap_or(0)
}

/// The shard of the `FederatedNetwork` `namespace/name`, in `0..shards`.
pub fn network_shard(namespace: &str, name: &str, shards: u32) -> u32 {
    bucket(&format!("network/{namespace}/{name}"), shards)
}

/// The shard whose holder probes the `MemberCluster` `name`, in `0..shards`.
pub fn member_shard(name: &str, shards: u32) -> u32 {
    bucket(&format!("member/{name}"), shards)
}

/// The weight of `replica` for `shard`: the highest weight wins the shard.
fn weight(replica: &str, shard: u32) -> u64 {
    mix(stable_hash(replica.as_bytes()) ^ mix(u64::from(shard) + 1))
}

/// The replica that should own `shard` among `replicas` (rendezvous hashing); `None` when
/// there is no live replica. Ties (practically impossible) go to the smaller name, so every
/// replica computes the same answer.
pub fn desired_owner<'a, I>(shard: u32, replicas: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    replicas.into_iter().max_by(|a, b| {
        weight(a, shard)
            .cmp(&weight(b, shard))
            .then_with(|| b.cmp(a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn owners(replicas: &BTreeSet<String>, shards: u32) -> Vec<Option<String>> {
        (0..shards)
            .map(|s| desired_owner(s, replicas.iter().map(String::as_str)).map(str::to_owned))
            .collect()
    }

    /// FNV-1a 64 of `fednet` through SplitMix64's finaliser (checked by hand in Python).
    const PINNED_FEDNET: u64 = 0x492a_b725_ba49_dced;
    const PINNED_SHOP: u32 = 3;

    #[test]
    fn the_hash_is_pinned() {
        // Changing the hash would move every network on upgrade: pin it.
        assert_eq!(stable_hash(b"fednet"), PINNED_FEDNET);
        assert_eq!(network_shard("fednet-system", "shop", 12), PINNED_SHOP);
    }

    #[test]
    fn one_replica_owns_everything_and_none_owns_nothing() {
        for s in 0..16 {
            assert_eq!(desired_owner(s, ["only"]), Some("only"));
            assert_eq!(desired_owner(s, std::iter::empty::<&str>()), None);
        }
    }

    #[test]
    fn shards_spread_over_replicas() {
        let replicas: BTreeSet<String> = ["replica-0", "replica-1", "replica-2"]
            .map(str::to_owned)
            .into();
        let owned = owners(&replicas, 96);
        for r in &replicas {
            let n = owned.iter().filter(|o| o.as_ref() == Some(r)).count();
            assert!((16..=48).contains(&n), "{r} owns {n} of 96 shards");
        }
    }

    proptest! {
        /// Adding a replica moves only shards to it; removing it moves only its shards back.
        #[test]
        fn a_joining_replica_takes_only_what_it_wins(
            names in proptest::collection::btree_set("[a-z0-9-]{1,20}", 1..8),
            joiner in "[a-z0-9-]{1,20}",
            shards in 1u32..64,
        ) {
            prop_assume!(!names.contains(&joiner));
            let before = owners(&names, shards);
            let mut grown = names.clone();
            grown.insert(joiner.clone());
            let after = owners(&grown, shards);
            for (b, a) in before.iter().zip(&after) {
                prop_assert!(a == b || a.as_deref() == Some(joiner.as_str()), "{b:?} -> {a:?}");
            }
            // Removing the joiner again restores every owner.
            prop_assert_eq!(owners(&names, shards), before);
        }

        /// Removing a replica moves exactly its shards; everyone else keeps theirs.
        #[test]
        fn a_leaving_replica_moves_only_its_own_shards(
            names in proptest::collection::btree_set("[a-z0-9-]{1,20}", 2..8),
            shards in 1u32..64,
            pick in any::<prop::sample::Index>(),
        ) {
            let leaver = pick.get(&names.iter().cloned().collect::<Vec<_>>()).clone();
            let before = owners(&names, shards);
            let mut shrunk = names.clone();
            shrunk.remove(&leaver);
            let after = owners(&shrunk, shards);
            for (b, a) in before.iter().zip(&after) {
                if b.as_deref() == Some(leaver.as_str()) {
                    prop_assert!(a.is_some() && a != b);
                } else {
                    prop_assert_eq!(a, b);
                }
            }
        }

        /// Every replica computes the same owner whatever order it lists the replicas in.
        #[test]
        fn the_owner_does_not_depend_on_order(
            names in proptest::collection::vec("[a-z0-9-]{1,20}", 1..8),
            shard in 0u32..64,
        ) {
            let forward = desired_owner(shard, names.iter().map(String::as_str));
            let backward = desired_owner(shard, names.iter().rev().map(String::as_str));
            prop_assert_eq!(forward, backward);
        }

        #[test]
        fn buckets_stay_in_range(ns in "[a-z-]{1,20}", name in "[a-z-]{1,20}", shards in 1u32..100) {
            prop_assert!(network_shard(&ns, &name, shards) < shards);
            prop_assert!(member_shard(&name, shards) < shards);
        }
    }
}
