use proptest::prelude::*;

use super::*;
use crate::structure::same_meaning;

const BASE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A//B\r\nBEGIN:VEVENT\r\nUID:m-1\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250106T093000Z\r\nDTEND:20250106T103000Z\r\nSUMMARY:Standup\r\nLOCATION:Room 1\r\nATTENDEE;CN=Ann:mailto:ann@example.com\r\nATTENDEE;CN=Bob:mailto:bob@example.com\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:Soon\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn merged(base: &str, ours: &str, theirs: &str) -> String {
    let out = three_way(base.as_bytes(), ours.as_bytes(), theirs.as_bytes())
        .expect("all three readable")
        .expect("no conflict");
    String::from_utf8(out).unwrap()
}

fn has(text: &str, line: &str) -> bool {
    text.split("\r\n").any(|l| l == line)
}

#[test]
fn edits_to_different_properties_both_survive() {
    let ours = BASE.replace("SUMMARY:Standup", "SUMMARY:Daily standup");
    let theirs = BASE.replace("LOCATION:Room 1", "LOCATION:Room 2");
    let m = merged(BASE, &ours, &theirs);
    assert!(has(&m, "SUMMARY:Daily standup"), "{m}");
    assert!(has(&m, "LOCATION:Room 2"), "{m}");
    assert!(!has(&m, "LOCATION:Room 1") && !has(&m, "SUMMARY:Standup"));
}

#[test]
fn the_same_property_changed_differently_is_a_conflict() {
    let ours = BASE.replace("SUMMARY:Standup", "SUMMARY:A");
    let theirs = BASE.replace("SUMMARY:Standup", "SUMMARY:B");
    let err = three_way(BASE.as_bytes(), ours.as_bytes(), theirs.as_bytes())
        .unwrap()
        .unwrap_err();
    assert!(err.what.contains("SUMMARY"), "{err:?}");
}

#[test]
fn the_same_change_on_both_sides_is_no_conflict() {
    let both = BASE.replace("SUMMARY:Standup", "SUMMARY:Same");
    let m = merged(BASE, &both, &both);
    assert!(same_meaning(m.as_bytes(), both.as_bytes()), "{m}");
}

#[test]
fn attendees_merge_as_a_set() {
    // Ours adds Cy; theirs removes Bob and adds Dee.
    let ours = BASE.replace("RRULE:", "ATTENDEE;CN=Cy:mailto:cy@example.com\r\nRRULE:");
    let theirs = BASE
        .replace("ATTENDEE;CN=Bob:mailto:bob@example.com\r\n", "")
        .replace("RRULE:", "ATTENDEE;CN=Dee:mailto:dee@example.com\r\nRRULE:");
    let m = merged(BASE, &ours, &theirs);
    for who in ["ann", "cy", "dee"] {
        assert!(
            m.contains(&format!("mailto:{who}@example.com")),
            "{who} in {m}"
        );
    }
    assert!(!m.contains("bob@"), "{m}");
}

#[test]
fn exdates_and_categories_merge_as_sets() {
    let ours = BASE.replace(
        "RRULE:",
        "EXDATE:20250113T093000Z\r\nCATEGORIES:work\r\nRRULE:",
    );
    let theirs = BASE.replace("RRULE:", "EXDATE:20250120T093000Z\r\nRRULE:");
    let m = merged(BASE, &ours, &theirs);
    assert!(
        has(&m, "EXDATE:20250113T093000Z") && has(&m, "EXDATE:20250120T093000Z"),
        "{m}"
    );
    assert!(has(&m, "CATEGORIES:work"));
}

#[test]
fn an_exception_added_on_one_side_and_a_series_edit_on_the_other_both_survive() {
    let exception = "BEGIN:VEVENT\r\nUID:m-1\r\nDTSTAMP:20250102T000000Z\r\nRECURRENCE-ID:20250113T093000Z\r\nDTSTART:20250113T110000Z\r\nDTEND:20250113T120000Z\r\nSUMMARY:Standup (moved)\r\nEND:VEVENT\r\n";
    let ours = BASE.replace("END:VCALENDAR", &format!("{exception}END:VCALENDAR"));
    let theirs = BASE.replace("LOCATION:Room 1", "LOCATION:Room 9");
    let m = merged(BASE, &ours, &theirs);
    assert!(has(&m, "RECURRENCE-ID:20250113T093000Z"), "{m}");
    assert!(has(&m, "LOCATION:Room 9"), "{m}");
    assert_eq!(m.matches("BEGIN:VEVENT").count(), 2);
}

#[test]
fn a_component_deleted_on_one_side_and_edited_on_the_other_is_a_conflict() {
    let exception = "BEGIN:VEVENT\r\nUID:m-1\r\nRECURRENCE-ID:20250113T093000Z\r\nDTSTART:20250113T110000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\n";
    let base = BASE.replace("END:VCALENDAR", &format!("{exception}END:VCALENDAR"));
    let ours = BASE.to_string(); // the exception removed
    let theirs = base.replace("SUMMARY:x", "SUMMARY:y");
    let r = three_way(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()).unwrap();
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn stamps_take_the_later_and_sequence_the_larger() {
    let ours = BASE.replace("SUMMARY:Standup", "SUMMARY:X").replace(
        "DTSTAMP:20250101T000000Z",
        "DTSTAMP:20250301T000000Z\r\nSEQUENCE:1",
    );
    let theirs = BASE.replace("LOCATION:Room 1", "LOCATION:Y").replace(
        "DTSTAMP:20250101T000000Z",
        "DTSTAMP:20250201T000000Z\r\nSEQUENCE:3",
    );
    let m = merged(BASE, &ours, &theirs);
    assert!(
        has(&m, "DTSTAMP:20250301T000000Z") && has(&m, "SEQUENCE:3"),
        "{m}"
    );
}

#[test]
fn alarms_merge_as_whole_blocks() {
    let extra =
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:Now\r\nEND:VALARM\r\n";
    let ours = BASE.replace("END:VEVENT", &format!("{extra}END:VEVENT"));
    let theirs = BASE.replace("SUMMARY:Standup", "SUMMARY:Other");
    let m = merged(BASE, &ours, &theirs);
    assert_eq!(m.matches("BEGIN:VALARM").count(), 2, "{m}");
    assert!(has(&m, "SUMMARY:Other"));
}

const CARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c-1\r\nFN:Ann Example\r\nN:Example;Ann;;;\r\nEMAIL;TYPE=work:ann@work.example\r\nTEL;TYPE=cell:+1 555 0100\r\nORG:Acme\r\nEND:VCARD\r\n";

#[test]
fn vcards_merge_per_property() {
    let ours = CARD.replace("ORG:Acme", "ORG:Acme Corp");
    let theirs = CARD
        .replace(
            "TEL;TYPE=cell:+1 555 0100\r\n",
            "TEL;TYPE=cell:+1 555 0100\r\nTEL;TYPE=home:+1 555 0199\r\n",
        )
        .replace("FN:Ann Example", "FN:Ann E.");
    let m = merged(CARD, &ours, &theirs);
    assert!(has(&m, "ORG:Acme Corp") && has(&m, "FN:Ann E."), "{m}");
    assert!(
        has(&m, "TEL;TYPE=home:+1 555 0199") && has(&m, "TEL;TYPE=cell:+1 555 0100"),
        "{m}"
    );
    assert!(
        m.starts_with("BEGIN:VCARD\r\n") && m.ends_with("END:VCARD\r\n"),
        "{m}"
    );
}

#[test]
fn reserialisation_alone_is_not_an_edit() {
    // The back end re-serialised its copy (parameter case, rule part order); ours edited.
    let theirs = BASE
        .replace("ATTENDEE;CN=Ann:", "ATTENDEE;cn=Ann:")
        .replace(
            "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10",
            "RRULE:BYDAY=MO;FREQ=WEEKLY;COUNT=10",
        );
    let ours = BASE.replace("SUMMARY:Standup", "SUMMARY:Mine");
    let m = merged(BASE, &ours, &theirs);
    assert!(has(&m, "SUMMARY:Mine"), "{m}");
}

#[test]
fn objects_that_are_not_calendars_or_cards_are_not_merged() {
    assert!(three_way(b"hello", BASE.as_bytes(), BASE.as_bytes()).is_none());
    assert!(three_way(CARD.as_bytes(), BASE.as_bytes(), BASE.as_bytes()).is_none());
    assert!(
        three_way(
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
            BASE.as_bytes(),
            BASE.as_bytes()
        )
        .is_none()
    );
}

/// An edit the property tests make to one side of the base event.
#[derive(Debug, Clone)]
enum Edit {
    Set(&'static str, String),
    Drop(&'static str),
    AddAttendee(String),
    DropAttendee(&'static str),
    AddException(u8),
}

/// Single-valued properties a generated edit may touch.
const EDITABLE: &[&str] = &["SUMMARY", "LOCATION", "DESCRIPTION", "STATUS", "DTEND"];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (proptest::sample::select(EDITABLE), "[a-z]{1,8}").prop_map(|(p, v)| Edit::Set(p, v)),
        proptest::sample::select(EDITABLE).prop_map(Edit::Drop),
        "[a-z]{1,6}".prop_map(Edit::AddAttendee),
        proptest::sample::select(&["ann", "bob"][..]).prop_map(Edit::DropAttendee),
        (0u8..5).prop_map(Edit::AddException),
    ]
}

const ALARM: &str =
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:Soon\r\nEND:VALARM\r\n";

/// The base event with `edits` applied.
fn apply(edits: &[Edit]) -> String {
    let mut master: Vec<String> = BASE
        .split("\r\n")
        .skip_while(|l| *l != "BEGIN:VEVENT")
        .skip(1)
        .take_while(|l| *l != "BEGIN:VALARM")
        .map(str::to_string)
        .collect();
    let mut exceptions: BTreeMap<u8, String> = BTreeMap::new();
    for e in edits {
        match e {
            Edit::Set(p, v) => {
                let value = if *p == "DTEND" {
                    format!("2025010{}T1{}0000Z", v.len() % 9 + 1, v.len() % 10)
                } else {
                    v.clone()
                };
                let line = format!("{p}:{value}");
                match master.iter().position(|l| prop_name(l) == *p) {
                    Some(i) => master[i] = line,
                    None => master.push(line),
                }
            }
            Edit::Drop(p) => master.retain(|l| prop_name(l) != *p),
            Edit::AddAttendee(who) => {
                let line = format!("ATTENDEE:mailto:{who}@x.example");
                if !master.contains(&line) {
                    master.push(line);
                }
            }
            Edit::DropAttendee(who) => master.retain(|l| !l.contains(&format!("mailto:{who}@"))),
            Edit::AddException(n) => {
                let day = n + 1;
                exceptions.insert(
                    *n,
                    format!(
                        "BEGIN:VEVENT\r\nUID:m-1\r\nRECURRENCE-ID:202502{day:02}T093000Z\r\nDTSTART:202502{day:02}T120000Z\r\nSUMMARY:moved {n}\r\nEND:VEVENT\r\n"
                    ),
                );
            }
        }
    }
    let mut out =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A//B\r\nBEGIN:VEVENT\r\n");
    for l in &master {
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str(ALARM);
    out.push_str("END:VEVENT\r\n");
    for x in exceptions.values() {
        out.push_str(x);
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// The parts a side's edits touched.
fn touched(edits: &[Edit]) -> BTreeSet<String> {
    edits
        .iter()
        .map(|e| match e {
            Edit::Set(p, _) | Edit::Drop(p) => p.to_string(),
            Edit::AddAttendee(w) => format!("ATTENDEE {w}"),
            Edit::DropAttendee(w) => format!("ATTENDEE {w}"),
            Edit::AddException(n) => format!("EXCEPTION {n}"),
        })
        .collect()
}

/// A text's content lines in canonical form, structural lines left out.
fn lines_of(text: &str) -> BTreeSet<String> {
    text.split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with("BEGIN:") && !l.starts_with("END:"))
        .map(canonical)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The same three inputs give the same bytes, every time.
    #[test]
    fn merge_is_deterministic(a in proptest::collection::vec(edit(), 0..6), b in proptest::collection::vec(edit(), 0..6)) {
        let (ours, theirs) = (apply(&a), apply(&b));
        let one = three_way(BASE.as_bytes(), ours.as_bytes(), theirs.as_bytes());
        let two = three_way(BASE.as_bytes(), ours.as_bytes(), theirs.as_bytes());
        prop_assert_eq!(one, two);
    }

    /// One side unchanged: the merge is the other side, whatever it did.
    #[test]
    fn an_unchanged_side_yields_the_other(a in proptest::collection::vec(edit(), 0..8)) {
        let (base, ours) = (apply(&[]), apply(&a));
        let m = three_way(base.as_bytes(), ours.as_bytes(), base.as_bytes()).unwrap().unwrap();
        prop_assert!(same_meaning(&m, ours.as_bytes()), "{}", String::from_utf8_lossy(&m));
        let m = three_way(base.as_bytes(), base.as_bytes(), ours.as_bytes()).unwrap().unwrap();
        prop_assert!(same_meaning(&m, ours.as_bytes()), "{}", String::from_utf8_lossy(&m));
    }

    /// Edits to disjoint parts both survive and nothing is lost: every line a side
    /// added is in the merge, no line a side removed comes back, and every line of
    /// the merge comes from one of the sides.
    #[test]
    fn non_overlapping_edits_both_survive(a in proptest::collection::vec(edit(), 0..6), b in proptest::collection::vec(edit(), 0..6)) {
        prop_assume!(touched(&a).is_disjoint(&touched(&b)));
        let (base, ours, theirs) = (apply(&[]), apply(&a), apply(&b));
        let m = three_way(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()).unwrap();
        let m = String::from_utf8(m.expect("disjoint edits never conflict")).unwrap();
        let (lb, lo, lt, lm) = (lines_of(&base), lines_of(&ours), lines_of(&theirs), lines_of(&m));
        for added in lo.difference(&lb).chain(lt.difference(&lb)) {
            prop_assert!(lm.contains(added), "{} lost from\n{}", added, m);
        }
        for removed in lb.difference(&lo).chain(lb.difference(&lt)) {
            prop_assert!(!lm.contains(removed), "{} came back in\n{}", removed, m);
        }
        for line in &lm {
            prop_assert!(lo.contains(line) || lt.contains(line), "{} invented in\n{}", line, m);
        }
        // The same merge whichever side is "ours".
        let swapped = three_way(base.as_bytes(), theirs.as_bytes(), ours.as_bytes()).unwrap().unwrap();
        prop_assert!(same_meaning(&swapped, m.as_bytes()));
    }

    /// Merging a side with itself is that side.
    #[test]
    fn merging_identical_sides_is_that_side(a in proptest::collection::vec(edit(), 0..8)) {
        let (base, ours) = (apply(&[]), apply(&a));
        let m = three_way(base.as_bytes(), ours.as_bytes(), ours.as_bytes()).unwrap().unwrap();
        prop_assert!(same_meaning(&m, ours.as_bytes()));
    }
}
