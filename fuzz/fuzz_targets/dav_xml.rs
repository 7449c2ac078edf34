//! The DAV XML reader on any bytes, with the gateway's default limits: never a panic,
//! never more than the limits allow, and a tree of ordinary names that parses back the
//! same after it is written out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_davxml::{Element, Limits, parse_with, to_xml};

/// Names made of the characters DAV names use (the reader is lenient with others,
/// and the writer does not promise to round-trip what is not XML).
fn ordinary(e: &Element) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
    };
    ok(&e.name)
        && !e.ns.chars().any(char::is_control)
        && !e
            .text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        && e.attrs
            .iter()
            .all(|(k, v)| ok(k) && !v.chars().any(char::is_control))
        && e.attrs
            .iter()
            .enumerate()
            .all(|(i, (k, _))| e.attrs[..i].iter().all(|(o, _)| o != k))
        && e.children.iter().all(ordinary)
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 64,
        max_elements: 50_000,
    };
    if let Ok(root) = parse_with(data, limits)
        && ordinary(&root)
    {
        let again = to_xml(&root);
        let back = parse_with(again.as_bytes(), limits).expect("what was written reads back");
        assert_eq!(back.name, root.name);
        assert_eq!(back.ns, root.ns);
        assert_eq!(back.children.len(), root.children.len());
    }
});
