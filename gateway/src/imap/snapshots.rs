//! Mailbox snapshots: the message list a SELECT reads (UIDs, flags, sizes, MODSEQs,
//! body hashes), kept per mailbox together with the journal head it was read at.
//! Every change to a mailbox's messages, from a client or from the back end, moves
//! its journal head (that is its HIGHESTMODSEQ), so a SELECT that finds the head
//! where a snapshot left it takes the snapshot instead of reading every row again:
//! a client re-selecting a large unchanged mailbox costs a lookup, not a scan.
//!
//! Bounded by the number of messages held across snapshots; the least recently used
//! go first. Per process: each replica keeps its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::store::imap::MessageRow;
use crate::store::{Result, Store};

/// Messages held across all snapshots of a process (about 150 bytes each).
pub const MAX_MESSAGES: usize = 500_000;

/// The snapshots of one process.
#[derive(Default)]
pub struct Snapshots {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(Uuid, Uuid), Entry>,
    held: usize,
    clock: u64,
}

struct Entry {
    head: i64,
    messages: Arc<Vec<MessageRow>>,
    used: u64,
}

impl Snapshots {
    /// The messages of `mailbox` of `tenant`, whose journal head is `head` now: the
    /// snapshot if it was read at that head, else read from the store (and kept).
    pub async fn messages(
        &self,
        store: &Store,
        tenant: Uuid,
        mailbox: Uuid,
        head: i64,
    ) -> Result<Vec<MessageRow>> {
        let key = (tenant, mailbox);
        if let Some(m) = self.get(key, head) {
            return Ok((*m).clone());
        }
        let messages = store.mailbox_messages(tenant, mailbox).await?;
        // The rows may be newer than `head` (a change committed in between): kept
        // under the older head, they are simply read again by the next SELECT.
        self.put(key, head, Arc::new(messages.clone()));
        Ok(messages)
    }

    fn get(&self, key: (Uuid, Uuid), head: i64) -> Option<Arc<Vec<MessageRow>>> {
        let mut inner = self.inner.lock().ok()?;
        inner.clock += 1;
        let now = inner.clock;
        let e = inner.entries.get_mut(&key)?;
        if e.head != head {
            return None;
        }
        e.used = now;
        Some(e.messages.clone())
    }

    fn put(&self, key: (Uuid, Uuid), head: i64, messages: Arc<Vec<MessageRow>>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if messages.len() > MAX_MESSAGES {
            return;
        }
        inner.clock += 1;
        let used = inner.clock;
        let size = messages.len();
        if let Some(old) = inner.entries.insert(
            key,
            Entry {
                head,
                messages,
                used,
            },
        ) {
            inner.held -= old.messages.len();
        }
        inner.held += size;
        while inner.held > MAX_MESSAGES {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.held -= e.messages.len();
            }
        }
    }
}
