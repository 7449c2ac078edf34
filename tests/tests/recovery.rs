//! Recovery after trouble, against the real gateway, connector and PostgreSQL: a
//! connector that was healthy reconnects at once (its backoff starts over), the
//! leases of a stream that closed while the database was unreachable are released as
//! soon as it answers again, and shutdown waits no longer than `--drain-deadline`.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::link::{RawLink, Talk};
use postern_e2e::proxy::Proxy;
use postern_e2e::{Connector, Deployment, Gateway, SourceSpec, connector_config, wait_until};

const WAIT: Duration = Duration::from_secs(30);

/// A `Duration`'s Debug form as the connector logs it (`312.5ms`, `1.2s`), in ms.
fn millis(debug: &str) -> Option<f64> {
    let (n, scale) = if let Some(v) = debug.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = debug.strip_suffix("µs") {
        (v, 0.001)
    } else if let Some(v) = debug.strip_suffix("ns") {
        (v, 0.000_001)
    } else {
        (debug.strip_suffix('s')?, 1000.0)
    };
    n.parse::<f64>().ok().map(|n| n * scale)
}

/// Every `retry_in` the connector logged, in order, in ms.
fn retries(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("reconnecting to the gateway"))
        .filter_map(|l| {
            let v = l.split("retry_in=").nth(1)?.split_whitespace().next()?;
            millis(v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_connector_reconnects_at_once_after_every_outage() -> Result<()> {
    let mut d = Deployment::start("backoff-reset", &[]).await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let source = SourceSpec::alice("corp-calendar", "caldav", &rad.url, "1h");
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[source]),
    )?;
    let grpc: u16 = d.gateway.grpc_url.rsplit(':').next().unwrap().parse()?;
    let connected = || {
        conn.proc
            .output()
            .matches("connected to the gateway")
            .count()
    };
    wait_until("connected", WAIT, || async {
        Ok((connected() >= 1).then_some(()))
    })
    .await?;
    for outage in 1..=4 {
        // A healthy session: welcomed and up for a while (five seconds, the
        // connector's threshold), so this sleep is the scenario, not a wait.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let before = retries(&conn.proc.output()).len();
        d.gateway.proc.kill9();
        d.gateway = Gateway::start_on(&d.db, &d.dir, &[], grpc, d.gateway.http_port).await?;
        wait_until("reconnected", WAIT, || async {
            Ok((connected() > outage).then_some(()))
        })
        .await?;
        let logged = retries(&conn.proc.output());
        let first = logged
            .get(before)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no retry logged after outage {outage}"))?;
        // The first wait after a healthy session is the first step: 250 ms ± 50 %.
        // Without the reset it doubled with every outage (and every failed attempt
        // during one) up to 30 s: the first retries after a long session waited 43 s.
        assert!(
            first <= 375.0,
            "outage {outage}: the connector waited {first} ms before its first retry ({logged:?})"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_of_a_stream_closed_in_a_database_outage_are_released_when_it_returns() -> Result<()>
{
    let mut d = Deployment::start("lease-release", &[]).await?;
    // The gateway reaches PostgreSQL through a proxy the test can cut.
    let target: std::net::SocketAddr =
        d.db.split('@')
            .nth(1)
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| anyhow::anyhow!("database url"))?
            .parse()?;
    let proxy = Proxy::start(target).await?;
    d.gateway.proc.kill9();
    d.gateway =
        Gateway::start(&proxy.database_url(&d.db), &d.dir, &["--lease-ttl", "600s"]).await?;

    let mut link = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let coll = link.setup("instance-a", "alice").await?;
    link.acquire(&coll)
        .await?
        .map_err(|why| anyhow::anyhow!("no lease: {why}"))?;
    let held = || async {
        Ok::<i64, anyhow::Error>(
            d.query("SELECT count(*) FROM leases WHERE expires_at > now()")
                .await?[0]
                .get(0),
        )
    };
    assert_eq!(held().await?, 1);

    // The database goes away; then the connector's stream closes.
    proxy.cut();
    drop(link);
    wait_until("the gateway saw the stream close", WAIT, || async {
        Ok(d.gateway
            .proc
            .output()
            .contains("connector stream closed")
            .then_some(()))
    })
    .await?;
    assert_eq!(
        held().await?,
        1,
        "nothing could be released during the outage"
    );

    // The database is back: the lease goes at once, not after its 600 s.
    proxy.restore();
    wait_until("the lease released", WAIT, || async {
        Ok((held().await? == 0).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_no_longer_than_the_drain_deadline() -> Result<()> {
    let mut d = Deployment::start("drain-deadline", &["--drain-deadline", "2s"]).await?;
    // A connector that holds a lease and never ends its round.
    let mut link = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let coll = link.setup("stuck", "alice").await?;
    link.acquire(&coll)
        .await?
        .map_err(|why| anyhow::anyhow!("no lease: {why}"))?;
    let pid = d.gateway.proc.pid().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    // The built-in 20 s would overrun this wait; the setting is 2 s.
    let status = wait_until("the gateway to exit", Duration::from_secs(12), || {
        let s = d.gateway.proc.exited();
        async move { Ok(s) }
    })
    .await?;
    assert!(status.success(), "{status:?}");
    let log = d.gateway.proc.output();
    assert!(log.contains("drained; closing the stream"), "{log}");
    Ok(())
}
