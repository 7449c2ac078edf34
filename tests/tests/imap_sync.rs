//! A connector pointed at a real Dovecot: its mailboxes and messages reach the
//! gateway, flag changes, expunges and appends follow both ways without moving bodies
//! needlessly, and large messages, IDLE and moves work.

use std::time::Duration;

use anyhow::Result;
use postern_connector::backends::imap::client::ImapClient;
use postern_core::mail::Flags;
use postern_e2e::backends::Dovecot;
use postern_e2e::mail::{
    Scenario, bodies, body_bytes, connector, connector_with, dovecot_flags, dovecot_messages, held,
    imported, item_of, message, round_at,
};
use postern_e2e::{Deployment, SourceSpec, wait_until};
use url::Url;

#[tokio::test(flavor = "multi_thread")]
async fn mailboxes_import_and_flags_and_expunges_follow_without_bodies() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-sync").await?;
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
    // More than one batch of bodies (the connector fetches and pushes 20 at a time).
    imap.create("Bulk").await?;
    for n in 100..145 {
        imap.append("Bulk", &Flags::default(), None, &message(n))
            .await?;
    }

    let mut src = SourceSpec::alice("mail", "imap", &dc.url(), "1s");
    src.conflict = "merge".into();
    let _conn = connector_with(&d, &dc, src)?;

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
    let bulk = d.collection("/Bulk").await?;
    let all = wait_until("Bulk imported", Duration::from_secs(30), || async {
        let h = held(&d, bulk).await?;
        Ok((h.len() == 45).then_some(h))
    })
    .await?;
    assert_eq!(
        all.iter().map(|m| m.0).collect::<Vec<_>>(),
        (1..=45).collect::<Vec<i64>>(),
        "every message once, gateway UIDs in order"
    );
    let stored = bodies(&d).await?;
    let moved = body_bytes(&d, "to_gateway").await?;
    assert!(
        moved >= message(1).len() as u64 * 3,
        "the import moved bodies: {moved}"
    );

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
    assert_eq!(
        body_bytes(&d, "to_gateway").await?,
        moved,
        "a flag change moves no body"
    );

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

#[tokio::test(flavor = "multi_thread")]
async fn flag_changes_go_both_ways_and_concurrent_ones_merge_per_flag() -> Result<()> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = Scenario::start("imap-flags-both-ways").await?;
    imap.enable_modseq().await?;
    let mut uids = Vec::new();
    for n in 1..=2 {
        uids.push(
            imap.append("INBOX", &Flags::default(), None, &message(n))
                .await?
                .unwrap()
                .1,
        );
    }
    let conn = connector(&d, &dc)?;
    let inbox = imported(&d, "/INBOX", 2).await?;
    let stored = bodies(&d).await?;

    // A client's change on the gateway reaches Dovecot.
    let one = item_of(&d, inbox, &message(1)).await?;
    d.store
        .set_message_flags(
            d.tenant,
            inbox,
            one,
            &["\\Seen".into(), "\\Answered".into()],
        )
        .await?;
    let want = Flags::parse(["\\Seen", "\\Answered"]);
    let uid1 = uids[0];
    wait_until("the flags on Dovecot", Duration::from_secs(30), || async {
        Ok((dovecot_flags(&url, uid1).await? == want).then_some(()))
    })
    .await?;

    // Both sides change the same message while the connector is away: on its return
    // both changes are on both sides (per flag; whole-set "newest wins" would lose one).
    drop(conn);
    let two = item_of(&d, inbox, &message(2)).await?;
    imap.select("INBOX", None).await?;
    imap.store(uids[1], &Flags::parse(["\\Flagged"]), &Flags::default(), 0)
        .await?;
    d.store
        .set_message_flags(d.tenant, inbox, two, &["\\Seen".into()])
        .await?;
    let _conn = connector(&d, &dc)?;
    let both = Flags::parse(["\\Seen", "\\Flagged"]);
    let uid2 = uids[1];
    wait_until(
        "both changes on Dovecot",
        Duration::from_secs(30),
        || async { Ok((dovecot_flags(&url, uid2).await? == both).then_some(())) },
    )
    .await?;
    wait_until(
        "both changes on the gateway",
        Duration::from_secs(30),
        || async {
            let h = held(&d, inbox).await?;
            Ok(h.iter()
                .find(|(_, _, b)| b == &message(2))
                .filter(|(_, f, _)| Flags::parse(f.iter().map(String::as_str)) == both)
                .map(|_| ()))
        },
    )
    .await?;
    assert_eq!(bodies(&d).await?, stored, "flag changes store no body");
    imap.logout().await?;
    Ok(())
}

/// A client's draft appended on the gateway reaches the back end once, with its
/// flags, under the UID the back end gives it; a client's expunge reaches it too.
#[tokio::test(flavor = "multi_thread")]
async fn appends_and_expunges_from_the_gateway_reach_the_back_end() -> Result<()> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = Scenario::start("imap-append").await?;
    imap.append("INBOX", &Flags::default(), None, &message(1))
        .await?;
    let _conn = connector(&d, &dc)?;
    let drafts = d.collection("/Drafts").await?;
    let inbox = imported(&d, "/INBOX", 1).await?;

    let draft = message(50);
    let (item, gw_uid) = d
        .store
        .append_message(
            d.tenant,
            drafts,
            &draft,
            &["\\Draft".into(), "\\Seen".into()],
        )
        .await?;
    let on_dovecot = wait_until("the draft on Dovecot", Duration::from_secs(30), || async {
        let found = dovecot_messages(&url, "Drafts").await?;
        Ok((!found.is_empty()).then_some(found))
    })
    .await?;
    assert_eq!(on_dovecot.len(), 1, "appended once");
    assert_eq!(on_dovecot[0].body, draft);
    assert_eq!(
        on_dovecot[0].meta.flags,
        Flags::parse(["\\Draft", "\\Seen"])
    );
    // Recorded under the back end's UID; rounds after it import nothing again.
    wait_until("the draft settled", Duration::from_secs(30), || async {
        let rows = d
            .query(&format!(
                "SELECT count(*) FROM items WHERE id = '{item}' AND pending_seq IS NULL AND backend_href IS NOT NULL"
            ))
            .await?;
        Ok((rows[0].get::<_, i64>(0) == 1).then_some(()))
    })
    .await?;
    // Two more rounds of Drafts after that: still one copy.
    let settled_at = round_at(&d, drafts).await?;
    for _ in 0..2 {
        let before = round_at(&d, drafts).await?;
        wait_until(
            "another round of Drafts",
            Duration::from_secs(30),
            || async { Ok((round_at(&d, drafts).await? > before).then_some(())) },
        )
        .await?;
    }
    assert!(round_at(&d, drafts).await? > settled_at);
    let h = held(&d, drafts).await?;
    assert_eq!(h.len(), 1, "no second copy imported back: {h:?}");
    assert_eq!(h[0].0, i64::from(gw_uid));

    // A client's expunge on the gateway reaches Dovecot.
    let one = item_of(&d, inbox, &message(1)).await?;
    d.store.expunge_message(d.tenant, inbox, one).await?;
    wait_until(
        "the expunge on Dovecot",
        Duration::from_secs(30),
        || async {
            let mut c = ImapClient::connect(&url, "alice", "alicepw", false).await?;
            let n = c.select("INBOX", None).await?.exists;
            c.logout().await?;
            Ok((n == 0).then_some(()))
        },
    )
    .await?;
    imap.logout().await?;
    Ok(())
}

/// A message larger than the gateway's largest link message arrives whole: read from
/// the server by range and sent in parts, assembled in the database. The connector
/// never holds it whole: its peak memory stays below the message's size.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_larger_than_a_link_message_arrives_in_parts() -> Result<()> {
    // A 2 MiB link limit, and a 48 MB message.
    let d = Deployment::start(
        "imap-parts",
        &[
            "--grpc-max-message-bytes",
            "2097152",
            "--max-item-bytes",
            "1048576",
        ],
    )
    .await?;
    let dc = Dovecot::start(&d.dir).await?;
    let url = Url::parse(&dc.url())?;
    let mut imap = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    let mut big = message(1);
    big.extend_from_slice("0123456789abcdef".repeat(48_000_000 / 16).as_bytes());
    imap.append("INBOX", &Flags::parse(["\\Seen"]), None, &big)
        .await?;
    imap.append("INBOX", &Flags::default(), None, &message(2))
        .await?;
    let conn = connector(&d, &dc)?;
    let inbox = d.collection("/INBOX").await?;
    let got = wait_until("INBOX imported", Duration::from_secs(120), || async {
        let h = held(&d, inbox).await?;
        Ok((h.len() == 2).then_some(h))
    })
    .await?;
    let peak = conn
        .proc
        .pid()
        .and_then(postern_e2e::peak_kib)
        .expect("the connector's peak memory");
    assert!(
        peak * 1024 < big.len() as u64 * 3 / 4,
        "the connector held {peak} KiB at its peak for a {}-byte message",
        big.len()
    );
    let whole = got
        .iter()
        .find(|(_, _, b)| b.len() == big.len())
        .expect("the big one");
    assert!(whole.2 == big, "the same bytes");
    assert_eq!(whole.1, vec!["\\Seen".to_string()]);
    let message_id: Option<String> = d
        .query(&format!(
            "SELECT message_id FROM items WHERE collection_id = '{inbox}' AND size = {}",
            big.len()
        ))
        .await?[0]
        .get(0);
    assert_eq!(message_id.as_deref(), Some("<note-1@corp.example>"));
    let left: i64 = d.query("SELECT count(*) FROM body_uploads").await?[0].get(0);
    assert_eq!(left, 0, "the parts are gone once assembled");

    // The other way: a client's 3 MB draft goes to the server, the connector reading it
    // from the gateway a part at a time (no journal batch carries it).
    let mut draft = message(3);
    draft.extend_from_slice("draft text ".repeat(300_000).as_bytes());
    d.store
        .append_message(d.tenant, inbox, &draft, &["\\Draft".into()])
        .await?;
    let on_dovecot = wait_until("the draft on Dovecot", Duration::from_secs(60), || async {
        let found = dovecot_messages(&url, "INBOX").await?;
        Ok((found.len() == 3).then_some(found))
    })
    .await?;
    assert!(
        on_dovecot.iter().any(|m| m.body == draft),
        "the draft arrived whole"
    );
    imap.logout().await?;
    Ok(())
}

/// With IDLE on INBOX, a change on the server reaches the gateway at once, though the
/// source's interval is an hour.
#[tokio::test(flavor = "multi_thread")]
async fn idle_brings_a_server_change_without_waiting_for_the_interval() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-idle").await?;
    imap.append("INBOX", &Flags::default(), None, &message(1))
        .await?;
    let _conn = connector_with(&d, &dc, SourceSpec::alice("mail", "imap", &dc.url(), "1h"))?;
    let inbox = imported(&d, "/INBOX", 1).await?;
    // The connector watches INBOX once its first rounds are done: a new message
    // arrives, then another, each brought by IDLE (the next interval is an hour away).
    for n in 2..=3 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
        wait_until(
            "the new message on the gateway",
            Duration::from_secs(20),
            || async { Ok((held(&d, inbox).await?.len() == n as usize).then_some(())) },
        )
        .await?;
    }
    imap.logout().await?;
    Ok(())
}

/// A message moved on the server by another client ends as one copy on the gateway,
/// in its new mailbox, and its body does not cross the link again.
#[tokio::test(flavor = "multi_thread")]
async fn a_move_on_the_server_leaves_one_copy_on_the_gateway() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-move").await?;
    let (_, uid) = imap
        .append("INBOX", &Flags::parse(["\\Seen"]), None, &message(1))
        .await?
        .unwrap();
    let _conn = connector(&d, &dc)?;
    let (inbox, archive) = (
        d.collection("/INBOX").await?,
        d.collection("/Archive").await?,
    );
    wait_until("INBOX imported", Duration::from_secs(30), || async {
        Ok((held(&d, inbox).await?.len() == 1).then_some(()))
    })
    .await?;
    let before = body_bytes(&d, "to_gateway").await?;
    imap.select("INBOX", None).await?;
    imap.move_to(uid, "Archive").await?;
    wait_until(
        "the move on the gateway",
        Duration::from_secs(30),
        || async {
            let (i, a) = (held(&d, inbox).await?, held(&d, archive).await?);
            Ok((i.is_empty() && a.len() == 1).then_some(()))
        },
    )
    .await?;
    let moved = held(&d, archive).await?;
    assert_eq!(moved[0].2, message(1));
    assert_eq!(
        moved[0].1,
        vec!["\\Seen".to_string()],
        "its flags moved with it"
    );
    assert_eq!(
        body_bytes(&d, "to_gateway").await?,
        before,
        "the body did not cross the link again: the gateway had it"
    );
    imap.logout().await?;
    Ok(())
}

/// A client's move on the gateway becomes a `UID MOVE` on the server: one copy, in the
/// new mailbox, with its original internal date (an APPEND of its bytes would carry
/// today's), and nothing imported again on either side.
#[tokio::test(flavor = "multi_thread")]
async fn a_move_on_the_gateway_is_a_move_on_the_server() -> Result<()> {
    let Scenario {
        d,
        dc,
        url,
        mut imap,
    } = Scenario::start("imap-gateway-move").await?;
    let date = "15-Mar-2020 10:00:00 +0000";
    imap.append("INBOX", &Flags::parse(["\\Seen"]), Some(date), &message(1))
        .await?;
    imap.append("INBOX", &Flags::default(), None, &message(2))
        .await?;
    let _conn = connector(&d, &dc)?;
    let (inbox, archive) = (
        d.collection("/INBOX").await?,
        d.collection("/Archive").await?,
    );
    wait_until("INBOX imported", Duration::from_secs(30), || async {
        Ok((held(&d, inbox).await?.len() == 2).then_some(()))
    })
    .await?;
    let item = item_of(&d, inbox, &message(1)).await?;
    let (_, gateway_uid) = d.store.move_message(d.tenant, inbox, item, archive).await?;
    assert!(gateway_uid >= 1);
    // At once on the gateway.
    assert_eq!(held(&d, inbox).await?.len(), 1);
    assert_eq!(held(&d, archive).await?[0].2, message(1));

    // On the server: in Archive, gone from INBOX.
    let on_server = |name: &'static str| {
        let url = url.clone();
        async move {
            let mut c = ImapClient::connect(&url, "alice", "alicepw", false).await?;
            let sel = c.select(name, None).await?;
            let uids: Vec<u32> = if sel.exists == 0 {
                Vec::new()
            } else {
                c.fetch_meta("1:*", None)
                    .await?
                    .iter()
                    .map(|m| m.uid)
                    .collect()
            };
            let got = c.fetch_messages(&uids).await?;
            c.logout().await?;
            anyhow::Ok(got)
        }
    };
    let moved = wait_until(
        "the move on the server",
        Duration::from_secs(30),
        || async {
            let a = on_server("Archive").await?;
            let i = on_server("INBOX").await?;
            Ok((a.len() == 1 && i.len() == 1).then_some(a))
        },
    )
    .await?;
    assert_eq!(moved[0].body, message(1));
    assert_eq!(
        moved[0].internal_date.as_deref(),
        Some(date),
        "moved, not appended again"
    );
    assert!(
        moved[0]
            .meta
            .flags
            .has(&postern_core::mail::Flag::new("\\Seen").unwrap())
    );

    // Settled: the gateway's copy knows its place on the server, and later rounds
    // import nothing again on either side.
    let archived = item_of(&d, archive, &message(1)).await?;
    wait_until("the move recorded", Duration::from_secs(30), || async {
        let rows = d
            .query(&format!(
                "SELECT backend_href IS NOT NULL AND pending_seq IS NULL FROM items WHERE id = '{archived}'"
            ))
            .await?;
        Ok(rows[0].get::<_, bool>(0).then_some(()))
    })
    .await?;
    let rounds = round_at(&d, inbox).await?;
    wait_until("two more INBOX rounds", Duration::from_secs(30), || async {
        Ok((round_at(&d, inbox).await? > rounds + 1.0).then_some(()))
    })
    .await?;
    assert_eq!(held(&d, inbox).await?.len(), 1);
    assert_eq!(held(&d, archive).await?.len(), 1);
    assert_eq!(on_server("Archive").await?.len(), 1);
    assert_eq!(on_server("INBOX").await?.len(), 1);
    imap.logout().await?;
    Ok(())
}
