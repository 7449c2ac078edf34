//! The gateway's IMAP endpoint, driven by a real client (Python's imaplib) against
//! mail a connector imported from a real Dovecot: what the client reads is what
//! Dovecot holds, byte for byte; what the client changes reaches Dovecot; a change on
//! Dovecot reaches an idling client. Dovecot is read with imaplib too, so no oracle
//! is the product's own IMAP code.

use std::time::Duration;

use anyhow::Result;
use postern_core::mail::Flags;
use postern_e2e::imaplib::{
    self, Idling, app_password as password, dovecot_flags, lines, literals, login, note_flags,
};
use postern_e2e::mail::{Scenario, connector, imported, message};
use postern_e2e::wait_until;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_mail_client_reads_what_was_imported_and_its_changes_reach_dovecot() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint").await?;
    imap.create("Sent Items").await?;
    imap.create("Entwürfe").await?;
    imap.append("INBOX", &Flags::parse(["\\Seen"]), None, &message(1))
        .await?;
    imap.append("INBOX", &Flags::default(), None, &message(2))
        .await?;
    imap.append("INBOX", &Flags::parse(["\\Flagged"]), None, &message(3))
        .await?;
    imap.append("Sent Items", &Flags::default(), None, &message(9))
        .await?;
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 3).await?;
    imported(&d, "/Sent%20Items", 1).await?;
    let pw = password(&d)?;
    let port = d.gateway.imap_port;

    let r = imaplib::run(
        port,
        json!([
            login(&pw),
            {"raw": "CAPABILITY"},
            {"call": "list", "args": ["\"\"", "*"]},
            {"call": "select", "args": ["INBOX"]},
            {"uid": ["FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])"]},
            {"call": "fetch", "args": ["1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.10>)"]},
            {"call": "status", "args": ["\"Sent Items\"", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"]},
            {"call": "fetch", "args": ["2", "(BODY.PEEK[]<5.20>)"]},
        ]),
    )
    .await?;
    // A range of the whole message alone is read as a range.
    assert_eq!(literals(&r[7]), vec![message(2)[5..25].to_vec()]);
    assert_eq!(r[0]["typ"], "OK", "login: {:?}", r[0]);
    let caps = lines(&r[1]).join(" ").to_ascii_uppercase();
    for c in [" IMAP4REV1", " IDLE", " UIDPLUS", " SPECIAL-USE"] {
        assert!(caps.contains(c), "{c} in {caps}");
    }
    let list = lines(&r[2]).join("\n");
    assert!(
        list.contains("\"INBOX\"") || list.contains(" INBOX"),
        "{list}"
    );
    assert!(list.contains("\"Sent Items\""), "{list}");
    assert!(
        list.contains("Entw&APw-rfe"),
        "non-ASCII in modified UTF-7: {list}"
    );
    assert_eq!(r[3]["data"][0], "3", "EXISTS 3: {:?}", r[3]);

    // The bodies are Dovecot's bytes (what was appended there), with its flags.
    let bodies = literals(&r[4]);
    assert_eq!(bodies, vec![message(1), message(2), message(3)]);
    let meta = lines(&r[4]);
    assert!(meta[0].contains("\\Seen"), "{meta:?}");
    assert!(meta[2].contains("\\Flagged"), "{meta:?}");
    assert!(
        meta[1].contains(&format!("RFC822.SIZE {}", message(2).len())),
        "{meta:?}"
    );
    let parts = literals(&r[5]);
    assert_eq!(parts[0], b"Subject: note 1\r\n\r\n");
    assert_eq!(parts[1], message(1)[..10].to_vec());
    let status = lines(&r[6]).join(" ");
    assert!(
        status.contains("MESSAGES 1") && status.contains("UNSEEN 1"),
        "{status}"
    );

    // Changes: flag message 2, delete and expunge message 3, append a draft.
    let r = imaplib::run(
        port,
        json!([
            login(&pw),
            {"call": "select", "args": ["INBOX"]},
            {"call": "store", "args": ["2", "+FLAGS", "(\\Flagged $Work)"]},
            {"call": "store", "args": ["3", "+FLAGS.SILENT", "(\\Deleted)"]},
            {"call": "expunge"},
            {"uid": ["SEARCH", "FLAGGED"]},
            {"call": "search", "args": [null, "UNSEEN"]},
            {"append": ["INBOX", "(\\Draft)", String::from_utf8(message(7))?]},
        ]),
    )
    .await?;
    assert!(lines(&r[2])[0].contains("\\Flagged"), "{:?}", r[2]);
    assert_eq!(lines(&r[4]), vec!["3".to_string()], "EXPUNGE 3: {:?}", r[4]);
    assert_eq!(r[6]["data"][0], "2", "only message 2 is unseen: {:?}", r[6]);
    assert!(
        lines(&r[7]).join(" ").contains("APPENDUID"),
        "APPENDUID: {:?}",
        r[7]
    );

    // Dovecot has all three changes (read with imaplib, by Message-ID).
    wait_until(
        "the client's changes on Dovecot",
        Duration::from_secs(30),
        || async {
            let flags = dovecot_flags(dc.port, "INBOX").await?;
            let of = |n: u32| note_flags(&flags, n).into_iter().next();
            // Keywords are case-insensitive (the connector keeps them in lower case).
            let done = of(2)
                .is_some_and(|f| f.contains("\\Flagged") && f.to_lowercase().contains("$work"))
                && of(3).is_none()
                && of(7).is_some_and(|f| f.contains("\\Draft"));
            if !done {
                eprintln!("Dovecot so far: {flags:?}");
            }
            Ok(done.then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idling_client_hears_of_a_change_on_dovecot() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-idle").await?;
    imap.append("INBOX", &Flags::default(), None, &message(1))
        .await?;
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 1).await?;
    let pw = password(&d)?;

    let idling = Idling::start(
        d.gateway.imap_port,
        json!([login(&pw), {"call": "select", "args": ["INBOX"]}, {"idle": 60}]),
    )
    .await?;
    // A new message on Dovecot: the connector brings it (IDLE on Dovecot), the
    // gateway tells the idling client.
    imap.append("INBOX", &Flags::default(), None, &message(2))
        .await?;
    let out = idling.finish().await?;
    let heard = lines(&out[0]).join(" ");
    assert!(heard.contains("2 EXISTS"), "EXISTS while idling: {out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_are_checked_and_mistakes_get_answers() -> Result<()> {
    let Scenario { d, dc, .. } = Scenario::start("imap-endpoint-logins").await?;
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 0).await?;
    let pw = password(&d)?;
    let port = d.gateway.imap_port;

    let wrong = imaplib::run(port, json!([login("not-the-password")])).await;
    let why = format!("{wrong:?}");
    assert!(
        why.contains("AUTHENTICATIONFAILED"),
        "a wrong password is refused with a reason: {why}"
    );

    let r = imaplib::run(
        port,
        json!([
            {"raw": "FETCH 1 (FLAGS)"},
            {"authenticate_plain": ["alice@acme", pw]},
            {"raw": "FETCH 1 (FLAGS)"},
            {"raw": "SELECT Nowhere"},
            {"raw": "FETCH ((("},
            {"call": "select", "args": ["INBOX"]},
            {"raw": "FETCH 5 (FLAGS)"},
            {"call": "noop"},
        ]),
    )
    .await?;
    let last = |i: usize| lines(&r[i]).last().cloned().unwrap_or_default();
    assert!(last(0).contains("BAD"), "before login: {:?}", r[0]);
    assert_eq!(r[1]["typ"], "OK", "AUTHENTICATE PLAIN: {:?}", r[1]);
    assert!(last(2).contains("BAD"), "no mailbox selected: {:?}", r[2]);
    assert!(last(3).contains("NO"), "no such mailbox: {:?}", r[3]);
    assert!(
        lines(&r[4]).iter().any(|l| l.contains("BAD")),
        "malformed: {:?}",
        r[4]
    );
    assert_eq!(r[5]["typ"], "OK", "the session goes on: {:?}", r[5]);
    assert!(last(6).contains("BAD"), "no message 5: {:?}", r[6]);
    assert_eq!(r[7]["typ"], "OK");
    Ok(())
}

/// Dovecot's mailboxes, by name (read with imaplib).
async fn dovecot_mailboxes(port: u16) -> Result<String> {
    let r = imaplib::run(
        port,
        json!([{"login": ["alice", "alicepw"]}, {"call": "list", "args": ["\"\"", "*"]}]),
    )
    .await?;
    Ok(lines(&r[1]).join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_moves_and_new_renamed_and_deleted_mailboxes_reach_dovecot() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-copymove").await?;
    for name in ["Old", "Temp", "Gone"] {
        imap.create(name).await?;
    }
    for n in 1..=3 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
    }
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 3).await?;
    for href in ["/Old", "/Temp", "/Gone"] {
        imported(&d, href, 0).await?;
    }
    let pw = password(&d)?;

    let r = imaplib::run(
        d.gateway.imap_port,
        json!([
            login(&pw),
            {"call": "select", "args": ["INBOX"]},
            {"raw": "UID COPY 1 Old"},
            {"raw": "UID MOVE 2 Old"},
            {"raw": "CREATE Projects"},
            {"raw": "RENAME Temp Renamed"},
            {"raw": "DELETE Gone"},
            {"raw": "CREATE Old"},
            {"raw": "COPY 1 Nowhere"},
            {"call": "select", "args": ["Old"]},
        ]),
    )
    .await?;
    let text = |i: usize| lines(&r[i]).join("\n");
    assert!(text(2).contains("[COPYUID "), "COPY: {}", text(2));
    assert!(
        text(3).contains("[COPYUID ") && text(3).contains("* 2 EXPUNGE"),
        "MOVE: {}",
        text(3)
    );
    for i in 4..=6 {
        assert!(
            text(i).lines().last().unwrap_or("").contains(" OK "),
            "{}",
            text(i)
        );
    }
    assert!(text(7).contains("ALREADYEXISTS"), "{}", text(7));
    assert!(text(8).contains("TRYCREATE"), "{}", text(8));
    assert_eq!(
        r[9]["data"][0], "2",
        "Old holds the copy and the moved message"
    );

    wait_until(
        "the changes on Dovecot",
        Duration::from_secs(30),
        || async {
            let boxes = dovecot_mailboxes(dc.port).await?;
            let inbox = dovecot_flags(dc.port, "INBOX").await?;
            let old = dovecot_flags(dc.port, "Old").await?;
            let ids = |v: &[(String, String)]| {
                let mut ids: Vec<String> = v.iter().map(|(id, _)| id.clone()).collect();
                ids.sort();
                ids
            };
            let done = boxes.contains("Projects")
                && boxes.contains("Renamed")
                && !boxes.contains("Temp")
                && !boxes.contains("Gone")
                && ids(&inbox).len() == 2
                && ids(&inbox).iter().all(|id| !id.contains("<note-2@"))
                && ids(&old).len() == 2
                && ids(&old).iter().any(|id| id.contains("<note-1@"))
                && ids(&old).iter().any(|id| id.contains("<note-2@"));
            Ok(done.then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_qresync_client_learns_what_changed_while_it_was_away() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-qresync").await?;
    for n in 1..=3 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
    }
    let _conn = connector(&d, &dc)?;
    let inbox = imported(&d, "/INBOX", 3).await?;
    let pw = password(&d)?;
    let port = d.gateway.imap_port;

    // The client's cache: the mailbox at some MODSEQ.
    let r = imaplib::run(
        port,
        json!([
            login(&pw),
            {"raw": "ENABLE QRESYNC"},
            {"call": "select", "args": ["INBOX"]},
            {"untagged": "UIDVALIDITY"},
            {"untagged": "HIGHESTMODSEQ"},
        ]),
    )
    .await?;
    let validity = r[3]["data"][0].as_str().unwrap_or_default().to_string();
    let modseq = r[4]["data"][0].as_str().unwrap_or_default().to_string();
    assert!(!validity.is_empty() && !modseq.is_empty(), "{r:?}");

    // Meanwhile, on Dovecot: message 1 flagged, message 2 expunged, message 4 new.
    imaplib::run(
        dc.port,
        json!([
            {"login": ["alice", "alicepw"]},
            {"call": "select", "args": ["INBOX"]},
            {"uid": ["STORE", "1", "+FLAGS", "(\\Flagged)"]},
            {"uid": ["STORE", "2", "+FLAGS", "(\\Deleted)"]},
            {"call": "expunge"},
            {"append": ["INBOX", "()", String::from_utf8(message(4))?]},
        ]),
    )
    .await?;
    wait_until(
        "Dovecot's changes on the gateway",
        Duration::from_secs(30),
        || async {
            let held = postern_e2e::mail::held(&d, inbox).await?;
            let flagged = held
                .iter()
                .any(|m| m.2 == message(1) && m.1.iter().any(|f| f == "\\Flagged"));
            Ok((held.len() == 3 && flagged).then_some(()))
        },
    )
    .await?;

    let r = imaplib::run(
        port,
        json!([
            login(&pw),
            {"raw": "ENABLE QRESYNC"},
            {"raw": format!("SELECT INBOX (QRESYNC ({validity} {modseq}))")},
            {"raw": format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")},
            {"raw": "STORE 1 +FLAGS.SILENT (\\Deleted)"},
            {"raw": "EXPUNGE"},
        ]),
    )
    .await?;
    let select = lines(&r[2]).join("");
    assert!(select.contains("* VANISHED (EARLIER) 2\r\n"), "{select}");
    assert!(
        select.contains("FETCH (UID 1 FLAGS (\\Flagged) MODSEQ"),
        "the flag change: {select}"
    );
    assert!(
        select.contains("FETCH (UID 4 "),
        "the new message: {select}"
    );
    assert!(
        !select.contains("FETCH (UID 3 "),
        "message 3 did not change: {select}"
    );
    let fetch = lines(&r[3]).join("");
    assert!(fetch.contains("* VANISHED (EARLIER) 2\r\n"), "{fetch}");
    assert!(
        fetch.contains("UID 1 ") && !fetch.contains("UID 3 "),
        "{fetch}"
    );
    let expunge = lines(&r[5]).join("");
    assert!(
        expunge.contains("* VANISHED 1\r\n"),
        "VANISHED, not EXPUNGE: {expunge}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_certificate_the_imap_port_requires_starttls() -> Result<()> {
    let dir = postern_e2e::Scratch::new("imap-tls-pki");
    let p = postern_e2e::pki::pki(&dir)?;
    let (cert, key) = (p.cert.display().to_string(), p.key.display().to_string());
    let d = postern_e2e::Deployment::start("imap-tls", &["--tls-cert", &cert, "--tls-key", &key])
        .await?;
    let pw = password(&d)?;
    let r = imaplib::run_at(
        "localhost",
        d.gateway.imap_port,
        json!([
            {"capabilities": true},
            {"raw": format!("LOGIN alice@acme {pw}")},
            {"starttls": p.ca.display().to_string()},
            {"raw": "CAPABILITY"},
            login(&pw),
            {"call": "list", "args": ["\"\"", "*"]},
        ]),
    )
    .await?;
    let before: Vec<String> = serde_json::from_value(r[0]["data"].clone())?;
    assert!(before.iter().any(|c| c == "STARTTLS"), "{before:?}");
    assert!(before.iter().any(|c| c == "LOGINDISABLED"), "{before:?}");
    assert!(
        lines(&r[1]).join("").contains("NO [PRIVACYREQUIRED]"),
        "no login in plain text: {:?}",
        r[1]
    );
    assert_eq!(r[2]["typ"], "OK", "{:?}", r[2]);
    let after = lines(&r[3]).join(" ");
    assert!(
        after.contains("AUTH=PLAIN") && !after.contains("STARTTLS"),
        "{after}"
    );
    assert_eq!(r[4]["typ"], "OK", "login over TLS: {:?}", r[4]);
    assert_eq!(r[5]["typ"], "OK");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_has_a_bounded_number_of_sessions() -> Result<()> {
    let d = postern_e2e::Deployment::start("imap-sessions", &["--imap-max-sessions-per-user", "2"])
        .await?;
    let pw = password(&d)?;
    let port = d.gateway.imap_port;
    let one = Idling::start(port, json!([login(&pw), {"idle": 3}])).await?;
    let two = Idling::start(port, json!([login(&pw), {"idle": 3}])).await?;
    let third = imaplib::run(port, json!([login(&pw)])).await;
    let why = format!("{third:?}");
    assert!(why.contains("LIMIT"), "a third session is refused: {why}");
    // Once one ends, another may log in.
    one.finish().await?;
    two.finish().await?;
    let again = imaplib::run(port, json!([login(&pw)])).await?;
    assert_eq!(again[0]["typ"], "OK", "{again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_idling_on_another_replica_hears_of_a_change_too() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-replicas").await?;
    imap.append("INBOX", &Flags::default(), None, &message(1))
        .await?;
    // The connector is attached to the first gateway; the client to a second one.
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 1).await?;
    let other = postern_e2e::Gateway::start(&d.db, &d.dir, &[]).await?;
    let pw = password(&d)?;
    let idling = Idling::start(
        other.imap_port,
        json!([login(&pw), {"call": "select", "args": ["INBOX"]}, {"idle": 60}]),
    )
    .await?;
    imap.append("INBOX", &Flags::default(), None, &message(2))
        .await?;
    let out = idling.finish().await?;
    let heard = lines(&out[0]).join(" ");
    assert!(
        heard.contains("2 EXISTS"),
        "EXISTS on the other replica: {out:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_of_the_commands_answer_as_the_rfc_says() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-commands").await?;
    imap.create("Projects/2026").await?;
    for n in 1..=4 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
    }
    imap.append("Sent", &Flags::parse(["\\Seen"]), None, &message(9))
        .await?;
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 4).await?;
    imported(&d, "/Sent", 1).await?;
    imported(&d, "/Projects/2026", 0).await?;
    let pw = password(&d)?;
    let big = "x".repeat(3000);
    let r = imaplib::run(
        d.gateway.imap_port,
        json!([
            login(&pw),
            {"raw": "ID (\"name\" \"test\")"},
            {"raw": "NAMESPACE"},
            {"raw": "LIST \"\" %"},
            {"raw": "LIST \"\" Projects/%"},
            {"raw": "SUBSCRIBE INBOX"},
            {"raw": "LSUB \"\" *"},
            {"raw": "UNSUBSCRIBE INBOX"},
            {"raw": "ENABLE CONDSTORE"},
            {"raw": "STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ UNSEEN)"},
            {"raw": "EXAMINE INBOX"},
            {"raw": "STORE 1 +FLAGS (\\Flagged)"},
            {"raw": "UNSELECT"},
            {"append": ["INBOX", "()", format!("From: Carol <carol@corp.example>\r\nSubject: big one\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\n{big}\r\n")]},
            {"raw": "SELECT INBOX"},
            {"raw": "SEARCH OR FROM carol SUBJECT \"note 2\""},
            {"raw": "SEARCH LARGER 1000"},
            {"raw": "SEARCH NOT SMALLER 1000 BODY xxx"},
            {"raw": "UID SEARCH UID 2:3 TEXT \"note\""},
            {"raw": "SEARCH HEADER Message-ID note-4 SINCE 1-Jan-2000"},
            {"raw": "FETCH 1 (MODSEQ)"},
            {"raw": "UID STORE 4 (UNCHANGEDSINCE 1) +FLAGS (\\Answered)"},
            {"raw": "CHECK"},
            {"raw": "STORE 2 +FLAGS.SILENT (\\Deleted)"},
            {"raw": "UID EXPUNGE 3"},
            {"raw": "UID EXPUNGE 2"},
            {"raw": "STORE 1 +FLAGS.SILENT (\\Deleted)"},
            {"raw": "CLOSE"},
            {"raw": "SELECT INBOX"},
        ]),
    )
    .await?;
    let text = |i: usize| lines(&r[i]).join("");
    let tagged = |i: usize| lines(&r[i]).last().cloned().unwrap_or_default();
    assert!(
        text(1).contains("* ID (\"name\" \"Postern\")"),
        "{}",
        text(1)
    );
    assert!(
        text(2).contains("* NAMESPACE ((\"\" \"/\")) NIL NIL"),
        "{}",
        text(2)
    );
    assert!(
        text(3).contains("Projects") && !text(3).contains("Projects/2026"),
        "% stops at the delimiter: {}",
        text(3)
    );
    assert!(
        text(3).contains("\\Sent") && text(3).contains("\\HasChildren"),
        "SPECIAL-USE and children: {}",
        text(3)
    );
    assert!(text(4).contains("Projects/2026"), "{}", text(4));
    assert!(tagged(5).contains(" OK "), "{}", text(5));
    assert!(text(6).contains("* LSUB"), "{}", text(6));
    assert!(tagged(7).contains(" OK "), "{}", text(7));
    assert!(text(8).contains("* ENABLED CONDSTORE"), "{}", text(8));
    assert!(
        text(9).contains("MESSAGES 4")
            && text(9).contains("HIGHESTMODSEQ ")
            && text(9).contains("UNSEEN 4"),
        "{}",
        text(9)
    );
    assert!(text(10).contains("[READ-ONLY]"), "{}", text(10));
    assert!(
        tagged(11).contains(" NO "),
        "EXAMINE is read-only: {}",
        text(11)
    );
    assert!(tagged(12).contains(" OK "), "{}", text(12));
    assert_eq!(r[13]["typ"], "OK");
    assert!(text(15).contains("* SEARCH 2 5"), "OR: {}", text(15));
    assert!(text(16).contains("* SEARCH 5\r\n"), "LARGER: {}", text(16));
    assert!(
        text(17).contains("* SEARCH 5\r\n"),
        "NOT SMALLER, BODY: {}",
        text(17)
    );
    assert!(
        text(18).contains("* SEARCH 2 3\r\n"),
        "UID sets and TEXT: {}",
        text(18)
    );
    assert!(
        text(19).contains("* SEARCH 4\r\n"),
        "HEADER and SINCE: {}",
        text(19)
    );
    assert!(text(20).contains("MODSEQ ("), "{}", text(20));
    assert!(
        text(21).contains("[MODIFIED 4]") && !text(21).contains("\\Answered"),
        "UNCHANGEDSINCE below the message's MODSEQ: {}",
        text(21)
    );
    assert!(tagged(22).contains(" OK "), "{}", text(22));
    assert!(
        !text(24).contains("* "),
        "UID EXPUNGE of a message without \\Deleted leaves it: {}",
        text(24)
    );
    assert!(text(25).contains("* 2 EXPUNGE"), "{}", text(25));
    assert!(
        !text(27).contains("* ") && tagged(27).contains(" OK "),
        "CLOSE expunges silently: {}",
        text(27)
    );
    assert!(
        text(28).contains("* 3 EXISTS"),
        "two of five gone: {}",
        text(28)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_made_while_the_connector_is_away_reach_dovecot_when_it_returns() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-offline").await?;
    for n in 1..=2 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
    }
    let mut conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", 2).await?;
    conn.proc.kill9();
    let pw = password(&d)?;
    let r = imaplib::run(
        d.gateway.imap_port,
        json!([
            login(&pw),
            {"call": "select", "args": ["INBOX"]},
            {"call": "store", "args": ["1", "+FLAGS", "(\\Flagged)"]},
            {"append": ["INBOX", "(\\Seen)", String::from_utf8(message(5))?]},
        ]),
    )
    .await?;
    assert_eq!(
        r[2]["typ"], "OK",
        "accepted while the connector is away: {r:?}"
    );
    assert_eq!(r[3]["typ"], "OK", "{r:?}");
    let before = dovecot_flags(dc.port, "INBOX").await?;
    assert_eq!(before.len(), 2, "nothing reached Dovecot yet: {before:?}");

    let _again = postern_e2e::mail::connector(&d, &dc)?;
    wait_until(
        "the changes on Dovecot",
        Duration::from_secs(60),
        || async {
            let flags = dovecot_flags(dc.port, "INBOX").await?;
            let of = |n: u32| note_flags(&flags, n).into_iter().next();
            let done = flags.len() == 3
                && of(1).is_some_and(|f| f.contains("\\Flagged"))
                && of(5).is_some_and(|f| f.contains("\\Seen"));
            Ok(done.then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// This machine's address on its network (not loopback): where a client from
/// elsewhere would come from. No packet is sent to find it.
fn network_address() -> Result<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")?;
    probe.connect("192.0.2.1:9")?;
    let ip = probe.local_addr()?.ip();
    anyhow::ensure!(!ip.is_loopback(), "this machine has no network address");
    Ok(ip)
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_text_logins_from_the_network_need_tls_unless_the_operator_allows_them() -> Result<()>
{
    let ip = network_address()?;
    let port = postern_e2e::free_port();
    let listen = format!("0.0.0.0:{port}");
    let d =
        postern_e2e::Deployment::start("imap-plain-network", &["--imap-listen", &listen]).await?;
    let pw = password(&d)?;
    let host = ip.to_string();
    let r = imaplib::run_at(
        &host,
        port,
        json!([{"capabilities": true}, {"raw": format!("LOGIN alice@acme {pw}")}]),
    )
    .await?;
    let caps: Vec<String> = serde_json::from_value(r[0]["data"].clone())?;
    assert!(caps.iter().any(|c| c == "LOGINDISABLED"), "{caps:?}");
    assert!(
        lines(&r[1]).last().is_some_and(|l| l.contains(" NO ")),
        "no plain-text login from the network: {:?}",
        r[1]
    );
    drop(d);

    let port = postern_e2e::free_port();
    let listen = format!("0.0.0.0:{port}");
    let d = postern_e2e::Deployment::start(
        "imap-plain-network-allowed",
        &["--imap-listen", &listen, "--allow-plain-login"],
    )
    .await?;
    let pw = password(&d)?;
    let r = imaplib::run_at(&host, port, json!([login(&pw)])).await?;
    assert_eq!(r[0]["typ"], "OK", "the operator allowed it: {r:?}");
    Ok(())
}
