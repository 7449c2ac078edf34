//! Three-way merge of calendar objects and vCards: the `merge` conflict policy.
//!
//! When both sides changed an item, the version both last agreed on (the *base*, kept
//! per item by the gateway) tells what each side did. Changes to different parts both
//! survive:
//!
//! - per component, keyed by kind, `UID` and `RECURRENCE-ID` (a vCard is one
//!   component): one side added, removed or changed a component the other left alone
//!   → that side's; both changed it → merged per property;
//! - per property: one side changed it → that side's; both changed it the same way →
//!   that; both changed it differently → a conflict (the caller then falls back to
//!   `newest-wins` and keeps the whole losing version);
//! - set-like properties (`ATTENDEE`, `EXDATE`, `CATEGORIES`, a vCard's `EMAIL` and
//!   `TEL`...) and nested components (alarms) merge as sets: what each side added is
//!   added, what each side removed is removed;
//! - properties that only say when the copy was written (`DTSTAMP`,
//!   `LAST-MODIFIED`, `REV`) take the later value, `SEQUENCE` the larger.
//!
//! The merge is deterministic and pure: the same three inputs give the same bytes.
//! Output keeps the gateway side's layout (its order of components and properties)
//! with the other side's additions after, content lines as their authors wrote them.

use std::collections::{BTreeMap, BTreeSet};

use crate::content::unfolded_lines;

/// Properties whose every line is one member of a set.
const SET_LIKE: &[&str] = &[
    "ATTENDEE",
    "EXDATE",
    "RDATE",
    "CATEGORIES",
    "RESOURCES",
    "COMMENT",
    "CONTACT",
    "ATTACH",
    "RELATED-TO",
    "EMAIL",
    "TEL",
    "ADR",
    "URL",
    "IMPP",
    "NICKNAME",
    "MEMBER",
    "X-SOCIALPROFILE",
];

/// Properties that say when a copy was written: the later wins, never a conflict.
const STAMPS: &[&str] = &["DTSTAMP", "LAST-MODIFIED", "REV", "PRODID"];

/// Why two versions could not be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConflict {
    /// The component and property both sides changed differently.
    pub what: String,
}

/// A component read for merging.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Comp {
    /// `VEVENT`, `VCARD`...
    name: String,
    /// Properties by name, each a list of raw lines in order.
    props: BTreeMap<String, Vec<String>>,
    /// Property names in order of first appearance.
    order: Vec<String>,
    /// Nested components, as whole text blocks (alarms, a time zone's rules).
    nested: Vec<String>,
}

/// An object: its top component's own lines, and its keyed sub-components (for a
/// vCard, the card itself is the one keyed component).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Object {
    /// `VCALENDAR` or `VCARD`.
    top: String,
    /// The top component (its own properties; for a calendar, VERSION, PRODID...).
    head: Comp,
    /// Keyed components in order.
    comps: Vec<(String, Comp)>,
}

fn prop_name(line: &str) -> String {
    let end = line.find([':', ';']).unwrap_or(line.len());
    let name = &line[..end];
    name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase()
}

/// A line in a form where re-serialisation does not matter: name and parameter
/// names upper case, parameters sorted, TYPE values upper case, rule parts sorted.
fn canonical(line: &str) -> String {
    let Some((head, value)) = split_value(line) else {
        return line.trim().to_string();
    };
    let mut parts = head.split(';');
    let name = prop_name(parts.next().unwrap_or(""));
    let mut params: Vec<String> = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("TYPE") => {
                let mut vs: Vec<String> = v
                    .split(',')
                    .map(|x| x.trim_matches('"').to_ascii_uppercase())
                    .collect();
                vs.sort();
                format!("TYPE={}", vs.join(","))
            }
            Some((k, v)) => format!("{}={v}", k.to_ascii_uppercase()),
            None => p.to_ascii_uppercase(),
        })
        .collect();
    params.sort();
    let value = if name == "RRULE" || name == "EXRULE" {
        let mut ps: Vec<String> = value.split(';').map(str::to_ascii_uppercase).collect();
        ps.sort();
        ps.join(";")
    } else {
        value.to_string()
    };
    format!("{name};{}:{value}", params.join(";"))
}

/// Splits a content line at the first colon outside a quoted parameter value.
fn split_value(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

fn value_of(line: &str) -> &str {
    split_value(line).map_or("", |(_, v)| v.trim())
}

/// Reads an object; `None` when it is not one we can merge.
fn read(content: &[u8]) -> Option<Object> {
    let lines: Vec<String> = unfolded_lines(content)
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let first = lines.first()?.trim().to_ascii_uppercase();
    let top = first.strip_prefix("BEGIN:")?.to_string();
    if top != "VCALENDAR" && top != "VCARD" {
        return None;
    }
    let mut obj = Object {
        top: top.clone(),
        ..Object::default()
    };
    // Depth 1: the top; depth 2: keyed components; deeper: text of a nested block.
    let mut depth = 0usize;
    let mut current: Option<Comp> = None;
    let mut block: Vec<String> = Vec::new();
    for line in &lines {
        let upper = line.trim().to_ascii_uppercase();
        if let Some(name) = upper.strip_prefix("BEGIN:") {
            depth += 1;
            match depth {
                1 => {}
                2 => {
                    current = Some(Comp {
                        name: name.to_string(),
                        ..Comp::default()
                    })
                }
                _ => block.push(line.clone()),
            }
            continue;
        }
        if upper.starts_with("END:") {
            match depth {
                0 => return None,
                1 => {}
                2 => {
                    let c = current.take()?;
                    obj.comps.push((key(&c), c));
                }
                _ => {
                    block.push(line.clone());
                    if depth == 3 {
                        if let Some(c) = current.as_mut() {
                            c.nested.push(block.join("\r\n"));
                        }
                        block.clear();
                    }
                }
            }
            depth -= 1;
            continue;
        }
        match depth {
            1 => add_prop(&mut obj.head, line),
            2 => add_prop(current.as_mut()?, line),
            d if d > 2 => block.push(line.clone()),
            _ => return None,
        }
    }
    if depth != 0 {
        return None;
    }
    if top == "VCARD" {
        // A vCard is one component: its properties are the head's.
        let card = std::mem::take(&mut obj.head);
        obj.comps.push((
            "VCARD".into(),
            Comp {
                name: "VCARD".into(),
                ..card
            },
        ));
    }
    Some(obj)
}

fn add_prop(c: &mut Comp, line: &str) {
    let name = prop_name(line);
    if !c.props.contains_key(&name) {
        c.order.push(name.clone());
    }
    c.props.entry(name).or_default().push(line.to_string());
}

fn key(c: &Comp) -> String {
    let first = |n: &str| {
        c.props
            .get(n)
            .and_then(|l| l.first())
            .map(|l| canonical_value(l))
    };
    match c.name.as_str() {
        "VTIMEZONE" => format!("VTIMEZONE/{}", first("TZID").unwrap_or_default()),
        name => format!(
            "{name}/{}/{}",
            first("UID").unwrap_or_default(),
            first("RECURRENCE-ID").unwrap_or_default()
        ),
    }
}

fn canonical_value(line: &str) -> String {
    canonical(line)
        .split_once(':')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn set_of(lines: &[String]) -> BTreeMap<String, String> {
    lines.iter().map(|l| (canonical(l), l.clone())).collect()
}

/// Merges a property's lines as a set.
fn merge_set(base: &[String], ours: &[String], theirs: &[String]) -> Vec<String> {
    let (b, o, t) = (set_of(base), set_of(ours), set_of(theirs));
    let mut out: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    // Ours first (its order), then what theirs added.
    for (k, line) in o.iter().chain(t.iter()) {
        let in_base = b.contains_key(k);
        let kept = if in_base {
            o.contains_key(k) && t.contains_key(k)
        } else {
            true
        };
        if kept && seen.insert(k.clone()) {
            out.push(line.clone());
        }
    }
    out
}

fn same(a: &[String], b: &[String]) -> bool {
    let canon = |x: &[String]| {
        let mut v: Vec<String> = x.iter().map(|l| canonical(l)).collect();
        v.sort();
        v
    };
    canon(a) == canon(b)
}

/// The later of two stamp values (they are date-times in one form, so text order).
fn later(a: &[String], b: &[String]) -> Vec<String> {
    let va = a
        .first()
        .map(|l| value_of(l).to_string())
        .unwrap_or_default();
    let vb = b
        .first()
        .map(|l| value_of(l).to_string())
        .unwrap_or_default();
    if vb > va { b.to_vec() } else { a.to_vec() }
}

/// Merges one component both sides changed.
fn merge_comp(key: &str, base: &Comp, ours: &Comp, theirs: &Comp) -> Result<Comp, MergeConflict> {
    let mut out = Comp {
        name: ours.name.clone(),
        ..Comp::default()
    };
    let names: Vec<String> = ours
        .order
        .iter()
        .chain(theirs.order.iter())
        .chain(base.order.iter())
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(n) {
                acc.push(n.clone());
            }
            acc
        });
    let empty = Vec::new();
    for name in names {
        let b = base.props.get(&name).unwrap_or(&empty);
        let o = ours.props.get(&name).unwrap_or(&empty);
        let t = theirs.props.get(&name).unwrap_or(&empty);
        let lines = if SET_LIKE.contains(&name.as_str()) {
            merge_set(b, o, t)
        } else if STAMPS.contains(&name.as_str()) {
            later(o, t)
        } else if name == "SEQUENCE" {
            let n = |x: &[String]| {
                x.first()
                    .and_then(|l| value_of(l).parse::<i64>().ok())
                    .unwrap_or(0)
            };
            if n(t) > n(o) { t.clone() } else { o.clone() }
        } else if same(o, b) {
            t.clone()
        } else if same(t, b) || same(o, t) {
            o.clone()
        } else {
            return Err(MergeConflict {
                what: format!("{key} {name}"),
            });
        };
        if !lines.is_empty() {
            out.order.push(name.clone());
            out.props.insert(name, lines);
        }
    }
    // Nested components (alarms) merge as a set of whole blocks.
    out.nested = merge_set(&base.nested, &ours.nested, &theirs.nested);
    Ok(out)
}

fn write_comp(out: &mut String, c: &Comp) {
    out.push_str(&format!("BEGIN:{}\r\n", c.name));
    for name in &c.order {
        for line in c.props.get(name).into_iter().flatten() {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    for block in &c.nested {
        out.push_str(block);
        out.push_str("\r\n");
    }
    out.push_str(&format!("END:{}\r\n", c.name));
}

/// Merges `ours` (the gateway's version) and `theirs` (the back end's) against
/// `base`. `Ok` with the merged bytes, or the conflict that stopped it; `None` when
/// one of the three cannot be read as a calendar object or vCard of the same kind.
pub fn three_way(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
) -> Option<Result<Vec<u8>, MergeConflict>> {
    let (b, o, t) = (read(base)?, read(ours)?, read(theirs)?);
    if b.top != o.top || o.top != t.top {
        return None;
    }
    let find = |obj: &Object, k: &str| {
        obj.comps
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, c)| c.clone())
    };
    let mut keys: Vec<String> = Vec::new();
    for (k, _) in o.comps.iter().chain(t.comps.iter()).chain(b.comps.iter()) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let mut merged: Vec<Comp> = Vec::new();
    for k in &keys {
        let (cb, co, ct) = (find(&b, k), find(&o, k), find(&t, k));
        let unchanged = |x: &Option<Comp>| match (x, &cb) {
            (Some(x), Some(base)) => comp_same(x, base),
            (None, None) => true,
            _ => false,
        };
        let pick = match (unchanged(&co), unchanged(&ct)) {
            (true, _) => ct,
            (_, true) => co,
            // Both changed it.
            _ => match (co, ct) {
                (Some(o), Some(t)) if comp_same(&o, &t) => Some(o),
                (Some(o), Some(t)) => {
                    let empty = Comp {
                        name: o.name.clone(),
                        ..Comp::default()
                    };
                    match merge_comp(k, cb.as_ref().unwrap_or(&empty), &o, &t) {
                        Ok(c) => Some(c),
                        Err(e) => return Some(Err(e)),
                    }
                }
                (None, None) => None,
                // Deleted on one side, changed on the other.
                _ => {
                    return Some(Err(MergeConflict {
                        what: format!("{k} deleted on one side, changed on the other"),
                    }));
                }
            },
        };
        if let Some(c) = pick {
            merged.push(c);
        }
    }
    let head = if o.top == "VCARD" {
        None
    } else {
        Some(match merge_comp(&o.top, &b.head, &o.head, &t.head) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        })
    };
    let mut out = String::new();
    match head {
        Some(mut h) => {
            h.name = o.top.clone();
            out.push_str(&format!("BEGIN:{}\r\n", o.top));
            for name in &h.order {
                for line in h.props.get(name).into_iter().flatten() {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            }
            for c in &merged {
                write_comp(&mut out, c);
            }
            out.push_str(&format!("END:{}\r\n", o.top));
        }
        None => {
            for c in &merged {
                write_comp(&mut out, c);
            }
        }
    }
    Some(Ok(out.into_bytes()))
}

/// Whether two components say the same (properties and nested blocks, any order).
fn comp_same(a: &Comp, b: &Comp) -> bool {
    let props = |c: &Comp| {
        let mut v: Vec<String> = c
            .props
            .iter()
            .filter(|(n, _)| !STAMPS.contains(&n.as_str()))
            .flat_map(|(_, ls)| ls.iter().map(|l| canonical(l)))
            .collect();
        v.sort();
        v
    };
    let nested = |c: &Comp| {
        let mut v = c.nested.clone();
        v.sort();
        v
    };
    a.name == b.name && props(a) == props(b) && nested(a) == nested(b)
}

#[cfg(test)]
mod tests;
