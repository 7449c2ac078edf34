//! GET and HEAD of an item: its bytes exactly as their author sent them, with a strong
//! ETag.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::path::Target;
use super::{DavError, DavRequest, DavState};

/// Answers GET (`with_body`) or HEAD.
pub async fn get(
    state: &DavState,
    req: &DavRequest,
    with_body: bool,
) -> Result<Response, DavError> {
    let Target::Item(kind, _, coll, name) = &req.target else {
        return Err(DavError::MethodNotAllowed);
    };
    let c = super::own_collection(state, req, *kind, coll).await?;
    let item = state
        .store
        .dav_item(req.who.tenant, c.id, name)
        .await?
        .ok_or(DavError::NotFound)?;
    if req.header("if-none-match").is_some_and(|v| {
        v.split(',')
            .any(|e| e.trim() == item.etag || e.trim() == "*")
    }) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, item.etag)]).into_response());
    }
    let headers = [
        (header::ETAG, item.etag.clone()),
        (header::CONTENT_TYPE, item.content_type.clone()),
        (header::CONTENT_LENGTH, item.length.to_string()),
    ];
    Ok(if with_body {
        (StatusCode::OK, headers, item.content.unwrap_or_default()).into_response()
    } else {
        (StatusCode::OK, headers).into_response()
    })
}
