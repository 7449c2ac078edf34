//! One submission connection: EHLO, AUTH, then transactions of MAIL, RCPT and DATA.
//! Commands may be pipelined (RFC 2920): they are read and answered in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tracing::{debug, info, warn};

use super::SubmissionState;
use super::protocol::{Command, header_addresses, is_end_of_data, parse, unstuff};
use crate::imap::fetch::{header_values, split};
use crate::logins::{LoginError, Principal};

/// Longest command line (RFC 5321 §4.5.3.1.4 asks for at least 512 octets).
const MAX_LINE: usize = 4096;
/// How long a command, or a block of DATA, may take to arrive (RFC 5321 §4.5.3.2).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Bad commands a session may send before it is closed.
const MAX_ERRORS: u32 = 20;

/// A transaction in progress.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
}

enum Read {
    Line(Vec<u8>),
    TooLong,
    Closed,
}

async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    max: usize,
) -> std::io::Result<Read> {
    let mut buf = Vec::new();
    let n = r.take(max as u64 + 1).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(Read::Closed);
    }
    if !buf.ends_with(b"\n") {
        if buf.len() > max {
            // Skip the rest of the line.
            let mut rest = Vec::new();
            r.read_until(b'\n', &mut rest).await?;
            return Ok(Read::TooLong);
        }
        return Ok(Read::Closed);
    }
    Ok(Read::Line(buf))
}

/// A connection's transport: TCP, or TLS over it.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// What ends one phase of a connection.
enum Next {
    Close,
    /// STARTTLS was accepted: the same connection, to be wrapped in TLS.
    StartTls(Box<dyn Socket>),
}

/// Serves one connection. `tls` says whether it is TLS already; plain-text AUTH is
/// taken over TLS or from loopback.
pub async fn run(
    socket: Box<dyn Socket>,
    addr: SocketAddr,
    tls: bool,
    state: Arc<SubmissionState>,
) {
    let (mut socket, mut tls) = (socket, tls);
    let mut greet = true;
    loop {
        match serve(socket, addr, tls, greet, &state).await {
            Next::Close => return,
            Next::StartTls(plain) => {
                let Some(acceptor) = state.tls.clone() else {
                    return;
                };
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(plain)).await {
                    Ok(Ok(stream)) => {
                        socket = Box::new(stream);
                        tls = true;
                        // After STARTTLS the client starts again with EHLO, and no
                        // greeting comes (RFC 3207 §4.2).
                        greet = false;
                    }
                    _ => return,
                }
            }
        }
    }
}

async fn serve(
    socket: Box<dyn Socket>,
    addr: SocketAddr,
    tls: bool,
    greet: bool,
    state: &Arc<SubmissionState>,
) -> Next {
    let (read, mut write) = tokio::io::split(socket);
    let mut read = BufReader::new(read);
    let mut s = Session {
        state: state.clone(),
        addr,
        secure: tls || addr.ip().is_loopback() || state.limits.allow_plain_login,
        tls,
        user: None,
        tx: Transaction::default(),
        errors: 0,
    };
    if greet
        && write
            .write_all(b"220 postern ESMTP submission ready\r\n")
            .await
            .is_err()
    {
        return Next::Close;
    }
    loop {
        let line = match tokio::time::timeout(COMMAND_TIMEOUT, read_line(&mut read, MAX_LINE)).await
        {
            Ok(Ok(Read::Line(l))) => l,
            Ok(Ok(Read::TooLong)) => {
                if s.reply(&mut write, "500 5.5.2 line too long\r\n")
                    .await
                    .is_err()
                {
                    return Next::Close;
                }
                s.errors += 1;
                continue;
            }
            Err(_) => {
                let _ = write
                    .write_all(b"421 4.4.2 idle too long; closing\r\n")
                    .await;
                return Next::Close;
            }
            Ok(Ok(Read::Closed)) | Ok(Err(_)) => return Next::Close,
        };
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let answer = match parse(&text) {
            Command::Quit => {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                return Next::Close;
            }
            Command::StartTls if !s.tls && s.state.tls.is_some() => {
                if !read.buffer().is_empty() {
                    // Commands sent with STARTTLS would be taken as if under TLS.
                    let _ = write
                        .write_all(
                            b"554 5.5.1 nothing may follow STARTTLS before the handshake\r\n",
                        )
                        .await;
                    return Next::Close;
                }
                if s.reply(&mut write, "220 2.0.0 ready to start TLS\r\n")
                    .await
                    .is_err()
                {
                    return Next::Close;
                }
                return Next::StartTls(read.into_inner().unsplit(write));
            }
            Command::Data => match s.data_refused() {
                Some(refusal) => refusal,
                None => {
                    if s.reply(&mut write, "354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await
                        .is_err()
                    {
                        return Next::Close;
                    }
                    s.data(&mut read).await
                }
            },
            Command::Auth { mechanism, initial } => {
                s.auth(&mut read, &mut write, &mechanism, initial).await
            }
            other => s.command(other).await,
        };
        if answer.starts_with('5') {
            s.errors += 1;
        }
        if write.write_all(answer.as_bytes()).await.is_err() || write.flush().await.is_err() {
            return Next::Close;
        }
        if s.errors > MAX_ERRORS {
            let _ = write
                .write_all(b"421 4.7.0 too many errors; closing\r\n")
                .await;
            return Next::Close;
        }
    }
}

struct Session {
    state: Arc<SubmissionState>,
    addr: SocketAddr,
    /// Plain-text AUTH allowed: TLS, or loopback.
    secure: bool,
    /// The connection is TLS (STARTTLS is not offered again).
    tls: bool,
    user: Option<Principal>,
    tx: Transaction,
    errors: u32,
}

impl Session {
    async fn reply<W: AsyncWrite + Unpin>(&self, w: &mut W, text: &str) -> std::io::Result<()> {
        w.write_all(text.as_bytes()).await?;
        w.flush().await
    }

    fn ehlo(&self, name: &str) -> String {
        let mut lines = vec![
            format!("postern greets {name}"),
            "PIPELINING".into(),
            format!("SIZE {}", self.state.limits.submission_max_message_bytes),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if !self.tls && self.state.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        if self.secure {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}\r\n", if i == last { " " } else { "-" }))
            .collect()
    }

    async fn command(&mut self, command: Command) -> String {
        match command {
            Command::Ehlo(name) => {
                self.tx = Transaction::default();
                self.ehlo(&name)
            }
            Command::Helo(name) => {
                self.tx = Transaction::default();
                format!("250 postern greets {name}\r\n")
            }
            Command::Rset => {
                self.tx = Transaction::default();
                "250 2.0.0 reset\r\n".into()
            }
            Command::Noop => "250 2.0.0 ok\r\n".into(),
            Command::Vrfy => "252 2.5.0 cannot verify; try sending\r\n".into(),
            Command::StartTls => {
                "502 5.5.1 STARTTLS is not offered here; use the submissions port\r\n".into()
            }
            Command::Unknown(verb) => format!("500 5.5.2 unknown command {verb}\r\n"),
            Command::Malformed(why) => format!("501 5.5.4 {why}\r\n"),
            Command::Mail { from, size, .. } => self.mail(&from, size).await,
            Command::Rcpt(to) => self.rcpt(&to),
            Command::Quit | Command::Data | Command::Auth { .. } => {
                "503 5.5.1 out of sequence\r\n".into()
            }
        }
    }

    async fn auth<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &mut self,
        read: &mut BufReader<R>,
        write: &mut W,
        mechanism: &str,
        initial: Option<String>,
    ) -> String {
        if self.user.is_some() {
            return "503 5.5.1 already authenticated\r\n".into();
        }
        if !self.secure {
            return "538 5.7.11 encryption required: STARTTLS first\r\n".into();
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut ask = async |prompt: &str| -> Option<Vec<u8>> {
            write
                .write_all(format!("334 {prompt}\r\n").as_bytes())
                .await
                .ok()?;
            write.flush().await.ok()?;
            let Ok(Read::Line(l)) = read_line(read, MAX_LINE).await else {
                return None;
            };
            let l = String::from_utf8_lossy(&l).trim().to_string();
            if l == "*" {
                return None;
            }
            b64.decode(l).ok()
        };
        let (login, password) = match mechanism {
            "PLAIN" => {
                let message = match initial.as_deref() {
                    Some("=") => Some(Vec::new()),
                    Some(ir) => b64.decode(ir).ok(),
                    None => ask("").await,
                };
                let Some(message) = message else {
                    return "501 5.5.2 malformed or cancelled AUTH\r\n".into();
                };
                let parts: Vec<&[u8]> = message.split(|b| *b == 0).collect();
                let [authz, login, password] = parts.as_slice() else {
                    return "501 5.5.2 malformed PLAIN message\r\n".into();
                };
                if !authz.is_empty() && authz != login {
                    return "535 5.7.8 acting as another user is not allowed\r\n".into();
                }
                (
                    String::from_utf8_lossy(login).into_owned(),
                    String::from_utf8_lossy(password).into_owned(),
                )
            }
            "LOGIN" => {
                let login = match initial.as_deref() {
                    Some(ir) => b64.decode(ir).ok(),
                    None => ask("VXNlcm5hbWU6").await,
                };
                let Some(login) = login else {
                    return "501 5.5.2 malformed or cancelled AUTH\r\n".into();
                };
                let Some(password) = ask("UGFzc3dvcmQ6").await else {
                    return "501 5.5.2 malformed or cancelled AUTH\r\n".into();
                };
                (
                    String::from_utf8_lossy(&login).into_owned(),
                    String::from_utf8_lossy(&password).into_owned(),
                )
            }
            _ => return "504 5.5.4 only PLAIN and LOGIN are offered\r\n".into(),
        };
        match self
            .state
            .auth
            .login(&self.state.store, &login, &password, Some(self.addr.ip()))
            .await
        {
            Ok(who) => {
                info!(login = %who.login, address = %self.addr, "submission login");
                self.user = Some(who);
                "235 2.7.0 authenticated\r\n".into()
            }
            Err(LoginError::Unauthorized) => "535 5.7.8 wrong login or app password\r\n".into(),
            Err(LoginError::Busy(_)) => "454 4.7.0 too many logins at once; try again\r\n".into(),
            Err(LoginError::Store(e)) => {
                warn!(error = %e, "submission login: the store failed");
                "454 4.7.0 cannot check logins right now\r\n".into()
            }
        }
    }

    /// The addresses the logged-in user may send as.
    async fn own_addresses(&self) -> Option<Vec<String>> {
        let u = self.user.as_ref()?;
        self.state.store.user_addresses(u.tenant, u.user).await.ok()
    }

    async fn mail(&mut self, from: &str, size: Option<u64>) -> String {
        let Some(user) = self.user.clone() else {
            return "530 5.7.0 authentication required\r\n".into();
        };
        if self.tx.from.is_some() {
            return "503 5.5.1 a transaction is already open (RSET first)\r\n".into();
        }
        let max = self.state.limits.submission_max_message_bytes as u64;
        if size.is_some_and(|n| n > max) {
            return format!("552 5.3.4 message larger than {max} bytes\r\n");
        }
        let own = self.own_addresses().await.unwrap_or_default();
        let from = from.to_lowercase();
        if !own.contains(&from) {
            return "550 5.7.1 not one of your addresses (ask your administrator to add it)\r\n"
                .into();
        }
        match self
            .state
            .store
            .sent_last_hour(user.tenant, user.user)
            .await
        {
            Ok(n) if n >= self.state.limits.submission_messages_per_hour as i64 => {
                return "451 4.7.1 sending limit reached for this hour; try later\r\n".into();
            }
            Ok(_) => {}
            Err(e) => return format!("451 4.3.0 cannot check the sending limit: {e}\r\n"),
        }
        self.tx.from = Some(from);
        "250 2.1.0 sender ok\r\n".into()
    }

    fn rcpt(&mut self, to: &str) -> String {
        if self.tx.from.is_none() {
            return "503 5.5.1 MAIL first\r\n".into();
        }
        if self.tx.to.len() >= self.state.limits.submission_max_recipients {
            return "452 4.5.3 too many recipients\r\n".into();
        }
        if crate::store::outbox::normalise_address(to).is_none() {
            return "501 5.1.3 not an address\r\n".into();
        }
        self.tx.to.push(to.to_string());
        "250 2.1.5 recipient ok\r\n".into()
    }

    /// Why DATA cannot start now, if it cannot.
    fn data_refused(&self) -> Option<String> {
        if self.user.is_none() || self.tx.from.is_none() {
            return Some("503 5.5.1 MAIL first\r\n".into());
        }
        if self.tx.to.is_empty() {
            return Some("554 5.5.1 no valid recipients\r\n".into());
        }
        None
    }

    /// DATA, after the 354: reads the message, checks its From, and answers 250 only
    /// once it is in the outbox.
    async fn data<R: AsyncRead + Unpin>(&mut self, read: &mut BufReader<R>) -> String {
        let (Some(user), Some(from)) = (self.user.clone(), self.tx.from.clone()) else {
            return "503 5.5.1 MAIL first\r\n".into();
        };
        let max = self.state.limits.submission_max_message_bytes;
        let mut message = Vec::new();
        let mut too_large = false;
        let got = tokio::time::timeout(COMMAND_TIMEOUT * 2, async {
            loop {
                match read_line(read, max.max(MAX_LINE)).await? {
                    Read::Line(l) if is_end_of_data(&l) => return Ok::<bool, std::io::Error>(true),
                    Read::Line(l) => {
                        if message.len() + l.len() > max {
                            too_large = true;
                        } else {
                            message.extend_from_slice(unstuff(&l));
                        }
                    }
                    Read::TooLong => too_large = true,
                    Read::Closed => return Ok(false),
                }
            }
        })
        .await;
        let tx = std::mem::take(&mut self.tx);
        match got {
            Ok(Ok(true)) => {}
            _ => return "451 4.4.2 the message did not arrive whole\r\n".into(),
        }
        if too_large {
            return format!("552 5.3.4 message larger than {max} bytes\r\n");
        }
        let own = self.own_addresses().await.unwrap_or_default();
        let header = split(&message).0;
        let mut senders: Vec<String> = Vec::new();
        for name in ["from", "sender"] {
            for v in header_values(header, name) {
                senders.extend(header_addresses(&String::from_utf8_lossy(&v)));
            }
        }
        if senders.is_empty() || senders.iter().any(|a| !own.contains(a)) {
            return "550 5.7.1 the From header must be one of your addresses\r\n".into();
        }
        match self
            .state
            .store
            .queue_submission(user.tenant, user.user, &from, &tx.to, &message)
            .await
        {
            Ok(id) => {
                info!(login = %user.login, id = %id, bytes = message.len(), recipients = tx.to.len(), "message queued for sending");
                format!("250 2.0.0 queued as {id}\r\n")
            }
            Err(e) => {
                debug!(error = %e, "queueing a message failed");
                "451 4.3.0 the message could not be kept; try again\r\n".into()
            }
        }
    }
}
