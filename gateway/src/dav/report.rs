//! REPORT: `calendar-multiget`, `addressbook-multiget`, `sync-collection` (RFC 6578),
//! `calendar-query` and `addressbook-query` (filters in [`super::query`]).
//!
//! sync-collection handles what real clients send: an empty token returns every
//! member; an unknown, foreign or future token answers 403 `valid-sync-token` so the
//! client starts over; `Depth: 1` (Thunderbird) is accepted; a `limit` truncates with
//! a 507 for the collection and a token that resumes where the answer stopped;
//! deletions appear as 404 members.
//!
//! Answers over many items (a query, a sync from an empty token) are sent while they
//! are produced ([`super::stream`]); every lookup is by hash, so time stays linear.

use std::collections::HashMap;

use axum::response::Response;
use postern_davxml::{CALDAV, CARDDAV, DAV, Element, Name, Value};

use super::path::{self, Kind, Target};
use super::query::{CalendarFilter, CardFilter};
use super::{DavError, DavRequest, DavState, multistatus, props, stream};
use crate::store::dav::{DavCollection, DavItem};

/// Largest number of members one sync-collection answer carries without a limit.
const MAX_SYNC: i64 = 100_000;

fn data_name(kind: Kind) -> Name {
    match kind {
        Kind::Calendars => Name::new(CALDAV, "calendar-data"),
        Kind::AddressBooks => Name::new(CARDDAV, "address-data"),
    }
}

/// The properties asked for in a report's `prop` (default: etag and data).
fn wanted(root: &Element, kind: Kind) -> Vec<Name> {
    match root.child(DAV, "prop") {
        Some(p) => p
            .children
            .iter()
            .map(|c| Name::new(&c.ns, &c.name))
            .collect(),
        None => vec![Name::new(DAV, "getetag"), data_name(kind)],
    }
}

fn item_response(
    w: &mut postern_davxml::Writer,
    href: &str,
    item: &DavItem,
    kind: Kind,
    wanted: &[Name],
) {
    let mut all = props::item(item);
    if wanted.contains(&data_name(kind)) {
        let text =
            String::from_utf8_lossy(item.content.as_deref().unwrap_or_default()).into_owned();
        all.push((data_name(kind), Value::Text(text)));
    }
    let (found, missing) = props::select(all, Some(wanted));
    w.response(href, &found, &missing);
}

/// Answers REPORT on a collection.
pub async fn report(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let root = super::parse_xml(&req.body, state.limits.xml())?;
    let (kind, name) = match &req.target {
        Target::Collection(kind, _, name) => (*kind, name.clone()),
        // Multiget on a single item is valid too; other reports need a collection.
        Target::Item(kind, _, coll, _) if root.name.ends_with("multiget") => (*kind, coll.clone()),
        _ => return Err(DavError::Forbidden(None)),
    };
    let c = super::own_collection(state, req, kind, &name).await?;
    let wanted = wanted(&root, kind);
    match (root.ns.as_str(), root.name.as_str()) {
        (CALDAV, "calendar-multiget") | (CARDDAV, "addressbook-multiget") => {
            multiget(state, req, &c, kind, &root, &wanted).await
        }
        (DAV, "sync-collection") => sync(state, req, c, kind, &root, wanted).await,
        (CALDAV, "calendar-query") | (CARDDAV, "addressbook-query") => {
            query(state, req, c, kind, &root, wanted).await
        }
        _ => Err(DavError::Forbidden(Some(Name::new(
            DAV,
            "supported-report",
        )))),
    }
}

/// The items a client names (as many as its request body holds), in its order.
async fn multiget(
    state: &DavState,
    req: &DavRequest,
    c: &DavCollection,
    kind: Kind,
    root: &Element,
    wanted: &[Name],
) -> Result<Response, DavError> {
    let coll_href = path::collection(kind, &req.who.login, &c.name);
    let hrefs: Vec<String> = root
        .children_named(DAV, "href")
        .map(|h| h.trimmed().to_string())
        .collect();
    let names: Vec<String> = hrefs
        .iter()
        .filter_map(|h| path::item_name_in(h, &coll_href))
        .collect();
    let items: HashMap<String, DavItem> = state
        .store
        .dav_items_named(req.who.tenant, c.id, &names)
        .await?
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let mut w = postern_davxml::Writer::multistatus();
    for h in &hrefs {
        match path::item_name_in(h, &coll_href).and_then(|n| items.get(&n)) {
            Some(i) => item_response(
                &mut w,
                &path::item(kind, &req.who.login, &c.name, &i.name),
                i,
                kind,
                wanted,
            ),
            None => w.status(h, "404 Not Found"),
        }
    }
    Ok(multistatus(w.finish()))
}

/// Every item whose content matches the filter, read and sent a page at a time.
async fn query(
    state: &DavState,
    req: &DavRequest,
    c: DavCollection,
    kind: Kind,
    root: &Element,
    wanted: Vec<Name>,
) -> Result<Response, DavError> {
    let cal = CalendarFilter::from_query(root);
    let card = CardFilter::from_query(root);
    let mut pages = state
        .store
        .dav_item_pages(req.who.tenant, c.id, true, stream::PAGE);
    let login = req.who.login.clone();
    let (limit, here) = (state.limits.max_answer_bytes, req.path.clone());
    stream::members(limit, move |mut m| async move {
        while let Some(page) = pages.next().await? {
            for i in &page {
                let content = i.content.as_deref().unwrap_or_default();
                let keep = match kind {
                    Kind::Calendars => cal.matches(content),
                    Kind::AddressBooks => card.matches(content),
                };
                if keep {
                    let href = path::item(kind, &login, &c.name, &i.name);
                    item_response(&mut m.w, &href, i, kind, &wanted);
                }
            }
            m.flush().await?;
            if m.full() {
                m.w.status(&here, "507 Insufficient Storage");
                break;
            }
        }
        Ok(m)
    })
    .await
}

/// sync-collection (RFC 6578): the token is checked and the changes listed before the
/// answer starts; their data is read and sent a page of changes at a time.
async fn sync(
    state: &DavState,
    req: &DavRequest,
    c: DavCollection,
    kind: Kind,
    root: &Element,
    wanted: Vec<Name>,
) -> Result<Response, DavError> {
    let token = root
        .child(DAV, "sync-token")
        .map(|t| t.trimmed().to_string())
        .unwrap_or_default();
    let since = if token.is_empty() {
        0
    } else {
        props::parse_sync_token(&c, &token).ok_or(DavError::Forbidden(Some(Name::new(
            DAV,
            "valid-sync-token",
        ))))?
    };
    let limit = root
        .child(DAV, "limit")
        .and_then(|l| l.child(DAV, "nresults"))
        .and_then(|n| n.trimmed().parse::<i64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(MAX_SYNC);
    // The request every client repeats all day: nothing changed since its token.
    let mut changes = if since == c.head && !token.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .changes_since(req.who.tenant, c.id, since, limit)
            .await?
    };
    let truncated = changes.len() as i64 > limit;
    changes.truncate(limit as usize);
    let mut new_seq = if truncated {
        changes.last().map_or(since, |m| m.seq)
    } else {
        c.head.max(changes.last().map_or(0, |m| m.seq))
    };
    let max_bytes = state.limits.max_answer_bytes;
    let with_data = wanted.contains(&data_name(kind));
    let store = state.store.clone();
    let (tenant, login) = (req.who.tenant, req.who.login.clone());
    stream::members(max_bytes, move |mut m| async move {
        let mut truncated = truncated;
        for chunk in changes.chunks(stream::PAGE as usize) {
            let items: HashMap<String, DavItem> = if with_data {
                let names: Vec<String> = chunk
                    .iter()
                    .filter(|m| m.etag.is_some())
                    .map(|m| m.name.clone())
                    .collect();
                store
                    .dav_items_named(tenant, c.id, &names)
                    .await?
                    .into_iter()
                    .map(|i| (i.name.clone(), i))
                    .collect()
            } else {
                HashMap::new()
            };
            for change in chunk {
                let href = path::item(kind, &login, &c.name, &change.name);
                match (&change.etag, items.get(&change.name)) {
                    (None, _) if since > 0 => m.w.status(&href, "404 Not Found"),
                    (None, _) => {}
                    (Some(_), Some(i)) => item_response(&mut m.w, &href, i, kind, &wanted),
                    // Metadata only, or the item went away since the listing.
                    (Some(etag), None) => {
                        let all = vec![(Name::new(DAV, "getetag"), Value::Text(etag.clone()))];
                        let (found, missing) = props::select(all, Some(&wanted));
                        m.w.response(&href, &found, &missing);
                    }
                }
            }
            m.flush().await?;
            // The answer is as large as it may be: end it here, with a token that
            // resumes after the last change sent.
            if m.full() && chunk.last().map(|c| c.seq) != changes.last().map(|c| c.seq) {
                new_seq = chunk.last().map_or(new_seq, |c| c.seq);
                truncated = true;
                break;
            }
        }
        if truncated {
            m.w.status(
                &path::collection(kind, &login, &c.name),
                "507 Insufficient Storage",
            );
        }
        m.w.sync_token(&props::sync_token(&c, new_seq));
        Ok(m)
    })
    .await
}
