//! One round of one mailbox: the executor of `postern_core::mail::plan`.
//!
//! pull the gateway's pending changes and the index → ask the back end what changed
//! since the saved state → fetch the bodies of messages the gateway does not have
//! (and only those) → plan → write flags and expunges to the back end → push
//! packets: new messages with their bodies, flag changes without, removals. A
//! `[MODIFIED]` answer (the back end changed a message since we read it) makes the
//! round start over from the pull.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_core::guard::Guard;
use postern_core::ids::{Href, ItemId, Seq};
use postern_core::mail::plan::{
    self, BackendSeen, GatewaySeen, Known, MailPlan, MailRound, Origin, Step,
};
use postern_core::mail::{Flags, MessageKey};
use postern_core::model::BackendVersion;
use postern_proto as pb;
use tracing::{info, warn};

use super::SourceCtx;
use super::body_read::PendingBody;
use super::index::Wanted;
use super::mail_import::keys_of;
use super::round::{
    CollectionState, RoundError, RoundStats, change, chunk, packet_budget, push_all, send_packet,
};
use crate::backends::{MailBackend, Moved};
use crate::link::LinkError;

/// One attempt at a mailbox round.
pub(super) async fn attempt(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    token: u64,
    lost: &AtomicBool,
) -> Result<RoundStats, RoundError> {
    let (gateway, appended, head) = pull(ctx, &coll.id).await?;
    let mut changes = ctx.backend.changes(&coll.href, &coll.backend_state).await?;
    if changes.complete {
        return complete(ctx, coll, (token, lost), head, gateway, &appended, changes).await;
    }
    if let Some(listed) = changes.listed.take() {
        // The back end said what changed but not what vanished (CONDSTORE without
        // QRESYNC): a UID the gateway knows and the listing lacks is gone.
        match vanished(ctx, &coll.id, changes.uidvalidity, &listed).await? {
            Some(gone) => changes
                .seen
                .extend(gone.into_iter().map(BackendSeen::Vanished)),
            None => {
                coll.backend_state.clear();
                return Err(RoundError::StaleBase);
            }
        }
    }
    // Nothing changed on either side (the back end resumed from the saved state and
    // reports nothing): the round ends without pulling the index, so an idle round
    // costs one resumed SELECT however large the mailbox. Otherwise the round pulls
    // only the messages it names: its cost follows the changes, not the mailbox.
    let idle = changes.seen.is_empty() && gateway.is_empty();
    let idx = if idle {
        Index::default()
    } else {
        let wanted = Wanted::Only {
            hrefs: changes
                .seen
                .iter()
                .map(|s| match s {
                    BackendSeen::Flags { uid, .. } | BackendSeen::Vanished(uid) => {
                        href(changes.uidvalidity, *uid)
                    }
                })
                .collect(),
            items: gateway.iter().map(|g| g.item().to_string()).collect(),
        };
        index(ctx, &coll.id, wanted).await?
    };
    if idx.uidvalidity.is_some_and(|v| v != changes.uidvalidity) {
        // Entries of another UIDVALIDITY (the saved state is older than a reset):
        // the round starts over with a full listing, which re-keys them.
        coll.backend_state.clear();
        return Err(RoundError::StaleBase);
    }
    let part = Part {
        known: idx.known,
        seen: changes.seen,
        gateway,
        appended: &appended,
        uidvalidity: changes.uidvalidity,
        indexed: idx.total,
        guard: Guard::default(),
        state: Some(changes.new_state),
    };
    execute(ctx, coll, (token, lost), head, part).await
}

/// Messages whose flags a full listing reads at once: the connector holds one window
/// of flags and index entries, plus the UIDs of the mailbox (a few bytes each).
const WINDOW: usize = 5_000;

/// A round from a full listing (no state to resume from: the first round, a server
/// without QRESYNC, a UIDVALIDITY reset). The mailbox's UIDs and the UIDs the gateway
/// knows are compared first: what vanished is weighed against the whole (the
/// mass-deletion guard), and a mailbox the back end renumbered is re-keyed. Then the
/// messages are planned and written a window of UIDs at a time, the gateway's changes
/// with the window that holds their message; the back-end state is saved with the
/// last window. Pending appends are matched against every new message (a crashed
/// append's first copy), so a round with some plans in one window.
async fn complete(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    (token, lost): (u64, &AtomicBool),
    head: u64,
    gateway: Vec<GatewaySeen>,
    appended: &HashMap<ItemId, PendingBody>,
    mut changes: crate::backends::MailChanges,
) -> Result<RoundStats, RoundError> {
    let v = changes.uidvalidity;
    let listed = changes.listed.take().unwrap_or_default();
    let pulled = super::index::pull(ctx, &coll.id, Wanted::Hrefs).await?;
    let mut known_uids: Vec<u32> = Vec::with_capacity(pulled.entries.len());
    let mut renumbered = false;
    for e in &pulled.entries {
        match origin_href(&e.backend_href) {
            Some((ev, uid)) if ev == v => known_uids.push(uid),
            Some(_) => renumbered = true,
            None => {}
        }
    }
    let total = pulled.total;
    drop(pulled);
    if renumbered {
        let idx = index(ctx, &coll.id, Wanted::All).await?;
        let mut seen = Vec::with_capacity(listed.len());
        for w in listed.chunks(WINDOW) {
            seen.extend(ctx.backend.flags(&coll.href, w).await?);
        }
        let changes = crate::backends::MailChanges {
            seen,
            listed: None,
            ..changes
        };
        return rekey(ctx, coll, (token, lost), head, &idx, &changes).await;
    }
    known_uids.sort_unstable();
    let is_listed = |u: &u32| listed.binary_search(u).is_ok();
    let is_known = |u: &u32| known_uids.binary_search(u).is_ok();
    let vanished = known_uids.iter().filter(|u| !is_listed(u)).count();
    if coll.mode != postern_core::model::Mode::Merge
        && let Some(reason) = postern_core::mail::mailbox::check_expunges(
            &Guard::default(),
            coll.role,
            total,
            vanished,
        )
    {
        warn!(collection = %coll.href, "mass deletion guard tripped; pausing");
        pause(ctx, coll, head, token, &reason).await?;
        return Err(RoundError::Paused(reason));
    }

    let mut all: Vec<u32> = listed.iter().chain(&known_uids).copied().collect();
    all.sort_unstable();
    all.dedup();
    let appends = gateway
        .iter()
        .any(|g| matches!(g, GatewaySeen::Appended { .. }));
    let window = if appends { all.len().max(1) } else { WINDOW };
    let windows: Vec<&[u32]> = if all.is_empty() {
        vec![&[]]
    } else {
        all.chunks(window).collect()
    };
    let n = windows.len();
    let mut rest = gateway;
    let mut stats = RoundStats::default();
    for (i, w) in windows.into_iter().enumerate() {
        let last = i + 1 == n;
        let here: Vec<u32> = w.iter().copied().filter(is_listed).collect();
        let mut seen = ctx.backend.flags(&coll.href, &here).await?;
        seen.extend(
            w.iter()
                .filter(|u| is_known(u) && !is_listed(u))
                .map(|u| BackendSeen::Vanished(*u)),
        );
        let hrefs: Vec<String> = w
            .iter()
            .filter(|u| is_known(u))
            .map(|u| href(v, *u))
            .collect();
        let idx = if hrefs.is_empty() {
            Index::default()
        } else {
            index(
                ctx,
                &coll.id,
                Wanted::Only {
                    hrefs,
                    items: Vec::new(),
                },
            )
            .await?
        };
        let mine: Vec<GatewaySeen> = if last {
            std::mem::take(&mut rest)
        } else {
            let ids: std::collections::HashSet<&ItemId> =
                idx.known.iter().map(|k| &k.item).collect();
            let (mine, others): (Vec<GatewaySeen>, Vec<GatewaySeen>) = std::mem::take(&mut rest)
                .into_iter()
                .partition(|g| ids.contains(g.item()));
            rest = others;
            mine
        };
        let part = Part {
            known: idx.known,
            seen,
            gateway: mine,
            appended,
            uidvalidity: v,
            indexed: total,
            // Weighed against the whole above.
            guard: Guard {
                min_items: usize::MAX,
                max_percent: 100,
            },
            state: last.then(|| changes.new_state.clone()),
        };
        let s = execute(ctx, coll, (token, lost), head, part).await?;
        stats.to_gateway += s.to_gateway;
        stats.to_backend += s.to_backend;
        stats.too_large += s.too_large;
    }
    Ok(stats)
}

/// The UIDs the gateway knows under UIDVALIDITY `v` that `listed` (ascending) lacks;
/// `None` when the gateway knows messages under another UIDVALIDITY (the round starts
/// over with a full listing, which re-keys them).
async fn vanished(
    ctx: &SourceCtx,
    id: &str,
    v: u32,
    listed: &[u32],
) -> Result<Option<Vec<u32>>, RoundError> {
    let pulled = super::index::pull(ctx, id, Wanted::Hrefs).await?;
    let mut gone = Vec::new();
    for e in &pulled.entries {
        match origin_href(&e.backend_href) {
            Some((ev, uid)) if ev == v && listed.binary_search(&uid).is_err() => gone.push(uid),
            Some((ev, _)) if ev == v => {}
            Some(_) => return Ok(None),
            None => {}
        }
    }
    gone.sort_unstable();
    Ok(Some(gone))
}

/// One planned and executed part of a round: the messages it names.
struct Part<'a> {
    /// The index entries of those messages.
    known: Vec<Known>,
    /// What the back end says of them.
    seen: Vec<BackendSeen>,
    /// The gateway's pending changes to them.
    gateway: Vec<GatewaySeen>,
    /// The bodies of pending appends.
    appended: &'a HashMap<ItemId, PendingBody>,
    uidvalidity: u32,
    /// How many messages the whole index holds.
    indexed: usize,
    guard: Guard,
    /// The back-end state saved with the last packet (the round's last part only).
    state: Option<String>,
}

/// Plans part of a round and carries it out: back-end writes first, then packets.
async fn execute(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    (token, lost): (u64, &AtomicBool),
    head: u64,
    part: Part<'_>,
) -> Result<RoundStats, RoundError> {
    let Part {
        known,
        seen: backend_seen,
        gateway,
        appended,
        uidvalidity,
        indexed,
        guard,
        state,
    } = part;
    let changes = Seen {
        seen: backend_seen,
        uidvalidity,
        new_state: state,
    };
    if changes.seen.is_empty() && gateway.is_empty() {
        if let Some(s) = changes.new_state
            && !s.is_empty()
            && s != coll.backend_state
        {
            push_all(
                ctx,
                coll,
                (token, lost),
                head,
                vec![(Vec::new(), Vec::new())],
                Some(s),
            )
            .await?;
        }
        return Ok(RoundStats::default());
    }

    // Bodies only for messages the gateway has never had, and only when they are
    // imported (a batch at a time, below): the connector never holds a mailbox. Their
    // keys are needed before planning only to find a crashed append's first copy.
    let known_uid: HashMap<u32, &Known> = known.iter().map(|k| (k.uid, k)).collect();
    let new: Vec<u32> = changes
        .seen
        .iter()
        .filter_map(|s| match s {
            BackendSeen::Flags { uid, .. } if !known_uid.contains_key(uid) => Some(*uid),
            _ => None,
        })
        .collect();
    let appends_pending = gateway
        .iter()
        .any(|g| matches!(g, GatewaySeen::Appended { .. }));
    let mut keys: HashMap<u32, MessageKey> = HashMap::new();
    if appends_pending {
        for (uid, _, key) in keys_of(ctx, &coll.href, &new).await? {
            keys.insert(uid, key);
        }
    }
    let seen: Vec<BackendSeen> = changes
        .seen
        .iter()
        .cloned()
        .map(|s| match s {
            BackendSeen::Flags {
                uid, flags, modseq, ..
            } if !known_uid.contains_key(&uid) => BackendSeen::Flags {
                uid,
                flags,
                modseq,
                key: keys.get(&uid).cloned(),
            },
            other => other,
        })
        .collect();

    let round = MailRound {
        mode: coll.mode,
        role: coll.role,
        index: &known,
        indexed,
        backend: &seen,
        gateway: &gateway,
    };
    let steps = match plan::plan(&round, &guard) {
        MailPlan::Steps(s) => s,
        MailPlan::Paused(reason) => {
            warn!(collection = %coll.href, "mass deletion guard tripped; pausing");
            pause(ctx, coll, head, token, &reason).await?;
            return Err(RoundError::Paused(reason));
        }
    };

    // Back-end writes first; the MODSEQ each STORE made is what the gateway records.
    let mut stats = RoundStats::default();
    let mut stored: HashMap<ItemId, u64> = HashMap::new();
    let mut to_gateway: Vec<Step> = Vec::new();
    for step in steps {
        match step {
            Step::Store {
                item,
                uid,
                delta,
                unchanged_since,
                ..
            } => {
                match ctx
                    .backend
                    .store(&coll.href, uid, &delta.add, &delta.remove, unchanged_since)
                    .await?
                {
                    Some(m) => {
                        stats.to_backend += 1;
                        if m > 0 {
                            stored.insert(item, m);
                        }
                    }
                    None => {
                        info!(collection = %coll.href, uid, "message changed on the back end since we read it; reading again");
                        return Err(RoundError::StaleBase);
                    }
                }
            }
            Step::Expunge { item, uid, settles } => {
                ctx.backend.expunge(&coll.href, uid).await?;
                stats.to_backend += 1;
                to_gateway.push(Step::Expunge { item, uid, settles });
            }
            Step::Append {
                item,
                flags,
                settles,
                from,
            } => {
                // A client's move: UID MOVE on the back end, no body sent.
                if let Some(o) = from {
                    let source = Href::new(o.mailbox)
                        .map_err(|e| RoundError::Invalid(format!("moved from: {e}")))?;
                    match ctx
                        .backend
                        .move_message(&source, o.uidvalidity, o.uid, &coll.href)
                        .await?
                    {
                        Moved::To(v, uid) if v == changes.uidvalidity => {
                            stats.to_backend += 1;
                            to_gateway.push(Step::Record {
                                item,
                                uid,
                                base: flags,
                                modseq: 0,
                                settles: Some(settles),
                            });
                            continue;
                        }
                        // Moved, its UID unknown: the next round finds it by content.
                        Moved::To(..) | Moved::Unknown => {
                            stats.to_backend += 1;
                            continue;
                        }
                        // The source no longer has it: its bytes are appended.
                        Moved::Gone => {
                            info!(collection = %coll.href, uid = o.uid, "a moved message is no longer in its source mailbox; appending it");
                        }
                    }
                }
                let Some(body) = appended.get(&item) else {
                    continue;
                };
                let body = body.bytes(ctx, &coll.id).await?;
                match ctx.backend.append(&coll.href, &flags, &body).await? {
                    Some((v, uid)) if v == changes.uidvalidity => {
                        stats.to_backend += 1;
                        to_gateway.push(Step::Record {
                            item,
                            uid,
                            base: flags,
                            modseq: 0,
                            settles: Some(settles),
                        });
                    }
                    // No APPENDUID (or another UIDVALIDITY): the next round finds the
                    // message by its content and pairs it; the change stays pending.
                    _ => stats.to_backend += 1,
                }
            }
            other => to_gateway.push(other),
        }
    }
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RoundError::LeaseLost("not renewed in time".into()));
    }

    // The packet: new messages with their bodies, flags without.
    let v = changes.uidvalidity;
    let mut flags_of: HashMap<ItemId, Flags> = HashMap::new();
    for s in &to_gateway {
        if let Step::SetFlags { item, flags } = s {
            flags_of.insert(item.clone(), flags.clone());
        }
    }
    let mut out: Vec<pb::Change> = Vec::new();
    let mut imports: Vec<(u32, Flags)> = Vec::new();
    for s in to_gateway {
        match s {
            Step::Import { uid, flags } => imports.push((uid, flags)),
            Step::Record {
                item,
                uid,
                base,
                modseq,
                settles,
            } => {
                stats.to_gateway += 1;
                let flags = flags_of.get(&item).cloned().unwrap_or_else(|| base.clone());
                let modseq = stored.get(&item).copied().unwrap_or(modseq);
                out.push(pb::Change {
                    // The base, when the gateway keeps other flags (merge mode).
                    base_flags: (flags != base).then(|| pb::FlagSet {
                        flags: names(&base),
                    }),
                    flags: names(&flags),
                    backend_href: href(v, uid),
                    backend_version: version(v, uid, modseq),
                    seq: settles.map_or(0, |s| s.0),
                    ..change(pb::change::Op::Flags, &item)
                });
            }
            Step::Remove { item } => {
                stats.to_gateway += 1;
                out.push(change(pb::change::Op::Delete, &item));
            }
            Step::Expunge { item, settles, .. } => out.push(pb::Change {
                seq: settles.0,
                ..change(pb::change::Op::Delete, &item)
            }),
            Step::Forget { item, settles } => out.push(pb::Change {
                seq: settles.map_or(0, |s| s.0),
                ..change(pb::change::Op::Upsert, &item)
            }),
            Step::Settle { item, seq } => out.push(pb::Change {
                seq: seq.0,
                ..change(pb::change::Op::Ack, &item)
            }),
            // Mirror mode: a client's new message is reverted, kept as a conflict
            // loser on the gateway (which copies it from its own store).
            Step::KeepAndRemove { item, settles } => {
                stats.to_gateway += 1;
                stats.conflicts += 1;
                out.push(pb::Change {
                    seq: settles.0,
                    keep_as_loser: true,
                    ..change(pb::change::Op::Delete, &item)
                });
            }
            // Flags go with the item's Record.
            Step::SetFlags { .. } => {}
            Step::Store { .. } | Step::Append { .. } => {}
        }
    }
    super::mail_import::import(ctx, coll, (token, lost), head, v, imports, &mut stats).await?;

    let packets: Vec<(Vec<pb::Change>, Vec<pb::ConflictRecord>)> =
        chunk(out, packet_budget(ctx.max_message), ctx.max_packet_ops)
            .into_iter()
            .map(|c| (c, Vec::new()))
            .collect();
    let packets = if packets.is_empty() {
        vec![(Vec::new(), Vec::new())]
    } else {
        packets
    };
    let state = changes.new_state.filter(|s| !s.is_empty());
    push_all(ctx, coll, (token, lost), head, packets, state).await?;
    Ok(stats)
}

/// What the back end says of a part's messages.
struct Seen {
    seen: Vec<BackendSeen>,
    uidvalidity: u32,
    new_state: Option<String>,
}

/// A back-end href's UIDVALIDITY and UID (`/UIDVALIDITY/UID`).
fn origin_href(href: &str) -> Option<(u32, u32)> {
    let mut parts = href.strip_prefix('/')?.split('/');
    let v = parts.next()?.parse().ok()?;
    let uid = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((v, uid))
}

pub(super) fn names(flags: &Flags) -> Vec<String> {
    flags.iter().map(|f| f.as_str().to_string()).collect()
}

pub(super) fn version(uidvalidity: u32, uid: u32, modseq: u64) -> String {
    BackendVersion::Imap {
        uidvalidity,
        uid,
        modseq,
    }
    .encode()
}

async fn pause(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    head: u64,
    token: u64,
    reason: &str,
) -> Result<(), RoundError> {
    send_packet(
        ctx,
        pb::ChangePacket {
            collection_id: coll.id.clone(),
            base_seq: head,
            fencing_token: token,
            pause_reason: reason.to_string(),
            ..Default::default()
        },
    )
    .await?;
    coll.paused = true;
    Ok(())
}

/// The gateway's pending changes of a mailbox, as the planner reads them, and the
/// bodies of messages clients appended or moved (the only pending changes with one):
/// small ones inline, larger ones by hash, read only if they are written.
async fn pull(
    ctx: &SourceCtx,
    id: &str,
) -> Result<(Vec<GatewaySeen>, HashMap<ItemId, PendingBody>, u64), RoundError> {
    let answers = ctx
        .link
        .request(Req::JournalPull(pb::JournalPull {
            collection_id: id.into(),
            limit: 0,
        }))
        .await?;
    let mut out = Vec::new();
    let mut bodies = HashMap::new();
    let mut head = 0;
    for a in answers {
        let Some(Ans::JournalBatch(b)) = a.body else {
            return Err(LinkError::Unexpected(format!("{:?}", a.body)).into());
        };
        head = b.head;
        for c in b.changes {
            let item = ItemId::new(c.item_id).map_err(|e| LinkError::Unexpected(e.to_string()))?;
            let seq = Seq(c.seq);
            let flags = Flags::parse(c.flags.iter().map(String::as_str));
            out.push(if c.op == pb::change::Op::Delete as i32 {
                GatewaySeen::Expunged {
                    item,
                    seq,
                    moved: c.moved_away,
                }
            } else if c.backend_href.is_empty()
                && (!c.content.is_empty() || !c.body_sha256.is_empty())
            {
                let from = origin(&c.moved_from_collection, &c.moved_from_href);
                let (key, body) = if c.content.is_empty() {
                    let sha256 = <[u8; 32]>::try_from(c.body_sha256.as_slice()).map_err(|_| {
                        LinkError::Unexpected("a body hash of another length".into())
                    })?;
                    let key = MessageKey {
                        message_id: (!c.uid.is_empty()).then_some(c.uid),
                        size: c.body_size,
                        sha256,
                    };
                    (
                        key,
                        PendingBody::Held {
                            sha256,
                            size: c.body_size,
                        },
                    )
                } else {
                    (MessageKey::of(&c.content), PendingBody::Inline(c.content))
                };
                bodies.insert(item.clone(), body);
                GatewaySeen::Appended {
                    item,
                    flags,
                    key,
                    seq,
                    from,
                }
            } else {
                GatewaySeen::Flags { item, flags, seq }
            });
        }
    }
    Ok((out, bodies, head))
}

/// The index of a mailbox (every message, or those asked for): each message's UID,
/// agreed flags and MODSEQ, and the UIDVALIDITY they belong to.
async fn index(ctx: &SourceCtx, id: &str, wanted: Wanted) -> Result<Index, RoundError> {
    let entries = super::index::pull(ctx, id, wanted).await?;
    let total = entries.total;
    let mut out = Vec::with_capacity(entries.entries.len());
    let mut keys = Vec::with_capacity(entries.entries.len());
    let mut uidvalidity = None;
    for e in entries.entries {
        let BackendVersion::Imap {
            uidvalidity: v,
            uid,
            modseq,
        } = BackendVersion::decode(&e.backend_version)
        else {
            continue;
        };
        uidvalidity = Some(v);
        let item = ItemId::new(e.item_id).map_err(|e| LinkError::Unexpected(e.to_string()))?;
        if let Ok(sha256) = <[u8; 32]>::try_from(e.sha256.as_slice()) {
            keys.push((
                item.clone(),
                MessageKey {
                    message_id: (!e.message_id.is_empty()).then_some(e.message_id),
                    size: e.size,
                    sha256,
                },
            ));
        }
        let base = Flags::parse(e.flags.iter().map(String::as_str));
        out.push(Known {
            item,
            uid,
            current: e.current_flags.map_or_else(
                || base.clone(),
                |f| Flags::parse(f.flags.iter().map(String::as_str)),
            ),
            base,
            modseq,
        });
    }
    Ok(Index {
        known: out,
        keys,
        uidvalidity,
        total,
    })
}

/// What the gateway knows of a mailbox on the back end.
#[derive(Default)]
struct Index {
    /// Each message: item, UID, agreed flags, MODSEQ.
    known: Vec<Known>,
    /// Each message's content key.
    keys: Vec<(ItemId, MessageKey)>,
    /// The UIDVALIDITY the UIDs belong to.
    uidvalidity: Option<u32>,
    /// How many messages the whole index holds.
    total: usize,
}

/// The back end renumbered the mailbox (a new UIDVALIDITY). Each known message is
/// found again by its content key, one to one, and its index entry moves to its new
/// UID: no body goes to the gateway, nothing is deleted or duplicated. Known messages
/// not found are gone; new ones are imported by the next round, which lists the whole
/// mailbox again (the saved state is cleared) and merges flags against the agreed ones.
/// A mailbox where fewer than half the known messages are found is another mailbox:
/// it pauses for an operator.
async fn rekey(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    (token, lost): (u64, &AtomicBool),
    head: u64,
    index: &Index,
    changes: &crate::backends::MailChanges,
) -> Result<RoundStats, RoundError> {
    let listed: Vec<(u32, u64)> = changes
        .seen
        .iter()
        .filter_map(|s| match s {
            BackendSeen::Flags { uid, modseq, .. } => Some((*uid, *modseq)),
            BackendSeen::Vanished(_) => None,
        })
        .collect();
    let uids: Vec<u32> = listed.iter().map(|(u, _)| *u).collect();
    let listing: Vec<((u32, u64), MessageKey)> = keys_of(ctx, &coll.href, &uids)
        .await?
        .into_iter()
        .map(|(uid, modseq, key)| ((uid, modseq), key))
        .collect();
    let v = changes.uidvalidity;
    match postern_core::mail::rematch::rematch(&index.keys, &listing) {
        postern_core::mail::rematch::Rematch::Different { known, matched } => {
            let reason = format!(
                "the back end's UIDVALIDITY of this mailbox changed and only {matched} of {known} known messages are still there: another mailbox? paused for an operator"
            );
            pause(ctx, coll, head, token, &reason).await?;
            Err(RoundError::Paused(reason))
        }
        postern_core::mail::rematch::Rematch::Same { pairs, gone, .. } => {
            info!(collection = %coll.href, found = pairs.len(), gone = gone.len(),
                  "the back end renumbered this mailbox; found every message again by content");
            let mut out: Vec<pb::Change> = pairs
                .iter()
                .map(|(item, (uid, modseq))| pb::Change {
                    backend_href: href(v, *uid),
                    backend_version: version(v, *uid, *modseq),
                    ..change(pb::change::Op::Upsert, item)
                })
                .collect();
            out.extend(gone.iter().map(|item| change(pb::change::Op::Delete, item)));
            let stats = RoundStats {
                to_gateway: gone.len() as u32,
                ..Default::default()
            };
            // One packet: every entry moves at once (new hrefs name the new
            // UIDVALIDITY, so none collides with an old one).
            push_all(
                ctx,
                coll,
                (token, lost),
                head,
                vec![(out, Vec::new())],
                Some(String::new()),
            )
            .await?;
            Ok(stats)
        }
    }
}

/// Where a message a client moved was on the back end: its mailbox, and its href
/// there (`/UIDVALIDITY/UID`).
fn origin(mailbox: &str, href: &str) -> Option<Origin> {
    let (uidvalidity, uid) = origin_href(href)?;
    (!mailbox.is_empty()).then(|| Origin {
        mailbox: mailbox.to_string(),
        uidvalidity,
        uid,
    })
}

/// A message's href on the back end: `/UIDVALIDITY/UID`.
pub(super) fn href(uidvalidity: u32, uid: u32) -> String {
    format!("/{uidvalidity}/{uid}")
}
