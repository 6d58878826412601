//! The predecessor's CIDR-aware target filter for `list_tasks` (seed-spec §2.13).
//!
//! This is a *search* helper, not a security check, so it keeps the predecessor's
//! lenient semantics: stored targets split on commas only, `10.0.0.5/24` means the
//! `/24`, hostnames and ranges compare as case-insensitive text.

use std::net::IpAddr;

use super::parse::IpNetwork;

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Addr(IpAddr),
    Net(IpNetwork),
    Text(String),
}

fn parse_loose(s: &str) -> Parsed {
    let parsed = match s.split_once('/') {
        Some((addr, prefix)) => addr
            .parse::<IpAddr>()
            .ok()
            .zip(prefix.parse::<u8>().ok())
            .and_then(|(addr, prefix)| IpNetwork::new(addr, prefix))
            .map(Parsed::Net),
        None => s.parse::<IpAddr>().ok().map(Parsed::Addr),
    };
    parsed.unwrap_or_else(|| Parsed::Text(s.to_lowercase()))
}

fn entry_matches(query: &Parsed, stored: &Parsed) -> bool {
    match (query, stored) {
        (Parsed::Text(a), Parsed::Text(b)) => a == b,
        (Parsed::Addr(a), Parsed::Addr(b)) => a == b,
        (Parsed::Addr(ip), Parsed::Net(net)) | (Parsed::Net(net), Parsed::Addr(ip)) => {
            net.contains(*ip)
        }
        (Parsed::Net(a), Parsed::Net(b)) => a.overlaps(b),
        _ => false,
    }
}

/// Whether the `query` target matches any comma-separated entry of `stored`.
///
/// Matches when both are equal hostnames (case-insensitive), equal addresses, an
/// address inside the other's network, or overlapping networks. IPv4 never matches
/// IPv6, parsed never matches unparsed, and an empty side never matches.
///
/// ```
/// use nessus_core::targets_match;
/// assert!(targets_match("10.0.0.5", "10.0.0.0/24"));
/// assert!(targets_match("scan-target", "SCAN-TARGET,1.2.3.4"));
/// assert!(!targets_match("10.0.1.0/24", "10.0.0.0/24"));
/// ```
pub fn targets_match(query: &str, stored: &str) -> bool {
    let query = query.trim();
    if query.is_empty() {
        return false;
    }
    let query = parse_loose(query);
    stored
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|entry| entry_matches(&query, &parse_loose(entry)))
}
