//! A selected mailbox: SELECT and EXAMINE, STORE, SEARCH, EXPUNGE, CLOSE,
//! APPEND, and the updates a client is told about.
//!
//! The session keeps a snapshot of the mailbox's messages in UID order; a message's
//! sequence number is its place in it. The snapshot changes only where the client
//! hears of it ([`Selected::refresh`]): expunges first (highest sequence number
//! first, so each EXPUNGE names a number the client still has), then flag changes,
//! then new messages (EXISTS). A message a client's own command changed is taken
//! into the snapshot by that command, so the client never hears of it twice.

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64};

use imap_next::imap_types::IntoStatic;
use imap_next::imap_types::command::StoreModifier;
use imap_next::imap_types::command::{CommandBody, SelectParameter};
use imap_next::imap_types::core::{Tag, Vec1};
use imap_next::imap_types::datetime::DateTime;
use imap_next::imap_types::fetch::MessageDataItem;
use imap_next::imap_types::flag::{Flag, FlagFetch, FlagPerm, StoreResponse, StoreType};
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::{Code, Data};
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_next::server::Server;
use uuid::Uuid;

use super::session::{Flow, Session, bad, no, ok, ok_code};
use super::{names, qresync, search};
use crate::store::imap::MessageRow;
use crate::store::{Result, Store};

/// The selected mailbox.
#[derive(Debug)]
pub struct Selected {
    /// The collection.
    pub id: Uuid,
    /// EXAMINE: nothing may change.
    pub read_only: bool,
    /// Messages in UID order; a message's sequence number is its place + 1.
    pub messages: Vec<MessageRow>,
}

/// Whether `value` is in `set`, where `*` stands for `largest`.
pub fn contains(set: &SequenceSet, value: u32, largest: u32) -> bool {
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(a) => v(a) == value,
        Sequence::Range(a, b) => {
            let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
            (lo..=hi).contains(&value)
        }
    })
}

impl Selected {
    fn last_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    /// The indexes of the messages `set` names, by sequence number or UID.
    pub(super) fn pick(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let (n, last_uid) = (self.messages.len() as u32, self.last_uid());
        (0..self.messages.len())
            .filter(|i| {
                if uid {
                    contains(set, self.messages[*i].uid, last_uid)
                } else {
                    contains(set, *i as u32 + 1, n)
                }
            })
            .collect()
    }

    /// Whether a sequence set names a message number the client cannot have.
    pub(super) fn out_of_range(&self, set: &SequenceSet) -> bool {
        let n = self.messages.len() as u32;
        set.0.as_ref().iter().any(|s| {
            let check = |x: &SeqOrUid| matches!(x, SeqOrUid::Value(v) if v.get() > n);
            match s {
                Sequence::Single(a) => check(a) || (n == 0),
                Sequence::Range(a, b) => (check(a) && check(b)) || n == 0,
            }
        })
    }

    /// Tells the client what changed since it last heard, and takes it in.
    pub async fn refresh(
        &mut self,
        store: &Store,
        tenant: Uuid,
        (condstore, qresync): (bool, bool),
        server: &mut Server,
    ) -> Result<()> {
        let now = store.mailbox_messages(tenant, self.id).await?;
        let live: HashSet<u32> = now.iter().map(|m| m.uid).collect();
        let mut gone = Vec::new();
        for i in (0..self.messages.len()).rev() {
            if !live.contains(&self.messages[i].uid) {
                gone.push((i as u32 + 1, self.messages[i].uid));
                self.messages.remove(i);
            }
        }
        qresync::tell_expunged(server, qresync, &gone);
        let by_uid: HashMap<u32, &MessageRow> = now.iter().map(|m| (m.uid, m)).collect();
        for (i, m) in self.messages.iter_mut().enumerate() {
            if let Some(n) = by_uid.get(&m.uid)
                && (n.flags != m.flags || n.modseq != m.modseq)
            {
                m.flags = n.flags.clone();
                m.modseq = n.modseq;
                let mut items = vec![MessageDataItem::Uid(nz(m.uid)), flags_item(m)];
                if condstore {
                    items.push(MessageDataItem::ModSeq(nz64(m.modseq)));
                }
                server.enqueue_data(Data::Fetch {
                    seq: nz(i as u32 + 1),
                    items: Vec1::try_from(items).expect("not empty"),
                });
            }
        }
        let last = self.last_uid();
        let before = self.messages.len();
        self.messages
            .extend(now.into_iter().filter(|m| m.uid > last));
        if self.messages.len() != before {
            server.enqueue_data(Data::Exists(self.messages.len() as u32));
        }
        Ok(())
    }
}

pub(super) fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

pub(super) fn nz64(n: i64) -> NonZeroU64 {
    NonZeroU64::new(n.max(1) as u64).unwrap_or(NonZeroU64::MIN)
}

pub(super) fn flags_item(m: &MessageRow) -> MessageDataItem<'static> {
    MessageDataItem::Flags(
        m.flags
            .iter()
            .filter_map(|f| Flag::try_from(f.as_str()).ok().map(IntoStatic::into_static))
            .map(FlagFetch::Flag)
            .collect(),
    )
}

/// The system flags every mailbox takes, and keywords (`\*`).
fn permanent_flags() -> Vec<FlagPerm<'static>> {
    let mut out: Vec<FlagPerm<'static>> = [
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
    .into_iter()
    .map(FlagPerm::Flag)
    .collect();
    out.push(FlagPerm::Asterisk);
    out
}

/// A command that needs a mailbox, or APPEND.
pub(super) async fn command(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    body: CommandBody<'static>,
) -> Flow {
    let Some(user) = s.user.clone() else {
        server.enqueue_status(bad(tag, "needs a login first"));
        return Flow::Continue;
    };
    let tenant = user.tenant;
    match body {
        CommandBody::Select {
            mailbox,
            parameters,
        } => select(s, server, tag, &mailbox, false, &parameters).await,
        CommandBody::Examine {
            mailbox,
            parameters,
        } => select(s, server, tag, &mailbox, true, &parameters).await,
        CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
        } => append(s, server, tag, &mailbox, &flags, date, message).await,
        CommandBody::Unselect => {
            s.selected = None;
            server.enqueue_status(ok(tag, "UNSELECT done"));
        }
        CommandBody::Close => {
            if let Some(sel) = s.selected.take()
                && !sel.read_only
            {
                for m in sel.messages.iter().filter(|m| has_deleted(m)) {
                    // Silently (RFC 9051 §6.4.1): no EXPUNGE responses.
                    let _ = s.state.store.expunge_message(tenant, sel.id, m.id).await;
                }
            }
            server.enqueue_status(ok(tag, "CLOSE done"));
        }
        body => {
            let Some(sel) = s.selected.as_mut() else {
                server.enqueue_status(bad(
                    tag,
                    format!("{} needs a selected mailbox", body.name()),
                ));
                return Flow::Continue;
            };
            match body {
                CommandBody::Fetch {
                    sequence_set,
                    macro_or_item_names,
                    uid,
                    modifiers,
                } => {
                    if !uid && sel.out_of_range(&sequence_set) {
                        server.enqueue_status(bad(tag, "no such message number"));
                        return Flow::Continue;
                    }
                    let changed_since = modifiers.iter().find_map(|m| match m {
                        imap_next::imap_types::command::FetchModifier::ChangedSince(n) => {
                            Some(n.get())
                        }
                        _ => None,
                    });
                    if changed_since.is_some() {
                        s.condstore = true;
                    }
                    let wants_vanished = modifiers.iter().any(|m| {
                        matches!(m, imap_next::imap_types::command::FetchModifier::Vanished)
                    });
                    if wants_vanished && (!uid || !s.qresync || changed_since.is_none()) {
                        server.enqueue_status(bad(
                            tag,
                            "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC",
                        ));
                        return Flow::Continue;
                    }
                    if wants_vanished {
                        let sel = s.selected.as_ref().expect("checked above");
                        let live: Vec<u32> = sel.messages.iter().map(|m| m.uid).collect();
                        let last = live.last().copied().unwrap_or(0);
                        if let Some(known_uids) =
                            qresync::vanished(&live, Some(&sequence_set), last)
                        {
                            server.enqueue_data(Data::Vanished {
                                earlier: true,
                                known_uids,
                            });
                        }
                    }
                    let condstore = s.condstore;
                    let sel = s.selected.as_mut().expect("checked above");
                    let status = super::fetching::fetch_messages(
                        (&s.state.store, &s.state.structures),
                        tenant,
                        sel,
                        (
                            server,
                            &mut s.io,
                            s.state.limits.imap_max_message_bytes + (64 << 10),
                        ),
                        &sequence_set,
                        uid,
                        macro_or_item_names,
                        changed_since,
                        condstore,
                    )
                    .await;
                    server.enqueue_status(match status {
                        Ok(()) => ok(tag, "FETCH done"),
                        Err(why) => no(tag, why),
                    });
                }
                CommandBody::Store {
                    sequence_set,
                    kind,
                    response,
                    flags,
                    uid,
                    modifiers,
                } => {
                    if sel.read_only {
                        server.enqueue_status(no(tag, "the mailbox is read-only (EXAMINE)"));
                        return Flow::Continue;
                    }
                    if !uid && sel.out_of_range(&sequence_set) {
                        server.enqueue_status(bad(tag, "no such message number"));
                        return Flow::Continue;
                    }
                    let unchanged_since = modifiers
                        .iter()
                        .map(|StoreModifier::UnchangedSince(n)| *n)
                        .next();
                    if unchanged_since.is_some() {
                        s.condstore = true;
                    }
                    let condstore = s.condstore;
                    let sel = s.selected.as_mut().expect("checked above");
                    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                    let status = store_flags(
                        &s.state.store,
                        tenant,
                        sel,
                        server,
                        (&sequence_set, uid),
                        (kind, &flags),
                        response == StoreResponse::Silent,
                        unchanged_since,
                        condstore,
                    )
                    .await;
                    server.enqueue_status(match status {
                        Ok(None) => ok(tag, "STORE done"),
                        Ok(Some(modified)) => ok_code(
                            tag,
                            Code::Modified(modified),
                            "STORE done; some messages changed since",
                        ),
                        Err(why) => no(tag, why),
                    });
                }
                CommandBody::Search { criteria, uid, .. } => {
                    match search_messages(&s.state.store, tenant, sel, criteria.as_ref()).await {
                        Ok(found) => {
                            let numbers: Vec<NonZeroU32> = found
                                .into_iter()
                                .map(|i| {
                                    nz(if uid {
                                        sel.messages[i].uid
                                    } else {
                                        i as u32 + 1
                                    })
                                })
                                .collect();
                            server.enqueue_data(Data::Search(numbers, None));
                            server.enqueue_status(ok(tag, "SEARCH done"));
                        }
                        Err(why) => {
                            server.enqueue_status(no(tag, why));
                        }
                    }
                }
                CommandBody::Expunge => {
                    let all: Vec<usize> = (0..sel.messages.len()).collect();
                    let status =
                        expunge(&s.state.store, tenant, sel, server, &all, s.qresync).await;
                    server.enqueue_status(match status {
                        Ok(()) => ok(tag, "EXPUNGE done"),
                        Err(why) => no(tag, why),
                    });
                }
                CommandBody::ExpungeUid { sequence_set } => {
                    let chosen = sel.pick(&sequence_set, true);
                    let status =
                        expunge(&s.state.store, tenant, sel, server, &chosen, s.qresync).await;
                    server.enqueue_status(match status {
                        Ok(()) => ok(tag, "UID EXPUNGE done"),
                        Err(why) => no(tag, why),
                    });
                }
                CommandBody::Copy {
                    sequence_set,
                    mailbox,
                    uid,
                } => {
                    super::copymove::copy_or_move(
                        s,
                        server,
                        tag,
                        (&sequence_set, uid),
                        &mailbox,
                        false,
                    )
                    .await;
                }
                CommandBody::Move {
                    sequence_set,
                    mailbox,
                    uid,
                } => {
                    super::copymove::copy_or_move(
                        s,
                        server,
                        tag,
                        (&sequence_set, uid),
                        &mailbox,
                        true,
                    )
                    .await;
                }
                other => {
                    server.enqueue_status(bad(tag, format!("{} is not supported", other.name())));
                }
            }
        }
    }
    Flow::Continue
}

fn has_deleted(m: &MessageRow) -> bool {
    m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"))
}

async fn select(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    mailbox: &Mailbox<'static>,
    read_only: bool,
    parameters: &[SelectParameter],
) {
    s.selected = None;
    if parameters
        .iter()
        .any(|p| matches!(p, SelectParameter::CondStore))
    {
        s.condstore = true;
    }
    let resync = parameters.iter().find_map(|p| match p {
        SelectParameter::QResync {
            uid_validity,
            mod_sequence_value,
            known_uids,
            ..
        } => Some((
            uid_validity.get(),
            mod_sequence_value.get(),
            known_uids.clone(),
        )),
        _ => None,
    });
    if resync.is_some() && !s.qresync {
        server.enqueue_status(bad(tag, "QRESYNC needs ENABLE QRESYNC first"));
        return;
    }
    let Some(user) = s.user.clone() else { return };
    let Some(all) = s.all_mailboxes(server, &tag).await else {
        return;
    };
    let Some(row) = names::lookup(&all, mailbox).cloned() else {
        server.enqueue_status(no(tag, "no such mailbox"));
        return;
    };
    if row.noselect {
        server.enqueue_status(no(tag, "the mailbox holds no messages (\\Noselect)"));
        return;
    }
    let messages = match s
        .state
        .snapshots
        .messages(&s.state.store, user.tenant, row.id, row.head)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            server.enqueue_status(no(tag, format!("cannot read the mailbox: {e}")));
            return;
        }
    };
    let flags: Vec<Flag<'static>> = vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];
    server.enqueue_data(Data::Flags(flags));
    server.enqueue_data(Data::Exists(messages.len() as u32));
    server.enqueue_data(Data::Recent(0));
    let untagged = |code: Code<'static>| {
        imap_next::imap_types::response::Status::ok(None, Some(code), "ok").expect("valid text")
    };
    server.enqueue_status(untagged(Code::UidValidity(nz(row.uidvalidity))));
    server.enqueue_status(untagged(Code::UidNext(nz(row.next_uid))));
    server.enqueue_status(untagged(Code::PermanentFlags(if read_only {
        vec![]
    } else {
        permanent_flags()
    })));
    server.enqueue_status(untagged(Code::HighestModSeq(nz64(row.head))));
    if let Some(first_unseen) = messages
        .iter()
        .position(|m| !m.flags.iter().any(|f| f == "\\Seen"))
    {
        server.enqueue_status(untagged(Code::Unseen(nz(first_unseen as u32 + 1))));
    }
    // QRESYNC: what the client's cache misses, when it is of this UIDVALIDITY.
    if let Some((validity, since, known)) = resync
        && validity == row.uidvalidity
    {
        let live: Vec<u32> = messages.iter().map(|m| m.uid).collect();
        let last = row.next_uid.saturating_sub(1);
        if let Some(known_uids) = qresync::vanished(&live, known.as_ref(), last) {
            server.enqueue_data(Data::Vanished {
                earlier: true,
                known_uids,
            });
        }
        for (i, m) in messages.iter().enumerate() {
            if m.modseq as u64 > since {
                server.enqueue_data(Data::Fetch {
                    seq: nz(i as u32 + 1),
                    items: Vec1::try_from(vec![
                        MessageDataItem::Uid(nz(m.uid)),
                        flags_item(m),
                        MessageDataItem::ModSeq(nz64(m.modseq)),
                    ])
                    .expect("not empty"),
                });
            }
        }
    }
    s.selected = Some(Selected {
        id: row.id,
        read_only,
        messages,
    });
    let (code, text) = if read_only {
        (Code::ReadOnly, "EXAMINE done")
    } else {
        (Code::ReadWrite, "SELECT done")
    };
    server.enqueue_status(ok_code(tag, code, text));
}

#[allow(clippy::too_many_arguments)]
async fn store_flags(
    store: &Store,
    tenant: Uuid,
    sel: &mut Selected,
    server: &mut Server,
    (set, uid): (&SequenceSet, bool),
    (kind, flags): (StoreType, &[String]),
    silent: bool,
    unchanged_since: Option<u64>,
    condstore: bool,
) -> std::result::Result<Option<SequenceSet>, String> {
    let mut modified: Vec<u32> = Vec::new();
    let mut changed: Vec<usize> = Vec::new();
    for i in sel.pick(set, uid) {
        let m = &sel.messages[i];
        if unchanged_since.is_some_and(|u| m.modseq as u64 > u) {
            modified.push(if uid { m.uid } else { i as u32 + 1 });
            continue;
        }
        let mut new: Vec<String> = match kind {
            StoreType::Replace => flags.to_vec(),
            StoreType::Add => {
                let mut f = m.flags.clone();
                for x in flags {
                    if !f.iter().any(|y| y.eq_ignore_ascii_case(x)) {
                        f.push(x.clone());
                    }
                }
                f
            }
            StoreType::Remove => m
                .flags
                .iter()
                .filter(|y| !flags.iter().any(|x| x.eq_ignore_ascii_case(y)))
                .cloned()
                .collect(),
        };
        new.dedup();
        if new != m.flags {
            store
                .set_message_flags(tenant, sel.id, m.id, &new)
                .await
                .map_err(|e| format!("cannot store flags: {e}"))?;
            sel.messages[i].flags = new;
            changed.push(i);
        } else if !silent {
            changed.push(i);
        }
    }
    // The new MODSEQs, taken in so that the client does not hear of its own change
    // again as an update.
    let now = store
        .mailbox_messages(tenant, sel.id)
        .await
        .map_err(|e| format!("cannot read the mailbox: {e}"))?;
    let by_uid: HashMap<u32, &MessageRow> = now.iter().map(|m| (m.uid, m)).collect();
    for i in &changed {
        if let Some(n) = by_uid.get(&sel.messages[*i].uid) {
            sel.messages[*i].modseq = n.modseq;
            sel.messages[*i].flags = n.flags.clone();
        }
        if !silent || condstore {
            let m = &sel.messages[*i];
            let mut items = vec![flags_item(m)];
            if uid {
                items.insert(0, MessageDataItem::Uid(nz(m.uid)));
            }
            if condstore {
                items.push(MessageDataItem::ModSeq(nz64(m.modseq)));
            }
            server.enqueue_data(Data::Fetch {
                seq: nz(*i as u32 + 1),
                items: Vec1::try_from(items).expect("not empty"),
            });
        }
    }
    if modified.is_empty() {
        return Ok(None);
    }
    let seqs: Vec<Sequence> = modified
        .into_iter()
        .map(|n| Sequence::Single(SeqOrUid::Value(nz(n))))
        .collect();
    Ok(Vec1::try_from(seqs).ok().map(SequenceSet))
}

async fn search_messages(
    store: &Store,
    tenant: Uuid,
    sel: &Selected,
    keys: &[SearchKey<'static>],
) -> std::result::Result<Vec<usize>, String> {
    let (last_seq, last_uid) = (sel.messages.len() as u32, sel.last_uid());
    let needs_body = search::needs_body(keys);
    let mut out = Vec::new();
    for (i, m) in sel.messages.iter().enumerate() {
        let body = if needs_body {
            store
                .body_range(tenant, &m.sha, 0, u64::from(m.size))
                .await
                .map_err(|e| format!("cannot read a message: {e}"))?
        } else {
            None
        };
        let c = search::Candidate {
            row: m,
            seq: i as u32 + 1,
            last_seq,
            last_uid,
            body: body.as_deref(),
        };
        if search::matches_all(keys, &c) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Expunges the chosen messages that have \Deleted, each journalled, and tells the
/// client (highest sequence number first).
async fn expunge(
    store: &Store,
    tenant: Uuid,
    sel: &mut Selected,
    server: &mut Server,
    chosen: &[usize],
    qresync: bool,
) -> std::result::Result<(), String> {
    if sel.read_only {
        return Err("the mailbox is read-only (EXAMINE)".into());
    }
    let mut gone: Vec<usize> = chosen
        .iter()
        .copied()
        .filter(|i| has_deleted(&sel.messages[*i]))
        .collect();
    gone.sort_unstable();
    let mut told = Vec::new();
    for i in gone.into_iter().rev() {
        store
            .expunge_message(tenant, sel.id, sel.messages[i].id)
            .await
            .map_err(|e| format!("cannot expunge: {e}"))?;
        told.push((i as u32 + 1, sel.messages[i].uid));
        sel.messages.remove(i);
    }
    qresync::tell_expunged(server, qresync, &told);
    Ok(())
}

async fn append(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    mailbox: &Mailbox<'static>,
    flags: &[Flag<'static>],
    _date: Option<DateTime>,
    message: imap_next::imap_types::extensions::binary::LiteralOrLiteral8<'static>,
) {
    let Some(user) = s.user.clone() else { return };
    let bytes: Vec<u8> = match message {
        imap_next::imap_types::extensions::binary::LiteralOrLiteral8::Literal(l) => {
            l.into_inner().into_owned()
        }
        imap_next::imap_types::extensions::binary::LiteralOrLiteral8::Literal8(l) => {
            l.data.into_owned()
        }
    };
    let Some(all) = s.all_mailboxes(server, &tag).await else {
        return;
    };
    let Some(row) = names::lookup(&all, mailbox).cloned() else {
        let code = Code::TryCreate;
        server.enqueue_status(
            imap_next::imap_types::response::Status::no(Some(tag), Some(code), "no such mailbox")
                .expect("valid text"),
        );
        return;
    };
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    // A client filing in Sent the message it just sent through the gateway finds the
    // copy the gateway made: one copy, whoever files it.
    let filed = match row.role.as_deref() {
        Some("sent") => s
            .state
            .store
            .live_message_with(user.tenant, row.id, &bytes)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let appended = match filed {
        Some(found) => Ok(found),
        None => {
            s.state
                .store
                .append_message(user.tenant, row.id, &bytes, &flags)
                .await
        }
    };
    match appended {
        Ok((_, uid)) => {
            let code = Code::AppendUid {
                uid_validity: nz(row.uidvalidity),
                uid: nz(uid),
            };
            // The selected mailbox hears of it as any new message.
            s.updates(server).await;
            server.enqueue_status(ok_code(tag, code, "APPEND done"));
        }
        Err(e) => {
            server.enqueue_status(no(tag, format!("cannot append: {e}")));
        }
    }
}
