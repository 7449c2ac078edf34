//! The CalDAV/CardDAV endpoint for remote clients (phones, Thunderbird, DAVx5, iOS,
//! vdirsyncer). A thin DAV layer of our own on axum and `postern-davxml`, one file per
//! method or report:
//!
//! - [`auth`]: Basic with `alice@acme` and an app password;
//! - [`path`]: what a URL names ([`path::Target`]), and the hrefs we write;
//! - [`props`]: the properties of principals, homes, collections and items;
//! - [`propfind`], [`proppatch`], [`options`];
//! - [`get`] (GET/HEAD), [`put`], [`delete`], [`mkcol`] (MKCALENDAR, extended MKCOL),
//!   [`copymove`] (COPY and MOVE of items);
//! - [`report`]: multiget and sync-collection;
//! - [`stream`]: large multistatus answers sent while they are produced.
//!
//! URL layout (DESIGN.md): `/.well-known/caldav|carddav` lead to the principal
//! `/dav/principals/alice@acme/`; calendars under `/dav/calendars/alice@acme/`, address
//! books under `/dav/addressbooks/alice@acme/`. A user only ever reaches their own.
//!
//! Writes go through the store API: they are journalled, marked pending, and wake the
//! connector (on any replica) with NOTIFY; the connector applies them to the back end.

pub mod copymove;
pub mod delete;
pub mod folder;
pub mod get;
pub mod mkcol;
pub mod options;
pub use postern_davproto::path;
pub mod propfind;
pub mod proppatch;
pub mod props;
pub mod put;
pub mod report;
pub mod slots;
pub mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use postern_davxml::{Name, Writer};
use tracing::{Instrument, warn};

use crate::logins::{Authenticator, LoginError, Principal};
use crate::store::{Store, StoreError};
use path::Target;

/// What every DAV handler shares.
#[derive(Clone)]
pub struct DavState {
    /// The store.
    pub store: Store,
    /// Authentication with its cache.
    pub auth: Arc<Authenticator>,
    /// Bounds on bodies, XML, properties and answers.
    pub limits: Arc<crate::limits::Limits>,
    /// Request counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Requests of one user handled at once.
    pub slots: Arc<slots::UserSlots>,
}

impl std::fmt::Debug for DavState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DavState")
    }
}

/// The DAV routes.
pub fn router(state: DavState) -> Router {
    Router::new()
        .route("/", any(handle))
        .route("/.well-known/caldav", any(handle))
        .route("/.well-known/carddav", any(handle))
        .route("/dav", any(handle))
        .route("/dav/", any(handle))
        .route("/dav/{*rest}", any(handle))
        .with_state(state)
}

/// An answer that is not a success, with its meaning.
#[derive(Debug, thiserror::Error)]
pub enum DavError {
    /// 401 with a challenge.
    #[error("authentication required")]
    Unauthorized,
    /// 403, optionally naming a DAV precondition.
    #[error("forbidden")]
    Forbidden(Option<Name>),
    /// 404.
    #[error("not found")]
    NotFound,
    /// 405: the method does not apply to this resource.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 405 naming a DAV precondition (`resource-must-be-null`).
    #[error("method not allowed")]
    NotAllowed(Name),
    /// 507: the answer would take more than the server allows.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 409 naming a DAV precondition (e.g. `no-uid-conflict`), with its inner markup.
    #[error("conflict")]
    Conflict(Name, String),
    /// 412: a precondition (If-Match / If-None-Match) failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: the body is too large.
    #[error("payload too large")]
    TooLarge,
    /// 408: the body did not arrive in time.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// 414: the path is too long.
    #[error("the request path is too long")]
    UriTooLong,
    /// 503 with Retry-After: every password-verification slot is busy.
    #[error("too many logins at once; retry shortly")]
    Busy,
    /// 429 with Retry-After: this user already has the most requests in progress.
    #[error("too many requests in progress for this user; retry shortly")]
    TooManyRequests,
    /// 400 or 415 naming a DAV precondition, or a plain 400.
    #[error("bad request: {1}")]
    BadRequest(Option<Name>, String),
    /// 415 naming a precondition.
    #[error("unsupported media type")]
    UnsupportedMedia(Name),
    /// 501.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// 500: a fault of ours (an answer that ended without a body).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// 500/503: the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn error_body(status: StatusCode, precondition: Option<&Name>, text: String) -> Response {
    match precondition {
        Some(p) => (
            status,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            Writer::error(p),
        )
            .into_response(),
        None => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
    }
}

impl IntoResponse for DavError {
    fn into_response(self) -> Response {
        let text = format!("{self}\n");
        match self {
            DavError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Postern\", charset=\"UTF-8\""),
                )],
                text,
            )
                .into_response(),
            DavError::Forbidden(p) => error_body(StatusCode::FORBIDDEN, p.as_ref(), text),
            DavError::NotFound => error_body(StatusCode::NOT_FOUND, None, text),
            DavError::MethodNotAllowed => error_body(StatusCode::METHOD_NOT_ALLOWED, None, text),
            DavError::NotAllowed(p) => error_body(StatusCode::METHOD_NOT_ALLOWED, Some(&p), text),
            DavError::InsufficientStorage(_) => {
                error_body(StatusCode::INSUFFICIENT_STORAGE, None, text)
            }
            DavError::Conflict(p, inner) => (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                Writer::error_with(&p, &inner),
            )
                .into_response(),
            DavError::PreconditionFailed => error_body(StatusCode::PRECONDITION_FAILED, None, text),
            DavError::TooLarge => error_body(StatusCode::PAYLOAD_TOO_LARGE, None, text),
            DavError::BodyTimeout => {
                let mut r = error_body(StatusCode::REQUEST_TIMEOUT, None, text);
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
            DavError::UriTooLong => error_body(StatusCode::URI_TOO_LONG, None, text),
            DavError::TooManyRequests => {
                let mut r = error_body(StatusCode::TOO_MANY_REQUESTS, None, text);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            DavError::Busy => {
                let mut r = error_body(StatusCode::SERVICE_UNAVAILABLE, None, text);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            DavError::BadRequest(p, _) => error_body(StatusCode::BAD_REQUEST, p.as_ref(), text),
            DavError::UnsupportedMedia(p) => {
                error_body(StatusCode::UNSUPPORTED_MEDIA_TYPE, Some(&p), text)
            }
            DavError::NotImplemented(_) => error_body(StatusCode::NOT_IMPLEMENTED, None, text),
            DavError::Internal(what) => {
                warn!(what, "dav request failed inside the gateway");
                error_body(StatusCode::INTERNAL_SERVER_ERROR, None, text)
            }
            DavError::Store(StoreError::NotFound(_)) => {
                error_body(StatusCode::NOT_FOUND, None, text)
            }
            DavError::Store(StoreError::Conflict(_)) => {
                error_body(StatusCode::PRECONDITION_FAILED, None, text)
            }
            DavError::Store(StoreError::Invalid(_)) => {
                error_body(StatusCode::BAD_REQUEST, None, text)
            }
            DavError::Store(e) => {
                warn!(error = %e, "dav request failed in the store");
                error_body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "the service is temporarily unavailable\n".into(),
                )
            }
        }
    }
}

/// A request as handlers see it.
#[derive(Debug)]
pub struct DavRequest {
    /// Method.
    pub method: Method,
    /// The request path as sent.
    pub path: String,
    /// What the URL names.
    pub target: Target,
    /// Request headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// The authenticated user.
    pub who: Principal,
}

impl DavRequest {
    /// The Depth header: 0, 1 or infinity (treated as 1); `default` when absent.
    pub fn depth(&self, default: u8) -> u8 {
        match self
            .headers
            .get("depth")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
        {
            Some("0") => 0,
            Some("1") | Some("infinity") | Some("Infinity") => 1,
            _ => default,
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn handle(
    state: State<DavState>,
    addr: ConnectInfo<crate::tls::ClientAddr>,
    req: Request<Body>,
) -> Response {
    let method = req.method().to_string();
    let metrics = state.metrics.clone();
    // A client that sends W3C trace context (`traceparent`) gets its trace continued.
    let span = tracing::info_span!(
        "dav request",
        otel.name = %format_args!("{method} {}", req.uri().path()),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    let carrier: std::collections::HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|h| {
            let v = req.headers().get(h)?.to_str().ok()?;
            Some((h.to_string(), v.to_string()))
        })
        .collect();
    postern_telemetry::continue_from(&span, &carrier);
    let response = serve(state, addr, req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics.dav(&method, status);
    response
}

async fn serve(
    State(state): State<DavState>,
    ConnectInfo(crate::tls::ClientAddr(addr)): ConnectInfo<crate::tls::ClientAddr>,
    req: Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    if method == Method::OPTIONS {
        return options::options();
    }
    match path::check(parts.uri.path()) {
        Ok(()) => {}
        Err(path::PathError::TooLong) => return DavError::UriTooLong.into_response(),
        Err(path::PathError::Invalid(why)) => {
            return DavError::BadRequest(None, why.into()).into_response();
        }
    }
    let target = match Target::parse(parts.uri.path()) {
        Some(t) => t,
        None => return DavError::NotFound.into_response(),
    };
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let who = match state
        .auth
        .check(&state.store, header, Some(addr.ip()))
        .await
    {
        Ok(p) => p,
        Err(LoginError::Unauthorized) => {
            // A small body is read before the challenge, so the connection stays
            // usable for the retry with credentials (clients that ask first, then
            // authenticate, reuse it); a larger one is left unread and the
            // connection closed.
            let small = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n <= SMALL_BODY);
            if small {
                let _ = tokio::time::timeout(
                    state.limits.body_timeout,
                    axum::body::to_bytes(body, SMALL_BODY as usize),
                )
                .await;
            }
            return DavError::Unauthorized.into_response();
        }
        Err(LoginError::Busy(_)) => return DavError::Busy.into_response(),
        Err(LoginError::Store(e)) => return DavError::Store(e).into_response(),
    };
    // Clients that do not follow the redirect PROPFIND the well-known URL itself.
    if matches!(target, Target::WellKnown)
        && method != Method::from_bytes(b"PROPFIND").unwrap_or(Method::GET)
    {
        return (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, format!("/dav/principals/{}/", who.login))],
        )
            .into_response();
    }
    if let Some(login) = target.login()
        && !path::same_login(login, &who.login)
    {
        return DavError::Forbidden(None).into_response();
    }
    let Some(_slot) = state.slots.try_take(who.user) else {
        return DavError::TooManyRequests.into_response();
    };
    let body = match read_body(&state.limits, &method, &parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let req = DavRequest {
        method,
        path: parts.uri.path().to_string(),
        target,
        headers: parts.headers,
        body,
        who,
    };
    if let Some(answer) = folder::route(&state, &req).await {
        return answer.unwrap_or_else(IntoResponse::into_response);
    }
    let result = match req.method.as_str() {
        "PROPFIND" => propfind::propfind(&state, &req).await,
        "PROPPATCH" => proppatch::proppatch(&state, &req).await,
        "REPORT" => report::report(&state, &req).await,
        "GET" => get::get(&state, &req, true).await,
        "HEAD" => get::get(&state, &req, false).await,
        "PUT" => put::put(&state, &req).await,
        "DELETE" => delete::delete(&state, &req).await,
        "MKCALENDAR" | "MKCOL" => mkcol::mkcol(&state, &req).await,
        "COPY" | "MOVE" => copymove::copy_move(&state, &req).await,
        _ => Err(DavError::MethodNotAllowed),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Bodies read before a 401 so the connection survives the challenge.
const SMALL_BODY: u64 = 16 << 10;

/// Reads a request body within its bounds: an item's size for PUT, the XML size for
/// everything else, and the body timeout. A declared length over the bound is refused
/// before a byte is read.
async fn read_body(
    limits: &crate::limits::Limits,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, DavError> {
    let limit = if method == Method::PUT {
        limits.max_item_bytes
    } else {
        limits.max_xml_bytes
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(DavError::TooLarge);
    }
    match tokio::time::timeout(limits.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(DavError::TooLarge),
        Err(_) => Err(DavError::BodyTimeout),
    }
}

/// Parses an XML request body within the XML limits.
pub fn parse_xml(
    body: &[u8],
    limits: postern_davxml::Limits,
) -> Result<postern_davxml::Element, DavError> {
    postern_davxml::parse_with(body, limits).map_err(|e| DavError::BadRequest(None, e.to_string()))
}

/// One of the requesting user's collections, or 404.
pub async fn own_collection(
    state: &DavState,
    req: &DavRequest,
    kind: path::Kind,
    name: &str,
) -> Result<crate::store::dav::DavCollection, DavError> {
    state
        .store
        .dav_collection(req.who.tenant, req.who.user, kind.store_kind(), name)
        .await?
        .ok_or(DavError::NotFound)
}

/// A 207 Multi-Status response.
pub fn multistatus(body: impl IntoResponse) -> Response {
    (
        StatusCode::MULTI_STATUS,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}
