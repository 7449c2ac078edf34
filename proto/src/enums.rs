//! The wire enums and the types of `postern-core` they stand for, both ways. An
//! UNSPECIFIED value (a field an older peer did not send, or a number this build does
//! not know) reads as `None`: the receiver refuses it with a reason, never guesses.

use postern_core::mail::Role;
use postern_core::model::{
    CollectionKind as Kind, ConflictPolicy as Policy, Mode, Side as CoreSide,
};

use crate::v1::{CollectionKind, ConflictPolicy, MailboxRole, Side, SourceKind, SyncMode};

impl From<CoreSide> for Side {
    fn from(s: CoreSide) -> Self {
        match s {
            CoreSide::Backend => Side::Backend,
            CoreSide::Gateway => Side::Gateway,
        }
    }
}

/// A wire side as the core's, `None` when unspecified or unknown.
pub fn side(wire: i32) -> Option<CoreSide> {
    match Side::try_from(wire).ok()? {
        Side::Backend => Some(CoreSide::Backend),
        Side::Gateway => Some(CoreSide::Gateway),
        Side::Unspecified => None,
    }
}

impl From<Mode> for SyncMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::TwoWay => SyncMode::TwoWay,
            Mode::Mirror => SyncMode::Mirror,
            Mode::Merge => SyncMode::Merge,
        }
    }
}

/// A wire mode as the core's, `None` when unspecified or unknown.
pub fn mode(wire: i32) -> Option<Mode> {
    match SyncMode::try_from(wire).ok()? {
        SyncMode::TwoWay => Some(Mode::TwoWay),
        SyncMode::Mirror => Some(Mode::Mirror),
        SyncMode::Merge => Some(Mode::Merge),
        SyncMode::Unspecified => None,
    }
}

impl From<Policy> for ConflictPolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::BackendWins => ConflictPolicy::BackendWins,
            Policy::GatewayWins => ConflictPolicy::GatewayWins,
            Policy::NewestWins => ConflictPolicy::NewestWins,
            Policy::Merge => ConflictPolicy::Merge,
        }
    }
}

/// A wire conflict policy as the core's, `None` when unspecified or unknown.
pub fn policy(wire: i32) -> Option<Policy> {
    match ConflictPolicy::try_from(wire).ok()? {
        ConflictPolicy::BackendWins => Some(Policy::BackendWins),
        ConflictPolicy::GatewayWins => Some(Policy::GatewayWins),
        ConflictPolicy::NewestWins => Some(Policy::NewestWins),
        ConflictPolicy::Merge => Some(Policy::Merge),
        ConflictPolicy::Unspecified => None,
    }
}

impl From<Kind> for CollectionKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Calendar => CollectionKind::Calendar,
            Kind::AddressBook => CollectionKind::Addressbook,
            Kind::Mailbox => CollectionKind::Mailbox,
        }
    }
}

/// A wire collection kind as the core's, `None` when unspecified or unknown.
pub fn kind(wire: i32) -> Option<Kind> {
    match CollectionKind::try_from(wire).ok()? {
        CollectionKind::Calendar => Some(Kind::Calendar),
        CollectionKind::Addressbook => Some(Kind::AddressBook),
        CollectionKind::Mailbox => Some(Kind::Mailbox),
        CollectionKind::Unspecified => None,
    }
}

/// A mailbox role for the wire (`None`: no role).
pub fn role_to_wire(r: Option<Role>) -> MailboxRole {
    match r {
        None => MailboxRole::None,
        Some(Role::Inbox) => MailboxRole::Inbox,
        Some(Role::Sent) => MailboxRole::Sent,
        Some(Role::Drafts) => MailboxRole::Drafts,
        Some(Role::Trash) => MailboxRole::Trash,
        Some(Role::Junk) => MailboxRole::Junk,
        Some(Role::Archive) => MailboxRole::Archive,
        Some(Role::All) => MailboxRole::All,
        Some(Role::Flagged) => MailboxRole::Flagged,
    }
}

/// A wire mailbox role as the core's (none, or one this build does not know: `None`).
pub fn role(wire: i32) -> Option<Role> {
    match MailboxRole::try_from(wire).ok()? {
        MailboxRole::None => None,
        MailboxRole::Inbox => Some(Role::Inbox),
        MailboxRole::Sent => Some(Role::Sent),
        MailboxRole::Drafts => Some(Role::Drafts),
        MailboxRole::Trash => Some(Role::Trash),
        MailboxRole::Junk => Some(Role::Junk),
        MailboxRole::Archive => Some(Role::Archive),
        MailboxRole::All => Some(Role::All),
        MailboxRole::Flagged => Some(Role::Flagged),
    }
}

impl SourceKind {
    /// The kind named as in the config and the database (`caldav`, `imap`), or
    /// unspecified.
    pub fn from_word(word: &str) -> SourceKind {
        match word {
            "caldav" => SourceKind::Caldav,
            "carddav" => SourceKind::Carddav,
            "imap" => SourceKind::Imap,
            "smtp" => SourceKind::Smtp,
            _ => SourceKind::Unspecified,
        }
    }

    /// The kind's word (`caldav`, `imap`), or `None` when unspecified.
    pub fn word(self) -> Option<&'static str> {
        match self {
            SourceKind::Caldav => Some("caldav"),
            SourceKind::Carddav => Some("carddav"),
            SourceKind::Imap => Some("imap"),
            SourceKind::Smtp => Some("smtp"),
            SourceKind::Unspecified => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_goes_both_ways_and_unspecified_is_none() {
        for m in Mode::ALL {
            assert_eq!(mode(SyncMode::from(*m) as i32), Some(*m));
        }
        for p in Policy::ALL {
            assert_eq!(policy(ConflictPolicy::from(*p) as i32), Some(*p));
        }
        for k in [Kind::Calendar, Kind::AddressBook, Kind::Mailbox] {
            assert_eq!(kind(CollectionKind::from(k) as i32), Some(k));
        }
        for r in [Role::Inbox, Role::Sent, Role::Trash, Role::Flagged] {
            assert_eq!(role(role_to_wire(Some(r)) as i32), Some(r));
        }
        for w in ["caldav", "carddav", "imap", "smtp"] {
            assert_eq!(SourceKind::from_word(w).word(), Some(w));
        }
        for s in [CoreSide::Backend, CoreSide::Gateway] {
            assert_eq!(side(Side::from(s) as i32), Some(s));
        }
        assert_eq!(mode(0), None);
        assert_eq!(policy(99), None);
        assert_eq!(kind(0), None);
        assert_eq!(role(0), None);
        assert_eq!(SourceKind::from_word("pop3").word(), None);
    }
}
