//! ENVELOPE, BODY and BODYSTRUCTURE for FETCH without reading the messages: each
//! body's structure is computed once from its bytes (`mime`), kept in the store as
//! JSON of the imap-types values, and read back a batch of messages at a time. A
//! client filling its cache (`FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)`) then
//! costs one query per batch instead of one whole message per message.

use std::collections::HashMap;

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

/// The structures of `messages` (a batch), by body hash: those kept are read in
/// one query, the others computed from their bytes and kept for the next time.
pub async fn load(
    store: &Store,
    tenant: Uuid,
    messages: &[&MessageRow],
) -> Result<HashMap<[u8; 32], Structure>, String> {
    let shas: Vec<[u8; 32]> = messages.iter().map(|m| m.sha).collect();
    let kept = store
        .structures(tenant, VERSION, &shas)
        .await
        .map_err(|e| format!("cannot read message structures: {e}"))?;
    let mut out: HashMap<[u8; 32], Structure> = kept
        .iter()
        .filter_map(|(sha, row)| Some((*sha, Structure::from_row(row)?)))
        .collect();
    let mut new_rows = Vec::new();
    for m in messages {
        if out.contains_key(&m.sha) {
            continue;
        }
        let bytes = store
            .body_range(tenant, &m.sha, 0, u64::from(m.size))
            .await
            .map_err(|e| format!("cannot read the message: {e}"))?
            .unwrap_or_default();
        let s = Structure::of(&bytes);
        if let Ok(row) = s.to_row() {
            new_rows.push((m.sha, row));
        }
        out.insert(m.sha, s);
    }
    // Keeping is a saving for later, never a reason to fail this FETCH.
    if let Err(e) = store.keep_structures(tenant, VERSION, &new_rows).await {
        tracing::debug!(error = %e, "message structures not kept");
    }
    Ok(out)
}
