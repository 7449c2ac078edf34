//! A client's message the back end does not have yet (an append, or a move whose
//! source is gone), when its body is not in the journal batch: read from the gateway
//! a part at a time (`BodyRead`), only when it is written, and checked against its
//! hash before the back end sees it.

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_core::mail::MessageKey;
use postern_proto as pb;

use super::SourceCtx;
use super::packets::packet_budget;
use super::round::RoundError;
use crate::link::LinkError;

/// A pending message's bytes, as the journal batch brought them.
#[derive(Debug, Clone)]
pub(super) enum PendingBody {
    /// In the batch.
    Inline(Vec<u8>),
    /// Named by hash and size: read when needed.
    Held { sha256: [u8; 32], size: u64 },
}

impl PendingBody {
    /// The bytes, read from the gateway if they were not sent inline.
    pub(super) async fn bytes(
        &self,
        ctx: &SourceCtx,
        collection: &str,
    ) -> Result<std::borrow::Cow<'_, [u8]>, RoundError> {
        match self {
            PendingBody::Inline(b) => Ok(std::borrow::Cow::Borrowed(b)),
            PendingBody::Held { sha256, size } => {
                read(ctx, collection, sha256, *size).await.map(Into::into)
            }
        }
    }
}

/// Reads body `sha256` (`size` bytes) of a pending change of `collection`.
async fn read(
    ctx: &SourceCtx,
    collection: &str,
    sha256: &[u8; 32],
    size: u64,
) -> Result<Vec<u8>, RoundError> {
    let part = packet_budget(ctx.max_message) as u64;
    let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut key = MessageKey::hasher();
    while (body.len() as u64) < size {
        let ans = ctx
            .link
            .ask(Req::BodyRead(pb::BodyRead {
                collection_id: collection.to_string(),
                sha256: sha256.to_vec(),
                offset: body.len() as u64,
                length: part,
                ..Default::default()
            }))
            .await?;
        let Ans::BodyChunk(chunk) = ans else {
            return Err(LinkError::Unexpected(format!("{ans:?}")).into());
        };
        if chunk.data.is_empty() || chunk.total != size {
            return Err(RoundError::Invalid(format!(
                "the gateway gave {} bytes at {} of a {size}-byte body it says is {} bytes",
                chunk.data.len(),
                body.len(),
                chunk.total
            )));
        }
        key.update(&chunk.data);
        body.extend_from_slice(&chunk.data);
    }
    if key.finish().sha256 != *sha256 || body.len() as u64 != size {
        return Err(RoundError::Invalid(
            "a message body read from the gateway does not match its hash".into(),
        ));
    }
    Ok(body)
}
