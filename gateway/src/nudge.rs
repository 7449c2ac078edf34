//! Cross-replica wake-ups. Every gateway-side change runs `pg_notify` in its own
//! transaction; each replica LISTENs on one dedicated (unpooled) connection and
//! broadcasts what it hears to its connector streams, so a write on replica B reaches
//! the connector attached to replica A at once.
//!
//! Changes a connector brought from the back end are announced too, marked as such
//! (`tenant:collection:backend`): they wake the IMAP sessions idling on that mailbox,
//! on every replica, and never a connector (which made them).
//!
//! Mail a user submitted is announced as `tenant:user:outbox`: it wakes the
//! connectors with an `smtp` source of that user, which relay it at once.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::link::{Nudge, Wake};
use crate::store::CHANGES_CHANNEL;

/// Listens forever (reconnecting with backoff) and sends every gateway-side change
/// and submitted message heard to `tx` (the connector streams), and every change of
/// either side to `changes` (the IMAP sessions).
pub async fn listen(
    database_url: String,
    tx: broadcast::Sender<Wake>,
    changes: broadcast::Sender<Nudge>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen_once(&database_url, &tx, &changes).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "change listener lost its connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn listen_once(
    url: &str,
    tx: &broadcast::Sender<Wake>,
    changes: &broadcast::Sender<Nudge>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (msg_tx, mut msg_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = stream.next().await {
            match m {
                Ok(m) => {
                    if msg_tx.send(m).is_err() {
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
        .await?;
    while let Some(m) = msg_rx.recv().await {
        if let AsyncMessage::Notification(n) = m
            && let Some((t, rest)) = n.payload().split_once(':')
        {
            let Ok(t) = Uuid::parse_str(t) else {
                continue;
            };
            if let Some(user) = rest.strip_suffix(":outbox") {
                if let Ok(user) = Uuid::parse_str(user) {
                    debug!(%user, "submitted mail heard");
                    let _ = tx.send(Wake::Outbox(t, user));
                }
                continue;
            }
            let (c, from_backend) = match rest.strip_suffix(":backend") {
                Some(c) => (c, true),
                None => (rest, false),
            };
            let Ok(c) = Uuid::parse_str(c) else {
                continue;
            };
            debug!(collection = %c, from_backend, "change heard");
            if !from_backend {
                let _ = tx.send(Wake::Collection(t, c));
            }
            let _ = changes.send((t, c));
        }
    }
    drop(client);
    match driver.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}
