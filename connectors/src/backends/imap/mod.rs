//! IMAP: the mail back end.
//!
//! - [`backend`]: IMAP as a mail back end (one connection per source).
//! - [`client`]: one connection over imap-next: LOGIN, ENABLE QRESYNC/CONDSTORE,
//!   LIST with SPECIAL-USE roles, SELECT resumed with QRESYNC, UID FETCH of flags
//!   (CHANGEDSINCE) and of whole messages, UID STORE with UNCHANGEDSINCE, APPEND with
//!   APPENDUID, one-message UID EXPUNGE, UID MOVE with COPYUID, CREATE and DELETE;
//!   every read with a timeout, a cut-off answer an error.
//! - The bytes between the socket and imap-next's client, and mailbox names in
//!   modified UTF-7, come from `postern_imap` (the gateway's IMAP server shares them).
//! - `tls`: implicit TLS, STARTTLS, trusted certificates.
//! - `wire`: between imap-types' values and ours.

pub mod backend;
pub mod client;
mod tls;
mod wire;

pub use backend::ImapBackend;
pub use client::{ImapClient, ImapError};
