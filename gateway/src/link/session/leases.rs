//! Leases on the link: a connector's round acquires, renews and releases the lease
//! of a collection (with its fencing token, the gateway's sync state, its mode and
//! conflict policy); when the stream ends, whatever its instance holds is released,
//! and a grant that lands after that gives itself back.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use postern_core::model::{ConflictPolicy, Mode};
use postern_proto as pb;
use tracing::{info, warn};

use super::{Out, Session, failure, msg, wire_word};
use crate::store::StoreError;
use crate::store::leases::{LeaseOutcome, SyncState};

impl Session {
    pub(super) async fn lease(
        &self,
        rid: u64,
        l: pb::LeaseRequest,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let coll = match self.own(rid, &l.collection_id).await {
            Ok(c) => c,
            Err(f) => return Ok(vec![f]),
        };
        let holder = self.instance().await;
        let tenant = self.tenant();
        let ttl = self.settings.lease_ttl;
        let deny = |why: pb::DenyReason, retry: Duration| {
            let reason = match why {
                pb::DenyReason::Held => "held",
                pb::DenyReason::Paused => "paused",
                pb::DenyReason::Changed => "changed",
                pb::DenyReason::Draining => "draining",
                pb::DenyReason::Revoked => "revoked",
                pb::DenyReason::UnknownCollection | pb::DenyReason::Unspecified => {
                    "unknown-collection"
                }
            };
            let label = crate::metrics::Reason {
                reason: reason.into(),
            };
            self.metrics.lease_denials.get_or_create(&label).inc();
            msg(
                rid,
                Out::LeaseDeny(pb::LeaseDeny {
                    collection_id: l.collection_id.clone(),
                    reason: reason.into(),
                    retry_after_ms: retry.as_millis() as u64,
                    why: why as i32,
                }),
            )
        };
        let grant = |token: u64, ttl: Duration, state: Option<SyncState>| {
            let state = state.unwrap_or_default();
            msg(
                rid,
                Out::LeaseGrant(pb::LeaseGrant {
                    collection_id: l.collection_id.clone(),
                    fencing_token: token,
                    ttl_ms: ttl.as_millis() as u64,
                    backend_state: state.backend_state,
                    mode: wire_word(&state.mode, |m: Mode| pb::SyncMode::from(m) as i32),
                    conflict: wire_word(&state.conflict, |p: ConflictPolicy| {
                        pb::ConflictPolicy::from(p) as i32
                    }),
                }),
            )
        };
        let outcome = match pb::lease_request::Action::try_from(l.action) {
            Ok(pb::lease_request::Action::Acquire) => {
                if self.draining.load(SeqCst) {
                    return Ok(vec![deny(pb::DenyReason::Draining, Duration::from_secs(1))]);
                }
                if !self
                    .store
                    .connector_token_valid(tenant, self.claims.sub, self.claims.jti)
                    .await?
                {
                    return Ok(vec![deny(
                        pb::DenyReason::Revoked,
                        Duration::from_secs(3600),
                    )]);
                }
                self.store
                    .acquire_lease(tenant, coll, self.claims.sub, &holder, ttl)
                    .await?
            }
            Ok(pb::lease_request::Action::Renew) => {
                self.store
                    .renew_lease(tenant, coll, &holder, l.fencing_token, ttl)
                    .await?
            }
            Ok(pb::lease_request::Action::Release) => {
                self.store
                    .release_lease(tenant, coll, &holder, l.fencing_token)
                    .await?;
                self.held.write().await.remove(&coll);
                return Ok(vec![grant(l.fencing_token, Duration::ZERO, None)]);
            }
            _ => {
                return Ok(vec![failure(
                    rid,
                    format!("unknown lease action {}", l.action),
                )]);
            }
        };
        Ok(vec![match outcome {
            LeaseOutcome::Granted(token, _) if self.closed.load(SeqCst) => {
                // The stream ended while this grant was being written, after (or
                // while) `close` released the instance's leases: nobody would renew
                // or release it, and the collection would wait out its TTL.
                self.store
                    .release_lease(tenant, coll, &holder, token)
                    .await?;
                deny(pb::DenyReason::Draining, Duration::from_secs(1))
            }
            LeaseOutcome::Granted(token, state) => {
                self.held.write().await.insert(coll);
                grant(token, ttl, state)
            }
            LeaseOutcome::Held(left) => {
                deny(pb::DenyReason::Held, left.max(Duration::from_millis(200)))
            }
            LeaseOutcome::Paused => deny(pb::DenyReason::Paused, ttl),
            LeaseOutcome::Changed => deny(pb::DenyReason::Changed, Duration::ZERO),
            LeaseOutcome::Unknown => deny(pb::DenyReason::UnknownCollection, ttl),
        }])
    }

    /// Releases every lease this stream's instance holds (the stream ended), so
    /// another connector can take over at once. If the database does not answer (the
    /// stream may have ended *because* of an outage), the release is retried in the
    /// background until it does, or until the leases would have expired anyway.
    ///
    /// Handlers run concurrently with the stream, so a lease request can still be
    /// on its way into the database when the stream ends. `closed` is set before the
    /// release; a grant that commits afterwards sees it and gives its lease back.
    pub async fn close(&self) {
        self.closed.store(true, SeqCst);
        let holder = self.instance().await;
        if holder.is_empty() {
            return;
        }
        let tenant = self.tenant();
        let Err(e) = self.store.release_all_leases(tenant, &holder).await else {
            return;
        };
        warn!(error = %e, connector = %self.claims.name, "could not release the leases of a closed stream; retrying until the database answers");
        let store = self.store.clone();
        let give_up = tokio::time::Instant::now() + self.settings.lease_ttl;
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            while tokio::time::Instant::now() < give_up {
                tokio::time::sleep(wait).await;
                match store.release_all_leases(tenant, &holder).await {
                    Ok(n) => {
                        info!(released = n, "released the leases of a closed stream");
                        return;
                    }
                    Err(_) => wait = (wait * 2).min(Duration::from_secs(1)),
                }
            }
        });
    }
}
