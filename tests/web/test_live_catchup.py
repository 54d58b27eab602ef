"""A page whose stream was away (tab asleep, connection dropped) catches up.

Pins: a stream starts by telling the browser the account's state as its event id, and
every batch of change events carries the state after it; a stream reopened with the
last id it saw (``Last-Event-ID``, as the browser reconnects) or with the state the
page was rendered with (``?since=``, the page's ``live-state`` meta) starts with one
``catchup`` change if anything happened meanwhile (a flag set over IMAP, new mail, a
folder created) and with nothing if not; a Resync from the bus (the page fell behind)
reaches the page as a change that reloads everything.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx

from pillarbox.model import Resync
from pillarbox.web.live import event_bytes
from tests.web.client import WebClient, append, imap_login
from tests.web.sse import Stream

_META = re.compile(r'<meta name="live-state" content="([^"]+)">')


@contextlib.contextmanager
def stream(
    client: WebClient, *, last_id: str | None = None, since: str | None = None
) -> Iterator[Stream]:
    headers = {"last-event-id": last_id} if last_id is not None else {}
    url = "/events" if since is None else "/events?" + httpx.QueryParams(since=since).__str__()
    opened = Stream(client, url, headers)
    try:
        assert opened.reply.status_code == 200
        yield opened
    finally:
        opened.close()


def _first_id(opened: Stream) -> str:
    """The state the stream starts at: an id-only block, before any event."""
    block = opened.next_block()
    assert block.kind == "" and block.id, block
    return block.id


def _flag(client: WebClient, uid: int, flag: str = "\\Flagged") -> None:
    imap = imap_login(client.server, "alice@example.test")
    try:
        imap.select("INBOX")
        typ, data = imap.uid("STORE", str(uid), "+FLAGS", f"({flag})")
        assert typ == "OK", data
    finally:
        imap.logout()


def _message(subject: str) -> bytes:
    return f"From: bob@example.test\r\nSubject: {subject}\r\n\r\nhello\r\n".encode()


def test_flag_set_while_away_brings_one_catchup(alice: WebClient) -> None:
    uid = append(alice.server, "alice@example.test", _message("asleep"))
    with stream(alice) as first:
        last = _first_id(first)
    _flag(alice, uid)  # while the tab sleeps
    with stream(alice, last_id=last) as back:
        now = _first_id(back)
        assert now != last
        catchup = back.next_block()
        assert (catchup.kind, catchup.id) == ("change", now)
        assert '"kind":"catchup"' in catchup.data
        # and it is live again: the next change arrives as itself
        _flag(alice, uid, "\\Seen")
        assert '"kind":"flags"' in back.next_block().data


def test_nothing_changed_means_no_catchup(alice: WebClient) -> None:
    uid = append(alice.server, "alice@example.test", _message("quiet"))
    with stream(alice) as first:
        last = _first_id(first)
    with stream(alice, last_id=last) as back:
        assert _first_id(back) == last
        _flag(alice, uid)
        # The first event after reconnecting is the new flag, not a catch-up.
        block = back.next_block()
        assert block.kind == "change" and '"kind":"flags"' in block.data
        assert block.id is not None and block.id != last


def test_events_carry_the_state_a_new_stream_reports(alice: WebClient) -> None:
    """The id after a change is the account's state then: a browser that reconnects
    with it is not sent the same change again as a catch-up."""
    with stream(alice) as live:
        _first_id(live)
        append(alice.server, "alice@example.test", _message("new"))
        added = live.next_block()
        assert '"kind":"added"' in added.data and added.id
    with stream(alice, last_id=added.id) as again:
        assert _first_id(again) == added.id


def test_page_state_catches_up_a_stream_opened_later(alice: WebClient) -> None:
    """The page names the state it was made from; its stream, opened later (or
    reopened when the tab wakes), catches up what happened in between."""
    page = alice.get("/folder?f=INBOX")
    match = _META.search(page.text)
    assert match, "the page carries no live-state"
    shown = match.group(1)
    with stream(alice, since=shown) as same:
        assert _first_id(same) == shown  # nothing new: no catch-up
    append(alice.server, "alice@example.test", _message("between"))
    with stream(alice, since=shown) as later:
        now = _first_id(later)
        assert now != shown
        assert '"kind":"catchup"' in later.next_block().data
    assert _META.search(alice.get("/folder?f=INBOX").text).group(1) == now  # type: ignore[union-attr]


def test_new_folder_while_away_brings_catchup(alice: WebClient) -> None:
    with stream(alice) as first:
        last = _first_id(first)
    imap = imap_login(alice.server, "alice@example.test")
    try:
        assert imap.create("Projects")[0] == "OK"
    finally:
        imap.logout()
    with stream(alice, last_id=last) as back:
        assert _first_id(back) != last
        assert '"kind":"catchup"' in back.next_block().data


def test_header_wins_over_page_state(alice: WebClient) -> None:
    """A browser reconnecting by itself sends Last-Event-ID and the old URL: the
    header is the newer of the two."""
    page_state = _META.search(alice.get("/folder?f=INBOX").text).group(1)  # type: ignore[union-attr]
    append(alice.server, "alice@example.test", _message("seen live"))
    with stream(alice) as live:
        current = _first_id(live)
    with stream(alice, last_id=current, since=page_state) as back:
        assert _first_id(back) == current
        append(alice.server, "alice@example.test", _message("next"))
        assert '"kind":"added"' in back.next_block().data


def test_resync_reaches_the_page_as_a_change() -> None:
    """The bus's Resync (a subscriber that fell behind lost its backlog) is one event
    the page answers by reloading everything, like any other change."""
    raw = event_bytes(Resync(7), "state").decode()
    assert raw.startswith("id: state\nevent: change\n")
    assert '"kind":"resync"' in raw
