//! SMTP submission (RFC 6409): remote mail clients send mail through the gateway,
//! and a connector relays it to the corporate SMTP server.
//!
//! Concepts:
//! - **Same logins.** AUTH PLAIN or LOGIN with the app passwords DAV and IMAP take,
//!   through the same [`crate::logins::Authenticator`] (throttling included), only
//!   over TLS (implicit, or STARTTLS when a certificate is configured) or from
//!   loopback.
//! - **Own addresses only.** The envelope sender and every address of the From (and
//!   Sender) header must be one the operator gave the user
//!   (`admin user address add`): a stolen app password must not make the gateway an
//!   open relay. Sending is limited per user and hour.
//! - **Accepted means kept.** 250 is answered only once the message and its envelope
//!   are committed to the outbox (`store::outbox`); a connector's `smtp` source
//!   relays it from there.
//! - **Bounded.** Connections come from [`crate::listen`]; a command line is at most
//!   4 KiB, a message at most `--submission-max-message-bytes` (advertised as SIZE),
//!   recipients at most `--submission-max-recipients`; a silent client is closed
//!   after five minutes, a client that keeps erring after twenty errors.
//!
//! Files: [`protocol`] (commands and DATA lines, without I/O), [`session`] (one
//! connection).

pub mod protocol;
pub mod session;

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::limits::Limits;
use crate::listen::Conn;
use crate::logins::Authenticator;
use crate::store::Store;

/// What every submission session shares.
pub struct SubmissionState {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub limits: Arc<Limits>,
    /// The certificate, when one is configured: STARTTLS is offered on the plain
    /// port.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves the connections `conns` hands out until `stop` fires or it closes.
pub async fn serve(
    mut conns: mpsc::Receiver<Conn>,
    state: Arc<SubmissionState>,
    mut stop: broadcast::Receiver<()>,
) {
    loop {
        tokio::select! {
            conn = conns.recv() => match conn {
                Some(conn) => {
                    let state = state.clone();
                    let addr = conn.addr;
                    let tls = conn.is_tls();
                    tokio::spawn(session::run(Box::new(conn), addr, tls, state));
                }
                None => return,
            },
            _ = stop.recv() => return,
        }
    }
}
