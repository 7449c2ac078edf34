//! COPY and MOVE of calendar objects and contacts (RFC 4918 §9.8, §9.9), within one
//! collection or between two of the user's collections of the same kind. The
//! Destination may be absolute or relative, percent-encoded or not; `Overwrite: F`
//! refuses to replace. The change reaches the back end through the connector like any
//! client write. (Folders and plain files inside collections: [`super::folder`].)

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_davxml::{CALDAV, CARDDAV, DAV, Name, Writer};

use super::path::{self, Kind, Target};
use super::{DavError, DavRequest, DavState};
use crate::store::moves::{Moved, Place};

/// The path a Destination header names: the path of an absolute URL, a path as is,
/// or a relative reference resolved against the request's own path.
pub fn destination_path(destination: &str, request_path: &str) -> String {
    let d = destination.trim();
    if let Some(i) = d.find("://") {
        let after = &d[i + 3..];
        return after
            .find('/')
            .map_or("/".to_string(), |j| after[j..].to_string());
    }
    if d.starts_with('/') {
        return d.to_string();
    }
    let dir = request_path.rsplit_once('/').map_or("/", |(dir, _)| dir);
    format!("{dir}/{d}")
}

/// Answers COPY and MOVE of an item.
pub async fn copy_move(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let Target::Item(kind, _, coll, name) = &req.target else {
        return Err(DavError::MethodNotAllowed);
    };
    let destination = req
        .header("destination")
        .ok_or_else(|| DavError::BadRequest(None, "Destination is required".into()))?;
    let dest = destination_path(destination, &req.path);
    let dest = dest.split(['?', '#']).next().unwrap_or("").to_string();
    match path::check(&dest) {
        Ok(()) => {}
        Err(path::PathError::TooLong) => return Err(DavError::UriTooLong),
        Err(path::PathError::Invalid(why)) => return Err(DavError::BadRequest(None, why.into())),
    }
    let Some(Target::Item(dest_kind, dest_login, dest_coll, dest_name)) = Target::parse(&dest)
    else {
        return Err(DavError::Forbidden(None));
    };
    if !path::same_login(&dest_login, &req.who.login) || dest_kind != *kind {
        // Another user's collection, or an event into an address book.
        return Err(DavError::Forbidden(None));
    }
    if dest_coll == *coll && dest_name == *name {
        return Err(DavError::Forbidden(None));
    }
    let move_it = req.method.as_str() == "MOVE";
    let from = super::own_collection(state, req, *kind, coll).await?;
    let to = match super::own_collection(state, req, dest_kind, &dest_coll).await {
        Ok(c) => c,
        // RFC 4918 §9.8.5: a destination whose collection does not exist is a conflict.
        Err(DavError::NotFound) => {
            return Err(DavError::Conflict(
                Name::new(DAV, "parent-missing"),
                String::new(),
            ));
        }
        Err(e) => return Err(e),
    };
    let read_only = |mode: &str| mode != "two-way";
    if read_only(&to.mode) || (move_it && read_only(&from.mode)) {
        return Err(DavError::Forbidden(Some(Name::new(DAV, "need-privileges"))));
    }
    let overwrite = !req
        .header("overwrite")
        .is_some_and(|o| o.trim().eq_ignore_ascii_case("F"));
    let outcome = state
        .store
        .copy_item(
            req.who.tenant,
            Place {
                collection: from.id,
                name,
            },
            Place {
                collection: to.id,
                name: &dest_name,
            },
            move_it,
            overwrite,
        )
        .await?;
    match outcome {
        Moved::Done(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Moved::Done(false) => Ok(StatusCode::CREATED.into_response()),
        Moved::NoSource => Err(DavError::NotFound),
        Moved::Exists => Err(DavError::PreconditionFailed),
        Moved::UidTaken(other) => {
            let pre = match kind {
                Kind::Calendars => Name::new(CALDAV, "no-uid-conflict"),
                Kind::AddressBooks => Name::new(CARDDAV, "no-uid-conflict"),
            };
            let href = path::item(*kind, &req.who.login, &to.name, &other);
            Err(DavError::Conflict(
                pre,
                Writer::element(&Name::new(DAV, "href"), &postern_davxml::escape(&href)),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_absolute_relative_or_paths() {
        let here = "/dav/calendars/a@b/work/x.ics";
        assert_eq!(
            destination_path(
                "https://dav.example:8443/dav/calendars/a%40b/home/y.ics",
                here
            ),
            "/dav/calendars/a%40b/home/y.ics"
        );
        assert_eq!(
            destination_path("/dav/calendars/a@b/work/y.ics", here),
            "/dav/calendars/a@b/work/y.ics"
        );
        assert_eq!(
            destination_path("y.ics", here),
            "/dav/calendars/a@b/work/y.ics"
        );
    }
}
