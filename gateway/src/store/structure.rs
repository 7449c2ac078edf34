//! The structure of messages as IMAP clients fetch it (ENVELOPE, BODY,
//! BODYSTRUCTURE), kept once per body: computed from the bytes the first time a
//! client asks, then read back in a few hundred bytes per message. Opaque text to
//! the store (the IMAP endpoint writes and reads it); `version` names the
//! computation, so rows of another version are neither served nor kept over.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Result, Store};

/// One message's structure, as the IMAP endpoint serialised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureRow {
    /// ENVELOPE.
    pub envelope: String,
    /// BODY (no extension data).
    pub body: String,
    /// BODYSTRUCTURE.
    pub structure: String,
}

impl Store {
    /// The structures of `version` kept for these bodies, by hash; bodies without
    /// one are missing from the map.
    pub async fn structures(
        &self,
        tenant: Uuid,
        version: i16,
        shas: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], StructureRow>> {
        let keys: Vec<&[u8]> = shas.iter().map(|s| s.as_slice()).collect();
        let rows = self
            .read(
                "SELECT sha256, envelope, body, structure FROM message_structure
                 WHERE tenant_id = $1 AND version = $2 AND sha256 = ANY($3)",
                &[&tenant, &version, &keys],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let sha: Vec<u8> = r.get(0);
                Some((
                    sha.try_into().ok()?,
                    StructureRow {
                        envelope: r.get(1),
                        body: r.get(2),
                        structure: r.get(3),
                    },
                ))
            })
            .collect())
    }

    /// Keeps computed structures (a row of another version is replaced). A body
    /// deleted meanwhile keeps nothing: its structure is not needed.
    pub async fn keep_structures(
        &self,
        tenant: Uuid,
        version: i16,
        rows: &[([u8; 32], StructureRow)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let shas: Vec<&[u8]> = rows.iter().map(|(s, _)| s.as_slice()).collect();
        let column = |f: fn(&StructureRow) -> &str| -> Vec<&str> {
            rows.iter().map(|(_, r)| f(r)).collect()
        };
        let (envelopes, bodies, structures) = (
            column(|r| &r.envelope),
            column(|r| &r.body),
            column(|r| &r.structure),
        );
        let c = self.client().await?;
        c.execute(
            "INSERT INTO message_structure (tenant_id, sha256, version, envelope, body, structure)
             SELECT $1, k.sha, $2, k.envelope, k.body, k.structure
             FROM unnest($3::bytea[], $4::text[], $5::text[], $6::text[])
                  AS k(sha, envelope, body, structure)
             JOIN message_bodies b ON b.tenant_id = $1 AND b.sha256 = k.sha
             ON CONFLICT (tenant_id, sha256) DO UPDATE
               SET version = EXCLUDED.version, envelope = EXCLUDED.envelope,
                   body = EXCLUDED.body, structure = EXCLUDED.structure
               WHERE message_structure.version <> EXCLUDED.version",
            &[&tenant, &version, &shas, &envelopes, &bodies, &structures],
        )
        .await?;
        Ok(())
    }
}
