//! Discovery: from the configured URL to the user's collections.
//!
//! 1. PROPFIND depth 0 `current-user-principal` on the configured URL (then on the
//!    `/.well-known/` path if the URL does not say);
//! 2. PROPFIND depth 0 `calendar-home-set` / `addressbook-home-set` on the principal;
//! 3. PROPFIND depth 1 on each home: the members whose resourcetype is a calendar or
//!    address book are the collections, with their name, colour and sync support.
//!    (`sync-token` is not asked for here: Radicale computes it over every item, which
//!    costs seconds on a large collection.)
//!
//! A URL that is itself a collection is used as is.

use super::xml::{APPLE, DAV};
use super::{DavClient, DavError, DavKind, DavRequest, expect, multistatus};

pub use crate::backends::{Discovered, Found};

/// PROPFIND depth 0 for the principal (and, for a URL that is a collection, what it is).
pub fn principal_request(path: &str) -> DavRequest {
    DavRequest::xml(
        "PROPFIND",
        path,
        Some("0"),
        r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><current-user-principal/><resourcetype/></prop></propfind>"#
            .to_string(),
    )
}

/// PROPFIND depth 0 for the home set.
pub fn home_request(kind: DavKind, principal: &str) -> DavRequest {
    DavRequest::xml(
        "PROPFIND",
        principal,
        Some("0"),
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:" xmlns:x="{}"><prop><x:{}/></prop></propfind>"#,
            kind.ns(),
            kind.home_set()
        ),
    )
}

/// PROPFIND depth 1 listing a home's collections (or depth 0 on one collection).
pub fn collections_request(path: &str, depth: &'static str) -> DavRequest {
    DavRequest::xml(
        "PROPFIND",
        path,
        Some(depth),
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:" xmlns:a="{APPLE}"><prop><resourcetype/><displayname/><a:calendar-color/><supported-report-set/></prop></propfind>"#
        ),
    )
}

/// Reads `current-user-principal`, and whether the resource is itself a collection
/// of `kind`.
pub fn parse_principal(kind: DavKind, body: &[u8]) -> Result<(Option<String>, bool), DavError> {
    let (responses, _) = multistatus(body)?;
    let first = responses
        .first()
        .ok_or_else(|| DavError::Malformed("empty multistatus".into()))?;
    let principal = first
        .prop(DAV, "current-user-principal")
        .and_then(|p| p.child(DAV, "href"))
        .map(|h| super::normalize_href(h.trimmed()));
    let is_collection = first
        .prop(DAV, "resourcetype")
        .is_some_and(|r| r.child(kind.ns(), kind.resource_type()).is_some());
    Ok((principal, is_collection))
}

/// Reads the home-set hrefs.
pub fn parse_home(kind: DavKind, body: &[u8]) -> Result<Vec<String>, DavError> {
    let (responses, _) = multistatus(body)?;
    Ok(responses
        .iter()
        .filter_map(|r| r.prop(kind.ns(), kind.home_set()))
        .flat_map(|p| {
            p.children_named(DAV, "href")
                .map(|h| super::normalize_href(h.trimmed()))
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Reads the collections of `kind` in a depth-1 listing.
pub fn parse_collections(kind: DavKind, body: &[u8]) -> Result<Vec<Found>, DavError> {
    let (responses, _) = multistatus(body)?;
    Ok(responses
        .iter()
        .filter(|r| {
            r.prop(DAV, "resourcetype")
                .is_some_and(|t| t.child(kind.ns(), kind.resource_type()).is_some())
        })
        .map(|r| {
            // A server that does not list its reports may still support sync-collection:
            // try it, and fall back to a listing if it refuses.
            let reports = r.prop(DAV, "supported-report-set");
            let sync_report = reports.is_none_or(|s| s.find(DAV, "sync-collection").is_some());
            let color = r
                .prop(APPLE, "calendar-color")
                .map(|c| c.trimmed().to_string())
                .unwrap_or_default();
            Found {
                href: ensure_slash(&r.href),
                display_name: r
                    .prop(DAV, "displayname")
                    .map(|d| d.trimmed().to_string())
                    .unwrap_or_default(),
                color: color.get(..7).unwrap_or(&color).to_string(),
                supports_sync: sync_report,
                role: None,
                delimiter: None,
            }
        })
        .collect())
}

fn ensure_slash(h: &str) -> String {
    if h.ends_with('/') {
        h.to_string()
    } else {
        format!("{h}/")
    }
}

/// Runs discovery against a server.
pub async fn discover(client: &DavClient, kind: DavKind) -> Result<Discovered, DavError> {
    let base = client.base_path().to_string();
    let req = principal_request(&base);
    let resp = client.send(&req).await?;
    let (mut principal, mut is_collection) = (None, false);
    if resp.status == 207 {
        (principal, is_collection) = parse_principal(kind, &resp.body)?;
    }
    if is_collection {
        let req = collections_request(&base, "0");
        let resp = client.send(&req).await?;
        expect(&resp, &req, &[207])?;
        let parent = base
            .trim_end_matches('/')
            .rsplit_once('/')
            .map(|(p, _)| format!("{p}/"))
            .unwrap_or("/".into());
        return Ok(Discovered {
            collections: parse_collections(kind, &resp.body)?,
            homes: vec![parent],
        });
    }
    if principal.is_none() {
        let req = principal_request(kind.well_known());
        let resp = client.send(&req).await?;
        if resp.status == 207 {
            principal = parse_principal(kind, &resp.body)?.0;
        }
    }
    let principal = principal.ok_or_else(|| {
        DavError::Malformed(format!(
            "{base} names no current-user-principal; configure the principal or collection URL"
        ))
    })?;
    let req = home_request(kind, &principal);
    let resp = client.send(&req).await?;
    expect(&resp, &req, &[207])?;
    let mut homes = parse_home(kind, &resp.body)?;
    if homes.is_empty() {
        homes.push(principal);
    }
    let mut found = Vec::new();
    for home in &homes {
        let req = collections_request(home, "1");
        let resp = client.send(&req).await?;
        expect(&resp, &req, &[207])?;
        for f in parse_collections(kind, &resp.body)? {
            if !found.iter().any(|x: &Found| x.href == f.href) {
                found.push(f);
            }
        }
    }
    Ok(Discovered {
        collections: found,
        homes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_radicale_style_home_listing() {
        let body = br##"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:ICAL="http://apple.com/ns/ical/">
<response><href>/alice/</href><propstat><prop><resourcetype><principal/><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/alice/work/</href><propstat><prop><resourcetype><C:calendar/><collection/></resourcetype><displayname>Work</displayname>
<ICAL:calendar-color>#ff0000ff</ICAL:calendar-color><supported-report-set><supported-report><report><sync-collection/></report></supported-report></supported-report-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/alice/contacts/</href><propstat><prop><resourcetype><CR:addressbook xmlns:CR="urn:ietf:params:xml:ns:carddav"/><collection/></resourcetype><supported-report-set><supported-report><report><CR:addressbook-multiget xmlns:CR="urn:ietf:params:xml:ns:carddav"/></report></supported-report></supported-report-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>
</multistatus>"##;
        let cals = parse_collections(DavKind::CalDav, body).unwrap();
        assert_eq!(
            cals,
            vec![Found {
                href: "/alice/work/".into(),
                display_name: "Work".into(),
                color: "#ff0000".into(),
                supports_sync: true,
                role: None,
                delimiter: None,
            }]
        );
        let books = parse_collections(DavKind::CardDav, body).unwrap();
        assert_eq!(books.len(), 1);
        assert!(!books[0].supports_sync);
    }

    #[test]
    fn reads_principal_and_home() {
        let p = br#"<multistatus xmlns="DAV:"><response><href>/</href><propstat><prop><current-user-principal><href>/alice/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        assert_eq!(
            parse_principal(DavKind::CalDav, p).unwrap(),
            (Some("/alice/".into()), false)
        );
        let h = br#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/alice/</href><propstat><prop><C:calendar-home-set><href>/alice/calendars/</href></C:calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        assert_eq!(
            parse_home(DavKind::CalDav, h).unwrap(),
            vec!["/alice/calendars/".to_string()]
        );
        assert!(parse_home(DavKind::CardDav, h).unwrap().is_empty());
    }
}
