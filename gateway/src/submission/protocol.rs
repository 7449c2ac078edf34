//! SMTP commands as a submission server reads them (RFC 5321 §4.1, RFC 6409),
//! parsed without I/O so that every rule is tested in process.

/// One command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// AUTH with its mechanism (upper case) and initial response.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// MAIL FROM, with the SIZE the client declared and whether it asked for
    /// SMTPUTF8.
    Mail {
        from: String,
        size: Option<u64>,
        smtputf8: bool,
    },
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    StartTls,
    /// A command this server does not know.
    Unknown(String),
    /// A known command written wrongly, and why.
    Malformed(&'static str),
}

/// The address inside `<...>` after `FROM:` or `TO:`, and the parameters after it.
fn path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), &'static str> {
    let rest = rest.trim_start();
    let Some(after) = rest
        .get(..keyword.len())
        .filter(|k| k.eq_ignore_ascii_case(keyword))
        .map(|_| rest[keyword.len()..].trim_start())
    else {
        return Err("expected FROM:<address> or TO:<address>");
    };
    let Some(after) = after.strip_prefix('<') else {
        return Err("the address must be in angle brackets");
    };
    let Some(end) = after.find('>') else {
        return Err("the address must be in angle brackets");
    };
    Ok((after[..end].trim(), after[end + 1..].trim()))
}

/// Parses one command line (without its line end).
pub fn parse(line: &str) -> Command {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Command::Ehlo(rest.trim().to_string()),
        "HELO" => Command::Helo(rest.trim().to_string()),
        "AUTH" => {
            let mut words = rest.split_whitespace();
            match words.next() {
                Some(m) => Command::Auth {
                    mechanism: m.to_ascii_uppercase(),
                    initial: words.next().map(str::to_string),
                },
                None => Command::Malformed("AUTH needs a mechanism"),
            }
        }
        "MAIL" => match path(rest, "FROM:") {
            Ok((from, params)) => {
                let mut size = None;
                let mut smtputf8 = false;
                for p in params.split_whitespace() {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    match k.to_ascii_uppercase().as_str() {
                        "SIZE" => match v.parse() {
                            Ok(n) => size = Some(n),
                            Err(_) => return Command::Malformed("SIZE must be a number"),
                        },
                        "SMTPUTF8" => smtputf8 = true,
                        "BODY"
                            if v.eq_ignore_ascii_case("8BITMIME")
                                || v.eq_ignore_ascii_case("7BIT") => {}
                        _ => return Command::Malformed("unknown MAIL parameter"),
                    }
                }
                Command::Mail {
                    from: from.to_string(),
                    size,
                    smtputf8,
                }
            }
            Err(why) => Command::Malformed(why),
        },
        "RCPT" => match path(rest, "TO:") {
            Ok((to, _)) if !to.is_empty() => Command::Rcpt(to.to_string()),
            Ok(_) => Command::Malformed("a recipient needs an address"),
            Err(why) => Command::Malformed(why),
        },
        "DATA" => Command::Data,
        "RSET" => Command::Rset,
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "VRFY" => Command::Vrfy,
        "STARTTLS" => Command::StartTls,
        _ => Command::Unknown(verb.to_string()),
    }
}

/// The end of a DATA section: a line with a single dot.
pub fn is_end_of_data(line: &[u8]) -> bool {
    line == b".\r\n" || line == b".\n"
}

/// One DATA line as the message holds it: a leading dot the client doubled is
/// undone (RFC 5321 §4.5.2).
pub fn unstuff(line: &[u8]) -> &[u8] {
    line.strip_prefix(b".").unwrap_or(line)
}

/// The addresses (lower case) of a header's mailboxes: what is in angle brackets,
/// else the bare address.
pub fn header_addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        out.push(rest[start + 1..start + end].trim().to_lowercase());
        rest = &rest[start + end + 1..];
    }
    if out.is_empty() {
        out.extend(
            value
                .split(',')
                .map(|a| a.split('(').next().unwrap_or("").trim().to_lowercase())
                .filter(|a| a.contains('@')),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_parameters() {
        assert_eq!(
            parse("EHLO client.example"),
            Command::Ehlo("client.example".into())
        );
        assert_eq!(
            parse("mail from:<Alice@Corp.Example> SIZE=1200 BODY=8BITMIME SMTPUTF8"),
            Command::Mail {
                from: "Alice@Corp.Example".into(),
                size: Some(1200),
                smtputf8: true
            }
        );
        assert_eq!(
            parse("MAIL FROM:<>"),
            Command::Mail {
                from: String::new(),
                size: None,
                smtputf8: false
            }
        );
        assert_eq!(
            parse("RCPT TO:<bob@example.org>"),
            Command::Rcpt("bob@example.org".into())
        );
        assert!(matches!(
            parse("RCPT TO:bob@example.org"),
            Command::Malformed(_)
        ));
        assert!(matches!(
            parse("MAIL FROM:<a@b> FOO=1"),
            Command::Malformed(_)
        ));
        assert_eq!(
            parse("AUTH PLAIN AGFsaWNlAHB3"),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGFsaWNlAHB3".into())
            }
        );
        assert_eq!(parse("XYZZY"), Command::Unknown("XYZZY".into()));
    }

    #[test]
    fn data_lines_are_unstuffed_and_end_at_a_lone_dot() {
        assert!(is_end_of_data(b".\r\n"));
        assert!(!is_end_of_data(b"..\r\n"));
        assert_eq!(unstuff(b"..hidden\r\n"), b".hidden\r\n");
        assert_eq!(unstuff(b"plain\r\n"), b"plain\r\n");
    }

    #[test]
    fn header_addresses_are_found_with_or_without_names() {
        assert_eq!(
            header_addresses("\"Alice, A.\" <Alice@Corp.Example>, Bob <bob@corp.example>"),
            vec!["alice@corp.example", "bob@corp.example"]
        );
        assert_eq!(
            header_addresses("alice@corp.example (Alice)"),
            vec!["alice@corp.example"]
        );
    }
}
