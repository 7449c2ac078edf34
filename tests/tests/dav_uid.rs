//! One UID, one item: UIDs on a VCALENDAR or a VALARM are not a second object; an item
//! keeps its UID; two clients putting one UID under two names at once cannot both
//! win; and a UID made on both sides under different names becomes one item. Real
//! Radicale, connector, gateway and PostgreSQL.

use anyhow::Result;
use postern_e2e::backends::event;
use postern_e2e::dav::Dav;
use postern_e2e::endpoint::{Setup, WAIT, raw, setup};
use postern_e2e::{admin, wait_until};
use reqwest::StatusCode;

async fn put(s: &Setup, name: &str, body: &str) -> Result<(StatusCode, String)> {
    raw(
        s,
        "PUT",
        &format!("/dav/calendars/carol@acme/work/{name}"),
        ("carol@acme", s.password.as_str()),
        &[("Content-Type", "text/calendar")],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_uid_names_one_item() -> Result<()> {
    let s = setup("dav-uid", &[], "1h").await?;
    // A UID on the VCALENDAR and one on a VALARM (RFC 9074), as Apple clients write.
    let apple = event("apple@postern.test", "Apple style")
        .replace("VERSION:2.0\r\n", "VERSION:2.0\r\nUID:apple-calendar-level\r\n")
        .replace(
            "END:VEVENT",
            "BEGIN:VALARM\r\nUID:alarm-1\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT",
        );
    assert_eq!(put(&s, "apple.ics", &apple).await?.0, StatusCode::CREATED);

    // An item keeps its UID.
    let other = event("someone-else@postern.test", "Changed UID");
    let (st, body) = put(&s, "apple.ics", &other).await?;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("no-uid-conflict"), "{body}");

    // Two clients, one UID, two names, at the same time: exactly one wins, every time.
    for i in 0..20 {
        let uid = format!("race-{i}@postern.test");
        let body = event(&uid, "Race");
        let (name_a, name_b) = (format!("a-{i}.ics"), format!("b-{i}.ics"));
        let (a, b) = tokio::join!(put(&s, &name_a, &body), put(&s, &name_b, &body));
        let mut statuses = [a?.0, b?.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "round {i}"
        );
    }
    let dupes: i64 =
        s.d.query(
            "SELECT count(*) FROM (SELECT uid FROM items WHERE NOT deleted AND uid <> ''
             GROUP BY collection_id, uid HAVING count(*) > 1) d",
        )
        .await?[0]
            .get(0);
    assert_eq!(dupes, 0, "no UID is held twice");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_uid_made_on_both_sides_under_two_names_becomes_one_item() -> Result<()> {
    let mut s = setup("dav-uid-both", &[], "1s").await?;
    let coll = s.d.collection("/alice/work/").await?;
    s.conn.proc.kill9();
    // The office makes it on the back end as other.ics; a client makes it on the
    // gateway as mine.ics; neither knows of the other.
    let rad = Dav::new(&s.rad.url, "alice", "alicepw");
    assert!(
        rad.put(
            "/alice/work/other.ics",
            event("both@postern.test", "Office version").as_bytes(),
            "text/calendar"
        )
        .await?
        .is_success()
    );
    assert_eq!(
        put(
            &s,
            "mine.ics",
            &event("both@postern.test", "Client version")
        )
        .await?
        .0,
        StatusCode::CREATED
    );
    let _conn = postern_e2e::Connector::start_file(&s.d.dir, "hq", &s.conn.config)?;
    wait_until("one item, synced", WAIT, || async {
        let c = s.d.store.collection(s.d.tenant, coll).await?;
        let items = s.d.store.list_items(s.d.tenant, coll).await?;
        let same: Vec<_> = items
            .iter()
            .filter(|i| i.uid == "both@postern.test")
            .collect();
        Ok((c.pending == 0 && same.len() == 1).then_some(()))
    })
    .await?;
    let on_backend: Vec<Vec<u8>> = rad
        .contents("/alice/work/")
        .await?
        .into_iter()
        .filter(|c| postern_core::content::uid(c).as_deref() == Some("both@postern.test"))
        .collect();
    assert_eq!(on_backend.len(), 1, "one copy on the back end");
    // backend-wins: the office's version, and the client's kept as the loser.
    assert!(String::from_utf8_lossy(&on_backend[0]).contains("Office version"));
    let items = s.d.items_by_uid(coll).await?;
    assert!(String::from_utf8_lossy(&items["both@postern.test"]).contains("Office version"));
    let conflicts = admin(&s.d.db, &["conflicts", "--json"])?;
    assert!(conflicts.contains("Client version"), "{conflicts}");
    Ok(())
}
