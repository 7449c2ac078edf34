//! Calendar data shaped by a request (RFC 4791 §9.6.5–§9.6.6, §7.10):
//!
//! - [`expand`]: each occurrence in a time range as a component of its own, with a
//!   `RECURRENCE-ID`, times in UTC, no recurrence rule (what `<C:expand>` asks);
//! - [`limit_recurrence_set`]: the master and only the overridden occurrences that
//!   fall in the range (`<C:limit-recurrence-set>`);
//! - [`FreeBusy`]: the busy time of a set of objects in a range, as one `VFREEBUSY`
//!   (the free-busy-query REPORT).
//!
//! Output is built from the object's own content lines; only times are rewritten.

use calcard::common::timezone::Tz;

use crate::lines::{Component, structure, unfold};
use crate::query::calendar::occurrences;
use crate::query::{QueryError, TimeRange};

/// `YYYYMMDDTHHMMSSZ` for Unix ms.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes a content line back (unfolded) from its parts.
fn line(out: &mut String, p: &crate::lines::Prop<'_>) {
    out.push_str(&p.name);
    for (k, v) in &p.params {
        out.push(';');
        out.push_str(k);
        if !v.is_empty() {
            out.push('=');
            out.push_str(v);
        }
    }
    out.push(':');
    out.push_str(p.value);
    out.push_str("\r\n");
}

/// Writes component `i` and everything inside it, leaving out the properties
/// `skip` names (only on `i` itself) and adding `extra` lines.
fn write_component(
    out: &mut String,
    comps: &[Component<'_>],
    i: usize,
    skip: &[&str],
    extra: &[String],
) {
    let c = &comps[i];
    out.push_str(&format!("BEGIN:{}\r\n", c.name));
    for p in &c.props {
        if !skip.contains(&p.name.as_str()) {
            line(out, p);
        }
    }
    for e in extra {
        out.push_str(e);
        out.push_str("\r\n");
    }
    for j in (0..comps.len()).filter(|&j| comps[j].parent == Some(i)) {
        write_component(out, comps, j, &[], &[]);
    }
    out.push_str(&format!("END:{}\r\n", c.name));
}

const TIMES: &[&str] = &["DTSTART", "DTEND", "DURATION", "DUE", "RECURRENCE-ID"];
const RULES: &[&str] = &["RRULE", "RDATE", "EXDATE", "EXRULE"];

/// The occurrences of an object in `range`, each a component of its own in UTC.
pub fn expand(
    content: &[u8],
    range: &TimeRange,
    tz: Tz,
    max_occurrences: usize,
) -> Result<Vec<u8>, QueryError> {
    let Ok(text) = std::str::from_utf8(content) else {
        return Ok(content.to_vec());
    };
    let lines = unfold(text);
    let (Ok(comps), Some((instances, cut))) = (
        structure(&lines, "VCALENDAR"),
        occurrences(content, tz, range.end, max_occurrences),
    ) else {
        return Ok(content.to_vec());
    };
    if cut && instances.last().is_none_or(|(_, s, _)| *s < range.hi()) {
        return Err(QueryError::TooManyOccurrences(max_occurrences));
    }
    let mut out = String::from("BEGIN:VCALENDAR\r\n");
    for p in &comps[0].props {
        if p.name != "METHOD" {
            line(&mut out, p);
        }
    }
    for (i, s, f) in instances {
        if !range.overlaps(s, f) {
            continue;
        }
        let c = &comps[i];
        let recurring = c.has("RECURRENCE-ID") || RULES.iter().any(|r| c.has(r));
        let mut extra = vec![format!("DTSTART:{}", utc(s))];
        if f > s {
            let end = if c.name == "VTODO" { "DUE" } else { "DTEND" };
            extra.push(format!("{end}:{}", utc(f)));
        }
        if recurring {
            // An overridden occurrence keeps its RECURRENCE-ID (the time it replaces);
            // the master's occurrences are named by their own start.
            let rid = c
                .props("RECURRENCE-ID")
                .next()
                .and_then(|_| occurrence_id(content, i, tz))
                .unwrap_or(s);
            extra.push(format!("RECURRENCE-ID:{}", utc(rid)));
        }
        let skip: Vec<&str> = TIMES.iter().chain(RULES).copied().collect();
        write_component(&mut out, &comps, i, &skip, &extra);
    }
    out.push_str("END:VCALENDAR\r\n");
    Ok(out.into_bytes())
}

/// The RECURRENCE-ID of component `i`, in ms.
fn occurrence_id(content: &[u8], i: usize, tz: Tz) -> Option<i64> {
    let text = std::str::from_utf8(content).ok()?;
    let cal = calcard::icalendar::ICalendar::parse(text).ok()?;
    let comp = cal.components.get(i)?;
    let entry = comp
        .entries
        .iter()
        .find(|e| e.name.as_str().eq_ignore_ascii_case("RECURRENCE-ID"))?;
    let resolver = cal.build_tz_resolver().with_default(tz);
    match entry.values.first()? {
        calcard::icalendar::ICalendarValue::PartialDateTime(p) => Some(
            p.to_date_time_with_tz(resolver.resolve_or_default(entry.tz_id()))?
                .timestamp_millis(),
        ),
        _ => None,
    }
}

/// The object with only the overridden occurrences that fall in `range` (and every
/// master, time zone and other component).
pub fn limit_recurrence_set(content: &[u8], range: &TimeRange, tz: Tz) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(content) else {
        return content.to_vec();
    };
    let lines = unfold(text);
    let (Ok(comps), Some((instances, _))) = (
        structure(&lines, "VCALENDAR"),
        occurrences(content, tz, range.end, 100_000),
    ) else {
        return content.to_vec();
    };
    let keep = |i: usize| {
        !comps[i].has("RECURRENCE-ID")
            || instances
                .iter()
                .any(|(j, s, f)| *j == i && range.overlaps(*s, *f))
    };
    let mut out = String::from("BEGIN:VCALENDAR\r\n");
    for p in &comps[0].props {
        line(&mut out, p);
    }
    for i in (0..comps.len()).filter(|&i| comps[i].parent == Some(0)) {
        if keep(i) {
            write_component(&mut out, &comps, i, &[], &[]);
        }
    }
    out.push_str("END:VCALENDAR\r\n");
    out.into_bytes()
}

/// The busy time of a set of objects in a range, built one object at a time (RFC 4791
/// §7.10): every occurrence of an event that is not transparent or cancelled,
/// tentative ones as `BUSY-TENTATIVE`, merged and clipped to the range, in UTC.
#[derive(Debug, Clone)]
pub struct FreeBusy {
    range: TimeRange,
    tz: Tz,
    max_occurrences: usize,
    busy: Vec<(i64, i64)>,
    tentative: Vec<(i64, i64)>,
}

impl FreeBusy {
    /// Busy time in `range`, floating times in `tz`.
    pub fn new(range: TimeRange, tz: Tz, max_occurrences: usize) -> Self {
        FreeBusy {
            range,
            tz,
            max_occurrences,
            busy: Vec::new(),
            tentative: Vec::new(),
        }
    }

    /// Adds one object's busy time.
    pub fn add(&mut self, content: &[u8]) -> Result<(), QueryError> {
        let range = self.range;
        let Ok(text) = std::str::from_utf8(content) else {
            return Ok(());
        };
        let lines = unfold(text);
        let (Ok(comps), Some((instances, cut))) = (
            structure(&lines, "VCALENDAR"),
            occurrences(content, self.tz, self.range.end, self.max_occurrences),
        ) else {
            return Ok(());
        };
        if cut && instances.last().is_none_or(|(_, s, _)| *s < range.hi()) {
            return Err(QueryError::TooManyOccurrences(self.max_occurrences));
        }
        for (i, s, f) in instances {
            let c = &comps[i];
            if c.name != "VEVENT" || !range.overlaps(s, f) || f <= s {
                continue;
            }
            let value = |n: &str| {
                c.props(n)
                    .next()
                    .map(|p| p.value.trim().to_ascii_uppercase())
            };
            if value("TRANSP").as_deref() == Some("TRANSPARENT")
                || value("STATUS").as_deref() == Some("CANCELLED")
            {
                continue;
            }
            let clipped = (s.max(range.lo()), f.min(range.hi()));
            if value("STATUS").as_deref() == Some("TENTATIVE") {
                self.tentative.push(clipped);
            } else {
                self.busy.push(clipped);
            }
        }
        Ok(())
    }

    /// The VCALENDAR holding one VFREEBUSY, stamped `stamp_ms`.
    pub fn finish(self, stamp_ms: i64) -> String {
        let mut out = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Postern//free-busy//EN\r\nBEGIN:VFREEBUSY\r\nDTSTAMP:{}\r\n",
            utc(stamp_ms)
        );
        if let Some(s) = self.range.start {
            out.push_str(&format!("DTSTART:{}\r\n", utc(s)));
        }
        if let Some(f) = self.range.end {
            out.push_str(&format!("DTEND:{}\r\n", utc(f)));
        }
        for (kind, periods) in [("BUSY", self.busy), ("BUSY-TENTATIVE", self.tentative)] {
            for (s, f) in merge(periods) {
                out.push_str(&format!("FREEBUSY;FBTYPE={kind}:{}/{}\r\n", utc(s), utc(f)));
            }
        }
        out.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
        out
    }
}

/// Overlapping or touching periods joined, in order.
fn merge(mut periods: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    periods.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, f) in periods {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(f),
            _ => out.push((s, f)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKLY: &[u8] =
        include_bytes!("../../tests/fixtures/calendar/recurring-with-exceptions.ics");

    fn range(a: &str, b: &str) -> TimeRange {
        TimeRange {
            start: postern_core::content::parse_utc_timestamp(a),
            end: postern_core::content::parse_utc_timestamp(b),
        }
    }

    #[test]
    fn utc_times_are_written_as_rfc_5545_says() {
        assert_eq!(utc(0), "19700101T000000Z");
        assert_eq!(
            utc(postern_core::content::parse_utc_timestamp("20250113T100000Z").unwrap()),
            "20250113T100000Z"
        );
    }

    #[test]
    fn expand_gives_each_occurrence_in_utc() {
        let w = postern_core::content::with_crlf(&String::from_utf8_lossy(WEEKLY));
        // Three Mondays: the 6th (09:30 Berlin = 08:30Z), the 13th (moved to
        // 11:00 Berlin = 10:00Z), the 20th (excluded).
        let out = expand(
            &w,
            &range("20250106T000000Z", "20250121T000000Z"),
            Tz::UTC,
            1000,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("BEGIN:VEVENT").count(), 2, "{text}");
        assert!(text.contains("DTSTART:20250106T083000Z"), "{text}");
        assert!(text.contains("RECURRENCE-ID:20250106T083000Z"), "{text}");
        assert!(text.contains("DTSTART:20250113T100000Z"), "{text}");
        assert!(text.contains("RECURRENCE-ID:20250113T083000Z"), "{text}");
        assert!(text.contains("Weekly standup (moved)"));
        assert!(!text.contains("RRULE") && !text.contains("EXDATE") && !text.contains("VTIMEZONE"));
        assert!(
            crate::object::validate(crate::path::Kind::Calendars, None, text.as_bytes()).is_ok()
        );
    }

    #[test]
    fn limit_recurrence_set_drops_overrides_outside_the_range() {
        let w = postern_core::content::with_crlf(&String::from_utf8_lossy(WEEKLY));
        let outside = String::from_utf8(limit_recurrence_set(
            &w,
            &range("20250301T000000Z", "20250401T000000Z"),
            Tz::UTC,
        ))
        .unwrap();
        assert_eq!(
            outside.matches("BEGIN:VEVENT").count(),
            1,
            "the master only"
        );
        let inside = String::from_utf8(limit_recurrence_set(
            &w,
            &range("20250113T000000Z", "20250114T000000Z"),
            Tz::UTC,
        ))
        .unwrap();
        assert_eq!(inside.matches("BEGIN:VEVENT").count(), 2);
    }

    #[test]
    fn free_busy_merges_and_skips_what_is_not_busy() {
        let ev = |uid: &str, s: &str, e: &str, extra: &str| {
            format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:{s}\r\nDTEND:{e}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n").into_bytes()
        };
        let objects = [
            ev("a", "20250601T090000Z", "20250601T100000Z", ""),
            ev("b", "20250601T093000Z", "20250601T110000Z", ""),
            ev(
                "c",
                "20250601T120000Z",
                "20250601T130000Z",
                "TRANSP:TRANSPARENT\r\n",
            ),
            ev(
                "d",
                "20250601T140000Z",
                "20250601T150000Z",
                "STATUS:TENTATIVE\r\n",
            ),
            ev(
                "e",
                "20250601T160000Z",
                "20250601T170000Z",
                "STATUS:CANCELLED\r\n",
            ),
        ];
        let mut busy = FreeBusy::new(range("20250601T000000Z", "20250602T000000Z"), Tz::UTC, 1000);
        for o in &objects {
            busy.add(o).unwrap();
        }
        let fb = busy.finish(0);
        assert!(
            fb.contains("FREEBUSY;FBTYPE=BUSY:20250601T090000Z/20250601T110000Z"),
            "{fb}"
        );
        assert!(fb.contains("FREEBUSY;FBTYPE=BUSY-TENTATIVE:20250601T140000Z/20250601T150000Z"));
        assert_eq!(fb.matches("FREEBUSY;").count(), 2, "{fb}");
    }
}
