//! The `merge` conflict policy against a real Radicale, through a real connector:
//! edits to different properties of one event or contact, made on both sides while
//! the connector is away, both survive on both sides and no conflict is recorded; the
//! same property edited on both sides falls back to newest-wins and keeps the whole
//! losing version.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::dav::Dav;
use postern_e2e::oracle::same_meaning;
use postern_e2e::{Connector, Deployment, SourceSpec, connector_config, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn merging(name: &str, kind: &str, url: &str) -> SourceSpec {
    SourceSpec {
        conflict: "merge".into(),
        ..SourceSpec::alice(name, kind, url, "1s")
    }
}

/// A client's unconditional edit, on the gateway, of the item with `uid`: `edit`
/// applied to its current bytes.
async fn edit_on_gateway(
    d: &Deployment,
    coll: uuid::Uuid,
    uid: &str,
    content_type: &str,
    edit: impl Fn(&str) -> String,
) -> Result<Vec<u8>> {
    let item = d
        .store
        .list_items(d.tenant, coll)
        .await?
        .into_iter()
        .find(|i| i.uid == uid)
        .ok_or_else(|| anyhow::anyhow!("no item {uid} on the gateway"))?;
    let new = edit(&String::from_utf8_lossy(&item.content)).into_bytes();
    assert_ne!(new, item.content, "the edit changes something");
    d.store
        .put_item(d.tenant, coll, &item.name, &new, content_type, None)
        .await?;
    Ok(new)
}

/// An edit on Radicale: `edit` applied to what it holds at `path`.
async fn edit_on_backend(
    dav: &Dav,
    path: &str,
    content_type: &str,
    edit: impl Fn(&str) -> String,
) -> Result<Vec<u8>> {
    let old = dav
        .get(path)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{path} missing"))?;
    let new = edit(&String::from_utf8_lossy(&old)).into_bytes();
    assert_ne!(new, old, "the edit changes something");
    let status = dav.put(path, &new, content_type).await?;
    assert!(status.is_success(), "{path}: {status}");
    Ok(new)
}

/// Waits until both sides hold `uid` at `path` with every text in `wanted`, and says
/// the same on both (checked by an independent parser).
async fn both_sides_hold(
    d: &Deployment,
    dav: &Dav,
    coll: uuid::Uuid,
    uid: &str,
    path: &str,
    wanted: &[&str],
) -> Result<()> {
    wait_until(&format!("{wanted:?} on both sides"), WAIT, || async {
        let gw = d.items_by_uid(coll).await?.remove(uid).unwrap_or_default();
        let be = dav.get(path).await?.unwrap_or_default();
        let has = |b: &[u8]| {
            let t = String::from_utf8_lossy(b).replace("\r\n ", "");
            wanted.iter().all(|w| t.contains(w))
        };
        Ok((has(&gw) && has(&be) && same_meaning(&gw, &be)).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_to_different_parts_both_survive_and_the_same_part_falls_back_to_newest_wins()
-> Result<()> {
    let d = Deployment::start("merge-policy", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("work", fixture_items("calendar")),
            Seed::addressbook("contacts", fixture_items("contacts")),
        ],
    )
    .await?;
    let sources = [
        merging("corp-calendar", "caldav", &rad.url),
        merging("corp-contacts", "carddav", &rad.url),
    ];
    let mut conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &sources),
    )?;
    let cal = d.collection("/alice/work/").await?;
    let book = d.collection("/alice/contacts/").await?;
    wait_until("the import", WAIT, || async {
        let (c, b) = (d.items_by_uid(cal).await?, d.items_by_uid(book).await?);
        Ok((c.len() == 5 && b.len() == 3).then_some(()))
    })
    .await?;
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    let (event, card) = ("nyc-call@postern.test", "card3@postern.test");
    let (event_path, card_path) = ("/alice/work/new-york.ics", "/alice/contacts/vcard3.vcf");

    // Different properties, both sides, while the connector is away.
    conn.proc.kill9();
    edit_on_gateway(&d, cal, event, "text/calendar", |t| {
        t.replace(
            "SUMMARY:Call with New York",
            "SUMMARY:Call with the NY office",
        )
    })
    .await?;
    edit_on_backend(&dav, event_path, "text/calendar", |t| {
        t.replace("LOCATION:Zoom", "LOCATION:Room 4")
    })
    .await?;
    edit_on_gateway(&d, book, card, "text/vcard", |t| {
        t.replace("ORG:Acme GmbH", "ORG:Acme AG")
    })
    .await?;
    edit_on_backend(&dav, card_path, "text/vcard", |t| {
        t.replace(
            "END:VCARD",
            "EMAIL;TYPE=INTERNET:jm@home.example\r\nEND:VCARD",
        )
    })
    .await?;
    let conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    both_sides_hold(
        &d,
        &dav,
        cal,
        event,
        event_path,
        &["SUMMARY:Call with the NY office", "LOCATION:Room 4"],
    )
    .await?;
    both_sides_hold(
        &d,
        &dav,
        book,
        card,
        card_path,
        &["ORG:Acme AG", "jm@home.example", "juergen@acme.example"],
    )
    .await?;
    assert!(
        d.store.list_conflicts(Some(d.tenant)).await?.is_empty(),
        "a merge is not a conflict"
    );

    // The same property on both sides: the later edit (the back end's, stamped after
    // the gateway's) wins; the gateway's version is kept whole.
    let mut conn = conn;
    conn.proc.kill9();
    let ours = edit_on_gateway(&d, cal, event, "text/calendar", |t| {
        t.replace("SUMMARY:Call with the NY office", "SUMMARY:Gateway title")
    })
    .await?;
    edit_on_backend(&dav, event_path, "text/calendar", |t| {
        t.replace("SUMMARY:Call with the NY office", "SUMMARY:Backend title")
            .replace("END:VEVENT", "LAST-MODIFIED:20300101T000000Z\r\nEND:VEVENT")
    })
    .await?;
    let _conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    both_sides_hold(
        &d,
        &dav,
        cal,
        event,
        event_path,
        &["SUMMARY:Backend title", "LOCATION:Room 4"],
    )
    .await?;
    let kept = wait_until("the loser kept", WAIT, || async {
        let k = d.store.list_conflicts(Some(d.tenant)).await?;
        Ok((!k.is_empty()).then_some(k))
    })
    .await?;
    assert_eq!(kept.len(), 1, "one conflict: {kept:?}");
    assert_eq!(kept[0].loser_side, "gateway");
    assert_eq!(kept[0].policy, "merge");
    assert!(
        same_meaning(kept[0].loser_content.as_deref().unwrap().as_bytes(), &ours),
        "the losing version is kept whole"
    );
    Ok(())
}
