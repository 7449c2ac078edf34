#!/usr/bin/env python3
"""An oracle for the end-to-end tests, independent of Postern's own comparison:
reads pairs of calendar objects or vCards with vobject (Radicale's parser) and says,
for each pair, whether they mean the same: the same components, keyed by kind, UID
and RECURRENCE-ID (a time zone by TZID), each with the same properties (name,
parameters, value; a recurrence rule's parts in any order), nested components
compared whole, and properties that only say
when or by what a copy was written (PRODID, DTSTAMP, LAST-MODIFIED, REV, VERSION of a
vCard) left out.

stdin: a JSON list of [a, b] string pairs. stdout: a JSON list of booleans.
"""
import json
import sys

import vobject

VOLATILE = {"PRODID", "DTSTAMP", "LAST-MODIFIED", "REV", "X-RADICALE-NAME"}
SET_VALUED = {"CATEGORIES", "RESOURCES", "EXDATE", "RDATE", "NICKNAME"}


def prop_entries(line, vcard):
    name = line.name.upper()
    if name in VOLATILE or (vcard and name == "VERSION"):
        return []
    params = []
    for k, vs in sorted(line.params.items()):
        values = sorted(str(v).upper() if k.upper() == "TYPE" else str(v) for v in vs)
        if k.upper() == "TYPE":
            values = sorted(x for v in values for x in v.split(","))
        params.append((k.upper(), tuple(values)))
    value = line.value
    if name in ("RRULE", "EXRULE"):
        # Servers reorder a rule's parts; the rule is the same.
        value = ";".join(sorted(p.upper() for p in str(value).split(";")))
    if isinstance(value, list):
        items = [str(v) for v in value]
    else:
        items = [str(value)]
    if name in SET_VALUED:
        flat = []
        for v in items:
            flat.extend(p.strip() for p in v.split(",") if p.strip())
        return [(name, tuple(params), v) for v in sorted(flat)]
    return [(name, tuple(params), tuple(items))]


def component_entries(comp, vcard):
    out = []
    for line in comp.lines():
        out.extend(prop_entries(line, vcard))
    for child in comp.components():
        out.append(("BEGIN:" + child.name.upper(), tuple(sorted(component_entries(child, vcard)))))
    return sorted(out, key=repr)


def shape(text):
    obj = vobject.readOne(text)
    if obj.name.upper() == "VCARD":
        return {("VCARD",): component_entries(obj, True)}
    shapes = {}
    top = []
    for line in obj.lines():
        top.extend(prop_entries(line, False))
    shapes[("VCALENDAR",)] = sorted(top, key=repr)
    for comp in obj.components():
        kind = comp.name.upper()
        if kind == "VTIMEZONE":
            key = (kind, str(comp.tzid.value))
        else:
            uid = str(comp.uid.value) if hasattr(comp, "uid") else ""
            rid = str(comp.recurrence_id.value) if hasattr(comp, "recurrence_id") else ""
            key = (kind, uid, rid)
        while key in shapes:
            key = key + ("+",)
        shapes[key] = component_entries(comp, False)
    return shapes


def main():
    pairs = json.load(sys.stdin)
    answers = []
    for a, b in pairs:
        try:
            answers.append(a == b or shape(a) == shape(b))
        except Exception:  # an unreadable copy means nothing the other does
            answers.append(a == b)
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
