//! Mailbox names as IMAP clients see them: the back end's names and hierarchy
//! delimiter, in modified UTF-7 on the wire, INBOX in any case, and LIST's
//! wildcards (`*` matches anything, `%` anything but the delimiter).

use imap_next::imap_types::core::Atom;
use imap_next::imap_types::flag::FlagNameAttribute;
use imap_next::imap_types::mailbox::{ListMailbox, Mailbox};
use postern_imap::utf7;

use crate::store::imap::MailboxRow;

/// The UTF-8 name a client means by `mailbox` (INBOX in any case is INBOX).
pub fn requested(mailbox: &Mailbox<'_>) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".into()),
        Mailbox::Other(other) => {
            let raw = std::str::from_utf8(other.as_ref()).ok()?;
            let name = utf7::decode(raw).unwrap_or_else(|| raw.to_string());
            Some(if name.eq_ignore_ascii_case("INBOX") {
                "INBOX".into()
            } else {
                name
            })
        }
    }
}

/// The row of `name` among `mailboxes`.
pub fn find<'a>(mailboxes: &'a [MailboxRow], name: &str) -> Option<&'a MailboxRow> {
    mailboxes.iter().find(|m| {
        if name == "INBOX" {
            m.name.eq_ignore_ascii_case("INBOX")
        } else {
            m.name == name
        }
    })
}

/// The row of the mailbox a client names.
pub fn lookup<'a>(mailboxes: &'a [MailboxRow], mailbox: &Mailbox<'_>) -> Option<&'a MailboxRow> {
    find(mailboxes, &requested(mailbox)?)
}

/// `name` on the wire.
pub fn wire(name: &str) -> Option<Mailbox<'static>> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Some(Mailbox::Inbox);
    }
    Mailbox::try_from(utf7::encode(name)).ok()
}

/// The pattern of a LIST or LSUB: reference and mailbox joined, decoded.
pub fn pattern(reference: &Mailbox<'_>, wildcard: &ListMailbox<'_>) -> String {
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    };
    let wildcard = match wildcard {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    };
    let joined = format!("{reference}{wildcard}");
    utf7::decode(&joined).unwrap_or(joined)
}

/// Whether `name` matches a LIST `pattern` (RFC 3501 §6.3.8).
pub fn matches(pattern: &str, name: &str, delimiter: Option<char>) -> bool {
    fn go(p: &[char], n: &[char], delim: Option<char>) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..], delim)),
            Some(('%', rest)) => (0..=n.len())
                .take_while(|i| *i == 0 || Some(n[i - 1]) != delim)
                .any(|i| go(rest, &n[i..], delim)),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..], delim),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // INBOX is case-insensitive, in the pattern too.
    if name.eq_ignore_ascii_case("INBOX") {
        let upper: Vec<char> = pattern.to_ascii_uppercase().chars().collect();
        return go(&upper, &['I', 'N', 'B', 'O', 'X'], delimiter);
    }
    go(&p, &n, delimiter)
}

/// `mailboxes` and the levels of their hierarchy that are no mailbox themselves, as
/// \Noselect rows, by name.
pub fn with_parents(mailboxes: &[MailboxRow]) -> Vec<MailboxRow> {
    let mut out: Vec<MailboxRow> = mailboxes.to_vec();
    for m in mailboxes {
        let Some(d) = m.delimiter else { continue };
        let mut at = 0;
        while let Some(i) = m.name[at..].find(d).map(|i| at + i) {
            let parent = &m.name[..i];
            if !parent.is_empty() && !out.iter().any(|o| o.name == parent) {
                out.push(MailboxRow {
                    id: uuid::Uuid::nil(),
                    name: parent.to_string(),
                    delimiter: Some(d),
                    role: None,
                    noselect: true,
                    uidvalidity: 0,
                    next_uid: 0,
                    head: 0,
                });
            }
            at = i + d.len_utf8();
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The attributes LIST shows for a mailbox: its SPECIAL-USE role, \Noselect, and
/// whether it has children.
pub fn attributes(mailbox: &MailboxRow, all: &[MailboxRow]) -> Vec<FlagNameAttribute<'static>> {
    let mut out = Vec::new();
    if mailbox.noselect {
        out.push(FlagNameAttribute::Noselect);
    }
    let children = mailbox.delimiter.is_some_and(|d| {
        let prefix = format!("{}{d}", mailbox.name);
        all.iter().any(|m| m.name.starts_with(&prefix))
    });
    let attribute = |name: &'static str| {
        FlagNameAttribute::from(Atom::try_from(name).expect("a valid attribute"))
    };
    out.push(attribute(if children {
        "HasChildren"
    } else {
        "HasNoChildren"
    }));
    if let Some(role) = mailbox.role.as_deref().and_then(special_use) {
        out.push(attribute(role));
    }
    out
}

/// The SPECIAL-USE attribute (RFC 6154) of a role, without its backslash.
fn special_use(role: &str) -> Option<&'static str> {
    Some(match role {
        "sent" => "Sent",
        "drafts" => "Drafts",
        "trash" => "Trash",
        "junk" => "Junk",
        "archive" => "Archive",
        "all" => "All",
        "flagged" => "Flagged",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_the_hierarchy() {
        let d = Some('/');
        assert!(matches("*", "Projects/2026", d));
        assert!(matches("%", "Projects", d));
        assert!(!matches("%", "Projects/2026", d));
        assert!(matches("Projects/%", "Projects/2026", d));
        assert!(!matches("Projects/%", "Projects/2026/Q1", d));
        assert!(matches("Projects/*", "Projects/2026/Q1", d));
        assert!(matches("inbox", "INBOX", d));
        assert!(matches("In%", "INBOX", d));
        assert!(!matches("Sent", "Sent Items", d));
        assert!(matches("Sent*", "Sent Items", d));
        assert!(matches("Entwürfe", "Entwürfe", d));
    }
}
