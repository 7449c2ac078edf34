//! Wiring of `postern-gateway serve`: migrate, then serve gRPC and HTTP on bound
//! listeners until the shutdown future resolves. Tests bind port 0 and run several
//! gateways side by side.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::auth::TokenKeys;
use crate::link::LinkService;
use crate::link::session::LinkSettings;
use crate::store::Store;

/// What `serve` needs beyond its listeners.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Token-signing key file; `None` to use the key kept in the database.
    pub signing_key_file: Option<PathBuf>,
    /// Lease time-to-live.
    pub lease_ttl: Duration,
    /// Database pool size.
    pub pool_size: usize,
    /// Largest item a DAV client may PUT, in bytes.
    pub max_item_bytes: usize,
    /// How long shutdown waits for rounds in flight.
    pub drain_deadline: Duration,
    /// TLS for the connector gRPC port: certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

/// Certificate, key and (for mutual TLS) the CA that signs connector certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA: when set, connectors must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// Runs the gateway until `shutdown` resolves.
pub async fn run(
    config: ServeConfig,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url, config.pool_size)?;
    let ran = store.migrate().await?;
    info!(applied = ran, "schema up to date");
    let keys = TokenKeys::load(&store, config.signing_key_file.as_deref()).await?;

    let (nudge_tx, _) = broadcast::channel(1024);
    tokio::spawn(crate::nudge::listen(
        config.database_url.clone(),
        nudge_tx.clone(),
    ));

    let settings = LinkSettings {
        lease_ttl: config.lease_ttl,
        ..LinkSettings::default()
    };
    let metrics = crate::metrics::Metrics::shared();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let link = LinkService::new(
        store.clone(),
        keys,
        settings.clone(),
        nudge_tx,
        metrics.clone(),
        drain_rx,
    )
    .into_server();

    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut stop_grpc = stop_tx.subscribe();
    let mut stop_http = stop_tx.subscribe();
    info!(grpc = %grpc.local_addr()?, http = %http.local_addr()?, "gateway serving");

    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = &config.tls {
        let mut tls = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(read(&t.cert)?, read(&t.key)?),
        );
        if let Some(ca) = &t.client_ca {
            tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        builder = builder.tls_config(tls)?;
        info!(mutual = t.client_ca.is_some(), "connector port serves TLS");
    }
    let grpc_server = builder
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(link)
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async move {
            let _ = stop_grpc.recv().await;
        });
    let dav = crate::dav::DavState {
        store: store.clone(),
        auth: std::sync::Arc::new(crate::dav::auth::Authenticator::new(
            metrics.auth_throttled.clone(),
        )),
        max_item_bytes: config.max_item_bytes,
        metrics: metrics.clone(),
    };
    let app = crate::http::router(store.clone(), dav, metrics.clone());
    let service = app.into_make_service_with_connect_info::<crate::tls::ClientAddr>();
    let stop = async move {
        let _ = stop_http.recv().await;
    };
    // The HTTP port speaks HTTPS with the same certificate when one is given.
    let http_server: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> =
        match &config.tls {
            Some(t) => {
                let listener = crate::tls::TlsListener::new(http, &t.cert, &t.key)?;
                Box::pin(
                    axum::serve(listener, service)
                        .with_graceful_shutdown(stop)
                        .into_future(),
                )
            }
            None => Box::pin(
                axum::serve(http, service)
                    .with_graceful_shutdown(stop)
                    .into_future(),
            ),
        };
    // Graceful shutdown: stop handing out leases, let rounds in flight finish (up to
    // the drain deadline), release, close connector streams so they reconnect to
    // another replica, then stop the servers.
    let connected = metrics.clone();
    let deadline = settings.drain_deadline;
    tokio::spawn(async move {
        shutdown.await;
        info!("shutting down: draining connector streams");
        let _ = drain_tx.send(true);
        let started = std::time::Instant::now();
        while connected.connectors.get() > 0
            && started.elapsed() < deadline + Duration::from_secs(1)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        info!(took = ?started.elapsed(), "drained; stopping");
        let _ = stop_tx.send(());
    });
    let (g, h) = tokio::join!(grpc_server, http_server);
    g?;
    h?;
    Ok(())
}
