"""PostgreSQL goes away under a running node, then comes back (issue 17's fault test).

The outage is made the way a server restart looks to a node: every open connection to
the node's database ends (57P01, admin shutdown) and new ones are refused until it is
over (`tests.pg.cut_off` / `restore`). Only this test's database is touched, so the
tests running beside it in other xdist workers keep their server.

While it lasts, every command that needs the store fails with the protocols'
temporary errors (SMTP 451 4.3.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) and the
node stays up; afterwards the node reconnects by itself and every message acknowledged
before the outage is still there.
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from tests import pg
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.mtas import wait_until

pytestmark = [pytest.mark.parametrize("e2e_backend", ["postgres"], indirect=True)]


def note(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "carol@other.test"
    msg["To"] = "alice@example.test"
    msg["Subject"] = f"note {n}"
    msg["Message-ID"] = f"<{n}.outage@other.test>"
    msg.set_content(f"note {n}\n")
    return msg


def send(server: RunningServer, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "mx.other.test", timeout=30) as s:
        s.send_message(note(n))


@pytest.fixture
def outage(server: RunningServer) -> Iterator[str]:
    """The server's database DSN; restored at the end whatever happens."""
    dsn = server.config.store_dsn
    yield dsn
    pg.restore(dsn)


def test_outage_gives_temporary_errors_then_recovers(server: RunningServer, outage: str) -> None:
    for n in range(3):
        send(server, n)  # acknowledged with 250 before the outage
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        check_outage(server, outage, imap)
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.shutdown()


def check_outage(server: RunningServer, outage: str, imap: imaplib.IMAP4) -> None:
    imap.login("alice@example.test", PASSWORD)
    typ, data = imap.select("INBOX")
    assert (typ, data) == ("OK", [b"3"])

    pg.cut_off(outage)

    # SMTP: the recipient cannot be looked up or the message stored: 451 4.3.0.
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "mx.other.test", timeout=30) as s:
        s.ehlo()
        assert s.mail("carol@other.test")[0] == 250
        code, text = s.rcpt("alice@example.test")
        assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
    # IMAP: the open session's next store command fails temporarily, the session lives.
    typ, data = imap.status("INBOX", "(MESSAGES UIDNEXT)")
    assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]"), (typ, data)
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]"), (typ, data)
    # POP3: a new session cannot open the maildrop.
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    pop.user("alice@example.test")
    with pytest.raises(poplib.error_proto) as refused:
        pop.pass_(PASSWORD)
    assert b"[SYS/TEMP]" in refused.value.args[0], refused.value
    pop.close()

    pg.restore(outage)

    # The node reconnects by itself: the same IMAP session works again, and the three
    # acknowledged messages are all there; mail is accepted again.
    def status_ok() -> bool:
        typ, _data = imap.status("INBOX", "(MESSAGES)")
        return typ == "OK"

    wait_until(status_ok, "IMAP STATUS works again after the outage", timeout=20)
    send(server, 3)
    imap.noop()  # RFC 9051 §6.1.2: the new message is announced to the session
    typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK"
    ids = sorted(part[1].strip().decode() for part in data if isinstance(part, tuple) and part[1])
    assert ids == [f"Message-ID: <{n}.outage@other.test>" for n in range(4)], ids
    imap.logout()
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    pop.user("alice@example.test")
    pop.pass_(PASSWORD)
    assert pop.stat()[0] == 4
    pop.quit()
