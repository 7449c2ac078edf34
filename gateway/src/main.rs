//! `postern-gateway`: `serve` runs the gateway; `admin ...` manages it (see DESIGN.md,
//! "Contract").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use postern_gateway::{admin, serve};
use postern_telemetry::{LogFormat, Telemetry};

#[derive(Parser)]
#[command(
    name = "postern-gateway",
    version,
    about = "Postern gateway: sync calendars, contacts and mail through an outbound-only connector"
)]
struct Cli {
    /// PostgreSQL URL.
    #[arg(long, env = "POSTERN_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// A file holding the PostgreSQL URL (a mounted secret), instead of --database-url.
    #[arg(long, env = "POSTERN_DATABASE_URL_FILE", global = true)]
    database_url_file: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(
        long,
        env = "POSTERN_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    /// OTLP/gRPC endpoint (`http://collector:4317`) to export traces to. Nothing is
    /// exported without it.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start; its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run migrations, then serve the connector gRPC API and HTTP.
    Serve {
        /// Address for the connector gRPC API.
        #[arg(long, env = "POSTERN_GRPC_LISTEN", default_value = "0.0.0.0:7443")]
        grpc_listen: SocketAddr,
        /// Address for HTTP (health, readiness, CalDAV/CardDAV).
        #[arg(long, env = "POSTERN_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
        http_listen: SocketAddr,
        /// Address for IMAP: STARTTLS required when --tls-cert is set; without a
        /// certificate, plain-text logins only from loopback. "off" serves none.
        #[arg(long, env = "POSTERN_IMAP_LISTEN", default_value = "0.0.0.0:1143")]
        imap_listen: String,
        /// Address for IMAP over implicit TLS (needs --tls-cert and --tls-key).
        #[arg(long, env = "POSTERN_IMAPS_LISTEN")]
        imaps_listen: Option<SocketAddr>,
        /// Address for SMTP submission: STARTTLS offered when --tls-cert is set;
        /// plain-text AUTH otherwise only from loopback. "off" serves none.
        #[arg(
            long,
            env = "POSTERN_SUBMISSION_LISTEN",
            default_value = "0.0.0.0:1587"
        )]
        submission_listen: String,
        /// Address for SMTP submission over implicit TLS (needs --tls-cert and
        /// --tls-key).
        #[arg(long, env = "POSTERN_SUBMISSIONS_LISTEN")]
        submissions_listen: Option<SocketAddr>,
        /// File with the connector-token signing key (32+ bytes). Without it, a key is
        /// generated on first start and kept in the database for every replica.
        #[arg(long, env = "POSTERN_SIGNING_KEY_FILE")]
        signing_key_file: Option<PathBuf>,
        /// How long a connector's lease on a collection lasts unless renewed.
        #[arg(long, env = "POSTERN_LEASE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
        lease_ttl: Duration,
        /// Database connections per gateway process.
        #[arg(long, env = "POSTERN_DATABASE_POOL", default_value_t = 16)]
        database_pool: usize,
        /// PEM certificate chain for TLS on the connector gRPC port.
        #[arg(long, env = "POSTERN_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, env = "POSTERN_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// PEM CA: require connectors to present a certificate it signed (mutual TLS).
        #[arg(long, env = "POSTERN_TLS_CLIENT_CA", requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// On SIGTERM, how long to let rounds in flight finish before closing streams.
        #[arg(long, env = "POSTERN_DRAIN_DEADLINE", default_value = "20s", value_parser = humantime::parse_duration)]
        drain_deadline: Duration,
        /// Bounds on connections, requests, logins and connector streams.
        #[command(flatten)]
        limits: postern_gateway::limits::Limits,
    },
    /// Manage tenants, users, connectors and collections; inspect status and conflicts.
    Admin(admin::AdminArgs),
    /// Exit 0 when the gateway at --url answers ready (for container health checks,
    /// where images carry no shell or curl).
    Healthcheck {
        /// The readiness URL.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Healthcheck { url } = &cli.command {
        return match healthcheck(url) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let database_url = match (&cli.database_url, &cli.database_url_file) {
        (Some(u), _) => u.clone(),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(u) => u.trim().to_string(),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", f.display());
                return ExitCode::from(2);
            }
        },
        (None, None) => {
            eprintln!(
                "error: set --database-url or POSTERN_DATABASE_URL (postgres://user@host:5432/postern)"
            );
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve {
            grpc_listen,
            http_listen,
            imap_listen,
            imaps_listen,
            submission_listen,
            submissions_listen,
            signing_key_file,
            lease_ttl,
            database_pool,
            limits,
            drain_deadline,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => {
            let _telemetry = match Telemetry::init(
                "postern-gateway",
                cli.log_format,
                cli.otlp_endpoint.as_deref(),
            ) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            serve_until_signal(
                serve::ServeConfig {
                    database_url,
                    signing_key_file,
                    lease_ttl,
                    pool_size: database_pool,
                    limits,
                    drain_deadline,
                    tls: tls_cert.zip(tls_key).map(|(cert, key)| serve::TlsFiles {
                        cert,
                        key,
                        client_ca: tls_client_ca,
                    }),
                },
                Addresses {
                    grpc: grpc_listen,
                    http: http_listen,
                    imap: imap_listen,
                    imaps: imaps_listen,
                    submission: submission_listen,
                    submissions: submissions_listen,
                },
            )
            .await
        }
        Command::Admin(args) => admin::run(&database_url, args).await,
        Command::Healthcheck { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `serve` listens.
struct Addresses {
    grpc: SocketAddr,
    http: SocketAddr,
    /// An address, or "off".
    imap: String,
    imaps: Option<SocketAddr>,
    /// An address, or "off".
    submission: String,
    submissions: Option<SocketAddr>,
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

async fn serve_until_signal(config: serve::ServeConfig, at: Addresses) -> anyhow::Result<()> {
    let Addresses {
        grpc,
        http,
        imap,
        imaps,
        submission,
        submissions,
    } = at;
    // Every connection is a file descriptor: take all the system allows, so that the
    // connection limits, not the descriptor limit, are what callers meet.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
    let optional = async |flag: &str, addr: &str| -> anyhow::Result<_> {
        Ok(match addr {
            "off" | "" => None,
            addr => Some(
                bind(
                    addr.parse()
                        .map_err(|e| anyhow::anyhow!("{flag} {addr:?}: {e}"))?,
                )
                .await?,
            ),
        })
    };
    let imap = optional("--imap-listen", &imap).await?;
    let submission = optional("--submission-listen", &submission).await?;
    let imaps = match imaps {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let submissions = match submissions {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let listeners = serve::Listeners {
        grpc: bind(grpc).await?,
        http: bind(http).await?,
        imap,
        imaps,
        submission,
        submissions,
    };
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    serve::run(config, listeners, shutdown).await
}

/// A minimal HTTP/1.1 GET on loopback: success when the status is 200.
fn healthcheck(url: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(anyhow::anyhow!("{url} answered {status}"))
    }
}
