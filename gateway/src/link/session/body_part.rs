//! Mail bodies on the link: bodies too large for one link message, received in parts
//! (`BodyPart`) and sent in parts (`BodyRead`: a client's large append, read by the
//! connector when it writes it), and which bodies the gateway holds already
//! (`BodiesQuery`), so that a message moved or copied on the back end does not cross
//! the link again.

use postern_proto as pb;
use uuid::Uuid;

use super::{Out, Session, msg};
use crate::store::StoreError;

/// The most hashes one `BodiesQuery` may ask about.
const MAX_BODIES_QUERY: usize = 1000;

impl Session {
    /// Which of these bodies the tenant's store holds (see `BodiesQuery`).
    pub(super) async fn bodies_query(
        &self,
        rid: u64,
        q: pb::BodiesQuery,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        if let Err(f) = self.own(rid, &q.collection_id).await {
            return Ok(vec![f]);
        }
        if q.sha256.len() > MAX_BODIES_QUERY {
            return Ok(vec![super::failure(
                rid,
                format!("at most {MAX_BODIES_QUERY} hashes per BodiesQuery"),
            )]);
        }
        let held = self.store.bodies_held(self.tenant(), &q.sha256).await?;
        Ok(vec![msg(
            rid,
            Out::BodiesKnown(pb::BodiesKnown {
                known: q.sha256.iter().map(|h| held.contains(h)).collect(),
            }),
        )])
    }

    /// A part of a body a pending change names (see `BodyRead`), at most what fits
    /// in one link message.
    pub(super) async fn body_read(
        &self,
        rid: u64,
        r: pb::BodyRead,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let most = self
            .settings
            .max_message_bytes
            .saturating_sub(64 << 10)
            .max(1) as u64;
        if !r.outbox_id.is_empty() {
            return self.outbox_body(rid, &r, most).await;
        }
        let coll = match self.own(rid, &r.collection_id).await {
            Ok(c) => c,
            Err(f) => return Ok(vec![f]),
        };
        let Some((data, total)) = self
            .store
            .pending_body_range(
                self.tenant(),
                coll,
                &r.sha256,
                (r.offset, r.length.min(most)),
            )
            .await?
        else {
            return Ok(vec![super::failure(
                rid,
                "no pending change of this collection names that body",
            )]);
        };
        self.metrics
            .mail_body_bytes
            .get_or_create(&crate::metrics::Direction {
                direction: "to_backend".into(),
            })
            .inc_by(data.len() as u64);
        Ok(vec![msg(
            rid,
            Out::BodyChunk(pb::BodyChunk { data, total }),
        )])
    }

    /// One part of a body too large for one message (see `BodyPart`).
    pub(super) async fn body_part(
        &self,
        rid: u64,
        b: pb::BodyPart,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let coll = match self.own(rid, &b.collection_id).await {
            Ok(c) => c,
            Err(f) => return Ok(vec![f]),
        };
        let verdict = |outcome| {
            msg(
                rid,
                Out::Verdict(pb::Verdict {
                    collection_id: b.collection_id.clone(),
                    outcome: Some(outcome),
                }),
            )
        };
        let rejected = |reason: pb::rejected::Reason, detail: String| {
            pb::verdict::Outcome::Rejected(pb::Rejected {
                reason: reason as i32,
                detail,
            })
        };
        let Ok(upload) = Uuid::parse_str(&b.upload_id) else {
            return Ok(vec![verdict(rejected(
                pb::rejected::Reason::Invalid,
                "upload_id must be a UUID".into(),
            ))]);
        };
        let outcome = self
            .store
            .add_body_part(
                self.tenant(),
                coll,
                b.fencing_token as i64,
                upload,
                (b.offset, b.total),
                &b.data,
            )
            .await?;
        Ok(vec![verdict(match outcome {
            crate::store::mail::PartOutcome::Accepted => {
                self.metrics
                    .mail_body_bytes
                    .get_or_create(&crate::metrics::Direction {
                        direction: "to_gateway".into(),
                    })
                    .inc_by(b.data.len() as u64);
                pb::verdict::Outcome::Accepted(pb::Accepted::default())
            }
            crate::store::mail::PartOutcome::StaleFence(d) => {
                rejected(pb::rejected::Reason::StaleFence, d)
            }
            crate::store::mail::PartOutcome::Invalid(d) => {
                rejected(pb::rejected::Reason::Invalid, d)
            }
        })])
    }
}
