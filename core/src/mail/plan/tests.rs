use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::mail::Flag;

fn f(names: &str) -> Flags {
    Flags::decode(names)
}

fn id(n: u32) -> ItemId {
    ItemId::new(format!("item-{n}")).unwrap()
}

fn key(n: u32) -> MessageKey {
    MessageKey::of(format!("Message-ID: <{n}@x>\r\n\r\nbody {n}\r\n").as_bytes())
}

fn steps(r: &MailRound<'_>) -> Vec<Step> {
    match plan(r, &Guard::default()) {
        MailPlan::Steps(s) => s,
        MailPlan::Paused(why) => panic!("paused: {why}"),
    }
}

fn round<'a>(
    mode: Mode,
    index: &'a [Known],
    backend: &'a [BackendSeen],
    gateway: &'a [GatewaySeen],
) -> MailRound<'a> {
    MailRound {
        mode,
        role: None,
        index,
        indexed: index.len(),
        backend,
        gateway,
    }
}

/// A round that pulled only the messages it names weighs what vanished against the
/// whole mailbox: six expunges of a thousand messages are no mass deletion, six of
/// six are.
#[test]
fn the_guard_weighs_vanished_messages_against_the_whole_index() {
    let index: Vec<Known> = (1..=6)
        .map(|n| Known {
            item: id(n),
            uid: n,
            base: Flags::default(),
            current: Flags::default(),
            modseq: 1,
        })
        .collect();
    let backend: Vec<BackendSeen> = (1..=6).map(BackendSeen::Vanished).collect();
    let mut r = round(Mode::TwoWay, &index, &backend, &[]);
    assert!(matches!(plan(&r, &Guard::default()), MailPlan::Paused(_)));
    r.indexed = 1_000;
    let MailPlan::Steps(steps) = plan(&r, &Guard::default()) else {
        panic!("six of a thousand messages expunged is no mass deletion");
    };
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::Remove { .. }))
            .count(),
        6
    );
}

#[test]
fn flag_changes_on_both_sides_merge_and_move_no_body() {
    let index = [Known {
        item: id(1),
        uid: 7,
        base: f("\\Seen"),
        modseq: 10,
        current: f("\\Seen"),
    }];
    let backend = [BackendSeen::Flags {
        uid: 7,
        flags: f("\\Seen \\Flagged"),
        modseq: 11,
        key: None,
    }];
    let gateway = [GatewaySeen::Flags {
        item: id(1),
        flags: f("\\Seen \\Answered"),
        seq: Seq(3),
    }];
    let s = steps(&round(Mode::TwoWay, &index, &backend, &gateway));
    let both = f("\\Seen \\Flagged \\Answered");
    assert!(s.contains(&Step::Store {
        item: id(1),
        uid: 7,
        delta: FlagDelta {
            add: f("\\Answered"),
            remove: Flags::default()
        },
        unchanged_since: 11,
        result: both.clone(),
        settles: Some(Seq(3)),
    }));
    assert!(s.contains(&Step::SetFlags {
        item: id(1),
        flags: both.clone()
    }));
    assert!(
        !s.iter()
            .any(|x| matches!(x, Step::Import { .. } | Step::Append { .. })),
        "no body moves: {s:?}"
    );
}

#[test]
fn expunges_win_and_modes_decide_where_they_go() {
    let index = [Known {
        item: id(1),
        uid: 7,
        base: f(""),
        modseq: 1,
        current: f(""),
    }];
    let vanished = [BackendSeen::Vanished(7)];
    let read = [GatewaySeen::Flags {
        item: id(1),
        flags: f("\\Seen"),
        seq: Seq(2),
    }];
    // Expunged there, read here: gone here too.
    let s = steps(&round(Mode::TwoWay, &index, &vanished, &read));
    assert_eq!(s[0], Step::Remove { item: id(1) });
    // `merge`: the gateway keeps its copy.
    let s = steps(&round(Mode::Merge, &index, &vanished, &[]));
    assert_eq!(
        s,
        vec![Step::Forget {
            item: id(1),
            settles: None
        }]
    );
    // Expunged here: expunged there (two-way), brought back (mirror).
    let gone = [GatewaySeen::Expunged {
        item: id(1),
        seq: Seq(4),
        moved: false,
    }];
    assert_eq!(
        steps(&round(Mode::TwoWay, &index, &[], &gone)),
        vec![Step::Expunge {
            item: id(1),
            uid: 7,
            settles: Seq(4)
        }]
    );
    let s = steps(&round(Mode::Mirror, &index, &[], &gone));
    assert!(s.contains(&Step::Import {
        uid: 7,
        flags: f("")
    }));
}

#[test]
fn a_crashed_append_is_found_again_not_appended_twice() {
    let gateway = [GatewaySeen::Appended {
        item: id(5),
        flags: f("\\Seen \\Draft"),
        key: key(5),
        seq: Seq(9),
        from: None,
    }];
    // The back end holds it already (APPEND done, its acknowledgement lost).
    let backend = [BackendSeen::Flags {
        uid: 40,
        flags: f("\\Seen"),
        modseq: 3,
        key: Some(key(5)),
    }];
    let s = steps(&round(Mode::TwoWay, &[], &backend, &gateway));
    assert!(
        !s.iter()
            .any(|x| matches!(x, Step::Append { .. } | Step::Import { .. })),
        "{s:?}"
    );
    assert!(s.contains(&Step::Record {
        item: id(5),
        uid: 40,
        base: f("\\Seen \\Draft"),
        modseq: 3,
        settles: Some(Seq(9)),
    }));
    // Another message with the same Message-ID but other bytes is not it.
    let other = [BackendSeen::Flags {
        uid: 41,
        flags: f(""),
        modseq: 3,
        key: Some(MessageKey { size: 1, ..key(5) }),
    }];
    let s = steps(&round(Mode::TwoWay, &[], &other, &gateway));
    assert!(s.iter().any(|x| matches!(x, Step::Append { .. })));
    assert!(s.iter().any(|x| matches!(x, Step::Import { uid: 41, .. })));
}

#[test]
fn changes_to_a_message_the_back_end_never_had_are_settled() {
    let gateway = [GatewaySeen::Expunged {
        item: id(8),
        seq: Seq(3),
        moved: false,
    }];
    assert_eq!(
        steps(&round(Mode::TwoWay, &[], &[], &gateway)),
        vec![Step::Settle {
            item: id(8),
            seq: Seq(3)
        }]
    );
}

#[test]
fn emptying_trash_is_normal_an_empty_inbox_pauses() {
    let index: Vec<Known> = (0..20)
        .map(|n| Known {
            item: id(n),
            uid: n + 1,
            base: f(""),
            modseq: 1,
            current: f(""),
        })
        .collect();
    let all_gone: Vec<BackendSeen> = (0..20).map(|n| BackendSeen::Vanished(n + 1)).collect();
    let mut r = round(Mode::TwoWay, &index, &all_gone, &[]);
    assert!(matches!(plan(&r, &Guard::default()), MailPlan::Paused(_)));
    r.role = Some(Role::Trash);
    assert!(matches!(plan(&r, &Guard::default()), MailPlan::Steps(s) if s.len() == 20));
}

// ---- the simulation ----

/// A message's content, by number (unique per message made).
type Content = u32;

#[derive(Debug, Clone, Default)]
struct World {
    /// The back end: UID → (content, flags, MODSEQ).
    backend: BTreeMap<u32, (Content, Flags, u64)>,
    next_uid: u32,
    modseq: u64,
    /// MODSEQ the connector has seen up to.
    seen_modseq: u64,
    /// The gateway: item → (content, flags, live).
    gateway: BTreeMap<ItemId, (Content, Flags, bool)>,
    /// Gateway changes not yet settled, by item.
    pending: BTreeMap<ItemId, GatewaySeen>,
    next_item: u32,
    next_seq: u64,
    index: BTreeMap<ItemId, Known>,
    next_content: Content,
    /// How many times each content was imported to the gateway and appended to the
    /// back end.
    imported: BTreeMap<Content, u32>,
    appended: BTreeMap<Content, u32>,
    /// Contents a client expunged on the gateway.
    client_deleted: std::collections::BTreeSet<Content>,
    /// Contents expunged on the back end by someone else.
    server_deleted: std::collections::BTreeSet<Content>,
    /// Flags (content, flag) someone toggled on the back end, and the last value a
    /// client gave a flag on the gateway.
    server_touched: std::collections::BTreeSet<(Content, u8)>,
    client_set: BTreeMap<(Content, u8), bool>,
}

#[derive(Debug, Clone)]
enum Op {
    BackendToggle(u8, u8),
    BackendExpunge(u8),
    BackendNew,
    GatewayToggle(u8, u8),
    GatewayExpunge(u8),
    GatewayAppend,
    /// A round, cut after its back-end writes when true.
    Round(bool),
}

const FLAGS: &[&str] = &["\\Seen", "\\Flagged", "\\Answered", "$work"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), 0..4u8).prop_map(|(a, b)| Op::BackendToggle(a, b)),
        any::<u8>().prop_map(Op::BackendExpunge),
        Just(Op::BackendNew),
        (any::<u8>(), 0..4u8).prop_map(|(a, b)| Op::GatewayToggle(a, b)),
        any::<u8>().prop_map(Op::GatewayExpunge),
        Just(Op::GatewayAppend),
        any::<bool>().prop_map(Op::Round),
    ]
}

fn content_key(c: Content) -> MessageKey {
    key(c)
}

impl World {
    fn bump(&mut self) -> u64 {
        self.modseq += 1;
        self.modseq
    }

    fn seq(&mut self) -> Seq {
        self.next_seq += 1;
        Seq(self.next_seq)
    }

    fn apply(&mut self, op: &Op, mode: Mode) {
        match *op {
            Op::BackendToggle(n, fl) => {
                let uids: Vec<u32> = self.backend.keys().copied().collect();
                if uids.is_empty() {
                    return;
                }
                let uid = uids[n as usize % uids.len()];
                let m = self.bump();
                let entry = self.backend.get_mut(&uid).unwrap();
                toggle(&mut entry.1, fl);
                entry.2 = m;
                let c = entry.0;
                self.server_touched.insert((c, fl % FLAGS.len() as u8));
            }
            Op::BackendExpunge(n) => {
                let uids: Vec<u32> = self.backend.keys().copied().collect();
                if !uids.is_empty()
                    && let Some((c, _, _)) = self.backend.remove(&uids[n as usize % uids.len()])
                {
                    self.server_deleted.insert(c);
                }
            }
            Op::BackendNew => {
                self.next_content += 1;
                self.next_uid += 1;
                let m = self.bump();
                self.backend
                    .insert(self.next_uid, (self.next_content, Flags::default(), m));
            }
            Op::GatewayToggle(n, fl) => {
                let live: Vec<ItemId> = self.live();
                if live.is_empty() {
                    return;
                }
                let item = live[n as usize % live.len()].clone();
                let seq = self.seq();
                let entry = self.gateway.get_mut(&item).unwrap();
                toggle(&mut entry.1, fl);
                let flags = entry.1.clone();
                let fl = fl % FLAGS.len() as u8;
                let set = flags.has(&Flag::new(FLAGS[fl as usize]).unwrap());
                self.client_set.insert((entry.0, fl), set);
                let change = match self.pending.get(&item) {
                    Some(GatewaySeen::Appended { key, .. }) => GatewaySeen::Appended {
                        item: item.clone(),
                        flags,
                        key: key.clone(),
                        seq,
                        from: None,
                    },
                    _ => GatewaySeen::Flags {
                        item: item.clone(),
                        flags,
                        seq,
                    },
                };
                self.pending.insert(item, change);
            }
            Op::GatewayExpunge(n) => {
                let live = self.live();
                if live.is_empty() {
                    return;
                }
                let item = live[n as usize % live.len()].clone();
                let seq = self.seq();
                self.gateway.get_mut(&item).unwrap().2 = false;
                let content = self.gateway[&item].0;
                self.client_deleted.insert(content);
                if matches!(self.pending.get(&item), Some(GatewaySeen::Appended { .. })) {
                    // Never reached the back end: nothing to do there.
                    self.pending.remove(&item);
                } else {
                    self.pending.insert(
                        item.clone(),
                        GatewaySeen::Expunged {
                            item,
                            seq,
                            moved: false,
                        },
                    );
                }
            }
            Op::GatewayAppend => {
                self.next_content += 1;
                self.next_item += 1;
                let item = ItemId::new(format!("gw-{}", self.next_item)).unwrap();
                let seq = self.seq();
                self.gateway
                    .insert(item.clone(), (self.next_content, f("\\Seen"), true));
                self.pending.insert(
                    item.clone(),
                    GatewaySeen::Appended {
                        item,
                        flags: f("\\Seen"),
                        key: content_key(self.next_content),
                        seq,
                        from: None,
                    },
                );
            }
            Op::Round(cut) => self.round(mode, cut),
        }
    }

    fn live(&self) -> Vec<ItemId> {
        self.gateway
            .iter()
            .filter(|(_, v)| v.2)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// What the connector reads of the back end: every UID changed since it last
    /// looked, and the known UIDs that are gone.
    fn observe(&self) -> Vec<BackendSeen> {
        let known: BTreeMap<u32, &Known> = self.index.values().map(|k| (k.uid, k)).collect();
        let mut out: Vec<BackendSeen> = self
            .backend
            .iter()
            .filter(|(uid, v)| v.2 > self.seen_modseq || !known.contains_key(uid))
            .map(|(uid, (c, flags, m))| BackendSeen::Flags {
                uid: *uid,
                flags: flags.clone(),
                modseq: *m,
                key: (!known.contains_key(uid)).then(|| content_key(*c)),
            })
            .collect();
        out.extend(
            known
                .keys()
                .filter(|u| !self.backend.contains_key(u))
                .map(|u| BackendSeen::Vanished(*u)),
        );
        out
    }

    fn round(&mut self, mode: Mode, cut: bool) {
        let backend = self.observe();
        let gateway: Vec<GatewaySeen> = self.pending.values().cloned().collect();
        // The index as the gateway sends it: with each message's flags there now.
        let index: Vec<Known> = self
            .index
            .values()
            .cloned()
            .map(|mut k| {
                k.current = self.gateway[&k.item].1.clone();
                k
            })
            .collect();
        let r = MailRound {
            mode,
            role: Some(Role::Trash),
            index: &index,
            indexed: index.len(),
            backend: &backend,
            gateway: &gateway,
        };
        let MailPlan::Steps(steps) = plan(&r, &Guard::default()) else {
            panic!("a Trash mailbox never pauses");
        };
        // The packet: what the gateway learns, applied only if the round is not cut.
        let mut packet: Vec<Step> = Vec::new();
        // The MODSEQ a STORE's answer reports, recorded instead of the one read.
        let mut stored: BTreeMap<ItemId, u64> = BTreeMap::new();
        for s in steps {
            match s {
                Step::Store {
                    item,
                    uid,
                    delta,
                    unchanged_since,
                    ..
                } => {
                    let now = self.backend.get(&uid).expect("stored UID exists").2;
                    if unchanged_since != 0 && now > unchanged_since {
                        // [MODIFIED]: the round stops and the next one reads again.
                        return;
                    }
                    let m = self.bump();
                    let entry = self.backend.get_mut(&uid).unwrap();
                    for fl in delta.add.iter() {
                        entry.1.insert(fl.clone());
                    }
                    for fl in delta.remove.iter() {
                        entry.1.remove(fl);
                    }
                    entry.2 = m;
                    stored.insert(item, m);
                }
                Step::Expunge { item, uid, settles } => {
                    self.backend.remove(&uid);
                    packet.push(Step::Expunge { item, uid, settles });
                }
                Step::Append {
                    item,
                    flags,
                    settles,
                    ..
                } => {
                    let content = self.gateway[&item].0;
                    *self.appended.entry(content).or_default() += 1;
                    self.next_uid += 1;
                    let m = self.bump();
                    self.backend
                        .insert(self.next_uid, (content, flags.clone(), m));
                    packet.push(Step::Record {
                        item,
                        uid: self.next_uid,
                        base: flags,
                        modseq: m,
                        settles: Some(settles),
                    });
                }
                other => packet.push(other),
            }
        }
        if cut {
            return;
        }
        for mut s in packet {
            if let Step::Record { item, modseq, .. } = &mut s
                && let Some(m) = stored.get(item)
            {
                *modseq = *m;
            }
            self.record(s);
        }
        self.seen_modseq = self.modseq;
    }

    fn settle(&mut self, item: &ItemId, seq: Option<Seq>) {
        let Some(seq) = seq else { return };
        let current = self.pending.get(item).map(|g| match g {
            GatewaySeen::Flags { seq, .. }
            | GatewaySeen::Expunged { seq, .. }
            | GatewaySeen::Appended { seq, .. } => *seq,
        });
        if current == Some(seq) {
            self.pending.remove(item);
        }
    }

    fn record(&mut self, s: Step) {
        match s {
            Step::SetFlags { item, flags } => {
                self.gateway.get_mut(&item).unwrap().1 = flags;
            }
            Step::Import { uid, flags } => {
                let (content, _, m) = self.backend[&uid].clone();
                *self.imported.entry(content).or_default() += 1;
                self.next_item += 1;
                let item = ItemId::new(format!("be-{}", self.next_item)).unwrap();
                self.gateway
                    .insert(item.clone(), (content, flags.clone(), true));
                self.index.insert(
                    item.clone(),
                    Known {
                        item,
                        uid,
                        current: flags.clone(),
                        base: flags,
                        modseq: m,
                    },
                );
            }
            Step::Remove { item } => {
                self.gateway.get_mut(&item).unwrap().2 = false;
                self.index.remove(&item);
                self.pending.remove(&item);
            }
            Step::Record {
                item,
                uid,
                base,
                modseq,
                settles,
            } => {
                self.index.insert(
                    item.clone(),
                    Known {
                        item: item.clone(),
                        uid,
                        current: base.clone(),
                        base,
                        modseq,
                    },
                );
                self.settle(&item, settles);
            }
            Step::Forget { item, settles } => {
                self.index.remove(&item);
                self.settle(&item, settles);
            }
            Step::Settle { item, seq } => self.settle(&item, Some(seq)),
            Step::KeepAndRemove { item, settles } => {
                self.gateway.get_mut(&item).unwrap().2 = false;
                self.settle(&item, Some(settles));
            }
            Step::Expunge { item, settles, .. } => {
                self.index.remove(&item);
                self.settle(&item, Some(settles));
            }
            Step::Store { .. } | Step::Append { .. } => unreachable!("back-end steps"),
        }
    }

    /// Each side's messages: content → flags.
    fn sides(&self) -> (BTreeMap<Content, Flags>, BTreeMap<Content, Flags>) {
        let mut b = BTreeMap::new();
        for (c, flags, _) in self.backend.values() {
            assert!(
                b.insert(*c, flags.clone()).is_none(),
                "content {c} twice on the back end"
            );
        }
        let mut g = BTreeMap::new();
        for (c, flags, live) in self.gateway.values() {
            if *live {
                assert!(
                    g.insert(*c, flags.clone()).is_none(),
                    "content {c} twice on the gateway"
                );
            }
        }
        (b, g)
    }
}

fn toggle(flags: &mut Flags, n: u8) {
    let fl = Flag::new(FLAGS[n as usize % FLAGS.len()]).unwrap();
    if flags.has(&fl) {
        flags.remove(&fl);
    } else {
        flags.insert(fl);
    }
}

/// Applies `ops`, then quiet rounds until everything is settled.
fn run(ops: &[Op], mode: Mode) -> World {
    let mut w = World::default();
    for op in ops {
        w.apply(op, mode);
        w.sides();
    }
    // Quiet rounds: everything settles.
    for _ in 0..3 {
        w.round(mode, false);
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Two-way: whatever both sides did, with rounds cut after their back-end writes,
    /// the two sides end with the same messages and flags, nothing duplicated, a
    /// crashed append found again instead of appended twice, and nothing left pending.
    #[test]
    fn two_way_converges(ops in proptest::collection::vec(op(), 0..40)) {
        let w = run(&ops, Mode::TwoWay);
        let (b, g) = w.sides();
        prop_assert_eq!(&b, &g);
        prop_assert!(w.pending.is_empty(), "{:?}", w.pending);
        // Once, unless an append whose acknowledgement was lost was then expunged on
        // the back end: nothing is left to find, and the client's message is
        // appended again rather than lost.
        for (c, n) in &w.appended {
            prop_assert!(*n == 1 || w.server_deleted.contains(c), "content {} appended {} times", c, n);
        }
    }

    /// Mirror: the gateway ends a copy of the back end.
    #[test]
    fn mirror_makes_a_copy(ops in proptest::collection::vec(op(), 0..40)) {
        let w = run(&ops, Mode::Mirror);
        let (b, g) = w.sides();
        prop_assert_eq!(&b, &g);
        prop_assert!(w.appended.is_empty(), "mirror never writes the back end");
    }

    /// Merge: everything on the back end reaches the gateway, nothing is written to
    /// the back end.
    #[test]
    fn merge_brings_everything_in_and_writes_nothing(ops in proptest::collection::vec(op(), 0..40)) {
        let w = run(&ops, Mode::Merge);
        let (b, g) = w.sides();
        for (c, flags) in &b {
            if !w.client_deleted.contains(c) {
                prop_assert!(g.contains_key(c), "content {} missing on the gateway", c);
            }
            let Some(mine) = g.get(c) else { continue };
            // Per flag: one only the back end changed reads as the back end's; one
            // only a client changed keeps the client's value, whatever the back end
            // later did to the message's other flags.
            for (i, name) in FLAGS.iter().enumerate() {
                let fl = Flag::new(name).unwrap();
                let server = w.server_touched.contains(&(*c, i as u8));
                match (server, w.client_set.get(&(*c, i as u8))) {
                    (true, None) => prop_assert_eq!(mine.has(&fl), flags.has(&fl), "content {} flag {}", c, name),
                    (false, Some(set)) => prop_assert_eq!(mine.has(&fl), *set, "content {} flag {}", c, name),
                    _ => {}
                }
            }
        }
        prop_assert!(w.appended.is_empty());
    }
}

/// `merge`: a flag a client set on the gateway stays when the back end later changes
/// that message's other flags (the index carries the gateway's flags beside the base).
#[test]
fn merge_keeps_a_gateway_only_flag_when_the_back_end_changes_another() {
    let mut w = World::default();
    for op in [
        Op::BackendNew,
        Op::Round(false),
        Op::GatewayToggle(0, 1),
        Op::Round(false),
        Op::BackendToggle(0, 0),
        Op::Round(false),
    ] {
        w.apply(&op, Mode::Merge);
    }
    let (b, g) = w.sides();
    assert_eq!(b[&1], f("\\Seen"));
    assert_eq!(g[&1], f("\\Seen \\Flagged"));
}

/// A client's move: the source does not expunge (the move takes the message), the
/// destination moves it on the back end, and a crashed move found in the destination
/// by content is recorded, never moved or appended again.
#[test]
fn a_move_is_made_by_the_destination_and_never_twice() {
    let index = [Known {
        item: id(1),
        uid: 7,
        base: f("\\Seen"),
        current: f("\\Seen"),
        modseq: 3,
    }];
    let moved_away = [GatewaySeen::Expunged {
        item: id(1),
        seq: Seq(4),
        moved: true,
    }];
    assert_eq!(
        steps(&round(Mode::TwoWay, &index, &[], &moved_away)),
        vec![Step::Settle {
            item: id(1),
            seq: Seq(4)
        }],
        "the source leaves the message to the move"
    );
    let origin = Origin {
        mailbox: "/INBOX".into(),
        uidvalidity: 9,
        uid: 7,
    };
    let arrived = [GatewaySeen::Appended {
        item: id(2),
        flags: f("\\Seen"),
        key: key(1),
        seq: Seq(5),
        from: Some(origin.clone()),
    }];
    assert_eq!(
        steps(&round(Mode::TwoWay, &[], &[], &arrived)),
        vec![Step::Append {
            item: id(2),
            flags: f("\\Seen"),
            settles: Seq(5),
            from: Some(origin),
        }]
    );
    // The move was made, its answer lost: the destination holds it under a UID the
    // index does not know; it is paired by content.
    let there = [BackendSeen::Flags {
        uid: 40,
        flags: f("\\Seen"),
        modseq: 8,
        key: Some(key(1)),
    }];
    let s = steps(&round(Mode::TwoWay, &[], &there, &arrived));
    assert_eq!(
        s,
        vec![Step::Record {
            item: id(2),
            uid: 40,
            base: f("\\Seen"),
            modseq: 8,
            settles: Some(Seq(5)),
        }]
    );
}
