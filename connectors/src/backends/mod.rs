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
//! - [`AnyBackend`]: the back end of one source, whatever its kind.

pub mod dav;
pub mod imap;

use std::collections::BTreeMap;
use std::future::Future;

use postern_core::ids::Href;
use postern_core::model::CollectionKind;
use postern_core::plan::{BackendCopy, BackendSignal, Precondition};

use crate::config::{Source, SourceKind};

/// The source kinds this connector syncs (announced to the gateway in its Hello).
pub const KINDS: &[&str] = &["caldav", "carddav"];

/// What went wrong talking to a back end. The round that meets it fails and is
/// retried; nothing is assumed about the back end's state.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A CalDAV or CardDAV server.
    #[error(transparent)]
    Dav(#[from] dav::DavError),
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

/// The back end of one source, whatever its kind.
pub enum AnyBackend {
    /// CalDAV or CardDAV.
    Dav(dav::DavBackend),
}

impl AnyBackend {
    /// Opens the back end a source names; `Ok(None)` for a kind this connector
    /// cannot sync.
    pub fn open(source: &Source) -> Result<Option<AnyBackend>, BackendError> {
        let kind = match source.kind {
            SourceKind::CalDav => dav::DavKind::CalDav,
            SourceKind::CardDav => dav::DavKind::CardDav,
            SourceKind::Imap => return Ok(None),
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
        }
    };
}

impl Backend for AnyBackend {
    fn kind(&self) -> CollectionKind {
        delegate!(self, b => b.kind())
    }

    async fn discover(&self) -> Result<Discovered, BackendError> {
        delegate!(self, b => b.discover().await)
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
        delegate!(self, b => b.place_for(homes, id, display_name))
    }

    async fn create_collection(
        &self,
        href: &str,
        new: &NewCollection<'_>,
    ) -> Result<(), BackendError> {
        delegate!(self, b => b.create_collection(href, new).await)
    }

    async fn remove_collection(&self, href: &str) -> Result<(), BackendError> {
        delegate!(self, b => b.remove_collection(href).await)
    }

    async fn set_properties(
        &self,
        href: &str,
        properties: &[Property],
    ) -> Result<(), BackendError> {
        delegate!(self, b => b.set_properties(href, properties).await)
    }
}
