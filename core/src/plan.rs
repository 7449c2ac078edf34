//! Planning a round: what moves where, and who wins a conflict.
//!
//! A round of one collection sees three things:
//!
//! - the **index**: what the gateway knows of the back end, one [`Known`] per item
//!   (its gateway id, its back-end href and the back-end version last seen);
//! - the **back end's changes** since the last round, as [`BackendChange`]s (the
//!   connector already fetched the new content);
//! - the **gateway's changes** the back end has not seen yet, as [`GatewayChange`]s
//!   pulled from the journal.
//!
//! [`plan`] pairs them per item and decides, with an exhaustive `match` over
//! (back-end change, gateway change) per [`Mode`], the [`Action`]s of the round. When
//! both sides changed the same item, [`resolve`] picks the winner by the collection's
//! [`ConflictPolicy`] and the loser becomes an [`Action::Keep`]: nothing is dropped.
//! Identical edits on both sides (say, the echo of our own earlier write) are not a
//! conflict: the gateway just records the back end's version.
//!
//! The connector executes the actions: back-end writes first, then one change packet
//! to the gateway.

use std::collections::{BTreeMap, BTreeSet};

use crate::content;
use crate::ids::{Href, ItemId, Seq};
use crate::merge;
use crate::model::{CollectionKind, ConflictPolicy, Mode, Side};

/// What the gateway knows of one item on the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The gateway's id of the item.
    pub item_id: ItemId,
    /// Where the item lives on the back end.
    pub href: Href,
    /// The back-end version last seen (ETag or IMAP triple, encoded).
    pub version: String,
}

/// A back-end resource as fetched in this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCopy {
    /// Where it lives.
    pub href: Href,
    /// Its version (ETag) as the server reported it with the content.
    pub version: String,
    /// Its bytes, as the server sent them.
    pub content: Vec<u8>,
}

/// A change the back end reported (sync-collection, an ETag listing, or IMAP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendChange {
    /// Created or modified, with the content fetched.
    Changed(BackendCopy),
    /// Gone from the back end.
    Deleted(Href),
}

impl BackendChange {
    /// The href the change is about.
    pub fn href(&self) -> &Href {
        match self {
            BackendChange::Changed(c) => &c.href,
            BackendChange::Deleted(h) => h,
        }
    }
}

/// Something the back end reported before its content was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSignal {
    /// Created or modified; its new version.
    Changed {
        /// Where.
        href: Href,
        /// The new ETag (may be empty when the server did not report one).
        version: String,
    },
    /// Gone.
    Deleted(Href),
}

/// A gateway-side change the back end has not seen (the latest state of the item,
/// coalesced from its journal entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayChange {
    /// The gateway's id of the item.
    pub item_id: ItemId,
    /// The journal sequence of the latest change; acknowledged once applied.
    pub seq: Seq,
    /// iCalendar/vCard UID (names new items on the back end).
    pub uid: String,
    /// Where the item lives on the back end, if it does.
    pub backend_href: Option<Href>,
    /// The back-end version the gateway last saw for it.
    pub backend_version: Option<String>,
    /// The new content, or `None` when the item was deleted on the gateway.
    pub content: Option<Vec<u8>>,
    /// When the gateway change was made, Unix milliseconds.
    pub changed_at_ms: i64,
    /// The version both sides last agreed on, when the gateway keeps one (collections
    /// with the `merge` policy): the base of a three-way merge.
    pub base: Option<Vec<u8>>,
}

/// The precondition of a back-end write, so a concurrent back-end edit is never
/// overwritten blindly (a failed precondition becomes a re-plan, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match: <etag>`: replace exactly the version we planned against.
    IfMatch(String),
    /// `If-None-Match: *`: create only if nothing is there.
    IfNoneMatch,
}

/// A version that lost a conflict, kept for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loser {
    /// The gateway item it belongs to, if the gateway knows it.
    pub item_id: Option<ItemId>,
    /// Its UID, to find it again.
    pub uid: String,
    /// Which side's version lost.
    pub side: Side,
    /// The losing bytes; `None` when the losing change was a deletion.
    pub content: Option<Vec<u8>>,
    /// The policy that decided.
    pub policy: ConflictPolicy,
    /// The back-end href of the item, if any.
    pub href: Option<Href>,
}

/// One step of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store back-end content on the gateway: a new item (`item_id: None`), an update,
    /// or the restoration of an item the gateway had deleted.
    Import {
        /// The gateway item to replace, or `None` for a new one.
        item_id: Option<ItemId>,
        /// The back-end copy.
        copy: BackendCopy,
        /// The gateway change this settles, if any (acknowledged with it).
        settles: Option<Seq>,
        /// Merge mode: what the gateway stores instead of the copy (a merge of both
        /// sides kept on the gateway only); the copy, which the back end holds, is
        /// then the base of the next merge.
        merged: Option<Vec<u8>>,
    },
    /// Delete the gateway's copy: the back end deleted it.
    DeleteOnGateway {
        /// The item.
        item_id: ItemId,
        /// The gateway change this settles, if any.
        settles: Option<Seq>,
    },
    /// Nothing to move, but the gateway records the back end's version (identical
    /// content on both sides).
    RecordVersion {
        /// The item.
        item_id: ItemId,
        /// Where it is on the back end.
        href: Href,
        /// The back-end version to remember.
        version: String,
        /// The gateway change this settles, if any.
        settles: Option<Seq>,
    },
    /// Write the gateway's content to the back end.
    Put {
        /// The item.
        item_id: ItemId,
        /// The gateway change this applies.
        settles: Seq,
        /// Where to write.
        href: Href,
        /// Guard against overwriting an unseen back-end change.
        precondition: Precondition,
        /// The gateway's bytes, sent as they are, or a merge of both sides.
        content: Vec<u8>,
        /// `content` is a merge of both sides: the gateway stores it too.
        merged: bool,
    },
    /// Delete the item on the back end.
    DeleteOnBackend {
        /// The item.
        item_id: ItemId,
        /// The gateway change this applies.
        settles: Seq,
        /// Where it is.
        href: Href,
        /// The version we expect to delete.
        if_match: String,
    },
    /// The gateway change needs nothing on the back end (merge mode keeps gateway
    /// edits local; a deletion of an item the back end never had).
    Acknowledge {
        /// The item.
        item_id: ItemId,
        /// The gateway change settled.
        settles: Seq,
    },
    /// Merge mode: the back end deleted the item but the gateway keeps it; forget its
    /// back-end href.
    Detach {
        /// The item.
        item_id: ItemId,
    },
    /// Keep a losing version in the gateway's conflicts.
    Keep(Loser),
}

/// Everything one round of one collection knows.
#[derive(Debug, Clone)]
pub struct Round<'a> {
    /// The collection's mode.
    pub mode: Mode,
    /// The collection's conflict policy.
    pub policy: ConflictPolicy,
    /// What the collection holds (names new items).
    pub kind: CollectionKind,
    /// The back-end collection, e.g. `/alice/work/` (new items go below it).
    pub collection_href: &'a Href,
    /// What the gateway knows of the back end.
    pub index: &'a [Known],
    /// The back end's changes, with content.
    pub backend: &'a [BackendChange],
    /// The gateway's changes.
    pub gateway: &'a [GatewayChange],
}

/// Which back-end hrefs the connector must fetch before it can [`plan`]: every changed
/// one, and in `mirror` mode the current copy of every item changed on the gateway
/// (to restore it).
pub fn fetch_list(mode: Mode, signals: &[BackendSignal], gateway: &[GatewayChange]) -> Vec<Href> {
    let mut hrefs: BTreeSet<Href> = signals
        .iter()
        .filter_map(|s| match s {
            BackendSignal::Changed { href, .. } => Some(href.clone()),
            BackendSignal::Deleted(_) => None,
        })
        .collect();
    let deleted: BTreeSet<&Href> = signals
        .iter()
        .filter_map(|s| match s {
            BackendSignal::Deleted(h) => Some(h),
            BackendSignal::Changed { .. } => None,
        })
        .collect();
    if mode == Mode::Mirror {
        for g in gateway {
            if let Some(h) = &g.backend_href
                && !deleted.contains(h)
            {
                hrefs.insert(h.clone());
            }
        }
    }
    hrefs.into_iter().collect()
}

/// Drops back-end signals that only echo what the gateway already knows (same
/// version as in the index).
pub fn new_signals(index: &[Known], signals: Vec<BackendSignal>) -> Vec<BackendSignal> {
    let known: BTreeMap<&Href, &str> = index
        .iter()
        .map(|k| (&k.href, k.version.as_str()))
        .collect();
    signals
        .into_iter()
        .filter(|s| match s {
            BackendSignal::Changed { href, version } => {
                version.is_empty() || known.get(href).is_none_or(|v| *v != version)
            }
            BackendSignal::Deleted(href) => known.contains_key(href),
        })
        .collect()
}

/// Turns a full listing of the back end (href → version) into the signals since the
/// index: new and changed hrefs, and known hrefs no longer listed.
pub fn diff_listing(index: &[Known], listing: &BTreeMap<Href, String>) -> Vec<BackendSignal> {
    let mut out: Vec<BackendSignal> = listing
        .iter()
        .map(|(href, version)| BackendSignal::Changed {
            href: href.clone(),
            version: version.clone(),
        })
        .collect();
    out.extend(
        index
            .iter()
            .filter(|k| !listing.contains_key(&k.href))
            .map(|k| BackendSignal::Deleted(k.href.clone())),
    );
    new_signals(index, out)
}

/// Who wins when both sides changed an item.
///
/// `backend_time` is the back end's modification time read from the content (`None`
/// for a deletion or when the content does not say); `gateway_time` when the gateway
/// change was made. For `newest-wins` (and `merge`, which falls back to it), a
/// deletion of unknown time loses to an edit, so no content disappears on a guess.
pub fn resolve(
    policy: ConflictPolicy,
    backend: Option<i64>,
    backend_deleted: bool,
    gateway_time: i64,
    gateway_deleted: bool,
) -> Side {
    match policy {
        ConflictPolicy::BackendWins => Side::Backend,
        ConflictPolicy::GatewayWins => Side::Gateway,
        ConflictPolicy::NewestWins | ConflictPolicy::Merge => {
            match (backend_deleted, gateway_deleted) {
                (true, true) => Side::Backend,
                (true, false) => Side::Gateway,
                (false, _) => match backend {
                    Some(t) if t >= gateway_time => Side::Backend,
                    Some(_) => Side::Gateway,
                    // The back end says nothing: prefer its edit over a gateway deletion,
                    // and the gateway's edit over an undated back-end edit.
                    None if gateway_deleted => Side::Backend,
                    None => Side::Gateway,
                },
            }
        }
    }
}

/// Plans a round. Deterministic: the same input gives the same actions, in href order.
pub fn plan(round: &Round<'_>) -> Vec<Action> {
    let by_href: BTreeMap<&Href, &Known> = round.index.iter().map(|k| (&k.href, k)).collect();
    let by_id: BTreeMap<&ItemId, &Known> = round.index.iter().map(|k| (&k.item_id, k)).collect();
    let mut backend: BTreeMap<&Href, &BackendChange> =
        round.backend.iter().map(|c| (c.href(), c)).collect();

    let mut actions = Vec::new();
    let mut taken: BTreeSet<Href> = round.index.iter().map(|k| k.href.clone()).collect();
    // Items new on the back end, by UID: a client's new item with the same UID is the
    // same item under another name, whatever the names.
    let new_by_uid: BTreeMap<String, Href> = round
        .backend
        .iter()
        .filter_map(|c| match c {
            BackendChange::Changed(copy) if !by_href.contains_key(&copy.href) => {
                Some((content::uid(&copy.content)?, copy.href.clone()))
            }
            _ => None,
        })
        .collect();

    for g in round.gateway {
        let known = by_id.get(&g.item_id).copied();
        let href = g
            .backend_href
            .clone()
            .or_else(|| known.map(|k| k.href.clone()));
        let pair = match href {
            Some(href) => {
                let version = known
                    .filter(|k| k.href == href)
                    .map(|k| k.version.clone())
                    .or_else(|| g.backend_version.clone())
                    .unwrap_or_default();
                let b = backend.remove(&href);
                Pair {
                    href,
                    version: Some(version),
                    b,
                    g,
                }
            }
            None => {
                // Never on the back end: it will get a name derived from its UID. A
                // back-end item that appeared under that very name (our own earlier
                // write, cut short by a crash) is the same item; so is one new on the
                // back end with the same UID under another name (the policy then
                // decides their content).
                let same_uid = (!g.uid.is_empty())
                    .then(|| new_by_uid.get(&g.uid))
                    .flatten()
                    .filter(|h| backend.contains_key(h))
                    .cloned();
                let href = match same_uid {
                    Some(h) => h,
                    None => new_href(round, g, &taken),
                };
                taken.insert(href.clone());
                let b = backend
                    .remove(&href)
                    .filter(|_| !by_href.contains_key(&href));
                Pair {
                    href,
                    version: None,
                    b,
                    g,
                }
            }
        };
        decide(round, &pair, &mut actions);
    }

    for (href, change) in backend {
        let known = by_href.get(href).copied();
        match (change, known, round.mode) {
            (BackendChange::Changed(copy), known, _) => actions.push(Action::Import {
                item_id: known.map(|k| k.item_id.clone()),
                copy: copy.clone(),
                settles: None,
                merged: None,
            }),
            (BackendChange::Deleted(_), None, _) => {}
            (BackendChange::Deleted(_), Some(k), Mode::TwoWay | Mode::Mirror) => {
                actions.push(Action::DeleteOnGateway {
                    item_id: k.item_id.clone(),
                    settles: None,
                })
            }
            (BackendChange::Deleted(_), Some(k), Mode::Merge) => actions.push(Action::Detach {
                item_id: k.item_id.clone(),
            }),
        }
    }
    actions
}

/// An item changed on the gateway, with whatever the back end did to it.
struct Pair<'a> {
    /// Its href on the back end (planned, for a new item).
    href: Href,
    /// The back-end version the gateway knows; `None` when it was never there.
    version: Option<String>,
    /// The back end's change to the same href, if any.
    b: Option<&'a BackendChange>,
    /// The gateway's change.
    g: &'a GatewayChange,
}

fn new_href(round: &Round<'_>, g: &GatewayChange, taken: &BTreeSet<Href>) -> Href {
    let base = round.collection_href.as_str().trim_end_matches('/');
    let ext = round.kind.extension();
    let uid = if g.uid.is_empty() {
        g.item_id.as_str()
    } else {
        g.uid.as_str()
    };
    let first = Href::new(format!("{base}/{}", content::name_for_uid(uid, ext)));
    match first {
        Ok(h) if !taken.contains(&h) => h,
        _ => Href::new(format!(
            "{base}/{}",
            content::name_for_uid(&format!("{uid}-{}", g.item_id), ext)
        ))
        .unwrap_or_else(|_| round.collection_href.clone()),
    }
}

/// The exhaustive decision for one gateway change and the back end's change (if any)
/// to the same item.
fn decide(round: &Round<'_>, p: &Pair<'_>, out: &mut Vec<Action>) {
    let g = p.g;
    let item_id = g.item_id.clone();
    let seq = g.seq;
    let keep = |side: Side, content: Option<Vec<u8>>| {
        Action::Keep(Loser {
            item_id: Some(g.item_id.clone()),
            uid: g.uid.clone(),
            side,
            content,
            policy: round.policy,
            href: Some(p.href.clone()),
        })
    };
    let import = |copy: &BackendCopy| Action::Import {
        item_id: Some(item_id.clone()),
        copy: copy.clone(),
        settles: Some(seq),
        merged: None,
    };
    let put = |precondition: Precondition, content: &Vec<u8>| Action::Put {
        item_id: item_id.clone(),
        settles: seq,
        href: p.href.clone(),
        precondition,
        content: content.clone(),
        merged: false,
    };
    // The `merge` policy: both sides' edits combined against the base, if they can be.
    let merge = |theirs: &[u8], ours: &[u8]| -> Option<Vec<u8>> {
        if round.policy != ConflictPolicy::Merge {
            return None;
        }
        merge::three_way(g.base.as_deref()?, ours, theirs)?.ok()
    };
    let ack = Action::Acknowledge {
        item_id: item_id.clone(),
        settles: seq,
    };
    let delete_here = Action::DeleteOnGateway {
        item_id: item_id.clone(),
        settles: Some(seq),
    };
    let winner = |b_time: Option<i64>, b_del: bool, g_del: bool| {
        resolve(round.policy, b_time, b_del, g.changed_at_ms, g_del)
    };

    match (round.mode, p.b, &g.content) {
        // ---- two-way: changes flow both ways ----
        (Mode::TwoWay, None, Some(content)) => out.push(put(
            match &p.version {
                Some(v) => Precondition::IfMatch(v.clone()),
                None => Precondition::IfNoneMatch,
            },
            content,
        )),
        (Mode::TwoWay, None, None) => match &p.version {
            Some(v) => out.push(Action::DeleteOnBackend {
                item_id,
                settles: seq,
                href: p.href.clone(),
                if_match: v.clone(),
            }),
            None => out.push(ack),
        },
        (Mode::TwoWay, Some(BackendChange::Changed(c)), Some(content)) => {
            if content::same_content(&c.content, content) {
                out.push(Action::RecordVersion {
                    item_id,
                    href: c.href.clone(),
                    version: c.version.clone(),
                    settles: Some(seq),
                });
            } else if let Some(m) = merge(&c.content, content) {
                // Merged: whichever side lacks something gets the merge.
                if content::same_content(&m, &c.content) {
                    out.push(import(c));
                } else if content::same_content(&m, content) {
                    out.push(put(Precondition::IfMatch(c.version.clone()), content));
                } else {
                    out.push(Action::Put {
                        item_id,
                        settles: seq,
                        href: p.href.clone(),
                        precondition: Precondition::IfMatch(c.version.clone()),
                        content: m,
                        merged: true,
                    });
                }
            } else {
                match winner(content::modified_at_ms(&c.content), false, false) {
                    Side::Backend => {
                        out.extend([import(c), keep(Side::Gateway, Some(content.clone()))])
                    }
                    Side::Gateway => out.extend([
                        put(Precondition::IfMatch(c.version.clone()), content),
                        keep(Side::Backend, Some(c.content.clone())),
                    ]),
                }
            }
        }
        (Mode::TwoWay, Some(BackendChange::Changed(c)), None) => {
            match winner(content::modified_at_ms(&c.content), false, true) {
                Side::Backend => out.extend([import(c), keep(Side::Gateway, None)]),
                Side::Gateway => out.extend([
                    Action::DeleteOnBackend {
                        item_id,
                        settles: seq,
                        href: p.href.clone(),
                        if_match: c.version.clone(),
                    },
                    keep(Side::Backend, Some(c.content.clone())),
                ]),
            }
        }
        (Mode::TwoWay, Some(BackendChange::Deleted(_)), Some(content)) => {
            match winner(None, true, false) {
                Side::Backend => {
                    out.extend([delete_here, keep(Side::Gateway, Some(content.clone()))])
                }
                Side::Gateway => out.extend([
                    put(Precondition::IfNoneMatch, content),
                    keep(Side::Backend, None),
                ]),
            }
        }
        (Mode::TwoWay, Some(BackendChange::Deleted(_)), None) => out.push(ack),

        // ---- mirror: the gateway becomes a copy of the back end ----
        (Mode::Mirror, Some(BackendChange::Changed(c)), Some(content)) => {
            out.push(import(c));
            if !content::same_content(&c.content, content) {
                out.push(keep(Side::Gateway, Some(content.clone())));
            }
        }
        (Mode::Mirror, Some(BackendChange::Changed(c)), None) => out.push(import(c)),
        (Mode::Mirror, Some(BackendChange::Deleted(_)), Some(content)) => {
            out.extend([delete_here, keep(Side::Gateway, Some(content.clone()))])
        }
        (Mode::Mirror, Some(BackendChange::Deleted(_)), None) => out.push(ack),
        (Mode::Mirror, None, Some(content)) if p.version.is_none() => {
            out.extend([delete_here, keep(Side::Gateway, Some(content.clone()))])
        }
        (Mode::Mirror, None, None) if p.version.is_none() => out.push(ack),
        // The current back-end copy was not fetched (see `fetch_list`): leave the
        // change pending; the next round restores it.
        (Mode::Mirror, None, _) => {}

        // ---- merge: back-end changes flow in; gateway changes stay on the gateway ----
        (Mode::Merge, None, _) => out.push(ack),
        (Mode::Merge, Some(BackendChange::Changed(c)), Some(content)) => {
            if content::same_content(&c.content, content) {
                out.push(Action::RecordVersion {
                    item_id,
                    href: c.href.clone(),
                    version: c.version.clone(),
                    settles: Some(seq),
                });
            } else if let Some(m) = merge(&c.content, content) {
                // Merged, kept on the gateway; the back end keeps its own copy.
                out.push(if content::same_content(&m, &c.content) {
                    import(c)
                } else {
                    Action::Import {
                        item_id: Some(item_id),
                        copy: c.clone(),
                        settles: Some(seq),
                        merged: Some(if content::same_content(&m, content) {
                            content.clone()
                        } else {
                            m
                        }),
                    }
                });
            } else {
                match winner(content::modified_at_ms(&c.content), false, false) {
                    Side::Backend => {
                        out.extend([import(c), keep(Side::Gateway, Some(content.clone()))])
                    }
                    Side::Gateway => out.extend([
                        Action::RecordVersion {
                            item_id,
                            href: c.href.clone(),
                            version: c.version.clone(),
                            settles: Some(seq),
                        },
                        keep(Side::Backend, Some(c.content.clone())),
                    ]),
                }
            }
        }
        (Mode::Merge, Some(BackendChange::Changed(c)), None) => {
            match winner(content::modified_at_ms(&c.content), false, true) {
                Side::Backend => out.extend([import(c), keep(Side::Gateway, None)]),
                Side::Gateway => out.extend([ack, keep(Side::Backend, Some(c.content.clone()))]),
            }
        }
        (Mode::Merge, Some(BackendChange::Deleted(_)), Some(_)) => out.extend([
            Action::Detach {
                item_id: item_id.clone(),
            },
            ack,
        ]),
        (Mode::Merge, Some(BackendChange::Deleted(_)), None) => out.push(ack),
    }
}

#[cfg(test)]
mod tests;
