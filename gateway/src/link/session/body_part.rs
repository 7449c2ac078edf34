//! Mail bodies too large for one link message, received in parts (`BodyPart`).

use postern_proto as pb;
use uuid::Uuid;

use super::{Out, Session, msg};
use crate::store::StoreError;

impl Session {
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
