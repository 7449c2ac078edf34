//! ENVELOPE, BODY and BODYSTRUCTURE for FETCH without reading the messages: each
//! body's structure is computed once from its bytes (`mime`), kept in the store as
//! JSON of the imap-types values, and read back a batch of messages at a time. A
//! client filling its cache (`FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)`) then
//! costs one query per batch instead of one whole message per message. The
//! structures last used also stay in memory ([`Cache`], bounded), so a mailbox
//! fetched again is answered without the database or JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use imap_next::imap_types::body::BodyStructure;
use imap_next::imap_types::envelope::Envelope;
use uuid::Uuid;

use super::mime;
use crate::store::Store;
use crate::store::imap::MessageRow;
use crate::store::structure::StructureRow;

/// The computation's version: raise it when `mime` answers differently, and every
/// kept structure is computed again on its next FETCH.
pub const VERSION: i16 = 1;

/// Messages whose structures are read (or computed and kept) together.
pub const BATCH: usize = 500;

/// One message's structure, as FETCH serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    pub envelope: Envelope<'static>,
    pub body: BodyStructure<'static>,
    pub structure: BodyStructure<'static>,
}

impl Structure {
    /// Computed from the message's bytes.
    pub fn of(message: &[u8]) -> Structure {
        Structure {
            envelope: mime::envelope(message),
            body: mime::structure(message, false, false),
            structure: mime::structure(message, true, false),
        }
    }

    fn to_row(&self) -> Result<StructureRow, serde_json::Error> {
        Ok(StructureRow {
            envelope: serde_json::to_string(&self.envelope)?,
            body: serde_json::to_string(&self.body)?,
            structure: serde_json::to_string(&self.structure)?,
        })
    }

    fn from_row(r: &StructureRow) -> Option<Structure> {
        Some(Structure {
            envelope: serde_json::from_str(&r.envelope).ok()?,
            body: serde_json::from_str(&r.body).ok()?,
            structure: serde_json::from_str(&r.structure).ok()?,
        })
    }
}

/// Structures held in memory across sessions, at most (a few KB each).
pub const CACHE_ENTRIES: usize = 50_000;

/// The structures last used, by tenant and body hash; when full, the older half
/// goes.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    entries: HashMap<(Uuid, [u8; 32]), (Arc<Structure>, u64)>,
    clock: u64,
}

impl Cache {
    fn get(&self, tenant: Uuid, sha: &[u8; 32]) -> Option<Arc<Structure>> {
        let mut inner = self.inner.lock().ok()?;
        inner.clock += 1;
        let now = inner.clock;
        let (s, used) = inner.entries.get_mut(&(tenant, *sha))?;
        *used = now;
        Some(s.clone())
    }

    fn put(&self, tenant: Uuid, sha: [u8; 32], s: Arc<Structure>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.entries.len() >= CACHE_ENTRIES {
            let mut ages: Vec<u64> = inner.entries.values().map(|(_, u)| *u).collect();
            let middle = ages.len() / 2;
            let (_, cut, _) = ages.select_nth_unstable(middle);
            let cut = *cut;
            inner.entries.retain(|_, (_, used)| *used > cut);
        }
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.insert((tenant, sha), (s, now));
    }
}

/// The structures of `messages` (a batch), by body hash: from memory, else those
/// kept in the store (one query), else computed from their bytes and kept.
pub async fn load(
    store: &Store,
    cache: &Cache,
    tenant: Uuid,
    messages: &[&MessageRow],
) -> Result<HashMap<[u8; 32], Arc<Structure>>, String> {
    let mut out: HashMap<[u8; 32], Arc<Structure>> = HashMap::with_capacity(messages.len());
    for m in messages {
        if let Some(s) = cache.get(tenant, &m.sha) {
            out.insert(m.sha, s);
        }
    }
    let shas: Vec<[u8; 32]> = messages
        .iter()
        .filter(|m| !out.contains_key(&m.sha))
        .map(|m| m.sha)
        .collect();
    if shas.is_empty() {
        return Ok(out);
    }
    let kept = store
        .structures(tenant, VERSION, &shas)
        .await
        .map_err(|e| format!("cannot read message structures: {e}"))?;
    for (sha, row) in &kept {
        if let Some(s) = Structure::from_row(row) {
            let s = Arc::new(s);
            cache.put(tenant, *sha, s.clone());
            out.insert(*sha, s);
        }
    }
    let mut new_rows = Vec::new();
    for m in messages {
        if out.contains_key(&m.sha) {
            continue;
        }
        let bytes = store
            .body_range(tenant, &m.sha, 0, u64::from(m.size))
            .await
            .map_err(|e| format!("cannot read the message: {e}"))?;
        let Some(bytes) = bytes else {
            // No body (yet): answered as an empty message, and nothing is kept.
            out.insert(m.sha, Arc::new(Structure::of(b"")));
            continue;
        };
        let s = Arc::new(Structure::of(&bytes));
        if let Ok(row) = s.to_row() {
            new_rows.push((m.sha, row));
        }
        cache.put(tenant, m.sha, s.clone());
        out.insert(m.sha, s);
    }
    // Keeping is a saving for later, never a reason to fail this FETCH.
    if let Err(e) = store.keep_structures(tenant, VERSION, &new_rows).await {
        tracing::debug!(error = %e, "message structures not kept");
    }
    Ok(out)
}
