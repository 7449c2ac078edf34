//! SMTP submission on the gateway, driven by a real client (Python's smtplib): the
//! same logins as DAV and IMAP, mail only from the user's own addresses, limits,
//! and a message accepted only once it is in the outbox, byte for byte.

use std::path::PathBuf;

use anyhow::Result;
use postern_e2e::{Deployment, admin, last_line};
use serde_json::{Value, json};

async fn smtp(port: u16, steps: Value) -> Result<Vec<Value>> {
    smtp_at("127.0.0.1", port, steps).await
}

async fn smtp_at(host: &str, port: u16, steps: Value) -> Result<Vec<Value>> {
    postern_e2e::imaplib::run_client("smtp_client.py", host, port, steps).await
}

fn code(v: &Value) -> i64 {
    v["code"].as_i64().unwrap_or(0)
}

fn mail(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Alice <{from}>\r\nTo: Bob <bob@example.org>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@corp.example>\r\n\r\n{body}"
    )
}

/// An outbox message as the database holds it: sender, recipients, state, bytes.
type Queued = (String, Vec<String>, String, Vec<u8>);

async fn outbox(d: &Deployment) -> Result<Vec<Queued>> {
    let rows = d
        .query(
            "SELECT o.mail_from, o.rcpt_to, o.state, b.body FROM outbox o
             JOIN message_bodies b ON b.tenant_id = o.tenant_id AND b.sha256 = o.body_sha256
             ORDER BY o.created_at, o.id",
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sends_from_its_own_address_and_the_message_is_kept_before_250() -> Result<()> {
    let d = Deployment::start("submission", &["--submission-messages-per-hour", "2"]).await?;
    admin(
        &d.db,
        &[
            "user",
            "address",
            "add",
            "--tenant",
            "acme",
            "alice",
            "Alice@Corp.Example",
        ],
    )?;
    let listed = admin(
        &d.db,
        &["user", "address", "list", "--tenant", "acme", "alice"],
    )?;
    assert!(listed.contains("alice@corp.example"), "{listed}");
    let pw = last_line(&admin(
        &d.db,
        &["user", "rotate", "--tenant", "acme", "alice"],
    )?);
    let port = d.gateway.submission_port;
    let me = "alice@corp.example";

    // Before AUTH nothing is sent; a wrong password is refused.
    let r = smtp(
        port,
        json!([
            {"ehlo": "client.example"},
            {"cmd": format!("MAIL FROM:<{me}>")},
            {"login": ["alice@acme", "wrong"]},
        ]),
    )
    .await?;
    let features: Vec<String> = serde_json::from_value(r[0]["features"].clone())?;
    for f in [
        "auth",
        "size",
        "8bitmime",
        "smtputf8",
        "pipelining",
        "enhancedstatuscodes",
    ] {
        assert!(features.iter().any(|x| x == f), "{f} in {features:?}");
    }
    assert_eq!(code(&r[1]), 530, "{r:?}");
    assert_eq!(code(&r[2]), 535, "{r:?}");

    let dotted = "Line one\r\n.starts with a dot\r\n..two dots\r\n";
    let r = smtp(
        port,
        json!([
            {"ehlo": "client.example"},
            {"login": ["alice@acme", pw]},
            {"send": ["mallory@corp.example", ["bob@example.org"], mail(me, "spoof1", "x\r\n")]},
            {"cmd": "RSET"},
            {"send": [me, ["bob@example.org"], mail("mallory@corp.example", "spoof2", "x\r\n")]},
            {"cmd": "RSET"},
            {"cmd": format!("MAIL FROM:<{me}> SIZE=999999999999")},
            {"cmd": "RCPT TO:<bob@example.org>"},
            {"cmd": "XYZZY"},
            {"send": [me, ["bob@example.org", "carol@example.org"], mail(me, "first", "Hello Bob.\r\n")]},
            {"send": [me, ["bob@example.org"], mail(me, "second", dotted)]},
            {"send": [me, ["bob@example.org"], mail(me, "third", "over the limit\r\n")]},
        ]),
    )
    .await?;
    assert_eq!(code(&r[1]), 235, "AUTH: {r:?}");
    assert_eq!(code(&r[2]), 550, "an envelope sender not hers: {:?}", r[2]);
    assert_eq!(code(&r[4]), 550, "a From header not hers: {:?}", r[4]);
    assert_eq!(code(&r[6]), 552, "declared size: {:?}", r[6]);
    assert_eq!(code(&r[7]), 503, "RCPT without MAIL: {:?}", r[7]);
    assert_eq!(code(&r[8]), 500, "unknown command: {:?}", r[8]);
    assert_eq!(code(&r[9]), 250, "{:?}", r[9]);
    assert_eq!(code(&r[10]), 250, "{:?}", r[10]);
    assert_eq!(code(&r[11]), 451, "two an hour: {:?}", r[11]);

    // Exactly the two accepted messages wait in the outbox, as sent (dots undone).
    let kept = outbox(&d).await?;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0].0, me);
    assert_eq!(kept[0].1, vec!["bob@example.org", "carol@example.org"]);
    assert_eq!(kept[0].2, "queued");
    assert_eq!(kept[0].3, mail(me, "first", "Hello Bob.\r\n").into_bytes());
    assert_eq!(kept[1].3, mail(me, "second", dotted).into_bytes());

    // An address taken away cannot be sent from any more.
    admin(
        &d.db,
        &["user", "address", "remove", "--tenant", "acme", "alice", me],
    )?;
    let r = smtp(
        port,
        json!([
            {"ehlo": "client.example"},
            {"auth_login": ["alice@acme", pw]},
            {"cmd": format!("MAIL FROM:<{me}>")},
        ]),
    )
    .await?;
    assert_eq!(code(&r[1]), 235, "AUTH LOGIN: {r:?}");
    assert_eq!(code(&r[2]), 550, "{r:?}");
    Ok(())
}

/// A message the corporate server accepted: sender, recipients, bytes.
type Received = (String, Vec<String>, Vec<u8>);

/// A real SMTP server (aiosmtpd) standing in for the corporate one; what it accepted.
struct Sink {
    _proc: postern_e2e::Proc,
    dir: PathBuf,
    port: u16,
}

impl Sink {
    async fn start(d: &Deployment) -> Result<Sink> {
        let port = postern_e2e::free_port();
        let dir = d.dir.path("sink");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/smtp_sink.py");
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(script).arg(port.to_string()).arg(&dir);
        let proc = postern_e2e::Proc::spawn(cmd, d.dir.path("sink.log"))?;
        postern_e2e::wait_port(port, std::time::Duration::from_secs(20)).await?;
        Ok(Sink {
            _proc: proc,
            dir,
            port,
        })
    }

    /// A sink, with alice allowed to send as alice@corp.example; her new app password.
    async fn for_alice(d: &Deployment) -> Result<(Sink, String)> {
        let sink = Sink::start(d).await?;
        let add = [
            "address",
            "add",
            "--tenant",
            "acme",
            "alice",
            "alice@corp.example",
        ];
        admin(&d.db, &[&["user"][..], &add].concat())?;
        let pw = last_line(&admin(
            &d.db,
            &["user", "rotate", "--tenant", "acme", "alice"],
        )?);
        Ok((sink, pw))
    }

    /// Waits up to `limit` for the first message(s) to arrive; what arrived.
    async fn first_messages(&self, limit: std::time::Duration) -> Result<Vec<Received>> {
        postern_e2e::wait_until("the message at the corporate server", limit, || async {
            let got = self.received()?;
            Ok((!got.is_empty()).then_some(got))
        })
        .await
    }

    /// The messages accepted: (sender, recipients, bytes).
    fn received(&self) -> Result<Vec<Received>> {
        use base64::Engine as _;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0)
        });
        files
            .iter()
            .map(|f| {
                let v: Value = serde_json::from_slice(&std::fs::read(f)?)?;
                Ok((
                    v["mail_from"].as_str().unwrap_or_default().to_string(),
                    serde_json::from_value(v["rcpt_tos"].clone())?,
                    base64::engine::general_purpose::STANDARD
                        .decode(v["content"].as_str().unwrap_or_default())?,
                ))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn submitted_mail_leaves_through_the_connector_and_a_refusal_bounces() -> Result<()> {
    use postern_e2e::mail::{Scenario, imported};
    use postern_e2e::{Connector, SourceSpec, connector_config, wait_until};
    use std::time::Duration;

    let Scenario { d, dc, .. } = Scenario::start("submission-relay").await?;
    let (sink, pw) = Sink::for_alice(&d).await?;
    let me = "alice@corp.example";
    let sources = [
        SourceSpec::alice("mail", "imap", &dc.url(), "1s"),
        SourceSpec::alice(
            "out",
            "smtp",
            &format!("smtp://127.0.0.1:{}", sink.port),
            "1s",
        ),
    ];
    let config = connector_config(&d.gateway.grpc_url, &d.token, &sources);
    let mut conn = Connector::start(&d.dir, "hq", &config)?;
    imported(&d, "/INBOX", 0).await?;

    // Sent while the connector is down: accepted, kept, relayed once it is back.
    conn.proc.kill9();
    let first = mail(me, "first", "Hello Bob.\r\n.a dotted line\r\n");
    let r = smtp(
        d.gateway.submission_port,
        json!([
            {"ehlo": "client.example"},
            {"login": ["alice@acme", pw]},
            {"send": [me, ["bob@example.org"], first]},
            {"send": [me, ["reject@example.org"], mail(me, "refused", "No one reads this.\r\n")]},
        ]),
    )
    .await?;
    assert_eq!(code(&r[2]), 250, "{r:?}");
    assert_eq!(code(&r[3]), 250, "{r:?}");
    assert!(
        sink.received()?.is_empty(),
        "nothing leaves while the connector is down"
    );
    let status = admin(&d.db, &["status"])?;
    assert!(
        status.contains("outbox\talice@acme\tqueued 2 (oldest"),
        "{status}"
    );
    // The connector stays away for a minute, as the issue asks (an outage, not a
    // wait for anything): the messages wait in the outbox meanwhile.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(sink.received()?.is_empty());
    assert_eq!(outbox(&d).await?.len(), 2);
    let _conn = Connector::start(&d.dir, "hq-again", &config)?;

    let got = sink.first_messages(Duration::from_secs(60)).await?;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, me);
    assert_eq!(got[0].1, vec!["bob@example.org"]);
    assert_eq!(got[0].2, first.as_bytes(), "byte for byte");

    // The refused one left the outbox as failed, and its sender has a bounce, which
    // reaches the corporate INBOX too.
    wait_until("the outbox settled", Duration::from_secs(60), || async {
        let states: Vec<String> = outbox(&d).await?.into_iter().map(|o| o.2).collect();
        Ok((states == ["sent", "failed"]).then_some(()))
    })
    .await?;
    wait_until("the bounce on Dovecot", Duration::from_secs(60), || async {
        let r = postern_e2e::imaplib::run(
            dc.port,
            json!([
                {"login": ["alice", "alicepw"]},
                {"call": "select", "args": ["INBOX"]},
                {"call": "search", "args": [null, "SUBJECT", "\"Undelivered Mail\""]},
            ]),
        )
        .await?;
        let found = r[2]["data"][0]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string();
        Ok((!found.is_empty()).then_some(()))
    })
    .await?;
    assert_eq!(sink.received()?.len(), 1, "sent once");

    // The copy in Sent is made once: by the gateway, and a client that files the
    // same message there finds that copy instead of making a second.
    imported(&d, "/Sent", 2).await?;
    let r = postern_e2e::imaplib::run(
        d.gateway.imap_port,
        json!([
            {"login": ["alice@acme", pw]},
            {"append": ["Sent", "(\\Seen)", first]},
        ]),
    )
    .await?;
    assert!(
        postern_e2e::imaplib::lines(&r[1])
            .join(" ")
            .contains("APPENDUID"),
        "{r:?}"
    );
    let in_sent = || async {
        let r = postern_e2e::imaplib::run(
            dc.port,
            json!([
                {"login": ["alice", "alicepw"]},
                {"call": "select", "args": ["Sent"]},
                {"call": "search", "args": [null, "HEADER", "Message-ID", "<first@corp.example>"]},
            ]),
        )
        .await?;
        Ok::<usize, anyhow::Error>(
            r[2]["data"][0]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .count(),
        )
    };
    wait_until(
        "the Sent copy on Dovecot",
        Duration::from_secs(60),
        || async { Ok((in_sent().await? == 1).then_some(())) },
    )
    .await?;
    assert_eq!(
        postern_e2e::mail::held(&d, d.collection("/Sent").await?)
            .await?
            .len(),
        2
    );
    assert_eq!(in_sent().await?, 1, "one copy in Sent");

    let status = admin(&d.db, &["status"])?;
    assert!(
        status.contains("outbox\talice@acme\tqueued 0\tsent today 1\tfailed today 1"),
        "{status}"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", d.gateway.http_port))
        .await?
        .text()
        .await?;
    for line in [
        "postern_outbox_queued 0",
        "postern_outbox_relayed_total{outcome=\"sent\"} 1",
        "postern_outbox_relayed_total{outcome=\"permanent\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    Ok(())
}

/// The relay does not wait for its source's interval: the gateway tells the
/// connector when its user submitted mail (a database notification, so from any
/// replica), and the message leaves at once. The interval here is an hour.
#[tokio::test(flavor = "multi_thread")]
async fn submitted_mail_leaves_at_once_whatever_the_relay_interval() -> Result<()> {
    use postern_e2e::{Connector, SourceSpec, connector_config, wait_until};
    use std::time::Duration;

    let d = Deployment::start("submission-nudge", &[]).await?;
    let (sink, pw) = Sink::for_alice(&d).await?;
    let relay = SourceSpec::alice(
        "out",
        "smtp",
        &format!("smtp://127.0.0.1:{}", sink.port),
        "1h",
    );
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[relay]),
    )?;
    // The relay has looked once, found nothing, and waits for its next hour.
    wait_until(
        "the relay's first look",
        Duration::from_secs(30),
        || async {
            Ok(conn
                .proc
                .output()
                .contains("nothing in the outbox to relay now")
                .then_some(()))
        },
    )
    .await?;

    let me = "alice@corp.example";
    let message = mail(me, "prompt", "Sent at once.\r\n");
    let r = smtp(
        d.gateway.submission_port,
        json!([
            {"ehlo": "client.example"},
            {"login": ["alice@acme", pw]},
            {"send": [me, ["bob@example.org"], message]},
        ]),
    )
    .await?;
    assert_eq!(code(&r[2]), 250, "{r:?}");
    let got = sink.first_messages(Duration::from_secs(30)).await?;
    assert_eq!(got[0].2, message.as_bytes());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_certificate_the_submission_port_offers_starttls() -> Result<()> {
    let dir = postern_e2e::Scratch::new("submission-tls-pki");
    let p = postern_e2e::pki::pki(&dir)?;
    let (cert, key) = (p.cert.display().to_string(), p.key.display().to_string());
    let d = Deployment::start("submission-tls", &["--tls-cert", &cert, "--tls-key", &key]).await?;
    admin(
        &d.db,
        &[
            "user",
            "address",
            "add",
            "--tenant",
            "acme",
            "alice",
            "alice@corp.example",
        ],
    )?;
    let pw = last_line(&admin(
        &d.db,
        &["user", "rotate", "--tenant", "acme", "alice"],
    )?);
    let me = "alice@corp.example";
    let r = smtp_at(
        "localhost",
        d.gateway.submission_port,
        json!([
            {"ehlo": "client.example"},
            {"starttls": p.ca.display().to_string()},
            {"ehlo": "client.example"},
            {"login": ["alice@acme", pw]},
            {"send": [me, ["bob@example.org"], mail(me, "over-tls", "Hello.\r\n")]},
        ]),
    )
    .await?;
    let features = |i: usize| -> Vec<String> {
        serde_json::from_value(r[i]["features"].clone()).unwrap_or_default()
    };
    assert!(features(0).iter().any(|f| f == "starttls"), "{r:?}");
    assert_eq!(code(&r[1]), 220, "{r:?}");
    assert!(
        !features(2).iter().any(|f| f == "starttls"),
        "not offered again under TLS: {r:?}"
    );
    assert_eq!(code(&r[3]), 235, "{r:?}");
    assert_eq!(code(&r[4]), 250, "{r:?}");
    assert_eq!(outbox(&d).await?.len(), 1);
    Ok(())
}
