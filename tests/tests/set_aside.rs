//! One item the back end refuses never stops its collection: the gateway refuses at
//! PUT what a strict back end would refuse, and when the back end still refuses an
//! item (here Radicale's size limit), that item is set aside, shown to the operator,
//! and every later change flows. Real Radicale, connector, gateway, PostgreSQL.

use anyhow::Result;
use postern_e2e::backends::event;
use postern_e2e::dav::Dav;
use postern_e2e::endpoint::{WAIT, raw, setup_with};
use postern_e2e::{admin, wait_until};
use reqwest::StatusCode;

/// carol PUTs an event into her `work` calendar through the gateway.
async fn put_event(s: &postern_e2e::endpoint::Setup, name: &str, body: &str) -> Result<StatusCode> {
    let (st, _) = raw(
        s,
        "PUT",
        &format!("/dav/calendars/carol@acme/work/{name}"),
        ("carol@acme", s.password.as_str()),
        &[("Content-Type", "text/calendar")],
        body,
    )
    .await?;
    Ok(st)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_item_is_set_aside_and_later_changes_flow() -> Result<()> {
    // Radicale refuses any body over 4,000 bytes (413); the gateway takes 10 MiB.
    let s = setup_with("set-aside", &[], "1h", "max_content_length = 4000").await?;
    let carol = ("carol@acme", s.password.as_str());
    let cal = "/dav/calendars/carol@acme/work";
    let big = event("big@postern.test", &"x".repeat(6000));
    assert_eq!(put_event(&s, "big.ics", &big).await?, StatusCode::CREATED);
    let coll = s.d.collection("/alice/work/").await?;
    let set_aside = || async {
        let status: serde_json::Value =
            serde_json::from_str(&admin(&s.d.db, &["status", "--json"])?)?;
        Ok::<i64, anyhow::Error>(
            status
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["id"] == coll.to_string())
                .filter_map(|c| c["set_aside"].as_i64())
                .sum(),
        )
    };
    wait_until("the big item set aside", WAIT, || async {
        Ok((set_aside().await? == 1).then_some(()))
    })
    .await?;

    // A later change reaches the back end: the refused one does not block it.
    let small = event("small@postern.test", "Small");
    assert_eq!(
        put_event(&s, "small.ics", &small).await?,
        StatusCode::CREATED
    );
    let rad = Dav::new(&s.rad.url, "alice", "alicepw");
    wait_until("the small event on Radicale", WAIT, || async {
        Ok(rad
            .get("/alice/work/small@postern.test.ics")
            .await?
            .map(|_| ()))
    })
    .await?;

    // The operator sees it, with the back end's answer, and so does /metrics.
    let listed = admin(&s.d.db, &["conflicts"])?;
    assert!(
        listed.contains("SET ASIDE") && listed.contains("HTTP 413"),
        "{listed}"
    );
    let json: serde_json::Value = serde_json::from_str(&admin(&s.d.db, &["conflicts", "--json"])?)?;
    let entry = json
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["kind"] == "set-aside")
        .cloned()
        .expect("a set-aside entry");
    assert_eq!(entry["status"], 413);
    assert_eq!(entry["uid"], "big@postern.test");
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("postern_items_refused_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("postern_items_set_aside{"), "{metrics}");
    // The item stays on the gateway as the client wrote it.
    let (st, body) = raw(&s, "GET", &format!("{cal}/big.ics"), carol, &[], "").await?;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body.replace("\r\n", "\n"), big.replace("\r\n", "\n"));

    // An operator's retry hands it out again (still too big: set aside again).
    let id = entry["item_id"].as_str().unwrap_or_default().to_string();
    admin(&s.d.db, &["conflicts", "retry", &id])?;
    wait_until("refused a second time", WAIT, || async {
        let m = reqwest::get(format!("{}/metrics", s.base))
            .await?
            .text()
            .await?;
        Ok(m.contains("postern_items_refused_total 2").then_some(()))
    })
    .await?;

    // The client fixes the item: it goes out, and nothing is set aside any more.
    let fixed = event("big@postern.test", "Now small");
    assert_eq!(
        put_event(&s, "big.ics", &fixed).await?,
        StatusCode::NO_CONTENT
    );
    wait_until("the fixed event on Radicale", WAIT, || async {
        Ok(rad
            .get("/alice/work/big@postern.test.ics")
            .await?
            .filter(|b| String::from_utf8_lossy(b).contains("Now small"))
            .map(|_| ()))
    })
    .await?;
    wait_until("nothing set aside", WAIT, || async {
        Ok((set_aside().await? == 0).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_strict_back_end_refuses_is_refused_at_put() -> Result<()> {
    let s = setup_with("strict-put", &[], "1h", "").await?;
    let carol = ("carol@acme", s.password.as_str());
    let book = "/dav/addressbooks/carol@acme/contacts";
    // Each of these was answered 201 and then refused by Radicale, round after round.
    let cards = [
        (
            "no-end.vcf",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:no-end\r\nFN:No End\r\n",
        ),
        (
            "bad-b64.vcf",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bad-b64\r\nFN:Bad\r\nPHOTO;ENCODING=b;TYPE=PNG:!!!notbase64***\r\nEND:VCARD\r\n",
        ),
        (
            "v21.vcf",
            "BEGIN:VCARD\r\nVERSION:2.1\r\nUID:v21\r\nFN:Old\r\nN:Old;;;;\r\nEND:VCARD\r\n",
        ),
    ];
    for (name, card) in cards {
        let (st, body) = raw(
            &s,
            "PUT",
            &format!("{book}/{name}"),
            carol,
            &[("Content-Type", "text/vcard")],
            card,
        )
        .await?;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{name}");
        assert!(body.contains("valid-address-data"), "{name}: {body}");
    }
    let no_start = event("no-start@postern.test", "x").replace("DTSTART:20250701T100000Z\r\n", "");
    let (st, body) = raw(
        &s,
        "PUT",
        "/dav/calendars/carol@acme/work/no-start.ics",
        carol,
        &[("Content-Type", "text/calendar")],
        &no_start,
    )
    .await?;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("valid-calendar-object-resource"), "{body}");
    Ok(())
}
