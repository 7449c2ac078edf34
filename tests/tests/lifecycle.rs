//! Lifecycle: migrations when replicas start at once, a connector that outlives a
//! gateway restart, and a restarted connector that resumes without downloading again.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items, generated_events};
use postern_e2e::dav::Dav;
use postern_e2e::{
    Connector, Deployment, Gateway, SourceSpec, connector_config, fresh_database, wait_until,
};
use postern_gateway::store::Store;

const WAIT: Duration = Duration::from_secs(60);

fn source(url: &str, interval: &str) -> SourceSpec {
    SourceSpec::alice("corp-calendar", "caldav", url, interval)
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_are_idempotent_when_replicas_start_together() -> Result<()> {
    let db = fresh_database().await?;
    let stores: Vec<Store> = (0..4)
        .map(|_| Store::connect(&db, 2))
        .collect::<Result<_, _>>()?;
    let runs = futures::future::join_all(stores.iter().map(|s| s.migrate())).await;
    let applied: Vec<usize> = runs.into_iter().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(
        applied.iter().filter(|n| **n > 0).count(),
        1,
        "one replica applied the schema: {applied:?}"
    );
    assert_eq!(
        stores[0].migrate().await?,
        0,
        "a later start applies nothing"
    );
    assert!(stores[0].migrated().await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connector_reconnects_after_a_gateway_restart() -> Result<()> {
    let mut d = Deployment::start("reconnect", &[]).await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[source(&rad.url, "1h")]);
    let conn = Connector::start(&d.dir, "hq", &config)?;
    let cal = d.collection("/alice/work/").await?;
    wait_until("import", WAIT, || async {
        Ok((d.items_by_uid(cal).await?.len() == 5).then_some(()))
    })
    .await?;

    let grpc: u16 = d.gateway.grpc_url.rsplit(':').next().unwrap().parse()?;
    d.gateway.proc.kill9();
    d.gateway = Gateway::start_on(&d.db, &d.dir, &[], grpc, d.gateway.http_port).await?;

    // Only a reconnected stream can carry the nudge for this edit (rounds are an hour apart).
    let body = postern_e2e::backends::event("after-restart@postern.test", "After restart");
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    wait_until("connector back on the new gateway", WAIT, || async {
        let up = conn
            .proc
            .output()
            .matches("connected to the gateway")
            .count()
            >= 2;
        Ok(up.then_some(()))
    })
    .await?;
    d.store
        .put_item(
            d.tenant,
            cal,
            "after.ics",
            body.as_bytes(),
            "text/calendar",
            None,
        )
        .await?;
    wait_until("edit on the back end", WAIT, || async {
        Ok(dav
            .get("/alice/work/after-restart@postern.test.ics")
            .await?
            .map(|_| ()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_connector_does_not_download_unchanged_items_again() -> Result<()> {
    let d = Deployment::start("resume", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[Seed::calendar("work", generated_events(100, "keep"))],
    )
    .await?;
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[source(&rad.url, "300ms")]);
    let mut conn = Connector::start(&d.dir, "hq", &config)?;
    let cal = d.collection("/alice/work/").await?;
    wait_until("import", WAIT, || async {
        Ok((d.items_by_uid(cal).await?.len() == 100).then_some(()))
    })
    .await?;
    assert!(
        conn.proc.output().contains("fetched=100"),
        "the first run downloads everything"
    );
    conn.proc.kill9();

    let before = d.store.collection(d.tenant, cal).await?.last_round_at;
    let restarted = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("two rounds after the restart", WAIT, || async {
        let c = d.store.collection(d.tenant, cal).await?;
        let rounds = restarted
            .proc
            .output()
            .matches("discovered back-end collections")
            .count();
        Ok((c.last_round_at > before && rounds >= 1 && c.last_outcome == "ok").then_some(()))
    })
    .await?;
    // One more change on the back end: exactly that item is fetched, nothing else.
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    let (name, body) = &generated_events(1, "new")[0];
    dav.put(&format!("/alice/work/{name}"), body, "text/calendar")
        .await?;
    wait_until("the new item", WAIT, || async {
        Ok((d.items_by_uid(cal).await?.len() == 101).then_some(()))
    })
    .await?;
    let log = restarted.proc.output();
    let fetched: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("fetched from the back end"))
        .collect();
    assert_eq!(
        fetched.len(),
        1,
        "only the new item was fetched after the restart: {fetched:?}"
    );
    assert!(fetched[0].contains("fetched=1"), "{}", fetched[0]);

    // An operator's forced resync re-reads everything and duplicates nothing; with
    // --wait the CLI follows the round (fenced from any round already running) to its
    // end, showing its progress.
    let resync_and_wait = || {
        let (db, id) = (d.db.clone(), cal.to_string());
        tokio::task::spawn_blocking(move || {
            postern_e2e::admin_output(
                &db,
                &[
                    "--json",
                    "collection",
                    "resync",
                    "--tenant",
                    "acme",
                    &id,
                    "--wait",
                    "--timeout",
                    "60s",
                ],
            )
        })
    };
    let before: i64 = d
        .query(&format!(
            "SELECT last_round_token FROM collections WHERE id = '{cal}'"
        ))
        .await?[0]
        .get(0);
    let out = resync_and_wait().await??;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("101 items to compare"), "{stderr}");
    // The last progress the round reported is printed before the command returns
    // (earlier phases may pass between two looks at the database).
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("  "))
        .unwrap_or("");
    assert!(
        last.trim().starts_with("pushing ") && last.ends_with("(100%)"),
        "{stderr}"
    );
    let done: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(done["last_outcome"], "ok", "{done}");
    assert_eq!(done["items"], 101, "{done}");
    assert!(
        done["last_round_token"].as_i64().unwrap() > before,
        "{done}"
    );
    assert_eq!(done["progress"]["running"], false, "{done}");
    // The round it waited for really was the resync: everything was read again and
    // every back-end version is known again, before the command returned.
    assert!(restarted.proc.output().contains("fetched=101"));
    let empty: i64 = d
        .query(&format!(
            "SELECT count(*) FROM items WHERE collection_id = '{cal}' AND backend_version = ''"
        ))
        .await?[0]
        .get(0);
    assert_eq!(empty, 0);
    // A paused collection cannot resync: --wait says so instead of waiting forever.
    postern_e2e::admin(
        &d.db,
        &["collection", "pause", "--tenant", "acme", &cal.to_string()],
    )?;
    let out = resync_and_wait().await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is paused"), "{stderr}");
    postern_e2e::admin(
        &d.db,
        &["collection", "resume", "--tenant", "acme", &cal.to_string()],
    )?;
    assert_eq!(d.items_by_uid(cal).await?.len(), 101);
    assert!(
        d.store.list_conflicts(Some(d.tenant)).await?.is_empty(),
        "identical items are not conflicts"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_is_idempotent_and_healthcheck_tells_ready_from_down() -> Result<()> {
    let d = postern_e2e::Deployment::start("bootstrap", &[]).await?;
    let (token, password) = (d.dir.path("token"), d.dir.path("pw"));
    let args = |t: &std::path::Path, p: &std::path::Path| {
        vec![
            "bootstrap".to_string(),
            "--tenant".into(),
            "initech".into(),
            "--user".into(),
            "peter".into(),
            "--connector".into(),
            "branch".into(),
            "--token-file".into(),
            t.display().to_string(),
            "--password-file".into(),
            p.display().to_string(),
        ]
    };
    let run = |a: Vec<String>| {
        postern_e2e::admin(&d.db, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert!(run(args(&token, &password))?.contains("created user, connector"));
    let first = std::fs::read_to_string(&token)?;
    assert!(
        run(args(&token, &password))?.contains("created nothing"),
        "a second run changes nothing"
    );
    assert_eq!(std::fs::read_to_string(&token)?, first, "the token is kept");
    // The token it wrote opens a stream.
    let mut client = postern_proto::connector_link_client::ConnectorLinkClient::connect(
        d.gateway.grpc_url.clone(),
    )
    .await?;
    let (_tx, rx) = tokio::sync::mpsc::channel::<postern_proto::ConnectorMessage>(1);
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {}", first.trim()).parse()?);
    assert!(client.link(req).await.is_ok());

    let health = |url: String| {
        std::process::Command::new(postern_e2e::bin("postern-gateway"))
            .args(["healthcheck", "--url", &url])
            .status()
    };
    assert!(health(format!("http://127.0.0.1:{}/readyz", d.gateway.http_port))?.success());
    assert!(
        !health(format!(
            "http://127.0.0.1:{}/readyz",
            postern_e2e::free_port()
        ))?
        .success()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_round_in_flight_finish_then_releases_and_closes() -> Result<()> {
    let mut d = Deployment::start("drain", &["--drain-deadline", "30s"]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[Seed::calendar("work", generated_events(1500, "drain"))],
    )
    .await?;
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[source(&rad.url, "1h")]);
    let conn = Connector::start(&d.dir, "hq", &config)?;
    let coll = d.collection("/alice/work/").await?;
    // The first round holds its lease while it reads the back end.
    wait_until("a round holding its lease", WAIT, || async {
        let held: i64 = d
            .query("SELECT count(*) FROM leases WHERE expires_at > now()")
            .await?[0]
            .get(0);
        Ok((held > 0).then_some(()))
    })
    .await?;
    let before = d.items_by_uid(coll).await?.len();
    let pid = d.gateway.proc.pid().expect("gateway running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    let status = wait_until("the gateway to exit", WAIT, || {
        let s = d.gateway.proc.exited();
        async move { Ok(s) }
    })
    .await?;
    assert!(
        status.success(),
        "a clean exit: {status:?}\n{}",
        d.gateway.proc.output()
    );
    assert!(
        before < 1500,
        "SIGTERM came while the round was in flight ({before} items then)"
    );
    assert_eq!(
        d.items_by_uid(coll).await?.len(),
        1500,
        "the round in flight finished before the gateway stopped"
    );
    let held: i64 = d
        .query("SELECT count(*) FROM leases WHERE expires_at > now()")
        .await?[0]
        .get(0);
    assert_eq!(held, 0, "no lease is left behind");
    assert!(d.gateway.proc.output().contains("drained"));

    // The connector reconnects to whichever gateway answers next.
    let grpc: u16 = d.gateway.grpc_url.rsplit(':').next().unwrap().parse()?;
    d.gateway =
        postern_e2e::Gateway::start_on(&d.db, &d.dir, &[], grpc, d.gateway.http_port).await?;
    wait_until("reconnected", WAIT, || async {
        Ok((conn
            .proc
            .output()
            .matches("connected to the gateway")
            .count()
            >= 2)
            .then_some(()))
    })
    .await?;
    Ok(())
}
