//! The HTTP side: `/healthz` (the process is alive), `/readyz` (the database answers
//! and the schema is current), `/metrics`, and the CalDAV/CardDAV endpoint
//! ([`crate::dav`]), served on connections from [`crate::listen`].
//!
//! Each connection is served by hyper with the gateway's bounds: a request's head must
//! arrive within the header timeout (which also ends idle HTTP/1 keep-alive
//! connections) and fit in the header size; HTTP/2 connections carry a bounded number
//! of concurrent requests. Bodies are read by the DAV layer within the body timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::mpsc;
use tower::ServiceExt;
use tracing::debug;

use crate::limits::Limits;
use crate::listen::Conn;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tls::ClientAddr;

/// Concurrent requests on one HTTP/2 connection.
const H2_STREAMS: u32 = 64;

/// The HTTP router.
pub fn router(store: Store, dav: crate::dav::DavState, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(store.clone())
        .route("/metrics", get(scrape))
        .with_state((store, metrics))
        .merge(crate::dav::router(dav))
}

/// Serves `router` on every connection `conns` yields until `shutdown` resolves; then
/// lets requests in flight finish and returns when every connection has closed.
pub async fn serve(
    mut conns: mpsc::Receiver<Conn>,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let header_timeout = limits.header_timeout;
    // hyper needs room for at least one read of 8 KiB.
    let max_header_bytes = limits.max_header_bytes.max(8 << 10);
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = conns.recv() => match c { Some(c) => c, None => break },
            _ = &mut shutdown => break,
        };
        let addr = conn.addr;
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(ClientAddr(addr)));
            router.clone().oneshot(req.map(Body::new))
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(max_header_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_STREAMS)
            .max_header_list_size(max_header_bytes as u32)
            .keep_alive_interval(Duration::from_secs(30));
        let served = graceful.watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(conn), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(e) = served.await {
                debug!(address = %addr, error = %e, "connection ended");
            }
        });
    }
    drop(conns);
    graceful.shutdown().await;
}

async fn scrape(
    State((store, metrics)): State<(Store, Arc<Metrics>)>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(&store).await,
    )
}

async fn ready(State(store): State<Store>) -> (StatusCode, &'static str) {
    if store.migrated().await {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable or schema not migrated\n",
        )
    }
}
