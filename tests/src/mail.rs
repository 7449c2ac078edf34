//! Helpers of the mail scenarios: their set-up (a gateway, a real Dovecot, alice's own
//! IMAP session, a connector), a test message, and what the gateway and Dovecot hold.

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::Flags;
use url::Url;

use crate::backends::Dovecot;
use crate::{Connector, Deployment, SourceSpec, connector_config};

/// A mail scenario: a gateway, a real Dovecot, and alice's own IMAP session on it
/// (the other client, which changes things on the server). Tests take it apart:
/// `let Scenario { d, dc, url, mut imap } = Scenario::start("name").await?;`.
pub struct Scenario {
    pub d: Deployment,
    pub dc: Dovecot,
    pub url: Url,
    pub imap: ImapClient,
}

impl Scenario {
    /// A gateway with its defaults and a Dovecot with its defaults.
    pub async fn start(name: &str) -> Result<Scenario> {
        let d = Deployment::start(name, &[]).await?;
        let dc = Dovecot::start(&d.dir).await?;
        Scenario::with(d, dc).await
    }

    /// Around a gateway and a Dovecot started otherwise (other limits, other
    /// capabilities).
    pub async fn with(d: Deployment, dc: Dovecot) -> Result<Scenario> {
        let url = Url::parse(&dc.url())?;
        let imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
        Ok(Scenario { d, dc, url, imap })
    }
}

/// A connector (`hq`) syncing alice's mail on `dc` every second, two-way.
pub fn connector(d: &Deployment, dc: &Dovecot) -> Result<Connector> {
    connector_with(d, dc, SourceSpec::alice("mail", "imap", &dc.url(), "1s"))
}

/// A connector (`hq`) with one source.
pub fn connector_with(d: &Deployment, _dc: &Dovecot, source: SourceSpec) -> Result<Connector> {
    Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[source]),
    )
}

/// Waits until the gateway's mailbox `href` (`/INBOX`) holds `n` messages; its id.
pub async fn imported(d: &Deployment, href: &str, n: usize) -> Result<uuid::Uuid> {
    let id = d.collection(href).await?;
    crate::wait_until(
        &format!("{href} imported"),
        std::time::Duration::from_secs(60),
        || async { Ok((held(d, id).await?.len() == n).then_some(())) },
    )
    .await?;
    Ok(id)
}

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

/// One message of [`corpus`]: where it lives, its bytes, its flags, its internal date.
pub struct CorpusMessage {
    pub mailbox: &'static str,
    pub bytes: Vec<u8>,
    pub flags: &'static [&'static str],
    pub date: &'static str,
}

/// Mailboxes of [`corpus`], parents before children.
pub const CORPUS_MAILBOXES: &[&str] = &[
    "Sent Items",
    "Projects",
    "Projects/2026",
    "Projects/2026/Q1",
    "Entwürfe",
    "Ärger & Co",
    "日本語",
    "Archive",
];

/// A mailbox as users have them: nested folders, "Sent Items" and non-ASCII names,
/// multipart messages with a binary attachment, 8-bit and encoded headers, two
/// different messages under one Message-ID, one message filed twice, and (when
/// `big_mb` > 0) one message of `big_mb` megabytes.
pub fn corpus(big_mb: usize) -> Vec<CorpusMessage> {
    let mut out = vec![
        CorpusMessage {
            mailbox: "INBOX",
            bytes: message(1),
            flags: &["\\Seen"],
            date: "02-Jan-2026 09:15:00 +0100",
        },
        CorpusMessage {
            mailbox: "INBOX",
            bytes: multipart("Quarterly figures", 150_000, 7),
            flags: &["\\Flagged"],
            date: "03-Jan-2026 10:00:00 +0000",
        },
        // 8-bit UTF-8 body and an RFC 2047 encoded subject.
        CorpusMessage {
            mailbox: "INBOX",
            bytes: "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@corp.example>\r\nTo: alice@corp.example\r\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nMessage-ID: <gruesse@corp.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — 日本語のテキスト.\r\n".as_bytes().to_vec(),
            flags: &[],
            date: "04-Jan-2026 11:30:00 -0500",
        },
        // Raw 8-bit header (RFC 6532 style), as some mailers send.
        CorpusMessage {
            mailbox: "INBOX",
            bytes: "From: Zoë <zoe@corp.example>\r\nTo: alice@corp.example\r\nSubject: Café à midi\r\nMessage-ID: <cafe@corp.example>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nOn se voit au café?\r\n".as_bytes().to_vec(),
            flags: &["\\Answered", "$Label1"],
            date: "05-Jan-2026 12:00:00 +0000",
        },
        // Two different messages with one Message-ID (a list copy and the original).
        CorpusMessage {
            mailbox: "INBOX",
            bytes: b"From: list@corp.example\r\nSubject: same id\r\nMessage-ID: <dup@corp.example>\r\n\r\nThe original.\r\n".to_vec(),
            flags: &[],
            date: "06-Jan-2026 08:00:00 +0000",
        },
        CorpusMessage {
            mailbox: "INBOX",
            bytes: b"From: list@corp.example\r\nSubject: [list] same id\r\nList-Id: <team.corp.example>\r\nMessage-ID: <dup@corp.example>\r\n\r\nThe original.\r\n-- \r\nteam list\r\n".to_vec(),
            flags: &[],
            date: "06-Jan-2026 08:00:05 +0000",
        },
        CorpusMessage {
            mailbox: "Sent Items",
            bytes: message(2),
            flags: &["\\Seen"],
            date: "07-Jan-2026 14:00:00 +0000",
        },
        // The same bytes filed in a second mailbox: one body on the gateway.
        CorpusMessage {
            mailbox: "Projects/2026/Q1",
            bytes: message(2),
            flags: &["\\Seen", "$work"],
            date: "07-Jan-2026 14:00:00 +0000",
        },
        CorpusMessage {
            mailbox: "Projects/2026",
            bytes: multipart("Plan 2026", 20_000, 11),
            flags: &[],
            date: "08-Jan-2026 09:00:00 +0000",
        },
        CorpusMessage {
            mailbox: "Entwürfe",
            bytes: b"From: alice@corp.example\r\nTo: bob@corp.example\r\nSubject: draft\r\n\r\nNo Message-ID yet.\r\n".to_vec(),
            flags: &["\\Draft"],
            date: "09-Jan-2026 17:45:00 +0000",
        },
        CorpusMessage {
            mailbox: "Ärger & Co",
            bytes: message(3),
            flags: &[],
            date: "10-Jan-2026 07:00:00 +0000",
        },
        CorpusMessage {
            mailbox: "日本語",
            bytes: message(4),
            flags: &["\\Seen"],
            date: "11-Jan-2026 07:00:00 +0900",
        },
    ];
    if big_mb > 0 {
        out.push(CorpusMessage {
            mailbox: "Archive",
            bytes: multipart("Scans", big_mb << 20, 13),
            flags: &["\\Seen"],
            date: "12-Jan-2026 16:20:00 +0000",
        });
    }
    out
}

/// A multipart/mixed message: a text part and a base64 attachment of about
/// `attachment` bytes (pseudo-random, from `seed`), lines of 76 characters.
pub fn multipart(subject: &str, attachment: usize, seed: u64) -> Vec<u8> {
    use base64::Engine as _;
    let mut raw = Vec::with_capacity(attachment * 3 / 4);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while raw.len() < attachment * 3 / 4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        raw.extend_from_slice(&x.to_le_bytes());
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let mut out = format!(
        "From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\nSubject: {subject}\r\nMessage-ID: <{seed}.multipart@corp.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=-b{seed}\"\r\n\r\nThis is a multi-part message.\r\n--=-b{seed}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n--=-b{seed}\r\nContent-Type: application/octet-stream; name=\"data-{seed}.bin\"\r\nContent-Disposition: attachment; filename=\"data-{seed}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in b64.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--=-b{seed}--\r\n").as_bytes());
    out
}

/// The gateway's mailbox of this name (as the back end names it), once discovered.
pub async fn mailbox(d: &Deployment, name: &str) -> Result<uuid::Uuid> {
    let name = name.to_string();
    crate::wait_until(
        &format!("mailbox {name} on the gateway"),
        std::time::Duration::from_secs(30),
        || async {
            let all = d.store.list_collections(Some(d.tenant)).await?;
            Ok(all
                .into_iter()
                .find(|c| c.display_name == name)
                .map(|c| c.id))
        },
    )
    .await
}

/// Every message of a mailbox on Dovecot, as alice's own session reads it.
pub async fn dovecot_messages(
    url: &Url,
    mailbox: &str,
) -> Result<Vec<postern_connector::backends::imap::client::Message>> {
    let mut c = ImapClient::connect(url, "alice", "alicepw", false).await?;
    let s = c.select(mailbox, None).await?;
    let found = if s.exists > 0 {
        let uids: Vec<u32> = c
            .fetch_meta("1:*", None)
            .await?
            .iter()
            .map(|m| m.uid)
            .collect();
        c.fetch_messages(&uids).await?
    } else {
        Vec::new()
    };
    c.logout().await?;
    Ok(found)
}
