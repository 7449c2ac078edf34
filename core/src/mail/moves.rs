//! Moves seen on the back end.
//!
//! IMAP has no "moved" notification: a message moved by another client vanishes from
//! one mailbox (EXPUNGE or VANISHED) and appears in another under a new UID. Taken at
//! face value that is a deletion and a new message: the gateway would drop its copy,
//! download the body again and lose whatever it knew (its UID for clients, a pending
//! flag change). Pairing the two by content key makes it one message that moved: the
//! gateway moves its copy and no body travels. Delete-here-and-create-there is how
//! other gateways gave their users duplicates.

use std::collections::HashMap;

use super::MessageKey;

/// A message the gateway knows that vanished from `mailbox` this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vanished<M, I> {
    /// Where it was.
    pub mailbox: M,
    /// The gateway's id of it.
    pub item: I,
    /// Its content key.
    pub key: MessageKey,
}

/// A message new in `mailbox` this round (its key read from a header and hash fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appeared<M, U> {
    /// Where it is now.
    pub mailbox: M,
    /// Its UID there.
    pub uid: U,
    /// Its content key.
    pub key: MessageKey,
}

/// A vanished message found again: `item` moved to `to` as `uid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved<M, I, U> {
    /// The gateway's id.
    pub item: I,
    /// Where it was.
    pub from: M,
    /// Where it is now.
    pub to: M,
    /// Its UID there.
    pub uid: U,
}

/// What a round's vanished and new messages are once moves are paired: moves, and
/// what is left of each (true deletions, true arrivals), in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired<M, I, U> {
    /// Messages that moved.
    pub moved: Vec<Moved<M, I, U>>,
    /// Messages that are gone.
    pub gone: Vec<Vanished<M, I>>,
    /// Messages that are new.
    pub arrived: Vec<Appeared<M, U>>,
}

/// Pairs vanished and appeared messages one to one by content key (two copies of a
/// message pair with two copies), first vanished with first appeared.
pub fn pair<M: Clone, I: Clone, U: Clone>(
    vanished: Vec<Vanished<M, I>>,
    appeared: Vec<Appeared<M, U>>,
) -> Paired<M, I, U> {
    let mut waiting: HashMap<MessageKey, Vec<usize>> = HashMap::new();
    for (i, a) in appeared.iter().enumerate().rev() {
        waiting.entry(a.key.clone()).or_default().push(i);
    }
    let mut taken = vec![false; appeared.len()];
    let mut moved = Vec::new();
    let mut gone = Vec::new();
    for v in vanished {
        match waiting.get_mut(&v.key).and_then(Vec::pop) {
            Some(i) => {
                taken[i] = true;
                let a = &appeared[i];
                moved.push(Moved {
                    item: v.item,
                    from: v.mailbox,
                    to: a.mailbox.clone(),
                    uid: a.uid.clone(),
                });
            }
            None => gone.push(v),
        }
    }
    let arrived = appeared
        .into_iter()
        .zip(taken)
        .filter(|(_, t)| !t)
        .map(|(a, _)| a)
        .collect();
    Paired {
        moved,
        gone,
        arrived,
    }
}
