//! Plain WebDAV resources inside calendars and address books. RFC 4791 §4.2 lets a
//! calendar collection hold collections that are not calendars; WebDAV clients and
//! compliance suites (litmus) make folders there, put arbitrary files in them, set
//! dead properties, copy and move them. These live on the gateway only: they are
//! not calendar data, so they are neither validated as such nor synced.
//!
//! [`route`] decides whether a request is about such a resource: anything below a
//! folder, a folder path (ending in `/`), a plain MKCOL, or COPY/MOVE.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_davxml::{DAV, Name, Value, Writer};

use super::path::Target;
use super::{DavError, DavRequest, DavState, multistatus};
use crate::store::dav::DavCollection;
use crate::store::folders::FileEntry;

/// The path of the request relative to its collection, each name in canonical form
/// (trailing `/` kept).
fn relative(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/dav/")?;
    let mut parts = rest.splitn(4, '/');
    let (_kind, _login, _coll) = (parts.next()?, parts.next()?, parts.next()?);
    Some(
        parts
            .next()
            .unwrap_or("")
            .split('/')
            .map(super::path::canonical)
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// The folder that holds `rel`, or `None` at the collection's top.
fn parent(rel: &str) -> Option<String> {
    let trimmed = rel.trim_end_matches('/');
    trimmed.rfind('/').map(|i| trimmed[..=i].to_string())
}

fn key(n: &Name) -> String {
    format!("{{{}}}{}", n.ns, n.local)
}

fn name_of(key: &str) -> Name {
    match key.strip_prefix('{').and_then(|k| k.split_once('}')) {
        Some((ns, local)) => Name::new(ns, local),
        None => Name::new("", key),
    }
}

/// Handles the request if it is about a plain resource; `None` to let the calendar
/// and address-book handlers answer.
pub async fn route(state: &DavState, req: &DavRequest) -> Option<Result<Response, DavError>> {
    let (kind, coll) = match &req.target {
        Target::Item(kind, _, coll, _) | Target::Nested(kind, _, coll, _) => (*kind, coll.clone()),
        _ => return None,
    };
    let rel = relative(&req.path)?;
    // Decided from the request alone, so calendar and address-book items (the hot
    // path) cost no extra query: below a folder, a folder path (trailing `/`), a plain
    // MKCOL, or COPY/MOVE.
    let method = req.method.as_str();
    let nested = matches!(req.target, Target::Nested(..));
    let plain_mkcol = method == "MKCOL" && req.body.is_empty();
    let copy_or_move = method == "COPY" || method == "MOVE";
    if !(nested || rel.ends_with('/') || plain_mkcol || copy_or_move) {
        return None;
    }
    let c = match super::own_collection(state, req, kind, &coll).await {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let dir = format!("{}/", rel.trim_end_matches('/'));
    let is_folder = match state.store.file(req.who.tenant, c.id, &dir).await {
        Ok(f) => f.is_some(),
        Err(e) => return Some(Err(e.into())),
    };
    // COPY or MOVE of what is not a plain resource: a calendar object or contact.
    if copy_or_move && !nested && !rel.ends_with('/') && !is_folder {
        return None;
    }
    Some(handle(state, req, &c, &rel, is_folder).await)
}

async fn handle(
    state: &DavState,
    req: &DavRequest,
    c: &DavCollection,
    rel: &str,
    is_folder: bool,
) -> Result<Response, DavError> {
    let (tenant, store) = (req.who.tenant, &state.store);
    let dir = format!("{}/", rel.trim_end_matches('/'));
    let path = if is_folder {
        dir.clone()
    } else {
        rel.to_string()
    };
    let parent_ok = |p: Option<String>| async move {
        match p {
            None => Ok::<bool, DavError>(true),
            Some(p) => Ok(store
                .file(tenant, c.id, &p)
                .await?
                .is_some_and(|f| f.is_dir)),
        }
    };
    match req.method.as_str() {
        "MKCOL" => {
            if !req.body.is_empty() {
                return Err(DavError::UnsupportedMedia(Name::new(DAV, "mkcol-body")));
            }
            if is_folder
                || store
                    .file(tenant, c.id, rel.trim_end_matches('/'))
                    .await?
                    .is_some()
            {
                return Err(DavError::MethodNotAllowed);
            }
            if !parent_ok(parent(rel)).await? {
                return Err(DavError::Conflict(
                    Name::new(DAV, "parent-missing"),
                    String::new(),
                ));
            }
            store.put_file(tenant, c.id, &dir, true, None, "").await?;
            Ok(StatusCode::CREATED.into_response())
        }
        "PUT" => {
            if is_folder || rel.ends_with('/') {
                return Err(DavError::MethodNotAllowed);
            }
            if !parent_ok(parent(rel)).await? {
                return Err(DavError::Conflict(
                    Name::new(DAV, "parent-missing"),
                    String::new(),
                ));
            }
            if req.body.len() > state.limits.max_item_bytes {
                return Err(DavError::TooLarge);
            }
            let ctype = req
                .header("content-type")
                .unwrap_or("application/octet-stream");
            let created = store
                .put_file(tenant, c.id, rel, false, Some(&req.body), ctype)
                .await?;
            Ok(if created {
                StatusCode::CREATED
            } else {
                StatusCode::NO_CONTENT
            }
            .into_response())
        }
        "GET" | "HEAD" => {
            let f = store
                .file(tenant, c.id, &path)
                .await?
                .ok_or(DavError::NotFound)?;
            let body = if req.method.as_str() == "GET" {
                f.content.clone().unwrap_or_default()
            } else {
                Vec::new()
            };
            let len = f.content.as_ref().map_or(0, Vec::len);
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, f.content_type.clone()),
                    (header::ETAG, f.etag.clone()),
                    (header::CONTENT_LENGTH, len.to_string()),
                ],
                body,
            )
                .into_response())
        }
        "DELETE" => match store.delete_files(tenant, c.id, &path).await? {
            0 => Err(DavError::NotFound),
            _ => Ok(StatusCode::NO_CONTENT.into_response()),
        },
        "PROPFIND" => propfind(state, req, c, &path).await,
        "PROPPATCH" => proppatch(state, req, c, &path).await,
        "COPY" | "MOVE" => copy_move(state, req, c, &path).await,
        _ => Err(DavError::MethodNotAllowed),
    }
}

/// The request path up to its collection (`/dav/<kind>/<login>/<collection>/`).
fn base(path: &str) -> &str {
    let mut slashes = path.match_indices('/').map(|(i, _)| i);
    match slashes.nth(4) {
        Some(i) => &path[..=i],
        None => path,
    }
}

fn href(req: &DavRequest, path: &str) -> String {
    format!("{}{path}", base(&req.path))
}

fn live(f: &FileEntry) -> Vec<(Name, Value)> {
    let mut p = vec![(
        Name::new(DAV, "resourcetype"),
        if f.is_dir {
            Value::Xml(Writer::empty(&Name::new(DAV, "collection")))
        } else {
            Value::Empty
        },
    )];
    if !f.is_dir {
        p.push((Name::new(DAV, "getetag"), Value::Text(f.etag.clone())));
        p.push((
            Name::new(DAV, "getcontentlength"),
            Value::Text(f.content.as_ref().map_or(0, Vec::len).to_string()),
        ));
        p.push((
            Name::new(DAV, "getcontenttype"),
            Value::Text(f.content_type.clone()),
        ));
    }
    p.extend(
        f.props
            .iter()
            .map(|(k, v)| (name_of(k), Value::Xml(v.clone()))),
    );
    p
}

async fn propfind(
    state: &DavState,
    req: &DavRequest,
    c: &DavCollection,
    path: &str,
) -> Result<Response, DavError> {
    let wanted = super::propfind::requested(&req.body, &state.limits)?;
    let entries = state.store.files_under(req.who.tenant, c.id, path).await?;
    let Some(first) = entries.iter().find(|e| e.path == path) else {
        return Err(DavError::NotFound);
    };
    let mut w = Writer::multistatus();
    let mut add = |f: &FileEntry| {
        let (found, missing) = super::props::select(live(f), wanted.as_deref());
        w.response(&href(req, &f.path), &found, &missing);
    };
    add(first);
    if first.is_dir && req.depth(1) > 0 {
        for e in entries.iter().filter(|e| e.path != path) {
            let below = &e.path[path.len()..];
            if !below.trim_end_matches('/').contains('/') {
                add(e);
            }
        }
    }
    Ok(multistatus(w.finish()))
}

/// Live properties a client may not set.
fn protected(n: &Name) -> bool {
    n.ns == DAV
        && matches!(
            n.local.as_str(),
            "resourcetype"
                | "getetag"
                | "getcontentlength"
                | "getcontenttype"
                | "lockdiscovery"
                | "supportedlock"
        )
}

async fn proppatch(
    state: &DavState,
    req: &DavRequest,
    c: &DavCollection,
    path: &str,
) -> Result<Response, DavError> {
    state
        .store
        .file(req.who.tenant, c.id, path)
        .await?
        .ok_or(DavError::NotFound)?;
    let changes: Vec<(Name, Option<String>)> =
        super::proppatch::changes(&req.body, state.limits.xml())?
            .into_iter()
            .map(|(n, e)| (n, e.map(|e| postern_davxml::inner_xml(&e))))
            .collect();
    let refused = changes.iter().any(|(n, _)| protected(n));
    let results: Vec<(Name, &str)> = changes
        .iter()
        .map(|(n, _)| {
            (
                n.clone(),
                if protected(n) {
                    "403 Forbidden"
                } else if refused {
                    "424 Failed Dependency"
                } else {
                    "200 OK"
                },
            )
        })
        .collect();
    if !refused {
        let stored: Vec<(String, Option<String>)> =
            changes.iter().map(|(n, v)| (key(n), v.clone())).collect();
        state
            .store
            .patch_file_props(req.who.tenant, c.id, path, &stored)
            .await?;
    }
    let mut w = Writer::multistatus();
    w.propstat(&href(req, path), &results);
    Ok(multistatus(w.finish()))
}

async fn copy_move(
    state: &DavState,
    req: &DavRequest,
    c: &DavCollection,
    path: &str,
) -> Result<Response, DavError> {
    let store = &state.store;
    let tenant = req.who.tenant;
    let destination = req
        .header("destination")
        .ok_or_else(|| DavError::BadRequest(None, "Destination is required".into()))?;
    let dest_path = match destination.find("://") {
        Some(i) => destination[i + 3..]
            .find('/')
            .map(|j| &destination[i + 3 + j..])
            .unwrap_or("/"),
        None => destination,
    };
    // Compared with the collection's path decoded, so `%40` and `@` are the same.
    let (dest_base, req_base) = (base(dest_path), base(&req.path));
    let same_collection = |a: &str, b: &str| {
        let names = |p: &str| -> Vec<String> { p.split('/').map(super::path::canonical).collect() };
        names(a) == names(b)
    };
    if !same_collection(dest_base, req_base) {
        return Err(DavError::Forbidden(None));
    }
    let Some(dest_rel) = relative(dest_path) else {
        return Err(DavError::Forbidden(None));
    };
    let entries = store.files_under(tenant, c.id, path).await?;
    let Some(source) = entries.iter().find(|e| e.path == path) else {
        return Err(DavError::NotFound);
    };
    let dest = if source.is_dir {
        format!("{}/", dest_rel.trim_end_matches('/'))
    } else {
        dest_rel.trim_end_matches('/').to_string()
    };
    if dest.is_empty() || dest == path {
        return Err(DavError::Forbidden(None));
    }
    if let Some(p) = parent(&dest)
        && !store
            .file(tenant, c.id, &p)
            .await?
            .is_some_and(|f| f.is_dir)
    {
        return Err(DavError::Conflict(
            Name::new(DAV, "parent-missing"),
            String::new(),
        ));
    }
    let existing = store.file(tenant, c.id, &dest).await?.is_some()
        || store
            .file(tenant, c.id, &format!("{}/", dest.trim_end_matches('/')))
            .await?
            .is_some()
        || store
            .file(tenant, c.id, dest.trim_end_matches('/'))
            .await?
            .is_some();
    if existing
        && req
            .header("overwrite")
            .is_some_and(|o| o.eq_ignore_ascii_case("F"))
    {
        return Err(DavError::PreconditionFailed);
    }
    if existing {
        store.delete_files(tenant, c.id, &dest).await?;
        store
            .delete_files(tenant, c.id, dest.trim_end_matches('/'))
            .await?;
    }
    let copy: Vec<FileEntry> =
        if source.is_dir && req.method.as_str() == "COPY" && req.depth(1) == 0 {
            vec![source.clone()]
        } else {
            entries.clone()
        };
    store.copy_files(tenant, c.id, &copy, path, &dest).await?;
    if req.method.as_str() == "MOVE" {
        store.delete_files(tenant, c.id, path).await?;
    }
    Ok(if existing {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_the_collection() {
        assert_eq!(
            relative("/dav/calendars/a@b/work/litmus/res").as_deref(),
            Some("litmus/res")
        );
        assert_eq!(
            relative("/dav/calendars/a@b/work/litmus/").as_deref(),
            Some("litmus/")
        );
        assert_eq!(
            base("/dav/calendars/a@b/work/litmus/res"),
            "/dav/calendars/a@b/work/"
        );
        assert_eq!(
            relative("/dav/calendars/a@b/work/lit mus/r%c3%a9s").as_deref(),
            Some("lit%20mus/r%C3%A9s")
        );
        assert_eq!(parent("litmus/res").as_deref(), Some("litmus/"));
        assert_eq!(parent("litmus/"), None);
        assert_eq!(parent("a/b/c/").as_deref(), Some("a/b/"));
        assert_eq!(
            name_of(&key(&Name::new("http://x/", "y"))),
            Name::new("http://x/", "y")
        );
    }
}
