//! A connector pointed at a real Dovecot when things go wrong or differ: a renumbered
//! mailbox, a server without CONDSTORE/QRESYNC, an emptied mailbox, a kill -9, a lost
//! acknowledgement; and the mirror and merge modes.

use std::time::Duration;

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::Flags;
use postern_e2e::backends::Dovecot;
use postern_e2e::mail::{
    Scenario, bodies, connector, connector_with, dovecot_flags, held, imported, item_of, message,
};
use postern_e2e::{Deployment, SourceSpec, wait_until};
use url::Url;

#[tokio::test(flavor = "multi_thread")]
async fn a_mailbox_the_server_renumbered_is_rekeyed_without_duplicates_or_deletions() -> Result<()>
{
    let Scenario {
        mut d,
        dc,
        mut imap,
        ..
    } = Scenario::start("imap-uidvalidity").await?;
    imap.enable_modseq().await?;
    imap.create("Projects").await?;
    for n in 1..=3 {
        let flags = if n == 2 {
            Flags::parse(["\\Flagged"])
        } else {
            Flags::default()
        };
        imap.append("Projects", &flags, None, &message(n)).await?;
    }
    let conn = connector(&d, &dc)?;
    let projects = d.collection("/Projects").await?;
    let before = wait_until("Projects imported", Duration::from_secs(30), || async {
        let h = held(&d, projects).await?;
        Ok((h.len() == 3).then_some(h))
    })
    .await?;
    let old_v = imap.select("Projects", None).await?.uidvalidity;
    let stored = bodies(&d).await?;
    // A mail client's cache of the mailbox, through the gateway's IMAP endpoint.
    let pw = postern_e2e::last_line(&postern_e2e::admin(
        &d.db,
        &["user", "rotate", "--tenant", "acme", "alice"],
    )?);
    let cache = client_view(d.gateway.imap_port, &pw, None).await?;

    // The mailbox is made again with the same messages: a new UIDVALIDITY, new UIDs.
    drop(conn);
    imap.create("Old").await?;
    let uids: Vec<u32> = imap
        .fetch_meta("1:*", None)
        .await?
        .iter()
        .map(|m| m.uid)
        .collect();
    for uid in &uids {
        imap.move_to(*uid, "Old").await?;
    }
    // (A selected mailbox cannot be deleted: select another first.)
    imap.select("Old", None).await?;
    imap.delete("Projects").await?;
    imap.create("Projects").await?;
    let uids: Vec<u32> = imap
        .fetch_meta("1:*", None)
        .await?
        .iter()
        .map(|m| m.uid)
        .collect();
    for uid in &uids {
        imap.move_to(*uid, "Projects").await?;
    }
    imap.select("Projects", None).await?;
    imap.delete("Old").await?;
    let new_v = imap.select("Projects", None).await?.uidvalidity;
    assert_ne!(new_v, old_v, "Dovecot renumbered the mailbox");

    let _conn = connector(&d, &dc)?;
    wait_until("the index re-keyed", Duration::from_secs(30), || async {
        let rows = d
            .query(&format!(
                "SELECT count(*) FROM items WHERE collection_id = '{projects}' AND NOT deleted
                 AND backend_version LIKE 'imap:{new_v}/%'"
            ))
            .await?;
        Ok((rows[0].get::<_, i64>(0) == 3).then_some(()))
    })
    .await?;
    // The same messages, the same gateway UIDs, the same flags; nothing deleted,
    // nothing imported again.
    let after = held(&d, projects).await?;
    assert_eq!(
        after
            .iter()
            .map(|(u, f, b)| (*u, f.clone(), b.clone()))
            .collect::<Vec<_>>(),
        before
    );
    let deleted: i64 = d
        .query(&format!(
            "SELECT count(*) FROM items WHERE collection_id = '{projects}' AND deleted"
        ))
        .await?[0]
        .get(0);
    assert_eq!(deleted, 0);
    assert_eq!(bodies(&d).await?, stored);

    // The client's cache stays valid: same UIDVALIDITY, same UIDs for the same
    // messages, and a QRESYNC from its state finds nothing vanished or changed; also
    // after the gateway restarts.
    let after_reset = client_view(d.gateway.imap_port, &pw, Some(&cache)).await?;
    assert_eq!(
        after_reset, cache,
        "the back end's renumbering never reaches clients"
    );
    let grpc: u16 = d
        .gateway
        .grpc_url
        .rsplit(':')
        .next()
        .unwrap_or("0")
        .parse()?;
    let http = d.gateway.http_port;
    d.gateway.proc.kill9();
    d.gateway = postern_e2e::Gateway::start_on(&d.db, &d.dir, &[], grpc, http).await?;
    let after_restart = client_view(d.gateway.imap_port, &pw, Some(&cache)).await?;
    assert_eq!(after_restart, cache, "nor does a gateway restart");
    imap.logout().await?;
    Ok(())
}

/// What a mail client keeps of a mailbox: UIDVALIDITY, HIGHESTMODSEQ, and each
/// UID's Message-ID.
type ClientCache = (String, String, Vec<(String, Vec<u8>)>);

/// What a mail client keeps of Projects through the gateway. With `since`, it
/// resynchronises from that state with QRESYNC and checks that nothing vanished or
/// changed.
async fn client_view(port: u16, pw: &str, since: Option<&ClientCache>) -> Result<ClientCache> {
    use postern_e2e::imaplib::{lines, run};
    use serde_json::json;
    let select = match since {
        Some((v, m, _)) => json!({"raw": format!("SELECT Projects (QRESYNC ({v} {m}))")}),
        None => json!({"call": "select", "args": ["Projects"]}),
    };
    let r = run(
        port,
        json!([
            {"login": ["alice@acme", pw]},
            {"raw": "ENABLE QRESYNC"},
            select,
            {"raw": "STATUS Projects (UIDVALIDITY HIGHESTMODSEQ)"},
            {"raw": "UID FETCH 1:* (UID ENVELOPE)"},
        ]),
    )
    .await?;
    if since.is_some() {
        let answer = lines(&r[2]).join("");
        anyhow::ensure!(
            !answer.contains("VANISHED") && !answer.contains("FETCH"),
            "a resync from the cached state finds changes: {answer}"
        );
    }
    let status = lines(&r[3]).join(" ");
    let field = |name: &str| {
        status
            .split(name)
            .nth(1)
            .and_then(|rest| rest.split([' ', ')']).find(|w| !w.is_empty()))
            .unwrap_or_default()
            .to_string()
    };
    // Each message's UID and Message-ID (the envelope's last field).
    let messages: Vec<(String, Vec<u8>)> = lines(&r[4])
        .iter()
        .filter(|l| l.starts_with("* "))
        .filter_map(|l| {
            let uid = l.split("UID ").nth(1)?.split(' ').next()?.to_string();
            let start = l.rfind('<')?;
            let end = l[start..].find('>')? + start + 1;
            Some((uid, l.as_bytes()[start..end].to_vec()))
        })
        .collect();
    anyhow::ensure!(messages.len() == 3, "{:?}", r[4]);
    Ok((field("UIDVALIDITY"), field("HIGHESTMODSEQ"), messages))
}

/// A server without CONDSTORE or QRESYNC (as Microsoft 365 and Yahoo are): every
/// round lists the mailbox's flags, and expunges are found by difference.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_condstore_or_qresync_still_syncs() -> Result<()> {
    let d = Deployment::start("imap-plain-server", &[]).await?;
    let dc = Dovecot::start_with(
        &d.dir,
        "imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 MOVE SPECIAL-USE",
    )
    .await?;
    let scenario = Scenario::with(d, dc).await?;
    assert!(
        !scenario.imap.has("CONDSTORE") && !scenario.imap.has("QRESYNC"),
        "{:?}",
        scenario.imap.capabilities
    );
    flags_both_ways_and_an_expunge_converge(scenario).await?;
    Ok(())
}

/// Three messages imported; a flag set on the server and another on the gateway reach
/// the other side; an expunge on the server reaches the gateway; no body moves again.
/// The gateway and the mailbox's id, for more checks.
async fn flags_both_ways_and_an_expunge_converge(
    scenario: Scenario,
) -> Result<(Deployment, uuid::Uuid)> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = scenario;
    let mut uids = Vec::new();
    for n in 1..=3 {
        uids.push(
            imap.append("INBOX", &Flags::default(), None, &message(n))
                .await?
                .unwrap()
                .1,
        );
    }
    let _conn = connector(&d, &dc)?;
    let inbox = imported(&d, "/INBOX", 3).await?;
    let stored = bodies(&d).await?;

    // Flags both ways, found by listing.
    imap.select("INBOX", None).await?;
    imap.store(uids[0], &Flags::parse(["\\Flagged"]), &Flags::default(), 0)
        .await?;
    let two = item_of(&d, inbox, &message(2)).await?;
    d.store
        .set_message_flags(d.tenant, inbox, two, &["\\Seen".into()])
        .await?;
    wait_until(
        "the flag on the gateway",
        Duration::from_secs(30),
        || async {
            let h = held(&d, inbox).await?;
            Ok(h.iter()
                .any(|(_, f, b)| b == &message(1) && f.contains(&"\\Flagged".to_string()))
                .then_some(()))
        },
    )
    .await?;
    let uid2 = uids[1];
    wait_until(
        "the flag on the server",
        Duration::from_secs(30),
        || async {
            Ok((dovecot_flags(&url, uid2).await? == Flags::parse(["\\Seen"])).then_some(()))
        },
    )
    .await?;

    // An expunge, found by difference.
    imap.select("INBOX", None).await?;
    imap.expunge(uids[2]).await?;
    wait_until(
        "the expunge on the gateway",
        Duration::from_secs(30),
        || async { Ok((held(&d, inbox).await?.len() == 2).then_some(())) },
    )
    .await?;
    assert_eq!(bodies(&d).await?, stored, "no body moved again");
    imap.logout().await?;
    Ok((d, inbox))
}

/// Emptying Trash is normal and reaches the gateway; an INBOX that suddenly reads
/// empty pauses instead of wiping the gateway's copy.
#[tokio::test(flavor = "multi_thread")]
async fn emptying_trash_syncs_and_an_inbox_that_reads_empty_pauses() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-guard").await?;
    imap.enable_modseq().await?;
    let (mut trash, mut inbox_uids) = (Vec::new(), Vec::new());
    for n in 1..=10 {
        trash.push(
            imap.append("Trash", &Flags::default(), None, &message(n))
                .await?
                .unwrap()
                .1,
        );
        inbox_uids.push(
            imap.append("INBOX", &Flags::default(), None, &message(20 + n))
                .await?
                .unwrap()
                .1,
        );
    }
    let _conn = connector(&d, &dc)?;
    let (t, i) = (d.collection("/Trash").await?, d.collection("/INBOX").await?);
    // Roles and the delimiter come with discovery and are kept (admin status shows
    // the role).
    let meta = d
        .query(&format!(
            "SELECT role, delimiter, mailbox_name FROM collections WHERE id IN ('{t}', '{i}') ORDER BY role"
        ))
        .await?;
    let meta: Vec<(Option<String>, Option<String>, Option<String>)> = meta
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        meta,
        vec![
            (Some("inbox".into()), Some("/".into()), Some("INBOX".into())),
            (Some("trash".into()), Some("/".into()), Some("Trash".into())),
        ]
    );
    let status = postern_e2e::admin(&d.db, &["status"])?;
    assert!(status.contains("Trash (trash)"), "{status}");
    wait_until("both imported", Duration::from_secs(30), || async {
        Ok((held(&d, t).await?.len() == 10 && held(&d, i).await?.len() == 10).then_some(()))
    })
    .await?;

    imap.select("Trash", None).await?;
    for uid in &trash {
        imap.expunge(*uid).await?;
    }
    imap.select("INBOX", None).await?;
    for uid in &inbox_uids {
        imap.expunge(*uid).await?;
    }
    wait_until(
        "Trash emptied on the gateway",
        Duration::from_secs(30),
        || async { Ok(held(&d, t).await?.is_empty().then_some(())) },
    )
    .await?;
    let reason = wait_until("INBOX paused", Duration::from_secs(30), || async {
        let c = d.store.collection(d.tenant, i).await?;
        Ok(c.paused_reason)
    })
    .await?;
    assert!(reason.contains("mass deletion"), "{reason}");
    assert_eq!(held(&d, i).await?.len(), 10, "the gateway keeps its copy");
    imap.logout().await?;
    Ok(())
}

/// kill -9 of the connector in the middle of an import: the next one takes up where
/// it stopped, and every message is on the gateway once.
#[tokio::test(flavor = "multi_thread")]
async fn an_import_cut_by_kill_9_converges_without_duplicates() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-kill").await?;
    imap.create("Big").await?;
    // Large enough that the import takes a while: 150 messages of 200 KB.
    let pad = "x".repeat(200 << 10);
    let big = |n: u32| {
        let mut m = message(n);
        m.extend_from_slice(pad.as_bytes());
        m
    };
    for n in 0..150 {
        imap.append("Big", &Flags::default(), None, &big(n)).await?;
    }
    let mut conn = connector(&d, &dc)?;
    let bigbox = d.collection("/Big").await?;
    let partial = wait_until("part of the import", Duration::from_secs(60), || async {
        let n = held(&d, bigbox).await?.len();
        Ok((n >= 20).then_some(n))
    })
    .await?;
    conn.proc.kill9();
    assert!(
        partial < 150,
        "the import was cut: {partial} of 150 before the kill"
    );
    let _conn = connector(&d, &dc)?;
    let all = wait_until("the whole import", Duration::from_secs(60), || async {
        let h = held(&d, bigbox).await?;
        Ok((h.len() >= 150).then_some(h))
    })
    .await?;
    assert_eq!(all.len(), 150, "no duplicates (killed at {partial})");
    let mut bodies: Vec<&Vec<u8>> = all.iter().map(|(_, _, b)| b).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 150, "each message once");
    imap.logout().await?;
    Ok(())
}

/// The window a kill -9 can leave between APPEND and its acknowledgement: the
/// server already holds the client's message, the gateway still has the append
/// pending. The next round finds the copy by content and records it: one copy on the
/// server, never two.
#[tokio::test(flavor = "multi_thread")]
async fn an_append_whose_acknowledgement_was_lost_is_found_not_repeated() -> Result<()> {
    let d = Deployment::start("imap-append-crash", &[]).await?;
    let dc = Dovecot::start(&d.dir).await?;
    let url = Url::parse(&dc.url())?;
    let conn = connector(&d, &dc)?;
    let drafts = d.collection("/Drafts").await?;
    wait_until("drafts synced", Duration::from_secs(30), || async {
        let rows = d
            .query(&format!(
                "SELECT backend_state FROM collections WHERE id = '{drafts}'"
            ))
            .await?;
        Ok((!rows[0].get::<_, String>(0).is_empty()).then_some(()))
    })
    .await?;
    drop(conn);

    // What the crash leaves: the draft pending on the gateway and already on the server.
    let draft = message(77);
    let (item, _) = d
        .store
        .append_message(d.tenant, drafts, &draft, &["\\Draft".into()])
        .await?;
    let mut imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    imap.append("Drafts", &Flags::parse(["\\Draft"]), None, &draft)
        .await?;

    let _conn = connector(&d, &dc)?;
    wait_until("the append settled", Duration::from_secs(30), || async {
        let rows = d
            .query(&format!(
                "SELECT count(*) FROM items WHERE id = '{item}' AND pending_seq IS NULL AND backend_href IS NOT NULL"
            ))
            .await?;
        Ok((rows[0].get::<_, i64>(0) == 1).then_some(()))
    })
    .await?;
    let n = imap.select("Drafts", None).await?.exists;
    assert_eq!(n, 1, "one copy on the server");
    assert_eq!(held(&d, drafts).await?.len(), 1, "one copy on the gateway");
    imap.logout().await?;
    Ok(())
}

/// `mirror`: the gateway is a copy of the server; a client's flag change there is
/// reverted and never reaches the server.
#[tokio::test(flavor = "multi_thread")]
async fn mirror_mode_reverts_a_gateway_flag_change() -> Result<()> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = Scenario::start("imap-mirror").await?;
    let (_, uid) = imap
        .append("INBOX", &Flags::parse(["\\Seen"]), None, &message(1))
        .await?
        .unwrap();
    let mut src = SourceSpec::alice("mail", "imap", &dc.url(), "1s");
    src.mode = "mirror".into();
    let _conn = connector_with(&d, &dc, src)?;
    let inbox = imported(&d, "/INBOX", 1).await?;
    let item = item_of(&d, inbox, &message(1)).await?;
    d.store
        .set_message_flags(d.tenant, inbox, item, &["\\Flagged".into()])
        .await?;
    wait_until(
        "the change reverted and settled",
        Duration::from_secs(30),
        || async {
            let rows = d
                .query(&format!(
                    "SELECT flags, pending_seq IS NULL FROM items WHERE id = '{item}'"
                ))
                .await?;
            let (flags, settled): (Vec<String>, bool) = (rows[0].get(0), rows[0].get(1));
            Ok((settled && flags == vec!["\\Seen".to_string()]).then_some(()))
        },
    )
    .await?;
    assert_eq!(
        dovecot_flags(&url, uid).await?,
        Flags::parse(["\\Seen"]),
        "the server untouched"
    );

    // A client's new message is reverted too, never lost: kept as a conflict loser,
    // byte for byte; resolving it for the loser brings it back.
    let mut draft = b"Subject: draft\r\nMessage-ID: <mirror@corp.example>\r\n\r\n".to_vec();
    draft.extend_from_slice("caf\u{e9} 8-bit\r\n".as_bytes());
    let (kept, _) = d.store.append_message(d.tenant, inbox, &draft, &[]).await?;
    wait_until(
        "the new message reverted",
        Duration::from_secs(30),
        || async {
            let rows = d
                .query(&format!(
                    "SELECT deleted AND pending_seq IS NULL FROM items WHERE id = '{kept}'"
                ))
                .await?;
            Ok(rows[0].get::<_, bool>(0).then_some(()))
        },
    )
    .await?;
    let rows = d
        .query(&format!(
            "SELECT id, loser_content, policy FROM conflicts WHERE item_id = '{kept}'"
        ))
        .await?;
    assert_eq!(rows.len(), 1, "kept once");
    let (conflict, loser, policy): (uuid::Uuid, Vec<u8>, String) =
        (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert!(loser == draft, "the message kept byte for byte");
    assert_eq!(policy, "mirror");
    let listed = postern_e2e::admin(&d.db, &["conflicts", "--json"])?;
    assert!(listed.contains(&conflict.to_string()), "{listed}");
    let mut c = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    assert_eq!(
        c.select("INBOX", None).await?.exists,
        1,
        "never on the server"
    );
    c.logout().await?;
    // Messages of the mailbox with these bytes (the reverted one stays, deleted).
    let with_bytes = || async {
        Ok::<i64, anyhow::Error>(
            d.query(&format!(
                "SELECT count(*) FROM items i JOIN message_bodies b ON b.sha256 = i.body_sha256
                  WHERE i.collection_id = '{inbox}' AND b.body = '\\x{}'::bytea",
                hex::encode(&draft)
            ))
            .await?[0]
                .get(0),
        )
    };
    assert_eq!(with_bytes().await?, 1);
    postern_e2e::admin(
        &d.db,
        &[
            "conflicts",
            "resolve",
            &conflict.to_string(),
            "--keep",
            "loser",
        ],
    )?;
    assert_eq!(
        with_bytes().await?,
        2,
        "the loser is a message of the mailbox again"
    );
    imap.logout().await?;
    Ok(())
}

/// `merge`: the server's changes come in, its expunges do not remove the gateway's
/// copy, and a client's flag change stays on the gateway.
#[tokio::test(flavor = "multi_thread")]
async fn merge_mode_keeps_gateway_changes_and_copies() -> Result<()> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = Scenario::start("imap-merge-mode").await?;
    let (_, one) = imap
        .append("INBOX", &Flags::default(), None, &message(1))
        .await?
        .unwrap();
    let (_, two) = imap
        .append("INBOX", &Flags::default(), None, &message(2))
        .await?
        .unwrap();
    let mut src = SourceSpec::alice("mail", "imap", &dc.url(), "1s");
    src.mode = "merge".into();
    let _conn = connector_with(&d, &dc, src)?;
    let inbox = imported(&d, "/INBOX", 2).await?;
    // A client flags message 1 on the gateway; the server expunges message 2 and
    // marks message 1 read.
    let item = item_of(&d, inbox, &message(1)).await?;
    d.store
        .set_message_flags(d.tenant, inbox, item, &["\\Flagged".into()])
        .await?;
    imap.select("INBOX", None).await?;
    imap.expunge(two).await?;
    imap.store(one, &Flags::parse(["\\Seen"]), &Flags::default(), 0)
        .await?;
    let want = Flags::parse(["\\Flagged", "\\Seen"]);
    wait_until(
        "the server's change merged in",
        Duration::from_secs(30),
        || async {
            let h = held(&d, inbox).await?;
            Ok(h.iter()
                .find(|(_, _, b)| b == &message(1))
                .filter(|(_, f, _)| Flags::parse(f.iter().map(String::as_str)) == want)
                .map(|_| ()))
        },
    )
    .await?;
    assert_eq!(
        held(&d, inbox).await?.len(),
        2,
        "the expunged message stays on the gateway"
    );
    // The base of the next merge is what the server holds, not the gateway's flags.
    let base: Vec<String> = d
        .query(&format!("SELECT base_flags FROM items WHERE id = '{item}'"))
        .await?[0]
        .get(0);
    assert_eq!(base, vec!["\\Seen".to_string()]);
    assert_eq!(
        dovecot_flags(&url, one).await?,
        Flags::parse(["\\Seen"]),
        "nothing written to the server"
    );
    // The server later answers message 1: the gateway's own \Flagged stays (the
    // index carries the gateway's flags beside the base).
    imap.store(one, &Flags::parse(["\\Answered"]), &Flags::default(), 0)
        .await?;
    let want = Flags::parse(["\\Flagged", "\\Seen", "\\Answered"]);
    wait_until(
        "the server's second change merged in",
        Duration::from_secs(30),
        || async {
            let h = held(&d, inbox).await?;
            let now = h
                .iter()
                .find(|(_, _, b)| b == &message(1))
                .map(|(_, f, _)| Flags::parse(f.iter().map(String::as_str)));
            Ok(now.filter(|f| f.has(&postern_core::mail::Flag::new("\\Answered").unwrap())))
        },
    )
    .await
    .map(|f| assert_eq!(f, want, "a gateway-only flag survives the server's change"))?;
    imap.logout().await?;
    Ok(())
}

/// A full listing larger than the connector's window (a server without QRESYNC lists
/// every round) is read and planned a window at a time: flags and expunges on both
/// sides, in both windows, converge, and no body moves again.
#[tokio::test(flavor = "multi_thread")]
async fn a_listing_larger_than_a_window_syncs_window_by_window() -> Result<()> {
    let d = Deployment::start("imap-windows", &[]).await?;
    let dc = Dovecot::start_with(
        &d.dir,
        "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UNSELECT CHILDREN NAMESPACE UIDPLUS MOVE SPECIAL-USE",
    )
    .await?;
    let url = Url::parse(&dc.url())?;
    let mut imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    let n = 5_300u32;
    for i in 1..=n {
        imap.append("INBOX", &Flags::default(), None, &message(i))
            .await?;
    }
    let _conn = connector(&d, &dc)?;
    let inbox = d.collection("/INBOX").await?;
    wait_until("INBOX imported", Duration::from_secs(120), || async {
        Ok((live(&d, inbox).await? == i64::from(n)).then_some(()))
    })
    .await?;
    let stored = bodies(&d).await?;
    // On the server: a flag and an expunge in each window.
    imap.select("INBOX", None).await?;
    for uid in [10, 5_200] {
        imap.store(uid, &Flags::parse(["\\Flagged"]), &Flags::default(), 0)
            .await?;
    }
    for uid in [20, 5_250] {
        imap.expunge(uid).await?;
    }
    // On the gateway: a flag in each window.
    for (uid, flag) in [(100, "\\Answered"), (5_100, "\\Seen")] {
        let (item, _) = on_gateway(&d, inbox, uid).await?.expect("imported");
        d.store
            .set_message_flags(d.tenant, inbox, item, &[flag.to_string()])
            .await?;
    }

    wait_until(
        "both windows on the gateway",
        Duration::from_secs(60),
        || async {
            let flagged = [
                on_gateway(&d, inbox, 10).await?,
                on_gateway(&d, inbox, 5_200).await?,
            ]
            .iter()
            .all(|m| {
                m.as_ref()
                    .is_some_and(|(_, f)| f.contains(&"\\Flagged".to_string()))
            });
            let gone = on_gateway(&d, inbox, 20).await?.is_none()
                && on_gateway(&d, inbox, 5_250).await?.is_none();
            Ok((flagged && gone && live(&d, inbox).await? == i64::from(n) - 2).then_some(()))
        },
    )
    .await?;
    wait_until(
        "both windows on the server",
        Duration::from_secs(60),
        || async {
            Ok(
                (dovecot_flags(&url, 100).await? == Flags::parse(["\\Answered"])
                    && dovecot_flags(&url, 5_100).await? == Flags::parse(["\\Seen"]))
                .then_some(()),
            )
        },
    )
    .await?;
    assert_eq!(bodies(&d).await?, stored, "no body moved again");
    imap.logout().await?;
    Ok(())
}

/// Live messages of a mailbox on the gateway.
async fn live(d: &Deployment, inbox: uuid::Uuid) -> Result<i64> {
    Ok(d.query(&format!(
        "SELECT count(*) FROM items WHERE collection_id = '{inbox}' AND NOT deleted"
    ))
    .await?[0]
        .get(0))
}

/// The gateway item of server UID `uid`, and its flags.
async fn on_gateway(
    d: &Deployment,
    inbox: uuid::Uuid,
    uid: u32,
) -> Result<Option<(uuid::Uuid, Vec<String>)>> {
    let rows = d
        .query(&format!(
            "SELECT id, flags FROM items WHERE collection_id = '{inbox}' AND NOT deleted
               AND backend_href LIKE '%/{uid}'"
        ))
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// A server with CONDSTORE but no QRESYNC: a round asks what changed since the saved
/// MODSEQ (CHANGEDSINCE) and finds what vanished by comparing every UID with what the
/// gateway knows. Flags both ways and an expunge converge; no body moves again.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_condstore_but_no_qresync_syncs_by_changedsince() -> Result<()> {
    let d = Deployment::start("imap-condstore", &[]).await?;
    let dc = Dovecot::start_with(
        &d.dir,
        "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UNSELECT CHILDREN NAMESPACE UIDPLUS MOVE SPECIAL-USE CONDSTORE",
    )
    .await?;
    let scenario = Scenario::with(d, dc).await?;
    assert!(
        scenario.imap.has("CONDSTORE") && !scenario.imap.has("QRESYNC"),
        "{:?}",
        scenario.imap.capabilities
    );
    let (d, inbox) = flags_both_ways_and_an_expunge_converge(scenario).await?;
    let state: String = d
        .query(&format!(
            "SELECT backend_state FROM collections WHERE id = '{inbox}'"
        ))
        .await?[0]
        .get(0);
    assert!(!state.is_empty(), "a MODSEQ to resume from is saved");
    Ok(())
}
