//! PROPPATCH of a collection: display name, calendar colour and order. Other
//! properties are refused one by one (403 in the multistatus); per RFC 4918 the whole
//! request then fails (424 for the others) and nothing is changed.

use axum::response::Response;
use postern_davxml::{APPLE, DAV, Element, Name};

use super::path::{self, Target};
use super::{DavError, DavRequest, DavState, multistatus};

/// One requested change: a property and its new value (`None` to remove).
/// The properties a `propertyupdate` body sets (with their element) or removes
/// (`None`), in order. Shared with plain resources ([`super::folder`]).
pub fn changes(
    body: &[u8],
    xml: postern_davxml::Limits,
) -> Result<Vec<(Name, Option<Element>)>, DavError> {
    let root = super::parse_xml(body, xml)?;
    if !root.is(DAV, "propertyupdate") {
        return Err(DavError::BadRequest(None, "expected propertyupdate".into()));
    }
    let mut out = Vec::new();
    for op in &root.children {
        let set = op.is(DAV, "set");
        if !set && !op.is(DAV, "remove") {
            continue;
        }
        for prop in op.children_named(DAV, "prop") {
            for p in &prop.children {
                out.push((Name::new(&p.ns, &p.name), set.then(|| p.clone())));
            }
        }
    }
    Ok(out)
}

/// Answers PROPPATCH.
pub async fn proppatch(state: &DavState, req: &DavRequest) -> Result<Response, DavError> {
    let Target::Collection(kind, _, name) = &req.target else {
        return Err(DavError::Forbidden(None));
    };
    let c = super::own_collection(state, req, *kind, name).await?;
    let asked: Vec<(Name, Option<String>)> = changes(&req.body, state.limits.xml())?
        .into_iter()
        .map(|(n, e)| (n, e.map(|e| e.trimmed().to_string())))
        .collect();
    let settable = |n: &Name| {
        (n.ns == DAV && n.local == "displayname")
            || (n.ns == APPLE && (n.local == "calendar-color" || n.local == "calendar-order"))
    };
    let all_ok = asked.iter().all(|(n, _)| settable(n));
    let (mut display, mut color, mut order) = (None, None, None);
    let mut results: Vec<(Name, &str)> = Vec::new();
    for (n, v) in &asked {
        if !settable(n) {
            results.push((n.clone(), "403 Forbidden"));
            continue;
        }
        if !all_ok {
            results.push((n.clone(), "424 Failed Dependency"));
            continue;
        }
        match n.local.as_str() {
            "displayname" => display = Some(v.clone().unwrap_or_default()),
            "calendar-color" => color = Some(v.clone().unwrap_or_default()),
            _ => match v.as_deref().map(str::parse::<i32>) {
                Some(Ok(o)) => order = Some(o),
                None => order = Some(0),
                Some(Err(_)) => {
                    results.push((n.clone(), "409 Conflict"));
                    continue;
                }
            },
        }
        results.push((n.clone(), "200 OK"));
    }
    if all_ok {
        state
            .store
            .set_dav_props(
                req.who.tenant,
                c.id,
                display.as_deref(),
                color.as_deref(),
                order,
            )
            .await?;
    }
    let mut w = postern_davxml::Writer::multistatus();
    w.propstat(&path::collection(*kind, &req.who.login, &c.name), &results);
    Ok(multistatus(w.finish()))
}
