//! `Authorization: Basic` headers and logins: never a panic, and a login that
//! splits names a bounded, control-free user and tenant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_davproto::credentials::{MAX_LOGIN, parse_basic, split_login};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some((login, _password)) = parse_basic(&s) {
        if let Some((user, tenant)) = split_login(&login) {
            assert!(user.len() + tenant.len() < MAX_LOGIN);
            assert!(!user.chars().chain(tenant.chars()).any(char::is_control));
        }
    }
    let _ = split_login(&s);
});
