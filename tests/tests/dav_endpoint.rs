//! The gateway's CalDAV/CardDAV endpoint, driven by real clients (python-caldav) and
//! by raw requests for the edges clients hit, with a real Radicale behind a real
//! connector.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, event, fixture_items, generated_events};
use postern_e2e::dav::Dav;
use postern_e2e::endpoint::{Setup, WAIT, raw, setup};
use postern_e2e::{
    Connector, Deployment, SourceSpec, admin, connector_config, last_line, wait_until,
};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn every_method_refuses_other_users_and_tenants() -> Result<()> {
    let s = setup("dav-isolation", &[], "1h").await?;
    let dave = last_line(&admin(
        &s.d.db,
        &["user", "add", "--tenant", "acme", "dave"],
    )?);
    admin(&s.d.db, &["tenant", "add", "globex"])?;
    let other = last_line(&admin(
        &s.d.db,
        &["user", "add", "--tenant", "globex", "carol"],
    )?);
    let me = ("carol@acme", s.password.as_str());
    let ev = event("x@postern.test", "x");
    let item = "/dav/calendars/carol@acme/work/new-york.ics";
    let coll = "/dav/calendars/carol@acme/work/";
    let multiget = r#"<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><d:href>/dav/calendars/carol@acme/work/new-york.ics</d:href></c:calendar-multiget>"#;
    let patch = r#"<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>x</d:displayname></d:prop></d:set></d:propertyupdate>"#;
    let attempts: Vec<(&str, &str, &str)> = vec![
        ("PROPFIND", "/dav/principals/carol@acme/", ""),
        ("PROPFIND", "/dav/calendars/carol@acme/", ""),
        ("PROPFIND", coll, ""),
        ("GET", item, ""),
        ("HEAD", item, ""),
        ("PUT", "/dav/calendars/carol@acme/work/x.ics", &ev),
        ("DELETE", item, ""),
        ("REPORT", coll, multiget),
        ("PROPPATCH", coll, patch),
        ("MKCALENDAR", "/dav/calendars/carol@acme/theirs/", ""),
        ("DELETE", coll, ""),
    ];
    for (who, pw) in [
        ("dave@acme", dave.as_str()),
        ("carol@globex", other.as_str()),
    ] {
        for (m, p, body) in &attempts {
            let (status, _) = raw(
                &s,
                m,
                p,
                (who, pw),
                &[("Content-Type", "text/calendar")],
                body,
            )
            .await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} {m} {p}");
        }
        // Their own homes list none of carol's collections.
        let (status, body) = raw(
            &s,
            "PROPFIND",
            &format!("/dav/calendars/{who}/"),
            (who, pw),
            &[("Depth", "1")],
            "",
        )
        .await?;
        assert_eq!(status.as_u16(), 207);
        assert!(
            !body.contains("/work/"),
            "{who} sees no one else's calendars"
        );
    }
    // Nothing changed for carol.
    assert_eq!(
        s.d.items_by_uid(s.d.collection("/alice/work/").await?)
            .await?
            .len(),
        5
    );
    let (status, _) = raw(&s, "GET", item, me, &[], "").await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = raw(
        &s,
        "GET",
        "/dav/calendars/carol%40acme/work/new-york.ics",
        me,
        &[],
        "",
    )
    .await?;
    assert_eq!(
        status,
        StatusCode::OK,
        "alice%40acme and alice@acme name the same resource"
    );

    // Wrong or missing credentials: 401 with a challenge, never the data.
    let resp = reqwest::Client::new()
        .get(format!("{}{item}", s.base))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()?
            .starts_with("Basic")
    );
    let (status, _) = raw(&s, "GET", item, ("carol@acme", "wrong"), &[], "").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Repeated failures for one user are slowed down (counted, not timed), and the
    // right password still gets in.
    let throttled = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("postern_auth_throttled_total"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let metrics = format!("{}/metrics", s.base);
    let before = throttled(&reqwest::get(&metrics).await?.text().await?);
    for _ in 0..3 {
        let (status, _) = raw(&s, "GET", item, ("dave@acme", "wrong"), &[], "").await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let after = throttled(&reqwest::get(&metrics).await?.text().await?);
    assert!(
        after > before,
        "the third failure in a row was slowed down ({before} -> {after})"
    );
    let (status, _) = raw(
        &s,
        "PROPFIND",
        "/dav/calendars/dave@acme/",
        ("dave@acme", &dave),
        &[("Depth", "0")],
        "",
    )
    .await?;
    assert_eq!(status.as_u16(), 207, "dave's own password still works");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_collection_handles_what_real_clients_send() -> Result<()> {
    let s = setup("dav-sync", &[], "1h").await?;
    let me = ("carol@acme", s.password.as_str());
    let coll = "/dav/calendars/carol@acme/work/";
    let body = |token: &str, limit: Option<u32>| {
        format!(
            r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>{}<d:prop><d:getetag/></d:prop></d:sync-collection>"#,
            limit
                .map(|n| format!("<d:limit><d:nresults>{n}</d:nresults></d:limit>"))
                .unwrap_or_default()
        )
    };
    let token_of = |xml: &str| -> String {
        let root = postern_davxml::parse(xml.as_bytes()).unwrap();
        root.child(postern_davxml::DAV, "sync-token")
            .unwrap()
            .trimmed()
            .to_string()
    };
    let hrefs = |xml: &str| xml.matches("<d:response>").count();

    // Empty token: every member. Depth: 1 (Thunderbird) is accepted.
    let (status, all) = raw(&s, "REPORT", coll, me, &[("Depth", "1")], &body("", None)).await?;
    assert_eq!(status.as_u16(), 207);
    assert_eq!(hrefs(&all), 5);
    let t0 = token_of(&all);

    // Unknown and forged tokens: 403 valid-sync-token, so the client starts over.
    for bad in [
        "http://example.com/sync/1",
        "urn:postern:sync:00000000000000000000000000000000:1",
        &format!("{t0}9"),
    ] {
        let (status, err) = raw(&s, "REPORT", coll, me, &[], &body(bad, None)).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        assert!(err.contains("valid-sync-token"), "{err}");
    }

    // A limit truncates with 507 and a token that resumes.
    let (_, page) = raw(&s, "REPORT", coll, me, &[], &body("", Some(2))).await?;
    assert!(page.contains("507"), "{page}");
    assert_eq!(hrefs(&page), 3, "two members and the truncation marker");
    let (_, rest) = raw(&s, "REPORT", coll, me, &[], &body(&token_of(&page), None)).await?;
    assert_eq!(hrefs(&rest), 3, "the remaining three members");

    // A deletion appears as a 404 member; nothing else is reported.
    let (status, _) = raw(
        &s,
        "DELETE",
        "/dav/calendars/carol@acme/work/task.ics",
        me,
        &[],
        "",
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, delta) = raw(&s, "REPORT", coll, me, &[], &body(&t0, None)).await?;
    assert_eq!(hrefs(&delta), 1, "{delta}");
    assert!(
        delta.contains("task.ics") && delta.contains("404"),
        "{delta}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn puts_are_validated_and_conditional() -> Result<()> {
    let s = setup("dav-put", &["--max-item-bytes", "4000"], "1h").await?;
    let me = ("carol@acme", s.password.as_str());
    let cal = "text/calendar; charset=utf-8";
    let path = "/dav/calendars/carol@acme/work/fresh.ics";

    let (status, err) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", cal)],
        "this is not a calendar",
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err.contains("valid-calendar-data"));
    let (status, err) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", "application/json")],
        &event("f", "x"),
    )
    .await?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(err.contains("supported-calendar-data"));
    let (status, err) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", cal)],
        &event("nyc-call@postern.test", "same uid"),
    )
    .await?;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err.contains("no-uid-conflict") && err.contains("new-york.ics"),
        "{err}"
    );
    let big = event("big", &"x".repeat(5000));
    let (status, _) = raw(&s, "PUT", path, me, &[("Content-Type", cal)], &big).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let resp = reqwest::Client::new()
        .put(format!("{}{path}", s.base))
        .basic_auth(me.0, Some(me.1))
        .header("Content-Type", cal)
        .header("If-None-Match", "*")
        .body(event("fresh@postern.test", "v1"))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let etag = resp.headers().get("etag").unwrap().to_str()?.to_string();
    let (status, got) = raw(&s, "GET", path, me, &[], "").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got,
        event("fresh@postern.test", "v1"),
        "the client's bytes are stored as sent"
    );

    let (status, _) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", cal), ("If-None-Match", "*")],
        &event("fresh@postern.test", "v2"),
    )
    .await?;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "If-None-Match: * on an existing item"
    );
    let (status, _) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", cal), ("If-Match", "\"stale\"")],
        &event("fresh@postern.test", "v2"),
    )
    .await?;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "If-Match with a stale ETag"
    );
    let (status, _) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", cal), ("If-Match", &etag)],
        &event("fresh@postern.test", "v2"),
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = raw(&s, "DELETE", path, me, &[("If-Match", &etag)], "").await?;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "DELETE with a stale ETag"
    );

    // Collections in mirror mode are read-only to clients.
    let coll = s.d.collection("/alice/work/").await?;
    admin(
        &s.d.db,
        &[
            "collection",
            "set",
            "--tenant",
            "acme",
            &coll.to_string(),
            "--mode",
            "mirror",
        ],
    )?;
    let (status, err) = raw(
        &s,
        "PUT",
        "/dav/calendars/carol@acme/work/ro.ics",
        me,
        &[("Content-Type", cal)],
        &event("ro", "x"),
    )
    .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(err.contains("need-privileges"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_password_stops_working_at_once() -> Result<()> {
    let s = setup("dav-rotate", &[], "1h").await?;
    let item = "/dav/calendars/carol@acme/work/new-york.ics";
    // Verified once, then remembered: both requests succeed.
    for _ in 0..2 {
        let (status, _) = raw(&s, "GET", item, ("carol@acme", &s.password), &[], "").await?;
        assert_eq!(status, StatusCode::OK);
    }
    let fresh = last_line(&admin(
        &s.d.db,
        &["user", "rotate", "--tenant", "acme", "carol"],
    )?);
    let (status, _) = raw(&s, "GET", item, ("carol@acme", &s.password), &[], "").await?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the remembered verification died with the password"
    );
    let (status, _) = raw(&s, "GET", item, ("carol@acme", &fresh), &[], "").await?;
    assert_eq!(status, StatusCode::OK);

    // One password per device: add, list, revoke one; the others keep working.
    let phone = last_line(&admin(
        &s.d.db,
        &[
            "user", "password", "add", "--tenant", "acme", "carol", "--label", "phone",
        ],
    )?);
    let (status, _) = raw(&s, "GET", item, ("carol@acme", &phone), &[], "").await?;
    assert_eq!(status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&admin(
        &s.d.db,
        &[
            "user", "password", "list", "--tenant", "acme", "carol", "--json",
        ],
    )?)?;
    let phone_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "phone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin(
        &s.d.db,
        &[
            "user", "password", "revoke", "--tenant", "acme", "carol", &phone_id,
        ],
    )?;
    let (status, _) = raw(&s, "GET", item, ("carol@acme", &phone), &[], "").await?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked phone password stops at once"
    );
    let (status, _) = raw(&s, "GET", item, ("carol@acme", &fresh), &[], "").await?;
    assert_eq!(status, StatusCode::OK, "the laptop's keeps working");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn client_writes_wait_while_the_backend_is_down_and_are_applied_when_it_returns() -> Result<()>
{
    let mut s = setup("dav-offline", &[], "500ms").await?;
    let me = ("carol@acme", s.password.clone());
    let me = (me.0, me.1.as_str());
    let cal = "text/calendar; charset=utf-8";
    // The corporate server goes away.
    let port: u16 = s
        .rad
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()?;
    s.rad.proc.kill9();
    let (status, _) = raw(
        &s,
        "PUT",
        "/dav/calendars/carol@acme/work/offline.ics",
        me,
        &[("Content-Type", cal)],
        &event("offline@postern.test", "Written offline"),
    )
    .await?;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the client's write is accepted while the back end is down"
    );
    let coll = s.d.collection("/alice/work/").await?;
    assert_eq!(
        s.d.store.collection(s.d.tenant, coll).await?.pending,
        1,
        "it waits in the journal"
    );
    // Meanwhile someone edits the same calendar on the corporate side: another item,
    // and the very item the client also edited offline.
    std::fs::write(
        s.rad.folder("work").join("all-day.ics"),
        event("holiday@postern.test", "Edited while we were away"),
    )?;
    let (status, _) = raw(
        &s,
        "PUT",
        "/dav/calendars/carol@acme/work/new-york.ics",
        me,
        &[("Content-Type", cal)],
        &event("nyc-call@postern.test", "Client moved it offline"),
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    std::fs::write(
        s.rad.folder("work").join("new-york.ics"),
        event("nyc-call@postern.test", "Corporate moved it"),
    )?;

    // The server comes back on the same address with the same data.
    s.rad = restart_radicale(&s, port).await?;
    let backend = Dav::new(&s.rad.url, "alice", "alicepw");
    wait_until("queued write applied", WAIT, || async {
        Ok(backend
            .get("/alice/work/offline@postern.test.ics")
            .await?
            .map(|_| ()))
    })
    .await?;
    wait_until("corporate edit on the gateway", WAIT, || async {
        let items = s.d.items_by_uid(coll).await?;
        Ok(String::from_utf8_lossy(&items["holiday@postern.test"])
            .contains("Edited while we were away")
            .then_some(()))
    })
    .await?;
    // Both changed new-york.ics: backend-wins decides, and the client's version is kept.
    wait_until("conflict settled by policy", WAIT, || async {
        let items = s.d.items_by_uid(coll).await?;
        Ok(String::from_utf8_lossy(&items["nyc-call@postern.test"])
            .contains("Corporate moved it")
            .then_some(()))
    })
    .await?;
    let kept = s.d.store.list_conflicts(Some(s.d.tenant)).await?;
    assert!(kept.iter().any(|k| {
        k.loser_side == "gateway"
            && k.loser_content
                .as_deref()
                .is_some_and(|c| c.contains("Client moved it offline"))
    }));
    wait_until("nothing pending", WAIT, || async {
        Ok((s.d.store.collection(s.d.tenant, coll).await?.pending == 0).then_some(()))
    })
    .await?;
    Ok(())
}

/// Starts Radicale again on the same port and storage.
async fn restart_radicale(s: &Setup, port: u16) -> Result<Radicale> {
    let config = s.rad.root.parent().unwrap().join("config");
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-m", "radicale", "--config"]).arg(&config);
    let proc = postern_e2e::Proc::spawn(cmd, s.d.dir.path(&format!("radicale-{port}-again.log")))?;
    postern_e2e::wait_port(port, WAIT).await?;
    Ok(Radicale {
        proc,
        url: s.rad.url.clone(),
        root: s.rad.root.clone(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_on_one_replica_wakes_the_connector_on_another() -> Result<()> {
    // Rounds an hour apart: only a cross-replica nudge can carry the write.
    let s = setup("dav-replicas", &[], "1h").await?;
    let b = postern_e2e::Gateway::start(&s.d.db, &s.d.dir, &[]).await?;
    let me = ("carol@acme", s.password.as_str());
    let ev = event("replica-b@postern.test", "Via replica B");
    let resp = reqwest::Client::new()
        .put(format!(
            "http://127.0.0.1:{}/dav/calendars/carol@acme/work/replica-b.ics",
            b.http_port
        ))
        .basic_auth(me.0, Some(me.1))
        .header("Content-Type", "text/calendar")
        .body(ev)
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let backend = Dav::new(&s.rad.url, "alice", "alicepw");
    wait_until(
        "write via replica B on the back end",
        Duration::from_secs(20),
        || async {
            Ok(backend
                .get("/alice/work/replica-b@postern.test.ics")
                .await?
                .map(|_| ()))
        },
    )
    .await?;
    Ok(())
}

/// Answers over more items than one page (500) are sent in pieces while they are read,
/// and hold every item exactly once: PROPFIND depth 1, calendar-query with data, and
/// sync-collection from an empty token (whose token then reports nothing new). A small
/// answer is still sent whole, with its length.
#[tokio::test(flavor = "multi_thread")]
async fn large_answers_are_sent_in_pieces_and_hold_every_item_once() -> Result<()> {
    use postern_davxml::{CALDAV, DAV};
    use std::collections::BTreeSet;

    let d = Deployment::start("dav-large", &[]).await?;
    let password = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "carol"],
    )?);
    let n = 1234;
    let events = generated_events(n, "big");
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("big", events.clone()),
            Seed::calendar("small", fixture_items("calendar")),
        ],
    )
    .await?;
    let mut cal = SourceSpec::alice("cal", "caldav", &rad.url, "1h");
    cal.user = "carol".into();
    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[cal]),
    )?;
    let (big, small) = (
        d.collection("/alice/big/").await?,
        d.collection("/alice/small/").await?,
    );
    wait_until("import", WAIT, || async {
        Ok(
            (d.items_by_uid(big).await?.len() == n && d.items_by_uid(small).await?.len() == 5)
                .then_some(()),
        )
    })
    .await?;

    let base = format!(
        "http://127.0.0.1:{}/dav/calendars/carol@acme/",
        d.gateway.http_port
    );
    let client = reqwest::Client::new();
    let ask = |method: &'static str, coll: &str, body: String| {
        client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{base}{coll}/"),
            )
            .basic_auth("carol@acme", Some(&password))
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
    };
    // The members of a multistatus: (href, UID in its calendar-data if any).
    let members = |body: &str| -> Result<Vec<(String, Option<String>)>> {
        let root = postern_davxml::parse(body.as_bytes())?;
        Ok(root
            .children_named(DAV, "response")
            .map(|r| {
                let href = r
                    .child(DAV, "href")
                    .map(|h| h.trimmed().to_string())
                    .unwrap_or_default();
                let uid = r.find(CALDAV, "calendar-data").and_then(|c| {
                    c.trimmed()
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("UID:").map(str::to_string))
                });
                (href, uid)
            })
            .collect())
    };
    let want_uids: BTreeSet<String> = (0..n).map(|i| format!("big-{i}@postern.test")).collect();
    let sent_in_pieces = |r: &reqwest::Response| {
        r.headers().get("content-length").is_none()
            && r.headers()
                .get("transfer-encoding")
                .is_some_and(|v| v == "chunked")
    };

    // PROPFIND depth 1: the collection and n distinct members.
    let propfind = r#"<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>"#;
    let r = ask("PROPFIND", "big", propfind.into()).await?;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(
        sent_in_pieces(&r),
        "PROPFIND of {n} items sent whole: {:?}",
        r.headers()
    );
    let got = members(&r.text().await?)?;
    let hrefs: BTreeSet<&String> = got.iter().map(|(h, _)| h).collect();
    assert_eq!(got.len(), n + 1, "the collection and every member, once");
    assert_eq!(hrefs.len(), n + 1, "no member twice");

    // calendar-query with data: every event once, with its own data.
    let query = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>"#;
    let r = ask("REPORT", "big", query.into()).await?;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(sent_in_pieces(&r), "calendar-query of {n} items sent whole");
    let got = members(&r.text().await?)?;
    let uids: BTreeSet<String> = got.iter().filter_map(|(_, u)| u.clone()).collect();
    assert_eq!(got.len(), n);
    assert_eq!(uids, want_uids, "every event's own data, once");

    // sync-collection from an empty token, with data; then nothing new since its token.
    let sync = |token: &str| {
        format!(
            r#"<d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/><c:calendar-data/></d:prop></d:sync-collection>"#
        )
    };
    let r = ask("REPORT", "big", sync("")).await?;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(
        sent_in_pieces(&r),
        "sync-collection of {n} items sent whole"
    );
    let body = r.text().await?;
    let got = members(&body)?;
    let uids: BTreeSet<String> = got.iter().filter_map(|(_, u)| u.clone()).collect();
    assert_eq!(got.len(), n);
    assert_eq!(uids, want_uids);
    let token = postern_davxml::parse(body.as_bytes())?
        .child(DAV, "sync-token")
        .map(|t| t.trimmed().to_string())
        .expect("a sync-token after the members");
    let r = ask("REPORT", "big", sync(&token)).await?;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(
        members(&r.text().await?)?.is_empty(),
        "nothing new since the token"
    );

    // A small answer is sent whole.
    let r = ask("REPORT", "small", query.into()).await?;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(
        r.headers().get("content-length").is_some(),
        "a small answer has its length"
    );
    assert_eq!(
        members(&r.text().await?)?.len(),
        4,
        "the fixture's four events"
    );
    Ok(())
}
