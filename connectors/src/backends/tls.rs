//! The TLS client every back end uses: the system's roots, plus a source's own CA
//! (`tls_ca_file`) for a corporate server with a private one.

use std::sync::Arc;

/// A TLS client trusting the system's roots and `extra_ca` (PEM).
pub fn connector(extra_ca: Option<&[u8]>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_ca {
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("tls_ca_file: {e}"))?;
            roots.add(cert).map_err(|e| format!("tls_ca_file: {e}"))?;
        }
    }
    let config = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
