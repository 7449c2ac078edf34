#!/usr/bin/env python3
"""The demo's corporate SMTP server: a real SMTP server (aiosmtpd) that delivers
mail for @corp.example into Dovecot over LMTP, as a corporate MTA would.

    demo_smtp.py PORT LMTP_PORT

Takes AUTH PLAIN/LOGIN as alice / alicepw (plain text, loopback only). A recipient
at corp.example is delivered to the Dovecot user named by its local part; any other
recipient is refused for good (550), so the sender gets a bounce: this demo has no
way out to the internet.
"""

import smtplib
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

DOMAIN = "corp.example"


class Deliver:
    def __init__(self, lmtp_port):
        self.lmtp_port = lmtp_port

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not address.lower().endswith("@" + DOMAIN):
            return "550 5.7.1 this demo delivers only to @%s" % DOMAIN
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        try:
            with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
                refused = lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        except smtplib.SMTPRecipientsRefused as e:
            return "550 5.1.1 no such user here: %s" % ", ".join(e.recipients)
        except (OSError, smtplib.SMTPException) as e:
            return "451 4.3.0 delivery failed for now: %s" % e
        if refused:
            return "250 2.0.0 delivered, except to %s" % ", ".join(refused)
        return "250 2.0.0 delivered"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alice" and auth_data.password == b"alicepw"
    return AuthResult(success=ok)


def main():
    port, lmtp_port = int(sys.argv[1]), int(sys.argv[2])
    controller = Controller(
        Deliver(lmtp_port),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
        decode_data=False,
    )
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
