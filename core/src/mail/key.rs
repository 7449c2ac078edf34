//! What identifies a message's content: (Message-ID, size, SHA-256).
//!
//! Message-ID alone is not an identity: mailing lists and Exchange make copies with the
//! same Message-ID and other bytes. UIDs are not one either: UIDVALIDITY values repeat
//! and some servers renumber. So a message is known by its bytes: the hash and size,
//! with the Message-ID (read from the header only, never by scanning the body) to find
//! candidates quickly on a server (`UID SEARCH HEADER Message-ID`).

use sha2::{Digest, Sha256};

/// A [`MessageKey`] computed over a message's parts, in order: the same key as
/// [`MessageKey::of`] the whole, without ever holding the whole.
#[derive(Debug, Clone)]
pub struct KeyHasher {
    sha: Sha256,
    size: u64,
    /// The first bytes, where the Message-ID is looked for.
    head: Vec<u8>,
}

impl KeyHasher {
    /// The next part of the message.
    pub fn update(&mut self, part: &[u8]) {
        self.sha.update(part);
        self.size += part.len() as u64;
        let room = HEADER_SCAN.saturating_sub(self.head.len());
        self.head.extend_from_slice(&part[..room.min(part.len())]);
    }

    /// The key of every part given.
    pub fn finish(self) -> MessageKey {
        MessageKey {
            message_id: message_id(&self.head),
            size: self.size,
            sha256: self.sha.finalize().into(),
        }
    }
}

/// Most header bytes read looking for a Message-ID; headers longer than this are rare
/// and a missing Message-ID only makes finding candidates slower.
const HEADER_SCAN: usize = 256 * 1024;

/// A message's content key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey {
    /// The Message-ID header's value (`<...>`), if the message has one.
    pub message_id: Option<String>,
    /// Size in bytes (RFC822.SIZE).
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
}

impl MessageKey {
    /// The key of `bytes`.
    pub fn of(bytes: &[u8]) -> MessageKey {
        MessageKey {
            message_id: message_id(bytes),
            size: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }

    /// A key computed a part at a time, for a message read by range.
    pub fn hasher() -> KeyHasher {
        KeyHasher {
            sha: Sha256::new(),
            size: 0,
            head: Vec::new(),
        }
    }

    /// The hash as lower-case hex (as stored).
    pub fn hash_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// The Message-ID of a message, from its header section: the first `<...>` of the
/// first `Message-ID` field (unfolded), or the field's trimmed value when it has no
/// angle brackets. `None` when there is no such field or it is empty.
pub fn message_id(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(HEADER_SCAN)];
    let mut field: Option<Vec<u8>> = None;
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if let Some(value) = field.as_mut() {
            if folded {
                value.extend_from_slice(line);
                continue;
            }
            break;
        }
        if line.is_empty() {
            return None;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':')
            && line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"message-id")
        {
            field = Some(line[colon + 1..].to_vec());
        }
    }
    let value = String::from_utf8_lossy(&field?).trim().to_string();
    let id = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a..=b].to_string(),
        _ => value,
    };
    (!id.is_empty() && id != "<>").then_some(id)
}

/// Which of `candidates` (UIDs a server found, each with its key) holds exactly
/// `wanted`: the same size and hash. A candidate with the same Message-ID and other
/// bytes is another message.
pub fn find_copy<T: Copy>(candidates: &[(T, MessageKey)], wanted: &MessageKey) -> Option<T> {
    candidates
        .iter()
        .find(|(_, k)| k.size == wanted.size && k.sha256 == wanted.sha256)
        .map(|(t, _)| *t)
}
