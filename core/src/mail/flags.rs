//! Message flags and their three-way merge.
//!
//! A flag is either set or not, so merging per flag never conflicts: a flag one side
//! changed since the base takes that side's value, and if both changed it, both
//! changed it the same way. `\Seen` set on a phone and `\Flagged` set in the office in
//! the same round both survive; a flag removed on one side and untouched on the other
//! is removed. (Whole-set "higher MODSEQ wins", as dsync does, loses one of them.)

use std::collections::BTreeSet;
use std::fmt;

/// One flag: a system flag (`\Seen`) or a keyword (`$Forwarded`, `Work`). Flag names
/// are not case-sensitive (RFC 9051 §2.3.2), so a flag is kept in one canonical case:
/// system flags as the RFC writes them, keywords in lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flag(String);

/// The system flags, in the case the RFC writes them.
const SYSTEM: &[&str] = &["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

impl Flag {
    /// A flag from its IMAP name; `None` for `\Recent` (a session's flag, never stored
    /// or synced), an unknown system flag, or a name IMAP does not allow as a flag.
    pub fn new(name: &str) -> Option<Flag> {
        if let Some(rest) = name.strip_prefix('\\') {
            return SYSTEM
                .iter()
                .find(|s| s[1..].eq_ignore_ascii_case(rest))
                .map(|s| Flag(s.to_string()));
        }
        let atom = !name.is_empty()
            && name.len() <= 256
            && name.bytes().all(|b| {
                b.is_ascii_graphic()
                    && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
            });
        atom.then(|| Flag(name.to_ascii_lowercase()))
    }

    /// The name as written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `\Deleted`: marked for expunge.
    pub fn deleted() -> Flag {
        Flag("\\Deleted".into())
    }

    /// `\Seen`.
    pub fn seen() -> Flag {
        Flag("\\Seen".into())
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message's flags: a set, in canonical order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags(BTreeSet<Flag>);

impl Flags {
    /// The flags among `names` that can be synced (see [`Flag::new`]); the rest are
    /// left out.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Flags {
        Flags(names.into_iter().filter_map(Flag::new).collect())
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: &Flag) -> bool {
        self.0.contains(flag)
    }

    /// The flags, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        self.0.iter()
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `flag`.
    pub fn insert(&mut self, flag: Flag) {
        self.0.insert(flag);
    }

    /// Clears `flag`.
    pub fn remove(&mut self, flag: &Flag) {
        self.0.remove(flag);
    }

    /// The stored form: names separated by single spaces, in canonical order.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(Flag::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads the stored form (or any space-separated list of names).
    pub fn decode(s: &str) -> Flags {
        Flags::parse(s.split_ascii_whitespace())
    }

    /// What to add and what to remove to turn `self` into `to`: the arguments of
    /// `STORE +FLAGS` and `STORE -FLAGS`.
    pub fn delta(&self, to: &Flags) -> FlagDelta {
        FlagDelta {
            add: Flags(to.0.difference(&self.0).cloned().collect()),
            remove: Flags(self.0.difference(&to.0).cloned().collect()),
        }
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        Flags(iter.into_iter().collect())
    }
}

/// The change from one set of flags to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagDelta {
    /// Flags to set.
    pub add: Flags,
    /// Flags to clear.
    pub remove: Flags,
}

impl FlagDelta {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// The three-way merge of flags: for each flag, the value of the side that changed it
/// since `base`, else the base's. Symmetric in the two sides, and never a conflict.
pub fn merge(base: &Flags, backend: &Flags, gateway: &Flags) -> Flags {
    let every: BTreeSet<&Flag> = base
        .iter()
        .chain(backend.iter())
        .chain(gateway.iter())
        .collect();
    every
        .into_iter()
        .filter(|f| {
            let was = base.has(f);
            if backend.has(f) != was {
                backend.has(f)
            } else {
                gateway.has(f)
            }
        })
        .cloned()
        .collect()
}
