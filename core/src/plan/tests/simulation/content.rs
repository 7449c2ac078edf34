//! The simulation's events: made and edited with real times, re-serialised as a
//! back end might, and read back property by property for the checks.

use super::*;

/// The simulated clock's start, 2025-01-01T00:00:00Z, in Unix milliseconds.
pub(super) const EPOCH_MS: i64 = 1_735_689_600_000;

/// The properties an edit changes.
pub(super) const PROPS: [&str; 3] = ["SUMMARY", "LOCATION", "DESCRIPTION"];

pub(super) fn stamp(minute: u64) -> String {
    let day = 1 + minute / 1440;
    format!(
        "202501{day:02}T{:02}{:02}00Z",
        (minute / 60) % 24,
        minute % 60
    )
}

pub(super) fn at_ms(minute: u64) -> i64 {
    EPOCH_MS + minute as i64 * 60_000
}

/// A new event, every property written by `who` at `minute`.
pub(super) fn event(uid: &str, who: &str, minute: u64) -> Vec<u8> {
    format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nLAST-MODIFIED:{}\r\nSUMMARY:{who}-s{minute}\r\nLOCATION:{who}-l{minute}\r\nDESCRIPTION:{who}-d{minute}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        stamp(minute)
    )
    .into_bytes()
}

/// `content` with property `prop` set to a new value and LAST-MODIFIED to `minute`.
pub(super) fn edited(content: &[u8], prop: &str, who: &str, minute: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(content);
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|l| {
            if l.starts_with(&format!("{prop}:")) {
                format!("{prop}:{who}-{minute}")
            } else if l.starts_with("LAST-MODIFIED:") {
                format!("LAST-MODIFIED:{}", stamp(minute))
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.join("\r\n").into_bytes()
}

/// The same event written in another order, as servers re-serialise what they store.
pub(super) fn reserialised(content: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(content);
    let mut lines: Vec<&str> = text.split("\r\n").collect();
    let props: Vec<usize> = (0..lines.len())
        .filter(|i| PROPS.iter().any(|p| lines[*i].starts_with(p)))
        .collect();
    if let (Some(first), Some(last)) = (props.first(), props.last()) {
        lines.swap(*first, *last);
    }
    lines.join("\r\n").into_bytes()
}

/// The value of each edited property.
pub(super) fn values(content: &[u8]) -> BTreeMap<&'static str, Option<String>> {
    PROPS
        .iter()
        .map(|p| (*p, crate::content::property(content, p)))
        .collect()
}

/// The properties `side` changed since `base`.
pub(super) fn changed(base: &[u8], side: &[u8]) -> BTreeSet<&'static str> {
    let (b, s) = (values(base), values(side));
    PROPS.iter().copied().filter(|p| b[p] != s[p]).collect()
}

/// Whether every property `side` changed since `base` has `side`'s value in `result`.
pub(super) fn edits_in(base: &[u8], side: &[u8], result: &[u8]) -> bool {
    let (s, r) = (values(side), values(result));
    changed(base, side).iter().all(|p| s[p] == r[p])
}
