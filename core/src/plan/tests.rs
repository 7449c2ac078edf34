//! Planner tests: named cases for each branch that matters, and a property test that
//! simulates both stores through random interleavings of edits, deletes, moves and
//! crashes, checking that they converge and that no unsynced version is ever lost.

use std::collections::BTreeMap;

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
        Action::Import { item_id: Some(i), copy: c, settles: Some(_) } if i == &id("a") && c.href == copy.href
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
            settles: None
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

// ---------------------------------------------------------------------------------
// Simulation: both stores, random edits, rounds that may crash half-way.

#[derive(Debug, Clone)]
struct GItem {
    uid: String,
    content: Option<Vec<u8>>,
    backend_href: Option<Href>,
    backend_version: Option<String>,
    pending: Option<Seq>,
    changed_at: i64,
}

#[derive(Debug, Default)]
struct World {
    backend: BTreeMap<Href, (String, Vec<u8>)>,
    gateway: BTreeMap<ItemId, GItem>,
    kept: Vec<Loser>,
    next: u64,
}

#[derive(Debug, Clone)]
enum Op {
    BackendCreate,
    BackendEdit(usize),
    BackendDelete(usize),
    BackendMove(usize),
    GatewayCreate,
    GatewayEdit(usize),
    GatewayDelete(usize),
    Sync { crash: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::BackendCreate),
        (0usize..8).prop_map(Op::BackendEdit),
        (0usize..8).prop_map(Op::BackendDelete),
        (0usize..8).prop_map(Op::BackendMove),
        Just(Op::GatewayCreate),
        (0usize..8).prop_map(Op::GatewayEdit),
        (0usize..8).prop_map(Op::GatewayDelete),
        any::<bool>().prop_map(|crash| Op::Sync { crash }),
    ]
}

const COLL: &str = "/c/";

/// A back-end write to acknowledge: item, where it went (none for a delete), the
/// change it settles, and whether it was a delete.
type Ack = (ItemId, Option<(Href, String)>, Seq, bool);

impl World {
    fn tick(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn content(&mut self, uid: &str, who: &str) -> Vec<u8> {
        let n = self.tick();
        let stamp = format!("2025{:02}{:02}T000000Z", 1 + (n / 28) % 12, 1 + n % 28);
        ev(uid, &format!("{who}-{n}"), &stamp)
    }

    fn apply(&mut self, op: &Op, mode: Mode, policy: ConflictPolicy) {
        match op {
            Op::BackendCreate => {
                let n = self.tick();
                let uid = format!("b{n}");
                let content = self.content(&uid, "backend");
                let v = format!("\"{}\"", self.tick());
                self.backend
                    .insert(href(&format!("/c/{uid}.ics")), (v, content));
            }
            Op::BackendEdit(i) => {
                if let Some(h) = self
                    .backend
                    .keys()
                    .nth(i % self.backend.len().max(1))
                    .cloned()
                {
                    let uid = crate::content::uid(&self.backend[&h].1).unwrap();
                    let content = self.content(&uid, "backend");
                    let v = format!("\"{}\"", self.tick());
                    self.backend.insert(h, (v, content));
                }
            }
            Op::BackendDelete(i) => {
                if let Some(h) = self
                    .backend
                    .keys()
                    .nth(i % self.backend.len().max(1))
                    .cloned()
                {
                    self.backend.remove(&h);
                }
            }
            Op::BackendMove(i) => {
                if let Some(h) = self
                    .backend
                    .keys()
                    .nth(i % self.backend.len().max(1))
                    .cloned()
                {
                    let entry = self.backend.remove(&h).unwrap();
                    let n = self.tick();
                    self.backend
                        .insert(href(&format!("/c/moved-{n}.ics")), entry);
                }
            }
            Op::GatewayCreate => {
                let n = self.tick();
                let uid = format!("g{n}");
                let content = self.content(&uid, "gateway");
                let at = self.tick() as i64;
                self.gateway.insert(
                    id(&format!("i{n}")),
                    GItem {
                        uid,
                        content: Some(content),
                        backend_href: None,
                        backend_version: None,
                        pending: Some(Seq(n)),
                        changed_at: at,
                    },
                );
            }
            Op::GatewayEdit(i) | Op::GatewayDelete(i) => {
                let live: Vec<ItemId> = self
                    .gateway
                    .iter()
                    .filter(|(_, g)| g.content.is_some())
                    .map(|(k, _)| k.clone())
                    .collect();
                if let Some(k) = live.get(i % live.len().max(1)).cloned() {
                    let uid = self.gateway[&k].uid.clone();
                    let content = match op {
                        Op::GatewayEdit(_) => Some(self.content(&uid, "gateway")),
                        _ => None,
                    };
                    let n = self.tick();
                    let g = self.gateway.get_mut(&k).unwrap();
                    g.content = content;
                    g.pending = Some(Seq(n));
                    g.changed_at = n as i64;
                }
            }
            Op::Sync { crash } => self.sync(mode, policy, *crash),
        }
    }

    fn index(&self) -> Vec<Known> {
        self.gateway
            .iter()
            .filter_map(|(k, g)| {
                Some(Known {
                    item_id: k.clone(),
                    href: g.backend_href.clone()?,
                    version: g.backend_version.clone()?,
                })
            })
            .collect()
    }

    fn sync(&mut self, mode: Mode, policy: ConflictPolicy, crash: bool) {
        let coll = href(COLL);
        let index = self.index();
        let listing: BTreeMap<Href, String> = self
            .backend
            .iter()
            .map(|(h, (v, _))| (h.clone(), v.clone()))
            .collect();
        let signals = diff_listing(&index, &listing);
        let gateway: Vec<GatewayChange> = self
            .gateway
            .iter()
            .filter_map(|(k, g)| {
                Some(GatewayChange {
                    item_id: k.clone(),
                    seq: g.pending?,
                    uid: g.uid.clone(),
                    backend_href: g.backend_href.clone(),
                    backend_version: g.backend_version.clone(),
                    content: g.content.clone(),
                    changed_at_ms: g.changed_at,
                })
            })
            .collect();
        let backend: Vec<BackendChange> = fetch_list(mode, &signals, &gateway)
            .into_iter()
            .map(|h| match self.backend.get(&h) {
                Some((v, c)) => BackendChange::Changed(BackendCopy {
                    href: h,
                    version: v.clone(),
                    content: c.clone(),
                }),
                None => BackendChange::Deleted(h),
            })
            .chain(signals.iter().filter_map(|s| match s {
                BackendSignal::Deleted(h) => Some(BackendChange::Deleted(h.clone())),
                BackendSignal::Changed { .. } => None,
            }))
            .collect();
        let actions = plan(&round(mode, policy, &coll, &index, &backend, &gateway));
        let kept: Vec<Vec<u8>> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Keep(l) => l.content.clone(),
                _ => None,
            })
            .collect();
        let is_kept = |c: &[u8]| kept.iter().any(|k| k.as_slice() == c);
        let seen: BTreeMap<&Href, &String> = index.iter().map(|k| (&k.href, &k.version)).collect();

        // Back-end writes first, as the executor does.
        let mut acks: Vec<Ack> = Vec::new();
        for a in &actions {
            match a {
                Action::Put {
                    item_id,
                    settles,
                    href,
                    precondition,
                    content,
                } => {
                    let current = self.backend.get(href);
                    let ok = match (precondition, current) {
                        (Precondition::IfNoneMatch, None) => true,
                        (Precondition::IfMatch(v), Some((cv, _))) => v == cv,
                        _ => false,
                    };
                    if ok {
                        if let Some((cv, cc)) = current {
                            // Overwriting a back-end version the gateway never saw must keep it.
                            if seen.get(href) != Some(&cv)
                                && !crate::content::same_content(cc, content)
                            {
                                assert!(
                                    is_kept(cc),
                                    "unsynced back-end version overwritten and not kept"
                                );
                            }
                        }
                        let v = format!("\"{}\"", self.tick());
                        self.backend
                            .insert(href.clone(), (v.clone(), content.clone()));
                        acks.push((item_id.clone(), Some((href.clone(), v)), *settles, false));
                    }
                }
                Action::DeleteOnBackend {
                    item_id,
                    settles,
                    href,
                    if_match,
                } => {
                    if let Some((cv, cc)) = self.backend.get(href)
                        && cv == if_match
                    {
                        if seen.get(href) != Some(&cv) {
                            assert!(
                                is_kept(cc),
                                "unsynced back-end version deleted and not kept"
                            );
                        }
                        self.backend.remove(href);
                        acks.push((item_id.clone(), None, *settles, true));
                    }
                }
                _ => {}
            }
        }
        if crash {
            // The connector died before its change packet reached the gateway.
            return;
        }
        for a in actions {
            match a {
                Action::Import {
                    item_id,
                    copy,
                    settles,
                } => {
                    let uid = crate::content::uid(&copy.content).unwrap_or_default();
                    let key = item_id.unwrap_or_else(|| id(&format!("i{}", self.tick())));
                    if let Some(g) = self.gateway.get(&key)
                        && let (Some(p), Some(c)) = (g.pending, &g.content)
                        && (settles != Some(p) || !crate::content::same_content(c, &copy.content))
                    {
                        assert!(
                            is_kept(c),
                            "unsynced gateway version overwritten and not kept"
                        );
                    }
                    let entry = self.gateway.entry(key).or_insert(GItem {
                        uid,
                        content: None,
                        backend_href: None,
                        backend_version: None,
                        pending: None,
                        changed_at: 0,
                    });
                    entry.content = Some(copy.content);
                    entry.backend_href = Some(copy.href);
                    entry.backend_version = Some(copy.version);
                    if entry.pending == settles {
                        entry.pending = None;
                    }
                }
                Action::DeleteOnGateway { item_id, .. } => {
                    if let Some(g) = self.gateway.remove(&item_id)
                        && let (Some(_), Some(c)) = (g.pending, &g.content)
                    {
                        assert!(is_kept(c), "unsynced gateway version deleted and not kept");
                    }
                }
                Action::RecordVersion {
                    item_id,
                    href,
                    version,
                    settles,
                } => {
                    if let Some(g) = self.gateway.get_mut(&item_id) {
                        g.backend_href = Some(href);
                        g.backend_version = Some(version);
                        if g.pending == settles {
                            g.pending = None;
                        }
                    }
                }
                Action::Acknowledge { item_id, settles } => {
                    if let Some(g) = self.gateway.get_mut(&item_id)
                        && g.pending == Some(settles)
                    {
                        g.pending = None;
                        if g.content.is_none() {
                            self.gateway.remove(&item_id);
                        }
                    }
                }
                Action::Detach { item_id } => {
                    if let Some(g) = self.gateway.get_mut(&item_id) {
                        g.backend_href = None;
                        g.backend_version = None;
                    }
                }
                Action::Keep(l) => self.kept.push(l),
                Action::Put { .. } | Action::DeleteOnBackend { .. } => {}
            }
        }
        for (item_id, written, settles, deleted) in acks {
            if deleted {
                if self
                    .gateway
                    .get(&item_id)
                    .is_some_and(|g| g.pending == Some(settles))
                {
                    self.gateway.remove(&item_id);
                }
            } else if let Some(g) = self.gateway.get_mut(&item_id) {
                let (h, v) = written.unwrap();
                g.backend_href = Some(h);
                g.backend_version = Some(v);
                if g.pending == Some(settles) {
                    g.pending = None;
                }
            }
        }
    }

    fn settle(&mut self, mode: Mode, policy: ConflictPolicy) {
        for _ in 0..4 {
            self.sync(mode, policy, false);
        }
    }
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Two-way: after any interleaving (crashes included) and a few quiet rounds, both
    /// stores hold the same items, once each, and nothing is left pending.
    #[test]
    fn two_way_converges_without_loss(ops in proptest::collection::vec(op(), 1..40), policy in prop_oneof![
        Just(ConflictPolicy::BackendWins), Just(ConflictPolicy::GatewayWins), Just(ConflictPolicy::NewestWins), Just(ConflictPolicy::Merge)]) {
        let mut w = World::default();
        for o in &ops { w.apply(o, Mode::TwoWay, policy); }
        w.settle(Mode::TwoWay, policy);
        let gw: Vec<Vec<u8>> = w.gateway.values().filter_map(|g| g.content.clone()).collect();
        let be: Vec<Vec<u8>> = w.backend.values().map(|(_, c)| c.clone()).collect();
        prop_assert_eq!(sorted(gw), sorted(be));
        prop_assert!(w.gateway.values().all(|g| g.pending.is_none()));
        prop_assert!(w.gateway.values().all(|g| g.content.is_some()), "tombstones are purged");
    }

    /// Mirror: the gateway ends as an exact copy of the back end; gateway edits are kept as conflicts.
    #[test]
    fn mirror_becomes_a_copy(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::default();
        for o in &ops { w.apply(o, Mode::Mirror, ConflictPolicy::GatewayWins); }
        let before = w.backend.clone();
        w.settle(Mode::Mirror, ConflictPolicy::GatewayWins);
        prop_assert_eq!(&before, &w.backend, "mirror never writes to the back end");
        let gw: Vec<Vec<u8>> = w.gateway.values().filter_map(|g| g.content.clone()).collect();
        let be: Vec<Vec<u8>> = w.backend.values().map(|(_, c)| c.clone()).collect();
        prop_assert_eq!(sorted(gw), sorted(be));
    }

    /// Merge: every back-end item reaches the gateway (exactly one gateway item is bound
    /// to each back-end href; gateway edits stay local), and the back end is never written.
    #[test]
    fn merge_brings_everything_in(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::default();
        for o in &ops { w.apply(o, Mode::Merge, ConflictPolicy::BackendWins); }
        let before = w.backend.clone();
        w.settle(Mode::Merge, ConflictPolicy::BackendWins);
        prop_assert_eq!(&before, &w.backend);
        for h in w.backend.keys() {
            let bound = w.gateway.values().filter(|g| g.backend_href.as_ref() == Some(h)).count();
            prop_assert_eq!(bound, 1, "{} bound {} times", h, bound);
        }
    }
}
