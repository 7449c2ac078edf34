//! Mailbox names in modified UTF-7 (RFC 3501 §5.1.3), as servers without UTF8=ACCEPT
//! send and expect them: printable ASCII stands for itself (`&` as `&-`), anything
//! else is UTF-16 in a modified base64 (`,` for `/`, no padding) between `&` and `-`.
//! "Entwürfe" is `Entw&APw-rfe`.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

fn engine() -> GeneralPurpose {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .expect("a valid alphabet");
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// A name as the server writes it.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// A name the server wrote; `None` if it is not valid modified UTF-7 (then the caller
/// keeps the raw name: a server with UTF8=ACCEPT sends UTF-8 as is).
pub fn decode(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('-')?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = engine().decode(chunk).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    /// The expected forms are Python's UTF-7 codec's, with `&` for `+`.
    fn names_round_trip() {
        for (name, wire) in [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Sent Items", "Sent Items"),
            ("R&D", "R&-D"),
            ("日本語", "&ZeVnLIqe-"),
            ("Zoë's 📬", "Zo&AOs-'s &2D3c7A-"),
        ] {
            assert_eq!(encode(name), wire, "{name}");
            assert_eq!(decode(wire).as_deref(), Some(name), "{wire}");
        }
        assert_eq!(decode("&ZeVnLIqe"), None, "unterminated");
        assert_eq!(decode("&A-"), None, "odd bytes");
    }
}
