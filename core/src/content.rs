//! Facts read from an item's bytes. The bytes themselves are never rewritten: the
//! gateway stores and serves exactly what their author wrote (time zones and
//! recurrence rules survive untouched). These helpers only look.

/// Unfolds RFC 5545 / RFC 6350 content lines (a line starting with a space or tab
/// continues the previous one) and yields them without line endings.
pub fn unfolded_lines(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix([' ', '\t'])
            && let Some(last) = lines.last_mut()
        {
            last.push_str(rest);
            continue;
        }
        lines.push(raw.to_string());
    }
    lines
}

/// Calendar or address data as RFC 5545 and RFC 6350 require it on the wire: every
/// line ended by CRLF. An XML reader turns line ends into LF (XML 1.0 §2.11), so data
/// a server sent inside a multistatus (escaped or in CDATA) arrives with bare LFs
/// unless it escaped its CRs; this restores them. CRLFs already there are kept.
pub fn with_crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 32);
    let mut previous = 0u8;
    for &b in text.as_bytes() {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// The value of the first property called `name` (case-insensitive, parameters
/// ignored), e.g. `UID` or `LAST-MODIFIED`.
pub fn property(content: &[u8], name: &str) -> Option<String> {
    unfolded_lines(content).into_iter().find_map(|line| {
        let (head, value) = line.split_once(':')?;
        let prop = head.split(';').next()?;
        prop.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// The item's UID (iCalendar and vCard) or Message-ID (mail), if it has one.
pub fn uid(content: &[u8]) -> Option<String> {
    property(content, "UID")
        .or_else(|| property(content, "Message-ID"))
        .filter(|u| !u.is_empty())
}

/// When the item says it was last modified, in Unix milliseconds: `LAST-MODIFIED`,
/// then `REV` (vCard), then `DTSTAMP`. `None` when it says nothing usable.
pub fn modified_at_ms(content: &[u8]) -> Option<i64> {
    ["LAST-MODIFIED", "REV", "DTSTAMP"]
        .iter()
        .find_map(|name| property(content, name).and_then(|v| parse_utc_timestamp(&v)))
}

/// Parses `YYYYMMDDTHHMMSSZ` (or the extended `YYYY-MM-DDTHH:MM:SSZ` vCard form) into
/// Unix milliseconds. Local times (no `Z`) are read as UTC: only an ordering is needed.
pub fn parse_utc_timestamp(v: &str) -> Option<i64> {
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 14 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits[r].parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + s * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// True when two copies say the same thing, even if a server re-serialised one of them
/// (reordered lines, refolded, changed line endings, stamped a new PRODID or DTSTAMP,
/// stored a vCard 4.0 as 3.0). Calendar objects and vCards are compared by structure
/// ([`crate::structure`]); what calcard cannot read is compared line by line, in any
/// order, without the properties that only say when or by what it was written. Used
/// to recognise an echo of our own write instead of reporting a conflict.
pub fn same_content(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (crate::structure::shape(a), crate::structure::shape(b)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => canonical(a) == canonical(b),
        _ => false,
    }
}

fn canonical(content: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = unfolded_lines(content)
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let name = l.split([';', ':']).next().unwrap_or("");
            !crate::structure::VOLATILE
                .iter()
                .any(|v| v.eq_ignore_ascii_case(name))
        })
        .map(|l| match l.split_once(':') {
            Some((head, value)) => {
                let mut params: Vec<String> =
                    head.split(';').map(str::to_ascii_uppercase).collect();
                params[1..].sort();
                let value = if matches!(params[0].as_str(), "RRULE" | "EXRULE") {
                    // Servers reorder recurrence rule parts (Xandikos, calcard).
                    let mut parts: Vec<String> =
                        value.split(';').map(str::to_ascii_uppercase).collect();
                    parts.sort();
                    parts.join(";")
                } else {
                    value.to_string()
                };
                format!("{}:{}", params.join(";"), value)
            }
            None => l,
        })
        .collect();
    lines.sort();
    lines
}

/// A file name for an item the gateway creates on the back end: derived from its UID
/// so that a retried create lands on the same href (no duplicates after a crash).
pub fn name_for_uid(uid: &str, extension: &str) -> String {
    let mut name = String::with_capacity(uid.len() + 4);
    for b in uid.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@') {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.is_empty() || name.len() > 200 {
        name = format!("{:x}", sha256_prefix(uid.as_bytes()));
    }
    format!("{name}.{extension}")
}

fn sha256_prefix(data: &[u8]) -> u128 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data);
    u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]))
}

/// A strong entity tag for bytes the gateway serves: a hash of the exact bytes.
pub fn etag_of(content: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("\"{}\"", hex::encode(&Sha256::digest(content)[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = b"BEGIN:VCALENDAR\r\nPRODID:-//A//B\r\nBEGIN:VEVENT\r\nUID:abc-1\r\nDTSTAMP:20250101T000000Z\r\nLAST-MODIFIED:20250102T030405Z\r\nSUMMARY:Long\r\n  summary\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn reads_uid_and_unfolds() {
        assert_eq!(uid(EVENT).as_deref(), Some("abc-1"));
        assert_eq!(property(EVENT, "summary").as_deref(), Some("Long summary"));
    }

    #[test]
    fn reads_modification_time() {
        assert_eq!(parse_utc_timestamp("19700101T000001Z"), Some(1000));
        assert_eq!(
            parse_utc_timestamp("2025-01-02T03:04:05Z"),
            parse_utc_timestamp("20250102T030405Z")
        );
        assert_eq!(
            modified_at_ms(EVENT),
            parse_utc_timestamp("20250102T030405Z")
        );
        assert_eq!(parse_utc_timestamp("garbage"), None);
        assert_eq!(parse_utc_timestamp("20251340T000000Z"), None);
    }

    #[test]
    fn same_content_ignores_reserialisation_but_not_meaning() {
        let rewritten = b"BEGIN:VCALENDAR\nPRODID:-//Radicale//X\nBEGIN:VEVENT\nSUMMARY:Long summary\nUID:abc-1\nDTSTAMP:20260101T000000Z\nLAST-MODIFIED:20250102T030405Z\nEND:VEVENT\nEND:VCALENDAR\n";
        assert!(same_content(EVENT, rewritten));
        let a = b"BEGIN:VEVENT\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:VEVENT\r\n";
        let b = b"BEGIN:VEVENT\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nEND:VEVENT\r\n";
        let c = b"BEGIN:VEVENT\r\nRRULE:FREQ=YEARLY;BYDAY=3SU;BYMONTH=3\r\nEND:VEVENT\r\n";
        assert!(
            same_content(a, b),
            "rule parts in another order mean the same"
        );
        assert!(!same_content(a, c));
        let edited = String::from_utf8_lossy(EVENT).replace("Long", "Short");
        assert!(!same_content(EVENT, edited.as_bytes()));
    }

    #[test]
    fn line_ends_become_crlf_once() {
        assert_eq!(with_crlf("A\nB\r\nC\n"), b"A\r\nB\r\nC\r\n");
        assert_eq!(with_crlf("A\r\n"), b"A\r\n");
        assert_eq!(with_crlf(""), b"");
    }

    #[test]
    fn names_are_stable_and_safe() {
        assert_eq!(name_for_uid("abc-1", "ics"), "abc-1.ics");
        assert_eq!(name_for_uid("a/b c", "vcf"), "a%2Fb%20c.vcf");
        assert_eq!(name_for_uid("a/b c", "vcf"), name_for_uid("a/b c", "vcf"));
        assert!(!name_for_uid("", "ics").starts_with('.'));
    }

    #[test]
    fn etag_depends_on_every_byte() {
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        assert!(etag_of(b"a").starts_with('"'));
    }
}
