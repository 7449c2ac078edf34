//! Back ends the connector syncs with. CalDAV and CardDAV share one DAV client
//! ([`dav`]); IMAP arrives in a later release and fits the same plan: its messages
//! carry `BackendVersion::Imap` (UIDVALIDITY/UID/MODSEQ) instead of an ETag.

pub mod dav;
