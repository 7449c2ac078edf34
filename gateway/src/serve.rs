//! Wiring of `postern-gateway serve`: migrate, then serve gRPC and HTTP on bound
//! listeners until the shutdown future resolves. Tests bind port 0 and run several
//! gateways side by side.
//!
//! Both listeners take their connections from [`crate::listen`], which bounds them and
//! does TLS; the bounds are [`Limits`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tracing::info;

use crate::auth::TokenKeys;
use crate::limits::Limits;
use crate::link::LinkService;
use crate::link::session::LinkSettings;
use crate::listen::{self, Port, PortLimits};
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
    /// Every bound on what callers can make the gateway do.
    pub limits: Limits,
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

/// The bound listeners `serve` takes connections from.
#[derive(Debug)]
pub struct Listeners {
    /// The connector gRPC port.
    pub grpc: TcpListener,
    /// HTTP: health, readiness, metrics, DAV.
    pub http: TcpListener,
    /// IMAP (STARTTLS when a certificate is configured).
    pub imap: Option<TcpListener>,
    /// IMAP over implicit TLS (only with a certificate).
    pub imaps: Option<TcpListener>,
    /// SMTP submission (STARTTLS when a certificate is configured).
    pub submission: Option<TcpListener>,
    /// SMTP submission over implicit TLS (only with a certificate).
    pub submissions: Option<TcpListener>,
}

/// Runs the gateway until `shutdown` resolves.
pub async fn run(
    config: ServeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Listeners {
        grpc,
        http,
        imap,
        imaps,
        submission,
        submissions,
    } = listeners;
    config.limits.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = Store::connect(&config.database_url, config.pool_size)?;
    let ran = store.migrate().await?;
    info!(applied = ran, "schema up to date");
    let keys = TokenKeys::load(&store, config.signing_key_file.as_deref()).await?;

    let (nudge_tx, _) = broadcast::channel(1024);
    let (changes_tx, _) = broadcast::channel(1024);
    tokio::spawn(crate::nudge::listen(
        config.database_url.clone(),
        nudge_tx.clone(),
        changes_tx.clone(),
    ));
    tokio::spawn(collect_bodies(store.clone()));

    let limits = Arc::new(config.limits.clone());
    let settings = LinkSettings {
        lease_ttl: config.lease_ttl,
        drain_deadline: config.drain_deadline,
        max_streams_per_connector: limits.max_streams_per_connector,
        max_message_bytes: limits.grpc_max_message_bytes,
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
    .into_server(limits.grpc_max_message_bytes);

    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut stop_grpc = stop_tx.subscribe();
    let mut stop_http = stop_tx.subscribe();
    info!(grpc = %grpc.local_addr()?, http = %http.local_addr()?, "gateway serving");

    let (grpc_tls, http_tls) = match &config.tls {
        Some(t) => {
            info!(mutual = t.client_ca.is_some(), "both ports serve TLS");
            (
                Some(crate::tls::grpc_acceptor(
                    &t.cert,
                    &t.key,
                    t.client_ca.as_deref(),
                )?),
                Some(crate::tls::http_acceptor(&t.cert, &t.key)?),
            )
        }
        None => (None, None),
    };
    let grpc_conns = listen::accept(
        grpc,
        grpc_tls,
        Port::Grpc,
        PortLimits {
            max_connections: limits.grpc_max_connections,
            max_per_address: limits.grpc_max_connections_per_address,
            handshake_timeout: limits.tls_handshake_timeout,
            idle_timeout: limits.idle_timeout,
        },
        metrics.clone(),
    );
    let http_conns = listen::accept(
        http,
        http_tls,
        Port::Http,
        PortLimits {
            max_connections: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            handshake_timeout: limits.tls_handshake_timeout,
            idle_timeout: limits.idle_timeout,
        },
        metrics.clone(),
    );
    let grpc_server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(Some(16))
        .http2_max_header_list_size(Some(16 << 10))
        .add_service(link)
        .serve_with_incoming_shutdown(
            ReceiverStream::new(grpc_conns).map(Ok::<_, std::io::Error>),
            async move {
                let _ = stop_grpc.recv().await;
            },
        );
    let dav = crate::dav::DavState {
        store: store.clone(),
        auth: Arc::new(crate::logins::Authenticator::new(&limits, metrics.clone())),
        limits: limits.clone(),
        metrics: metrics.clone(),
        slots: Arc::new(crate::dav::slots::UserSlots::new(
            limits.max_requests_per_user,
        )),
    };
    // The certificate, when configured, also serves STARTTLS on the plain mail ports.
    let mail_tls = match &config.tls {
        Some(t) => Some(crate::tls::imap_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    // IMAP: the same logins (and so the same throttling) as DAV.
    let imap_state = crate::imap::ImapState {
        store: store.clone(),
        auth: dav.auth.clone(),
        limits: limits.clone(),
        metrics: metrics.clone(),
        changes: changes_tx.clone(),
        tls: mail_tls.clone(),
        sessions: Arc::default(),
        snapshots: Arc::default(),
        structures: Arc::default(),
    };
    let imap_limits = PortLimits {
        max_connections: limits.imap_max_connections,
        max_per_address: limits.imap_max_connections_per_address,
        handshake_timeout: limits.tls_handshake_timeout,
        // The session logs out a silent client itself (31 minutes by default, one
        // before login); the connection's own bound is a little longer.
        idle_timeout: limits.imap_idle_timeout + Duration::from_secs(60),
    };
    let imaps_tls = match (&mail_tls, &imaps) {
        (Some(t), Some(_)) => Some(t.clone()),
        (None, Some(_)) => anyhow::bail!("--imaps-listen needs --tls-cert and --tls-key"),
        _ => None,
    };
    for (listener, tls) in [(imap, None), (imaps, imaps_tls)] {
        let Some(listener) = listener else { continue };
        info!(imap = %listener.local_addr()?, tls = tls.is_some(), "serving IMAP");
        let conns = listen::accept(listener, tls, Port::Imap, imap_limits, metrics.clone());
        tokio::spawn(crate::imap::serve(
            conns,
            imap_state.clone(),
            stop_tx.subscribe(),
        ));
    }
    let submission_state = Arc::new(crate::submission::SubmissionState {
        store: store.clone(),
        auth: dav.auth.clone(),
        limits: limits.clone(),
        tls: mail_tls.clone(),
    });
    let submission_limits = PortLimits {
        max_connections: limits.submission_max_connections,
        max_per_address: limits.submission_max_connections_per_address,
        handshake_timeout: limits.tls_handshake_timeout,
        idle_timeout: Duration::from_secs(11 * 60),
    };
    let submissions_tls = match (&mail_tls, &submissions) {
        (Some(t), Some(_)) => Some(t.clone()),
        (None, Some(_)) => anyhow::bail!("--submissions-listen needs --tls-cert and --tls-key"),
        _ => None,
    };
    for (listener, tls) in [(submission, None), (submissions, submissions_tls)] {
        let Some(listener) = listener else { continue };
        info!(submission = %listener.local_addr()?, tls = tls.is_some(), "serving SMTP submission");
        let conns = listen::accept(
            listener,
            tls,
            Port::Submission,
            submission_limits,
            metrics.clone(),
        );
        tokio::spawn(crate::submission::serve(
            conns,
            submission_state.clone(),
            stop_tx.subscribe(),
        ));
    }
    let app = crate::http::router(store.clone(), dav, metrics.clone());
    let http_server = crate::http::serve(http_conns, app, &limits, async move {
        let _ = stop_http.recv().await;
    });
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
    let (g, ()) = tokio::join!(grpc_server, http_server);
    g?;
    Ok(())
}

/// Every hour, removes message bodies no message needs any more (a day after the
/// last one let go of them; see `store::body_gc`). Every replica does it; the work
/// is idempotent.
async fn collect_bodies(store: Store) {
    const EVERY: Duration = Duration::from_secs(3600);
    const GRACE: Duration = Duration::from_secs(24 * 3600);
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match store.collect_bodies(GRACE).await {
            Ok((0, 0)) => {}
            Ok((released, removed)) => {
                info!(
                    released,
                    removed, "message bodies no message needs were removed"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "collecting unused message bodies failed; next hour again")
            }
        }
    }
}
