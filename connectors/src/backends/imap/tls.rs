//! Getting a connection to TLS: implicit TLS (`imaps://`), STARTTLS read by hand
//! before imap-next takes over, and the certificates trusted.

use tokio::net::TcpStream;

use super::client::{ImapError, READ_TIMEOUT};

/// How to connect beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A plain-text login is allowed off loopback when there is no TLS.
    pub allow_plain: bool,
    /// Extra CA certificates (PEM) to trust.
    pub extra_ca: Option<Vec<u8>>,
}

/// A TLS client trusting the system's roots and `extra_ca`.
pub(super) fn tls_connector(
    extra_ca: Option<&[u8]>,
) -> Result<tokio_rustls::TlsConnector, ImapError> {
    crate::backends::tls::connector(extra_ca).map_err(ImapError::Config)
}

pub(super) async fn handshake(
    tls: tokio_rustls::TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::TlsStream<TcpStream>, ImapError> {
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| ImapError::Config(format!("{host}: {e}")))?;
    let stream = tokio::time::timeout(READ_TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| ImapError::Timeout(READ_TIMEOUT))?
        .map_err(|e| ImapError::Transport(format!("TLS with {host}: {e}")))?;
    Ok(tokio_rustls::TlsStream::Client(stream))
}

/// Reads one response line (at most 16 KiB) before TLS, by hand.
async fn line(tcp: &mut TcpStream) -> Result<String, ImapError> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = tokio::time::timeout(READ_TIMEOUT, tcp.read(&mut byte))
            .await
            .map_err(|_| ImapError::Timeout(READ_TIMEOUT))?
            .map_err(|e| ImapError::Transport(e.to_string()))?;
        if n == 0 {
            return Err(ImapError::Transport("connection closed".into()));
        }
        out.push(byte[0]);
        if byte[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&out).trim_end().to_string());
        }
        if out.len() > 16 << 10 {
            return Err(ImapError::Malformed("response line too long".into()));
        }
    }
}

/// Reads the greeting and, when the server offers STARTTLS, upgrades the connection
/// to TLS's starting point (`true`); `false` when it does not offer it.
pub(super) async fn starttls(tcp: &mut TcpStream) -> Result<bool, ImapError> {
    use tokio::io::AsyncWriteExt;
    let greeting = line(tcp).await?;
    if !greeting.starts_with("* OK") {
        return Err(ImapError::Refused {
            command: "greeting",
            text: greeting,
        });
    }
    let offered = |l: &str| {
        l.to_ascii_uppercase()
            .split([' ', ']', '['])
            .any(|w| w == "STARTTLS")
    };
    let mut has = greeting.to_ascii_uppercase().contains("[CAPABILITY") && offered(&greeting);
    if !greeting.to_ascii_uppercase().contains("[CAPABILITY") {
        tcp.write_all(b"s0 CAPABILITY\r\n")
            .await
            .map_err(|e| ImapError::Transport(e.to_string()))?;
        loop {
            let l = line(tcp).await?;
            if l.starts_with("* CAPABILITY") && offered(&l) {
                has = true;
            }
            if l.starts_with("s0 ") {
                break;
            }
        }
    }
    if !has {
        return Ok(false);
    }
    tcp.write_all(b"s1 STARTTLS\r\n")
        .await
        .map_err(|e| ImapError::Transport(e.to_string()))?;
    loop {
        let l = line(tcp).await?;
        if let Some(rest) = l.strip_prefix("s1 ") {
            if rest.starts_with("OK") {
                return Ok(true);
            }
            return Err(ImapError::Refused {
                command: "STARTTLS",
                text: l,
            });
        }
    }
}
