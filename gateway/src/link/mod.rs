//! The connector link: the gRPC `ConnectorLink` service. A thin adapter: it verifies
//! the connector's token, then moves messages between the stream and a
//! [`session::Session`], and forwards nudges for the session's collections.
//!
//! Bounds, so that one connector (or a stolen token) cannot hurt the others:
//! - a message is at most `--grpc-max-message-bytes` once decompressed (a small gzip
//!   message cannot inflate past it);
//! - one token has at most `--max-streams-per-connector` streams open on a process;
//! - the messages of one stream being served at once hold at most one message's worth
//!   of bytes beyond the one being read, and at most 16 of them;
//! - a stream that ends for any of these reasons ends with a status that says why.

pub mod convert;
pub mod session;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use postern_proto as pb;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};
use uuid::Uuid;

use crate::auth::{self, AuthError, TokenKeys};
use crate::store::Store;
use session::{LinkSettings, Session};

/// A gateway-side change in a collection: (tenant, collection).
pub type Nudge = (Uuid, Uuid);

/// What wakes a connector: a gateway-side change in a collection, or mail a user
/// submitted, waiting in the outbox: (tenant, user).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// (tenant, collection).
    Collection(Uuid, Uuid),
    /// (tenant, user).
    Outbox(Uuid, Uuid),
}

/// The `ConnectorLink` service.
#[derive(Clone)]
pub struct LinkService {
    store: Store,
    keys: TokenKeys,
    settings: LinkSettings,
    nudges: broadcast::Sender<Wake>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Becomes true when the gateway is shutting down: sessions stop handing out
    /// leases, let the rounds in flight finish, release, and close.
    drain: watch::Receiver<bool>,
    /// Open streams per connector token (its `jti`) on this process.
    streams: Arc<std::sync::Mutex<HashMap<Uuid, usize>>>,
}

/// A stream's place in [`LinkService::streams`]; given back on drop.
struct StreamSlot {
    jti: Uuid,
    streams: Arc<std::sync::Mutex<HashMap<Uuid, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.streams.lock()
            && let Some(n) = m.get_mut(&self.jti)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.jti);
            }
        }
    }
}

/// Requests of one stream served at once.
const CONCURRENT_REQUESTS: usize = 16;
/// Bytes of the requests of one stream served at once, beyond the one being read, in
/// KiB (the unit of the budget's permits): one largest message.
fn inflight_budget_kib(max_message: usize) -> u32 {
    u32::try_from(max_message / 1024).unwrap_or(u32::MAX).max(1)
}

impl std::fmt::Debug for LinkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkService")
    }
}

impl LinkService {
    /// A service over `store`; `nudges` carries gateway-side changes heard on any replica.
    pub fn new(
        store: Store,
        keys: TokenKeys,
        settings: LinkSettings,
        nudges: broadcast::Sender<Wake>,
        metrics: Arc<crate::metrics::Metrics>,
        drain: watch::Receiver<bool>,
    ) -> Self {
        LinkService {
            store,
            keys,
            settings,
            nudges,
            metrics,
            drain,
            streams: Arc::default(),
        }
    }

    /// Takes a stream slot for a token, or refuses when it has the most open.
    fn open_stream(&self, jti: Uuid) -> Option<StreamSlot> {
        let mut m = self.streams.lock().ok()?;
        let n = m.entry(jti).or_insert(0);
        if *n >= self.settings.max_streams_per_connector {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            jti,
            streams: self.streams.clone(),
        })
    }

    /// The tonic server for this service, with compression, and messages up to
    /// `max_message` bytes once decompressed (an item travels in one message).
    pub fn into_server(
        self,
        max_message: usize,
    ) -> pb::connector_link_server::ConnectorLinkServer<Self> {
        pb::connector_link_server::ConnectorLinkServer::new(self)
            // zstd from current connectors, gzip from older ones; answers in what
            // the connector accepts.
            .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Zstd)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message.max(64 << 20))
    }
}

fn bearer<T>(req: &Request<T>) -> Result<String, AuthError> {
    let value = req
        .metadata()
        .get("authorization")
        .ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Missing)?;
    value
        .strip_prefix("Bearer ")
        .map(str::to_string)
        .ok_or(AuthError::Missing)
}

type Outbound = Pin<Box<dyn Stream<Item = Result<pb::GatewayMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::connector_link_server::ConnectorLink for LinkService {
    type LinkStream = Outbound;

    async fn link(
        &self,
        req: Request<Streaming<pb::ConnectorMessage>>,
    ) -> Result<Response<Outbound>, Status> {
        let address = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let token = bearer(&req).map_err(|e| Status::unauthenticated(e.public()))?;
        let claims = match auth::verify_connector(&self.keys, &self.store, &token).await {
            Ok(c) => c,
            Err(e @ AuthError::Store(_)) => {
                warn!(address = %address, error = %e, "cannot check a connector token");
                return Err(Status::unavailable(e.public()));
            }
            Err(e) => {
                warn!(address = %address, error = %e, "connector refused");
                return Err(Status::unauthenticated(e.public()));
            }
        };
        let Some(slot) = self.open_stream(claims.jti) else {
            self.metrics
                .connection_refused("grpc", "streams_per_connector");
            warn!(connector = %claims.name, address = %address, "stream refused: this token has the most streams open");
            return Err(Status::resource_exhausted(format!(
                "this connector token already has {} streams open on this gateway (--max-streams-per-connector); close one or enrol another connector",
                self.settings.max_streams_per_connector
            )));
        };
        let tenant_name = self.store.tenant_name(claims.tid).await.map_err(|e| {
            warn!(error = %e, "cannot read the connector's tenant");
            Status::unavailable("the gateway cannot serve this stream right now; retry")
        })?;
        info!(connector = %claims.name, tenant = %tenant_name, address = %address, "connector stream opened");
        let session = Session::new(
            self.store.clone(),
            self.settings.clone(),
            claims,
            tenant_name,
            self.metrics.clone(),
        );
        self.metrics.connectors.inc();
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel::<Result<pb::GatewayMessage, Status>>(64);
        let mut nudges = self.nudges.subscribe();
        // Requests are served concurrently, a bounded number and bytes at a time.
        let permits = Arc::new(Semaphore::new(CONCURRENT_REQUESTS));
        let budget_kib = inflight_budget_kib(self.settings.max_message_bytes);
        let bytes = Arc::new(Semaphore::new(budget_kib as usize));
        let mut drain = self.drain.clone();
        let drain_deadline = self.settings.drain_deadline;

        tokio::spawn(async move {
            let mut draining_since: Option<std::time::Instant> = None;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = drain.changed(), if draining_since.is_none() => {
                        if *drain.borrow() {
                            session.start_draining();
                            draining_since = Some(std::time::Instant::now());
                        }
                    }
                    _ = tick.tick(), if draining_since.is_some() => {
                        let waited = draining_since.map(|t| t.elapsed()).unwrap_or_default();
                        if session.holds_nothing().await || waited > drain_deadline {
                            info!(connector = %session.claims.name, waited = ?waited, "drained; closing the stream");
                            let _ = tx.send(Err(Status::unavailable("gateway is shutting down; reconnect"))).await;
                            break;
                        }
                    }
                    next = inbound.next() => {
                        let m = match next {
                            Some(Ok(m)) => m,
                            Some(Err(e)) => {
                                // Say why (a message too large, a broken compression)
                                // instead of ending the stream as if all were well.
                                info!(connector = %session.claims.name, error = %e, "connector stream broke");
                                let status = match e.code() {
                                    tonic::Code::Unknown | tonic::Code::Ok => Status::internal(e.message().to_string()),
                                    _ => Status::new(e.code(), e.message().to_string()),
                                };
                                let _ = tx.send(Err(status)).await;
                                break;
                            }
                            None => break,
                        };
                        let size = prost::Message::encoded_len(&m);
                        let ordered = matches!(
                            m.body,
                            Some(pb::connector_message::Body::Hello(_)) | Some(pb::connector_message::Body::CollectionsFound(_))
                        );
                        let (s, tx, address) = (session.clone(), tx.clone(), address.clone());
                        let serve = async move {
                            for out in s.handle(m, &address).await {
                                if tx.send(Ok(out)).await.is_err() { break; }
                            }
                        };
                        if ordered {
                            serve.await;
                        } else {
                            let kib = u32::try_from(size / 1024 + 1)
                                .unwrap_or(u32::MAX)
                                .min(budget_kib);
                            let Ok(held) = bytes.clone().acquire_many_owned(kib).await else { break };
                            let Ok(permit) = permits.clone().acquire_owned().await else { break };
                            tokio::spawn(async move { serve.await; drop((permit, held)); });
                        }
                    }
                    nudge = nudges.recv() => match nudge {
                        Ok(Wake::Collection(tenant, coll)) if tenant == session.claims.tid && session.concerns(coll).await => {
                            let n = pb::Nudge { collection_id: coll.to_string(), ..Default::default() };
                            if tx.send(Ok(nudge_message(n))).await.is_err() { break; }
                        }
                        Ok(Wake::Outbox(tenant, user)) if tenant == session.claims.tid => {
                            for source in session.outbox_sources(user).await {
                                let n = pb::Nudge { outbox_source: source, ..Default::default() };
                                if tx.send(Ok(nudge_message(n))).await.is_err() { break; }
                            }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
            session.close().await;
            drop(slot);
            session.metrics.connectors.dec();
            info!(connector = %session.claims.name, "connector stream closed");
        });

        let out: Outbound = Box::pin(ReceiverStream::new(rx));
        Ok(Response::new(out))
    }
}

/// An unsolicited nudge on the stream.
fn nudge_message(n: pb::Nudge) -> pb::GatewayMessage {
    pb::GatewayMessage {
        request_id: 0,
        body: Some(pb::gateway_message::Body::Nudge(n)),
    }
}
