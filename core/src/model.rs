//! What a collection is and how it syncs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A word that is not one of the allowed values of a setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}; expected one of: {expected}")]
pub struct UnknownValue {
    /// The setting ("mode", "conflict policy", ...).
    pub what: &'static str,
    /// What was given.
    pub got: String,
    /// The allowed values, comma-separated.
    pub expected: &'static str,
}

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The word used in configs, the database and on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        got: s.to_string(),
                        expected: concat!($($word, " "),+),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// How changes flow between the back end and the gateway for one collection.
    Mode, "mode" {
        /// Changes flow both ways (the default).
        TwoWay = "two-way",
        /// One-way replace: the gateway becomes a copy of the back end; gateway-side
        /// edits are reverted (and kept as conflicts).
        Mirror = "mirror",
        /// One-way merge: back-end additions and edits reach the gateway; back-end
        /// deletions do not, and gateway-side changes stay on the gateway.
        Merge = "merge",
    }
);

word_enum!(
    /// Which version wins when both sides changed the same item since the last round.
    ConflictPolicy, "conflict policy" {
        /// The back end's version wins (the corporate server is the authority).
        BackendWins = "backend-wins",
        /// The gateway's (the remote client's) version wins.
        GatewayWins = "gateway-wins",
        /// The version modified last wins (LAST-MODIFIED / REV vs the gateway's time).
        NewestWins = "newest-wins",
        /// Edits to different parts of an item both survive: a three-way merge
        /// against the version both sides last agreed on (see [`crate::merge`]);
        /// the same property changed differently falls back to `newest-wins`.
        Merge = "merge",
    }
);

word_enum!(
    /// What a collection holds.
    CollectionKind, "collection kind" {
        /// iCalendar events and tasks (CalDAV).
        Calendar = "calendar",
        /// vCards (CardDAV).
        AddressBook = "addressbook",
        /// RFC 5322 messages with flags (IMAP).
        Mailbox = "mailbox",
    }
);

word_enum!(
    /// Where a change or a version came from.
    Side, "side" {
        /// The corporate server, through a connector.
        Backend = "backend",
        /// The gateway: a remote client, or the store API.
        Gateway = "gateway",
    }
);

impl CollectionKind {
    /// The MIME type of one item of this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "text/calendar; charset=utf-8",
            CollectionKind::AddressBook => "text/vcard; charset=utf-8",
            CollectionKind::Mailbox => "message/rfc822",
        }
    }

    /// The file extension used when naming a new item on the back end.
    pub fn extension(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "ics",
            CollectionKind::AddressBook => "vcf",
            CollectionKind::Mailbox => "eml",
        }
    }
}

/// The version of an item on the back end: how the connector tells whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendVersion {
    /// A DAV entity tag, kept verbatim with its quotes.
    Etag(String),
    /// An IMAP message: immutable content at (UIDVALIDITY, UID); MODSEQ moves with flags.
    Imap {
        /// The mailbox's UIDVALIDITY when the UID was assigned.
        uidvalidity: u32,
        /// The message's UID within that UIDVALIDITY.
        uid: u32,
        /// CONDSTORE modification sequence of the message's flags.
        modseq: u64,
    },
}

impl BackendVersion {
    /// The text form stored in the database and sent on the wire: the ETag itself, or
    /// `imap:UIDVALIDITY/UID/MODSEQ`.
    pub fn encode(&self) -> String {
        match self {
            BackendVersion::Etag(e) => e.clone(),
            BackendVersion::Imap {
                uidvalidity,
                uid,
                modseq,
            } => format!("imap:{uidvalidity}/{uid}/{modseq}"),
        }
    }

    /// Reads the text form back; anything not in the IMAP form is an ETag.
    pub fn decode(s: &str) -> Self {
        if let Some(rest) = s.strip_prefix("imap:") {
            let parts: Vec<&str> = rest.split('/').collect();
            if let [v, u, m] = parts.as_slice()
                && let (Ok(uidvalidity), Ok(uid), Ok(modseq)) = (v.parse(), u.parse(), m.parse())
            {
                return BackendVersion::Imap {
                    uidvalidity,
                    uid,
                    modseq,
                };
            }
        }
        BackendVersion::Etag(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
        }
        for p in ConflictPolicy::ALL {
            assert_eq!(p.as_str().parse::<ConflictPolicy>().unwrap(), *p);
        }
        let err = "sideways".parse::<Mode>().unwrap_err();
        assert!(err.to_string().contains("two-way"));
    }

    #[test]
    fn backend_versions_round_trip() {
        let imap = BackendVersion::Imap {
            uidvalidity: 7,
            uid: 42,
            modseq: 9001,
        };
        assert_eq!(BackendVersion::decode(&imap.encode()), imap);
        let etag = BackendVersion::Etag("\"abc\"".into());
        assert_eq!(BackendVersion::decode(&etag.encode()), etag);
        assert_eq!(
            BackendVersion::decode("imap:x/1/2"),
            BackendVersion::Etag("imap:x/1/2".into())
        );
    }
}
