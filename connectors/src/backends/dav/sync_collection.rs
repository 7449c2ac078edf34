//! RFC 6578 `sync-collection`: the members changed since a token.
//!
//! An empty token asks for every member (initial import). A server that does not
//! know the token answers 403 (`valid-sync-token`, Radicale and most) or 412
//! (Xandikos): both mean "start over with a listing", not an error.

use postern_core::plan::BackendSignal;

use super::xml::{DAV, escape};
use super::{DavClient, DavError, DavRequest, expect, href, multistatus};

/// What a sync-collection returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Changes and the new token.
    Changes {
        /// Changed and deleted members.
        signals: Vec<BackendSignal>,
        /// The token to ask from next time.
        token: String,
        /// True when the server truncated the answer (507): ask again with `token`.
        truncated: bool,
    },
    /// The token is unknown or expired: fall back to a full listing.
    InvalidToken,
    /// The server does not do sync-collection on this collection: use listings.
    Unsupported,
}

/// The REPORT request.
pub fn request(collection: &str, token: &str) -> DavRequest {
    DavRequest::xml(
        "REPORT",
        collection,
        Some("0"),
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><sync-collection xmlns="DAV:"><sync-token>{}</sync-token><sync-level>1</sync-level><prop><getetag/></prop></sync-collection>"#,
            escape(token)
        ),
    )
}

/// Parses the answer for members of `collection`.
pub fn parse(collection: &str, status: u16, body: &[u8]) -> Result<SyncOutcome, DavError> {
    if status == 403
        || status == 412
        || (status == 409 && body.windows(16).any(|w| w == b"valid-sync-token"))
    {
        return Ok(SyncOutcome::InvalidToken);
    }
    if matches!(status, 400 | 405 | 415 | 422 | 501) {
        return Ok(SyncOutcome::Unsupported);
    }
    let (responses, token) = multistatus(body)?;
    let token = token
        .ok_or_else(|| DavError::Malformed("sync-collection answer without a sync-token".into()))?;
    let mut signals = Vec::new();
    let mut truncated = false;
    let coll = super::normalize_href(collection);
    for r in responses {
        if r.href.trim_end_matches('/') == coll.trim_end_matches('/') {
            // The collection itself: 507 here means the answer was truncated.
            truncated |= r.status == Some(507);
            continue;
        }
        if r.href.ends_with('/') {
            continue;
        }
        let h = href(&r.href)?;
        match (r.status, r.prop(DAV, "getetag")) {
            (Some(404), _) => signals.push(BackendSignal::Deleted(h)),
            (_, Some(etag)) => signals.push(BackendSignal::Changed {
                href: h,
                version: etag.trimmed().to_string(),
            }),
            (_, None) if r.propstats.iter().any(|(s, _)| *s == 404) && r.propstats.len() == 1 => {
                signals.push(BackendSignal::Deleted(h))
            }
            (_, None) => signals.push(BackendSignal::Changed {
                href: h,
                version: String::new(),
            }),
        }
    }
    Ok(SyncOutcome::Changes {
        signals,
        token,
        truncated,
    })
}

/// Asks for every change since `token`, following truncations.
pub async fn changes_since(
    client: &DavClient,
    collection: &str,
    token: &str,
) -> Result<SyncOutcome, DavError> {
    let mut all = Vec::new();
    let mut token = token.to_string();
    for _ in 0..1000 {
        let req = request(collection, &token);
        let resp = client.send(&req).await?;
        if resp.status != 207 {
            match parse(collection, resp.status, &resp.body) {
                Ok(o @ (SyncOutcome::InvalidToken | SyncOutcome::Unsupported)) => return Ok(o),
                _ => expect(&resp, &req, &[207])?,
            }
        }
        match parse(collection, resp.status, &resp.body)? {
            SyncOutcome::Changes {
                signals,
                token: next,
                truncated,
            } => {
                all.extend(signals);
                token = next;
                if !truncated {
                    return Ok(SyncOutcome::Changes {
                        signals: all,
                        token,
                        truncated: false,
                    });
                }
            }
            other => return Ok(other),
        }
    }
    Err(DavError::Malformed(
        "sync-collection never stopped truncating".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_deletions() {
        let body = br#"<multistatus xmlns="DAV:">
<response><href>/c/a.ics</href><propstat><prop><getetag>"2"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/c/b.ics</href><status>HTTP/1.1 404 Not Found</status></response>
<sync-token>tok-2</sync-token></multistatus>"#;
        let SyncOutcome::Changes {
            signals,
            token,
            truncated,
        } = parse("/c/", 207, body).unwrap()
        else {
            panic!()
        };
        assert_eq!(token, "tok-2");
        assert!(!truncated);
        assert_eq!(
            signals[0],
            BackendSignal::Changed {
                href: href("/c/a.ics").unwrap(),
                version: "\"2\"".into()
            }
        );
        assert_eq!(
            signals[1],
            BackendSignal::Deleted(href("/c/b.ics").unwrap())
        );
    }

    #[test]
    fn invalid_tokens_from_radicale_and_xandikos() {
        assert_eq!(parse("/c/", 403, b"").unwrap(), SyncOutcome::InvalidToken);
        assert_eq!(parse("/c/", 412, b"").unwrap(), SyncOutcome::InvalidToken);
        assert_eq!(parse("/c/", 501, b"").unwrap(), SyncOutcome::Unsupported);
    }

    #[test]
    fn truncation_is_noticed() {
        let body = br#"<multistatus xmlns="DAV:"><response><href>/c/</href><status>HTTP/1.1 507 Insufficient Storage</status></response><sync-token>t</sync-token></multistatus>"#;
        assert!(matches!(
            parse("/c/", 207, body).unwrap(),
            SyncOutcome::Changes {
                truncated: true,
                ..
            }
        ));
    }

    #[test]
    fn request_escapes_the_token() {
        let r = request("/c/", "a<b");
        let body = String::from_utf8(r.body.unwrap().0).unwrap();
        assert!(body.contains("a&lt;b"));
        assert_eq!(r.depth, Some("0"));
    }
}
