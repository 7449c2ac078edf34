//! QRESYNC (RFC 7162): a client that knew a mailbox at some MODSEQ learns, in one
//! SELECT or UID FETCH, what changed since and which of its UIDs are gone.
//!
//! What vanished is computed, not remembered: every UID of the client's known set
//! (or of the mailbox's whole UID range) that is not a live message now. That can
//! name UIDs the client already saw expunged, which the RFC allows (VANISHED
//! (EARLIER) may repeat), and it stays right however long ago the client last came,
//! since it needs no tombstones.
//!
//! Once QRESYNC is enabled, expunges are reported as VANISHED with UIDs instead of
//! EXPUNGE with sequence numbers ([`tell_expunged`]).

use std::num::NonZeroU32;

use imap_next::imap_types::core::Vec1;
use imap_next::imap_types::response::Data;
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_next::server::Server;

/// `uids` (in any order) as a compact set of ranges; `None` when empty.
pub fn uid_set(uids: &[u32]) -> Option<SequenceSet> {
    let mut sorted: Vec<u32> = uids.iter().copied().filter(|u| *u > 0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for u in sorted {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == u => *hi = u,
            _ => ranges.push((u, u)),
        }
    }
    set_of(&ranges)
}

fn set_of(ranges: &[(u32, u32)]) -> Option<SequenceSet> {
    let v = |n: u32| SeqOrUid::Value(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
    let seqs: Vec<Sequence> = ranges
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                Sequence::Single(v(*lo))
            } else {
                Sequence::Range(v(*lo), v(*hi))
            }
        })
        .collect();
    Vec1::try_from(seqs).ok().map(SequenceSet)
}

/// The ranges of `set`, with `*` standing for `largest`.
fn ranges_of(set: &SequenceSet, largest: u32) -> Vec<(u32, u32)> {
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(a) => (v(a), v(a)),
            Sequence::Range(a, b) => (v(a).min(v(b)), v(a).max(v(b))),
        })
        .collect()
}

/// The UIDs of `known` (else `1:last`) that are not among `live` (sorted), as ranges.
pub fn vanished(live: &[u32], known: Option<&SequenceSet>, last: u32) -> Option<SequenceSet> {
    let wanted = match known {
        Some(set) => ranges_of(set, last.max(1)),
        None if last == 0 => return None,
        None => vec![(1, last)],
    };
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in wanted {
        let first = live.partition_point(|u| *u < lo);
        let mut at = lo;
        for u in live[first..].iter().take_while(|u| **u <= hi) {
            if *u > at {
                out.push((at, u - 1));
            }
            at = u.saturating_add(1);
        }
        if at <= hi && at >= lo {
            out.push((at, hi));
        }
    }
    out.sort_unstable();
    set_of(&out)
}

/// Tells the client that the messages at `gone` (sequence number, UID) left: as
/// VANISHED once QRESYNC is on, else one EXPUNGE each, highest number first.
pub fn tell_expunged(server: &mut Server, qresync: bool, gone: &[(u32, u32)]) {
    if qresync {
        let uids: Vec<u32> = gone.iter().map(|(_, uid)| *uid).collect();
        if let Some(known_uids) = uid_set(&uids) {
            server.enqueue_data(Data::Vanished {
                earlier: false,
                known_uids,
            });
        }
        return;
    }
    let mut seqs: Vec<u32> = gone.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    for seq in seqs.into_iter().rev() {
        if let Some(seq) = NonZeroU32::new(seq) {
            server.enqueue_data(Data::Expunge(seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(set: Option<SequenceSet>) -> Vec<(u32, u32)> {
        set.map(|s| ranges_of(&s, u32::MAX)).unwrap_or_default()
    }

    #[test]
    fn uids_become_ranges() {
        assert_eq!(
            shown(uid_set(&[5, 1, 2, 3, 9, 10])),
            vec![(1, 3), (5, 5), (9, 10)]
        );
        assert_eq!(shown(uid_set(&[])), vec![]);
    }

    #[test]
    fn what_vanished_is_the_known_uids_not_live() {
        let live = [2, 3, 7];
        assert_eq!(
            shown(vanished(&live, None, 8)),
            vec![(1, 1), (4, 6), (8, 8)]
        );
        let known = uid_set(&[1, 2, 3, 4, 7, 20]);
        assert_eq!(
            shown(vanished(&live, known.as_ref(), 8)),
            vec![(1, 1), (4, 4), (20, 20)]
        );
        assert_eq!(shown(vanished(&[1, 2], None, 2)), vec![]);
        assert_eq!(shown(vanished(&[], None, 0)), vec![]);
    }
}
