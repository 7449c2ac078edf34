//! Mailboxes a client creates, renames or deletes on the gateway (IMAP CREATE,
//! RENAME and DELETE).
//!
//! Like a client's calendar: the mailbox exists on the gateway at once, bound to the
//! user's two-way `imap` source and marked `create_pending`; the connector creates it
//! on the back end under its name and binds it. A deleted mailbox leaves the gateway at
//! once ([`Store::delete_dav_collection`], the same for every kind) and is deleted on
//! the back end, with its messages, by the connector.
//!
//! A mailbox the back end no longer lists (deleted or renamed there; a rename lists
//! the new name, whose messages are imported with their bodies found by content)
//! leaves the gateway with its messages, unless clients changed it on the gateway and
//! the back end has not had those changes: then it pauses for an operator, and nothing
//! is lost.

use uuid::Uuid;

use super::{Result, Store, StoreError};

impl Store {
    /// Store API: creates mailbox `name` (full name, with the back end's hierarchy
    /// delimiter) for `user`. `Ok(None)` when the user has no two-way mail source.
    pub async fn create_mailbox(
        &self,
        tenant: Uuid,
        user: Uuid,
        name: &str,
    ) -> Result<Option<Uuid>> {
        if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Invalid(format!("mailbox name {name:?}")));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let Some(source) = tx
            .query_opt(
                "SELECT id, conflict FROM sources
                 WHERE tenant_id = $1 AND user_id = $2 AND kind = 'imap' AND mode = 'two-way'
                 ORDER BY name LIMIT 1",
                &[&tenant, &user],
            )
            .await?
        else {
            return Ok(None);
        };
        let (source_id, conflict): (Uuid, String) = (source.get(0), source.get(1));
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM collections WHERE tenant_id = $1 AND source_id = $2
                                AND kind = 'mailbox' AND mailbox_name = $3 AND NOT delete_pending)",
                &[&tenant, &source_id, &name],
            )
            .await?
            .get(0);
        if exists {
            return Err(StoreError::Conflict(format!("mailbox {name:?} exists")));
        }
        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO collections (tenant_id, id, user_id, source_id, kind, backend_href, display_name,
                                      mode, conflict, name, create_pending, mailbox_name)
             VALUES ($1, $2, $3, $4, 'mailbox', $5, $6, 'two-way', $7, $8, true, $6)",
            &[&tenant, &id, &user, &source_id, &format!("pending:{id}"), &name, &conflict,
              &format!("mailbox-{}", id.simple())],
        )
        .await?;
        super::items::notify(&tx, tenant, id).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// A complete discovery of `source` listed only `listed`: its mailboxes not among
    /// them (and not being made or removed for a client) are gone on the back end.
    /// They leave the gateway, except those holding changes the back end has not had,
    /// which pause. Returns (removed, paused).
    pub async fn remove_vanished_mailboxes(
        &self,
        tenant: Uuid,
        source: Uuid,
        listed: &[String],
    ) -> Result<(u64, u64)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let gone = "tenant_id = $1 AND source_id = $2 AND kind = 'mailbox' AND rename_to IS NULL
                    AND NOT create_pending AND NOT delete_pending AND NOT (backend_href = ANY($3))";
        let waiting = "EXISTS (SELECT 1 FROM items i WHERE i.tenant_id = collections.tenant_id
                               AND i.collection_id = collections.id AND i.pending_seq IS NOT NULL)";
        let paused = tx
            .execute(
                &format!(
                    "UPDATE collections SET paused_reason =
                        'the back end no longer lists this mailbox, and it holds changes the back end has not had: kept for an operator'
                     WHERE {gone} AND {waiting} AND paused_reason IS NULL"
                ),
                &[&tenant, &source, &listed],
            )
            .await?;
        let removed = tx
            .execute(
                &format!("DELETE FROM collections WHERE {gone} AND NOT {waiting}"),
                &[&tenant, &source, &listed],
            )
            .await?;
        tx.commit().await?;
        Ok((removed, paused))
    }

    /// Store API: a client renames a mailbox. The new name shows at once; the
    /// connector renames it on the back end (its messages and their UIDs stay).
    pub async fn rename_mailbox(&self, tenant: Uuid, mailbox: Uuid, name: &str) -> Result<()> {
        if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Invalid(format!("mailbox name {name:?}")));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM collections o JOIN collections m
                                  ON m.tenant_id = o.tenant_id AND m.source_id = o.source_id
                                WHERE m.tenant_id = $1 AND m.id = $2 AND o.kind = 'mailbox'
                                  AND o.mailbox_name = $3 AND NOT o.delete_pending)",
                &[&tenant, &mailbox, &name],
            )
            .await?
            .get(0);
        if taken {
            return Err(StoreError::Conflict(format!("mailbox {name:?} exists")));
        }
        let n = tx
            .execute(
                "UPDATE collections SET display_name = $3, mailbox_name = $3, rename_to = $3
                 WHERE tenant_id = $1 AND id = $2 AND kind = 'mailbox' AND NOT delete_pending
                   AND NOT create_pending AND COALESCE(role, '') <> 'inbox'",
                &[&tenant, &mailbox, &name],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "mailbox {mailbox} (INBOX cannot be renamed)"
            )));
        }
        super::items::notify(&tx, tenant, mailbox).await?;
        tx.commit().await?;
        Ok(())
    }
}
