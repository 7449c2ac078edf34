//! What a mailbox is for (its SPECIAL-USE role), and the mass-deletion guard as mail
//! needs it.

use std::fmt;

use crate::guard::Guard;

/// A mailbox's special use (RFC 6154), as the back end announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The inbox.
    Inbox,
    /// `\Sent`.
    Sent,
    /// `\Drafts`.
    Drafts,
    /// `\Trash`.
    Trash,
    /// `\Junk`.
    Junk,
    /// `\Archive`.
    Archive,
    /// `\All` (every message, as Gmail shows it).
    All,
    /// `\Flagged` (a virtual mailbox of flagged messages).
    Flagged,
}

impl Role {
    /// The role named by a LIST attribute (`\Sent`), or `None`.
    pub fn from_attribute(attr: &str) -> Option<Role> {
        let name = attr.strip_prefix('\\')?;
        [
            ("Sent", Role::Sent),
            ("Drafts", Role::Drafts),
            ("Trash", Role::Trash),
            ("Junk", Role::Junk),
            ("Archive", Role::Archive),
            ("All", Role::All),
            ("Flagged", Role::Flagged),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, r)| r)
    }

    /// The word stored and shown (`sent`, `trash`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inbox => "inbox",
            Role::Sent => "sent",
            Role::Drafts => "drafts",
            Role::Trash => "trash",
            Role::Junk => "junk",
            Role::Archive => "archive",
            Role::All => "all",
            Role::Flagged => "flagged",
        }
    }

    /// Reads [`Role::as_str`] back.
    pub fn parse(word: &str) -> Option<Role> {
        [
            Role::Inbox,
            Role::Sent,
            Role::Drafts,
            Role::Trash,
            Role::Junk,
            Role::Archive,
            Role::All,
            Role::Flagged,
        ]
        .into_iter()
        .find(|r| r.as_str() == word)
    }

    /// Whether people empty this mailbox as a matter of course, so that losing every
    /// message at once is normal.
    pub fn emptied_routinely(self) -> bool {
        matches!(self, Role::Trash | Role::Junk)
    }

    /// Whether a message's content may be replaced from the gateway: only a draft is
    /// edited (append the new version, expunge the old); everywhere else content is
    /// immutable.
    pub fn content_editable(self) -> bool {
        self == Role::Drafts
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a mailbox read went. Only a complete read can say a message is gone: a mailbox
/// that "reads empty" because LOGIN, SELECT or a FETCH failed has not been read at
/// all, and a round that sees [`Read::Failed`] plans nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    /// Every response arrived whole.
    Complete(T),
    /// A command failed, timed out or was cut off: nothing is known.
    Failed(String),
}

/// The mass-deletion guard for a mailbox: `Some(reason)` when `expunged` of `known`
/// messages gone in one round is too many. Emptying `\Trash` or `\Junk` never trips
/// it; any other mailbox trips it as [`Guard`] says.
pub fn check_expunges(
    guard: &Guard,
    role: Option<Role>,
    known: usize,
    expunged: usize,
) -> Option<String> {
    if role.is_some_and(Role::emptied_routinely) {
        return None;
    }
    guard.check(known, expunged)
}
