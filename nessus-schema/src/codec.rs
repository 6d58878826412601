//! Binary encoding of findings inside a store's `findings.bin`.
//!
//! A record is a sequence of entries `key: u16 LE, tag: u8, payload`, where `key` indexes
//! the store's field dictionary and the tag is one of [`TAG_NULL`] ... [`TAG_LIST`]:
//! null, false, true, `i64 LE`, `f64 LE`, text (`u32 LE` length + UTF-8), list (`u32 LE`
//! count + `u32 LE` byte length + items, each `u32 LE` length + UTF-8). The first eight
//! dictionary entries are always the standard attributes in output order (`host`,
//! `plugin_id`, ...), so the decoder can rebuild a [`Finding`] exactly.

use std::collections::HashMap;

use crate::record::{ATTRIBUTE_FIELDS, Finding};
use crate::value::{ListRef, ValueRef};

const TAG_NULL: u8 = 0;
const TAG_FALSE: u8 = 1;
const TAG_TRUE: u8 = 2;
const TAG_INT: u8 = 3;
const TAG_FLOAT: u8 = 4;
const TAG_TEXT: u8 = 5;
const TAG_LIST: u8 = 6;

/// Field-name dictionary shared by the records of one store.
#[derive(Debug, Clone)]
pub(crate) struct Dictionary {
    names: Vec<String>,
    ids: HashMap<String, u16>,
}

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary::from_names(ATTRIBUTE_FIELDS.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl Dictionary {
    pub(crate) fn from_names(names: Vec<String>) -> Dictionary {
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u16))
            .collect();
        Dictionary { names, ids }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn id(&self, name: &str) -> Option<u16> {
        self.ids.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> Option<u16> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let id = u16::try_from(self.names.len()).ok()?;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        Some(id)
    }
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    // Record size is capped far below 4 GiB by the parser's limits.
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

fn put_value(out: &mut Vec<u8>, id: u16, v: ValueRef<'_>) {
    out.extend_from_slice(&id.to_le_bytes());
    match v {
        ValueRef::Null => out.push(TAG_NULL),
        ValueRef::Bool(false) => out.push(TAG_FALSE),
        ValueRef::Bool(true) => out.push(TAG_TRUE),
        ValueRef::Int(i) => {
            out.push(TAG_INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Float(f) => {
            out.push(TAG_FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        ValueRef::Text(s) => {
            out.push(TAG_TEXT);
            put_u32(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        ValueRef::List(items) => {
            out.push(TAG_LIST);
            put_u32(out, items.len());
            let len_at = out.len();
            put_u32(out, 0);
            let start = out.len();
            for s in items.iter() {
                put_u32(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            let n = (out.len() - start) as u32;
            out[len_at..len_at + 4].copy_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends the encoding of `f` to `out`. Returns `false` if the dictionary is full
/// (65 536 distinct field names), which no real export approaches.
pub(crate) fn encode(f: &Finding, dict: &mut Dictionary, out: &mut Vec<u8>) -> bool {
    for (i, name) in ATTRIBUTE_FIELDS.iter().enumerate() {
        if let Some(v) = f.get(name) {
            put_value(out, i as u16, v);
        }
    }
    for (name, v) in &f.fields {
        let Some(id) = dict.intern(name) else {
            return false;
        };
        put_value(out, id, v.as_ref());
    }
    true
}

/// A zero-copy view of one encoded record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub(crate) bytes: &'a [u8],
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

impl<'a> RawRecord<'a> {
    /// Iterates `(key, value)` entries; stops at the first corrupt byte.
    pub(crate) fn entries(&self) -> Entries<'a> {
        Entries {
            bytes: self.bytes,
            at: 0,
        }
    }

    pub(crate) fn get(&self, id: u16) -> Option<ValueRef<'a>> {
        self.entries().find(|(k, _)| *k == id).map(|(_, v)| v)
    }
}

pub(crate) struct Entries<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (u16, ValueRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.bytes;
        let head = b.get(self.at..self.at + 3)?;
        let id = u16::from_le_bytes([head[0], head[1]]);
        let tag = head[2];
        let mut at = self.at + 3;
        let v = match tag {
            TAG_NULL => ValueRef::Null,
            TAG_FALSE => ValueRef::Bool(false),
            TAG_TRUE => ValueRef::Bool(true),
            TAG_INT | TAG_FLOAT => {
                let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
                at += 8;
                if tag == TAG_INT {
                    ValueRef::Int(i64::from_le_bytes(s))
                } else {
                    ValueRef::Float(f64::from_le_bytes(s))
                }
            }
            TAG_TEXT => {
                let len = u32_at(b, at)?;
                let s = std::str::from_utf8(b.get(at + 4..at + 4 + len)?).ok()?;
                at += 4 + len;
                ValueRef::Text(s)
            }
            TAG_LIST => {
                let count = u32_at(b, at)? as u32;
                let len = u32_at(b, at + 4)?;
                let bytes = b.get(at + 8..at + 8 + len)?;
                at += 8 + len;
                ValueRef::List(ListRef::Encoded { count, bytes })
            }
            _ => return None,
        };
        self.at = at;
        Some((id, v))
    }
}

/// Rebuilds a finding from its encoding.
pub(crate) fn decode(raw: RawRecord<'_>, dict: &Dictionary) -> Finding {
    let mut f = Finding::default();
    let text = |v: ValueRef<'_>| match v {
        ValueRef::Text(s) => Some(s.to_owned()),
        _ => None,
    };
    let int = |v: ValueRef<'_>| match v {
        ValueRef::Int(i) => Some(i),
        _ => None,
    };
    for (id, v) in raw.entries() {
        match id {
            0 => f.host = text(v).unwrap_or_default(),
            1 => f.plugin_id = int(v).and_then(|i| u32::try_from(i).ok()),
            2 => f.plugin_name = text(v),
            3 => f.plugin_family = text(v),
            4 => f.severity = int(v).and_then(|i| u8::try_from(i).ok()),
            5 => f.port = int(v).and_then(|i| u32::try_from(i).ok()),
            6 => f.svc_name = text(v),
            7 => f.protocol = text(v),
            _ => {
                let name = dict
                    .names()
                    .get(id as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("field_{id}"));
                f.fields.push((name, v.to_owned_value()));
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn round_trip() {
        let f = Finding {
            host: "h".into(),
            plugin_id: Some(7),
            severity: Some(3),
            port: Some(443),
            protocol: Some("tcp".into()),
            fields: vec![
                ("cve".into(), Value::List(vec!["a".into(), "bé".into()])),
                ("cvss3_base_score".into(), Value::Float(9.8)),
                ("exploit_available".into(), Value::Bool(true)),
                ("cvss_base_score".into(), Value::Null),
                ("plugin_output".into(), Value::Text("x\ny".into())),
            ],
            ..Finding::default()
        };
        let mut dict = Dictionary::default();
        let mut buf = Vec::new();
        assert!(encode(&f, &mut dict, &mut buf));
        let back = decode(RawRecord { bytes: &buf }, &dict);
        assert_eq!(back, f);
    }
}
