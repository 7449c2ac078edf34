//! SEARCH keys, evaluated against one message (RFC 9051 §6.4.4). Keys on flags,
//! sizes, dates and numbers need only the message's row; keys on headers and text
//! need its bytes, which the caller reads only when [`needs_body`] says so.
//!
//! Text matching is case-insensitive substring matching over the raw bytes
//! (ASCII case folding), as most servers do for US-ASCII and UTF-8 searches.

use chrono::NaiveDate;
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::SequenceSet;

use super::selected::contains;
use crate::store::imap::MessageRow;

/// One message as a search sees it.
pub struct Candidate<'a> {
    pub row: &'a MessageRow,
    /// Its sequence number.
    pub seq: u32,
    /// The mailbox's largest sequence number and UID (what `*` stands for).
    pub last_seq: u32,
    pub last_uid: u32,
    /// Its bytes, when a key needs them.
    pub body: Option<&'a [u8]>,
}

/// Whether any of `keys` needs the message's bytes.
pub fn needs_body(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        SearchKey::And(keys) => needs_body(keys.as_ref()),
        SearchKey::Not(k) => needs_body(std::slice::from_ref(k)),
        SearchKey::Or(a, b) => {
            needs_body(std::slice::from_ref(a)) || needs_body(std::slice::from_ref(b))
        }
        _ => false,
    })
}

/// Whether the message matches every key.
pub fn matches_all(keys: &[SearchKey<'_>], m: &Candidate<'_>) -> bool {
    keys.iter().all(|k| matches(k, m))
}

fn has(m: &Candidate<'_>, flag: &str) -> bool {
    m.row.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn date(m: &Candidate<'_>) -> Option<NaiveDate> {
    m.row.internal_date.map(|d| d.date_naive())
}

fn in_set(set: &SequenceSet, value: u32, largest: u32) -> bool {
    contains(set, value, largest)
}

fn matches(key: &SearchKey<'_>, m: &Candidate<'_>) -> bool {
    match key {
        SearchKey::All => true,
        SearchKey::And(keys) => matches_all(keys.as_ref(), m),
        SearchKey::Or(a, b) => matches(a, m) || matches(b, m),
        SearchKey::Not(k) => !matches(k, m),
        SearchKey::SequenceSet(set) => in_set(set, m.seq, m.last_seq),
        SearchKey::Uid(set) => in_set(set, m.row.uid, m.last_uid),
        SearchKey::Answered => has(m, "\\Answered"),
        SearchKey::Deleted => has(m, "\\Deleted"),
        SearchKey::Draft => has(m, "\\Draft"),
        SearchKey::Flagged => has(m, "\\Flagged"),
        SearchKey::Seen => has(m, "\\Seen"),
        SearchKey::Unanswered => !has(m, "\\Answered"),
        SearchKey::Undeleted => !has(m, "\\Deleted"),
        SearchKey::Undraft => !has(m, "\\Draft"),
        SearchKey::Unflagged => !has(m, "\\Flagged"),
        SearchKey::Unseen => !has(m, "\\Seen"),
        SearchKey::Keyword(k) => has(m, k.as_ref()),
        SearchKey::Unkeyword(k) => !has(m, k.as_ref()),
        // No session sees a message as \Recent (RFC 9051 dropped it).
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Old => true,
        SearchKey::Larger(n) => m.row.size > *n,
        SearchKey::Smaller(n) => m.row.size < *n,
        SearchKey::Before(d) => date(m).is_some_and(|x| x < *d.as_ref()),
        SearchKey::On(d) => date(m) == Some(*d.as_ref()),
        SearchKey::Since(d) => date(m).is_some_and(|x| x >= *d.as_ref()),
        SearchKey::SentBefore(d) => sent(m).is_some_and(|x| x < *d.as_ref()),
        SearchKey::SentOn(d) => sent(m) == Some(*d.as_ref()),
        SearchKey::SentSince(d) => sent(m).is_some_and(|x| x >= *d.as_ref()),
        SearchKey::Bcc(s) => header_has(m, "bcc", s.as_ref()),
        SearchKey::Cc(s) => header_has(m, "cc", s.as_ref()),
        SearchKey::From(s) => header_has(m, "from", s.as_ref()),
        SearchKey::To(s) => header_has(m, "to", s.as_ref()),
        SearchKey::Subject(s) => header_has(m, "subject", s.as_ref()),
        SearchKey::Header(name, value) => {
            header_has(m, &String::from_utf8_lossy(name.as_ref()), value.as_ref())
        }
        SearchKey::Body(s) => m
            .body
            .is_some_and(|b| find(super::fetch::split(b).1, s.as_ref())),
        SearchKey::Text(s) => m.body.is_some_and(|b| find(b, s.as_ref())),
        SearchKey::ModSequence { modseq, .. } => m.row.modseq as u64 >= *modseq,
        // Keys this server does not know match nothing rather than everything.
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Case-insensitive (ASCII) substring search; an empty needle matches.
fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether header `name` (any occurrence, unfolded) contains `value`; an empty
/// value matches any message that has the header.
fn header_has(m: &Candidate<'_>, name: &str, value: &[u8]) -> bool {
    let Some(body) = m.body else { return false };
    super::fetch::header_values(super::fetch::split(body).0, name)
        .iter()
        .any(|v| find(v, value))
}

/// The date of the Date: header.
fn sent(m: &Candidate<'_>) -> Option<NaiveDate> {
    let body = m.body?;
    let values = super::fetch::header_values(super::fetch::split(body).0, "date");
    let raw = String::from_utf8_lossy(values.first()?).trim().to_string();
    chrono::DateTime::parse_from_rfc2822(&raw)
        .ok()
        .map(|d| d.date_naive())
}
