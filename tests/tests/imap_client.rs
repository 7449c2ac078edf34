//! The connector's IMAP client against a real Dovecot: what the mail back end is built
//! on. Each test starts its own Dovecot (scripts/install-deps.sh installs it).

use anyhow::Result;
use postern_connector::backends::imap::client::{ConnectOptions, ImapClient, Resume, Stored};
use postern_core::mail::{Flags, Role};
use postern_e2e::Scratch;
use postern_e2e::backends::Dovecot;
use url::Url;

async fn alice(d: &Dovecot) -> Result<ImapClient> {
    let mut c = ImapClient::connect(&Url::parse(&d.url())?, "alice", "alicepw", false).await?;
    c.enable_modseq().await?;
    Ok(c)
}

fn message(n: u32, extra: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\nSubject: note {n}\r\nMessage-ID: <note-{n}@corp.example>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n\r\nBody of note {n}.{extra}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn mailboxes_are_listed_with_roles_and_names_round_trip() -> Result<()> {
    let dir = Scratch::new("imap-list");
    let d = Dovecot::start(&dir).await?;
    let mut c = alice(&d).await?;
    assert!(
        c.has("QRESYNC") && c.has("UIDPLUS") && c.has("MOVE"),
        "{:?}",
        c.capabilities
    );
    for name in ["Sent Items", "Entwürfe", "Projects/2026/Q4", "R&D"] {
        c.create(name).await?;
    }
    let list = c.list().await?;
    let find = |n: &str| list.iter().find(|m| m.name == n);
    assert_eq!(find("INBOX").and_then(|m| m.role), Some(Role::Inbox));
    assert_eq!(find("Sent").and_then(|m| m.role), Some(Role::Sent));
    assert_eq!(find("Trash").and_then(|m| m.role), Some(Role::Trash));
    assert_eq!(find("Drafts").and_then(|m| m.role), Some(Role::Drafts));
    for name in [
        "Sent Items",
        "Entwürfe",
        "Projects/2026/Q4",
        "R&D",
        "Projects/2026",
    ] {
        assert!(find(name).is_some(), "{name} listed: {list:?}");
    }
    assert_eq!(find("Entwürfe").and_then(|m| m.delimiter), Some('/'));
    // The non-ASCII name reaches Dovecot as modified UTF-7 and is found again by it.
    let s = c.select("Entwürfe", None).await?;
    assert!(s.uidvalidity > 0);
    assert!(
        std::fs::read_dir(d.dir.join("mail/alice/Maildir"))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains("Entw&APw-rfe")),
        "stored under its modified UTF-7 name"
    );
    c.delete("R&D").await?;
    assert!(c.list().await?.iter().all(|m| m.name != "R&D"));
    c.logout().await?;
    Ok(())
}

#[tokio::test]
async fn appends_fetches_flags_and_expunges_with_modseq() -> Result<()> {
    let dir = Scratch::new("imap-flags");
    let d = Dovecot::start(&dir).await?;
    let mut c = alice(&d).await?;

    // APPEND keeps flags and internal date, and tells the UID (APPENDUID).
    let seen = Flags::parse(["\\Seen", "$Work"]);
    let (v1, u1) = c
        .append(
            "INBOX",
            &seen,
            Some("17-Jul-2026 02:44:25 -0700"),
            &message(1, ""),
        )
        .await?
        .expect("APPENDUID");
    let (_, u2) = c
        .append("INBOX", &Flags::default(), None, &message(2, ""))
        .await?
        .expect("APPENDUID");
    let s = c.select("INBOX", None).await?;
    assert_eq!((s.uidvalidity, s.exists), (v1, 2));
    let first = s
        .highest_modseq
        .expect("HIGHESTMODSEQ with CONDSTORE enabled");

    let all = c.fetch_messages(&[u1, u2]).await?;
    assert_eq!(all.len(), 2);
    let m1 = all.iter().find(|m| m.meta.uid == u1).unwrap();
    assert_eq!(m1.body, message(1, ""), "bytes as appended");
    assert_eq!(m1.size as usize, m1.body.len());
    assert_eq!(m1.meta.flags, seen);
    // The same instant (a Maildir keeps it as a file time, without the zone).
    let instant = |s: &str| {
        chrono::DateTime::parse_from_str(s, "%d-%b-%Y %H:%M:%S %z")
            .map(|d| d.timestamp())
            .ok()
    };
    assert_eq!(
        m1.internal_date.as_deref().and_then(instant),
        instant("17-Jul-2026 02:44:25 -0700")
    );
    // Reading with BODY.PEEK does not mark the other as read.
    let meta = c.fetch_meta("1:*", None).await?;
    assert!(
        !meta
            .iter()
            .find(|m| m.uid == u2)
            .unwrap()
            .flags
            .has(&postern_core::mail::Flag::seen())
    );

    // A flag change: only that message is changed since the first state.
    let flagged = Flags::parse(["\\Flagged"]);
    let m2 = meta.iter().find(|m| m.uid == u2).unwrap().modseq;
    assert!(matches!(
        c.store(u2, &flagged, &Flags::default(), m2).await?,
        Stored::Done(Some(_))
    ));
    let changed = c.fetch_meta("1:*", Some(first)).await?;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0].uid, changed[0].flags.clone()),
        (u2, flagged.clone())
    );

    // A store conditional on a MODSEQ the message has moved past writes nothing.
    assert_eq!(
        c.store(u2, &seen, &Flags::default(), m2).await?,
        Stored::Modified
    );
    let now = c.fetch_meta(&u2.to_string(), None).await?;
    assert_eq!(now[0].flags, flagged, "nothing written");

    // Expunge one message; a resumed SELECT (QRESYNC) says it vanished and what
    // changed, in one command.
    let state = Resume {
        uidvalidity: s.uidvalidity,
        modseq: c.select("INBOX", None).await?.highest_modseq.unwrap(),
    };
    c.expunge(u1).await?;
    c.store(u2, &Flags::parse(["\\Answered"]), &Flags::default(), 0)
        .await?;
    let resumed = c.select("INBOX", Some(&state)).await?;
    assert_eq!(resumed.vanished, vec![u1]);
    assert_eq!(resumed.changed.len(), 1);
    assert_eq!(resumed.changed[0].uid, u2);
    assert!(
        resumed.changed[0]
            .flags
            .has(&postern_core::mail::Flag::new("\\Answered").unwrap())
    );
    assert_eq!(resumed.exists, 1);
    c.logout().await?;
    Ok(())
}

#[tokio::test]
async fn a_move_keeps_one_copy_and_tells_the_new_uid() -> Result<()> {
    let dir = Scratch::new("imap-move");
    let d = Dovecot::start(&dir).await?;
    let mut c = alice(&d).await?;
    let (_, uid) = c
        .append("INBOX", &Flags::default(), None, &message(3, ""))
        .await?
        .unwrap();
    c.select("INBOX", None).await?;
    let (_, new) = c.move_to(uid, "Archive").await?.expect("COPYUID");
    assert_eq!(c.select("INBOX", None).await?.exists, 0);
    assert_eq!(c.select("Archive", None).await?.exists, 1);
    let moved = c.fetch_messages(&[new]).await?;
    assert_eq!(moved[0].body, message(3, ""));
    c.logout().await?;
    Ok(())
}

#[tokio::test]
async fn a_large_message_arrives_whole_and_a_wrong_password_is_an_error() -> Result<()> {
    let dir = Scratch::new("imap-big");
    let d = Dovecot::start(&dir).await?;
    let mut c = alice(&d).await?;
    let big = message(4, &"x".repeat(30 << 20));
    let (_, uid) = c
        .append("INBOX", &Flags::default(), None, &big)
        .await?
        .unwrap();
    c.select("INBOX", None).await?;
    let got = c.fetch_messages(&[uid]).await?;
    assert_eq!(got[0].body.len(), big.len());
    assert!(got[0].body == big);
    c.logout().await?;

    let wrong = ImapClient::connect(&Url::parse(&d.url())?, "alice", "nope", false).await;
    assert!(wrong.is_err());
    // Plain text off loopback is refused when the server offers no STARTTLS (127.0.0.2
    // is not counted as loopback), unless the source allows it.
    let far = Url::parse(&format!("imap://127.0.0.2:{}", d.port))?;
    let refused = ImapClient::connect(&far, "alice", "alicepw", false).await;
    assert!(
        matches!(&refused, Err(postern_connector::backends::imap::ImapError::Config(m)) if m.contains("STARTTLS")),
        "{:?}",
        refused.err()
    );
    ImapClient::connect(&far, "alice", "alicepw", true)
        .await?
        .logout()
        .await?;
    Ok(())
}

#[tokio::test]
async fn starttls_and_implicit_tls_check_the_certificate() -> Result<()> {
    let dir = Scratch::new("imap-tls");
    let pki = postern_e2e::pki::pki(&dir)?;
    let tls_port = postern_e2e::free_port();
    let d = Dovecot::start_with(
        &dir,
        &format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nservice imap-login {{\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n",
            pki.cert.display(),
            pki.key.display()
        ),
    )
    .await?;
    let ca = std::fs::read(&pki.ca)?;
    let trusted = ConnectOptions {
        allow_plain: false,
        extra_ca: Some(ca),
    };
    // STARTTLS on the plain port; the login goes over TLS (Dovecot's log says so).
    let url = Url::parse(&format!("imap://localhost:{}", d.port))?;
    let mut c = ImapClient::connect_with(&url, "alice", "alicepw", &trusted).await?;
    assert!(c.select("INBOX", None).await?.uidvalidity > 0);
    c.logout().await?;
    // Implicit TLS; a message of several MB goes up and comes back whole (many TLS
    // records each way).
    let url_tls = Url::parse(&format!("imaps://localhost:{tls_port}"))?;
    let mut c = ImapClient::connect_with(&url_tls, "alice", "alicepw", &trusted).await?;
    let big = message(5, &"y".repeat(3 << 20));
    let (_, uid) = c
        .append("INBOX", &Flags::default(), None, &big)
        .await?
        .expect("APPENDUID");
    c.select("INBOX", None).await?;
    let got = c.fetch_messages(&[uid]).await?;
    assert!(got[0].body == big, "the message came back changed over TLS");
    c.logout().await?;
    let log = std::fs::read_to_string(d.dir.join("dovecot.log"))?;
    let logins: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Login: user=<alice>"))
        .collect();
    assert_eq!(logins.len(), 2, "{log}");
    assert!(logins.iter().all(|l| l.contains("TLS")), "{logins:?}");
    // A certificate nobody vouches for is refused, on either port.
    let untrusted = ConnectOptions::default();
    assert!(
        ImapClient::connect_with(&url, "alice", "alicepw", &untrusted)
            .await
            .is_err()
    );
    assert!(
        ImapClient::connect_with(&url_tls, "alice", "alicepw", &untrusted)
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn authenticate_plain_when_offered() -> Result<()> {
    let dir = Scratch::new("imap-auth");
    // Dovecot offers AUTH=PLAIN and SASL-IR: AUTHENTICATE PLAIN, in one round trip.
    let d = Dovecot::start(&dir).await?;
    let url = Url::parse(&d.url())?;
    let mut c = ImapClient::connect(&url, "alice", "alicepw", false).await?;
    assert_eq!(c.login_method, "AUTHENTICATE PLAIN");
    assert!(c.select("INBOX", None).await?.uidvalidity > 0);
    c.logout().await?;
    assert!(
        ImapClient::connect(&url, "alice", "wrong", false)
            .await
            .is_err()
    );
    Ok(())
}
