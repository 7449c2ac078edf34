//! The IMAP endpoint: remote mail clients read and file the mail the connectors
//! bring in, with the same logins as the DAV endpoint.
//!
//! Concepts:
//! - **Identity for clients.** Each mailbox numbers its messages with gateway UIDs
//!   under a gateway UIDVALIDITY (`store::imap`), so a back end that renumbers its
//!   mailbox never invalidates a client's cache; MODSEQ is the journal sequence of a
//!   message's last change, HIGHESTMODSEQ the mailbox's journal head.
//! - **Writes are journalled.** A client's flag change, expunge or append is a
//!   gateway-side change like a DAV client's PUT: committed at once, announced, and
//!   written to the back end by the connector under a lease, later if the back end
//!   is away.
//! - **Sessions see a snapshot.** A selected mailbox is read once (`selected`); what
//!   changes meanwhile, on either side, reaches the client at the points the RFC
//!   allows (NOOP, CHECK, IDLE, and after commands that may report it), as EXPUNGE
//!   or VANISHED, FETCH FLAGS and EXISTS, in that order. IDLE wakes on the
//!   database's change notifications, so a change made through any replica arrives
//!   at once.
//! - **Bounded.** Connections come from [`crate::listen`] (bounded in all and per
//!   address, idle ones closed); a session holds at most one command's bytes (a
//!   small bound before login, APPENDLIMIT after), and a session that says nothing
//!   is logged out.
//!
//! Files: [`session`] (the connection's loop, login, commands outside a mailbox),
//! [`selected`] (a selected mailbox: SELECT, FETCH, STORE, SEARCH, EXPUNGE, IDLE's
//! updates), [`starttls`] (the plain port's STARTTLS), [`copymove`] (COPY, MOVE), [`mailboxes`] (CREATE, DELETE, RENAME),
//! [`qresync`] (VANISHED), [`fetching`] (FETCH), [`fetch`] (message sections), [`mime`] (ENVELOPE,
//! BODYSTRUCTURE), [`search`]
//! (search keys), [`names`] (mailbox names and LIST patterns).

pub mod copymove;
pub mod fetch;
pub mod fetching;
pub mod mailboxes;
pub mod mime;
pub mod names;
pub mod qresync;
pub mod search;
pub mod selected;
pub mod session;
pub mod snapshots;
pub mod starttls;
pub mod structure;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tracing::debug;

use crate::limits::Limits;
use crate::link::Nudge;
use crate::listen::Conn;
use crate::logins::Authenticator;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every IMAP session shares.
#[derive(Clone)]
pub struct ImapState {
    /// The database.
    pub store: Store,
    /// Logins, shared with the DAV endpoint.
    pub auth: Arc<Authenticator>,
    /// Bounds.
    pub limits: Arc<Limits>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Changes to collections, of either side, from every replica.
    pub changes: broadcast::Sender<Nudge>,
    /// The certificate, when one is configured: the plain port requires STARTTLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Logged-in sessions per user on this process.
    pub sessions: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>>,
    /// Mailbox snapshots, for SELECTs of unchanged mailboxes.
    pub snapshots: Arc<snapshots::Snapshots>,
    /// Message structures last fetched.
    pub structures: Arc<structure::Cache>,
}

/// One user's place among the logged-in sessions; given back on drop.
pub struct SessionSlot {
    sessions: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>>,
    user: uuid::Uuid,
}

impl ImapState {
    /// A slot for another session of `user`, unless they have the most allowed.
    pub fn slot(&self, user: uuid::Uuid) -> Option<SessionSlot> {
        let mut map = self.sessions.lock().ok()?;
        let n = map.entry(user).or_insert(0);
        if *n >= self.limits.imap_max_sessions_per_user.max(1) {
            return None;
        }
        *n += 1;
        Some(SessionSlot {
            sessions: self.sessions.clone(),
            user,
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.sessions.lock()
            && let Some(n) = map.get_mut(&self.user)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.user);
            }
        }
    }
}

impl std::fmt::Debug for ImapState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapState").finish_non_exhaustive()
    }
}

/// How long a session that has not logged in may stay silent.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves the connections `conns` hands out until `stop` fires or it closes.
pub async fn serve(
    mut conns: mpsc::Receiver<Conn>,
    state: ImapState,
    mut stop: broadcast::Receiver<()>,
) {
    let state = Arc::new(state);
    loop {
        tokio::select! {
            conn = conns.recv() => match conn {
                Some(conn) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let addr = conn.addr;
                        session::run(conn, state).await;
                        debug!(address = %addr, "IMAP session ended");
                    });
                }
                None => return,
            },
            _ = stop.recv() => return,
        }
    }
}
