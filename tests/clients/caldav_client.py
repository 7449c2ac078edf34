#!/usr/bin/env python3
"""Drives the gateway's CalDAV endpoint with python-caldav, as a remote user would.

usage: caldav_client.py URL USER PASSWORD STEP [ARGS...]
Steps print one JSON line (results) and exit non-zero on any failure:
  discover                      -> {"principal", "calendars": [{"name", "url"}]}
  list CAL                      -> {"uids": [...]}
  create CAL UID SUMMARY        -> {"url"}
  update CAL UID SUMMARY        -> {}
  delete CAL UID                -> {}
  sync CAL [TOKEN]              -> {"token", "uids": [...], "count"}
  search CAL START END          -> {"uids": [...]}   (time-range search, UTC YYYYMMDD)
  mkcalendar NAME ID            -> {"url"}
  delcalendar NAME              -> {}
"""
import json
import sys
from datetime import datetime, timezone

import caldav


def event(uid, summary):
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//python-caldav test//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
        "DTSTART:20250601T100000Z\r\nDTEND:20250601T110000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def calendar(principal, name):
    for c in principal.calendars():
        if c.get_display_name() == name or str(c.url).rstrip("/").endswith("/" + name):
            return c
    raise SystemExit(f"no calendar {name!r}")


def uid_of(obj):
    obj.load()
    return str(obj.icalendar_component["uid"])


def main():
    url, user, password, step, *args = sys.argv[1:]
    client = caldav.DAVClient(url=url, username=user, password=password)
    principal = client.principal()
    out = {}
    if step == "discover":
        out["principal"] = str(principal.url)
        out["calendars"] = [{"name": c.get_display_name(), "url": str(c.url)} for c in principal.calendars()]
    elif step == "list":
        out["uids"] = sorted(uid_of(e) for e in calendar(principal, args[0]).events())
    elif step == "create":
        ev = calendar(principal, args[0]).save_event(event(args[1], args[2]))
        out["url"] = str(ev.url)
    elif step == "update":
        ev = calendar(principal, args[0]).event_by_uid(args[1])
        ev.data = event(args[1], args[2])
        ev.save()
    elif step == "delete":
        calendar(principal, args[0]).event_by_uid(args[1]).delete()
    elif step == "sync":
        cal = calendar(principal, args[0])
        token = args[1] if len(args) > 1 else None
        objs = cal.objects_by_sync_token(sync_token=token, load_objects=True)
        out["token"] = objs.sync_token
        out["uids"] = sorted(uid_of(o) for o in objs if o.data)
        out["count"] = len(list(objs))
    elif step == "search":
        cal = calendar(principal, args[0])
        start = datetime.strptime(args[1], "%Y%m%d").replace(tzinfo=timezone.utc)
        end = datetime.strptime(args[2], "%Y%m%d").replace(tzinfo=timezone.utc)
        found = cal.search(start=start, end=end, event=True, expand=False)
        out["uids"] = sorted(uid_of(e) for e in found)
    elif step == "mkcalendar":
        cal = principal.make_calendar(name=args[0], cal_id=args[1])
        out["url"] = str(cal.url)
    elif step == "delcalendar":
        calendar(principal, args[0]).delete()
    else:
        raise SystemExit(f"unknown step {step}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
