//! COPY and MOVE of calendar objects within and between a user's calendars: the
//! Destination absolute or relative, encoded or not; Overwrite honoured; UIDs kept
//! unique per calendar; everything carried to the back end. Real Radicale, connector,
//! gateway and PostgreSQL.

use anyhow::Result;
use postern_e2e::backends::event;
use postern_e2e::dav::Dav;
use postern_e2e::endpoint::{WAIT, raw, setup};
use postern_e2e::wait_until;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn events_copy_and_move_within_and_between_calendars() -> Result<()> {
    let s = setup("dav-copymove", &[], "1s").await?;
    let carol = ("carol@acme", s.password.as_str());
    let work = "/dav/calendars/carol@acme/work";
    let home = "/dav/calendars/carol@acme/home";
    let (st, _) = raw(&s, "MKCALENDAR", &format!("{home}/"), carol, &[], "").await?;
    assert_eq!(st, StatusCode::CREATED);
    let rad = Dav::new(&s.rad.url, "alice", "alicepw");
    let home_on_backend = wait_until("home calendar on Radicale", WAIT, || async {
        Ok(rad
            .collections("/alice/")
            .await?
            .into_iter()
            .find(|(h, _)| h.contains("collection-") || h.contains("home"))
            .map(|(h, _)| h))
    })
    .await?;
    let body = event("moving@postern.test", "Moving");
    let (st, _) = raw(
        &s,
        "PUT",
        &format!("{work}/a.ics"),
        carol,
        &[("Content-Type", "text/calendar")],
        &body,
    )
    .await?;
    assert_eq!(st, StatusCode::CREATED);

    // A copy in the same calendar would hold the UID twice.
    let (st, answer) = raw(
        &s,
        "COPY",
        &format!("{work}/a.ics"),
        carol,
        &[("Destination", &format!("{work}/b.ics"))],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(answer.contains("no-uid-conflict"), "{answer}");

    // To another calendar, the Destination an absolute URL with the login encoded.
    let absolute = format!("{}/dav/calendars/carol%40acme/home/a.ics", s.base);
    let (st, _) = raw(
        &s,
        "COPY",
        &format!("{work}/a.ics"),
        carol,
        &[("Destination", &absolute)],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::CREATED);
    let (st, got) = raw(&s, "GET", &format!("{home}/a.ics"), carol, &[], "").await?;
    assert_eq!((st, got.as_str()), (StatusCode::OK, body.as_str()));

    // Overwrite: F refuses to replace; T (the default) replaces.
    let (st, _) = raw(
        &s,
        "COPY",
        &format!("{work}/a.ics"),
        carol,
        &[("Destination", &absolute), ("Overwrite", "F")],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    let (st, _) = raw(
        &s,
        "COPY",
        &format!("{work}/a.ics"),
        carol,
        &[("Destination", &absolute)],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // A rename in place, the Destination relative.
    let (st, _) = raw(
        &s,
        "MOVE",
        &format!("{work}/a.ics"),
        carol,
        &[("Destination", "renamed.ics")],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = raw(&s, "GET", &format!("{work}/a.ics"), carol, &[], "").await?;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = raw(&s, "GET", &format!("{work}/renamed.ics"), carol, &[], "").await?;
    assert_eq!(st, StatusCode::OK);

    // Moving home's copy into work would hold the UID twice there.
    let (st, _) = raw(
        &s,
        "MOVE",
        &format!("{home}/a.ics"),
        carol,
        &[("Destination", &format!("{work}/again.ics"))],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::CONFLICT);
    // An event cannot move into an address book.
    let (st, _) = raw(
        &s,
        "MOVE",
        &format!("{home}/a.ics"),
        carol,
        &[("Destination", "/dav/addressbooks/carol@acme/contacts/a.vcf")],
        "",
    )
    .await?;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // The back end ends with the event once in each calendar.
    let uid_in = |coll: String| {
        let rad = rad.clone();
        async move {
            Ok::<usize, anyhow::Error>(
                rad.contents(&coll)
                    .await?
                    .iter()
                    .filter(|c| {
                        postern_core::content::uid(c).as_deref() == Some("moving@postern.test")
                    })
                    .count(),
            )
        }
    };
    wait_until("carried to the back end", WAIT, || async {
        let (w, h) = (
            uid_in("/alice/work/".into()).await?,
            uid_in(home_on_backend.clone()).await?,
        );
        let pending: i64 =
            s.d.query("SELECT count(*) FROM items WHERE pending_seq IS NOT NULL")
                .await?[0]
                .get(0);
        if w == 1 && h == 1 && pending == 0 {
            Ok(Some(()))
        } else {
            anyhow::bail!("work {w}, home {h}, pending {pending}")
        }
    })
    .await?;
    Ok(())
}
