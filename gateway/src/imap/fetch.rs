//! Message data for FETCH: the sections of a message's bytes (the whole, its header,
//! chosen header fields, its text) and partial ranges of them, cut from the stored
//! message without changing a byte.
//!
//! The header is everything up to and including the first empty line (RFC 5322);
//! a message without one is all header.

use imap_next::imap_types::core::AString;
use imap_next::imap_types::fetch::Section;

/// A message split into its header (with the empty line that ends it) and its text.
/// A message that starts with an empty line has an empty header.
pub fn split(message: &[u8]) -> (&[u8], &[u8]) {
    for blank in [b"\r\n".as_ref(), b"\n".as_ref()] {
        if message.starts_with(blank) {
            return message.split_at(blank.len());
        }
    }
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(message.len());
    message.split_at(end)
}

/// The header's fields, each with its continuation lines: (name, whole field).
fn fields(header: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out: Vec<(&[u8], &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let line_end = header[i..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let next_continues = header
            .get(line_end)
            .is_some_and(|b| *b == b' ' || *b == b'\t');
        if !next_continues {
            let field = &header[start..line_end];
            if let Some(colon) = field.iter().position(|b| *b == b':') {
                out.push((&field[..colon], field));
            }
            start = line_end;
        }
        i = line_end;
    }
    out
}

/// The unfolded values of header `name` (case-insensitive), in order.
pub fn header_values(header: &[u8], name: &str) -> Vec<Vec<u8>> {
    fields(header)
        .into_iter()
        .filter(|(n, _)| n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        .map(|(n, field)| {
            field[n.len() + 1..]
                .iter()
                .copied()
                .filter(|b| *b != b'\r' && *b != b'\n')
                .collect()
        })
        .collect()
}

/// The fields of `header` named (or, with `not`, not named) in `names`, as they
/// are, followed by the empty line.
fn header_fields(header: &[u8], names: &[AString<'_>], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, field) in fields(header) {
        let listed = names
            .iter()
            .any(|n| name.trim_ascii().eq_ignore_ascii_case(n.as_ref()));
        if listed != not {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Why a section cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsupported(pub &'static str);

/// The bytes of `section` of `message` (`None`: the whole message). A part that
/// does not exist is empty, as most servers answer; HEADER and TEXT of a part are
/// those of the message a message/rfc822 part holds.
pub fn section(message: &[u8], section: &Option<Section<'_>>) -> Result<Vec<u8>, Unsupported> {
    use super::mime::entity;
    let within = |part: &Option<imap_next::imap_types::fetch::Part>| -> Option<&[u8]> {
        match part {
            None => Some(message),
            Some(p) => entity(message, p.0.as_ref()).map(|e| e.body),
        }
    };
    let bytes = match section {
        None => message.to_vec(),
        Some(Section::Part(p)) => entity(message, p.0.as_ref())
            .map(|e| e.body.to_vec())
            .unwrap_or_default(),
        Some(Section::Mime(p)) => entity(message, p.0.as_ref())
            .map(|e| e.header.to_vec())
            .unwrap_or_default(),
        Some(Section::Header(p)) => within(p).map(|m| split(m).0.to_vec()).unwrap_or_default(),
        Some(Section::Text(p)) => within(p).map(|m| split(m).1.to_vec()).unwrap_or_default(),
        Some(Section::HeaderFields(p, names)) => within(p)
            .map(|m| header_fields(split(m).0, names.as_ref(), false))
            .unwrap_or_default(),
        Some(Section::HeaderFieldsNot(p, names)) => within(p)
            .map(|m| header_fields(split(m).0, names.as_ref(), true))
            .unwrap_or_default(),
    };
    Ok(bytes)
}

/// `bytes` cut to `<origin.length>` (empty past the end).
pub fn partial(bytes: Vec<u8>, origin: u32, length: u32) -> Vec<u8> {
    let start = (origin as usize).min(bytes.len());
    let end = start.saturating_add(length as usize).min(bytes.len());
    bytes[start..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Bob <bob@corp.example>\r\nSubject: a long\r\n subject\r\nTo: alice@corp.example\r\n\r\nHello\r\n";

    #[test]
    fn header_and_text_split_at_the_empty_line() {
        let (h, t) = split(MAIL);
        assert!(h.ends_with(b"\r\n\r\n"));
        assert_eq!(t, b"Hello\r\n");
        assert_eq!([h, t].concat(), MAIL);
        assert_eq!(
            split(b"Subject: x\r\n"),
            (b"Subject: x\r\n".as_ref(), b"".as_ref())
        );
    }

    #[test]
    fn header_fields_keep_their_folding() {
        let names = [AString::try_from("subject").unwrap()];
        assert_eq!(
            header_fields(split(MAIL).0, &names, false),
            b"Subject: a long\r\n subject\r\n\r\n"
        );
        let without = header_fields(split(MAIL).0, &names, true);
        assert_eq!(
            without,
            b"From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\n\r\n"
        );
        assert_eq!(
            header_values(split(MAIL).0, "SUBJECT"),
            vec![b" a long subject".to_vec()]
        );
    }

    #[test]
    fn partial_ranges_are_clamped() {
        assert_eq!(partial(b"abcdef".to_vec(), 2, 3), b"cde");
        assert_eq!(partial(b"abcdef".to_vec(), 4, 10), b"ef");
        assert_eq!(partial(b"abcdef".to_vec(), 9, 10), b"");
    }
}
