//! OPTIONS: what this server can do. Answered without authentication, since some
//! clients (iOS) probe with OPTIONS before they send credentials.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The DAV compliance classes announced.
pub const DAV_HEADER: &str = "1, 3, calendar-access, addressbook";
/// The methods served.
pub const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, MKCALENDAR, MKCOL, COPY, MOVE";

/// The OPTIONS answer.
pub fn options() -> Response {
    (
        StatusCode::OK,
        [
            ("DAV", DAV_HEADER),
            (header::ALLOW.as_str(), ALLOW),
            (header::CONTENT_LENGTH.as_str(), "0"),
        ],
    )
        .into_response()
}
