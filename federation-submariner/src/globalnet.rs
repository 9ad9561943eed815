//! Globalnet CIDR allocation (pure): every member gets a distinct block of the network's
//! range. A member keeps the block it was given for as long as it stays (the allocation is
//! recorded on its ServiceAccount on the broker and read back each pass); members without
//! one take the lowest free blocks, in cluster-id order, so the result depends only on the
//! plan and what was recorded.

use federation_core::api::SubmarinerSettings;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Submariner's default Globalnet range.
pub const DEFAULT_RANGE: &str = "242.0.0.0/8";
/// Submariner's default number of global addresses per cluster.
pub const DEFAULT_CLUSTER_SIZE: u32 = 65536;

/// Why a Globalnet range cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GlobalnetError {
    /// The range is not an IPv4 CIDR.
    #[error("globalnetCidrRange {0:?} is not an IPv4 CIDR such as 242.0.0.0/8")]
    Range(String),
    /// The cluster size is not a power of two that fits the range.
    #[error("globalnetClusterSize {size} must be a power of two no larger than the range {range}")]
    Size {
        /// The cluster size.
        size: u32,
        /// The range.
        range: String,
    },
    /// More members than blocks.
    #[error("the Globalnet range holds only {slots} cluster blocks")]
    Exhausted {
        /// Blocks in the range.
        slots: u64,
    },
}

/// The blocks a network's range is cut into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    base: u32,
    size: u32,
    slots: u64,
}

impl Pool {
    /// The pool of a network's settings.
    pub fn of(settings: &SubmarinerSettings) -> Result<Self, GlobalnetError> {
        let range = settings
            .globalnet_cidr_range
            .as_deref()
            .unwrap_or(DEFAULT_RANGE);
        let size = settings
            .globalnet_cluster_size
            .unwrap_or(DEFAULT_CLUSTER_SIZE);
        let (base, prefix) = parse_v4(range).ok_or_else(|| GlobalnetError::Range(range.into()))?;
        let range_size = 1u64 << (32 - u32::from(prefix));
        if !size.is_power_of_two() || u64::from(size) > range_size || size < 4 {
            return Err(GlobalnetError::Size {
                size,
                range: range.into(),
            });
        }
        Ok(Self {
            base,
            size,
            slots: range_size / u64::from(size),
        })
    }

    /// Whether `members` blocks fit.
    pub fn check_capacity(&self, members: usize) -> Result<(), GlobalnetError> {
        if members as u64 > self.slots {
            return Err(GlobalnetError::Exhausted { slots: self.slots });
        }
        Ok(())
    }

    fn prefix(&self) -> u32 {
        32 - self.size.trailing_zeros()
    }

    fn block(&self, slot: u64) -> String {
        let start = u64::from(self.base) + slot * u64::from(self.size);
        let addr = Ipv4Addr::from(u32::try_from(start).unwrap_or(u32::MAX));
        format!("{addr}/{}", self.prefix())
    }

    /// The slot of a block, if it is one of this pool's blocks.
    fn slot_of(&self, cidr: &str) -> Option<u64> {
        let (addr, prefix) = parse_v4(cidr)?;
        if u32::from(prefix) != self.prefix() || addr < self.base {
            return None;
        }
        let offset = u64::from(addr - self.base);
        (offset % u64::from(self.size) == 0)
            .then_some(offset / u64::from(self.size))
            .filter(|s| *s < self.slots)
    }

    /// The block of every cluster in `clusters`: the recorded one when it is a valid, unshared
    /// block of this pool, else the lowest free one (clusters taken in id order). Clusters for
    /// which no block is left are missing from the result.
    pub fn allocate(
        &self,
        clusters: &BTreeSet<String>,
        recorded: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut taken: BTreeSet<u64> = BTreeSet::new();
        let mut out = BTreeMap::new();
        for id in clusters {
            if let Some(slot) = recorded.get(id).and_then(|c| self.slot_of(c))
                && taken.insert(slot)
            {
                out.insert(id.clone(), self.block(slot));
            }
        }
        let mut next = 0u64;
        for id in clusters {
            if out.contains_key(id) {
                continue;
            }
            while taken.contains(&next) {
                next += 1;
            }
            if next >= self.slots {
                break;
            }
            taken.insert(next);
            out.insert(id.clone(), self.block(next));
        }
        out
    }
}

fn parse_v4(cidr: &str) -> Option<(u32, u8)> {
    let (addr, prefix) = cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let addr = u32::from(addr);
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    (addr & mask == addr).then_some((addr, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings(range: &str, size: u32) -> SubmarinerSettings {
        SubmarinerSettings {
            globalnet: true,
            globalnet_cidr_range: Some(range.into()),
            globalnet_cluster_size: Some(size),
            ..SubmarinerSettings::default()
        }
    }

    fn ids(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults_give_slash_16_blocks_of_242() {
        let pool = Pool::of(&SubmarinerSettings::default()).unwrap();
        let got = pool.allocate(&ids(&["a", "b"]), &BTreeMap::new());
        assert_eq!(got["a"], "242.0.0.0/16");
        assert_eq!(got["b"], "242.1.0.0/16");
    }

    #[test]
    fn members_keep_their_blocks_as_others_join_and_leave() {
        let pool = Pool::of(&settings("169.254.0.0/16", 256)).unwrap();
        let first = pool.allocate(&ids(&["b", "c", "d"]), &BTreeMap::new());
        // a joins (sorts first), c leaves: b and d keep theirs, a takes the free block.
        let second = pool.allocate(&ids(&["a", "b", "d"]), &first);
        assert_eq!(second["b"], first["b"]);
        assert_eq!(second["d"], first["d"]);
        assert_eq!(second["a"], first["c"]);
    }

    #[test]
    fn refuses_bad_ranges_and_reports_exhaustion() {
        assert!(matches!(
            Pool::of(&settings("242.0.0.1/8", 256)),
            Err(GlobalnetError::Range(_))
        ));
        assert!(matches!(
            Pool::of(&settings("fd00::/8", 256)),
            Err(GlobalnetError::Range(_))
        ));
        assert!(matches!(
            Pool::of(&settings("242.0.0.0/24", 300)),
            Err(GlobalnetError::Size { .. })
        ));
        let pool = Pool::of(&settings("242.0.0.0/24", 64)).unwrap();
        assert_eq!(
            pool.check_capacity(5),
            Err(GlobalnetError::Exhausted { slots: 4 })
        );
        assert_eq!(
            pool.allocate(&ids(&["a", "b", "c", "d", "e"]), &BTreeMap::new())
                .len(),
            4
        );
    }

    #[test]
    fn a_forged_or_shared_record_is_not_trusted() {
        let pool = Pool::of(&settings("242.0.0.0/16", 256)).unwrap();
        let recorded = BTreeMap::from([
            ("a".to_owned(), "242.0.1.0/24".to_owned()),
            ("b".to_owned(), "242.0.1.0/24".to_owned()),
            ("c".to_owned(), "10.0.0.0/24".to_owned()),
        ]);
        let got = pool.allocate(&ids(&["a", "b", "c"]), &recorded);
        assert_eq!(got["a"], "242.0.1.0/24");
        assert_ne!(got["b"], got["a"]);
        assert_ne!(got["c"], "10.0.0.0/24");
    }

    proptest! {
        /// Blocks are distinct, inside the range, and a member present in two successive
        /// allocations keeps its block.
        #[test]
        fn distinct_and_stable(first in proptest::collection::btree_set("[a-f]", 1..6),
                               second in proptest::collection::btree_set("[a-f]", 1..6)) {
            let pool = Pool::of(&settings("242.0.0.0/16", 4096)).unwrap();
            let a = pool.allocate(&first, &BTreeMap::new());
            let b = pool.allocate(&second, &a);
            for alloc in [&a, &b] {
                let blocks: BTreeSet<&String> = alloc.values().collect();
                prop_assert_eq!(blocks.len(), alloc.len());
                prop_assert!(alloc.values().all(|c| c.starts_with("242.0.") && c.ends_with("/20")));
            }
            for id in first.intersection(&second) {
                prop_assert_eq!(&a[id], &b[id]);
            }
        }
    }
}
