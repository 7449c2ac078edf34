//! What an operator sees: `/metrics` after a sync, `/healthz`, `/readyz`.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::{Connector, Deployment, SourceSpec, connector_config, wait_until};

/// The value of the first sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_a_sync() -> Result<()> {
    let d = Deployment::start("metrics", &[]).await?;
    let base = format!("http://127.0.0.1:{}", d.gateway.http_port);
    let before = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    assert_eq!(
        sample(&before, "postern_connectors_connected"),
        Some(0.0),
        "{before}"
    );
    assert!(sample(&before, "postern_items_applied_total").is_none());
    assert_eq!(reqwest::get(format!("{base}/healthz")).await?.status(), 200);
    assert_eq!(reqwest::get(format!("{base}/readyz")).await?.status(), 200);

    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let src = SourceSpec::alice("cal", "caldav", &rad.url, "1h");
    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[src]),
    )?;
    let coll = d.collection("/alice/work/").await?;
    wait_until("import", Duration::from_secs(60), || async {
        Ok((d.items_by_uid(coll).await?.len() == 5).then_some(()))
    })
    .await?;
    // A gateway-side change left pending shows as backlog until the connector applies it.
    let text = wait_until("the round reported", Duration::from_secs(30), || async {
        let t = reqwest::get(format!("{base}/metrics"))
            .await?
            .text()
            .await?;
        Ok(sample(&t, "postern_sync_rounds_total{outcome=\"ok\"}")
            .filter(|n| *n >= 1.0)
            .map(|_| t))
    })
    .await?;
    assert_eq!(sample(&text, "postern_connectors_connected"), Some(1.0));
    assert!(
        sample(
            &text,
            "postern_items_applied_total{direction=\"to_gateway\"}"
        )
        .unwrap_or(0.0)
            >= 5.0,
        "{text}"
    );
    assert!(
        sample(&text, "postern_change_packets_total{outcome=\"accepted\"}").unwrap_or(0.0) >= 1.0
    );
    assert!(sample(&text, "postern_sync_round_duration_seconds_count").unwrap_or(0.0) >= 1.0);

    // DAV requests are counted by method and status.
    let resp = reqwest::Client::new()
        .get(format!("{base}/dav/calendars/alice@acme/"))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        sample(
            &text,
            "postern_dav_requests_total{method=\"GET\",status=\"401\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    Ok(())
}
