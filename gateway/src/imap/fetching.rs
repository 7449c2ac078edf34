//! FETCH: the data items of the messages a set names, read from the store (only
//! when an item needs the bytes; a range of the whole message alone reads only the
//! range), with \Seen set by a non-PEEK body fetch in a read-write mailbox.

use imap_next::imap_types::core::{Literal, NString, Vec1};
use imap_next::imap_types::datetime::DateTime;
use imap_next::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_next::imap_types::response::Data;
use imap_next::imap_types::sequence::SequenceSet;
use imap_next::server::{Event, ResponseHandle, Server};
use postern_imap::io::Connection;
use uuid::Uuid;

use std::collections::HashMap;
use std::sync::Arc;

use super::fetch;
use super::selected::{Selected, flags_item, nz, nz64};
use super::structure::{self, Structure};
use crate::store::Store;
use crate::store::imap::MessageRow;

/// The item names a FETCH asks for, macros expanded.
fn item_names(m: MacroOrMessageDataItemNames<'static>) -> Vec<MessageDataItemName<'static>> {
    match m {
        MacroOrMessageDataItemNames::Macro(Macro::Fast) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ],
        MacroOrMessageDataItemNames::Macro(Macro::All) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
            MessageDataItemName::Envelope,
        ],
        MacroOrMessageDataItemNames::Macro(Macro::Full) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
            MessageDataItemName::Envelope,
            MessageDataItemName::Body,
        ],
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        MacroOrMessageDataItemNames::Macro(_) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ],
    }
}

fn nstring(bytes: Vec<u8>) -> NString<'static> {
    // A body with a NUL byte cannot be a literal; such a message is served as it is
    // stored anyway (clients read the bytes they asked for).
    let literal = Literal::try_from(bytes.clone()).unwrap_or_else(|_| Literal::unvalidated(bytes));
    NString(Some(literal.into()))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_messages(
    (store, cache): (&Store, &structure::Cache),
    tenant: Uuid,
    sel: &mut Selected,
    (server, io, limit): (&mut Server, &mut Connection, usize),
    set: &SequenceSet,
    uid: bool,
    names: MacroOrMessageDataItemNames<'static>,
    changed_since: Option<u64>,
    condstore: bool,
) -> std::result::Result<(), String> {
    let mut names = item_names(names);
    if uid && !names.contains(&MessageDataItemName::Uid) {
        names.insert(0, MessageDataItemName::Uid);
    }
    if (changed_since.is_some() || condstore)
        && !names.contains(&MessageDataItemName::ModSeq)
        && changed_since.is_some()
    {
        names.push(MessageDataItemName::ModSeq);
    }
    if let Some(n) = names.iter().find(|n| {
        matches!(
            n,
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
        )
    }) {
        return Err(format!("{n:?} is not served (BINARY is not offered)"));
    }
    let sets_seen = |n: &MessageDataItemName<'_>| {
        matches!(
            n,
            MessageDataItemName::BodyExt { peek: false, .. }
                | MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Text
        )
    };
    let mark_seen = !sel.read_only && names.iter().any(sets_seen);
    // A partial fetch of the whole message (`BODY[]<o.n>`, how clients read large
    // messages in pieces) reads only that range from the store.
    let ranged = |n: &MessageDataItemName<'_>| {
        matches!(
            n,
            MessageDataItemName::BodyExt {
                section: None,
                partial: Some(_),
                ..
            }
        )
    };
    let needs_bytes = names.iter().filter(|n| !ranged(n)).any(|n| {
        matches!(
            n,
            MessageDataItemName::BodyExt { .. }
                | MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Header
                | MessageDataItemName::Rfc822Text
        )
    });
    let needs_structure = names.iter().any(|n| {
        matches!(
            n,
            MessageDataItemName::Envelope
                | MessageDataItemName::Body
                | MessageDataItemName::BodyStructure
        )
    });
    let picked: Vec<usize> = sel
        .pick(set, uid)
        .into_iter()
        .filter(|&i| changed_since.is_none_or(|c| sel.messages[i].modseq as u64 > c))
        .collect();
    let mut last: Option<ResponseHandle> = None;
    for batch in picked.chunks(structure::BATCH) {
        // Without the bytes, structures come kept (or are computed and kept) a
        // batch at a time; with them, from the bytes at hand.
        let kept = if needs_structure && !needs_bytes {
            let rows: Vec<&MessageRow> = batch.iter().map(|&i| &sel.messages[i]).collect();
            structure::load(store, cache, tenant, &rows).await?
        } else {
            HashMap::new()
        };
        if last.is_some() {
            // The batch before is written out before this one is made: a large
            // FETCH holds one batch of answers, not the whole mailbox's.
            let until = last.take();
            io.send_until(
                &mut *server,
                |e| matches!(e, Event::ResponseSent { handle, .. } if Some(*handle) == until),
                limit,
            )
            .await
            .map_err(|e| format!("cannot send the answer: {e}"))?;
        }
        for &i in batch {
            last = fetch_one(
                store,
                tenant,
                sel,
                server,
                i,
                &mut names,
                (mark_seen, needs_bytes, needs_structure),
                &kept,
            )
            .await?;
        }
    }
    Ok(())
}

/// The FETCH answer of message `i`.
#[allow(clippy::too_many_arguments)]
async fn fetch_one(
    store: &Store,
    tenant: Uuid,
    sel: &mut Selected,
    server: &mut Server,
    i: usize,
    names: &mut Vec<MessageDataItemName<'static>>,
    (mark_seen, needs_bytes, needs_structure): (bool, bool, bool),
    kept: &HashMap<[u8; 32], Arc<Structure>>,
) -> std::result::Result<Option<ResponseHandle>, String> {
    if mark_seen && !sel.messages[i].flags.iter().any(|f| f == "\\Seen") {
        let mut flags = sel.messages[i].flags.clone();
        flags.push("\\Seen".into());
        store
            .set_message_flags(tenant, sel.id, sel.messages[i].id, &flags)
            .await
            .map_err(|e| format!("cannot set \\Seen: {e}"))?;
        sel.messages[i].flags = flags;
        if !names.contains(&MessageDataItemName::Flags) {
            names.push(MessageDataItemName::Flags);
        }
    }
    let m = &sel.messages[i];
    let bytes = if needs_bytes {
        store
            .body_range(tenant, &m.sha, 0, u64::from(m.size))
            .await
            .map_err(|e| format!("cannot read the message: {e}"))?
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let computed;
    let shape = match kept.get(&m.sha) {
        Some(s) => Some(s.as_ref()),
        // With the bytes at hand (a FETCH of sections too), computed from them.
        None if needs_bytes && needs_structure => {
            computed = Structure::of(&bytes);
            Some(&computed)
        }
        None => None,
    };
    let shape = || shape.ok_or_else(|| "the message's structure is missing".to_string());
    let mut items = Vec::with_capacity(names.len());
    for n in names.iter() {
        items.push(match n {
            MessageDataItemName::Uid => MessageDataItem::Uid(nz(m.uid)),
            MessageDataItemName::Flags => flags_item(m),
            MessageDataItemName::InternalDate => {
                // IMAP dates have whole seconds; stored ones may not (an append's now()).
                let date =
                    chrono::Timelike::with_nanosecond(&m.internal_date.unwrap_or_default(), 0)
                        .unwrap_or_default()
                        .fixed_offset();
                MessageDataItem::InternalDate(
                    DateTime::try_from(date).map_err(|e| format!("internal date: {e}"))?,
                )
            }
            MessageDataItemName::Rfc822Size => MessageDataItem::Rfc822Size(m.size),
            MessageDataItemName::ModSeq => MessageDataItem::ModSeq(nz64(m.modseq)),
            MessageDataItemName::Envelope => MessageDataItem::Envelope(shape()?.envelope.clone()),
            MessageDataItemName::Body => MessageDataItem::Body(shape()?.body.clone()),
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(shape()?.structure.clone())
            }
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(nstring(bytes.clone())),
            MessageDataItemName::Rfc822Header => {
                MessageDataItem::Rfc822Header(nstring(fetch::split(&bytes).0.to_vec()))
            }
            MessageDataItemName::Rfc822Text => {
                MessageDataItem::Rfc822Text(nstring(fetch::split(&bytes).1.to_vec()))
            }
            MessageDataItemName::BodyExt {
                section: None,
                partial: Some((origin, len)),
                ..
            } if !needs_bytes => {
                let data = store
                    .body_range(tenant, &m.sha, u64::from(*origin), u64::from(len.get()))
                    .await
                    .map_err(|e| format!("cannot read the message: {e}"))?
                    .unwrap_or_default();
                MessageDataItem::BodyExt {
                    section: None,
                    origin: Some(*origin),
                    data: nstring(data),
                }
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let data = fetch::section(&bytes, section).map_err(|e| e.0.to_string())?;
                let (data, origin) = match partial {
                    Some((origin, len)) => {
                        (fetch::partial(data, *origin, len.get()), Some(*origin))
                    }
                    None => (data, None),
                };
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: nstring(data),
                }
            }
            other => return Err(format!("{other:?} is not served yet")),
        });
    }
    Ok(Some(server.enqueue_data(Data::Fetch {
        seq: nz(i as u32 + 1),
        items: Vec1::try_from(items).map_err(|_| "nothing to fetch".to_string())?,
    })))
}
