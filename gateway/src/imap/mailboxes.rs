//! CREATE, DELETE and RENAME (RFC 9051 §6.3.4–6.3.6). Each is a store call the
//! connector carries out on the back end under a lease: the new name shows at once,
//! a deleted mailbox is gone from LIST at once, and a rename keeps the mailbox's
//! messages, UIDs and UIDVALIDITY.

use imap_next::imap_types::core::Tag;
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::Status;
use imap_next::server::Server;

use super::names;
use super::session::{Session, no, no_code, ok};
use crate::store::StoreError;

fn already_exists(tag: Tag<'static>) -> Status<'static> {
    no_code(tag, "ALREADYEXISTS", "a mailbox with that name exists")
}

fn nonexistent(tag: Tag<'static>) -> Status<'static> {
    no_code(tag, "NONEXISTENT", "no such mailbox")
}

/// The name a client asked for, without a trailing hierarchy delimiter.
fn wanted(mailbox: &Mailbox<'_>, delimiter: Option<char>) -> Option<String> {
    let name = names::requested(mailbox)?;
    let name = match delimiter {
        Some(d) => name.trim_end_matches(d).to_string(),
        None => name,
    };
    (!name.is_empty()).then_some(name)
}

pub(super) async fn create(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    mailbox: &Mailbox<'static>,
) {
    let Some(user) = s.user.clone() else { return };
    let Some(all) = s.all_mailboxes(server, &tag).await else {
        return;
    };
    let delimiter = all.iter().find_map(|m| m.delimiter);
    let Some(name) = wanted(mailbox, delimiter) else {
        server.enqueue_status(no(tag, "a mailbox needs a name"));
        return;
    };
    if names::find(&all, &name).is_some() {
        server.enqueue_status(already_exists(tag));
        return;
    }
    let status = match s
        .state
        .store
        .create_mailbox(user.tenant, user.user, &name)
        .await
    {
        Ok(Some(_)) => ok(tag, "CREATE done"),
        Ok(None) => no(tag, "no two-way mail source to create it on"),
        Err(StoreError::Conflict(_)) => already_exists(tag),
        Err(StoreError::Invalid(why)) => no(tag, why),
        Err(e) => no(tag, format!("cannot create: {e}")),
    };
    server.enqueue_status(status);
}

pub(super) async fn delete(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    mailbox: &Mailbox<'static>,
) {
    let Some(user) = s.user.clone() else { return };
    let Some(all) = s.all_mailboxes(server, &tag).await else {
        return;
    };
    let Some(row) = names::lookup(&all, mailbox).cloned() else {
        server.enqueue_status(nonexistent(tag));
        return;
    };
    if row.name.eq_ignore_ascii_case("INBOX") || row.role.as_deref() == Some("inbox") {
        server.enqueue_status(no(tag, "INBOX cannot be deleted"));
        return;
    }
    if s.selected.as_ref().is_some_and(|sel| sel.id == row.id) {
        s.selected = None;
    }
    let status = match s
        .state
        .store
        .delete_dav_collection(user.tenant, row.id)
        .await
    {
        Ok(()) => ok(tag, "DELETE done"),
        Err(e) => no(tag, format!("cannot delete: {e}")),
    };
    server.enqueue_status(status);
}

pub(super) async fn rename(
    s: &mut Session,
    server: &mut Server,
    tag: Tag<'static>,
    from: &Mailbox<'static>,
    to: &Mailbox<'static>,
) {
    let Some(user) = s.user.clone() else { return };
    let Some(all) = s.all_mailboxes(server, &tag).await else {
        return;
    };
    let Some(row) = names::lookup(&all, from).cloned() else {
        server.enqueue_status(nonexistent(tag));
        return;
    };
    let Some(name) = wanted(to, row.delimiter) else {
        server.enqueue_status(no(tag, "a mailbox needs a name"));
        return;
    };
    if names::find(&all, &name).is_some() {
        server.enqueue_status(already_exists(tag));
        return;
    }
    let status = match s
        .state
        .store
        .rename_mailbox(user.tenant, row.id, &name)
        .await
    {
        Ok(()) => ok(tag, "RENAME done"),
        Err(StoreError::Conflict(_)) => already_exists(tag),
        Err(StoreError::NotFound(_)) => no(
            tag,
            "INBOX, or a mailbox still being made, cannot be renamed",
        ),
        Err(StoreError::Invalid(why)) => no(tag, why),
        Err(e) => no(tag, format!("cannot rename: {e}")),
    };
    server.enqueue_status(status);
}
