//! # postern-gateway
//!
//! The outside half of Postern. It keeps every user's calendars, address books and
//! mailboxes in PostgreSQL and coordinates every write a connector makes:
//!
//! - [`store`]: PostgreSQL, the one source of truth (tenants, users, connectors,
//!   collections, items, the journal, leases, conflicts). Stateless replicas share it.
//! - [`link`]: the gRPC `ConnectorLink` service. A connector inside the firewall dials
//!   out and keeps one stream open; over it the gateway assigns collections, grants
//!   leases with fencing tokens, hands out the journal and commits change packets.
//! - [`auth`]: connector tokens (JWT, revocable) and app passwords (argon2id), verified
//!   on the bounded [`passwords`] pool.
//! - [`logins`]: remote clients' logins (`alice@acme` + app password), throttled, for
//!   every door: DAV, IMAP, submission.
//! - [`nudge`]: LISTEN/NOTIFY, so a change on any replica wakes the right connector.
//! - [`dav`]: the CalDAV/CardDAV endpoint for remote clients.
//! - [`imap`] and [`submission`]: IMAP and SMTP submission for remote mail clients.
//! - [`http`]: health, readiness and [`metrics`], served on connections from
//!   [`listen`] (bounded in number, TLS done off the accept loop, idle ones closed).
//! - [`limits`]: every bound on what a caller can make the gateway do.
//! - [`admin`]: the operator's CLI, against the same database.
//! - [`serve`]: wiring: migrations, listeners, shutdown.
//!
//! Data flow of a round: the connector leases a collection, pulls the index and the
//! pending gateway changes, plans with `postern-core`, writes the back end, and pushes
//! one change packet that the gateway commits atomically after checking the fencing
//! token and the StaleBase rule (see [`store::packet`]).

pub mod admin;
pub mod auth;
pub mod dav;
pub mod http;
pub mod imap;
pub mod limits;
pub mod link;
pub mod listen;
pub mod logins;
pub mod metrics;
pub mod nudge;
pub mod passwords;
pub mod serve;
pub mod store;
pub mod submission;
pub mod tls;
