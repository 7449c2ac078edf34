//! The ETag listing: PROPFIND depth 1 `getetag` on a collection. The fallback when a
//! server lacks sync-collection or forgot our token: compared with the index, it
//! shows what changed and what is gone.

use std::collections::BTreeMap;

use postern_core::ids::Href;

use super::xml::DAV;
use super::{DavClient, DavError, DavRequest, expect, href, multistatus};

/// The request.
pub fn request(collection: &str) -> DavRequest {
    DavRequest::xml(
        "PROPFIND",
        collection,
        Some("1"),
        r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><getetag/><resourcetype/></prop></propfind>"#
            .to_string(),
    )
}

/// Members (not sub-collections) and their ETags.
pub fn parse(collection: &str, body: &[u8]) -> Result<BTreeMap<Href, String>, DavError> {
    let (responses, _) = multistatus(body)?;
    let coll = super::normalize_href(collection);
    let mut out = BTreeMap::new();
    for r in responses {
        let is_collection = r
            .prop(DAV, "resourcetype")
            .is_some_and(|t| t.child(DAV, "collection").is_some());
        if is_collection
            || r.href.trim_end_matches('/') == coll.trim_end_matches('/')
            || r.href.ends_with('/')
        {
            continue;
        }
        let etag = r
            .prop(DAV, "getetag")
            .map(|e| e.trimmed().to_string())
            .unwrap_or_default();
        out.insert(href(&r.href)?, etag);
    }
    Ok(out)
}

/// Lists a collection. Never returns an empty listing for a failure: any status
/// other than 207 is an error (PITFALLS: "could not read" is not "is empty").
pub async fn list(
    client: &DavClient,
    collection: &str,
) -> Result<BTreeMap<Href, String>, DavError> {
    let req = request(collection);
    let resp = client.send(&req).await?;
    expect(&resp, &req, &[207])?;
    parse(collection, &resp.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_members_only() {
        let body = br#"<multistatus xmlns="DAV:">
<response><href>/c/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/c/a.ics</href><propstat><prop><getetag>"1"</getetag><resourcetype/></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/c/sub/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
</multistatus>"#;
        let l = parse("/c/", body).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[&href("/c/a.ics").unwrap()], "\"1\"");
    }
}
