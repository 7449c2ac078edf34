//! The same spine against Xandikos: its own discovery layout (home sets under
//! `/alice/calendars/` and `/alice/contacts/`), and its 412 for a sync token it does
//! not know.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Xandikos, fixture_items};
use postern_e2e::dav::Dav;
use postern_e2e::oracle::same_meaning;
use postern_e2e::{Connector, Deployment, SourceSpec, connector_config, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn source(name: &str, kind: &str, url: &str) -> SourceSpec {
    SourceSpec {
        name: name.into(),
        kind: kind.into(),
        url: url.into(),
        username: String::new(),
        password: String::new(),
        user: "alice".into(),
        mode: "two-way".into(),
        conflict: "backend-wins".into(),
        interval: "1s".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn xandikos_both_ways_and_a_forgotten_token() -> Result<()> {
    let d = Deployment::start("xandikos", &[]).await?;
    let x = Xandikos::start(&d.dir).await?;
    let dav = Dav::new(&x.url, "", "");
    for (name, body) in fixture_items("calendar") {
        assert!(
            dav.put(
                &format!("/alice/calendars/calendar/{name}"),
                &body,
                "text/calendar"
            )
            .await?
            .is_success()
        );
    }
    for (name, body) in fixture_items("contacts") {
        assert!(
            dav.put(
                &format!("/alice/contacts/addressbook/{name}"),
                &body,
                "text/vcard"
            )
            .await?
            .is_success()
        );
    }
    let sources = [
        source("cal", "caldav", &x.url),
        source("card", "carddav", &x.url),
    ];
    let mut conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &sources),
    )?;
    let cal = d.collection("/alice/calendars/calendar/").await?;
    let book = d.collection("/alice/contacts/addressbook/").await?;
    wait_until("import from Xandikos", WAIT, || async {
        Ok(
            (d.items_by_uid(cal).await?.len() == 5 && d.items_by_uid(book).await?.len() == 3)
                .then_some(()),
        )
    })
    .await?;
    let events = d.items_by_uid(cal).await?;
    for (name, content) in fixture_items("calendar") {
        let uid = postern_core::content::uid(&content).unwrap();
        assert!(
            same_meaning(&events[&uid], &content),
            "{name} changed on the way"
        );
    }

    // Gateway -> Xandikos.
    let body =
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:new-card@postern.test\r\nFN:New Card\r\nEND:VCARD\r\n";
    d.store
        .put_item(d.tenant, book, "new.vcf", body, "text/vcard", None)
        .await?;
    wait_until("card on Xandikos", WAIT, || async {
        Ok(dav
            .get("/alice/contacts/addressbook/new-card@postern.test.vcf")
            .await?
            .map(|_| ()))
    })
    .await?;

    // Xandikos answers 412 for a token it never issued: the connector falls back to a
    // listing, picks up what changed meanwhile, and duplicates nothing.
    conn.proc.kill9();
    d.query(&format!(
        "UPDATE collections SET backend_state = 'http://bogus/token/1' WHERE id = '{cal}'"
    ))
    .await?;
    let edited = String::from_utf8(fixture_items("calendar")[0].1.clone())?
        .replace("Company holiday", "Longer holiday");
    assert!(
        dav.put(
            "/alice/calendars/calendar/all-day.ics",
            edited.as_bytes(),
            "text/calendar"
        )
        .await?
        .is_success()
    );
    let restarted = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("edit after token fallback", WAIT, || async {
        let items = d.items_by_uid(cal).await?;
        let c = d.store.collection(d.tenant, cal).await?;
        let ok = String::from_utf8_lossy(&items["holiday@postern.test"]).contains("Longer holiday")
            && c.backend_state != "http://bogus/token/1";
        Ok(ok.then_some(()))
    })
    .await?;
    assert_eq!(
        d.items_by_uid(cal).await?.len(),
        5,
        "no duplicates after the fallback"
    );
    assert!(
        restarted.proc.output().contains("forgot our sync token"),
        "the 412 fallback was taken"
    );
    assert!(d.store.list_conflicts(Some(d.tenant)).await?.is_empty());
    Ok(())
}
