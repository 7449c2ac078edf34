//! What a DAV URL names, and the hrefs we write. Logins appear in URLs as
//! `alice@acme` or `alice%40acme`; both name the same resources.
//!
//! Names round-trip however a client encodes them: an item's name is kept in one
//! canonical form ([`canonical`]: percent-escapes decoded, then everything but
//! unreserved and a few safe characters escaped again, hex in upper case), so
//! `a b.ics` (as some clients send it), `a%20b.ics` and `caf%c3%a9.ics` /
//! `caf%C3%A9.ics` / `café.ics` each name one item, and every answer writes it the same
//! way. Collection names are kept decoded and written through [`canonical`].

/// A collection kind as it appears in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/dav/calendars/...`
    Calendars,
    /// `/dav/addressbooks/...`
    AddressBooks,
}

impl Kind {
    /// The URL segment.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Calendars => "calendars",
            Kind::AddressBooks => "addressbooks",
        }
    }
    /// The store's collection kind.
    pub fn store_kind(self) -> &'static str {
        match self {
            Kind::Calendars => "calendar",
            Kind::AddressBooks => "addressbook",
        }
    }
}

/// The resource a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`, `/dav/`, `/dav/principals/`: where clients start looking.
    Root,
    /// `/.well-known/caldav` or `/.well-known/carddav`.
    WellKnown,
    /// `/dav/principals/<login>/`.
    Principal(String),
    /// `/dav/calendars/<login>/` or `/dav/addressbooks/<login>/`.
    Home(Kind, String),
    /// A calendar or address book.
    Collection(Kind, String, String),
    /// An item in one.
    Item(Kind, String, String, String),
    /// Something deeper: a plain WebDAV resource inside a folder in a collection
    /// (the relative path, as sent).
    Nested(Kind, String, String, String),
}

/// Percent-decodes `%40` (and any other escape) in a login segment.
fn decode(seg: &str) -> String {
    String::from_utf8_lossy(&decode_bytes(seg)).into_owned()
}

/// A segment percent-decoded to text (invalid UTF-8 replaced), as collection names are
/// kept.
pub fn decoded(seg: &str) -> String {
    decode(seg)
}

/// Percent-decodes a segment to bytes.
fn decode_bytes(seg: &str) -> Vec<u8> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Longest request path accepted (414 beyond).
pub const MAX_PATH: usize = 4096;
/// Longest name of a collection, item or folder, in bytes once decoded (as file
/// systems and the back ends allow; 400 beyond).
pub const MAX_NAME: usize = 255;

/// Why a request path is refused before anything looks it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Longer than [`MAX_PATH`].
    TooLong,
    /// A segment that can name nothing (a control character, or too long).
    Invalid(&'static str),
}

/// Checks a request path (as sent) for what no resource can be named: control
/// characters such as NUL once decoded, segments longer than [`MAX_NAME`], or a path
/// longer than [`MAX_PATH`]. Such names are refused here, as the client's mistake,
/// instead of reaching the database and failing there.
pub fn check(path: &str) -> Result<(), PathError> {
    if path.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    for seg in path.split('/') {
        if !seg.contains('%') && seg.len() <= MAX_NAME && !seg.chars().any(char::is_control) {
            continue;
        }
        let decoded = decode_bytes(seg);
        if decoded.len() > MAX_NAME {
            return Err(PathError::Invalid(
                "a name in the path is longer than 255 bytes",
            ));
        }
        if decoded.iter().any(|b| *b < 0x20 || *b == 0x7f) {
            return Err(PathError::Invalid(
                "a name in the path holds a control character",
            ));
        }
        if std::str::from_utf8(&decoded).is_err() {
            return Err(PathError::Invalid("a name in the path is not UTF-8"));
        }
    }
    Ok(())
}

/// Characters kept as they are in a canonical name: RFC 3986 unreserved, and the
/// sub-delimiters and `@` / `:` that path segments may hold.
fn keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
        )
}

/// The canonical form of a path segment (see the module documentation). Idempotent.
pub fn canonical(seg: &str) -> String {
    let bytes = decode_bytes(seg);
    let mut out = String::with_capacity(bytes.len());
    for b in bytes {
        if keeps(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Target {
    /// Parses a request path (as sent, still percent-encoded).
    pub fn parse(path: &str) -> Option<Target> {
        match path {
            "/" | "/dav" | "/dav/" | "/dav/principals" | "/dav/principals/" => {
                return Some(Target::Root);
            }
            "/.well-known/caldav"
            | "/.well-known/caldav/"
            | "/.well-known/carddav"
            | "/.well-known/carddav/" => {
                return Some(Target::WellKnown);
            }
            _ => {}
        }
        let rest = path.strip_prefix("/dav/")?;
        let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            return None;
        }
        let kind = match segs[0] {
            "principals" => {
                return match segs.as_slice() {
                    [_, login] => Some(Target::Principal(decode(login))),
                    _ => None,
                };
            }
            "calendars" => Kind::Calendars,
            "addressbooks" => Kind::AddressBooks,
            _ => return None,
        };
        match segs.as_slice() {
            [_, login] => Some(Target::Home(kind, decode(login))),
            [_, login, coll] => Some(Target::Collection(kind, decode(login), decode(coll))),
            [_, login, coll, item] => Some(Target::Item(
                kind,
                decode(login),
                decode(coll),
                canonical(item),
            )),
            [_, login, coll, rest @ ..] => Some(Target::Nested(
                kind,
                decode(login),
                decode(coll),
                rest.iter()
                    .map(|s| canonical(s))
                    .collect::<Vec<_>>()
                    .join("/"),
            )),
            _ => None,
        }
    }

    /// The login a URL names, if any.
    pub fn login(&self) -> Option<&str> {
        match self {
            Target::Principal(l)
            | Target::Home(_, l)
            | Target::Collection(_, l, _)
            | Target::Item(_, l, _, _)
            | Target::Nested(_, l, _, _) => Some(l),
            Target::Root | Target::WellKnown => None,
        }
    }
}

/// True when a URL's login is the authenticated one (case-insensitive tenant and user).
pub fn same_login(url: &str, who: &str) -> bool {
    url.eq_ignore_ascii_case(who)
}

/// `/dav/principals/<login>/`
pub fn principal(login: &str) -> String {
    format!("/dav/principals/{login}/")
}

/// `/dav/<kind>/<login>/`
pub fn home(kind: Kind, login: &str) -> String {
    format!("/dav/{}/{login}/", kind.segment())
}

/// `/dav/<kind>/<login>/<collection>/`, the collection's name written canonically.
pub fn collection(kind: Kind, login: &str, name: &str) -> String {
    format!("/dav/{}/{login}/{}/", kind.segment(), canonical(name))
}

/// `/dav/<kind>/<login>/<collection>/<item>`, names written canonically.
pub fn item(kind: Kind, login: &str, coll: &str, name: &str) -> String {
    format!(
        "/dav/{}/{login}/{}/{}",
        kind.segment(),
        canonical(coll),
        canonical(name)
    )
}

/// The (canonical) item name an href names, if it is inside `collection_href`.
pub fn item_name_in(href: &str, collection_href: &str) -> Option<String> {
    let path = match href.find("://") {
        Some(i) => &href[href[i + 3..].find('/').map(|j| i + 3 + j)?..],
        None => href,
    };
    let (dir, name) = path.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    let same = |a: &str, b: &str| {
        let split =
            |p: &str| -> Vec<String> { p.trim_end_matches('/').split('/').map(decode).collect() };
        split(a) == split(b)
    };
    same(dir, collection_href).then(|| canonical(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_layout() {
        assert_eq!(Target::parse("/"), Some(Target::Root));
        assert_eq!(
            Target::parse("/.well-known/caldav"),
            Some(Target::WellKnown)
        );
        assert_eq!(
            Target::parse("/dav/principals/alice@acme/"),
            Some(Target::Principal("alice@acme".into()))
        );
        assert_eq!(
            Target::parse("/dav/principals/alice%40acme/"),
            Some(Target::Principal("alice@acme".into()))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice@acme/"),
            Some(Target::Home(Kind::Calendars, "alice@acme".into()))
        );
        assert_eq!(
            Target::parse("/dav/addressbooks/alice%40acme/contacts/"),
            Some(Target::Collection(
                Kind::AddressBooks,
                "alice@acme".into(),
                "contacts".into()
            ))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice@acme/work/a%20b.ics"),
            Some(Target::Item(
                Kind::Calendars,
                "alice@acme".into(),
                "work".into(),
                "a%20b.ics".into()
            ))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice@acme/work/a%40b.ics"),
            Some(Target::Item(
                Kind::Calendars,
                "alice@acme".into(),
                "work".into(),
                "a@b.ics".into()
            ))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice@acme/../bob@acme/"),
            None
        );
        assert_eq!(Target::parse("/dav/other/x/"), None);
        assert_eq!(
            Target::parse("/dav/calendars/a/b/c/d"),
            Some(Target::Nested(
                Kind::Calendars,
                "a".into(),
                "b".into(),
                "c/d".into()
            ))
        );
    }

    #[test]
    fn refuses_names_no_resource_can_have() {
        assert_eq!(check("/dav/calendars/alice@acme/work/a%20b.ics"), Ok(()));
        assert!(matches!(
            check("/dav/calendars/alice%00@acme/"),
            Err(PathError::Invalid(_))
        ));
        assert!(matches!(
            check(&format!(
                "/dav/calendars/alice@acme/work/{}.ics",
                "a".repeat(6000)
            )),
            Err(PathError::TooLong)
        ));
        assert!(matches!(
            check(&format!(
                "/dav/calendars/alice@acme/work/{}.ics",
                "a".repeat(300)
            )),
            Err(PathError::Invalid(_))
        ));
        assert!(matches!(
            check(&format!(
                "/dav/calendars/alice@acme/work/{}",
                "%41".repeat(100)
            )),
            Ok(())
        ));
        assert!(matches!(
            check("/dav/calendars/alice@acme/work/%FF.ics"),
            Err(PathError::Invalid(_))
        ));
    }

    #[test]
    fn names_have_one_canonical_form() {
        for (given, canon) in [
            ("a%20b.ics", "a%20b.ics"),
            ("a b.ics", "a%20b.ics"),
            ("caf%c3%a9.ics", "caf%C3%A9.ics"),
            ("café.ics", "caf%C3%A9.ics"),
            ("100%25.ics", "100%25.ics"),
            ("a%40b.ics", "a@b.ics"),
            ("a%2Fb.ics", "a%2Fb.ics"),
            ("[x]#y?.ics", "%5Bx%5D%23y%3F.ics"),
        ] {
            assert_eq!(canonical(given), canon, "{given}");
            assert_eq!(canonical(canon), canon, "idempotent for {canon}");
        }
        assert_eq!(
            Target::parse("/dav/calendars/alice@acme/work/caf%c3%a9.ics"),
            Target::parse("/dav/calendars/alice@acme/work/café.ics")
        );
        assert_eq!(
            item(Kind::Calendars, "alice@acme", "my cal", "a b.ics"),
            "/dav/calendars/alice@acme/my%20cal/a%20b.ics"
        );
    }

    #[test]
    fn finds_item_names_in_hrefs() {
        let c = "/dav/calendars/alice@acme/work/";
        assert_eq!(
            item_name_in("/dav/calendars/alice@acme/work/x.ics", c).as_deref(),
            Some("x.ics")
        );
        assert_eq!(
            item_name_in("/dav/calendars/alice%40acme/work/x.ics", c).as_deref(),
            Some("x.ics")
        );
        assert_eq!(
            item_name_in("http://h:1/dav/calendars/alice@acme/work/x.ics", c).as_deref(),
            Some("x.ics")
        );
        assert_eq!(
            item_name_in("/dav/calendars/alice@acme/home/x.ics", c),
            None
        );
        assert_eq!(item_name_in(c, c), None);
    }
}
