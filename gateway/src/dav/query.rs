//! The filters of `calendar-query` (RFC 4791 §9.7) and `addressbook-query` (RFC 6352
//! §10.5), as pure functions over an item's bytes.
//!
//! - calendar: the component asked for (`VEVENT`, `VTODO`...) and an optional
//!   `time-range`, matched against every occurrence: recurrences are expanded with
//!   calcard, moved instances (RECURRENCE-ID) and EXDATEs included.
//! - address book: `prop-filter`s with `text-match` (contains, equals, starts-with,
//!   ends-with; case-insensitive), combined with `anyof` (default) or `allof`.

use postern_core::content::{parse_utc_timestamp, unfolded_lines};
use postern_davxml::{CALDAV, CARDDAV, Element};

/// A calendar-query filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarFilter {
    /// Component wanted inside VCALENDAR, upper case; `None` for any.
    pub component: Option<String>,
    /// `[start, end)` in Unix milliseconds, either bound open.
    pub range: Option<(Option<i64>, Option<i64>)>,
}

impl CalendarFilter {
    /// Reads `<c:filter>` from a calendar-query body.
    pub fn from_query(root: &Element) -> Self {
        let Some(outer) = root
            .child(CALDAV, "filter")
            .and_then(|f| f.child(CALDAV, "comp-filter"))
        else {
            return CalendarFilter::default();
        };
        let Some(inner) = outer.children_named(CALDAV, "comp-filter").next() else {
            return CalendarFilter::default();
        };
        let range = inner.child(CALDAV, "time-range").map(|t| {
            (
                t.attr("start").and_then(parse_utc_timestamp),
                t.attr("end").and_then(parse_utc_timestamp),
            )
        });
        CalendarFilter {
            component: inner.attr("name").map(str::to_ascii_uppercase),
            range,
        }
    }

    /// True when the calendar object matches.
    pub fn matches(&self, content: &[u8]) -> bool {
        if let Some(comp) = &self.component {
            let begin = format!("BEGIN:{comp}");
            if !unfolded_lines(content)
                .iter()
                .any(|l| l.trim().eq_ignore_ascii_case(&begin))
            {
                return false;
            }
        }
        match self.range {
            None => true,
            Some((start, end)) => {
                overlaps(content, start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX))
            }
        }
    }
}

/// Most occurrences looked at per object (an endless daily rule covers 27 years).
const MAX_OCCURRENCES: usize = 10_000;

/// True when some occurrence of the object overlaps `[start, end)`. Objects whose
/// dates cannot be read (no DTSTART, a task without dates) match every range, as the
/// RFC says for undated tasks: a client then sees them rather than losing them.
fn overlaps(content: &[u8], start: i64, end: i64) -> bool {
    let Ok(text) = std::str::from_utf8(content) else {
        return true;
    };
    let Ok(cal) = calcard::icalendar::ICalendar::parse(text) else {
        return true;
    };
    let expanded = cal.expand_dates(calcard::common::timezone::Tz::UTC, MAX_OCCURRENCES);
    if expanded.events.is_empty() {
        return true;
    }
    expanded.events.iter().any(|e| {
        let s = e.start.timestamp_millis();
        let f = match &e.end {
            calcard::icalendar::dates::TimeOrDelta::Time(t) => t.timestamp_millis(),
            calcard::icalendar::dates::TimeOrDelta::Delta(d) => s + d.num_milliseconds(),
        };
        // RFC 4791 §9.9: a zero-length instance matches when it starts in the range.
        if f <= s {
            s >= start && s < end
        } else {
            s < end && f > start
        }
    })
}

/// An addressbook-query filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFilter {
    /// `allof` instead of the default `anyof`.
    pub all: bool,
    /// The property filters.
    pub props: Vec<PropFilter>,
}

/// One `prop-filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropFilter {
    /// Property name, upper case (`FN`, `EMAIL`).
    pub name: String,
    /// Text matches on its values; none means "the property exists".
    pub matches: Vec<TextMatch>,
    /// `is-not-defined`.
    pub not_defined: bool,
}

/// One `text-match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    /// Lower-cased needle.
    pub text: String,
    /// contains | equals | starts-with | ends-with.
    pub kind: String,
    /// `negate-condition="yes"`.
    pub negate: bool,
}

impl CardFilter {
    /// Reads `<cr:filter>` from an addressbook-query body.
    pub fn from_query(root: &Element) -> Self {
        let Some(f) = root.child(CARDDAV, "filter") else {
            return CardFilter::default();
        };
        CardFilter {
            all: f.attr("test") == Some("allof"),
            props: f
                .children_named(CARDDAV, "prop-filter")
                .map(|p| PropFilter {
                    name: p.attr("name").unwrap_or("").to_ascii_uppercase(),
                    not_defined: p.child(CARDDAV, "is-not-defined").is_some(),
                    matches: p
                        .children_named(CARDDAV, "text-match")
                        .map(|t| TextMatch {
                            text: t.trimmed().to_lowercase(),
                            kind: t.attr("match-type").unwrap_or("contains").to_string(),
                            negate: t.attr("negate-condition") == Some("yes"),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// True when the vCard matches.
    pub fn matches(&self, content: &[u8]) -> bool {
        if self.props.is_empty() {
            return true;
        }
        let lines = unfolded_lines(content);
        let test = |p: &PropFilter| {
            let values: Vec<String> = lines
                .iter()
                .filter_map(|l| {
                    let (head, value) = l.split_once(':')?;
                    let name = head.split(';').next()?.rsplit('.').next()?;
                    name.eq_ignore_ascii_case(&p.name)
                        .then(|| value.to_lowercase())
                })
                .collect();
            if p.not_defined {
                return values.is_empty();
            }
            if p.matches.is_empty() {
                return !values.is_empty();
            }
            p.matches.iter().all(|m| {
                let hit = values.iter().any(|v| match m.kind.as_str() {
                    "equals" => *v == m.text,
                    "starts-with" => v.starts_with(&m.text),
                    "ends-with" => v.ends_with(&m.text),
                    _ => v.contains(&m.text),
                });
                hit != m.negate
            })
        };
        if self.all {
            self.props.iter().all(test)
        } else {
            self.props.iter().any(test)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: &str, b: &str) -> CalendarFilter {
        CalendarFilter {
            component: Some("VEVENT".into()),
            range: Some((parse_utc_timestamp(a), parse_utc_timestamp(b))),
        }
    }

    const WEEKLY: &[u8] =
        include_bytes!("../../../tests/fixtures/calendar/recurring-with-exceptions.ics");
    const ALL_DAY: &[u8] = include_bytes!("../../../tests/fixtures/calendar/all-day.ics");
    const TASK: &[u8] = include_bytes!("../../../tests/fixtures/calendar/task.ics");

    #[test]
    fn recurrences_are_expanded_with_their_exceptions() {
        // 2025-01-06 is the first Monday; the series runs 20 weeks.
        assert!(
            range("20250303T000000Z", "20250304T000000Z").matches(WEEKLY),
            "an ordinary occurrence"
        );
        assert!(
            !range("20250120T000000Z", "20250121T000000Z").matches(WEEKLY),
            "the EXDATE leaves no occurrence"
        );
        assert!(
            range("20250113T095000Z", "20250113T101500Z").matches(WEEKLY),
            "the moved instance (11:00 Berlin = 10:00Z)"
        );
        assert!(
            !range("20250113T080000Z", "20250113T085000Z").matches(WEEKLY),
            "not where it used to be (08:30Z)"
        );
        assert!(
            !range("20260101T000000Z", "20260201T000000Z").matches(WEEKLY),
            "after COUNT ends"
        );
    }

    #[test]
    fn all_day_events_and_components() {
        assert!(range("20251226T000000Z", "20251226T120000Z").matches(ALL_DAY));
        assert!(
            !range("20251227T000000Z", "20251228T000000Z").matches(ALL_DAY),
            "DTEND is exclusive"
        );
        assert!(
            !range("20250101T000000Z", "20260101T000000Z").matches(TASK),
            "a VTODO is not a VEVENT"
        );
        let todos = CalendarFilter {
            component: Some("VTODO".into()),
            range: None,
        };
        assert!(todos.matches(TASK));
        assert!(!todos.matches(ALL_DAY));
    }

    #[test]
    fn reads_filters_from_queries() {
        let q = br#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop>
<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20250101T000000Z" end="20250201T000000Z"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
        let f = CalendarFilter::from_query(&postern_davxml::parse(q).unwrap());
        assert_eq!(f.component.as_deref(), Some("VEVENT"));
        assert_eq!(
            f.range,
            Some((
                parse_utc_timestamp("20250101T000000Z"),
                parse_utc_timestamp("20250201T000000Z")
            ))
        );
    }

    #[test]
    fn text_match_on_cards() {
        let q = r#"<cr:addressbook-query xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><cr:filter test="anyof">
<cr:prop-filter name="FN"><cr:text-match collation="i;unicode-casemap" match-type="contains">MÜLLER</cr:text-match></cr:prop-filter>
</cr:filter></cr:addressbook-query>"#;
        let f = CardFilter::from_query(&postern_davxml::parse(q.as_bytes()).unwrap());
        let card = include_bytes!("../../../tests/fixtures/contacts/vcard3.vcf");
        let other = include_bytes!("../../../tests/fixtures/contacts/vcard4-unicode.vcf");
        assert!(f.matches(card));
        assert!(!f.matches(other));
        let mut negated = f.clone();
        negated.props[0].matches[0].negate = true;
        assert!(!negated.matches(card) && negated.matches(other));
    }
}
