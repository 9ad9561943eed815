//! Just enough CIDR arithmetic to find overlapping member networks.

use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A string that is not a CIDR.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a CIDR such as 10.0.0.0/16")]
pub struct CidrParseError(String);

impl FromStr for Cidr {
    type Err = CidrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrParseError(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err());
        }
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    fn bits(&self) -> (u128, u32) {
        match self.addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    /// Whether two prefixes share at least one address. Different families never overlap.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let ((a, fa), (b, fb)) = (self.bits(), other.bits());
        if fa != fb {
            return false;
        }
        // Both addresses sit in the top bits of a u128, so the common prefix mask is the
        // top `min(prefix)` bits whatever the family.
        let shift = 128 - u32::from(self.prefix.min(other.prefix));
        let mask = u128::MAX.checked_shl(shift).unwrap_or(0);
        (a & mask) == (b & mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn overlap() {
        assert!(c("10.0.0.0/16").overlaps(&c("10.0.5.0/24")));
        assert!(c("10.0.5.0/24").overlaps(&c("10.0.0.0/16")));
        assert!(!c("10.0.0.0/16").overlaps(&c("10.1.0.0/16")));
        assert!(c("0.0.0.0/0").overlaps(&c("192.168.1.0/24")));
        assert!(!c("fd00::/64").overlaps(&c("10.0.0.0/8")));
        assert!(c("fd00::/48").overlaps(&c("fd00:0:0:1::/64")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
    }
}
