//! Message bodies nobody needs any more. A body is kept once per tenant and content
//! and shared by every message with those bytes; when the last message holding it is
//! gone (expunged, and the expunge settled on the back end) and no outbox message
//! holds it, its bytes are removed.
//!
//! Both steps wait out a grace period: a settled tombstone lets go of its body only
//! after it, and only bodies older than it are removed. A connector that was just
//! told "the gateway holds this body" (`BodiesQuery`) therefore finds it there; if it
//! ever does not, its packet is refused and the next round sends the bytes.

use std::time::Duration;

use super::{Result, Store};

/// Bodies removed per statement (a long backlog is taken in steps).
const STEP: i64 = 1000;

impl Store {
    /// Removes bodies no message refers to any more, older than `grace`. Returns
    /// (tombstones that let go of their body, bodies removed).
    pub async fn collect_bodies(&self, grace: Duration) -> Result<(u64, u64)> {
        let c = self.client().await?;
        let secs = grace.as_secs_f64();
        let released = c
            .execute(
                "UPDATE items SET body_sha256 = NULL
                 WHERE deleted AND body_sha256 IS NOT NULL AND pending_seq IS NULL
                   AND changed_at < now() - $1 * interval '1 second'",
                &[&secs],
            )
            .await?;
        let mut removed = 0;
        loop {
            let n = c
                .execute(
                    "DELETE FROM message_bodies WHERE (tenant_id, sha256) IN (
                         SELECT b.tenant_id, b.sha256 FROM message_bodies b
                         WHERE b.created_at < now() - $1 * interval '1 second'
                           AND NOT EXISTS (SELECT 1 FROM items i
                                           WHERE i.tenant_id = b.tenant_id AND i.body_sha256 = b.sha256)
                           AND NOT EXISTS (SELECT 1 FROM outbox o
                                           WHERE o.tenant_id = b.tenant_id AND o.body_sha256 = b.sha256)
                         LIMIT $2)",
                    &[&secs, &STEP],
                )
                .await?;
            removed += n;
            if n < STEP as u64 {
                break;
            }
        }
        Ok((released, removed))
    }
}
