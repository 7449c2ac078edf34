use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::mailbox::{Read, check_expunges};
use super::moves::{Appeared, Vanished, pair};
use super::rematch::{Rematch, rematch};
use super::*;
use crate::guard::Guard;

fn flags(names: &str) -> Flags {
    Flags::decode(names)
}

#[test]
fn flags_are_canonical_and_recent_is_never_synced() {
    let f = Flags::parse([
        "\\seen",
        "\\SEEN",
        "$Forwarded",
        "$forwarded",
        "\\Recent",
        "Work",
    ]);
    assert_eq!(f.encode(), "$forwarded \\Seen work");
    assert_eq!(Flags::decode(&f.encode()), f, "the stored form reads back");
    assert_eq!(Flag::new("\\Unknown"), None, "an unknown system flag");
    assert_eq!(Flag::new("a(b"), None, "not an atom");
    assert_eq!(Flag::new(""), None);
}

#[test]
fn both_sides_flag_changes_survive() {
    let base = flags("\\Seen");
    // A phone reads and flags nothing; the office flags the message and un-reads it.
    let gateway = flags("\\Seen \\Answered");
    let backend = flags("\\Flagged");
    assert_eq!(
        merge_flags(&base, &backend, &gateway),
        flags("\\Answered \\Flagged")
    );
    // A flag removed on one side and untouched on the other is removed.
    assert_eq!(
        merge_flags(
            &flags("\\Seen \\Flagged"),
            &flags("\\Seen"),
            &flags("\\Seen \\Flagged")
        ),
        flags("\\Seen")
    );
    // The delta is what STORE +FLAGS / -FLAGS needs.
    let d = backend.delta(&flags("\\Answered \\Flagged"));
    assert_eq!(
        (d.add.encode(), d.remove.encode()),
        ("\\Answered".into(), String::new())
    );
}

fn merge_flags(base: &Flags, backend: &Flags, gateway: &Flags) -> Flags {
    flags::merge(base, backend, gateway)
}

#[test]
fn message_ids_come_from_the_header_only() {
    let m = b"From: a@b\r\nMessage-Id:\r\n  <x.1@example.com> (comment)\r\nSubject: hi\r\n\r\nMessage-ID: <body@example.com>\r\n";
    assert_eq!(key::message_id(m).as_deref(), Some("<x.1@example.com>"));
    let lf = b"Subject: hi\nMESSAGE-ID: <lf@example.com>\n\nbody";
    assert_eq!(key::message_id(lf).as_deref(), Some("<lf@example.com>"));
    let in_body = b"Subject: hi\r\n\r\nMessage-ID: <body@example.com>\r\n";
    assert_eq!(key::message_id(in_body), None, "a body is never scanned");
    assert_eq!(key::message_id(b"Message-ID: <>\r\n\r\n"), None);
    assert_eq!(key::message_id(b""), None);
}

#[test]
fn the_same_message_id_with_other_bytes_is_another_message() {
    let a = b"Message-ID: <list@example.com>\r\nSubject: hi\r\n\r\nbody\r\n".as_slice();
    let b = b"Message-ID: <list@example.com>\r\nSubject: [list] hi\r\n\r\nbody\r\n".as_slice();
    let (ka, kb) = (MessageKey::of(a), MessageKey::of(b));
    assert_eq!(ka.message_id, kb.message_id);
    assert_ne!(ka, kb);
    // A retried APPEND looks at the server's candidates: only exactly the same bytes
    // are its first copy.
    assert_eq!(key::find_copy(&[(7u32, kb.clone())], &ka), None);
    assert_eq!(key::find_copy(&[(7u32, kb), (9, ka.clone())], &ka), Some(9));
}

#[test]
fn trash_may_be_emptied_other_mailboxes_pause() {
    let g = Guard::default();
    assert_eq!(check_expunges(&g, Some(Role::Trash), 500, 500), None);
    assert_eq!(check_expunges(&g, Some(Role::Junk), 500, 500), None);
    assert!(check_expunges(&g, Some(Role::Inbox), 500, 500).is_some());
    assert!(check_expunges(&g, None, 500, 300).is_some());
    assert_eq!(check_expunges(&g, None, 500, 3), None);
    // A failed read is not an empty mailbox: it carries no listing at all.
    let failed: Read<Vec<u32>> = Read::Failed("SELECT: NO mailbox locked".into());
    assert!(!matches!(failed, Read::Complete(_)));
}

#[test]
fn roles_read_from_list_attributes() {
    assert_eq!(Role::from_attribute("\\Sent"), Some(Role::Sent));
    assert_eq!(Role::from_attribute("\\junk"), Some(Role::Junk));
    assert_eq!(Role::from_attribute("\\HasChildren"), None);
    for r in [
        Role::Inbox,
        Role::Drafts,
        Role::Archive,
        Role::All,
        Role::Flagged,
    ] {
        assert_eq!(Role::parse(r.as_str()), Some(r));
    }
    assert!(Role::Drafts.content_editable() && !Role::Inbox.content_editable());
}

// ---- property tests ----

const NAMES: &[&str] = &[
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Draft",
    "$label1",
    "work",
];

fn flag_set() -> impl Strategy<Value = Flags> {
    proptest::sample::subsequence(NAMES.to_vec(), 0..=NAMES.len()).prop_map(Flags::parse)
}

fn key_of(n: u8) -> MessageKey {
    MessageKey::of(format!("Message-ID: <{}@x>\r\n\r\nbody {n}\r\n", n % 3).as_bytes())
}

proptest! {
    /// A key computed over a message's parts, cut anywhere, is the key of the whole.
    #[test]
    fn a_key_over_parts_is_the_key_of_the_whole(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(0usize..4096, 0..8),
    ) {
        let mut message = b"Subject: x\r\nMessage-ID: <parts@example.com>\r\n\r\n".to_vec();
        message.extend_from_slice(&body);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(message.len())).collect();
        cuts.sort_unstable();
        let mut h = MessageKey::hasher();
        let mut at = 0;
        for c in cuts.into_iter().chain([message.len()]) {
            h.update(&message[at..c]);
            at = c;
        }
        prop_assert_eq!(h.finish(), MessageKey::of(&message));
    }
}

proptest! {

    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Per flag: the side that changed it decides; unchanged on both, the base stays.
    /// Symmetric, and merging a side with itself gives that side.
    #[test]
    fn flag_merge_keeps_every_change(base in flag_set(), b in flag_set(), g in flag_set()) {
        let m = merge_flags(&base, &b, &g);
        for name in NAMES {
            let f = Flag::new(name).unwrap();
            let want = if b.has(&f) != base.has(&f) { b.has(&f) }
                else if g.has(&f) != base.has(&f) { g.has(&f) }
                else { base.has(&f) };
            prop_assert_eq!(m.has(&f), want, "{}", name);
        }
        prop_assert_eq!(&m, &merge_flags(&base, &g, &b));
        prop_assert_eq!(merge_flags(&base, &b, &b), b.clone());
        prop_assert_eq!(merge_flags(&base, &base, &g), g.clone());
        // Applying the deltas brings both sides to the merge.
        for side in [&b, &g] {
            let d = side.delta(&m);
            let mut after = side.clone();
            for f in d.add.iter() { after.insert(f.clone()); }
            for f in d.remove.iter() { after.remove(f); }
            prop_assert_eq!(&after, &m);
        }
    }

    /// Two sides changing flags over many rounds, merged each round against the last
    /// synced flags, end equal, and a side's last change of a flag in a round is never
    /// undone unless the other side changed that flag too (to the same value).
    #[test]
    fn flag_rounds_converge(rounds in proptest::collection::vec((flag_set(), flag_set()), 1..8)) {
        let mut base = Flags::default();
        for (b, g) in rounds {
            let m = merge_flags(&base, &b, &g);
            for f in b.iter().chain(g.iter()) {
                let changed_b = b.has(f) != base.has(f);
                let changed_g = g.has(f) != base.has(f);
                if changed_b { prop_assert_eq!(m.has(f), b.has(f)); }
                if changed_g { prop_assert_eq!(m.has(f), g.has(f)); }
            }
            base = m;
        }
    }

    /// A mailbox whose UIDs were all renumbered, with some messages expunged and some
    /// new, is re-keyed: every message still there pairs with a UID holding the same
    /// content, one to one; nothing is paired twice; the mailbox counts as another one
    /// exactly when fewer than half the known messages were found.
    #[test]
    fn rematch_pairs_by_content_one_to_one(
        known in proptest::collection::vec(0u8..12, 0..30),
        keep in proptest::collection::vec(any::<bool>(), 30),
        added in proptest::collection::vec(0u8..12, 0..10),
        shuffle in any::<u64>(),
    ) {
        let known: Vec<(usize, MessageKey)> = known.iter().enumerate().map(|(i, n)| (i, key_of(*n))).collect();
        let mut listing: Vec<MessageKey> = known.iter().zip(&keep).filter(|(_, k)| **k).map(|((_, key), _)| key.clone()).collect();
        listing.extend(added.iter().map(|n| key_of(*n)));
        // Renumber in a scrambled order.
        let mut order: Vec<usize> = (0..listing.len()).collect();
        order.sort_by_key(|i| (*i as u64).wrapping_mul(shuffle | 1) % 1_000_003);
        let listing: Vec<(u32, MessageKey)> = order.iter().enumerate().map(|(uid, i)| (uid as u32 + 1, listing[*i].clone())).collect();

        let count = |v: &mut dyn Iterator<Item = MessageKey>| v.fold(BTreeMap::<MessageKey, usize>::new(), |mut m, k| { *m.entry(k).or_default() += 1; m });
        let have = count(&mut known.iter().map(|(_, k)| k.clone()));
        let now = count(&mut listing.iter().map(|(_, k)| k.clone()));
        let matchable: usize = have.iter().map(|(k, n)| (*n).min(*now.get(k).unwrap_or(&0))).sum();

        match rematch(&known, &listing) {
            Rematch::Same { pairs, gone, arrived } => {
                prop_assert!(known.is_empty() || matchable * 100 >= known.len() * rematch::SAME_PERCENT);
                prop_assert_eq!(pairs.len(), matchable);
                prop_assert_eq!(pairs.len() + gone.len(), known.len());
                prop_assert_eq!(pairs.len() + arrived.len(), listing.len());
                let keys: BTreeMap<u32, &MessageKey> = listing.iter().map(|(u, k)| (*u, k)).collect();
                let mut used = BTreeSet::new();
                for (id, uid) in &pairs {
                    prop_assert_eq!(keys[uid], &known[*id].1, "paired by content");
                    prop_assert!(used.insert(*uid), "a UID paired twice");
                }
                for uid in &arrived {
                    prop_assert!(used.insert(*uid), "an arrived UID also paired");
                }
            }
            Rematch::Different { known: k, matched } => {
                prop_assert_eq!(k, known.len());
                prop_assert_eq!(matched, matchable);
                prop_assert!(matchable * 100 < known.len() * rematch::SAME_PERCENT);
            }
        }
    }

    /// Every vanished message is either moved or gone, every new one either the
    /// target of a move or arrived; a move joins equal content; as many moves as the
    /// two sides share copies.
    #[test]
    fn moves_pair_equal_content(
        vanished in proptest::collection::vec((0u8..3, 0u8..8), 0..12),
        appeared in proptest::collection::vec((0u8..3, 0u8..8), 0..12),
    ) {
        let v: Vec<Vanished<u8, usize>> = vanished.iter().enumerate().map(|(i, (m, n))| Vanished { mailbox: *m, item: i, key: key_of(*n) }).collect();
        let a: Vec<Appeared<u8, u32>> = appeared.iter().enumerate().map(|(i, (m, n))| Appeared { mailbox: *m, uid: i as u32, key: key_of(*n) }).collect();
        let p = pair(v.clone(), a.clone());
        prop_assert_eq!(p.moved.len() + p.gone.len(), v.len());
        prop_assert_eq!(p.moved.len() + p.arrived.len(), a.len());
        let mut shared = 0;
        let left: Vec<MessageKey> = a.iter().map(|x| x.key.clone()).collect();
        let mut left = left;
        for x in &v {
            if let Some(i) = left.iter().position(|k| *k == x.key) { left.remove(i); shared += 1; }
        }
        prop_assert_eq!(p.moved.len(), shared);
        for m in &p.moved {
            prop_assert_eq!(&v[m.item].key, &a[m.uid as usize].key);
            prop_assert_eq!(m.from, v[m.item].mailbox);
            prop_assert_eq!(m.to, a[m.uid as usize].mailbox);
        }
    }
}
