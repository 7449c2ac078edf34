//! What PUT checks an uploaded calendar object or vCard with: never a panic, and an
//! accepted object always has a UID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_davproto::object::validate;
use postern_davproto::path::Kind;

fuzz_target!(|data: &[u8]| {
    for kind in [Kind::Calendars, Kind::AddressBooks] {
        if let Ok(uid) = validate(kind, None, data) {
            assert!(!uid.is_empty());
        }
    }
});
