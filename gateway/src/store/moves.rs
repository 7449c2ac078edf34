//! COPY and MOVE of calendar objects and contacts, within one collection or between
//! two collections of one user: the destination is written, and for a MOVE the source
//! deleted, in one transaction, journalled like any client's writes, so both reach
//! the back end through the connector (a PUT there, and a DELETE for a MOVE).

use uuid::Uuid;

use super::items::{delete_in_tx, journal, lock_uid, notify, reserve_seqs, write_in_tx};
use super::{Result, Store, StoreError};

/// Where an item is: collection and name.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The collection.
    pub collection: Uuid,
    /// The item's name in it.
    pub name: &'a str,
}

/// What became of a COPY or MOVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// Done; `true` when an item at the destination was replaced.
    Done(bool),
    /// The source does not exist.
    NoSource,
    /// Something is at the destination and overwriting was not allowed.
    Exists,
    /// Another item of the destination collection holds the UID: its name.
    UidTaken(String),
}

impl Store {
    /// Copies (or, with `remove_source`, moves) an item.
    pub async fn copy_item(
        &self,
        tenant: Uuid,
        from: Place<'_>,
        to: Place<'_>,
        remove_source: bool,
        overwrite: bool,
    ) -> Result<Moved> {
        if to.name.is_empty() || to.name.contains('/') {
            return Err(StoreError::Invalid(format!(
                "item name {:?} must be one path segment",
                to.name
            )));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Collections before items, in one order (see `apply_packet`): both rows are
        // locked first, the smaller id first, so no two writers wait on each other.
        let mut both = [from.collection, to.collection];
        both.sort();
        tx.execute(
            "SELECT 1 FROM collections WHERE tenant_id = $1 AND id = ANY($2)
             ORDER BY id FOR NO KEY UPDATE",
            &[&tenant, &both.as_slice()],
        )
        .await?;
        let source = tx
            .query_opt(
                "SELECT id, content, content_type, uid FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND name = $3 AND NOT deleted FOR UPDATE",
                &[&tenant, &from.collection, &from.name],
            )
            .await?;
        let Some(source) = source else {
            return Ok(Moved::NoSource);
        };
        let (source_id, data, content_type, uid): (Uuid, Option<Vec<u8>>, String, String) =
            (source.get(0), source.get(1), source.get(2), source.get(3));
        let data = data.unwrap_or_default();
        if !uid.is_empty() {
            // The destination collection keeps one live item per UID: the source
            // itself does not count when it moves within its collection.
            let mut except = vec![to.name];
            if remove_source && from.collection == to.collection {
                except.push(from.name);
            }
            if let Some(other) = lock_uid(&tx, tenant, to.collection, &uid, &except).await? {
                return Ok(Moved::UidTaken(other));
            }
        }
        let existing: Option<Uuid> = tx
            .query_opt(
                "SELECT id FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND name = $3 AND NOT deleted FOR UPDATE",
                &[&tenant, &to.collection, &to.name],
            )
            .await?
            .map(|r| r.get(0));
        if existing.is_some() && !overwrite {
            return Ok(Moved::Exists);
        }
        // A move deletes first: the back end, like the gateway, holds a UID once, so
        // the deletion reaches it before the new copy does.
        if remove_source {
            let seq = reserve_seqs(&tx, tenant, from.collection, 1).await?;
            delete_in_tx(&tx, tenant, from.collection, source_id, seq).await?;
            journal(
                &tx,
                tenant,
                from.collection,
                seq,
                source_id,
                "delete",
                "gateway",
                None,
            )
            .await?;
            notify(&tx, tenant, from.collection).await?;
        }
        let seq = reserve_seqs(&tx, tenant, to.collection, 1).await?;
        let id = write_in_tx(
            &tx,
            tenant,
            to.collection,
            (to.name, &data, &content_type),
            existing,
            seq,
        )
        .await?;
        journal(
            &tx,
            tenant,
            to.collection,
            seq,
            id,
            "upsert",
            "gateway",
            None,
        )
        .await?;
        notify(&tx, tenant, to.collection).await?;
        tx.commit().await?;
        Ok(Moved::Done(existing.is_some()))
    }
}
