//! Faithful to back ends that are not quite Radicale: one that sends its data in
//! CDATA, one that rewrites what it stores. Real Radicale behind a transforming proxy
//! (`postern_e2e::rewriter`), real connector and gateway.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::dav::Dav;
use postern_e2e::oracle::same_meaning_all;
use postern_e2e::rewriter::{Rewriter, Rewrites};
use postern_e2e::{Connector, Deployment, SourceSpec, admin, connector_config, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn has_bare_lf(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .any(|(i, c)| *c == b'\n' && (i == 0 || b[i - 1] != b'\r'))
}

#[tokio::test(flavor = "multi_thread")]
async fn data_sent_in_cdata_keeps_its_crlf_line_ends() -> Result<()> {
    let d = Deployment::start("cdata", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("work", fixture_items("calendar")),
            Seed::addressbook("contacts", fixture_items("contacts")),
        ],
    )
    .await?;
    let proxy = Rewriter::start(
        &rad.url,
        Rewrites {
            cdata: true,
            ..Rewrites::default()
        },
    )
    .await?;
    let sources = [
        SourceSpec::alice("cal", "caldav", &proxy.url, "1h"),
        SourceSpec::alice("card", "carddav", &proxy.url, "1h"),
    ];
    let _conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &sources),
    )?;
    let cal = d.collection("/alice/work/").await?;
    let book = d.collection("/alice/contacts/").await?;
    wait_until("import", WAIT, || async {
        Ok(
            (d.items_by_uid(cal).await?.len() == 5 && d.items_by_uid(book).await?.len() == 3)
                .then_some(()),
        )
    })
    .await?;
    let mut pairs = Vec::new();
    let items: Vec<_> = d
        .items_by_uid(cal)
        .await?
        .into_iter()
        .chain(d.items_by_uid(book).await?)
        .collect();
    let fixtures: Vec<_> = fixture_items("calendar")
        .into_iter()
        .chain(fixture_items("contacts"))
        .collect();
    for (uid, content) in &items {
        assert!(!has_bare_lf(content), "{uid} lost its CRLF line ends");
        let fixture = fixtures
            .iter()
            .find(|(_, f)| postern_core::content::uid(f).as_deref() == Some(uid.as_str()))
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        pairs.push((content.clone(), fixture));
    }
    let pairs: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(a, b)| (a.as_slice(), b.as_slice()))
        .collect();
    assert!(
        same_meaning_all(&pairs)?.iter().all(|s| *s),
        "every item means what the back end holds"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_back_end_that_rewrites_what_it_stores_converges() -> Result<()> {
    let d = Deployment::start("rewrite", &[]).await?;
    let rad = Radicale::start(&d.dir, &[Seed::addressbook("contacts", vec![])]).await?;
    let proxy = Rewriter::start(
        &rad.url,
        Rewrites {
            vcard_to_3: true,
            ..Rewrites::default()
        },
    )
    .await?;
    let config = connector_config(
        &d.gateway.grpc_url,
        &d.token,
        &[SourceSpec::alice("card", "carddav", &proxy.url, "1s")],
    );
    let mut conn = Connector::start(&d.dir, "hq", &config)?;
    let book = d.collection("/alice/contacts/").await?;
    let rad_dav = Dav::new(&rad.url, "alice", "alicepw");
    let card = |i: usize| {
        format!(
            "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:rw-{i}@postern.test\r\nFN:Person {i}\r\nTEL;TYPE=work,voice:+1 555 {i:04}\r\nEND:VCARD\r\n"
        )
    };
    // A client's vCard 4.0, kept by the back end as 3.0.
    d.store
        .put_item(
            d.tenant,
            book,
            "one.vcf",
            card(1).as_bytes(),
            "text/vcard",
            None,
        )
        .await?;
    let stored = wait_until("the card on the back end", WAIT, || async {
        rad_dav.get("/alice/contacts/rw-1@postern.test.vcf").await
    })
    .await?;
    assert!(String::from_utf8_lossy(&stored).contains("VERSION:3.0"));
    // Both sides end identical: the gateway holds what the back end holds.
    wait_until("the gateway holds the back end's copy", WAIT, || async {
        let c = d.store.collection(d.tenant, book).await?;
        let items = d.items_by_uid(book).await?;
        let now = rad_dav.get("/alice/contacts/rw-1@postern.test.vcf").await?;
        Ok(
            (c.pending == 0 && now.as_deref() == items.get("rw-1@postern.test").map(Vec::as_slice))
                .then_some(()),
        )
    })
    .await?;

    // A later edit on the back end is seen.
    let edited = String::from_utf8_lossy(&stored).replace("FN:Person 1", "FN:Person One");
    assert!(
        rad_dav
            .put(
                "/alice/contacts/rw-1@postern.test.vcf",
                edited.as_bytes(),
                "text/vcard"
            )
            .await?
            .is_success()
    );
    wait_until("the back-end edit on the gateway", WAIT, || async {
        let items = d.items_by_uid(book).await?;
        Ok(items
            .get("rw-1@postern.test")
            .filter(|c| String::from_utf8_lossy(c).contains("Person One"))
            .map(|_| ()))
    })
    .await?;

    // A crash between writes and acknowledgements: recovery finds our own (rewritten)
    // writes on the back end and reports no conflict for them.
    conn.proc.kill9();
    for i in 100..400 {
        d.store
            .put_item(
                d.tenant,
                book,
                &format!("c{i}.vcf"),
                card(i).as_bytes(),
                "text/vcard",
                None,
            )
            .await?;
    }
    let mut conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until(
        "the connector half-way through its writes",
        WAIT,
        || async {
            let n = rad_dav.members("/alice/contacts/").await?.len();
            Ok((n > 20).then_some(n))
        },
    )
    .await?;
    conn.proc.kill9();
    let _conn = Connector::start_file(&d.dir, "hq", &conn.config)?;
    wait_until("everything applied", WAIT, || async {
        let c = d.store.collection(d.tenant, book).await?;
        Ok((c.pending == 0 && c.items == 301).then_some(()))
    })
    .await?;
    let conflicts: serde_json::Value =
        serde_json::from_str(&admin(&d.db, &["conflicts", "--json"])?)?;
    assert_eq!(
        conflicts.as_array().map(Vec::len),
        Some(0),
        "a rewrite is not a conflict: {conflicts}"
    );
    assert_eq!(rad_dav.members("/alice/contacts/").await?.len(), 301);
    Ok(())
}
