//! A calendar object against a `comp-filter` tree (RFC 4791 §9.7, time ranges §9.9).
//!
//! The object is read twice: as a tree of content lines (names, parameters and raw
//! values, for text and parameter matches) and with calcard (typed dates, and every
//! occurrence of a recurring component, its exceptions and EXDATEs applied). The two
//! list components in the same order, so a component's occurrences are found by its
//! index. Floating times and all-day dates are placed in the time zone the request or
//! the calendar names (UTC when neither does).

use calcard::common::timezone::Tz;
use calcard::icalendar::dates::TimeOrDelta;
use calcard::icalendar::{ICalendar, ICalendarComponent, ICalendarDuration, ICalendarValue};

use super::{CompFilter, PropFilter, QueryError, TimeRange, text_and_params};
use crate::lines::{Component, structure, unfold};

/// A calendar object, read for matching.
pub struct Object<'a> {
    /// Components in order of appearance (the root first).
    comps: Vec<Component<'a>>,
    /// calcard's reading, when it read the object and lists the same components.
    cal: Option<ICalendar>,
    /// The zone floating times are in.
    tz: Tz,
    /// Each component's occurrences `[start, end)` in Unix ms.
    instances: Vec<Vec<(i64, i64)>>,
    /// Expansion stopped at the bound: occurrences after `last` are unknown.
    cut_at: Option<(usize, i64)>,
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
    /// Reads `text` (the lines must outlive the object: see [`read`]).
    fn new(lines: &'a [String], text: &str, tz: Tz, max_occurrences: usize) -> Option<Self> {
        let comps = structure(lines, "VCALENDAR").ok()?;
        let cal = ICalendar::parse(text).ok().filter(|c| {
            c.components.len() == comps.len()
                && c.components
                    .iter()
                    .zip(&comps)
                    .all(|(k, r)| k.component_type.as_str().eq_ignore_ascii_case(&r.name))
        });
        let mut instances = vec![Vec::new(); comps.len()];
        let mut cut_at = None;
        if let Some(cal) = &cal {
            let expanded = cal.expand_dates(tz, max_occurrences);
            let mut last = i64::MIN;
            for e in &expanded.events {
                let s = e.start.timestamp_millis();
                let f = match &e.end {
                    TimeOrDelta::Time(t) => t.timestamp_millis(),
                    TimeOrDelta::Delta(d) => s + d.num_milliseconds(),
                };
                last = last.max(s);
                if let Some(list) = instances.get_mut(e.comp_id as usize) {
                    list.push((s, f));
                }
            }
            if expanded.events.len() >= max_occurrences {
                cut_at = Some((max_occurrences, last));
            }
        }
        Some(Object {
            comps,
            cal,
            tz,
            instances,
            cut_at,
        })
    }

    fn calcard_comp(&self, i: usize) -> Option<&ICalendarComponent> {
        self.cal.as_ref()?.components.get(i)
    }

    /// The first date or date-time of property `name` of component `i`, in ms, and
    /// whether it is a whole day.
    fn time_of(&self, i: usize, name: &str) -> Option<(i64, bool)> {
        let cal = self.cal.as_ref()?;
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
            "VEVENT" | "VJOURNAL" => self.instances[i]
                .iter()
                .any(|(s, f)| range.overlaps(*s, *f)),
            "VTODO" => self.todo_in_range(i, range),
            "VFREEBUSY" => self.freebusy_in_range(i, range),
            "VALARM" => self.alarm_in_range(i, range),
            // No rule for other components: they match.
            _ => true,
        };
        if !hit
            && let Some((bound, last)) = self.cut_at
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
            return self.instances[i]
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
        self.instances[parent].iter().any(|(s, f)| {
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
    fn comp_matches(&self, i: usize, f: &CompFilter) -> Result<bool, QueryError> {
        if let Some(range) = &f.time_range
            && !self.in_range(i, range)?
        {
            return Ok(false);
        }
        if !f.props.iter().all(|p| self.prop_matches(i, p)) {
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
    let Some(object) = Object::new(&lines, text, tz, max_occurrences) else {
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
/// answers), and whether the expansion stopped at the bound.
pub fn occurrences(
    content: &[u8],
    tz: Tz,
    max_occurrences: usize,
) -> Option<(Vec<Occurrence>, bool)> {
    let text = std::str::from_utf8(content).ok()?;
    let lines = unfold(text);
    let object = Object::new(&lines, text, tz, max_occurrences)?;
    let mut out = Vec::new();
    for (i, list) in object.instances.iter().enumerate() {
        out.extend(list.iter().map(|(s, f)| (i, *s, *f)));
    }
    out.sort_by_key(|(_, s, _)| *s);
    Some((out, object.cut_at.is_some()))
}
