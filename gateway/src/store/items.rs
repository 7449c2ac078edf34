//! Items: what the connector pulls (the index and the pending gateway changes), and
//! the store API through which gateway-side edits enter (remote clients, tests).

use postern_core::content;
use serde::Serialize;
use uuid::Uuid;

use super::{CHANGES_CHANNEL, Result, Store, StoreError};

/// One entry of the index: an item the back end has, as the gateway knows it.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// Gateway item id.
    pub item_id: Uuid,
    /// Its href on the back end.
    pub backend_href: String,
    /// Back-end version last seen.
    pub backend_version: String,
    /// Mail: the flags both sides last agreed on (empty for other items).
    pub flags: Vec<String>,
    /// Mail: the gateway's flags now, when they differ from `flags`.
    pub current_flags: Option<Vec<String>>,
    /// Mail: the content key (SHA-256, size, Message-ID).
    pub key: Option<(Vec<u8>, i64, Option<String>)>,
}

/// A collection's index, as a round pulls it.
#[derive(Debug, Clone)]
pub struct Index {
    /// The entries asked for: every item the back end has, or those named.
    pub entries: Vec<IndexEntry>,
    /// The journal head the index reflects.
    pub head: i64,
    /// How many items the whole index holds.
    pub total: u64,
}

/// The latest state of an item with a gateway-side change not yet on the back end.
#[derive(Debug, Clone)]
pub struct PendingChange {
    /// Gateway item id.
    pub item_id: Uuid,
    /// Journal sequence of its latest change.
    pub seq: i64,
    /// Its UID.
    pub uid: String,
    /// Its back-end href, if it has one.
    pub backend_href: Option<String>,
    /// Back-end version last seen.
    pub backend_version: Option<String>,
    /// New content; `None` for a deletion.
    pub content: Option<Vec<u8>>,
    /// MIME type.
    pub content_type: String,
    /// When it changed, Unix milliseconds.
    pub changed_at_ms: i64,
    /// IMAP flags.
    pub flags: Vec<String>,
    /// The version both sides last agreed on (`merge` collections only).
    pub base: Option<Vec<u8>>,
    /// Mail: a message a client moved here, where it was on the back end (its
    /// mailbox's href, its href there).
    pub moved_from: Option<(String, String)>,
    /// Mail: a deletion that is a move to another mailbox.
    pub moved_away: bool,
    /// Mail: a message the back end does not have, by its body's hash and size. Its
    /// bytes are in `content` only when small ([`INLINE_BODY`]); a larger one (or a
    /// moved one, which the back end usually moves itself) is read by the connector
    /// a part at a time when it needs it.
    pub body: Option<(Vec<u8>, i64)>,
}

/// The largest message body a pending change carries inline; a larger one is named
/// by hash and read in parts (`BodyRead`), so no journal batch is ever one huge
/// message.
pub const INLINE_BODY: i64 = 256 << 10;

/// A live item, as tests and the DAV layer read it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Gateway item id.
    pub id: Uuid,
    /// Resource name within the collection.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Content as stored.
    #[serde(skip)]
    pub content: Vec<u8>,
    /// Strong ETag of the content.
    pub etag: String,
    /// Back-end href.
    pub backend_href: Option<String>,
    /// Waiting for the back end.
    pub pending: bool,
}

/// What became of a client's PUT.
#[derive(Debug)]
pub enum Put {
    /// Stored.
    Done(Item),
    /// Another live item of the collection has this UID: its name.
    UidTaken(String),
    /// The item exists with another UID (a client may not change it): its name.
    UidChanged(String),
}

/// The key of the transaction-scoped lock that makes writes of one UID in one
/// collection take turns.
/// Two flag lists naming the same flags, in any order.
fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|f| b.contains(f))
}

fn uid_lock_key(collection: Uuid, uid: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(collection.as_bytes());
    h.update(uid.as_bytes());
    let d = h.finalize();
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Writes a gateway-side version of an item in `tx` at journal sequence `seq`: the
/// row `existing` replaced, or a new row; the caller journals it. Returns its id.
pub(crate) async fn write_in_tx(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
    (name, data, content_type): (&str, &[u8], &str),
    existing: Option<Uuid>,
    seq: i64,
) -> Result<Uuid> {
    let uid = content::uid(data).unwrap_or_default();
    let etag = content::etag_of(data);
    match existing {
        Some(id) => {
            tx.execute(
                "UPDATE items SET content = $4, content_type = $5, etag = $6, uid = $7, pending_seq = $8,
                        last_seq = $8, changed_at = now(), refused_seq = NULL, refused_status = NULL,
                        refused_answer = NULL, refused_at = NULL
                 WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                &[&tenant, &collection, &id, &data, &content_type, &etag, &uid, &seq],
            )
            .await?;
            Ok(id)
        }
        None => {
            let id = Uuid::new_v4();
            tx.execute(
                "INSERT INTO items (tenant_id, collection_id, id, uid, name, content, content_type, etag, pending_seq, last_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                &[&tenant, &collection, &id, &uid, &name, &data, &content_type, &etag, &seq],
            )
            .await?;
            Ok(id)
        }
    }
}

/// Deletes a live item on the gateway side in `tx` at journal sequence `seq` (the
/// deletion then reaches the back end); the caller journals it.
pub(crate) async fn delete_in_tx(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
    id: Uuid,
    seq: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE items SET deleted = true, content = NULL, pending_seq = $4, last_seq = $4, changed_at = now(),
                refused_seq = NULL, refused_status = NULL, refused_answer = NULL, refused_at = NULL
         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
        &[&tenant, &collection, &id, &seq],
    )
    .await?;
    Ok(())
}

/// Takes the transaction-scoped lock that makes writes of one UID in one collection
/// take turns, then returns the live item (other than `except`) holding the UID.
pub(crate) async fn lock_uid(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
    uid: &str,
    except: &[&str],
) -> Result<Option<String>> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&uid_lock_key(collection, uid)],
    )
    .await?;
    let except: Vec<String> = except.iter().map(|s| s.to_string()).collect();
    let other = tx
        .query_opt(
            "SELECT name FROM items WHERE tenant_id = $1 AND collection_id = $2 AND uid = $3
               AND NOT (name = ANY($4)) AND NOT deleted LIMIT 1",
            &[&tenant, &collection, &uid, &except],
        )
        .await?;
    Ok(other.map(|r| r.get(0)))
}

/// Reserves `n` journal sequence numbers in a collection; returns the first. Locks the
/// collection row until the transaction ends, so sequences are gap-free and ordered.
pub(crate) async fn reserve_seqs(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
    n: i64,
) -> Result<i64> {
    let row = tx
        .query_opt(
            "UPDATE collections SET journal_head = journal_head + $3 WHERE tenant_id = $1 AND id = $2 RETURNING journal_head",
            &[&tenant, &collection, &n],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
    Ok(row.get::<_, i64>(0) - n + 1)
}

/// Appends one journal entry: `op` is upsert or delete, `origin` backend or gateway;
/// back-end writes carry the fencing token they were made under.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn journal(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
    seq: i64,
    item: Uuid,
    op: &str,
    origin: &str,
    token: Option<i64>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO journal (tenant_id, collection_id, seq, item_id, op, origin, fencing_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&tenant, &collection, &seq, &item, &op, &origin, &token],
    )
    .await?;
    Ok(())
}

/// Journals many back-end upserts at once: `seqs[i]` for item `ids[i]`, under the
/// packet's fencing token.
pub(crate) async fn journal_upserts(
    tx: &tokio_postgres::Transaction<'_>,
    (tenant, collection): (Uuid, Uuid),
    seqs: &[i64],
    ids: &[Uuid],
    token: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO journal (tenant_id, collection_id, seq, item_id, op, origin, fencing_token)
         SELECT $1, $2, u.seq, u.id, 'upsert', 'backend', $5
         FROM UNNEST($3::bigint[], $4::uuid[]) AS u(seq, id)",
        &[&tenant, &collection, &seqs, &ids, &token],
    )
    .await?;
    Ok(())
}

/// The last journal sequence of a collection, read in `tx`'s snapshot.
async fn journal_head(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
) -> Result<i64> {
    tx.query_opt(
        "SELECT journal_head FROM collections WHERE tenant_id = $1 AND id = $2",
        &[&tenant, &collection],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))
}

/// Announces gateway-side changes so the replica holding the connector nudges it.
pub(crate) async fn notify(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
) -> Result<()> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANGES_CHANNEL, &format!("{tenant}:{collection}")],
    )
    .await?;
    Ok(())
}

/// Announces changes a connector brought from the back end (IMAP sessions idling on
/// the mailbox wake; connectors do not).
pub(crate) async fn notify_backend_change(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    collection: Uuid,
) -> Result<()> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANGES_CHANNEL, &format!("{tenant}:{collection}:backend")],
    )
    .await?;
    Ok(())
}

impl Store {
    /// The index of a collection and the journal head it reflects: every item the
    /// back end has, or `only` those with one of these back-end hrefs or ids.
    pub async fn index(
        &self,
        tenant: Uuid,
        collection: Uuid,
        only: Option<(&[String], &[Uuid])>,
    ) -> Result<Index> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let head = journal_head(&tx, tenant, collection).await?;
        const COLUMNS: &str = "SELECT id, backend_href, COALESCE(backend_version, ''), COALESCE(base_flags, '{}'),
                                      body_sha256, size, message_id, COALESCE(flags, '{}') FROM items
                               WHERE tenant_id = $1 AND collection_id = $2 AND backend_href IS NOT NULL";
        let (rows, total) = match only {
            None => {
                let rows = tx.query(COLUMNS, &[&tenant, &collection]).await?;
                let total = rows.len() as u64;
                (rows, total)
            }
            Some((hrefs, ids)) => {
                let rows = tx
                    .query(
                        &format!("{COLUMNS} AND (backend_href = ANY($3) OR id = ANY($4))"),
                        &[&tenant, &collection, &hrefs, &ids],
                    )
                    .await?;
                let total: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM items
                         WHERE tenant_id = $1 AND collection_id = $2 AND backend_href IS NOT NULL",
                        &[&tenant, &collection],
                    )
                    .await?
                    .get(0);
                (rows, total as u64)
            }
        };
        tx.commit().await?;
        Ok(Index {
            entries: rows
                .iter()
                .map(|r| IndexEntry {
                    item_id: r.get(0),
                    backend_href: r.get(1),
                    backend_version: r.get(2),
                    current_flags: {
                        let (base, now): (Vec<String>, Vec<String>) = (r.get(3), r.get(7));
                        (!same_set(&base, &now)).then_some(now)
                    },
                    flags: r.get(3),
                    key: r
                        .get::<_, Option<Vec<u8>>>(4)
                        .map(|sha| (sha, r.get::<_, Option<i64>>(5).unwrap_or(0), r.get(6))),
                })
                .collect(),
            head,
            total,
        })
    }

    /// The gateway-side changes waiting for the back end, and the journal head: the
    /// latest state of every item whose change is not yet acknowledged. Several journal
    /// entries of one item arrive as one change.
    pub async fn pending_changes(
        &self,
        tenant: Uuid,
        collection: Uuid,
    ) -> Result<(Vec<PendingChange>, i64)> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let head = journal_head(&tx, tenant, collection).await?;
        let rows = tx
            .query(
                // A message's bytes live in message_bodies: a flag change carries none
                // (the back end has the message), a message the back end does not
                // have yet (appended on the gateway) carries its body.
                "SELECT id, pending_seq, uid, backend_href, backend_version,
                        CASE WHEN body_sha256 IS NULL THEN content
                             WHEN backend_href IS NULL AND moved_from_collection IS NULL AND size <= $3 THEN
                                 (SELECT b.body FROM message_bodies b
                                  WHERE b.tenant_id = items.tenant_id AND b.sha256 = items.body_sha256)
                             ELSE ''::bytea END,
                        content_type, deleted,
                        (EXTRACT(EPOCH FROM changed_at) * 1000)::bigint, flags, base_content,
                        moved_away, moved_from_collection, moved_from_href,
                        CASE WHEN backend_href IS NULL THEN body_sha256 END, size
                 FROM items WHERE tenant_id = $1 AND collection_id = $2 AND pending_seq IS NOT NULL
                   AND refused_seq IS DISTINCT FROM pending_seq
                 ORDER BY pending_seq",
                &[&tenant, &collection, &INLINE_BODY],
            )
            .await?;
        tx.commit().await?;
        Ok((
            rows.iter()
                .map(|r| {
                    let deleted: bool = r.get(7);
                    PendingChange {
                        item_id: r.get(0),
                        seq: r.get(1),
                        uid: r.get(2),
                        backend_href: r.get(3),
                        backend_version: r.get(4),
                        content: if deleted { None } else { r.get(5) },
                        content_type: r.get(6),
                        changed_at_ms: r.get(8),
                        flags: r.get(9),
                        base: r.get(10),
                        moved_away: r.get(11),
                        moved_from: r
                            .get::<_, Option<String>>(12)
                            .zip(r.get::<_, Option<String>>(13)),
                        body: r
                            .get::<_, Option<Vec<u8>>>(14)
                            .filter(|_| !deleted)
                            .map(|sha| (sha, r.get::<_, Option<i64>>(15).unwrap_or(0))),
                    }
                })
                .collect(),
            head,
        ))
    }

    /// Store API: creates or replaces item `name` with the client's bytes (kept as
    /// sent), records it in the journal as a gateway-side change and wakes the
    /// connector. `if_match`: the ETag the caller expects (a stale one is a conflict).
    pub async fn put_item(
        &self,
        tenant: Uuid,
        collection: Uuid,
        name: &str,
        data: &[u8],
        content_type: &str,
        if_match: Option<&str>,
    ) -> Result<Item> {
        match self
            .put_item_checked(tenant, collection, name, data, content_type, if_match, None)
            .await?
        {
            Put::Done(item) => Ok(item),
            Put::UidTaken(other) | Put::UidChanged(other) => {
                Err(StoreError::Conflict(format!("UID in use by {other:?}")))
            }
        }
    }

    /// [`Store::put_item`] for a client's PUT: with `uid`, the collection keeps one
    /// live item per UID, checked in the write's own transaction (writes of one UID
    /// take turns on a transaction-scoped lock), so two clients putting one UID under
    /// two names at once cannot both succeed; and an existing item keeps its UID.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_item_checked(
        &self,
        tenant: Uuid,
        collection: Uuid,
        name: &str,
        data: &[u8],
        content_type: &str,
        if_match: Option<&str>,
        uid_rule: Option<&str>,
    ) -> Result<Put> {
        if name.is_empty() || name.contains('/') {
            return Err(StoreError::Invalid(format!(
                "item name {name:?} must be one path segment"
            )));
        }
        let uid = content::uid(data).unwrap_or_default();
        let etag = content::etag_of(data);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if let Some(u) = uid_rule.filter(|u| !u.is_empty())
            && let Some(other) = lock_uid(&tx, tenant, collection, u, &[name]).await?
        {
            return Ok(Put::UidTaken(other));
        }
        let seq = reserve_seqs(&tx, tenant, collection, 1).await?;
        let existing = tx
            .query_opt(
                "SELECT id, etag, backend_href, uid FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND name = $3 AND NOT deleted FOR UPDATE",
                &[&tenant, &collection, &name],
            )
            .await?;
        if let (Some(u), Some(row)) = (uid_rule, &existing) {
            let was: String = row.get(3);
            if !was.is_empty() && was != u {
                return Ok(Put::UidChanged(name.to_string()));
            }
        }
        let backend_href: Option<String> = existing.as_ref().and_then(|r| r.get(2));
        if let Some(expected) = if_match {
            match &existing {
                Some(row) if row.get::<_, String>(1) == expected => {}
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "item {name:?} does not match {expected}"
                    )));
                }
            }
        }
        let id = write_in_tx(
            &tx,
            tenant,
            collection,
            (name, data, content_type),
            existing.as_ref().map(|r| r.get(0)),
            seq,
        )
        .await?;
        journal(&tx, tenant, collection, seq, id, "upsert", "gateway", None).await?;
        notify(&tx, tenant, collection).await?;
        tx.commit().await?;
        Ok(Put::Done(Item {
            id,
            name: name.to_string(),
            uid,
            content: data.to_vec(),
            etag,
            backend_href,
            pending: true,
        }))
    }

    /// Store API: deletes item `name` on the gateway side; the deletion reaches the back
    /// end through the connector.
    pub async fn delete_item(
        &self,
        tenant: Uuid,
        collection: Uuid,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let seq = reserve_seqs(&tx, tenant, collection, 1).await?;
        let row = tx
            .query_opt(
                "SELECT id, etag FROM items WHERE tenant_id = $1 AND collection_id = $2 AND name = $3 AND NOT deleted FOR UPDATE",
                &[&tenant, &collection, &name],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("item {name:?}")))?;
        if let Some(expected) = if_match
            && row.get::<_, String>(1) != expected
        {
            return Err(StoreError::Conflict(format!(
                "item {name:?} does not match {expected}"
            )));
        }
        let id: Uuid = row.get(0);
        delete_in_tx(&tx, tenant, collection, id, seq).await?;
        journal(&tx, tenant, collection, seq, id, "delete", "gateway", None).await?;
        notify(&tx, tenant, collection).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live items of a collection, by name.
    pub async fn list_items(&self, tenant: Uuid, collection: Uuid) -> Result<Vec<Item>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, name, uid, content, etag, backend_href, pending_seq IS NOT NULL FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND NOT deleted ORDER BY name",
                &[&tenant, &collection],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Item {
                id: r.get(0),
                name: r.get(1),
                uid: r.get(2),
                content: r.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
                etag: r.get(4),
                backend_href: r.get(5),
                pending: r.get(6),
            })
            .collect())
    }
}
