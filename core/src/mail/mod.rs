//! Mail, as the sync sees it: pure rules, no I/O.
//!
//! A back-end message is named by (mailbox, UIDVALIDITY, UID) and its bytes never
//! change; its flags and MODSEQ do. So a message's version has two parts that are
//! never mixed: *identity* (UIDVALIDITY, UID; see
//! [`crate::model::BackendVersion::Imap`]) and *metadata* (MODSEQ, flags). A flag
//! change is metadata and never moves a body.
//!
//! - [`flags`]: flags in one canonical form, and their three-way merge against the
//!   flags last synced (both sides' changes survive; a flag never conflicts).
//! - [`key`]: the content key (Message-ID, size, SHA-256) that finds a message again
//!   when UIDs cannot: after a crash between APPEND and its acknowledgement, after a
//!   UIDVALIDITY reset, after a move on the back end.
//! - [`rematch`]: a changed UIDVALIDITY: re-key the index by content key, or pause
//!   when the mailbox is genuinely another.
//! - [`mailbox`]: SPECIAL-USE roles, which mailbox may be emptied without alarm, and
//!   which may have its content edited (Drafts only).
//! - [`plan`]: one mailbox's round: flags merged and written as flags only,
//!   expunges both ways, new messages imported or appended (a crashed append found
//!   again by content), per mode; the mass-deletion guard as mail needs it.
//! - [`moves`]: a message that vanished from one mailbox and appeared in another with
//!   the same content is one message that moved, not a deletion and a new message.

pub mod flags;
pub mod key;
pub mod mailbox;
pub mod moves;
pub mod plan;
pub mod rematch;

pub use flags::{Flag, FlagDelta, Flags};
pub use key::MessageKey;
pub use mailbox::Role;

#[cfg(test)]
mod tests;
