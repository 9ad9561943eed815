//! Stable hashing for rendezvous (highest-random-weight) hub selection.
//!
//! Which hubs a spoke links to must be the same on every operator replica, after every
//! restart and across Rust releases, or a restart would move links around. `std`'s
//! `RandomState` is keyed randomly per process and `DefaultHasher`'s algorithm is
//! unspecified, so neither is usable; FNV-1a is specified, tiny and fast on short names.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`, continuing from `state` (start with the offset basis).
fn fnv1a64(state: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(state, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// MurmurHash3's 64-bit finalizer. FNV-1a mixes its last input bytes poorly into the high
/// bits, and hub names often differ only in a trailing digit (`hub-1`, `hub-2`); comparing
/// raw FNV values would then favour some hubs for whole ranges of spokes. The finalizer
/// spreads every input bit over the whole word so that the ranking is close to uniform.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The rendezvous weight of `hub` for `spoke`: each spoke prefers the hubs with the highest
/// weights. Because the weight depends on the pair only, adding or removing a hub moves only
/// the spokes that ranked it among their chosen ones, and spokes never affect each other.
pub(crate) fn rendezvous_weight(spoke: &str, hub: &str) -> u64 {
    // The length prefix makes the pair encoding unambiguous: ("ab", "c") != ("a", "bc").
    let mut h = fnv1a64(FNV_OFFSET_BASIS, &(spoke.len() as u64).to_le_bytes());
    h = fnv1a64(h, spoke.as_bytes());
    h = fnv1a64(h, hub.as_bytes());
    fmix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        // Vectors from the FNV reference implementation (draft-eastlake-fnv).
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn pair_encoding_is_unambiguous() {
        assert_ne!(rendezvous_weight("ab", "c"), rendezvous_weight("a", "bc"));
        assert_ne!(rendezvous_weight("a", "b"), rendezvous_weight("b", "a"));
    }
}
