//! The endpoint driven by real clients: python-caldav, vdirsyncer and litmus, with a
//! real Radicale behind a real connector.

use anyhow::{Result, bail};
use postern_e2e::backends::event;
use postern_e2e::dav::Dav;
use postern_e2e::endpoint::{Setup, WAIT, py, raw, setup, uids};
use postern_e2e::wait_until;
use reqwest::StatusCode;

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
    let ev = event("from-corp@postern.test", "From corp");
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
    // Client side: a new event, a new contact, and a deleted task.
    std::fs::write(
        cal_dir.join("local-new.ics"),
        event("local-new@postern.test", "Made in vdirsyncer"),
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
            event("corp-new@postern.test", "Made at the office").as_bytes(),
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
    std::fs::write(&nyc, event("nyc-call@postern.test", "Client edit"))?;
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
    Dav::new(&s.rad.url, "alice", "alicepw")
        .collections("/alice/")
        .await
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
