//! Benchmark (not a test) of the gateway under attack: while attackers run each class
//! a security review used to hurt it, a well-behaved client keeps syncing, and this
//! prints that client's latency (p50, p99, max) and the gateway's peak memory per
//! attack, next to the idle baseline.
//!
//! Everything is real and runs with the gateway's default limits: a release gateway
//! with TLS on both ports (a certificate made here), PostgreSQL, Radicale with a
//! 200-event calendar behind a release connector. The well-behaved client is a DAV
//! client on 127.0.0.1 (sync-collection with its token, PROPFIND depth 1, GET of an
//! event, in a loop, on one kept-alive connection). Attackers come from other
//! loopback addresses, as they would from other hosts:
//!
//! | attack | what it sends |
//! |---|---|
//! | nested XML | PROPFINDs nesting 60,000 elements (logged in as another user) |
//! | huge PROPFIND | 4 MB bodies naming a million properties, and 1 MB ones with 140,000 |
//! | password flood | 48 concurrent wrong passwords for the client's own login |
//! | slowloris | 300 connections sending headers a byte at a time, 100 sending bodies |
//! | idle TLS | 1,000 connections that never send a ClientHello, 200 that finish the handshake and say nothing |
//! | gzip bomb | 6 link streams with the connector's token sending 32 MiB of zeros in 32 KB of gzip, over and over |
//!
//! Targets (issue 9): healthy p99 under 250 ms and gateway RSS under 256 MB in every
//! phase. Run it with `scripts/bench-hostile.sh`; `POSTERN_BENCH_SECONDS` sets each
//! phase's length (default 10).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use postern_e2e::backends::{Radicale, Seed, generated_events};
use postern_e2e::{
    Connector, Deployment, Scratch, SourceSpec, admin, connector_config, last_line, wait_until,
};
use postern_proto as pb;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

const SYNC: &str = r#"<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>TOKEN</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#;
const PROPFIND: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontenttype/></d:prop></d:propfind>"#;

fn rss_kib(pid: u32) -> u64 {
    postern_e2e::proc_kib(pid, "VmRSS:").unwrap_or(0)
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection from a given loopback address.
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

fn https_client(from: IpAddr) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(from)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// A TLS client that trusts anything (the attacker does not care).
fn tls_connector() -> tokio_rustls::TlsConnector {
    #[derive(Debug)]
    struct Anything;
    impl tokio_rustls::rustls::client::danger::ServerCertVerifier for Anything {
        fn verify_server_cert(
            &self,
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &[rustls_pki_types::CertificateDer<'_>],
            _: &rustls_pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<
            tokio_rustls::rustls::client::danger::ServerCertVerified,
            tokio_rustls::rustls::Error,
        > {
            Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &tokio_rustls::rustls::DigitallySignedStruct,
        ) -> Result<
            tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
            tokio_rustls::rustls::Error,
        > {
            Ok(tokio_rustls::rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &tokio_rustls::rustls::DigitallySignedStruct,
        ) -> Result<
            tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
            tokio_rustls::rustls::Error,
        > {
            Ok(tokio_rustls::rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
            tokio_rustls::rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(Anything))
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// What the attackers of a phase got back, counted by kind ("400", "closed after 10s").
#[derive(Default)]
struct Tally(std::sync::Mutex<std::collections::BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, label: impl Into<String>) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(label.into()).or_insert(0) += 1;
        }
    }

    fn summary(&self) -> String {
        self.0
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

/// Everything the phases share.
struct Bench {
    http: SocketAddr,
    /// The attacker's own principal (logged in, so its bodies are read).
    mallory_principal: String,
    grpc_url: String,
    ca: Vec<u8>,
    carol: (String, String),
    mallory: (String, String),
    token: String,
    calendar: String,
    sync_token: String,
    event: String,
}

/// One request of the well-behaved client; its latency, or an error.
async fn healthy_round(b: &Bench, client: &reqwest::Client) -> Vec<Result<Duration>> {
    let mut out = Vec::new();
    let auth = (&b.carol.0, Some(&b.carol.1));
    let t = Instant::now();
    let r = client
        .request(
            reqwest::Method::from_bytes(b"REPORT").expect("m"),
            &b.calendar,
        )
        .basic_auth(auth.0, auth.1)
        .header("Content-Type", "application/xml")
        .header("Depth", "1")
        .body(SYNC.replace("TOKEN", &b.sync_token))
        .send()
        .await;
    out.push(match r {
        Ok(r) if r.status().as_u16() == 207 => {
            r.bytes().await.map(|_| t.elapsed()).map_err(Into::into)
        }
        Ok(r) => Err(anyhow::anyhow!("sync answered {}", r.status())),
        Err(e) => Err(e.into()),
    });
    let t = Instant::now();
    let r = client
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").expect("m"),
            &b.calendar,
        )
        .basic_auth(auth.0, auth.1)
        .header("Depth", "1")
        .body(PROPFIND)
        .send()
        .await;
    out.push(match r {
        Ok(r) if r.status().as_u16() == 207 => {
            r.bytes().await.map(|_| t.elapsed()).map_err(Into::into)
        }
        Ok(r) => Err(anyhow::anyhow!("propfind answered {}", r.status())),
        Err(e) => Err(e.into()),
    });
    let t = Instant::now();
    let r = client.get(&b.event).basic_auth(auth.0, auth.1).send().await;
    out.push(match r {
        Ok(r) if r.status().is_success() => {
            r.bytes().await.map(|_| t.elapsed()).map_err(Into::into)
        }
        Ok(r) => Err(anyhow::anyhow!("get answered {}", r.status())),
        Err(e) => Err(e.into()),
    });
    out
}

fn nested_body() -> String {
    let depth = 60_000;
    format!(
        r#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop>{}{}</prop></propfind>"#,
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    )
}

fn props_body(n: usize) -> String {
    let props: String = (0..n).map(|i| format!("<p{i}/>")).collect();
    format!(r#"<propfind xmlns="DAV:"><prop xmlns="urn:x">{props}</prop></propfind>"#)
}

/// One attacker logged in as mallory, sending PROPFINDs with `body` to its own
/// principal (so the body is read) as fast as they are answered.
fn propfinds(
    b: &Arc<Bench>,
    tally: &Arc<Tally>,
    tasks: &mut JoinSet<()>,
    body: Arc<String>,
) -> Result<()> {
    let (b, tally) = (b.clone(), tally.clone());
    let client = https_client(loopback(2))?;
    tasks.spawn(async move {
        loop {
            let r = client
                .request(
                    reqwest::Method::from_bytes(b"PROPFIND").expect("m"),
                    &b.mallory_principal,
                )
                .basic_auth(&b.mallory.0, Some(&b.mallory.1))
                .header("Depth", "0")
                .body(body.as_str().to_owned())
                .send()
                .await;
            tally.add(match r {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "error".into(),
            });
        }
    });
    Ok(())
}

/// Starts the attackers of `phase`.
fn attack(phase: &str, b: &Arc<Bench>, tally: &Arc<Tally>, tasks: &mut JoinSet<()>) -> Result<()> {
    match phase {
        "baseline" => {}
        "nested XML" => {
            let body = Arc::new(nested_body());
            for _ in 0..8 {
                propfinds(b, tally, tasks, body.clone())?;
            }
        }
        "huge PROPFIND" => {
            let million = Arc::new(props_body(1_000_000));
            let many = Arc::new(
                props_body(140_000)
                    .chars()
                    .take(1 << 20)
                    .collect::<String>(),
            );
            for i in 0..8 {
                let body = if i % 2 == 0 { &million } else { &many };
                propfinds(b, tally, tasks, body.clone())?;
            }
        }
        "password flood" => {
            for i in 0..48 {
                let (b, tally) = (b.clone(), tally.clone());
                let client = https_client(loopback(2 + (i % 4) as u8))?;
                tasks.spawn(async move {
                    let mut n = 0u64;
                    loop {
                        n += 1;
                        let r = client
                            .request(
                                reqwest::Method::from_bytes(b"PROPFIND").expect("m"),
                                &b.calendar,
                            )
                            .basic_auth(&b.carol.0, Some(format!("guess-{i}-{n}")))
                            .header("Depth", "0")
                            .send()
                            .await;
                        tally.add(match r {
                            Ok(r) => r.status().as_u16().to_string(),
                            Err(_) => "error".into(),
                        });
                    }
                });
            }
        }
        "slowloris" => {
            let tls = tls_connector();
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", b.mallory.0, b.mallory.1));
            for i in 0..400 {
                let (b, tally, tls, auth) = (b.clone(), tally.clone(), tls.clone(), auth.clone());
                tasks.spawn(async move {
                    let body = i >= 300;
                    loop {
                        let Ok(tcp) = connect_from(loopback(2 + (i % 2) as u8), b.http).await else {
                            tally.add("refused");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        };
                        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
                        let Ok(mut s) = tls.connect(name, tcp).await else {
                            tally.add("closed at once");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        };
                        let head = if body {
                            format!("PUT /dav/calendars/{}/work/slow.ics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: text/calendar\r\nContent-Length: 100000\r\n\r\n", b.mallory.0)
                        } else {
                            "GET /healthz HTTP/1.1\r\nHost: x\r\n".to_string()
                        };
                        if s.write_all(head.as_bytes()).await.is_err() {
                            continue;
                        }
                        tally.add("connected");
                        let started = Instant::now();
                        // A byte a second until the gateway hangs up.
                        while s.write_all(b"X").await.is_ok() && s.flush().await.is_ok() {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        tally.add(format!(
                            "{} closed after {}s",
                            if body { "slow body" } else { "slow header" },
                            started.elapsed().as_secs()
                        ));
                    }
                });
            }
        }
        "idle TLS" => {
            let tls = tls_connector();
            for i in 0..1_200 {
                let (b, tally, tls) = (b.clone(), tally.clone(), tls.clone());
                tasks.spawn(async move {
                    let handshake = i >= 1_000;
                    loop {
                        let Ok(tcp) = connect_from(loopback(4 + (i % 3) as u8), b.http).await
                        else {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        };
                        let started = Instant::now();
                        if handshake {
                            let name =
                                rustls_pki_types::ServerName::try_from("localhost").expect("name");
                            let Ok(mut s) = tls.connect(name, tcp).await else {
                                tally.add("closed at once");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                continue;
                            };
                            let mut buf = [0u8; 64];
                            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                        } else {
                            let mut tcp = tcp;
                            let mut buf = [0u8; 64];
                            let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
                        }
                        let lasted = started.elapsed();
                        tally.add(if lasted < Duration::from_millis(500) {
                            "closed at once".to_string()
                        } else {
                            format!("closed after {}s", lasted.as_secs())
                        });
                    }
                });
            }
        }
        "gzip bomb" => {
            for _ in 0..6 {
                let (b, tally) = (b.clone(), tally.clone());
                tasks.spawn(async move {
                    loop {
                        let outcome = bomb(&b).await;
                        tally.add(outcome);
                    }
                });
            }
        }
        other => bail!("unknown phase {other}"),
    }
    Ok(())
}

/// One link stream sending inflating messages until the gateway ends it; says how.
async fn bomb(b: &Bench) -> String {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&b.ca))
        .domain_name("localhost");
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(b.grpc_url.clone()) else {
        return "bad url".into();
    };
    let Ok(endpoint) = endpoint.tls_config(tls) else {
        return "tls config".into();
    };
    let channel = match endpoint.local_address(Some(loopback(7))).connect().await {
        Ok(c) => c,
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return "connect failed".into();
        }
    };
    let mut client = pb::connector_link_client::ConnectorLinkClient::new(channel)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_encoding_message_size(256 << 20);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Ok(v) = format!("Bearer {}", b.token).parse() {
        req.metadata_mut().insert("authorization", v);
    }
    let mut stream = match client.link(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return format!("refused: {:?}", s.code());
        }
    };
    let message = pb::ConnectorMessage {
        request_id: 1,
        body: Some(pb::connector_message::Body::ChangePacket(
            pb::ChangePacket {
                collection_id: uuid::Uuid::new_v4().to_string(),
                changes: vec![pb::Change {
                    op: pb::change::Op::Upsert as i32,
                    content: vec![0; 32 << 20],
                    backend_href: "/x/y.ics".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )),
        trace_context: Default::default(),
    };
    let _ = tx.send(message).await;
    loop {
        match tokio_stream::StreamExt::next(&mut stream).await {
            Some(Ok(_)) => continue,
            Some(Err(s)) => return format!("ended: {:?}", s.code()),
            None => return "ended: OK".into(),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let seconds: u64 = std::env::var("POSTERN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = Scratch::new("hostile-bench");
    let pki = postern_e2e::pki::pki(&dir)?;
    let (cert, key) = (
        pki.cert.display().to_string(),
        pki.key.display().to_string(),
    );
    let d = Deployment::start("hostile-bench", &["--tls-cert", &cert, "--tls-key", &key]).await?;
    let carol_pw = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "carol"],
    )?);
    let mallory_pw = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "mallory"],
    )?);
    let rad = Radicale::start(
        &d.dir,
        &[Seed::calendar("work", generated_events(200, "hb"))],
    )
    .await?;
    let mut source = SourceSpec::alice("cal", "caldav", &rad.url, "30s");
    source.user = "carol".into();
    let grpc_url = d
        .gateway
        .grpc_url
        .replace("http://127.0.0.1", "https://localhost");
    let config = format!(
        "ca_file = \"{}\"\n{}",
        pki.ca.display(),
        connector_config(&grpc_url, &d.token, &[source])
    );
    let _connector = Connector::start(&d.dir, "hq", &config)?;
    let coll = d.collection("/alice/work/").await?;
    wait_until("import", Duration::from_secs(120), || async {
        Ok((d.items_by_uid(coll).await?.len() == 200).then_some(()))
    })
    .await?;
    let http: SocketAddr = format!("127.0.0.1:{}", d.gateway.http_port).parse()?;
    let base = format!("https://localhost:{}", d.gateway.http_port);
    let calendar = format!("{base}/dav/calendars/carol@acme/work/");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("localhost", http)
        .timeout(Duration::from_secs(30))
        .build()?;
    let first = client
        .request(reqwest::Method::from_bytes(b"REPORT")?, &calendar)
        .basic_auth("carol@acme", Some(&carol_pw))
        .header("Content-Type", "application/xml")
        .body(SYNC.replace("TOKEN", ""))
        .send()
        .await?
        .text()
        .await?;
    let root = postern_davxml::parse(first.as_bytes()).context("sync answer")?;
    let sync_token = root
        .child(postern_davxml::DAV, "sync-token")
        .map(|t| t.trimmed().to_string())
        .context("no sync token")?;
    let event_href = root
        .find(postern_davxml::DAV, "href")
        .map(|h| h.trimmed().to_string())
        .context("no event")?;
    let b = Arc::new(Bench {
        http,
        mallory_principal: format!("{base}/dav/principals/mallory@acme/"),
        grpc_url,
        ca: std::fs::read(&pki.ca)?,
        carol: ("carol@acme".into(), carol_pw),
        mallory: ("mallory@acme".into(), mallory_pw),
        token: d.token.clone(),
        calendar: calendar.clone(),
        sync_token,
        event: format!("{base}{event_href}"),
    });
    let pid = d.gateway.proc.pid().context("gateway pid")?;
    println!(
        "hostile-clients benchmark: release gateway (default limits, TLS), {seconds} s per phase"
    );
    println!(
        "| phase | healthy requests | errors | p50 | p99 | max | gateway peak RSS | attackers got |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut worst_p99 = Duration::ZERO;
    let mut worst_rss = 0;
    for phase in [
        "baseline",
        "nested XML",
        "huge PROPFIND",
        "password flood",
        "slowloris",
        "idle TLS",
        "gzip bomb",
    ] {
        let tally = Arc::new(Tally::default());
        let mut attackers = JoinSet::new();
        attack(phase, &b, &tally, &mut attackers)?;
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        // Let the attack get going before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut latencies = Vec::new();
        let mut errors = 0;
        let mut first_error = String::new();
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            for r in healthy_round(&b, &client).await {
                match r {
                    Ok(t) => latencies.push(t),
                    Err(e) => {
                        errors += 1;
                        if first_error.is_empty() {
                            first_error = format!("{e:#}");
                        }
                    }
                }
            }
        }
        attackers.shutdown().await;
        sampler.abort();
        latencies.sort();
        let (p50, p99, max) = (
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
        );
        let peak_mb = peak.load(Ordering::Relaxed) / 1024;
        worst_p99 = worst_p99.max(p99);
        worst_rss = worst_rss.max(peak_mb);
        println!(
            "| {phase} | {} | {errors} | {:.1} ms | {:.1} ms | {:.1} ms | {peak_mb} MB | {} |",
            latencies.len(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            tally.summary()
        );
        if !first_error.is_empty() {
            println!("|   first error | {first_error} | | | | | | |");
        }
        // Let the gateway close what the attackers left behind.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!();
    println!(
        "worst healthy p99 {:.1} ms (target < 250 ms), worst gateway RSS {worst_rss} MB (target < 256 MB): {}",
        worst_p99.as_secs_f64() * 1e3,
        if worst_p99 < Duration::from_millis(250) && worst_rss < 256 {
            "met"
        } else {
            "NOT met"
        }
    );
    drop(rad);
    Ok(())
}
