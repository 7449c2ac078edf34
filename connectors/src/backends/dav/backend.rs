//! CalDAV and CardDAV as a [`Backend`]: discovery, sync-collection with the ETag
//! listing fallback, multiget, conditional PUT and DELETE, MKCOL/MKCALENDAR.

use postern_core::ids::Href;
use postern_core::model::CollectionKind;
use postern_core::plan::{BackendCopy, BackendSignal, Precondition};
use tracing::info;

use super::{DavClient, DavKind, discovery, listing, mkcol, multiget, sync_collection, write};
use crate::backends::{
    Backend, BackendError, Changes, Discovered, NewCollection, Observed, Property, WriteOutcome,
};

/// A CalDAV or CardDAV server, as one source sees it.
pub struct DavBackend {
    client: DavClient,
    kind: DavKind,
}

impl DavBackend {
    /// The back end `client` talks to, holding collections of `kind`.
    pub fn new(client: DavClient, kind: DavKind) -> Self {
        DavBackend { client, kind }
    }
}

impl Backend for DavBackend {
    fn kind(&self) -> CollectionKind {
        self.kind.collection_kind()
    }

    async fn discover(&self) -> Result<Discovered, BackendError> {
        Ok(discovery::discover(&self.client, self.kind).await?)
    }

    /// The very first import lists instead of asking sync-collection for everything:
    /// some servers (Radicale) build their sync history item by item on that first
    /// call, which costs more than the import itself. The next round asks with an
    /// empty token, finds everything already known, and keeps the token from then on.
    async fn changes(
        &self,
        collection: &Href,
        state: &str,
        supports_sync: bool,
        fresh: bool,
    ) -> Result<Changes, BackendError> {
        let path = collection.as_str();
        if supports_sync && !fresh {
            match sync_collection::changes_since(&self.client, path, state).await? {
                sync_collection::SyncOutcome::Changes { signals, token, .. } => {
                    let observed = if state.is_empty() {
                        // An empty token lists every member that exists: anything
                        // known but not listed is gone.
                        Observed::Listing(
                            signals
                                .into_iter()
                                .filter_map(|s| match s {
                                    BackendSignal::Changed { href, version } => {
                                        Some((href, version))
                                    }
                                    BackendSignal::Deleted(_) => None,
                                })
                                .collect(),
                        )
                    } else {
                        Observed::Delta(signals)
                    };
                    return Ok(Changes {
                        observed,
                        new_state: token,
                    });
                }
                sync_collection::SyncOutcome::InvalidToken if !state.is_empty() => {
                    info!(collection = %collection, "back end forgot our sync token; comparing a full listing");
                    // A fresh token first, so changes made during the listing are seen
                    // next round.
                    let fresh = match sync_collection::changes_since(&self.client, path, "").await?
                    {
                        sync_collection::SyncOutcome::Changes { token, .. } => token,
                        _ => String::new(),
                    };
                    return Ok(Changes {
                        observed: Observed::Listing(listing::list(&self.client, path).await?),
                        new_state: fresh,
                    });
                }
                _ => {
                    info!(collection = %collection, "back end refuses sync-collection; using ETag listings")
                }
            }
        }
        Ok(Changes {
            observed: Observed::Listing(listing::list(&self.client, path).await?),
            new_state: String::new(),
        })
    }

    async fn fetch(
        &self,
        collection: &Href,
        wanted: &[Href],
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<(Vec<BackendCopy>, Vec<Href>), BackendError> {
        Ok(
            multiget::fetch(&self.client, self.kind, collection.as_str(), wanted, |d| {
                progress(d)
            })
            .await?,
        )
    }

    async fn put(
        &self,
        href: &Href,
        precondition: &Precondition,
        content: &[u8],
    ) -> Result<WriteOutcome, BackendError> {
        let ctype = self.kind.collection_kind().content_type();
        Ok(write::put(&self.client, href, precondition, content, ctype).await?)
    }

    async fn delete(&self, href: &Href, if_match: &str) -> Result<WriteOutcome, BackendError> {
        Ok(write::delete(&self.client, href, if_match).await?)
    }

    /// `<home><slug of the display name>-<first part of the id>/`.
    fn place_for(&self, homes: &[String], id: &str, display_name: &str) -> Option<String> {
        let home = homes.first()?;
        let name = id.split('-').next().unwrap_or("new");
        let slug = display_name
            .chars()
            .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
            .collect::<String>();
        Some(format!(
            "{home}{}-{name}/",
            if slug.is_empty() { "collection" } else { &slug }
        ))
    }

    async fn create_collection(
        &self,
        href: &str,
        new: &NewCollection<'_>,
    ) -> Result<(), BackendError> {
        Ok(mkcol::create(
            &self.client,
            self.kind,
            href,
            new.display_name,
            new.properties,
            new.components,
        )
        .await?)
    }

    async fn remove_collection(&self, href: &str) -> Result<(), BackendError> {
        Ok(mkcol::remove(&self.client, href).await?)
    }

    async fn set_properties(
        &self,
        href: &str,
        properties: &[Property],
    ) -> Result<(), BackendError> {
        Ok(mkcol::set_properties(&self.client, href, properties).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_collection_has_one_place_whatever_retries() {
        let b = DavBackend::new(
            DavClient::new("http://127.0.0.1:1/dav/", "u", "p").unwrap(),
            DavKind::CalDav,
        );
        let homes = vec!["/u/calendars/".to_string()];
        let id = "3f2a9c1e-0000-4000-8000-000000000000";
        let at = b.place_for(&homes, id, "Team Work!").unwrap();
        assert_eq!(at, "/u/calendars/TeamWork-3f2a9c1e/");
        assert_eq!(
            b.place_for(&homes, id, "Team Work!").as_deref(),
            Some(at.as_str())
        );
        assert_eq!(
            b.place_for(&homes, id, "ü").as_deref(),
            Some("/u/calendars/collection-3f2a9c1e/")
        );
        assert_eq!(b.place_for(&[], id, "x"), None, "no home, no place");
    }
}
