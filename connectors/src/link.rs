//! The outbound stream to the gateway. The connector always dials out; the gateway
//! never connects in. [`Link::connect`] opens the stream with the token, and requests
//! are matched to answers by `request_id`, so rounds of several collections share it.
//! Unsolicited messages (nudges) go to a channel the engine listens on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_proto as pb;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tracing::{debug, warn};

/// Why a request over the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The gateway refused the token (forged, expired, revoked).
    #[error("the gateway refused this connector's token: {0}")]
    Unauthenticated(String),
    /// Could not connect, or the stream ended.
    #[error("link to the gateway is down: {0}")]
    Down(String),
    /// The gateway answered with a failure.
    #[error("gateway: {0}")]
    Failure(String),
    /// No answer in time.
    #[error("the gateway did not answer within {0:?}")]
    Timeout(Duration),
    /// An answer of the wrong kind.
    #[error("unexpected answer from the gateway: {0}")]
    Unexpected(String),
}

type Waiters = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<pb::GatewayMessage>>>>;

/// An open link.
#[derive(Clone)]
pub struct Link {
    tx: mpsc::Sender<pb::ConnectorMessage>,
    waiters: Waiters,
    next_id: Arc<AtomicU64>,
    /// Closed when the stream ends.
    closed: Arc<tokio::sync::watch::Receiver<bool>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Link")
    }
}

/// An error with its causes, which say what "transport error" meant (a certificate
/// the connector does not trust, a refused connection...).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// How long to wait for any one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

impl Link {
    /// Connects and opens the stream. Returns the link and the channel of nudges
    /// (a collection with gateway-side changes, or an `smtp` source with mail to
    /// relay).
    pub async fn connect(
        gateway: &str,
        token: &str,
        tls: &crate::config::TlsConfig,
    ) -> Result<(Link, mpsc::UnboundedReceiver<pb::Nudge>), LinkError> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(gateway.to_string())
            .map_err(|e| LinkError::Down(e.to_string()))?;
        if gateway.starts_with("https://") {
            let mut config = tonic::transport::ClientTlsConfig::new();
            config = match &tls.ca {
                Some(pem) => config.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                None => config.with_native_roots(),
            };
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| LinkError::Down(format!("tls: {e}")))?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect()
            .await
            .map_err(|e| LinkError::Down(format!("{gateway}: {}", chain(&e))))?;
        let bearer: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| {
            LinkError::Unauthenticated("token has characters not allowed in a header".into())
        })?;
        let mut client = pb::connector_link_client::ConnectorLinkClient::with_interceptor(
            channel,
            move |mut req: tonic::Request<()>| {
                req.metadata_mut().insert("authorization", bearer.clone());
                Ok(req)
            },
        )
        // zstd: gzip (deflate) cost more CPU than everything else in a mail import
        // (24% of it; 16 MB/s). Gzip is still understood, from older gateways.
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);

        let (tx, rx) = mpsc::channel::<pb::ConnectorMessage>(64);
        let response = client
            .link(ReceiverStream::new(rx))
            .await
            .map_err(|s| match s.code() {
                tonic::Code::Unauthenticated => LinkError::Unauthenticated(s.message().to_string()),
                _ => LinkError::Down(s.to_string()),
            })?;
        let mut inbound = response.into_inner();
        let waiters: Waiters = Arc::default();
        let (nudge_tx, nudge_rx) = mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = tokio::sync::watch::channel(false);
        let w = waiters.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.next().await {
                    Some(Ok(m)) => {
                        if m.request_id == 0 {
                            match &m.body {
                                Some(Ans::Nudge(n)) => {
                                    let _ = nudge_tx.send(n.clone());
                                }
                                Some(Ans::Failure(f)) => {
                                    warn!(message = %f.message, "gateway reported a problem")
                                }
                                other => debug!(message = ?other, "unsolicited message"),
                            }
                            continue;
                        }
                        let done = !more_follows(&m);
                        let mut waiters = w.lock().await;
                        if let Some(sender) = waiters.get(&m.request_id) {
                            let _ = sender.send(m.clone());
                        }
                        if done {
                            waiters.remove(&m.request_id);
                        }
                    }
                    Some(Err(status)) => break status.to_string(),
                    None => break "stream closed by the gateway".to_string(),
                }
            };
            warn!(reason = %reason, "link to the gateway ended");
            w.lock().await.clear();
            let _ = closed_tx.send(true);
        });
        Ok((
            Link {
                tx,
                waiters,
                next_id: Arc::new(AtomicU64::new(1)),
                closed: Arc::new(closed_rx),
            },
            nudge_rx,
        ))
    }

    /// True once the stream has ended.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Waits until the stream ends.
    pub async fn closed(&self) {
        let mut rx = (*self.closed).clone();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Sends a request and collects its answers (several for a journal pull).
    pub async fn request(&self, body: Req) -> Result<Vec<pb::GatewayMessage>, LinkError> {
        if self.is_closed() {
            return Err(LinkError::Down("stream closed".into()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.waiters.lock().await.insert(id, tx);
        self.tx
            .send(pb::ConnectorMessage {
                request_id: id,
                body: Some(body),
                trace_context: postern_telemetry::inject_current(),
            })
            .await
            .map_err(|_| LinkError::Down("stream closed".into()))?;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout(ANSWER_TIMEOUT, rx.recv()).await {
                Err(_) => {
                    self.waiters.lock().await.remove(&id);
                    return Err(LinkError::Timeout(ANSWER_TIMEOUT));
                }
                Ok(None) => {
                    return if out.is_empty() {
                        Err(LinkError::Down("stream closed".into()))
                    } else {
                        Ok(out)
                    };
                }
                Ok(Some(m)) => {
                    if let Some(Ans::Failure(f)) = &m.body {
                        return Err(LinkError::Failure(f.message.clone()));
                    }
                    let more = more_follows(&m);
                    out.push(m);
                    if !more {
                        return Ok(out);
                    }
                }
            }
        }
    }

    /// Sends a request expecting exactly one answer.
    pub async fn ask(&self, body: Req) -> Result<Ans, LinkError> {
        self.request(body)
            .await?
            .pop()
            .and_then(|m| m.body)
            .ok_or_else(|| LinkError::Unexpected("empty answer".into()))
    }

    /// Sends an advisory message that needs no answer, or drops it when the stream is
    /// busy (progress reports: a round never waits for them).
    pub fn tell_if_free(&self, body: Req) {
        let _ = self.tx.try_send(pb::ConnectorMessage {
            request_id: 0,
            body: Some(body),
            trace_context: postern_telemetry::inject_current(),
        });
    }

    /// Sends a message that needs no answer.
    pub async fn tell(&self, body: Req) -> Result<(), LinkError> {
        self.tx
            .send(pb::ConnectorMessage {
                request_id: 0,
                body: Some(body),
                trace_context: postern_telemetry::inject_current(),
            })
            .await
            .map_err(|_| LinkError::Down("stream closed".into()))
    }
}

/// Whether another message of the same answer follows this one (a journal pull or
/// an index pull answered in batches).
fn more_follows(m: &pb::GatewayMessage) -> bool {
    match &m.body {
        Some(Ans::JournalBatch(b)) => b.more,
        Some(Ans::IndexBatch(b)) => b.more,
        _ => false,
    }
}
