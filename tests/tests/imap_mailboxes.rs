//! Mailboxes made and removed on either side: a client's new mailbox (nested, with a
//! non-ASCII name) is created on Dovecot and takes messages; a client's deleted
//! mailbox is deleted there and does not come back; a mailbox renamed or deleted on
//! the server is renamed or gone on the gateway, without its messages' bodies being
//! stored twice.

use std::time::Duration;

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::Flags;
use postern_e2e::mail::{Scenario, body_bytes, connector, held, mailbox, message};
use postern_e2e::{Deployment, wait_until};
use url::Url;

/// The mailbox names Dovecot lists.
async fn listed(url: &Url) -> Result<Vec<String>> {
    let mut c = ImapClient::connect(url, "alice", "alicepw", false).await?;
    let names = c.list().await?.into_iter().map(|m| m.name).collect();
    c.logout().await?;
    Ok(names)
}

/// The live mailboxes on the gateway, by name.
async fn on_gateway(d: &Deployment) -> Result<Vec<String>> {
    Ok(d.query(
        "SELECT display_name FROM collections WHERE kind = 'mailbox' AND NOT delete_pending",
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn mailboxes_made_and_removed_on_the_gateway_follow_on_the_server() -> Result<()> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = Scenario::start("imap-mailboxes-gateway").await?;
    imap.create("Old").await?;
    imap.append("Old", &Flags::default(), None, &message(1))
        .await?;
    imap.logout().await?;
    let _conn = connector(&d, &dc)?;
    let old = mailbox(&d, "Old").await?;
    wait_until("Old imported", Duration::from_secs(30), || async {
        Ok((held(&d, old).await?.len() == 1).then_some(()))
    })
    .await?;

    // A client creates a nested mailbox with a non-ASCII name, and files a message.
    let user: uuid::Uuid = d.query("SELECT id FROM users WHERE name = 'alice'").await?[0].get(0);
    let name = "Projekte/Übersicht 2026";
    d.store.create_mailbox(d.tenant, user, "Projekte").await?;
    let made = d
        .store
        .create_mailbox(d.tenant, user, name)
        .await?
        .expect("alice has a two-way mail source");
    assert!(
        d.store.create_mailbox(d.tenant, user, name).await.is_err(),
        "a name in use is refused"
    );
    wait_until(
        "the mailbox on the server",
        Duration::from_secs(30),
        || async { Ok(listed(&url).await?.iter().any(|n| n == name).then_some(())) },
    )
    .await?;
    d.store
        .append_message(d.tenant, made, &message(2), &["\\Seen".into()])
        .await?;
    wait_until(
        "the message on the server",
        Duration::from_secs(30),
        || async {
            let mut c = ImapClient::connect(&url, "alice", "alicepw", false).await?;
            let sel = c.select(name, None).await?;
            c.logout().await?;
            Ok((sel.exists == 1).then_some(()))
        },
    )
    .await?;
    // One mailbox of that name on the gateway: the server's listing found the one the
    // client made.
    assert_eq!(
        on_gateway(&d).await?.iter().filter(|n| *n == name).count(),
        1
    );

    // A client renames it: renamed on the server with its message, the same mailbox
    // on the gateway (same id, same messages), listed once.
    let renamed = "Projekte/Archiv 2026";
    d.store.rename_mailbox(d.tenant, made, renamed).await?;
    wait_until(
        "the rename on the server",
        Duration::from_secs(30),
        || async {
            let names = listed(&url).await?;
            Ok(
                (names.iter().any(|n| n == renamed) && !names.iter().any(|n| n == name))
                    .then_some(()),
            )
        },
    )
    .await?;
    let mut c = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    assert_eq!(
        c.select(renamed, None).await?.exists,
        1,
        "its message moved with it"
    );
    c.logout().await?;
    wait_until("bound to its new name", Duration::from_secs(30), || async {
        let rows = d
            .query(&format!(
                "SELECT rename_to IS NULL AND backend_href NOT LIKE 'pending:%' FROM collections WHERE id = '{made}'"
            ))
            .await?;
        Ok(rows[0].get::<_, bool>(0).then_some(()))
    })
    .await?;
    // Two more discoveries: still one mailbox of that name, still holding its message.
    let at = postern_e2e::mail::round_at(&d, made).await?;
    wait_until("later rounds", Duration::from_secs(30), || async {
        Ok((postern_e2e::mail::round_at(&d, made).await? > at + 1.0).then_some(()))
    })
    .await?;
    let names = on_gateway(&d).await?;
    assert_eq!(
        names.iter().filter(|n| *n == renamed).count(),
        1,
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == name), "{names:?}");
    assert_eq!(held(&d, made).await?.len(), 1);

    // A client deletes "Old" (and its message): gone on the server, and it stays gone.
    d.store.delete_dav_collection(d.tenant, old).await?;
    wait_until(
        "Old deleted on the server",
        Duration::from_secs(30),
        || async { Ok((!listed(&url).await?.iter().any(|n| n == "Old")).then_some(())) },
    )
    .await?;
    wait_until(
        "Old gone from the gateway",
        Duration::from_secs(30),
        || async {
            let rows = d
                .query(&format!(
                    "SELECT count(*) FROM collections WHERE id = '{old}'"
                ))
                .await?;
            Ok((rows[0].get::<_, i64>(0) == 0).then_some(()))
        },
    )
    .await?;
    assert!(!on_gateway(&d).await?.iter().any(|n| n == "Old"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn mailboxes_renamed_or_deleted_on_the_server_follow_on_the_gateway() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-mailboxes-server").await?;
    for (mb, n) in [("Reports", 1), ("Scratch", 2)] {
        imap.create(mb).await?;
        imap.append(mb, &Flags::default(), None, &message(n))
            .await?;
    }
    let _conn = connector(&d, &dc)?;
    for mb in ["Reports", "Scratch"] {
        let id = mailbox(&d, mb).await?;
        wait_until(
            &format!("{mb} imported"),
            Duration::from_secs(30),
            || async { Ok((held(&d, id).await?.len() == 1).then_some(())) },
        )
        .await?;
    }
    let bodies: i64 = d.query("SELECT count(*) FROM message_bodies").await?[0].get(0);
    let sent = body_bytes(&d, "to_gateway").await?;

    imap.rename("Reports", "Reports 2026").await?;
    imap.delete("Scratch").await?;
    let renamed = mailbox(&d, "Reports 2026").await?;
    wait_until(
        "the renamed mailbox's message",
        Duration::from_secs(30),
        || async { Ok((held(&d, renamed).await?.len() == 1).then_some(())) },
    )
    .await?;
    assert_eq!(held(&d, renamed).await?[0].2, message(1));
    wait_until("the old names gone", Duration::from_secs(30), || async {
        let names = on_gateway(&d).await?;
        Ok((!names.iter().any(|n| n == "Reports" || n == "Scratch")).then_some(()))
    })
    .await?;
    let after: i64 = d.query("SELECT count(*) FROM message_bodies").await?[0].get(0);
    assert_eq!(after, bodies, "no body stored twice");
    assert_eq!(
        body_bytes(&d, "to_gateway").await?,
        sent,
        "no body sent twice"
    );
    imap.logout().await?;
    Ok(())
}
