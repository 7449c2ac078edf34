//! How a round's changes are cut into packets: each under the gateway's largest
//! message (its Welcome says it) and a bounded count, so no packet is refused for
//! its size.

use postern_proto as pb;

/// Most changes in one packet.
const PACKET_CHANGES: usize = 500;
/// Most content bytes in one packet, when the gateway allows more.
const PACKET_BYTES: usize = 4 << 20;

/// Content bytes per packet: [`PACKET_BYTES`], or less when the gateway's largest
/// message (`max_message`, from its Welcome) is smaller, so that no packet is refused
/// for its size.
pub(super) fn packet_budget(max_message: usize) -> usize {
    PACKET_BYTES
        .min(max_message.saturating_sub(ENVELOPE) / 2)
        .max(1)
}

/// Room left in a message for everything but item contents.
pub(super) const ENVELOPE: usize = 64 << 10;

/// Splits losers into groups of bounded size.
pub(super) fn chunk_losers(
    losers: Vec<pb::ConflictRecord>,
    budget: usize,
) -> Vec<Vec<pb::ConflictRecord>> {
    let mut out: Vec<Vec<pb::ConflictRecord>> = Vec::new();
    let mut bytes = 0;
    for l in losers {
        if out.is_empty() || bytes + l.loser_content.len() > budget {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += l.loser_content.len();
        if let Some(last) = out.last_mut() {
            last.push(l);
        }
    }
    out
}

/// The bytes a change carries.
fn size_of(c: &pb::Change) -> usize {
    c.content.len() + c.base_content.len()
}

/// Splits changes into packets of bounded count (at most [`PACKET_CHANGES`], fewer
/// when the gateway's Welcome says it takes fewer: `max_changes`, 0 for no word) and
/// size.
pub(super) fn chunk(
    changes: Vec<pb::Change>,
    budget: usize,
    max_changes: usize,
) -> Vec<Vec<pb::Change>> {
    let most = match max_changes {
        0 => PACKET_CHANGES,
        n => n.min(PACKET_CHANGES),
    };
    let mut out: Vec<Vec<pb::Change>> = Vec::new();
    let mut bytes = 0;
    for c in changes {
        let start_new = match out.last() {
            None => true,
            Some(last) => last.len() >= most || bytes + size_of(&c) > budget,
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size_of(&c);
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_bounded() {
        let changes: Vec<pb::Change> = (0..1200)
            .map(|_| pb::Change {
                content: vec![b'x'; 10],
                ..Default::default()
            })
            .collect();
        let chunks = chunk(changes.clone(), PACKET_BYTES, 0);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![500, 500, 200]
        );
        let big: Vec<pb::Change> = (0..3)
            .map(|_| pb::Change {
                content: vec![b'x'; 3 << 20],
                ..Default::default()
            })
            .collect();
        assert_eq!(chunk(big, PACKET_BYTES, 0).len(), 3);
        assert_eq!(
            chunk(changes, PACKET_BYTES, 100).len(),
            12,
            "a gateway that takes fewer changes per packet gets fewer"
        );
        assert_eq!(packet_budget(16 << 20), PACKET_BYTES);
        assert!(
            packet_budget(2 << 20) < 1 << 20,
            "a small gateway limit shrinks packets"
        );
    }
}
