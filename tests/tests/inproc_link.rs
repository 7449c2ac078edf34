//! The gateway's side of the connector link, in process: leases and fencing, change
//! packets (all or nothing, StaleBase, StaleFence), the index, pending changes and
//! journal batches, set-aside changes, conflict losers and the merge base. The same
//! `Session` code the gRPC service runs, over a real PostgreSQL, without binaries.

use anyhow::{Result, bail};
use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use pb::rejected::Reason;
use pb::verdict::Outcome;
use postern_e2e::inproc::{InLink, InProc};
use postern_e2e::link::Talk;
use postern_gateway::link::session::LinkSettings;
use postern_proto as pb;
use uuid::Uuid;

fn event(uid: &str, summary: &str) -> Vec<u8> {
    postern_e2e::backends::event(uid, summary).into_bytes()
}

/// A back-end item for the gateway: new (`item` empty) or an update of `item`.
fn import(item: &str, name: &str, version: &str, content: Vec<u8>) -> pb::Change {
    pb::Change {
        op: pb::change::Op::Upsert as i32,
        item_id: item.into(),
        backend_href: format!("/alice/cal/{name}"),
        backend_version: version.into(),
        uid: postern_core::content::uid(&content).unwrap_or_default(),
        content,
        content_type: "text/calendar".into(),
        ..Default::default()
    }
}

/// The gateway change `seq` of `item` is now on the back end at `name`.
fn record(item: &str, name: &str, version: &str, seq: u64) -> pb::Change {
    pb::Change {
        op: pb::change::Op::Upsert as i32,
        item_id: item.into(),
        backend_href: format!("/alice/cal/{name}"),
        backend_version: version.into(),
        seq,
        ..Default::default()
    }
}

fn accepted(o: Outcome) -> Result<pb::Accepted> {
    match o {
        Outcome::Accepted(a) => Ok(a),
        Outcome::Rejected(r) => bail!("rejected: {r:?}"),
    }
}

fn rejected(o: Outcome) -> Result<Reason> {
    match o {
        Outcome::Rejected(r) => Ok(Reason::try_from(r.reason)?),
        Outcome::Accepted(a) => bail!("accepted: {a:?}"),
    }
}

async fn index(link: &mut InLink, coll: &str) -> Result<Vec<pb::IndexEntry>> {
    match link
        .ask(Req::IndexPull(pb::IndexPull {
            collection_id: coll.into(),
            ..Default::default()
        }))
        .await?
    {
        Ans::IndexBatch(b) => Ok(b.entries),
        other => bail!("{other:?}"),
    }
}

async fn release(link: &mut InLink, coll: &str, token: u64) -> Result<()> {
    link.ask(Req::Lease(pb::LeaseRequest {
        action: pb::lease_request::Action::Release as i32,
        collection_id: coll.into(),
        fencing_token: token,
    }))
    .await?;
    Ok(())
}

/// A client's PUT through the store, as the DAV layer makes it.
async fn client_put(g: &InProc, coll: &str, name: &str, content: &[u8]) -> Result<()> {
    g.store
        .put_item(
            g.tenant,
            Uuid::parse_str(coll)?,
            name,
            content,
            "text/calendar",
            None,
        )
        .await?;
    Ok(())
}

/// A connector with one two-way calendar leased, and one imported item `a`.
async fn with_item(conflict: &str) -> Result<(InProc, InLink, String, u64, String)> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings::default());
    let coll = link.setup_with("one", "alice", conflict).await?;
    let token = link.acquire(&coll).await?.map_err(anyhow::Error::msg)?;
    let a = accepted(
        link.push(
            &coll,
            0,
            token,
            vec![import("", "a.ics", "\"1\"", event("a", "first"))],
        )
        .await?,
    )?;
    Ok((g, link, coll, token, a.item_ids[0].clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_is_exclusive_and_an_old_fencing_token_cannot_write() -> Result<()> {
    let g = InProc::start().await?;
    let mut one = g.session(LinkSettings::default());
    let mut two = g.session(LinkSettings::default());
    let coll = one.setup("one", "alice").await?;
    assert_eq!(two.setup("two", "alice").await?, coll, "one collection");

    let first = one.acquire(&coll).await?.map_err(anyhow::Error::msg)?;
    let denied = two.acquire(&coll).await?;
    assert!(denied.is_err(), "a second holder: {denied:?}");

    release(&mut one, &coll, first).await?;
    let second = two.acquire(&coll).await?.map_err(anyhow::Error::msg)?;
    assert!(second > first, "fencing tokens grow: {first} then {second}");
    let stale = one
        .push(
            &coll,
            0,
            first,
            vec![import("", "x.ics", "\"1\"", event("x", "x"))],
        )
        .await?;
    assert_eq!(rejected(stale)?, Reason::StaleFence);
    accepted(
        two.push(
            &coll,
            0,
            second,
            vec![import("", "x.ics", "\"1\"", event("x", "x"))],
        )
        .await?,
    )?;
    assert_eq!(
        index(&mut two, &coll).await?.len(),
        1,
        "only the holder wrote"
    );
    Ok(())
}

/// A connector killed while its lease request is on the way: the stream's end
/// releases what the instance holds, and a grant written after that gives itself
/// back, so the next connector leases at once instead of waiting out the TTL.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_granted_after_the_stream_ended_is_given_back() -> Result<()> {
    let g = InProc::start().await?;
    let mut one = g.session(LinkSettings::default());
    let mut two = g.session(LinkSettings::default());
    let coll = one.setup("one", "alice").await?;
    two.setup("two", "alice").await?;

    one.session.close().await;
    let late = one.acquire(&coll).await?;
    assert!(late.is_err(), "no grant on an ended stream: {late:?}");
    let next = two.acquire(&coll).await?;
    assert!(next.is_ok(), "the next connector leases at once: {next:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_reach_the_index_and_client_changes_wait_until_settled() -> Result<()> {
    let (g, mut link, coll, token, a) = with_item("backend-wins").await?;
    let idx = index(&mut link, &coll).await?;
    assert_eq!(idx.len(), 1);
    assert_eq!(
        (
            idx[0].item_id.as_str(),
            idx[0].backend_href.as_str(),
            idx[0].backend_version.as_str()
        ),
        (a.as_str(), "/alice/cal/a.ics", "\"1\"")
    );
    assert!(
        link.journal(&coll).await?.0.is_empty(),
        "an import is not pending"
    );

    let mine = event("a", "edited by a client");
    client_put(&g, &coll, "a.ics", &mine).await?;
    let (pending, head) = link.journal(&coll).await?;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].item_id, a);
    assert_eq!(pending[0].content, mine, "the client's bytes, as sent");
    assert_eq!(pending[0].backend_version, "\"1\"", "what it replaces");

    // Written to the back end: settled, and the index has the new version.
    accepted(
        link.push(
            &coll,
            head,
            token,
            vec![record(&a, "a.ics", "\"2\"", pending[0].seq)],
        )
        .await?,
    )?;
    assert!(link.journal(&coll).await?.0.is_empty());
    assert_eq!(index(&mut link, &coll).await?[0].backend_version, "\"2\"");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packet_that_would_overwrite_an_unseen_client_change_is_refused_whole() -> Result<()> {
    let (g, mut link, coll, token, a) = with_item("backend-wins").await?;
    let (_, base) = link.journal(&coll).await?;
    // A client edits while the connector plans against `base`.
    let mine = event("a", "client, after the pull");
    client_put(&g, &coll, "a.ics", &mine).await?;
    let packet = vec![
        import("", "b.ics", "\"1\"", event("b", "new on the back end")),
        import(&a, "a.ics", "\"2\"", event("a", "back end")),
    ];
    assert_eq!(
        rejected(link.push(&coll, base, token, packet.clone()).await?)?,
        Reason::StaleBase
    );
    let items = g
        .store
        .list_items(g.tenant, Uuid::parse_str(&coll)?)
        .await?;
    assert_eq!(items.len(), 1, "nothing of the refused packet applied");
    assert_eq!(items[0].content, mine, "the client's change stands");

    // Pulled again, the connector sees the change; planned against it, the packet goes in.
    let (_, base) = link.journal(&coll).await?;
    accepted(link.push(&coll, base, token, packet).await?)?;
    assert_eq!(
        g.store
            .list_items(g.tenant, Uuid::parse_str(&coll)?)
            .await?
            .len(),
        2
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_item_at_a_known_href_is_refused_and_a_taken_name_is_kept_apart() -> Result<()> {
    let (g, mut link, coll, token, _a) = with_item("backend-wins").await?;
    let coll_id = Uuid::parse_str(&coll)?;
    // An index out of date: `a.ics` is sent as new although the gateway has it.
    let (_, base) = link.journal(&coll).await?;
    let packet = vec![
        import("", "b.ics", "\"1\"", event("b", "new")),
        import("", "a.ics", "\"9\"", event("a", "again")),
    ];
    assert_eq!(
        rejected(link.push(&coll, base, token, packet).await?)?,
        Reason::StaleBase
    );
    assert_eq!(
        g.store.list_items(g.tenant, coll_id).await?.len(),
        1,
        "nothing of the refused packet applied"
    );

    // A client made `c.ics`, not yet on the back end; the back end has its own
    // `c.ics`, and two `d.ics` arrive in one packet (two hrefs, one name): every
    // item is kept, each under its own name.
    client_put(&g, &coll, "c.ics", &event("c-client", "mine")).await?;
    let (_, base) = link.journal(&coll).await?;
    let mut twin = import("", "d.ics", "\"1\"", event("d2", "twin"));
    twin.backend_href = "/alice/cal/other/d.ics".into();
    let packet = vec![
        import("", "c.ics", "\"1\"", event("c-server", "theirs")),
        import("", "d.ics", "\"1\"", event("d1", "one")),
        twin,
    ];
    let ok = accepted(link.push(&coll, base, token, packet).await?)?;
    assert_eq!(ok.item_ids.len(), 3);
    let items = g.store.list_items(g.tenant, coll_id).await?;
    assert_eq!(items.len(), 5, "a, c twice, d twice: {items:?}");
    let mut names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 5, "each under its own name: {names:?}");
    let client = items
        .iter()
        .find(|i| i.name == "c.ics")
        .expect("the client's c.ics");
    assert_eq!(
        client.content,
        event("c-client", "mine"),
        "the client keeps its name"
    );
    assert_eq!(
        items
            .iter()
            .filter(|i| i.name.ends_with("-d.ics") || i.name == "d.ics")
            .count(),
        2
    );
    let idx = index(&mut link, &coll).await?;
    for id in &ok.item_ids {
        assert!(idx.iter().any(|e| &e.item_id == id), "{id} in the index");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_packet_changes_nothing() -> Result<()> {
    let (g, mut link, coll, token, a) = with_item("backend-wins").await?;
    let twice = vec![
        import("", "b.ics", "\"1\"", event("b", "b")),
        import(&a, "a.ics", "\"2\"", event("a", "two")),
        import(&a, "a.ics", "\"3\"", event("a", "three")),
    ];
    assert_eq!(
        rejected(link.push(&coll, 0, token, twice).await?)?,
        Reason::Invalid
    );
    let relative = vec![pb::Change {
        backend_href: "no-slash.ics".into(),
        ..import("", "c.ics", "\"1\"", event("c", "c"))
    }];
    assert_eq!(
        rejected(link.push(&coll, 0, token, relative).await?)?,
        Reason::Invalid
    );
    let items = g
        .store
        .list_items(g.tenant, Uuid::parse_str(&coll)?)
        .await?;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].content, event("a", "first"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_batches_are_bounded_in_count_and_bytes() -> Result<()> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings {
        batch_changes: 2,
        batch_bytes: 1 << 20,
        ..LinkSettings::default()
    });
    let coll = link.setup("one", "alice").await?;
    for i in 0..5 {
        client_put(
            &g,
            &coll,
            &format!("{i}.ics"),
            &event(&format!("u{i}"), "x"),
        )
        .await?;
    }
    let batches = link
        .ask_all(Req::JournalPull(pb::JournalPull {
            collection_id: coll.clone(),
            ..Default::default()
        }))
        .await;
    let sizes: Vec<(usize, bool)> = batches
        .iter()
        .map(|a| match a {
            Ans::JournalBatch(b) => (b.changes.len(), b.more),
            _ => (0, false),
        })
        .collect();
    assert_eq!(sizes, vec![(2, true), (2, true), (1, false)]);

    // By bytes: two items of 600 KiB with a 1 MiB budget go one per batch.
    let g2 = InProc::start().await?;
    let mut link = g2.session(LinkSettings {
        batch_changes: 100,
        batch_bytes: 1 << 20,
        ..LinkSettings::default()
    });
    let coll = link.setup("one", "alice").await?;
    let big = "x".repeat(600 << 10);
    for i in 0..2 {
        client_put(
            &g2,
            &coll,
            &format!("{i}.ics"),
            &event(&format!("u{i}"), &big),
        )
        .await?;
    }
    let n = link
        .ask_all(Req::JournalPull(pb::JournalPull {
            collection_id: coll,
            ..Default::default()
        }))
        .await
        .len();
    assert_eq!(n, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_change_is_set_aside_until_the_item_changes_again() -> Result<()> {
    let (g, mut link, coll, token, a) = with_item("backend-wins").await?;
    client_put(&g, &coll, "a.ics", &event("a", "too big for the back end")).await?;
    let (pending, head) = link.journal(&coll).await?;
    let refused = pb::Change {
        op: pb::change::Op::Refused as i32,
        item_id: a.clone(),
        seq: pending[0].seq,
        backend_status: 413,
        backend_answer: "too large".into(),
        ..Default::default()
    };
    accepted(link.push(&coll, head, token, vec![refused]).await?)?;
    assert!(
        link.journal(&coll).await?.0.is_empty(),
        "not handed out again"
    );
    let listed = g.store.list_set_aside(Some(g.tenant)).await?;
    assert_eq!(listed.len(), 1, "shown to the operator: {listed:?}");
    assert_eq!(listed[0].status, 413);

    client_put(&g, &coll, "a.ics", &event("a", "smaller")).await?;
    let (pending, _) = link.journal(&coll).await?;
    assert_eq!(pending.len(), 1, "a new change goes out");
    assert!(g.store.list_set_aside(Some(g.tenant)).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loser_sent_again_is_kept_once() -> Result<()> {
    let (g, mut link, coll, token, a) = with_item("backend-wins").await?;
    let loser = pb::ConflictRecord {
        item_id: a.clone(),
        uid: "a".into(),
        loser_side: pb::Side::Gateway as i32,
        loser_content: event("a", "lost").to_vec(),
        policy: pb::ConflictPolicy::BackendWins as i32,
        backend_href: "/alice/cal/a.ics".into(),
    };
    for _ in 0..2 {
        let packet = pb::ChangePacket {
            collection_id: coll.clone(),
            fencing_token: token,
            conflicts: vec![loser.clone()],
            ..Default::default()
        };
        let Ans::Verdict(v) = link.ask(Req::ChangePacket(packet)).await? else {
            bail!("no verdict")
        };
        accepted(v.outcome.unwrap())?;
    }
    let kept = g.store.list_conflicts(Some(g.tenant)).await?;
    assert_eq!(kept.len(), 1, "{kept:?}");
    // Another losing version of the same item is another record.
    let other = pb::ConflictRecord {
        loser_content: event("a", "lost again").to_vec(),
        ..loser
    };
    let packet = pb::ChangePacket {
        collection_id: coll,
        fencing_token: token,
        conflicts: vec![other],
        ..Default::default()
    };
    link.ask(Req::ChangePacket(packet)).await?;
    assert_eq!(g.store.list_conflicts(Some(g.tenant)).await?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_merge_base_is_what_both_sides_last_agreed_on() -> Result<()> {
    let (g, mut link, coll, token, a) = with_item("merge").await?;
    let imported = event("a", "first");

    // A client's edit goes out with the imported version as its base.
    client_put(&g, &coll, "a.ics", &event("a", "second")).await?;
    let (pending, head) = link.journal(&coll).await?;
    assert_eq!(pending[0].base_content, imported);

    // Written to the back end: that is the new base. A later edit goes out with it.
    accepted(
        link.push(
            &coll,
            head,
            token,
            vec![record(&a, "a.ics", "\"2\"", pending[0].seq)],
        )
        .await?,
    )?;
    client_put(&g, &coll, "a.ics", &event("a", "third")).await?;
    let (pending, head) = link.journal(&coll).await?;
    assert_eq!(pending[0].base_content, event("a", "second"));

    // A write acknowledged after the client changed the item again does not move the
    // base past what the back end holds.
    let first_seq = pending[0].seq;
    client_put(&g, &coll, "a.ics", &event("a", "fourth")).await?;
    accepted(
        link.push(
            &coll,
            head,
            token,
            vec![record(&a, "a.ics", "\"3\"", first_seq)],
        )
        .await?,
    )?;
    let (pending, head) = link.journal(&coll).await?;
    assert_eq!(pending[0].base_content, event("a", "second"));

    // A merge kept on the gateway only: the back end's copy is the base.
    let merged = event("a", "merged");
    let theirs = event("a", "back end's own");
    let keep_merge = pb::Change {
        seq: pending[0].seq,
        base_content: theirs.clone(),
        ..import(&a, "a.ics", "\"4\"", merged.clone())
    };
    accepted(link.push(&coll, head, token, vec![keep_merge]).await?)?;
    client_put(&g, &coll, "a.ics", &event("a", "fifth")).await?;
    let (pending, _) = link.journal(&coll).await?;
    assert_eq!(pending[0].base_content, theirs);

    // Under another policy no base is kept or sent.
    let (g2, mut link2, coll2, _, _) = with_item("newest-wins").await?;
    client_put(&g2, &coll2, "a.ics", &event("a", "second")).await?;
    let (pending, _) = link2.journal(&coll2).await?;
    assert!(pending[0].base_content.is_empty());
    drop(g);
    Ok(())
}

/// The connector decides on types, never on words: a denied lease carries its reason
/// as an enum, and a round's outcome is one of a fixed set, so a connector cannot
/// make up status words or metric labels.
#[tokio::test]
async fn lease_denials_and_round_outcomes_are_typed() -> Result<()> {
    let g = InProc::start().await?;
    let mut one = g.session(LinkSettings::default());
    let mut two = g.session(LinkSettings::default());
    let coll = one.setup("one", "alice").await?;
    two.setup("two", "alice").await?;
    one.acquire(&coll).await?.map_err(anyhow::Error::msg)?;
    let ans = two
        .ask(Req::Lease(pb::LeaseRequest {
            action: pb::lease_request::Action::Acquire as i32,
            collection_id: coll.clone(),
            fencing_token: 0,
        }))
        .await?;
    let Ans::LeaseDeny(d) = ans else {
        bail!("not denied: {ans:?}");
    };
    assert_eq!((d.why(), d.reason.as_str()), (pb::DenyReason::Held, "held"));

    let id = Uuid::parse_str(&coll)?;
    let report = |result: i32| {
        Req::RoundReport(pb::RoundReport {
            collection_id: coll.clone(),
            result,
            detail: "d".into(),
            ..Default::default()
        })
    };
    one.ask_all(report(pb::RoundOutcome::Conflict as i32)).await;
    assert_eq!(
        g.store.collection(g.tenant, id).await?.last_outcome,
        "conflict"
    );
    one.ask_all(report(97)).await;
    assert_eq!(
        g.store.collection(g.tenant, id).await?.last_outcome,
        "unknown",
        "an outcome this gateway does not know is not taken as a word"
    );
    Ok(())
}

/// The index comes in batches of bounded size, every batch counting the whole; a
/// round that names what changed gets only those entries (by back-end href or by
/// item id), still with the whole count.
#[tokio::test(flavor = "multi_thread")]
async fn the_index_comes_in_batches_and_a_round_can_ask_for_a_few_entries() -> Result<()> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings::default());
    let coll = link.setup("one", "alice").await?;
    let token = link.acquire(&coll).await?.map_err(anyhow::Error::msg)?;
    let n = 5_200;
    let mut ids = Vec::new();
    let all: Vec<pb::Change> = (0..n)
        .map(|i| {
            import(
                "",
                &format!("e{i}.ics"),
                "\"1\"",
                event(&format!("e{i}"), "x"),
            )
        })
        .collect();
    for packet in all.chunks(500) {
        let a = accepted(link.push(&coll, 0, token, packet.to_vec()).await?)?;
        ids.extend(a.item_ids);
    }

    let batches = link
        .ask_all(Req::IndexPull(pb::IndexPull {
            collection_id: coll.clone(),
            ..Default::default()
        }))
        .await;
    let mut entries = 0;
    for (i, b) in batches.iter().enumerate() {
        let Ans::IndexBatch(b) = b else {
            bail!("{b:?}")
        };
        assert_eq!(b.total, n as u64);
        assert_eq!(b.more, i + 1 < batches.len(), "only the last batch ends it");
        entries += b.entries.len();
    }
    assert!(batches.len() > 1, "{n} entries in one message");
    assert_eq!(entries, n);

    let Ans::IndexBatch(some) = link
        .ask(Req::IndexPull(pb::IndexPull {
            collection_id: coll.clone(),
            selected: true,
            backend_hrefs: vec!["/alice/cal/e7.ics".into(), "/alice/cal/none.ics".into()],
            item_ids: vec![ids[42].clone(), "not an id".into()],
            hrefs_only: false,
        }))
        .await?
    else {
        bail!("no index");
    };
    let mut got: Vec<&str> = some
        .entries
        .iter()
        .map(|e| e.backend_href.as_str())
        .collect();
    got.sort();
    assert_eq!(got, vec!["/alice/cal/e42.ics", "/alice/cal/e7.ics"]);
    assert_eq!(some.total, n as u64);
    assert!(!some.more);

    // Hrefs alone, for a round that windows a full listing.
    let mut hrefs = 0;
    for b in link
        .ask_all(Req::IndexPull(pb::IndexPull {
            collection_id: coll.clone(),
            hrefs_only: true,
            ..Default::default()
        }))
        .await
    {
        let Ans::IndexBatch(b) = b else {
            bail!("{b:?}")
        };
        assert!(
            b.entries
                .iter()
                .all(|e| e.backend_href.starts_with("/alice/cal/e") && e.item_id.is_empty())
        );
        hrefs += b.entries.len();
    }
    assert_eq!(hrefs, n);
    Ok(())
}

/// A connector too old to sync a kind of source (its Hello's capabilities lack it):
/// the gateway records the problem on the source, for `admin status` and
/// `source list`, instead of the source looking healthy while nothing syncs it.
#[tokio::test]
async fn a_source_the_connector_cannot_sync_is_recorded_as_a_problem() -> Result<()> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings::default());
    let source = |name: &str, kind: &str| pb::SourceInfo {
        name: name.into(),
        kind: pb::SourceKind::from_word(kind) as i32,
        user: "alice".into(),
        mode: pb::SyncMode::TwoWay as i32,
        conflict: pb::ConflictPolicy::BackendWins as i32,
    };
    let hello = pb::Hello {
        version: "0.0.1-old".into(),
        capabilities: vec!["caldav".into()],
        instance_id: "old".into(),
        sources: vec![source("cal", "caldav"), source("out", "smtp")],
    };
    let Ans::Welcome(_) = link.ask(Req::Hello(hello)).await? else {
        bail!("no welcome")
    };
    let sources = g.store.list_sources(Some(g.tenant)).await?;
    let problem = |name: &str| {
        sources
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.problem.clone())
    };
    assert_eq!(problem("cal").as_deref(), Some(""));
    let out = problem("out").unwrap_or_default();
    assert!(
        out.contains("cannot sync smtp") && out.contains("0.0.1-old"),
        "{out:?}"
    );
    Ok(())
}
