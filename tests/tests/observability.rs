//! What an operator sees: `/metrics` after a sync, `/healthz`, `/readyz`.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::otlp::Collector;
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
    let conn = Connector::start(
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

    // Without an OTLP endpoint no exporter exists: nothing tries to reach a collector,
    // so nothing complains about a missing one.
    for log in [d.gateway.proc.output(), conn.proc.output()] {
        let lower = log.to_lowercase();
        assert!(
            !lower.contains("opentelemetry") && !lower.contains("otlp"),
            "{log}"
        );
    }
    Ok(())
}

/// One sync round is one trace: the connector's round is its root, the back-end
/// requests are the connector's children, and the gateway's lease, journal and packet
/// work joins the same trace through the context carried in the link messages.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_round_is_one_trace_across_connector_and_gateway() -> Result<()> {
    let collector = Collector::start().await?;
    let otlp = ["--otlp-endpoint", collector.endpoint.as_str()];
    let d = Deployment::start(
        "traces",
        &[
            "--otlp-endpoint",
            &collector.endpoint,
            "--log-format",
            "json",
        ],
    )
    .await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let src = SourceSpec::alice("cal", "caldav", &rad.url, "1h");
    let _conn = Connector::start_with(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[src]),
        &otlp,
    )?;
    let coll = d.collection("/alice/work/").await?;
    wait_until("import", Duration::from_secs(60), || async {
        Ok((d.items_by_uid(coll).await?.len() == 5).then_some(()))
    })
    .await?;

    // The import round: a connector root span whose trace also holds the gateway's
    // accepted change packet (spans are exported in batches, so wait for both sides).
    let (root, trace) = wait_until("the import round's trace", Duration::from_secs(60), || {
        let spans = collector.spans();
        async move {
            let found = spans
                .iter()
                .filter(|s| s.service == "postern-connector" && s.name == "sync round")
                .filter(|r| r.attribute("collection") == Some("/alice/work/"))
                .find_map(|root| {
                    let trace: Vec<_> = spans
                        .iter()
                        .filter(|s| s.trace_id == root.trace_id)
                        .cloned()
                        .collect();
                    let has = |service: &str, name: &str| {
                        trace.iter().any(|s| s.service == service && s.name == name)
                    };
                    (has("postern-gateway", "change packet")
                        && has("postern-gateway", "round report")
                        && has("postern-connector", "fetch from back end"))
                    .then(|| (root.clone(), trace))
                });
            Ok(found)
        }
    })
    .await?;
    assert_eq!(root.parent_span_id, "", "the round is the root: {root:?}");
    assert_eq!(root.attribute("outcome"), Some("ok"), "{root:?}");
    // Exactly one root: every other span hangs off a span of the same trace.
    let ids: Vec<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    for s in &trace {
        if s.span_id != root.span_id {
            assert!(
                ids.contains(&s.parent_span_id.as_str()),
                "{s:?} has no parent in the trace"
            );
        }
    }
    // The gateway's spans are children of the connector's (the context crossed the
    // stream), and they name the collection they worked on.
    let gateway: Vec<_> = trace
        .iter()
        .filter(|s| s.service == "postern-gateway")
        .collect();
    for name in [
        "lease acquire",
        "journal pull",
        "change packet",
        "lease release",
    ] {
        let s = gateway
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no gateway span {name:?} in {trace:#?}"));
        let parent = trace
            .iter()
            .find(|p| p.span_id == s.parent_span_id)
            .unwrap();
        assert_eq!(
            parent.service, "postern-connector",
            "{s:?} under {parent:?}"
        );
        assert_eq!(s.attribute("collection"), Some(coll.to_string().as_str()));
    }
    // The back-end requests of the round are in it, with their outcome.
    let reads: Vec<_> = trace
        .iter()
        .filter(|s| s.name.starts_with("REPORT ") || s.name.starts_with("PROPFIND "))
        .collect();
    assert!(!reads.is_empty(), "{trace:#?}");
    assert!(
        reads
            .iter()
            .all(|s| s.attribute("http.response.status_code") == Some("207")),
        "{reads:#?}"
    );

    // A CalDAV client that sends W3C trace context has its request continued by the
    // gateway; one that does not starts a trace of its own.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/dav/calendars/alice@acme/",
            d.gateway.http_port
        ))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    let dav = wait_until("the DAV request's span", Duration::from_secs(30), || {
        let spans = collector.spans();
        async move {
            Ok(spans
                .into_iter()
                .find(|s| s.service == "postern-gateway" && s.trace_id == trace_id))
        }
    })
    .await?;
    assert_eq!(dav.parent_span_id, "00f067aa0ba902b7");

    // Logs as JSON: one object per line, with level, target and fields.
    let log = d.gateway.proc.output();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| anyhow::anyhow!("{e}: {l}")))
        .collect::<Result<_>>()?;
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && l["fields"]["message"] == "exporting traces over OTLP"
            && l["fields"]["endpoint"] == collector.endpoint.as_str()),
        "{log}"
    );
    // A line logged inside an exported span names its trace and span.
    let hello = lines
        .iter()
        .find(|l| l["fields"]["message"] == "connector said hello")
        .unwrap_or_else(|| panic!("no hello logged: {log}"));
    let (hello_trace, hello_span) = (
        hello["trace_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace_id: {hello}")),
        hello["span_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no span_id: {hello}")),
    );
    let logged_in = wait_until("the hello's span", Duration::from_secs(30), || {
        let spans = collector.spans();
        async move {
            Ok(spans
                .into_iter()
                .find(|s| s.trace_id == hello_trace && s.span_id == hello_span))
        }
    })
    .await?;
    assert_eq!(logged_in.service, "postern-gateway", "{logged_in:?}");
    assert_eq!(dav.attribute("http.response.status_code"), Some("401"));
    assert_eq!(dav.attribute("http.request.method"), Some("GET"));
    Ok(())
}
