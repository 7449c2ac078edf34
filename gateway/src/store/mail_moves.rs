//! A client moves a message to another mailbox of the same user.
//!
//! In one transaction the message leaves the source (a tombstone marked
//! `moved_away`) and a new item holds it in the destination, with the same body, flags
//! and internal date, a gateway UID there, and where the message is on the back end
//! (`moved_from_collection`, `moved_from_href`). Both changes are journalled; the connector's round of the destination moves
//! the message on the back end (UID MOVE, keeping one copy) and the source's round,
//! seeing the deletion is a move, does not expunge it. A message the back end never
//! had (a client's append still on its way) is simply appended in the destination.

use uuid::Uuid;

use super::items::{journal, notify, reserve_seqs};
use super::{Result, Store, StoreError};

impl Store {
    /// Store API: moves message `item` of mailbox `from` to mailbox `to` (of the
    /// same source). Returns the message's id and gateway UID in `to`.
    pub async fn move_message(
        &self,
        tenant: Uuid,
        from: Uuid,
        item: Uuid,
        to: Uuid,
    ) -> Result<(Uuid, u32)> {
        if from == to {
            return Err(StoreError::Invalid(
                "a message moves to another mailbox".into(),
            ));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Collections first, in id order, like every writer.
        let (first, second) = if from < to { (from, to) } else { (to, from) };
        let a = reserve_seqs(&tx, tenant, first, 1).await?;
        let b = reserve_seqs(&tx, tenant, second, 1).await?;
        let (seq_from, seq_to) = if from < to { (a, b) } else { (b, a) };
        let same_source: i64 = tx
            .query_one(
                "SELECT count(*) FROM collections
                 WHERE tenant_id = $1 AND id = ANY($2) AND kind = 'mailbox' AND NOT delete_pending
                   AND source_id = (SELECT source_id FROM collections WHERE tenant_id = $1 AND id = $3)",
                &[&tenant, &vec![from, to], &from],
            )
            .await?
            .get(0);
        if same_source != 2 {
            return Err(StoreError::NotFound(format!(
                "mailbox {to} beside mailbox {from}"
            )));
        }
        let Some(old) = tx
            .query_opt(
                "UPDATE items SET deleted = true, moved_away = backend_href IS NOT NULL,
                        pending_seq = $4, last_seq = $4, changed_at = now()
                 WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND NOT deleted
                   AND body_sha256 IS NOT NULL
                 RETURNING flags, body_sha256, size, message_id, internal_date, etag,
                           backend_href,
                           (SELECT c.backend_href FROM collections c
                            WHERE c.tenant_id = items.tenant_id AND c.id = items.collection_id)",
                &[&tenant, &from, &item, &seq_from],
            )
            .await?
        else {
            return Err(StoreError::NotFound(format!("message {item}")));
        };
        journal(&tx, tenant, from, seq_from, item, "delete", "gateway", None).await?;
        // Where it is on the back end now (none for an append still on its way).
        let href: Option<String> = old.get(6);
        let mailbox: Option<String> = href.as_ref().and(old.get(7));
        let (id, uid) = insert_copy(&tx, (tenant, to), seq_to, &old, (mailbox, href)).await?;
        journal(&tx, tenant, to, seq_to, id, "upsert", "gateway", None).await?;
        notify(&tx, tenant, from).await?;
        notify(&tx, tenant, to).await?;
        tx.commit().await?;
        Ok((id, uid))
    }

    /// Store API: copies message `item` of mailbox `from` into mailbox `to` (IMAP
    /// COPY). The copy is a new message of `to`, pointing at the same body (held once),
    /// with the same flags and internal date; it waits for the back end like a
    /// client's append. Returns its id and gateway UID in `to`.
    pub async fn copy_message(
        &self,
        tenant: Uuid,
        from: Uuid,
        item: Uuid,
        to: Uuid,
    ) -> Result<(Uuid, u32)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let seq = reserve_seqs(&tx, tenant, to, 1).await?;
        let Some(old) = tx
            .query_opt(
                "SELECT flags, body_sha256, size, message_id, internal_date, etag FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND NOT deleted
                   AND body_sha256 IS NOT NULL",
                &[&tenant, &from, &item],
            )
            .await?
        else {
            return Err(StoreError::NotFound(format!("message {item}")));
        };
        let (id, uid) = insert_copy(&tx, (tenant, to), seq, &old, (None, None)).await?;
        journal(&tx, tenant, to, seq, id, "upsert", "gateway", None).await?;
        notify(&tx, tenant, to).await?;
        tx.commit().await?;
        Ok((id, uid))
    }
}

/// Writes a new message of mailbox `to` holding what `old` holds (its columns in
/// order: flags, body_sha256, size, message_id, internal_date, etag), under journal
/// sequence `seq`, with a new gateway UID; a move also says where it came from on
/// the back end. Returns its id and gateway UID.
async fn insert_copy(
    tx: &tokio_postgres::Transaction<'_>,
    (tenant, to): (Uuid, Uuid),
    seq: i64,
    old: &tokio_postgres::Row,
    (moved_from_collection, moved_from_href): (Option<String>, Option<String>),
) -> Result<(Uuid, u32)> {
    let uid = Store::take_gateway_uids(tx, tenant, to, 1).await?;
    let id = Uuid::new_v4();
    let mid: Option<String> = old.get(3);
    tx.execute(
        "INSERT INTO items (tenant_id, collection_id, id, uid, name, content_type, etag, flags,
                            body_sha256, size, message_id, internal_date, gateway_uid,
                            pending_seq, last_seq, moved_from_collection, moved_from_href)
         VALUES ($1, $2, $3, COALESCE($4, ''), $5, 'message/rfc822', $6, $7, $8, $9, $4, $10,
                 $11, $12, $12, $13, $14)",
        &[
            &tenant,
            &to,
            &id,
            &mid,
            &format!("{uid}.eml"),
            &old.get::<_, String>(5),
            &old.get::<_, Vec<String>>(0),
            &old.get::<_, Vec<u8>>(1),
            &old.get::<_, Option<i64>>(2),
            &old.get::<_, Option<chrono::DateTime<chrono::Utc>>>(4),
            &i64::from(uid),
            &seq,
            &moved_from_collection,
            &moved_from_href,
        ],
    )
    .await?;
    Ok((id, uid))
}
