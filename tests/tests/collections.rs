//! Collections over their life: a client's delete wins over a create in flight and
//! never comes back; deleted collections vanish at once and their names are free;
//! collections made on the back end appear within one interval; a source the
//! connector cannot sync is reported, not skipped. Real Radicale (behind a proxy that
//! can slow a create down), connector, gateway and PostgreSQL.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::dav::Dav;
use postern_e2e::rewriter::{Rewriter, Rewrites};
use postern_e2e::{
    Connector, Deployment, SourceSpec, admin, connector_config, last_line, wait_until,
};
use reqwest::{Method, StatusCode};

const WAIT: Duration = Duration::from_secs(60);

/// carol's calendar names as PROPFIND of her home lists them.
async fn listed(base: &str, password: &str) -> Result<Vec<String>> {
    let body = reqwest::Client::new()
        .request(
            Method::from_bytes(b"PROPFIND")?,
            format!("{base}/dav/calendars/carol@acme/"),
        )
        .basic_auth("carol@acme", Some(password))
        .header("Depth", "1")
        .send()
        .await?
        .text()
        .await?;
    let root = postern_davxml::parse(body.as_bytes())?;
    Ok(root
        .children_named(postern_davxml::DAV, "response")
        .filter_map(|r| r.child(postern_davxml::DAV, "href"))
        .map(|h| h.trimmed().to_string())
        .filter(|h| h != "/dav/calendars/carol@acme/")
        .collect())
}

async fn mkcalendar(base: &str, password: &str, name: &str, display: &str) -> Result<StatusCode> {
    Ok(reqwest::Client::new()
        .request(
            Method::from_bytes(b"MKCALENDAR")?,
            format!("{base}/dav/calendars/carol@acme/{name}/"),
        )
        .basic_auth("carol@acme", Some(password))
        .body(format!(
            r#"<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>{display}</D:displayname></D:prop></D:set></C:mkcalendar>"#
        ))
        .send()
        .await?
        .status())
}

async fn delete(base: &str, password: &str, name: &str) -> Result<StatusCode> {
    Ok(reqwest::Client::new()
        .delete(format!("{base}/dav/calendars/carol@acme/{name}/"))
        .basic_auth("carol@acme", Some(password))
        .send()
        .await?
        .status())
}

/// Display names of the calendars Radicale holds for alice.
async fn on_backend(rad: &Radicale) -> Result<Vec<String>> {
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    Ok(dav
        .collections("/alice/")
        .await?
        .into_iter()
        .map(|(_, n)| n)
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_delete_wins_over_a_create_in_flight_and_frees_the_name() -> Result<()> {
    let d = Deployment::start("create-delete", &[]).await?;
    let password = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "carol"],
    )?);
    let base = format!("http://127.0.0.1:{}", d.gateway.http_port);
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    // Every create the connector makes on the back end takes three seconds.
    let proxy = Rewriter::start(
        &rad.url,
        Rewrites {
            slow_create: Some(Duration::from_secs(3)),
            ..Rewrites::default()
        },
    )
    .await?;
    let mut source = SourceSpec::alice("cal", "caldav", &proxy.url, "1s");
    source.user = "carol".into();
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[source]),
    )?;
    d.collection("/alice/work/").await?;

    assert_eq!(
        mkcalendar(&base, &password, "team", "Team").await?,
        StatusCode::CREATED
    );
    // The connector is creating it on the back end (its MKCALENDAR is in flight)...
    wait_until("the create in flight", WAIT, || async {
        Ok((proxy.creates() >= 1).then_some(()))
    })
    .await?;
    // ...when the client deletes it: gone from the endpoint at once.
    assert_eq!(
        delete(&base, &password, "team").await?,
        StatusCode::NO_CONTENT
    );
    assert!(
        !listed(&base, &password)
            .await?
            .iter()
            .any(|h| h.contains("/team/")),
        "a deleted calendar is not listed"
    );
    // Its name is free again at once.
    assert_eq!(
        mkcalendar(&base, &password, "team", "Team again").await?,
        StatusCode::CREATED
    );
    assert_eq!(
        delete(&base, &password, "team").await?,
        StatusCode::NO_CONTENT
    );

    // The back end ends without it, and it never comes back on the gateway, however
    // many discoveries run.
    wait_until("no Team calendar on Radicale", WAIT, || async {
        let names = on_backend(&rad).await?;
        let settled: i64 = d
            .query("SELECT count(*) FROM collections WHERE delete_pending OR create_pending")
            .await?[0]
            .get(0);
        Ok((!names.iter().any(|n| n.starts_with("Team")) && settled == 0).then_some(()))
    })
    .await?;
    let discoveries = || {
        conn.proc
            .output()
            .matches("discovered back-end collections")
            .count()
    };
    let now = discoveries();
    wait_until("three more discoveries", WAIT, || async {
        Ok((discoveries() >= now + 3).then_some(()))
    })
    .await?;
    let names: Vec<String> = d
        .query("SELECT display_name FROM collections")
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("Team")),
        "the deleted calendar came back: {names:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_back_end_collection_appears_within_one_interval() -> Result<()> {
    let d = Deployment::start("new-backend-collection", &[]).await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let source = SourceSpec::alice("cal", "caldav", &rad.url, "2s");
    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[source]),
    )?;
    d.collection("/alice/work/").await?;
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    assert!(dav.mkcalendar("/alice/fresh/").await?.is_success());
    // Discovery runs every interval (2 s): three intervals are plenty; it used to be
    // every twentieth (40 s).
    wait_until(
        "the new calendar on the gateway",
        Duration::from_secs(6),
        || async {
            let all = d.store.list_collections(Some(d.tenant)).await?;
            Ok(all
                .iter()
                .any(|c| c.backend_href == "/alice/fresh/")
                .then_some(()))
        },
    )
    .await?;
    Ok(())
}
