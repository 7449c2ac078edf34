//! A mailbox as users have it, through the whole path: nested folders, "Sent Items"
//! and non-ASCII names, multipart messages with attachments, 8-bit and encoded
//! headers, two different messages under one Message-ID, one message filed twice, and
//! a message over 30 MB. What reaches the gateway is compared with what was put on
//! Dovecot (the corpus itself is the oracle), byte for byte.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::{Flag, Flags};
use postern_e2e::backends::Dovecot;
use postern_e2e::mail::{CORPUS_MAILBOXES, body_bytes, corpus, held, mailbox};
use postern_e2e::{Connector, Deployment, SourceSpec, connector_config, wait_until};
use url::Url;

#[tokio::test(flavor = "multi_thread")]
async fn a_realistic_mailbox_arrives_byte_for_byte() -> Result<()> {
    let d = Deployment::start("imap-corpus", &[]).await?;
    let dc = Dovecot::start(&d.dir).await?;
    let url = Url::parse(&dc.url())?;
    let corpus = corpus(31);
    let mut imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    for name in CORPUS_MAILBOXES {
        imap.create(name).await?;
    }
    for m in &corpus {
        imap.append(
            m.mailbox,
            &Flags::parse(m.flags.iter().copied()),
            Some(m.date),
            &m.bytes,
        )
        .await?;
    }
    imap.logout().await?;

    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(
            &d.gateway.grpc_url,
            &d.token,
            &[SourceSpec::alice("mail", "imap", &dc.url(), "1s")],
        ),
    )?;

    // Every mailbox, by the name users see, holds exactly its messages: the same
    // bytes, the same flags.
    for name in std::iter::once(&"INBOX").chain(CORPUS_MAILBOXES) {
        let id = mailbox(&d, name).await?;
        let mut want: Vec<(Vec<u8>, Flags)> = corpus
            .iter()
            .filter(|m| m.mailbox == *name)
            .map(|m| (m.bytes.clone(), Flags::parse(m.flags.iter().copied())))
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let mut got: Vec<(Vec<u8>, Flags)> = wait_until(
            &format!("{name} imported"),
            Duration::from_secs(120),
            || async {
                let h = held(&d, id).await?;
                Ok((h.len() == want.len()).then_some(h))
            },
        )
        .await?
        .into_iter()
        .map(|(_, f, b)| (b, Flags::parse(f.iter().map(String::as_str))))
        .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(
            got == want,
            "{name}: the gateway's messages differ from Dovecot's"
        );
    }

    // Internal dates are the ones given at APPEND.
    for m in &corpus {
        let want = chrono::DateTime::parse_from_str(m.date, "%d-%b-%Y %H:%M:%S %z")?.timestamp();
        let rows = d
            .query(&format!(
                "SELECT EXTRACT(EPOCH FROM i.internal_date)::bigint FROM items i
                 JOIN collections c ON c.id = i.collection_id
                 WHERE c.display_name = '{}' AND i.size = {} AND NOT i.deleted",
                m.mailbox,
                m.bytes.len()
            ))
            .await?;
        let dates: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        assert!(
            dates.contains(&want),
            "{}: internal date {} not among {dates:?}",
            m.mailbox,
            m.date
        );
    }

    // One body per content: the message filed twice is stored once.
    let distinct: BTreeSet<&[u8]> = corpus.iter().map(|m| m.bytes.as_slice()).collect();
    let stored: i64 = d.query("SELECT count(*) FROM message_bodies").await?[0].get(0);
    assert_eq!(stored as usize, distinct.len());

    // The hierarchy as the back end has it: its delimiter, and the parent mailbox.
    let rows = d
        .query("SELECT display_name, COALESCE(delimiter, '') FROM collections WHERE display_name LIKE 'Projects%'")
        .await?;
    let names: BTreeSet<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for n in ["Projects", "Projects/2026", "Projects/2026/Q1"] {
        assert!(
            names.contains(&(n.to_string(), "/".to_string())),
            "{n} with delimiter / in {names:?}"
        );
    }

    // Flagging the 31 MB message on the server moves no body.
    let archive = mailbox(&d, "Archive").await?;
    let before = body_bytes(&d, "to_gateway").await?;
    let mut imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    imap.enable_modseq().await?;
    imap.select("Archive", None).await?;
    let uid = imap.fetch_meta("1:*", None).await?[0].uid;
    imap.store(uid, &Flags::parse(["\\Flagged"]), &Flags::default(), 0)
        .await?;
    imap.logout().await?;
    let flagged = Flag::new("\\Flagged").unwrap();
    wait_until(
        "the flag on the gateway",
        Duration::from_secs(30),
        || async {
            let h = held(&d, archive).await?;
            Ok(h.first()
                .filter(|(_, f, _)| Flags::parse(f.iter().map(String::as_str)).has(&flagged))
                .map(|_| ()))
        },
    )
    .await?;
    assert_eq!(body_bytes(&d, "to_gateway").await?, before);
    Ok(())
}
