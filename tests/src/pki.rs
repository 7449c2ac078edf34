//! Certificates made for a scenario with rcgen: a private CA, a server certificate
//! for `localhost` and a client certificate, as PEM files.

use anyhow::Result;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::Scratch;

/// PEM files of a private CA, a server certificate for localhost and a client one.
pub struct Pki {
    /// The CA's certificate.
    pub ca: std::path::PathBuf,
    /// The server's certificate (for `localhost`).
    pub cert: std::path::PathBuf,
    /// The server's key.
    pub key: std::path::PathBuf,
    /// A client certificate the CA signed.
    pub client_cert: std::path::PathBuf,
    /// Its key.
    pub client_key: std::path::PathBuf,
}

pub fn pki(dir: &Scratch) -> Result<Pki> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Postern test CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let server_key = KeyPair::generate()?;
    let server =
        CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&server_key, &issuer)?;
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(vec!["hq.connector.acme".to_string()])?
        .signed_by(&client_key, &issuer)?;
    let p = Pki {
        ca: dir.path("ca.pem"),
        cert: dir.path("server.pem"),
        key: dir.path("server.key"),
        client_cert: dir.path("client.pem"),
        client_key: dir.path("client.key"),
    };
    std::fs::write(&p.ca, ca_cert.pem())?;
    std::fs::write(&p.cert, server.pem())?;
    std::fs::write(&p.key, server_key.serialize_pem())?;
    std::fs::write(&p.client_cert, client.pem())?;
    std::fs::write(&p.client_key, client_key.serialize_pem())?;
    Ok(p)
}
