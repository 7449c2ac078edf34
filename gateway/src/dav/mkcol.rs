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
use crate::store::dav::NewCollection;

/// Dead properties asked for: `{ns}name` and the markup to keep.
type DeadProps = Vec<(String, Option<String>)>;

/// The components a calendar may hold.
const COMPONENTS: &[&str] = &["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY"];

/// What the request body asks for, and whether the asked resource type fits the URL.
fn settings(
    kind: Kind,
    body: &[u8],
    xml: postern_davxml::Limits,
) -> Result<(NewCollection, DeadProps), DavError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((NewCollection::default(), Vec::new()));
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
    let mut components = Vec::new();
    if let Some(set) = prop.and_then(|p| p.child(CALDAV, "supported-calendar-component-set")) {
        for c in set.children_named(CALDAV, "comp") {
            let name = c.attr("name").unwrap_or("").to_ascii_uppercase();
            if !COMPONENTS.contains(&name.as_str()) {
                return Err(DavError::Forbidden(Some(Name::new(
                    CALDAV,
                    "supported-calendar-component",
                ))));
            }
            components.push(name);
        }
    }
    let timezone = prop
        .and_then(|p| p.child(CALDAV, "calendar-timezone"))
        .map(|e| e.text.clone())
        .unwrap_or_default();
    if !timezone.is_empty() && !super::proppatch::valid_timezone(&timezone) {
        return Err(DavError::Forbidden(Some(Name::new(
            CALDAV,
            "valid-calendar-data",
        ))));
    }
    let description = match kind {
        Kind::Calendars => text(CALDAV, "calendar-description"),
        Kind::AddressBooks => text(CARDDAV, "addressbook-description"),
    };
    // Whatever else is set becomes a dead property (the live ones are refused).
    let mut dead = Vec::new();
    for p in prop.map(|p| p.children.as_slice()).unwrap_or_default() {
        let n = Name::new(&p.ns, &p.name);
        let handled = matches!(
            (p.ns.as_str(), p.name.as_str()),
            (DAV, "resourcetype" | "displayname")
                | (APPLE, "calendar-color")
                | (
                    CALDAV,
                    "supported-calendar-component-set"
                        | "calendar-timezone"
                        | "calendar-description"
                )
                | (CARDDAV, "addressbook-description")
        );
        if handled {
            continue;
        }
        match super::proppatch::settable(kind, &n) {
            super::proppatch::Settable::Protected => {
                return Err(DavError::Forbidden(None));
            }
            _ => dead.push((
                super::proppatch::key(&n),
                Some(postern_davxml::inner_xml(p)),
            )),
        }
    }
    Ok((
        NewCollection {
            display_name: text(DAV, "displayname"),
            color: text(APPLE, "calendar-color"),
            description,
            timezone,
            components,
        },
        dead,
    ))
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
    let (mut made, dead) = settings(*kind, &req.body, state.limits.xml())?;
    if made.display_name.is_empty() {
        made.display_name = name.clone();
    }
    match state
        .store
        .create_dav_collection(req.who.tenant, req.who.user, kind.store_kind(), name, &made)
        .await
    {
        Ok(Some(id)) => {
            if !dead.is_empty() {
                let props = crate::store::dav::CollectionProps {
                    dead,
                    ..Default::default()
                };
                state
                    .store
                    .set_dav_props(req.who.tenant, id, &props)
                    .await?;
            }
            Ok(StatusCode::CREATED.into_response())
        }
        Ok(None) => Err(DavError::Forbidden(Some(Name::new(DAV, "need-privileges")))),
        // Something is there already (RFC 4791 §5.3.1.1).
        Err(StoreError::Conflict(_)) => Err(DavError::NotAllowed(Name::new(
            DAV,
            "resource-must-be-null",
        ))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_refuses_the_wrong_type() {
        let body = br#"<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop><d:displayname>Team</d:displayname><a:calendar-color>#00ff00</a:calendar-color></d:prop></d:set></c:mkcalendar>"#;
        let (made, dead) = settings(Kind::Calendars, body, Default::default()).unwrap();
        assert_eq!(
            (made.display_name.as_str(), made.color.as_str()),
            ("Team", "#00ff00")
        );
        assert!(dead.is_empty());
        let tasks = br#"<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><c:supported-calendar-component-set><c:comp name="VTODO"/></c:supported-calendar-component-set><c:calendar-description>Jobs</c:calendar-description><x:color xmlns:x="urn:x">red</x:color></d:prop></d:set></c:mkcalendar>"#;
        let (made, dead) = settings(Kind::Calendars, tasks, Default::default()).unwrap();
        assert_eq!(made.components, vec!["VTODO".to_string()]);
        assert_eq!(made.description, "Jobs");
        assert_eq!(
            dead,
            vec![("{urn:x}color".to_string(), Some("red".to_string()))]
        );
        let mkcol = br#"<d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype></d:prop></d:set></d:mkcol>"#;
        assert!(settings(Kind::AddressBooks, mkcol, Default::default()).is_ok());
        assert!(settings(Kind::Calendars, mkcol, Default::default()).is_err());
    }
}
