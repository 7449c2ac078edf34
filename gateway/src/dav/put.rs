//! PUT of an item. The data is checked as strictly as strict back ends check it
//! ([`postern_davproto::object`]: a calendar object resource for calendars, a vCard for
//! address books), checked for a UID already used by another item, size-limited, and
//! stored exactly as sent; `If-Match` / `If-None-Match: *` are honoured. The write is
//! journalled and reaches the back end through the connector.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_davproto::object::{Invalid, validate};
use postern_davxml::{CALDAV, CARDDAV, DAV, Name, Writer};

use super::path::{self, Kind, Target};
use super::{DavError, DavRequest, DavState};
use crate::store::StoreError;
use crate::store::items::Put;

/// Answers PUT.
pub async fn put(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let Target::Item(kind, _, coll, name) = &req.target else {
        return Err(DavError::MethodNotAllowed);
    };
    let c = super::own_collection(state, req, *kind, coll).await?;
    if c.mode != "two-way" {
        return Err(DavError::Forbidden(Some(Name::new(DAV, "need-privileges"))));
    }
    if req.body.len() > state.limits.max_item_bytes {
        return Err(DavError::TooLarge);
    }
    let uid = match validate(*kind, req.header("content-type"), &req.body) {
        Ok(uid) => uid,
        Err(Invalid::MediaType(p)) => return Err(DavError::UnsupportedMedia(p)),
        Err(Invalid::Data(p, why)) => return Err(DavError::BadRequest(Some(p), why)),
    };
    // A calendar made for some components only takes those (RFC 4791 §5.3.2.1).
    if *kind == Kind::Calendars
        && !c.components.is_empty()
        && !postern_davproto::object::main_component(&req.body)
            .is_some_and(|m| c.components.contains(&m))
    {
        return Err(DavError::Forbidden(Some(Name::new(
            CALDAV,
            "supported-calendar-component",
        ))));
    }
    let existing = state.store.dav_item(req.who.tenant, c.id, name).await?;
    let if_match = req.header("if-match").map(str::trim);
    let if_none_match = req.header("if-none-match").map(str::trim);
    match (&existing, if_match, if_none_match) {
        (Some(_), _, Some("*")) => return Err(DavError::PreconditionFailed),
        (None, Some(_), _) => return Err(DavError::PreconditionFailed),
        (Some(i), Some(m), _) if m != "*" && !m.split(',').any(|e| e.trim() == i.etag) => {
            return Err(DavError::PreconditionFailed);
        }
        _ => {}
    }
    let content_type = match kind {
        Kind::Calendars => "text/calendar; charset=utf-8",
        Kind::AddressBooks => "text/vcard; charset=utf-8",
    };
    let expected = existing.as_ref().map(|i| i.etag.as_str());
    let uid_conflict = |other: &str| {
        let pre = match kind {
            Kind::Calendars => Name::new(CALDAV, "no-uid-conflict"),
            Kind::AddressBooks => Name::new(CARDDAV, "no-uid-conflict"),
        };
        let href = path::item(*kind, &req.who.login, &c.name, other);
        DavError::Conflict(
            pre,
            Writer::element(&Name::new(DAV, "href"), &postern_davxml::escape(&href)),
        )
    };
    let item = match state
        .store
        .put_item_checked(
            req.who.tenant,
            c.id,
            name,
            &req.body,
            content_type,
            expected,
            Some(&uid),
        )
        .await
    {
        Ok(Put::Done(i)) => i,
        // One live item per UID, and an item keeps its UID (RFC 4791 §5.3.2.1,
        // RFC 6352 §6.3.2.1): the answer names the item that holds the UID.
        Ok(Put::UidTaken(other)) | Ok(Put::UidChanged(other)) => {
            return Err(uid_conflict(&other));
        }
        Err(StoreError::Conflict(_)) => return Err(DavError::PreconditionFailed),
        Err(e) => return Err(e.into()),
    };
    let status = if existing.is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    };
    Ok((status, [(header::ETAG, item.etag)]).into_response())
}
