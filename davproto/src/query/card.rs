//! A vCard against an `addressbook-query` filter (RFC 6352 §10.5): `anyof` or `allof`
//! over the property filters, and within each over its text matches and parameter
//! filters.

use super::{CardFilter, PropFilter, text_and_params};
use crate::lines::{structure, unfold};

/// Whether a vCard matches. An unreadable one matches only an empty filter.
pub fn matches(content: &[u8], filter: &CardFilter) -> bool {
    if filter.props.is_empty() {
        return true;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return false;
    };
    let lines = unfold(text);
    let Ok(comps) = structure(&lines, "VCARD") else {
        return false;
    };
    let Some(card) = comps.first() else {
        return false;
    };
    let test = |f: &PropFilter| {
        let props: Vec<_> = card.props(&f.name).collect();
        if f.not_defined {
            return props.is_empty();
        }
        !props.is_empty() && props.iter().any(|p| text_and_params(f, p.value, &p.params))
    };
    if filter.all {
        filter.props.iter().all(test)
    } else {
        filter.props.iter().any(test)
    }
}
