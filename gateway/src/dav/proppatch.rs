//! PROPPATCH of a collection: display name, colour, order, description, the
//! calendar's time zone, and dead properties in any namespace (kept on the gateway and
//! carried to the back end by the connector). Live properties the server computes are
//! refused one by one (403 in the multistatus); per RFC 4918 the whole request then
//! fails (424 for the others) and nothing is changed.

use axum::response::Response;
use postern_davxml::{APPLE, CALDAV, CARDDAV, CS, DAV, Element, Name};

use super::path::{self, Kind, Target};
use super::{DavError, DavRequest, DavState, multistatus};
use crate::store::dav::CollectionProps;

/// One requested change: a property and its new value (`None` to remove).
/// The properties a `propertyupdate` body sets (with their element) or removes
/// (`None`), in order. Shared with plain resources ([`super::folder`]).
pub fn changes(
    body: &[u8],
    xml: postern_davxml::Limits,
) -> Result<Vec<(Name, Option<Element>)>, DavError> {
    let root = super::parse_xml(body, xml)?;
    if !root.is(DAV, "propertyupdate") {
        return Err(DavError::BadRequest(None, "expected propertyupdate".into()));
    }
    let mut out = Vec::new();
    for op in &root.children {
        let set = op.is(DAV, "set");
        if !set && !op.is(DAV, "remove") {
            continue;
        }
        for prop in op.children_named(DAV, "prop") {
            for p in &prop.children {
                out.push((Name::new(&p.ns, &p.name), set.then(|| p.clone())));
            }
        }
    }
    Ok(out)
}

/// What a PROPPATCH may do to one property of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settable {
    /// A property the server computes (resourcetype, sync-token...): 403.
    Protected,
    /// Display name, colour, order, description, time zone.
    Known,
    /// Any other: kept as a dead property.
    Dead,
}

/// The live properties of collections, which clients cannot set.
const PROTECTED: &[(&str, &str)] = &[
    (DAV, "resourcetype"),
    (DAV, "getetag"),
    (DAV, "getcontenttype"),
    (DAV, "getcontentlength"),
    (DAV, "getlastmodified"),
    (DAV, "creationdate"),
    (DAV, "sync-token"),
    (DAV, "supported-report-set"),
    (DAV, "current-user-privilege-set"),
    (DAV, "current-user-principal"),
    (DAV, "owner"),
    (DAV, "lockdiscovery"),
    (DAV, "supportedlock"),
    (CS, "getctag"),
    (CALDAV, "supported-calendar-component-set"),
    (CALDAV, "supported-calendar-data"),
    (CALDAV, "max-resource-size"),
    (CARDDAV, "supported-address-data"),
    (CARDDAV, "max-resource-size"),
];

/// How a property of a collection of `kind` may be set.
pub fn settable(kind: Kind, n: &Name) -> Settable {
    if PROTECTED.iter().any(|(ns, l)| n.ns == *ns && n.local == *l) {
        return Settable::Protected;
    }
    let known = (n.ns == DAV && n.local == "displayname")
        || (n.ns == APPLE && (n.local == "calendar-color" || n.local == "calendar-order"))
        || (kind == Kind::Calendars
            && n.ns == CALDAV
            && (n.local == "calendar-description" || n.local == "calendar-timezone"))
        || (kind == Kind::AddressBooks && n.ns == CARDDAV && n.local == "addressbook-description");
    if known {
        Settable::Known
    } else {
        Settable::Dead
    }
}

/// Whether a calendar-timezone value is a calendar holding one time zone.
pub fn valid_timezone(text: &str) -> bool {
    calcard::icalendar::ICalendar::parse(text).is_ok_and(|c| c.timezones().count() == 1)
}

/// The `{ns}name` key of a dead property.
pub fn key(n: &Name) -> String {
    format!("{{{}}}{}", n.ns, n.local)
}

/// Answers PROPPATCH of a collection: the properties [`settable`] allows, all or
/// nothing (RFC 4918 §9.2: one refused property fails the others with 424). Removing a
/// property that is not set succeeds.
pub async fn proppatch(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let Target::Collection(kind, _, name) = &req.target else {
        return Err(DavError::Forbidden(None));
    };
    let c = super::own_collection(state, req, *kind, name).await?;
    let asked = changes(&req.body, state.limits.xml())?;
    let refusal = |n: &Name, e: &Option<Element>| -> Option<&'static str> {
        match settable(*kind, n) {
            Settable::Protected => Some("403 Forbidden"),
            Settable::Known if n.local == "calendar-timezone" => e
                .as_ref()
                .filter(|e| !valid_timezone(&e.text))
                .map(|_| "403 Forbidden"),
            Settable::Known if n.local == "calendar-order" => e
                .as_ref()
                .filter(|e| e.trimmed().parse::<i32>().is_err())
                .map(|_| "409 Conflict"),
            _ => None,
        }
    };
    let all_ok = asked.iter().all(|(n, e)| refusal(n, e).is_none());
    let mut props = CollectionProps::default();
    let mut results: Vec<(Name, &str)> = Vec::new();
    for (n, e) in &asked {
        if let Some(why) = refusal(n, e) {
            results.push((n.clone(), why));
            continue;
        }
        if !all_ok {
            results.push((n.clone(), "424 Failed Dependency"));
            continue;
        }
        let text = || {
            e.as_ref()
                .map(|e| e.trimmed().to_string())
                .unwrap_or_default()
        };
        match (settable(*kind, n), n.local.as_str()) {
            (Settable::Known, "displayname") => props.display_name = Some(text()),
            (Settable::Known, "calendar-color") => props.color = Some(text()),
            (Settable::Known, "calendar-order") => {
                props.order = Some(text().parse().unwrap_or(0));
            }
            (Settable::Known, "calendar-timezone") => {
                props.timezone = Some(e.as_ref().map(|e| e.text.clone()).unwrap_or_default());
            }
            (Settable::Known, _) => props.description = Some(text()),
            _ => props
                .dead
                .push((key(n), e.as_ref().map(postern_davxml::inner_xml))),
        }
        results.push((n.clone(), "200 OK"));
    }
    if all_ok && !asked.is_empty() {
        state
            .store
            .set_dav_props(req.who.tenant, c.id, &props)
            .await?;
    }
    let mut w = postern_davxml::Writer::multistatus();
    w.propstat(&path::collection(*kind, &req.who.login, &c.name), &results);
    Ok(multistatus(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_clients_may_set() {
        let c = Kind::Calendars;
        assert_eq!(settable(c, &Name::new(DAV, "displayname")), Settable::Known);
        assert_eq!(
            settable(c, &Name::new(CALDAV, "calendar-description")),
            Settable::Known
        );
        assert_eq!(
            settable(c, &Name::new(CALDAV, "calendar-timezone")),
            Settable::Known
        );
        assert_eq!(
            settable(c, &Name::new(DAV, "resourcetype")),
            Settable::Protected
        );
        assert_eq!(settable(c, &Name::new(CS, "getctag")), Settable::Protected);
        assert_eq!(settable(c, &Name::new("urn:x", "anything")), Settable::Dead);
        assert_eq!(
            settable(
                Kind::AddressBooks,
                &Name::new(CARDDAV, "addressbook-description")
            ),
            Settable::Known
        );
        assert!(valid_timezone(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n"
        ));
        assert!(!valid_timezone("not a calendar"));
    }
}
