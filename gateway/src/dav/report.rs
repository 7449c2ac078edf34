//! REPORT: `calendar-multiget`, `addressbook-multiget`, `sync-collection` (RFC 6578),
//! `calendar-query` and `addressbook-query` (the full filter grammar, matched by
//! `postern_davproto::query`), `free-busy-query` (RFC 4791 §7.10), and, on any
//! resource, `principal-property-search` and `principal-search-property-set` (RFC 3744;
//! a user sees no other principal, so the search finds nothing). Calendar data can be
//! asked `expand`ed or with a `limit-recurrence-set` (RFC 4791 §9.6); floating times
//! are read in the zone the request names, else the calendar's, else UTC.
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

use axum::response::{IntoResponse, Response};
use postern_davxml::{CALDAV, CARDDAV, DAV, Element, Name, Value};

use super::path::{self, Kind, Target};
use super::{DavError, DavRequest, DavState, multistatus, props, stream};
use crate::store::dav::{DavCollection, DavItem};
use calcard::common::timezone::Tz;
use postern_davproto::expand;
use postern_davproto::query::{self, CardFilter, CompFilter, QueryError, TimeRange};

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

/// How calendar data is asked for (`<C:calendar-data>`'s children).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// As stored.
    Whole,
    /// Each occurrence in the range, in UTC.
    Expand(TimeRange),
    /// The master and the overridden occurrences in the range.
    Limit(TimeRange),
}

impl Shape {
    fn from_query(root: &Element) -> Result<Self, DavError> {
        let data = root
            .child(DAV, "prop")
            .and_then(|p| p.child(CALDAV, "calendar-data"));
        let range = |e: &Element| TimeRange::from_xml(e).map_err(query_error);
        Ok(match data {
            Some(d) => match (
                d.child(CALDAV, "expand"),
                d.child(CALDAV, "limit-recurrence-set"),
            ) {
                (Some(e), _) => Shape::Expand(range(e)?),
                (None, Some(l)) => Shape::Limit(range(l)?),
                (None, None) => Shape::Whole,
            },
            None => Shape::Whole,
        })
    }
}

/// What answers need to shape calendar data.
#[derive(Debug, Clone, Copy)]
struct Context {
    shape: Shape,
    tz: Tz,
    max_occurrences: usize,
}

/// A query error as the DAV answer the RFCs name.
fn query_error(e: QueryError) -> DavError {
    match e {
        QueryError::Invalid(why) => {
            let _ = why;
            DavError::Forbidden(Some(Name::new(CALDAV, "valid-filter")))
        }
        QueryError::Collation(_) => {
            DavError::Forbidden(Some(Name::new(CALDAV, "supported-collation")))
        }
        e @ QueryError::TooManyOccurrences(_) => DavError::InsufficientStorage(e.to_string()),
    }
}

fn item_response(
    w: &mut postern_davxml::Writer,
    href: &str,
    item: &DavItem,
    kind: Kind,
    wanted: &[Name],
    cx: &Context,
) -> Result<(), DavError> {
    let mut all = props::item(item);
    if wanted.contains(&data_name(kind)) {
        let content = item.content.as_deref().unwrap_or_default();
        let shaped = match cx.shape {
            Shape::Whole => None,
            Shape::Expand(r) => {
                Some(expand::expand(content, &r, cx.tz, cx.max_occurrences).map_err(query_error)?)
            }
            Shape::Limit(r) => Some(expand::limit_recurrence_set(content, &r, cx.tz)),
        };
        let text = String::from_utf8_lossy(shaped.as_deref().unwrap_or(content)).into_owned();
        all.push((data_name(kind), Value::Text(text)));
    }
    let (found, missing) = props::select(all, Some(wanted));
    w.response(href, &found, &missing);
    Ok(())
}

/// The zone a query's floating times are read in: the request's `<C:timezone>` or
/// `<C:timezone-id>` (RFC 7809), else the calendar's, else UTC.
fn zone(root: &Element, c: &DavCollection) -> Tz {
    root.child(CALDAV, "timezone")
        .and_then(|t| query::calendar::zone_of(&t.text))
        .or_else(|| {
            root.child(CALDAV, "timezone-id")
                .and_then(|t| t.trimmed().parse().ok())
        })
        .or_else(|| query::calendar::zone_of(&c.timezone))
        .unwrap_or(Tz::UTC)
}

/// Answers REPORT on a collection.
pub async fn report(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let root = super::parse_xml(&req.body, state.limits.xml())?;
    // Principal searches (RFC 3744 §9.3, §9.4): a user sees only themselves.
    if root.is(DAV, "principal-property-search") {
        return Ok(multistatus(postern_davxml::Writer::multistatus().finish()));
    }
    if root.is(DAV, "principal-search-property-set") {
        return Ok((
            axum::http::StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/xml; charset=utf-8",
            )],
            r#"<?xml version="1.0" encoding="utf-8"?>
<d:principal-search-property-set xmlns:d="DAV:"><d:principal-search-property><d:prop><d:displayname/></d:prop><d:description xml:lang="en">Display name</d:description></d:principal-search-property></d:principal-search-property-set>"#,
        )
            .into_response());
    }
    let (kind, name) = match &req.target {
        Target::Collection(kind, _, name) => (*kind, name.clone()),
        // Multiget on a single item is valid too; other reports need a collection.
        Target::Item(kind, _, coll, _) if root.name.ends_with("multiget") => (*kind, coll.clone()),
        _ => return Err(DavError::Forbidden(None)),
    };
    let c = super::own_collection(state, req, kind, &name).await?;
    let wanted = wanted(&root, kind);
    let cx = Context {
        shape: Shape::from_query(&root)?,
        tz: zone(&root, &c),
        max_occurrences: state.limits.max_occurrences,
    };
    match (root.ns.as_str(), root.name.as_str()) {
        (CALDAV, "calendar-multiget") | (CARDDAV, "addressbook-multiget") => {
            multiget(state, req, &c, kind, &root, &wanted, &cx).await
        }
        (DAV, "sync-collection") => sync(state, req, c, kind, &root, wanted, cx).await,
        (CALDAV, "calendar-query") | (CARDDAV, "addressbook-query") => {
            query_report(state, req, c, kind, &root, wanted, cx).await
        }
        (CALDAV, "free-busy-query") if kind == Kind::Calendars => {
            free_busy(state, req, c, &root, cx).await
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
    cx: &Context,
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
                cx,
            )?,
            None => w.status(h, "404 Not Found"),
        }
    }
    Ok(multistatus(w.finish()))
}

/// Every item whose content matches the filter, read and sent a page at a time; an
/// addressbook-query's `limit` ends the answer with a 507 for the collection after
/// that many (RFC 6352 §8.6.1).
async fn query_report(
    state: &DavState,
    req: &DavRequest,
    c: DavCollection,
    kind: Kind,
    root: &Element,
    wanted: Vec<Name>,
    cx: Context,
) -> Result<Response, DavError> {
    let cal = match kind {
        Kind::Calendars => CompFilter::from_query(root).map_err(query_error)?,
        Kind::AddressBooks => None,
    };
    let card = match kind {
        Kind::AddressBooks => CardFilter::from_query(root).map_err(|e| match e {
            QueryError::Collation(_) => {
                DavError::Forbidden(Some(Name::new(CARDDAV, "supported-collation")))
            }
            _ => DavError::Forbidden(Some(Name::new(CARDDAV, "supported-filter"))),
        })?,
        Kind::Calendars => CardFilter::default(),
    };
    let nresults = root
        .child(CARDDAV, "limit")
        .and_then(|l| l.child(CARDDAV, "nresults"))
        .and_then(|n| n.trimmed().parse::<usize>().ok())
        .filter(|_| kind == Kind::AddressBooks);
    let mut pages = state
        .store
        .dav_item_pages(req.who.tenant, c.id, true, stream::PAGE);
    let login = req.who.login.clone();
    let (limit, here) = (state.limits.max_answer_bytes, req.path.clone());
    stream::members(limit, move |mut m| async move {
        let mut sent = 0usize;
        'pages: while let Some(page) = pages.next().await? {
            for i in &page {
                let content = i.content.as_deref().unwrap_or_default();
                let keep = match kind {
                    Kind::Calendars => {
                        query::calendar::matches(content, cal.as_ref(), cx.tz, cx.max_occurrences)
                            .map_err(query_error)?
                    }
                    Kind::AddressBooks => query::card::matches(content, &card),
                };
                if !keep {
                    continue;
                }
                if nresults.is_some_and(|n| sent >= n) {
                    m.w.status(&here, "507 Insufficient Storage");
                    break 'pages;
                }
                let href = path::item(kind, &login, &c.name, &i.name);
                item_response(&mut m.w, &href, i, kind, &wanted, &cx)?;
                sent += 1;
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

/// free-busy-query: the busy time of every event in the collection in the asked range,
/// as one VFREEBUSY (RFC 4791 §7.10).
async fn free_busy(
    state: &DavState,
    req: &DavRequest,
    c: DavCollection,
    root: &Element,
    cx: Context,
) -> Result<Response, DavError> {
    let range = root
        .child(CALDAV, "time-range")
        .ok_or_else(|| DavError::BadRequest(None, "free-busy-query needs a time-range".into()))
        .and_then(|t| TimeRange::from_xml(t).map_err(query_error))?;
    let mut busy = expand::FreeBusy::new(range, cx.tz, cx.max_occurrences);
    let mut pages = state
        .store
        .dav_item_pages(req.who.tenant, c.id, true, stream::PAGE);
    while let Some(page) = pages.next().await? {
        for i in &page {
            busy.add(i.content.as_deref().unwrap_or_default())
                .map_err(query_error)?;
        }
    }
    let body = busy.finish(chrono::Utc::now().timestamp_millis());
    Ok((
        axum::http::StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/calendar; charset=utf-8",
        )],
        body,
    )
        .into_response())
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
    cx: Context,
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
                    (Some(_), Some(i)) => item_response(&mut m.w, &href, i, kind, &wanted, &cx)?,
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
