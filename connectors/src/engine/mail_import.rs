//! Bringing new messages of a mailbox to the gateway: their bodies, fetched by size.
//!
//! New messages are sized first (`RFC822.SIZE`, no bodies), then fetched in batches
//! of bounded bytes; the next batch comes from the back end while this one goes to
//! the gateway, so the connector holds at most two. Before a batch is sent, the
//! gateway says which bodies it holds already (a message moved or copied on the back
//! end): those are filed by reference. A message too large for one link message is
//! read by range and sent a part at a time, so none is ever held whole; one larger
//! than the gateway takes is left on the back end and reported.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_core::ids::Href;
use postern_core::mail::{Flags, MessageKey};
use postern_proto as pb;
use tracing::{info, warn};

use super::SourceCtx;
use super::mail_round::{href, names, version};
use super::round::{
    CollectionState, ENVELOPE, RoundError, RoundStats, chunk, packet_budget, progress, push_all,
    send_packet,
};
use crate::backends::{MailBackend, MailMessage};

/// Imports messages `imports` (UID and flags) of a mailbox under UIDVALIDITY `v`.
pub(super) async fn import(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    (token, lost): (u64, &AtomicBool),
    head: u64,
    v: u32,
    imports: Vec<(u32, Flags)>,
    stats: &mut RoundStats,
) -> Result<(), RoundError> {
    // New messages, a batch at a time: fetched, pushed, dropped. The next batch is
    // fetched from the back end while this one goes to the gateway, so the connector
    // holds at most two batches of bodies. Batches are cut by size, read first
    // without the bodies; a message larger than the gateway takes is not fetched.
    let total = imports.len();
    let flags_by_uid: HashMap<u32, Flags> = imports.into_iter().collect();
    let uids: Vec<u32> = flags_by_uid.keys().copied().collect();
    let Sized {
        batches: uid_batches,
        streamed,
        too_large,
    } = by_size(ctx, &coll.href, &uids).await?;
    for (uid, bytes) in too_large {
        warn!(collection = %coll.href, uid, bytes, "message larger than the gateway takes; left on the back end");
        stats.too_large += 1;
    }
    let batches: Vec<Vec<(u32, Flags)>> = uid_batches
        .into_iter()
        .map(|b| {
            b.into_iter()
                .filter_map(|u| Some((u, flags_by_uid.get(&u)?.clone())))
                .collect()
        })
        .collect();
    let mut imported = 0;
    // Messages too large for one link message are read from the back end and sent to
    // the gateway a part at a time: the connector never holds one whole.
    for (uid, size) in streamed {
        let Some(flags) = flags_by_uid.get(&uid) else {
            continue;
        };
        if let Some(change) = stream(ctx, coll, token, (v, uid, size), flags).await? {
            stats.to_gateway += 1;
            push_all(
                ctx,
                coll,
                (token, lost),
                head,
                vec![(vec![change], Vec::new())],
                None,
            )
            .await?;
        }
        imported += 1;
        progress(ctx, &coll.id, "fetching", imported, total);
    }
    let (mailbox, id) = (coll.href.clone(), coll.id.clone());
    let mut fetched = match batches.first() {
        Some(b) => Some(fetch_batch(ctx, (&mailbox, &id), b).await?),
        None => None,
    };
    for (done, batch) in batches.iter().enumerate() {
        let (mut bodies, held) = fetched.take().unwrap_or_default();
        let mut changes = Vec::with_capacity(batch.len());
        for (uid, flags) in batch {
            // Expunged between the listing and the fetch: the next round says so.
            let Some(m) = bodies.remove(uid) else {
                continue;
            };
            let mut change = pb::Change {
                op: pb::change::Op::Upsert as i32,
                backend_href: href(v, *uid),
                backend_version: version(v, *uid, m.modseq),
                content_type: "message/rfc822".into(),
                flags: names(flags),
                internal_date_ms: m.internal_date_ms.unwrap_or(0),
                ..Default::default()
            };
            if m.size > MAX_UPLOAD {
                // Not fetched: the gateway would not take it.
                warn!(collection = %coll.href, uid, bytes = m.size, "message larger than the gateway takes; left on the back end");
                stats.too_large += 1;
                continue;
            }
            if held.contains(&m.key.sha256) {
                // The gateway holds these bytes already (the message moved or was
                // copied on the back end): filed by reference, no body sent.
                change.body_sha256 = m.key.sha256.to_vec();
                change.uid = m.key.message_id.clone().unwrap_or_default();
            } else if m.body.len() + ENVELOPE > ctx.max_message {
                // Too large for one message: sent in parts the gateway assembles.
                change.upload_id = upload(ctx, &coll.id, token, &m.body).await?;
                change.uid = m.key.message_id.clone().unwrap_or_default();
            } else {
                change.content = m.body;
            }
            stats.to_gateway += 1;
            changes.push(change);
        }
        drop(bodies);
        let packets = chunk(changes, packet_budget(ctx.max_message), ctx.max_packet_ops);
        let next = async {
            match batches.get(done + 1) {
                Some(b) => fetch_batch(ctx, (&mailbox, &id), b).await.map(Some),
                None => Ok(None),
            }
        };
        let (sent, next) = tokio::join!(push_ahead(ctx, coll, (token, lost), head, packets), next);
        sent?;
        fetched = next?;
        let before = imported;
        imported += batch.len();
        progress(ctx, &coll.id, "fetching", imported, total);
        if total >= 500 && imported / 1000 > before / 1000 {
            info!(collection = %coll.href, imported, total, "importing messages");
        }
    }

    Ok(())
}

/// Packets of an import on their way to the gateway at once.
const AHEAD: usize = 2;

/// Pushes a batch's packets with up to [`AHEAD`] on their way at once: the gateway
/// stores the next one's bodies while it commits this one. They only bring new
/// messages and no back-end state, so the order in which the gateway commits them
/// does not matter; the first refusal ends the push (the round starts again, and
/// the index says which of them went in).
async fn push_ahead(
    ctx: &SourceCtx,
    coll: &CollectionState,
    (token, lost): (u64, &AtomicBool),
    head: u64,
    packets: Vec<Vec<pb::Change>>,
) -> Result<(), RoundError> {
    use futures::StreamExt;
    let total: usize = packets.iter().map(Vec::len).sum();
    let mut verdicts = futures::stream::iter(packets.into_iter().map(|changes| {
        let n = changes.len();
        let packet = pb::ChangePacket {
            collection_id: coll.id.clone(),
            base_seq: head,
            fencing_token: token,
            changes,
            ..Default::default()
        };
        async move {
            if lost.load(Ordering::SeqCst) {
                return Err(RoundError::LeaseLost("not renewed in time".into()));
            }
            send_packet(ctx, packet).await.map(|()| n)
        }
    }))
    .buffered(AHEAD);
    let mut pushed = 0;
    while let Some(sent) = verdicts.next().await {
        pushed += sent?;
        progress(ctx, &coll.id, "pushing", pushed, total);
    }
    Ok(())
}

/// Most bytes of bodies fetched at once (an import, re-keying): the connector holds
/// at most two such batches, whatever the mailbox's size (a larger message comes
/// alone).
const IMPORT_BYTES: u64 = 8 << 20;
/// Most messages fetched at once.
const IMPORT_COUNT: usize = 1_000;

/// New messages by their sizes on the back end (read without the bodies).
#[derive(Debug, Default)]
pub(super) struct Sized {
    /// Batches of at most [`IMPORT_BYTES`] and [`IMPORT_COUNT`], in UID order.
    pub batches: Vec<Vec<u32>>,
    /// Messages too large for one link message, with their sizes: read and sent a
    /// part at a time.
    pub streamed: Vec<(u32, u64)>,
    /// Messages larger than the gateway takes, with their sizes: left on the back
    /// end.
    pub too_large: Vec<(u32, u64)>,
}

/// `uids` sorted by size (see [`Sized`]). A UID the back end no longer has is in
/// none of them: the next round says it is gone.
pub(super) async fn by_size(
    ctx: &SourceCtx,
    mailbox: &Href,
    uids: &[u32],
) -> Result<Sized, RoundError> {
    let mut sizes = ctx.backend.sizes(mailbox, uids).await?;
    sizes.sort_unstable();
    let mut out = Sized::default();
    let batches = &mut out.batches;
    let mut bytes = 0;
    for (uid, size) in sizes {
        if size > MAX_UPLOAD {
            out.too_large.push((uid, size));
            continue;
        }
        if size as usize + ENVELOPE > ctx.max_message {
            out.streamed.push((uid, size));
            continue;
        }
        match batches.last_mut() {
            Some(b) if bytes + size <= IMPORT_BYTES && b.len() < IMPORT_COUNT => b.push(uid),
            _ => {
                batches.push(vec![uid]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    Ok(out)
}

/// Which of a batch's bodies the gateway holds already (none, if it cannot say).
async fn held_bodies(
    ctx: &SourceCtx,
    collection: &str,
    batch: &HashMap<u32, MailMessage>,
) -> Result<std::collections::HashSet<[u8; 32]>, RoundError> {
    if batch.is_empty() {
        return Ok(Default::default());
    }
    let hashes: Vec<[u8; 32]> = batch.values().map(|m| m.key.sha256).collect();
    let ans = ctx
        .link
        .ask(Req::BodiesQuery(pb::BodiesQuery {
            collection_id: collection.to_string(),
            sha256: hashes.iter().map(|h| h.to_vec()).collect(),
        }))
        .await?;
    Ok(match ans {
        Ans::BodiesKnown(k) if k.known.len() == hashes.len() => hashes
            .into_iter()
            .zip(k.known)
            .filter_map(|(h, known)| known.then_some(h))
            .collect(),
        // An older gateway: every body is sent.
        _ => Default::default(),
    })
}

/// One batch of new messages, by UID, and which of their bodies the gateway holds.
async fn fetch_batch(
    ctx: &SourceCtx,
    (mailbox, collection): (&Href, &str),
    batch: &[(u32, Flags)],
) -> Result<Fetched, RoundError> {
    let uids: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
    let bodies: HashMap<u32, MailMessage> = ctx
        .backend
        .fetch(mailbox, &uids)
        .await?
        .into_iter()
        .map(|m| (m.uid, m))
        .collect();
    let held = held_bodies(ctx, collection, &bodies).await?;
    Ok((bodies, held))
}

/// A fetched batch: its messages by UID, and the hashes of those the gateway holds.
type Fetched = (
    HashMap<u32, MailMessage>,
    std::collections::HashSet<[u8; 32]>,
);

/// The largest body the gateway assembles from parts.
const MAX_UPLOAD: u64 = 512 << 20;

/// Sends a body too large for one message in parts, each within the packet budget;
/// returns the upload's id for the change that files it.
async fn upload(
    ctx: &SourceCtx,
    collection: &str,
    token: u64,
    body: &[u8],
) -> Result<String, RoundError> {
    let id = uuid::Uuid::new_v4().to_string();
    let part = packet_budget(ctx.max_message);
    for (i, data) in body.chunks(part).enumerate() {
        let at = (i * part) as u64;
        send_part(
            ctx,
            collection,
            token,
            (&id, at, body.len() as u64),
            data.to_vec(),
        )
        .await?;
    }
    Ok(id)
}

/// Reads message `uid` (`size` bytes) from the back end a part at a time, each part
/// sent on to the gateway as it comes; returns the change that files it, or `None`
/// when the back end no longer has it (the next round says it is gone). The key is
/// computed over the parts, so the gateway's check of the assembled body (its hash)
/// holds.
async fn stream(
    ctx: &SourceCtx,
    coll: &CollectionState,
    token: u64,
    (v, uid, size): (u32, u32, u64),
    flags: &Flags,
) -> Result<Option<pb::Change>, RoundError> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut key = MessageKey::hasher();
    let mut meta = None;
    let mut at = 0;
    while at < size {
        let Some(p) = next_part(ctx, &coll.href, (uid, size), at).await? else {
            return Ok(None);
        };
        key.update(&p.data);
        meta.get_or_insert((p.modseq, p.internal_date_ms));
        let n = p.data.len() as u64;
        send_part(ctx, &coll.id, token, (&id, at, size), p.data).await?;
        at += n;
    }
    let key = key.finish();
    let (modseq, date) = meta.unwrap_or_default();
    Ok(Some(pb::Change {
        op: pb::change::Op::Upsert as i32,
        backend_href: href(v, uid),
        backend_version: version(v, uid, modseq),
        content_type: "message/rfc822".into(),
        flags: names(flags),
        internal_date_ms: date.unwrap_or(0),
        upload_id: id,
        uid: key.message_id.unwrap_or_default(),
        ..Default::default()
    }))
}

/// The part of message `uid` (`size` bytes) from `at`, at most a link part long;
/// `None` when the mailbox no longer has it. A part that does not fit the message
/// (another size, no bytes, past the end) is an error: a message's bytes never change
/// under its UID, so the server answered for something else, and the round is retried.
async fn next_part(
    ctx: &SourceCtx,
    mailbox: &Href,
    (uid, size): (u32, u64),
    at: u64,
) -> Result<Option<crate::backends::MessagePart>, RoundError> {
    let part = packet_budget(ctx.max_message) as u64;
    let Some(p) = ctx
        .backend
        .fetch_part(mailbox, uid, at, part.min(size - at))
        .await?
    else {
        return Ok(None);
    };
    if p.size != size || p.data.is_empty() || at + p.data.len() as u64 > size {
        return Err(RoundError::Invalid(format!(
            "UID {uid}: the server gave {} bytes at {at} of a {size}-byte message it now says is {} bytes",
            p.data.len(),
            p.size
        )));
    }
    Ok(Some(p))
}

/// The content keys of messages `uids` (with their MODSEQ), bodies read in batches of
/// bounded size and a large message by range, none held whole; a message larger
/// than the gateway takes has none (it is never imported).
pub(super) async fn keys_of(
    ctx: &SourceCtx,
    mailbox: &Href,
    uids: &[u32],
) -> Result<Vec<(u32, u64, MessageKey)>, RoundError> {
    let sized = by_size(ctx, mailbox, uids).await?;
    let mut out = Vec::with_capacity(uids.len());
    for batch in sized.batches {
        for m in ctx.backend.fetch(mailbox, &batch).await? {
            out.push((m.uid, m.modseq, m.key));
        }
    }
    'messages: for (uid, size) in sized.streamed {
        let mut key = MessageKey::hasher();
        let mut modseq = 0;
        let mut at = 0;
        while at < size {
            let Some(p) = next_part(ctx, mailbox, (uid, size), at).await? else {
                continue 'messages;
            };
            modseq = p.modseq;
            at += p.data.len() as u64;
            key.update(&p.data);
        }
        out.push((uid, modseq, key.finish()));
    }
    Ok(out)
}

/// Sends one part of upload `id` (at `offset` of `total` bytes) under the lease.
async fn send_part(
    ctx: &SourceCtx,
    collection: &str,
    token: u64,
    (id, offset, total): (&str, u64, u64),
    data: Vec<u8>,
) -> Result<(), RoundError> {
    let ans = ctx
        .link
        .ask(Req::BodyPart(pb::BodyPart {
            collection_id: collection.to_string(),
            upload_id: id.to_string(),
            offset,
            data,
            total,
            fencing_token: token,
        }))
        .await?;
    match ans {
        Ans::Verdict(pb::Verdict {
            outcome: Some(pb::verdict::Outcome::Accepted(_)),
            ..
        }) => Ok(()),
        Ans::Verdict(pb::Verdict {
            outcome: Some(pb::verdict::Outcome::Rejected(r)),
            ..
        }) if r.reason == pb::rejected::Reason::StaleFence as i32 => {
            Err(RoundError::LeaseLost(r.detail))
        }
        other => Err(RoundError::Invalid(format!("body part refused: {other:?}"))),
    }
}
