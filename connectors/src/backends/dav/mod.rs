//! A CalDAV/CardDAV client: the back end the connector syncs with.
//!
//! Each request is a value ([`DavRequest`]) built by a function in its own file,
//! and each response is parsed by a pure function beside it, so both are tested
//! without a server; only [`DavClient::send`] does I/O.
//!
//! - [`discovery`]: current-user-principal → home set → collections.
//! - [`sync_collection`]: RFC 6578 changes since a token.
//! - [`listing`]: the ETag listing fallback (PROPFIND depth 1).
//! - [`multiget`]: fetch items by href, in batches.
//! - [`write`]: `PUT` with `If-Match`/`If-None-Match: *`, `DELETE` with `If-Match`.
//!
//! CalDAV and CardDAV differ only in names ([`DavKind`]).

mod backend;
pub mod discovery;
pub mod listing;
pub mod mkcol;
pub mod multiget;
pub mod sync_collection;
pub mod write;
pub use backend::DavBackend;
pub use postern_davxml as xml;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use base64::Engine;
use postern_core::ids::Href;
use postern_core::model::CollectionKind;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::Semaphore;
use url::Url;

use xml::{CALDAV, CARDDAV, DAV, Element};

/// What went wrong talking to the back end.
#[derive(Debug, thiserror::Error)]
pub enum DavError {
    /// Could not reach it.
    #[error("back end unreachable: {0}")]
    Transport(String),
    /// It refused our credentials.
    #[error("back end refused the credentials (HTTP {0}); check username and password")]
    Unauthorized(u16),
    /// It answered with an unexpected status.
    #[error("back end answered HTTP {status} to {method} {path}")]
    Status {
        /// The status.
        status: u16,
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// Its answer could not be understood.
    #[error("back end sent something we cannot read: {0}")]
    Malformed(String),
}

/// CalDAV or CardDAV: the names that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DavKind {
    /// Calendars (RFC 4791).
    CalDav,
    /// Address books (RFC 6352).
    CardDav,
}

impl DavKind {
    /// The XML namespace of the protocol.
    pub fn ns(self) -> &'static str {
        match self {
            DavKind::CalDav => CALDAV,
            DavKind::CardDav => CARDDAV,
        }
    }
    /// The principal property naming the home collection.
    pub fn home_set(self) -> &'static str {
        match self {
            DavKind::CalDav => "calendar-home-set",
            DavKind::CardDav => "addressbook-home-set",
        }
    }
    /// The resourcetype child that marks a collection of this kind.
    pub fn resource_type(self) -> &'static str {
        match self {
            DavKind::CalDav => "calendar",
            DavKind::CardDav => "addressbook",
        }
    }
    /// The multiget REPORT element.
    pub fn multiget(self) -> &'static str {
        match self {
            DavKind::CalDav => "calendar-multiget",
            DavKind::CardDav => "addressbook-multiget",
        }
    }
    /// The property carrying an item's data.
    pub fn data_prop(self) -> &'static str {
        match self {
            DavKind::CalDav => "calendar-data",
            DavKind::CardDav => "address-data",
        }
    }
    /// The gateway's collection kind.
    pub fn collection_kind(self) -> CollectionKind {
        match self {
            DavKind::CalDav => CollectionKind::Calendar,
            DavKind::CardDav => CollectionKind::AddressBook,
        }
    }
    /// The `/.well-known/` path of the protocol.
    pub fn well_known(self) -> &'static str {
        match self {
            DavKind::CalDav => "/.well-known/caldav",
            DavKind::CardDav => "/.well-known/carddav",
        }
    }
}

/// A DAV request as a value.
#[derive(Debug, Clone)]
pub struct DavRequest {
    /// HTTP method (PROPFIND, REPORT, PUT, ...).
    pub method: Method,
    /// Absolute path on the server.
    pub path: String,
    /// The Depth header, if any.
    pub depth: Option<&'static str>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body and its content type.
    pub body: Option<(Vec<u8>, &'static str)>,
}

impl DavRequest {
    /// A request with an XML body.
    pub fn xml(method: &str, path: &str, depth: Option<&'static str>, body: String) -> Self {
        DavRequest {
            method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
            path: path.to_string(),
            depth,
            headers: Vec::new(),
            body: Some((body.into_bytes(), "application/xml; charset=utf-8")),
        }
    }
}

/// A response: status, headers, body.
#[derive(Debug, Clone)]
pub struct DavResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

/// An HTTP client bound to one server and one account.
#[derive(Clone)]
pub struct DavClient {
    http: reqwest::Client,
    base: Url,
    authorization: Option<HeaderValue>,
    /// Requests in flight to this server, shared by every client of the same host.
    permits: Arc<Semaphore>,
}

/// How many requests the connector sends one back-end server at once. Groupware
/// servers are often single-threaded per process (Radicale, Xandikos under Python):
/// more requests at once only make each slower.
pub const PER_SERVER: usize = 1;

/// One semaphore per server (scheme, host and port).
fn server_permits(base: &Url) -> Arc<Semaphore> {
    static SERVERS: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> =
        LazyLock::new(Mutex::default);
    let key = format!(
        "{}://{}:{}",
        base.scheme(),
        base.host_str().unwrap_or(""),
        base.port_or_known_default().unwrap_or(0)
    );
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    servers
        .entry(key)
        .or_insert_with(|| Arc::new(Semaphore::new(PER_SERVER)))
        .clone()
}

impl std::fmt::Debug for DavClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl DavClient {
    /// A client for `base` (the configured URL) with Basic credentials.
    pub fn new(base: &str, username: &str, password: &str) -> Result<Self, DavError> {
        let base =
            Url::parse(base).map_err(|e| DavError::Malformed(format!("url {base:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| DavError::Transport(e.to_string()))?;
        let authorization = (!username.is_empty()).then(|| {
            let raw =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            let mut v = HeaderValue::from_str(&format!("Basic {raw}"))
                .unwrap_or(HeaderValue::from_static(""));
            v.set_sensitive(true);
            v
        });
        Ok(DavClient {
            permits: server_permits(&base),
            http,
            base,
            authorization,
        })
    }

    /// The configured URL's path.
    pub fn base_path(&self) -> &str {
        self.base.path()
    }

    /// Sends a request. Any status is returned except 401/403 on discovery-level
    /// failures, which callers see as [`DavError::Unauthorized`] when appropriate.
    #[tracing::instrument(name = "backend request", skip_all, fields(
        otel.name = %format_args!("{} {}", req.method, req.path),
        otel.kind = "client",
        http.request.method = %req.method,
        url.path = %req.path,
        http.response.status_code = tracing::field::Empty,
    ))]
    pub async fn send(&self, req: &DavRequest) -> Result<DavResponse, DavError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| DavError::Transport(e.to_string()))?;
        let url = self
            .base
            .join(&req.path)
            .map_err(|e| DavError::Malformed(format!("path {:?}: {e}", req.path)))?;
        let mut b = self.http.request(req.method.clone(), url);
        if let Some(auth) = &self.authorization {
            b = b.header("Authorization", auth.clone());
        }
        if let Some(d) = req.depth {
            b = b.header("Depth", d);
        }
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if let Some((body, ctype)) = &req.body {
            b = b.header("Content-Type", *ctype).body(body.clone());
        }
        let resp = b
            .send()
            .await
            .map_err(|e| DavError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        tracing::Span::current().record("http.response.status_code", status);
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| DavError::Transport(e.to_string()))?
            .to_vec();
        if status == 401 {
            return Err(DavError::Unauthorized(status));
        }
        Ok(DavResponse {
            status,
            headers,
            body,
        })
    }
}

/// Fails unless the status is one of `ok`.
pub fn expect(resp: &DavResponse, req: &DavRequest, ok: &[u16]) -> Result<(), DavError> {
    if ok.contains(&resp.status) {
        Ok(())
    } else {
        Err(DavError::Status {
            status: resp.status,
            method: req.method.to_string(),
            path: req.path.clone(),
        })
    }
}

/// One `<response>` of a multistatus.
#[derive(Debug, Clone)]
pub struct MsResponse {
    /// Its href, normalised.
    pub href: String,
    /// `<status>` directly in the response (e.g. 404 for a deleted member).
    pub status: Option<u16>,
    /// `(status, prop)` of each propstat.
    pub propstats: Vec<(u16, Element)>,
}

impl MsResponse {
    /// A property found with status 200.
    pub fn prop(&self, ns: &str, name: &str) -> Option<&Element> {
        self.propstats
            .iter()
            .filter(|(s, _)| *s == 200)
            .find_map(|(_, p)| p.child(ns, name))
    }
}

fn status_code(e: &Element) -> Option<u16> {
    e.trimmed()
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

/// Parses a multistatus body into its responses and top-level sync-token.
pub fn multistatus(body: &[u8]) -> Result<(Vec<MsResponse>, Option<String>), DavError> {
    let root = xml::parse(body).map_err(|e| DavError::Malformed(e.to_string()))?;
    if !root.is(DAV, "multistatus") {
        return Err(DavError::Malformed(format!(
            "expected multistatus, got {}",
            root.name
        )));
    }
    let mut out = Vec::new();
    for r in root.children_named(DAV, "response") {
        let Some(href) = r.child(DAV, "href") else {
            continue;
        };
        let propstats = r
            .children_named(DAV, "propstat")
            .filter_map(|ps| {
                Some((
                    ps.child(DAV, "status").and_then(status_code)?,
                    ps.child(DAV, "prop")?.clone(),
                ))
            })
            .collect();
        out.push(MsResponse {
            href: normalize_href(href.trimmed()),
            status: r.child(DAV, "status").and_then(status_code),
            propstats,
        });
    }
    let token = root
        .child(DAV, "sync-token")
        .map(|t| t.trimmed().to_string());
    Ok((out, token))
}

/// Normalises an href as servers write it: the path of an absolute URL, with
/// percent-escapes of characters that need none decoded and the rest upper-cased, so
/// `/a/x%40y.ics`, `/a/x@y.ics` and `http://h/a/x%40y.ics` compare equal.
pub fn normalize_href(raw: &str) -> String {
    let path = match Url::parse(raw) {
        Ok(u) if u.has_host() => u.path().to_string(),
        _ => raw.to_string(),
    };
    let bytes = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if v.is_ascii_alphanumeric() || b"-._~@:!$&'()*+,;=".contains(&v) {
                    out.push(v);
                } else {
                    out.push(b'%');
                    out.extend(bytes[i + 1..i + 3].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An href from a server, validated.
pub fn href(s: &str) -> Result<Href, DavError> {
    Href::new(normalize_href(s)).map_err(|e| DavError::Malformed(e.to_string()))
}

/// The ETag header of a response, if any (kept verbatim, quotes included).
pub fn etag_header(resp: &DavResponse) -> Option<String> {
    resp.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_normalise() {
        assert_eq!(normalize_href("/a/x%40y.ics"), "/a/x@y.ics");
        assert_eq!(normalize_href("http://h:1/a/x%40y.ics"), "/a/x@y.ics");
        assert_eq!(normalize_href("/a/b%2fc"), "/a/b%2Fc");
        assert_eq!(normalize_href("/a/b%20c"), "/a/b%20c");
        assert_eq!(normalize_href("/a/%"), "/a/%");
        assert_eq!(normalize_href("/a/%é/ü"), "/a/%é/ü");
    }

    #[test]
    fn parses_statuses() {
        let body = br#"<multistatus xmlns="DAV:"><response><href>/c/a.ics</href><status>HTTP/1.1 404 Not Found</status></response>
<response><href>/c/b.ics</href><propstat><prop><getetag>"1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat>
<propstat><prop><displayname/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
<sync-token>http://x/sync/7</sync-token></multistatus>"#;
        let (rs, token) = multistatus(body).unwrap();
        assert_eq!(rs[0].status, Some(404));
        assert_eq!(rs[1].prop(DAV, "getetag").unwrap().trimmed(), "\"1\"");
        assert!(rs[1].prop(DAV, "displayname").is_none());
        assert_eq!(token.as_deref(), Some("http://x/sync/7"));
    }
}
