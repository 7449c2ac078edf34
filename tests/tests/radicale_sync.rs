//! Calendars and contacts flow both ways between a real Radicale and the gateway,
//! through a real connector, under gateway-issued leases.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items, generated_events};
use postern_e2e::dav::Dav;
use postern_e2e::oracle::same_meaning;
use postern_e2e::{Connector, Deployment, SourceSpec, admin, connector_config, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn source(name: &str, kind: &str, url: &str, interval: &str) -> SourceSpec {
    SourceSpec::alice(name, kind, url, interval)
}

fn both_sources(url: &str, interval: &str) -> Vec<SourceSpec> {
    vec![
        source("corp-calendar", "caldav", url, interval),
        source("corp-contacts", "carddav", url, interval),
    ]
}

fn event(uid: &str, summary: &str) -> Vec<u8> {
    postern_e2e::backends::event(uid, summary).into_bytes()
}

/// A client's edit, on the gateway, of the item with `uid`: with the ETag it saw when
/// `conditional`. Returns the item as it was before.
async fn edit_on_gateway(
    d: &Deployment,
    coll: uuid::Uuid,
    uid: &str,
    content: &[u8],
    content_type: &str,
    conditional: bool,
) -> Result<postern_gateway::store::items::Item> {
    let item = d
        .store
        .list_items(d.tenant, coll)
        .await?
        .into_iter()
        .find(|i| i.uid == uid)
        .ok_or_else(|| anyhow::anyhow!("no item {uid} on the gateway"))?;
    let if_match = conditional.then_some(item.etag.as_str());
    d.store
        .put_item(d.tenant, coll, &item.name, content, content_type, if_match)
        .await?;
    Ok(item)
}

async fn count_items(d: &Deployment, coll: uuid::Uuid, n: usize) -> Result<()> {
    wait_until(&format!("{n} items on the gateway"), WAIT, || async {
        let items = d.items_by_uid(coll).await?;
        Ok((items.len() == n).then_some(()))
    })
    .await
}

/// A deployment whose connector syncs Radicale's fixture calendar `work` every
/// `interval`, after its import of the five fixtures.
struct Work {
    d: Deployment,
    /// Bind it for the life of the test: dropping it stops Radicale.
    rad: Radicale,
    conn: Connector,
    cal: uuid::Uuid,
    /// Radicale, as alice.
    dav: Dav,
}

async fn work_calendar(name: &str, interval: &str) -> Result<Work> {
    let d = Deployment::start(name, &[]).await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let sources = [source("corp-calendar", "caldav", &rad.url, interval)];
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &sources),
    )?;
    let cal = d.collection("/alice/work/").await?;
    count_items(&d, cal, 5).await?;
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    Ok(Work {
        d,
        rad,
        conn,
        cal,
        dav,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_import_then_backend_edit_and_delete_in_one_round() -> Result<()> {
    let d = Deployment::start("import", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("work", fixture_items("calendar")),
            Seed::addressbook("contacts", fixture_items("contacts")),
        ],
    )
    .await?;
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &both_sources(&rad.url, "1s")),
    )?;
    let cal = d.collection("/alice/work/").await?;
    let book = d.collection("/alice/contacts/").await?;
    count_items(&d, cal, 5).await?;
    count_items(&d, book, 3).await?;

    // Every fixture arrived intact: time zones, recurrence exceptions, all-day, tasks,
    // vCard 3 and 4, photos and unicode.
    let events = d.items_by_uid(cal).await?;
    for (name, content) in fixture_items("calendar") {
        let uid = postern_core::content::uid(&content).unwrap();
        let got = events
            .get(&uid)
            .unwrap_or_else(|| panic!("{name} ({uid}) missing"));
        assert!(
            same_meaning(got, &content),
            "{name} changed on the way:\n{}",
            String::from_utf8_lossy(got)
        );
    }
    let recurring = String::from_utf8_lossy(&events["weekly-standup@postern.test"]).to_string();
    assert!(recurring.contains("RECURRENCE-ID;TZID=Europe/Berlin:20250113T093000"));
    assert!(recurring.contains("EXDATE;TZID=Europe/Berlin:20250120T093000"));
    assert!(recurring.contains("TZID:Europe/Berlin"));
    assert!(
        String::from_utf8_lossy(&events["tokyo-offsite@postern.test"]).contains("東京オフサイト")
    );
    assert!(String::from_utf8_lossy(&events["task-report@postern.test"]).contains("BEGIN:VTODO"));
    let cards = d.items_by_uid(book).await?;
    for (name, content) in fixture_items("contacts") {
        let uid = postern_core::content::uid(&content).unwrap();
        assert!(
            same_meaning(&cards[&uid], &content),
            "{name} changed on the way"
        );
    }
    assert!(
        String::from_utf8_lossy(&cards["urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"])
            .contains("李小龍")
    );
    let photo = |c: &[u8]| postern_core::content::property(c, "PHOTO").unwrap_or_default();
    let fixture_photo = photo(&std::fs::read(
        postern_e2e::backends::fixtures().join("contacts/vcard3-photo.vcf"),
    )?);
    assert!(fixture_photo.len() > 500);
    assert_eq!(
        photo(&cards["photo@postern.test"]),
        fixture_photo,
        "the photo arrives byte for byte"
    );

    // A back-end edit and a delete, made while the connector is away, reach the
    // gateway in its next round.
    let mut conn = conn;
    conn.proc.kill9();
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    assert!(
        dav.put(
            "/alice/work/new-york.ics",
            &event("nyc-call@postern.test", "Moved call"),
            "text/calendar"
        )
        .await?
        .is_success()
    );
    assert!(dav.delete("/alice/work/task.ics").await?.is_success());
    let _conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("edit and delete on the gateway", WAIT, || async {
        let items = d.items_by_uid(cal).await?;
        let edited = items
            .get("nyc-call@postern.test")
            .is_some_and(|c| String::from_utf8_lossy(c).contains("Moved call"));
        Ok((edited && !items.contains_key("task-report@postern.test")).then_some(()))
    })
    .await?;
    let rows = d
        .query(
            "SELECT DISTINCT j.fencing_token FROM journal j JOIN items i ON i.tenant_id = j.tenant_id AND i.id = j.item_id
             WHERE i.uid IN ('nyc-call@postern.test', 'task-report@postern.test') AND j.seq > 5",
        )
        .await?;
    assert_eq!(
        rows.len(),
        1,
        "the edit and the delete were applied under one lease, in one round"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_changes_reach_the_backend_at_once_by_nudge() -> Result<()> {
    // An hour between rounds: only the gateway's nudge can start the rounds below.
    let Work {
        d,
        cal,
        dav,
        conn: _conn,
        rad: _rad,
    } = work_calendar("gateway-edits", "1h").await?;

    // Create.
    let created = event("from-gateway@postern.test", "Created on the gateway");
    d.store
        .put_item(
            d.tenant,
            cal,
            "from-gateway.ics",
            &created,
            "text/calendar",
            None,
        )
        .await?;
    let on_backend = wait_until("created item on Radicale", WAIT, || async {
        dav.get("/alice/work/from-gateway@postern.test.ics").await
    })
    .await?;
    assert!(same_meaning(&on_backend, &created));

    // Update in place, with the ETag the client saw.
    let edited = event("nyc-call@postern.test", "Edited on the gateway");
    edit_on_gateway(
        &d,
        cal,
        "nyc-call@postern.test",
        &edited,
        "text/calendar",
        true,
    )
    .await?;
    wait_until("edit on Radicale", WAIT, || async {
        let b = dav
            .get("/alice/work/new-york.ics")
            .await?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&b)
            .contains("Edited on the gateway")
            .then_some(()))
    })
    .await?;
    assert_eq!(
        dav.members("/alice/work/").await?.len(),
        6,
        "updated in place, not re-created"
    );

    // Delete.
    d.store
        .delete_item(d.tenant, cal, "all-day.ics", None)
        .await?;
    wait_until("delete on Radicale", WAIT, || async {
        Ok(dav
            .get("/alice/work/all-day.ics")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    wait_until("nothing pending", WAIT, || async {
        let c = d.store.collection(d.tenant, cal).await?;
        Ok((c.pending == 0).then_some(()))
    })
    .await?;
    Ok(())
}

/// A nudged round writes the gateway's change without reading the back end first; when
/// the back end changed the same item meanwhile, the conditional write fails and the
/// round reads the back end and settles the conflict by policy, loser kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_nudged_write_that_meets_a_backend_edit_is_settled_by_policy() -> Result<()> {
    // An hour between rounds: only nudges start the rounds below.
    let Work {
        d,
        cal,
        dav,
        conn,
        rad: _rad,
    } = work_calendar("nudge-conflict", "1h").await?;

    // A first gateway change: its round saves a sync token (the import listed).
    let warm = event("warm-up@postern.test", "First");
    d.store
        .put_item(d.tenant, cal, "warm-up.ics", &warm, "text/calendar", None)
        .await?;
    wait_until("a saved sync token", WAIT, || async {
        let c = d.store.collection(d.tenant, cal).await?;
        Ok((c.pending == 0 && !c.backend_state.is_empty()).then_some(()))
    })
    .await?;

    // The office edits an event on the back end; the connector does not read it (no
    // round for an hour). Then a client edits the same event on the gateway.
    dav.put(
        "/alice/work/new-york.ics",
        &event("nyc-call@postern.test", "Backend says 10am"),
        "text/calendar",
    )
    .await?;
    let gw_version = event("nyc-call@postern.test", "Gateway says 9am");
    edit_on_gateway(
        &d,
        cal,
        "nyc-call@postern.test",
        &gw_version,
        "text/calendar",
        true,
    )
    .await?;
    // backend-wins: the back end keeps its version, the gateway takes it, and the
    // client's version is kept as the loser.
    wait_until("the conflict settled", WAIT, || async {
        Ok((!d.store.list_conflicts(Some(d.tenant)).await?.is_empty()).then_some(()))
    })
    .await?;
    let kept = d.store.list_conflicts(Some(d.tenant)).await?;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].loser_side, "gateway");
    assert!(same_meaning(
        kept[0].loser_content.as_deref().unwrap().as_bytes(),
        &gw_version
    ));
    wait_until("the back end's version on the gateway", WAIT, || async {
        let items = d.items_by_uid(cal).await?;
        Ok(String::from_utf8_lossy(&items["nyc-call@postern.test"])
            .contains("Backend says 10am")
            .then_some(()))
    })
    .await?;
    let on_backend = dav.get("/alice/work/new-york.ics").await?.unwrap();
    assert!(String::from_utf8_lossy(&on_backend).contains("Backend says 10am"));
    // It was the nudged round's conditional write that found the back-end edit.
    assert!(
        conn.proc
            .output()
            .contains("the back end changed too; reading it"),
        "{}",
        conn.proc.output()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_edits_resolve_by_policy_and_keep_the_loser() -> Result<()> {
    let Work {
        d,
        cal,
        dav,
        mut conn,
        rad: _rad,
    } = work_calendar("conflicts", "1s").await?;

    // backend-wins: both sides edit the same event while the connector is away.
    conn.proc.kill9();
    let gw_version = event("nyc-call@postern.test", "Gateway says 9am");
    edit_on_gateway(
        &d,
        cal,
        "nyc-call@postern.test",
        &gw_version,
        "text/calendar",
        false,
    )
    .await?;
    dav.put(
        "/alice/work/new-york.ics",
        &event("nyc-call@postern.test", "Backend says 10am"),
        "text/calendar",
    )
    .await?;
    let conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("backend version wins on the gateway", WAIT, || async {
        let items = d.items_by_uid(cal).await?;
        Ok(String::from_utf8_lossy(&items["nyc-call@postern.test"])
            .contains("Backend says 10am")
            .then_some(()))
    })
    .await?;
    let kept = d.store.list_conflicts(Some(d.tenant)).await?;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].loser_side, "gateway");
    assert!(
        same_meaning(
            kept[0].loser_content.as_deref().unwrap().as_bytes(),
            &gw_version
        ),
        "the loser is kept whole"
    );
    let listed = admin(&d.db, &["conflicts", "--json"])?;
    assert!(
        listed.contains("Gateway says 9am"),
        "admin conflicts lists the losing version"
    );
    let shown = admin(&d.db, &["conflicts", "show", &kept[0].id.to_string()])?;
    assert!(
        shown.contains("Gateway says 9am") && shown.contains("Backend says 10am"),
        "both versions: {shown}"
    );
    // The operator brings the losing version back: it becomes the gateway's and
    // reaches the back end.
    admin(
        &d.db,
        &[
            "conflicts",
            "resolve",
            &kept[0].id.to_string(),
            "--keep",
            "loser",
        ],
    )?;
    wait_until("the kept version on the back end", WAIT, || async {
        let b = dav
            .get("/alice/work/new-york.ics")
            .await?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&b)
            .contains("Gateway says 9am")
            .then_some(()))
    })
    .await?;
    assert!(
        d.store.list_conflicts(Some(d.tenant)).await?.is_empty(),
        "resolved conflicts leave the list"
    );

    // gateway-wins, set by the operator.
    admin(
        &d.db,
        &[
            "collection",
            "set",
            "--tenant",
            "acme",
            &cal.to_string(),
            "--conflict",
            "gateway-wins",
        ],
    )?;
    let mut conn = conn;
    conn.proc.kill9();
    edit_on_gateway(
        &d,
        cal,
        "nyc-call@postern.test",
        &event("nyc-call@postern.test", "Gateway says 11am"),
        "text/calendar",
        false,
    )
    .await?;
    let backend_version = event("nyc-call@postern.test", "Backend says noon");
    dav.put(
        "/alice/work/new-york.ics",
        &backend_version,
        "text/calendar",
    )
    .await?;
    let _conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("gateway version wins on the back end", WAIT, || async {
        let b = dav
            .get("/alice/work/new-york.ics")
            .await?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&b)
            .contains("Gateway says 11am")
            .then_some(()))
    })
    .await?;
    let kept = wait_until("second loser kept", WAIT, || async {
        let k = d.store.list_conflicts(Some(d.tenant)).await?;
        Ok((k.len() == 1).then_some(k))
    })
    .await?;
    assert_eq!(kept[0].loser_side, "backend");
    assert!(same_meaning(
        kept[0].loser_content.as_deref().unwrap().as_bytes(),
        &backend_version
    ));
    let items = d.items_by_uid(cal).await?;
    assert!(String::from_utf8_lossy(&items["nyc-call@postern.test"]).contains("Gateway says 11am"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_round_and_restart_converge_without_duplicates() -> Result<()> {
    let d = Deployment::start("kill9", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[Seed::calendar("work", generated_events(300, "seed"))],
    )
    .await?;
    let config = connector_config(
        &d.gateway.grpc_url,
        &d.token,
        &[source("corp-calendar", "caldav", &rad.url, "1s")],
    );
    let mut conn = Connector::start(&d.dir, "hq", &config)?;
    let cal = d.collection("/alice/work/").await?;
    count_items(&d, cal, 300).await?;
    conn.proc.kill9();

    // 150 gateway-side creations wait in the journal; the connector is killed while
    // writing them to the back end, between a PUT and its acknowledgement.
    for (name, body) in generated_events(150, "gw") {
        d.store
            .put_item(d.tenant, cal, &name, &body, "text/calendar", None)
            .await?;
    }
    let dav = Dav::new(&rad.url, "alice", "alicepw");
    let mut conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    let seen = wait_until(
        "the connector half-way through its writes",
        WAIT,
        || async {
            let n = dav.members("/alice/work/").await?.len();
            Ok((n > 305).then_some(n))
        },
    )
    .await?;
    conn.proc.kill9();
    let pending = d.store.collection(d.tenant, cal).await?.pending;
    assert!(
        pending > 0 && seen < 450,
        "killed mid-round ({seen} on the back end, {pending} pending)"
    );

    let _conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("everything applied", WAIT, || async {
        let c = d.store.collection(d.tenant, cal).await?;
        Ok((c.pending == 0 && c.items == 450).then_some(()))
    })
    .await?;
    let members = dav.members("/alice/work/").await?;
    assert_eq!(
        members.len(),
        450,
        "no duplicates and nothing lost on the back end"
    );
    let mut uids: Vec<String> = dav
        .contents("/alice/work/")
        .await?
        .iter()
        .filter_map(|c| postern_core::content::uid(c))
        .collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 450, "every UID once on the back end");
    let gw = d.items_by_uid(cal).await?;
    assert_eq!(gw.len(), 450, "every UID once on the gateway");
    assert!(
        d.store.list_conflicts(Some(d.tenant)).await?.is_empty(),
        "our own writes are not conflicts"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_looks_empty_pauses_instead_of_wiping() -> Result<()> {
    let d = Deployment::start("guard", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[Seed::calendar("work", generated_events(20, "keep"))],
    )
    .await?;
    let config = connector_config(
        &d.gateway.grpc_url,
        &d.token,
        &[source("corp-calendar", "caldav", &rad.url, "1s")],
    );
    let _conn = Connector::start(&d.dir, "hq", &config)?;
    let cal = d.collection("/alice/work/").await?;
    count_items(&d, cal, 20).await?;

    for entry in std::fs::read_dir(rad.folder("work"))? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "ics") {
            std::fs::remove_file(p)?;
        }
    }
    let reason = wait_until("collection paused", WAIT, || async {
        Ok(d.store.collection(d.tenant, cal).await?.paused_reason)
    })
    .await?;
    assert!(reason.contains("mass deletion"), "{reason}");
    assert_eq!(
        d.items_by_uid(cal).await?.len(),
        20,
        "the gateway keeps every item"
    );
    let status = admin(&d.db, &["status"])?;
    assert!(
        status.contains("PAUSED"),
        "admin status shows the pause: {status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_keeps_backend_deletions_off_and_mirror_reverts_gateway_edits() -> Result<()> {
    let d = Deployment::start("modes", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("merged", fixture_items("calendar")),
            Seed::addressbook("mirrored", fixture_items("contacts")),
        ],
    )
    .await?;
    let mut cal = source("corp-calendar", "caldav", &rad.url, "1s");
    cal.mode = "merge".into();
    let mut book = source("corp-contacts", "carddav", &rad.url, "1s");
    book.mode = "mirror".into();
    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[cal, book]),
    )?;
    let merged = d.collection("/alice/merged/").await?;
    let mirrored = d.collection("/alice/mirrored/").await?;
    count_items(&d, merged, 5).await?;
    count_items(&d, mirrored, 3).await?;
    let dav = Dav::new(&rad.url, "alice", "alicepw");

    // merge: a back-end deletion does not reach the gateway; a back-end edit does.
    dav.delete("/alice/merged/task.ics").await?;
    dav.put(
        "/alice/merged/all-day.ics",
        &event("holiday@postern.test", "Longer holiday"),
        "text/calendar",
    )
    .await?;
    wait_until("edit merged in", WAIT, || async {
        let items = d.items_by_uid(merged).await?;
        Ok(String::from_utf8_lossy(&items["holiday@postern.test"])
            .contains("Longer holiday")
            .then_some(()))
    })
    .await?;
    assert!(
        d.items_by_uid(merged)
            .await?
            .contains_key("task-report@postern.test"),
        "merge keeps what the back end deleted"
    );

    // mirror: a gateway-side edit is reverted to the back end's copy and kept as a conflict.
    let original = edit_on_gateway(
        &d,
        mirrored,
        "card3@postern.test",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card3@postern.test\r\nFN:Local edit\r\nEND:VCARD\r\n",
        "text/vcard",
        false,
    )
    .await?
    .content;
    wait_until("mirror restores the back end's copy", WAIT, || async {
        let items = d.items_by_uid(mirrored).await?;
        let c = d.store.collection(d.tenant, mirrored).await?;
        Ok((same_meaning(&items["card3@postern.test"], &original) && c.pending == 0).then_some(()))
    })
    .await?;
    let kept = d.store.list_conflicts(Some(d.tenant)).await?;
    assert!(kept.iter().any(|k| {
        k.loser_content
            .as_deref()
            .is_some_and(|c| c.contains("Local edit"))
    }));
    let on_backend = dav
        .get(&format!("/alice/mirrored/{}", "vcard3.vcf"))
        .await?
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&on_backend).contains("Local edit"),
        "mirror never writes the back end"
    );
    Ok(())
}
