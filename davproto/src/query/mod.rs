//! The filters of `calendar-query` (RFC 4791 §9.7) and `addressbook-query` (RFC 6352
//! §10.5): read from the request's XML into plain values, then matched against an
//! item's bytes with no I/O.
//!
//! - [`CompFilter`], [`PropFilter`], [`ParamFilter`], [`TextMatch`], [`TimeRange`]:
//!   the grammar, nested as the RFCs nest it (`is-not-defined`, `negate-condition`,
//!   collations `i;ascii-casemap`, `i;octet`, `i;unicode-casemap`).
//! - [`calendar`]: a calendar object against a `comp-filter` tree, with time ranges
//!   resolved on every occurrence of events, to-dos, journals and alarms.
//! - [`card`]: a vCard against an `addressbook-query` filter (`anyof`/`allof` at both
//!   levels, match types, parameters).
//!
//! Work is bounded: expanding a recurrence stops at a number of occurrences per
//! object, and a query that needs more (an endless rule asked about the far future)
//! is told so ([`QueryError::TooManyOccurrences`]) instead of being answered
//! incompletely.

pub mod calendar;
pub mod card;

use postern_core::content::parse_utc_timestamp;
use postern_davxml::{CALDAV, CARDDAV, Element};

/// Why a query cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A filter that does not follow the grammar (`valid-filter`).
    #[error("invalid filter: {0}")]
    Invalid(String),
    /// A collation the server does not know (`supported-collation`).
    #[error("unsupported collation {0:?}")]
    Collation(String),
    /// Answering needs more occurrences of one object than the bound.
    #[error(
        "an object recurs more than {0} times before the end of the time range; ask for a shorter range"
    )]
    TooManyOccurrences(usize),
}

/// A `time-range`: `[start, end)` in Unix milliseconds, either bound open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Start (inclusive).
    pub start: Option<i64>,
    /// End (exclusive).
    pub end: Option<i64>,
}

impl TimeRange {
    /// Reads `<time-range start=".." end=".."/>` (UTC date-times, RFC 4791 §9.9).
    pub fn from_xml(e: &Element) -> Result<Self, QueryError> {
        let read = |name: &str| match e.attr(name) {
            None => Ok(None),
            Some(v) => parse_utc_timestamp(v)
                .map(Some)
                .ok_or_else(|| QueryError::Invalid(format!("time-range {name}={v:?}"))),
        };
        let r = TimeRange {
            start: read("start")?,
            end: read("end")?,
        };
        if r.start.is_none() && r.end.is_none() {
            return Err(QueryError::Invalid(
                "time-range without start or end".into(),
            ));
        }
        if let (Some(s), Some(f)) = (r.start, r.end)
            && f <= s
        {
            return Err(QueryError::Invalid(
                "time-range ends before it starts".into(),
            ));
        }
        Ok(r)
    }

    /// The start, or the beginning of time.
    pub fn lo(&self) -> i64 {
        self.start.unwrap_or(i64::MIN)
    }

    /// The end, or the end of time.
    pub fn hi(&self) -> i64 {
        self.end.unwrap_or(i64::MAX)
    }

    /// RFC 4791 §9.9 for an instance `[s, f)`: overlap, or for a zero-length instance,
    /// a start inside the range.
    pub fn overlaps(&self, s: i64, f: i64) -> bool {
        if f <= s {
            s >= self.lo() && s < self.hi()
        } else {
            s < self.hi() && f > self.lo()
        }
    }

    /// A single point in time inside the range.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.lo() && t < self.hi()
    }
}

/// How text is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    /// `i;ascii-casemap` (the default): ASCII letters without case.
    AsciiCasemap,
    /// `i;octet`: byte for byte.
    Octet,
    /// `i;unicode-casemap` (RFC 5051): letters without case, in any script.
    UnicodeCasemap,
}

/// Where the needle must be (CardDAV's `match-type`; CalDAV matches substrings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// Anywhere.
    Contains,
    /// The whole value.
    Equals,
    /// At the start.
    StartsWith,
    /// At the end.
    EndsWith,
}

/// A `text-match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    /// The needle.
    pub text: String,
    /// How to compare.
    pub collation: Collation,
    /// Where the needle must be.
    pub match_type: MatchType,
    /// `negate-condition="yes"`: true when the needle is *not* found.
    pub negate: bool,
}

impl TextMatch {
    /// Reads a `text-match` element.
    pub fn from_xml(e: &Element) -> Result<Self, QueryError> {
        let collation = match e.attr("collation").unwrap_or("i;ascii-casemap") {
            "i;ascii-casemap" => Collation::AsciiCasemap,
            "i;octet" => Collation::Octet,
            "i;unicode-casemap" => Collation::UnicodeCasemap,
            other => return Err(QueryError::Collation(other.to_string())),
        };
        let match_type = match e.attr("match-type").unwrap_or("contains") {
            "contains" => MatchType::Contains,
            "equals" => MatchType::Equals,
            "starts-with" => MatchType::StartsWith,
            "ends-with" => MatchType::EndsWith,
            other => return Err(QueryError::Invalid(format!("match-type {other:?}"))),
        };
        Ok(TextMatch {
            text: e.text.clone(),
            collation,
            match_type,
            negate: e.attr("negate-condition") == Some("yes"),
        })
    }

    /// True when `value` matches (negation applied).
    pub fn matches(&self, value: &str) -> bool {
        let fold = |s: &str| match self.collation {
            Collation::Octet => s.to_string(),
            Collation::AsciiCasemap => s.to_ascii_lowercase(),
            Collation::UnicodeCasemap => s.to_lowercase(),
        };
        let (hay, needle) = (fold(value), fold(&self.text));
        let hit = match self.match_type {
            MatchType::Contains => hay.contains(&needle),
            MatchType::Equals => hay == needle,
            MatchType::StartsWith => hay.starts_with(&needle),
            MatchType::EndsWith => hay.ends_with(&needle),
        };
        hit != self.negate
    }
}

/// A `param-filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamFilter {
    /// Parameter name, upper case.
    pub name: String,
    /// `is-not-defined`.
    pub not_defined: bool,
    /// Its text match, if any.
    pub text: Option<TextMatch>,
}

impl ParamFilter {
    fn from_xml(e: &Element, ns: &str) -> Result<Self, QueryError> {
        Ok(ParamFilter {
            name: name_attr(e)?,
            not_defined: e.child(ns, "is-not-defined").is_some(),
            text: e
                .child(ns, "text-match")
                .map(TextMatch::from_xml)
                .transpose()?,
        })
    }

    /// True when a property with these parameters matches.
    pub(crate) fn matches(&self, params: &[(String, &str)]) -> bool {
        let values: Vec<&str> = params
            .iter()
            .filter(|(k, _)| *k == self.name)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim_matches('"'))
            .collect();
        if self.not_defined {
            return values.is_empty();
        }
        match &self.text {
            None => !values.is_empty(),
            Some(t) => values.iter().any(|v| t.matches(v)),
        }
    }
}

/// A `prop-filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropFilter {
    /// Property name, upper case.
    pub name: String,
    /// `is-not-defined`.
    pub not_defined: bool,
    /// CalDAV: a time range its (date or date-time) value must fall in.
    pub time_range: Option<TimeRange>,
    /// Text matches (one in CalDAV, any number in CardDAV).
    pub texts: Vec<TextMatch>,
    /// Parameter filters.
    pub params: Vec<ParamFilter>,
    /// CardDAV's `test`: all of the text matches and parameter filters, or any.
    pub all: bool,
}

impl PropFilter {
    fn from_xml(e: &Element, ns: &str) -> Result<Self, QueryError> {
        Ok(PropFilter {
            name: name_attr(e)?,
            not_defined: e.child(ns, "is-not-defined").is_some(),
            time_range: e
                .child(ns, "time-range")
                .map(TimeRange::from_xml)
                .transpose()?,
            texts: e
                .children_named(ns, "text-match")
                .map(TextMatch::from_xml)
                .collect::<Result<_, _>>()?,
            params: e
                .children_named(ns, "param-filter")
                .map(|p| ParamFilter::from_xml(p, ns))
                .collect::<Result<_, _>>()?,
            // CalDAV has no `test`: everything given must hold.
            all: ns == CALDAV || e.attr("test") == Some("allof"),
        })
    }
}

/// A `comp-filter` (CalDAV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompFilter {
    /// Component name, upper case.
    pub name: String,
    /// `is-not-defined`.
    pub not_defined: bool,
    /// A time range some occurrence must overlap.
    pub time_range: Option<TimeRange>,
    /// Property filters, all of which must hold.
    pub props: Vec<PropFilter>,
    /// Nested component filters, all of which must hold.
    pub comps: Vec<CompFilter>,
}

impl CompFilter {
    /// The latest instant any time range in the filter reaches (`None` when one has
    /// no end, or there is none): occurrences after it cannot change the answer.
    pub fn horizon(&self) -> Option<i64> {
        let mut latest = i64::MIN;
        let mut ranges = 0;
        let mut open = false;
        self.visit_ranges(&mut |r: &TimeRange| {
            ranges += 1;
            match r.end {
                Some(e) => latest = latest.max(e),
                None => open = true,
            }
        });
        (ranges > 0 && !open).then_some(latest)
    }

    fn visit_ranges(&self, f: &mut impl FnMut(&TimeRange)) {
        self.time_range.iter().for_each(&mut *f);
        for p in &self.props {
            p.time_range.iter().for_each(&mut *f);
        }
        for c in &self.comps {
            c.visit_ranges(f);
        }
    }

    /// Reads a `comp-filter` element (recursively; the XML reader bounds the depth).
    pub fn from_xml(e: &Element) -> Result<Self, QueryError> {
        Ok(CompFilter {
            name: name_attr(e)?,
            not_defined: e.child(CALDAV, "is-not-defined").is_some(),
            time_range: e
                .child(CALDAV, "time-range")
                .map(TimeRange::from_xml)
                .transpose()?,
            props: e
                .children_named(CALDAV, "prop-filter")
                .map(|p| PropFilter::from_xml(p, CALDAV))
                .collect::<Result<_, _>>()?,
            comps: e
                .children_named(CALDAV, "comp-filter")
                .map(CompFilter::from_xml)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The filter of a calendar-query body; no filter matches everything.
    pub fn from_query(root: &Element) -> Result<Option<Self>, QueryError> {
        let Some(filter) = root.child(CALDAV, "filter") else {
            return Ok(None);
        };
        let Some(top) = filter.child(CALDAV, "comp-filter") else {
            return Err(QueryError::Invalid("filter without comp-filter".into()));
        };
        let f = CompFilter::from_xml(top)?;
        if f.name != "VCALENDAR" {
            return Err(QueryError::Invalid(
                "the top comp-filter must name VCALENDAR".into(),
            ));
        }
        Ok(Some(f))
    }
}

/// An `addressbook-query` filter (CardDAV).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFilter {
    /// `test="allof"` instead of the default `anyof`.
    pub all: bool,
    /// The property filters.
    pub props: Vec<PropFilter>,
}

impl CardFilter {
    /// The filter of an addressbook-query body.
    pub fn from_query(root: &Element) -> Result<Self, QueryError> {
        let Some(f) = root.child(CARDDAV, "filter") else {
            return Ok(CardFilter::default());
        };
        Ok(CardFilter {
            all: f.attr("test") == Some("allof"),
            props: f
                .children_named(CARDDAV, "prop-filter")
                .map(|p| PropFilter::from_xml(p, CARDDAV))
                .collect::<Result<_, _>>()?,
        })
    }
}

fn name_attr(e: &Element) -> Result<String, QueryError> {
    e.attr("name")
        .filter(|n| !n.is_empty())
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| QueryError::Invalid(format!("{} without a name", e.name)))
}

/// A property value as text: iCalendar/vCard escapes undone.
pub(crate) fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a property (its value and parameters) matches a `prop-filter`'s text
/// matches and parameter filters (not its time range or existence).
pub(crate) fn text_and_params(f: &PropFilter, value: &str, params: &[(String, &str)]) -> bool {
    let value = unescape(value);
    let mut tests = f
        .texts
        .iter()
        .map(|t| t.matches(&value))
        .chain(f.params.iter().map(|p| p.matches(params)));
    if f.all {
        tests.all(|t| t)
    } else {
        let mut any = false;
        let mut none = true;
        for t in tests {
            none = false;
            any |= t;
        }
        none || any
    }
}

#[cfg(test)]
mod tests;
