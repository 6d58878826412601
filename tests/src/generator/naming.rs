//! Fresh identities for replicated hosts, and the seeded sequence that picks them.

use std::net::Ipv4Addr;

/// SplitMix64: tiny, fast and fully specified, so a seed gives the same file on every
/// platform and with every version of any random-number crate.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Name, address and NetBIOS name of the n-th generated host.
///
/// Addresses walk through 10.0.0.0/8 from a seed-dependent start, so 16 million hosts are
/// distinct (a 1 GB file holds about ten thousand).
pub(super) struct HostIdentity {
    ip: Ipv4Addr,
    index: u64,
}

impl HostIdentity {
    pub(super) fn new(first_address: u64, index: u64) -> Self {
        let offset = (first_address.wrapping_add(index) & 0x00FF_FFFF) as u32;
        Self {
            ip: Ipv4Addr::from(0x0A00_0000 | offset),
            index,
        }
    }

    pub(super) fn ip(&self) -> String {
        self.ip.to_string()
    }

    pub(super) fn fqdn(&self) -> String {
        format!("gen-{:06}.bench.example", self.index)
    }

    /// NetBIOS names are at most 15 upper-case characters.
    pub(super) fn netbios(&self) -> String {
        format!("GEN{:08}", self.index % 100_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_distinct_and_well_formed() {
        let a = HostIdentity::new(0x00FF_FFFF, 0);
        let b = HostIdentity::new(0x00FF_FFFF, 1);
        assert_eq!(a.ip(), "10.255.255.255");
        assert_eq!(b.ip(), "10.0.0.0");
        assert_ne!(a.fqdn(), b.fqdn());
        assert!(a.netbios().len() <= 15);
    }

    #[test]
    fn splitmix_is_deterministic() {
        let mut a = SplitMix64::new(9);
        let mut b = SplitMix64::new(9);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
