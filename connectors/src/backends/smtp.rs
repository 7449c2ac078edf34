//! SMTP: relaying the gateway's outbox to the corporate mail server.
//!
//! One connection per message: `smtps://` is TLS from the start; `smtp://` upgrades
//! with STARTTLS when the server offers it, and sends a password in plain text only
//! to loopback or when the source allows it. The message goes byte for byte (dots
//! doubled on the wire, as RFC 5321 §4.5.2 asks, and undone by the server).
//!
//! Replies decide what happens to the message: 2xx sent; 4xx, a broken connection
//! or a timeout, try again later; 5xx, refused for good (the user gets a bounce).

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use url::Url;

use crate::config::Source;

/// How long one reply may take (RFC 5321 §4.5.3.2 asks for minutes; DATA's end the
/// longest).
const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    /// The server took it, for every recipient it did not refuse (with the reply
    /// for those it did).
    Sent { refused: Vec<(String, String)> },
    /// Try again later: why.
    Temporary(String),
    /// Refused for good: the server's reply.
    Permanent(String),
}

/// The corporate SMTP server of one source.
#[derive(Clone)]
pub struct SmtpRelay {
    host: String,
    port: u16,
    implicit_tls: bool,
    username: String,
    password: String,
    allow_plain: bool,
    tls_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// An SMTP reply: its code and its text lines joined.
type Reply = (u16, String);

async fn read_reply<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Reply, String> {
    let mut text = Vec::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(REPLY_TIMEOUT, r.read_line(&mut line))
            .await
            .map_err(|_| "the server did not answer in time".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        let line = line.trim_end();
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an SMTP reply: {line:?}"))?;
        text.push(line.get(4..).unwrap_or("").to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text.join(" ")));
        }
        if text.len() > 100 {
            return Err("reply too long".into());
        }
    }
}

/// The message as sent inside DATA: dots at line starts doubled, ending in CRLF.
pub fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 50 + 8);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl SmtpRelay {
    /// The relay a source names (`smtp://host:587` or `smtps://host:465`).
    pub fn new(source: &Source) -> Result<SmtpRelay, String> {
        let url = Url::parse(&source.url).map_err(|e| format!("{}: {e}", source.url))?;
        let implicit_tls = match url.scheme() {
            "smtps" => true,
            "smtp" => false,
            other => {
                return Err(format!(
                    "{}: scheme {other} is not smtp or smtps",
                    source.url
                ));
            }
        };
        Ok(SmtpRelay {
            host: url.host_str().unwrap_or("").to_string(),
            port: url.port().unwrap_or(if implicit_tls { 465 } else { 587 }),
            implicit_tls,
            username: source.username.clone(),
            password: source.password.clone(),
            allow_plain: source.allow_plain,
            tls_ca: source.tls_ca.clone(),
        })
    }

    fn loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    async fn tls(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let connector = super::tls::connector(self.tls_ca.as_deref())?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("{}: {e}", self.host))?;
        let stream = tokio::time::timeout(REPLY_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS with {}: {e}", self.host))?;
        Ok(stream)
    }

    /// Relays one message.
    pub async fn send(&self, from: &str, to: &[String], body: &[u8]) -> Relayed {
        match self.transaction(from, to, body).await {
            Ok(r) => r,
            Err(why) => Relayed::Temporary(why),
        }
    }

    async fn transaction(&self, from: &str, to: &[String], body: &[u8]) -> Result<Relayed, String> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| format!("{}:{} did not answer", self.host, self.port))?
        .map_err(|e| format!("{}:{}: {e}", self.host, self.port))?;
        if self.implicit_tls {
            let mut conn = BufReader::new(self.tls(tcp).await?);
            if let Some(refused) = hello(&mut conn).await? {
                return Ok(refused);
            }
            return self.deliver(&mut conn, true, (from, to, body)).await;
        }
        let mut conn = BufReader::new(tcp);
        let ehlo = match hello(&mut conn).await? {
            Some(refused) => return Ok(refused),
            None => command(&mut conn, "EHLO postern-connector").await?,
        };
        if !ehlo.1.to_ascii_uppercase().contains("STARTTLS") {
            return self.deliver(&mut conn, false, (from, to, body)).await;
        }
        let r = command(&mut conn, "STARTTLS").await?;
        if r.0 != 220 {
            return Ok(classify(r, "STARTTLS"));
        }
        // Anything the server sent before TLS no longer counts (it is dropped here).
        let mut conn = BufReader::new(self.tls(conn.into_inner()).await?);
        let r = command(&mut conn, "EHLO postern-connector").await?;
        if r.0 != 250 {
            return Ok(classify(r, "EHLO"));
        }
        self.deliver(&mut conn, true, (from, to, body)).await
    }

    /// After EHLO: AUTH, MAIL, RCPT, DATA.
    async fn deliver<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut BufReader<S>,
        secure: bool,
        (from, to, body): (&str, &[String], &[u8]),
    ) -> Result<Relayed, String> {
        if !self.username.is_empty() {
            if !secure && !self.loopback() && !self.allow_plain {
                return Err(format!(
                    "{} offers no TLS: refusing to send the password in plain text (use smtps://, or allow_plain = true)",
                    self.host
                ));
            }
            let plain = base64::engine::general_purpose::STANDARD
                .encode(format!("\0{}\0{}", self.username, self.password));
            let r = command(conn, &format!("AUTH PLAIN {plain}")).await?;
            if r.0 != 235 {
                // A wrong password is the operator's to fix: the message waits.
                return Ok(Relayed::Temporary(format!("AUTH: {} {}", r.0, r.1)));
            }
        }
        let r = command(conn, &format!("MAIL FROM:<{from}> SIZE={}", body.len())).await?;
        if r.0 != 250 {
            return Ok(classify(r, "MAIL FROM"));
        }
        let mut refused = Vec::new();
        for rcpt in to {
            let r = command(conn, &format!("RCPT TO:<{rcpt}>")).await?;
            match r.0 {
                250 | 251 => {}
                400..=499 => {
                    let _ = command(conn, "RSET").await;
                    return Ok(Relayed::Temporary(format!(
                        "RCPT TO:<{rcpt}>: {} {}",
                        r.0, r.1
                    )));
                }
                _ => refused.push((rcpt.clone(), format!("{} {}", r.0, r.1))),
            }
        }
        if refused.len() == to.len() {
            let _ = command(conn, "RSET").await;
            let why: Vec<String> = refused
                .iter()
                .map(|(r, why)| format!("{r}: {why}"))
                .collect();
            return Ok(Relayed::Permanent(why.join("; ")));
        }
        let r = command(conn, "DATA").await?;
        if r.0 != 354 {
            return Ok(classify(r, "DATA"));
        }
        conn.get_mut()
            .write_all(&stuffed(body))
            .await
            .map_err(|e| e.to_string())?;
        conn.get_mut().flush().await.map_err(|e| e.to_string())?;
        let r = read_reply(conn).await?;
        let _ = command(conn, "QUIT").await;
        Ok(match r.0 {
            250 => Relayed::Sent { refused },
            _ => classify(r, "end of DATA"),
        })
    }
}

/// The greeting and EHLO; a refusal if either is one.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
) -> Result<Option<Relayed>, String> {
    let greeting = read_reply(conn).await?;
    if greeting.0 != 220 {
        return Ok(Some(classify(greeting, "greeting")));
    }
    let ehlo = command(conn, "EHLO postern-connector").await?;
    if ehlo.0 != 250 {
        return Ok(Some(classify(ehlo, "EHLO")));
    }
    Ok(None)
}

fn classify((code, text): Reply, step: &str) -> Relayed {
    let why = format!("{step}: {code} {text}");
    if (500..600).contains(&code) {
        Relayed::Permanent(why)
    } else {
        Relayed::Temporary(why)
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    line: &str,
) -> Result<Reply, String> {
    conn.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    conn.get_mut().flush().await.map_err(|e| e.to_string())?;
    read_reply(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled_and_the_data_ends() {
        assert_eq!(stuffed(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuffed(b".x"), b"..x\r\n.\r\n");
        assert_eq!(stuffed(b"no end"), b"no end\r\n.\r\n");
    }
}
