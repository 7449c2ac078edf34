//! Resource names with spaces, percent signs, non-ASCII and reserved characters
//! round-trip: PUT, GET, DELETE, PROPFIND, multiget and sync-collection answer the
//! same hrefs, whether the client encoded them or not, or in another case. Real
//! gateway, PostgreSQL, Radicale and connector.

use anyhow::Result;
use postern_e2e::backends::event;
use postern_e2e::endpoint::{raw, setup};
use reqwest::StatusCode;

/// Every `<href>` of a multistatus.
fn hrefs(body: &str) -> Vec<String> {
    postern_davxml::parse(body.as_bytes())
        .map(|root| {
            root.children_named(postern_davxml::DAV, "response")
                .filter_map(|r| r.child(postern_davxml::DAV, "href"))
                .map(|h| h.trimmed().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn names_round_trip_however_they_are_encoded() -> Result<()> {
    let s = setup("dav-names", &[], "1h").await?;
    let carol = ("carol@acme", s.password.as_str());
    let coll = "/dav/calendars/carol@acme/work/";
    // "my event 100%é[1].ics", as one client encodes it...
    let written = format!("{coll}my%20event%20100%25%C3%A9%5B1%5D.ics");
    // ...and as another does (lower-case hex, '[' and ']' left alone by some).
    let other = format!("{coll}my%20event%20100%25%c3%a9[1].ics");
    let body = event("names@postern.test", "Names");
    let (st, _) = raw(
        &s,
        "PUT",
        &written,
        carol,
        &[("Content-Type", "text/calendar")],
        &body,
    )
    .await?;
    assert_eq!(st, StatusCode::CREATED);

    let (st, got) = raw(&s, "GET", &other, carol, &[], "").await?;
    assert_eq!(st, StatusCode::OK, "GET under the other encoding");
    assert_eq!(got, body);

    let canonical = written.clone();
    let (_, listing) = raw(
        &s,
        "PROPFIND",
        coll,
        carol,
        &[("Depth", "1")],
        r#"<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>"#,
    )
    .await?;
    assert!(hrefs(&listing).contains(&canonical), "PROPFIND: {listing}");

    let multiget = format!(
        r#"<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><D:href>{other}</D:href></C:calendar-multiget>"#
    );
    let (st, answer) = raw(&s, "REPORT", coll, carol, &[("Depth", "1")], &multiget).await?;
    assert_eq!(st, StatusCode::MULTI_STATUS);
    assert_eq!(
        hrefs(&answer),
        vec![canonical.clone()],
        "multiget: {answer}"
    );
    assert!(answer.contains("200 OK"), "{answer}");

    let sync = r#"<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#;
    let (_, synced) = raw(&s, "REPORT", coll, carol, &[("Depth", "1")], sync).await?;
    assert!(hrefs(&synced).contains(&canonical), "sync: {synced}");

    let (st, _) = raw(&s, "DELETE", &other, carol, &[], "").await?;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = raw(&s, "GET", &written, carol, &[], "").await?;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // The database's canonical form (for names stored before) is the same as ours.
    for sample in ["a b.ics", "a%40b.ics", "caf%c3%a9.ics", "100%25", "[x]#y?"] {
        let row =
            s.d.store
                .client()
                .await?
                .query_one("SELECT postern_canonical_segment($1)", &[&sample])
                .await?;
        let in_sql: String = row.get(0);
        assert_eq!(
            in_sql,
            postern_gateway::dav::path::canonical(sample),
            "{sample}"
        );
    }
    Ok(())
}
