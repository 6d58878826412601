//! Cutting one rendered record line so that it fits a byte budget: the first record of an
//! answer must be written for paging to make progress, even when it alone is larger than
//! the whole budget (a 265k-character `plugin_output` under `full`).
//!
//! The line is read back (our own rendering, so it parses, keeps its key order and renders
//! to the same bytes) and written again with every value capped at `cap` rendered bytes,
//! for the largest cap that fits: only the longest values are cut, each as far as needed
//! and no further. A cut text keeps a prefix (whole characters) and ends with
//! `…[cut: N more characters]`; a cut list of strings keeps its first items and ends with
//! the item `…[cut: N more items]`. Identity values (`type`, `host`, `host_ip`) and
//! non-text values are never cut.

use serde_json::{Map, Value as Json};

use crate::jsonl::{json, str_lit};

/// Keys whose values are never cut: what the record is and where it was found.
const KEEP: &[&str] = &["type", "host", "host_ip"];

/// The line cut to at most `room` bytes (or as short as cutting makes it, if even that is
/// more), and the names of the fields cut, in line order. `None` if `line` is not a JSON
/// object (it always is) or has nothing that can be cut.
pub(crate) fn cut_to_fit(line: &[u8], room: usize) -> Option<(Vec<u8>, Vec<String>)> {
    let map: Map<String, Json> = serde_json::from_slice(line).ok()?;
    let widest = map
        .iter()
        .filter(|(k, v)| !KEEP.contains(&k.as_str()) && cuttable(v))
        .map(|(_, v)| rendered_len(v))
        .max()?;
    let smallest = render_capped(&map, 0);
    if smallest.0.len() > room {
        return Some(smallest);
    }
    // The rendered length grows with the cap (a kept character costs at least the digit
    // its marker may lose), so the largest fitting cap is found by bisection; `widest`
    // itself renders the uncut line, which does not fit.
    let (mut lo, mut hi) = (0, widest);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if render_capped(&map, mid).0.len() <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(render_capped(&map, lo))
}

fn cuttable(v: &Json) -> bool {
    match v {
        Json::String(_) => true,
        Json::Array(items) => !items.is_empty() && items.iter().all(Json::is_string),
        _ => false,
    }
}

/// Bytes of `c` inside a JSON string literal written by `str_lit`.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

fn lit_len(s: &str) -> usize {
    2 + s.chars().map(escaped_len).sum::<usize>()
}

fn rendered_len(v: &Json) -> usize {
    match v {
        Json::String(s) => lit_len(s),
        Json::Array(items) => {
            let inner: usize = items
                .iter()
                .map(|i| i.as_str().map_or(0, lit_len))
                .sum::<usize>();
            2 + inner + 2 * items.len().saturating_sub(1)
        }
        _ => 0,
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn text_marker(removed: usize) -> String {
    format!("…[cut: {removed} more characters]")
}

/// Rendered bytes of [`text_marker`] (`…` is 3 bytes; nothing in it is escaped).
fn text_marker_len(removed: usize) -> usize {
    3 + "[cut: ".len() + digits(removed) + " more characters]".len()
}

fn render_capped(map: &Map<String, Json>, cap: usize) -> (Vec<u8>, Vec<String>) {
    let mut l = Vec::new();
    let mut cut = Vec::new();
    l.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            l.extend_from_slice(b", ");
        }
        str_lit(&mut l, k);
        l.extend_from_slice(b": ");
        let keep = KEEP.contains(&k.as_str()) || !cuttable(v) || rendered_len(v) <= cap;
        match v {
            Json::String(s) if !keep => {
                cut_text(&mut l, s, cap);
                cut.push(k.clone());
            }
            Json::Array(items) if !keep => {
                cut_list(&mut l, items, cap);
                cut.push(k.clone());
            }
            _ => json(&mut l, v),
        }
    }
    l.push(b'}');
    (l, cut)
}

/// The longest prefix of `s` whose literal, with the marker, fits `cap` bytes (just the
/// marker if none does).
fn cut_text(l: &mut Vec<u8>, s: &str, cap: usize) {
    let total = s.chars().count();
    let (mut esc, mut kept, mut end) = (0, 0, 0);
    for (at, c) in s.char_indices() {
        let cost = esc + escaped_len(c);
        if 2 + cost + text_marker_len(total - kept - 1) > cap {
            break;
        }
        esc = cost;
        kept += 1;
        end = at + c.len_utf8();
    }
    let mut text = String::with_capacity(end + 32);
    text.push_str(&s[..end]);
    text.push_str(&text_marker(total - kept));
    str_lit(l, &text);
}

/// The first items of a list of strings that fit `cap` bytes with the marker item.
fn cut_list(l: &mut Vec<u8>, items: &[Json], cap: usize) {
    let marker = |n: usize| format!("…[cut: {n} more items]");
    let texts: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
    // `[` + kept items, each followed by `, ` + marker literal + `]`.
    let mut used = 1;
    let mut kept = 0;
    for t in &texts {
        let cost = used + lit_len(t) + 2;
        if cost + lit_len(&marker(texts.len() - kept - 1)) + 1 > cap {
            break;
        }
        used = cost;
        kept += 1;
    }
    l.push(b'[');
    for t in &texts[..kept] {
        str_lit(l, t);
        l.extend_from_slice(b", ");
    }
    str_lit(l, &marker(texts.len() - kept));
    l.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(v: &serde_json::Value) -> Vec<u8> {
        let mut l = Vec::new();
        json(&mut l, v);
        l
    }

    #[test]
    fn cuts_only_the_longest_values_and_says_how_much() {
        let long = "é\"x".repeat(5000);
        let v = serde_json::json!({
            "type": "vulnerability", "host": "10.0.0.1", "plugin_id": 1,
            "synopsis": "short", "plugin_output": long, "cvss_score": 7.5,
            "cve": (0..300).map(|i| format!("CVE-2020-{i:04}")).collect::<Vec<_>>(),
        });
        let full = line(&v);
        // Uncut output renders to the same bytes (the cut re-renders the parsed line).
        let m: Map<String, Json> = serde_json::from_slice(&full).unwrap();
        assert_eq!(render_capped(&m, usize::MAX).0, full);
        let mut lists_cut = 0;
        for room in [600, 1000, 3000, 10_000, 20_000] {
            let (cut, fields) = cut_to_fit(&full, room).unwrap();
            assert!(cut.len() <= room, "{room}: {}", cut.len());
            let back: serde_json::Value = serde_json::from_slice(&cut).unwrap();
            assert_eq!(back["synopsis"], "short");
            assert_eq!(back["cvss_score"], 7.5);
            assert!(fields.contains(&"plugin_output".to_owned()));
            let text = back["plugin_output"].as_str().unwrap();
            let (kept, marker) = text.rsplit_once('…').unwrap();
            let n: usize = marker
                .strip_prefix("[cut: ")
                .and_then(|m| m.strip_suffix(" more characters]"))
                .unwrap()
                .parse()
                .unwrap();
            assert!(long.starts_with(kept));
            assert_eq!(kept.chars().count() + n, long.chars().count());
            let cve = back["cve"].as_array().unwrap();
            if let Some(last) = cve
                .last()
                .and_then(|c| c.as_str())
                .filter(|c| c.starts_with('…'))
            {
                let n: usize = last
                    .strip_prefix("…[cut: ")
                    .and_then(|m| m.strip_suffix(" more items]"))
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(cve.len() - 1 + n, 300, "{room}");
                assert!(fields.contains(&"cve".to_owned()));
                lists_cut += 1;
            } else {
                assert_eq!(cve.len(), 300, "{room}");
            }
            // Nearly all of the room is used: the cut is no larger than needed.
            assert!(cut.len() + 40 >= room, "{room}: {}", cut.len());
        }
        assert!(lists_cut > 0, "the smallest rooms cut the list too");
    }
}
