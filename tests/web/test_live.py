"""Live updates: changes from any protocol reach an open page's event stream.

Pins: ``/events`` needs a session; a message delivered over IMAP APPEND and a flag set
over IMAP STORE each arrive as a ``change`` event naming the kind and alice's INBOX
within a second; bob's changes never reach alice's stream; signing out ends the stream
at once; stopping the server ends open streams at once; the folder page asks for live
updates and its CSP lets the script connect to this site only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

from pillarbox.web.listener import SHUTDOWN_GRACE
from pillarbox.web.live import MAX_STREAMS
from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append, imap_login
from tests.web.sse import Stream


class EventReader(Stream):
    """The `change` events of /events, their data decoded."""

    def __init__(self, client: WebClient) -> None:
        super().__init__(client, "/events", {})

    @property
    def events(self) -> list[dict[str, object]]:
        """The change events received and not yet taken."""
        return [json.loads(b.data) for b in self.blocks if b.kind == "change"]

    def next_event(self, timeout: float = 1.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(deadline - time.monotonic())
            if block.kind == "change":
                data: dict[str, object] = json.loads(block.data)
                return data


def _inbox_id(server: RunningServer, user: str) -> int:
    account = server.call(lambda: server.store.get_account(user))
    mailbox = server.call(lambda: server.store.get_mailbox(account.id, "INBOX"))
    return int(mailbox.id)


@contextlib.contextmanager
def _reader(client: WebClient) -> Iterator[EventReader]:
    reader = EventReader(client)
    try:
        assert reader.reply.status_code == 200
        assert reader.reply.headers["content-type"].startswith("text/event-stream")
        yield reader
    finally:
        reader.close()


def test_events_need_a_session(web: WebClient) -> None:
    reply = web.get("/events")
    assert reply.status_code == 303 and reply.headers["location"].startswith("/signin")


def test_changes_from_imap_arrive_live(server: RunningServer, alice: WebClient) -> None:
    inbox = _inbox_id(server, "alice@example.test")
    with _reader(alice) as reader:
        append(server, "bob@example.test", b"Subject: for bob\r\n\r\nnot alice's\r\n")
        uid = append(server, "alice@example.test", b"Subject: live\r\n\r\nhello\r\n")
        assert reader.next_event() == {"kind": "added", "mailbox": inbox}
        imap = imap_login(server, "alice@example.test")
        try:
            imap.select("INBOX")
            imap.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
        finally:
            imap.logout()
        assert reader.next_event() == {"kind": "flags", "mailbox": inbox}
        assert reader.events == []  # nothing of bob's


def test_sign_out_ends_the_stream(alice: WebClient) -> None:
    with _reader(alice) as reader:
        token = alice.csrf("/folder?f=INBOX")
        assert alice.post("/signout", {"csrf": token}).status_code == 303
        assert reader.ended.wait(5)


def test_folder_page_goes_live(alice: WebClient) -> None:
    page = alice.get("/folder?f=INBOX")
    assert "data-live" in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]


def test_open_stream_does_not_hold_up_shutdown(server: RunningServer, alice: WebClient) -> None:
    """Stopping the server ends open streams at once instead of waiting out Hypercorn's
    grace period for them."""
    with _reader(alice) as reader:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < SHUTDOWN_GRACE
        assert reader.ended.wait(5)


def _raw_stream(client: WebClient) -> socket.socket:
    """An event stream on a plain socket, so that closing it really closes it (an httpx
    stream read by another thread does not close its connection at once)."""
    sock = socket.create_connection(("127.0.0.1", client.server.port("http")), timeout=10)
    cookie = client.http.cookies["pillarbox_session"]
    sock.sendall(
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: pillarbox_session={cookie}"
        "\r\n\r\n".encode()
    )
    return sock


def _status(sock: socket.socket) -> int:
    return int(sock.recv(4096).split(b" ", 2)[1])


def test_streams_per_session_are_capped(alice: WebClient) -> None:
    """Each stream holds a change-bus subscription: a session gets `MAX_STREAMS`, and
    a closed one is counted off when the server sees the disconnect."""
    streams = [_raw_stream(alice) for _ in range(MAX_STREAMS)]
    try:
        assert all(_status(sock) == 200 for sock in streams)
        assert alice.get("/events").status_code == 429
    finally:
        for sock in streams:
            sock.close()
    deadline = time.monotonic() + 5
    while True:
        with _raw_stream(alice) as sock:
            if _status(sock) == 200:
                break
        assert time.monotonic() < deadline, "closed streams still counted"
