//! DELETE of an item (with `If-Match`) or of a whole collection. Either reaches the
//! back end through the connector. Collections in `mirror` or `merge` mode are read-only to clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_davxml::{DAV, Name};

use super::path::Target;
use super::{DavError, DavRequest, DavState};
use crate::store::StoreError;

/// Answers DELETE.
pub async fn delete(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    if let Target::Collection(kind, _, name) = &req.target {
        let c = super::own_collection(state, req, *kind, name).await?;
        if c.mode != "two-way" {
            return Err(DavError::Forbidden(Some(Name::new(DAV, "need-privileges"))));
        }
        state
            .store
            .delete_dav_collection(req.who.tenant, c.id)
            .await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let Target::Item(kind, _, coll, name) = &req.target else {
        return Err(DavError::Forbidden(None));
    };
    let c = super::own_collection(state, req, *kind, coll).await?;
    if c.mode != "two-way" {
        return Err(DavError::Forbidden(Some(Name::new(DAV, "need-privileges"))));
    }
    let if_match = req.header("if-match").map(str::trim).filter(|v| *v != "*");
    match state
        .store
        .delete_item(req.who.tenant, c.id, name, if_match)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(StoreError::NotFound(_)) => Err(DavError::NotFound),
        Err(StoreError::Conflict(_)) => Err(DavError::PreconditionFailed),
        Err(e) => Err(e.into()),
    }
}
