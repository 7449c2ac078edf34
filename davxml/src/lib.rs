//! # postern-davxml: DAV XML without I/O
//!
//! Both sides of Postern speak WebDAV: the connector as a client of the corporate
//! CalDAV/CardDAV server, the gateway as a server to remote clients. This crate holds
//! what they share:
//!
//! - [`parse`]: a tiny namespace-aware tree ([`Element`]) of a request or response
//!   body. Bodies are small enough (a few megabytes for thousands of items) to hold
//!   whole, and a tree keeps each request's parser short and readable.
//! - [`Limits`]: how deep and how large a tree may grow. A body is untrusted input
//!   (a client's request on the gateway, a back end's answer on the connector), and a
//!   tree is walked, cloned and freed recursively, so its depth is bounded while it is
//!   read: a body nesting 60,000 elements is refused after the limit, long before any
//!   recursion could exhaust the stack. The element count bounds the tree's memory.
//! - [`Writer`]: builds the bodies the gateway answers with (multistatus and errors),
//!   with the namespaces declared once on the root.
//! - the namespace constants.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The DAV namespace.
pub const DAV: &str = "DAV:";
/// The CalDAV namespace (RFC 4791).
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// The CardDAV namespace (RFC 6352).
pub const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
/// Apple's iCal namespace (calendar colour and order).
pub const APPLE: &str = "http://apple.com/ns/ical/";
/// CalendarServer's namespace (getctag).
pub const CS: &str = "http://calendarserver.org/ns/";

/// An element: its namespace, local name, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI ("" when unbound).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Concatenated text content of this element (not of its children).
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Attributes by local name (e.g. `name` of a CalDAV `comp-filter`).
    pub attrs: Vec<(String, String)>,
}

impl Element {
    /// True when this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The first descendant `{ns}name`, depth first.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| {
            if c.is(ns, name) {
                Some(c)
            } else {
                c.find(ns, name)
            }
        })
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Trimmed text.
    pub fn trimmed(&self) -> &str {
        self.text.trim()
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// Elements nested deeper than [`Limits::max_depth`].
    #[error("XML nests elements deeper than {0} levels")]
    TooDeep(usize),
    /// More elements and attributes than [`Limits::max_elements`].
    #[error("XML holds more than {0} elements and attributes")]
    TooMany(usize),
}

/// Bounds on a parsed tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of elements (the root is level 1).
    pub max_depth: usize,
    /// Most elements and attributes in the whole document.
    pub max_elements: usize,
}

impl Limits {
    /// What [`parse`] applies: a depth no DAV body comes near (a CalDAV filter nests
    /// about eight levels), and no bound on the count (the caller bounds the bytes).
    pub const DEFAULT: Limits = Limits {
        max_depth: 64,
        max_elements: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Parses a whole document into its root element, within [`Limits::DEFAULT`].
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    parse_with(body, Limits::DEFAULT)
}

/// Parses a whole document into its root element, refusing it as soon as it passes
/// `limits` (so a hostile body costs at most the limits, whatever its size).
pub fn parse_with(body: &[u8], limits: Limits) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_reader(body);
    let mut buf = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut counted = |n: usize| {
        count = count.saturating_add(n);
        if count > limits.max_elements {
            Err(XmlError::TooMany(limits.max_elements))
        } else {
            Ok(())
        }
    };
    loop {
        let (ns, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        let ns = match ns {
            // A namespace is an attribute value: entities in it stand for characters.
            ResolveResult::Bound(n) if n.as_ref().contains('&') => {
                let raw = n.as_ref().to_string();
                quick_xml::escape::unescape(&raw)
                    .map_err(|e| XmlError::Malformed(format!("namespace {raw:?}: {e}")))?
                    .into_owned()
            }
            ResolveResult::Bound(n) => n.as_ref().to_string(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => {
                return Err(XmlError::Malformed(format!(
                    "namespace prefix {prefix:?} is not declared"
                )));
            }
        };
        if let Event::Start(_) | Event::Empty(_) = &event {
            if root.is_some() {
                return Err(XmlError::Malformed("more than one root element".into()));
            }
            if stack.len() >= limits.max_depth {
                return Err(XmlError::TooDeep(limits.max_depth));
            }
        }
        match event {
            Event::Start(e) => {
                let attrs = attributes(&e);
                counted(1 + attrs.len())?;
                stack.push(Element {
                    ns,
                    name: e.local_name().as_ref().to_string(),
                    attrs,
                    ..Element::default()
                })
            }
            Event::Empty(e) => {
                let attrs = attributes(&e);
                counted(1 + attrs.len())?;
                let el = Element {
                    ns,
                    name: e.local_name().as_ref().to_string(),
                    attrs,
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        top.text.push(c);
                    } else {
                        let name: &str = &r;
                        top.text.push_str(match name {
                            "amp" => "&",
                            "lt" => "<",
                            "gt" => ">",
                            "quot" => "\"",
                            "apos" => "'",
                            other => {
                                return Err(XmlError::Malformed(format!(
                                    "unknown entity &{other};"
                                )));
                            }
                        });
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| XmlError::Malformed("empty document".into()))
}

fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .filter_map(Result::ok)
        .filter(|a| !a.key.as_ref().starts_with("xmlns"))
        .map(|a| {
            let key = a.key.local_name().as_ref().to_string();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_default();
            (key, value)
        })
        .collect()
}

/// Serialises an element back to markup, each element declaring its own namespace
/// (so the result stands alone wherever it is embedded).
pub fn to_xml(e: &Element) -> String {
    let mut out = String::new();
    out.push('<');
    out.push_str(&e.name);
    out.push_str(&format!(r#" xmlns="{}""#, escape(&e.ns)));
    for (k, v) in &e.attrs {
        out.push_str(&format!(r#" {k}="{}""#, escape(v)));
    }
    out.push('>');
    out.push_str(&inner_xml(e));
    out.push_str(&format!("</{}>", e.name));
    out
}

/// The content of an element as markup: its text, then its children.
pub fn inner_xml(e: &Element) -> String {
    let mut out = escape(&e.text);
    for c in &e.children {
        out.push_str(&to_xml(c));
    }
    out
}

/// Escapes text for an XML body.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A qualified property or element name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    /// Namespace URI.
    pub ns: String,
    /// Local name.
    pub local: String,
}

impl Name {
    /// `{ns}local`.
    pub fn new(ns: &str, local: &str) -> Self {
        Name {
            ns: ns.to_string(),
            local: local.to_string(),
        }
    }
}

/// The prefixes declared on every body the gateway writes.
const PREFIXES: &[(&str, &str)] = &[
    ("d", DAV),
    ("c", CALDAV),
    ("cr", CARDDAV),
    ("a", APPLE),
    ("cs", CS),
];

fn prefix(ns: &str) -> Option<&'static str> {
    PREFIXES.iter().find(|(_, n)| *n == ns).map(|(p, _)| *p)
}

/// Writes `<name>` (`open`), `</name>` or `<name/>` for any namespace: a known one
/// by its prefix, another with an inline declaration.
fn tag(out: &mut String, name: &Name, kind: TagKind) {
    // Written piece by piece: this runs for every property of every member of a
    // large answer, and a formatted string per tag made allocation its main cost.
    let prefix = prefix(&name.ns);
    out.push('<');
    if let TagKind::Close = kind {
        out.push('/');
    }
    match prefix {
        Some(p) => {
            out.push_str(p);
            out.push(':');
        }
        None if !name.ns.is_empty() => out.push_str("x:"),
        None => {}
    }
    out.push_str(&name.local);
    if prefix.is_none() && !name.ns.is_empty() && !matches!(kind, TagKind::Close) {
        out.push_str(r#" xmlns:x=""#);
        out.push_str(&escape(&name.ns));
        out.push('"');
    }
    if let TagKind::Empty = kind {
        out.push('/');
    }
    out.push('>');
}

#[derive(Clone, Copy)]
enum TagKind {
    Open,
    Close,
    Empty,
}

/// The value of a property in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text, escaped on output.
    Text(String),
    /// Markup written as is (already built with [`Writer::element`] helpers).
    Xml(String),
    /// An empty element.
    Empty,
}

/// Builds an answer body.
#[derive(Debug)]
pub struct Writer {
    out: String,
}

fn namespaces() -> String {
    PREFIXES
        .iter()
        .map(|(p, n)| format!(r#" xmlns:{p}="{n}""#))
        .collect()
}

impl Writer {
    /// Starts a `multistatus`.
    pub fn multistatus() -> Self {
        Writer {
            out: format!(
                r#"<?xml version="1.0" encoding="utf-8"?>{}<d:multistatus{}>"#,
                "\n",
                namespaces()
            ),
        }
    }

    /// One `response` with the properties found (200) and those not found (404).
    pub fn response(&mut self, href: &str, found: &[(Name, Value)], missing: &[Name]) {
        self.out.push_str("<d:response><d:href>");
        self.out.push_str(&escape(href));
        self.out.push_str("</d:href>");
        if !found.is_empty() || missing.is_empty() {
            self.out.push_str("<d:propstat><d:prop>");
            for (name, value) in found {
                match value {
                    Value::Empty => tag(&mut self.out, name, TagKind::Empty),
                    Value::Text(t) => {
                        tag(&mut self.out, name, TagKind::Open);
                        self.out.push_str(&escape(t));
                        tag(&mut self.out, name, TagKind::Close);
                    }
                    Value::Xml(x) => {
                        tag(&mut self.out, name, TagKind::Open);
                        self.out.push_str(x);
                        tag(&mut self.out, name, TagKind::Close);
                    }
                }
            }
            self.out
                .push_str("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>");
        }
        if !missing.is_empty() {
            self.out.push_str("<d:propstat><d:prop>");
            for name in missing {
                tag(&mut self.out, name, TagKind::Empty);
            }
            self.out
                .push_str("</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>");
        }
        self.out.push_str("</d:response>");
    }

    /// One `response` that is only a status (a deleted member, a truncation).
    pub fn status(&mut self, href: &str, status: &str) {
        self.out.push_str("<d:response><d:href>");
        self.out.push_str(&escape(href));
        self.out.push_str("</d:href><d:status>HTTP/1.1 ");
        self.out.push_str(status);
        self.out.push_str("</d:status></d:response>");
    }

    /// Properties answered with a status other than 200/404 (PROPPATCH results).
    pub fn propstat(&mut self, href: &str, results: &[(Name, &str)]) {
        self.out.push_str("<d:response><d:href>");
        self.out.push_str(&escape(href));
        self.out.push_str("</d:href>");
        for (name, status) in results {
            self.out.push_str("<d:propstat><d:prop>");
            tag(&mut self.out, name, TagKind::Empty);
            self.out.push_str("</d:prop><d:status>HTTP/1.1 ");
            self.out.push_str(status);
            self.out.push_str("</d:status></d:propstat>");
        }
        self.out.push_str("</d:response>");
    }

    /// The `sync-token` of a sync-collection answer.
    pub fn sync_token(&mut self, token: &str) {
        self.out.push_str("<d:sync-token>");
        self.out.push_str(&escape(token));
        self.out.push_str("</d:sync-token>");
    }

    /// Bytes written and not yet taken.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// What was written since the start or the last `take`, for an answer sent in
    /// pieces while it is produced.
    pub fn take(&mut self) -> String {
        // The next piece will be about as large: start it at that size rather than
        // growing it again from nothing.
        let next = String::with_capacity(self.out.len());
        std::mem::replace(&mut self.out, next)
    }

    /// Ends the body.
    pub fn finish(mut self) -> String {
        self.out.push_str("</d:multistatus>");
        self.out
    }

    /// `<name>inner</name>` as markup, for nesting in a [`Value::Xml`].
    pub fn element(name: &Name, inner: &str) -> String {
        let mut s = String::new();
        tag(&mut s, name, TagKind::Open);
        s.push_str(inner);
        tag(&mut s, name, TagKind::Close);
        s
    }

    /// `<name/>` as markup.
    pub fn empty(name: &Name) -> String {
        let mut s = String::new();
        tag(&mut s, name, TagKind::Empty);
        s
    }

    /// A DAV `error` body naming a failed precondition with inner markup (e.g. the
    /// href of the item a `no-uid-conflict` is about).
    pub fn error_with(precondition: &Name, inner: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>{}<d:error{}>{}</d:error>"#,
            "\n",
            namespaces(),
            Self::element(precondition, inner)
        )
    }

    /// A DAV `error` body naming a failed precondition, e.g. `{CALDAV}valid-calendar-data`.
    pub fn error(precondition: &Name) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>{}<d:error{}>{}</d:error>"#,
            "\n",
            namespaces(),
            Self::empty(precondition)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_and_entities() {
        let doc = br#"<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:response><d:href>/a/b%40c.ics</d:href>
    <d:propstat><d:prop><c:calendar-data>A &amp; B&#13;
line</c:calendar-data></d:prop></d:propstat></d:response>
  <x:other xmlns:x="urn:x"/>
</d:multistatus>"#;
        let root = parse(doc).unwrap();
        assert!(root.is(DAV, "multistatus"));
        let resp = root.child(DAV, "response").unwrap();
        assert_eq!(resp.child(DAV, "href").unwrap().trimmed(), "/a/b%40c.ics");
        assert_eq!(
            root.find(CALDAV, "calendar-data").unwrap().text,
            "A & B\r\nline"
        );
        assert!(root.child("urn:x", "other").is_some());
        let f = parse(br#"<c:filter xmlns:c="urn:ietf:params:xml:ns:caldav"><c:comp-filter name="VCALENDAR"/></c:filter>"#).unwrap();
        assert_eq!(
            f.child(CALDAV, "comp-filter").unwrap().attr("name"),
            Some("VCALENDAR")
        );
    }

    #[test]
    fn writes_a_multistatus_that_parses_back() {
        let mut w = Writer::multistatus();
        let color = Name::new(APPLE, "calendar-color");
        let odd = Name::new("urn:x", "odd");
        w.response(
            "/a/<b>/",
            &[
                (Name::new(DAV, "displayname"), Value::Text("A & B".into())),
                (color, Value::Empty),
            ],
            std::slice::from_ref(&odd),
        );
        w.status("/a/gone.ics", "404 Not Found");
        w.sync_token("urn:t:1");
        let body = w.finish();
        let root = parse(body.as_bytes()).unwrap();
        let responses: Vec<_> = root.children_named(DAV, "response").collect();
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].child(DAV, "href").unwrap().text, "/a/<b>/");
        assert_eq!(root.find(DAV, "displayname").unwrap().text, "A & B");
        assert!(root.find("urn:x", "odd").is_some());
        assert_eq!(root.child(DAV, "sync-token").unwrap().text, "urn:t:1");
        let err = Writer::error(&Name::new(CALDAV, "valid-calendar-data"));
        assert!(
            parse(err.as_bytes())
                .unwrap()
                .child(CALDAV, "valid-calendar-data")
                .is_some()
        );
    }

    #[test]
    fn namespaces_are_read_unescaped_and_written_escaped() {
        let root = parse(br#"<x:a xmlns:x="urn:a&amp;b"/>"#).unwrap();
        assert_eq!(root.ns, "urn:a&b");
        let again = parse(to_xml(&root).as_bytes()).unwrap();
        assert_eq!(again.ns, "urn:a&b");
        assert!(parse(br#"<x:a xmlns:x="urn:a&b"/>"#).is_err(), "a bare &");
    }

    #[test]
    fn deep_nesting_is_refused_at_the_limit_without_recursing() {
        // 60,000 levels crashed the gateway (stack overflow) before the limit.
        let depth = 60_000;
        let doc = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert_eq!(parse(doc.as_bytes()), Err(XmlError::TooDeep(64)));
        let limits = Limits {
            max_depth: 3,
            max_elements: usize::MAX,
        };
        assert!(parse_with(b"<a><b><c/></b></a>", limits).is_ok());
        assert_eq!(
            parse_with(b"<a><b><c><d/></c></b></a>", limits),
            Err(XmlError::TooDeep(3))
        );
    }

    #[test]
    fn element_count_is_bounded() {
        let limits = Limits {
            max_depth: 64,
            max_elements: 1_000,
        };
        let wide = format!("<p>{}</p>", "<x/>".repeat(999));
        assert!(parse_with(wide.as_bytes(), limits).is_ok());
        let wider = format!("<p>{}</p>", "<x/>".repeat(1_000));
        assert_eq!(
            parse_with(wider.as_bytes(), limits),
            Err(XmlError::TooMany(1_000))
        );
        // Attributes count too: they are allocated like elements.
        let attrs = format!(
            "<p {}/>",
            (0..1_000)
                .map(|i| format!("a{i}=\"v\" "))
                .collect::<String>()
        );
        assert_eq!(
            parse_with(attrs.as_bytes(), limits),
            Err(XmlError::TooMany(1_000))
        );
    }

    #[test]
    fn refuses_broken_documents() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a><b>").is_err(), "unclosed elements");
        assert!(parse(b"<a/><b/>").is_err(), "two roots");
        assert!(parse(b"<x:a/>").is_err(), "an undeclared prefix");
        assert!(parse(b"").is_err());
    }
}
