"""Actions on selected messages (POST /messages/act), over real HTTP, checked over IMAP.

Pins: the list has a checkbox per row in the toolbar's form; read/unread/flag set the
flags an IMAP session then sees; delete moves to Trash and, in Trash, deletes exactly
the selected UIDs for good (other \\Deleted messages stay); move and archive land in the
folder; junk / not junk move to Junk / INBOX and set $Junk / $NotJunk (clearing the
other); afterwards the browser is back on the same page of the folder with a notice;
all messages of one action cost one flag call, never one per message; a stale
UIDVALIDITY changes nothing and says so; another account's UIDs are never touched; a
request without the CSRF token is refused (403); the message page's own buttons post
to the same endpoint and return to the folder.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append, hidden_fields, imap_login

ALICE = "alice@example.test"


def _message(n: int) -> bytes:
    return f"From: bob@example.test\r\nSubject: note {n}\r\n\r\nbody {n}\r\n".encode()


def _appended(server: RunningServer, count: int, mailbox: str = "INBOX") -> list[int]:
    imap = imap_login(server, ALICE)
    try:
        uids = []
        for n in range(count):
            typ, data = imap.append(mailbox, "", None, _message(n))
            assert typ == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0])
            assert match
            uids.append(int(match.group(1)))
        return uids
    finally:
        imap.logout()


def _toolbar(page: str) -> dict[str, str]:
    """The hidden fields of the list's toolbar form, as the browser would send them."""
    match = re.search(r'<form id="list-actions".*?</form>', page, re.S)
    assert match, "no toolbar"
    return {k: unescape(v) for k, v in hidden_fields(match.group(0)).items()}


def act(
    client: WebClient,
    uids: list[int],
    action: str,
    *,
    page_url: str = "/folder?f=INBOX",
    **extra: str,
) -> httpx.Response:
    """Tick `uids` on the page at `page_url` and press the toolbar's `action` button."""
    page = client.get(page_url)
    assert page.status_code == 200
    fields: dict[str, Any] = {**_toolbar(page.text), "action": action, **extra}
    fields["uid"] = [str(u) for u in uids]
    return client.http.post("/messages/act", data=fields)


def _follow(client: WebClient, reply: httpx.Response) -> str:
    assert reply.status_code == 303, reply.text
    page = client.get(reply.headers["location"])
    assert page.status_code == 200
    return page.text


def _uids_in(server: RunningServer, mailbox: str) -> dict[int, bytes]:
    """UID → FLAGS of every message in `mailbox`, as a fresh IMAP session sees them."""
    imap = imap_login(server, ALICE)
    try:
        typ, _ = imap.select(f'"{mailbox}"')
        assert typ == "OK"
        typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
        result = {}
        for item in data:
            if not item:
                continue
            line = item if isinstance(item, bytes) else item[0]
            match = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)", line)
            assert match, line
            if match.group(1):
                result[int(match.group(1))] = match.group(2)
            else:
                result[int(match.group(4))] = match.group(3)
        return result
    finally:
        imap.logout()


def test_list_rows_have_checkboxes_and_a_toolbar(server: RunningServer, alice: WebClient) -> None:
    uids = _appended(server, 2)
    page = alice.get("/folder?f=INBOX").text
    for uid in uids:
        assert (
            f'<input type="checkbox" class="pick" name="uid" value="{uid}" form="list-actions"'
            in page
        )
    toolbar = _toolbar(page)
    assert toolbar["f"] == "INBOX" and toolbar["back"] == "/folder?f=INBOX"
    for action in ("read", "unread", "flag", "unflag", "move", "delete", "junk", "archive"):
        assert f'name="action" value="{action}"' in page
    assert '<option value="Archive">Archive</option>' in page
    assert '<option value="INBOX">' not in page  # not a target from INBOX itself
    assert '<script src="/static/list.js" defer></script>' in page
    assert alice.get("/static/list.js").status_code == 200


def test_flags_are_set_for_imap(server: RunningServer, alice: WebClient) -> None:
    a, b, c = _appended(server, 3)
    page = _follow(alice, act(alice, [a, b], "flag"))
    assert "2 messages flagged." in page
    flags = _uids_in(server, "INBOX")
    assert b"\\Flagged" in flags[a] and b"\\Flagged" in flags[b]
    assert b"\\Flagged" not in flags[c]
    page = _follow(alice, act(alice, [a, b, c], "read"))
    assert "3 messages marked as read." in page
    assert all(b"\\Seen" in f for f in _uids_in(server, "INBOX").values())
    page = _follow(alice, act(alice, [b], "unread"))
    assert "1 message marked as unread." in page
    _follow(alice, act(alice, [a], "unflag"))
    flags = _uids_in(server, "INBOX")
    assert b"\\Seen" not in flags[b] and b"\\Seen" in flags[a]
    assert b"\\Flagged" not in flags[a] and b"\\Flagged" in flags[b]


def test_delete_moves_to_trash_and_from_trash_for_good(
    server: RunningServer, alice: WebClient
) -> None:
    a, b, c = _appended(server, 3)
    page = _follow(alice, act(alice, [a, b], "delete"))
    assert "2 messages moved to Trash." in page
    assert set(_uids_in(server, "INBOX")) == {c}
    in_trash = sorted(_uids_in(server, "Trash"))
    assert len(in_trash) == 2
    # Another message in Trash is already \Deleted (by an IMAP client) but not selected:
    # deleting for good touches only the selected UIDs.
    (other,) = _appended(server, 1, "Trash")
    imap = imap_login(server, ALICE)
    try:
        imap.select("Trash")
        assert imap.uid("STORE", str(other), "+FLAGS", "(\\Deleted)")[0] == "OK"
    finally:
        imap.logout()
    trash_page = alice.get("/folder?f=Trash").text
    assert 'value="delete" class="danger" data-confirm=' in trash_page
    assert "Delete for good" in trash_page
    page = _follow(alice, act(alice, [in_trash[0]], "delete", page_url="/folder?f=Trash"))
    assert "1 message deleted for good." in page
    left = _uids_in(server, "Trash")
    assert set(left) == {in_trash[1], other}
    assert b"\\Deleted" in left[other]


def test_move_returns_to_the_same_page(server: RunningServer, alice: WebClient) -> None:
    uids = _appended(server, 55)
    second = alice.get("/folder?f=INBOX&page=2").text
    assert "Page 2 of 2" in second
    reply = act(alice, uids[:2], "move", page_url="/folder?f=INBOX&page=2", to="Archive")
    assert reply.status_code == 303
    location = reply.headers["location"]
    assert location.startswith("/folder?f=INBOX&page=2&")
    page = _follow(alice, reply)
    assert "2 messages moved to Archive." in page and "Page 2 of 2" in page
    assert len(_uids_in(server, "Archive")) == 2
    assert len(_uids_in(server, "INBOX")) == 53
    page = _follow(alice, act(alice, uids[2:4], "archive"))
    assert "2 messages moved to Archive." in page
    assert len(_uids_in(server, "Archive")) == 4


def test_junk_and_not_junk(server: RunningServer, alice: WebClient) -> None:
    a, b = _appended(server, 2)
    imap = imap_login(server, ALICE)
    try:
        imap.select("INBOX")
        assert imap.uid("STORE", f"{a}", "+FLAGS", "($NotJunk)")[0] == "OK"
    finally:
        imap.logout()
    page = _follow(alice, act(alice, [a, b], "junk"))
    assert "2 messages marked as junk and moved to Junk." in page
    assert _uids_in(server, "INBOX") == {}
    junk = _uids_in(server, "Junk")
    assert len(junk) == 2
    for flags in junk.values():
        assert b"$Junk" in flags and b"$NotJunk" not in flags
    junk_page = alice.get("/folder?f=Junk").text
    assert 'name="action" value="notjunk"' in junk_page
    page = _follow(alice, act(alice, sorted(junk), "notjunk", page_url="/folder?f=Junk"))
    assert "2 messages marked as not junk and moved to INBOX." in page
    assert _uids_in(server, "Junk") == {}
    inbox = _uids_in(server, "INBOX")
    assert len(inbox) == 2
    for flags in inbox.values():
        assert b"$NotJunk" in flags and b"$Junk" not in flags


def test_trash_is_made_when_missing(server: RunningServer, alice: WebClient) -> None:
    """With no \\Trash folder (deleted over IMAP), delete makes one, marked \\Trash."""
    imap = imap_login(server, ALICE)
    try:
        assert imap.delete("Trash")[0] == "OK"
    finally:
        imap.logout()
    (a,) = _appended(server, 1)
    page = _follow(alice, act(alice, [a], "delete"))
    assert "1 message moved to Trash." in page
    imap = imap_login(server, ALICE)
    try:
        typ, data = imap.list('""', "Trash")
        assert typ == "OK" and b"\\Trash" in data[0]
    finally:
        imap.logout()
    assert len(_uids_in(server, "Trash")) == 1


def test_one_flag_call_for_many_messages(server: RunningServer, alice: WebClient) -> None:
    uids = _appended(server, 20)
    store = server.store
    calls: list[int] = []
    original = store.set_flags

    async def counting(mailbox_id: int, wanted: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(wanted))
        return await original(mailbox_id, wanted, *args, **kwargs)

    store.set_flags = counting
    try:
        _follow(alice, act(alice, uids, "flag"))
    finally:
        del store.set_flags
    assert calls == [20]
    assert all(b"\\Flagged" in f for f in _uids_in(server, "INBOX").values())


def test_stale_uidvalidity_changes_nothing(server: RunningServer, alice: WebClient) -> None:
    (a,) = _appended(server, 1)
    page = alice.get("/folder?f=INBOX").text
    fields = {**_toolbar(page), "action": "delete", "uid": str(a)}
    fields["v"] = str(int(fields["v"]) - 1)
    reply = alice.post("/messages/act", fields)
    text = _follow(alice, reply)
    assert "This folder changed since the page was shown; nothing was done." in text
    assert set(_uids_in(server, "INBOX")) == {a}


def test_nothing_selected_or_no_target_says_so(server: RunningServer, alice: WebClient) -> None:
    (a,) = _appended(server, 1)
    text = _follow(alice, act(alice, [], "delete"))
    assert "No messages selected." in text
    text = _follow(alice, act(alice, [a], "move", to="Gone meanwhile"))
    assert "There is no folder named Gone meanwhile." in text
    text = _follow(alice, act(alice, [a], "move", to=""))
    assert "Choose a folder to move to." in text
    assert set(_uids_in(server, "INBOX")) == {a}


def test_another_accounts_messages_are_untouched(server: RunningServer, alice: WebClient) -> None:
    bob_uid = append(server, "bob@example.test", b"Subject: bob's\r\n\r\nsecret\r\n")
    bob = server.call(lambda: server.store.get_account("bob@example.test"))
    bob_inbox = server.call(lambda: server.store.get_mailbox(bob.id, "INBOX"))
    # alice's INBOX is empty, so her page has no toolbar: the form is made by hand.
    csrf = alice.csrf("/folder?f=INBOX")
    account = server.call(lambda: server.store.get_account(ALICE))
    inbox = server.call(lambda: server.store.get_mailbox(account.id, "INBOX"))
    tries = [
        {"f": "INBOX", "v": str(inbox.uidvalidity)},
        {"f": "INBOX", "v": str(bob_inbox.uidvalidity)},
    ]
    for where in tries:
        for action in ("delete", "flag", "junk"):
            fields = {"csrf": csrf, **where, "uid": str(bob_uid), "action": action}
            assert alice.post("/messages/act", fields).status_code == 303
    for name in ("bob@example.test/INBOX", "../bob@example.test/INBOX", str(bob_inbox.id)):
        fields = {"csrf": csrf, "f": name, "v": str(bob_inbox.uidvalidity)}
        reply = alice.post("/messages/act", {**fields, "uid": str(bob_uid), "action": "delete"})
        assert reply.status_code == 404
    imap = imap_login(server, "bob@example.test")
    try:
        imap.select("INBOX")
        typ, data = imap.uid("FETCH", str(bob_uid), "(FLAGS)")
        assert typ == "OK" and data[0] is not None
        assert b"\\Flagged" not in data[0] and b"$Junk" not in data[0]
        typ, data = imap.select("Trash")
        assert data == [b"0"]
    finally:
        imap.logout()


def test_without_csrf_token_refused(server: RunningServer, alice: WebClient) -> None:
    (a,) = _appended(server, 1)
    fields = {**_toolbar(alice.get("/folder?f=INBOX").text), "action": "delete", "uid": str(a)}
    del fields["csrf"]
    assert alice.post("/messages/act", fields).status_code == 403
    # connection: close, because the refusal comes before the body is read and the
    # server may drop a kept-alive connection then (the next request would fail).
    evil = {"origin": "https://evil.example", "connection": "close"}
    good = _toolbar(alice.get("/folder?f=INBOX").text)
    reply = alice.post("/messages/act", {**good, "action": "delete", "uid": str(a)}, headers=evil)
    assert reply.status_code == 403
    assert alice.get("/messages/act").status_code == 405
    assert set(_uids_in(server, "INBOX")) == {a}


def test_message_page_actions(server: RunningServer, alice: WebClient) -> None:
    a, b = _appended(server, 2)
    listing = alice.get("/folder?f=INBOX").text
    link = unescape(re.search(rf'href="(/read\?[^"]*uid={a})"', listing).group(1))  # type: ignore[union-attr]
    page = alice.get(link).text
    form = re.search(r'<form class="toolbar message-actions".*?</form>', page, re.S)
    assert form, "no action bar"
    fields = {k: unescape(v) for k, v in hidden_fields(form.group(0)).items()}
    assert fields["uid"] == str(a)
    assert 'value="flag"' in form.group(0) and 'value="unread"' in form.group(0)
    reply = alice.post("/messages/act", {**fields, "action": "flag"})
    assert reply.headers["location"].startswith("/folder?f=INBOX&")
    assert "1 message flagged." in _follow(alice, reply)
    assert 'value="unflag"' in alice.get(link).text
    reply = alice.post("/messages/act", {**fields, "action": "unread"})
    assert b"\\Seen" not in _uids_in(server, "INBOX")[a]
    assert "1 message marked as unread." in _follow(alice, reply)
    chooser = alice.get(link.replace("/read?", "/messages/move?"))
    assert chooser.status_code == 200 and '<option value="Archive">' in chooser.text
    reply = alice.post("/messages/act", {**fields, "action": "move", "to": "Archive"})
    assert "1 message moved to Archive." in _follow(alice, reply)
    archived = _uids_in(server, "Archive")
    assert len(archived) == 1 and b"\\Flagged" in next(iter(archived.values()))
    assert set(_uids_in(server, "INBOX")) == {b}


def test_an_open_imap_session_is_told(server: RunningServer, alice: WebClient) -> None:
    """The change bus carries the web's changes to an IMAP session that has INBOX open:
    a flag comes as an untagged FETCH, a move as an EXPUNGE, at its next NOOP."""
    a, b = _appended(server, 2)
    imap = imap_login(server, ALICE)
    try:
        imap.select("INBOX")
        _follow(alice, act(alice, [a], "flag"))
        imap.noop()
        fetches = imap.untagged_responses.pop("FETCH", [])
        assert any(b"\\Flagged" in f for f in fetches if isinstance(f, bytes)), fetches
        _follow(alice, act(alice, [b], "delete"))
        imap.noop()
        assert imap.untagged_responses.pop("EXPUNGE", []) == [b"2"]
    finally:
        imap.logout()
