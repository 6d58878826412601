//! Strict parsing and canonicalisation of scan targets.
//!
//! The parser is deliberately narrower than what resolvers and Nessus accept: every
//! spelling that some resolver could read as a *different* address (`0177.0.0.1`,
//! `2130706433`, `0x7f000001`, zone ids, percent-encoding, non-ASCII lookalikes) is
//! refused instead of guessed, so the policy always checks the address that will be
//! scanned.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::interval::Interval;

/// Longest hostname DNS allows (RFC 1035, without the trailing dot).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Tokens longer than this are refused before any parsing (no address form is longer).
const MAX_TOKEN_LEN: usize = 300;

/// An IP network in CIDR notation, e.g. `10.0.0.0/24`.
///
/// The address is always the network address: host bits written by the user
/// (`10.0.0.5/24`) are cleared, which covers *more* addresses, never fewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Builds a network, clearing host bits. `None` when the prefix is too long for the
    /// address family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let bits = family_bits(addr);
        if u32::from(prefix) > bits {
            return None;
        }
        let interval = Interval::from_prefix(addr, prefix);
        Some(Self {
            addr: interval.start(),
            prefix,
        })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies inside this network (never across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.interval().contains_addr(ip)
    }

    /// Whether the two networks share at least one address.
    pub fn overlaps(&self, other: &IpNetwork) -> bool {
        self.interval().overlaps(&other.interval())
    }

    /// Number of addresses, saturating at `u128::MAX` for `::/0`.
    pub fn size(&self) -> u128 {
        self.interval().size()
    }

    pub(crate) fn interval(&self) -> Interval {
        Interval::from_prefix(self.addr, self.prefix)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNetwork {
    type Err = InvalidTarget;

    /// Parses `addr/prefix` strictly (dotted-decimal IPv4 without leading zeros, plain
    /// IPv6 without zone id, decimal prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_network(s).map_err(InvalidTarget)
    }
}

fn parse_network(s: &str) -> Result<IpNetwork, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not in addr/prefix form"))?;
    let addr = parse_ip_strict(addr)?;
    let prefix = parse_prefix(prefix, addr)?;
    IpNetwork::new(addr, prefix).ok_or_else(|| format!("prefix /{prefix} too long"))
}

/// Why a target, network or policy rule could not be parsed safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTarget(pub(crate) String);

impl InvalidTarget {
    /// What is wrong, in words.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidTarget {}

/// One scan target after canonicalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A single address. IPv4-mapped and IPv4-embedding IPv6 forms are stored as IPv4.
    Addr(IpAddr),
    /// A CIDR block.
    Network(IpNetwork),
    /// An inclusive address range, `start <= end`, same family.
    Range {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
    /// A DNS name: lower-case ASCII letters, digits and hyphens, no trailing dot.
    Host(String),
}

impl Target {
    /// Number of addresses this target stands for (a hostname counts as one).
    pub fn host_count(&self) -> u128 {
        match self.interval() {
            Some(interval) => interval.size(),
            None => 1,
        }
    }

    /// The hostname, when this target is one.
    pub fn as_host(&self) -> Option<&str> {
        match self {
            Target::Host(name) => Some(name),
            _ => None,
        }
    }

    pub(crate) fn interval(&self) -> Option<Interval> {
        match self {
            Target::Addr(ip) => Some(Interval::single(*ip)),
            Target::Network(net) => Some(net.interval()),
            Target::Range { start, end } => Interval::new(*start, *end),
            Target::Host(_) => None,
        }
    }
}

impl fmt::Display for Target {
    /// The canonical form, which is also what is sent to Nessus.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(ip) => write!(f, "{ip}"),
            Target::Network(net) => write!(f, "{net}"),
            Target::Range { start, end } => write!(f, "{start}-{end}"),
            Target::Host(name) => f.write_str(name),
        }
    }
}

impl FromStr for Target {
    type Err = InvalidTarget;

    /// Parses one target token (no separators). The error says why it was refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_target(s).map_err(InvalidTarget)
    }
}

/// Splits a target list on commas and ASCII whitespace (space, tab, CR, LF), the
/// separators Nessus itself accepts. Empty pieces are dropped. Any other character,
/// including Unicode spaces, stays inside its token (and makes that token invalid).
pub fn split_targets(input: &str) -> impl Iterator<Item = &str> {
    input
        .split([',', ' ', '\t', '\n', '\r'])
        .filter(|t| !t.is_empty())
}

/// Parses one target token, canonicalising it. See the module docs for what is refused.
pub(crate) fn parse_target(token: &str) -> Result<Target, String> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!("longer than {MAX_TOKEN_LEN} characters"));
    }
    if let Some(c) = token.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "contains the non-ASCII character U+{:04X}; write addresses in ASCII and \
             internationalised names in punycode (xn--)",
            u32::from(c)
        ));
    }
    if let Some(c) = token.chars().find(|c| c.is_ascii_control()) {
        return Err(format!(
            "contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if token.contains('%') {
        return Err("contains '%' (IPv6 zone ids and percent-encoding are not accepted)".into());
    }
    if let Some(inner) = token.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("unbalanced '[': only a bare bracketed IPv6 address is accepted")?;
        let ip: Ipv6Addr = parse_ipv6_strict(inner)?;
        return Ok(Target::Addr(canonical_ip(IpAddr::V6(ip))));
    }
    if token.contains(['[', ']']) {
        return Err("brackets are only accepted around a whole IPv6 address".into());
    }
    if token.contains('/') {
        let net = parse_network(token)?;
        return Ok(canonical_network(net));
    }
    if let Ok(ip) = parse_ip_strict(token) {
        return Ok(Target::Addr(canonical_ip(ip)));
    }
    if let Some((first, rest)) = token.split_once('-')
        && let Ok(start) = parse_ip_strict(first)
    {
        return parse_range(start, rest);
    }
    parse_hostname(token).map(Target::Host)
}

/// `start-rest`, where `rest` is a full address of the same family or, for IPv4, the
/// last octet (`10.0.0.1-20`).
fn parse_range(start: IpAddr, rest: &str) -> Result<Target, String> {
    let end = match (start, parse_ip_strict(rest)) {
        (_, Ok(end)) => end,
        (IpAddr::V4(v4), Err(_)) => {
            let last = parse_decimal(rest, 255)
                .ok_or_else(|| format!("range end {rest:?} is neither an address nor an octet"))?;
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, last as u8))
        }
        (IpAddr::V6(_), Err(_)) => {
            return Err(format!("range end {rest:?} is not an IPv6 address"));
        }
    };
    let (start, end) = (canonical_ip(start), canonical_ip(end));
    if start.is_ipv4() != end.is_ipv4() {
        return Err("range mixes IPv4 and IPv6".into());
    }
    if start > end {
        return Err(format!("range start {start} is after its end {end}"));
    }
    if start == end {
        return Ok(Target::Addr(start));
    }
    Ok(Target::Range { start, end })
}

/// Dotted-decimal IPv4 (exactly four parts, no leading zeros) or IPv6 without zone id
/// whose embedded IPv4 tail, if any, is also dotted decimal.
pub(crate) fn parse_ip_strict(s: &str) -> Result<IpAddr, String> {
    if s.contains(':') {
        return parse_ipv6_strict(s).map(IpAddr::V6);
    }
    parse_ipv4_strict(s).map(IpAddr::V4)
}

fn parse_ipv4_strict(s: &str) -> Result<Ipv4Addr, String> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next().ok_or_else(|| not_dotted_decimal(s))?;
        *octet = parse_decimal(part, 255).ok_or_else(|| not_dotted_decimal(s))? as u8;
    }
    if parts.next().is_some() {
        return Err(not_dotted_decimal(s));
    }
    Ok(Ipv4Addr::from(octets))
}

fn not_dotted_decimal(s: &str) -> String {
    format!("{s:?} is not a dotted-decimal IPv4 address")
}

fn parse_ipv6_strict(s: &str) -> Result<Ipv6Addr, String> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return Err(format!("{s:?} is not an IPv6 address"));
    }
    if let Some((_, tail)) = s.rsplit_once(':')
        && tail.contains('.')
    {
        parse_ipv4_strict(tail)?;
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv6 address"))
}

/// A decimal number without sign or leading zeros, at most `max`.
fn parse_decimal(s: &str, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok().filter(|v| *v <= max)
}

fn parse_prefix(s: &str, addr: IpAddr) -> Result<u8, String> {
    let bits = family_bits(addr);
    parse_decimal(s, bits)
        .map(|p| p as u8)
        .ok_or_else(|| format!("prefix {s:?} is not a number from 0 to {bits}"))
}

fn family_bits(addr: IpAddr) -> u32 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Rewrites IPv6 spellings of IPv4 addresses (`::ffff:a.b.c.d`, the deprecated
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) as the IPv4 address they reach, so the IPv4
/// policy applies to them.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
    }
}

fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = v6.segments();
    let tail = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    let compatible = seg[..6] == [0; 6] && u32::from(tail) > 1;
    let nat64 = seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(tail)
}

/// A `/128` or `/32` network is a single address; IPv4-mapped single addresses are
/// rewritten. Wider IPv6 blocks that overlap IPv4-embedding space are refused later by
/// the policy (built-in deny), not silently narrowed here.
fn canonical_network(net: IpNetwork) -> Target {
    if net.size() == 1 {
        return Target::Addr(canonical_ip(net.addr()));
    }
    Target::Network(net)
}

/// Validates and canonicalises a DNS name: ASCII letters, digits and hyphens, labels of
/// 1 to 63 characters not starting or ending with a hyphen, one optional trailing dot,
/// lower-cased. Names a resolver could read as a number (`2130706433`, `0x7f.1`,
/// `0177.0.0.1`) are refused.
pub(crate) fn parse_hostname(token: &str) -> Result<String, String> {
    let name = token.strip_suffix('.').unwrap_or(token);
    if name.is_empty() {
        return Err("empty hostname".into());
    }
    if name.len() > MAX_HOSTNAME_LEN {
        return Err(format!(
            "hostname longer than {MAX_HOSTNAME_LEN} characters"
        ));
    }
    let name = name.to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(format!("{token:?} has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!("{token:?} has a label longer than {MAX_LABEL_LEN}"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{token:?} is neither an IP address, a CIDR, a range nor a hostname \
                 (unexpected {c:?})"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{token:?} has a label starting or ending with '-'"));
        }
    }
    if labels.iter().all(|l| numeric_like(l)) {
        return Err(format!(
            "{token:?} looks like a numeric (octal, hex or integer) IPv4 form; \
             write the address in dotted decimal"
        ));
    }
    let tld = labels.last().copied().unwrap_or_default();
    if !tld.bytes().any(|b| b.is_ascii_alphabetic()) || numeric_like(tld) {
        return Err(format!(
            "{token:?} has a numeric top-level label, so resolvers may read it as an address"
        ));
    }
    Ok(name)
}

/// Decimal, octal (`0` prefix) or hexadecimal (`0x` prefix) number, as `inet_aton`
/// accepts in each part of an address.
fn numeric_like(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    label.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_forms_become_ipv4() {
        for s in [
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "::FFFF:7F00:1",
        ] {
            assert_eq!(
                parse_target(s),
                Ok(Target::Addr("127.0.0.1".parse().unwrap())),
                "{s}"
            );
        }
        assert_eq!(
            parse_target("::1"),
            Ok(Target::Addr("::1".parse().unwrap()))
        );
    }

    #[test]
    fn numeric_hostnames_are_refused() {
        for s in [
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "0x7f.1",
            "1.2.3.4.5",
            "127.1",
        ] {
            assert!(parse_target(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_target("Host-1.Example.COM."),
            Ok(Target::Host("host-1.example.com".into()))
        );
    }
}
