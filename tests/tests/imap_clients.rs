//! Real mail sync tools and structure-aware clients against the gateway's IMAP
//! endpoint, with mail a connector imported from a real Dovecot: mbsync and
//! offlineimap two-way (a second run moves nothing; local changes reach Dovecot
//! once), and ENVELOPE, BODYSTRUCTURE and MIME sections compared with Dovecot's own
//! answers for the same messages.

use std::time::Duration;

use anyhow::Result;
use postern_core::mail::Flags;
use postern_e2e::imaplib::{
    self, app_password as password, dovecot_flags, lines, literals, login, note_flags,
};
use postern_e2e::mail::{Scenario, connector, imported, message};
use postern_e2e::wait_until;
use serde_json::{Value, json};

/// mbsync (isync) configured two-way between the gateway and a local Maildir.
fn mbsync(d: &postern_e2e::Deployment, pw: &str) -> Result<(std::path::PathBuf, String)> {
    let local = d.dir.path("maildir");
    std::fs::create_dir_all(&local)?;
    let config = d.dir.path("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount gateway\nHost 127.0.0.1\nPort {port}\nUser alice@acme\nPass {pw}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore gw\nAccount gateway\n\n\
             MaildirStore local\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
             Channel both\nFar :gw:\nNear :local:\nPatterns *\nCreate Near\nExpunge Both\nSync All\nSyncState *\n",
            port = d.gateway.imap_port,
            l = local.display()
        ),
    )?;
    Ok((local, config.display().to_string()))
}

fn run_mbsync(config: &str) -> Result<String> {
    let out = std::process::Command::new("mbsync")
        .args(["-V", "-c", config, "both"])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "mbsync failed:\n{text}");
    Ok(text)
}

/// A message as mbsync keeps it in a Maildir, for comparison: its line ends as
/// LF, without the `X-TUID` header mbsync adds to find its own uploads.
fn as_kept(message: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(message)
        .replace("\r\n", "\n")
        .lines()
        .filter(|l| !l.starts_with("X-TUID: "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Files in a Maildir folder (cur and new).
fn maildir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    ["cur", "new"]
        .iter()
        .flat_map(|s| {
            std::fs::read_dir(dir.join(s))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn mbsync_syncs_two_way_through_the_gateway_and_a_second_run_moves_nothing() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-mbsync").await?;
    imap.create("Projects/2026").await?;
    for n in 1..=3 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
    }
    imap.append(
        "Projects/2026",
        &Flags::parse(["\\Seen"]),
        None,
        &message(5),
    )
    .await?;
    let _conn = connector(&d, &dc)?;
    let inbox = imported(&d, "/INBOX", 3).await?;
    imported(&d, "/Projects/2026", 1).await?;
    let pw = password(&d)?;
    let (local, config) = mbsync(&d, &pw)?;

    let first = run_mbsync(&config)?;
    let files = maildir(&local.join("INBOX"));
    let mut got: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).map(|b| as_kept(&b)))
        .collect::<std::io::Result<_>>()?;
    got.sort();
    let want: Vec<Vec<u8>> = (1..=3).map(|n| as_kept(&message(n))).collect();
    assert_eq!(got, want, "{first}");
    assert_eq!(maildir(&local.join("Projects/2026")).len(), 1, "{first}");

    // A second run with nothing changed moves nothing.
    let second = run_mbsync(&config)?;
    assert_eq!(maildir(&local.join("INBOX")).len(), 3, "{second}");
    assert_eq!(
        postern_e2e::mail::held(&d, inbox).await?.len(),
        3,
        "{second}"
    );

    // Local changes: message 1 read (the Maildir's S flag), a new local message.
    let one = files
        .iter()
        .find(|f| std::fs::read(f).is_ok_and(|b| as_kept(&b) == as_kept(&message(1))))
        .expect("message 1")
        .clone();
    let name = one
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let seen = match name.split_once(":2,") {
        Some((base, flags)) => format!("{base}:2,{flags}S"),
        None => format!("{name}:2,S"),
    };
    std::fs::rename(&one, local.join("INBOX/cur").join(seen))?;
    std::fs::write(local.join("INBOX/new/1767600000.local.host"), message(8))?;
    let third = run_mbsync(&config)?;

    // Both reach Dovecot: message 1 \Seen, message 8 appended, once.
    wait_until(
        "mbsync's changes on Dovecot",
        Duration::from_secs(30),
        || async {
            let flags = dovecot_flags(dc.port, "INBOX").await?;
            let of = |n: u32| note_flags(&flags, n);
            let done = of(1).len() == 1 && of(1)[0].contains("\\Seen") && of(8).len() == 1;
            Ok(done.then_some(()))
        },
    )
    .await?;
    // And a run after that finds nothing to do: no duplicates either side.
    let fourth = run_mbsync(&config)?;
    assert_eq!(maildir(&local.join("INBOX")).len(), 4, "{third}\n{fourth}");
    assert_eq!(
        postern_e2e::mail::held(&d, inbox).await?.len(),
        4,
        "{fourth}"
    );
    Ok(())
}

/// Messages whose structure servers report in different ways: nested multiparts,
/// a forwarded message, groups and quoted names, every MIME field.
fn structured() -> Vec<Vec<u8>> {
    vec![
        b"From: \"M\xc3\xbcller, J\xc3\xbcrgen\" <jm@corp.example>\r\nSender: assistant@corp.example (The Assistant)\r\nReply-To: team: a@corp.example, \"B. B\" <b@corp.example>;\r\nTo: alice@corp.example, =?UTF-8?Q?Zo=C3=AB?= <zoe@corp.example>\r\nCc: undisclosed-recipients:;\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?= and more\r\nDate: Tue, 6 Jan 2026 10:00:00 +0100\r\nIn-Reply-To: <earlier@corp.example>\r\nMessage-ID: <nested@corp.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=\"utf-8\"; format=flowed\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHall=C3=B6chen\r\nzweite Zeile\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Language: de, en\r\n\r\n<p>Hall\xc3\xb6chen</p>\r\n--inner--\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Description: the original\r\n\r\nFrom: bob@corp.example\r\nTo: alice@corp.example\r\nSubject: original\r\nMessage-ID: <original@corp.example>\r\n\r\nThe original text.\r\n--outer\r\nContent-Type: image/png; name=\"dot.png\"\r\nContent-ID: <dot@corp.example>\r\nContent-Disposition: inline; filename=\"dot.png\"; size=4\r\nContent-Location: http://corp.example/dot.png\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--outer--\r\nepilogue\r\n".to_vec(),
        b"From: nobody\r\nSubject: no MIME at all\r\n\r\nA line\nwith a bare LF\r\nand no final line end".to_vec(),
        b"Subject: a digest\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--d--\r\n".to_vec(),
    ]
}

/// The FETCH answers of a result, one string per message, literals written inline
/// as quoted strings (servers choose differently between the two).
fn answers(result: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in result["data"].as_array().into_iter().flatten() {
        let (text, literal) = match d {
            Value::String(s) => (s.clone(), None),
            Value::Array(pair) => (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().map(str::to_string),
            ),
            _ => continue,
        };
        let starts = text.split_once(' ').is_some_and(|(n, rest)| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && rest.starts_with('(')
        });
        let text = match literal {
            Some(l) => match text.rfind('{') {
                Some(at) => format!(
                    "{}\"{}\"",
                    &text[..at],
                    l.replace('\\', "\\\\").replace('"', "\\\"")
                ),
                None => text,
            },
            None => text,
        };
        match out.last_mut() {
            Some(last) if !starts => last.push_str(&text),
            _ => out.push(text),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_and_bodystructure_match_dovecots_answers() -> Result<()> {
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-structure").await?;
    let mut messages: Vec<Vec<u8>> = postern_e2e::mail::corpus(0)
        .into_iter()
        .map(|m| m.bytes)
        .collect();
    messages.extend(structured());
    for m in &messages {
        imap.append("INBOX", &Flags::default(), None, m).await?;
    }
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", messages.len()).await?;
    let pw = password(&d)?;

    let steps = |login: Value| {
        json!([
            login,
            {"call": "select", "args": ["INBOX"]},
            {"call": "fetch", "args": ["1:*", "(ENVELOPE)"]},
            {"call": "fetch", "args": ["1:*", "(BODYSTRUCTURE)"]},
            {"call": "fetch", "args": ["1:*", "(BODY)"]},
            {"call": "fetch", "args": ["13", "(BODY.PEEK[1] BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[1.2.MIME] BODY.PEEK[2] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BODY.PEEK[3] BODY.PEEK[3.MIME])"]},
            {"call": "fetch", "args": ["1:*", "(BODY.PEEK[1] BODY.PEEK[TEXT] BODY.PEEK[HEADER])"]},
            {"call": "fetch", "args": ["1:*", "(ENVELOPE)"]},
        ])
    };
    let ours = imaplib::run(d.gateway.imap_port, steps(login(&pw))).await?;
    let theirs = imaplib::run(dc.port, steps(json!({"login": ["alice", "alicepw"]}))).await?;
    // The first FETCH computes each message's structure from its bytes and keeps it;
    // the later ones (BODYSTRUCTURE, BODY, ENVELOPE again) read what was kept.
    let bodies = d
        .query("SELECT count(DISTINCT body_sha256) FROM items WHERE body_sha256 IS NOT NULL")
        .await?[0]
        .get::<_, i64>(0);
    let kept = d.query("SELECT count(*) FROM message_structure").await?[0].get::<_, i64>(0);
    assert_eq!(kept, bodies, "one kept structure per body");
    for (step, what) in [
        (2, "ENVELOPE"),
        (3, "BODYSTRUCTURE"),
        (4, "BODY"),
        (7, "ENVELOPE, kept"),
    ] {
        let theirs_step = if step == 7 { 2 } else { step };
        let (a, b) = (answers(&ours[step]), answers(&theirs[theirs_step]));
        assert_eq!(a.len(), messages.len(), "{what}: {a:?}");
        for (n, (a, b)) in a.iter().zip(&b).enumerate() {
            // imap-codec spells the text and message types in capitals, Dovecot
            // as the message does (types are case-insensitive, RFC 2045 §5.1).
            let a = a
                .replace("(\"TEXT\" ", "(\"text\" ")
                .replace("(\"MESSAGE\" \"RFC822\" ", "(\"message\" \"rfc822\" ");
            assert_eq!(a, *b, "{what} of message {} differs from Dovecot's", n + 1);
        }
    }
    // MIME part sections: the same bytes as Dovecot's.
    for step in [5, 6] {
        let (a, b) = (literals(&ours[step]), literals(&theirs[step]));
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "sections: {:?}", lines(&theirs[step]));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b),
                "section {i} of step {step}: {:?}",
                lines(&theirs[step])
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn offlineimap_syncs_two_way_through_the_gateway_and_a_second_run_moves_nothing() -> Result<()>
{
    let Scenario {
        d, dc, mut imap, ..
    } = Scenario::start("imap-endpoint-offlineimap").await?;
    for n in 1..=3 {
        imap.append("INBOX", &Flags::default(), None, &message(n))
            .await?;
    }
    let _conn = connector(&d, &dc)?;
    let inbox = imported(&d, "/INBOX", 3).await?;
    let pw = password(&d)?;
    let local = d.dir.path("offlineimap");
    std::fs::create_dir_all(local.join("meta"))?;
    std::fs::create_dir_all(local.join("mail"))?;
    let config = d.dir.path("offlineimaprc");
    std::fs::write(
        &config,
        format!(
            "[general]\naccounts = gw\nmetadata = {l}/meta\n\n\
             [Account gw]\nlocalrepository = local\nremoterepository = remote\n\n\
             [Repository local]\ntype = Maildir\nlocalfolders = {l}/mail\n\n\
             [Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\n\
             remoteuser = alice@acme\nremotepass = {pw}\nssl = no\nstarttls = no\n\
             folderfilter = lambda f: f == 'INBOX'\n",
            l = local.display(),
            port = d.gateway.imap_port,
        ),
    )?;
    let run = || -> Result<String> {
        let out = std::process::Command::new("offlineimap")
            .args(["-o", "-u", "basic", "-c"])
            .arg(&config)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::ensure!(
            out.status.success() && !text.contains("ERROR"),
            "offlineimap failed:\n{text}"
        );
        Ok(text)
    };
    let first = run()?;
    let inbox_dir = local.join("mail/INBOX");
    assert_eq!(maildir(&inbox_dir).len(), 3, "{first}");
    let second = run()?;
    assert_eq!(maildir(&inbox_dir).len(), 3, "{second}");
    assert_eq!(postern_e2e::mail::held(&d, inbox).await?.len(), 3);

    // A new local message goes up once; a third run changes nothing.
    std::fs::write(inbox_dir.join("new/1767600000.local.host"), message(8))?;
    let third = run()?;
    wait_until(
        "offlineimap's message on Dovecot",
        Duration::from_secs(30),
        || async {
            let flags = dovecot_flags(dc.port, "INBOX").await?;
            let copies = flags
                .iter()
                .filter(|(id, _)| id.contains("<note-8@"))
                .count();
            Ok((copies == 1).then_some(()))
        },
    )
    .await?;
    let fourth = run()?;
    assert_eq!(maildir(&inbox_dir).len(), 4, "{third}\n{fourth}");
    assert_eq!(
        postern_e2e::mail::held(&d, inbox).await?.len(),
        4,
        "{fourth}"
    );
    Ok(())
}

/// A FETCH larger than one batch of answers (500 messages) is written out a batch
/// at a time; every message is answered once, in order, with the same structures
/// as Dovecot gives for the same mailbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_of_many_messages_answers_each_once_in_order() -> Result<()> {
    let Scenario { d, dc, .. } = Scenario::start("imap-endpoint-large-fetch").await?;
    let n = 1_234;
    postern_e2e::mailbench::fill_maildir(&dc, n)?;
    let _conn = connector(&d, &dc)?;
    imported(&d, "/INBOX", n).await?;
    let pw = password(&d)?;
    let steps = |login: Value| {
        json!([
            login,
            {"call": "select", "args": ["INBOX", true]},
            {"call": "fetch", "args": ["1:*", "(UID ENVELOPE BODYSTRUCTURE)"]},
        ])
    };
    let ours = answers(&imaplib::run(d.gateway.imap_port, steps(login(&pw))).await?[2]);
    let theirs =
        answers(&imaplib::run(dc.port, steps(json!({"login": ["alice", "alicepw"]}))).await?[2]);
    assert_eq!(ours.len(), n, "one answer per message");
    let seqs: Vec<usize> = ours
        .iter()
        .filter_map(|a| a.split_once(' ')?.0.parse().ok())
        .collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "in order, each once");
    // The gateway numbers messages its own way (UIDs, and the order of import);
    // the answers after the UID are the same set as Dovecot's.
    let after_uid = |all: &[String]| {
        let mut v: Vec<String> = all
            .iter()
            .map(|a| {
                a.split_once("ENVELOPE")
                    .map(|(_, rest)| rest.replace("(\"TEXT\" ", "(\"text\" "))
                    .unwrap_or_default()
            })
            .collect();
        v.sort();
        v
    };
    assert!(
        after_uid(&ours) == after_uid(&theirs),
        "the same answers as Dovecot"
    );

    // A client that sends its next command (a 20 MB APPEND) before it reads the
    // answer of a FETCH larger than the sockets' buffers: the gateway reads while it
    // writes, so neither side waits for the other forever.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", d.gateway.imap_port)).await?;
    let literal = postern_e2e::mail::multipart("pipelined", 20_000_000, 7);
    let mut out = format!(
        "a LOGIN \"alice@acme\" \"{pw}\"\r\nb SELECT INBOX\r\nc FETCH 1:* (BODY.PEEK[])\r\nd APPEND INBOX {{{}+}}\r\n",
        literal.len()
    )
    .into_bytes();
    out.extend_from_slice(&literal);
    out.extend_from_slice(b"\r\ne LOGOUT\r\n");
    let exchange = async {
        sock.write_all(&out).await?;
        let mut answer = Vec::new();
        sock.read_to_end(&mut answer).await?;
        Ok::<Vec<u8>, anyhow::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(120), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("the pipelined FETCH and APPEND never finished"))??;
    let text = String::from_utf8_lossy(&answer);
    for done in ["\r\nc OK", "\r\nd OK", "\r\ne OK"] {
        let end = &text[text.len().saturating_sub(400)..];
        assert!(text.contains(done), "{done:?} missing; the end: {end:?}");
    }
    Ok(())
}
