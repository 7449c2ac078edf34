//! Relaying the gateway's outbox through an `smtp` source: the messages users sent
//! through the gateway's submission endpoint go to the corporate SMTP server from
//! inside the firewall, each reported back (sent, try later, refused for good).
//!
//! The loop asks for what waits when the gateway says the user submitted mail, and
//! every interval (a message to retry); again at once after a message left the
//! outbox, so a queue drains without waiting intervals. A message is
//! reported after the server answered; if the connector dies between the two, the
//! gateway hands it out again and it is sent twice, never lost (RFC 5321 §6.1
//! prefers a duplicate to a loss).

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_proto as pb;
use tracing::{debug, info, warn};

use crate::backends::smtp::{Relayed, SmtpRelay};
use crate::config::Source;
use crate::link::{Link, LinkError};

/// Messages asked for at once.
const BATCH: u32 = 16;

/// Relays the outbox of `source` until the link ends; `wake` is notified when the
/// gateway says mail was submitted.
pub(super) async fn outbox_loop(
    link: Link,
    source: Source,
    relay: SmtpRelay,
    max_message: usize,
    wake: std::sync::Arc<tokio::sync::Notify>,
) {
    loop {
        match relay_batch(&link, &source, &relay, max_message).await {
            // Something left the outbox: more may wait.
            Ok(true) => continue,
            Ok(false) => {
                debug!(source = %source.name, next_look_in = ?source.interval, "nothing in the outbox to relay now")
            }
            Err(LinkError::Down(_)) => return,
            Err(e) => {
                warn!(source = %source.name, error = %e, "relaying the outbox failed; next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(source.interval) => {}
            _ = wake.notified() => {}
        }
    }
}

/// One batch; whether any message left the outbox.
async fn relay_batch(
    link: &Link,
    source: &Source,
    relay: &SmtpRelay,
    max_message: usize,
) -> Result<bool, LinkError> {
    let ans = link
        .ask(Req::OutboxPull(pb::OutboxPull {
            source: source.name.clone(),
            max: BATCH,
        }))
        .await?;
    let Ans::OutboxBatch(batch) = ans else {
        return Err(LinkError::Unexpected(format!("{ans:?}")));
    };
    let mut moved = false;
    for item in batch.items {
        let body = if item.body_inline {
            item.body
        } else {
            read_body(link, &item.id, item.size, max_message).await?
        };
        let (outcome, detail) = match relay.send(&item.mail_from, &item.rcpt_to, &body).await {
            Relayed::Sent { refused } => {
                info!(source = %source.name, id = %item.id, bytes = body.len(), recipients = item.rcpt_to.len(), "message relayed");
                let detail: Vec<String> = refused
                    .iter()
                    .map(|(r, why)| format!("{r}: {why}"))
                    .collect();
                (pb::OutboxOutcome::Sent, detail.join("; "))
            }
            Relayed::Temporary(why) => {
                warn!(source = %source.name, id = %item.id, reason = %why, "message not relayed; it waits");
                (pb::OutboxOutcome::Temporary, why)
            }
            Relayed::Permanent(why) => {
                warn!(source = %source.name, id = %item.id, reason = %why, "message refused by the server; the user gets a bounce");
                (pb::OutboxOutcome::Permanent, why)
            }
        };
        moved |= outcome != pb::OutboxOutcome::Temporary;
        link.ask(Req::OutboxReport(pb::OutboxReport {
            source: source.name.clone(),
            id: item.id,
            outcome: outcome as i32,
            detail,
        }))
        .await?;
    }
    Ok(moved)
}

/// A body too large to come inline, read a part at a time.
async fn read_body(
    link: &Link,
    id: &str,
    size: u64,
    max_message: usize,
) -> Result<Vec<u8>, LinkError> {
    let part = max_message.saturating_sub(64 << 10).max(1) as u64;
    let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    while (body.len() as u64) < size {
        let ans = link
            .ask(Req::BodyRead(pb::BodyRead {
                outbox_id: id.to_string(),
                offset: body.len() as u64,
                length: part,
                ..Default::default()
            }))
            .await?;
        let Ans::BodyChunk(chunk) = ans else {
            return Err(LinkError::Unexpected(format!("{ans:?}")));
        };
        if chunk.data.is_empty() || chunk.total != size {
            return Err(LinkError::Unexpected(
                "an outbox body changed while read".into(),
            ));
        }
        body.extend_from_slice(&chunk.data);
    }
    Ok(body)
}
