//! What an item *means*, read by structure: whether two copies say the same thing.
//!
//! Servers re-serialise what they store: they reorder and refold lines, change the
//! case of parameters, stamp a new `PRODID` or `DTSTAMP`, and some convert a vCard 4.0
//! to 3.0. None of that changes the meaning, and a copy that differs only so must not
//! read as an edit (or a conflict). A change that moves a property from one component
//! to another (`STATUS:CANCELLED` on one occurrence instead of on the whole series)
//! does change the meaning, even though the lines, sorted, are the same.
//!
//! So an item is read with calcard into its components, each keyed by its kind, its
//! `UID` and its `RECURRENCE-ID` (a time zone by its `TZID`; a vCard is one
//! component), and each component's properties become a multiset of canonical
//! entries: calcard's typed value and parameters, with parameters in order and the
//! values of set-like properties (`CATEGORIES`, `RESOURCES`, `EXDATE`, `RDATE`,
//! `NICKNAME`) one entry each. Nested components (alarms, a time zone's rules) are
//! entries of their parent. Properties that only say when or by what the copy was
//! written ([`VOLATILE`]) do not count.

use std::collections::BTreeMap;

use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarProperty,
};
use calcard::vcard::VCard;

/// Properties that say when or by what a copy was written, not what it means.
pub const VOLATILE: &[&str] = &[
    "PRODID",
    "DTSTAMP",
    "LAST-MODIFIED",
    "REV",
    "X-RADICALE-NAME",
];

/// A vCard's version is how it is written, not what it says (a 4.0 card stored as 3.0
/// by a server means the same).
const VOLATILE_VCARD: &[&str] = &["VERSION"];

/// Properties whose values are a set: `CATEGORIES:a,b` is `CATEGORIES:b,a`, and is two
/// `CATEGORIES` lines.
const SET_VALUED: &[&str] = &["CATEGORIES", "RESOURCES", "EXDATE", "RDATE", "NICKNAME"];

/// Which component of an item: kind, UID, RECURRENCE-ID (or TZID for a time zone).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentKey {
    /// `VEVENT`, `VTODO`, `VTIMEZONE`, `VCALENDAR`, `VCARD`...
    pub kind: String,
    /// Its UID (a time zone's TZID), or empty.
    pub uid: String,
    /// Its RECURRENCE-ID, canonical, or empty for a master.
    pub recurrence_id: String,
}

/// The meaning of an item: per component, its canonical entries (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Components by key, each with its sorted canonical entries.
    pub components: BTreeMap<ComponentKey, Vec<String>>,
}

/// Reads an item's meaning; `None` when calcard cannot read it.
pub fn shape(content: &[u8]) -> Option<Shape> {
    let text = std::str::from_utf8(content).ok()?;
    let start = text.trim_start().get(..12)?.to_ascii_uppercase();
    if start.starts_with("BEGIN:VCARD") {
        vcard_shape(text)
    } else if start.starts_with("BEGIN:VCALEN") {
        calendar_shape(text)
    } else {
        None
    }
}

/// True when two copies of an item say the same thing (see the module documentation).
/// Copies calcard cannot read are compared as bytes.
pub fn same_meaning(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (shape(a), shape(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn is_volatile(name: &str, list: &[&str]) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(name))
}

/// One canonical entry per value of set-like properties, else one per entry: the
/// property's name, its parameters sorted, its values.
fn canonical(name: &str, params: &[String], values: Vec<String>) -> Vec<String> {
    let mut params = params.to_vec();
    params.sort();
    let params = params.join(";");
    if SET_VALUED.contains(&name) {
        values
            .into_iter()
            .map(|v| format!("{name};{params}:{v}"))
            .collect()
    } else {
        vec![format!("{name};{params}:{}", values.join(","))]
    }
}

fn calendar_shape(text: &str) -> Option<Shape> {
    let cal = ICalendar::parse(text).ok()?;
    let root = cal.components.first()?;
    let mut components = BTreeMap::new();
    let mut top = own_entries(root);
    top.sort();
    components.insert(
        ComponentKey {
            kind: "VCALENDAR".into(),
            uid: String::new(),
            recurrence_id: String::new(),
        },
        top,
    );
    for id in &root.component_ids {
        let c = cal.component_by_id(*id)?;
        let entries = nested_entries(&cal, c, 1)?;
        let uid = match c.component_type {
            ICalendarComponentType::VTimezone => c
                .property(&ICalendarProperty::Tzid)
                .and_then(|e| e.values.first())
                .and_then(|v| v.as_text())
                .unwrap_or("")
                .to_string(),
            _ => c.uid().unwrap_or("").to_string(),
        };
        let recurrence_id = c
            .property(&ICalendarProperty::RecurrenceId)
            .map(|e| format!("{:?}", e.values))
            .unwrap_or_default();
        let mut key = ComponentKey {
            kind: c.component_type.as_str().to_ascii_uppercase(),
            uid,
            recurrence_id,
        };
        // Two components with one key (an object that repeats itself): keep both.
        while components.contains_key(&key) {
            key.recurrence_id.push('+');
        }
        components.insert(key, entries);
    }
    Some(Shape { components })
}

/// A component's own properties as canonical entries (unsorted).
fn own_entries(c: &ICalendarComponent) -> Vec<String> {
    let mut entries = Vec::new();
    for e in &c.entries {
        let name = e.name.as_str().to_ascii_uppercase();
        if is_volatile(&name, VOLATILE) {
            continue;
        }
        let params: Vec<String> = e.params.iter().map(|p| format!("{p:?}")).collect();
        let mut values: Vec<String> = e.values.iter().map(|v| format!("{v:?}")).collect();
        if SET_VALUED.contains(&name.as_str()) {
            values.sort();
        }
        entries.extend(canonical(&name, &params, values));
    }
    entries
}

/// A component's entries with its nested components (alarms, a time zone's rules)
/// folded in as entries of their own, sorted.
fn nested_entries(cal: &ICalendar, c: &ICalendarComponent, depth: usize) -> Option<Vec<String>> {
    if depth > 16 {
        return None;
    }
    let mut entries = own_entries(c);
    for id in &c.component_ids {
        let child = cal.component_by_id(*id)?;
        let nested = nested_entries(cal, child, depth + 1)?;
        entries.push(format!(
            "BEGIN:{}{{{}}}",
            child.component_type.as_str().to_ascii_uppercase(),
            nested.join("|")
        ));
    }
    entries.sort();
    Some(entries)
}

fn vcard_shape(text: &str) -> Option<Shape> {
    let card = VCard::parse(text).ok()?;
    let mut entries = Vec::new();
    for e in &card.entries {
        let name = e.name.as_str().to_ascii_uppercase();
        if is_volatile(&name, VOLATILE) || is_volatile(&name, VOLATILE_VCARD) {
            continue;
        }
        let params: Vec<String> = e
            .params
            .iter()
            .map(|p| format!("{p:?}").to_ascii_lowercase())
            .collect();
        let mut values: Vec<String> = e.values.iter().map(|v| format!("{v:?}")).collect();
        if SET_VALUED.contains(&name.as_str()) {
            values.sort();
        }
        entries.extend(canonical(&name, &params, values));
    }
    entries.sort();
    let uid = card.uid().map(str::to_string).unwrap_or_default();
    let mut components = BTreeMap::new();
    components.insert(
        ComponentKey {
            kind: "VCARD".into(),
            uid,
            recurrence_id: String::new(),
        },
        entries,
    );
    Some(Shape { components })
}

#[cfg(test)]
mod tests;
