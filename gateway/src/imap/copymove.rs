//! COPY and MOVE (RFC 9051 §6.4.7, RFC 6851), and their UID forms.
//!
//! A copy is a new message of the destination pointing at the same stored body; a
//! move takes the message out of the selected mailbox and puts it in the
//! destination in one transaction. Both are journalled: the connector makes them on
//! the back end (a move as UID MOVE, found again by content if it was cut short).
//! The answer carries COPYUID (UIDPLUS), so clients know the new UIDs; a move's
//! EXPUNGEs follow the untagged COPYUID, highest sequence number first.

use std::num::NonZeroU32;

use imap_next::imap_types::core::{Tag, Vec1};
use imap_next::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::{Code, Status};
use imap_next::imap_types::sequence::SequenceSet;
use imap_next::server::Server;

use super::names;
use super::session::{Session, bad, no, ok_code};

fn uid_set(uids: &[u32]) -> Option<UidSet> {
    let elements: Vec<UidElement> = uids
        .iter()
        .filter_map(|u| NonZeroU32::new(*u))
        .map(UidElement::Single)
        .collect();
    Vec1::try_from(elements).ok().map(UidSet)
}

/// COPY or MOVE of the messages `set` names to `mailbox`.
pub(super) async fn copy_or_move(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    (set, uid): (&SequenceSet, bool),
    mailbox: &Mailbox<'static>,
    is_move: bool,
) {
    let Some(user) = s.user.clone() else { return };
    let Some(all) = s.all_mailboxes(server, &tag).await else {
        return;
    };
    let Some(to) = names::lookup(&all, mailbox).cloned() else {
        let status =
            Status::no(Some(tag), Some(Code::TryCreate), "no such mailbox").expect("valid text");
        server.enqueue_status(status);
        return;
    };
    let Some(sel) = s.selected.as_mut() else {
        server.enqueue_status(bad(tag, "no mailbox selected"));
        return;
    };
    if is_move && sel.read_only {
        server.enqueue_status(no(tag, "the mailbox is read-only (EXAMINE)"));
        return;
    }
    if to.id == sel.id && is_move {
        server.enqueue_status(no(tag, "a message moves to another mailbox"));
        return;
    }
    if !uid && sel.out_of_range(set) {
        server.enqueue_status(bad(tag, "no such message number"));
        return;
    }
    let chosen = sel.pick(set, uid);
    let (mut from_uids, mut to_uids, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    for i in chosen {
        let m = &sel.messages[i];
        let done = if is_move {
            s.state
                .store
                .move_message(user.tenant, sel.id, m.id, to.id)
                .await
        } else {
            s.state
                .store
                .copy_message(user.tenant, sel.id, m.id, to.id)
                .await
        };
        match done {
            Ok((_, new_uid)) => {
                from_uids.push(m.uid);
                to_uids.push(new_uid);
                moved.push(i);
            }
            // Expunged meanwhile by another session: the others still go.
            Err(crate::store::StoreError::NotFound(_)) => {}
            Err(e) => {
                server.enqueue_status(no(
                    tag,
                    format!("cannot {}: {e}", if is_move { "move" } else { "copy" }),
                ));
                return;
            }
        }
    }
    let code = match (uid_set(&from_uids), uid_set(&to_uids)) {
        (Some(source), Some(destination)) => Some(Code::CopyUid {
            uid_validity: NonZeroU32::new(to.uidvalidity).unwrap_or(NonZeroU32::MIN),
            source,
            destination,
        }),
        _ => None,
    };
    if !is_move {
        let status = match code {
            Some(code) => ok_code(tag, code, "COPY done"),
            None => super::session::ok(tag, "COPY done: nothing to copy"),
        };
        server.enqueue_status(status);
        return;
    }
    if let Some(code) = code {
        server.enqueue_status(Status::ok(None, Some(code), "moved").expect("valid text"));
    }
    let mut gone = Vec::new();
    for i in moved.into_iter().rev() {
        gone.push((i as u32 + 1, sel.messages[i].uid));
        sel.messages.remove(i);
    }
    super::qresync::tell_expunged(server, s.qresync, &gone);
    server.enqueue_status(super::session::ok(tag, "MOVE done"));
}
