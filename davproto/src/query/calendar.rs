//! A calendar object against a `comp-filter` tree (RFC 4791 §9.7, time ranges §9.9).
//!
//! The object is read twice: as a tree of content lines (names, parameters and raw
//! values, for text and parameter matches) and with calcard (typed dates, and every
//! occurrence of a recurring component, its exceptions and EXDATEs applied). The two
//! list components in the same order, so a component's occurrences are found by its
//! index. Floating times and all-day dates are placed in the time zone the request or
//! the calendar names (UTC when neither does).

use std::cell::OnceCell;

use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::dates::TimeOrDelta;
use calcard::icalendar::{ICalendar, ICalendarComponent, ICalendarDuration, ICalendarValue};

use super::{CompFilter, PropFilter, QueryError, TimeRange, text_and_params};
use crate::lines::{Component, structure, unfold};

/// A calendar object, read for matching. The content lines are read at once; calcard's
/// reading and the occurrences only when a condition needs them, so a filter on text
/// alone never parses dates or expands a rule.
pub struct Object<'a> {
    /// Components in order of appearance (the root first).
    comps: Vec<Component<'a>>,
    /// The object's text.
    text: &'a str,
    /// calcard's reading, when it read the object and lists the same components.
    cal: OnceCell<Option<ICalendar>>,
    /// The zone floating times are in.
    tz: Tz,
    /// The latest instant any condition asks about (`None`: no bound), so that rules
    /// without an end are expanded only as far as a question can reach.
    horizon: Option<i64>,
    /// Most occurrences expanded.
    max_occurrences: usize,
    /// Each component's occurrences `[start, end)` in Unix ms, and where the expansion
    /// stopped at the bound (occurrences after `last` are unknown).
    instances: OnceCell<Occurrences>,
}

/// Each component's occurrences, and `(bound, last)` when the expansion stopped at the
/// bound.
struct Occurrences {
    lists: Vec<Vec<(i64, i64)>>,
    cut_at: Option<(usize, i64)>,
}

/// How far past the horizon an open rule is still expanded: an alarm fires before its
/// occurrence, a this-and-future override can move later occurrences earlier, and a
/// zone can be half a day from UTC; a year covers them all at little cost.
const HORIZON_MARGIN_MS: i64 = 366 * 86_400_000;

/// Caps every rule of `cal` without an end at `horizon` (plus the margin): occurrences
/// after it cannot answer the question, and a rule with no end would otherwise be
/// expanded to the occurrence bound.
fn cap_rules(cal: &mut ICalendar, horizon: i64) {
    let until_ms = horizon.saturating_add(HORIZON_MARGIN_MS);
    let resolver_free_start = |comp: &ICalendarComponent| {
        comp.entries
            .iter()
            .find(|e| e.name.as_str().eq_ignore_ascii_case("DTSTART"))
            .and_then(|e| match e.values.first() {
                Some(ICalendarValue::PartialDateTime(p)) => p
                    .to_date_time_with_tz(Tz::UTC)
                    .map(|t| t.timestamp_millis()),
                _ => None,
            })
    };
    for comp in &mut cal.components {
        let start = resolver_free_start(comp);
        for entry in comp
            .entries
            .iter_mut()
            .filter(|e| e.name.as_str().eq_ignore_ascii_case("RRULE"))
        {
            for value in &mut entry.values {
                let ICalendarValue::RecurrenceRule(rule) = value else {
                    continue;
                };
                let ends_before = rule.count.is_some()
                    || rule
                        .until
                        .as_ref()
                        .and_then(|u| u.to_date_time_with_tz(Tz::UTC))
                        .is_some_and(|u| u.timestamp_millis() <= until_ms);
                if ends_before {
                    continue;
                }
                match start {
                    // Starts after the horizon: its first occurrence says as much as
                    // any.
                    Some(s) if s > until_ms => rule.count = Some(1),
                    _ => {
                        rule.until = Some(PartialDateTime::from_utc_timestamp(until_ms / 1000));
                    }
                }
            }
        }
    }
}

/// The zone of a `VCALENDAR` holding one `VTIMEZONE` (CALDAV:timezone, the
/// calendar-timezone property), as calcard resolves it; `None` when it cannot.
pub fn zone_of(vtimezone_calendar: &str) -> Option<Tz> {
    let cal = ICalendar::parse(vtimezone_calendar).ok()?;
    cal.timezones().find_map(|c| c.timezone().map(|(_, tz)| tz))
}

fn millis(d: &ICalendarDuration) -> i64 {
    let ms = ((d.weeks as i64 * 7 + d.days as i64) * 86_400
        + d.hours as i64 * 3_600
        + d.minutes as i64 * 60
        + d.seconds as i64)
        * 1000;
    if d.neg { -ms } else { ms }
}

impl<'a> Object<'a> {
    /// Reads `text` (the lines must outlive the object: see [`matches`]).
    fn new(
        lines: &'a [String],
        text: &'a str,
        tz: Tz,
        horizon: Option<i64>,
        max_occurrences: usize,
    ) -> Option<Self> {
        Some(Object {
            comps: structure(lines, "VCALENDAR").ok()?,
            text,
            cal: OnceCell::new(),
            tz,
            horizon,
            max_occurrences,
            instances: OnceCell::new(),
        })
    }

    fn cal(&self) -> Option<&ICalendar> {
        self.cal
            .get_or_init(|| {
                let mut cal = ICalendar::parse(self.text).ok().filter(|c| {
                    c.components.len() == self.comps.len()
                        && c.components
                            .iter()
                            .zip(&self.comps)
                            .all(|(k, r)| k.component_type.as_str().eq_ignore_ascii_case(&r.name))
                })?;
                if let Some(h) = self.horizon {
                    cap_rules(&mut cal, h);
                }
                Some(cal)
            })
            .as_ref()
    }

    fn occurrences(&self) -> &Occurrences {
        self.instances.get_or_init(|| {
            let mut lists = vec![Vec::new(); self.comps.len()];
            let mut cut_at = None;
            if let Some(cal) = self.cal() {
                let expanded = cal.expand_dates(self.tz, self.max_occurrences);
                let mut last = i64::MIN;
                for e in &expanded.events {
                    let s = e.start.timestamp_millis();
                    let f = match &e.end {
                        TimeOrDelta::Time(t) => t.timestamp_millis(),
                        TimeOrDelta::Delta(d) => s + d.num_milliseconds(),
                    };
                    last = last.max(s);
                    if let Some(list) = lists.get_mut(e.comp_id as usize) {
                        list.push((s, f));
                    }
                }
                if expanded.events.len() >= self.max_occurrences {
                    cut_at = Some((self.max_occurrences, last));
                }
            }
            Occurrences { lists, cut_at }
        })
    }

    fn calcard_comp(&self, i: usize) -> Option<&ICalendarComponent> {
        self.cal()?.components.get(i)
    }

    /// The first date or date-time of property `name` of component `i`, in ms, and
    /// whether it is a whole day.
    fn time_of(&self, i: usize, name: &str) -> Option<(i64, bool)> {
        let cal = self.cal()?;
        let comp = cal.components.get(i)?;
        let resolver = cal.build_tz_resolver().with_default(self.tz);
        let entry = comp
            .entries
            .iter()
            .find(|e| e.name.as_str().eq_ignore_ascii_case(name))?;
        match entry.values.first()? {
            ICalendarValue::PartialDateTime(p) => {
                let tz = resolver.resolve_or_default(entry.tz_id());
                let whole_day = p.hour.is_none();
                Some((p.to_date_time_with_tz(tz)?.timestamp_millis(), whole_day))
            }
            _ => None,
        }
    }

    /// A duration property of component `i`, in ms.
    fn duration_of(&self, i: usize, name: &str) -> Option<i64> {
        let comp = self.calcard_comp(i)?;
        let entry = comp
            .entries
            .iter()
            .find(|e| e.name.as_str().eq_ignore_ascii_case(name))?;
        match entry.values.first()? {
            ICalendarValue::Duration(d) => Some(millis(d)),
            _ => None,
        }
    }

    /// Whether component `i` has an occurrence in `range` (RFC 4791 §9.9).
    fn in_range(&self, i: usize, range: &TimeRange) -> Result<bool, QueryError> {
        let c = &self.comps[i];
        let hit = match c.name.as_str() {
            "VEVENT" | "VJOURNAL" => self.occurrences().lists[i]
                .iter()
                .any(|(s, f)| range.overlaps(*s, *f)),
            "VTODO" => self.todo_in_range(i, range),
            "VFREEBUSY" => self.freebusy_in_range(i, range),
            "VALARM" => self.alarm_in_range(i, range),
            // No rule for other components: they match.
            _ => true,
        };
        if !hit
            && let Some((bound, last)) = self.occurrences().cut_at
            && last < range.hi()
        {
            // Occurrences after the bound were not looked at: do not guess.
            return Err(QueryError::TooManyOccurrences(bound));
        }
        Ok(hit)
    }

    fn todo_in_range(&self, i: usize, r: &TimeRange) -> bool {
        let c = &self.comps[i];
        if c.has("RRULE") || c.has("RDATE") {
            return self.occurrences().lists[i]
                .iter()
                .any(|(s, f)| r.lo() <= (*f).max(*s) && r.hi() > *s);
        }
        let (lo, hi) = (r.lo(), r.hi());
        let start = self.time_of(i, "DTSTART").map(|t| t.0);
        let due = self.time_of(i, "DUE").map(|t| t.0);
        let duration = self.duration_of(i, "DURATION");
        let completed = self.time_of(i, "COMPLETED").map(|t| t.0);
        let created = self.time_of(i, "CREATED").map(|t| t.0);
        match (start, duration, due) {
            (Some(s), Some(d), _) => lo <= s + d && (hi > s || hi >= s + d),
            (Some(s), None, Some(u)) => (lo < u || lo <= s) && (hi > s || hi >= u),
            (Some(s), None, None) => lo <= s && hi > s,
            (None, _, Some(u)) => lo < u && hi >= u,
            (None, _, None) => match (completed, created) {
                (Some(done), Some(made)) => {
                    (lo <= made || lo <= done) && (hi >= made || hi >= done)
                }
                (Some(done), None) => lo <= done && hi >= done,
                (None, Some(made)) => hi > made,
                (None, None) => true,
            },
        }
    }

    fn freebusy_in_range(&self, i: usize, r: &TimeRange) -> bool {
        let Some(comp) = self.calcard_comp(i) else {
            return false;
        };
        let mut any_period = false;
        for e in comp
            .entries
            .iter()
            .filter(|e| e.name.as_str().eq_ignore_ascii_case("FREEBUSY"))
        {
            for v in &e.values {
                if let ICalendarValue::Period(p) = v {
                    any_period = true;
                    let (s, f) = match p {
                        calcard::icalendar::ICalendarPeriod::Range { start, end } => (
                            start
                                .to_date_time_with_tz(Tz::UTC)
                                .map(|t| t.timestamp_millis()),
                            end.to_date_time_with_tz(Tz::UTC)
                                .map(|t| t.timestamp_millis()),
                        ),
                        calcard::icalendar::ICalendarPeriod::Duration { start, duration } => {
                            let s = start
                                .to_date_time_with_tz(Tz::UTC)
                                .map(|t| t.timestamp_millis());
                            (s, s.map(|s| s + millis(duration)))
                        }
                    };
                    if let (Some(s), Some(f)) = (s, f)
                        && r.overlaps(s, f)
                    {
                        return true;
                    }
                }
            }
        }
        if any_period {
            return false;
        }
        match (self.time_of(i, "DTSTART"), self.time_of(i, "DTEND")) {
            (Some((s, _)), Some((f, _))) => r.overlaps(s, f),
            _ => false,
        }
    }

    /// An alarm's trigger times, on every occurrence of the component it belongs to,
    /// repetitions included.
    fn alarm_in_range(&self, i: usize, r: &TimeRange) -> bool {
        let Some(parent) = self.comps[i].parent else {
            return false;
        };
        let alarm = &self.comps[i];
        let trigger = alarm.props("TRIGGER").next();
        let Some(trigger) = trigger else {
            return false;
        };
        let repeat: i64 = alarm
            .props("REPEAT")
            .next()
            .and_then(|p| p.value.trim().parse().ok())
            .unwrap_or(0)
            .clamp(0, 1000);
        let every = self.duration_of(i, "DURATION").unwrap_or(0);
        let fire = |t: i64| (0..=repeat).any(|k| r.contains(t + k * every));
        if trigger
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME"))
        {
            return self.time_of(i, "TRIGGER").is_some_and(|(t, _)| fire(t));
        }
        let Some(offset) = self.duration_of(i, "TRIGGER") else {
            return false;
        };
        let from_end = trigger
            .param("RELATED")
            .is_some_and(|v| v.eq_ignore_ascii_case("END"));
        self.occurrences().lists[parent].iter().any(|(s, f)| {
            let anchor = if from_end { *f } else { *s };
            fire(anchor + offset)
        })
    }

    /// Whether a property of component `i` matches a `prop-filter`.
    fn prop_matches(&self, i: usize, f: &PropFilter) -> bool {
        let props: Vec<_> = self.comps[i].props(&f.name).collect();
        if f.not_defined {
            return props.is_empty();
        }
        if props.is_empty() {
            return false;
        }
        if let Some(range) = &f.time_range {
            // The property's (first) date or date-time, a whole day for a date.
            let Some((t, whole_day)) = self.time_of(i, &f.name) else {
                return false;
            };
            let hit = if whole_day {
                range.overlaps(t, t + 86_400_000)
            } else {
                range.contains(t)
            };
            if !hit {
                return false;
            }
        }
        props.iter().any(|p| text_and_params(f, p.value, &p.params))
    }

    /// Whether component `i` satisfies `f`'s conditions (its own time range,
    /// properties and nested components).
    /// Properties are looked at first: text is cheap, occurrences are not.
    fn comp_matches(&self, i: usize, f: &CompFilter) -> Result<bool, QueryError> {
        if !f.props.iter().all(|p| self.prop_matches(i, p)) {
            return Ok(false);
        }
        if let Some(range) = &f.time_range
            && !self.in_range(i, range)?
        {
            return Ok(false);
        }
        for child in &f.comps {
            if !self.child_matches(i, child)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the components named by `f` inside component `parent` match it.
    fn child_matches(&self, parent: usize, f: &CompFilter) -> Result<bool, QueryError> {
        let children: Vec<usize> = (0..self.comps.len())
            .filter(|&j| self.comps[j].parent == Some(parent) && self.comps[j].name == f.name)
            .collect();
        if f.not_defined {
            return Ok(children.is_empty());
        }
        for j in children {
            if self.comp_matches(j, f)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Whether a calendar object matches the filter (`None`: no filter, everything does).
/// An object that cannot be read matches only a filter with no conditions.
pub fn matches(
    content: &[u8],
    filter: Option<&CompFilter>,
    tz: Tz,
    max_occurrences: usize,
) -> Result<bool, QueryError> {
    let Some(filter) = filter else {
        return Ok(true);
    };
    let Ok(text) = std::str::from_utf8(content) else {
        return Ok(false);
    };
    let lines = unfold(text);
    let Some(object) = Object::new(&lines, text, tz, filter.horizon(), max_occurrences) else {
        return Ok(filter.props.is_empty() && filter.comps.is_empty());
    };
    if object.comps.first().map(|c| c.name.as_str()) != Some(filter.name.as_str()) {
        return Ok(filter.not_defined);
    }
    object.comp_matches(0, filter)
}

/// One occurrence: the index of the component it comes from, `[start, end)` in ms.
pub type Occurrence = (usize, i64, i64);

/// Every occurrence of a calendar object in start order (for `expand` and free-busy
/// answers) up to `horizon` at least (later ones of an open rule may be left out), and
/// whether the expansion stopped at the bound.
pub fn occurrences(
    content: &[u8],
    tz: Tz,
    horizon: Option<i64>,
    max_occurrences: usize,
) -> Option<(Vec<Occurrence>, bool)> {
    let text = std::str::from_utf8(content).ok()?;
    let lines = unfold(text);
    let object = Object::new(&lines, text, tz, horizon, max_occurrences)?;
    let found = object.occurrences();
    let mut out = Vec::new();
    for (i, list) in found.lists.iter().enumerate() {
        out.extend(list.iter().map(|(s, f)| (i, *s, *f)));
    }
    out.sort_by_key(|(_, s, _)| *s);
    Some((out, found.cut_at.is_some()))
}
