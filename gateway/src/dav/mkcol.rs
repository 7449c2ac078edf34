//! MKCALENDAR (RFC 4791 §5.3.1) and extended MKCOL (RFC 5689): a client makes a
//! calendar or address book. It is bound to the user's back-end source of that kind and
//! the connector creates it there; until then it already accepts items, which wait in
//! the journal like any other write.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_davxml::{APPLE, CALDAV, CARDDAV, DAV, Name};

use super::path::{Kind, Target};
use super::{DavError, DavRequest, DavState};
use crate::store::StoreError;

/// Display name and colour from the request body, and whether the asked resource
/// type fits the URL.
fn settings(
    kind: Kind,
    body: &[u8],
    xml: postern_davxml::Limits,
) -> Result<(String, String), DavError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((String::new(), String::new()));
    }
    let root = super::parse_xml(body, xml)?;
    let prop = root.child(DAV, "set").and_then(|s| s.child(DAV, "prop"));
    let text = |ns: &str, name: &str| {
        prop.and_then(|p| p.child(ns, name))
            .map(|e| e.trimmed().to_string())
            .unwrap_or_default()
    };
    if let Some(rt) = prop.and_then(|p| p.child(DAV, "resourcetype")) {
        let ok = match kind {
            Kind::Calendars => rt.child(CALDAV, "calendar").is_some(),
            Kind::AddressBooks => rt.child(CARDDAV, "addressbook").is_some(),
        };
        if !ok {
            return Err(DavError::Forbidden(Some(Name::new(
                DAV,
                "valid-resourcetype",
            ))));
        }
    }
    Ok((text(DAV, "displayname"), text(APPLE, "calendar-color")))
}

/// Answers MKCALENDAR and MKCOL.
pub async fn mkcol(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let Target::Collection(kind, _, name) = &req.target else {
        return Err(DavError::Forbidden(None));
    };
    if req.method.as_str() == "MKCALENDAR" && *kind != Kind::Calendars {
        return Err(DavError::Forbidden(Some(Name::new(
            CALDAV,
            "calendar-collection-location-ok",
        ))));
    }
    if req.method.as_str() == "MKCOL" && req.body.is_empty() {
        // A plain MKCOL would make a WebDAV folder, which this layout does not have.
        return Err(DavError::Forbidden(Some(Name::new(
            DAV,
            "valid-resourcetype",
        ))));
    }
    if name.chars().any(|c| c.is_control() || c == '%' || c == '/') || name.len() > 100 {
        return Err(DavError::BadRequest(
            None,
            "unusable collection name".into(),
        ));
    }
    let (display, color) = settings(*kind, &req.body, state.limits.xml())?;
    let display = if display.is_empty() {
        name.clone()
    } else {
        display
    };
    match state
        .store
        .create_dav_collection(
            req.who.tenant,
            req.who.user,
            kind.store_kind(),
            name,
            &display,
            &color,
        )
        .await
    {
        Ok(Some(_)) => Ok(StatusCode::CREATED.into_response()),
        Ok(None) => Err(DavError::Forbidden(Some(Name::new(DAV, "need-privileges")))),
        Err(StoreError::Conflict(_)) => Err(DavError::MethodNotAllowed),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_refuses_the_wrong_type() {
        let body = br#"<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop><d:displayname>Team</d:displayname><a:calendar-color>#00ff00</a:calendar-color></d:prop></d:set></c:mkcalendar>"#;
        assert_eq!(
            settings(Kind::Calendars, body, Default::default()).unwrap(),
            ("Team".into(), "#00ff00".into())
        );
        let mkcol = br#"<d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype></d:prop></d:set></d:mkcol>"#;
        assert!(settings(Kind::AddressBooks, mkcol, Default::default()).is_ok());
        assert!(settings(Kind::Calendars, mkcol, Default::default()).is_err());
    }
}
