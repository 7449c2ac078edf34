//! Validated identifiers. Each can only be built from a value that makes sense, so
//! the rest of the code never re-checks them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that failed validation, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {why}")]
pub struct InvalidId {
    /// Which kind of identifier ("href", "item id", ...).
    pub what: &'static str,
    /// Why it was refused.
    pub why: &'static str,
}

/// An absolute path of a resource on a DAV server, e.g. `/alice/work/ev1.ics`.
/// Kept exactly as the server wrote it (percent-encoding included), because servers
/// compare hrefs byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Href(String);

impl Href {
    /// Accepts a path that starts with `/` and has no whitespace or control characters.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        if !s.starts_with('/') {
            return Err(InvalidId {
                what: "href",
                why: "must start with '/'",
            });
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(InvalidId {
                what: "href",
                why: "contains whitespace or control characters",
            });
        }
        Ok(Self(s))
    }

    /// The path as the server wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when this href names a member of `collection` (`/a/b/` contains `/a/b/x.ics`).
    pub fn is_member_of(&self, collection: &Href) -> bool {
        self.0.len() > collection.0.len()
            && self.0.starts_with(collection.0.trim_end_matches('/'))
            && {
                let rest = &self.0[collection.0.trim_end_matches('/').len()..];
                rest.starts_with('/') && !rest[1..].trim_end_matches('/').contains('/')
            }
    }
}

impl fmt::Display for Href {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The gateway's id of an item (a UUID in text form). Opaque to the connector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemId(String);

impl ItemId {
    /// Accepts any non-empty id without whitespace.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            return Err(InvalidId {
                what: "item id",
                why: "empty or contains whitespace",
            });
        }
        Ok(Self(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The epoch of a lease. Only grows; a write carrying an older one is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FencingToken(pub u64);

/// A per-collection journal sequence number: monotonic, gap-free only per collection.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn href_must_be_absolute_and_clean() {
        assert!(Href::new("/a/b.ics").is_ok());
        assert!(Href::new("a/b.ics").is_err());
        assert!(Href::new("/a b.ics").is_err());
        assert!(Href::new("/a\nb").is_err());
    }

    #[test]
    fn membership_is_one_level_deep() {
        let c = Href::new("/alice/work/").unwrap();
        assert!(Href::new("/alice/work/e.ics").unwrap().is_member_of(&c));
        assert!(!Href::new("/alice/work/").unwrap().is_member_of(&c));
        assert!(!Href::new("/alice/work/x/e.ics").unwrap().is_member_of(&c));
        assert!(!Href::new("/alice/workshop/e.ics").unwrap().is_member_of(&c));
    }

    #[test]
    fn item_id_rejects_empty() {
        assert!(ItemId::new("").is_err());
        assert!(ItemId::new("abc").is_ok());
    }
}
