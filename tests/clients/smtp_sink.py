#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) standing in for the corporate one in the e2e tests.

    smtp_sink.py PORT DIR

Takes AUTH PLAIN/LOGIN as alice / alicepw (plain text, loopback only), and keeps
each message it accepts in DIR as N.json: {"mail_from", "rcpt_tos", "content"
(base64 of the bytes as received, dots undone)}. A recipient with "reject" in it is
refused for good (550), one with "later" for now (451).
"""

import base64
import json
import os
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address:
            return "550 5.1.1 no such user here"
        if "later" in address:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        path = os.path.join(self.directory, "%d.json" % self.n)
        with open(path + ".tmp", "w") as f:
            json.dump(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "content": base64.b64encode(envelope.original_content).decode(),
                },
                f,
            )
        os.rename(path + ".tmp", path)
        return "250 2.0.0 accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alice" and auth_data.password == b"alicepw"
    return AuthResult(success=ok)


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(
        Sink(directory),
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
