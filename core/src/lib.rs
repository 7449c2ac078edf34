//! # postern-core: the sync model, with no I/O
//!
//! Postern keeps a user's calendars, address books and mailboxes in the gateway and
//! syncs each of them with one back-end collection. This crate is the model of that
//! sync, as plain data and pure functions, so it can be tested exhaustively:
//!
//! - [`ids`]: validated identifiers: [`ids::Href`] (a path on the back end),
//!   [`ids::ItemId`] (the gateway's id of an item), [`ids::FencingToken`], [`ids::Seq`].
//! - [`model`]: what a collection is ([`model::CollectionKind`], [`model::Mode`],
//!   [`model::ConflictPolicy`]) and what version an item has on the back end
//!   ([`model::BackendVersion`]: a DAV ETag, or IMAP UIDVALIDITY/UID/MODSEQ).
//! - [`content`]: facts read from an item's bytes without rewriting them: its UID,
//!   when it was last modified.
//! - [`structure`]: what an item means, read by structure (components keyed by UID
//!   and RECURRENCE-ID, their properties as canonical entries): whether two copies say
//!   the same thing however a server re-serialised them.
//! - [`merge`]: the three-way merge of the `merge` policy: what each side changed
//!   since the version both last agreed on, combined per component and property.
//! - [`plan`]: the heart. Given what the gateway knows of the back end (the *index*),
//!   the back end's changes since the last round and the gateway's changes since the
//!   connector's cursor, [`plan::plan`] decides every action of a round. Conflicts
//!   are settled by [`plan::resolve`] according to the collection's policy; the loser
//!   is always kept.
//! - [`mail`]: what mail needs beyond that: flags merged per flag, content keys
//!   (Message-ID, size, SHA-256), re-keying after a UIDVALIDITY reset, moves paired by
//!   content, mailbox roles.
//! - [`guard`]: the mass-deletion guard that pauses a collection whose back end
//!   suddenly looks empty instead of wiping the gateway.
//!
//! The connector runs the plan (fetching and writing on the back end, pushing a change
//! packet to the gateway); the gateway only checks and stores. Neither depends on the
//! other; both depend on this crate.

pub mod content;
pub mod guard;
pub mod ids;
pub mod mail;
pub mod merge;
pub mod model;
pub mod plan;
pub mod structure;
