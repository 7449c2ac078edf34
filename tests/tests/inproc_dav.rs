//! The gateway's CalDAV endpoint, in process: the DAV router answering requests in
//! memory over a real PostgreSQL, with the connector's side played through the link
//! session. What a client's request does to the store and the journal, and what the
//! answers say, without binaries, back ends or clients.

use anyhow::Result;
use postern_e2e::inproc::{InLink, InProc};
use postern_e2e::link::Talk;
use postern_gateway::link::session::LinkSettings;
use postern_proto as pb;
use reqwest::StatusCode;

const CAL: &str = "/dav/calendars/alice@acme/cal/";

fn event(uid: &str, summary: &str) -> String {
    postern_e2e::backends::event(uid, summary)
}

/// A gateway with alice's calendar `cal` (found by the connector) and its link.
async fn calendar() -> Result<(InProc, InLink, String)> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings::default());
    let coll = link.setup("one", "alice").await?;
    // One request verifies the password (argon2, slow in a debug build); later ones
    // are served from the authenticator's cache, as for any client.
    let first = g.dav("PROPFIND", CAL, &[("Depth", "0")], "").await?;
    assert_eq!(first.status.as_u16(), 207, "{}", first.body);
    Ok((g, link, coll))
}

fn members(xml: &str) -> usize {
    xml.matches("<d:response>").count()
}

fn sync_token(xml: &str) -> String {
    let root = postern_davxml::parse(xml.as_bytes()).expect("xml");
    root.child(postern_davxml::DAV, "sync-token")
        .expect("sync-token")
        .trimmed()
        .to_string()
}

fn sync_body(token: &str, limit: Option<u32>) -> String {
    format!(
        r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>{}<d:prop><d:getetag/></d:prop></d:sync-collection>"#,
        limit
            .map(|n| format!("<d:limit><d:nresults>{n}</d:nresults></d:limit>"))
            .unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_is_served_back_as_sent_and_waits_in_the_journal() -> Result<()> {
    let (g, mut link, coll) = calendar().await?;
    // LF line ends and odd folding: served back byte for byte.
    let sent = event("keep@postern.test", "as sent").replace("\r\n", "\n");
    let put = g
        .dav(
            "PUT",
            &format!("{CAL}keep.ics"),
            &[("Content-Type", "text/calendar")],
            sent.clone(),
        )
        .await?;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    let etag = put.headers["etag"].to_str()?.to_string();
    let got = g.dav("GET", &format!("{CAL}keep.ics"), &[], "").await?;
    assert_eq!(got.body, sent);
    assert_eq!(got.headers["etag"].to_str()?, etag);

    // The connector's pull hands the same bytes on.
    let answers = link
        .ask_all(pb::connector_message::Body::JournalPull(pb::JournalPull {
            collection_id: coll,
            ..Default::default()
        }))
        .await;
    let pb::gateway_message::Body::JournalBatch(b) = &answers[0] else {
        panic!("{answers:?}")
    };
    assert_eq!(b.changes.len(), 1);
    assert_eq!(b.changes[0].content, sent.as_bytes());

    // Preconditions: a stale If-Match and If-None-Match on an existing item are 412.
    let stale = g
        .dav(
            "PUT",
            &format!("{CAL}keep.ics"),
            &[
                ("Content-Type", "text/calendar"),
                ("If-Match", "\"not-it\""),
            ],
            event("keep@postern.test", "lost?"),
        )
        .await?;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let exists = g
        .dav(
            "PUT",
            &format!("{CAL}keep.ics"),
            &[("Content-Type", "text/calendar"), ("If-None-Match", "*")],
            event("keep@postern.test", "lost?"),
        )
        .await?;
    assert_eq!(exists.status, StatusCode::PRECONDITION_FAILED);
    let fresh = g
        .dav(
            "PUT",
            &format!("{CAL}keep.ics"),
            &[("Content-Type", "text/calendar"), ("If-Match", &etag)],
            event("keep@postern.test", "second"),
        )
        .await?;
    assert_eq!(fresh.status, StatusCode::NO_CONTENT);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_collection_pages_and_reports_deletions() -> Result<()> {
    let (g, _link, _) = calendar().await?;
    for i in 0..5 {
        let r = g
            .dav(
                "PUT",
                &format!("{CAL}{i}.ics"),
                &[("Content-Type", "text/calendar")],
                event(&format!("u{i}"), "x"),
            )
            .await?;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let all = g.dav("REPORT", CAL, &[], sync_body("", None)).await?;
    assert_eq!(all.status.as_u16(), 207);
    assert_eq!(members(&all.body), 5);
    let t0 = sync_token(&all.body);

    // A limit truncates (507 marker) with a token that resumes where it stopped.
    let page = g.dav("REPORT", CAL, &[], sync_body("", Some(2))).await?;
    assert!(page.body.contains("507"), "{}", page.body);
    assert_eq!(members(&page.body), 3);
    let rest = g
        .dav("REPORT", CAL, &[], sync_body(&sync_token(&page.body), None))
        .await?;
    assert_eq!(members(&rest.body), 3);

    // Since t0: one deletion, reported as a 404 member, nothing else.
    let del = g.dav("DELETE", &format!("{CAL}3.ics"), &[], "").await?;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let since = g.dav("REPORT", CAL, &[], sync_body(&t0, None)).await?;
    assert_eq!(members(&since.body), 1, "{}", since.body);
    assert!(since.body.contains("3.ics") && since.body.contains("404"));

    // A forged token: 403 valid-sync-token.
    let forged = g
        .dav("REPORT", CAL, &[], sync_body(&format!("{t0}9"), None))
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("valid-sync-token"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_uid_lives_once_however_many_clients_race() -> Result<()> {
    let (g, _link, _) = calendar().await?;
    let body = event("race@postern.test", "race");
    let puts = (0..6).map(|i| {
        let g = &g;
        let body = body.clone();
        async move {
            g.dav(
                "PUT",
                &format!("{CAL}race-{i}.ics"),
                &[("Content-Type", "text/calendar")],
                body,
            )
            .await
        }
    });
    let answers = futures::future::join_all(puts).await;
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|a| a.map(|a| a.status.as_u16()))
        .collect::<Result<_>>()?;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "the others: no-uid-conflict: {statuses:?}"
    );
    let listing = g.dav("PROPFIND", CAL, &[("Depth", "1")], "").await?;
    assert_eq!(members(&listing.body), 2, "the collection and one item");

    // An item keeps its UID.
    let winner = statuses.iter().position(|s| *s == 201).unwrap_or(0);
    let changed = g
        .dav(
            "PUT",
            &format!("{CAL}race-{winner}.ics"),
            &[("Content-Type", "text/calendar")],
            event("another@postern.test", "race"),
        )
        .await?;
    assert_eq!(changed.status, StatusCode::CONFLICT);
    assert!(changed.body.contains("no-uid-conflict"), "{}", changed.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_is_one_resource_however_it_is_encoded() -> Result<()> {
    let (g, _link, _) = calendar().await?;
    let put = g
        .dav(
            "PUT",
            &format!("{CAL}caf%C3%A9%20%26%20co.ics"),
            &[("Content-Type", "text/calendar")],
            event("cafe@postern.test", "café"),
        )
        .await?;
    assert_eq!(put.status, StatusCode::CREATED);
    // Encoded otherwise (lower-case escapes, the ampersand escaped or not): the same.
    for path in ["caf%c3%a9%20&%20co.ics", "%63af%C3%A9%20%26%20co.ics"] {
        let got = g.dav("GET", &format!("{CAL}{path}"), &[], "").await?;
        assert_eq!(got.status, StatusCode::OK, "{path}");
    }
    let listing = g.dav("PROPFIND", CAL, &[("Depth", "1")], "").await?;
    assert!(
        listing.body.contains("/cal/caf%C3%A9%20&amp;%20co.ics")
            || listing.body.contains("/cal/caf%C3%A9%20%26%20co.ics"),
        "{}",
        listing.body
    );
    assert_eq!(members(&listing.body), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn calendar_query_filters_by_text_and_time() -> Result<()> {
    let (g, _link, _) = calendar().await?;
    for (uid, summary) in [
        ("a", "Budget review"),
        ("b", "Lunch"),
        ("c", "budget lunch"),
    ] {
        g.dav(
            "PUT",
            &format!("{CAL}{uid}.ics"),
            &[("Content-Type", "text/calendar")],
            event(uid, summary),
        )
        .await?;
    }
    let query = |text: &str, negate: bool, start: &str, end: &str| {
        format!(
            r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="{start}" end="{end}"/><c:prop-filter name="SUMMARY"><c:text-match negate-condition="{}">{text}</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#,
            if negate { "yes" } else { "no" }
        )
    };
    // Every event is at 2025-07-01T10:00Z (the harness's event).
    let r = g
        .dav(
            "REPORT",
            CAL,
            &[("Depth", "1")],
            query("BUDGET", false, "20250701T000000Z", "20250702T000000Z"),
        )
        .await?;
    assert_eq!(r.status.as_u16(), 207, "{}", r.body);
    assert_eq!(
        members(&r.body),
        2,
        "case-insensitive by default: {}",
        r.body
    );
    let r = g
        .dav(
            "REPORT",
            CAL,
            &[("Depth", "1")],
            query("budget", true, "20250701T000000Z", "20250702T000000Z"),
        )
        .await?;
    assert_eq!(members(&r.body), 1, "negated: {}", r.body);
    let r = g
        .dav(
            "REPORT",
            CAL,
            &[("Depth", "1")],
            query("budget", false, "20250801T000000Z", "20250802T000000Z"),
        )
        .await?;
    assert_eq!(members(&r.body), 0, "outside the range: {}", r.body);
    // An unknown collation is the client's mistake: 403 supported-collation.
    let bad = query("x", false, "20250701T000000Z", "20250702T000000Z")
        .replace("<c:text-match ", r#"<c:text-match collation="i;klingon" "#);
    let r = g.dav("REPORT", CAL, &[("Depth", "1")], bad).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("supported-collation"), "{}", r.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_and_move_keep_one_uid_per_collection() -> Result<()> {
    let (g, _link, _) = calendar().await?;
    g.dav(
        "PUT",
        &format!("{CAL}a.ics"),
        &[("Content-Type", "text/calendar")],
        event("a", "x"),
    )
    .await?;
    // A copy into the same collection would hold the UID twice: refused.
    let copy = g
        .dav(
            "COPY",
            &format!("{CAL}a.ics"),
            &[("Destination", &format!("{CAL}b.ics"))],
            "",
        )
        .await?;
    assert_eq!(copy.status, StatusCode::CONFLICT, "{}", copy.body);
    // A move renames: the old name is gone, the new one answers.
    let mv = g
        .dav(
            "MOVE",
            &format!("{CAL}a.ics"),
            &[("Destination", &format!("{CAL}b.ics"))],
            "",
        )
        .await?;
    assert_eq!(mv.status, StatusCode::CREATED, "{}", mv.body);
    assert_eq!(
        g.dav("GET", &format!("{CAL}a.ics"), &[], "").await?.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        g.dav("GET", &format!("{CAL}b.ics"), &[], "").await?.status,
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_mistakes_are_4xx_with_a_reason() -> Result<()> {
    let (g, _link, _) = calendar().await?;
    /// Method, path, headers, body.
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            "PROPFIND",
            CAL.into(),
            vec![("Depth", "1")],
            "<d:propfind xmlns:d=\"DAV:\"><d:prop>".into(),
        ),
        (
            "PUT",
            format!("{CAL}x.ics"),
            vec![("Content-Type", "text/calendar")],
            "not a calendar".into(),
        ),
        (
            "PUT",
            format!("{CAL}y.ics"),
            vec![("Content-Type", "text/calendar")],
            event("", "no uid"),
        ),
        (
            "REPORT",
            CAL.into(),
            vec![],
            "<d:unknown-report xmlns:d=\"DAV:\"/>".into(),
        ),
        (
            "MOVE",
            format!("{CAL}none.ics"),
            vec![("Destination", "http://elsewhere.example/x.ics")],
            String::new(),
        ),
        (
            "GET",
            "/dav/calendars/alice@acme/cal/../../bob@acme/".into(),
            vec![],
            String::new(),
        ),
    ];
    for (method, path, headers, body) in cases {
        let r = g.dav(method, &path, &headers, body).await?;
        assert!(
            r.status.is_client_error(),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    }
    Ok(())
}
