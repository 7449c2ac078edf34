//! The CalDAV and CardDAV a client expects, end to end through the gateway (real
//! PostgreSQL, Radicale and connector): the filter grammar of calendar-query and
//! addressbook-query, `expand` and `limit-recurrence-set`, free-busy-query, collection
//! properties (description, time zone, dead properties; carried to the back end),
//! MKCALENDAR with a component set, and principal searches.

use anyhow::Result;
use postern_e2e::dav::Dav;
use postern_e2e::endpoint::{Setup, WAIT, raw, setup};
use postern_e2e::wait_until;
use reqwest::StatusCode;

const WORK: &str = "/dav/calendars/carol@acme/work/";

fn hrefs(body: &str) -> Vec<String> {
    postern_davxml::parse(body.as_bytes())
        .map(|root| {
            root.children_named(postern_davxml::DAV, "response")
                .filter(|r| r.find(postern_davxml::DAV, "propstat").is_some())
                .filter_map(|r| r.child(postern_davxml::DAV, "href"))
                .map(|h| h.trimmed().rsplit('/').next().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn query(s: &Setup, path: &str, body: &str) -> Result<(StatusCode, String)> {
    raw(
        s,
        "REPORT",
        path,
        ("carol@acme", s.password.as_str()),
        &[("Depth", "1"), ("Content-Type", "application/xml")],
        body,
    )
    .await
}

async fn put(s: &Setup, path: &str, body: &str, ctype: &str) -> Result<StatusCode> {
    Ok(raw(
        s,
        "PUT",
        path,
        ("carol@acme", s.password.as_str()),
        &[("Content-Type", ctype)],
        body,
    )
    .await?
    .0)
}

fn calendar_query(filter: &str, data: &str) -> String {
    format!(
        r#"<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/>{data}</D:prop><C:filter><C:comp-filter name="VCALENDAR">{filter}</C:comp-filter></C:filter></C:calendar-query>"#
    )
}

const REVIEW: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:review@postern.test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250602T090000Z\r\nDTEND:20250602T100000Z\r\nSUMMARY:Quarterly review\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:ann@example.com\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:soon\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn calendar_queries_use_the_whole_filter_grammar() -> Result<()> {
    let s = setup("dav-rfc-query", &[], "1h").await?;
    assert_eq!(
        put(&s, &format!("{WORK}review.ics"), REVIEW, "text/calendar").await?,
        StatusCode::CREATED
    );
    let ask = |filter: &str| calendar_query(filter, "");
    let ev = |inner: &str| format!(r#"<C:comp-filter name="VEVENT">{inner}</C:comp-filter>"#);
    // text-match (case-insensitive by default), negated, is-not-defined, param-filter.
    for (filter, expect_review) in [
        (
            ev(
                r#"<C:prop-filter name="SUMMARY"><C:text-match>QUARTERLY</C:text-match></C:prop-filter>"#,
            ),
            true,
        ),
        (
            ev(
                r#"<C:prop-filter name="SUMMARY"><C:text-match collation="i;octet">QUARTERLY</C:text-match></C:prop-filter>"#,
            ),
            false,
        ),
        (
            ev(
                r#"<C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">review</C:text-match></C:prop-filter>"#,
            ),
            false,
        ),
        (
            ev(r#"<C:prop-filter name="LOCATION"><C:is-not-defined/></C:prop-filter>"#),
            true,
        ),
        (
            ev(
                r#"<C:prop-filter name="ATTENDEE"><C:param-filter name="PARTSTAT"><C:text-match>ACCEPTED</C:text-match></C:param-filter></C:prop-filter>"#,
            ),
            true,
        ),
        (
            ev(
                r#"<C:prop-filter name="ATTENDEE"><C:param-filter name="PARTSTAT"><C:text-match>DECLINED</C:text-match></C:param-filter></C:prop-filter>"#,
            ),
            false,
        ),
        // The alarm fires at 08:45Z.
        (
            ev(
                r#"<C:comp-filter name="VALARM"><C:time-range start="20250602T084000Z" end="20250602T085000Z"/></C:comp-filter>"#,
            ),
            true,
        ),
        (
            ev(
                r#"<C:comp-filter name="VALARM"><C:time-range start="20250602T085000Z" end="20250602T090000Z"/></C:comp-filter>"#,
            ),
            false,
        ),
    ] {
        let (st, body) = query(&s, WORK, &ask(&filter)).await?;
        assert_eq!(st, StatusCode::MULTI_STATUS, "{filter}: {body}");
        assert_eq!(
            hrefs(&body).contains(&"review.ics".to_string()),
            expect_review,
            "{filter}: {body}"
        );
    }
    // A bad filter is refused with the precondition.
    let (st, body) = query(&s, WORK, &ask(&ev(r#"<C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x</C:text-match></C:prop-filter>"#))).await?;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(body.contains("supported-collation"), "{body}");

    // expand: the weekly fixture's occurrences in a range, each on its own, in UTC.
    let data = r#"<C:calendar-data><C:expand start="20250106T000000Z" end="20250121T000000Z"/></C:calendar-data>"#;
    let (st, body) = query(
        &s,
        WORK,
        &calendar_query(
            r#"<C:comp-filter name="VEVENT"><C:time-range start="20250106T000000Z" end="20250121T000000Z"/></C:comp-filter>"#,
            data,
        ),
    )
    .await?;
    assert_eq!(st, StatusCode::MULTI_STATUS);
    let text = body.replace("&#13;", "");
    assert!(text.contains("RECURRENCE-ID:20250106T083000Z"), "{body}");
    assert!(
        text.contains("DTSTART:20250113T100000Z"),
        "the moved one: {body}"
    );
    assert!(!text.contains("RRULE"), "{body}");
    // limit-recurrence-set: the master, without the exception outside the range.
    let data = r#"<C:calendar-data><C:limit-recurrence-set start="20250301T000000Z" end="20250401T000000Z"/></C:calendar-data>"#;
    let (_, body) = query(
        &s,
        WORK,
        &calendar_query(
            r#"<C:comp-filter name="VEVENT"><C:prop-filter name="UID"><C:text-match>weekly-standup</C:text-match></C:prop-filter></C:comp-filter>"#,
            data,
        ),
    )
    .await?;
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 1, "{body}");
    assert!(body.contains("RRULE"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn free_busy_floating_times_and_collection_properties() -> Result<()> {
    let s = setup("dav-rfc-props", &[], "1s").await?;
    let carol = ("carol@acme", s.password.as_str());
    assert_eq!(
        put(&s, &format!("{WORK}review.ics"), REVIEW, "text/calendar").await?,
        StatusCode::CREATED
    );
    let (st, fb) = query(
        &s,
        WORK,
        r#"<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:time-range start="20250602T000000Z" end="20250603T000000Z"/></C:free-busy-query>"#,
    )
    .await?;
    assert_eq!(st, StatusCode::OK);
    assert!(
        fb.contains("FREEBUSY;FBTYPE=BUSY:20250602T090000Z/20250602T100000Z"),
        "{fb}"
    );

    // PROPPATCH: description, time zone, a dead property; removing what is not set.
    let tz = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
    let patch = format!(
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:X="urn:example:x"><D:set><D:prop><C:calendar-description>Team work</C:calendar-description><C:calendar-timezone>{}</C:calendar-timezone><X:flavour>strawberry</X:flavour></D:prop></D:set><D:remove><D:prop><X:never-set/></D:prop></D:remove></D:propertyupdate>"#,
        postern_davxml::escape(tz)
    );
    let (st, body) = raw(&s, "PROPPATCH", WORK, carol, &[], &patch).await?;
    assert_eq!(st, StatusCode::MULTI_STATUS);
    assert_eq!(body.matches("200 OK").count(), 4, "{body}");
    let (_, props) = raw(
        &s,
        "PROPFIND",
        WORK,
        carol,
        &[("Depth", "0")],
        r#"<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:X="urn:example:x"><D:prop><C:calendar-description/><X:flavour/><C:calendar-timezone/></D:prop></D:propfind>"#,
    )
    .await?;
    assert!(
        props.contains("Team work")
            && props.contains("strawberry")
            && props.contains("America/New_York"),
        "{props}"
    );
    // A live property cannot be set: the whole PROPPATCH fails.
    let (_, body) = raw(
        &s,
        "PROPPATCH",
        WORK,
        carol,
        &[],
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname><D:sync-token>forged</D:sync-token></D:prop></D:set></D:propertyupdate>"#,
    )
    .await?;
    assert!(
        body.contains("403 Forbidden") && body.contains("424 Failed Dependency"),
        "{body}"
    );

    // Floating times are read in the calendar's zone: 09:00 New York is 14:00Z in winter.
    let floating = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:floating@postern.test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250115T090000\r\nDTEND:20250115T093000\r\nSUMMARY:Floating\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        put(
            &s,
            &format!("{WORK}floating.ics"),
            floating,
            "text/calendar"
        )
        .await?,
        StatusCode::CREATED
    );
    let at = |a: &str, b: &str| {
        calendar_query(
            &format!(
                r#"<C:comp-filter name="VEVENT"><C:time-range start="{a}" end="{b}"/></C:comp-filter>"#
            ),
            "",
        )
    };
    let (_, body) = query(&s, WORK, &at("20250115T135900Z", "20250115T141000Z")).await?;
    assert!(hrefs(&body).contains(&"floating.ics".to_string()), "{body}");
    let (_, body) = query(&s, WORK, &at("20250115T085900Z", "20250115T091000Z")).await?;
    assert!(
        !hrefs(&body).contains(&"floating.ics".to_string()),
        "{body}"
    );

    // The back end gets the description and the dead property.
    let rad = Dav::new(&s.rad.url, "alice", "alicepw");
    wait_until("properties on Radicale", WAIT, || async {
        let body = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(b"PROPFIND")?, format!("{}alice/work/", s.rad.url))
            .basic_auth("alice", Some("alicepw"))
            .header("Depth", "0")
            .body(r#"<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:X="urn:example:x"><D:prop><C:calendar-description/><X:flavour/></D:prop></D:propfind>"#)
            .send()
            .await?
            .text()
            .await?;
        Ok((body.contains("Team work") && body.contains("strawberry")).then_some(()))
    })
    .await?;
    let _ = rad;

    // MKCALENDAR with a component set: advertised, and what it holds is enforced.
    let mk = r#"<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>Tasks</D:displayname><C:supported-calendar-component-set><C:comp name="VTODO"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"#;
    let tasks = "/dav/calendars/carol@acme/tasks/";
    assert_eq!(
        raw(&s, "MKCALENDAR", tasks, carol, &[], mk).await?.0,
        StatusCode::CREATED
    );
    let (st, body) = raw(&s, "MKCALENDAR", tasks, carol, &[], mk).await?;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.contains("resource-must-be-null"), "{body}");
    let (_, props) = raw(
        &s,
        "PROPFIND",
        tasks,
        carol,
        &[("Depth", "0")],
        r#"<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:supported-calendar-component-set/></D:prop></D:propfind>"#,
    )
    .await?;
    assert!(
        props.contains(r#"name="VTODO""#) && !props.contains(r#"name="VEVENT""#),
        "{props}"
    );
    let (st, _) = raw(
        &s,
        "PUT",
        &format!("{tasks}e.ics"),
        carol,
        &[("Content-Type", "text/calendar")],
        REVIEW,
    )
    .await?;
    assert_eq!(st, StatusCode::FORBIDDEN, "an event in a to-do calendar");

    // Principal searches answer, with nobody else to find.
    let (st, body) = raw(
        &s,
        "REPORT",
        "/dav/principals/",
        carol,
        &[("Depth", "0")],
        r#"<D:principal-property-search xmlns:D="DAV:"><D:property-search><D:prop><D:displayname/></D:prop><D:match>bob</D:match></D:property-search><D:prop><D:displayname/></D:prop></D:principal-property-search>"#,
    )
    .await?;
    assert_eq!(st, StatusCode::MULTI_STATUS, "{body}");
    let (st, body) = raw(
        &s,
        "REPORT",
        "/dav/principals/",
        carol,
        &[("Depth", "0")],
        r#"<D:principal-search-property-set xmlns:D="DAV:"/>"#,
    )
    .await?;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("displayname"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn address_book_queries_anyof_allof_and_limit() -> Result<()> {
    let s = setup("dav-rfc-cards", &[], "1h").await?;
    let book = "/dav/addressbooks/carol@acme/contacts/";
    let q = |filter: &str, limit: &str| {
        format!(
            r#"<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop>{filter}{limit}</CR:addressbook-query>"#
        )
    };
    let anyof = r#"<CR:filter test="anyof"><CR:prop-filter name="FN"><CR:text-match>jürgen</CR:text-match></CR:prop-filter><CR:prop-filter name="FN"><CR:text-match>photo</CR:text-match></CR:prop-filter></CR:filter>"#;
    let (_, body) = query(&s, book, &q(anyof, "")).await?;
    assert_eq!(hrefs(&body).len(), 2, "{body}");
    let allof = anyof.replace("anyof", "allof");
    let (_, body) = query(&s, book, &q(&allof, "")).await?;
    assert_eq!(hrefs(&body).len(), 0, "{body}");
    let typed = r#"<CR:filter><CR:prop-filter name="TEL"><CR:param-filter name="TYPE"><CR:text-match match-type="equals">work</CR:text-match></CR:param-filter></CR:prop-filter></CR:filter>"#;
    let (_, body) = query(&s, book, &q(typed, "")).await?;
    assert_eq!(hrefs(&body).len(), 1, "{body}");
    let everyone = r#"<CR:filter><CR:prop-filter name="FN"/></CR:filter>"#;
    let (_, body) = query(
        &s,
        book,
        &q(
            everyone,
            "<CR:limit><CR:nresults>2</CR:nresults></CR:limit>",
        ),
    )
    .await?;
    assert_eq!(hrefs(&body).len(), 2, "{body}");
    assert!(body.contains("507"), "the truncation is said: {body}");
    Ok(())
}
