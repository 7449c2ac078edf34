//! The plan of one mailbox's round: what moves where, decided from data alone.
//!
//! Mail is not calendar data. A message's bytes never change, so the only edits are
//! to flags, and they are merged per flag ([`super::flags::merge`]) instead of one
//! side winning: a flag change is metadata and never moves a body. Bodies move only
//! for a message one side has never had (a new message on the back end is imported; a
//! message a client appended on the gateway is appended to the back end). Expunges
//! win over flag changes: a message someone deleted on purpose does not come back
//! because another client marked it read.
//!
//! Inputs, per message the gateway knows (the index: item, UID, last-synced flags,
//! last known MODSEQ): what the back end says of its UID (new flags, or vanished, or
//! nothing) and what the gateway's journal says of the item (new flags, or expunged,
//! or nothing). Messages only one side has: new back-end UIDs (with their content
//! key) and messages clients appended on the gateway (with theirs). A new back-end
//! UID whose key matches a pending append is that append, made by an earlier round
//! that crashed before telling the gateway: it is paired, never appended again.
//!
//! Modes: `two-way` writes both ways; `mirror` makes the gateway a copy of the back
//! end (gateway flag changes and expunges are reverted, appends are removed and kept
//! as conflicts); `merge` brings back-end changes in and writes nothing to the back
//! end (back-end expunges do not remove the gateway's copy; gateway flag changes
//! stay, merged with the back end's).

use std::collections::HashMap;

use super::flags::{FlagDelta, Flags, merge};
use super::key::MessageKey;
use super::mailbox::{Role, check_expunges};
use crate::guard::Guard;
use crate::ids::{ItemId, Seq};
use crate::model::Mode;

/// A message the gateway knows on the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The gateway's id.
    pub item: ItemId,
    /// Its UID on the back end (under the mailbox's current UIDVALIDITY).
    pub uid: u32,
    /// The flags both sides last agreed on.
    pub base: Flags,
    /// The gateway's flags now. The same as `base` unless a change is pending, or the
    /// gateway keeps flags of its own (`merge` mode).
    pub current: Flags,
    /// The MODSEQ the back end last reported for it (0: unknown).
    pub modseq: u64,
}

/// What the back end says of a UID this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSeen {
    /// Its flags now (changed, or the UID is new).
    Flags {
        /// The UID.
        uid: u32,
        /// Its flags.
        flags: Flags,
        /// Its MODSEQ (0 when the server has none).
        modseq: u64,
        /// Its content key, for UIDs the index does not hold (pairing with appends).
        key: Option<MessageKey>,
    },
    /// Expunged.
    Vanished(u32),
}

/// What the gateway's journal says of an item this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewaySeen {
    /// A client set its flags to these.
    Flags {
        /// The item.
        item: ItemId,
        /// Its flags now.
        flags: Flags,
        /// The journal entry this settles.
        seq: Seq,
    },
    /// A client expunged it, or moved it to another mailbox (`moved`: that
    /// mailbox's round moves it on the back end, so this one does not expunge it).
    Expunged {
        /// The item.
        item: ItemId,
        /// The journal entry this settles.
        seq: Seq,
        /// It moved rather than went.
        moved: bool,
    },
    /// A client appended it (it has no UID yet).
    Appended {
        /// The item.
        item: ItemId,
        /// Its flags.
        flags: Flags,
        /// Its content key.
        key: MessageKey,
        /// The journal entry this settles.
        seq: Seq,
        /// A client moved it here: where it is on the back end.
        from: Option<Origin>,
    },
}

/// Where a message a client moved is on the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The source mailbox's href.
    pub mailbox: String,
    /// The UIDVALIDITY its UID belongs to.
    pub uidvalidity: u32,
    /// Its UID there.
    pub uid: u32,
}

impl GatewaySeen {
    /// The item the change is to.
    pub fn item(&self) -> &ItemId {
        match self {
            GatewaySeen::Flags { item, .. }
            | GatewaySeen::Expunged { item, .. }
            | GatewaySeen::Appended { item, .. } => item,
        }
    }
}

/// One step of the round. Back-end steps come first in the plan; the executor
/// records every step on the gateway in one packet after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `UID STORE uid +FLAGS/-FLAGS (UNCHANGEDSINCE modseq)`: flags only, no body.
    /// `[MODIFIED]` means the back end changed meanwhile: the round reads and plans
    /// again.
    Store {
        /// The item.
        item: ItemId,
        /// The UID.
        uid: u32,
        /// What to add and remove.
        delta: FlagDelta,
        /// The MODSEQ the change is conditional on (0: unconditional, the server
        /// has no MODSEQ).
        unchanged_since: u64,
        /// The flags both sides hold afterwards (the new base).
        result: Flags,
        /// The journal entry this settles, if any.
        settles: Option<Seq>,
    },
    /// `UID STORE uid +FLAGS (\Deleted)` then `UID EXPUNGE uid`: this message only.
    Expunge {
        /// The item.
        item: ItemId,
        /// The UID.
        uid: u32,
        /// The journal entry this settles.
        settles: Seq,
    },
    /// `APPEND` with the item's flags and internal date; the back end assigns the
    /// UID (APPENDUID), which the executor records. With `from` (a client moved
    /// it): `UID MOVE` from there instead, one copy kept and no body sent; an APPEND
    /// only if the source no longer holds it.
    Append {
        /// The item.
        item: ItemId,
        /// Its flags.
        flags: Flags,
        /// The journal entry this settles.
        settles: Seq,
        /// Where it is on the back end, when a client moved it here.
        from: Option<Origin>,
    },
    /// The gateway's flags of an item become these (no body moves).
    SetFlags {
        /// The item.
        item: ItemId,
        /// The flags.
        flags: Flags,
    },
    /// A new back-end message: fetch its body and add it to the gateway.
    Import {
        /// The UID.
        uid: u32,
        /// Its flags.
        flags: Flags,
    },
    /// A message the back end expunged leaves the gateway.
    Remove {
        /// The item.
        item: ItemId,
    },
    /// The index entry of an item: its UID, the flags both sides agree on, its MODSEQ.
    /// (After an append found again, a flag merge, a back-end flag change.)
    Record {
        /// The item.
        item: ItemId,
        /// The UID.
        uid: u32,
        /// The agreed flags.
        base: Flags,
        /// The MODSEQ.
        modseq: u64,
        /// The journal entry this settles, if any.
        settles: Option<Seq>,
    },
    /// The item leaves the index but stays on the gateway (`merge` mode: the back end
    /// expunged it; or the gateway keeps what it expunged).
    Forget {
        /// The item.
        item: ItemId,
        /// The journal entry this settles, if any.
        settles: Option<Seq>,
    },
    /// A gateway change settled with nothing to write (its effect is already there).
    Settle {
        /// The item.
        item: ItemId,
        /// The journal entry.
        seq: Seq,
    },
    /// `mirror`: a message a client appended is removed from the gateway and kept as
    /// a conflict loser (its bytes are on the gateway).
    KeepAndRemove {
        /// The item.
        item: ItemId,
        /// The journal entry this settles.
        settles: Seq,
    },
}

/// A mailbox's round: everything the plan needs.
#[derive(Debug, Clone)]
pub struct MailRound<'a> {
    /// The collection's mode.
    pub mode: Mode,
    /// The mailbox's role (for the deletion guard).
    pub role: Option<Role>,
    /// The index: every message, or (a round that knows what changed) only the
    /// messages this round names.
    pub index: &'a [Known],
    /// How many messages the whole index holds (the deletion guard weighs what
    /// vanished against it).
    pub indexed: usize,
    /// What the back end says.
    pub backend: &'a [BackendSeen],
    /// What the gateway's journal says.
    pub gateway: &'a [GatewaySeen],
}

/// A round's plan, or why it must not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailPlan {
    /// The steps, back-end writes first.
    Steps(Vec<Step>),
    /// Too many messages vanished at once from a mailbox that is not emptied as a
    /// matter of course: the collection pauses.
    Paused(String),
}

/// Plans one round of a mailbox.
pub fn plan(round: &MailRound<'_>, guard: &Guard) -> MailPlan {
    let by_uid: HashMap<u32, &BackendSeen> = round
        .backend
        .iter()
        .map(|b| match b {
            BackendSeen::Flags { uid, .. } | BackendSeen::Vanished(uid) => (*uid, b),
        })
        .collect();
    let by_item: HashMap<&ItemId, &GatewaySeen> =
        round.gateway.iter().map(|g| (g.item(), g)).collect();
    let known_uids: HashMap<u32, &Known> = round.index.iter().map(|k| (k.uid, k)).collect();

    let vanished = round
        .index
        .iter()
        .filter(|k| matches!(by_uid.get(&k.uid), Some(BackendSeen::Vanished(_))))
        .count();
    if round.mode != Mode::Merge
        && let Some(reason) = check_expunges(
            guard,
            round.role,
            round.indexed.max(round.index.len()),
            vanished,
        )
    {
        return MailPlan::Paused(reason);
    }

    let mut backend_steps = Vec::new();
    let mut gateway_steps = Vec::new();
    for k in round.index {
        let b = by_uid.get(&k.uid).copied();
        let g = by_item.get(&k.item).copied();
        known(round.mode, k, b, g, &mut backend_steps, &mut gateway_steps);
    }

    // Messages only one side has. A pending append whose content the back end now
    // holds under a UID the index does not know is that append, made before a crash.
    let mut appends: HashMap<&MessageKey, Vec<&GatewaySeen>> = HashMap::new();
    for g in round.gateway.iter().rev() {
        if let GatewaySeen::Appended { key, .. } = g {
            appends.entry(key).or_default().push(g);
        }
    }
    let mut paired: Vec<&ItemId> = Vec::new();
    for b in round.backend {
        let BackendSeen::Flags {
            uid,
            flags,
            modseq,
            key,
        } = b
        else {
            continue;
        };
        if known_uids.contains_key(uid) {
            continue;
        }
        let found = key
            .as_ref()
            .and_then(|k| appends.get_mut(k))
            .and_then(Vec::pop);
        match found {
            Some(GatewaySeen::Appended {
                item,
                flags: wanted,
                seq,
                ..
            }) => {
                paired.push(item);
                // The message came from the gateway: its flags there now (a client
                // may have changed them since the append) are the ones to keep.
                if wanted != flags {
                    backend_steps.push(Step::Store {
                        item: item.clone(),
                        uid: *uid,
                        delta: flags.delta(wanted),
                        unchanged_since: *modseq,
                        result: wanted.clone(),
                        settles: None,
                    });
                }
                gateway_steps.push(Step::Record {
                    item: item.clone(),
                    uid: *uid,
                    base: wanted.clone(),
                    modseq: *modseq,
                    settles: Some(*seq),
                });
            }
            _ => gateway_steps.push(Step::Import {
                uid: *uid,
                flags: flags.clone(),
            }),
        }
    }
    let indexed: std::collections::HashSet<&ItemId> = round.index.iter().map(|k| &k.item).collect();
    for g in round.gateway {
        // A change to a message the back end never had (a client expunged or
        // flagged its own append before it got there): nothing to write.
        match g {
            GatewaySeen::Expunged { item, seq, .. } | GatewaySeen::Flags { item, seq, .. }
                if !indexed.contains(item) =>
            {
                gateway_steps.push(Step::Settle {
                    item: item.clone(),
                    seq: *seq,
                });
                continue;
            }
            _ => {}
        }
        let GatewaySeen::Appended {
            item,
            flags,
            seq,
            from,
            ..
        } = g
        else {
            continue;
        };
        if paired.contains(&item) {
            continue;
        }
        match round.mode {
            Mode::TwoWay => backend_steps.push(Step::Append {
                item: item.clone(),
                flags: flags.clone(),
                settles: *seq,
                from: from.clone(),
            }),
            Mode::Mirror => gateway_steps.push(Step::KeepAndRemove {
                item: item.clone(),
                settles: *seq,
            }),
            Mode::Merge => gateway_steps.push(Step::Settle {
                item: item.clone(),
                seq: *seq,
            }),
        }
    }
    backend_steps.extend(gateway_steps);
    MailPlan::Steps(backend_steps)
}

/// The steps for one message both sides have (or had).
fn known(
    mode: Mode,
    k: &Known,
    b: Option<&BackendSeen>,
    g: Option<&GatewaySeen>,
    to_backend: &mut Vec<Step>,
    to_gateway: &mut Vec<Step>,
) {
    let item = || k.item.clone();
    match (b, g) {
        (None, None) => {}
        // Expunged on the back end: gone from the gateway too (expunge beats a flag
        // change), except in `merge` mode, where the gateway keeps its copy.
        (Some(BackendSeen::Vanished(_)), g) => {
            let settles = g.and_then(|g| match g {
                GatewaySeen::Flags { seq, .. } | GatewaySeen::Expunged { seq, .. } => Some(*seq),
                GatewaySeen::Appended { .. } => None,
            });
            match (mode, g) {
                (_, Some(GatewaySeen::Expunged { seq, .. })) => to_gateway.push(Step::Settle {
                    item: item(),
                    seq: *seq,
                }),
                (Mode::Merge, _) => to_gateway.push(Step::Forget {
                    item: item(),
                    settles,
                }),
                _ => {
                    to_gateway.push(Step::Remove { item: item() });
                    if let Some(seq) = settles {
                        to_gateway.push(Step::Settle { item: item(), seq });
                    }
                }
            }
        }
        // Moved on the gateway: the destination's round moves it on the back end;
        // here it stays known by its UID until the back end says it is gone.
        (
            _,
            Some(GatewaySeen::Expunged {
                seq, moved: true, ..
            }),
        ) if mode == Mode::TwoWay => to_gateway.push(Step::Settle {
            item: item(),
            seq: *seq,
        }),
        // Expunged on the gateway.
        (b, Some(GatewaySeen::Expunged { seq, .. })) => match mode {
            Mode::TwoWay => to_backend.push(Step::Expunge {
                item: item(),
                uid: k.uid,
                settles: *seq,
            }),
            // The back end's copy comes back.
            Mode::Mirror => {
                let flags = match b {
                    Some(BackendSeen::Flags { flags, .. }) => flags.clone(),
                    _ => k.base.clone(),
                };
                to_gateway.push(Step::Forget {
                    item: item(),
                    settles: Some(*seq),
                });
                to_gateway.push(Step::Import { uid: k.uid, flags });
            }
            // The gateway keeps its change; the back end keeps the message, still
            // known by its UID so that it is not imported again.
            Mode::Merge => to_gateway.push(Step::Settle {
                item: item(),
                seq: *seq,
            }),
        },
        (b, g) => {
            let (backend, modseq) = match b {
                Some(BackendSeen::Flags { flags, modseq, .. }) => (flags.clone(), *modseq),
                _ => (k.base.clone(), k.modseq),
            };
            let (gateway, settles) = match g {
                Some(GatewaySeen::Flags { flags, seq, .. }) => (flags.clone(), Some(*seq)),
                _ => (k.current.clone(), None),
            };
            let (on_backend, on_gateway, base) = match mode {
                Mode::TwoWay => {
                    let m = merge(&k.base, &backend, &gateway);
                    (m.clone(), m.clone(), m)
                }
                // The back end's flags, whatever the gateway did.
                Mode::Mirror => (backend.clone(), backend.clone(), backend.clone()),
                // Back-end changes come in; the gateway's stay and are not written.
                Mode::Merge => (
                    backend.clone(),
                    merge(&k.base, &backend, &gateway),
                    backend.clone(),
                ),
            };
            if on_backend != backend {
                to_backend.push(Step::Store {
                    item: item(),
                    uid: k.uid,
                    delta: backend.delta(&on_backend),
                    unchanged_since: modseq,
                    result: base.clone(),
                    settles,
                });
            }
            if on_gateway != gateway {
                to_gateway.push(Step::SetFlags {
                    item: item(),
                    flags: on_gateway,
                });
            }
            if base != k.base || modseq != k.modseq || settles.is_some() {
                to_gateway.push(Step::Record {
                    item: item(),
                    uid: k.uid,
                    base,
                    modseq,
                    settles,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
