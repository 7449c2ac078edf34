//! What a hostile client can do to the gateway's HTTP port, against the real gateway
//! and PostgreSQL: each scenario is one way a security review took the gateway down
//! or let one caller hurt everyone else, and shows it no longer does.

use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use postern_e2e::{Deployment, admin, last_line, wait_until};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// A gateway with user `carol@acme` whose app password is known.
async fn gateway(name: &str, args: &[&str]) -> Result<(Deployment, String, String)> {
    let d = Deployment::start(name, args).await?;
    let password = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "carol"],
    )?);
    let base = format!("http://127.0.0.1:{}", d.gateway.http_port);
    Ok((d, password, base))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn propfind() -> Method {
    Method::from_bytes(b"PROPFIND").expect("method")
}

/// The gateway answers its health check (the process did not die).
async fn alive(base: &str) -> Result<bool> {
    Ok(client()
        .get(format!("{base}/healthz"))
        .send()
        .await?
        .status()
        .is_success())
}

/// A metric's value from `/metrics` (0 when absent).
async fn metric(base: &str, line_start: &str) -> Result<f64> {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The peak resident memory of a process so far (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Result<u64> {
    postern_e2e::proc_kib(pid, "VmHWM:")
        .map(|k| k / 1024)
        .ok_or_else(|| anyhow::anyhow!("no VmHWM for {pid}"))
}

/// Waits until the server closes `stream` (a read returns end of file or an error).
async fn closed_by_server(stream: &mut TcpStream) -> Result<()> {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("the server kept the connection open"))
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_xml_is_refused_and_the_gateway_stays_up() -> Result<()> {
    let (d, password, base) = gateway("nested-xml", &[]).await?;
    // 60,000 nested elements aborted the whole process (stack overflow).
    let depth = 60_000;
    let body = format!(
        r#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop>{}{}</prop></propfind>"#,
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    );
    let r = client()
        .request(propfind(), format!("{base}/dav/principals/carol@acme/"))
        .basic_auth("carol@acme", Some(&password))
        .header("Depth", "0")
        .body(body)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text().await?.contains("deeper than"),
        "the answer says why"
    );
    assert!(alive(&base).await?, "the gateway is still up");
    assert!(
        !d.gateway.proc.output().contains("overflow"),
        "no stack overflow"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_propfinds_and_bodies_are_refused() -> Result<()> {
    let (_d, password, base) = gateway("huge-propfind", &[]).await?;
    let url = format!("{base}/dav/principals/carol@acme/");
    let send = |body: String| {
        client()
            .request(propfind(), &url)
            .basic_auth("carol@acme", Some(&password))
            .header("Depth", "0")
            .body(body)
            .send()
    };
    // A million properties in 4 MB: over the XML body size.
    let million: String = (0..1_000_000).map(|i| format!("<p{i}/>")).collect();
    let r = send(format!(
        r#"<propfind xmlns="DAV:"><prop xmlns="urn:x">{million}</prop></propfind>"#
    ))
    .await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A thousand properties fit in the body but not in one PROPFIND.
    let thousand: String = (0..1_000).map(|i| format!("<x:p{i}/>")).collect();
    let r = send(format!(
        r#"<propfind xmlns="DAV:" xmlns:x="urn:x"><prop>{thousand}</prop></propfind>"#
    ))
    .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await?.contains("at most 256"));
    // A 40 MB upload is refused from its declared length, before it is read.
    let r = client()
        .put(format!("{base}/dav/calendars/carol@acme/x/big.ics"))
        .basic_auth("carol@acme", Some(&password))
        .header("Content-Type", "text/calendar")
        .body(vec![b'x'; 40 << 20])
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // The gateway may close the connection while the client is still sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert!(alive(&base).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn names_no_resource_can_have_are_the_clients_mistake() -> Result<()> {
    let (_d, password, base) = gateway("bad-names", &[]).await?;
    let get = |path: String, login: &'static str| {
        client()
            .get(format!("{base}{path}"))
            .basic_auth(login, Some(password.clone()))
            .send()
    };
    // Each of these reached the database and came back 503.
    let nul_path = get("/dav/calendars/carol@acme/wo%00rk/".into(), "carol@acme").await?;
    assert_eq!(nul_path.status(), StatusCode::BAD_REQUEST);
    let nul_login = get("/dav/principals/carol@acme/".into(), "car\0ol@acme").await?;
    assert_eq!(nul_login.status(), StatusCode::UNAUTHORIZED);
    let long = get(
        format!("/dav/calendars/carol@acme/work/{}.ics", "a".repeat(6000)),
        "carol@acme",
    )
    .await?;
    assert_eq!(long.status(), StatusCode::URI_TOO_LONG);
    let put_long = client()
        .put(format!(
            "{base}/dav/calendars/carol@acme/work/{}.ics",
            "b".repeat(1000)
        ))
        .basic_auth("carol@acme", Some(&password))
        .body("x")
        .send()
        .await?;
    assert_eq!(put_long.status(), StatusCode::BAD_REQUEST);
    // A value the database cannot store, inside an accepted request.
    let mk = client()
        .request(
            Method::from_bytes(b"MKCALENDAR")?,
            format!("{base}/dav/calendars/carol@acme/nul/"),
        )
        .basic_auth("carol@acme", Some(&password))
        .body(r#"<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>a&#0;b</D:displayname></D:prop></D:set></C:mkcalendar>"#)
        .send()
        .await?;
    assert!(
        mk.status().is_client_error(),
        "a NUL the database cannot store is the client's mistake: {}",
        mk.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_cost_the_same_known_or_not_and_floods_wait_their_turn() -> Result<()> {
    let (d, password, base) = gateway(
        "password-flood",
        &["--password-verifications", "1", "--password-wait", "50ms"],
    )
    .await?;
    let url = format!("{base}/dav/principals/carol@acme/");
    let verifications = || metric(&base, "postern_password_verifications_total");
    let try_login = |login: &'static str, pw: &'static str| {
        client()
            .request(propfind(), &url)
            .basic_auth(login, Some(pw))
            .header("Depth", "0")
            .send()
    };

    // An unknown login pays a verification, as a known one with a wrong password does.
    let before = verifications().await?;
    assert_eq!(
        try_login("nobody@acme", "guess").await?.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(verifications().await?, before + 1.0, "unknown login");
    assert_eq!(
        try_login("carol@nowhere", "guess").await?.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(verifications().await?, before + 2.0, "unknown tenant");
    assert_eq!(
        try_login("carol@acme", "guess").await?.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(verifications().await?, before + 3.0, "wrong password");

    // A flood: one verification at a time, the rest wait 50 ms and are told to retry.
    let flood: Vec<_> = (0..16).map(|_| try_login("carol@acme", "wrong")).collect();
    let answers = futures::future::join_all(flood).await;
    let mut busy = 0;
    for a in answers {
        let a = a?;
        match a.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(
                    a.headers().get("retry-after").map(|v| v.as_bytes()),
                    Some(&b"1"[..])
                );
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "with one slot, a flood is told to come back");
    assert!(metric(&base, "postern_auth_busy_total").await? >= f64::from(busy));

    // The right password still works once the flood is over.
    let ok = wait_until("carol logs in", WAIT, || {
        let r = client()
            .request(propfind(), &url)
            .basic_auth("carol@acme", Some(password.clone()))
            .header("Depth", "0")
            .send();
        async move { Ok((r.await?.status() == StatusCode::MULTI_STATUS).then_some(())) }
    })
    .await;
    assert!(ok.is_ok(), "{ok:?}");

    // 200 KB logins are refused at the door.
    let login = format!("{}@acme", "x".repeat(200_000));
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:pw"))
    );
    let r = client()
        .request(propfind(), &url)
        .header("Authorization", header)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    drop(d);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_flood_does_not_grow_memory() -> Result<()> {
    let (d, _password, base) = gateway("password-memory", &[]).await?;
    let pid = d.gateway.proc.pid().expect("running");
    let url = format!("{base}/dav/principals/carol@acme/");
    // 48 concurrent wrong passwords took the gateway from 12 MB to about 3 GB.
    let flood: Vec<_> = (0..48)
        .map(|i| {
            client()
                .request(propfind(), &url)
                .basic_auth("carol@acme", Some(format!("wrong-{i}")))
                .header("Depth", "0")
                .send()
        })
        .collect();
    for a in futures::future::join_all(flood).await {
        let s = a?.status();
        assert!(
            s == StatusCode::UNAUTHORIZED || s == StatusCode::SERVICE_UNAVAILABLE,
            "{s}"
        );
    }
    let rss = peak_rss_mib(pid)?;
    assert!(
        rss < 200,
        "the gateway peaked at {rss} MiB during the flood"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_connections_are_closed() -> Result<()> {
    let (_d, password, base) = gateway(
        "slowloris",
        &["--header-timeout", "1s", "--body-timeout", "1s"],
    )
    .await?;
    let addr = base.trim_start_matches("http://").to_string();

    // Headers that never end: the connection is closed.
    let mut slow = TcpStream::connect(&addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    closed_by_server(&mut slow).await?;

    // A body that never ends: 408.
    let mut slow = TcpStream::connect(&addr).await?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("carol@acme:{password}"));
    slow.write_all(
        format!(
            "PROPFIND /dav/principals/carol@acme/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nDepth: 0\r\nContent-Length: 1000\r\n\r\n<propfind"
        )
        .as_bytes(),
    )
    .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, slow.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(&addr).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    closed_by_server(&mut idle).await?;
    assert!(alive(&base).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_hold_every_connection() -> Result<()> {
    let (_d, _password, base) =
        gateway("connection-cap", &["--max-connections-per-address", "4"]).await?;
    let addr = base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = TcpStream::connect(&addr).await?;
        held.push(s);
    }
    // The fifth from the same address is closed at once.
    let mut fifth = TcpStream::connect(&addr).await?;
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, fifth.read_to_end(&mut buf)).await?;
    assert!(buf.is_empty(), "no answer on a connection over the cap");
    // Give one back: a new connection is served.
    drop(held.pop());
    wait_until("a slot comes back", WAIT, || async {
        Ok(alive(&base).await.unwrap_or(false).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_tls_client_blocks_nobody() -> Result<()> {
    let dir = postern_e2e::Scratch::new("tls-silent-pki");
    let pki = postern_e2e::pki::pki(&dir)?;
    let (cert, key) = (
        pki.cert.display().to_string(),
        pki.key.display().to_string(),
    );
    let d = Deployment::start(
        "tls-silent",
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-handshake-timeout",
            "1s",
        ],
    )
    .await?;
    let addr = format!("127.0.0.1:{}", d.gateway.http_port);
    // Connects and never says hello: this blocked every new HTTPS client.
    let mut silent = TcpStream::connect(&addr).await?;
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let r = https.get(format!("https://{addr}/healthz")).send().await?;
    assert!(r.status().is_success());
    // And it is closed after the handshake timeout.
    closed_by_server(&mut silent).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_cannot_take_every_worker() -> Result<()> {
    let (d, password, base) = gateway(
        "per-user",
        &["--max-requests-per-user", "1", "--body-timeout", "20s"],
    )
    .await?;
    let dave = last_line(&admin(&d.db, &["user", "add", "--tenant", "acme", "dave"])?);
    let addr = base.trim_start_matches("http://").to_string();
    // carol's one slot is held by an upload that trickles in.
    let mut slow = TcpStream::connect(&addr).await?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("carol@acme:{password}"));
    slow.write_all(
        format!(
            "PUT /dav/calendars/carol@acme/work/slow.ics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: text/calendar\r\nContent-Length: 1000\r\n\r\nBEGIN"
        )
        .as_bytes(),
    )
    .await?;
    let ask = |login: &'static str, pw: String| {
        client()
            .request(propfind(), format!("{base}/dav/principals/{login}/"))
            .basic_auth(login, Some(pw))
            .header("Depth", "0")
            .send()
    };
    let told = wait_until("carol is told to come back", WAIT, || {
        let r = ask("carol@acme", password.clone());
        async move {
            let r = r.await?;
            Ok((r.status() == StatusCode::TOO_MANY_REQUESTS).then_some(r))
        }
    })
    .await?;
    assert_eq!(
        told.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(
        ask("dave@acme", dave.clone()).await?.status(),
        StatusCode::MULTI_STATUS,
        "another user is served meanwhile"
    );
    // The slow upload goes away: carol is served again.
    drop(slow);
    wait_until("carol served again", WAIT, || {
        let r = ask("carol@acme", password.clone());
        async move { Ok((r.await?.status() == StatusCode::MULTI_STATUS).then_some(())) }
    })
    .await?;
    Ok(())
}
