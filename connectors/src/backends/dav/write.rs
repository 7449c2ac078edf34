//! Writes to the back end, always conditional: `PUT` with `If-Match` (replace the
//! version we planned against) or `If-None-Match: *` (create only), `DELETE` with
//! `If-Match`. A failed precondition (412) is not an error but a sign that the back
//! end changed meanwhile: the item is re-planned next round. Any other refusal of this
//! one item (400, 403, 409, 413, 415, 507...) is [`WriteOutcome::Refused`]: the
//! engine sets the item aside and goes on with the rest. Items are updated in place,
//! never deleted and re-created (PITFALLS: that floods notifications).

use postern_core::ids::Href;
use postern_core::plan::Precondition;
use reqwest::Method;

use super::{DavClient, DavError, DavRequest, etag_header, expect};

pub use crate::backends::WriteOutcome;

/// Whether a status refuses this one item, rather than saying the back end as a whole
/// is unwell (then the round fails and is retried): authentication, timeouts, locks,
/// rate limits and gateway errors are the back end's state, not the item's.
pub fn refuses_item(status: u16) -> bool {
    (400..=599).contains(&status)
        && !matches!(
            status,
            401 | 407 | 408 | 412 | 423 | 425 | 429 | 502 | 503 | 504
        )
}

fn refused(resp: &super::DavResponse) -> WriteOutcome {
    WriteOutcome::Refused {
        status: resp.status,
        answer: String::from_utf8_lossy(&resp.body[..resp.body.len().min(1024)])
            .trim()
            .to_string(),
    }
}

/// The PUT request.
pub fn put_request(
    href: &Href,
    precondition: &Precondition,
    content: &[u8],
    content_type: &'static str,
) -> DavRequest {
    let header = match precondition {
        Precondition::IfMatch(etag) => ("If-Match", etag.clone()),
        Precondition::IfNoneMatch => ("If-None-Match", "*".to_string()),
    };
    DavRequest {
        method: Method::PUT,
        path: href.as_str().to_string(),
        depth: None,
        headers: vec![header],
        body: Some((content.to_vec(), content_type)),
    }
}

/// The DELETE request.
pub fn delete_request(href: &Href, etag: &str) -> DavRequest {
    DavRequest {
        method: Method::DELETE,
        path: href.as_str().to_string(),
        depth: None,
        headers: if etag.is_empty() {
            vec![]
        } else {
            vec![("If-Match", etag.to_string())]
        },
        body: None,
    }
}

/// Writes an item.
pub async fn put(
    client: &DavClient,
    href: &Href,
    precondition: &Precondition,
    content: &[u8],
    content_type: &'static str,
) -> Result<WriteOutcome, DavError> {
    let req = put_request(href, precondition, content, content_type);
    let resp = client.send(&req).await?;
    if resp.status == 412 {
        return Ok(WriteOutcome::Conflict);
    }
    if refuses_item(resp.status) {
        return Ok(refused(&resp));
    }
    expect(&resp, &req, &[200, 201, 204])?;
    Ok(WriteOutcome::Done {
        version: etag_header(&resp).filter(|e| !e.starts_with("W/")),
        href: None,
    })
}

/// Deletes an item; one that is already gone counts as deleted.
pub async fn delete(client: &DavClient, href: &Href, etag: &str) -> Result<WriteOutcome, DavError> {
    let req = delete_request(href, etag);
    let resp = client.send(&req).await?;
    match resp.status {
        412 => Ok(WriteOutcome::Conflict),
        404 | 410 => Ok(WriteOutcome::Done {
            version: None,
            href: None,
        }),
        s if refuses_item(s) => Ok(refused(&resp)),
        _ => {
            expect(&resp, &req, &[200, 204])?;
            Ok(WriteOutcome::Done {
                version: None,
                href: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_conditional() {
        let h = Href::new("/c/a.ics").unwrap();
        let r = put_request(&h, &Precondition::IfNoneMatch, b"x", "text/calendar");
        assert_eq!(r.headers, vec![("If-None-Match", "*".to_string())]);
        let r = put_request(
            &h,
            &Precondition::IfMatch("\"3\"".into()),
            b"x",
            "text/calendar",
        );
        assert_eq!(r.headers, vec![("If-Match", "\"3\"".to_string())]);
        let r = delete_request(&h, "\"3\"");
        assert_eq!(r.headers, vec![("If-Match", "\"3\"".to_string())]);
    }

    #[test]
    fn an_item_is_refused_by_its_own_answers_only() {
        for s in [400, 403, 409, 413, 415, 422, 500, 507] {
            assert!(refuses_item(s), "{s}");
        }
        for s in [200, 204, 401, 408, 412, 423, 429, 502, 503, 504] {
            assert!(!refuses_item(s), "{s}");
        }
    }
}
