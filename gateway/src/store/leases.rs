//! Leases with fencing tokens, kept in rows (never session advisory locks, which leak
//! behind connection poolers).
//!
//! A lease says which connector instance may write a collection until when. Acquiring
//! an expired (or free) lease bumps its fencing token; every write carries the token,
//! and [`super::packet`] checks it in the same transaction as the write, so a holder
//! that was paused past its expiry cannot write after someone else took over.

use std::time::Duration;

use uuid::Uuid;

use super::{Result, Store};

/// What a round needs to know of its collection now: an operator may have changed
/// the mode or policy, or forced a resync by clearing the back-end state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The back-end resume point (sync token), empty for a full comparison.
    pub backend_state: String,
    /// Sync mode.
    pub mode: String,
    /// Conflict policy.
    pub conflict: String,
}

/// The outcome of an acquire or renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Granted with this fencing token; on acquire, with the collection's current
    /// sync state (read in the same query that checked it may be leased).
    Granted(u64, Option<SyncState>),
    /// Someone else holds it for about this long.
    Held(Duration),
    /// The collection is paused; no lease is handed out.
    Paused,
    /// A client created or deleted the collection: the connector must ask for its
    /// assignment again before syncing it.
    Changed,
    /// No such collection in this tenant.
    Unknown,
}

impl Store {
    /// Acquires the lease of a collection for `holder` (a connector instance). A holder
    /// that already holds it gets its current token back with a new expiry.
    pub async fn acquire_lease(
        &self,
        tenant: Uuid,
        collection: Uuid,
        connector: Uuid,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome> {
        let c = self.client().await?;
        let state = c
            .query_opt(
                "SELECT paused_reason, create_pending OR delete_pending, backend_state, mode, conflict
                 FROM collections WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &collection],
            )
            .await?;
        let sync = match state {
            None => return Ok(LeaseOutcome::Unknown),
            Some(row) if row.get::<_, bool>(1) => return Ok(LeaseOutcome::Changed),
            Some(row) if row.get::<_, Option<String>>(0).is_some() => {
                return Ok(LeaseOutcome::Paused);
            }
            Some(row) => SyncState {
                backend_state: row.get(2),
                mode: row.get(3),
                conflict: row.get(4),
            },
        };
        let ttl_ms = ttl.as_millis() as f64;
        let row = c
            .query_opt(
                "INSERT INTO leases AS l (tenant_id, collection_id, holder, connector_id, fencing_token, expires_at)
                 VALUES ($1, $2, $3, $4, 1, now() + $5 * interval '1 millisecond')
                 ON CONFLICT (tenant_id, collection_id) DO UPDATE
                   SET holder = EXCLUDED.holder,
                       connector_id = EXCLUDED.connector_id,
                       fencing_token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                                            THEN l.fencing_token ELSE l.fencing_token + 1 END,
                       expires_at = EXCLUDED.expires_at
                   WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
                 RETURNING fencing_token",
                &[&tenant, &collection, &holder, &connector, &ttl_ms],
            )
            .await?;
        if let Some(row) = row {
            return Ok(LeaseOutcome::Granted(
                row.get::<_, i64>(0) as u64,
                Some(sync),
            ));
        }
        let left = c
            .query_opt(
                "SELECT GREATEST(0, EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint
                 FROM leases WHERE tenant_id = $1 AND collection_id = $2",
                &[&tenant, &collection],
            )
            .await?
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        Ok(LeaseOutcome::Held(Duration::from_millis(left as u64)))
    }

    /// Extends a held lease. Fails (`Held`) if the token is no longer current or the
    /// lease already expired: the holder must stop writing and re-acquire.
    pub async fn renew_lease(
        &self,
        tenant: Uuid,
        collection: Uuid,
        holder: &str,
        token: u64,
        ttl: Duration,
    ) -> Result<LeaseOutcome> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE leases SET expires_at = now() + $5 * interval '1 millisecond'
                 WHERE tenant_id = $1 AND collection_id = $2 AND holder = $3 AND fencing_token = $4 AND expires_at > now()",
                &[&tenant, &collection, &holder, &(token as i64), &(ttl.as_millis() as f64)],
            )
            .await?;
        Ok(if n == 1 {
            LeaseOutcome::Granted(token, None)
        } else {
            LeaseOutcome::Held(Duration::ZERO)
        })
    }

    /// Releases a held lease (expires it now; the token stays, so the next acquire
    /// bumps it).
    pub async fn release_lease(
        &self,
        tenant: Uuid,
        collection: Uuid,
        holder: &str,
        token: u64,
    ) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE leases SET expires_at = now()
                 WHERE tenant_id = $1 AND collection_id = $2 AND holder = $3 AND fencing_token = $4",
                &[&tenant, &collection, &holder, &(token as i64)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Releases every lease an instance holds (its stream ended).
    pub async fn release_all_leases(&self, tenant: Uuid, holder: &str) -> Result<u64> {
        let c = self.client().await?;
        Ok(c.execute(
            "UPDATE leases SET expires_at = now() WHERE tenant_id = $1 AND holder = $2 AND expires_at > now()",
            &[&tenant, &holder],
        )
        .await?)
    }
}
