//! A hand-driven connector link: a test plays the connector, message by message, to
//! show what the gateway does with what a real connector would never send.

use std::time::Duration;

use anyhow::{Result, bail};
use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_proto as pb;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// A hand-driven link: the test plays the connector.
pub struct RawLink {
    /// Messages to the gateway.
    pub tx: mpsc::Sender<pb::ConnectorMessage>,
    /// Messages from the gateway.
    pub rx: tonic::Streaming<pb::GatewayMessage>,
    next: u64,
}

impl RawLink {
    /// Opens a stream with `token`.
    pub async fn open(url: &str, token: &str) -> std::result::Result<RawLink, tonic::Status> {
        Self::open_compressed(url, token, None).await
    }

    /// Opens a stream with `token`, sending gzip-compressed messages when `gzip`.
    pub async fn open_compressed(
        url: &str,
        token: &str,
        encoding: Option<tonic::codec::CompressionEncoding>,
    ) -> std::result::Result<RawLink, tonic::Status> {
        let client = pb::connector_link_client::ConnectorLinkClient::connect(url.to_string())
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut client = client
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(256 << 20);
        if let Some(e) = encoding {
            client = client.send_compressed(e);
        }
        let (tx, rx) = mpsc::channel(16);
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let stream = client.link(req).await?.into_inner();
        Ok(RawLink {
            tx,
            rx: stream,
            next: 1,
        })
    }
}

impl Talk for RawLink {
    async fn ask(&mut self, body: Req) -> Result<Ans> {
        self.next += 1;
        let id = self.next;
        self.tx
            .send(pb::ConnectorMessage {
                request_id: id,
                body: Some(body),
                trace_context: Default::default(),
            })
            .await?;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), self.rx.next()).await?;
            match m {
                Some(Ok(m)) if m.request_id == id => {
                    return m.body.ok_or_else(|| anyhow::anyhow!("empty"));
                }
                Some(Ok(_)) => continue,
                Some(Err(s)) => bail!("stream error: {s}"),
                None => bail!("stream closed"),
            }
        }
    }
}

/// Talking to the gateway as a connector, over a real stream ([`RawLink`]) or in
/// process (`crate::inproc::InLink`): one request, one answer, and the steps every
/// test takes.
#[allow(async_fn_in_trait)]
pub trait Talk {
    /// Sends a request and waits for its answer.
    async fn ask(&mut self, body: Req) -> Result<Ans>;

    /// Hello with one source, then a fake discovery of one calendar; returns its id.
    async fn setup(&mut self, instance: &str, user: &str) -> Result<String> {
        self.setup_with(instance, user, "backend-wins").await
    }

    /// [`Talk::setup`] with the source's conflict policy.
    async fn setup_with(&mut self, instance: &str, user: &str, conflict: &str) -> Result<String> {
        self.setup_kind(
            instance,
            user,
            conflict,
            ("caldav", "calendar", "/alice/cal/"),
        )
        .await
    }

    /// Hello with one IMAP source, then a fake discovery of its INBOX; returns its id.
    async fn setup_mailbox(&mut self, instance: &str, user: &str) -> Result<String> {
        self.setup_kind(instance, user, "merge", ("imap", "mailbox", "/INBOX/"))
            .await
    }

    /// Hello with one source of `kind` and a fake discovery of one collection of
    /// `collection_kind` at `href`.
    async fn setup_kind(
        &mut self,
        instance: &str,
        user: &str,
        conflict: &str,
        (kind, collection_kind, href): (&str, &str, &str),
    ) -> Result<String> {
        let hello = pb::Hello {
            version: "test".into(),
            capabilities: vec![kind.into()],
            instance_id: instance.into(),
            sources: vec![pb::SourceInfo {
                name: "cal".into(),
                kind: pb::SourceKind::from_word(kind) as i32,
                user: user.into(),
                mode: pb::SyncMode::TwoWay as i32,
                conflict: pb::ConflictPolicy::from(
                    conflict.parse::<postern_core::model::ConflictPolicy>()?,
                ) as i32,
            }],
        };
        let Ans::Welcome(_) = self.ask(Req::Hello(hello)).await? else {
            bail!("no welcome")
        };
        let found = pb::CollectionsFound {
            source: "cal".into(),
            collections: vec![pb::FoundCollection {
                backend_href: href.into(),
                kind: pb::CollectionKind::from(
                    collection_kind.parse::<postern_core::model::CollectionKind>()?,
                ) as i32,
                display_name: "Cal".into(),
                color: String::new(),
                ..Default::default()
            }],
            complete: true,
        };
        match self.ask(Req::CollectionsFound(found)).await? {
            Ans::Assignment(a) => Ok(a.collections[0].collection_id.clone()),
            other => bail!("no assignment: {other:?}"),
        }
    }

    /// Asks for a lease: the fencing token, or the reason it was denied.
    async fn acquire(&mut self, coll: &str) -> Result<std::result::Result<u64, String>> {
        let req = pb::LeaseRequest {
            action: pb::lease_request::Action::Acquire as i32,
            collection_id: coll.into(),
            fencing_token: 0,
        };
        Ok(match self.ask(Req::Lease(req)).await? {
            Ans::LeaseGrant(g) => Ok(g.fencing_token),
            Ans::LeaseDeny(d) => Err(d.reason),
            other => Err(format!("{other:?}")),
        })
    }

    /// Pushes one final packet.
    async fn push(
        &mut self,
        coll: &str,
        base: u64,
        token: u64,
        changes: Vec<pb::Change>,
    ) -> Result<pb::verdict::Outcome> {
        let packet = pb::ChangePacket {
            collection_id: coll.into(),
            base_seq: base,
            fencing_token: token,
            changes,
            r#final: true,
            ..Default::default()
        };
        match self.ask(Req::ChangePacket(packet)).await? {
            Ans::Verdict(v) => v.outcome.ok_or_else(|| anyhow::anyhow!("no outcome")),
            other => bail!("{other:?}"),
        }
    }
}
