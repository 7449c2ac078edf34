//! Between imap-types' values and ours: mailbox names, UID sets, flags, dates,
//! capabilities and status texts.

use imap_next::imap_types::ToStatic;
use imap_next::imap_types::datetime::DateTime;
use imap_next::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_next::imap_types::fetch::MessageDataItem;
use imap_next::imap_types::flag::{Flag as WireFlag, FlagFetch};
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::{Code, Data, Status, StatusBody};
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use postern_core::mail::Flags;

use super::client::{ImapError, MessageMeta};
use postern_imap::utf7;

pub(super) fn status_text(status: &Status<'_>) -> String {
    match status {
        Status::Untagged(b) => b.text.to_string(),
        Status::Tagged(t) => t.body.text.to_string(),
        Status::Bye(b) => b.text.to_string(),
    }
}

pub(super) fn capabilities_of(status: &StatusBody<'_>) -> Option<Vec<String>> {
    match &status.code {
        Some(Code::Capability(caps)) => Some(
            caps.as_ref()
                .iter()
                .map(|c| c.to_string().to_ascii_uppercase())
                .collect(),
        ),
        _ => None,
    }
}

pub(super) fn capabilities_in_data(d: &Data<'_>) -> Option<Vec<String>> {
    match d {
        Data::Capability(caps) => Some(
            caps.as_ref()
                .iter()
                .map(|c| c.to_string().to_ascii_uppercase())
                .collect(),
        ),
        _ => None,
    }
}

/// A mailbox name as the server wants it (modified UTF-7).
pub(super) fn mailbox_of(name: &str) -> Result<Mailbox<'static>, ImapError> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok(Mailbox::Inbox);
    }
    Mailbox::try_from(utf7::encode(name))
        .map_err(|e| ImapError::Config(format!("mailbox {name:?}: {e}")))
}

/// The raw name the server sent.
pub(super) fn mailbox_raw(m: &Mailbox<'_>) -> String {
    match m {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

pub(super) fn set_of(s: &str) -> Result<SequenceSet, ImapError> {
    SequenceSet::try_from(s).map_err(|e| ImapError::Malformed(format!("UID set {s:?}: {e}")))
}

/// Every UID of a set (ranges expanded; `*` has no meaning in a set a server sends).
pub fn uids_of(set: &SequenceSet) -> Vec<u32> {
    let mut out = Vec::new();
    for s in set.0.as_ref() {
        match s {
            Sequence::Single(SeqOrUid::Value(v)) => out.push(v.get()),
            Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Value(b)) => {
                let (lo, hi) = (a.get().min(b.get()), a.get().max(b.get()));
                out.extend(lo..=hi);
            }
            _ => {}
        }
    }
    out
}

pub(super) fn first_uid(set: &UidSet) -> Option<u32> {
    set.0.as_ref().first().map(|e| match e {
        UidElement::Single(u) => u.get(),
        UidElement::Range(a, b) => a.get().min(b.get()),
    })
}

pub(super) fn meta_of(items: &[MessageDataItem<'_>]) -> Option<MessageMeta> {
    let mut uid = None;
    let mut flags = Flags::default();
    let mut modseq = 0;
    for item in items {
        match item {
            MessageDataItem::Uid(u) => uid = Some(u.get()),
            MessageDataItem::Flags(f) => {
                let names: Vec<String> = f
                    .iter()
                    .filter_map(|x| match x {
                        FlagFetch::Flag(flag) => Some(flag.to_string()),
                        FlagFetch::Recent => None,
                    })
                    .collect();
                flags = Flags::parse(names.iter().map(String::as_str));
            }
            MessageDataItem::ModSeq(m) => modseq = m.get(),
            _ => {}
        }
    }
    Some(MessageMeta {
        uid: uid?,
        flags,
        modseq,
    })
}

pub(super) fn wire_flags(flags: &Flags) -> Result<Vec<WireFlag<'static>>, ImapError> {
    flags
        .iter()
        .map(|f| {
            WireFlag::try_from(f.as_str())
                .map(|w| w.to_static())
                .map_err(|e| ImapError::Malformed(format!("flag {f}: {e}")))
        })
        .collect()
}

/// An RFC 3501 date-time ("17-Jul-1996 02:44:25 -0700").
pub(super) fn date_text(d: &DateTime) -> String {
    d.as_ref().format("%d-%b-%Y %H:%M:%S %z").to_string()
}

pub(super) fn parse_date(s: &str) -> Option<DateTime> {
    chrono::DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .and_then(|d| DateTime::try_from(d).ok())
}
