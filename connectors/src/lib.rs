//! # postern-connector
//!
//! The inside half of Postern. It runs inside the firewall, holds the back-end
//! credentials (they never leave it), and keeps one **outbound** gRPC stream to the
//! gateway; the gateway never dials in.
//!
//! - [`config`]: `connector.toml` (gateway, token, sources).
//! - [`link`]: the outbound stream, with request/answer matching and nudges.
//! - [`engine`]: reconnects, discovers, and runs rounds on the interval and on nudges;
//!   [`engine::round`] executes one round of one collection.
//! - [`backends`]: the back ends behind one interface ([`backends::Backend`]:
//!   discovery, changes since a saved state, fetch, write, collections); CalDAV and
//!   CardDAV implement it today.
//!
//! The decisions of a round (what moves where, who wins a conflict) are pure
//! functions in `postern-core`; this crate only reads, writes and reports.

pub mod backends;
pub mod config;
pub mod engine;
pub mod link;
