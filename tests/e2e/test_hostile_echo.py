"""Client-chosen text echoed back or logged (issue 16 item 5): an EHLO name with terminal
control characters (ESC, VT, DEL) comes back printable in the EHLO reply and in the
Received field of the message it sent, and the server's log escapes it."""

from __future__ import annotations

import logging
import smtplib

from pillarbox.log import RedactingFilter
from tests.e2e.conftest import RunningServer
from tests.e2e.test_smtp_helpers import headers_of, mailbox

HOSTILE = "evil\x1b[31m\x0bname\x7f.test"
MSG = b"From: x@remote.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


def test_ehlo_name_is_printable_in_reply_and_received(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as c:
        code, reply = c.ehlo(HOSTILE)
        assert code == 250
        first = reply.split(b"\n")[0]
        assert first == b"mail.example.test greets evil?[31m?name?.test", first
        assert all(0x20 <= b < 0x7F for b in reply.replace(b"\n", b"")), reply
        assert c.sendmail("x@remote.test", ["bob@example.test"], MSG) == {}
    (stored,) = mailbox(server, "bob@example.test")
    received = dict(headers_of(stored))["Received"]
    assert received.startswith("from evil?[31m?name?.test ([127.0.0.1])"), received


def test_log_lines_escape_control_characters() -> None:
    """The redacting filter on the server's handlers turns controls into escapes."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "helo %s", (HOSTILE,), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "helo evil\\x1b[31m\\x0bname\\x7f.test"
