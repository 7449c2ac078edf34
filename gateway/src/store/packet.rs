//! Committing a connector's change packet: all of it, or nothing.
//!
//! In one transaction the gateway
//! 1. locks the collection's lease row and refuses a fencing token that is not the
//!    current one (`StaleFence`): a holder paused past its expiry cannot write;
//! 2. refuses the packet if its base lacks a journal entry already recorded for an
//!    item whose content it writes (`StaleBase`): the connector must pull, re-plan
//!    and resend, so a change it never saw is never overwritten;
//! 3. applies the changes, appending a journal entry (origin `backend`) for every
//!    content change, keeps the conflict losers, and saves the connector's resume
//!    point (back-end state, cursor).

use std::collections::{HashMap, HashSet};

use postern_core::content;
use uuid::Uuid;

use super::items::{journal, reserve_seqs};
use super::{Result, Store, StoreError};

/// Where a message's bytes are when its change does not carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRef {
    /// Sent in parts under this upload (`BodyPart`).
    Upload(Uuid),
    /// Held already, under this SHA-256.
    Known(Vec<u8>),
}

/// One change of a packet, validated.
#[derive(Debug, Clone)]
pub enum PacketChange {
    /// Back-end content for a new item (`item_id: None`) or an existing one.
    Import {
        /// The item, if the gateway knows it.
        item_id: Option<Uuid>,
        /// Where it lives on the back end.
        backend_href: String,
        /// Its back-end version.
        backend_version: String,
        /// Its bytes.
        content: Vec<u8>,
        /// MIME type.
        content_type: String,
        /// The gateway change this settles.
        settles: Option<i64>,
        /// IMAP flags.
        flags: Vec<String>,
        /// What the back end holds when it is not `content` (a merge kept on the
        /// gateway only); `None` when it holds `content`.
        base: Option<Vec<u8>>,
        /// Mail: the internal date, Unix milliseconds.
        internal_date_ms: Option<i64>,
        /// Mail: the body is not in `content` (which is empty) but came in parts
        /// under an upload, or is one the gateway holds; with the message's
        /// Message-ID.
        upload: Option<(BodyRef, Option<String>)>,
    },
    /// Mail: the item's flags on both sides, and its back-end version (and href, when
    /// the back end just gave it one: an append); no body.
    Flags {
        /// The item.
        item_id: Uuid,
        /// Where it is on the back end, when that is new.
        backend_href: Option<String>,
        /// The flags the gateway holds now.
        flags: Vec<String>,
        /// The flags the back end holds, when not `flags` (merge mode).
        base_flags: Option<Vec<String>>,
        /// Its back-end version.
        backend_version: String,
        /// The gateway change this settles.
        settles: Option<i64>,
    },
    /// Where the item is on the back end now (`None` detaches it).
    Record {
        /// The item.
        item_id: Uuid,
        /// Its back-end href and version, or `None` to detach.
        backend: Option<(String, String)>,
        /// The gateway change this settles.
        settles: Option<i64>,
    },
    /// The back end deleted the item, or a gateway deletion is done on the back end.
    Delete {
        /// The item.
        item_id: Uuid,
        /// The gateway change this settles.
        settles: Option<i64>,
        /// Keep the item as it is on the gateway as a conflict loser first (a
        /// mirror-mode mailbox reverting a client's new message).
        keep_as_loser: bool,
    },
    /// Settles a gateway change without other effect.
    Ack {
        /// The item.
        item_id: Uuid,
        /// The change.
        settles: i64,
    },
    /// The back end refused a gateway change: set it aside (see migration 0006).
    Refused {
        /// The item.
        item_id: Uuid,
        /// The change refused.
        settles: i64,
        /// The back end's HTTP status.
        status: u16,
        /// The start of its answer.
        answer: String,
    },
}

/// A version that lost a conflict.
#[derive(Debug, Clone)]
pub struct LoserIn {
    /// The item, if known.
    pub item_id: Option<Uuid>,
    /// UID.
    pub uid: String,
    /// "backend" or "gateway".
    pub side: String,
    /// The losing bytes, `None` for a deletion.
    pub content: Option<Vec<u8>>,
    /// The policy that decided.
    pub policy: String,
    /// Back-end href.
    pub backend_href: String,
}

/// A validated change packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The collection.
    pub collection: Uuid,
    /// The journal sequence the connector planned against.
    pub base_seq: i64,
    /// Its fencing token.
    pub fencing_token: u64,
    /// The changes.
    pub changes: Vec<PacketChange>,
    /// Losing versions to keep.
    pub conflicts: Vec<LoserIn>,
    /// New back-end resume point, if any.
    pub backend_state: Option<String>,
    /// Pause the collection with this reason.
    pub pause_reason: Option<String>,
    /// Last packet of a round: the cursor moves to the base.
    pub is_final: bool,
}

/// What became of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Committed. The new cursor, and the ids of new items in change order.
    Accepted {
        /// The connector's new cursor.
        cursor: i64,
        /// New item ids, `None` for changes that created nothing.
        item_ids: Vec<Option<Uuid>>,
    },
    /// The base lacks entries for touched items.
    StaleBase(String),
    /// The fencing token is not current.
    StaleFence(String),
    /// The packet is malformed.
    Invalid(String),
}

/// The last path segment of an href, in canonical form, used as the item's name on
/// the gateway.
fn name_of(href: &str) -> String {
    let seg = href.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if seg.is_empty() {
        Uuid::new_v4().to_string()
    } else {
        postern_davproto::path::canonical(seg)
    }
}

impl Store {
    /// Commits a packet atomically (see the module documentation).
    pub async fn apply_packet(&self, tenant: Uuid, packet: &Packet) -> Result<PacketOutcome> {
        let mut c = self.client().await?;
        let early = super::mail::store_early(&c, tenant, packet).await?;
        let tx = c.transaction().await?;
        let coll = packet.collection;

        let lease = tx
            .query_opt(
                "SELECT fencing_token FROM leases WHERE tenant_id = $1 AND collection_id = $2 FOR UPDATE",
                &[&tenant, &coll],
            )
            .await?;
        let current = lease.map(|r| r.get::<_, i64>(0) as u64);
        if current != Some(packet.fencing_token) {
            return Ok(PacketOutcome::StaleFence(format!(
                "fencing token {} is not the current one ({})",
                packet.fencing_token,
                current.map_or("none".to_string(), |t| t.to_string())
            )));
        }

        // The base of the merge policy is kept for `merge` collections only. The
        // collection's row is locked here, before any item: every writer (a client's
        // PUT or DELETE, a packet) takes the collection first and its items after, so
        // two of them never wait on each other in opposite orders (a packet that only
        // acknowledged writes used to lock items first and deadlock a client's DELETE).
        let (keep_base, mailbox): (bool, bool) = tx
            .query_opt(
                "SELECT conflict = 'merge', kind = 'mailbox' FROM collections
                 WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
                &[&tenant, &coll],
            )
            .await?
            .map_or((false, false), |r| (r.get(0), r.get(1)));

        // StaleBase: only changes that write content are checked.
        let touched: Vec<Uuid> = packet
            .changes
            .iter()
            .filter_map(|c| match c {
                PacketChange::Import {
                    item_id: Some(id), ..
                }
                | PacketChange::Delete { item_id: id, .. }
                | PacketChange::Flags { item_id: id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut seen = HashSet::new();
        for change in &packet.changes {
            let id = match change {
                PacketChange::Import {
                    item_id: Some(id), ..
                }
                | PacketChange::Record { item_id: id, .. }
                | PacketChange::Delete { item_id: id, .. }
                | PacketChange::Ack { item_id: id, .. }
                | PacketChange::Refused { item_id: id, .. }
                | PacketChange::Flags { item_id: id, .. } => *id,
                PacketChange::Import { item_id: None, .. } => continue,
            };
            if !seen.insert(id) {
                return Ok(PacketOutcome::Invalid(format!(
                    "item {id} appears twice in one packet"
                )));
            }
        }
        if !touched.is_empty() {
            let stale = tx
                .query_opt(
                    "SELECT item_id, seq FROM journal
                     WHERE tenant_id = $1 AND collection_id = $2 AND seq > $3 AND item_id = ANY($4) LIMIT 1",
                    &[&tenant, &coll, &packet.base_seq, &touched],
                )
                .await?;
            if let Some(row) = stale {
                let (item, seq): (Uuid, i64) = (row.get(0), row.get(1));
                return Ok(PacketOutcome::StaleBase(format!(
                    "item {item} changed at seq {seq}, after the packet's base {}",
                    packet.base_seq
                )));
            }
        }

        let writes = packet
            .changes
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    PacketChange::Import { .. }
                        | PacketChange::Delete { settles: None, .. }
                        | PacketChange::Flags { .. }
                )
            })
            .count() as i64;
        let mut next_seq = if writes > 0 {
            reserve_seqs(&tx, tenant, coll, writes).await?
        } else {
            0
        };
        let mut item_ids = Vec::with_capacity(packet.changes.len());
        let token = packet.fencing_token as i64;

        // New items go in with one statement each for items and journal.
        let new: Vec<(usize, &PacketChange)> = packet
            .changes
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, PacketChange::Import { item_id: None, .. }))
            .collect();
        let mut new_ids: HashMap<usize, Uuid> = HashMap::new();
        if !new.is_empty() {
            let hrefs: Vec<&str> = new
                .iter()
                .filter_map(|(_, c)| match c {
                    PacketChange::Import { backend_href, .. } => Some(backend_href.as_str()),
                    _ => None,
                })
                .collect();
            let mut names: Vec<String> = hrefs.iter().map(|h| name_of(h)).collect();
            let (
                mut ids,
                mut uids,
                mut contents,
                mut types,
                mut etags,
                mut versions,
                mut seqs,
                mut flags,
                mut bases,
            ) = (
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
            );
            // A new message is written whole at once: its body goes to
            // `message_bodies` (once per content) first, and the item points at it,
            // with its gateway UID (new UIDs in the packet's order).
            let fresh: Vec<Uuid> = new.iter().map(|_| Uuid::new_v4()).collect();
            let (bodies, first_uid) = if mailbox {
                let filed: Vec<super::mail::Filed<'_>> = new
                    .iter()
                    .zip(&fresh)
                    .filter_map(|((at, c), id)| match c {
                        PacketChange::Import {
                            content,
                            flags,
                            internal_date_ms,
                            upload,
                            ..
                        } => Some(super::mail::Filed {
                            item: *id,
                            body: content,
                            flags,
                            internal_date_ms: *internal_date_ms,
                            upload: upload.as_ref().map(|(u, m)| (u, m.as_deref())),
                            stored: early.get(at),
                        }),
                        _ => None,
                    })
                    .collect();
                let n = u32::try_from(filed.len())
                    .map_err(|_| StoreError::Invalid("too many messages in one packet".into()))?;
                let first = Store::take_gateway_uids(&tx, tenant, coll, n).await?;
                (super::mail::file_bodies(&tx, tenant, &filed).await?, first)
            } else {
                (Vec::new(), 0)
            };
            let mut mail = super::mail::MailColumns::default();
            for (i, (_, change)) in new.iter().enumerate() {
                if let PacketChange::Import {
                    backend_version,
                    content,
                    content_type,
                    flags: f,
                    base,
                    internal_date_ms,
                    ..
                } = change
                {
                    let id = fresh[i];
                    new_ids.insert(i, id);
                    ids.push(id);
                    if let Some(b) = bodies.get(i) {
                        // A message keeps no bytes of its own: they are in
                        // `message_bodies`, and its ETag comes from the same hash.
                        uids.push(b.mid.clone().unwrap_or_default());
                        contents.push(None);
                        etags.push(b.etag());
                        mail.push(b, *internal_date_ms, i64::from(first_uid) + i as i64);
                    } else {
                        uids.push(content::uid(content).unwrap_or_default());
                        contents.push(Some(content.as_slice()));
                        etags.push(content::etag_of(content));
                    }
                    types.push(content_type.clone());
                    versions.push(backend_version.clone());
                    seqs.push(next_seq);
                    flags.push(f.join(" "));
                    // Mail merges per flag: a message never has a base copy.
                    bases.push(
                        (keep_base && !mailbox).then(|| base.as_ref().unwrap_or(content).clone()),
                    );
                    next_seq += 1;
                }
            }
            // A message's flags are also its agreed base (the per-flag merge's).
            // Rows that meet a unique index are skipped, not checked for first: an
            // href the gateway knows means the connector's index is stale (the packet
            // is refused); a name a live item has is given a prefix and the row tried
            // again (rows already in meet the primary key and are skipped). Checking
            // first cost a scan of the mailbox per packet while the planner, its
            // statistics taken before an import, thought the mailbox empty.
            const INSERT: &str = "INSERT INTO items (tenant_id, collection_id, id, uid, name, content, content_type, etag,
                                    backend_href, backend_version, last_seq, flags, base_content,
                                    body_sha256, size, message_id, internal_date, base_flags, gateway_uid)
                 SELECT $1, $2, u.id, u.uid, u.name, u.content, u.ctype, u.etag, u.href, u.version, u.seq,
                        COALESCE(string_to_array(NULLIF(u.flags, ''), ' '), '{}'), u.base,
                        u.sha, u.size, u.mid, to_timestamp(u.date / 1000.0),
                        CASE WHEN u.guid IS NOT NULL
                             THEN COALESCE(string_to_array(NULLIF(u.flags, ''), ' '), '{}') END,
                        u.guid
                 FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::text[],
                             $10::text[], $11::bigint[], $12::text[], $13::bytea[],
                             $14::bytea[], $15::bigint[], $16::text[], $17::bigint[], $18::bigint[])
                      AS u(id, uid, name, content, ctype, etag, href, version, seq, flags, base,
                           sha, size, mid, date, guid)
                 ON CONFLICT DO NOTHING
                 RETURNING id";
            let mut written: HashSet<Uuid> = HashSet::with_capacity(ids.len());
            for attempt in 0..2 {
                let rows = tx
                    .query(
                        INSERT,
                        &[
                            &tenant, &coll, &ids, &uids, &names, &contents, &types, &etags, &hrefs,
                            &versions, &seqs, &flags, &bases, &mail.sha, &mail.size, &mail.mid,
                            &mail.date, &mail.guid,
                        ],
                    )
                    .await?;
                written.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
                let missed: Vec<usize> = (0..ids.len())
                    .filter(|i| !written.contains(&ids[*i]))
                    .collect();
                if missed.is_empty() {
                    break;
                }
                let missed_hrefs: Vec<&str> = missed.iter().map(|i| hrefs[*i]).collect();
                let known = tx
                    .query_opt(
                        "SELECT backend_href FROM items WHERE tenant_id = $1 AND collection_id = $2
                                AND backend_href = ANY($3) LIMIT 1",
                        &[&tenant, &coll, &missed_hrefs],
                    )
                    .await?;
                if let Some(row) = known {
                    return Ok(PacketOutcome::StaleBase(format!(
                        "{} is already known to the gateway; pull the index again",
                        row.get::<_, String>(0)
                    )));
                }
                if attempt == 1 {
                    return Err(StoreError::Invalid(format!(
                        "{} new items of the packet could not be named",
                        missed.len()
                    )));
                }
                for i in missed {
                    names[i] = format!("{}-{}", Uuid::new_v4().simple(), names[i]);
                }
            }
            super::items::journal_upserts(&tx, (tenant, coll), &seqs, &ids, token).await?;
        }

        // Mail: a message imported again into an item the mailbox has is filed like a
        // new one, the item updated (see `super::mail::file_messages`).
        let mut messages: Vec<super::mail::Filed<'_>> = Vec::new();
        let mut flag_writes: Vec<super::mail::FlagWrite<'_>> = Vec::new();
        let mut new_index = 0;
        for (at, change) in packet.changes.iter().enumerate() {
            match change {
                PacketChange::Import { item_id: None, .. } => {
                    // Written whole above, body included.
                    item_ids.push(new_ids.get(&new_index).copied());
                    new_index += 1;
                }
                PacketChange::Import {
                    item_id: Some(id),
                    backend_href,
                    backend_version,
                    content: data,
                    content_type,
                    settles,
                    flags,
                    base,
                    internal_date_ms,
                    upload,
                } => {
                    keep_set_aside(&tx, tenant, coll, *id).await?;
                    if mailbox {
                        messages.push(super::mail::Filed {
                            item: *id,
                            body: data,
                            flags,
                            internal_date_ms: *internal_date_ms,
                            upload: upload.as_ref().map(|(u, m)| (u, m.as_deref())),
                            stored: early.get(&at),
                        });
                    }
                    let base =
                        (keep_base && !mailbox).then(|| base.as_ref().unwrap_or(data).clone());
                    let n = tx
                        .execute(
                            "UPDATE items SET content = $4, content_type = $5, etag = $6, uid = $7, deleted = false,
                                    backend_href = $8, backend_version = $9, last_seq = $10, changed_at = now(), flags = $11,
                                    pending_seq = CASE WHEN pending_seq = $12 THEN NULL ELSE pending_seq END,
                                    base_content = $13
                             WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                            &[
                                &tenant,
                                &coll,
                                id,
                                data,
                                content_type,
                                &content::etag_of(data),
                                &content::uid(data).unwrap_or_default(),
                                backend_href,
                                backend_version,
                                &next_seq,
                                flags,
                                settles,
                                &base,
                            ],
                        )
                        .await
                        .map_err(|e| unique_to_invalid(e, "an item with this name or href already exists"))?;
                    if n == 0 {
                        return Ok(PacketOutcome::Invalid(format!("unknown item {id}")));
                    }
                    journal(
                        &tx,
                        tenant,
                        coll,
                        next_seq,
                        *id,
                        "upsert",
                        "backend",
                        Some(token),
                    )
                    .await?;
                    next_seq += 1;
                    item_ids.push(None);
                }
                PacketChange::Flags {
                    item_id,
                    backend_href,
                    flags,
                    base_flags,
                    backend_version,
                    settles,
                } => {
                    // Written together after the loop: one statement for all.
                    flag_writes.push(super::mail::FlagWrite {
                        item: *item_id,
                        flags,
                        base: base_flags.as_deref(),
                        href: backend_href.as_deref(),
                        version: backend_version,
                        settles: *settles,
                        seq: next_seq,
                    });
                    next_seq += 1;
                    item_ids.push(None);
                }
                PacketChange::Record {
                    item_id,
                    backend,
                    settles,
                } => {
                    let (href, version) = match backend {
                        Some((h, v)) => (Some(h.as_str()), Some(v.as_str())),
                        None => (None, None),
                    };
                    // A gateway change now on the back end, with none newer: both sides
                    // agree on the current content (the merge policy's base). Detached:
                    // nothing to agree on any more.
                    tx.execute(
                        "UPDATE items SET backend_href = $4, backend_version = $5,
                                pending_seq = CASE WHEN pending_seq = $6 THEN NULL ELSE pending_seq END,
                                base_content = CASE
                                    WHEN NOT $7 OR $4::text IS NULL THEN NULL
                                    WHEN NOT deleted AND (pending_seq IS NULL OR pending_seq = $6) THEN content
                                    ELSE base_content END
                         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                        &[&tenant, &coll, item_id, &href, &version, settles, &keep_base],
                    )
                    .await
                    .map_err(|e| unique_to_invalid(e, "another item already has this back-end href"))?;
                    item_ids.push(None);
                }
                PacketChange::Delete {
                    item_id,
                    settles: None,
                    ..
                } => {
                    keep_set_aside(&tx, tenant, coll, *item_id).await?;
                    tx.execute(
                        "UPDATE items SET deleted = true, content = NULL, backend_href = NULL, backend_version = NULL,
                                base_content = NULL, last_seq = $4, changed_at = now()
                         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                        &[&tenant, &coll, item_id, &next_seq],
                    )
                    .await?;
                    journal(
                        &tx,
                        tenant,
                        coll,
                        next_seq,
                        *item_id,
                        "delete",
                        "backend",
                        Some(token),
                    )
                    .await?;
                    next_seq += 1;
                    item_ids.push(None);
                }
                PacketChange::Delete {
                    item_id,
                    settles: Some(seq),
                    keep_as_loser,
                } => {
                    // Either the gateway deletion is now done on the back end, or the
                    // back end's deletion won over a gateway edit.
                    let row = tx
                        .query_opt(
                            "SELECT deleted FROM items WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                            &[&tenant, &coll, item_id],
                        )
                        .await?;
                    let was_live = row.is_some_and(|r| !r.get::<_, bool>(0));
                    if was_live && *keep_as_loser {
                        // The message as the gateway holds it (its body from the
                        // store, once per content), kept before it goes.
                        tx.execute(
                            "INSERT INTO conflicts (tenant_id, id, collection_id, item_id, uid, loser_side,
                                                    loser_content, policy, backend_href)
                             SELECT i.tenant_id, $4, i.collection_id, i.id, i.uid, 'gateway',
                                    COALESCE(b.body, i.content), 'mirror', ''
                             FROM items i LEFT JOIN message_bodies b
                                  ON b.tenant_id = i.tenant_id AND b.sha256 = i.body_sha256
                             WHERE i.tenant_id = $1 AND i.collection_id = $2 AND i.id = $3",
                            &[&tenant, &coll, item_id, &Uuid::new_v4()],
                        )
                        .await?;
                    }
                    tx.execute(
                        "UPDATE items SET deleted = true, content = NULL, backend_href = NULL, backend_version = NULL,
                                base_content = NULL,
                                pending_seq = CASE WHEN pending_seq = $4 THEN NULL ELSE pending_seq END
                         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                        &[&tenant, &coll, item_id, seq],
                    )
                    .await?;
                    if was_live {
                        let s = reserve_seqs(&tx, tenant, coll, 1).await?;
                        tx.execute(
                            "UPDATE items SET last_seq = $4, changed_at = now()
                             WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                            &[&tenant, &coll, item_id, &s],
                        )
                        .await?;
                        journal(
                            &tx,
                            tenant,
                            coll,
                            s,
                            *item_id,
                            "delete",
                            "backend",
                            Some(token),
                        )
                        .await?;
                    }
                    item_ids.push(None);
                }
                PacketChange::Ack { item_id, settles } => {
                    tx.execute(
                        "UPDATE items SET pending_seq = NULL
                         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND pending_seq = $4",
                        &[&tenant, &coll, item_id, settles],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE items SET backend_href = NULL, backend_version = NULL
                         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND deleted AND pending_seq IS NULL",
                        &[&tenant, &coll, item_id],
                    )
                    .await?;
                    item_ids.push(None);
                }
                PacketChange::Refused {
                    item_id,
                    settles,
                    status,
                    answer,
                } => {
                    tx.execute(
                        "UPDATE items SET refused_seq = $4, refused_status = $5, refused_answer = $6, refused_at = now()
                         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 AND pending_seq = $4",
                        &[&tenant, &coll, item_id, settles, &i32::from(*status), answer],
                    )
                    .await?;
                    item_ids.push(None);
                }
            }
        }
        super::mail::file_messages(&tx, tenant, coll, &messages).await?;
        if let Some(unknown) =
            super::mail::write_flags(&tx, (tenant, coll), token, &flag_writes).await?
        {
            return Ok(PacketOutcome::Invalid(format!("unknown item {unknown}")));
        }

        for l in &packet.conflicts {
            // Losers are sent before the writes that beat them, so a round that is
            // re-planned (a crash, a 412) sends the same one again: kept once.
            tx.execute(
                "INSERT INTO conflicts (tenant_id, id, collection_id, item_id, uid, loser_side, loser_content, policy, backend_href)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
                 WHERE NOT EXISTS (
                     SELECT 1 FROM conflicts
                     WHERE tenant_id = $1 AND collection_id = $3 AND item_id IS NOT DISTINCT FROM $4
                       AND uid = $5 AND loser_side = $6 AND resolved_at IS NULL
                       AND loser_content IS NOT DISTINCT FROM $7)",
                &[&tenant, &Uuid::new_v4(), &coll, &l.item_id, &l.uid, &l.side, &l.content, &l.policy, &l.backend_href],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION) {
                    StoreError::Invalid(format!("conflict side {:?} must be backend or gateway", l.side))
                } else {
                    StoreError::from(e)
                }
            })?;
        }

        let row = tx
            .query_one(
                "UPDATE collections SET
                    backend_state = COALESCE($3, backend_state),
                    cursor = CASE WHEN $4 THEN GREATEST(cursor, $5) ELSE cursor END,
                    paused_reason = COALESCE($6, paused_reason)
                 WHERE tenant_id = $1 AND id = $2 RETURNING cursor",
                &[
                    &tenant,
                    &coll,
                    &packet.backend_state,
                    &packet.is_final,
                    &packet.base_seq,
                    &packet.pause_reason,
                ],
            )
            .await?;
        if writes > 0 && mailbox {
            super::items::notify_backend_change(&tx, tenant, coll).await?;
        }
        tx.commit().await?;
        Ok(PacketOutcome::Accepted {
            cursor: row.get(0),
            item_ids,
        })
    }
}

/// Before the back end's version replaces (or its deletion removes) an item whose
/// gateway change was set aside, that change is kept as a conflict loser (policy
/// `set-aside`), so the refused version is never lost; the item is then in step with
/// the back end again, nothing pending.
async fn keep_set_aside(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Uuid,
    coll: Uuid,
    item: Uuid,
) -> Result<()> {
    let row = tx
        .query_opt(
            "SELECT uid, CASE WHEN deleted THEN NULL ELSE content END, COALESCE(backend_href, '') FROM items
             WHERE tenant_id = $1 AND collection_id = $2 AND id = $3
               AND refused_seq IS NOT NULL AND refused_seq = pending_seq FOR UPDATE",
            &[&tenant, &coll, &item],
        )
        .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let (uid, content, href): (String, Option<Vec<u8>>, String) =
        (row.get(0), row.get(1), row.get(2));
    tx.execute(
        "INSERT INTO conflicts (tenant_id, id, collection_id, item_id, uid, loser_side, loser_content, policy, backend_href)
         VALUES ($1, $2, $3, $4, $5, 'gateway', $6, 'set-aside', $7)",
        &[&tenant, &Uuid::new_v4(), &coll, &item, &uid, &content, &href],
    )
    .await?;
    tx.execute(
        "UPDATE items SET pending_seq = NULL, refused_seq = NULL, refused_status = NULL, refused_answer = NULL, refused_at = NULL
         WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
        &[&tenant, &coll, &item],
    )
    .await?;
    Ok(())
}

fn unique_to_invalid(e: tokio_postgres::Error, what: &str) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Invalid(what.to_string())
    } else {
        StoreError::from(e)
    }
}

#[cfg(test)]
mod tests {
    use super::name_of;

    #[test]
    fn names_come_from_the_last_segment() {
        assert_eq!(name_of("/alice/work/ev1.ics"), "ev1.ics");
        assert!(!name_of("/").is_empty());
    }
}
