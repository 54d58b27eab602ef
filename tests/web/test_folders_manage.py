"""The folder sidebar and the "Manage folders" page, over real HTTP, checked over IMAP.

Pins: the sidebar lists every folder (subscribed or not, unsubscribed ones marked) with
special-use icons that carry a text alternative, sub-folders indented under their
parent; creating (nested with "/"), renaming (children move along), deleting (asks
first and says the messages go for good; INBOX refused) and (un)subscribing are what an
IMAP session then sees, including one that was open before the change; refusals
(existing name, hostile names: control characters, "..", very long) are a form error
with status 400 and change nothing; no CSRF token → 403.
"""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, hidden_fields, imap_login

ALICE = "alice@example.test"


def _imap_names(server: RunningServer, command: str = "LIST") -> set[str]:
    imap = imap_login(server, ALICE)
    try:
        typ, data = imap.list() if command == "LIST" else imap.lsub()
        assert typ == "OK"
        names = set()
        for line in data:
            assert isinstance(line, bytes)
            match = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
            assert match, line
            if b"\\NonExistent" in match.group(1) or b"\\Noselect" in match.group(1):
                continue
            names.add(match.group(2).decode().strip('"'))
        return names
    finally:
        imap.logout()


def _post(client: WebClient, url: str, **fields: str) -> httpx.Response:
    token = hidden_fields(client.get("/folders").text)["csrf"]
    return client.post(url, {"csrf": token, **fields})


def _follow(client: WebClient, reply: httpx.Response) -> str:
    assert reply.status_code == 303, reply.text
    page = client.get(reply.headers["location"])
    assert page.status_code == 200
    return page.text


def test_sidebar_icons_counts_and_nesting(server: RunningServer, alice: WebClient) -> None:
    imap = imap_login(server, ALICE)
    try:
        assert imap.create("Projects/2026")[0] == "OK"  # not subscribed: IMAP CREATE
        assert imap.append("Projects/2026", "", None, b"Subject: q\r\n\r\nx\r\n")[0] == "OK"
    finally:
        imap.logout()
    page = alice.get("/folder?f=INBOX").text
    for text in ("Inbox", "Drafts folder", "Sent folder", "Archive folder", "Junk folder"):
        assert f'role="img" aria-label="{text}"' in page
    assert "<title>Trash folder</title>" in page
    # Order: INBOX, special-use folders, then the rest with children under parents.
    order = [unescape(n) for n in re.findall(r'data-folder="([^"]+)"', page)]
    assert order == ["INBOX", "Drafts", "Sent", "Archive", "Junk", "Trash", "Projects",
                     "Projects/2026"]  # fmt: skip
    child = re.search(r'data-folder="Projects/2026"\s+class="depth-1"', page)
    assert child, "child not indented"
    assert '<span class="name">2026</span>' in page
    assert "(not subscribed)" in page  # shown anyway, and marked
    assert '<span class="count" title="unread">1</span>' in page
    assert '<a href="/folders">Manage folders</a>' in page


def test_create_nested_and_subscribe(server: RunningServer, alice: WebClient) -> None:
    reply = _post(alice, "/folders/create", name="2026/Q1", parent="Archive")
    page = _follow(alice, reply)
    assert "Folder “Archive/2026/Q1” created." in page
    assert {"Archive/2026", "Archive/2026/Q1"} <= _imap_names(server)
    subscribed = _imap_names(server, "LSUB")
    assert {"Archive/2026", "Archive/2026/Q1"} <= subscribed
    reply = _post(alice, "/folders/create", name="Receipts")
    _follow(alice, reply)
    assert "Receipts" in _imap_names(server) and "Receipts" in _imap_names(server, "LSUB")


def test_create_refusals_are_form_errors(server: RunningServer, alice: WebClient) -> None:
    before = _imap_names(server)
    cases = {
        "Archive": "A folder named “Archive” already exists.",
        "inbox": "A folder named “inbox” already exists.",
        "bad\x01name": "control characters",
        "../escape": "'.' or '..' level",
        "a/../b": "'.' or '..' level",
        "x" * 600: "too long",
        "wild*card": "wildcards",
        "  ": "Enter a name.",
        "a//b": "empty level",
    }
    for name, text in cases.items():
        reply = _post(alice, "/folders/create", name=name)
        assert reply.status_code == 400, name
        assert 'class="error" role="alert"' in reply.text
        assert text in unescape(reply.text), name
        assert "\x01" not in reply.text
    assert _imap_names(server) == before


def test_rename_moves_children(server: RunningServer, alice: WebClient) -> None:
    _follow(alice, _post(alice, "/folders/create", name="Old/Child"))
    imap = imap_login(server, ALICE)  # a session open before the change
    try:
        assert imap.select("Old")[0] == "OK"
        page = _follow(alice, _post(alice, "/folders/rename", f="Old", to="Work/New"))
        assert "Folder renamed to “Work/New”." in page
        assert imap.select("Work/New/Child")[0] == "OK"
        assert imap.select("Old")[0] == "NO"
    finally:
        imap.logout()
    names = _imap_names(server)
    assert {"Work/New", "Work/New/Child"} <= names and "Old" not in names
    refused = _post(alice, "/folders/rename", f="Work/New", to="Sent")
    assert refused.status_code == 400 and "A folder named “Sent” already exists." in refused.text
    refused = _post(alice, "/folders/rename", f="INBOX", to="Elsewhere")
    assert refused.status_code == 400 and "INBOX keeps its name" in refused.text
    refused = _post(alice, "/folders/rename", f="Work/New", to="Work/New/Child/x")
    assert refused.status_code == 400 and "into itself" in refused.text
    refused = _post(alice, "/folders/rename", f="Nowhere", to="Somewhere")
    assert refused.status_code == 400 and "no folder named “Nowhere”" in refused.text


def test_delete_asks_then_deletes(server: RunningServer, alice: WebClient) -> None:
    _follow(alice, _post(alice, "/folders/create", name="Old/Child"))
    imap = imap_login(server, ALICE)
    try:
        for n in range(2):
            assert imap.append("Old", "", None, f"Subject: {n}\r\n\r\nx\r\n".encode())[0] == "OK"
    finally:
        imap.logout()
    ask = _post(alice, "/folders/delete", f="Old")
    assert ask.status_code == 200
    assert "Its 2 messages will be deleted for good, not moved to Trash" in ask.text
    assert "Its sub-folders stay: Old/Child." in ask.text
    assert "Old" in _imap_names(server)  # asking changed nothing
    page = _follow(alice, _post(alice, "/folders/delete", f="Old", confirm="yes"))
    assert "Folder “Old” deleted." in page
    names = _imap_names(server)
    assert "Old" not in names and "Old/Child" in names
    refused = _post(alice, "/folders/delete", f="INBOX", confirm="yes")
    assert refused.status_code == 400 and "INBOX cannot be deleted" in refused.text
    assert "INBOX" in _imap_names(server)


def test_subscribe_and_unsubscribe(server: RunningServer, alice: WebClient) -> None:
    page = _follow(alice, _post(alice, "/folders/subscribe", f="Junk", subscribe="0"))
    assert "Unsubscribed from “Junk”" in page
    assert "Junk" not in _imap_names(server, "LSUB")
    sidebar = alice.get("/folder?f=INBOX").text
    assert re.search(r'<li class=" unsubscribed">\s*<a href="/folder\?f=Junk"', sidebar)
    _follow(alice, _post(alice, "/folders/subscribe", f="Junk", subscribe="1"))
    assert "Junk" in _imap_names(server, "LSUB")


def test_manage_page_and_csrf(server: RunningServer, alice: WebClient) -> None:
    page = alice.get("/folders")
    assert page.status_code == 200
    for name in ("INBOX", "Drafts", "Sent", "Archive", "Junk", "Trash"):
        assert f'<input type="hidden" name="f" value="{name}">' in page.text or name == "INBOX"
    # INBOX has no rename or delete form.
    assert '<input type="hidden" name="f" value="INBOX">' not in page.text
    assert alice.post("/folders/create", {"name": "NoToken"}).status_code == 403
    assert alice.post("/folders/delete", {"f": "Junk", "confirm": "yes"}).status_code == 403
    assert alice.post("/folders/rename", {"f": "Junk", "to": "Spam"}).status_code == 403
    assert "NoToken" not in _imap_names(server) and "Junk" in _imap_names(server)
    with WebClient(server) as anonymous:
        assert anonymous.get("/folders").status_code == 303
