//! Back ends the connector syncs with, behind one interface.
//!
//! The engine drives every back end through [`Backend`]: discovery, changes since a
//! saved state, fetching items, writing and deleting one, and creating, removing and
//! describing collections. Each back end owns how it detects changes (DAV asks
//! sync-collection and falls back to ETag listings; IMAP will ask QRESYNC and fall
//! back to UID and flag listings) and answers in the same terms: a delta of
//! [`BackendSignal`]s, or a full listing the engine compares with the gateway's index.
//! Nothing in `engine/` names a protocol.
//!
//! - [`dav`]: CalDAV and CardDAV, one client for both.
//! - [`imap`]: the mail back end.
//! - [`smtp`]: the corporate SMTP server the outbox is relayed to (not a back end
//!   that syncs: the engine's outbox loop drives it).
//! - [`AnyBackend`]: the back end of one source, whatever its kind.

pub mod dav;
pub mod imap;
pub mod smtp;
pub mod tls;

use std::collections::BTreeMap;
use std::future::Future;

use postern_core::ids::Href;
use postern_core::mail::plan::BackendSeen;
use postern_core::mail::{Flags, MessageKey};
use postern_core::model::CollectionKind;
use postern_core::plan::{BackendCopy, BackendSignal, Precondition};

use crate::config::{Source, SourceKind};

/// The source kinds this connector syncs (announced to the gateway in its Hello).
pub const KINDS: &[&str] = &["caldav", "carddav", "imap", "smtp"];

/// What went wrong talking to a back end. The round that meets it fails and is
/// retried; nothing is assumed about the back end's state.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A CalDAV or CardDAV server.
    #[error(transparent)]
    Dav(#[from] dav::DavError),
    /// An IMAP server.
    #[error(transparent)]
    Imap(#[from] imap::ImapError),
    /// This back end does not hold what was asked of it (mail of a DAV server...).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The source cannot be opened (bad URL, unsupported kind).
    #[error("{0}")]
    Config(String),
}

/// A collection found on the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path on the back end.
    pub href: String,
    /// Display name.
    pub display_name: String,
    /// Colour, "#rrggbb" or "".
    pub color: String,
    /// Whether the back end can say what changed since a saved state (DAV
    /// sync-collection); otherwise every round compares a full listing.
    pub supports_sync: bool,
    /// A mailbox's SPECIAL-USE role (`None` for other collections).
    pub role: Option<postern_core::mail::Role>,
    /// A mailbox's hierarchy delimiter.
    pub delimiter: Option<char>,
}

/// What discovery found: the collections, and the home collections new ones go in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// The collections of this source's kind.
    pub collections: Vec<Found>,
    /// Where a new collection is made.
    pub homes: Vec<String>,
}

/// What a back end says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Only what changed since the saved state.
    Delta(Vec<BackendSignal>),
    /// Every member and its version: what the index does not match changed, what it
    /// holds and the listing does not was deleted.
    Listing(BTreeMap<Href, String>),
}

/// Changes since a saved state, and the state to save once the round is done (empty:
/// none; the next round compares a listing again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// What changed.
    pub observed: Observed,
    /// The new resume point.
    pub new_state: String,
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Done: the new version if the back end said, and where the item now is when the
    /// back end chose (IMAP's APPENDUID; `None` for DAV, where the writer names it).
    Done {
        /// The item's version after the write.
        version: Option<String>,
        /// The identity the back end gave the item, if not the one asked for.
        href: Option<Href>,
    },
    /// The precondition failed: the back end changed since we planned.
    Conflict,
    /// The back end will not take this item: its status and the start of its answer.
    Refused {
        /// The back end's status code.
        status: u16,
        /// The start of its answer, for the operator.
        answer: String,
    },
}

/// A dead or live property of a collection, as markup (DAV) or a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Namespace URI.
    pub ns: String,
    /// Local name.
    pub name: String,
    /// The value's markup (empty: remove it).
    pub markup: String,
}

/// A collection a client made on the gateway, to be made on the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection<'a> {
    /// Display name.
    pub display_name: &'a str,
    /// Properties to give it.
    pub properties: &'a [Property],
    /// The component types it holds (calendars), empty for any.
    pub components: &'a [String],
}

/// One back end: what the engine needs of it. Every method reads or writes the back
/// end and nothing else; the decisions are `postern-core`'s.
pub trait Backend: Send + Sync {
    /// What its collections hold.
    fn kind(&self) -> CollectionKind;

    /// Finds the collections of this source.
    fn discover(&self) -> impl Future<Output = Result<Discovered, BackendError>> + Send;

    /// What changed in `collection` since `state` (empty: never synced). `fresh`: the
    /// gateway knows nothing of it yet (a first import), so a full listing is the
    /// cheapest answer.
    fn changes(
        &self,
        collection: &Href,
        state: &str,
        supports_sync: bool,
        fresh: bool,
    ) -> impl Future<Output = Result<Changes, BackendError>> + Send;

    /// The items at `wanted`, with what was asked for and is gone; `progress` is told
    /// how many are done as batches complete.
    fn fetch(
        &self,
        collection: &Href,
        wanted: &[Href],
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> impl Future<Output = Result<(Vec<BackendCopy>, Vec<Href>), BackendError>> + Send;

    /// Writes one item under `precondition`.
    fn put(
        &self,
        href: &Href,
        precondition: &Precondition,
        content: &[u8],
    ) -> impl Future<Output = Result<WriteOutcome, BackendError>> + Send;

    /// Deletes one item if it still has version `if_match`; one already gone counts
    /// as deleted.
    fn delete(
        &self,
        href: &Href,
        if_match: &str,
    ) -> impl Future<Output = Result<WriteOutcome, BackendError>> + Send;

    /// Where a collection a client made on the gateway (gateway id `id`) is made on
    /// the back end: derived from the id, so a retried create, or a delete that
    /// overtook it, finds the same place. `None` when there is no home to make it in.
    fn place_for(&self, homes: &[String], id: &str, display_name: &str) -> Option<String>;

    /// Makes a collection at `href`; one that already exists counts as made.
    fn create_collection(
        &self,
        href: &str,
        new: &NewCollection<'_>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Removes the collection at `href`; one already gone counts as removed.
    fn remove_collection(
        &self,
        href: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Gives the collection at `href` the properties a client set.
    fn set_properties(
        &self,
        href: &str,
        properties: &[Property],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// A message as a mail back end holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// Its UID in its mailbox.
    pub uid: u32,
    /// Its flags.
    pub flags: Flags,
    /// Its MODSEQ (0: the server has none).
    pub modseq: u64,
    /// Its internal date, Unix milliseconds.
    pub internal_date_ms: Option<i64>,
    /// Its content key.
    pub key: MessageKey,
    /// Its size on the back end.
    pub size: u64,
    /// Its bytes (none when it is larger than the gateway takes).
    pub body: Vec<u8>,
}

impl MailMessage {
    /// A message left on the back end, too large to fetch: only its UID and size.
    pub fn too_large(uid: u32, size: u64) -> MailMessage {
        MailMessage {
            uid,
            flags: Flags::default(),
            modseq: 0,
            internal_date_ms: None,
            key: MessageKey::of(&[]),
            size,
            body: Vec::new(),
        }
    }
}

/// A part of a message, read by range: a large message is never held whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePart {
    /// Its MODSEQ (0: the server has none).
    pub modseq: u64,
    /// Its internal date, Unix milliseconds.
    pub internal_date_ms: Option<i64>,
    /// The whole message's size.
    pub size: u64,
    /// The bytes of this part.
    pub data: Vec<u8>,
}

/// What a mailbox says changed since a saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailChanges {
    /// The mailbox's UIDVALIDITY now.
    pub uidvalidity: u32,
    /// The state to save once the round is done (empty: unknown; the next round
    /// lists everything again).
    pub new_state: String,
    /// Messages changed or new (their flags), and UIDs gone (empty for a full
    /// listing: see `listed`).
    pub seen: Vec<BackendSeen>,
    /// True when the back end could not say what changed (no saved state it can
    /// resume from): `listed` holds every UID, a known UID not in it is gone, and
    /// the flags are read a window at a time with [`MailBackend::flags`].
    pub complete: bool,
    /// Every UID, ascending (a few bytes per message), when the back end cannot say
    /// what vanished itself: a full listing, or CONDSTORE without QRESYNC (then
    /// `seen` holds what changed, and a known UID not listed is gone).
    pub listed: Option<Vec<u32>>,
}

/// A mail back end: what a mailbox round needs of it. Flags move without bodies;
/// bodies are fetched only for messages the gateway does not have.
pub trait MailBackend: Send + Sync {
    /// The mailboxes.
    fn discover(&self) -> impl Future<Output = Result<Discovered, BackendError>> + Send;

    /// What changed in `mailbox` since `state` (empty, or a state the back end
    /// cannot resume from: every message, `complete`; the caller tells what vanished
    /// from such a listing by what it knows).
    fn changes(
        &self,
        mailbox: &Href,
        state: &str,
    ) -> impl Future<Output = Result<MailChanges, BackendError>> + Send;

    /// The flags (and MODSEQ) of messages `uids`; a UID the mailbox no longer has is
    /// left out.
    fn flags(
        &self,
        mailbox: &Href,
        uids: &[u32],
    ) -> impl Future<Output = Result<Vec<BackendSeen>, BackendError>> + Send;

    /// Each message's size in bytes, by UID, without its body: what fetching it
    /// would bring, so that the caller can fetch a bounded number of bytes at a time.
    fn sizes(
        &self,
        mailbox: &Href,
        uids: &[u32],
    ) -> impl Future<Output = Result<Vec<(u32, u64)>, BackendError>> + Send;

    /// Whole messages.
    fn fetch(
        &self,
        mailbox: &Href,
        uids: &[u32],
    ) -> impl Future<Output = Result<Vec<MailMessage>, BackendError>> + Send;

    /// `len` bytes of message `uid` from `offset`, with its metadata and whole size;
    /// `None` when the mailbox no longer has it.
    fn fetch_part(
        &self,
        mailbox: &Href,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<Option<MessagePart>, BackendError>> + Send;

    /// Sets and clears flags of one message if its MODSEQ is still `unchanged_since`
    /// (0: unconditionally): its new MODSEQ (0 when unknown), or `None` when it
    /// changed meanwhile and nothing was written.
    fn store(
        &self,
        mailbox: &Href,
        uid: u32,
        add: &Flags,
        remove: &Flags,
        unchanged_since: u64,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send;

    /// Expunges one message.
    fn expunge(
        &self,
        mailbox: &Href,
        uid: u32,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Waits until `mailbox` changes on the back end (IMAP IDLE, on a connection of
    /// its own) or `max` passes; `true` when it changed.
    fn watch(
        &self,
        mailbox: &Href,
        max: std::time::Duration,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// Appends a message with its flags: `(UIDVALIDITY, UID)` the back end gave it,
    /// when it says (else the next round finds it by content).
    fn append(
        &self,
        mailbox: &Href,
        flags: &Flags,
        body: &[u8],
    ) -> impl Future<Output = Result<Option<(u32, u32)>, BackendError>> + Send;

    /// Moves message `uid` of `from` (under `uidvalidity`) to `to`, keeping one copy.
    fn move_message(
        &self,
        from: &Href,
        uidvalidity: u32,
        uid: u32,
        to: &Href,
    ) -> impl Future<Output = Result<Moved, BackendError>> + Send;
}

/// What a move on the back end did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The message is in the destination under this `(UIDVALIDITY, UID)`.
    To(u32, u32),
    /// It moved, but the back end did not say its new UID (the next round finds it by
    /// content).
    Unknown,
    /// The source no longer holds it (expunged or renumbered): nothing moved.
    Gone,
}

/// The back end of one source, whatever its kind.
pub enum AnyBackend {
    /// CalDAV or CardDAV.
    Dav(dav::DavBackend),
    /// IMAP (boxed: it holds a whole connection).
    Imap(Box<imap::ImapBackend>),
}

impl AnyBackend {
    /// Renames the collection at `href` to `name` (a mailbox a client renamed on the
    /// gateway); its new href. One renamed already counts as renamed.
    pub async fn rename_collection(&self, href: &str, name: &str) -> Result<String, BackendError> {
        match self {
            AnyBackend::Dav(_) => Err(BackendError::Unsupported(
                "a DAV collection keeps its href; its name is a property",
            )),
            AnyBackend::Imap(b) => b.rename_mailbox(href, name).await,
        }
    }

    /// Opens the back end a source names; `Ok(None)` for a kind this connector
    /// cannot sync.
    pub fn open(source: &Source) -> Result<Option<AnyBackend>, BackendError> {
        let kind = match source.kind {
            SourceKind::CalDav => dav::DavKind::CalDav,
            SourceKind::CardDav => dav::DavKind::CardDav,
            SourceKind::Smtp => return Ok(None),
            SourceKind::Imap => {
                let options = imap::client::ConnectOptions {
                    allow_plain: source.allow_plain,
                    extra_ca: source.tls_ca.clone(),
                };
                return Ok(Some(AnyBackend::Imap(Box::new(imap::ImapBackend::new(
                    &source.url,
                    &source.username,
                    &source.password,
                    options,
                )?))));
            }
        };
        let client = dav::DavClient::new(&source.url, &source.username, &source.password)
            .map_err(|e| BackendError::Config(format!("source {}: {e}", source.name)))?;
        Ok(Some(AnyBackend::Dav(dav::DavBackend::new(client, kind))))
    }
}

/// Each method of [`Backend`] on whichever back end this is.
macro_rules! delegate {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            AnyBackend::Dav($b) => $call,
            AnyBackend::Imap(_) => Err(BackendError::Unsupported(
                "a mail back end holds mailboxes, synced by mailbox rounds",
            )),
        }
    };
}

impl Backend for AnyBackend {
    fn kind(&self) -> CollectionKind {
        match self {
            AnyBackend::Dav(b) => b.kind(),
            AnyBackend::Imap(_) => CollectionKind::Mailbox,
        }
    }

    async fn discover(&self) -> Result<Discovered, BackendError> {
        match self {
            AnyBackend::Dav(b) => b.discover().await,
            AnyBackend::Imap(b) => b.discover().await,
        }
    }

    async fn changes(
        &self,
        collection: &Href,
        state: &str,
        supports_sync: bool,
        fresh: bool,
    ) -> Result<Changes, BackendError> {
        delegate!(self, b => b.changes(collection, state, supports_sync, fresh).await)
    }

    async fn fetch(
        &self,
        collection: &Href,
        wanted: &[Href],
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<(Vec<BackendCopy>, Vec<Href>), BackendError> {
        delegate!(self, b => b.fetch(collection, wanted, progress).await)
    }

    async fn put(
        &self,
        href: &Href,
        precondition: &Precondition,
        content: &[u8],
    ) -> Result<WriteOutcome, BackendError> {
        delegate!(self, b => b.put(href, precondition, content).await)
    }

    async fn delete(&self, href: &Href, if_match: &str) -> Result<WriteOutcome, BackendError> {
        delegate!(self, b => b.delete(href, if_match).await)
    }

    fn place_for(&self, homes: &[String], id: &str, display_name: &str) -> Option<String> {
        match self {
            AnyBackend::Dav(b) => b.place_for(homes, id, display_name),
            // A mailbox is where its name says (a retried create finds it there).
            AnyBackend::Imap(_) => {
                (!display_name.is_empty()).then(|| imap::backend::href_of(display_name))
            }
        }
    }

    async fn create_collection(
        &self,
        href: &str,
        new: &NewCollection<'_>,
    ) -> Result<(), BackendError> {
        match self {
            AnyBackend::Dav(b) => b.create_collection(href, new).await,
            AnyBackend::Imap(b) => b.create_mailbox(href).await,
        }
    }

    async fn remove_collection(&self, href: &str) -> Result<(), BackendError> {
        match self {
            AnyBackend::Dav(b) => b.remove_collection(href).await,
            AnyBackend::Imap(b) => b.remove_mailbox(href).await,
        }
    }

    async fn set_properties(
        &self,
        href: &str,
        properties: &[Property],
    ) -> Result<(), BackendError> {
        delegate!(self, b => b.set_properties(href, properties).await)
    }
}

/// A [`MailBackend`] method on the mail back end this is; other kinds hold no mail.
macro_rules! mail {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            AnyBackend::Imap($b) => $call,
            AnyBackend::Dav(_) => Err(BackendError::Unsupported("a DAV server holds no mail")),
        }
    };
}

/// Each method of [`MailBackend`] on a mail back end; other kinds hold no mail.
impl MailBackend for AnyBackend {
    async fn discover(&self) -> Result<Discovered, BackendError> {
        Backend::discover(self).await
    }

    async fn changes(&self, mailbox: &Href, state: &str) -> Result<MailChanges, BackendError> {
        mail!(self, b => b.changes(mailbox, state).await)
    }

    async fn flags(&self, mailbox: &Href, uids: &[u32]) -> Result<Vec<BackendSeen>, BackendError> {
        mail!(self, b => b.flags(mailbox, uids).await)
    }

    async fn sizes(&self, mailbox: &Href, uids: &[u32]) -> Result<Vec<(u32, u64)>, BackendError> {
        mail!(self, b => b.sizes(mailbox, uids).await)
    }

    async fn fetch(&self, mailbox: &Href, uids: &[u32]) -> Result<Vec<MailMessage>, BackendError> {
        mail!(self, b => b.fetch(mailbox, uids).await)
    }

    async fn fetch_part(
        &self,
        mailbox: &Href,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> Result<Option<MessagePart>, BackendError> {
        mail!(self, b => b.fetch_part(mailbox, uid, offset, len).await)
    }

    async fn store(
        &self,
        mailbox: &Href,
        uid: u32,
        add: &Flags,
        remove: &Flags,
        unchanged_since: u64,
    ) -> Result<Option<u64>, BackendError> {
        mail!(self, b => b.store(mailbox, uid, add, remove, unchanged_since).await)
    }

    async fn expunge(&self, mailbox: &Href, uid: u32) -> Result<(), BackendError> {
        mail!(self, b => b.expunge(mailbox, uid).await)
    }

    async fn watch(&self, mailbox: &Href, max: std::time::Duration) -> Result<bool, BackendError> {
        mail!(self, b => b.watch(mailbox, max).await)
    }

    async fn append(
        &self,
        mailbox: &Href,
        flags: &Flags,
        body: &[u8],
    ) -> Result<Option<(u32, u32)>, BackendError> {
        mail!(self, b => b.append(mailbox, flags, body).await)
    }

    async fn move_message(
        &self,
        from: &Href,
        uidvalidity: u32,
        uid: u32,
        to: &Href,
    ) -> Result<Moved, BackendError> {
        mail!(self, b => b.move_message(from, uidvalidity, uid, to).await)
    }
}
