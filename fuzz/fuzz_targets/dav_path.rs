//! Request paths and hrefs: the checks before any lookup, what a path names, and
//! item names in hrefs. Never a panic; a path that passes the checks names only
//! bounded, control-free segments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_davproto::path::{MAX_NAME, Target, check, item_name_in};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let checked = check(&s);
    let target = Target::parse(&s);
    if checked.is_ok()
        && let Some(Target::Collection(_, login, name) | Target::Item(_, login, name, _)) = &target
    {
        assert!(name.len() <= MAX_NAME * 4);
        assert!(!login.contains('\0') && !name.contains('\0'));
    }
    let mid = s
        .char_indices()
        .nth(s.chars().count() / 2)
        .map_or(s.len(), |(i, _)| i);
    let (a, b) = s.split_at(mid);
    let _ = item_name_in(a, b);
});
