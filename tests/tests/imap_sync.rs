//! A connector pointed at a real Dovecot: its mailboxes and messages reach the
//! gateway, flag changes and expunges follow without bodies, and what the gateway
//! holds is exactly what Dovecot holds.

use std::time::Duration;

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::Flags;
use postern_e2e::backends::Dovecot;
use postern_e2e::{Connector, Deployment, SourceSpec, connector_config, wait_until};
use url::Url;

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\nSubject: note {n}\r\nMessage-ID: <note-{n}@corp.example>\r\n\r\nBody of note {n}.\r\n"
    )
    .into_bytes()
}

/// Each live message of a gateway mailbox: (gateway UID, flags, its bytes).
async fn held(d: &Deployment, mailbox: uuid::Uuid) -> Result<Vec<(i64, Vec<String>, Vec<u8>)>> {
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

async fn bodies(d: &Deployment) -> Result<i64> {
    Ok(d.query("SELECT count(*) FROM message_bodies").await?[0].get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn mailboxes_import_and_flags_and_expunges_follow_without_bodies() -> Result<()> {
    let d = Deployment::start("imap-sync", &[]).await?;
    let dc = Dovecot::start(&d.dir).await?;
    let url = Url::parse(&dc.url())?;
    let mut imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    imap.enable_modseq().await?;
    imap.create("Sent Items").await?;
    let mut uids = Vec::new();
    for n in 1..=3 {
        let flags = if n == 1 {
            Flags::parse(["\\Seen"])
        } else {
            Flags::default()
        };
        uids.push(
            imap.append("INBOX", &flags, None, &message(n))
                .await?
                .expect("APPENDUID")
                .1,
        );
    }
    imap.append("Sent Items", &Flags::parse(["\\Seen"]), None, &message(9))
        .await?;

    let mut src = SourceSpec::alice("mail", "imap", &dc.url(), "1s");
    src.conflict = "merge".into();
    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[src]),
    )?;

    // Every mailbox appears; every message arrives whole with its flags.
    let inbox = d.collection("/INBOX").await?;
    let sent = d.collection("/Sent%20Items").await?;
    let got = wait_until("INBOX imported", Duration::from_secs(30), || async {
        let h = held(&d, inbox).await?;
        Ok((h.len() == 3).then_some(h))
    })
    .await?;
    for (i, (_, flags, body)) in got.iter().enumerate() {
        assert_eq!(body, &message(i as u32 + 1), "bytes as on Dovecot");
        assert_eq!(flags.contains(&"\\Seen".to_string()), i == 0);
    }
    wait_until("Sent Items imported", Duration::from_secs(30), || async {
        Ok((held(&d, sent).await?.len() == 1).then_some(()))
    })
    .await?;
    let stored = bodies(&d).await?;

    // A flag set on Dovecot reaches the gateway, and no body moves or is stored.
    imap.select("INBOX", None).await?;
    imap.store(uids[1], &Flags::parse(["\\Flagged"]), &Flags::default(), 0)
        .await?;
    wait_until(
        "the flag on the gateway",
        Duration::from_secs(30),
        || async {
            let h = held(&d, inbox).await?;
            Ok(h.iter()
                .any(|(_, f, b)| b == &message(2) && f.contains(&"\\Flagged".to_string()))
                .then_some(()))
        },
    )
    .await?;
    assert_eq!(bodies(&d).await?, stored, "a flag change stores no body");

    // An expunge on Dovecot removes the message from the gateway, and the others stay.
    imap.expunge(uids[2]).await?;
    let after = wait_until(
        "the expunge on the gateway",
        Duration::from_secs(30),
        || async {
            let h = held(&d, inbox).await?;
            Ok((h.len() == 2).then_some(h))
        },
    )
    .await?;
    assert!(after.iter().all(|(_, _, b)| b != &message(3)));
    // Gateway UIDs never change for a message that stays.
    assert_eq!(after[0].0, got[0].0);
    imap.logout().await?;
    Ok(())
}
