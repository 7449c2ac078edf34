//! What the gateway's IMAP endpoint reads: a user's mailboxes, and a mailbox's
//! messages as clients number them (gateway UIDs under the gateway's UIDVALIDITY,
//! MODSEQ from the journal). Writes go through the same store API the rest of the
//! gateway uses (`set_message_flags`, `expunge_message`, `append_message`), so a
//! client's change is journalled and waits for the back end like any other.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};

/// One mailbox of a user, as LIST, STATUS and SELECT show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    /// The collection.
    pub id: Uuid,
    /// Full name (UTF-8), with the back end's hierarchy delimiter.
    pub name: String,
    /// Hierarchy delimiter, if the back end has one.
    pub delimiter: Option<char>,
    /// SPECIAL-USE role ("sent", "trash", ...).
    pub role: Option<String>,
    /// The back end says it holds no messages (a folder of folders).
    pub noselect: bool,
    /// UIDVALIDITY as clients see it.
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub next_uid: u32,
    /// The journal's head: the mailbox's HIGHESTMODSEQ.
    pub head: i64,
}

/// One message of a mailbox, as FETCH and SEARCH see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// The item.
    pub id: Uuid,
    /// Gateway UID.
    pub uid: u32,
    /// Flags.
    pub flags: Vec<String>,
    /// Size in bytes.
    pub size: u32,
    /// Internal date.
    pub internal_date: Option<DateTime<Utc>>,
    /// The journal sequence of its last change: its MODSEQ.
    pub modseq: i64,
    /// The body's SHA-256.
    pub sha: [u8; 32],
}

const MAILBOX_COLUMNS: &str = "SELECT id, COALESCE(mailbox_name, display_name), delimiter, role,
        noselect, gateway_uidvalidity, next_gateway_uid, journal_head FROM collections
    WHERE tenant_id = $1 AND user_id = $2 AND kind = 'mailbox' AND NOT delete_pending";

fn mailbox_row(r: &tokio_postgres::Row) -> MailboxRow {
    MailboxRow {
        id: r.get(0),
        name: r.get(1),
        delimiter: r.get::<_, Option<String>>(2).and_then(|d| d.chars().next()),
        role: r.get(3),
        noselect: r.get(4),
        uidvalidity: r.get::<_, i64>(5) as u32,
        next_uid: r.get::<_, i64>(6) as u32,
        head: r.get(7),
    }
}

impl Store {
    /// The mailboxes of `user`, by name.
    pub async fn user_mailboxes(&self, tenant: Uuid, user: Uuid) -> Result<Vec<MailboxRow>> {
        let rows = self
            .read(&format!("{MAILBOX_COLUMNS} ORDER BY 2"), &[&tenant, &user])
            .await?;
        Ok(rows.iter().map(mailbox_row).collect())
    }

    /// One mailbox of `user`, found by its collection id.
    pub async fn user_mailbox(
        &self,
        tenant: Uuid,
        user: Uuid,
        mailbox: Uuid,
    ) -> Result<Option<MailboxRow>> {
        let rows = self
            .read(
                &format!("{MAILBOX_COLUMNS} AND id = $3"),
                &[&tenant, &user, &mailbox],
            )
            .await?;
        Ok(rows.first().map(mailbox_row))
    }

    /// The live messages of a mailbox, by gateway UID. Messages without a body yet
    /// (none are, today) or without a gateway UID are left out.
    pub async fn mailbox_messages(&self, tenant: Uuid, mailbox: Uuid) -> Result<Vec<MessageRow>> {
        let rows = self
            .read(
                "SELECT id, gateway_uid, flags, size, internal_date, last_seq, body_sha256
                 FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND NOT deleted
                   AND gateway_uid IS NOT NULL AND body_sha256 IS NOT NULL
                 ORDER BY gateway_uid",
                &[&tenant, &mailbox],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let sha: Vec<u8> = r.get(6);
                Some(MessageRow {
                    id: r.get(0),
                    uid: u32::try_from(r.get::<_, i64>(1)).ok()?,
                    flags: r.get(2),
                    size: u32::try_from(r.get::<_, Option<i64>>(3).unwrap_or(0))
                        .unwrap_or(u32::MAX),
                    internal_date: r.get(4),
                    modseq: r.get(5),
                    sha: sha.try_into().ok()?,
                })
            })
            .collect())
    }
}
