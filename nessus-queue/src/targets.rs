//! CIDR-aware target matching for `list_tasks`, as the predecessor defined it
//! (seed-spec §2.13). Kept local so the queue does not depend on the config crate;
//! the policy crate's matcher follows the same rules.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, PartialEq)]
enum Target<'a> {
    Ip(IpAddr),
    Net(IpNet),
    Other(&'a str),
}

fn parse(s: &str) -> Target<'_> {
    if s.contains('/') {
        // Non-strict, like Python's ip_network(strict=False): host bits are dropped.
        match s.parse::<IpNet>() {
            Ok(n) => Target::Net(n.trunc()),
            Err(_) => Target::Other(s),
        }
    } else {
        match s.parse::<IpAddr>() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => Target::Other(s),
        }
    }
}

fn one(q: &Target<'_>, s: &Target<'_>) -> bool {
    match (q, s) {
        (Target::Other(a), Target::Other(b)) => a.eq_ignore_ascii_case(b),
        (Target::Ip(a), Target::Ip(b)) => a == b,
        (Target::Ip(a), Target::Net(n)) | (Target::Net(n), Target::Ip(a)) => n.contains(a),
        (Target::Net(a), Target::Net(b)) => a.contains(&b.network()) || b.contains(&a.network()),
        _ => false,
    }
}

/// Whether `query` matches any comma-separated entry of `stored`.
pub fn targets_match(query: &str, stored: &str) -> bool {
    let q = query.trim();
    if q.is_empty() {
        return false;
    }
    let q = parse(q);
    stored
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| one(&q, &parse(e)))
}

#[cfg(test)]
mod tests {
    use super::targets_match;

    #[test]
    fn golden_cases() {
        for (q, s, want) in [
            ("10.0.0.5", "10.0.0.0/24", true),
            ("10.0.0.0/24", "10.0.0.5", true),
            ("10.0.0.0/24", "10.0.0.0/16", true),
            ("192.168.1.1", "10.0.0.0/8", false),
            ("scan-target", "SCAN-TARGET,1.2.3.4", true),
            ("10.0.0.255", "10.0.0.0/24", true),
            ("10.0.0.0", "10.0.0.0/24", true),
            ("10.0.1.0/24", "10.0.0.0/24", false),
            ("192.168.1.5/24", "192.168.1.77", true),
            ("::1", "127.0.0.1", false),
            ("", "10.0.0.1", false),
            ("10.0.0.1", "", false),
            ("10.0.0.1-10", "10.0.0.1", false),
        ] {
            assert_eq!(targets_match(q, s), want, "{q} vs {s}");
        }
    }
}
