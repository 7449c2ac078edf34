//! Making and removing whole collections on the back end, for collections a client
//! created or deleted on the gateway: MKCALENDAR (RFC 4791) for calendars, extended
//! MKCOL (RFC 5689) for address books, DELETE for both.

use reqwest::Method;

use super::xml::escape;
use super::{DavClient, DavError, DavKind, DavRequest, expect};

pub use crate::backends::Property;

/// `<x:name xmlns:x="ns">markup</x:name>` for each property.
fn props_xml(props: &[Property]) -> String {
    props
        .iter()
        .map(|p| {
            format!(
                r#"<x:{n} xmlns:x="{ns}">{m}</x:{n}>"#,
                n = p.name,
                ns = escape(&p.ns),
                m = p.markup
            )
        })
        .collect()
}

/// The request that makes collection `href` with a display name, the client's other
/// properties, and (calendars) the components it holds.
pub fn create_request(
    kind: DavKind,
    href: &str,
    display_name: &str,
    props: &[Property],
    components: &[String],
) -> DavRequest {
    let name = escape(display_name);
    let others: Vec<Property> = props
        .iter()
        .filter(|p| !(p.ns == "DAV:" && p.name == "displayname"))
        .cloned()
        .collect();
    let extra = props_xml(&others);
    match kind {
        DavKind::CalDav => {
            let comps = if components.is_empty() {
                String::new()
            } else {
                format!(
                    "<c:supported-calendar-component-set>{}</c:supported-calendar-component-set>",
                    components
                        .iter()
                        .map(|c| format!(r#"<c:comp name="{}"/>"#, escape(c)))
                        .collect::<String>()
                )
            };
            DavRequest::xml(
                "MKCALENDAR",
                href,
                None,
                format!(
                    r#"<?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>{name}</d:displayname>{comps}{extra}</d:prop></d:set></c:mkcalendar>"#
                ),
            )
        }
        DavKind::CardDav => DavRequest::xml(
            "MKCOL",
            href,
            None,
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype><d:displayname>{name}</d:displayname>{extra}</d:prop></d:set></d:mkcol>"#
            ),
        ),
    }
}

/// Makes the collection; one that already exists (405) counts as made, so a retried
/// create does not fail.
pub async fn create(
    client: &DavClient,
    kind: DavKind,
    href: &str,
    display_name: &str,
    props: &[Property],
    components: &[String],
) -> Result<(), DavError> {
    let req = create_request(kind, href, display_name, props, components);
    let resp = client.send(&req).await?;
    expect(&resp, &req, &[200, 201, 204, 405])
}

/// The PROPPATCH that gives an existing collection its properties.
pub fn proppatch_request(href: &str, props: &[Property]) -> DavRequest {
    DavRequest::xml(
        "PROPPATCH",
        href,
        None,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>{}</d:prop></d:set></d:propertyupdate>"#,
            props_xml(props)
        ),
    )
}

/// Gives a collection its properties (what the server refuses, it says in its
/// multistatus; that is not retried).
pub async fn set_properties(
    client: &DavClient,
    href: &str,
    props: &[Property],
) -> Result<(), DavError> {
    let req = proppatch_request(href, props);
    let resp = client.send(&req).await?;
    expect(&resp, &req, &[200, 204, 207])
}

/// Deletes the collection; one already gone counts as deleted.
pub async fn remove(client: &DavClient, href: &str) -> Result<(), DavError> {
    let req = DavRequest {
        method: Method::DELETE,
        path: href.to_string(),
        depth: None,
        headers: vec![],
        body: None,
    };
    let resp = client.send(&req).await?;
    expect(&resp, &req, &[200, 204, 404, 410])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_right_method_per_kind() {
        let r = create_request(DavKind::CalDav, "/alice/team/", "Team <1>", &[], &[]);
        assert_eq!(r.method.as_str(), "MKCALENDAR");
        assert!(
            String::from_utf8(r.body.unwrap().0)
                .unwrap()
                .contains("Team &lt;1&gt;")
        );
        let r = create_request(DavKind::CardDav, "/alice/book/", "Book", &[], &[]);
        assert_eq!(r.method.as_str(), "MKCOL");
        assert!(
            String::from_utf8(r.body.unwrap().0)
                .unwrap()
                .contains("addressbook")
        );
        let desc = Property {
            ns: "urn:ietf:params:xml:ns:caldav".into(),
            name: "calendar-description".into(),
            markup: "Jobs &amp; tasks".into(),
        };
        let r = create_request(
            DavKind::CalDav,
            "/a/t/",
            "T",
            std::slice::from_ref(&desc),
            &["VTODO".into()],
        );
        let body = String::from_utf8(r.body.unwrap().0).unwrap();
        assert!(body.contains(r#"<c:comp name="VTODO"/>"#), "{body}");
        assert!(
            body.contains("Jobs &amp; tasks</x:calendar-description>"),
            "{body}"
        );
        assert!(postern_davxml::parse(body.as_bytes()).is_ok());
        let r = proppatch_request("/a/t/", &[desc]);
        assert_eq!(r.method.as_str(), "PROPPATCH");
    }
}
