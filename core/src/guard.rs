//! The mass-deletion guard. A back end that suddenly looks empty (a changed URL, a
//! login that now sees nothing, a wiped server) must not wipe the gateway: above a
//! threshold the round stops and the collection is paused until an operator resumes it.

/// When the guard trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Deletions of fewer items than this never trip the guard.
    pub min_items: usize,
    /// Trip when more than this share (percent) of the known items vanish in one round.
    pub max_percent: u8,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            min_items: 5,
            max_percent: 50,
        }
    }
}

impl Guard {
    /// `Some(reason)` when `deleted` back-end deletions out of `known` items is too many
    /// for one round.
    pub fn check(&self, known: usize, deleted: usize) -> Option<String> {
        if deleted < self.min_items || known == 0 {
            return None;
        }
        (deleted * 100 > known * usize::from(self.max_percent)).then(|| {
            format!(
                "mass deletion: the back end no longer has {deleted} of {known} items; \
                 paused until an operator resumes the collection"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_on_many_deletions() {
        let g = Guard::default();
        assert_eq!(g.check(100, 4), None, "few deletions are normal");
        assert_eq!(g.check(100, 50), None, "exactly half is allowed");
        assert!(g.check(100, 51).is_some());
        assert!(g.check(10, 10).is_some(), "an empty back end trips it");
        assert_eq!(g.check(0, 0), None);
    }
}
