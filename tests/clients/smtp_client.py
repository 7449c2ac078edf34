#!/usr/bin/env python3
"""A real SMTP client (Python's smtplib) run by the e2e tests against the gateway's
submission port.

    smtp_client.py HOST PORT STEPS_JSON

Steps, run in order on one connection:
  {"ehlo": "client.example"}
  {"starttls": "/path/to/ca.pem"}                  STARTTLS, checking the certificate
  {"login": ["alice@acme", "password"]}          AUTH (PLAIN, else LOGIN)
  {"auth_login": ["alice@acme", "password"]}      AUTH LOGIN explicitly
  {"send": ["from@x", ["to@y"], "message text"]}  MAIL, RCPT, DATA
  {"cmd": "MAIL FROM:<x@y>"}                      one raw command

Each step prints one JSON line: {"code": N, "text": "..."} (for "send", the code of
the step that failed, or 250). A connection that breaks prints {"error": ...}.
"""

import json
import smtplib
import sys


def main():
    host, port, steps = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    s = smtplib.SMTP(host, port, timeout=60)
    for step in steps:
        try:
            if "ehlo" in step:
                code, text = s.ehlo(step["ehlo"])
                out = {"code": code, "text": text.decode("latin-1"), "features": sorted(s.esmtp_features)}
            elif "starttls" in step:
                import ssl
                ctx = ssl.create_default_context(cafile=step["starttls"])
                code, text = s.starttls(context=ctx)
                out = {"code": code, "text": text.decode("latin-1")}
            elif "login" in step:
                code, text = s.login(*step["login"])
                out = {"code": code, "text": text.decode("latin-1")}
            elif "auth_login" in step:
                user, password = step["auth_login"]
                s.user, s.password = user, password
                code, text = s.auth("LOGIN", s.auth_login)
                out = {"code": code, "text": text.decode("latin-1")}
            elif "send" in step:
                sender, rcpts, text = step["send"]
                refused = s.sendmail(sender, rcpts, text.encode("utf-8"))
                out = {"code": 250, "text": "sent", "refused": {k: [v[0], v[1].decode("latin-1")] for k, v in refused.items()}}
            elif "cmd" in step:
                code, text = s.docmd(step["cmd"])
                out = {"code": code, "text": text.decode("latin-1")}
            else:
                raise ValueError("unknown step %r" % step)
        except smtplib.SMTPResponseException as e:
            out = {"code": e.smtp_code, "text": e.smtp_error.decode("latin-1") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)}
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            out = {"code": code, "text": text.decode("latin-1")}
        except Exception as e:
            print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
            sys.exit(1)
        print(json.dumps(out), flush=True)
    try:
        s.quit()
    except Exception:
        pass


if __name__ == "__main__":
    main()
