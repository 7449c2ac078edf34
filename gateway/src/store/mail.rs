//! Mail in the store: message bodies kept once per tenant and content hash and read
//! by range, and the gateway's own UIDs and UIDVALIDITY per mailbox.
//!
//! A body is written before the item that points at it (a foreign key holds them
//! together); writing the same bytes again is a no-op, so a message copied to three
//! mailboxes, or imported again after a crash, is stored once. Reads take a range:
//! bodies are stored out of line and uncompressed, so PostgreSQL fetches only the
//! pages holding it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Result, Store, StoreError};

/// A message a packet imports: the item, its bytes, its flags, its internal date.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filed<'a> {
    /// The item (already written by the packet).
    pub item: Uuid,
    /// The message's bytes.
    pub body: &'a [u8],
    /// Its flags (both sides agree on them now).
    pub flags: &'a [String],
    /// Its internal date, Unix milliseconds.
    pub internal_date_ms: Option<i64>,
    /// The body came in parts under an upload, or is held already (then `body` is
    /// empty); with the Message-ID.
    pub upload: Option<(&'a super::packet::BodyRef, Option<&'a str>)>,
    /// The body, sent whole, was stored already, before the packet's transaction
    /// (see [`store_early`]).
    pub stored: Option<&'a Body>,
}

/// What an item of a mailbox keeps of its body: the hash that names it, its size,
/// its Message-ID.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub sha: Vec<u8>,
    pub size: i64,
    pub mid: Option<String>,
}

impl Body {
    /// What an item keeps of `bytes`.
    pub fn of(bytes: &[u8]) -> Body {
        Body {
            sha: Sha256::digest(bytes).to_vec(),
            size: bytes.len() as i64,
            mid: postern_core::mail::key::message_id(bytes),
        }
    }

    /// The item's ETag, from the same hash.
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(&self.sha[..16.min(self.sha.len())]))
    }
}

/// The columns of new messages' items beside the common ones, one entry per item
/// (empty for other kinds: their items have none).
#[derive(Debug, Default)]
pub(crate) struct MailColumns {
    pub sha: Vec<Vec<u8>>,
    pub size: Vec<i64>,
    pub mid: Vec<Option<String>>,
    pub date: Vec<Option<i64>>,
    pub guid: Vec<i64>,
}

impl MailColumns {
    pub fn push(&mut self, body: &Body, internal_date_ms: Option<i64>, gateway_uid: i64) {
        self.sha.push(body.sha.clone());
        self.size.push(body.size);
        self.mid.push(body.mid.clone());
        self.date.push(internal_date_ms);
        self.guid.push(gateway_uid);
    }
}

/// Writes the bodies of `messages` in the packet's transaction, each once per tenant
/// and content (one sent in parts is assembled; one held already is looked up), and
/// returns what their items keep of them, in order.
pub(crate) async fn file_bodies(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    messages: &[Filed<'_>],
) -> Result<Vec<Body>> {
    let mut out: Vec<Body> = Vec::with_capacity(messages.len());
    for m in messages {
        out.push(match m.upload {
            Some((super::packet::BodyRef::Upload(upload), mid)) => {
                let (sha, size) = assemble(tx, tenant, *upload).await?;
                Body {
                    sha,
                    size,
                    mid: mid.map(str::to_string),
                }
            }
            Some((super::packet::BodyRef::Known(sha), mid)) => {
                let size: i64 = tx
                    .query_opt(
                        "SELECT size FROM message_bodies WHERE tenant_id = $1 AND sha256 = $2",
                        &[&tenant, sha],
                    )
                    .await?
                    .ok_or_else(|| {
                        StoreError::Invalid("a message body the gateway does not hold".into())
                    })?
                    .get(0);
                Body {
                    sha: sha.clone(),
                    size,
                    mid: mid.map(str::to_string),
                }
            }
            None => match m.stored {
                Some(body) => body.clone(),
                // Filled in below, all in one statement.
                None => Body {
                    sha: Vec::new(),
                    size: 0,
                    mid: None,
                },
            },
        });
    }
    let inline: Vec<usize> = (0..messages.len())
        .filter(|i| messages[*i].upload.is_none() && messages[*i].stored.is_none())
        .collect();
    if !inline.is_empty() {
        let bodies: Vec<&[u8]> = inline.iter().map(|i| messages[*i].body).collect();
        for (i, body) in inline
            .into_iter()
            .zip(store_bodies(tx, tenant, &bodies).await?)
        {
            out[i] = body;
        }
    }
    Ok(out)
}

/// Stores `bodies` once per tenant and content; returns what items keep of them, in
/// order.
async fn store_bodies(
    c: &impl tokio_postgres::GenericClient,
    tenant: Uuid,
    bodies: &[&[u8]],
) -> Result<Vec<Body>> {
    let out: Vec<Body> = bodies.iter().map(|b| Body::of(b)).collect();
    let (shas, sizes): (Vec<&Vec<u8>>, Vec<i64>) = out.iter().map(|b| (&b.sha, b.size)).unzip();
    c.execute(
        "INSERT INTO message_bodies (tenant_id, sha256, size, body)
         SELECT $1, u.sha, u.size, u.body FROM UNNEST($2::bytea[], $3::bigint[], $4::bytea[])
              AS u(sha, size, body)
         ON CONFLICT DO NOTHING",
        &[&tenant, &shas, &sizes, &bodies],
    )
    .await?;
    Ok(out)
}

/// Stores the bodies a mailbox's packet sends whole before the packet's transaction
/// begins, keyed by the change's place in the packet. The transaction then holds the
/// mailbox's locks only for the items: a connector's next packet, sent before this
/// one's verdict, stores its bodies (most of an import's work) while this one
/// commits. Bodies are content-addressed and immutable, so storing them early is
/// safe; those of a packet that is then refused (its base stale, its lease lost
/// meanwhile) are removed as unreferenced, after the grace period of
/// [`Store::collect_bodies`].
pub(crate) async fn store_early(
    c: &tokio_postgres::Client,
    tenant: Uuid,
    packet: &super::packet::Packet,
) -> Result<std::collections::HashMap<usize, Body>> {
    let whole: Vec<(usize, &[u8])> = packet
        .changes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            super::packet::PacketChange::Import {
                content,
                upload: None,
                ..
            } => Some((i, content.as_slice())),
            _ => None,
        })
        .collect();
    if whole.is_empty() {
        return Ok(Default::default());
    }
    // Only for a mailbox, and only under the current fencing token: a writer that
    // lost its lease stores nothing (the transaction refuses the packet).
    let current = c
        .query_opt(
            "SELECT 1 FROM collections c JOIN leases l
                 ON l.tenant_id = c.tenant_id AND l.collection_id = c.id
             WHERE c.tenant_id = $1 AND c.id = $2 AND c.kind = 'mailbox' AND l.fencing_token = $3",
            &[&tenant, &packet.collection, &(packet.fencing_token as i64)],
        )
        .await?
        .is_some();
    if !current {
        return Ok(Default::default());
    }
    let bodies: Vec<&[u8]> = whole.iter().map(|(_, b)| *b).collect();
    let stored = copy_bodies(c, tenant, &bodies).await?;
    Ok(whole.iter().map(|(i, _)| *i).zip(stored).collect())
}

/// Stores `bodies` once per tenant and content with COPY, outside any transaction:
/// the ones held already are left out, and if another writer stored one of the rest
/// meanwhile (the COPY then fails whole), it is tried again. COPY costs PostgreSQL
/// half the CPU of an INSERT of the same bytes from arrays (the `mail_bench` figures).
async fn copy_bodies(
    c: &tokio_postgres::Client,
    tenant: Uuid,
    bodies: &[&[u8]],
) -> Result<Vec<Body>> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;

    let out: Vec<Body> = bodies.iter().map(|b| Body::of(b)).collect();
    let mut attempt = 0;
    loop {
        let shas: Vec<&Vec<u8>> = out.iter().map(|b| &b.sha).collect();
        let mut done: std::collections::HashSet<Vec<u8>> = c
            .query(
                "SELECT sha256 FROM message_bodies WHERE tenant_id = $1 AND sha256 = ANY($2)",
                &[&tenant, &shas],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let sink = c
            .copy_in("COPY message_bodies (tenant_id, sha256, size, body) FROM STDIN BINARY")
            .await?;
        let writer =
            BinaryCopyInWriter::new(sink, &[Type::UUID, Type::BYTEA, Type::INT8, Type::BYTEA]);
        futures::pin_mut!(writer);
        for (body, bytes) in out.iter().zip(bodies) {
            // Once each: a packet may hold the same bytes twice.
            if done.insert(body.sha.clone()) {
                writer
                    .as_mut()
                    .write(&[&tenant, &body.sha, &body.size, bytes])
                    .await?;
            }
        }
        match writer.finish().await {
            Ok(_) => return Ok(out),
            Err(e)
                if attempt < 2
                    && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Files messages imported again into items the mailbox has (new items are written
/// whole by the packet, with [`file_bodies`]): each body once per tenant and content,
/// the item pointing at it (its own `content` cleared: the bytes are kept once),
/// with size, Message-ID, internal date, the flags as the agreed base, and a gateway
/// UID if it has none.
pub(crate) async fn file_messages(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    mailbox: Uuid,
    messages: &[Filed<'_>],
) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let n = u32::try_from(messages.len())
        .map_err(|_| StoreError::Invalid("too many messages in one packet".into()))?;
    let first = Store::take_gateway_uids(tx, tenant, mailbox, n).await?;
    let bodies = file_bodies(tx, tenant, messages).await?;
    let shas: Vec<&Vec<u8>> = bodies.iter().map(|b| &b.sha).collect();
    let sizes: Vec<i64> = bodies.iter().map(|b| b.size).collect();
    let mids: Vec<Option<&str>> = bodies.iter().map(|b| b.mid.as_deref()).collect();
    let ids: Vec<Uuid> = messages.iter().map(|m| m.item).collect();
    let dates: Vec<Option<i64>> = messages.iter().map(|m| m.internal_date_ms).collect();
    let flags: Vec<String> = messages.iter().map(|m| m.flags.join(" ")).collect();
    let uids: Vec<i64> = (0..messages.len() as i64)
        .map(|i| i64::from(first) + i)
        .collect();
    tx.execute(
        "UPDATE items i SET content = NULL, body_sha256 = u.sha, size = u.size,
                etag = '\"' || encode(substring(u.sha FROM 1 FOR 16), 'hex') || '\"',
                message_id = u.mid, uid = COALESCE(u.mid, ''),
                internal_date = to_timestamp(u.date / 1000.0),
                base_flags = COALESCE(string_to_array(NULLIF(u.flags, ''), ' '), '{}'),
                gateway_uid = COALESCE(i.gateway_uid, u.guid)
         FROM UNNEST($3::uuid[], $4::bytea[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::bigint[])
              AS u(id, sha, size, mid, date, flags, guid)
         WHERE i.tenant_id = $1 AND i.collection_id = $2 AND i.id = u.id",
        &[&tenant, &mailbox, &ids, &shas, &sizes, &mids, &dates, &flags, &uids],
    )
    .await?;
    Ok(())
}

/// A packet's flags-only change to one message (see [`write_flags`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagWrite<'a> {
    pub item: Uuid,
    /// The flags the back end has now (the gateway's, too).
    pub flags: &'a [String],
    /// The agreed base, when the gateway keeps other flags (merge mode); else the
    /// flags are the base.
    pub base: Option<&'a [String]>,
    /// The href the back end gave the message, when it is new to the index.
    pub href: Option<&'a str>,
    pub version: &'a str,
    /// The gateway change this settles.
    pub settles: Option<i64>,
    /// The journal sequence of this change.
    pub seq: i64,
}

/// Writes a packet's flag changes in two statements whatever their number (a
/// thousand messages marked read is one packet): the items, then the journal. An item
/// the mailbox does not have (or has deleted) is returned; the caller refuses the
/// packet and its transaction is not committed.
pub(crate) async fn write_flags(
    tx: &tokio_postgres::Transaction<'_>,
    (tenant, mailbox): (Uuid, Uuid),
    token: i64,
    writes: &[FlagWrite<'_>],
) -> Result<Option<Uuid>> {
    if writes.is_empty() {
        return Ok(None);
    }
    // Flags are IMAP atoms (no spaces): each list travels as one string.
    let ids: Vec<Uuid> = writes.iter().map(|w| w.item).collect();
    let flags: Vec<String> = writes.iter().map(|w| w.flags.join(" ")).collect();
    let bases: Vec<Option<String>> = writes.iter().map(|w| w.base.map(|b| b.join(" "))).collect();
    let hrefs: Vec<Option<&str>> = writes.iter().map(|w| w.href).collect();
    let versions: Vec<&str> = writes.iter().map(|w| w.version).collect();
    let settles: Vec<Option<i64>> = writes.iter().map(|w| w.settles).collect();
    let seqs: Vec<i64> = writes.iter().map(|w| w.seq).collect();
    let updated = tx
        .query(
            "UPDATE items i SET flags = COALESCE(string_to_array(NULLIF(u.flags, ''), ' '), '{}'),
                    base_flags = COALESCE(string_to_array(NULLIF(u.base, ''), ' '),
                                          CASE WHEN u.base IS NULL
                                               THEN COALESCE(string_to_array(NULLIF(u.flags, ''), ' '), '{}')
                                               ELSE '{}' END),
                    backend_version = u.version,
                    backend_href = COALESCE(u.href, i.backend_href),
                    last_seq = u.seq, changed_at = now(),
                    pending_seq = CASE WHEN i.pending_seq = u.settles THEN NULL ELSE i.pending_seq END
             FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])
                  AS u(id, flags, base, href, version, settles, seq)
             WHERE i.tenant_id = $1 AND i.collection_id = $2 AND i.id = u.id AND NOT i.deleted
             RETURNING i.id",
            &[&tenant, &mailbox, &ids, &flags, &bases, &hrefs, &versions, &settles, &seqs],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                StoreError::Invalid("another message already has this back-end href".into())
            } else {
                StoreError::from(e)
            }
        })?;
    if updated.len() < writes.len() {
        let found: std::collections::HashSet<Uuid> = updated.iter().map(|r| r.get(0)).collect();
        return Ok(ids.into_iter().find(|i| !found.contains(i)));
    }
    super::items::journal_upserts(tx, (tenant, mailbox), &seqs, &ids, token).await?;
    Ok(None)
}

/// A mailbox's identity for IMAP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayUids {
    /// The mailbox's UIDVALIDITY as clients see it.
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub next_uid: u32,
}

impl Store {
    /// Which of `hashes` name a body `tenant` holds.
    pub async fn bodies_held(
        &self,
        tenant: Uuid,
        hashes: &[Vec<u8>],
    ) -> Result<std::collections::HashSet<Vec<u8>>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT sha256 FROM message_bodies WHERE tenant_id = $1 AND sha256 = ANY($2)",
            &[&tenant, &hashes],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// Keeps `body` for `tenant` (once per content) and returns its SHA-256.
    pub async fn put_body(&self, tenant: Uuid, body: &[u8]) -> Result<[u8; 32]> {
        let sha: [u8; 32] = Sha256::digest(body).into();
        let c = self.client().await?;
        c.execute(
            "INSERT INTO message_bodies (tenant_id, sha256, size, body)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&tenant, &sha.as_slice(), &(body.len() as i64), &body],
        )
        .await?;
        Ok(sha)
    }

    /// `len` bytes of a body from `offset` (fewer at its end, none past it); `None`
    /// when the tenant has no such body.
    pub async fn body_range(
        &self,
        tenant: Uuid,
        sha: &[u8; 32],
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>> {
        // substring counts from 1, in int; a body is far below 2 GiB.
        let clamp = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        let (from, count) = (clamp(offset).saturating_add(1), clamp(len));
        let rows = self
            .read(
                "SELECT substring(body FROM $3 FOR $4)
                 FROM message_bodies WHERE tenant_id = $1 AND sha256 = $2",
                &[&tenant, &sha.as_slice(), &from, &count],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// A range of a body a pending change of `collection` names (a message the back
    /// end does not have yet), with the body's whole size: `None` when no pending
    /// change of that collection names it (a connector reads only what it must
    /// write).
    pub async fn pending_body_range(
        &self,
        tenant: Uuid,
        collection: Uuid,
        sha: &[u8],
        (offset, len): (u64, u64),
    ) -> Result<Option<(Vec<u8>, u64)>> {
        let clamp = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        let (from, count) = (clamp(offset).saturating_add(1), clamp(len));
        let rows = self
            .read(
                "SELECT substring(b.body FROM $4 FOR $5), b.size FROM message_bodies b
                 WHERE b.tenant_id = $1 AND b.sha256 = $3
                   AND EXISTS (SELECT 1 FROM items i
                               WHERE i.tenant_id = $1 AND i.collection_id = $2
                                 AND i.body_sha256 = $3 AND i.pending_seq IS NOT NULL)",
                &[&tenant, &collection, &sha, &from, &count],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64)))
    }

    /// The gateway UIDVALIDITY and next UID of a mailbox.
    pub async fn gateway_uids(&self, tenant: Uuid, mailbox: Uuid) -> Result<GatewayUids> {
        let rows = self
            .read(
                "SELECT gateway_uidvalidity, next_gateway_uid FROM collections
                 WHERE tenant_id = $1 AND id = $2 AND kind = 'mailbox'",
                &[&tenant, &mailbox],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        Ok(GatewayUids {
            uidvalidity: row.get::<_, i64>(0) as u32,
            next_uid: row.get::<_, i64>(1) as u32,
        })
    }

    /// Takes `n` consecutive UIDs of a mailbox in the caller's transaction (so that a
    /// rolled-back insert gives its UIDs back, and concurrent inserts take turns on
    /// the mailbox's row) and returns the first. UIDs only grow: a deleted message's
    /// UID is never given again.
    pub async fn take_gateway_uids(
        tx: &tokio_postgres::Transaction<'_>,
        tenant: Uuid,
        mailbox: Uuid,
        n: u32,
    ) -> Result<u32> {
        let row = tx
            .query_opt(
                "UPDATE collections SET next_gateway_uid = next_gateway_uid + $3
                 WHERE tenant_id = $1 AND id = $2 AND kind = 'mailbox'
                 RETURNING next_gateway_uid - $3",
                &[&tenant, &mailbox, &i64::from(n)],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let first: i64 = row.get(0);
        u32::try_from(first + i64::from(n) - 1)
            .map(|_| first as u32)
            .map_err(|_| StoreError::Invalid("the mailbox has used every UID".into()))
    }
}

impl Store {
    /// Store API: a client set the flags of a message on the gateway. Journalled
    /// like any gateway-side change (it waits for the back end while that is away)
    /// and announced, so the connector writes it at once; the connector merges it
    /// per flag with what the back end did meanwhile.
    pub async fn set_message_flags(
        &self,
        tenant: Uuid,
        mailbox: Uuid,
        item: Uuid,
        flags: &[String],
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let seq = super::items::reserve_seqs(&tx, tenant, mailbox, 1).await?;
        let n = tx
            .execute(
                "UPDATE items SET flags = $4, pending_seq = $5, last_seq = $5, changed_at = now()
                 WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND NOT deleted
                   AND body_sha256 IS NOT NULL",
                &[&tenant, &mailbox, &item, &flags, &seq],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("message {item}")));
        }
        super::items::journal(&tx, tenant, mailbox, seq, item, "upsert", "gateway", None).await?;
        super::items::notify(&tx, tenant, mailbox).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Store API: a client expunged a message on the gateway. It leaves the gateway
    /// at once (a tombstone for sync) and the expunge waits for the back end.
    pub async fn expunge_message(&self, tenant: Uuid, mailbox: Uuid, item: Uuid) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let seq = super::items::reserve_seqs(&tx, tenant, mailbox, 1).await?;
        let n = tx
            .execute(
                "UPDATE items SET deleted = true, pending_seq = $4, last_seq = $4, changed_at = now()
                 WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND NOT deleted
                   AND body_sha256 IS NOT NULL",
                &[&tenant, &mailbox, &item, &seq],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("message {item}")));
        }
        super::items::journal(&tx, tenant, mailbox, seq, item, "delete", "gateway", None).await?;
        super::items::notify(&tx, tenant, mailbox).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Store API: a client appended a message (a draft, a sent message). It is kept
    /// at once (body once per content, a gateway UID) and waits for the back end,
    /// which gives it its own UID. Returns the item's id and gateway UID.
    pub async fn append_message(
        &self,
        tenant: Uuid,
        mailbox: Uuid,
        body: &[u8],
        flags: &[String],
    ) -> Result<(Uuid, u32)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let filed = file_appended(&tx, tenant, mailbox, body, flags).await?;
        tx.commit().await?;
        Ok(filed)
    }

    /// A live message of `mailbox` with exactly these bytes: its id and gateway UID.
    pub async fn live_message_with(
        &self,
        tenant: Uuid,
        mailbox: Uuid,
        body: &[u8],
    ) -> Result<Option<(Uuid, u32)>> {
        let sha = Sha256::digest(body).to_vec();
        let rows = self
            .read(
                "SELECT id, gateway_uid FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND body_sha256 = $3 AND NOT deleted
                   AND gateway_uid IS NOT NULL
                 LIMIT 1",
                &[&tenant, &mailbox, &sha],
            )
            .await?;
        Ok(rows.first().map(|r| (r.get(0), r.get::<_, i64>(1) as u32)))
    }
}

/// Files a message a client (or the gateway) appended into `mailbox`, in the
/// caller's transaction: body once per content, a gateway UID, journalled and
/// announced, waiting for the back end. Returns the item's id and gateway UID.
pub(crate) async fn file_appended(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    mailbox: Uuid,
    body: &[u8],
    flags: &[String],
) -> Result<(Uuid, u32)> {
    let seq = super::items::reserve_seqs(tx, tenant, mailbox, 1).await?;
    let uid = Store::take_gateway_uids(tx, tenant, mailbox, 1).await?;
    let sha = Sha256::digest(body).to_vec();
    tx.execute(
        "INSERT INTO message_bodies (tenant_id, sha256, size, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &[&tenant, &sha, &(body.len() as i64), &body],
    )
    .await?;
    let id = Uuid::new_v4();
    let mid = postern_core::mail::key::message_id(body);
    tx.execute(
        "INSERT INTO items (tenant_id, collection_id, id, uid, name, content_type, etag, flags,
                            body_sha256, size, message_id, internal_date, gateway_uid,
                            pending_seq, last_seq)
         VALUES ($1, $2, $3, COALESCE($4, ''), $5, 'message/rfc822', $6, $7, $8, $9, $4, now(),
                 $10, $11, $11)",
        &[
            &tenant,
            &mailbox,
            &id,
            &mid,
            &format!("{uid}.eml"),
            &format!("\"{}\"", hex::encode(&sha[..16])),
            &flags,
            &sha,
            &(body.len() as i64),
            &i64::from(uid),
            &seq,
        ],
    )
    .await?;
    super::items::journal(tx, tenant, mailbox, seq, id, "upsert", "gateway", None).await?;
    super::items::notify(tx, tenant, mailbox).await?;
    Ok((id, uid))
}

/// The largest message body an upload may assemble.
pub const MAX_UPLOAD_BYTES: u64 = 512 << 20;

/// What became of one part of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Kept.
    Accepted,
    /// The lease's fencing token is not this one.
    StaleFence(String),
    /// Out of order, too large, or otherwise wrong.
    Invalid(String),
}

impl Store {
    /// Keeps one part of a body upload (see `BodyPart` on the link), in order and
    /// under the collection's current fencing token.
    pub async fn add_body_part(
        &self,
        tenant: Uuid,
        collection: Uuid,
        fencing_token: i64,
        upload: Uuid,
        (offset, total): (u64, u64),
        data: &[u8],
    ) -> Result<PartOutcome> {
        if total > MAX_UPLOAD_BYTES || offset.saturating_add(data.len() as u64) > total {
            return Ok(PartOutcome::Invalid(format!(
                "part {offset}+{} of {total} bytes: beyond the upload (at most {MAX_UPLOAD_BYTES} bytes)",
                data.len()
            )));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let token: Option<i64> = tx
            .query_opt(
                "SELECT fencing_token FROM leases WHERE tenant_id = $1 AND collection_id = $2",
                &[&tenant, &collection],
            )
            .await?
            .map(|r| r.get(0));
        if token != Some(fencing_token) {
            return Ok(PartOutcome::StaleFence(format!(
                "fencing token {fencing_token} is not the current one"
            )));
        }
        let next: i64 = tx
            .query_one(
                "SELECT COALESCE(max(\"offset\" + length(data)), 0)::bigint FROM body_uploads
                 WHERE tenant_id = $1 AND upload_id = $2",
                &[&tenant, &upload],
            )
            .await?
            .get(0);
        if next as u64 != offset {
            return Ok(PartOutcome::Invalid(format!(
                "part at {offset}, expected {next}: parts come in order"
            )));
        }
        tx.execute(
            "DELETE FROM body_uploads WHERE tenant_id = $1 AND created_at < now() - interval '1 day'",
            &[&tenant],
        )
        .await?;
        tx.execute(
            "INSERT INTO body_uploads (tenant_id, upload_id, \"offset\", total, data) VALUES ($1, $2, $3, $4, $5)",
            &[&tenant, &upload, &(offset as i64), &(total as i64), &data],
        )
        .await?;
        tx.commit().await?;
        Ok(PartOutcome::Accepted)
    }
}

/// Assembles a finished upload into `message_bodies` inside the packet's
/// transaction (the bytes never leave the database) and returns its SHA-256 and size.
pub(crate) async fn assemble(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    upload: Uuid,
) -> Result<(Vec<u8>, i64)> {
    let row = tx
        .query_one(
            "SELECT sha256(COALESCE(string_agg(data, ''::bytea ORDER BY \"offset\"), ''::bytea)),
                    COALESCE(sum(length(data)), 0)::bigint, COALESCE(max(total), -1)
             FROM body_uploads WHERE tenant_id = $1 AND upload_id = $2",
            &[&tenant, &upload],
        )
        .await?;
    let (sha, size, total): (Vec<u8>, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if size != total {
        return Err(StoreError::Invalid(format!(
            "upload {upload} is incomplete: {size} of {total} bytes"
        )));
    }
    tx.execute(
        "INSERT INTO message_bodies (tenant_id, sha256, size, body)
         SELECT $1, $3, $4, string_agg(data, ''::bytea ORDER BY \"offset\")
         FROM body_uploads WHERE tenant_id = $1 AND upload_id = $2
         ON CONFLICT DO NOTHING",
        &[&tenant, &upload, &sha, &size],
    )
    .await?;
    tx.execute(
        "DELETE FROM body_uploads WHERE tenant_id = $1 AND upload_id = $2",
        &[&tenant, &upload],
    )
    .await?;
    Ok((sha, size))
}
