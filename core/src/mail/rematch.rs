//! A mailbox whose UIDVALIDITY changed: the same messages under new UIDs, or another
//! mailbox?
//!
//! Servers reset UIDVALIDITY when a mailbox is rebuilt, restored or migrated, and every
//! UID the index holds becomes meaningless. Re-downloading would move every body and
//! deleting would lose mail, so the index is re-keyed: each known message is matched
//! to a new UID by its content key ([`MessageKey`]), one to one (two copies of one
//! message pair with two copies). Nothing that matches moves a byte. What is left is
//! decided by how much matched: mostly the same messages means the mailbox is the
//! same (the unmatched known ones were expunged, the unmatched new ones arrived);
//! mostly different means it is genuinely another mailbox behind the same name, and
//! the collection pauses for an operator rather than deleting what the gateway holds.

use std::collections::HashMap;

use super::MessageKey;

/// The outcome of matching known messages against a mailbox's new listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rematch<K, U> {
    /// The same mailbox: re-key `pairs` (known → new UID); `gone` were expunged
    /// meanwhile; `arrived` are new messages.
    Same {
        /// Known message → its new UID.
        pairs: Vec<(K, U)>,
        /// Known messages the mailbox no longer holds.
        gone: Vec<K>,
        /// New UIDs that match no known message.
        arrived: Vec<U>,
    },
    /// Another mailbox: too few known messages are still there.
    Different {
        /// Known messages.
        known: usize,
        /// How many of them matched.
        matched: usize,
    },
}

/// At least this share (percent) of the known messages must be found for the mailbox
/// to count as the same one.
pub const SAME_PERCENT: usize = 50;

/// Matches `known` (the index: an id and key each) against `listing` (the mailbox as
/// it now is: a UID and key each), one to one by key, in order within equal keys.
pub fn rematch<K: Clone, U: Clone>(
    known: &[(K, MessageKey)],
    listing: &[(U, MessageKey)],
) -> Rematch<K, U> {
    let mut by_key: HashMap<&MessageKey, Vec<&U>> = HashMap::new();
    for (u, k) in listing.iter().rev() {
        by_key.entry(k).or_default().push(u);
    }
    let mut pairs = Vec::new();
    let mut gone = Vec::new();
    for (id, key) in known {
        match by_key.get_mut(key).and_then(Vec::pop) {
            Some(u) => pairs.push((id.clone(), u.clone())),
            None => gone.push(id.clone()),
        }
    }
    if !known.is_empty() && pairs.len() * 100 < known.len() * SAME_PERCENT {
        return Rematch::Different {
            known: known.len(),
            matched: pairs.len(),
        };
    }
    let mut left: HashMap<&MessageKey, usize> = HashMap::new();
    for (k, us) in &by_key {
        left.insert(*k, us.len());
    }
    // The unmatched new UIDs, in listing order: the last `left[k]` of each key's
    // occurrences were not taken (pairs take them first to last).
    let mut seen: HashMap<&MessageKey, usize> = HashMap::new();
    let total: HashMap<&MessageKey, usize> =
        listing.iter().fold(HashMap::new(), |mut m, (_, k)| {
            *m.entry(k).or_default() += 1;
            m
        });
    let arrived = listing
        .iter()
        .filter(|(_, k)| {
            let n = seen.entry(k).or_default();
            *n += 1;
            *n > total[k] - left[k]
        })
        .map(|(u, _)| u.clone())
        .collect();
    Rematch::Same {
        pairs,
        gone,
        arrived,
    }
}
