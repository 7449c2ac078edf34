//! ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2), computed from the stored message.
//!
//! Servers differ most here, and strict client parsers break on quirks, so the
//! values come from the message's own bytes and nothing is decoded: header values
//! are given as they are written (unfolded, encoded words kept), addresses are split
//! into name, mailbox and host, MIME parts are found by their boundaries, and sizes
//! and line counts are of the part's body as stored. The e2e suite compares the
//! answers with Dovecot's for the same messages.

use imap_next::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_next::imap_types::core::{IString, NString, Vec1};
use imap_next::imap_types::envelope::{Address, Envelope};

use super::fetch::{header_values, split};

fn istring(s: &str) -> IString<'static> {
    IString::try_from(s.to_string()).unwrap_or_else(|_| {
        IString::try_from(String::from_utf8_lossy(s.as_bytes()).replace('\0', ""))
            .unwrap_or_else(|_| IString::try_from("").expect("empty"))
    })
}

fn nstring(s: Option<&str>) -> NString<'static> {
    NString(s.map(istring))
}

/// The first value of header `name`, unfolded and trimmed.
fn first(header: &[u8], name: &str) -> Option<String> {
    header_values(header, name)
        .first()
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
}

/// The ENVELOPE of a message.
pub fn envelope(message: &[u8]) -> Envelope<'static> {
    let header = split(message).0;
    let list = |name: &str| {
        header_values(header, name)
            .iter()
            .flat_map(|v| addresses(&String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
    };
    let from = list("from");
    let sender = match list("sender") {
        s if s.is_empty() => from.clone(),
        s => s,
    };
    let reply_to = match list("reply-to") {
        r if r.is_empty() => from.clone(),
        r => r,
    };
    Envelope {
        date: nstring(first(header, "date").as_deref()),
        subject: nstring(first(header, "subject").as_deref()),
        from,
        sender,
        reply_to,
        to: list("to"),
        cc: list("cc"),
        bcc: list("bcc"),
        in_reply_to: nstring(first(header, "in-reply-to").as_deref()),
        message_id: nstring(first(header, "message-id").as_deref()),
    }
}

/// Tokens of an address list.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Angle(String),
    Comment(String),
    Special(char),
}

fn tokens(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => q.extend(chars.next()),
                        '"' => break,
                        c => q.push(c),
                    }
                }
                out.push(Token::Quoted(q));
            }
            '(' => {
                // A comment: the name of a bare address that has one.
                let mut depth = 1;
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => text.extend(chars.next()),
                        '(' => {
                            depth += 1;
                            text.push(c);
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        c => text.push(c),
                    }
                }
                out.push(Token::Comment(text.trim().to_string()));
            }
            '<' => {
                let mut a = String::new();
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                    a.push(c);
                }
                out.push(Token::Angle(a.trim().to_string()));
            }
            ',' | ':' | ';' => out.push(Token::Special(c)),
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '"' | '(' | '<' | ',' | ':' | ';') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    out
}

/// The host given to an address written without one: a NIL host would mark a
/// group to clients (RFC 9051 §7.5.2). Dovecot's word for it.
const MISSING_DOMAIN: &str = "MISSING_DOMAIN";

fn address(name: Option<String>, spec: &str) -> Address<'static> {
    let (mailbox, host) = match spec.rsplit_once('@') {
        Some((m, h)) => (Some(m.to_string()), Some(h.to_string())),
        None => (
            Some(spec.to_string()).filter(|s| !s.is_empty()),
            Some(MISSING_DOMAIN.to_string()),
        ),
    };
    Address {
        name: nstring(name.filter(|n| !n.is_empty()).as_deref()),
        adl: NString(None),
        mailbox: nstring(mailbox.as_deref()),
        host: nstring(host.as_deref()),
    }
}

/// An address list (RFC 5322 §3.4), groups marked as RFC 9051 asks: a start with
/// the group's name as mailbox and no host, an end with neither.
pub fn addresses(value: &str) -> Vec<Address<'static>> {
    let mut out = Vec::new();
    let mut phrase: Vec<String> = Vec::new();
    let mut spec: Option<String> = None;
    let mut comment: Option<String> = None;
    let mut in_group = false;
    let flush = |phrase: &mut Vec<String>,
                 spec: &mut Option<String>,
                 comment: &mut Option<String>,
                 out: &mut Vec<Address<'static>>| {
        match spec.take() {
            Some(s) => out.push(address(Some(phrase.join(" ")), &s)),
            None if !phrase.is_empty() => {
                // A bare addr-spec, written as words ("bob@corp.example"); a comment
                // after it is its name.
                out.push(address(comment.take(), &phrase.concat()));
            }
            None => {}
        }
        phrase.clear();
        *comment = None;
    };
    for t in tokens(value) {
        match t {
            Token::Word(w) => phrase.push(w),
            Token::Quoted(q) => phrase.push(q),
            Token::Angle(a) => spec = Some(a),
            Token::Comment(c) => comment = Some(c),
            Token::Special(',') => flush(&mut phrase, &mut spec, &mut comment, &mut out),
            Token::Special(':') if !in_group && spec.is_none() => {
                in_group = true;
                out.push(Address {
                    name: NString(None),
                    adl: NString(None),
                    mailbox: nstring(Some(&phrase.join(" "))),
                    host: NString(None),
                });
                phrase.clear();
            }
            Token::Special(';') if in_group => {
                flush(&mut phrase, &mut spec, &mut comment, &mut out);
                in_group = false;
                out.push(Address {
                    name: NString(None),
                    adl: NString(None),
                    mailbox: NString(None),
                    host: NString(None),
                });
            }
            Token::Special(c) => phrase.push(c.to_string()),
        }
    }
    flush(&mut phrase, &mut spec, &mut comment, &mut out);
    out
}

/// A header value's main token and its parameters (`type/subtype; a=b; c="d"`).
fn parameters(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '\\' if quoted => {
                cur.push(c);
                cur.extend(chars.next());
            }
            ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let main = parts
        .first()
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    let params = parts
        .iter()
        .skip(1)
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_string(),
            };
            Some((k.trim().to_string(), v))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect();
    (main, params)
}

fn param_list(params: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .iter()
        .map(|(k, v)| (istring(k), istring(v)))
        .collect()
}

/// Lines of a part's body: its line ends (a last line without one is not counted,
/// as Dovecot counts; a part's last line end belongs to the boundary after it).
fn lines(body: &[u8]) -> u32 {
    body.iter().filter(|b| **b == b'\n').count() as u32
}

/// The parts of a multipart body, between its boundary lines.
fn parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut starts: Vec<(usize, usize, bool)> = Vec::new(); // (line start, after line, closing)
    let mut i = 0;
    while i < body.len() {
        let line_end = body[i..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |p| i + p + 1);
        let line = &body[i..line_end];
        if line.starts_with(d) {
            let rest = &line[d.len()..];
            let closing = rest.starts_with(b"--");
            let tail = if closing { &rest[2..] } else { rest };
            if tail.iter().all(|b| b.is_ascii_whitespace()) {
                starts.push((i, line_end, closing));
                if closing {
                    break;
                }
            }
        }
        i = line_end;
    }
    starts
        .windows(2)
        .filter(|w| !w[0].2)
        .map(|w| {
            let (from, to) = (w[0].1, w[1].0);
            // The line end before a delimiter belongs to the delimiter.
            let to = if to >= 2 && &body[to - 2..to] == b"\r\n" {
                to - 2
            } else if to >= 1 && body[to - 1] == b'\n' {
                to - 1
            } else {
                to
            };
            &body[from..to.max(from)]
        })
        .collect()
}

/// The BODYSTRUCTURE (`extended`) or BODY of a message or a MIME part, whose
/// default type is `text/plain` (or `message/rfc822` inside a multipart/digest).
pub fn structure(message: &[u8], extended: bool, digest: bool) -> BodyStructure<'static> {
    let (header, body) = split(message);
    let (main, mut params) = match first(header, "content-type") {
        Some(v) if v.contains('/') => parameters(&v),
        _ => (
            if digest {
                "message/rfc822"
            } else {
                "text/plain"
            }
            .to_string(),
            Vec::new(),
        ),
    };
    let (kind, subtype) = main.split_once('/').unwrap_or(("text", "plain"));
    let (kind, subtype) = (kind.trim().to_string(), subtype.trim().to_string());
    let disposition = || {
        let d = first(header, "content-disposition").map(|v| parameters(&v));
        Disposition {
            disposition: d.map(|(t, p)| (istring(&t), param_list(&p))),
            tail: Some(Language {
                language: first(header, "content-language")
                    .map(|l| l.split(',').map(|x| istring(x.trim())).collect())
                    .unwrap_or_default(),
                tail: Some(Location {
                    location: nstring(first(header, "content-location").as_deref()),
                    extensions: vec![],
                }),
            }),
        }
    };
    if kind.eq_ignore_ascii_case("multipart") {
        let boundary = params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let digest = subtype.eq_ignore_ascii_case("digest");
        let bodies: Vec<BodyStructure<'static>> = parts(body, &boundary)
            .into_iter()
            .map(|p| structure(p, extended, digest))
            .collect();
        let bodies = Vec1::try_from(bodies).unwrap_or_else(|_| {
            // A multipart without parts: one empty text part, as servers do.
            Vec1::from(structure(b"", extended, false))
        });
        return BodyStructure::Multi {
            bodies,
            subtype: istring(&subtype),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: param_list(&params),
                tail: Some(disposition()),
            }),
        };
    }
    if params.is_empty() && kind.eq_ignore_ascii_case("text") {
        params.push(("charset".into(), "us-ascii".into()));
    }
    let basic = BasicFields {
        parameter_list: param_list(&params),
        id: nstring(first(header, "content-id").as_deref()),
        description: nstring(first(header, "content-description").as_deref()),
        content_transfer_encoding: istring(
            &first(header, "content-transfer-encoding").unwrap_or_else(|| "7bit".into()),
        ),
        size: body.len() as u32,
    };
    let specific = if kind.eq_ignore_ascii_case("text") {
        SpecificFields::Text {
            subtype: istring(&subtype),
            number_of_lines: lines(body),
        }
    } else if kind.eq_ignore_ascii_case("message") && subtype.eq_ignore_ascii_case("rfc822") {
        SpecificFields::Message {
            envelope: Box::new(envelope(body)),
            body_structure: Box::new(structure(body, extended, false)),
            number_of_lines: lines(body),
        }
    } else {
        SpecificFields::Basic {
            r#type: istring(&kind),
            subtype: istring(&subtype),
        }
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(first(header, "content-md5").as_deref()),
            tail: Some(disposition()),
        }),
    }
}

/// A MIME entity: its own header (what `MIME` returns) and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity<'a> {
    pub header: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Entity<'a> {
    fn of(bytes: &'a [u8]) -> Entity<'a> {
        let (header, body) = split(bytes);
        Entity { header, body }
    }

    fn content_type(&self) -> (String, Vec<(String, String)>) {
        match first(self.header, "content-type") {
            Some(v) if v.contains('/') => {
                let (main, params) = parameters(&v);
                (main.to_ascii_lowercase(), params)
            }
            _ => ("text/plain".into(), Vec::new()),
        }
    }

    /// Child `n` (from 1), by RFC 9051 §6.4.5: a multipart's parts; for a message/rfc822
    /// part, the parts of the message it holds (or, when that is not multipart, its
    /// body as part 1); a single part is its own part 1.
    fn child(self, n: u32) -> Option<Entity<'a>> {
        let (main, params) = self.content_type();
        if main.starts_with("multipart/") {
            let boundary = params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.clone())?;
            let part = *parts(self.body, &boundary).get(n.checked_sub(1)? as usize)?;
            let child = Entity::of(part);
            if !child.content_type().0.starts_with("multipart/") {
                return Some(child);
            }
            // A multipart inside a multipart keeps the line end after its closing
            // boundary (Dovecot's answer; its epilogue, strictly).
            let end = part.as_ptr() as usize - self.body.as_ptr() as usize + part.len();
            let rest = &self.body[end..];
            let extra = if rest.starts_with(b"\r\n") {
                2
            } else {
                usize::from(rest.starts_with(b"\n"))
            };
            let start = end - part.len();
            return Some(Entity::of(&self.body[start..end + extra]));
        }
        if main == "message/rfc822" {
            let inner = Entity::of(self.body);
            return if inner.content_type().0.starts_with("multipart/") {
                inner.child(n)
            } else {
                (n == 1).then_some(inner)
            };
        }
        (n == 1).then_some(self)
    }
}

/// The entity a section's part number names in `message`.
pub fn entity<'a>(message: &'a [u8], path: &[std::num::NonZeroU32]) -> Option<Entity<'a>> {
    path.iter()
        .try_fold(Entity::of(message), |e, n| e.child(n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(a: &Address<'_>) -> String {
        let s = |n: &NString<'_>| {
            n.0.as_ref().map_or("NIL".to_string(), |s| {
                String::from_utf8_lossy(s.as_ref()).into_owned()
            })
        };
        format!("{}|{}|{}", s(&a.name), s(&a.mailbox), s(&a.host))
    }

    #[test]
    fn addresses_with_names_quotes_comments_and_groups() {
        let got: Vec<String> = addresses(
            "\"Müller, Jürgen\" <jm@corp.example>, bob@corp.example (Bob), team: a@x.example, B <b@x.example>;, =?UTF-8?Q?Zo=C3=AB?= <zoe@corp.example>",
        )
        .iter()
        .map(shown)
        .collect();
        assert_eq!(
            got,
            vec![
                "Müller, Jürgen|jm|corp.example",
                "Bob|bob|corp.example",
                "NIL|team|NIL",
                "NIL|a|x.example",
                "B|b|x.example",
                "NIL|NIL|NIL",
                "=?UTF-8?Q?Zo=C3=AB?=|zoe|corp.example",
            ]
        );
    }

    #[test]
    fn parts_are_cut_at_their_boundaries() {
        let body = b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n";
        assert_eq!(
            parts(body, "b"),
            vec![
                b"Content-Type: text/plain\r\n\r\none".as_ref(),
                b"\r\ntwo".as_ref()
            ]
        );
        assert_eq!(lines(b"a\r\nb"), 1);
        assert_eq!(lines(b"a\r\nb\r\n"), 2);
        assert_eq!(lines(b""), 0);
    }

    #[test]
    fn parameters_keep_quoted_semicolons() {
        let (main, params) = parameters("multipart/mixed; boundary=\"a;b\"; charset=utf-8");
        assert_eq!(main, "multipart/mixed");
        assert_eq!(
            params,
            vec![
                ("boundary".into(), "a;b".into()),
                ("charset".into(), "utf-8".into())
            ]
        );
    }
}
