//! # postern-davproto: the gateway's DAV requests, without I/O
//!
//! Everything the gateway reads from a remote client before it touches the store,
//! as pure functions over bytes and strings, so each can be tested exhaustively and
//! fuzzed (`fuzz/`):
//!
//! - [`path`]: what a request URL names ([`path::Target`]: a principal, a home, a
//!   calendar or address book, an item), the checks a path must pass before anything
//!   is looked up (no control characters, bounded names), and the hrefs the gateway
//!   writes.
//! - [`credentials`]: HTTP Basic credentials and the `alice@acme` login form.
//! - [`object`]: whether an uploaded calendar object or vCard is one a strict server
//!   accepts: its structure (balanced components, one object, content lines), the
//!   properties RFC 4791 / RFC 6352 require, values that must parse (dates,
//!   durations, recurrence rules, base64), and the precondition a client is told when
//!   it is not.
//!
//! - [`query`]: the filters of calendar-query and addressbook-query, matched against
//!   an item's bytes, time ranges on every occurrence.
//!
//! The XML of request bodies is read by `postern-davxml`, with its limits.

pub mod credentials;
pub mod expand;
mod lines;
pub mod object;
pub mod path;
pub mod query;
