//! Reading messages: flags and MODSEQ (the listing and the changes), sizes, and whole
//! messages. A FETCH answer without the body asked for is an error, never an empty
//! message.

use std::num::{NonZeroU32, NonZeroU64};

use imap_next::imap_types::command::{CommandBody, FetchModifier};
use imap_next::imap_types::core::Vec1;
use imap_next::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_next::imap_types::response::Data;
use imap_next::imap_types::search::SearchKey;

use super::super::wire::{date_text, meta_of, set_of};
use super::{ImapClient, ImapError, Message, MessageMeta};

impl ImapClient {
    /// UID, FLAGS and MODSEQ of the messages in `uids` (`"1:*"` for all), only those
    /// changed since `changed_since` when given.
    pub async fn fetch_meta(
        &mut self,
        uids: &str,
        changed_since: Option<u64>,
    ) -> Result<Vec<MessageMeta>, ImapError> {
        let mut names = vec![MessageDataItemName::Uid, MessageDataItemName::Flags];
        if self.has("CONDSTORE") || self.has("QRESYNC") {
            names.push(MessageDataItemName::ModSeq);
        }
        let modifiers = changed_since
            .and_then(NonZeroU64::new)
            .map(|m| vec![FetchModifier::ChangedSince(m)])
            .unwrap_or_default();
        let answer = self.uid_fetch(uids, names, modifiers).await?;
        Ok(answer
            .data
            .iter()
            .filter_map(|d| match d {
                Data::Fetch { items, .. } => meta_of(items.as_ref()),
                _ => None,
            })
            .collect())
    }

    /// `UID FETCH set (names) (modifiers)`.
    async fn uid_fetch(
        &mut self,
        set: &str,
        names: Vec<MessageDataItemName<'static>>,
        modifiers: Vec<FetchModifier>,
    ) -> Result<super::Answer, ImapError> {
        self.run(
            "UID FETCH",
            CommandBody::Fetch {
                sequence_set: set_of(set)?,
                macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
                uid: true,
                modifiers,
            },
        )
        .await
    }

    /// Every UID of the selected mailbox (`UID SEARCH ALL`: one line, a few bytes per
    /// message), ascending.
    pub async fn uids(&mut self) -> Result<Vec<u32>, ImapError> {
        let answer = self
            .run(
                "UID SEARCH",
                CommandBody::Search {
                    charset: None,
                    criteria: Vec1::from(SearchKey::All),
                    uid: true,
                },
            )
            .await?;
        let mut out: Vec<u32> = answer
            .data
            .iter()
            .filter_map(|d| match d {
                Data::Search(uids, ..) => Some(uids.iter().map(|u| u.get())),
                _ => None,
            })
            .flatten()
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Each message's UID and RFC822.SIZE (how many bytes fetching it would bring).
    pub async fn fetch_sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let names = vec![MessageDataItemName::Uid, MessageDataItemName::Rfc822Size];
        let answer = self.uid_fetch(&uid_set(uids), names, Vec::new()).await?;
        Ok(answer
            .data
            .iter()
            .filter_map(|d| match d {
                Data::Fetch { items, .. } => {
                    let mut uid = None;
                    let mut size = None;
                    for i in items.as_ref() {
                        match i {
                            MessageDataItem::Uid(u) => uid = Some(u.get()),
                            MessageDataItem::Rfc822Size(n) => size = Some(*n),
                            _ => {}
                        }
                    }
                    Some((uid?, size?))
                }
                _ => None,
            })
            .collect())
    }

    /// Whole messages: UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE and the bytes
    /// (`BODY.PEEK[]`, so `\Seen` is not set by reading).
    pub async fn fetch_messages(&mut self, uids: &[u32]) -> Result<Vec<Message>, ImapError> {
        self.fetch_bodies(uids, None).await
    }

    /// `len` bytes of message `uid` from `offset` (`BODY.PEEK[]<offset.len>`), with
    /// its metadata and whole size: a large message is read a part at a time, never
    /// held whole. `None`: the mailbox no longer has it.
    pub async fn fetch_range(
        &mut self,
        uid: u32,
        offset: u32,
        len: u32,
    ) -> Result<Option<Message>, ImapError> {
        let len = NonZeroU32::new(len)
            .ok_or_else(|| ImapError::Malformed("a range of no bytes".into()))?;
        Ok(self
            .fetch_bodies(&[uid], Some((offset, len)))
            .await?
            .into_iter()
            .find(|m| m.meta.uid == uid))
    }

    async fn fetch_bodies(
        &mut self,
        uids: &[u32],
        partial: Option<(u32, NonZeroU32)>,
    ) -> Result<Vec<Message>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let mut names = vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
            MessageDataItemName::BodyExt {
                section: None,
                partial,
                peek: true,
            },
        ];
        if self.has("CONDSTORE") || self.has("QRESYNC") {
            names.push(MessageDataItemName::ModSeq);
        }
        let answer = self.uid_fetch(&uid_set(uids), names, Vec::new()).await?;
        let mut out = Vec::new();
        // The answer is taken apart, so each body is moved out of it, not copied.
        for d in answer.data {
            let Data::Fetch { items, .. } = d else {
                continue;
            };
            let Some(meta) = meta_of(items.as_ref()) else {
                continue;
            };
            let mut m = Message {
                meta,
                internal_date: None,
                size: 0,
                body: Vec::new(),
            };
            let mut has_body = false;
            for item in items.into_inner() {
                match item {
                    MessageDataItem::InternalDate(d) => m.internal_date = Some(date_text(&d)),
                    MessageDataItem::Rfc822Size(n) => m.size = n,
                    MessageDataItem::BodyExt {
                        section: None,
                        data,
                        ..
                    } => {
                        has_body = true;
                        m.body = data
                            .into_option()
                            .map(|b| b.into_owned())
                            .unwrap_or_default();
                    }
                    _ => {}
                }
            }
            if !has_body {
                // An answer without the body asked for is never taken as an empty
                // message.
                return Err(ImapError::Malformed(format!(
                    "UID {} came without its body",
                    m.meta.uid
                )));
            }
            out.push(m);
        }
        Ok(out)
    }
}

/// UIDs as an IMAP set, runs of consecutive UIDs as ranges (`3,7:9`): a mailbox's
/// UIDs are mostly consecutive, so the command stays short however many it names.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn runs_of_uids_become_ranges() {
        assert_eq!(uid_set(&[9, 3, 7, 8, 8]), "3,7:9");
        assert_eq!(uid_set(&[1]), "1");
        assert_eq!(uid_set(&(1..=10_000).collect::<Vec<_>>()), "1:10000");
        assert_eq!(uid_set(&[]), "");
    }
}
