//! `calendar-multiget` / `addressbook-multiget`: fetch many items in one request.

use postern_core::ids::Href;
use postern_core::plan::BackendCopy;

use super::xml::{DAV, escape};
use super::{DavClient, DavError, DavKind, DavRequest, expect, href, multistatus};

/// Items in the first request. Each request costs the server a fixed overhead, so
/// batches are large; the size then adapts to keep each answer near [`TARGET_BYTES`]
/// (contacts with photos are large, events small).
pub const FIRST_BATCH: usize = 1000;
/// The answer size batches aim for.
pub const TARGET_BYTES: usize = 8 << 20;
/// Bounds of the adaptive batch size.
const MIN_BATCH: usize = 25;
const MAX_BATCH: usize = 5000;

/// The next batch size after an answer of `bytes` for `items` items.
pub fn next_batch(items: usize, bytes: usize) -> usize {
    if items == 0 || bytes == 0 {
        return FIRST_BATCH;
    }
    let per_item = (bytes / items).max(1);
    (TARGET_BYTES / per_item).clamp(MIN_BATCH, MAX_BATCH)
}

/// The REPORT for a batch of hrefs.
pub fn request(kind: DavKind, collection: &str, hrefs: &[Href]) -> DavRequest {
    let mut body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><x:{} xmlns="DAV:" xmlns:x="{}"><prop><getetag/><x:{}/></prop>"#,
        kind.multiget(),
        kind.ns(),
        kind.data_prop()
    );
    for h in hrefs {
        body.push_str("<href>");
        body.push_str(&escape(h.as_str()));
        body.push_str("</href>");
    }
    body.push_str(&format!("</x:{}>", kind.multiget()));
    DavRequest::xml("REPORT", collection, Some("1"), body)
}

/// The items found, and the hrefs the server says are gone.
pub fn parse(kind: DavKind, body: &[u8]) -> Result<(Vec<BackendCopy>, Vec<Href>), DavError> {
    let (responses, _) = multistatus(body)?;
    let mut found = Vec::new();
    let mut gone = Vec::new();
    for r in responses {
        let h = href(&r.href)?;
        match r.prop(kind.ns(), kind.data_prop()) {
            Some(data) if r.status != Some(404) => found.push(BackendCopy {
                href: h,
                version: r
                    .prop(DAV, "getetag")
                    .map(|e| e.trimmed().to_string())
                    .unwrap_or_default(),
                // XML turned the data's CRLFs into LF (always, in CDATA).
                content: postern_core::content::with_crlf(&data.text),
            }),
            _ => gone.push(h),
        }
    }
    Ok((found, gone))
}

/// Fetches `hrefs` in batches; `progress` is told how many are done after each batch.
#[tracing::instrument(name = "fetch from back end", skip_all, fields(items = hrefs.len()))]
pub async fn fetch(
    client: &DavClient,
    kind: DavKind,
    collection: &str,
    hrefs: &[Href],
    mut progress: impl FnMut(usize),
) -> Result<(Vec<BackendCopy>, Vec<Href>), DavError> {
    let mut found = Vec::with_capacity(hrefs.len());
    let mut gone = Vec::new();
    let mut start = 0;
    let mut batch = FIRST_BATCH;
    while start < hrefs.len() {
        let chunk = &hrefs[start..(start + batch).min(hrefs.len())];
        start += chunk.len();
        let req = request(kind, collection, chunk);
        let resp = client.send(&req).await?;
        expect(&resp, &req, &[207])?;
        let (f, g) = parse(kind, &resp.body)?;
        batch = next_batch(chunk.len(), resp.body.len());
        // A member the server did not mention at all is as good as gone.
        let mentioned = f.len() + g.len();
        found.extend(f);
        gone.extend(g);
        if mentioned < chunk.len() {
            for h in chunk {
                if !found.iter().any(|c| &c.href == h) && !gone.contains(h) {
                    gone.push(h.clone());
                }
            }
        }
        progress(found.len() + gone.len());
    }
    Ok((found, gone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_adapt_to_item_size() {
        assert_eq!(
            next_batch(1000, 300_000),
            5000,
            "small events: large batches"
        );
        assert_eq!(
            next_batch(1000, 100 << 20),
            80,
            "contacts with photos: small batches"
        );
        assert_eq!(next_batch(0, 0), FIRST_BATCH);
    }

    #[test]
    fn builds_and_parses() {
        let r = request(DavKind::CardDav, "/c/", &[href("/c/a.vcf").unwrap()]);
        let body = String::from_utf8(r.body.unwrap().0).unwrap();
        assert!(body.contains("addressbook-multiget") && body.contains("<href>/c/a.vcf</href>"));
        let answer = br#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
<response><href>/c/a.vcf</href><propstat><prop><getetag>"9"</getetag><C:address-data>BEGIN:VCARD&#13;
END:VCARD&#13;
</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/c/b.vcf</href><status>HTTP/1.1 404 Not Found</status></response></multistatus>"#;
        let (found, gone) = parse(DavKind::CardDav, answer).unwrap();
        assert_eq!(found[0].content, b"BEGIN:VCARD\r\nEND:VCARD\r\n");
        assert_eq!(found[0].version, "\"9\"");
        assert_eq!(gone, vec![href("/c/b.vcf").unwrap()]);
        // The same data in CDATA, as some servers send it: its line ends come back.
        let cdata = b"<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\"><response><href>/c/a.vcf</href><propstat><prop><getetag>\"9\"</getetag><C:address-data><![CDATA[BEGIN:VCARD\r\nEND:VCARD\r\n]]></C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>";
        let (found, _) = parse(DavKind::CardDav, cdata).unwrap();
        assert_eq!(found[0].content, b"BEGIN:VCARD\r\nEND:VCARD\r\n");
    }
}
