//! CIDR-aware target matching for `list_tasks` (seed-spec §2.13).
//!
//! The matcher itself lives in `nessus-core` next to target parsing; this module
//! pins the golden cases the queue's listing relies on.

pub use nessus_core::targets_match;

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
