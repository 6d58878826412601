//! Rendered values shared by the findings of one plugin, for convert.
//!
//! `description`, `solution`, `synopsis`, `plugin_name`, `cve`... are the same text for
//! every finding of a plugin and make up most of a rendered line. Convert renders such a
//! value once per (plugin, projected field), and later lines that carry the same value hold
//! a 5-byte reference ([`REF`] + entry number) instead of the escaped text: the JSON
//! escaping runs once per plugin, and the spilled lines shrink several times. References
//! are expanded when the line is written out. A value is reused only if it is byte-for-byte
//! the cached one (compared on every finding), so a plugin whose texts vary is still
//! rendered exactly.
//!
//! A rendered JSON line never holds a raw byte below 0x20 (they are escaped), so [`REF`]
//! cannot be confused with line content.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::catalogue::{Projection, is_host_field};
use crate::jsonl::{HostLine, is_str_lit_of, key, value};
use crate::parser::FnvBuild;
use crate::record::Finding;
use crate::swar::{HI, LO, first_match};
use crate::value::{ListRef, ValueRef};

/// Marks a reference in a stored line; the entry number follows as 4 little-endian bytes.
pub(crate) const REF: u8 = 0x01;
const REF_BYTES: usize = 5;
/// Shorter values are rendered inline: a reference would not save much.
const MIN_BYTES: usize = 32;
/// Most bytes (raw + rendered, allocated) the cache holds; past it, values are rendered inline.
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Distinct values kept per (plugin, field): some plugins carry a few variants of their
/// description (one per product version, ...); a field that varies more (per-finding
/// text) stops being looked up once this many are cached.
const MAX_VARIANTS: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct SharedValues {
    /// (plugin id, projected field slot) to entry numbers.
    slots: HashMap<(u32, u16), Vec<u32>, FnvBuild>,
    entries: Vec<Entry>,
    bytes: usize,
    /// `, "name": ` of every projected field, rendered once.
    keys: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Entry {
    /// The value as compared.
    raw: Raw,
    /// The JSON rendering.
    rendered: Vec<u8>,
}

/// The compared form of a shared value.
#[derive(Debug)]
enum Raw {
    /// A text of this many bytes, compared with the rendering itself: keeping the raw text
    /// too would hold each distinct text twice, and every held byte is a fresh page the
    /// parser's next texts cannot reuse (about 2 µs each on the VM we measure on).
    Text { len: usize },
    /// A list: (length, item)... in little-endian `u32` lengths.
    List(Vec<u8>),
}

impl Entry {
    fn same(&self, v: ValueRef<'_>) -> bool {
        match (v, &self.raw) {
            (ValueRef::Text(s), &Raw::Text { len }) => {
                s.len() == len && is_str_lit_of(&self.rendered, s)
            }
            (ValueRef::List(items), Raw::List(raw)) => {
                let mut rest = &raw[..];
                for item in items.iter() {
                    let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                        return false;
                    };
                    let len = u32::from_le_bytes(*len) as usize;
                    if tail.get(..len) != Some(item.as_bytes()) {
                        return false;
                    }
                    rest = &tail[len..];
                }
                rest.is_empty()
            }
            _ => false,
        }
    }

    /// Bytes the entry holds (capacities: the cache's cap is on memory).
    fn held_bytes(&self) -> usize {
        let raw = match &self.raw {
            Raw::Text { .. } => 0,
            Raw::List(l) => l.capacity(),
        };
        raw + self.rendered.capacity()
    }
}

/// The JSON rendering of a shared value, with room for the quotes and some escapes (no
/// regrowth, and copy, of long texts).
fn render_value(v: ValueRef<'_>) -> Vec<u8> {
    let hint = match v {
        ValueRef::Text(s) => s.len(),
        ValueRef::List(ref items) => items.iter().map(|i| i.len() + 4).sum(),
        _ => 0,
    };
    let mut rendered = Vec::with_capacity(hint + hint / 8 + 16);
    value(&mut rendered, v);
    rendered
}

/// The encoded items of a list worth sharing.
fn encode_list(items: &ListRef<'_>) -> Vec<u8> {
    let mut raw = Vec::new();
    for item in items.iter() {
        raw.extend_from_slice(&(item.len() as u32).to_le_bytes());
        raw.extend_from_slice(item.as_bytes());
    }
    raw
}

fn worth_sharing(v: ValueRef<'_>) -> bool {
    match v {
        ValueRef::Text(s) => s.len() >= MIN_BYTES,
        ValueRef::List(items) => items.iter().map(str::len).sum::<usize>() >= MIN_BYTES,
        _ => false,
    }
}

/// What the cache has for one value of one finding.
enum Lookup {
    /// This entry holds the same value.
    Found(u32),
    /// Not cached yet, and there is room: add it.
    Add,
    /// Rendered inline.
    Inline,
}

impl SharedValues {
    /// Where `v` (of this plugin and field) is, or whether it can be added.
    fn lookup(&mut self, plugin: u32, slot: u16, v: ValueRef<'_>) -> Lookup {
        if !worth_sharing(v) {
            return Lookup::Inline;
        }
        let ids = self.slots.entry((plugin, slot)).or_default();
        if let Some(&id) = ids.iter().find(|&&id| self.entries[id as usize].same(v)) {
            return Lookup::Found(id);
        }
        if ids.len() >= MAX_VARIANTS
            || self.bytes >= MAX_BYTES
            || self.entries.len() >= u32::MAX as usize
        {
            return Lookup::Inline;
        }
        Lookup::Add
    }

    /// Adds `v`, the value of a finding of `plugin` in projection slot `slot` (looked up as
    /// `Lookup::Add`); `None` for a value that is not a text or a list.
    fn add(&mut self, plugin: u32, slot: u16, v: ValueRef<'_>) -> Option<u32> {
        let raw = match v {
            ValueRef::Text(s) => Raw::Text { len: s.len() },
            ValueRef::List(ref items) => Raw::List(encode_list(items)),
            _ => return None,
        };
        let id = self.entries.len() as u32;
        let entry = Entry {
            raw,
            rendered: render_value(v),
        };
        self.bytes += entry.held_bytes();
        self.entries.push(entry);
        self.slots.entry((plugin, slot)).or_default().push(id);
        Some(id)
    }

    /// Renders a `vulnerability` line for a projection (`fields`) into `l`, with shared
    /// values as references; returns the length of the expanded line.
    pub(crate) fn render(
        &mut self,
        l: &mut Vec<u8>,
        f: &Finding,
        projection: &Projection,
        fields: &[String],
    ) -> u64 {
        let host = HostLine::of(f);
        let start = l.len();
        let mut expanded_extra = 0u64;
        let mut refs = 0u64;
        if self.keys.len() != fields.len() {
            self.keys = fields
                .iter()
                .map(|name| {
                    let mut k = Vec::new();
                    key(&mut k, name);
                    k
                })
                .collect();
        }
        l.extend_from_slice(b"{\"type\": \"vulnerability\"");
        for (slot, name) in fields.iter().enumerate() {
            let v = if is_host_field(name) {
                host.value(name, projection)
            } else {
                f.get(name)
            };
            let Some(v) = v else {
                continue;
            };
            l.extend_from_slice(&self.keys[slot]);
            let key = f.plugin_id.zip(u16::try_from(slot).ok());
            let shared = match key.map(|(p, slot)| (p, slot, self.lookup(p, slot, v))) {
                Some((_, _, Lookup::Found(id))) => Some(id),
                Some((p, slot, Lookup::Add)) => self.add(p, slot, v),
                Some((_, _, Lookup::Inline)) | None => {
                    value(l, v);
                    continue;
                }
            };
            match shared {
                Some(id) => {
                    l.push(REF);
                    l.extend_from_slice(&id.to_le_bytes());
                    expanded_extra += self.entries[id as usize].rendered.len() as u64;
                    refs += 1;
                }
                // Not a text or a list after all (not reached: only those are worth
                // sharing).
                None => value(l, v),
            }
        }
        l.push(b'}');
        (l.len() - start) as u64 - refs * REF_BYTES as u64 + expanded_extra
    }

    /// Writes a stored line with its references expanded.
    pub(crate) fn expand<W: Write>(&self, mut line: &[u8], out: &mut W) -> io::Result<()> {
        while let Some(at) = find_ref(line) {
            out.write_all(&line[..at])?;
            let id = line
                .get(at + 1..at + REF_BYTES)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .and_then(|id| self.entries.get(id as usize))
                .ok_or_else(|| io::Error::other("a stored line holds a bad reference"))?;
            out.write_all(&id.rendered)?;
            line = &line[at + REF_BYTES..];
        }
        out.write_all(line)
    }
}

/// Index of the first [`REF`] byte: 8 bytes at a time (SWAR), as this runs over every
/// output byte.
fn find_ref(bytes: &[u8]) -> Option<usize> {
    first_match(
        bytes,
        |w| {
            let w = w ^ (LO * REF as u64);
            // Exact zero-byte detection: the high bit ends up set only where w's byte is 0.
            !(((w & !HI) + !HI) | w) & HI
        },
        |b| b == REF,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FieldName;
    use crate::value::Value;

    #[test]
    fn shares_only_identical_values_and_expands_exactly() {
        let long = "a \"quoted\"\nline that is long enough to be shared".to_owned();
        // A repeated field, and an attribute field with a child of the same name: each
        // slot reads its own value.
        let fields: Vec<String> = [
            "description",
            "cve",
            "port",
            "plugin_name",
            "svc_name",
            "description",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let finding = |text: &str, cves: &[&str]| Finding {
            plugin_id: Some(7),
            port: Some(22),
            plugin_name: Some(format!("name: {text}")),
            svc_name: Some(format!("attribute: {text}")),
            fields: vec![
                (FieldName::from("description"), Value::Text(text.to_owned())),
                (
                    FieldName::from("svc_name"),
                    Value::Text(format!("child: {text}")),
                ),
                (
                    FieldName::from("cve"),
                    Value::List(cves.iter().map(|s| (*s).to_owned()).collect()),
                ),
            ],
            ..Finding::default()
        };
        let mut cache = SharedValues::default();
        let cves = ["CVE-2020-0001", "CVE-2020-0002", "CVE-2020-0003"];
        for f in [
            finding(&long, &cves),
            finding(&long, &cves),
            finding(&format!("{long}!"), &cves[..2]),
            finding(&long, &cves[..1]),
        ] {
            let mut plain = Vec::new();
            crate::jsonl::render_finding(
                &mut plain,
                &f,
                &crate::catalogue::Projection::custom(fields.clone()),
            );
            let mut stored = Vec::new();
            let len = cache.render(
                &mut stored,
                &f,
                &crate::catalogue::Projection::custom(fields.clone()),
                &fields,
            );
            let mut out = Vec::new();
            cache.expand(&stored, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(plain).unwrap()
            );
            assert_eq!(len as usize, cache_len(&cache, &stored));
        }
        // The long text and its variant under each of the four text slots (the two
        // `description`s, `plugin_name`, `svc_name`), and the three-item list (shorter
        // lists are inline).
        assert_eq!(cache.entries.len(), 9);
    }

    #[test]
    fn ref_search_matches_naive() {
        for b in 0..=255u8 {
            for pos in 0..20 {
                let mut text = vec![b'a'; 20];
                text[pos] = b;
                let naive = text.iter().position(|&x| x == REF);
                assert_eq!(find_ref(&text), naive, "byte {b:#x} at {pos}");
            }
        }
    }

    fn cache_len(cache: &SharedValues, stored: &[u8]) -> usize {
        let mut out = Vec::new();
        cache.expand(stored, &mut out).unwrap();
        out.len()
    }
}
