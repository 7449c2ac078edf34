//! PUT of an item. The data is validated with calcard (a calendar object resource for
//! calendars, a vCard for address books), checked for a UID already used by another
//! item, size-limited, and stored exactly as sent; `If-Match` / `If-None-Match: *` are
//! honoured. The write is journalled and reaches the back end through the connector.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_davxml::{CALDAV, CARDDAV, DAV, Name, Writer};

use super::path::{self, Kind, Target};
use super::{DavError, DavRequest, DavState};
use crate::store::StoreError;

/// What is wrong with a body, as the DAV precondition a client understands.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Wrong media type (415).
    MediaType(Name),
    /// Unparseable or not a single object (400).
    Data(Name, String),
}

/// Checks a body for `kind`; returns its UID.
pub fn validate(kind: Kind, content_type: Option<&str>, body: &[u8]) -> Result<String, Invalid> {
    let (data_pre, media_pre, wanted) = match kind {
        Kind::Calendars => (
            Name::new(CALDAV, "valid-calendar-data"),
            Name::new(CALDAV, "supported-calendar-data"),
            "text/calendar",
        ),
        Kind::AddressBooks => (
            Name::new(CARDDAV, "valid-address-data"),
            Name::new(CARDDAV, "supported-address-data"),
            "text/vcard",
        ),
    };
    if let Some(ct) = content_type {
        let base = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let ok = base == wanted
            || (kind == Kind::AddressBooks && base == "text/x-vcard")
            || base.is_empty();
        if !ok {
            return Err(Invalid::MediaType(media_pre));
        }
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Invalid::Data(data_pre.clone(), "not UTF-8".into()))?;
    let uid = postern_core::content::uid(body).unwrap_or_default();
    match kind {
        Kind::Calendars => {
            let cal = calcard::icalendar::ICalendar::parse(text)
                .map_err(|_| Invalid::Data(data_pre.clone(), "not an iCalendar object".into()))?;
            if cal.components.len() < 2 {
                return Err(Invalid::Data(data_pre, "no component".into()));
            }
            let object = Name::new(CALDAV, "valid-calendar-object-resource");
            if postern_core::content::property(body, "METHOD").is_some() {
                return Err(Invalid::Data(
                    object,
                    "METHOD is not allowed in a stored calendar object".into(),
                ));
            }
            if uid.is_empty() {
                return Err(Invalid::Data(object, "the object has no UID".into()));
            }
            let uids: std::collections::BTreeSet<String> =
                postern_core::content::unfolded_lines(body)
                    .iter()
                    .filter_map(|l| {
                        l.split_once(':')
                            .filter(|(h, _)| h.eq_ignore_ascii_case("UID"))
                            .map(|(_, v)| v.trim().to_string())
                    })
                    .collect();
            if uids.len() > 1 {
                return Err(Invalid::Data(
                    object,
                    "more than one UID in one object".into(),
                ));
            }
        }
        Kind::AddressBooks => {
            calcard::vcard::VCard::parse(text)
                .map_err(|_| Invalid::Data(data_pre.clone(), "not a vCard".into()))?;
        }
    }
    Ok(uid)
}

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
    if let Some(other) = state
        .store
        .uid_taken(req.who.tenant, c.id, &uid, name)
        .await?
    {
        let pre = match kind {
            Kind::Calendars => Name::new(CALDAV, "no-uid-conflict"),
            Kind::AddressBooks => Name::new(CARDDAV, "no-uid-conflict"),
        };
        let href = path::item(*kind, &req.who.login, &c.name, &other);
        return Err(DavError::Conflict(
            pre,
            Writer::element(&Name::new(DAV, "href"), &postern_davxml::escape(&href)),
        ));
    }
    let content_type = match kind {
        Kind::Calendars => "text/calendar; charset=utf-8",
        Kind::AddressBooks => "text/vcard; charset=utf-8",
    };
    let expected = existing.as_ref().map(|i| i.etag.as_str());
    let item = match state
        .store
        .put_item(
            req.who.tenant,
            c.id,
            name,
            &req.body,
            content_type,
            expected,
        )
        .await
    {
        Ok(i) => i,
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

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250101T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn accepts_good_data_and_names_what_is_wrong() {
        assert_eq!(
            validate(Kind::Calendars, Some("text/calendar; charset=utf-8"), EVENT),
            Ok("a".into())
        );
        assert!(matches!(
            validate(Kind::Calendars, Some("application/json"), EVENT),
            Err(Invalid::MediaType(_))
        ));
        assert!(
            matches!(validate(Kind::Calendars, None, b"hello"), Err(Invalid::Data(p, _)) if p.local == "valid-calendar-data")
        );
        let with_method =
            String::from_utf8_lossy(EVENT).replace("VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST");
        assert!(
            matches!(validate(Kind::Calendars, None, with_method.as_bytes()), Err(Invalid::Data(p, _)) if p.local == "valid-calendar-object-resource")
        );
        let card = b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:c\r\nFN:C\r\nEND:VCARD\r\n";
        assert_eq!(
            validate(Kind::AddressBooks, Some("text/vcard"), card),
            Ok("c".into())
        );
        assert!(
            matches!(validate(Kind::AddressBooks, None, EVENT), Err(Invalid::Data(p, _)) if p.local == "valid-address-data")
        );
    }
}
