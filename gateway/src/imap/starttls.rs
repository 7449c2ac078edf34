//! STARTTLS on the plain IMAP port, when a certificate is configured.
//!
//! Before TLS the session is served by hand, not by imap-next: only CAPABILITY,
//! NOOP, LOGOUT and STARTTLS are taken (a login is refused with PRIVACYREQUIRED), so
//! nothing said in plain text can count after the handshake. A client that sends
//! anything after STARTTLS before the handshake (command injection) is disconnected.
//! After TLS the session starts as on the IMAPS port, without a second greeting.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::LOGIN_TIMEOUT;
use postern_imap::io::Socket;

/// Longest line taken before TLS.
const MAX_LINE: u64 = 8 << 10;

/// Serves the plain-text part of a connection; the TLS stream once the client asked
/// for it and the handshake is done, or `None` to close.
pub async fn before_tls(
    socket: Box<dyn Socket>,
    acceptor: tokio_rustls::TlsAcceptor,
) -> Option<Box<dyn Socket>> {
    let (read, mut write) = tokio::io::split(socket);
    let mut read = BufReader::new(read);
    write
        .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Postern IMAP ready; STARTTLS first\r\n")
        .await
        .ok()?;
    loop {
        let mut line = Vec::new();
        let n = tokio::time::timeout(
            LOGIN_TIMEOUT,
            (&mut read).take(MAX_LINE).read_until(b'\n', &mut line),
        )
        .await
        .ok()?
        .ok()?;
        if n == 0 || !line.ends_with(b"\n") {
            return None;
        }
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_whitespace();
        let (Some(tag), command) = (words.next(), words.next().unwrap_or("")) else {
            continue;
        };
        let answer = match command.to_ascii_uppercase().as_str() {
            "CAPABILITY" => format!(
                "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK CAPABILITY done\r\n"
            ),
            "NOOP" => format!("{tag} OK NOOP done\r\n"),
            "LOGOUT" => {
                let _ = write
                    .write_all(format!("* BYE logging out\r\n{tag} OK LOGOUT done\r\n").as_bytes())
                    .await;
                return None;
            }
            "STARTTLS" => {
                if !read.buffer().is_empty() {
                    let _ = write
                        .write_all(b"* BYE nothing may follow STARTTLS before the handshake\r\n")
                        .await;
                    return None;
                }
                write
                    .write_all(format!("{tag} OK begin TLS now\r\n").as_bytes())
                    .await
                    .ok()?;
                write.flush().await.ok()?;
                let plain = read.into_inner().unsplit(write);
                let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(plain))
                    .await
                    .ok()?
                    .ok()?;
                return Some(Box::new(tls));
            }
            "LOGIN" | "AUTHENTICATE" => {
                format!("{tag} NO [PRIVACYREQUIRED] STARTTLS first\r\n")
            }
            _ => format!("{tag} BAD STARTTLS first\r\n"),
        };
        write.write_all(answer.as_bytes()).await.ok()?;
        write.flush().await.ok()?;
    }
}
