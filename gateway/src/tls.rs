//! TLS for both ports, with one certificate: the connector port (optionally asking
//! connectors for a certificate signed by a given CA: mutual TLS) and the HTTP port
//! (CalDAV/CardDAV, health, metrics). The handshakes themselves run in
//! [`crate::listen`], each in its own task with a deadline.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The client's address, as DAV handlers read it (throttling per address).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

fn chain(cert: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))
}

fn key(key: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The acceptor of the HTTP port: HTTP/2 or HTTP/1.1 by ALPN, no client certificate.
pub fn http_acceptor(cert: &Path, key_file: &Path) -> anyhow::Result<TlsAcceptor> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain(cert)?, key(key_file)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor of the IMAP port with implicit TLS (no ALPN: RFC 8314 clients do
/// not ask for one).
pub fn imap_acceptor(cert: &Path, key_file: &Path) -> anyhow::Result<TlsAcceptor> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain(cert)?, key(key_file)?)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor of the connector port: HTTP/2 only; with `client_ca`, a connector
/// must present a certificate that CA signed.
pub fn grpc_acceptor(
    cert: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<TlsAcceptor> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in chain(ca)? {
                roots.add(c)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain(cert)?, key(key_file)?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
