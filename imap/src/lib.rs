//! IMAP plumbing both sides of Postern share. The connector is an IMAP client of the
//! corporate server; the gateway is an IMAP server for remote mail clients. Both
//! speak the protocol through imap-next's sans-I/O state machines (which parse and
//! encode, but never touch a socket) and need the same two things around them:
//!
//! - [`io::Connection`]: the driver that moves bytes between a socket (TCP or TLS)
//!   and a state machine, reading large chunks and writing while it reads;
//! - [`utf7`]: mailbox names in modified UTF-7, as clients and servers without
//!   UTF8=ACCEPT write them.

pub mod io;
pub mod utf7;
