//! The store's mail pieces, in process on a fresh database: bodies once per content
//! and tenant, read by range; gateway UIDs that only grow, per mailbox, taken in the
//! caller's transaction; messages imported by change packets, flag changes without
//! bodies.

use anyhow::Result;
use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_e2e::inproc::InProc;
use postern_e2e::link::Talk;
use postern_gateway::link::session::LinkSettings;
use postern_gateway::store::{Store, StoreError};
use postern_proto as pb;
use uuid::Uuid;

/// A mailbox of alice's, on an `imap` source of connector `hq`.
async fn mailbox(g: &InProc, name: &str) -> Result<Uuid> {
    let c = g.store.client().await?;
    let source = Uuid::new_v4();
    c.execute(
        "INSERT INTO sources (tenant_id, id, connector_id, name, kind, user_id, mode, conflict)
         SELECT $1, $2, $3, $4, 'imap', id, 'two-way', 'merge' FROM users
         WHERE tenant_id = $1 AND name = 'alice'",
        &[&g.tenant, &source, &g.claims.sub, &format!("mail-{name}")],
    )
    .await?;
    let id = Uuid::new_v4();
    c.execute(
        "INSERT INTO collections (tenant_id, id, user_id, source_id, kind, backend_href, name,
                                  mode, conflict, mailbox_name, delimiter, role)
         SELECT $1, $2, user_id, id, 'mailbox', $4, $4, 'two-way', 'merge', $4, '/', 'inbox'
         FROM sources WHERE tenant_id = $1 AND id = $3",
        &[&g.tenant, &id, &source, &name],
    )
    .await?;
    Ok(id)
}

#[tokio::test]
async fn a_body_is_kept_once_per_tenant_and_read_by_range() -> Result<()> {
    let g = InProc::start().await?;
    let other = g.store.add_tenant("globex").await?.id;
    // A 3 MB message whose bytes tell their own offset.
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();

    let sha = g.store.put_body(g.tenant, &body).await?;
    assert_eq!(
        g.store.put_body(g.tenant, &body).await?,
        sha,
        "same bytes, same key"
    );
    let c = g.store.client().await?;
    let count = |t: Uuid| {
        let c = &c;
        async move {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM message_bodies WHERE tenant_id = $1",
                    &[&t],
                )
                .await?
                .get(0);
            anyhow::Ok(n)
        }
    };
    assert_eq!(count(g.tenant).await?, 1, "stored once");

    // Another tenant neither shares nor reads it.
    assert_eq!(g.store.body_range(other, &sha, 0, 10).await?, None);
    g.store.put_body(other, &body).await?;
    assert_eq!((count(g.tenant).await?, count(other).await?), (1, 1));

    // Ranges: a client's first 64 KiB, a piece in the middle, the end, past the end.
    let read = |o: u64, n: u64| g.store.body_range(g.tenant, &sha, o, n);
    assert_eq!(read(0, 65_536).await?.unwrap(), body[..65_536]);
    assert_eq!(
        read(1_234_567, 1_000).await?.unwrap(),
        body[1_234_567..1_235_567]
    );
    assert_eq!(read(2_999_990, 100).await?.unwrap(), body[2_999_990..]);
    assert_eq!(read(3_000_000, 100).await?.unwrap(), Vec::<u8>::new());
    assert_eq!(read(0, u64::MAX).await?.unwrap().len(), body.len());

    // Stored out of line and uncompressed, which is what lets a range skip the rest.
    let storage: i8 = c
        .query_one(
            "SELECT attstorage FROM pg_attribute
             WHERE attrelid = 'message_bodies'::regclass AND attname = 'body'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(storage as u8, b'e');
    let compressed: Option<String> = c
        .query_one(
            "SELECT pg_column_compression(body) FROM message_bodies WHERE tenant_id = $1",
            &[&g.tenant],
        )
        .await?
        .get(0);
    assert_eq!(compressed, None);
    Ok(())
}

#[tokio::test]
async fn gateway_uids_only_grow_and_each_mailbox_has_its_own() -> Result<()> {
    let g = InProc::start().await?;
    let (inbox, sent) = (
        mailbox(&g, "INBOX").await?,
        mailbox(&g, "Sent Items").await?,
    );
    let first = g.store.gateway_uids(g.tenant, inbox).await?;
    assert_eq!(first.next_uid, 1);
    assert_ne!(first.uidvalidity, 0);

    let mut c = g.store.client().await?;
    let take = async |c: &mut deadpool_postgres::Object, m: Uuid, n: u32, commit: bool| {
        let tx = c.transaction().await?;
        let uid = Store::take_gateway_uids(&tx, g.tenant, m, n).await;
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        anyhow::Ok(uid)
    };
    assert_eq!(take(&mut c, inbox, 3, true).await??, 1);
    assert_eq!(take(&mut c, inbox, 2, true).await??, 4);
    // A rolled-back insert gives its UIDs back: none is skipped or given twice.
    assert_eq!(take(&mut c, inbox, 5, false).await??, 6);
    assert_eq!(take(&mut c, inbox, 1, true).await??, 6);
    // The other mailbox counts on its own.
    assert_eq!(take(&mut c, sent, 1, true).await??, 1);
    let now = g.store.gateway_uids(g.tenant, inbox).await?;
    assert_eq!(now.next_uid, 7);
    assert_eq!(now.uidvalidity, first.uidvalidity, "UIDVALIDITY stays");

    // Concurrent inserts take turns: their ranges never overlap.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = g.store.clone();
        let tenant = g.tenant;
        tasks.push(tokio::spawn(async move {
            let mut c = store.client().await?;
            let tx = c.transaction().await?;
            let uid = Store::take_gateway_uids(&tx, tenant, inbox, 10).await?;
            tx.commit().await?;
            anyhow::Ok(uid)
        }));
    }
    let mut starts = Vec::new();
    for t in tasks {
        starts.push(t.await??);
    }
    starts.sort();
    for w in starts.windows(2) {
        assert_eq!(w[1] - w[0], 10, "{starts:?}");
    }
    assert_eq!(starts[0], 7);

    // The last UIDs of the 32-bit space are refused, not wrapped.
    c.execute(
        "UPDATE collections SET next_gateway_uid = 4294967295 WHERE tenant_id = $1 AND id = $2",
        &[&g.tenant, &sent],
    )
    .await?;
    assert_eq!(take(&mut c, sent, 1, true).await??, u32::MAX);
    assert!(matches!(
        take(&mut c, sent, 1, true).await?,
        Err(StoreError::Invalid(_))
    ));
    // Not a mailbox: not found.
    assert!(matches!(
        g.store.gateway_uids(g.tenant, Uuid::new_v4()).await,
        Err(StoreError::NotFound(_))
    ));
    Ok(())
}

/// What the gateway holds of a mailbox's messages, by gateway UID.
async fn messages(
    g: &InProc,
    mailbox: Uuid,
) -> Result<Vec<(i64, Vec<String>, Vec<String>, Option<i64>, bool)>> {
    let c = g.store.client().await?;
    Ok(c.query(
        "SELECT gateway_uid, flags, base_flags, size, content IS NULL FROM items
         WHERE tenant_id = $1 AND collection_id = $2 AND NOT deleted ORDER BY gateway_uid",
        &[&g.tenant, &mailbox],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect())
}

fn mail(n: u32) -> Vec<u8> {
    format!("Message-ID: <m{n}@corp.example>\r\nSubject: {n}\r\n\r\nbody\r\n").into_bytes()
}

fn import(uid: u32, body: Vec<u8>, flags: &[&str]) -> pb::Change {
    pb::Change {
        op: pb::change::Op::Upsert as i32,
        backend_href: format!("/{uid}"),
        backend_version: format!("imap:7/{uid}/5"),
        content: body,
        content_type: "message/rfc822".into(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        internal_date_ms: 1_780_000_000_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn imported_messages_are_filed_once_and_flag_changes_carry_no_body() -> Result<()> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings::default());
    let coll = link.setup_mailbox("hq", "alice").await?;
    let id = Uuid::parse_str(&coll)?;
    let token = link.acquire(&coll).await?.map_err(anyhow::Error::msg)?;

    // Two copies of one message (a list's mail in INBOX twice) and another.
    let outcome = link
        .push(
            &coll,
            0,
            token,
            vec![
                import(1, mail(1), &["\\Seen"]),
                import(2, mail(1), &[]),
                import(3, mail(3), &["\\Flagged", "$Work"]),
            ],
        )
        .await?;
    assert!(
        matches!(outcome, pb::verdict::Outcome::Accepted(_)),
        "{outcome:?}"
    );
    let held = messages(&g, id).await?;
    assert_eq!(
        held.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "gateway UIDs in arrival order"
    );
    assert!(
        held.iter().all(|m| m.4),
        "no item keeps its own copy of the bytes"
    );
    assert_eq!(held[2].1, vec!["\\Flagged", "$Work"]);
    assert_eq!(
        held[2].2, held[2].1,
        "the imported flags are the agreed base"
    );
    assert_eq!(held[0].3, Some(mail(1).len() as i64));
    let c = g.store.client().await?;
    let bodies: i64 = c
        .query_one(
            "SELECT count(*) FROM message_bodies WHERE tenant_id = $1",
            &[&g.tenant],
        )
        .await?
        .get(0);
    assert_eq!(bodies, 2, "one body per content");
    let sha: Vec<u8> = c
        .query_one(
            "SELECT body_sha256 FROM items WHERE tenant_id = $1 AND gateway_uid = 3",
            &[&g.tenant],
        )
        .await?
        .get(0);
    let sha: [u8; 32] = sha.try_into().map_err(|_| anyhow::anyhow!("hash length"))?;
    assert_eq!(
        g.store.body_range(g.tenant, &sha, 0, 1 << 20).await?,
        Some(mail(3))
    );

    // The index carries each message's agreed flags.
    let Ans::IndexBatch(index) = link
        .ask(Req::IndexPull(pb::IndexPull {
            collection_id: coll.clone(),
            ..Default::default()
        }))
        .await?
    else {
        anyhow::bail!("no index");
    };
    let third = index
        .entries
        .iter()
        .find(|e| e.backend_href == "/3")
        .expect("indexed");
    assert_eq!(third.flags, vec!["\\Flagged", "$Work"]);

    // A flag change: flags and version move, no body travels or is stored.
    let (_, head) = link.journal(&coll).await?;
    let change = pb::Change {
        op: pb::change::Op::Flags as i32,
        item_id: third.item_id.clone(),
        backend_version: "imap:7/3/9".into(),
        flags: vec!["\\Seen".into()],
        ..Default::default()
    };
    let outcome = link.push(&coll, head, token, vec![change]).await?;
    assert!(
        matches!(outcome, pb::verdict::Outcome::Accepted(_)),
        "{outcome:?}"
    );
    let held = messages(&g, id).await?;
    assert_eq!(
        (held[2].1.clone(), held[2].2.clone()),
        (vec!["\\Seen".to_string()], vec!["\\Seen".to_string()])
    );
    let bodies: i64 = c
        .query_one(
            "SELECT count(*) FROM message_bodies WHERE tenant_id = $1",
            &[&g.tenant],
        )
        .await?
        .get(0);
    assert_eq!(bodies, 2);
    let version: String = c
        .query_one(
            "SELECT backend_version FROM items WHERE tenant_id = $1 AND gateway_uid = 3",
            &[&g.tenant],
        )
        .await?
        .get(0);
    assert_eq!(version, "imap:7/3/9");

    // Flag changes go in together (one statement): a packet naming an item the
    // mailbox does not have is refused whole, the other change in it not applied.
    let (_, head) = link.journal(&coll).await?;
    let flagged = |item: &str| pb::Change {
        op: pb::change::Op::Flags as i32,
        item_id: item.to_string(),
        backend_version: "imap:7/3/10".into(),
        flags: vec!["\\Flagged".into()],
        ..Default::default()
    };
    let outcome = link
        .push(
            &coll,
            head,
            token,
            vec![
                flagged(&third.item_id),
                flagged(&Uuid::new_v4().to_string()),
            ],
        )
        .await?;
    assert!(
        matches!(&outcome, pb::verdict::Outcome::Rejected(r) if r.detail.contains("unknown item")),
        "{outcome:?}"
    );
    assert_eq!(messages(&g, id).await?[2].1, vec!["\\Seen".to_string()]);
    Ok(())
}

/// A mailbox the back end no longer lists leaves the gateway, unless it holds changes
/// the back end has not had: that one pauses, with everything in it.
#[tokio::test]
async fn a_vanished_mailbox_goes_unless_it_holds_unsent_changes() -> Result<()> {
    let g = InProc::start().await?;
    let kept = mailbox(&g, "/Drafts").await?;
    let c = g.store.client().await?;
    let source: Uuid = c
        .query_one("SELECT source_id FROM collections WHERE id = $1", &[&kept])
        .await?
        .get(0);
    let gone = Uuid::new_v4();
    c.execute(
        "INSERT INTO collections (tenant_id, id, user_id, source_id, kind, backend_href, name,
                                  mode, conflict, mailbox_name)
         SELECT tenant_id, $2, user_id, source_id, 'mailbox', '/Old', 'Old', 'two-way', 'merge', 'Old'
         FROM collections WHERE id = $1",
        &[&kept, &gone],
    )
    .await?;
    // A draft a client wrote, not yet on the back end.
    g.store
        .append_message(g.tenant, kept, b"Subject: draft\r\n\r\nunsent\r\n", &[])
        .await?;
    // Discovery lists only INBOX.
    let (removed, paused) = g
        .store
        .remove_vanished_mailboxes(g.tenant, source, &["/INBOX".to_string()])
        .await?;
    assert_eq!((removed, paused), (1, 1));
    let left: Vec<(Uuid, Option<String>)> = c
        .query(
            "SELECT id, paused_reason FROM collections WHERE source_id = $1",
            &[&source],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, kept);
    assert!(
        left[0]
            .1
            .as_deref()
            .unwrap_or("")
            .contains("no longer lists")
    );
    Ok(())
}

/// A body no message needs any more is removed once the grace period is over; a body
/// a live message (or a pending expunge) still holds is kept.
#[tokio::test]
async fn bodies_nobody_needs_are_collected_after_the_grace_period() -> Result<()> {
    let g = InProc::start().await?;
    let inbox = mailbox(&g, "/INBOX").await?;
    let (gone, _) = g
        .store
        .append_message(g.tenant, inbox, b"Subject: gone\r\n\r\nbye\r\n", &[])
        .await?;
    let (waiting, _) = g
        .store
        .append_message(g.tenant, inbox, b"Subject: waiting\r\n\r\nsoon\r\n", &[])
        .await?;
    g.store
        .append_message(g.tenant, inbox, b"Subject: kept\r\n\r\nhere\r\n", &[])
        .await?;
    g.store.expunge_message(g.tenant, inbox, gone).await?;
    g.store.expunge_message(g.tenant, inbox, waiting).await?;
    let c = g.store.client().await?;
    // `gone`'s expunge reached the back end two days ago; `waiting`'s has not.
    c.execute(
        "UPDATE items SET pending_seq = NULL, changed_at = now() - interval '2 days' WHERE id = $1",
        &[&gone],
    )
    .await?;
    c.execute(
        "UPDATE message_bodies SET created_at = now() - interval '2 days' WHERE tenant_id = $1",
        &[&g.tenant],
    )
    .await?;
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(g.store.collect_bodies(day).await?, (1, 1));
    let left: Vec<Vec<u8>> = c
        .query(
            "SELECT body FROM message_bodies WHERE tenant_id = $1 ORDER BY body",
            &[&g.tenant],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        left,
        vec![
            b"Subject: kept\r\n\r\nhere\r\n".to_vec(),
            b"Subject: waiting\r\n\r\nsoon\r\n".to_vec()
        ]
    );
    // Inside the grace period nothing goes, whatever refers to it.
    assert_eq!(g.store.collect_bodies(day * 3).await?, (0, 0));
    Ok(())
}

/// A client's rename waiting for the back end keeps its new name when a discovery
/// made before the back end renamed it still lists the old one; once the connector
/// says it renamed it, the mailbox is bound to its new href under the new name.
#[tokio::test]
async fn a_rename_in_flight_keeps_its_new_name_through_discovery() -> Result<()> {
    use postern_gateway::store::collections::FoundCollection;
    let g = InProc::start().await?;
    let id = mailbox(&g, "/Reports").await?;
    let c = g.store.client().await?;
    let source: Uuid = c
        .query_one("SELECT source_id FROM collections WHERE id = $1", &[&id])
        .await?
        .get(0);
    let listed = |name: &str| FoundCollection {
        backend_href: format!("/{name}"),
        kind: postern_core::model::CollectionKind::Mailbox,
        display_name: name.to_string(),
        color: String::new(),
        role: None,
        delimiter: Some("/".into()),
    };
    // (The helper makes every mailbox an INBOX, which cannot be renamed.)
    c.execute("UPDATE collections SET role = NULL WHERE id = $1", &[&id])
        .await?;
    g.store.rename_mailbox(g.tenant, id, "Reports 2026").await?;
    // Discovery ran before the back end renamed it: it still lists the old name.
    g.store
        .upsert_collections(g.tenant, source, &[listed("Reports")])
        .await?;
    let row = c
        .query_one(
            "SELECT display_name, mailbox_name, rename_to FROM collections WHERE id = $1",
            &[&id],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "Reports 2026");
    assert_eq!(row.get::<_, String>(1), "Reports 2026");
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("Reports 2026")
    );
    // The connector renamed it and says so.
    g.store
        .bind_created(g.tenant, source, id, "/Reports%202026")
        .await?;
    let row = c
        .query_one(
            "SELECT display_name, backend_href, rename_to FROM collections WHERE id = $1",
            &[&id],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "Reports 2026");
    assert_eq!(row.get::<_, String>(1), "/Reports%202026");
    assert_eq!(row.get::<_, Option<String>>(2), None);
    Ok(())
}

/// A client's small append travels in the journal batch; a large one is named by hash
/// and size and read in parts (`BodyRead`), so no batch is ever one huge message. A
/// connector reads only bodies a pending change of that collection names.
#[tokio::test]
async fn a_large_append_is_read_in_parts_and_only_by_its_own_collection() -> Result<()> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings {
        max_message_bytes: 1 << 20,
        ..LinkSettings::default()
    });
    let coll = link.setup_mailbox("hq", "alice").await?;
    let inbox = Uuid::parse_str(&coll)?;
    let small = b"Message-ID: <small@corp.example>\r\n\r\nhi\r\n".to_vec();
    let mut large = b"Message-ID: <large@corp.example>\r\n\r\n".to_vec();
    large.extend((0..3_000_000u32).map(|i| b'a' + (i % 26) as u8));
    g.store.append_message(g.tenant, inbox, &small, &[]).await?;
    g.store
        .append_message(g.tenant, inbox, &large, &["\\Draft".into()])
        .await?;

    let (changes, _) = link.journal(&coll).await?;
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].content, small, "a small body comes inline");
    let big = &changes[1];
    assert!(big.content.is_empty(), "a large body is not in the batch");
    assert_eq!(big.body_size, large.len() as u64);
    assert_eq!(big.uid, "<large@corp.example>");

    // Read in parts, each within the link's largest message.
    let mut read = Vec::new();
    while read.len() < large.len() {
        let Ans::BodyChunk(chunk) = link
            .ask(Req::BodyRead(pb::BodyRead {
                collection_id: coll.clone(),
                sha256: big.body_sha256.clone(),
                offset: read.len() as u64,
                length: 8 << 20,
                ..Default::default()
            }))
            .await?
        else {
            anyhow::bail!("no chunk");
        };
        assert!(!chunk.data.is_empty() && chunk.data.len() < 1 << 20);
        assert_eq!(chunk.total, large.len() as u64);
        read.extend(chunk.data);
    }
    assert!(read == large, "the parts make the body");

    // A body is read only through a collection whose pending change names it: another
    // mailbox cannot have it by naming its hash.
    let other = mailbox(&g, "/Other").await?;
    let sha = big.body_sha256.clone();
    assert!(
        g.store
            .pending_body_range(g.tenant, inbox, &sha, (0, 10))
            .await?
            .is_some()
    );
    assert!(
        g.store
            .pending_body_range(g.tenant, other, &sha, (0, 10))
            .await?
            .is_none()
    );
    Ok(())
}

/// A mailbox packet's bodies are stored before its transaction, so that a
/// connector's next packet, sent before this one's verdict, stores its bodies while
/// this one commits: two packets in flight both go in, and a refused packet leaves
/// no message, only bodies collected as unreferenced after the grace period.
#[tokio::test]
async fn packets_in_flight_both_commit_and_a_refused_one_leaves_only_collectable_bodies()
-> Result<()> {
    let g = InProc::start().await?;
    let mut link = g.session(LinkSettings::default());
    let coll = link.setup_mailbox("hq", "alice").await?;
    let id = Uuid::parse_str(&coll)?;
    let token = link.acquire(&coll).await?.map_err(anyhow::Error::msg)?;

    let packet = |uids: std::ops::Range<u32>, token: u64| pb::ConnectorMessage {
        request_id: uids.start.into(),
        body: Some(Req::ChangePacket(pb::ChangePacket {
            collection_id: coll.clone(),
            fencing_token: token,
            changes: uids.map(|u| import(u, mail(u), &[])).collect(),
            ..Default::default()
        })),
        trace_context: Default::default(),
    };
    let (one, two) = (link.session.clone(), link.session.clone());
    let (a, b) = tokio::join!(
        one.handle(packet(1..51, token), "127.0.0.1:50001"),
        two.handle(packet(51..101, token), "127.0.0.1:50001"),
    );
    for answer in a.into_iter().chain(b) {
        let Some(Ans::Verdict(v)) = answer.body else {
            continue;
        };
        assert!(
            matches!(v.outcome, Some(pb::verdict::Outcome::Accepted(_))),
            "{v:?}"
        );
    }
    let held = messages(&g, id).await?;
    assert_eq!(held.len(), 100, "both packets went in");
    let mut uids: Vec<i64> = held.iter().map(|m| m.0).collect();
    uids.dedup();
    assert_eq!(uids.len(), 100, "each message its own gateway UID");

    // A packet under an old fencing token: refused, and nothing of it stored.
    let refused = link
        .session
        .handle(packet(200..201, token + 7), "127.0.0.1:50001")
        .await;
    assert!(
        refused.iter().any(|m| matches!(
            &m.body,
            Some(Ans::Verdict(pb::Verdict {
                outcome: Some(pb::verdict::Outcome::Rejected(_)),
                ..
            }))
        )),
        "{refused:?}"
    );
    assert_eq!(messages(&g, id).await?.len(), 100);
    let c = g.store.client().await?;
    let orphan = "SELECT count(*) FROM message_bodies b WHERE tenant_id = $1 AND NOT EXISTS
                  (SELECT 1 FROM items i WHERE i.tenant_id = b.tenant_id AND i.body_sha256 = b.sha256)";
    assert_eq!(c.query_one(orphan, &[&g.tenant]).await?.get::<_, i64>(0), 0);

    // Under the current token but with an href the gateway knows (a stale index):
    // refused, no message; the new body was stored early and goes with the next
    // collection after the grace period.
    let mut stale = packet(300..301, token);
    if let Some(Req::ChangePacket(p)) = stale.body.as_mut() {
        p.changes[0].backend_href = "/1".into();
    }
    let refused = link.session.handle(stale, "127.0.0.1:50001").await;
    assert!(
        refused.iter().any(|m| matches!(
            &m.body,
            Some(Ans::Verdict(pb::Verdict {
                outcome: Some(pb::verdict::Outcome::Rejected(_)),
                ..
            }))
        )),
        "{refused:?}"
    );
    assert_eq!(messages(&g, id).await?.len(), 100);
    assert_eq!(c.query_one(orphan, &[&g.tenant]).await?.get::<_, i64>(0), 1);
    c.execute(
        "UPDATE message_bodies SET created_at = now() - interval '2 days' WHERE tenant_id = $1",
        &[&g.tenant],
    )
    .await?;
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(g.store.collect_bodies(day).await?, (0, 1));
    assert_eq!(c.query_one(orphan, &[&g.tenant]).await?.get::<_, i64>(0), 0);
    Ok(())
}

/// A user's submitted mail goes only to an `smtp` source of that user: another kind
/// of source of the same user can neither take it nor is told about it.
#[tokio::test(flavor = "multi_thread")]
async fn only_an_smtp_source_of_its_user_takes_the_outbox() -> Result<()> {
    let g = InProc::start().await?;
    let alice = g.store.user_id(g.tenant, "alice").await?;
    g.store
        .queue_submission(
            g.tenant,
            alice,
            "alice@corp.example",
            &["bob@example.org".into()],
            &mail(1),
        )
        .await?;
    let pull = |source: &str| {
        Req::OutboxPull(pb::OutboxPull {
            source: source.into(),
            max: 16,
        })
    };

    let mut mailboxes = g.session(LinkSettings::default());
    mailboxes.setup_mailbox("one", "alice").await?;
    let ans = mailboxes.ask(pull("cal")).await?;
    assert!(matches!(ans, Ans::Failure(_)), "an imap source: {ans:?}");
    assert!(mailboxes.session.outbox_sources(alice).await.is_empty());

    let mut relay = g.session(LinkSettings::default());
    let hello = pb::Hello {
        version: "test".into(),
        capabilities: vec!["smtp".into()],
        instance_id: "two".into(),
        sources: vec![pb::SourceInfo {
            name: "out".into(),
            kind: pb::SourceKind::from_word("smtp") as i32,
            user: "alice".into(),
            mode: pb::SyncMode::TwoWay as i32,
            conflict: pb::ConflictPolicy::BackendWins as i32,
        }],
    };
    let Ans::Welcome(_) = relay.ask(Req::Hello(hello)).await? else {
        anyhow::bail!("no welcome")
    };
    assert_eq!(relay.session.outbox_sources(alice).await, ["out"]);
    let Ans::OutboxBatch(batch) = relay.ask(pull("out")).await? else {
        anyhow::bail!("no batch")
    };
    assert_eq!(batch.items.len(), 1);
    assert_eq!(batch.items[0].body, mail(1));
    Ok(())
}
