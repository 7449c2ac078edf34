use super::*;
use calcard::common::timezone::Tz;

fn parse(xml: &str) -> postern_davxml::Element {
    postern_davxml::parse(xml.as_bytes()).unwrap()
}

fn cal_filter(inner: &str) -> CompFilter {
    let q = format!(
        r#"<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:filter><C:comp-filter name="VCALENDAR">{inner}</C:comp-filter></C:filter></C:calendar-query>"#
    );
    CompFilter::from_query(&parse(&q)).unwrap().unwrap()
}

fn hit(content: &[u8], inner: &str) -> bool {
    calendar::matches(content, Some(&cal_filter(inner)), Tz::UTC, 10_000).unwrap()
}

const WEEKLY: &[u8] =
    include_bytes!("../../../tests/fixtures/calendar/recurring-with-exceptions.ics");
const ALL_DAY: &[u8] = include_bytes!("../../../tests/fixtures/calendar/all-day.ics");
const TASK: &[u8] = include_bytes!("../../../tests/fixtures/calendar/task.ics");

fn with_crlf(b: &[u8]) -> Vec<u8> {
    postern_core::content::with_crlf(&String::from_utf8_lossy(b))
}

#[test]
fn time_ranges_on_every_occurrence() {
    let w = with_crlf(WEEKLY);
    let tr = |a: &str, b: &str| {
        format!(
            r#"<C:comp-filter name="VEVENT"><C:time-range start="{a}" end="{b}"/></C:comp-filter>"#
        )
    };
    assert!(
        hit(&w, &tr("20250303T000000Z", "20250304T000000Z")),
        "an ordinary occurrence"
    );
    assert!(
        !hit(&w, &tr("20250120T000000Z", "20250121T000000Z")),
        "the EXDATE"
    );
    assert!(
        hit(&w, &tr("20250113T095000Z", "20250113T101500Z")),
        "the moved instance"
    );
    assert!(
        !hit(&w, &tr("20250113T080000Z", "20250113T085000Z")),
        "not where it was"
    );
    assert!(
        !hit(&w, &tr("20260101T000000Z", "20260201T000000Z")),
        "after COUNT"
    );
    assert!(
        !hit(
            &with_crlf(TASK),
            &tr("20250101T000000Z", "20260101T000000Z")
        ),
        "a VTODO is not a VEVENT"
    );
}

#[test]
fn an_endless_rule_is_searched_to_the_end_of_the_range_or_refused() {
    let daily = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTAMP:19900101T000000Z\r\nDTSTART:19900101T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let f = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20300101T080000Z" end="20300101T100000Z"/></C:comp-filter>"#,
    );
    // Forty years of days are about 14,600 occurrences: found with a bound above.
    assert_eq!(
        calendar::matches(daily, Some(&f), Tz::UTC, 20_000),
        Ok(true)
    );
    // Below, the answer is an error, not a silent "no".
    assert_eq!(
        calendar::matches(daily, Some(&f), Tz::UTC, 10_000),
        Err(QueryError::TooManyOccurrences(10_000))
    );
}

#[test]
fn open_rules_are_expanded_only_as_far_as_the_question_reaches() {
    let weekly = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20200101T000000Z\r\nDTSTART:20200106T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let june = |inner: &str| {
        cal_filter(&format!(
            r#"<C:comp-filter name="VEVENT"><C:time-range start="20250601T000000Z" end="20250701T000000Z"/>{inner}</C:comp-filter>"#
        ))
    };
    let june_ms = june("").horizon().unwrap();
    // Capped at the horizon plus a year: about 340 weeks, not the 100,000 bound.
    let (found, cut) = calendar::occurrences(weekly, Tz::UTC, Some(june_ms), 100_000).unwrap();
    assert!(!cut, "the bound was not reached");
    assert!(found.len() < 400, "{} occurrences expanded", found.len());
    let last = found.last().unwrap().1;
    assert!(last > june_ms, "occurrences up to the horizon and beyond");
    // Without a horizon, the rule runs to the bound.
    let (all, cut) = calendar::occurrences(weekly, Tz::UTC, None, 5_000).unwrap();
    assert!(cut && all.len() == 5_000);
    // The answers are unchanged: June 2025 holds Mondays, 2030 too, 2019 none.
    assert_eq!(
        calendar::matches(weekly, Some(&june("")), Tz::UTC, 100_000),
        Ok(true)
    );
    let far = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20300107T000000Z" end="20300108T000000Z"/></C:comp-filter>"#,
    );
    assert_eq!(
        calendar::matches(weekly, Some(&far), Tz::UTC, 100_000),
        Ok(true)
    );
    let before = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20190101T000000Z" end="20191231T000000Z"/></C:comp-filter>"#,
    );
    assert_eq!(
        calendar::matches(weekly, Some(&before), Tz::UTC, 100_000),
        Ok(false)
    );
    // An open range has no horizon.
    let open = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20300107T000000Z"/></C:comp-filter>"#,
    );
    assert_eq!(open.horizon(), None);
    // A rule that starts after the horizon still has its first occurrence.
    let later = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20100101T000000Z" end="20100201T000000Z"/></C:comp-filter>"#,
    );
    let (first, _) = calendar::occurrences(weekly, Tz::UTC, later.horizon(), 100_000).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        calendar::matches(weekly, Some(&later), Tz::UTC, 100_000),
        Ok(false)
    );
    // An UNTIL or COUNT already inside the horizon is left alone.
    let counted = String::from_utf8_lossy(weekly).replace("FREQ=WEEKLY", "FREQ=WEEKLY;COUNT=3");
    let (three, _) =
        calendar::occurrences(counted.as_bytes(), Tz::UTC, Some(june_ms), 100_000).unwrap();
    assert_eq!(three.len(), 3);
}

#[test]
fn text_conditions_are_decided_before_occurrences_are_counted() {
    let daily = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTAMP:19900101T000000Z\r\nDTSTART:19900101T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY\r\nSUMMARY:standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let f = |text: &str| {
        cal_filter(&format!(
            r#"<C:comp-filter name="VEVENT"><C:time-range start="20300101T080000Z" end="20300101T100000Z"/><C:prop-filter name="SUMMARY"><C:text-match>{text}</C:text-match></C:prop-filter></C:comp-filter>"#
        ))
    };
    // The summary rules the object out: no occurrence needs counting, so the bound
    // (too low for forty years of days) is no reason to refuse.
    assert_eq!(
        calendar::matches(daily, Some(&f("budget")), Tz::UTC, 1_000),
        Ok(false)
    );
    assert_eq!(
        calendar::matches(daily, Some(&f("standup")), Tz::UTC, 1_000),
        Err(QueryError::TooManyOccurrences(1_000))
    );
}

#[test]
fn floating_and_all_day_times_are_in_the_requested_zone() {
    let floating = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:f\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250601T090000\r\nDTEND:20250601T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    // 09:00 in New York is 13:00Z.
    let f = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20250601T125900Z" end="20250601T133000Z"/></C:comp-filter>"#,
    );
    let ny: Tz = "America/New_York".parse().unwrap();
    assert_eq!(calendar::matches(floating, Some(&f), ny, 1000), Ok(true));
    assert_eq!(
        calendar::matches(floating, Some(&f), Tz::UTC, 1000),
        Ok(false)
    );
    // An all-day event on 2025-12-26 in Tokyo ends at 15:00Z that day.
    let f = cal_filter(
        r#"<C:comp-filter name="VEVENT"><C:time-range start="20251226T160000Z" end="20251226T200000Z"/></C:comp-filter>"#,
    );
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    let day = with_crlf(ALL_DAY);
    assert_eq!(calendar::matches(&day, Some(&f), tokyo, 1000), Ok(false));
    assert_eq!(calendar::matches(&day, Some(&f), Tz::UTC, 1000), Ok(true));
}

#[test]
fn text_param_and_not_defined_filters() {
    let ev = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:t\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250601T090000Z\r\nSUMMARY:Quarterly Review\\, Berlin\r\nATTENDEE;PARTSTAT=ACCEPTED;CN=Ann:mailto:ann@example.com\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let prop = |p: &str| format!(r#"<C:comp-filter name="VEVENT">{p}</C:comp-filter>"#);
    assert!(hit(
        ev,
        &prop(
            r#"<C:prop-filter name="SUMMARY"><C:text-match>review, berlin</C:text-match></C:prop-filter>"#
        )
    ));
    assert!(!hit(
        ev,
        &prop(
            r#"<C:prop-filter name="SUMMARY"><C:text-match collation="i;octet">review</C:text-match></C:prop-filter>"#
        )
    ));
    assert!(hit(
        ev,
        &prop(
            r#"<C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">Weekly</C:text-match></C:prop-filter>"#
        )
    ));
    assert!(hit(
        ev,
        &prop(r#"<C:prop-filter name="LOCATION"><C:is-not-defined/></C:prop-filter>"#)
    ));
    assert!(!hit(
        ev,
        &prop(r#"<C:prop-filter name="SUMMARY"><C:is-not-defined/></C:prop-filter>"#)
    ));
    assert!(hit(
        ev,
        &prop(
            r#"<C:prop-filter name="ATTENDEE"><C:param-filter name="PARTSTAT"><C:text-match>ACCEPTED</C:text-match></C:param-filter></C:prop-filter>"#
        )
    ));
    assert!(!hit(
        ev,
        &prop(
            r#"<C:prop-filter name="ATTENDEE"><C:param-filter name="PARTSTAT"><C:text-match>DECLINED</C:text-match></C:param-filter></C:prop-filter>"#
        )
    ));
    assert!(hit(
        ev,
        &prop(
            r#"<C:prop-filter name="ATTENDEE"><C:param-filter name="ROLE"><C:is-not-defined/></C:param-filter></C:prop-filter>"#
        )
    ));
    assert!(hit(
        ev,
        &prop(
            r#"<C:prop-filter name="DTSTART"><C:time-range start="20250601T000000Z" end="20250602T000000Z"/></C:prop-filter>"#
        )
    ));
    // An alarm 15 minutes before 09:00Z fires at 08:45Z.
    let alarm = |a: &str, b: &str| {
        prop(&format!(
            r#"<C:comp-filter name="VALARM"><C:time-range start="{a}" end="{b}"/></C:comp-filter>"#
        ))
    };
    assert!(hit(ev, &alarm("20250601T084000Z", "20250601T085000Z")));
    assert!(!hit(ev, &alarm("20250601T085000Z", "20250601T090000Z")));
    assert!(hit(
        ev,
        r#"<C:comp-filter name="VTODO"><C:is-not-defined/></C:comp-filter>"#
    ));
    assert!(!hit(
        ev,
        r#"<C:comp-filter name="VEVENT"><C:is-not-defined/></C:comp-filter>"#
    ));
}

#[test]
fn to_dos_follow_the_rfc_table() {
    let todo = |props: &str| {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20250101T000000Z\r\n{props}END:VTODO\r\nEND:VCALENDAR\r\n").into_bytes()
    };
    let tr = |a: &str, b: &str| {
        format!(
            r#"<C:comp-filter name="VTODO"><C:time-range start="{a}" end="{b}"/></C:comp-filter>"#
        )
    };
    assert!(hit(
        &todo("DUE:20250131T000000Z\r\n"),
        &tr("20250130T000000Z", "20250201T000000Z")
    ));
    assert!(!hit(
        &todo("DUE:20250131T000000Z\r\n"),
        &tr("20250201T000000Z", "20250301T000000Z")
    ));
    assert!(
        hit(&todo(""), &tr("20250201T000000Z", "20250301T000000Z")),
        "undated to-dos match"
    );
    assert!(hit(
        &todo("COMPLETED:20250115T000000Z\r\n"),
        &tr("20250110T000000Z", "20250120T000000Z")
    ));
}

#[test]
fn bad_filters_are_refused() {
    let q = |inner: &str| {
        format!(
            r#"<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:filter><C:comp-filter name="VCALENDAR">{inner}</C:comp-filter></C:filter></C:calendar-query>"#
        )
    };
    assert!(matches!(
        CompFilter::from_query(&parse(&q(
            r#"<C:comp-filter name="VEVENT"><C:time-range start="bogus"/></C:comp-filter>"#
        ))),
        Err(QueryError::Invalid(_))
    ));
    assert!(matches!(
        CompFilter::from_query(&parse(&q(
            r#"<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x</C:text-match></C:prop-filter></C:comp-filter>"#
        ))),
        Err(QueryError::Collation(_))
    ));
}

#[test]
fn cards_anyof_allof_params_and_match_types() {
    let card = include_bytes!("../../../tests/fixtures/contacts/vcard3.vcf");
    let card = with_crlf(card);
    let f = |xml: &str| {
        CardFilter::from_query(&parse(&format!(r#"<CR:addressbook-query xmlns:CR="urn:ietf:params:xml:ns:carddav">{xml}</CR:addressbook-query>"#))).unwrap()
    };
    let anyof = f(
        r#"<CR:filter><CR:prop-filter name="FN"><CR:text-match>nobody</CR:text-match></CR:prop-filter><CR:prop-filter name="EMAIL"><CR:text-match match-type="ends-with">acme.example</CR:text-match></CR:prop-filter></CR:filter>"#,
    );
    assert!(card::matches(&card, &anyof), "anyof: the second holds");
    let mut allof = anyof.clone();
    allof.all = true;
    assert!(!card::matches(&card, &allof), "allof: the first does not");
    // Within one prop-filter, text matches are ORed by default.
    let inner_any = f(
        r#"<CR:filter><CR:prop-filter name="FN"><CR:text-match>nobody</CR:text-match><CR:text-match>müller</CR:text-match></CR:prop-filter></CR:filter>"#,
    );
    assert!(card::matches(&card, &inner_any));
    let inner_all = f(
        r#"<CR:filter><CR:prop-filter name="FN" test="allof"><CR:text-match>nobody</CR:text-match><CR:text-match>müller</CR:text-match></CR:prop-filter></CR:filter>"#,
    );
    assert!(!card::matches(&card, &inner_all));
    let params = f(
        r#"<CR:filter><CR:prop-filter name="TEL"><CR:param-filter name="TYPE"><CR:text-match match-type="equals">work</CR:text-match></CR:param-filter></CR:prop-filter></CR:filter>"#,
    );
    assert!(card::matches(&card, &params));
    let starts = f(
        r#"<CR:filter><CR:prop-filter name="FN"><CR:text-match match-type="starts-with" collation="i;unicode-casemap">JÜRGEN</CR:text-match></CR:prop-filter></CR:filter>"#,
    );
    assert!(card::matches(&card, &starts));
    let equals = f(
        r#"<CR:filter><CR:prop-filter name="FN"><CR:text-match match-type="equals">Jürgen</CR:text-match></CR:prop-filter></CR:filter>"#,
    );
    assert!(!card::matches(&card, &equals));
}
