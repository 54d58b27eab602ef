"""Helpers of the list, search, conversation and suggestion tests: mail put in over
SMTP and IMAP APPEND as other clients would, and what a listed page links to."""

from __future__ import annotations

import re
import smtplib
import time

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, imap_login


def smtp_deliver(server: RunningServer, sender: str, rcpt: str, message: bytes) -> None:
    """One message to `rcpt` over the MX listener (port `smtp`), as another server."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
        smtp.sendmail(sender, [rcpt], message)


def wait_for_count(server: RunningServer, user: str, count: int, mailbox: str = "INBOX") -> None:
    """Poll STATUS until `mailbox` holds `count` messages (delivery is asynchronous)."""
    deadline = time.monotonic() + 20
    imap = imap_login(server, user)
    try:
        while True:
            typ, data = imap.status(mailbox, "(MESSAGES)")
            assert typ == "OK", data
            found = int(re.search(rb"MESSAGES (\d+)", data[0] or b"").group(1))  # type: ignore[union-attr]
            if found >= count:
                return
            assert time.monotonic() < deadline, f"{mailbox} of {user} has {found} of {count}"
            time.sleep(0.05)
    finally:
        imap.logout()


def append_many(
    server: RunningServer, user: str, messages: list[bytes], mailbox: str = "INBOX", flags: str = ""
) -> None:
    """APPEND each message over one IMAP connection (a client filling a folder)."""
    imap = imap_login(server, user)
    try:
        for message in messages:
            typ, data = imap.append(mailbox, flags, None, message)
            assert typ == "OK", data
    finally:
        imap.logout()


def imap_uids(
    server: RunningServer, user: str, *criteria: str, mailbox: str = "INBOX"
) -> list[int]:
    """UID SEARCH over IMAP: what a mail client finds for the same key."""
    imap = imap_login(server, user)
    try:
        typ, data = imap.select(mailbox, readonly=True)
        assert typ == "OK", data
        typ, data = imap.uid("SEARCH", "CHARSET", "UTF-8", *criteria)
        assert typ == "OK", data
        return [int(n) for n in (data[0] or b"").split()]
    finally:
        imap.logout()


def listed_uids(page: str) -> list[int]:
    """The UIDs a list page links to (/read?...uid=N), in page order."""
    return [int(n) for n in re.findall(r'href="/read\?[^"]*?uid=(\d+)"', page)]


def link(page: str, rel: str) -> str | None:
    """The href of the pager link with this rel (prev/next), unescaped."""
    match = re.search(r'<a href="([^"]+)" rel="' + rel + '"', page)
    return match.group(1).replace("&amp;", "&") if match else None


def get_ok(client: WebClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.text
