#!/usr/bin/env python3
"""A real IMAP client (Python's imaplib) run by the e2e tests against the gateway.

    imap_client.py HOST PORT STEPS_JSON

STEPS_JSON is a list of steps, run in order on one connection:
  {"login": ["alice@acme", "password"]}
  {"authenticate_plain": ["alice@acme", "password"]}
  {"call": "select", "args": ["INBOX"]}      any imaplib method, with its arguments
  {"uid": ["FETCH", "1:*", "(UID FLAGS)"]}   imaplib's uid()
  {"append": ["INBOX", "(\\Draft)", "message text"]}
  {"idle": 30}                               IDLE until the first untagged response
                                             (prints "idling" once the server accepted)
  {"untagged": "EXISTS"}                     imaplib's collected untagged responses
  {"capabilities": true}
  {"starttls": "/path/to/ca.pem"}           STARTTLS, checking the certificate

Each step's result is printed as one JSON line: {"typ": ..., "data": ...}. Bytes are
given as latin-1 strings (lossless), a literal as [prefix, bytes]. An error in a step
is printed as {"error": ...} and ends the run with status 1.
"""

import imaplib
import json
import socket
import sys
import time


def plain(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def idle(conn, timeout):
    tag = conn._new_tag()
    conn.send(tag + b" IDLE\r\n")
    line = conn.readline()
    if not line.startswith(b"+"):
        raise RuntimeError("IDLE refused: %r" % line)
    print(json.dumps({"idling": True}), flush=True)
    conn.sock.settimeout(timeout)
    started = time.monotonic()
    try:
        got = conn.readline()
    except socket.timeout:
        got = b""
    waited = time.monotonic() - started
    conn.sock.settimeout(None)
    conn.send(b"DONE\r\n")
    rest = []
    while True:
        line = conn.readline()
        if line.startswith(tag):
            break
        rest.append(line)
    return {"typ": "OK", "data": plain([got] + rest), "waited": waited}


def main():
    host, port, steps = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    conn = imaplib.IMAP4(host, port)
    for step in steps:
        try:
            if "login" in step:
                typ, data = conn.login(*step["login"])
                out = {"typ": typ, "data": plain(data)}
            elif "authenticate_plain" in step:
                user, password = step["authenticate_plain"]
                typ, data = conn.authenticate(
                    "PLAIN", lambda _: ("\0%s\0%s" % (user, password)).encode()
                )
                out = {"typ": typ, "data": plain(data)}
            elif "call" in step:
                typ, data = getattr(conn, step["call"])(*step.get("args", []))
                out = {"typ": typ, "data": plain(data)}
            elif "append" in step:
                mailbox, flags, text = step["append"]
                typ, data = conn.append(mailbox, flags, None, text.encode("latin-1"))
                out = {"typ": typ, "data": plain(data)}
            elif "uid" in step:
                typ, data = conn.uid(*step["uid"])
                out = {"typ": typ, "data": plain(data)}
            elif "idle" in step:
                out = idle(conn, step["idle"])
            elif "untagged" in step:
                out = {"typ": "OK", "data": plain(conn.untagged_responses.pop(step["untagged"], []))}
            elif "starttls" in step:
                import ssl
                typ, data = conn.starttls(ssl.create_default_context(cafile=step["starttls"]))
                out = {"typ": typ, "data": plain(data)}
            elif "capabilities" in step:
                out = {"typ": "OK", "data": list(conn.capabilities)}
            elif "raw" in step:
                tag = conn._new_tag()
                conn.send(tag + b" " + step["raw"].encode() + b"\r\n")
                lines = []
                while True:
                    line = conn.readline()
                    lines.append(line)
                    if line.startswith(tag):
                        break
                out = {"typ": "OK", "data": plain(lines)}
            else:
                raise ValueError("unknown step %r" % step)
        except Exception as e:  # the test reads the reason
            print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
            sys.exit(1)
        print(json.dumps(out), flush=True)
    try:
        conn.logout()
    except Exception:
        pass


if __name__ == "__main__":
    main()
