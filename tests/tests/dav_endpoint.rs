//! The gateway's CalDAV/CardDAV endpoint, driven by real clients (python-caldav) and
//! by raw requests for the edges clients hit, with a real Radicale behind a real
//! connector.

use std::time::Duration;

use anyhow::{Result, bail};
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::dav::Dav;
use postern_e2e::{
    Connector, Deployment, SourceSpec, admin, connector_config, last_line, wait_until,
};
use reqwest::{Method, StatusCode};

const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    d: Deployment,
    rad: Radicale,
    _conn: Connector,
    password: String,
    base: String,
}

async fn setup(name: &str, gateway_args: &[&str], interval: &str) -> Result<Setup> {
    let d = Deployment::start(name, gateway_args).await?;
    // The deployment's first password was printed once; make a fresh user to know it.
    let password = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "carol"],
    )?);
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("work", fixture_items("calendar")),
            Seed::addressbook("contacts", fixture_items("contacts")),
        ],
    )
    .await?;
    let mut cal = SourceSpec::alice("cal", "caldav", &rad.url, interval);
    cal.user = "carol".into();
    let mut card = SourceSpec::alice("card", "carddav", &rad.url, interval);
    card.user = "carol".into();
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[cal, card]),
    )?;
    let coll = d.collection("/alice/work/").await?;
    wait_until("import", WAIT, || async {
        Ok((d.items_by_uid(coll).await?.len() == 5).then_some(()))
    })
    .await?;
    let base = format!("http://127.0.0.1:{}", d.gateway.http_port);
    Ok(Setup {
        d,
        rad,
        _conn: conn,
        password,
        base,
    })
}

fn py(s: &Setup, args: &[&str]) -> Result<serde_json::Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/caldav_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("{}/", s.base))
        .arg("carol@acme")
        .arg(&s.password)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "python-caldav {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(out.stdout.trim_ascii())?)
}

fn uids(v: &serde_json::Value) -> Vec<String> {
    v["uids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn raw(
    s: &Setup,
    method: &str,
    path: &str,
    who: (&str, &str),
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(StatusCode, String)> {
    let mut r = reqwest::Client::new()
        .request(
            Method::from_bytes(method.as_bytes())?,
            format!("{}{path}", s.base),
        )
        .basic_auth(who.0, Some(who.1));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.body(body.to_string()).send().await?;
    let status = resp.status();
    Ok((status, resp.text().await?))
}

#[tokio::test(flavor = "multi_thread")]
async fn python_caldav_discovers_writes_and_syncs_through_to_the_backend() -> Result<()> {
    let s = setup("pycaldav", &[], "1s").await?;
    let backend = Dav::new(&s.rad.url, "alice", "alicepw");

    let found = py(&s, &["discover"])?;
    assert!(
        found["principal"]
            .as_str()
            .unwrap()
            .ends_with("/dav/principals/carol@acme/")
    );
    assert!(
        found["calendars"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "work")
    );
    let events = uids(&py(&s, &["list", "work"])?);
    assert_eq!(
        events.len(),
        4,
        "the four events, not the task (calendar-query by component): {events:?}"
    );
    assert!(!events.contains(&"task-report@postern.test".to_string()));

    // Time-range search expands the weekly series, with its exception dates.
    let found = uids(&py(&s, &["search", "work", "20250303", "20250304"])?);
    assert_eq!(found, vec!["weekly-standup@postern.test".to_string()]);
    assert!(
        uids(&py(&s, &["search", "work", "20250120", "20250121"])?).is_empty(),
        "EXDATE: no occurrence"
    );
    let march = uids(&py(&s, &["search", "work", "20250310", "20250315"])?);
    assert_eq!(
        march,
        vec![
            "nyc-call@postern.test".to_string(),
            "weekly-standup@postern.test".to_string()
        ]
    );

    let first = py(&s, &["sync", "work"])?;
    assert_eq!(
        uids(&first).len(),
        5,
        "an empty sync token lists every member"
    );
    let token = first["token"].as_str().unwrap().to_string();

    py(
        &s,
        &[
            "create",
            "work",
            "pyc@postern.test",
            "Created by python-caldav",
        ],
    )?;
    let on_backend = wait_until("created on Radicale", WAIT, || async {
        backend.get("/alice/work/pyc@postern.test.ics").await
    })
    .await?;
    assert!(String::from_utf8_lossy(&on_backend).contains("Created by python-caldav"));

    py(
        &s,
        &[
            "update",
            "work",
            "pyc@postern.test",
            "Updated by python-caldav",
        ],
    )?;
    wait_until("updated on Radicale", WAIT, || async {
        let b = backend
            .get("/alice/work/pyc@postern.test.ics")
            .await?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&b)
            .contains("Updated by python-caldav")
            .then_some(()))
    })
    .await?;

    // A change on the corporate server shows up in the client's next sync.
    let ev = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:from-corp@postern.test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250701T100000Z\r\nSUMMARY:From corp\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    backend
        .put("/alice/work/from-corp.ics", ev.as_bytes(), "text/calendar")
        .await?;
    let delta = wait_until("corporate change in the client's sync", WAIT, || async {
        let d = py(&s, &["sync", "work", &token])?;
        Ok(uids(&d)
            .contains(&"from-corp@postern.test".to_string())
            .then_some(d))
    })
    .await?;
    assert!(
        uids(&delta).len() <= 2,
        "only what changed since the token: {delta}"
    );

    py(&s, &["delete", "work", "pyc@postern.test"])?;
    wait_until("deleted on Radicale", WAIT, || async {
        Ok(backend
            .get("/alice/work/pyc@postern.test.ics")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(!uids(&py(&s, &["list", "work"])?).contains(&"pyc@postern.test".to_string()));
    Ok(())
}

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
    let ev = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:x@postern.test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250701T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
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
        ("PUT", "/dav/calendars/carol@acme/work/x.ics", ev),
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
    let ev = |uid: &str, summary: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250701T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
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
        &ev("f", "x"),
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
        &ev("nyc-call@postern.test", "same uid"),
    )
    .await?;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err.contains("no-uid-conflict") && err.contains("new-york.ics"),
        "{err}"
    );
    let big = ev("big", &"x".repeat(5000));
    let (status, _) = raw(&s, "PUT", path, me, &[("Content-Type", cal)], &big).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let resp = reqwest::Client::new()
        .put(format!("{}{path}", s.base))
        .basic_auth(me.0, Some(me.1))
        .header("Content-Type", cal)
        .header("If-None-Match", "*")
        .body(ev("fresh@postern.test", "v1"))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let etag = resp.headers().get("etag").unwrap().to_str()?.to_string();
    let (status, got) = raw(&s, "GET", path, me, &[], "").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got,
        ev("fresh@postern.test", "v1"),
        "the client's bytes are stored as sent"
    );

    let (status, _) = raw(
        &s,
        "PUT",
        path,
        me,
        &[("Content-Type", cal), ("If-None-Match", "*")],
        &ev("fresh@postern.test", "v2"),
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
        &ev("fresh@postern.test", "v2"),
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
        &ev("fresh@postern.test", "v2"),
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
        &ev("ro", "x"),
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
    let ev = |uid: &str, summary: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250701T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
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
        &ev("offline@postern.test", "Written offline"),
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
        ev("holiday@postern.test", "Edited while we were away"),
    )?;
    let (status, _) = raw(
        &s,
        "PUT",
        "/dav/calendars/carol@acme/work/new-york.ics",
        me,
        &[("Content-Type", cal)],
        &ev("nyc-call@postern.test", "Client moved it offline"),
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    std::fs::write(
        s.rad.folder("work").join("new-york.ics"),
        ev("nyc-call@postern.test", "Corporate moved it"),
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
    let ev = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:replica-b@postern.test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250701T100000Z\r\nSUMMARY:Via replica B\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
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

/// Runs vdirsyncer with `config`; fails with its output when it fails.
fn vdirsyncer(config: &std::path::Path, args: &str) -> Result<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("yes | vdirsyncer {args}"))
        .env("VDIRSYNCER_CONFIG", config)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("vdirsyncer {args} failed:\n{text}");
    }
    Ok(text)
}

fn files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread")]
async fn vdirsyncer_syncs_both_ways_through_the_gateway() -> Result<()> {
    let s = setup("vdirsyncer", &[], "500ms").await?;
    let local = s.d.dir.path("vdir");
    let config = s.d.dir.path("vdirsyncer.conf");
    std::fs::write(
        &config,
        format!(
            "[general]\nstatus_path = \"{status}\"\n\n\
             [pair cal]\na = \"cal_gw\"\nb = \"cal_local\"\ncollections = [\"from a\"]\nconflict_resolution = \"b wins\"\n\n\
             [storage cal_gw]\ntype = \"caldav\"\nurl = \"{base}/\"\nusername = \"carol@acme\"\npassword = \"{pw}\"\n\n\
             [storage cal_local]\ntype = \"filesystem\"\npath = \"{local}/cal/\"\nfileext = \".ics\"\n\n\
             [pair card]\na = \"card_gw\"\nb = \"card_local\"\ncollections = [\"from a\"]\nconflict_resolution = \"b wins\"\n\n\
             [storage card_gw]\ntype = \"carddav\"\nurl = \"{base}/\"\nusername = \"carol@acme\"\npassword = \"{pw}\"\n\n\
             [storage card_local]\ntype = \"filesystem\"\npath = \"{local}/card/\"\nfileext = \".vcf\"\n",
            status = s.d.dir.path("vdir-status").display(),
            base = s.base,
            pw = s.password,
            local = local.display()
        ),
    )?;
    std::fs::create_dir_all(local.join("cal"))?;
    std::fs::create_dir_all(local.join("card"))?;
    vdirsyncer(&config, "discover")?;
    vdirsyncer(&config, "sync")?;
    let cal_dir = local.join("cal/work");
    let card_dir = local.join("card/contacts");
    assert_eq!(files(&cal_dir)?.len(), 5, "every event and task arrived");
    assert_eq!(files(&card_dir)?.len(), 3, "every contact arrived");

    let backend = Dav::new(&s.rad.url, "alice", "alicepw");
    let ev = |uid: &str, summary: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250801T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    // Client side: a new event, a new contact, and a deleted task.
    std::fs::write(
        cal_dir.join("local-new.ics"),
        ev("local-new@postern.test", "Made in vdirsyncer"),
    )?;
    std::fs::write(
        card_dir.join("local-card.vcf"),
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:local-card@postern.test\r\nFN:Local Card\r\nN:Card;Local;;;\r\nEND:VCARD\r\n",
    )?;
    let task = files(&cal_dir)?
        .into_iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("task-report")));
    std::fs::remove_file(task.expect("task file"))?;
    // Corporate side, at the same time: a new event.
    backend
        .put(
            "/alice/work/corp-new.ics",
            ev("corp-new@postern.test", "Made at the office").as_bytes(),
            "text/calendar",
        )
        .await?;
    vdirsyncer(&config, "sync")?;
    wait_until("client changes on the back end", WAIT, || async {
        let new = backend
            .get("/alice/work/local-new@postern.test.ics")
            .await?
            .is_some();
        let card = backend
            .get("/alice/contacts/local-card@postern.test.vcf")
            .await?
            .is_some();
        let task_gone = backend.get("/alice/work/task.ics").await?.is_none();
        Ok((new && card && task_gone).then_some(()))
    })
    .await?;
    let coll = s.d.collection("/alice/work/").await?;
    wait_until("corporate change on the gateway", WAIT, || async {
        Ok(s.d
            .items_by_uid(coll)
            .await?
            .contains_key("corp-new@postern.test")
            .then_some(()))
    })
    .await?;
    vdirsyncer(&config, "sync")?;
    let texts: Vec<String> = files(&cal_dir)?
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("corp-new@postern.test")),
        "the corporate event reached vdirsyncer"
    );
    assert_eq!(
        texts.len(),
        6,
        "4 events + local + corporate, task gone, no duplicates"
    );

    // An edit in the client to an event the back end did not touch goes through,
    // updated in place on the back end.
    let nyc = files(&cal_dir)?
        .into_iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("nyc-call")))
        .unwrap();
    std::fs::write(&nyc, ev("nyc-call@postern.test", "Client edit"))?;
    vdirsyncer(&config, "sync")?;
    wait_until("client edit on the back end", WAIT, || async {
        let b = backend
            .get("/alice/work/new-york.ics")
            .await?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&b)
            .contains("Client edit")
            .then_some(()))
    })
    .await?;
    let out = vdirsyncer(&config, "sync")?;
    assert!(!out.to_lowercase().contains("error"), "{out}");
    Ok(())
}

/// Display names of alice's collections on Radicale, by href.
async fn backend_collections(s: &Setup) -> Result<Vec<(String, String)>> {
    let body = reqwest::Client::new()
        .request(
            Method::from_bytes(b"PROPFIND")?,
            format!("{}alice/", s.rad.url),
        )
        .basic_auth("alice", Some("alicepw"))
        .header("Depth", "1")
        .header("Content-Type", "application/xml")
        .body(r#"<propfind xmlns="DAV:"><prop><displayname/></prop></propfind>"#)
        .send()
        .await?
        .text()
        .await?;
    let root = postern_davxml::parse(body.as_bytes())?;
    Ok(root
        .children_named(postern_davxml::DAV, "response")
        .filter_map(|r| {
            let href = r.child(postern_davxml::DAV, "href")?.trimmed().to_string();
            let name = r
                .find(postern_davxml::DAV, "displayname")
                .map(|d| d.trimmed().to_string())
                .unwrap_or_default();
            Some((href, name))
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn calendars_made_and_deleted_by_clients_are_made_and_deleted_on_the_backend() -> Result<()> {
    let s = setup("dav-mkcalendar", &[], "1h").await?;
    py(&s, &["mkcalendar", "Team", "team"])?;
    let href = wait_until("calendar on Radicale", WAIT, || async {
        Ok(backend_collections(&s)
            .await?
            .into_iter()
            .find(|(_, n)| n == "Team")
            .map(|(h, _)| h))
    })
    .await?;
    // Items put into it reach the back end collection.
    py(
        &s,
        &[
            "create",
            "Team",
            "team-event@postern.test",
            "In the new calendar",
        ],
    )?;
    let backend = Dav::new(&s.rad.url, "alice", "alicepw");
    let path = format!("{href}team-event@postern.test.ics");
    wait_until("event in the new calendar on Radicale", WAIT, || async {
        Ok(backend.get(&path).await?.map(|_| ()))
    })
    .await?;
    // A second MKCALENDAR of the same name is refused.
    let (status, _) = raw(
        &s,
        "MKCALENDAR",
        "/dav/calendars/carol@acme/team/",
        ("carol@acme", &s.password),
        &[],
        "",
    )
    .await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    py(&s, &["delcalendar", "Team"])?;
    wait_until("calendar gone from Radicale", WAIT, || async {
        Ok((!backend_collections(&s)
            .await?
            .iter()
            .any(|(h, _)| *h == href))
        .then_some(()))
    })
    .await?;
    let (status, _) = raw(
        &s,
        "PROPFIND",
        "/dav/calendars/carol@acme/team/",
        ("carol@acme", &s.password),
        &[("Depth", "0")],
        "",
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn litmus_passes_basic_copymove_and_props_against_a_calendar() -> Result<()> {
    let s = setup("litmus", &[], "1h").await?;
    let url = format!("{}/dav/calendars/carol@acme/work/", s.base);
    let out = std::process::Command::new("litmus")
        .args(["-k", &url, "carol@acme", &s.password])
        .env("TESTS", "basic copymove props")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for suite in ["basic", "copymove", "props"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("summary for `{suite}'")))
            .unwrap_or_else(|| panic!("litmus ran no {suite} suite:\n{text}"));
        assert!(line.contains(" 0 failed"), "{line}\n{text}");
    }
    // Plain WebDAV resources never leak into the calendar or the back end.
    let coll = s.d.collection("/alice/work/").await?;
    assert_eq!(s.d.items_by_uid(coll).await?.len(), 5);
    assert_eq!(
        Dav::new(&s.rad.url, "alice", "alicepw")
            .members("/alice/work/")
            .await?
            .len(),
        5
    );
    Ok(())
}
