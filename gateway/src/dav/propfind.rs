//! PROPFIND (RFC 4918 §9.1): properties of a resource and, at depth 1, its members.
//! Unknown properties are answered 404 inside the multistatus, never as an error.
//! A collection's members are sent while they are read ([`super::stream`]).

use axum::response::Response;
use postern_davxml::{DAV, Name};

use super::path::{self, Kind, Target};
use super::{DavError, DavRequest, DavState, multistatus, props, stream};
use crate::limits::Limits;
use crate::store::dav::DavCollection;

/// What the body asks for: `None` for allprop (or an empty body), else the names,
/// at most `max_props` of them.
pub fn requested(body: &[u8], limits: &Limits) -> Result<Option<Vec<Name>>, DavError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let root = super::parse_xml(body, limits.xml())?;
    if !root.is(DAV, "propfind") {
        return Err(DavError::BadRequest(
            None,
            "expected a propfind element".into(),
        ));
    }
    if root.child(DAV, "allprop").is_some() || root.child(DAV, "propname").is_some() {
        return Ok(None);
    }
    let prop = root
        .child(DAV, "prop")
        .ok_or_else(|| DavError::BadRequest(None, "propfind without prop".into()))?;
    if prop.children.len() > limits.max_propfind_properties {
        return Err(DavError::BadRequest(
            None,
            format!(
                "the PROPFIND names {} properties; at most {} are answered",
                prop.children.len(),
                limits.max_propfind_properties
            ),
        ));
    }
    Ok(Some(
        prop.children
            .iter()
            .map(|c| Name::new(&c.ns, &c.name))
            .collect(),
    ))
}

/// Answers a PROPFIND.
pub async fn propfind(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let wanted = requested(&req.body, &state.limits)?;
    let wanted = wanted.as_deref();
    let login = req.who.login.as_str();
    let depth = req.depth(1);
    let mut w = postern_davxml::Writer::multistatus();
    let mut add = |href: &str, all| {
        let (found, missing) = props::select(all, wanted);
        w.response(href, &found, &missing);
    };
    match &req.target {
        Target::Root | Target::WellKnown => {
            add(&req.path, props::root(login));
        }
        Target::Principal(_) => add(&path::principal(login), props::principal(login)),
        Target::Home(kind, _) => {
            add(&path::home(*kind, login), props::home(*kind, login));
            if depth > 0 {
                for c in state
                    .store
                    .dav_collections(req.who.tenant, req.who.user, kind.store_kind())
                    .await?
                {
                    add(
                        &path::collection(*kind, login, &c.name),
                        props::collection(*kind, login, &c),
                    );
                }
            }
        }
        Target::Collection(kind, _, name) => {
            let c = super::own_collection(state, req, *kind, name).await?;
            if depth > 0 {
                return with_members(state, req, *kind, c, wanted.map(<[Name]>::to_vec)).await;
            }
            add(
                &path::collection(*kind, login, &c.name),
                props::collection(*kind, login, &c),
            );
        }
        Target::Item(kind, _, coll, name) => {
            let c = super::own_collection(state, req, *kind, coll).await?;
            let i = state
                .store
                .dav_item(req.who.tenant, c.id, name)
                .await?
                .ok_or(DavError::NotFound)?;
            add(&path::item(*kind, login, &c.name, &i.name), props::item(&i));
        }
        // Plain resources below folders are answered by `folder`; what reaches here
        // does not exist.
        Target::Nested(..) => return Err(DavError::NotFound),
    }
    Ok(multistatus(w.finish()))
}

/// A collection and its members, read and sent a page at a time: its version (getctag,
/// sync-token) comes first, read before the members, so a change made while the answer
/// is produced shows as a newer version next time.
async fn with_members(
    state: &DavState,
    req: &DavRequest,
    kind: Kind,
    c: DavCollection,
    wanted: Option<Vec<Name>>,
) -> Result<Response, DavError> {
    let mut pages = state
        .store
        .dav_item_pages(req.who.tenant, c.id, false, stream::PAGE);
    let login = req.who.login.clone();
    let (limit, here) = (state.limits.max_answer_bytes, req.path.clone());
    stream::members(limit, move |mut m| async move {
        let (found, missing) =
            props::select(props::collection(kind, &login, &c), wanted.as_deref());
        m.w.response(&path::collection(kind, &login, &c.name), &found, &missing);
        while let Some(page) = pages.next().await? {
            for i in &page {
                let (found, missing) = props::select(props::item(i), wanted.as_deref());
                m.w.response(
                    &path::item(kind, &login, &c.name, &i.name),
                    &found,
                    &missing,
                );
            }
            m.flush().await?;
            if m.full() {
                m.w.status(&here, "507 Insufficient Storage");
                break;
            }
        }
        Ok(m)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_is_asked() {
        assert_eq!(requested(b"", &Limits::default()).unwrap(), None);
        assert_eq!(
            requested(
                br#"<propfind xmlns="DAV:"><allprop/></propfind>"#,
                &Limits::default()
            )
            .unwrap(),
            None
        );
        let asked = requested(br#"<D:propfind xmlns:D="DAV:" xmlns:C="http://calendarserver.org/ns/"><D:prop><D:displayname/><C:getctag/></D:prop></D:propfind>"#, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            asked,
            vec![
                Name::new(DAV, "displayname"),
                Name::new(postern_davxml::CS, "getctag")
            ]
        );
        assert!(requested(b"<oops", &Limits::default()).is_err());
        assert!(requested(br#"<x xmlns="DAV:"/>"#, &Limits::default()).is_err());
    }
}
