//! Benchmark (not a test) of idle connector streams on one gateway process: it opens
//! `POSTERN_BENCH_STREAMS` (default 10,000) authenticated `Link` streams, each on its
//! own connection, from as many enrolled connectors as the per-token bound requires
//! (four streams per token by default), lets them sit idle, and prints the gateway's
//! total and per-stream resident memory and the latency of a heartbeat on a sample of
//! the streams while all are open.
//!
//! A release gateway on a real PostgreSQL; the streams come from 127.0.0.10 and up,
//! a thousand per address (below the per-address bound), as connectors of many sites
//! would. `POSTERN_BENCH_TLS=1` puts TLS on the connector port. Target (issue 9):
//! under 1 GiB in total for 10,000 streams. Run it with `scripts/bench-idle-links.sh`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_e2e::{Deployment, Scratch};
use postern_gateway::auth::{TokenKeys, enroll_connector};
use postern_proto as pb;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// One open, idle stream.
struct Stream {
    tx: mpsc::Sender<pb::ConnectorMessage>,
    rx: tonic::Streaming<pb::GatewayMessage>,
    _channel: tonic::transport::Channel,
}

fn rss_kib(pid: u32) -> u64 {
    postern_e2e::proc_kib(pid, "VmRSS:").unwrap_or(0)
}

/// Opens one stream from `from` with `token` and says hello.
async fn open(
    url: &str,
    ca: Option<&[u8]>,
    from: IpAddr,
    token: &str,
    instance: &str,
) -> Result<Stream> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string())?
        .local_address(Some(from))
        .connect_timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        endpoint = endpoint.tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                .domain_name("localhost"),
        )?;
    }
    let channel = endpoint.connect().await?;
    let mut client = pb::connector_link_client::ConnectorLinkClient::new(channel.clone());
    let (tx, rx) = mpsc::channel(4);
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let mut rx = client.link(req).await?.into_inner();
    tx.send(pb::ConnectorMessage {
        request_id: 1,
        body: Some(Req::Hello(pb::Hello {
            version: "bench".into(),
            capabilities: vec![],
            instance_id: instance.into(),
            sources: vec![],
        })),
        trace_context: Default::default(),
    })
    .await?;
    match rx.next().await {
        Some(Ok(m)) if matches!(m.body, Some(Ans::Welcome(_))) => {}
        other => bail!("no welcome: {other:?}"),
    }
    Ok(Stream {
        tx,
        rx,
        _channel: channel,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("POSTERN_BENCH_STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let tls = std::env::var("POSTERN_BENCH_TLS").is_ok_and(|v| v == "1");
    let per_token = 4;
    let dir = Scratch::new("idle-links-pki");
    let pki = postern_e2e::pki::pki(&dir)?;
    let (cert, key) = (
        pki.cert.display().to_string(),
        pki.key.display().to_string(),
    );
    let args: Vec<&str> = if tls {
        vec!["--tls-cert", &cert, "--tls-key", &key]
    } else {
        vec![]
    };
    let d = Deployment::start("idle-links", &args).await?;
    let pid = d.gateway.proc.pid().context("gateway pid")?;
    let url = if tls {
        d.gateway
            .grpc_url
            .replace("http://127.0.0.1", "https://localhost")
    } else {
        d.gateway.grpc_url.clone()
    };
    let ca = std::fs::read(&pki.ca)?;
    let ca = tls.then_some(ca.as_slice());

    let connectors = n.div_ceil(per_token);
    let started = Instant::now();
    let keys = TokenKeys::load(&d.store, None).await?;
    let mut tokens = Vec::with_capacity(connectors);
    for i in 0..connectors {
        let (token, _) = enroll_connector(
            &keys,
            &d.store,
            "acme",
            &format!("site-{i}"),
            Duration::from_secs(86_400),
        )
        .await?;
        tokens.push(token);
    }
    println!(
        "enrolled {connectors} connectors in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let before = rss_kib(pid);
    let started = Instant::now();
    let mut streams: Vec<Stream> = Vec::with_capacity(n);
    let batch = 250;
    for chunk_start in (0..n).step_by(batch) {
        let opening = (chunk_start..(chunk_start + batch).min(n)).map(|i| {
            let from = IpAddr::from([127, 0, 0, 10 + (i / 1000) as u8]);
            let token = tokens[i / per_token].clone();
            let url = url.clone();
            async move { open(&url, ca, from, &token, &format!("instance-{i}")).await }
        });
        for s in futures::future::join_all(opening).await {
            streams.push(s?);
        }
    }
    let opened = started.elapsed();
    // Let the gateway settle (allocations from the opening burst freed).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid);
    let per_stream = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;

    // Heartbeats on a sample, one at a time, while every stream is open.
    let sample = 500.min(n);
    let mut latencies = Vec::with_capacity(sample);
    for k in 0..sample {
        let s = &mut streams[(k * 7919) % n];
        let t = Instant::now();
        s.tx.send(pb::ConnectorMessage {
            request_id: 100 + k as u64,
            body: Some(Req::Heartbeat(pb::Heartbeat { sent_at_ms: 0 })),
            trace_context: Default::default(),
        })
        .await?;
        loop {
            match s.rx.next().await {
                Some(Ok(m)) if m.request_id == 100 + k as u64 => break,
                Some(Ok(_)) => continue,
                other => bail!("stream ended: {other:?}"),
            }
        }
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let metrics = reqwest::get(format!(
        "http{}://127.0.0.1:{}/metrics",
        if tls { "s" } else { "" },
        d.gateway.http_port
    ))
    .await;
    let connected = match metrics {
        Ok(r) => r
            .text()
            .await
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("postern_connectors_connected "))
            .map(str::to_string)
            .unwrap_or_default(),
        Err(_) => "(metrics over TLS not read)".into(),
    };
    println!(
        "idle link streams on one gateway process ({}), release build",
        if tls { "TLS" } else { "plain HTTP/2" }
    );
    println!(
        "| streams | connectors | opened in | gateway RSS before | after | per stream | heartbeat p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {connectors} | {:.1} s | {} MB | {} MB | {:.1} KiB | {:.2} ms | {:.2} ms | {:.2} ms |",
        opened.as_secs_f64(),
        before / 1024,
        after / 1024,
        per_stream / 1024.0,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!("{connected}");
    println!(
        "target: under 1 GiB in total: {}",
        if after < 1 << 20 { "met" } else { "NOT met" }
    );
    drop(streams);
    Ok(())
}
