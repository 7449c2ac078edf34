//! The properties of each kind of resource. Each function returns every property the
//! resource has (what `allprop` answers); PROPFIND then picks the requested ones and
//! answers the rest 404.

use postern_davxml::{APPLE, CALDAV, CARDDAV, CS, DAV, Name, Value, Writer};

use super::path::{self, Kind};
use crate::store::dav::{DavCollection, DavItem};

fn n(ns: &str, local: &str) -> Name {
    Name::new(ns, local)
}

fn href(h: &str) -> Value {
    Value::Xml(Writer::element(&n(DAV, "href"), &postern_davxml::escape(h)))
}

/// The sync token of a collection at journal sequence `seq`.
pub fn sync_token(coll: &DavCollection, seq: i64) -> String {
    format!("urn:postern:sync:{}:{seq}", coll.id.simple())
}

/// The sequence a sync token stands for, if it is one of this collection's and not
/// from the future.
pub fn parse_sync_token(coll: &DavCollection, token: &str) -> Option<i64> {
    let rest = token.trim().strip_prefix("urn:postern:sync:")?;
    let (id, seq) = rest.split_once(':')?;
    let seq: i64 = seq.parse().ok()?;
    (id == coll.id.simple().to_string() && (0..=coll.head).contains(&seq)).then_some(seq)
}

fn privileges(write: bool) -> Value {
    let mut inner = Writer::element(&n(DAV, "privilege"), &Writer::empty(&n(DAV, "read")));
    inner.push_str(&Writer::element(
        &n(DAV, "privilege"),
        &Writer::empty(&n(DAV, "read-current-user-privilege-set")),
    ));
    if write {
        for p in [
            "write",
            "write-content",
            "write-properties",
            "bind",
            "unbind",
        ] {
            inner.push_str(&Writer::element(
                &n(DAV, "privilege"),
                &Writer::empty(&n(DAV, p)),
            ));
        }
    }
    Value::Xml(inner)
}

fn common(login: &str) -> Vec<(Name, Value)> {
    vec![
        (
            n(DAV, "current-user-principal"),
            href(&path::principal(login)),
        ),
        (n(DAV, "owner"), href(&path::principal(login))),
    ]
}

/// `/`, `/dav/`: a collection that points to the principal.
pub fn root(login: &str) -> Vec<(Name, Value)> {
    let mut p = vec![(
        n(DAV, "resourcetype"),
        Value::Xml(Writer::empty(&n(DAV, "collection"))),
    )];
    p.push((
        n(DAV, "current-user-principal"),
        href(&path::principal(login)),
    ));
    p.push((n(DAV, "principal-URL"), href(&path::principal(login))));
    p.push((
        n(CALDAV, "calendar-home-set"),
        href(&path::home(Kind::Calendars, login)),
    ));
    p.push((
        n(CARDDAV, "addressbook-home-set"),
        href(&path::home(Kind::AddressBooks, login)),
    ));
    p
}

/// The principal.
pub fn principal(login: &str) -> Vec<(Name, Value)> {
    let user = login.split('@').next().unwrap_or(login);
    let mut p = vec![
        (
            n(DAV, "resourcetype"),
            Value::Xml(Writer::empty(&n(DAV, "principal"))),
        ),
        (n(DAV, "displayname"), Value::Text(user.to_string())),
        (n(DAV, "principal-URL"), href(&path::principal(login))),
        (
            n(CALDAV, "calendar-home-set"),
            href(&path::home(Kind::Calendars, login)),
        ),
        (
            n(CARDDAV, "addressbook-home-set"),
            href(&path::home(Kind::AddressBooks, login)),
        ),
        (
            n(CALDAV, "calendar-user-address-set"),
            href(&format!("mailto:{login}")),
        ),
        (n(DAV, "current-user-privilege-set"), privileges(false)),
    ];
    p.extend(common(login));
    p
}

/// A home collection.
pub fn home(kind: Kind, login: &str) -> Vec<(Name, Value)> {
    let mut p = vec![
        (
            n(DAV, "resourcetype"),
            Value::Xml(Writer::empty(&n(DAV, "collection"))),
        ),
        (
            n(DAV, "displayname"),
            Value::Text(kind.segment().to_string()),
        ),
        (n(DAV, "current-user-privilege-set"), privileges(false)),
    ];
    p.extend(common(login));
    p
}

fn reports(kind: Kind) -> Value {
    let report = |ns: &str, name: &str| {
        Writer::element(
            &n(DAV, "supported-report"),
            &Writer::element(&n(DAV, "report"), &Writer::empty(&n(ns, name))),
        )
    };
    let mut x = report(DAV, "sync-collection");
    match kind {
        Kind::Calendars => {
            x.push_str(&report(CALDAV, "calendar-multiget"));
            x.push_str(&report(CALDAV, "calendar-query"));
            x.push_str(&report(CALDAV, "free-busy-query"));
        }
        Kind::AddressBooks => {
            x.push_str(&report(CARDDAV, "addressbook-multiget"));
            x.push_str(&report(CARDDAV, "addressbook-query"));
        }
    }
    Value::Xml(x)
}

/// A calendar or address book.
pub fn collection(kind: Kind, login: &str, c: &DavCollection) -> Vec<(Name, Value)> {
    let typ = match kind {
        Kind::Calendars => n(CALDAV, "calendar"),
        Kind::AddressBooks => n(CARDDAV, "addressbook"),
    };
    let mut rt = Writer::empty(&n(DAV, "collection"));
    rt.push_str(&Writer::empty(&typ));
    let writable = c.mode == "two-way";
    let mut p = vec![
        (n(DAV, "resourcetype"), Value::Xml(rt)),
        (
            n(DAV, "displayname"),
            Value::Text(if c.display_name.is_empty() {
                c.name.clone()
            } else {
                c.display_name.clone()
            }),
        ),
        (n(CS, "getctag"), Value::Text(c.head.to_string())),
        (n(DAV, "sync-token"), Value::Text(sync_token(c, c.head))),
        (n(DAV, "supported-report-set"), reports(kind)),
        (n(DAV, "current-user-privilege-set"), privileges(writable)),
    ];
    match kind {
        Kind::Calendars => {
            let default = ["VEVENT", "VTODO", "VJOURNAL"].map(String::from);
            let set: &[String] = if c.components.is_empty() {
                &default
            } else {
                &c.components
            };
            let comps: String = set
                .iter()
                .map(|c| format!(r#"<c:comp name="{}"/>"#, postern_davxml::escape(c)))
                .collect();
            p.push((
                n(CALDAV, "supported-calendar-component-set"),
                Value::Xml(comps),
            ));
            p.push((
                n(CALDAV, "supported-calendar-data"),
                Value::Xml(
                    r#"<c:calendar-data content-type="text/calendar" version="2.0"/>"#.into(),
                ),
            ));
            if !c.color.is_empty() {
                p.push((n(APPLE, "calendar-color"), Value::Text(c.color.clone())));
            }
            if let Some(o) = c.sort_order {
                p.push((n(APPLE, "calendar-order"), Value::Text(o.to_string())));
            }
            if !c.description.is_empty() {
                p.push((
                    n(CALDAV, "calendar-description"),
                    Value::Text(c.description.clone()),
                ));
            }
            if !c.timezone.is_empty() {
                p.push((
                    n(CALDAV, "calendar-timezone"),
                    Value::Text(c.timezone.clone()),
                ));
            }
        }
        Kind::AddressBooks => {
            p.push((
                n(CARDDAV, "supported-address-data"),
                Value::Xml(
                    r#"<cr:address-data-type content-type="text/vcard" version="3.0"/><cr:address-data-type content-type="text/vcard" version="4.0"/>"#
                        .into(),
                ),
            ));
            if !c.description.is_empty() {
                p.push((
                    n(CARDDAV, "addressbook-description"),
                    Value::Text(c.description.clone()),
                ));
            }
        }
    }
    // Dead properties, as the client set them.
    for (key, markup) in &c.dead_props {
        if let Some((ns, local)) = key.strip_prefix('{').and_then(|k| k.split_once('}')) {
            p.push((n(ns, local), Value::Xml(markup.clone())));
        }
    }
    p.extend(common(login));
    p
}

/// An item (metadata only; data comes through GET and reports).
pub fn item(i: &DavItem) -> Vec<(Name, Value)> {
    vec![
        (n(DAV, "resourcetype"), Value::Empty),
        (n(DAV, "getetag"), Value::Text(i.etag.clone())),
        (
            n(DAV, "getcontenttype"),
            Value::Text(i.content_type.clone()),
        ),
        (
            n(DAV, "getcontentlength"),
            Value::Text(i.length.to_string()),
        ),
    ]
}

/// Splits `all` into the requested properties found and those missing.
pub fn select(all: Vec<(Name, Value)>, wanted: Option<&[Name]>) -> (Vec<(Name, Value)>, Vec<Name>) {
    match wanted {
        None => (all, Vec::new()),
        Some(w) => {
            let mut all = all;
            let mut found = Vec::with_capacity(w.len());
            let mut missing = Vec::new();
            for name in w {
                // Moved, not cloned: a name asked twice is found once.
                match all.iter().position(|(n, _)| n == name) {
                    Some(at) => found.push(all.swap_remove(at)),
                    None if found.iter().any(|(n, _)| n == name) => {}
                    None => missing.push(name.clone()),
                }
            }
            (found, missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn coll() -> DavCollection {
        DavCollection {
            id: Uuid::new_v4(),
            name: "work".into(),
            kind: "calendar".into(),
            display_name: "Work".into(),
            color: "#ff0000".into(),
            sort_order: None,
            mode: "two-way".into(),
            head: 7,
            description: String::new(),
            timezone: String::new(),
            components: Vec::new(),
            dead_props: Vec::new(),
        }
    }

    #[test]
    fn sync_tokens_belong_to_one_collection_and_never_the_future() {
        let c = coll();
        assert_eq!(parse_sync_token(&c, &sync_token(&c, 3)), Some(3));
        assert_eq!(
            parse_sync_token(&c, &sync_token(&c, 8)),
            None,
            "from the future"
        );
        assert_eq!(
            parse_sync_token(&c, &sync_token(&coll(), 3)),
            None,
            "another collection's"
        );
        assert_eq!(parse_sync_token(&c, "garbage"), None);
    }

    #[test]
    fn unknown_properties_are_missing() {
        let wanted = [n(DAV, "displayname"), n("urn:x", "nope")];
        let (found, missing) = select(collection(Kind::Calendars, "a@b", &coll()), Some(&wanted));
        assert_eq!(found.len(), 1);
        assert_eq!(missing, vec![n("urn:x", "nope")]);
    }
}
