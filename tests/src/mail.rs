//! Helpers of the mail scenarios: a test message, and what the gateway and Dovecot
//! hold.

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::Flags;
use url::Url;

use crate::Deployment;

/// A test message: headers with a Message-ID, and a short body.
pub fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\nSubject: note {n}\r\nMessage-ID: <note-{n}@corp.example>\r\n\r\nBody of note {n}.\r\n"
    )
    .into_bytes()
}

/// Each live message of a gateway mailbox: (gateway UID, flags, its bytes).
pub async fn held(d: &Deployment, mailbox: uuid::Uuid) -> Result<Vec<(i64, Vec<String>, Vec<u8>)>> {
    let rows = d
        .query(&format!(
            "SELECT i.gateway_uid, i.flags, b.body FROM items i
             JOIN message_bodies b ON b.tenant_id = i.tenant_id AND b.sha256 = i.body_sha256
             WHERE i.collection_id = '{mailbox}' AND NOT i.deleted ORDER BY i.gateway_uid"
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// `postern_mail_body_bytes_total{direction}` from the gateway's metrics.
pub async fn body_bytes(d: &Deployment, direction: &str) -> Result<u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", d.gateway.http_port))
        .await?
        .text()
        .await?;
    let prefix = format!("postern_mail_body_bytes_total{{direction=\"{direction}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

pub async fn bodies(d: &Deployment) -> Result<i64> {
    Ok(d.query("SELECT count(*) FROM message_bodies").await?[0].get(0))
}

/// The gateway's id of the live message with these bytes.
pub async fn item_of(d: &Deployment, mailbox: uuid::Uuid, body: &[u8]) -> Result<uuid::Uuid> {
    let rows = d
        .query(&format!(
            "SELECT i.id, b.body FROM items i
             JOIN message_bodies b ON b.tenant_id = i.tenant_id AND b.sha256 = i.body_sha256
             WHERE i.collection_id = '{mailbox}' AND NOT i.deleted"
        ))
        .await?;
    rows.iter()
        .find(|r| r.get::<_, Vec<u8>>(1) == body)
        .map(|r| r.get(0))
        .ok_or_else(|| anyhow::anyhow!("no such message on the gateway"))
}

/// A message's flags on Dovecot, read on a connection of its own.
pub async fn dovecot_flags(url: &Url, uid: u32) -> Result<Flags> {
    let mut imap = ImapClient::connect(url, "alice", "alicepw", false).await?;
    imap.select("INBOX", None).await?;
    let flags = imap
        .fetch_meta(&uid.to_string(), None)
        .await?
        .pop()
        .map(|m| m.flags)
        .unwrap_or_default();
    imap.logout().await?;
    Ok(flags)
}

/// When the connector last reported a round of `coll` (seconds, 0 for never).
pub async fn round_at(d: &Deployment, coll: uuid::Uuid) -> Result<f64> {
    let rows = d
        .query(&format!(
            "SELECT COALESCE(EXTRACT(EPOCH FROM last_round_at)::float8, 0) FROM collections WHERE id = '{coll}'"
        ))
        .await?;
    Ok(rows[0].get(0))
}
