//! Scan targets: strict parsing, canonicalisation, the per-pool policy, and the
//! predecessor's CIDR-aware matching used to filter task lists.

mod interval;
mod matching;
mod parse;
mod policy;

pub use matching::targets_match;
pub use parse::{InvalidTarget, IpNetwork, Target, split_targets};
pub use policy::{
    ApprovedTargets, DEFAULT_MAX_HOSTS, PolicyRule, Refusal, RefusalReason, TargetPolicy,
    TargetRefusal,
};
