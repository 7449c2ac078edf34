//! Leases, fencing, the StaleBase rule, tenant isolation and token checks, exercised
//! on a real gateway and PostgreSQL by a test that speaks the link protocol itself,
//! plus two real connector processes on the same source.

use std::time::Duration;

use anyhow::Result;
use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_e2e::backends::{Radicale, Seed, generated_events};
use postern_e2e::dav::Dav;
use postern_e2e::link::{RawLink, Talk};
use postern_e2e::{
    Connector, Deployment, SourceSpec, admin, connector_config, last_line, wait_until,
};
use postern_proto as pb;

fn import(href: &str, uid: &str, item_id: &str) -> pb::Change {
    pb::Change {
        op: pb::change::Op::Upsert as i32,
        item_id: item_id.into(),
        backend_href: href.into(),
        backend_version: "\"1\"".into(),
        content: format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").into_bytes(),
        content_type: "text/calendar".into(),
        ..Default::default()
    }
}

fn rejected(o: &pb::verdict::Outcome) -> Option<pb::rejected::Reason> {
    match o {
        pb::verdict::Outcome::Rejected(r) => pb::rejected::Reason::try_from(r.reason).ok(),
        pb::verdict::Outcome::Accepted(_) => None,
    }
}

async fn journal_len(d: &Deployment) -> Result<i64> {
    Ok(d.query("SELECT count(*) FROM journal").await?[0].get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_holder_past_expiry_cannot_write() -> Result<()> {
    let d = Deployment::start("fence", &["--lease-ttl", "1s"]).await?;
    let mut a = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let mut b = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let coll = a.setup("instance-a", "alice@acme").await?;
    assert_eq!(
        b.setup("instance-b", "alice").await?,
        coll,
        "same connector, same source, same collection"
    );

    let ta = a.acquire(&coll).await?.expect("a gets the lease");
    assert_eq!(
        b.acquire(&coll).await?,
        Err("held".into()),
        "b must wait while a holds it"
    );

    // a pauses past its expiry; b takes over with a newer token.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let tb = loop {
        if let Ok(t) = b.acquire(&coll).await? {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(tb > ta, "fencing tokens only grow");

    let before = journal_len(&d).await?;
    let late = a
        .push(
            &coll,
            0,
            ta,
            vec![import("/alice/cal/late.ics", "late", "")],
        )
        .await?;
    assert_eq!(rejected(&late), Some(pb::rejected::Reason::StaleFence));
    assert_eq!(
        journal_len(&d).await?,
        before,
        "nothing written by the stale holder"
    );

    let ok = b
        .push(
            &coll,
            0,
            tb,
            vec![import("/alice/cal/fresh.ics", "fresh", "")],
        )
        .await?;
    assert_eq!(rejected(&ok), None, "the current holder writes");
    assert_eq!(journal_len(&d).await?, before + 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packet_whose_base_misses_a_change_is_refused_atomically() -> Result<()> {
    let d = Deployment::start("stalebase", &[]).await?;
    let mut a = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let coll = a.setup("instance-a", "alice").await?;
    let token = a.acquire(&coll).await?.expect("lease");
    let accepted = a
        .push(
            &coll,
            0,
            token,
            vec![import("/alice/cal/one.ics", "one", "")],
        )
        .await?;
    assert_eq!(rejected(&accepted), None);
    let coll_id: uuid::Uuid = coll.parse()?;
    let item = d.store.list_items(d.tenant, coll_id).await?.remove(0);

    // The connector's view is at seq 1; a client then edits the item (seq 2).
    let edited = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:one\r\nSUMMARY:client edit\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    d.store
        .put_item(d.tenant, coll_id, &item.name, edited, "text/calendar", None)
        .await?;
    let before = journal_len(&d).await?;
    let mut packet = vec![import("/alice/cal/one.ics", "one", &item.id.to_string())];
    packet.push(import("/alice/cal/two.ics", "two", ""));
    let stale = a.push(&coll, 1, token, packet.clone()).await?;
    assert_eq!(rejected(&stale), Some(pb::rejected::Reason::StaleBase));
    assert_eq!(
        journal_len(&d).await?,
        before,
        "refused whole: not even the new item went in"
    );
    let items = d.store.list_items(d.tenant, coll_id).await?;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].content,
        edited.to_vec(),
        "the client's edit survives"
    );

    // With a base that includes the client's change, the same packet goes through.
    let ok = a.push(&coll, 2, token, packet).await?;
    assert_eq!(rejected(&ok), None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_isolated_and_bad_tokens_are_refused() -> Result<()> {
    let d = Deployment::start("isolation", &[]).await?;
    let mut a = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let coll_a = a.setup("instance-a", "alice").await?;

    admin(&d.db, &["tenant", "add", "globex"])?;
    admin(&d.db, &["user", "add", "--tenant", "globex", "alice"])?;
    let token_b = last_line(&admin(
        &d.db,
        &["connector", "enroll", "--tenant", "globex", "branch"],
    )?);
    let mut b = RawLink::open(&d.gateway.grpc_url, &token_b).await?;
    let coll_b = b.setup("instance-b", "alice").await?;
    assert_ne!(coll_a, coll_b);

    // Tenant B's connector can neither lease, read nor write tenant A's collection.
    assert!(b.acquire(&coll_a).await?.is_err());
    let pull = b
        .ask(Req::JournalPull(pb::JournalPull {
            collection_id: coll_a.clone(),
            limit: 0,
        }))
        .await?;
    assert!(matches!(pull, Ans::Failure(_)), "{pull:?}");
    let index = b
        .ask(Req::IndexPull(pb::IndexPull {
            collection_id: coll_a.clone(),
            ..Default::default()
        }))
        .await?;
    assert!(matches!(index, Ans::Failure(_)));
    let before = journal_len(&d).await?;
    let write = b
        .ask(Req::ChangePacket(pb::ChangePacket {
            collection_id: coll_a.clone(),
            fencing_token: 1,
            r#final: true,
            changes: vec![import("/x/y.ics", "y", "")],
            ..Default::default()
        }))
        .await?;
    assert!(matches!(write, Ans::Failure(_)));
    assert_eq!(journal_len(&d).await?, before);
    // A source naming a user of another tenant is refused.
    let mut c = RawLink::open(&d.gateway.grpc_url, &token_b).await?;
    assert!(c.setup("instance-c", "alice@acme").await.is_err());

    // Forged, expired and revoked tokens get UNAUTHENTICATED before anything happens.
    let mut forged = d.token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let err = RawLink::open(&d.gateway.grpc_url, &forged)
        .await
        .err()
        .expect("forged token refused");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = RawLink::open(&d.gateway.grpc_url, "not-a-token")
        .await
        .err()
        .expect("garbage refused");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let short = last_line(&admin(
        &d.db,
        &[
            "connector",
            "enroll",
            "--tenant",
            "globex",
            "temp",
            "--ttl",
            "1s",
        ],
    )?);
    let expired = wait_until("token to expire", Duration::from_secs(10), || {
        let (url, short) = (d.gateway.grpc_url.clone(), short.clone());
        async move { Ok(RawLink::open(&url, &short).await.err()) }
    })
    .await?;
    assert_eq!(expired.code(), tonic::Code::Unauthenticated);
    admin(
        &d.db,
        &["connector", "revoke", "--tenant", "globex", "branch"],
    )?;
    let err = RawLink::open(&d.gateway.grpc_url, &token_b)
        .await
        .err()
        .expect("revoked token refused");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // The revoked connector's open stream can no longer take a lease.
    assert_eq!(b.acquire(&coll_b).await?, Err("revoked".into()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_connector_process_stops_and_writes_nothing() -> Result<()> {
    let d = Deployment::start("revoked", &[]).await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", generated_events(5, "r"))]).await?;
    admin(&d.db, &["connector", "revoke", "--tenant", "acme", "hq"])?;
    let src = SourceSpec::alice("cal", "caldav", &rad.url, "1s");
    let mut conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[src]),
    )?;
    let status = wait_until("connector to give up", Duration::from_secs(30), || {
        let s = conn.proc.exited();
        async move { Ok(s) }
    })
    .await?;
    assert!(!status.success());
    assert!(
        conn.proc.output().contains("refused"),
        "{}",
        conn.proc.output()
    );
    assert_eq!(
        d.query("SELECT count(*) FROM items").await?[0].get::<_, i64>(0),
        0
    );
    assert_eq!(
        d.query("SELECT count(*) FROM collections").await?[0].get::<_, i64>(0),
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_connector_processes_on_one_source_never_both_write() -> Result<()> {
    let d = Deployment::start("two-connectors", &["--lease-ttl", "2s"]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[Seed::calendar("work", generated_events(200, "base"))],
    )
    .await?;
    let src = SourceSpec::alice("cal", "caldav", &rad.url, "200ms");
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[src]);
    let one = Connector::start(&d.dir, "one", &config)?;
    let two = Connector::start(&d.dir, "two", &config)?;
    let cal = d.collection("/alice/work/").await?;
    let dav = Dav::new(&rad.url, "alice", "alicepw");

    // Both sides keep changing while the two processes compete for the lease.
    for (i, (name, body)) in generated_events(40, "gw").into_iter().enumerate() {
        d.store
            .put_item(d.tenant, cal, &name, &body, "text/calendar", None)
            .await?;
        let (bn, bb) = &generated_events(40, "be")[i];
        dav.put(&format!("/alice/work/{bn}"), bb, "text/calendar")
            .await?;
    }
    wait_until("convergence", Duration::from_secs(90), || async {
        let c = d.store.collection(d.tenant, cal).await?;
        let n = dav.members("/alice/work/").await?.len();
        Ok((c.pending == 0 && c.items == 280 && n == 280).then_some(()))
    })
    .await?;

    // In journal order, fencing tokens never go back: writes under an older lease
    // never landed after a newer lease was granted, so the two never wrote at once.
    let rows = d
        .query(&format!(
            "SELECT seq, fencing_token FROM journal WHERE collection_id = '{cal}' AND origin = 'backend' ORDER BY seq"
        ))
        .await?;
    let tokens: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    assert!(
        tokens.windows(2).all(|w| w[0] <= w[1]),
        "tokens interleaved: {tokens:?}"
    );
    let distinct: std::collections::BTreeSet<i64> = tokens.iter().copied().collect();
    assert!(distinct.len() >= 2, "more than one round wrote");
    let holders = d
        .query(&format!(
            "SELECT holder FROM leases WHERE collection_id = '{cal}'"
        ))
        .await?;
    assert_eq!(holders.len(), 1, "one lease row per collection");
    // Both processes were alive and competing.
    let (mut one, mut two) = (one, two);
    assert!(one.proc.exited().is_none() && two.proc.exited().is_none());
    let uids = d.items_by_uid(cal).await?;
    assert_eq!(uids.len(), 280, "no duplicates");
    Ok(())
}
