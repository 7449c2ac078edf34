//! Planner tests: named cases for each branch that matters, and a property test that
//! simulates both stores through random interleavings of edits, deletes, moves and
//! crashes, checking that they converge and that no unsynced version is ever lost.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn href(s: &str) -> Href {
    Href::new(s).unwrap()
}
fn id(s: &str) -> ItemId {
    ItemId::new(s).unwrap()
}
fn ev(uid: &str, summary: &str, modified: &str) -> Vec<u8> {
    format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nLAST-MODIFIED:{modified}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    .into_bytes()
}

fn round<'a>(
    mode: Mode,
    policy: ConflictPolicy,
    coll: &'a Href,
    index: &'a [Known],
    backend: &'a [BackendChange],
    gateway: &'a [GatewayChange],
) -> Round<'a> {
    Round {
        mode,
        policy,
        kind: CollectionKind::Calendar,
        collection_href: coll,
        index,
        backend,
        gateway,
    }
}

fn known(i: &str, h: &str, v: &str) -> Known {
    Known {
        item_id: id(i),
        href: href(h),
        version: v.into(),
    }
}

fn gw_edit(i: &str, h: Option<&str>, content: Option<Vec<u8>>, at: i64) -> GatewayChange {
    GatewayChange {
        item_id: id(i),
        seq: Seq(7),
        uid: i.into(),
        backend_href: h.map(href),
        backend_version: h.map(|_| "\"v1\"".into()),
        content,
        changed_at_ms: at,
        base: None,
    }
}

#[test]
fn one_uid_on_both_sides_under_two_names_is_one_item() {
    let coll = href("/c/");
    // A client made "meeting" as a.ics on the gateway; someone made it on the back end
    // as other.ics meanwhile.
    let mut g = gw_edit(
        "a",
        None,
        Some(ev("meeting", "gateway", "20250101T000000Z")),
        1,
    );
    g.uid = "meeting".into();
    let copy = BackendCopy {
        href: href("/c/other.ics"),
        version: "\"b1\"".into(),
        content: ev("meeting", "back end", "20250101T000000Z"),
    };
    let backend = [BackendChange::Changed(copy.clone())];
    let gateway = [g];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::BackendWins,
        &coll,
        &[],
        &backend,
        &gateway,
    ));
    // The back end's copy wins into the gateway's item (no second item, no PUT of a
    // duplicate UID), and the gateway's version is kept as the loser.
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Import { item_id: Some(i), copy: c, settles: Some(_), .. } if i == &id("a") && c.href == copy.href
    )));
    assert!(!actions.iter().any(|a| matches!(a, Action::Put { .. })));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Import { item_id: None, .. }))
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Keep(l) if l.side == Side::Gateway))
    );

    // Gateway wins: its content goes to the back end's href, replacing that version.
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::GatewayWins,
        &coll,
        &[],
        &backend,
        &gateway,
    ));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Put { href: h, precondition: Precondition::IfMatch(v), .. } if h == &copy.href && v == "\"b1\""
    )));
}

#[test]
fn backend_edit_reaches_gateway() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let copy = BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v2\"".into(),
        content: ev("a", "x", "20250101T000000Z"),
    };
    let backend = [BackendChange::Changed(copy.clone())];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::BackendWins,
        &coll,
        &index,
        &backend,
        &[],
    ));
    assert_eq!(
        actions,
        vec![Action::Import {
            item_id: Some(id("a")),
            copy,
            settles: None,
            merged: None,
        }]
    );
}

#[test]
fn gateway_edit_is_put_with_if_match() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let g = [gw_edit(
        "a",
        Some("/c/a.ics"),
        Some(ev("a", "new", "20250101T000000Z")),
        0,
    )];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::BackendWins,
        &coll,
        &index,
        &[],
        &g,
    ));
    assert!(
        matches!(&actions[..], [Action::Put { precondition: Precondition::IfMatch(v), .. }] if v == "\"v1\"")
    );
}

#[test]
fn new_gateway_item_is_created_under_its_uid() {
    let coll = href("/c/");
    let g = [gw_edit(
        "u1",
        None,
        Some(ev("u1", "new", "20250101T000000Z")),
        0,
    )];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::BackendWins,
        &coll,
        &[],
        &[],
        &g,
    ));
    assert!(
        matches!(&actions[..], [Action::Put { href: h, precondition: Precondition::IfNoneMatch, .. }] if h.as_str() == "/c/u1.ics")
    );
}

#[test]
fn both_edited_backend_wins_keeps_gateway_version() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let b = [BackendChange::Changed(BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v2\"".into(),
        content: ev("a", "backend", "20250101T000000Z"),
    })];
    let gw_content = ev("a", "gateway", "20250101T000000Z");
    let g = [gw_edit("a", Some("/c/a.ics"), Some(gw_content.clone()), 0)];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::BackendWins,
        &coll,
        &index,
        &b,
        &g,
    ));
    assert!(matches!(
        actions[0],
        Action::Import {
            settles: Some(Seq(7)),
            ..
        }
    ));
    assert!(
        matches!(&actions[1], Action::Keep(l) if l.side == Side::Gateway && l.content.as_ref() == Some(&gw_content))
    );
}

#[test]
fn newest_wins_compares_times() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let b = [BackendChange::Changed(BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v2\"".into(),
        content: ev("a", "backend", "20250101T000000Z"),
    })];
    let later = crate::content::parse_utc_timestamp("20250601T000000Z").unwrap();
    let g = [gw_edit(
        "a",
        Some("/c/a.ics"),
        Some(ev("a", "gateway", "20250601T000000Z")),
        later,
    )];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::NewestWins,
        &coll,
        &index,
        &b,
        &g,
    ));
    assert!(
        matches!(&actions[0], Action::Put { precondition: Precondition::IfMatch(v), .. } if v == "\"v2\"")
    );
    assert!(matches!(&actions[1], Action::Keep(l) if l.side == Side::Backend));
}

#[test]
fn identical_edits_are_not_a_conflict() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let same = ev("a", "same", "20250101T000000Z");
    let b = [BackendChange::Changed(BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v2\"".into(),
        content: same.clone(),
    })];
    let g = [gw_edit("a", Some("/c/a.ics"), Some(same), 0)];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::GatewayWins,
        &coll,
        &index,
        &b,
        &g,
    ));
    assert!(matches!(&actions[..], [Action::RecordVersion { version, .. }] if version == "\"v2\""));
}

#[test]
fn merge_mode_does_not_propagate_backend_deletions() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let b = [BackendChange::Deleted(href("/c/a.ics"))];
    let actions = plan(&round(
        Mode::Merge,
        ConflictPolicy::BackendWins,
        &coll,
        &index,
        &b,
        &[],
    ));
    assert_eq!(actions, vec![Action::Detach { item_id: id("a") }]);
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::BackendWins,
        &coll,
        &index,
        &b,
        &[],
    ));
    assert_eq!(
        actions,
        vec![Action::DeleteOnGateway {
            item_id: id("a"),
            settles: None
        }]
    );
}

#[test]
fn mirror_reverts_gateway_edits_and_keeps_them() {
    let coll = href("/c/");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let current = BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v1\"".into(),
        content: ev("a", "orig", "20250101T000000Z"),
    };
    let b = [BackendChange::Changed(current)];
    let g = [gw_edit(
        "a",
        Some("/c/a.ics"),
        Some(ev("a", "local", "20250101T000000Z")),
        0,
    )];
    let actions = plan(&round(
        Mode::Mirror,
        ConflictPolicy::GatewayWins,
        &coll,
        &index,
        &b,
        &g,
    ));
    assert!(matches!(actions[0], Action::Import { .. }));
    assert!(matches!(&actions[1], Action::Keep(l) if l.side == Side::Gateway));
    assert_eq!(fetch_list(Mode::Mirror, &[], &g), vec![href("/c/a.ics")]);
    assert!(fetch_list(Mode::TwoWay, &[], &g).is_empty());
}

#[test]
fn listing_diff_finds_new_changed_and_gone() {
    let index = [
        known("a", "/c/a.ics", "\"1\""),
        known("b", "/c/b.ics", "\"1\""),
        known("c", "/c/c.ics", "\"1\""),
    ];
    let listing: BTreeMap<Href, String> = [
        (href("/c/a.ics"), "\"1\"".to_string()),
        (href("/c/b.ics"), "\"2\"".into()),
        (href("/c/d.ics"), "\"1\"".into()),
    ]
    .into_iter()
    .collect();
    let mut signals = diff_listing(&index, &listing);
    signals.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(
        signals,
        vec![
            BackendSignal::Changed {
                href: href("/c/b.ics"),
                version: "\"2\"".into()
            },
            BackendSignal::Changed {
                href: href("/c/d.ics"),
                version: "\"1\"".into()
            },
            BackendSignal::Deleted(href("/c/c.ics")),
        ]
    );
}

#[test]
fn resolve_never_lets_an_undated_deletion_beat_an_edit() {
    assert_eq!(
        resolve(ConflictPolicy::NewestWins, None, true, 0, false),
        Side::Gateway
    );
    assert_eq!(
        resolve(ConflictPolicy::NewestWins, None, false, 10, true),
        Side::Backend
    );
    assert_eq!(
        resolve(ConflictPolicy::NewestWins, Some(5), false, 10, false),
        Side::Gateway
    );
    assert_eq!(
        resolve(ConflictPolicy::NewestWins, Some(15), false, 10, false),
        Side::Backend
    );
    assert_eq!(
        resolve(ConflictPolicy::BackendWins, Some(0), false, 10, false),
        Side::Backend
    );
    assert_eq!(
        resolve(ConflictPolicy::GatewayWins, Some(99), false, 10, false),
        Side::Gateway
    );
}

/// The merge policy's three cases on one item: both sides edited different
/// properties (merged, no loser), the same property (newest wins, loser kept), and no
/// base known (newest wins).
#[test]
fn merge_policy_merges_what_it_can() {
    let coll = href("/c/");
    let base = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nLAST-MODIFIED:20250101T000000Z\r\nSUMMARY:Old\r\nLOCATION:Here\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n".to_vec();
    let text = String::from_utf8(base.clone()).unwrap();
    let ours = text
        .replace("SUMMARY:Old", "SUMMARY:New")
        .replace("20250101T000000Z", "20250102T000000Z");
    let theirs = text
        .replace("LOCATION:Here", "LOCATION:There")
        .replace("20250101T000000Z", "20250103T000000Z");
    let index = [known("a", "/c/a.ics", "\"v1\"")];
    let copy = BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v2\"".into(),
        content: theirs.clone().into_bytes(),
    };
    let backend = [BackendChange::Changed(copy)];
    let mut g = gw_edit(
        "a",
        Some("/c/a.ics"),
        Some(ours.into_bytes()),
        1_735_776_000_000,
    );
    g.base = Some(base.clone());
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::Merge,
        &coll,
        &index,
        &backend,
        std::slice::from_ref(&g),
    ));
    match &actions[..] {
        [
            Action::Put {
                content,
                merged: true,
                precondition: Precondition::IfMatch(v),
                ..
            },
        ] => {
            let m = String::from_utf8_lossy(content);
            assert!(
                m.contains("SUMMARY:New") && m.contains("LOCATION:There"),
                "{m}"
            );
            assert!(m.contains("LAST-MODIFIED:20250103T000000Z"), "{m}");
            assert_eq!(v, "\"v2\"");
        }
        other => panic!("{other:?}"),
    }

    // Both changed SUMMARY: newest-wins (the back end's edit is later) keeps the loser.
    let theirs = text
        .replace("SUMMARY:Old", "SUMMARY:Theirs")
        .replace("20250101T000000Z", "20250103T000000Z");
    let backend = [BackendChange::Changed(BackendCopy {
        href: href("/c/a.ics"),
        version: "\"v2\"".into(),
        content: theirs.into_bytes(),
    })];
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::Merge,
        &coll,
        &index,
        &backend,
        std::slice::from_ref(&g),
    ));
    assert!(
        matches!(&actions[..], [Action::Import { .. }, Action::Keep(l)] if l.side == Side::Gateway)
    );

    // No base: newest-wins too.
    g.base = None;
    let actions = plan(&round(
        Mode::TwoWay,
        ConflictPolicy::Merge,
        &coll,
        &index,
        &backend,
        std::slice::from_ref(&g),
    ));
    assert!(matches!(
        &actions[..],
        [Action::Import { .. }, Action::Keep(_)]
    ));
}

mod simulation;
