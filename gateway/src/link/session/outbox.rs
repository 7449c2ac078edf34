//! The outbox on the link: a connector's `smtp` source takes the messages its user
//! sent through the submission endpoint (`OutboxPull`), reads a large body in parts
//! (`BodyRead { outbox_id }`), and says what became of each (`OutboxReport`).
//! Everything is scoped to the sources this connector announced: a connector never
//! sees another user's outbox.

use postern_proto as pb;
use uuid::Uuid;

use super::{Out, Session, failure, msg};
use crate::store::StoreError;
use crate::store::outbox::Relay;

/// Bodies up to this size come inline with the batch.
const INLINE: i64 = 256 << 10;
/// Messages handed out at most in one batch.
const MAX_BATCH: u32 = 64;

impl Session {
    /// The id of `smtp` source `name` of this connector, if it announced one.
    async fn smtp_source(&self, name: &str) -> Option<Uuid> {
        self.sources
            .read()
            .await
            .get(name)
            .filter(|s| s.smtp)
            .map(|s| s.id)
    }

    /// The names of this connector's `smtp` sources relaying `user`'s outbox.
    pub async fn outbox_sources(&self, user: Uuid) -> Vec<String> {
        self.sources
            .read()
            .await
            .iter()
            .filter(|(_, s)| s.smtp && s.user == user)
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub(super) async fn outbox_pull(
        &self,
        rid: u64,
        p: pb::OutboxPull,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let Some(source) = self.smtp_source(&p.source).await else {
            return Ok(vec![failure(
                rid,
                format!("no source {:?} on this connector", p.source),
            )]);
        };
        let items = self
            .store
            .claim_outbox(self.tenant(), source, p.max.clamp(1, MAX_BATCH), INLINE)
            .await?;
        let items = items
            .into_iter()
            .map(|(m, body)| pb::OutboxItem {
                id: m.id.to_string(),
                mail_from: m.mail_from,
                rcpt_to: m.rcpt_to,
                size: m.size.max(0) as u64,
                body_inline: body.is_some(),
                body: body.unwrap_or_default(),
            })
            .collect();
        Ok(vec![msg(rid, Out::OutboxBatch(pb::OutboxBatch { items }))])
    }

    pub(super) async fn outbox_report(
        &self,
        rid: u64,
        r: pb::OutboxReport,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let Some(source) = self.smtp_source(&r.source).await else {
            return Ok(vec![failure(
                rid,
                format!("no source {:?} on this connector", r.source),
            )]);
        };
        let Ok(id) = Uuid::parse_str(&r.id) else {
            return Ok(vec![failure(rid, "an outbox id is a UUID")]);
        };
        let relay = match pb::OutboxOutcome::try_from(r.outcome) {
            Ok(pb::OutboxOutcome::Sent) => Relay::Sent,
            Ok(pb::OutboxOutcome::Temporary) => Relay::Temporary,
            Ok(pb::OutboxOutcome::Permanent) => Relay::Permanent,
            _ => return Ok(vec![failure(rid, "an outbox report needs an outcome")]),
        };
        let detail: String = r.detail.chars().take(2000).collect();
        let outcome = match relay {
            Relay::Sent => "sent",
            Relay::Temporary => "temporary",
            Relay::Permanent => "permanent",
        };
        self.metrics
            .outbox_relayed
            .get_or_create(&crate::metrics::Outcome {
                outcome: outcome.into(),
            })
            .inc();
        if !self
            .store
            .report_outbox(self.tenant(), source, id, relay, &detail)
            .await?
        {
            return Ok(vec![failure(
                rid,
                format!("no queued outbox message {id} of this source"),
            )]);
        }
        Ok(vec![msg(
            rid,
            Out::Verdict(pb::Verdict {
                outcome: Some(pb::verdict::Outcome::Accepted(pb::Accepted::default())),
                ..Default::default()
            }),
        )])
    }

    /// A part of an outbox message's body (`BodyRead { outbox_id }`).
    pub(super) async fn outbox_body(
        &self,
        rid: u64,
        r: &pb::BodyRead,
        most: u64,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let Ok(id) = Uuid::parse_str(&r.outbox_id) else {
            return Ok(vec![failure(rid, "an outbox id is a UUID")]);
        };
        let sources: Vec<Uuid> = self.sources.read().await.values().map(|s| s.id).collect();
        for source in sources {
            if let Some((data, total)) = self
                .store
                .outbox_body_range(self.tenant(), source, id, (r.offset, r.length.min(most)))
                .await?
            {
                return Ok(vec![msg(
                    rid,
                    Out::BodyChunk(pb::BodyChunk { data, total }),
                )]);
            }
        }
        Ok(vec![failure(
            rid,
            "no queued outbox message of this connector's sources",
        )])
    }
}
