//! Making and removing whole collections on the back end, for collections a client
//! created or deleted on the gateway: MKCALENDAR (RFC 4791) for calendars, extended
//! MKCOL (RFC 5689) for address books, DELETE for both.

use reqwest::Method;

use super::xml::escape;
use super::{DavClient, DavError, DavKind, DavRequest, expect};

/// The request that makes collection `href` with a display name.
pub fn create_request(kind: DavKind, href: &str, display_name: &str) -> DavRequest {
    let name = escape(display_name);
    match kind {
        DavKind::CalDav => DavRequest::xml(
            "MKCALENDAR",
            href,
            None,
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>{name}</d:displayname></d:prop></d:set></c:mkcalendar>"#
            ),
        ),
        DavKind::CardDav => DavRequest::xml(
            "MKCOL",
            href,
            None,
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype><d:displayname>{name}</d:displayname></d:prop></d:set></d:mkcol>"#
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
) -> Result<(), DavError> {
    let req = create_request(kind, href, display_name);
    let resp = client.send(&req).await?;
    expect(&resp, &req, &[200, 201, 204, 405])
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
        let r = create_request(DavKind::CalDav, "/alice/team/", "Team <1>");
        assert_eq!(r.method.as_str(), "MKCALENDAR");
        assert!(
            String::from_utf8(r.body.unwrap().0)
                .unwrap()
                .contains("Team &lt;1&gt;")
        );
        let r = create_request(DavKind::CardDav, "/alice/book/", "Book");
        assert_eq!(r.method.as_str(), "MKCOL");
        assert!(
            String::from_utf8(r.body.unwrap().0)
                .unwrap()
                .contains("addressbook")
        );
    }
}
