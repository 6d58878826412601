//! Inclusive address intervals, the one representation the policy reasons about.
//!
//! Addresses, CIDRs and ranges all become `[start, end]` over `u128` tagged with the
//! address family, so "inside the allow-list" and "disjoint from the deny-list" are
//! plain interval arithmetic and cannot disagree between notations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Interval {
    v6: bool,
    lo: u128,
    hi: u128,
}

impl Interval {
    pub(crate) fn single(ip: IpAddr) -> Self {
        let (v6, n) = to_bits(ip);
        Self { v6, lo: n, hi: n }
    }

    /// `None` when the families differ or `start > end`.
    pub(crate) fn new(start: IpAddr, end: IpAddr) -> Option<Self> {
        let (v6a, lo) = to_bits(start);
        let (v6b, hi) = to_bits(end);
        (v6a == v6b && lo <= hi).then_some(Self { v6: v6a, lo, hi })
    }

    /// The block `addr/prefix`; the caller guarantees `prefix` fits the family.
    pub(crate) fn from_prefix(addr: IpAddr, prefix: u8) -> Self {
        let (v6, n) = to_bits(addr);
        let bits: u32 = if v6 { 128 } else { 32 };
        let host_bits = bits.saturating_sub(u32::from(prefix));
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        Self {
            v6,
            lo: n & !mask,
            hi: n | mask,
        }
    }

    pub(crate) fn start(&self) -> IpAddr {
        from_bits(self.v6, self.lo)
    }

    pub(crate) fn contains_addr(&self, ip: IpAddr) -> bool {
        let (v6, n) = to_bits(ip);
        v6 == self.v6 && self.lo <= n && n <= self.hi
    }

    pub(crate) fn overlaps(&self, other: &Interval) -> bool {
        self.v6 == other.v6 && self.lo <= other.hi && other.lo <= self.hi
    }

    /// Address count, saturating (only `::/0` saturates).
    pub(crate) fn size(&self) -> u128 {
        (self.hi - self.lo).saturating_add(1)
    }

    /// Merges overlapping or adjacent intervals; the result is sorted and disjoint.
    pub(crate) fn merge(mut items: Vec<Interval>) -> Vec<Interval> {
        items.sort();
        let mut out: Vec<Interval> = Vec::with_capacity(items.len());
        for item in items {
            match out.last_mut() {
                Some(last) if last.v6 == item.v6 && item.lo <= last.hi.saturating_add(1) => {
                    last.hi = last.hi.max(item.hi);
                }
                _ => out.push(item),
            }
        }
        out
    }

    /// Whether `self` lies entirely inside one interval of a merged (sorted, disjoint,
    /// adjacency-merged) set, i.e. inside the union of the set.
    pub(crate) fn covered_by(&self, merged: &[Interval]) -> bool {
        merged
            .iter()
            .any(|m| m.v6 == self.v6 && m.lo <= self.lo && self.hi <= m.hi)
    }
}

fn to_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

fn from_bits(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        // An IPv4 interval only ever holds values that came from a u32.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)))
    }
}
