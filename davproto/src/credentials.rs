//! HTTP Basic credentials and logins. A login is `user@tenant` (`alice@acme`); in
//! URLs the `@` may arrive escaped as `%40`.

use base64::Engine;

/// Longest login looked up; a longer one names nobody.
pub const MAX_LOGIN: usize = 320;

/// Splits `Basic base64(user:password)` into login and password.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, b64) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Splits `alice@acme` (or `alice%40acme`) into user and tenant. A login with
/// control characters, or longer than a mail address can be, names nobody.
pub fn split_login(login: &str) -> Option<(String, String)> {
    if login.len() > MAX_LOGIN || login.chars().any(char::is_control) {
        return None;
    }
    let login = login.replace("%40", "@");
    let (user, tenant) = login.rsplit_once('@')?;
    (!user.is_empty() && !tenant.is_empty()).then(|| (user.to_string(), tenant.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_and_logins() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice@acme:p:w")
        );
        assert_eq!(parse_basic(&h), Some(("alice@acme".into(), "p:w".into())));
        assert_eq!(
            parse_basic(&h.replace("Basic", "basic")),
            Some(("alice@acme".into(), "p:w".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(
            split_login("alice@acme"),
            Some(("alice".into(), "acme".into()))
        );
        assert_eq!(
            split_login("alice%40acme"),
            Some(("alice".into(), "acme".into()))
        );
        assert_eq!(split_login("alice"), None);
        assert_eq!(split_login("@acme"), None);
    }

    #[test]
    fn logins_with_control_characters_or_too_long_name_nobody() {
        assert_eq!(split_login("ali\0ce@acme"), None);
        assert_eq!(split_login(&format!("{}@acme", "a".repeat(400))), None);
    }
}
