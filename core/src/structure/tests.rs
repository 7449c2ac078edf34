use super::*;

const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A//B\r\nBEGIN:VEVENT\r\nUID:abc-1\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250106T093000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=5\r\nCATEGORIES:work,team\r\nSUMMARY:Long\r\n  summary\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn reserialised_copies_mean_the_same() {
    let rewritten = "BEGIN:VCALENDAR\nPRODID:-//Radicale//X\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:Long summary\nRRULE:BYDAY=MO;FREQ=WEEKLY;COUNT=5\nCATEGORIES:team\nCATEGORIES:work\nUID:abc-1\nDTSTAMP:20260101T000000Z\nDTSTART:20250106T093000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    assert!(same_meaning(EVENT.as_bytes(), rewritten.as_bytes()));
}

#[test]
fn edits_do_not() {
    let edited = EVENT.replace("Long", "Short");
    assert!(!same_meaning(EVENT.as_bytes(), edited.as_bytes()));
    let moved = EVENT.replace("COUNT=5", "COUNT=6");
    assert!(!same_meaning(EVENT.as_bytes(), moved.as_bytes()));
}

#[test]
fn a_property_moved_between_components_is_a_change() {
    // STATUS:CANCELLED on the series versus on one occurrence: sorted lines are equal.
    let exception = "BEGIN:VEVENT\r\nUID:abc-1\r\nDTSTAMP:20250101T000000Z\r\nRECURRENCE-ID:20250113T093000Z\r\nDTSTART:20250113T093000Z\r\nSUMMARY:Long summary\r\nEND:VEVENT\r\n";
    let on_series = EVENT
        .replace(
            "SUMMARY:Long\r\n  summary\r\n",
            "SUMMARY:Long summary\r\nSTATUS:CANCELLED\r\n",
        )
        .replace("END:VCALENDAR", &format!("{exception}END:VCALENDAR"));
    let on_occurrence = EVENT
        .replace("SUMMARY:Long\r\n  summary\r\n", "SUMMARY:Long summary\r\n")
        .replace(
            "END:VCALENDAR",
            &format!(
                "{}END:VCALENDAR",
                exception.replace("END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT")
            ),
        );
    let mut a: Vec<&str> = on_series.lines().collect();
    let mut b: Vec<&str> = on_occurrence.lines().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same lines, sorted");
    assert!(!same_meaning(
        on_series.as_bytes(),
        on_occurrence.as_bytes()
    ));
}

#[test]
fn alarms_belong_to_their_event() {
    let with_alarm = EVENT.replace(
        "END:VEVENT",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT",
    );
    assert!(!same_meaning(EVENT.as_bytes(), with_alarm.as_bytes()));
    let other_trigger = with_alarm.replace("-PT15M", "-PT30M");
    assert!(!same_meaning(
        with_alarm.as_bytes(),
        other_trigger.as_bytes()
    ));
}

#[test]
fn a_vcard_stored_as_another_version_means_the_same() {
    let v4 = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:c1\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\nTEL;TYPE=work,voice:+1 555 0100\r\nEMAIL;TYPE=home:ann@example.com\r\nNICKNAME:Annie,Lee\r\nEND:VCARD\r\n";
    let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Server//EN\r\nN:Lee;Ann;;;\r\nFN:Ann Lee\r\nUID:c1\r\nTEL;TYPE=WORK,VOICE:+1 555 0100\r\nEMAIL;TYPE=HOME:ann@example.com\r\nNICKNAME:Lee,Annie\r\nREV:20260101T000000Z\r\nEND:VCARD\r\n";
    assert!(same_meaning(v4.as_bytes(), v3.as_bytes()));
    let edited = v3.replace("0100", "0199");
    assert!(!same_meaning(v4.as_bytes(), edited.as_bytes()));
}

#[test]
fn unreadable_copies_are_compared_as_bytes() {
    assert!(same_meaning(b"garbage", b"garbage"));
    assert!(!same_meaning(b"garbage", b"garbage2"));
    assert!(shape(b"").is_none());
}
