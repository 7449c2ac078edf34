//! What an uploaded calendar object or vCard must be before the gateway accepts it.
//!
//! An item the gateway accepts must also be accepted by the back end: one that a
//! client was told `201 Created` for and the back end then refuses is a promise the
//! gateway cannot keep. So PUT checks at least what strict servers check (Radicale
//! with vobject, SabreDAV), and refuses with the precondition RFC 4791 / RFC 6352
//! name:
//!
//! - the structure: one top-level object, `BEGIN`/`END` balanced and matching,
//!   nothing after the end, every line a content line (`NAME;PARAM=V:value`);
//! - calendar objects (`CALDAV:valid-calendar-data`): `VERSION:2.0`; dates and
//!   date-times, durations and recurrence rules that parse; base64 that decodes;
//!   and as a calendar object *resource* (`CALDAV:valid-calendar-object-resource`):
//!   no `METHOD`, at least one event, to-do, journal or free-busy, all of one type,
//!   each with the one same `UID`, events with a `DTSTART` and not both `DTEND` and
//!   `DURATION`;
//! - vCards (`CARDDAV:valid-address-data`): `VERSION` 3.0 or 4.0 (what the address
//!   books advertise), `FN` and `UID`, base64 (`ENCODING=b` or a `data:` URI) that
//!   decodes;
//! - and, last, calcard must parse it.
//!
//! The bytes are never changed: the checks only read.

use base64::Engine;
use postern_davxml::{CALDAV, CARDDAV, Name};

use crate::lines::{Component, Prop, clip, structure, unfold};
use crate::path::Kind;

/// What is wrong with a body, as the DAV precondition a client understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Wrong media type (415).
    MediaType(Name),
    /// Not a valid object (400), naming the precondition and why.
    Data(Name, String),
}

/// Checks a body for a collection of `kind`; returns its UID.
pub fn validate(kind: Kind, content_type: Option<&str>, body: &[u8]) -> Result<String, Invalid> {
    let (data, media, wanted) = match kind {
        Kind::Calendars => (
            Name::new(CALDAV, "valid-calendar-data"),
            Name::new(CALDAV, "supported-calendar-data"),
            "text/calendar",
        ),
        Kind::AddressBooks => (
            Name::new(CARDDAV, "valid-address-data"),
            Name::new(CARDDAV, "supported-address-data"),
            "text/vcard",
        ),
    };
    if let Some(ct) = content_type {
        let base = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let ok = base == wanted
            || (kind == Kind::AddressBooks && base == "text/x-vcard")
            || base.is_empty();
        if !ok {
            return Err(Invalid::MediaType(media));
        }
    }
    let bad = |why: String| Invalid::Data(data.clone(), why);
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8".into()))?;
    let lines = unfold(text);
    let top = match kind {
        Kind::Calendars => "VCALENDAR",
        Kind::AddressBooks => "VCARD",
    };
    let components = structure(&lines, top).map_err(bad)?;
    for c in &components {
        for p in &c.props {
            check_value(p).map_err(|e| bad(format!("{}: {e}", p.name)))?;
        }
    }
    let uid = match kind {
        Kind::Calendars => calendar(&components, &data)?,
        Kind::AddressBooks => vcard(&components).map_err(bad)?,
    };
    match kind {
        Kind::Calendars => {
            calcard::icalendar::ICalendar::parse(text)
                .map_err(|_| bad("not an iCalendar object".into()))?;
        }
        Kind::AddressBooks => {
            calcard::vcard::VCard::parse(text).map_err(|_| bad("not a vCard".into()))?;
        }
    }
    Ok(uid)
}

/// The value checks that apply wherever a property appears.
fn check_value(p: &Prop<'_>) -> Result<(), String> {
    let value_type = p.param("VALUE").map(str::to_ascii_uppercase);
    if let Some(enc) = p.param("ENCODING")
        && (enc.eq_ignore_ascii_case("b") || enc.eq_ignore_ascii_case("base64"))
    {
        return base64_ok(p.value)
            .then_some(())
            .ok_or("base64 that does not decode".into());
    }
    if let Some(rest) = p.value.get(..5).filter(|s| s.eq_ignore_ascii_case("data:"))
        && !rest.is_empty()
        && let Some((meta, data)) = p.value[5..].split_once(',')
        && meta.to_ascii_lowercase().ends_with(";base64")
        && !base64_ok(data)
    {
        return Err("a data: URI whose base64 does not decode".into());
    }
    match p.name.as_str() {
        "DTSTART" | "DTEND" | "DUE" | "RECURRENCE-ID" | "DTSTAMP" | "CREATED" | "LAST-MODIFIED"
        | "COMPLETED" => date_or_time(p.value.trim())
            .then_some(())
            .ok_or("not a date or date-time".into()),
        "EXDATE" => p
            .value
            .split(',')
            .all(|v| date_or_time(v.trim()))
            .then_some(())
            .ok_or("not a list of dates or date-times".into()),
        "RDATE" => p
            .value
            .split(',')
            .all(|v| {
                let v = v.trim();
                match v.split_once('/') {
                    Some((a, b)) => date_or_time(a) && (date_or_time(b) || duration(b)),
                    None => date_or_time(v),
                }
            })
            .then_some(())
            .ok_or("not a list of dates, date-times or periods".into()),
        "DURATION" => duration(p.value.trim())
            .then_some(())
            .ok_or("not a duration".into()),
        "TRIGGER" if value_type.as_deref() == Some("DATE-TIME") => date_or_time(p.value.trim())
            .then_some(())
            .ok_or("not a date-time".into()),
        "TRIGGER" => duration(p.value.trim())
            .then_some(())
            .ok_or("not a duration".into()),
        "RRULE" | "EXRULE" => recurrence_rule(p.value.trim()),
        _ => Ok(()),
    }
}

fn base64_ok(value: &str) -> bool {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(compact.as_bytes()).is_ok()
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYYMMDD`, or `YYYYMMDDTHHMMSS` with an optional `Z`.
fn date_or_time(v: &str) -> bool {
    let (date, time) = match v.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    if date.len() != 8 {
        return false;
    }
    let (Some(_), Some(m), Some(d)) = (
        date.get(..4).and_then(digits),
        date.get(4..6).and_then(digits),
        date.get(6..8).and_then(digits),
    ) else {
        return false;
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return false;
    }
    match time {
        None => true,
        Some(t) => {
            let t = t.strip_suffix(['Z', 'z']).unwrap_or(t);
            t.len() == 6
                && matches!(
                    (t.get(..2).and_then(digits), t.get(2..4).and_then(digits), t.get(4..).and_then(digits)),
                    (Some(h), Some(mi), Some(s)) if h <= 23 && mi <= 59 && s <= 60
                )
        }
    }
}

/// An RFC 5545 duration: `[+-]P` then weeks, or days and/or a time part.
fn duration(v: &str) -> bool {
    let v = v.strip_prefix(['+', '-']).unwrap_or(v);
    let Some(v) = v.strip_prefix(['P', 'p']) else {
        return false;
    };
    let (date, time) = match v.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let units = |s: &str, allowed: &[char]| -> Option<usize> {
        // Digits then a unit, repeated, units in the given order.
        let mut n = 0;
        let mut rest = s;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            if end == 0 {
                return None;
            }
            let unit = rest[end..].chars().next()?.to_ascii_uppercase();
            let at = allowed[next_unit..].iter().position(|u| *u == unit)?;
            next_unit += at + 1;
            rest = &rest[end + unit.len_utf8()..];
            n += 1;
        }
        Some(n)
    };
    let Some(d) = units(date, &['W', 'D']) else {
        return false;
    };
    match time {
        None => d > 0,
        Some(t) => matches!(units(t, &['H', 'M', 'S']), Some(n) if n > 0),
    }
}

const WEEKDAYS: &[&str] = &["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

/// An RFC 5545 RRULE value.
fn recurrence_rule(v: &str) -> Result<(), String> {
    let mut freq = false;
    for part in v.split(';') {
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| format!("{:?} is not KEY=VALUE", clip(part)))?;
        let key = key.to_ascii_uppercase();
        let ints = |lo: i64, hi: i64, signed: bool| {
            val.split(',').all(|x| {
                let (neg, n) = match x.strip_prefix(['-', '+']) {
                    Some(n) if signed => (true, n),
                    _ => (false, x),
                };
                let _ = neg;
                digits(n).is_some_and(|n| (lo..=hi).contains(&i64::from(n)))
            })
        };
        let ok = match key.as_str() {
            "FREQ" => {
                freq = true;
                matches!(
                    val.to_ascii_uppercase().as_str(),
                    "SECONDLY" | "MINUTELY" | "HOURLY" | "DAILY" | "WEEKLY" | "MONTHLY" | "YEARLY"
                )
            }
            "UNTIL" => date_or_time(val),
            "COUNT" => digits(val).is_some(),
            "INTERVAL" => digits(val).is_some_and(|n| n > 0),
            "BYSECOND" => ints(0, 60, false),
            "BYMINUTE" => ints(0, 59, false),
            "BYHOUR" => ints(0, 23, false),
            "BYMONTHDAY" => ints(1, 31, true),
            "BYYEARDAY" | "BYSETPOS" => ints(1, 366, true),
            "BYWEEKNO" => ints(1, 53, true),
            "BYMONTH" => val.split(',').all(|m| {
                // RFC 7529 leap months: `5L`.
                let m = m.strip_suffix(['L', 'l']).unwrap_or(m);
                digits(m).is_some_and(|n| (1..=13).contains(&n))
            }),
            "BYDAY" => val.split(',').all(|d| {
                let d = d.trim_start_matches(['+', '-']);
                let day = d.trim_start_matches(|c: char| c.is_ascii_digit());
                let ordinal = &d[..d.len() - day.len()];
                (ordinal.is_empty() || digits(ordinal).is_some_and(|n| (1..=53).contains(&n)))
                    && WEEKDAYS.contains(&day.to_ascii_uppercase().as_str())
            }),
            "WKST" => WEEKDAYS.contains(&val.to_ascii_uppercase().as_str()),
            "RSCALE" | "SKIP" => true,
            k if k.starts_with("X-") => true,
            _ => false,
        };
        if !ok {
            return Err(format!("{key}={} is not valid", clip(val)));
        }
    }
    freq.then_some(()).ok_or_else(|| "no FREQ".into())
}

/// The checks of a calendar object resource; returns its UID.
fn calendar(components: &[Component<'_>], data: &Name) -> Result<String, Invalid> {
    let object = Name::new(CALDAV, "valid-calendar-object-resource");
    let top = &components[0];
    match top.props("VERSION").next().map(|p| p.value.trim()) {
        Some("2.0") => {}
        _ => {
            return Err(Invalid::Data(
                data.clone(),
                "VCALENDAR needs VERSION:2.0".into(),
            ));
        }
    }
    if top.has("METHOD") {
        return Err(Invalid::Data(
            object,
            "METHOD is not allowed in a stored calendar object".into(),
        ));
    }
    let main: Vec<&Component<'_>> = components
        .iter()
        .filter(|c| c.depth == 2 && c.name != "VTIMEZONE")
        .collect();
    let Some(first) = main.first() else {
        return Err(Invalid::Data(
            object,
            "no event, to-do, journal or free-busy in the object".into(),
        ));
    };
    if !matches!(
        first.name.as_str(),
        "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY"
    ) {
        return Err(Invalid::Data(
            object,
            format!(
                "{} is not a calendar component a collection holds",
                first.name
            ),
        ));
    }
    if let Some(other) = main.iter().find(|c| c.name != first.name) {
        return Err(Invalid::Data(
            object,
            format!("{} and {} in one object", first.name, other.name),
        ));
    }
    let mut uid: Option<&str> = None;
    for c in &main {
        let mut uids = c.props("UID").map(|p| p.value.trim());
        let (Some(this), None) = (uids.next(), uids.next()) else {
            return Err(Invalid::Data(
                object,
                format!("every {} needs exactly one UID", c.name),
            ));
        };
        if this.is_empty() || uid.is_some_and(|u| u != this) {
            return Err(Invalid::Data(
                object,
                "more than one UID in one object".into(),
            ));
        }
        uid = Some(this);
        if c.name == "VEVENT" {
            if !c.has("DTSTART") {
                return Err(Invalid::Data(object, "an event needs DTSTART".into()));
            }
            if c.has("DTEND") && c.has("DURATION") {
                return Err(Invalid::Data(
                    object,
                    "an event has DTEND or DURATION, not both".into(),
                ));
            }
        }
        if c.name == "VTODO" && c.has("DUE") && c.has("DURATION") {
            return Err(Invalid::Data(
                object,
                "a to-do has DUE or DURATION, not both".into(),
            ));
        }
    }
    Ok(uid.unwrap_or_default().to_string())
}

/// The checks of a vCard; returns its UID.
fn vcard(components: &[Component<'_>]) -> Result<String, String> {
    let card = &components[0];
    match card.props("VERSION").next().map(|p| p.value.trim()) {
        Some("3.0") | Some("4.0") => {}
        Some(v) => {
            return Err(format!(
                "vCard version {} is not supported (3.0 and 4.0 are)",
                clip(v)
            ));
        }
        None => return Err("a vCard needs VERSION".into()),
    }
    if !card.has("FN") {
        return Err("a vCard needs FN".into());
    }
    let uid = card
        .props("UID")
        .next()
        .map(|p| p.value.trim())
        .filter(|u| !u.is_empty())
        .ok_or("a vCard needs a UID")?;
    Ok(uid.to_string())
}

/// The kind of a calendar object's component (`VEVENT`, `VTODO`...), the first one
/// that is not a time zone.
pub fn main_component(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    unfold(text).iter().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let value = value.trim().to_ascii_uppercase();
        (name.eq_ignore_ascii_case("BEGIN") && value != "VCALENDAR" && value != "VTIMEZONE")
            .then_some(value)
    })
}

#[cfg(test)]
mod tests;
